"""Implicit–explicit Runge–Kutta with a discrete adjoint (SINODE).

`IMEXRK` solves `dy/dt = G(t, y, args) + A y` (a `NeuralODEProblem` with `linear=A`) with
`G` — usually a neural network — explicit and the stiff linear part `A` implicit:

    U_i    = y_n + h Σ_{j<i} a_ij G_j + h Σ_{j<i} ã_ij A U_j + h ã_ii A U_i,
    y_n+1  = y_n + h Σ_i b_i G_i + h Σ_i b̃_i A U_i,

so every implicit stage is one linear solve `(I − h ã_ii A) U_i = r_i`. With a direct
solver (`lineax.LU`, the default) the stage matrix is factorised once and the factors are
reused across stages, steps and the trajectories of a batch, and their transpose by the
adjoint; a factorisation is redone only when the step size or `A` changes.

Gradients (`solve(..., adjoint=pds.DiscreteAdjoint())`, the default) are the discrete
adjoint of the IMEX stage equations (Zhang, Liu & Maulik 2023, eq. 5), a custom VJP of each
step: the backward pass solves the transposed stage systems `(I − h ã_ii Aᵀ) λ^(i) = ...`
with the transposed factors and pulls the stage cotangents through `G` with one
vector-Jacobian product per stage. Steps are held by the shared integrator's recursive
checkpointing, so memory holds a few step states — never every stage's internals.
`RecursiveCheckpointAdjoint()` differentiates the same forward scheme by plain autodiff
through the linear solves (the reference); `DirectAdjoint()` and `ForwardMode()` do so in
forward mode as well (`jax.jvp`, `jax.jacfwd`, `jax.hessian`; lineax's linear solves have
JVP rules).

Reference: H. Zhang, Y. Liu, R. Maulik, "Semi-implicit neural ordinary differential
equations for learning chaotic systems", NeurIPS 2023 workshop (SINODE).
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx

from pdesolve._adjoint import AUTODIFF_ADJOINTS, DiscreteAdjoint, resolve_adjoint
from pdesolve._controllers import ConstantStepSize
from pdesolve._step_options import StepOptions
from pdesolve._imex_tableau import ARK3_2_4L2SA, IMEX_TABLEAUX, IMEXTableau
from pdesolve._integrate import AbstractStatelessStepper, integrate, validate
from pdesolve._linear import apply_operator, check_operator_dtype, linear_operator
from pdesolve._problems import NeuralODEProblem
from pdesolve._results import RESULTS
from pdesolve._rk import combine
from pdesolve._solution import ode_solution
from pdesolve._time_direction import TimeDirection
from pdesolve._solve import AbstractSolver, register

_ITERATIVE = (lx.GMRES, lx.BiCGStab, lx.CG)


def _as_tableau(t):
    if isinstance(t, IMEXTableau):
        return t
    if isinstance(t, str) and t in IMEX_TABLEAUX:
        return IMEX_TABLEAUX[t]
    raise ValueError(
        f"IMEXRK(tableau=...) must be a pdesolve.IMEXTableau or one of {sorted(IMEX_TABLEAUX)}; got {t!r}."
    )


class IMEXRK(AbstractSolver):
    """Implicit–explicit Runge–Kutta for `dy/dt = G(t, y, args) + A y` (SINODE).

    **Arguments:**

    - `tableau`: an `IMEXTableau` or its name: `"ARK3"` (the default, as in PETSc's
      TSARKIMEX), `"ARK4"`, `"ARK5"` (Kennedy–Carpenter ARK3(2)4L[2]SA, ARK4(3)6L[2]SA,
      ARK5(4)8L[2]SA, with embedded pairs for `PIDController`), `"ARS222"` (order 2, the
      cheapest stiffly accurate pair, constant steps only), `"L2"` (IMEX-RK2, PETSc ARKIMEX
      L2, SINODE's scheme; constant steps only; accurate only while `h |λ| ≲ 1` for the
      stiff eigenvalues that the solution is driven by, see below).
    - `linear_solver`: a lineax solver for the stage systems `(I − h ã_ii A) U = r`.
      Direct solvers (`lx.LU()`, default; `lx.QR()`, ...) materialise and factorise the
      stage matrix once per step size; iterative ones (`lx.GMRES`, `lx.BiCGStab`) stay
      matrix-free for operators too large to factorise, and their failure codes end the
      solve with `RESULTS.linear_solve_failed`.

    Gradients: `solve(..., adjoint=pds.DiscreteAdjoint(checkpoints=None))` (SINODE's
    discrete adjoint, a custom VJP per step; the default), `RecursiveCheckpointAdjoint()`
    (autodiff through the same steps and linear solves), `DirectAdjoint()` or
    `ForwardMode()` (forward mode; docs/gradients.md).

    **The problem:** `NeuralODEProblem(vector_field=G, y0, tspan, linear=A)` with `y0` one
    array: a single trajectory of shape `S`, or a batch `(B,) + S` when `A` acts on one
    trajectory (an `(N, N)` matrix with `y0` of shape `(B, N)`, or a lineax operator on
    `S`). A batch shares one factorisation; `jax.vmap` over `solve` also works but
    factorises per batch element when the step sizes are batched.

    **Order, stability, cost:** the tableau's order (2 for L2/ARS222, 3, 4, 5 for the ARK
    methods). The implicit parts are L-stable, so the stiffness of `A` does not make the
    step unstable. ARS222 and the ARK pairs are also stiffly accurate with the same nodes
    `c` in both parts, so a steady state of `G + A y` is a fixed point of every step at any
    `h`, and their step size is limited by `G` (e.g. the hyper-diffusion of
    Kuramoto–Sivashinsky does not limit it). L2 is not (`c = (0, 1)`, `c̃ = (γ, 1 − γ)`):
    on `y' = (y² + 100) − 100 y` it converges to −2.005 instead of 1.0102 at `h = 0.1`
    (`h|λ| = 10`) and reports success; its steady-state error is about 0.05 (h|λ|)² for
    small `h|λ|`. Per step: `s` evaluations of `G`, one application of `A` and at
    most one linear solve per stage, plus one factorisation when the step size changed
    (every step under `PIDController`, once per solve with constant steps). The discrete
    adjoint costs one more forward step, `s` VJPs of `G` and the transposed solves.
    Step sizes are treated as fixed in the gradient, as in PETSc's TSAdjoint.
    """

    tableau: IMEXTableau = eqx.field(default=ARK3_2_4L2SA, converter=_as_tableau)
    linear_solver: lx.AbstractLinearSolver = lx.LU()

    def __check_init__(self):
        if not isinstance(self.linear_solver, lx.AbstractLinearSolver):
            raise TypeError(
                f"IMEXRK(linear_solver=...) must be a lineax solver such as lx.LU() or "
                f"lx.GMRES(rtol, atol); got {self.linear_solver!r}."
            )

    @property
    def order(self) -> int:
        return self.tableau.order


# --------------------------------------------------------------------------- the stage matrices


class _Factors(eqx.Module):
    """Stage operators `M_g = I − h g A` (for each distinct nonzero diagonal `g`) and the
    linear solver's state for each, at step size `dt`; `ok` is False if a factorisation is
    singular."""

    ops: tuple
    states: tuple
    dt: Any
    ok: Any


def _pivots_ok(state, n, scale):
    """True unless an LU factor has a non-finite pivot or one that is zero to working
    precision: `min |pivot| <= n eps max(max |pivot|, scale)`, with `scale` the max-abs size
    of the terms `I` and `h γ A` the stage matrix was formed from. Comparing pivots only with
    each other misses a matrix that is zero by cancellation (`A = I / (h γ)` leaves rounding
    noise ~1e-16 I, all pivots alike, and a "successful" solve amplifying by 1e16)."""
    try:
        (lu, _), _, _ = state
    except (TypeError, ValueError):
        return jnp.array(True)
    d = jnp.abs(jnp.diagonal(lu))
    tol = n * jnp.finfo(d.dtype).eps * jnp.maximum(jnp.max(d), scale)
    return jnp.all(jnp.isfinite(lu)) & jnp.all(d > tol)


class _Linear(eqx.Module):
    """The linear part and how stage systems are solved (shared by forward and adjoint)."""

    op_static: Any
    solver: lx.AbstractLinearSolver
    batched: bool = eqx.field(static=True)
    direction: TimeDirection
    diagonals: tuple = eqx.field(static=True)

    def op(self, pA):
        return eqx.combine(pA, self.op_static)

    def apply(self, pA, u):
        return self.direction.rate(apply_operator(self.op(pA), self.batched, u))

    @property
    def iterative(self):
        return isinstance(self.solver, _ITERATIVE)

    def factorise(self, pA, dt) -> _Factors:
        op = self.op(pA)
        struct = op.in_structure()
        if self.iterative:
            ops = tuple(
                lx.FunctionLinearOperator(lambda v, g=g: v - (self.direction.scale(dt * g)) * op.mv(v), struct)
                for g in self.diagonals
            )
            return _Factors(ops, tuple(None for _ in ops), dt, jnp.array(True))
        a_mat = op.as_matrix()
        eye = jnp.eye(a_mat.shape[0], dtype=a_mat.dtype)
        a_max = jnp.max(jnp.abs(a_mat))
        mats, states, ok = [], [], jnp.array(True)
        for g in self.diagonals:
            coeff = self.direction.scale(dt * g)
            m = lx.MatrixLinearOperator(eye - coeff * a_mat)
            st = self.solver.init(m, {})
            mats.append(m)
            states.append(st)
            scale = jnp.maximum(1.0, jnp.abs(coeff) * a_max)
            ok = ok & _pivots_ok(st, a_mat.shape[0], scale)
        return _Factors(tuple(mats), tuple(states), dt, ok)

    def _solve_one(self, factors, k, r, transpose):
        op, state = factors.ops[k], factors.states[k]
        shape = r.shape
        if not self.iterative:
            r = r.reshape(-1)
        if transpose:
            op = op.T
            if state is not None:
                state, _ = self.solver.transpose(state, {})
        kw = {} if state is None else dict(state=state)
        sol = lx.linear_solve(op, r, self.solver, throw=False, **kw)
        # A non-finite right-hand side (G turned NaN/inf) is not the linear solver's failure:
        # the non-finite stage flows into the step's candidate, which the integrator
        # classifies (`RESULTS.nonfinite`, or a rejection under an adaptive controller).
        ok = (sol.result == lx.RESULTS.successful) | ~jnp.all(jnp.isfinite(r))
        return sol.value.reshape(shape), ok

    def solve(self, factors, g, r, transpose=False):
        """`(I − h g A)^{-1} r` (or its transpose), applied row-wise to a batch; returns
        the solution and a bool that is False if the linear solver failed."""
        k = self.diagonals.index(g)
        if self.batched:
            x, ok = jax.vmap(lambda row: self._solve_one(factors, k, row, transpose))(r)
            return x, jnp.all(ok)
        return self._solve_one(factors, k, r, transpose)


def _stop(tree):
    """`lax.stop_gradient` on the array leaves of any pytree."""
    return jax.tree.map(lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, tree)


def _filter_cond(pred, true_fn, false_fn):
    """`lax.cond` for pytrees with non-array leaves (returned from the true branch)."""
    dyn_t, static = eqx.partition(true_fn(), eqx.is_array)
    out = jax.lax.cond(pred, lambda: dyn_t, lambda: eqx.filter(false_fn(), eqx.is_array))
    return eqx.combine(out, static)


# --------------------------------------------------------------------------- one IMEX step


class _Step(eqx.Module):
    """Everything one step needs besides the differentiable `(y, p, pA)`."""

    tableau: IMEXTableau = eqx.field(static=True)
    g_static: Any
    linear: _Linear
    factors: _Factors
    t: Any
    dt: Any
    direction: TimeDirection

    def G(self, t, y, p):
        vf, args = eqx.combine(p, self.g_static)
        return self.direction.field(vf, t, y, args)

    def stages(self, y, p, pA, record=False):
        """Run the stages. Returns `(y_next, y_error, ok, residuals)`; with `record`, the
        residuals are each stage's VJP of `G` and its state `U_i` (for the adjoint)."""
        tab, dt = self.tableau, self.dt
        a_ex, a_im = tab.a_explicit, tab.a_implicit
        Gs, Ls, vjps, Us = [], [], [], []
        ok = jnp.array(True)
        for i in range(tab.stages):
            coeffs = tuple(a_ex[i][:i]) + tuple(a_im[i][:i])
            r = combine(y, dt, coeffs, Gs + Ls) if i else y
            g = a_im[i][i]
            if g != 0.0:
                u, ok_i = self.linear.solve(self.factors, g, r)
                ok = ok & ok_i
            else:
                u = r
            ti = self.t + tab.c_explicit[i] * dt
            if record:
                gi, vjp = jax.vjp(lambda uu, pp, ti=ti: self.G(ti, uu, pp), u, p)
                vjps.append(vjp)
            else:
                gi = self.G(ti, u, p)
            Gs.append(gi)
            Ls.append(self.linear.apply(pA, u))
            Us.append(u)
        y_next = combine(y, dt, tuple(tab.b_explicit) + tuple(tab.b_implicit), Gs + Ls)
        err = None
        if tab.b_explicit_error is not None:
            err = combine(None, dt, tuple(tab.b_explicit_error) + tuple(tab.b_implicit_error), Gs + Ls)
        return y_next, err, ok, (tuple(vjps), tuple(Us))

    def adjoint(self, residuals, cot, p, pA):
        """SINODE eq. 5: pull the cotangent `cot` of `y_next` back to `(y, p, pA)`.

        Stage cotangents `ḡ_i` (of `G_i`) and `l̄_i` (of `A U_i`) start at `h b_i cot` and
        `h b̃_i cot`; for `i = s..1`: `Ū_i = G_uᵀ ḡ_i + Aᵀ l̄_i`, `λ_i = (I − h ã_ii A)^{-T} Ū_i`,
        then `λ_i` flows to `y` and, through the stage right-hand side, to `ḡ_j += h a_ij λ_i`,
        `l̄_j += h ã_ij λ_i` for `j < i`. Parameters of `G` collect `G_pᵀ ḡ_i`; those of `A`
        collect `∂(A U_i)/∂A` at `l̄_i + h ã_ii λ_i`.
        """
        tab, dt = self.tableau, self.dt
        vjps, Us = residuals
        s = tab.stages
        a_ex, a_im = tab.a_explicit, tab.a_implicit
        scale = lambda c, x: jax.tree.map(lambda v: (dt * c).astype(v.dtype) * v, x)  # noqa: E731
        add = lambda x, z: z if x is None else jax.tree.map(jnp.add, x, z)  # noqa: E731
        gbar = [scale(tab.b_explicit[i], cot) if tab.b_explicit[i] != 0.0 else None for i in range(s)]
        lbar = [scale(tab.b_implicit[i], cot) if tab.b_implicit[i] != 0.0 else None for i in range(s)]
        ybar = cot
        pbar = jax.tree.map(jnp.zeros_like, p)
        pAbar = jax.tree.map(jnp.zeros_like, pA)
        op_T = None
        has_pA = bool(jax.tree.leaves(pA))
        for i in reversed(range(s)):
            ubar = None
            if gbar[i] is not None:
                gu, gp = vjps[i](gbar[i])
                ubar = gu
                pbar = jax.tree.map(jnp.add, pbar, gp)
            if lbar[i] is not None:
                if op_T is None:
                    op_T = lambda v: self._apply_T(pA, v)  # noqa: E731
                ubar = add(ubar, op_T(lbar[i]))
            if ubar is None:
                continue
            g = a_im[i][i]
            if g != 0.0:
                lam, _ = self.linear.solve(self.factors, g, ubar, transpose=True)
            else:
                lam = ubar
            if has_pA:
                w = lbar[i]
                if g != 0.0:
                    w = add(w, scale(g, lam))
                if w is not None:
                    _, vjp_A = jax.vjp(lambda q, u=Us[i]: self.linear.apply(q, u), pA)
                    pAbar = jax.tree.map(jnp.add, pAbar, vjp_A(w)[0])
            ybar = jax.tree.map(jnp.add, ybar, lam)
            for j in range(i):
                if a_ex[i][j] != 0.0:
                    gbar[j] = add(gbar[j], scale(a_ex[i][j], lam))
                if a_im[i][j] != 0.0:
                    lbar[j] = add(lbar[j], scale(a_im[i][j], lam))
        return ybar, pbar, pAbar

    def _apply_T(self, pA, v):
        """`Aᵀ v` (row-wise for a batch), by transposing the linear map."""
        f = lambda u: self.linear.apply(pA, u)  # noqa: E731
        return jax.linear_transpose(f, v)(v)[0]


