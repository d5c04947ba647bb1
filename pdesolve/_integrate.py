"""The time-stepping loop shared by every time-stepping solver (private).

A solver supplies an `AbstractStepper` (one step of its method); this module supplies
step-size control, clipping to saved times, saving, statistics, failure codes, the
progress bar, and differentiation as the solve's `adjoint` says (`pdesolve._adjoint`):
recursive checkpointing (`equinox.internal.while_loop(kind="checkpointed")`, Stumm–Walther
online checkpointing; memory holds `checkpoints` copies of the loop state, not steps x
stages), a bounded loop (`DirectAdjoint`: forward and reverse mode) or a plain
`lax.while_loop` (`ForwardMode`).

Gradient hygiene: the step-size controller never sees a differentiated value (its inputs
and its proposal are `stop_gradient`-ed), so save-only iterations at `dt = 0`, rejected
steps and the idle iterations of finished members of a `vmap`-ed batch cannot put
`0 * inf = NaN` into the backward pass (e.g. through `sqrt` of a zero error norm).
"""

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np

from ._adjoint import ForwardMode
from ._dense import DenseInterpolation, hermite_coefficients
from ._events import event_carry, event_finish, event_step
from ._progress import ProgressMeter
from ._results import RESULTS, is_successful
from ._time_direction import TimeDirection
from ._saveat import SaveAt
from ._step_options import StepOptions
from ._validation import check_int, is_concrete


_FORWARD_ONLY = (
    "pdesolve: solve(..., adjoint=pds.ForwardMode()) supports forward mode only (jax.jvp, "
    "jax.jacfwd). For jax.grad / jax.jacrev use the default pds.RecursiveCheckpointAdjoint(), "
    "or pds.DirectAdjoint() for both modes (docs/gradients.md)."
)


class AbstractStepper(eqx.Module):
    """One step of a one-step method (internal interface).

    * `method`: what is stepped (a tableau, a reversible solver), whose `order` (classical)
      and `error_order` (`None` without an error estimate) are the stepper's.
    * `init(f, t0, y0) -> state`: per-solve state (e.g. a FSAL cache).
    * `step(f, t, dt, y, state) -> (y_next, y_error, state_next, result)`; `state_next` is
      kept only if the step is accepted; `result` is a `RESULTS` code, not `successful`
      when the step failed for a reason other than a non-finite state (e.g. an inner
      linear solve) — a failed step is rejected and its code ends the solve.
    * `dense_step(...)`: `step` plus the step's interpolating polynomial (`pdesolve._dense`:
      coefficients in `θ = (t' − t)/dt`, stacked per leaf), at `dense_fevals` extra
      evaluations of `f`; `hermite_dense_step` is the cubic Hermite choice for methods
      without a continuous extension of their own.
    * `init_fevals` / `step_fevals`: static evaluation counts, for `stats`.
    """

    method: eqx.AbstractVar[Any]  # the method stepped: has `order` and `error_order`

    @property
    def order(self) -> int:
        return self.method.order

    @property
    def error_order(self) -> int | None:
        return self.method.error_order

    @property
    @abc.abstractmethod
    def init_fevals(self) -> int: ...

    @property
    @abc.abstractmethod
    def step_fevals(self) -> int: ...

    @property
    @abc.abstractmethod
    def dense_fevals(self) -> int: ...

    @abc.abstractmethod
    def init(self, f: Callable, t0, y0) -> Any: ...

    @abc.abstractmethod
    def step(self, f: Callable, t, dt, y, state) -> tuple[Any, Any, Any, RESULTS]: ...

    @abc.abstractmethod
    def dense_step(self, f: Callable, t, dt, y, state) -> tuple[Any, Any, Any, RESULTS, Any]: ...


#: Extra evaluations of `f` per step of `hermite_dense_step`.
HERMITE_FEVALS = 2


class AbstractStatelessStepper(AbstractStepper):
    """A stepper that carries no state between steps (no FSAL cache: `init` returns `None`
    at no cost) and has no continuous extension of its own (dense output by
    `hermite_dense_step`)."""

    @property
    def init_fevals(self) -> int:
        return 0

    @property
    def dense_fevals(self) -> int:
        return HERMITE_FEVALS

    def init(self, f: Callable, t0, y0) -> None:
        return None

    def dense_step(self, f: Callable, t, dt, y, state):
        return hermite_dense_step(self, f, t, dt, y, state)


