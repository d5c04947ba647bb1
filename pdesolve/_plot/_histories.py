"""History panels: training loss and test error, CG iterations, PDE residual / error and
condition number over t, from a solver's stats dict (below a field figure, or alone)."""

from __future__ import annotations

import numpy as np


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
