"""Events: stop (or record) a solve where a condition of the state crosses zero.

`pds.Event(cond_fn, terminal=True, direction=None)`, passed as `solve(..., event=...)` (one
event or a sequence). After every accepted step the integrator evaluates each `cond_fn` at
the step's end; a sign change since the step's start (in the requested `direction`) means a
crossing inside the step, which is located by a root find (`optimistix.Bisection` on
`θ ∈ [0, 1]`) on the step's dense-output polynomial (`pdesolve._dense`) — no further
evaluations of the vector field. The earliest crossing of a terminal event ends the solve
there with `RESULTS.event_occurred` (a success); non-terminal events only record their
crossing times.

Gradients: the root find is differentiated by the implicit function theorem
(optimistix's `ImplicitAdjoint`): `dt*/dp = −(∂g/∂p)/(dg/dt)` along the interpolant, so the
event time and the state there are differentiable with respect to the problem's parameters
and `y0`, as in diffrax.
"""

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import optimistix as optx

from ._dense import horner
from ._results import RESULTS


class Event(eqx.Module):
    """A condition whose zero crossings stop (or are recorded by) a time-stepping solve.

    **Arguments:**

    - `cond_fn`: `cond_fn(t, y, args) -> scalar`, `t` in the problem's time, `y` the state,
      `args` the problem's `args`. A crossing is a change of sign between the ends of an
      accepted step (a start exactly at zero does not count, so a solve restarted at an
      event does not stop at once).
    - `terminal`: end the solve at the first crossing (`RESULTS.event_occurred`, which
      counts as successful); `False` records the crossing times only.
    - `direction`: `None` (both), `+1` (upward: from negative to positive) or `-1`
      (downward).

    Located on the step's dense-output polynomial, so the event time has the interpolant's
    accuracy (docs/dense-output.md); a sign change that happens and undoes itself inside
    one step is not seen (lower `dtmax` if conditions oscillate faster than the steps).
    """

    cond_fn: Callable
    terminal: bool = eqx.field(static=True, default=True)
    direction: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if not callable(self.cond_fn):
            raise TypeError(f"Event(cond_fn=...) must be callable `(t, y, args) -> scalar`; got {self.cond_fn!r}.")
        if self.direction not in (None, 1, -1):
            raise ValueError(f"Event(direction=...) must be None, +1 or -1; got {self.direction!r}.")


def check_events(event) -> tuple[Event, ...]:
    """`solve(..., event=...)` as a tuple of `Event`s (an `Event`, a sequence, or `None`)."""
    if event is None:
        return ()
    events = (event,) if isinstance(event, Event) else tuple(event) if isinstance(event, Sequence) else None
    if events is None or not events or not all(isinstance(e, Event) for e in events):
        raise TypeError(f"`event` must be a pds.Event or a non-empty sequence of them; got {event!r}.")
    return events


def _conditions(events, t, y, args, dtype):
    values = []
    for e in events:
        g = jnp.asarray(e.cond_fn(t, y, args))
        if g.shape != ():
            raise ValueError(f"Event cond_fn must return a scalar; got shape {g.shape}.")
        values.append(g.astype(dtype))
    return jnp.stack(values)


def event_carry(events, t, y, args, sign, n_record: int, dtype) -> dict:
    """The loop state of the events at the start of a solve (`t` in the integrator's time)."""
    n = len(events)
    return dict(
        ev_g=jax.lax.stop_gradient(_conditions(events, sign * t, y, args, dtype)),
        ev_count=jnp.zeros((n,), jnp.int32),
        ev_times=jnp.full((n, n_record), jnp.inf, dtype),
        ev_time=jnp.asarray(jnp.inf, dtype),
        ev_index=jnp.asarray(-1, jnp.int32),
    )


def _crossed(direction, g0, g1):
    up = (g0 < 0) & (g1 >= 0)
    down = (g0 > 0) & (g1 <= 0)
    return up | down if direction is None else (up if direction == 1 else down)


def _root(event, taken, t0, dt, coeffs, args, sign, crossed):
    """θ ∈ [0, 1] where `event` crosses zero along the step's polynomial (0.5 when it does
    not cross: a well-posed dummy root, so its implicit derivative is finite)."""
    eps = jnp.finfo(t0.dtype).eps

    def fn(theta, _):
        y = jax.tree.map(lambda c: horner(c, theta), coeffs)
        g = jnp.asarray(event.cond_fn(sign * (t0 + theta * dt), y, args)).astype(t0.dtype)
        return jnp.where(crossed, g, theta - 0.5)

    sol = optx.root_find(fn, optx.Bisection(rtol=4 * eps, atol=4 * eps), jnp.asarray(0.5, t0.dtype),
                         options=dict(lower=jnp.zeros((), t0.dtype), upper=jnp.ones((), t0.dtype)),
                         max_steps=256, throw=False)
    return jnp.clip(sol.value, 0.0, 1.0)


