"""`RESULTS`: the status codes every pdesolve solver reports."""

import warnings

import optimistix as optx


with warnings.catch_warnings():  # `nonfinite` is redefined on purpose: a message with remedies
    warnings.filterwarnings("ignore", message="Enumeration has duplicate incompatible values")

    class RESULTS(optx.RESULTS):  # pyright: ignore[reportGeneralTypeIssues]
        """Outcome of a solve, extending `optimistix.RESULTS` (which extends `lineax.RESULTS`).

        Members added here:

        * `dt_min_reached`: an adaptive controller rejected a step already at `dtmin`.
        * `linear_solve_failed`: a linear solve inside the solver did not converge or met a
          singular operator.
        * `event_occurred`: a terminal `pds.Event` ended the solve (a success:
          `Solution.successful` is true and `throw=True` does not raise).
        * `invalid_times`: `tspan` or `SaveAt(ts)` computed inside `jit` were invalid (checked
          at run time; outside `jit` the same inputs raise at once).
        * `reversible_drift`: the two copies `Y`, `Z` of a `ReversibleRK` solve drifted apart
          with constant steps (its parasitic mode grew); see docs/reversible.md.

        `nonfinite` (a NaN or inf in the state or the vector field) is inherited from
        optimistix with a message that says what to check. An adaptive solve reports it
        when the initial state is non-finite, or when non-finite candidates keep being
        rejected (20 in a row, or at a step too small to advance `t`), so a vector field
        that turns NaN mid-solve is not reported as `max_steps_reached`.

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
        reversible_drift = (
            "ReversibleRK: its two copies Y and Z of the solution drifted apart (relative "
            "drift above ReversibleRK(drift_tol=...)) with constant steps, so its parasitic "
            "mode is growing and the answer is wrong. The mode is stable when |mu| h < 1 - "
            "lambda for the fastest decaying rate mu of the problem: lower `dt0`, or lower "
            "`coupling` (lambda, e.g. 0.9; the reversible gradient then reverses fewer steps "
            "accurately, which its reconstruction check reports), or use "
            "controller=pds.PIDController(...), which shrinks the step to control the drift "
            "(docs/reversible.md)."
        )
        nonfinite = (
            "A NaN or inf appeared in the state or the vector field (with adaptive steps: even "
            "after the step was shrunk, so a too-large step is not the cause). Check the vector field and its "
            "parameters at the time reached (Solution.stats['t_final']; the error raised "
            "outside jit names it) and the initial state. If an explicit method blew up on a stiff "
            "problem, use an implicit one (pdesolve.IMEXRK); with IMEXRK, check the explicit part G."
        )


def is_successful(result):
    """`successful` or `event_occurred` (a solve ended by a terminal event)."""
    return (result == RESULTS.successful) | (result == RESULTS.event_occurred)