def hermite_dense_step(stepper: AbstractStepper, f: Callable, t, dt, y, state):
    """`stepper.step` plus the cubic Hermite interpolant of the step's ends, with `f`
    evaluated at both (`HERMITE_FEVALS` = 2 extra evaluations): third-order dense output for
    any one-step method."""
    y_next, y_error, state_next, result = stepper.step(f, t, dt, y, state)
    coeffs = hermite_coefficients(y, y_next, f(t, y), f(t + dt, y_next), jnp.asarray(dt))
    return y_next, y_error, state_next, result, coeffs


# Consecutive non-finite candidates after which an adaptive solve ends with `nonfinite`.
_NONFINITE_REJECTIONS = 20


def _tree_where(pred, a, b):
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), a, b)


def _all_finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _tree_fill(tree, n, value):
    return jax.tree.map(lambda x: jnp.full((n,) + jnp.shape(x), value, jnp.result_type(x)), tree)


def assemble_saved(saveat: SaveAt, start, at_ts, at_steps, end, dtype):
    """Concatenate the saved outputs in the order `t0`, `ts`, `steps`, `t1`.

    `start` and `end` are `(t, y)` pairs; `at_ts` and `at_steps` are `(ts, ys)` with a
    leading time axis, or `None` when not saved.
    """
    ts_parts, ys_parts = [], []
    for flag, part in ((saveat.t0, start), (True, at_ts), (True, at_steps), (saveat.t1, end)):
        if not flag or part is None:
            continue
        t, y = part
        if part is start or part is end:
            t, y = jnp.asarray(t, dtype)[None], jax.tree.map(lambda x: x[None], y)
        ts_parts.append(jnp.asarray(t, dtype))
        ys_parts.append(y)
    return jnp.concatenate(ts_parts), jax.tree.map(lambda *xs: jnp.concatenate(xs), *ys_parts)


def _xp(*values):
    """`jax.numpy` for arrays and tracers, NumPy for host scalars (no dispatch per call)."""
    return jnp if any(isinstance(v, jax.Array) for v in values) else np


def clip_to_target(t, dt, target, eps):
    """The step from `t` towards the next saved time or `t1` (`target`) for a proposal `dt`.

    Shared by every time stepper (the compiled loop below and NeuralIVP's host loop, on
    arrays or host floats): a proposal that reaches the target, or falls short of it by
    less than `64 eps |target|`, is clipped to land on it exactly.
    Returns `(step, hit, clipped)`: the step to attempt, whether it lands on the target,
    and whether it is shorter than the proposal.
    """
    remaining = target - t
    hit = dt >= remaining - 64 * eps * abs(target)
    return _xp(t, dt, target).where(hit, remaining, dt), hit, hit & (remaining < dt)


def proposal_after_clip(controller, accepted_clipped, dt_next, dt_proposed):
    """The next step size after an accepted step: the controller's `dt_next`, or (for a
    controller with `resume_after_clip`) at least the proposal `dt_proposed` that a
    clip to a saved time shortened, so saving does not slow the solve down."""
    if not controller.resume_after_clip:
        return dt_next
    xp = _xp(accepted_clipped, dt_next, dt_proposed)
    return xp.where(accepted_clipped, xp.maximum(dt_next, dt_proposed), dt_next)


def nonfinite_rejections(finite, zero, dt, t, target, n_bad, n_nonfinite, eps):
    """Bookkeeping of non-finite candidate steps under an adaptive controller (which rejects
    them and shrinks the step). Shared by the compiled loop and NeuralIVP's host loop.

    Returns `(n_bad, n_nonfinite, give_up)`: consecutive and total non-finite candidates, and
    whether to end the solve with `RESULTS.nonfinite` — after `_NONFINITE_REJECTIONS` in a
    row (steps shrunk by ~factormin**20: the vector field itself is non-finite here, not the
    step too large), or at once when the step is too small to advance `t` (the field turns
    non-finite just ahead; the solve would creep towards it until `max_steps`).
    """
    xp = _xp(finite, dt, t, target, n_bad)
    bad = ~finite & ~zero
    n_bad = xp.where(bad, n_bad + 1, 0)
    n_nonfinite = n_nonfinite + xp.asarray(bad).astype(np.int32)
    stuck = bad & (dt <= 256 * eps * xp.maximum(abs(t), abs(target)))
    return n_bad, n_nonfinite, (n_bad >= _NONFINITE_REJECTIONS) | stuck


