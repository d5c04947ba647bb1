"""ODE solutions: the saved trajectories (an image for many components), the phase plane for
two components, and the accepted step sizes of `SaveAt(steps=True)` solutions."""

from __future__ import annotations

import jax
import numpy as np

from .._validation import is_int
from ._common import _fmt, _result_note, _solver_name

_MAX_LINES = 10


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
        sel = [component] if is_int(component) else component
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
