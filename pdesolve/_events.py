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


def event_carry(events, t, y, args, sign, max_steps: int, dtype, coeff_like) -> dict:
    """The loop state of the events at the start of a solve (`t` in the integrator's time).
    `coeff_like`: the shapes of one step's dense-output coefficients (kept for the step in
    which a terminal event fires, whose root is found after the loop)."""
    n = len(events)
    n_record = max_steps if any(not e.terminal for e in events) else 1
    return dict(
        ev_g=jax.lax.stop_gradient(_conditions(events, sign * t, y, args, dtype)),
        ev_count=jnp.zeros((n,), jnp.int32),
        ev_times=jnp.full((n, n_record), jnp.inf, dtype),
        ev_crossed=jnp.zeros((n,), bool),
        ev_t0=jnp.zeros((), dtype),
        ev_dt=jnp.zeros((), dtype),
        ev_coeffs=jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), coeff_like),
        ev_saved=jnp.zeros((), bool),
        ev_rising=jnp.zeros((n,), bool),
    )


def _crossed(direction, g0, g1):
    up = (g0 < 0) & (g1 >= 0)
    down = (g0 > 0) & (g1 <= 0)
    return up | down if direction is None else (up if direction == 1 else down)


def _root(event, t0, dt, coeffs, args, sign, crossed, rising):
    """θ ∈ [0, 1] where `event` crosses zero along the step's polynomial (0.5 when it does
    not cross: a well-posed dummy root, so its implicit derivative is finite). The function
    is oriented to increase (`rising`: the condition goes up across the step), so Bisection
    needs no run-time orientation check (its `flip="detect"` costs a host callback)."""
    eps = jnp.finfo(t0.dtype).eps

    def fn(theta, _):
        y = jax.tree.map(lambda c: horner(c, theta), coeffs)
        g = jnp.asarray(event.cond_fn(sign * (t0 + theta * dt), y, args)).astype(t0.dtype)
        return jnp.where(crossed, jnp.where(rising, g, -g), theta - 0.5)

    sol = optx.root_find(fn, optx.Bisection(rtol=4 * eps, atol=4 * eps, flip=False), jnp.asarray(0.5, t0.dtype),
                         options=dict(lower=jnp.zeros((), t0.dtype), upper=jnp.ones((), t0.dtype)),
                         max_steps=256, throw=False)
    return jnp.clip(sol.value, 0.0, 1.0)


def _roots(events, t0, dt, coeffs, args, sign, crossed, rising):
    return jnp.stack([_root(e, t0, dt, coeffs, args, sign, crossed[k], rising[k]) for k, e in enumerate(events)])


def _record(ev_times, ev_count, record, times):
    """Append `times[k]` to event k's record where `record[k]`."""
    n_record = ev_times.shape[1]
    for k in range(ev_times.shape[0]):
        i = jnp.minimum(ev_count[k], n_record - 1)
        ev_times = ev_times.at[k, i].set(jnp.where(record[k], times[k], ev_times[k, i]))
    return ev_times, jnp.minimum(ev_count + record.astype(jnp.int32), n_record)


