"""`pds.plot`: pictures of solutions and training histories (matplotlib, optional extra `plot`).

    import pdesolve as pds
    sol = pds.solve(problem, pds.DTPINN(), max_steps=2000)
    fig = pds.plot(sol, path="poisson.png")

What is drawn depends on the solution:

* PDE field solutions (`sol.kind == "field"`: NeuralIVP, DTPINN, PINN): the learned field at up
  to four times (NeuralIVP: saved times; space-time PINNs: times in `tspan`; steady problems:
  one panel), a row of error maps `|u - u_exact|` when the problem has `solution=`, and the
  solver's histories (training loss and test error; CG iterations per linear solve and the PDE
  residual / error over t). 2-D domains are drawn whole (points outside a disk, or farther
  than 1.5 node spacings from a bare point cloud's nodes, masked), higher dimensions as the slice through the centre of the bounding box in the first two
  coordinates, 1-D domains as line plots.
* ODE solutions (`sol.kind == "ode"`): the saved trajectories against t (an image of the state
  against t for more than 10 components), the phase plane for two components, and the step
  sizes for `SaveAt(steps=True)` solutions; the step counters in the title.
* A stats dict (e.g. `sol.stats`): its histories only.

The figure is a plain `matplotlib.figure.Figure` (no pyplot state, so nothing pops up in tests
or command-line runs); `path=` also saves it. matplotlib is imported only when `plot` is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._solution import Solution

__all__ = ["plot"]

_MAX_DEFAULT_TIMES = 4
_MAX_LINES = 10
_DPI = 120


def _matplotlib():
    """Import matplotlib lazily; a clear message if the optional extra is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle
    except ImportError as err:
        raise ImportError(
            'pdesolve.plot needs matplotlib, an optional dependency: pip install "pdesolve[plot]"'
        ) from err
    return Figure, Circle


def plot(
    sol: Any,
    *,
    times: Any = None,
    component: int | Sequence[int] | None = None,
    path: Any = None,
    resolution: int | None = None,
    show_exact: bool = False,
    title: str | None = None,
    dpi: int = _DPI,
):
    """Draw a solution (or a stats dict of histories) and return the matplotlib `Figure`.

    **Arguments:**

    - `sol`: a `pds.Solution` (from `pds.solve`) or a dict of histories such as `sol.stats`.
    - `times`: field solutions of evolution problems: the times to draw (a number or a
      sequence). NeuralIVP solutions are stored at their saved times only, so each must be
      one of `sol.ts`; space-time PINNs accept any time in `problem.tspan`. Default: up to
      four times spread over the saved times / `tspan`. Steady problems and ODEs take none.
    - `component`: which component of a vector-valued field to draw (default 0); for ODEs the
      state components to draw (an int or a sequence of ints indexing the flattened state;
      default all).
    - `path`: also save the figure there (format from the suffix, e.g. `.png`).
    - `resolution`: grid points per axis for field maps (default 96 in 2-D, 400 in 1-D).
    - `show_exact`: add a row with the exact solution between the field and the error rows
      (field solutions with `problem.solution`). Field and exact share colour limits.
    - `title`: the figure title; default names the solver, the problem type and the domain.
    - `dpi`: resolution of the saved file (default 120).

    **Returns:** a `matplotlib.figure.Figure` (not registered with pyplot).

    **Layout.** Field solutions: one column per time; rows field, (exact), `|u - u_exact|`
    (when the problem has an exact solution), each row with one shared colour bar; below
    them one panel per history: training loss and test error against the optimiser step
    (PINN, DTPINN; log scale), CG iterations per linear solve, and PDE residual / error
    against t (NeuralIVP; restarts marked). Map pixels are centred on the grid points, so
    `image.get_array()` holds the plotted values at `linspace(lower, upper, resolution)`.

    **Errors:** `TypeError` when `sol` is neither a Solution nor a dict; `ValueError` for an
    unsupported `sol.kind`, a `component` out of range, `times` outside the saved range or
    given where there are no times, or a dict without histories.
    """
    Figure, Circle = _matplotlib()
    dpi = _check_positive_int(dpi, "dpi")
    if resolution is not None:
        resolution = _check_positive_int(resolution, "resolution", minimum=2)
    if isinstance(sol, dict):
        if times is not None or component is not None:
            raise ValueError("`times` and `component` apply to Solutions, not to a stats dict.")
        fig = _plot_histories(Figure, sol, title)
    elif isinstance(sol, Solution):
        if sol.kind == "field":
            fig = _plot_field(Figure, Circle, sol, times, component, resolution, show_exact, title)
        elif sol.kind == "ode":
            if times is not None:
                raise ValueError(
                    "`times` selects snapshots of PDE field solutions; an ODE solution is drawn "
                    "at its saved times (choose them with SaveAt(ts=...))."
                )
            fig = _plot_ode(Figure, sol, component, title)
        else:
            raise ValueError(
                f"`sol` has kind {sol.kind!r}; pds.plot draws 'field' and 'ode' solutions."
            )
    else:
        raise TypeError(
            f"`sol` must be a pds.Solution (from pds.solve) or a dict of histories such as "
            f"sol.stats; got {type(sol).__name__}."
        )
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def _check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def _fmt(t) -> str:
    return f"{float(t):.4g}"


