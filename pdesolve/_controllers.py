"""Step-size controllers shared by every time-stepping solver."""

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._results import RESULTS


def _concrete(v):
    """`float(v)` for concrete scalars, `None` for tracers (checks are skipped under jit)."""
    return None if isinstance(v, jax.core.Tracer) else float(v)


def rms_norm(tree) -> jax.Array:
    """Root-mean-square over every element of every leaf of `tree`."""
    leaves = jax.tree.leaves(tree)
    sq = sum(jnp.sum(jnp.abs(x) ** 2) for x in leaves)
    size = sum(x.size for x in leaves)
    return jnp.sqrt(sq / size)


class AbstractStepController(eqx.Module):
    """Interface for step-size controllers. Subclass it to write your own.

    The integrator calls `init` once, then for each attempted step from `t` of size `dt`
    calls `adapt` with the candidate state and (for embedded methods) its error estimate.

    Contract:

    * `init(f, t0, t1, y0, dt0, args, error_order) -> (dt, state)` — the first step size
      (> 0) and an arbitrary pytree of controller state. `f(t, y)` evaluates the vector
      field (use it only if you need it, e.g. for an automatic initial step).
    * `adapt(t, dt, y, y_next, y_error, error_order, state) -> (accept, dt_next, state, result)`
      — `accept` (bool scalar) says whether the step to `t + dt` is kept; `dt_next` (> 0)
      is the next step size to attempt (from `t + dt` if accepted, from `t` otherwise);
      `result` is a `RESULTS` member (anything but `successful` stops the solve).
      `y_error` is `None` for methods without an embedded pair.
    * `requires_error_estimate`: `True` if `adapt` needs `y_error`.
    * `resume_after_clip`: when the integrator shortened an accepted
      step to land on a saved time or `t1`, resume from `max(dt_next, dt_proposed)`
      instead of `dt_next`, so that clipping does not shrink an adaptive step size.

    The integrator clips `dt` to land on `t1` and on `SaveAt(ts)` times. A rejected step
    never advances time. All arguments are arrays inside `jit`; use `jnp.where`, not `if`.
    Time runs forward inside the integrator (backward problems are mirrored), so `dt > 0`.
    """

    requires_error_estimate: eqx.AbstractClassVar[bool]
    resume_after_clip: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def init(self, f: Callable, t0, t1, y0, dt0, args, error_order) -> tuple[Any, Any]:
        ...

    @abc.abstractmethod
    def check(self, t0, t1) -> None:
        """Host-side validation against the problem's `(t0, t1)` (in the user's time
        direction), called before compilation with concrete values; `pass` if there is
        nothing to check."""

    @abc.abstractmethod
    def adapt(self, t, dt, y, y_next, y_error, error_order, state) -> tuple[Any, Any, Any, Any]:
        ...


class ConstantStepSize(AbstractStepController):
    """Fixed steps of size `dt0` (passed to `solve`).

    Steps land on the exact grid `t0 + k dt0` (no accumulated round-off); the last step is
    shortened to end at `t1`. Every step is accepted.
    """

    requires_error_estimate = False
    resume_after_clip = False

    def check(self, t0, t1):
        pass  # `dt0` is checked by `init`

    def init(self, f, t0, t1, y0, dt0, args, error_order):
        if dt0 is None:
            raise ValueError("ConstantStepSize needs `dt0`: pass solve(..., dt0=...).")
        if not isinstance(dt0, jax.core.Tracer) and not float(dt0) > 0:
            raise ValueError(f"`dt0` must be positive; got {dt0}.")
        dt0 = jnp.asarray(dt0, dtype=jnp.result_type(t0))
        return dt0, (t0, dt0)

    def adapt(self, t, dt, y, y_next, y_error, error_order, state):
        t0, dt0 = state
        # Distance to the next grid point t0 + k dt0 after t + dt; robust to steps that
        # were clipped to saved times, and free of accumulated round-off.
        t_next = t + dt
        n = jnp.floor((t_next - t0) / dt0 + 1e-9)
        dt_next = t0 + (n + 1) * dt0 - t_next
        return jnp.array(True), dt_next, state, RESULTS.successful


