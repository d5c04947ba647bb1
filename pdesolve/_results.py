"""`RESULTS`: the status codes every pdesolve solver reports."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx


with warnings.catch_warnings():  # `nonfinite` is redefined on purpose: a message with remedies
    warnings.filterwarnings("ignore", message="Enumeration has duplicate incompatible values")

    class RESULTS(optx.RESULTS):
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
        `throw=False` the member is returned as `Solution.result`. Compare members with `==`
        (`sol.result == pds.RESULTS.max_steps_reached`, also inside `jit`);
        `pds.result_code`, `pds.result_name` and `pds.result_message` give a member's integer
        code, name and message.
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


# The enumeration keeps its members by name (equinox's `_name_to_item`) and its messages by
# code (`_index_to_message`); only this module reads them. Each code has one name.
_NAMES: dict[int, str] = {int(item._value): name for name, item in RESULTS._name_to_item.items()}


def _check_member(result, who: str) -> None:
    if not isinstance(result, RESULTS):
        raise TypeError(f"{who} takes a pds.RESULTS member (e.g. `sol.result`); got {result!r}.")


def _scalar_code(result, who: str) -> int:
    _check_member(result, who)
    value = result._value
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{who} needs a concrete result, not one traced inside `jit`: return `sol.result` "
            "from the jitted function, or compare it there with `==`."
        )
    if np.ndim(value) != 0:
        raise ValueError(
            f"{who} takes the result of one solve; this one has batch shape {np.shape(value)}. "
            "Pick a member first (`jax.tree.map(lambda v: v[i], sol.result)`) or use "
            "`pds.result_code`."
        )
    return int(value)


def result_code(result) -> jax.Array:
    """The integer code of a `RESULTS` member, as an int32 array.

    Shaped like the member's batch (`()` for one solve, `(n,)` for a vmapped or ensemble
    solve) and traced under `jit`. `result_code(RESULTS.successful)` is 0. Codes are what
    per-step records store (e.g. NeuralIVP's `stats["cg_results"]`): compare them with
    `result_code(pds.RESULTS.successful)`.
    """
    _check_member(result, "result_code")
    return jnp.asarray(result._value)


def result_name(result) -> str:
    """The name of a concrete, unbatched `RESULTS` member, e.g. `"max_steps_reached"`."""
    return _NAMES[_scalar_code(result, "result_name")]


def result_message(result) -> str:
    """The message of a concrete, unbatched `RESULTS` member (what `throw=True` raises)."""
    return RESULTS._index_to_message[_scalar_code(result, "result_message")]