def _solver_name(sol) -> str:
    return type(sol.solver).__name__


def _domain_desc(domain) -> str:
    from ._geometry import Ball, Box, PointCloud

    if isinstance(domain, PointCloud):
        inner = domain.domain
        if inner is None:
            return f"{domain.n_interior + domain.n_boundary} nodes"
        return _domain_desc(inner)
    if isinstance(domain, Box):
        lo, hi = np.asarray(domain.lower), np.asarray(domain.upper)
        if np.all(lo == lo[0]) and np.all(hi == hi[0]):
            return f"[{lo[0]:g}, {hi[0]:g}]^{lo.size}" if lo.size > 1 else f"[{lo[0]:g}, {hi[0]:g}]"
        return " x ".join(f"[{a:g}, {b:g}]" for a, b in zip(lo, hi))
    if isinstance(domain, Ball):
        name = {1: "interval", 2: "disk", 3: "ball"}.get(domain.dim, f"{domain.dim}-ball")
        centre = np.asarray(domain.center, dtype=float)
        r = float(domain.radius)
        if not np.any(centre):
            return f"{name} |x| ≤ {r:g}"
        return f"{name} |x - ({', '.join(f'{v:g}' for v in centre)})| ≤ {r:g}"
    return type(domain).__name__


def _result_note(sol) -> str:
    from ._results import RESULTS

    try:
        ok = bool(sol.successful)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):  # traced or batched
        return ""
    return "" if ok else f"\n[not successful: {RESULTS[sol.result]}]"


# ---------------------------------------------------------------------------------------------
# PDE field solutions
# ---------------------------------------------------------------------------------------------


def _select_times(sol, times):
    """The times to draw: `[None]` for steady problems, else a list of floats."""
    problem = sol.problem
    if problem.is_steady:
        if times is not None:
            raise ValueError("`times`: this is a steady problem, there are no times to choose.")
        return [None]
    if times is not None:
        req = np.atleast_1d(np.asarray(times, dtype=float))
        if req.ndim != 1 or req.size == 0 or not np.all(np.isfinite(req)):
            raise ValueError(f"`times` must be a finite number or a 1-D sequence of them; got {times!r}.")
    if sol.ts is None:  # space-time network: any t in tspan
        t0, t1 = sorted(float(t) for t in problem.tspan)
        if times is None:
            return [float(t) for t in np.linspace(t0, t1, _MAX_DEFAULT_TIMES)]
        tol = 1e-12 * max(1.0, abs(t0), abs(t1))
        bad = req[(req < t0 - tol) | (req > t1 + tol)]
        if bad.size:
            raise ValueError(
                f"`times` {bad.tolist()} lie outside the problem's tspan [{t0:g}, {t1:g}]."
            )
        return [float(t) for t in req]
    ts = np.asarray(sol.ts, dtype=float).reshape(-1)
    ts = ts[np.isfinite(ts)]
    if ts.size == 0:
        raise ValueError("This solution saved no times; solve with SaveAt(ts=...) to plot it.")
    if times is None:
        idx = np.unique(np.round(np.linspace(0, ts.size - 1, min(ts.size, _MAX_DEFAULT_TIMES))).astype(int))
        return [float(ts[i]) for i in idx]
    out = []
    for t in req:
        hit = np.nonzero(np.isclose(ts, t, rtol=1e-9, atol=1e-12))[0]
        if hit.size == 0:
            raise ValueError(
                f"`times`: t={t:g} is not a saved time of this {_solver_name(sol)} solution "
                f"(saved: {np.array2string(ts, precision=4, separator=', ')}); add it to "
                "SaveAt(ts=...)."
            )
        out.append(float(ts[hit[-1]]))
    return out


