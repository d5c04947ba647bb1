"""`plot` itself: argument checks, and the figure chosen by the type of `sol`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._solution import FieldSolution, ODESolution, Solution
from .._validation import check_int
from ._common import _matplotlib
from ._fields import _plot_field
from ._histories import _plot_histories
from ._odes import _plot_ode

_DPI = 120


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
      sequence). NeuralIVP and MethodOfLines solutions are stored at their saved times only,
      so each must be one of `sol.ts`; space-time PINNs accept any time in `problem.tspan`. Default: up to
      four times spread over the saved times / `tspan`. Steady problems and ODEs take none.
    - `component`: which component of a vector-valued field to draw (default 0); for ODEs the
      state components to draw (an int or a sequence of ints indexing the flattened state;
      default all).
    - `path`: also save the figure there (format from the suffix, e.g. `.png`).
    - `resolution`: grid points per axis for field maps (default 120 in 2-D, 400 in 1-D).
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

    **Errors:** `TypeError` when `sol` is neither a Solution nor a dict; `ValueError` for a
    Solution that is neither a `FieldSolution` nor an `ODESolution`, a `component` out of
    range, `times` outside the saved range or given where there are no times, or a dict
    without histories.
    """
    Figure, Circle = _matplotlib()
    dpi = check_int("dpi", dpi, 1, hint="It is the figure's resolution in dots per inch.")
    if resolution is not None:
        resolution = check_int("resolution", resolution, 2, hint="It is the number of grid points per axis of the field maps.")
    if isinstance(sol, dict):
        if times is not None or component is not None:
            raise ValueError("`times` and `component` apply to Solutions, not to a stats dict.")
        fig = _plot_histories(Figure, sol, title)
    elif isinstance(sol, FieldSolution):
        fig = _plot_field(Figure, Circle, sol, times, component, resolution, show_exact, title)
    elif isinstance(sol, ODESolution):
        if times is not None:
            raise ValueError(
                "`times` selects snapshots of PDE field solutions; an ODE solution is drawn "
                "at its saved times (choose them with SaveAt(ts=...))."
            )
        fig = _plot_ode(Figure, sol, component, title)
    elif isinstance(sol, Solution):
        raise ValueError(
            f"`sol` is a {type(sol).__name__}; pds.plot draws FieldSolution and ODESolution "
            "solutions (and stats dicts)."
        )
    else:
        raise TypeError(
            f"`sol` must be a pds.Solution (from pds.solve) or a dict of histories such as "
            f"sol.stats; got {type(sol).__name__}."
        )
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig
