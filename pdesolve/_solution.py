"""`Solution`, the result type of every pdesolve solver: `ODESolution` or `FieldSolution`."""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._step_options import StepOptions
from ._results import RESULTS, is_successful
from ._validation import is_concrete


class Solution(eqx.Module):
    """What `pdesolve.solve` returns, for every solver: an `ODESolution` (ODE solvers) or a
    `FieldSolution` (PDE solvers). `isinstance(sol, pds.Solution)` holds for both.

    **Fields (both kinds):**

    - `ts`: saved times (see `SaveAt`), or `None` for steady problems.
    - `ys`: saved states with a leading time axis: ODE states, network parameters θ(t) for
      NeuralIVP, final parameters for PINNs, nodal values for MethodOfLines.
    - `stats`: dict of counters and histories: `num_steps`, `num_accepted_steps`,
      `num_rejected_steps`, `num_fevals`, and solver-specific entries (linear-solve
      iterations, restarts, loss history, wall time, ...).
    - `result`: a `RESULTS` member; `successful` is `result` being `RESULTS.successful` or
      `RESULTS.event_occurred`.
    - `problem`, `solver`: what was solved, and how.
    - `interpolation`: with `SaveAt(dense=True)`, the accepted steps' interpolating
      polynomials (`pdesolve._dense.DenseInterpolation`); otherwise `None`.
    - `events`: with `solve(..., event=...)`, what the events found (`event_time`,
      `event_state`, `event_index`, `event_times`); otherwise `None`.

    **A pytree:** the arrays of `problem`, `solver` and the evaluator are leaves and their
    functions (vector fields) static, so a solution can be returned from `jax.jit`- and
    `jax.vmap`-ed functions; under `vmap` every leaf — `result` and `stats` included — has
    the batch axis, one entry per member.
    """

    ts: Any
    ys: Any
    stats: dict
    result: RESULTS
    interpolation: Any
    events: Any
    _dynamic: Any
    _static: Any = eqx.field(static=True)
    evaluation: eqx.AbstractClassVar[str]  # how to evaluate it, for the repr

    def _meta(self):
        return eqx.combine(self._dynamic, self._static)

    @property
    def problem(self):
        return self._meta()[0]

    @property
    def solver(self):
        return self._meta()[1]

    @property
    def evaluator(self):
        """What `evaluate(t)` (ODEs) or `sol(x, t)` (fields) calls: an equinox module."""
        return self._meta()[2]

    def __repr__(self):
        parts = [f"{name}={eqx.tree_pformat(value)}" for name, value in
                 (("ts", self.ts), ("ys", self.ys), ("result", self.result), ("solver", self.solver))]
        parts.append(f"problem={type(self.problem).__name__}(...)")
        parts.append(f"stats={{{', '.join(self.stats)}}}")
        parts.append(f"evaluate as {self.evaluation}")
        return f"{type(self).__name__}(" + ", ".join(parts) + ")"

    @property
    def successful(self):
        """`result` is `successful`, or `event_occurred` (a terminal event ended the solve)."""
        return is_successful(self.result)

    def _events(self):
        if self.events is None:
            raise AttributeError("This solve had no events; pass solve(..., event=pds.Event(...)).")
        return self.events

    @property
    def event_time(self):
        """The time at which a terminal event ended the solve (`inf` if none did)."""
        return self._events().time

    @property
    def event_state(self):
        """The state at `event_time` (NaN if no terminal event fired)."""
        return self._events().state

    @property
    def event_index(self):
        """Which of the events (their order in `event=`) ended the solve; −1 if none."""
        return self._events().index

    @property
    def event_times(self):
        """Recorded crossing times, `(n_events, max_steps)` with `inf` padding (terminal
        crossings included); `stats["num_events"]` holds the counts."""
        return self._events().times


def _fill(sol, ts, ys, stats, result, problem, solver, evaluator, interpolation, events):
    """The fields of a solution (called from the final classes' `__init__`); the arrays of
    `problem`, `solver` and `evaluator` become leaves, the rest static."""
    sol.ts = ts
    sol.ys = ys
    sol.stats = stats
    sol.result = result
    sol.interpolation = interpolation
    sol.events = events
    sol._dynamic, sol._static = eqx.partition((problem, solver, evaluator), eqx.is_array)