def _grid(domain, dim, resolution):
    """Grid points `(n, dim)`, inside mask `(n,)`, and the axes' 1-D coordinates."""
    lower, upper = (np.asarray(b, dtype=float) for b in domain.bounding_box())
    if dim == 1:
        x = np.linspace(lower[0], upper[0], resolution)
        return x[:, None], np.ones(resolution, bool), (x,)
    x = np.linspace(lower[0], upper[0], resolution)
    y = np.linspace(lower[1], upper[1], resolution)
    xx, yy = np.meshgrid(x, y)  # rows: y, columns: x (image orientation with origin="lower")
    pts = np.zeros((xx.size, dim))
    pts[:, 0], pts[:, 1] = xx.ravel(), yy.ravel()
    pts[:, 2:] = 0.5 * (lower[2:] + upper[2:])
    try:
        inside = np.asarray(domain.contains(jnp.asarray(pts)), dtype=bool)
    except NotImplementedError:  # a bare point cloud has no inside test
        inside = _near_nodes(domain, pts) if dim == 2 else np.ones(xx.size, bool)
    return pts, inside, (x, y)


def _near_nodes(cloud, pts):
    """For a 2-D point cloud without a generating domain: the grid points within 1.5 node
    spacings (the median nearest-neighbour distance) of a node, so that regions the cloud
    does not cover (an L-shape's removed quadrant, holes) are masked, not extrapolated."""
    from scipy.spatial import cKDTree

    nodes = np.concatenate([np.asarray(cloud.interior, float), np.asarray(cloud.boundary, float).reshape(-1, 2)])
    tree = cKDTree(nodes)
    spacing = float(np.median(tree.query(nodes, k=2)[0][:, 1]))
    return tree.query(pts[:, :2], k=1)[0] <= 1.5 * spacing


def _pick_component(values, component, what):
    """`values` `(n,)` or `(n, k)` -> `(n,)`; `component` validated against k."""
    values = np.asarray(values)
    if values.ndim == 1:
        if component not in (None, 0):
            raise ValueError(f"`component`={component!r}: the {what} is scalar-valued; use 0 (or None).")
        return values
    values = values.reshape(values.shape[0], -1)
    k = values.shape[1]
    c = 0 if component is None else component
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not -k <= c < k:
        raise ValueError(f"`component`={component!r} is out of range: the {what} has {k} components (0..{k - 1}).")
    return values[:, int(c)]


def _evaluate(sol, pts, t, component):
    raw = np.asarray(sol(jnp.asarray(pts), t))
    k_out = 1 if raw.ndim == 1 else int(np.prod(raw.shape[1:]))
    u = _pick_component(raw, component, "field")
    exact = None
    if sol.problem.solution is not None:
        fn = sol.problem.solution
        ex = jax.vmap(lambda x: fn(x, t))(jnp.asarray(pts))
        exact = _pick_component(ex, component, "exact solution")
    return u.astype(float), None if exact is None else np.asarray(exact, dtype=float), k_out