class StepTo(AbstractStepController):
    """Steps exactly to the given increasing times `ts` (which must start at `t0` and end at `t1`)."""

    ts: jax.Array
    requires_error_estimate = False
    resume_after_clip = False

    def __init__(self, ts):
        if not isinstance(ts, jax.core.Tracer):
            ts_np = np.asarray(ts, dtype=float)
            if ts_np.ndim != 1 or ts_np.size < 2:
                raise ValueError("StepTo(ts): `ts` must be a 1-D array of at least 2 times.")
            if not np.all(np.isfinite(ts_np)):
                raise ValueError("StepTo(ts): `ts` contains NaN or inf.")
            d = np.diff(ts_np)
            if not (np.all(d > 0) or np.all(d < 0)):
                raise ValueError("StepTo(ts): `ts` must be strictly monotonic.")
        self.ts = jnp.asarray(ts)

    def check(self, t0, t1):
        if isinstance(self.ts, jax.core.Tracer) or isinstance(t0, jax.core.Tracer) or isinstance(t1, jax.core.Tracer):
            return
        ts = np.asarray(self.ts)
        if not (np.isclose(ts[0], float(t0)) and np.isclose(ts[-1], float(t1))):
            raise ValueError(
                f"StepTo(ts): ts must start at t0={float(t0)} and end at t1={float(t1)}; got "
                f"[{ts[0]}, ..., {ts[-1]}]."
            )

    def init(self, f, t0, t1, y0, dt0, args, error_order):
        # The integrator mirrors backward solves, so compare in its (forward) time.
        ts = self.ts.astype(jnp.result_type(t0))
        ts = jnp.where(ts[-1] < ts[0], -ts, ts)
        return ts[1] - ts[0], ts

    def adapt(self, t, dt, y, y_next, y_error, error_order, state):
        ts = state
        t_next = t + dt
        # Tolerate round-off in t + dt when locating the next grid time.
        tol = 64 * jnp.finfo(ts.dtype).eps * jnp.maximum(jnp.abs(t_next), 1.0)
        i = jnp.clip(jnp.searchsorted(ts, t_next + tol, side="right"), 1, ts.shape[0] - 1)
        dt_next = jnp.where(ts[i] > t_next, ts[i] - t_next, ts[-1] - ts[-2])
        return jnp.array(True), dt_next, state, RESULTS.successful