@eqx.filter_custom_vjp
def _adjoint_step(vjp_arg, step):
    y, p, pA = vjp_arg
    y_next, err, ok, _ = step.stages(y, p, pA)
    return y_next, err, ok


@_adjoint_step.def_fwd
def _adjoint_step_fwd(perturbed, vjp_arg, step):
    del perturbed
    y, p, pA = vjp_arg
    y_next, err, ok, residuals = step.stages(y, p, pA, record=True)
    return (y_next, err, ok), residuals


@_adjoint_step.def_bwd
def _adjoint_step_bwd(residuals, grad_obj, perturbed, vjp_arg, step):
    del perturbed
    y, p, pA = vjp_arg
    cot = grad_obj[0]
    if cot is None:
        cot = jax.tree.map(jnp.zeros_like, y)
    return step.adjoint(residuals, cot, p, pA)


class _IMEXStepper(AbstractStatelessStepper):
    """The integrator's view of one IMEX step (factors reused while `dt` is unchanged)."""

    method: IMEXTableau = eqx.field(static=True)
    g_static: Any
    linear: _Linear
    p: Any
    pA: Any
    pre: _Factors | None
    direction: TimeDirection
    discrete: bool = eqx.field(static=True)

    @property
    def step_fevals(self):
        return self.method.stages

    def _factors(self, pA, dt):
        if self.pre is None:
            return self.linear.factorise(pA, dt)
        pre = self.pre
        same = jnp.abs(dt - pre.dt) <= 64 * jnp.finfo(jnp.result_type(dt)).eps * jnp.abs(pre.dt)
        return _filter_cond(same, lambda: pre, lambda: self.linear.factorise(pA, dt))


    def step(self, f, t, dt, y, state):
        pA = self.pA
        if self.discrete:
            # The adjoint accounts for A's parameters analytically; the factors are data.
            factors = _stop(self._factors(_stop(pA), dt))
            step = _Step(self.method, self.g_static, self.linear, factors, _stop(t), _stop(dt), self.direction)
            y_next, err, ok = _adjoint_step((y, self.p, pA), step)
            err = _stop(err)
        else:
            factors = self._factors(pA, dt)
            step = _Step(self.method, self.g_static, self.linear, factors, t, dt, self.direction)
            y_next, err, ok, _ = step.stages(y, self.p, pA)
        ok = ok & factors.ok
        result = RESULTS.where(ok, RESULTS.successful, RESULTS.linear_solve_failed)
        return y_next, err, None, result