def time_dtype(*ts):
    return jnp.result_type(*ts, float)


def validate(stepper, options: StepOptions, t0, t1, *, backward):
    """Host-side checks of a time-stepping solve's options (skipped for traced values).

    Solvers call this before entering `jit`, where the values are still concrete.
    """
    saveat, controller, max_steps = options.saveat, options.controller, options.max_steps
    check_int("max_steps", max_steps, 1, hint="It bounds the number of attempted steps (accepted + rejected).")
    if controller.requires_error_estimate and stepper.error_order is None:
        raise ValueError(
            f"{type(controller).__name__} needs an embedded error estimate, which this method "
            "does not have. Use ConstantStepSize (with dt0) or an adaptive method such as "
            "Dopri5, Tsit5, Bosh3 or Heun."
        )
    controller.check(t0, t1)
    if saveat.ts is not None and is_concrete((saveat.ts, t0, t1)):
        direction = TimeDirection(backward)
        ss = direction.times(np.asarray(saveat.ts, dtype=float))
        s0, s1 = direction.times(float(t0)), direction.times(float(t1))
        if ss.size and (ss[0] < s0 or ss[-1] > s1 or np.any(np.diff(ss) < 0)):
            raise ValueError(
                "SaveAt(ts=...) must lie inside tspan and be ordered in the direction of "
                f"integration; got ts from {float(saveat.ts[0])} to {float(saveat.ts[-1])} "
                f"for tspan=({float(t0)}, {float(t1)})."
            )


def check_adaptive_dtype(y0) -> None:
    """Refuse states below float32 for adaptive stepping (checked at trace time).

    In float16 the embedded error estimate of a step is dominated by round-off (eps ≈ 1e-3),
    so every step is rejected; in bfloat16 (eps ≈ 8e-3) steps are accepted with errors of
    several percent that the estimate does not see.
    """
    low = sorted({str(jnp.result_type(x)) for x in jax.tree.leaves(y0)
                  if jnp.issubdtype(jnp.result_type(x), jnp.inexact) and jnp.finfo(jnp.result_type(x)).bits < 32})
    if low:
        raise TypeError(
            f"The initial state has dtype {', '.join(low)}: adaptive step-size control needs at "
            "least float32 (below it the error estimate is swamped by round-off, so steps are "
            "all rejected or accepted with errors of percents). Cast y0 to float32 or float64 "
            "(and let the vector field compute in it), or use fixed steps: "
            "controller=pds.ConstantStepSize() with dt0=..."
        )


# --- one iteration of the stepping loop, in pieces that every time stepper shares -------------
#
# `integrate` runs plan -> step -> conclude inside one compiled while loop; NeuralIVP runs the
# same three inside one compiled call per step from its host loop (its steps take seconds,
# and between them it may restart, raise its regularisation or write a checkpoint). The
# carry is a dict: `t`, `y`, `dt`, `ctrl`, `step` (the stepper's state), counters, `result`,
# the saved-output buffers, and whatever the caller adds (it is passed through).


def initial_carry(t, y, dt, ctrl, step, result, *, n_ts: int, n_steps: int = 0, n_record: int = 0,
                  dtype, token=None, n_dense: int = 0, dense_like=None):
    """The loop state at the start of a solve (`t`, `y` in the integrator's forward time).

    `n_ts`: number of `SaveAt(ts)` entries (their states are buffered as they are reached);
    `n_steps`: size of the `SaveAt(steps=True)` buffers (`max_steps`, or 0); `n_record`: size
    of the accepted-step record (`record_steps`), or 0; `n_dense`: size of the dense-output
    buffers (`SaveAt(dense=True)`: `max_steps`, or 0), whose coefficients are shaped like
    `dense_like` (a pytree of `ShapeDtypeStruct`s)."""
    return dict(
        t=t,
        y=y,
        dt=dt,
        ctrl=ctrl,
        step=step,
        n_acc=jnp.zeros((), jnp.int32),
        n_rej=jnp.zeros((), jnp.int32),
        n_iter=jnp.zeros((), jnp.int32),
        save_idx=jnp.zeros((), jnp.int32),
        result=result,
        n_bad=jnp.zeros((), jnp.int32),
        n_nonfinite=jnp.zeros((), jnp.int32),
        token=jnp.zeros((), jnp.int32) if token is None else token,
        ys_ts=_tree_fill(y, n_ts, jnp.inf),
        ts_steps=jnp.full((n_steps,), jnp.inf, dtype),
        ys_steps=_tree_fill(y, n_steps, jnp.inf),
        step_t=jnp.full((n_record,), jnp.inf, dtype),
        step_dt=jnp.full((n_record,), jnp.inf, dtype),
        save_step=jnp.zeros((n_ts if n_record else 0,), jnp.int32),
        dense_t=jnp.full((n_dense,), jnp.inf, dtype),
        dense_dt=jnp.zeros((n_dense,), dtype),
        dense_c=None if dense_like is None else jax.tree.map(
            lambda a: jnp.zeros((n_dense,) + a.shape, a.dtype), dense_like),
    )