class PIDController(AbstractStepController):
    """Adaptive steps from an embedded error estimate, with PID control (Söderlind 2002/2003).

    A step is accepted when `‖y_error / (atol + rtol max(|y|, |y_next|))‖_rms <= 1`. With
    inverse scaled errors `r_n, r_{n-1}, r_{n-2}` and `k = error_order`, an accepted step
    proposes `dt_next = dt · safety · r_n^{β1/k} r_{n-1}^{β2/k} r_{n-2}^{β3/k}` with
    `β1 = pcoeff + icoeff + dcoeff`, `β2 = -(pcoeff + 2 dcoeff)`, `β3 = dcoeff`
    (the default `icoeff=1` is classical integral control); a rejected step uses
    `dt · min(1, safety · r_n^{1/k})`. Factors are clipped to `[factormin, factormax]` and
    steps to `[dtmin, dtmax]`. A rejection at `dtmin` ends the solve with
    `RESULTS.dt_min_reached`. Non-finite candidates are rejected and the step shrinks by
    `factormin`.

    Without `dt0` the first step is chosen by Hairer, Nørsett & Wanner's algorithm
    (Solving ODEs I, II.4), costing two evaluations of the vector field.

    References: Söderlind, "Digital filters in adaptive time-stepping", ACM TOMS 29 (2003).
    """

    rtol: float
    atol: float
    pcoeff: float = 0.0
    icoeff: float = 1.0
    dcoeff: float = 0.0
    dtmin: float | None = None
    dtmax: float | None = None
    factormin: float = 0.2
    factormax: float = 10.0
    safety: float = 0.9
    norm: Callable = rms_norm
    requires_error_estimate = True
    resume_after_clip = True

    def __check_init__(self):
        rtol, atol = _concrete(self.rtol), _concrete(self.atol)
        for name, v in (("rtol", rtol), ("atol", atol)):
            if v is not None and not (v >= 0 and np.isfinite(v)):
                raise ValueError(f"PIDController: `{name}` must be finite and >= 0; got {v}.")
        if rtol == 0 and atol == 0:
            raise ValueError("PIDController: `rtol` and `atol` cannot both be 0.")
        if not 0 < self.safety <= 1:
            raise ValueError(f"PIDController: `safety` must be in (0, 1]; got {self.safety}.")
        if not (0 < self.factormin < 1 < self.factormax):
            raise ValueError(
                "PIDController: need 0 < factormin < 1 < factormax; got "
                f"factormin={self.factormin}, factormax={self.factormax}."
            )
        dtmin = None if self.dtmin is None else _concrete(self.dtmin)
        dtmax = None if self.dtmax is None else _concrete(self.dtmax)
        if dtmin is not None and not dtmin > 0:
            raise ValueError(f"PIDController: `dtmin` must be positive; got {dtmin}.")
        if dtmax is not None and not dtmax > 0:
            raise ValueError(f"PIDController: `dtmax` must be positive; got {dtmax}.")
        if dtmin is not None and dtmax is not None and dtmin > dtmax:
            raise ValueError(f"PIDController: `dtmin`={dtmin} exceeds `dtmax`={dtmax}.")

    def check(self, t0, t1):
        pass  # tolerances and step bounds are checked at construction

    def _clip_dt(self, dt):
        if self.dtmin is not None:
            dt = jnp.maximum(dt, self.dtmin)
        if self.dtmax is not None:
            dt = jnp.minimum(dt, self.dtmax)
        return dt

    def _scale(self, y, y_next):
        return jax.tree.map(
            lambda a, b: self.atol + self.rtol * jnp.maximum(jnp.abs(a), jnp.abs(b)), y, y_next
        )

    def init(self, f, t0, t1, y0, dt0, args, error_order):
        dtype = jnp.result_type(t0)
        ones = jnp.ones((), dtype)
        state = (ones, ones)  # r_{n-1}, r_{n-2}
        if dt0 is not None:
            dt = jnp.asarray(dt0, dtype)
        else:
            scale = self._scale(y0, y0)
            div = lambda a, s: a / s  # noqa: E731
            f0 = f(t0, y0)
            d0 = self.norm(jax.tree.map(div, y0, scale))
            d1 = self.norm(jax.tree.map(div, f0, scale))
            h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1).astype(dtype)
            h0 = jnp.minimum(h0, t1 - t0)
            y1 = jax.tree.map(lambda a, b: a + h0 * b, y0, f0)
            f1 = f(t0 + h0, y1)
            d2 = self.norm(jax.tree.map(lambda a, b, s: (a - b) / s, f1, f0, scale)) / h0
            dmax = jnp.maximum(d1, d2)
            h1 = jnp.where(
                dmax <= 1e-15,
                jnp.maximum(1e-6, h0 * 1e-3),
                (0.01 / dmax) ** (1.0 / error_order),
            ).astype(dtype)
            dt = jnp.minimum(100 * h0, h1)
        dt = self._clip_dt(jnp.minimum(dt, t1 - t0))
        return dt, state

    def adapt(self, t, dt, y, y_next, y_error, error_order, state):
        r_prev, r_prev2 = state
        dtype = jnp.result_type(dt)
        err = self.norm(jax.tree.map(lambda e, s: e / s, y_error, self._scale(y, y_next)))
        finite = jnp.isfinite(err) & jnp.all(
            jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(y_next)])
        )
        accept = finite & (err <= 1.0)
        r = jnp.where(finite, 1.0 / jnp.maximum(err, 1e-10), 1.0).astype(dtype)
        k = error_order
        b1 = self.pcoeff + self.icoeff + self.dcoeff
        b2 = -(self.pcoeff + 2 * self.dcoeff)
        b3 = self.dcoeff
        factor_acc = self.safety * r ** (b1 / k)
        if b2 != 0:
            factor_acc = factor_acc * r_prev ** (b2 / k)
        if b3 != 0:
            factor_acc = factor_acc * r_prev2 ** (b3 / k)
        factor_rej = jnp.minimum(1.0, self.safety * r ** (1.0 / k))
        factor = jnp.where(accept, factor_acc, jnp.where(finite, factor_rej, self.factormin))
        factor = jnp.clip(factor, self.factormin, self.factormax)
        dt_next = self._clip_dt(dt * factor)
        result = RESULTS.successful
        if self.dtmin is not None:
            at_min = dt <= self.dtmin * (1 + 1e-10)
            result = RESULTS.where(~accept & at_min, RESULTS.dt_min_reached, result)
        new_state = (
            jnp.where(accept, r, r_prev),
            jnp.where(accept, r_prev, r_prev2),
        )
        return accept, dt_next, new_state, result


def resolve_controller(controller, dt0) -> AbstractStepController:
    """The controller to use: `controller` if given, else `ConstantStepSize()` with `dt0`."""
    if controller is None:
        if dt0 is None:
            raise ValueError(
                "Pass `dt0=` for fixed steps, or `controller=pds.PIDController(rtol, atol)` "
                "for adaptive steps."
            )
        return ConstantStepSize()
    if not isinstance(controller, AbstractStepController):
        raise TypeError(
            f"`controller` must be a pdesolve.AbstractStepController; got {type(controller).__name__}."
        )
    return controller