# --------------------------------------------------------------------------- solve


def _check_problem(problem):
    if problem.linear is None:
        raise ValueError(
            "IMEXRK needs the stiff linear part: NeuralODEProblem(vector_field=G, y0, tspan, "
            "linear=A). Without one, use an explicit method such as pds.Tsit5()."
        )
    if not jax.tree_util.treedef_is_leaf(jax.tree.structure(problem.y0)):
        raise ValueError(
            "IMEXRK needs `y0` to be one array (a state of shape S, or a batch of shape "
            f"(B,) + S); got a pytree {jax.tree.structure(problem.y0)}."
        )
    op, _ = linear_operator(problem.linear, problem.y0)
    check_operator_dtype(op, problem.y0, "IMEXRK")


@register(NeuralODEProblem, IMEXRK)
def _solve_imex(problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, adjoint=None,
                event=()):
    del key
    adjoint = resolve_adjoint(adjoint, solver, DiscreteAdjoint(), (DiscreteAdjoint, *AUTODIFF_ADJOINTS))
    _check_problem(problem)
    options = StepOptions.of(saveat=saveat, controller=controller, dt0=dt0, adjoint=adjoint, max_steps=max_steps,
                             throw=throw, progress=progress)
    t0, t1 = problem.tspan
    probe = _IMEXStepper(solver.tableau, None, None, None, None, None, TimeDirection(False), True)
    validate(probe, options, t0, t1, backward=problem.backward)
    ts, ys, stats, result, *dense = _run(problem, solver, options, event)
    return ode_solution(ts, ys, stats, result, problem, solver, options, outputs=dense[0] if dense else None)


