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

from pdesolve._adjoint import AUTODIFF_ADJOINTS, ReversibleAdjoint, resolve_adjoint
from pdesolve._controllers import resolve_controller
from pdesolve._integrate import AbstractStepper, assemble_saved, integrate, validate
from pdesolve._problems import NeuralODEProblem
from pdesolve._rk import ode_rhs, rk_increment
from pdesolve._solution import ode_solution
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

    def augmented_rhs(self, f, t, state, p) -> Any:
        """The vector field on the augmented state (for automatic initial step sizes)."""
        raise NotImplementedError(f"{type(self).__name__} supports constant steps only.")

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

    **Order and cost:** the order of the base method. Forward: two base steps (`2s`
    evaluations for `s` stages) per step. Backward: the two base steps again plus their two
    vector-Jacobian products per step. Memory: O(1) in the number of steps (plus `max_steps`
    scalars of accepted step times). Adaptive steps use the base method's embedded pair.
    """

    base: AbstractExplicitRK
    coupling: float = 0.999

    def __check_init__(self):
        if not isinstance(self.base, AbstractExplicitRK):
            raise TypeError(
                f"ReversibleRK(base=...) must be an explicit RK solver instance such as "
                f"pds.RK4(); got {self.base!r}."
            )
        lam = self.coupling
        if not isinstance(lam, jax.core.Tracer) and not (0.0 < float(lam) <= 1.0):
            raise ValueError(f"ReversibleRK(coupling=...) must satisfy 0 < λ <= 1; got {lam}.")

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
        err = None if err_n is None else (err_n, err_m)
        return (y1, z1), err

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


class _ForwardStepper(AbstractStepper):
    """Adapter: a reversible solver's forward step as the integrator's stepper."""

    solver: AbstractReversibleSolver
    f: Any
    p: Any

    @property
    def order(self):
        return self.solver.order

    @property
    def error_order(self):
        return self.solver.error_order

    @property
    def init_fevals(self):
        return 0

    @property
    def step_fevals(self):
        return self.solver.fevals_per_step

    def init(self, f, t0, y0):
        return None

    def step(self, f, t, dt, y, state):
        y1, err = self.solver.forward(self.f, t, dt, y, self.p)
        return y1, err, None


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
    sign: float = eqx.field(static=True)

    def __call__(self, s, y, p):
        vf, args = eqx.combine(p, self.static)
        out = vf(self.sign * s, y, args)
        return out if self.sign > 0 else jax.tree.map(jnp.negative, out)


def _forward(vjp_arg, f, solver, saveat, controller, dt0, max_steps, s0, s1, throw, progress,
             adjoint=ReversibleAdjoint(), record_steps=True):
    p, state0 = vjp_arg
    stepper = _ForwardStepper(solver, f, p)
    return integrate(
        None,
        stepper,
        s0,
        s1,
        state0,
        saveat=saveat,
        controller=controller,
        dt0=dt0,
        max_steps=max_steps,
        throw=throw,
        progress=progress,
        adjoint=adjoint,
        record_steps=record_steps,
        mirrored_f=lambda s, y: solver.augmented_rhs(f, s, y, p),
    )


@eqx.filter_custom_vjp
def _reversible_solve(vjp_arg, f, solver, saveat, controller, dt0, max_steps, s0, s1, throw, progress):
    ts, ys, stats, result, record = _forward(vjp_arg, f, solver, saveat, controller, dt0, max_steps, s0, s1, throw, progress)
    return ys, record["y"], (ts, stats, result)


@_reversible_solve.def_fwd
def _reversible_solve_fwd(perturbed, vjp_arg, f, solver, saveat, controller, dt0, max_steps, s0, s1, throw, progress):
    del perturbed
    ts, ys, stats, result, record = _forward(vjp_arg, f, solver, saveat, controller, dt0, max_steps, s0, s1, throw, progress)
    residuals = (record["y"], record["step_t"], record["step_dt"], record["save_step"], record["n_acc"])
    return (ys, record["y"], (ts, stats, result)), residuals


@_reversible_solve.def_bwd
def _reversible_solve_bwd(residuals, grad_obj, perturbed, vjp_arg, f, solver, saveat, controller, dt0, max_steps, s0, s1, throw, progress):
    del perturbed, saveat, controller, dt0, max_steps, s0, s1, throw, progress
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
    _, j, _, cot, cot_p = jax.lax.while_loop(cond, body, init)
    _, cot = add_saved(0, j, cot)
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
    controller = resolve_controller(controller, dt0)
    if controller.requires_error_estimate and solver.error_order is None:
        raise ValueError(
            f"{type(solver).__name__} has no error estimate for adaptive steps; use "
            "ConstantStepSize (dt0=...) or ReversibleRK with an embedded base method "
            "(Heun, Bosh3, Dopri5, Tsit5, ...)."
        )
    t0, t1 = problem.tspan
    validate(_ForwardStepper(solver, None, None), controller, saveat, t0, t1, max_steps=max_steps, backward=problem.backward)
    ts, ys, stats, result = _run(problem, solver, saveat, controller, dt0, max_steps, throw, progress, adjoint)
    return ode_solution(ts, ys, stats, result, problem, solver, controller, dt0, max_steps, adjoint)


@eqx.filter_jit
def _run(problem, solver, saveat, controller, dt0, max_steps, throw, progress, adjoint):
    t0, t1 = problem.tspan
    dtype = jnp.result_type(t0, t1, float)
    sign = -1.0 if problem.backward else 1.0
    s0, s1 = jnp.asarray(sign * t0, dtype), jnp.asarray(sign * t1, dtype)
    # Closure-convert the vector field so that arrays it closes over become leaves (and
    # receive gradients), then split differentiable leaves from the rest.
    rhs = eqx.filter_closure_convert(ode_rhs(problem), s0, problem.y0, problem.args)
    p_dyn, p_static = eqx.partition((rhs, problem.args), eqx.is_inexact_array)
    f_p = _VectorField(p_static, sign)
    state0 = solver.init_state(f_p, s0, problem.y0, p_dyn)
    # The inner solve runs in the integrator's forward time s = sign * t.
    inner_saveat = (
        type(saveat)(ts=sign * jnp.asarray(saveat.ts, dtype)) if saveat.ts is not None else type(saveat)(t1=True)
    )
    if isinstance(adjoint, ReversibleAdjoint):
        ys_aug, final_state, (ts_in, stats, result) = _reversible_solve(
            (p_dyn, state0), f_p, solver, inner_saveat, controller, dt0, max_steps, s0, s1, throw, progress
        )
    else:  # autodiff through the same forward steps (forward mode works here)
        inner_saveat = type(saveat)(ts=inner_saveat.ts, t1=True)
        ts_in, ys_aug, stats, result = _forward(
            (p_dyn, state0), f_p, solver, inner_saveat, controller, dt0, max_steps, s0, s1, throw, progress,
            adjoint=adjoint, record_steps=False,
        )
        final_state = jax.tree.map(lambda x: x[-1], ys_aug)
        ys_aug = jax.tree.map(lambda x: x[:-1], ys_aug)
    at_ts = (saveat.ts, solver.output(ys_aug)) if saveat.ts is not None else None
    ts, ys = assemble_saved(saveat, (t0, problem.y0), at_ts, None, (t1, solver.output(final_state)), dtype)
    # (`throw` is applied inside the custom VJP's forward pass, which is never differentiated.)
    return ts, ys, stats, result
