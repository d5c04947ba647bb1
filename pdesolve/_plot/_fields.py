"""PDE field solutions: the field, exact solution and error at chosen times, as 2-D maps (slices
of higher-dimensional domains) or 1-D lines, above the solver's histories."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._geometry import Ball, Box, PointCloud
from .._problems import PDEProblem
from .._validation import check_int
from ._common import _fmt, _result_note, _solver_name
from ._histories import _draw_histories, _history_panels

_MAX_DEFAULT_TIMES = 4


def _domain_desc(domain) -> str:
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
    c = 0 if component is None else check_int("component", component, hint=f"It picks one of the {what}'s {k} components (0..{k - 1}).")
    if not -k <= c < k:
        raise ValueError(f"`component`={component!r} is out of range: the {what} has {k} components (0..{k - 1}).")
    return values[:, c]


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
    problem = sol.problem
    if not isinstance(problem, PDEProblem):
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
        _field_maps_2d(top, Circle, problem.domain, axes_coords, inside, tlist, rows, tlabel)
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


def _field_maps_2d(top, Circle, domain, axes_coords, inside, tlist, rows, tlabel):
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