def event_step(events, c, new, plan, coeffs, args, sign, *, save_steps: bool) -> dict:
    """Update the loop state `new` (after `conclude_step` of the step from `c` described by
    `plan` with polynomial `coeffs`) for crossings inside the step: record them, and end the
    solve at the earliest terminal one (time, state, `event_occurred`; a save the step made
    after the event time is undone)."""
    taken = new["n_acc"] > c["n_acc"]
    dtype = c["t"].dtype
    t0, dt = c["t"], plan["dt"]
    g1 = _conditions(events, sign * new["t"], new["y"], args, dtype)
    g1 = jax.lax.stop_gradient(g1)
    crossed = jnp.stack([taken & _crossed(e.direction, c["ev_g"][k], g1[k]) for k, e in enumerate(events)])

    def roots():
        return jnp.stack([_root(e, taken, t0, dt, coeffs, args, sign, crossed[k]) for k, e in enumerate(events)])

    # root finds only in a step with a crossing (outside vmap `cond` skips them elsewhere)
    thetas = jax.lax.cond(jnp.any(crossed), roots, lambda: jnp.full((len(events),), 0.5, dtype))
    terminal = jnp.array([e.terminal for e in events])
    first = jnp.where(crossed & terminal, thetas, jnp.inf)
    fired = jnp.isfinite(jnp.min(first))
    theta_star = jnp.where(fired, jnp.min(first), 1.0)
    index = jnp.argmin(first).astype(jnp.int32)
    # recorded crossings: every crossing up to the terminal one
    record = crossed & (thetas <= theta_star)
    t_cross = sign * (t0 + thetas * dt)
    n_record = c["ev_times"].shape[1]
    slot = jnp.arange(n_record)[None, :] == c["ev_count"][:, None]
    ev_times = jnp.where(record[:, None] & slot, t_cross[:, None], c["ev_times"])
    ev_count = jnp.minimum(c["ev_count"] + record.astype(jnp.int32), n_record)
    out = dict(new, ev_g=jnp.where(taken, g1, c["ev_g"]), ev_times=ev_times, ev_count=ev_count)

    # a terminal crossing: the solve ends at the event, with the state there
    t_event = t0 + theta_star * dt
    y_event = jax.tree.map(lambda cf: horner(cf, theta_star), coeffs)
    out["t"] = jnp.where(fired, t_event, new["t"])
    out["y"] = jax.tree.map(lambda a, b: jnp.where(fired, a, b), y_event, new["y"])
    out["result"] = RESULTS.where(fired, RESULTS.event_occurred, new["result"])
    out["ev_time"] = jnp.where(fired, sign * t_event, c["ev_time"])
    out["ev_index"] = jnp.where(fired, index, c["ev_index"])
    # a saved time the step landed on after the event was not reached
    undo = fired & (new["save_idx"] > c["save_idx"]) & (t_event < new["t"])
    out["save_idx"] = jnp.where(undo, c["save_idx"], new["save_idx"])
    # (buffers of the checkpointed loop are not pytree leaves: map over the state, matching
    # the buffers as prefixes)
    if plan["n_ts"]:
        out["ys_ts"] = jax.tree.map(
            lambda v, buf: eqxi.buffer_at_set(buf, c["save_idx"], jnp.full_like(v, jnp.inf), pred=undo),
            new["y"], new["ys_ts"])
    if save_steps:  # the last accepted step ends at the event
        i = c["n_acc"]
        out["ts_steps"] = eqxi.buffer_at_set(new["ts_steps"], i, sign * t_event, pred=fired)
        out["ys_steps"] = jax.tree.map(lambda v, buf: eqxi.buffer_at_set(buf, i, v, pred=fired),
                                       out["y"], new["ys_steps"])
    return out


class EventOutput(eqx.Module):
    """What the events of a solve found (`Solution.event_time`, `.event_state`, ...).

    `time`: the terminal event's time (`inf` if none fired); `state`: the state there (NaN
    if none); `index`: which event fired (−1 if none); `times`: `(n_events, max_steps)`
    recorded crossing times per event, `inf`-padded; `counts`: crossings recorded per event.
    """

    time: jax.Array
    state: Any
    index: jax.Array
    times: jax.Array
    counts: jax.Array


def event_output(final) -> EventOutput:
    fired = final["ev_index"] >= 0
    state = jax.tree.map(lambda y: jnp.where(fired, y, jnp.nan), final["y"])
    return EventOutput(final["ev_time"], state, final["ev_index"], final["ev_times"], final["ev_count"])
