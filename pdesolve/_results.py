"""`RESULTS`: the status codes every pdesolve solver reports."""

import optimistix as optx


class RESULTS(optx.RESULTS):  # pyright: ignore[reportGeneralTypeIssues]
    """Outcome of a solve, extending `optimistix.RESULTS` (which extends `lineax.RESULTS`).

    Members added here:

    * `dt_min_reached`: an adaptive controller rejected a step already at `dtmin`.
    * `linear_solve_failed`: a linear solve inside the solver did not converge or met a
      singular operator.
    * `event_occurred`: reserved for terminating events.
    * `invalid_times`: `tspan` or `SaveAt(ts)` computed inside `jit` were invalid (checked
      at run time; outside `jit` the same inputs raise at once).

    Inherited members include `successful`, `max_steps_reached`, `nonfinite` (a NaN or inf
    appeared in the state) and the lineax failure codes (`singular`, `breakdown`, ...).

    With `throw=True` a failed solve raises an error carrying the member's message; with
    `throw=False` the member is returned as `Solution.result`.
    """

    dt_min_reached = (
        "The step-size controller rejected a step at its minimum step size `dtmin`. The "
        "problem may be stiff or the solution may blow up: lower `dtmin`, loosen "
        "`rtol`/`atol`, or use an implicit method (pdesolve.IMEXRK)."
    )
    linear_solve_failed = (
        "A linear solve failed (singular operator, breakdown, or the iterative solver hit "
        "its maximum number of steps). Check the operator and the step size, or use a "
        "different linear solver."
    )
    event_occurred = "A terminating event occurred."
    invalid_times = (
        "The times of the solve are invalid: `tspan` must be finite and non-empty in the "
        "direction of integration (t1 > t0, or t1 < t0 with backward=True), and SaveAt(ts=...) "
        "finite, ordered in that direction and inside tspan. These were computed inside jit, "
        "so they could only be checked at run time: check how tspan and ts are computed "
        "(e.g. sort ts, clip it to tspan)."
    )