def _plot_field(Figure, Circle, sol, times, component, resolution, show_exact, title):
    from ._geometry import Ball, PointCloud

    problem = sol.problem
    if not hasattr(problem, "domain") or not hasattr(problem, "is_steady"):
        raise ValueError(f"`sol`: a field solution needs a PDEProblem; got {type(problem).__name__}.")
    dim = problem.dim
    tlist = _select_times(sol, times)
    if resolution is None:
        resolution = 400 if dim == 1 else 120
    pts, inside, axes_coords = _grid(problem.domain, dim, resolution)
    fields, exacts = [], []
    for t in tlist:
        u, ex, k_out = _evaluate(sol, pts, t, component)
        fields.append(u)
        exacts.append(ex)
    has_exact = exacts[0] is not None
    errors = [np.abs(u - ex) for u, ex in zip(fields, exacts)] if has_exact else []
    histories = _history_panels(sol.stats or {}, condition=False)

    name = "u" if k_out == 1 else f"u[{(0 if component is None else int(component)) % k_out}]"
    if title is None:
        kind = "steady" if problem.is_steady else "evolution"
        title = (f"{_solver_name(sol)}: {kind} {type(problem).__name__} on "
                 f"{_domain_desc(problem.domain)}{_slice_note(problem.domain, dim)}{_result_note(sol)}")

    def tlabel(t):
        return "" if t is None else f"t = {_fmt(t)}"

    # rows of the map grid: field, (exact), (error); a single time lays them out side by side
    rows = [("field", fields, "viridis", name)]
    if has_exact and show_exact:
        rows.append(("exact", exacts, "viridis", f"{name} exact"))
    if has_exact:
        rows.append(("error", errors, "magma", f"|{name} - {name} exact|"))
    n_t, n_hist = len(tlist), len(histories)
    if dim == 1:
        top_w, top_h = 4.6 * (1 + int(has_exact)), 3.3
    elif n_t == 1:
        top_w, top_h = 4.1 * len(rows) + 0.6, 3.4
    else:
        top_w, top_h = 3.3 * n_t + 1.0, 2.9 * len(rows)
    width = max(top_w, 4.0 * n_hist, 6.0)
    height = top_h + (2.8 if n_hist else 0.0) + 0.4
    fig = Figure(figsize=(width, height), layout="constrained")
    if n_hist:
        top, bottom = fig.subfigures(2, 1, height_ratios=[top_h, 2.8])
    else:
        top, bottom = fig, None
    fig.suptitle(title, fontsize=11)

    if dim == 1:
        _field_lines_1d(top, axes_coords[0], tlist, fields, exacts, errors, name, tlabel)
    else:
        _field_maps_2d(top, Circle, problem.domain, axes_coords, inside, tlist, rows, tlabel,
                       Ball, PointCloud)
    if bottom is not None:
        _draw_histories(bottom, histories)
    return fig


def _slice_note(domain, dim):
    if dim <= 2:
        return ""
    lower, upper = (np.asarray(b, dtype=float) for b in domain.bounding_box())
    centre = 0.5 * (lower[2:] + upper[2:])
    if dim == 3:
        return f"; slice x2 = {centre[0]:g}"
    return f"; slice (x2..x{dim - 1}) = ({', '.join(f'{v:g}' for v in centre)})"


def _field_maps_2d(top, Circle, domain, axes_coords, inside, tlist, rows, tlabel, Ball, PointCloud):
    x, y = axes_coords
    dx = (x[-1] - x[0]) / (x.size - 1)
    dy = (y[-1] - y[0]) / (y.size - 1)
    # pixel centres on the grid points
    extent = (x[0] - dx / 2, x[-1] + dx / 2, y[0] - dy / 2, y[-1] + dy / 2)
    inner = domain.domain if isinstance(domain, PointCloud) else domain
    circle = None
    if isinstance(inner, Ball):
        circle = (tuple(np.asarray(inner.center, dtype=float)[:2]), float(inner.radius))
    n_t = len(tlist)
    if n_t == 1:
        cells = top.subplots(1, len(rows), squeeze=False)[0][:, None]  # cells[row, time]
    else:
        cells = top.subplots(len(rows), n_t, squeeze=False)
    shape = (y.size, x.size)
    mask = ~inside.reshape(shape)

    def image(values):
        values = values.reshape(shape)
        return np.ma.masked_array(values, mask=mask | ~np.isfinite(values))

    def finite_range(arrs):
        vals = np.concatenate([a[inside] for a in arrs])
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            return 0.0, 1.0
        lo, hi = float(vals.min()), float(vals.max())
        return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)

    # field and exact share colour limits (and, for a single time, one colour bar)
    field_lim = finite_range([a for kind, data, _, _ in rows if kind != "error" for a in data])
    by_bar = []
    for r, (kind, data, cmap, label) in enumerate(rows):
        lim = field_lim if kind != "error" else (0.0, max(finite_range(data)[1], 1e-300))
        im = None
        for c, t in enumerate(tlist):
            ax = cells[r, c]
            im = ax.imshow(image(data[c]), origin="lower", extent=extent, cmap=cmap,
                           vmin=lim[0], vmax=lim[1], interpolation="nearest")
            if circle is not None:
                ax.add_patch(Circle(circle[0], circle[1], fill=False, lw=0.8, color="0.3"))
            ax.set_aspect("equal")
            ax.set_title(label + (f", {tlabel(t)}" if t is not None else ""), fontsize=9)
            ax.set_xlabel("x0", fontsize=8)
            if c == 0 or n_t == 1:
                ax.set_ylabel("x1", fontsize=8)
            ax.tick_params(which="both", labelsize=7)
        if n_t == 1 and kind == "exact":
            by_bar[-1][1].append(cells[r, 0])  # one bar for field and exact
        else:
            by_bar.append((im, list(cells[r, :]), kind))
    for im, axes, kind in by_bar:
        cb = top.colorbar(im, ax=axes, shrink=0.9, pad=0.02)
        cb.ax.tick_params(which="both", labelsize=7)
        if kind == "error":
            cb.formatter.set_powerlimits((-2, 3))


def _field_lines_1d(top, x, tlist, fields, exacts, errors, name, tlabel):
    has_exact = exacts[0] is not None
    axes = top.subplots(1, 1 + int(has_exact), squeeze=False)[0]
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    colours = [cmap(v) for v in np.linspace(0.0, 0.85, len(tlist))]
    ax = axes[0]
    for t, u, ex, col in zip(tlist, fields, exacts, colours):
        ax.plot(x, u, color=col, lw=1.6, label=tlabel(t) or name)
        if ex is not None:
            ax.plot(x, ex, color="k", lw=0.8, ls="--")
    if has_exact:
        ax.plot([], [], color="k", lw=0.8, ls="--", label="exact")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("x0", fontsize=8)
    ax.legend(fontsize=7)
    ax.tick_params(which="both", labelsize=7)
    if has_exact:
        ax = axes[1]
        for t, e, col in zip(tlist, errors, colours):
            ax.semilogy(x, np.maximum(e, np.finfo(float).tiny), color=col, lw=1.2, label=tlabel(t) or name)
        emax = max((float(np.nanmax(e)) for e in errors if np.any(np.isfinite(e))), default=0.0)
        if emax > 0:  # exact zeros (e.g. on a Dirichlet boundary) would stretch the axis
            ax.set_ylim(bottom=max(emax * 1e-6, np.finfo(float).tiny))
        ax.set_title(f"|{name} - {name} exact|", fontsize=9)
        ax.set_xlabel("x0", fontsize=8)
        ax.legend(fontsize=7)
        ax.tick_params(which="both", labelsize=7)


# ---------------------------------------------------------------------------------------------
# histories (solver stats)
# ---------------------------------------------------------------------------------------------