@eqx.filter_jit
def _run(problem, solver, options, events=()):
    controller, dt0, adjoint = options.controller, options.dt0, options.adjoint
    t0, t1 = problem.tspan
    dtype = jnp.result_type(t0, t1, float)
    direction = TimeDirection(problem.backward)
    y0 = problem.y0
    vf = eqx.filter_closure_convert(problem.vector_field, jnp.asarray(t0, dtype), y0, problem.args)
    p, g_static = eqx.partition((vf, problem.args), eqx.is_inexact_array)
    op, batched = linear_operator(problem.linear, y0)
    pA, op_static = eqx.partition(op, eqx.is_inexact_array)
    diagonals = tuple(sorted({d for d in solver.tableau.implicit_diagonal if d != 0.0}))
    linear = _Linear(op_static, solver.linear_solver, batched, direction, diagonals)
    discrete = isinstance(adjoint, DiscreteAdjoint)

    pre = None
    if isinstance(controller, ConstantStepSize) and dt0 is not None and not linear.iterative:
        # One factorisation for the whole solve (and, outside any loop, for a whole batch).
        pre = linear.factorise(_stop(pA) if discrete else pA, jnp.asarray(dt0, dtype))
        if discrete:
            pre = _stop(pre)
    stepper = _IMEXStepper(solver.tableau, g_static, linear, p, pA, pre, direction, discrete)

    step_probe = _Step(solver.tableau, g_static, linear, None, None, None, direction)

    def rhs(s, y):
        return jax.tree.map(jnp.add, step_probe.G(s, y, p), linear.apply(pA, y))

    ts, ys, stats, result, *dense = integrate(None, stepper, t0, t1, y0, options, args=problem.args,
                                              backward=problem.backward, mirrored_f=rhs, events=events)
    n_implicit = sum(1 for row_i, row in enumerate(solver.tableau.a_implicit) if row[row_i] != 0.0)
    stats = dict(stats, num_linear_solves=n_implicit * stats["num_steps"])
    return ts, ys, stats, result, *dense
