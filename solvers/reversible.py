"""Algebraically reversible solvers with exact O(1)-memory gradients.

`ReversibleRK` makes any explicit Runge–Kutta method reversible (McCallum & Foster,
"Efficient, accurate and stable gradients for neural ODEs", arXiv 2410.11648, 2024). The
baselines of the same family are `ReversibleHeun` (Kidger, Foster, Li & Lyons, "Efficient
and accurate gradients for neural SDEs", NeurIPS 2021) and `ALF`, the asynchronous leapfrog
integrator (Zhuang, Dvornek, Tatikonda & Duncan, "MALI", ICLR 2021).

All three share one adjoint: the forward pass keeps only the final augmented state and the
accepted step times (O(steps) scalars); the backward pass runs the exact algebraic inverse
of each step from the final state, and accumulates the vector-Jacobian products of the step
at the reconstructed state. The gradient is that of the discrete forward scheme, up to the
round-off of the reconstruction; the trajectory is never stored. That is
`solve(..., adjoint=pds.ReversibleAdjoint())`, the default; `RecursiveCheckpointAdjoint`,
`DirectAdjoint` (forward and reverse mode) and `ForwardMode` differentiate the same forward
steps by autodiff instead (docs/gradients.md).
"""

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pdesolve._adjoint import AUTODIFF_ADJOINTS, ReversibleAdjoint, resolve_adjoint
from pdesolve._step_options import StepOptions
from pdesolve._integrate import AbstractStatelessStepper, assemble_saved, integrate, validate
from pdesolve._problems import NeuralODEProblem
from pdesolve._results import RESULTS
from pdesolve._rk import ode_rhs, rk_increment
from pdesolve._solution import ode_solution
from pdesolve._time_direction import TimeDirection
from pdesolve._solve import AbstractSolver, register

from .explicit_rk import AbstractExplicitRK


def _axpy(a, x, y):
    """`a x + y` leafwise (`a` a scalar)."""
    return jax.tree.map(lambda u, v: a * u + v, x, y)


def _add(x, y):
    return jax.tree.map(jnp.add, x, y)


def _sub(x, y):
    return jax.tree.map(jnp.subtract, x, y)


def _scale(a, x):
    return jax.tree.map(lambda u: a * u, x)


class AbstractReversibleSolver(AbstractSolver):
    """A one-step method on an augmented state with an exact algebraic inverse.

    Subclasses define `init_state`, `forward` (one step, with an error estimate for
    adaptive control or `None`), `inverse` is implied by `inverse_vjp` (reconstruct the
    previous state and pull cotangents back through the step), `output` (the solution
    component of the augmented state), `fevals_per_step` and `error_order`.
    `f(t, y, p)` takes the differentiable parameters `p` explicitly so that the backward
    pass can form vector-Jacobian products with respect to them.
    """

    @abc.abstractmethod
    def init_state(self, f, t0, y0, p) -> Any: ...

    @abc.abstractmethod
    def forward(self, f, t, h, state, p) -> tuple[Any, Any]: ...

    @abc.abstractmethod
    def inverse_vjp(self, f, t, h, state_next, cot_next, p) -> tuple[Any, Any, Any]: ...

    @abc.abstractmethod
    def output(self, state) -> Any: ...

    @property
    @abc.abstractmethod
    def drift_tol(self) -> float | None:
        """Tolerance of the constant-step drift check of two-copy states (`None`: not checked;
        ReversibleHeun's `y`, `ŷ` differ by O(h) by design, ALF has one copy)."""

    @abc.abstractmethod
    def augmented_rhs(self, f, t, state, p) -> Any:
        """The time derivative of the augmented state along the exact flow (what the
        integrator's controller sees as the vector field, e.g. to choose a first step)."""

    @property
    @abc.abstractmethod
    def fevals_per_step(self) -> int: ...

    @property
    @abc.abstractmethod
    def error_order(self) -> int | None: ...

    @property
    @abc.abstractmethod
    def order(self) -> int: ...


class ReversibleRK(AbstractReversibleSolver):
    """Any explicit Runge–Kutta method made algebraically reversible (McCallum & Foster 2024).

    With `Ψ_h(t, x) = Φ_h(t, x) − x` the increment of the base method and `Y_0 = Z_0 = y0`:

        Y_{n+1} = λ Y_n + (1 − λ) Z_n + Ψ_h(t_n, Z_n)
        Z_{n+1} = Z_n − Ψ_{−h}(t_{n+1}, Y_{n+1})

    and the solution is `Y`. The step is inverted exactly by
    `Z_n = Z_{n+1} + Ψ_{−h}(t_{n+1}, Y_{n+1})`,
    `Y_n = (Y_{n+1} − (1 − λ) Z_n − Ψ_h(t_n, Z_n)) / λ`.

    **Arguments:**

    - `base`: an explicit RK solver instance (`pds.RK4()`, `pds.Dopri5()`, ...). Its
      first-same-as-last cache is not carried across steps.
    - `coupling`: `λ` in `(0, 1]` (default 0.999). The linear step matrix has determinant
      `λ`, so `λ = 1` cannot be asymptotically stable; smaller `λ` enlarges the forward
      stability region but the reconstruction divides by `λ` each step, amplifying
      round-off. See docs/reversible.md.
    - `drift_tol`: with constant steps, the result is `RESULTS.reversible_drift` when the
      relative drift `max|Y − Z| / (2 max|Y, Z|)` of the two copies exceeds it at a saved
      time or at the end (default `0.05`). The denominator is the largest `|Y|`, `|Z|` among
      `y0` and those states, so a solution crossing zero is not read as a large drift (white-dwarf
      training, Euler base: `|Y − Z| ≈ 1.5e-3` where `|Y| ≈ 5e-4`, with `Y` within 2e-3 of
      plain Euler; 0.05 was never reached in 300 AdamW steps x 3 seeds x Euler/Midpoint/RK4).
      A growing parasitic mode crosses it with `Y` off by about as much (`y' = −(y − cos t)`,
      RK4, `dt0 = 0.01`: the drift passes 0.05 at t = 30.0 with `Y` 0.047 off, and `Y` is
      −3e6 at t = 50).

    **Stability (the parasitic mode).** `Y` and `Z` both approximate `y`; on a decaying
    mode `y' = μy` their difference is multiplied each step by ≈ `λ / R(hμ) ≈ λ e^{h|μ|}`,
    so it grows when `|μ| h > 1 − λ` (roughly). The solver watches it: with
    `PIDController` the drift `Y − Z` is part of the error estimate (scaled by
    `atol + rtol |y|` like it), so steps shrink until the mode is controlled; with constant
    steps a drift beyond `drift_tol` gives `RESULTS.reversible_drift`. Pick
    `λ` with `1 − λ > |μ| h` (e.g. `λ = 0.9` for `h|μ| ≈ 0.05`), or accept more steps.

    **Order and cost:** the order of the base method. Forward: two base steps (`2s`
    evaluations for `s` stages) per step. Backward: the two base steps again plus their two
    vector-Jacobian products per step. Memory: O(1) in the number of steps (plus `max_steps`
    scalars of accepted step times). Adaptive steps use the base method's embedded pair.
    """

    base: AbstractExplicitRK
    coupling: float = 0.999
    drift_tol: float = 0.05

    def __check_init__(self):
        if not isinstance(self.base, AbstractExplicitRK):
            raise TypeError(
                f"ReversibleRK(base=...) must be an explicit RK solver instance such as "
                f"pds.RK4(); got {self.base!r}."
            )
        lam = self.coupling
        if not isinstance(lam, jax.core.Tracer) and not (0.0 < float(lam) <= 1.0):
            raise ValueError(f"ReversibleRK(coupling=...) must satisfy 0 < λ <= 1; got {lam}.")
        tol = self.drift_tol
        if not isinstance(tol, jax.core.Tracer) and not (0.0 < float(tol) <= 1.0):
            raise ValueError(f"ReversibleRK(drift_tol=...) must be in (0, 1]; got {tol}.")

    @property
    def order(self):
        return self.base.tableau.order

    @property
    def error_order(self):
        return self.base.tableau.error_order

    @property
    def fevals_per_step(self):
        return 2 * self.base.tableau.stages

    def _psi(self, f, t, h, x, p):
        return rk_increment(self.base.tableau, lambda s, y: f(s, y, p), t, h, x)

    def init_state(self, f, t0, y0, p):
        return (y0, y0)

    def forward(self, f, t, h, state, p):
        y, z = state
        lam = self.coupling
        n, err_n = self._psi(f, t, h, z, p)
        y1 = _add(_add(_scale(lam, y), _scale(1 - lam, z)), n)
        m, err_m = self._psi(f, t + h, -h, y1, p)
        z1 = _sub(z, m)
        if err_n is None:
            return (y1, z1), None
        # The growth of the drift |Y − Z| over the step (weighted by _DRIFT_WEIGHT) joins
        # Z's error estimate, so adaptive control also bounds the parasitic mode. Per step
        # the drift is multiplied by g ≈ λ e^{h|μ|}, which falls with h down to λ < 1, so a
        # step that does not grow it always exists (controlling the drift itself instead
        # gets stuck once it sits at the tolerance: no step can shrink it faster than λ).
        grow = jax.tree.map(
            lambda a1, b1, a0, b0: _DRIFT_WEIGHT * jnp.maximum(jnp.abs(a1 - b1) - jnp.abs(a0 - b0), 0.0),
            y1, z1, y, z,
        )
        err_z = jax.tree.map(lambda e, g: jnp.sqrt(e**2 + g**2), err_m, grow)
        return (y1, z1), (err_n, err_z)

    def inverse_vjp(self, f, t, h, state_next, cot_next, p):
        y1, z1 = state_next
        cy1, cz1 = cot_next
        lam = self.coupling
        m, vjp_m = jax.vjp(lambda x, q: self._psi(f, t + h, -h, x, q)[0], y1, p)
        z0 = _add(z1, m)
        n, vjp_n = jax.vjp(lambda x, q: self._psi(f, t, h, x, q)[0], z0, p)
        y0 = _scale(1.0 / lam, _sub(_sub(y1, _scale(1 - lam, z0)), n))
        # Pull back through Z1 = Z0 − Ψ_{−h}(Y1), then Y1 = λY0 + (1−λ)Z0 + Ψ_h(Z0).
        gy1, gp_m = vjp_m(cz1)
        cy = _sub(cy1, gy1)
        gz0, gp_n = vjp_n(cy)
        cy0 = _scale(lam, cy)
        cz0 = _add(_add(cz1, _scale(1 - lam, cy)), gz0)
        return (y0, z0), (cy0, cz0), _sub(gp_n, gp_m)

    def output(self, state):
        return state[0]

    def augmented_rhs(self, f, t, state, p):
        return (f(t, state[0], p), f(t, state[1], p))


class ReversibleHeun(AbstractReversibleSolver):
    """Reversible Heun method (Kidger, Foster, Li & Lyons 2021), order 2 for ODEs.

    State `(y, ŷ, f(t, ŷ))`: `ŷ_{n+1} = 2y_n − ŷ_n + h f(t_n, ŷ_n)`,
    `y_{n+1} = y_n + h/2 (f(t_n, ŷ_n) + f(t_{n+1}, ŷ_{n+1}))`; one evaluation per step
    forward, one plus one VJP backward. Constant steps only (no error estimate).
    """

    order = 2
    error_order = None
    fevals_per_step = 1
    drift_tol = None

    def init_state(self, f, t0, y0, p):
        return (y0, y0, f(t0, y0, p))

    def forward(self, f, t, h, state, p):
        y, yh, fy = state
        yh1 = _add(_sub(_scale(2.0, y), yh), _scale(h, fy))
        f1 = f(t + h, yh1, p)
        y1 = _add(y, _scale(0.5 * h, _add(fy, f1)))
        return (y1, yh1, f1), None

    def _step(self, f, t, h, state, p):
        return self.forward(f, t, h, state, p)[0]

    def inverse_vjp(self, f, t, h, state_next, cot_next, p):
        y1, yh1, f1 = state_next
        yh0 = _sub(_sub(_scale(2.0, y1), yh1), _scale(h, f1))
        f0 = f(t, yh0, p)
        y0 = _sub(y1, _scale(0.5 * h, _add(f0, f1)))
        state = (y0, yh0, f0)
        _, vjp = jax.vjp(lambda s, q: self._step(f, t, h, s, q), state, p)
        cot_state, cot_p = vjp(cot_next)
        return state, cot_state, cot_p

    def output(self, state):
        return state[0]

    def augmented_rhs(self, f, t, state, p):
        y, yh, _ = state
        return (f(t, y, p), *_flow_derivative(f, t, yh, p))


class ALF(AbstractReversibleSolver):
    """Asynchronous leapfrog integrator (Zhuang et al. 2021, MALI), order 2.

    State `(z, v)` with `v_0 = f(t_0, z_0)`: `k = z + h/2 v`, `u = f(t + h/2, k)`,
    `v' = 2u − v`, `z' = k + h/2 v'`. Inverse: `k = z' − h/2 v'`, `v = 2 f(t + h/2, k) − v'`,
    `z = k − h/2 v`. One evaluation per step forward, one plus one VJP backward. Constant
    steps only.
    """

    order = 2
    error_order = None
    fevals_per_step = 1
    drift_tol = None

    def init_state(self, f, t0, y0, p):
        return (y0, f(t0, y0, p))

    def forward(self, f, t, h, state, p):
        z, v = state
        k = _axpy(0.5 * h, v, z)
        u = f(t + 0.5 * h, k, p)
        v1 = _sub(_scale(2.0, u), v)
        return (_axpy(0.5 * h, v1, k), v1), None

    def inverse_vjp(self, f, t, h, state_next, cot_next, p):
        z1, v1 = state_next
        k = _axpy(-0.5 * h, v1, z1)
        u = f(t + 0.5 * h, k, p)
        v0 = _sub(_scale(2.0, u), v1)
        state = (_axpy(-0.5 * h, v0, k), v0)
        _, vjp = jax.vjp(lambda s, q: self.forward(f, t, h, s, q)[0], state, p)
        cot_state, cot_p = vjp(cot_next)
        return state, cot_state, cot_p

    def output(self, state):
        return state[0]

    def augmented_rhs(self, f, t, state, p):
        return _flow_derivative(f, t, state[0], p)


def _flow_derivative(f, t, y, p):
    """`(f(t, y), d/dt f(t, y(t)))` along the exact flow `y' = f`: the derivative of a
    state that carries a copy of `f` (ReversibleHeun's `f(ŷ)`, ALF's `v`), by one JVP."""
    fy = f(t, y, p)
    _, dfy = jax.jvp(lambda s, x: f(s, x, p), (t, y), (jnp.ones_like(t), fy))
    return fy, dfy


# Weight of the drift's growth in the error estimate. The growth per step is what the
# parasitic mode feeds back into Y; weighted x100 the global error stays near the tolerance
# (measured on y' = -(y - cos t), t in [0, 50], rtol = atol = 1e-6: error 4.6e-6 / 4.8e-7 /
# 2.1e-8 for λ = 0.999 / 0.99 / 0.9; x1 gave 4.5e-4 / 6.3e-5 / 2.9e-6 with about as many steps).
_DRIFT_WEIGHT = 100.0


def _max_abs(tree):
    """`max |x|` over all leaves of a pytree (a scalar)."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)]))


def _max_distance(a, b):
    """`max |a − b|` over all leaves."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(u - v)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))]))


class _ForwardStepper(AbstractStatelessStepper):
    """Adapter: a reversible solver's forward step as the integrator's stepper."""

    method: AbstractReversibleSolver
    f: Any
    p: Any

    @property
    def step_fevals(self):
        return self.method.fevals_per_step

    def step(self, f, t, dt, y, state):
        y1, err = self.method.forward(self.f, t, dt, y, self.p)
        return y1, err, None, RESULTS.successful



def _drift_failed(solver, state0, saved, final, n_saved):
    """`True` when the relative drift `max|Y − Z| / (2 max|Y, Z|)` at a saved time or at the
    end exceeds `solver.drift_tol` (the scale: the largest `|Y|`, `|Z|` among `y0`, the saved
    states and the final state). Checked after the solve, not per step: per step the check
    doubled the white-dwarf gradient time (the result code made every step's accept a
    data-dependent select); a growing parasitic mode does not shrink again, so it is
    caught at the next saved time or at the end."""
    sg = jax.lax.stop_gradient
    if n_saved:
        states = jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), saved, final)
    else:
        states = jax.tree.map(lambda b: b[None], final)
    y, z = sg(states)
    axes = lambda x: tuple(range(1, x.ndim))  # noqa: E731
    d = jnp.max(jnp.stack([jnp.max(jnp.abs(u - v), axis=axes(u)) for u, v in zip(jax.tree.leaves(y), jax.tree.leaves(z))]), axis=0)
    scale = jnp.maximum(sg(_max_abs(state0)), jnp.maximum(_max_abs(y), _max_abs(z)))
    rel = d / jnp.where(scale > 0, 2 * scale, 1.0)
    return ~jnp.all(rel <= solver.drift_tol)


def _zeros_if_none(cot, like):
    if cot is None:
        return jax.tree.map(jnp.zeros_like, like)
    return jax.tree.map(
        lambda c, x: jnp.zeros_like(x) if c is None else c, cot, like, is_leaf=lambda c: c is None
    )


class _VectorField(eqx.Module):
    """`f(s, y, p)` in the integrator's (forward) time with the differentiable leaves `p`
    explicit; the non-differentiable rest is carried as a pytree, not a closure, so that
    the custom VJP never closes over tracers."""

    static: Any
    direction: TimeDirection

    def __call__(self, s, y, p):
        vf, args = eqx.combine(p, self.static)
        return self.direction.field(vf, s, y, args)


def _forward(vjp_arg, f, solver, options, s0, s1, record_steps=True):
    """The forward solve on the augmented state, in the integrator's time `s` (`options`
    hold the inner `saveat` and the loop's adjoint)."""
    p, state0 = vjp_arg
    return integrate(None, _ForwardStepper(solver, f, p), s0, s1, state0, options, record_steps=record_steps,
                     mirrored_f=lambda s, y: solver.augmented_rhs(f, s, y, p))


_RECONSTRUCTION_FAILED = (
    "pdesolve ReversibleAdjoint: the backward pass reconstructed the initial state with a "
    "relative error above reconstruction_tol, so this gradient is not exact. The "
    "reconstruction amplifies round-off by up to 1/coupling per step: raise `coupling` "
    "towards 1 (ReversibleRK), use float64, take fewer steps, or differentiate with "
    "adjoint=pds.RecursiveCheckpointAdjoint(); ReversibleAdjoint(reconstruction_tol=...) "
    "sets the tolerance (docs/reversible.md)."
)


@eqx.filter_custom_vjp
def _reversible_solve(vjp_arg, f, solver, options, s0, s1, recon_tol):
    ts, ys, stats, result, record = _forward(vjp_arg, f, solver, options, s0, s1)
    return ys, record["y"], (ts, stats, result)


@_reversible_solve.def_fwd
def _reversible_solve_fwd(perturbed, vjp_arg, f, solver, options, s0, s1,
                          recon_tol):
    del perturbed
    ts, ys, stats, result, record = _forward(vjp_arg, f, solver, options, s0, s1)
    residuals = (record["y"], record["step_t"], record["step_dt"], record["save_step"], record["n_acc"])
    return (ys, record["y"], (ts, stats, result)), residuals


@_reversible_solve.def_bwd
def _reversible_solve_bwd(residuals, grad_obj, perturbed, vjp_arg, f, solver, options, s0, s1, recon_tol):
    del perturbed, options, s0, s1
    p, state0 = vjp_arg
    state_n, step_t, step_dt, save_step, n_acc = residuals
    cot_ys, cot_final, _ = grad_obj
    cot_ys = _zeros_if_none(cot_ys, jax.tree.map(lambda x: jnp.zeros((save_step.shape[0],) + x.shape, x.dtype), state0))
    cot_state = _zeros_if_none(cot_final, state_n)
    n_ts = save_step.shape[0]

    def add_saved(k, j, cot):
        """Add the cotangents of every saved output taken after exactly `k` accepted steps."""

        def cond(c):
            jj, _ = c
            return (jj >= 0) & (save_step[jnp.maximum(jj, 0)] == k)

        def body(c):
            jj, cc = c
            return jj - 1, _add(cc, jax.tree.map(lambda a: a[jj], cot_ys))

        if n_ts == 0:
            return j, cot
        return jax.lax.while_loop(cond, body, (j, cot))

    def cond(c):
        return c[0] > 0

    def body(c):
        k, j, state, cot, cot_p = c
        j, cot = add_saved(k, j, cot)
        t, h = step_t[k - 1], step_dt[k - 1]
        state, cot, gp = solver.inverse_vjp(f, t, h, state, cot, p)
        return k - 1, j, state, cot, _add(cot_p, gp)

    cot_p0 = jax.tree.map(jnp.zeros_like, p)
    init = (n_acc, jnp.asarray(n_ts - 1, jnp.int32), state_n, cot_state, cot_p0)
    _, j, state_rec, cot, cot_p = jax.lax.while_loop(cond, body, init)
    _, cot = add_saved(0, j, cot)
    # The exactness guarantee: the reconstruction must end at the true initial state.
    leaves0 = jax.tree.leaves(state0)
    tol = recon_tol if recon_tol is not None else float(np.sqrt(np.finfo(jnp.result_type(*leaves0)).eps))
    if tol != float("inf"):
        err, scale = _max_distance(state_rec, state0), _max_abs(state0)
        bad = ~(err <= tol * jnp.where(scale > 0, scale, 1.0))
        cot_p, cot = eqx.error_if((cot_p, cot), bad, _RECONSTRUCTION_FAILED)
    return cot_p, cot


@register(NeuralODEProblem, AbstractReversibleSolver)
def _solve_reversible(problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, adjoint=None):
    del key
    adjoint = resolve_adjoint(adjoint, solver, ReversibleAdjoint(), (ReversibleAdjoint, *AUTODIFF_ADJOINTS))
    if saveat.steps:
        raise ValueError(
            f"{type(solver).__name__} does not support SaveAt(steps=True): its gradient never "
            "stores the trajectory. Save the times you need with SaveAt(ts=...)."
        )
    if saveat.dense:
        raise ValueError(
            f"{type(solver).__name__} does not support SaveAt(dense=True): its O(1)-memory "
            "gradient reconstructs the step states backwards, not per-step interpolants, so "
            "dense coefficients would have no exact gradient. Save the times you need with "
            "SaveAt(ts=...), or solve with the base method (e.g. pds.Tsit5()) for dense output."
        )
    options = StepOptions.of(saveat=saveat, controller=controller, dt0=dt0, adjoint=adjoint, max_steps=max_steps,
                             throw=throw, progress=progress)
    if options.controller.requires_error_estimate and solver.error_order is None:
        raise ValueError(
            f"{type(solver).__name__} has no error estimate for adaptive steps; use "
            "ConstantStepSize (dt0=...) or ReversibleRK with an embedded base method "
            "(Heun, Bosh3, Dopri5, Tsit5, ...)."
        )
    t0, t1 = problem.tspan
    validate(_ForwardStepper(solver, None, None), options, t0, t1, backward=problem.backward)
    ts, ys, stats, result = _run(problem, solver, options)
    return ode_solution(ts, ys, stats, result, problem, solver, options)


@eqx.filter_jit
def _run(problem, solver, options):
    saveat, controller, adjoint = options.saveat, options.controller, options.adjoint
    t0, t1 = problem.tspan
    dtype = jnp.result_type(t0, t1, float)
    direction = TimeDirection(problem.backward)
    s0, s1 = direction.times(t0, dtype), direction.times(t1, dtype)
    # Closure-convert the vector field so that arrays it closes over become leaves (and
    # receive gradients), then split differentiable leaves from the rest.
    rhs = eqx.filter_closure_convert(ode_rhs(problem), s0, problem.y0, problem.args)
    p_dyn, p_static = eqx.partition((rhs, problem.args), eqx.is_inexact_array)
    f_p = _VectorField(p_static, direction)
    state0 = solver.init_state(f_p, s0, problem.y0, p_dyn)
    # The inner solve runs in the integrator's forward time s = σ t.
    inner_saveat = (
        type(saveat)(ts=direction.times(saveat.ts, dtype)) if saveat.ts is not None else type(saveat)(t1=True)
    )
    if isinstance(adjoint, ReversibleAdjoint):
        ys_aug, final_state, (ts_in, stats, result) = _reversible_solve(
            (p_dyn, state0), f_p, solver, options.replace(saveat=inner_saveat), s0, s1, adjoint.reconstruction_tol,
        )
    else:  # autodiff through the same forward steps (forward mode works here)
        inner_saveat = type(saveat)(ts=inner_saveat.ts, t1=True)
        ts_in, ys_aug, stats, result = _forward(
            (p_dyn, state0), f_p, solver, options.replace(saveat=inner_saveat), s0, s1, record_steps=False,
        )
        final_state = jax.tree.map(lambda x: x[-1], ys_aug)
        ys_aug = jax.tree.map(lambda x: x[:-1], ys_aug)
    # Constant steps cannot shrink to control the parasitic mode: report it if it grew.
    if not controller.requires_error_estimate and solver.drift_tol is not None:
        n_saved = 0 if saveat.ts is None else saveat.ts.shape[0]
        bad = _drift_failed(solver, state0, ys_aug, final_state, n_saved)
        result = RESULTS.where(bad & (result == RESULTS.successful), RESULTS.reversible_drift, result)
        # (`solve` raises it: ODE solves reach here with throw=False.)
    # The inner solve ran in s = σ t: report times in t (a failed solve ends before t1).
    t_reached = direction.times(stats["t_final"])
    stats = dict(stats, t_final=t_reached)
    at_ts = None
    if saveat.ts is not None:
        reached = jnp.isfinite(ts_in[: saveat.ts.shape[0]])
        at_ts = (jnp.where(reached, jnp.asarray(saveat.ts, dtype), jnp.inf), solver.output(ys_aug))
    ts, ys = assemble_saved(saveat, (t0, problem.y0), at_ts, None, (t_reached, solver.output(final_state)), dtype)
    # (`throw` is applied inside the custom VJP's forward pass, which is never differentiated.)
    return ts, ys, stats, result