def _as_pairs(value):
    """A `(t, value)` history as an `(n, 2)` float array, or None."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.shape[0] > 0:
        return arr
    return None


def _as_series(value):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 1 and arr.size > 0:
        return arr
    return None


def _history_panels(stats, *, condition):
    """Panel specs `(title, xlabel, ylabel, lines, logy, vlines)` from a stats dict."""
    panels = []
    loss = _as_series(stats.get("loss_history"))
    err = _as_series(stats.get("error_history"))
    steps = _as_series(stats.get("step_history"))
    if loss is not None:
        lines = [("loss", np.arange(1, loss.size + 1), loss, "-")]
        if err is not None and steps is not None and steps.size == err.size:
            lines.append(("test rel. L2 error", steps, err, "o-"))
        panels.append(("training loss" + (" and test error" if len(lines) > 1 else ""),
                       "optimiser step", "", lines, True, None))
    elif err is not None and steps is not None and steps.size == err.size:
        panels.append(("test error", "optimiser step", "rel. L2 error",
                       [("test rel. L2 error", steps, err, "o-")], True, None))
    cg = _as_series(stats.get("cg_iterations"))
    if cg is not None:
        panels.append((f"CG iterations per solve (total {int(cg.sum())})", "linear solve", "iterations",
                       [("CG iterations", np.arange(1, cg.size + 1), cg, "-")], False, None))
    pde = []
    res = _as_pairs(stats.get("residual_history"))
    if res is not None:
        pde.append(("PDE residual", res[:, 0], res[:, 1], "-"))
    errp = _as_pairs(stats.get("error_history"))
    if errp is not None:
        pde.append(("rel. error vs exact", errp[:, 0], errp[:, 1], "-"))
    if pde:
        restarts = _as_series(stats.get("restart_times"))
        panels.append(("PDE residual" + (" and error" if len(pde) > 1 else "") + " over t", "t", "",
                       pde, True, restarts))
    if condition:
        cond = _as_pairs(stats.get("condition_history"))
        if cond is not None:
            panels.append(("condition number over t", "t", "", [("cond(M)", cond[:, 0], cond[:, 1], "-")],
                           True, None))
    return panels


def _draw_histories(container, panels):
    axes = container.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, xlabel, ylabel, lines, logy, vlines) in zip(axes, panels):
        for label, xs, ys, style in lines:
            ys = np.asarray(ys, dtype=float)
            if logy:
                ys = np.where(ys > 0, ys, np.nan)
            marker = "o" if "o" in style or xs.size <= 3 else None
            ax.plot(xs, ys, ls="-", marker=marker, ms=3, lw=1.2, label=label)
        if logy:
            ax.set_yscale("log")
        if vlines is not None:
            for i, tv in enumerate(vlines):
                ax.axvline(tv, color="0.6", lw=0.8, ls=":", label="restart" if i == 0 else None)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        if ylabel:
            ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3)
        if len(lines) > 1 or vlines is not None and len(vlines):
            ax.legend(fontsize=7)


def _plot_histories(Figure, stats, title):
    panels = _history_panels(stats, condition=True)
    if not panels:
        raise ValueError(
            "`sol`: the dict holds no history pds.plot knows (loss_history, error_history with "
            "step_history, cg_iterations, residual_history, condition_history); got keys "
            f"{sorted(map(str, stats))}."
        )
    fig = Figure(figsize=(max(3.8 * len(panels), 5.0), 3.4), layout="constrained")
    fig.suptitle(title or "histories", fontsize=11)
    _draw_histories(fig, panels)
    return fig


# ---------------------------------------------------------------------------------------------
# ODE solutions
# ---------------------------------------------------------------------------------------------


def _ode_components(ys, n):
    """Flatten the saved pytree state to `(n, m)` and name each column."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(ys)
    cols, names = [], []
    single = len(leaves) == 1
    for kp, leaf in leaves:
        arr = np.asarray(leaf, dtype=float).reshape(n, -1)
        prefix = "y" if single else "y" + jax.tree_util.keystr(kp)
        for j in range(arr.shape[1]):
            names.append(f"{prefix}[{j}]" if arr.shape[1] > 1 or single else prefix)
        cols.append(arr)
    return np.concatenate(cols, axis=1), names