def event_step(events, c, new, plan, coeffs, args, sign) -> dict:
    """Update the loop state `new` (after `conclude_step` of the step from `c` described by
    `plan` with polynomial `coeffs`) for crossings inside the step. Non-terminal crossings
    are located (a root find, only in a step that has one) and recorded; a terminal crossing
    ends the loop (`event_occurred`) with the step kept whole: `event_finish` locates the
    event after the loop, once, as diffrax does."""
    taken = new["n_acc"] > c["n_acc"]
    dtype = c["t"].dtype
    t0, dt = c["t"], plan["dt"]
    g1 = jax.lax.stop_gradient(_conditions(events, sign * new["t"], new["y"], args, dtype))
    crossed = jnp.stack([taken & _crossed(e.direction, c["ev_g"][k], g1[k]) for k, e in enumerate(events)])
    terminal = jnp.array([e.terminal for e in events])
    fired = jnp.any(crossed & terminal)
    ev_times, ev_count = c["ev_times"], c["ev_count"]
    if not all(e.terminal for e in events):  # (static) recording events: locate their crossings now
        need = jnp.any(crossed & ~terminal)
        thetas = jax.lax.cond(need, lambda: _roots(events, t0, dt, coeffs, args, sign, crossed, g1 > c["ev_g"]),
                              lambda: jnp.full((len(events),), 0.5, dtype))
        # non-terminal crossings before a terminal one in the same step (whose root is found
        # here too in that case: `need` holds)
        theta_star = jnp.min(jnp.where(crossed & terminal, thetas, jnp.inf))
        record = crossed & ~terminal & (thetas <= theta_star)
        ev_times, ev_count = _record(ev_times, ev_count, record, sign * (t0 + thetas * dt))
    keep = lambda a, b: jax.tree.map(lambda x, y: jnp.where(fired, x, y), a, b)  # noqa: E731
    return dict(
        new,
        ev_g=jnp.where(taken, g1, c["ev_g"]),
        ev_times=ev_times,
        ev_count=ev_count,
        result=RESULTS.where(fired, RESULTS.event_occurred, new["result"]),
        ev_crossed=jnp.where(fired, crossed & terminal, c["ev_crossed"]),
        ev_t0=jnp.where(fired, t0, c["ev_t0"]),
        ev_dt=jnp.where(fired, dt, c["ev_dt"]),
        ev_coeffs=keep(coeffs, c["ev_coeffs"]),
        ev_saved=jnp.where(fired, new["save_idx"] > c["save_idx"], c["ev_saved"]),
        ev_rising=jnp.where(fired, g1 > c["ev_g"], c["ev_rising"]),
    )


def event_finish(events, final, args, sign, *, n_ts: int, save_steps: bool) -> tuple[dict, "EventOutput"]:
    """After the loop: locate the terminal event in the step that fired it (the earliest
    crossing among the terminal events), end the solve there (time, state), undo a save the
    step made after the event, and return the loop state and the `EventOutput`."""
    fired = final["result"] == RESULTS.event_occurred
    crossed = final["ev_crossed"] & fired
    thetas = _roots(events, final["ev_t0"], final["ev_dt"], final["ev_coeffs"], args, sign, crossed,
                    final["ev_rising"])
    first = jnp.where(crossed, thetas, jnp.inf)
    index = jnp.where(fired, jnp.argmin(first), -1).astype(jnp.int32)
    theta_star = jnp.where(fired, jnp.min(first), 1.0)
    t_event = final["ev_t0"] + theta_star * final["ev_dt"]
    y_event = jax.tree.map(lambda cf: horner(cf, theta_star), final["ev_coeffs"])
    out = dict(final)
    out["t"] = jnp.where(fired, t_event, final["t"])
    out["y"] = jax.tree.map(lambda a, b: jnp.where(fired, a, b), y_event, final["y"])
    hit = (jnp.arange(len(events)) == index) & fired
    out["ev_times"], out["ev_count"] = _record(final["ev_times"], final["ev_count"], hit,
                                               jnp.full((len(events),), sign * t_event))
    # a saved time the step landed on after the event was not reached
    undo = fired & final["ev_saved"] & (t_event < final["t"])
    out["save_idx"] = jnp.where(undo, final["save_idx"] - 1, final["save_idx"])
    if n_ts:
        i = jnp.maximum(out["save_idx"], 0)
        out["ys_ts"] = jax.tree.map(lambda b: b.at[i].set(jnp.where(undo, jnp.inf, b[i])), final["ys_ts"])
    if save_steps:  # the last accepted step ends at the event
        i = jnp.maximum(final["n_acc"] - 1, 0)
        out["ts_steps"] = final["ts_steps"].at[i].set(jnp.where(fired, sign * t_event, final["ts_steps"][i]))
        out["ys_steps"] = jax.tree.map(lambda b, v: b.at[i].set(jnp.where(fired, v, b[i])), final["ys_steps"], out["y"])
    state = jax.tree.map(lambda y: jnp.where(fired, y, jnp.nan), out["y"])
    output = EventOutput(jnp.where(fired, sign * t_event, jnp.inf), state, index, out["ev_times"], out["ev_count"])
    return out, output


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