class ODESolution(Solution):
    """The solution of an ODE solve (explicit RK, ReversibleRK, IMEXRK, ...).

    **Evaluation:** `sol.evaluate(t)`: with `SaveAt(dense=True)` the dense output at a
    scalar or an array of times (shape `t.shape + state shape`); otherwise it re-integrates
    from the nearest saved state at or before a scalar `t` with the same solver,
    controller and adjoint (the solver's accuracy, a solve per call).
    """

    evaluation: ClassVar[str] = "sol.evaluate(t)"

    def __init__(self, ts, ys, stats, result, problem, solver, evaluator, interpolation=None, events=None):
        _fill(self, ts, ys, stats, result, problem, solver, evaluator, interpolation, events)

    def evaluate(self, t):
        """The ODE state at time `t` inside the solved interval: a scalar, or (with
        `SaveAt(dense=True)`) an array of times, giving states with `t`'s shape in front."""
        if self.interpolation is not None:
            return self.interpolation.evaluate(t)
        if is_concrete(t) and np.ndim(t) != 0:
            raise ValueError(
                f"evaluate(t) without dense output takes a scalar time; got shape {np.shape(t)}. "
                "Solve with saveat=pds.SaveAt(dense=True) to evaluate at an array of times, or use jax.vmap."
            )
        return self.evaluator(self, t)


class FieldSolution(Solution):
    """The solution of a PDE solve (NeuralIVP, DTPINN, PINN, MethodOfLines): a field.

    **Evaluation:** `sol(x)` (steady problems) or `sol(x, t)` (evolution problems) at points
    `x` of shape `(d,)` or `(n, d)`; `t` defaults to the last saved time. For
    `MethodOfLines` with `SaveAt(dense=True)`, `sol.interpolation` holds the nodal values'
    dense output.
    """

    evaluation: ClassVar[str] = "sol(x) or sol(x, t)"

    def __init__(self, ts, ys, stats, result, problem, solver, evaluator, interpolation=None, events=None):
        _fill(self, ts, ys, stats, result, problem, solver, evaluator, interpolation, events)

    def __call__(self, x, t=None):
        """The learned field at points `x` (`(d,)` or `(n, d)`) and time `t`."""
        return self.evaluator(self, x, t)


def first_saved_index_at_or_before(ts, t, forward: bool):
    """Index of the last finite saved time not after `t` (in the solve's direction)."""
    ts = jnp.asarray(ts)
    valid = jnp.isfinite(ts) & (ts <= t if forward else ts >= t)
    idx = jnp.where(valid, jnp.arange(ts.shape[0]), -1)
    return jnp.max(idx)


def tree_index(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


class _Reintegrate(eqx.Module):
    """`evaluate(t)` for ODE solutions: re-solve from the last saved state at or before `t`
    with the options of the original solve."""

    options: StepOptions

    def __call__(self, sol, t):
        from ._problems import remake
        from ._saveat import SaveAt
        from ._solve import solve

        problem = sol.problem
        t0 = problem.tspan[0]
        forward = not problem.backward
        if is_concrete((t, problem.tspan)):
            lo, hi = sorted((float(t0), float(problem.tspan[1])))
            tt = np.asarray(t, dtype=float)
            if tt.ndim != 0:
                raise ValueError(f"evaluate(t) takes a scalar time; got shape {tt.shape} (use jax.vmap for several).")
            if not (lo <= float(tt) <= hi):
                raise ValueError(
                    f"evaluate(t): t = {float(tt)} is outside the solved interval tspan = "
                    f"({float(t0)}, {float(problem.tspan[1])}); solve over an interval that "
                    "contains it (pds.remake(problem, tspan=...))."
                )
        t = jnp.asarray(t, jnp.result_type(sol.ts))
        i = first_saved_index_at_or_before(sol.ts, t, forward)
        start_t = jnp.where(i >= 0, sol.ts[jnp.maximum(i, 0)], t0)
        start_y = jax.tree.map(
            lambda ys, y0: jnp.where(i >= 0, ys[jnp.maximum(i, 0)], y0), sol.ys, problem.y0
        )
        # Integrate at least an epsilon so the sub-problem's tspan is never empty; an exact
        # hit on a saved time returns the saved state.
        sub = remake(problem, y0=start_y, tspan=(start_t, jnp.where(t == start_t, t + (1 if forward else -1), t)))
        o = self.options
        end = solve(sub, sol.solver, saveat=SaveAt(t1=True), dt0=o.dt0, controller=o.controller,
                    max_steps=o.max_steps, adjoint=o.adjoint)
        return jax.tree.map(lambda a, b: jnp.where(t == start_t, b, a[-1]), end.ys, start_y)


def ode_solution(ts, ys, stats, result, problem, solver, options: StepOptions, outputs=None) -> ODESolution:
    """The `ODESolution` of an ODE solve: `evaluate(t)` uses the dense output when the solve
    kept one (`outputs["interpolation"]`), else re-integrates by the same options;
    `outputs["events"]` are the events' findings."""
    outputs = outputs or {}
    return ODESolution(
        ts=ts,
        ys=ys,
        stats=stats,
        result=result,
        problem=problem,
        solver=solver,
        evaluator=_Reintegrate(options),
        interpolation=outputs.get("interpolation"),
        events=outputs.get("events"),
    )