def still_running(c, s1, n_ts: int, max_steps: int):
    """Whether the loop goes on: times or saves left, no failure, steps left."""
    more = (c["t"] < s1) | (c["save_idx"] < n_ts)
    return more & (c["result"] == RESULTS.successful) & (c["n_acc"] + c["n_rej"] < max_steps)


def plan_step(c, save_s, s1, eps) -> dict:
    """Where the next step goes: the next saved time still pending (or `s1`) is its
    `target`; the controller's proposal `c["dt"]` is clipped to land on it
    (`clip_to_target`). A saved time equal to the current time gives a save-only
    iteration (`zero`, `dt = 0`: the step's result is then ignored, so a caller whose step
    is costly may skip computing it)."""
    t, save_idx = c["t"], c["save_idx"]
    n_ts = int(save_s.shape[0])
    pending = save_idx < n_ts
    target = s1 if n_ts == 0 else jnp.where(pending, save_s[jnp.minimum(save_idx, n_ts - 1)], s1)
    zero = target - t <= 0
    dt, hit, clipped = clip_to_target(t, c["dt"], target, eps)
    dt = jnp.where(zero, jnp.zeros_like(dt), dt)
    return dict(target=target, zero=zero, dt=dt, hit=hit, clipped=clipped, pending=pending, n_ts=n_ts)


def conclude_step(c, plan, y_next, y_error, step_next, step_result, *, controller, error_order, eps,
                  sign=1.0, save_steps: bool = False, record_steps: bool = False, dense=None) -> dict:
    """The loop state after the step `plan` describes produced `(y_next, y_error,
    step_next, step_result)`: the controller's verdict and next proposal (never
    differentiated), failure codes, the non-finite bookkeeping, saving, counters.

    A step that failed (`step_result` not successful) is rejected with its code; `dt` and
    the controller state stay as they were, so a caller that can repair the cause (e.g.
    NeuralIVP's restart) retries the same step after resetting `result`. `dense`: the
    step's interpolating polynomial, stored with the step when it is accepted."""
    t, y, save_idx = c["t"], c["y"], c["save_idx"]
    target, zero, dt, hit, clipped, pending = (plan[k] for k in ("target", "zero", "dt", "hit", "clipped", "pending"))
    # Step sizes are not differentiated: the controller sees no tangent or cotangent.
    sg = jax.lax.stop_gradient
    accept, dt_next, ctrl_next, result = controller.adapt(
        sg(t), sg(dt), sg(y), sg(y_next), sg(y_error), error_order, sg(c["ctrl"])
    )
    dt_next, ctrl_next = sg(dt_next), sg(ctrl_next)
    step_failed = step_result != RESULTS.successful
    result = RESULTS.where(step_failed, step_result, result)
    accept = accept & ~step_failed
    accept = accept | zero
    # After a step shortened by clipping, resume from the controller's earlier proposal.
    dt_next = proposal_after_clip(controller, accept & clipped, dt_next, c["dt"])
    keep = zero | step_failed
    dt_next = jnp.where(keep, c["dt"], dt_next)
    ctrl_next = _tree_where(keep, c["ctrl"], ctrl_next)
    result = RESULTS.where(zero, RESULTS.successful, result)
    finite = _all_finite(y_next)
    result = RESULTS.where(accept & ~finite & (result == RESULTS.successful), RESULTS.nonfinite, result)
    accept = accept & finite
    # Adaptive controllers reject non-finite candidates (see nonfinite_rejections); with
    # fixed steps a non-finite step is `nonfinite` above.
    if controller.requires_error_estimate:
        n_bad, n_nonfinite, give_up = nonfinite_rejections(
            finite, zero, dt, t, target, c["n_bad"], c["n_nonfinite"], eps
        )
        result = RESULTS.where(give_up & (result == RESULTS.successful), RESULTS.nonfinite, result)
    else:
        n_bad, n_nonfinite = c["n_bad"], c["n_nonfinite"]
    t_new = jnp.where(accept, jnp.where(hit, target, t + dt), t)
    y_new = _tree_where(accept, y_next, y)
    step_new = _tree_where(accept, step_next, c["step"])
    taken = accept & ~zero
    save_now = accept & hit & pending
    ys_ts = c["ys_ts"]
    if plan["n_ts"]:
        # Buffers are not pytree leaves: map over the state, matching buffers as prefixes.
        ys_ts = jax.tree.map(lambda v, buf: eqxi.buffer_at_set(buf, save_idx, v, pred=save_now), y_new, ys_ts)
    ts_steps, ys_steps = c["ts_steps"], c["ys_steps"]
    if save_steps:
        ts_steps = eqxi.buffer_at_set(ts_steps, c["n_acc"], sign * t_new, pred=taken)
        ys_steps = jax.tree.map(lambda v, buf: eqxi.buffer_at_set(buf, c["n_acc"], v, pred=taken), y_new, ys_steps)
    step_t, step_dt, save_step = c["step_t"], c["step_dt"], c["save_step"]
    if record_steps:
        step_t = eqxi.buffer_at_set(step_t, c["n_acc"], t, pred=taken)
        step_dt = eqxi.buffer_at_set(step_dt, c["n_acc"], dt, pred=taken)
        if plan["n_ts"]:
            n_done = c["n_acc"] + taken.astype(jnp.int32)
            save_step = eqxi.buffer_at_set(save_step, save_idx, n_done, pred=save_now)
    dense_t, dense_dt, dense_c = c["dense_t"], c["dense_dt"], c["dense_c"]
    if dense is not None:
        dense_t = eqxi.buffer_at_set(dense_t, c["n_acc"], t, pred=taken)
        dense_dt = eqxi.buffer_at_set(dense_dt, c["n_acc"], dt, pred=taken)
        dense_c = jax.tree.map(lambda v, buf: eqxi.buffer_at_set(buf, c["n_acc"], v, pred=taken), dense, dense_c)
    return dict(
        c,
        dense_t=dense_t,
        dense_dt=dense_dt,
        dense_c=dense_c,
        t=t_new,
        y=y_new,
        dt=dt_next,
        ctrl=ctrl_next,
        step=step_new,
        n_acc=c["n_acc"] + taken.astype(jnp.int32),
        n_rej=c["n_rej"] + (~accept & ~zero).astype(jnp.int32),
        n_iter=c["n_iter"] + 1,
        save_idx=save_idx + save_now.astype(jnp.int32),
        result=result,
        n_bad=n_bad,
        n_nonfinite=n_nonfinite,
        ys_ts=ys_ts,
        ts_steps=ts_steps,
        ys_steps=ys_steps,
        step_t=step_t,
        step_dt=step_dt,
        save_step=save_step,
    )


def final_result(final, s1, n_ts: int):
    """The solve's `RESULTS` code from the final loop state: a solve that stopped short of
    `s1` (or of a saved time) without a failure ran out of steps — `nonfinite` when its last
    candidates (or at least half of its rejected ones) were non-finite, the real cause."""
    unfinished = (final["t"] < s1) | (final["save_idx"] < n_ts)
    mostly_nan = (final["n_bad"] > 0) | (2 * final["n_nonfinite"] >= jnp.maximum(final["n_rej"], 1))
    ran_out = RESULTS.where(mostly_nan, RESULTS.nonfinite, RESULTS.max_steps_reached)
    return RESULTS.where(unfinished & (final["result"] == RESULTS.successful), ran_out, final["result"])


def saved_output(saveat: SaveAt, t0, y0, final, n_ts: int, dtype, sign=1.0):
    """`(ts, ys)` of a solve from its final loop state, in the order `t0`, `ts`, `steps`,
    `t1`; `SaveAt(ts)` slots a failed solve never reached hold inf times (and inf states),
    as `steps=True` does."""
    steps = (final["ts_steps"], final["ys_steps"]) if saveat.steps else None
    ts_part = None
    if n_ts:
        reached = jnp.arange(n_ts) < final["save_idx"]
        ts_part = (jnp.where(reached, jnp.asarray(saveat.ts, dtype), jnp.inf), final["ys_ts"])
    return assemble_saved(saveat, (t0, y0), ts_part, steps, (sign * final["t"], final["y"]), dtype)