def _plot_ode(Figure, sol, component, title):
    from matplotlib.ticker import MaxNLocator

    ts_all = np.asarray(sol.ts, dtype=float).reshape(-1)
    keep = np.isfinite(ts_all)
    Y, names = _ode_components(sol.ys, ts_all.size)
    ts, Y = ts_all[keep], Y[keep]
    m = Y.shape[1]
    if component is None:
        sel = list(range(m))
    else:
        sel = [component] if isinstance(component, (int, np.integer)) and not isinstance(component, bool) else component
        try:
            sel = [int(c) for c in sel]
        except (TypeError, ValueError):
            raise ValueError(f"`component` must be an int or a sequence of ints; got {component!r}.") from None
        bad = [c for c in sel if not -m <= c < m]
        if bad or not sel:
            raise ValueError(f"`component`={component!r} is out of range: the state has {m} components (0..{m - 1}).")
        sel = [c % m for c in sel]
    Y, names = Y[:, sel], [names[c] for c in sel]
    stepped = not np.all(keep) and ts.size > 1  # SaveAt(steps=True) leaves inf-padded slots

    st = sol.stats or {}
    counts = []
    for key, label in (("num_accepted_steps", "accepted"), ("num_rejected_steps", "rejected"),
                       ("num_fevals", "f-evals")):
        if key in st:
            try:
                counts.append(f"{label} {int(np.asarray(st[key]))}")
            except (TypeError, ValueError):
                pass
    if title is None:
        title = f"{_solver_name(sol)}: {type(sol.problem).__name__}{_result_note(sol)}"
        if counts:
            title += "\n" + ", ".join(counts)

    panels = ["traj"]
    if len(sel) == 2:
        panels.append("phase")
    if stepped:
        panels.append("steps")
    fig = Figure(figsize=(max(4.4 * len(panels), 6.0), 3.8), layout="constrained")
    fig.suptitle(title, fontsize=11)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    marker = "o" if ts.size <= 40 else None
    for ax, kind in zip(axes, panels):
        if kind == "traj":
            if len(sel) > _MAX_LINES:
                finite = Y[np.isfinite(Y)]
                vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
                im = ax.imshow(np.ma.masked_invalid(Y.T), aspect="auto", origin="lower",
                               interpolation="nearest", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                               extent=(ts[0], ts[-1], -0.5, len(sel) - 0.5) if ts.size > 1 else None)
                if component is not None:  # rows are the selected components, not 0..m-1
                    ax.set_yticks(range(len(sel)), [str(c) for c in sel])
                else:
                    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
                cb = fig.colorbar(im, ax=ax, pad=0.02)
                cb.ax.tick_params(which="both", labelsize=7)
                ax.set_ylabel("component", fontsize=8)
                ax.set_title(f"state ({len(sel)} components) at saved times", fontsize=9)
            else:
                for j, nm in enumerate(names):
                    ax.plot(ts, Y[:, j], marker=marker, ms=3, lw=1.3, label=nm)
                ax.set_title("trajectories at saved times", fontsize=9)
                ax.legend(fontsize=7)
                ax.grid(alpha=0.3)
            ax.set_xlabel("t", fontsize=8)
        elif kind == "phase":
            ax.plot(Y[:, 0], Y[:, 1], marker=marker, ms=3, lw=1.2)
            ax.plot(Y[:1, 0], Y[:1, 1], "o", color="k", ms=4, label=f"t = {_fmt(ts[0])}")
            ax.set_xlabel(names[0], fontsize=8)
            ax.set_ylabel(names[1], fontsize=8)
            ax.set_title("phase plane", fontsize=9)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        else:
            # SaveAt(steps=True) saves the end of every accepted step; the first starts at t0
            starts = np.concatenate([[float(sol.problem.tspan[0])], ts[:-1]])
            dt = np.abs(ts - starts)
            ax.semilogy(starts, np.where(dt > 0, dt, np.nan), lw=1.0, marker="." if dt.size <= 200 else None)
            ax.set_xlabel("t (start of step)", fontsize=8)
            ax.set_title("accepted step sizes", fontsize=9)
            ax.grid(alpha=0.3)
        ax.tick_params(which="both", labelsize=7)
    return fig

