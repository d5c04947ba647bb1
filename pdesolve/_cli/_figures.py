"""`--plot`: whether plotting is available, and the figures a run writes.

One `pds.plot` figure per solver, and with several solvers a comparison figure (PINN family:
error against training time and loss against step; ODEs: error against t). matplotlib is an
optional extra (`pip install "pdesolve[plot]"`), imported only here and only when drawing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pdesolve as pds
from pdesolve.problems import reference_solution

from ._catalogue import _family
from ._errors import CLIError
from ._metrics import _flatten_ys


def _can_plot() -> bool:
    try:
        _check_plotting()
    except CLIError:
        return False
    return True


def _check_plotting():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError('--plot needs matplotlib: pip install "pdesolve[plot]"') from None


def _write_plots(path: Path, results, problem_name) -> list[Path]:
    written = []
    if len(results) == 1:
        name, sol, _ = results[0]
        fig = pds.plot(sol, title=f"{problem_name}: {name}")
        fig.savefig(path)
        return [path]
    for name, sol, _ in results:
        p = path.with_name(f"{path.stem}-{name}{path.suffix}")
        fig = pds.plot(sol, title=f"{problem_name}: {name}")
        fig.savefig(p)
        written.append(p)
    fig = _comparison_figure(results, problem_name)
    if fig is not None:
        fig.savefig(path)
        written.insert(0, path)
    return written


def _comparison_figure(results, problem_name):
    """Error against training time (PINN family) or against t (ODEs), one line per solver."""
    from matplotlib.figure import Figure

    families = {_family(n) for n, _, _ in results}
    if families == {"pinn"} and all("error_history" in s.stats for _, s, _ in results):
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        for name, sol, _ in results:
            st = sol.stats
            ax1.semilogy(st["time_history"], st["error_history"], marker=".", label=name)
            ax2.semilogy(np.arange(1, st["loss_history"].size + 1), st["loss_history"], label=name)
        ax1.set(xlabel="training time [s] (compilation excluded)", ylabel="relative L2 error",
                title="test error")
        ax2.set(xlabel="optimiser step", ylabel="loss", title="training loss")
        ax1.legend()
        ax2.legend()
        fig.suptitle(f"{problem_name}: " + " vs ".join(n for n, _, _ in results))
        return fig
    if families == {"ode"}:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        for name, sol, extra in results:
            if not sol.successful:
                continue
            ref = reference_solution(sol.problem, extra["ts"])
            err = np.linalg.norm(_flatten_ys(sol.ys) - ref, axis=1) / max(np.linalg.norm(ref), 1e-300)
            # exact zeros (e.g. at t0) have no logarithm: leave them out rather than plot 1e-300
            ax.semilogy(extra["ts"], np.where(err > 0, err, np.nan), label=name)
        ax.set(xlabel="t", ylabel="|y - y_ref| / ||y_ref||", title=f"{problem_name}: error against the reference")
        ax.legend()
        return fig
    return None