def integrate(
    f: Callable,
    stepper: AbstractStepper,
    t0,
    t1,
    y0,
    options: StepOptions,
    *,
    args: Any = None,
    backward: bool = False,
    record_steps: bool = False,
    mirrored_f: Callable | None = None,
    events: tuple = (),
):
    """Integrate `dy/dt = f(t, y, args)` from `t0` to `t1` with `stepper`.

    Returns `(ts, ys, stats, result)`, then a dict `outputs` when `saveat.dense` or `events`
    (`"interpolation"`: a `DenseInterpolation` of the accepted steps' polynomials, from
    `stepper.dense_step`; `"events"`: an `EventOutput`, see `pdesolve._events`), then a
    dict `record` when `record_steps=True`:
    `step_t`, `step_dt` (start time and size of each accepted step, in the integrator's
    forward time; `max_steps` scalars each, unused entries `inf`), `save_step` (number of
    accepted steps completed when each `SaveAt(ts)` entry was saved), the final state `y`
    and time `t`. Adjoint methods that reconstruct the trajectory use this record.

    Backward solves (`backward=True`, `t1 < t0`) are run as forward solves of the mirrored
    problem `s = -t`; `mirrored_f`, if given, is used instead of mirroring `f` here (it
    must already be `(s, y) -> dy/ds` in the integrator's time).

    `options` are the solve's `StepOptions`; their `adjoint` picks the loop. Times that are traced
    (computed inside `jit`) are checked at run time: an empty, reversed or non-finite
    `tspan`, or `SaveAt(ts)` out of order or outside `tspan`, ends the solve with
    `RESULTS.invalid_times` before any step (raised with `throw=True`).
    """
    validate(stepper, options, t0, t1, backward=backward)
    saveat, controller, dt0, adjoint = options.saveat, options.controller, options.dt0, options.adjoint
    max_steps, throw, progress = options.max_steps, options.throw, options.progress
    if controller.requires_error_estimate:
        check_adaptive_dtype(y0)
    dtype = time_dtype(t0, t1)
    direction = TimeDirection(backward)
    sign = direction.sign
    s0, s1 = direction.times(t0, dtype), direction.times(t1, dtype)

    if mirrored_f is not None:
        fwd = mirrored_f
    else:
        def fwd(s, y):
            return direction.field(f, s, y, args)

    if saveat.ts is not None:
        save_s = direction.times(saveat.ts, dtype)
    else:
        save_s = jnp.zeros((0,), dtype)
    n_ts = int(save_s.shape[0])
    times_ok = jnp.isfinite(s0) & jnp.isfinite(s1) & (s1 > s0)
    if n_ts:
        times_ok = times_ok & jnp.all(jnp.isfinite(save_s)) & (save_s[0] >= s0) & (save_s[-1] <= s1)
        if n_ts > 1:
            times_ok = times_ok & jnp.all(save_s[1:] >= save_s[:-1])
    times_ok = jax.lax.stop_gradient(times_ok)
    y0_ok = jax.lax.stop_gradient(_all_finite(y0))

    # Count the controller's own evaluations (e.g. automatic initial step) at trace time.
    n_init_calls = [0]

    def counted(s, y):
        n_init_calls[0] += 1
        return fwd(s, y)

    dt_init, ctrl_state = controller.init(counted, s0, s1, y0, dt0, args, stepper.error_order)
    dt_init, ctrl_state = jax.lax.stop_gradient((jnp.asarray(dt_init, dtype), ctrl_state))
    step_state = stepper.init(fwd, s0, y0)
    meter = ProgressMeter(progress)
    token = meter.open()

    need_dense = saveat.dense or bool(events)  # events are located on the step's polynomial
    coeff_like = None
    if need_dense:
        coeff_like = jax.eval_shape(lambda: stepper.dense_step(fwd, s0, jnp.asarray(1.0, dtype), y0, step_state)[4])
    dense_like = coeff_like if saveat.dense else None
    carry = initial_carry(
        s0, y0, dt_init, ctrl_state, step_state,
        RESULTS.where(times_ok, RESULTS.where(y0_ok, RESULTS.successful, RESULTS.nonfinite), RESULTS.invalid_times),
        n_ts=n_ts, n_steps=max_steps if saveat.steps else 0, n_record=max_steps if record_steps else 0,
        dtype=dtype, token=token, n_dense=max_steps if saveat.dense else 0, dense_like=dense_like,
    )
    if events:
        carry.update(event_carry(events, s0, y0, args, sign, max_steps, dtype, coeff_like))
    total_span = s1 - s0
    eps = jnp.finfo(dtype).eps

    def cond_fun(c):
        return still_running(c, s1, n_ts, max_steps)

    def body_fun(c):
        plan = plan_step(c, save_s, s1, eps)
        coeffs = None
        if need_dense:
            y_next, y_error, step_next, step_result, coeffs = stepper.dense_step(
                fwd, c["t"], plan["dt"], c["y"], c["step"])
        else:
            y_next, y_error, step_next, step_result = stepper.step(fwd, c["t"], plan["dt"], c["y"], c["step"])
        new = conclude_step(c, plan, y_next, y_error, step_next, step_result, controller=controller,
                            error_order=stepper.error_order, eps=eps, sign=sign, save_steps=saveat.steps,
                            record_steps=record_steps, dense=coeffs if saveat.dense else None)
        if events:
            new = event_step(events, c, new, plan, coeffs, args, sign)
        return dict(new, token=meter.update(c["token"], (new["t"] - s0) / total_span))

    def buffers(c):
        return (c["ys_ts"], c["ts_steps"], c["ys_steps"], c["step_t"], c["step_dt"], c["save_step"],
                c["dense_t"], c["dense_dt"], c["dense_c"])

    final = eqxi.while_loop(
        cond_fun,
        body_fun,
        carry,
        max_steps=max_steps + n_ts,
        buffers=buffers,
        kind=adjoint.loop_kind,
        checkpoints=adjoint.checkpoints,
    )
    meter.close(final["token"])
    if isinstance(adjoint, ForwardMode):  # reverse mode would fail deep in lax; say why here
        final = dict(final, y=eqxi.nondifferentiable_backward(final["y"], msg=_FORWARD_ONLY),
                     ys_ts=eqxi.nondifferentiable_backward(final["ys_ts"], msg=_FORWARD_ONLY),
                     ys_steps=eqxi.nondifferentiable_backward(final["ys_steps"], msg=_FORWARD_ONLY),
                     dense_c=eqxi.nondifferentiable_backward(final["dense_c"], msg=_FORWARD_ONLY))
    event_out = None
    if events:  # the terminal event located once, on the step that fired it
        final, event_out = event_finish(events, final, args, sign, n_ts=n_ts, save_steps=saveat.steps)
    n_steps = final["n_acc"] + final["n_rej"]
    result = final_result(final, s1, n_ts)
    ts, ys = saved_output(saveat, t0, y0, final, n_ts, dtype, sign)

    # Every loop iteration evaluates one step (save-only iterations at dt = 0 included).
    nfe_steps = (stepper.step_fevals + (stepper.dense_fevals if need_dense else 0)) * final["n_iter"]
    stats = dict(
        num_steps=n_steps,
        num_accepted_steps=final["n_acc"],
        num_rejected_steps=final["n_rej"],
        num_fevals=nfe_steps + stepper.init_fevals + n_init_calls[0],
        max_steps=max_steps,
        t_final=sign * final["t"],
    )
    if throw:
        ts, ys, stats = result.error_if((ts, ys, stats), ~is_successful(result))
    extra: tuple[dict[str, Any], ...] = ()  # (outputs,) with dense output or events
    if need_dense:
        outputs: dict[str, Any] = {}
        if saveat.dense:
            outputs["interpolation"] = DenseInterpolation(final["dense_t"], final["dense_dt"], final["dense_c"],
                                                          final["n_acc"], s0, final["t"], direction)
        if events:
            outputs["events"] = event_out
            stats = dict(stats, num_events=final["ev_count"])
        extra = (outputs,)
    if record_steps:
        record = dict(
            step_t=final["step_t"],
            step_dt=final["step_dt"],
            save_step=final["save_step"],
            n_acc=final["n_acc"],
            y=final["y"],
            t=final["t"],
        )
        return ts, ys, stats, result, *extra, record
    return ts, ys, stats, result, *extra
