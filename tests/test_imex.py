"""IMEXRK: measured order per tableau, reduction to the explicit tableau, the discrete
adjoint against backprop and finite differences, factor reuse, failures and bad input."""

import functools

import equinox as eqx
import jax
import jax.extend
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
from hypothesis import given, settings, strategies as st

import pdesolve as pds

from _ode_helpers import as_f64, flat
from _strategies import bounded_floats, float_arrays, save_grids, split_linear_systems

NAMES = ["L2", "ARS222", "ARK3", "ARK4", "ARK5"]


def split_linear_system(seed, n=4):
    """`M = D + B` with a diagonal `D` (eigenvalues in [-10, -1]) and a mild coupling `B`;
    `y0` of unit norm. Moderate stiffness keeps `|λ| h <= 0.6` in the order tests, the
    asymptotic regime; the stiff regime is tested against Radau below."""
    rng = np.random.default_rng(seed)
    m = -np.diag(rng.uniform(1.0, 10.0, n)) + 0.5 * rng.normal(size=(n, n))
    y0 = rng.normal(size=n)
    return m, y0 / np.linalg.norm(y0)


def linear_explicit(t, y, args):
    return args @ y


@functools.lru_cache(maxsize=None)
def split_solver(name):
    """Jitted `(M, y0, dt0, θ) -> y(1)` for `dy/dt = θ M y (explicit) + (1 - θ) M y (implicit)`."""
    solver = pds.IMEXRK(name)

    @jax.jit
    def run(m, y0, dt0, theta):
        prob = pds.NeuralODEProblem(linear_explicit, y0, (0.0, 1.0), theta * m, linear=(1.0 - theta) * m)
        return pds.solve(prob, solver, dt0=dt0, max_steps=512).ys[-1]

    return run


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(system=split_linear_systems(), theta=bounded_floats(0.52, 0.70))
def test_order_split_linear(name, system, theta):
    """Log-log slope of the error against `expm` equals the tableau's order (±0.3), for a
    drawn M = -diag(d) + B (Re λ <= -0.5, |λ| <= 11.5: see `split_linear_systems`), unit
    y0 and explicit fraction θ of the split θ M + (1 - θ) M.

    θ is drawn from [0.52, 0.70]: there, for every tableau, the scalar model |R(z)^N - e^λ|
    (R(z) = 1 + z b(θ)ᵀ (I - z A(θ))⁻¹ 1, A(θ) = θ A_E + (1 - θ) A_I) gives |slope - p| <=
    0.2 for every λ of a grid over the drawn spectrum's region (Re λ in [-11.5, -0.5],
    |Im λ| <= 1.5). Elsewhere the leading error constant b(θ)ᵀ A(θ)^p 1 - 1/(p+1)! has zeros
    (L2/ARS222 θ = 0.279, ARK3 0.370 and 0.772, ARK4 0.266 and 0.885), near which the slope
    tends to p + 1 (ARK4 at θ = 0.867: 4.34, found by hypothesis), and ARK5 is
    pre-asymptotic at |λ| h ~ 0.48 outside a few windows of θ (0.64 off at θ = 1). The
    former fixed split θ = 0.3 has c(0.3) at 2 % (L2) and 13 % (ARK4) of its largest value."""
    m, y0 = system
    exact = scipy.linalg.expm(m) @ y0
    order = pds.IMEX_TABLEAUX[name].order
    ns = [40, 80, 160] if order <= 3 else [24, 32, 48]
    run = split_solver(name)
    errs = [np.linalg.norm(np.asarray(run(as_f64(m), as_f64(y0), as_f64(1.0 / n), as_f64(theta))) - exact) for n in ns]
    slope = np.polyfit(np.log(1.0 / np.array(ns)), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (name, theta, slope, errs)


# A nonlinear problem y' = -y^3/3 + sin(t) (explicit) + A y (implicit), with a mildly
# stiff A (for the classical order) and a strongly stiff one (eigenvalue -500).
A_MILD = np.array([[-20.0, 1.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.5, -5.0]])
A_STIFF = np.array([[-20.0, 1.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.5, -500.0]])
Y0_CUBIC = np.array([1.0, -0.5, 0.25])


def cubic(t, y, args):
    return -(y**3) / 3 + jnp.sin(t)


@functools.lru_cache(maxsize=None)
def radau_reference(stiff):
    a = A_STIFF if stiff else A_MILD
    sol = scipy.integrate.solve_ivp(
        lambda t, y: -(y**3) / 3 + np.sin(t) + a @ y, (0.0, 1.0), Y0_CUBIC, method="Radau", rtol=1e-12, atol=1e-14
    )
    return sol.y[:, -1]


@functools.lru_cache(maxsize=None)
def cubic_solver(name):
    @jax.jit
    def run(a, dt0):
        prob = pds.NeuralODEProblem(cubic, jnp.asarray(Y0_CUBIC), (0.0, 1.0), linear=a)
        return pds.solve(prob, pds.IMEXRK(name), dt0=dt0, max_steps=512).ys[-1]

    return run


def _cubic_errors(name, stiff, ns):
    a = jnp.asarray(A_STIFF if stiff else A_MILD)
    ref = radau_reference(stiff)
    errs = [np.linalg.norm(np.asarray(cubic_solver(name)(a, jnp.asarray(1.0 / n))) - ref) for n in ns]
    return errs, np.polyfit(np.log(1.0 / np.array(ns)), np.log(errs), 1)[0]


@pytest.mark.parametrize("name", NAMES)
def test_order_nonlinear(name):
    """Against Radau (rtol 1e-12), mildly stiff A: the tableau's classical order (±0.3)."""
    order = pds.IMEX_TABLEAUX[name].order
    errs, slope = _cubic_errors(name, False, [40, 80, 160] if order <= 3 else [24, 32, 48])
    assert abs(slope - order) < 0.3, (name, slope, errs)


@pytest.mark.parametrize("name", NAMES)
def test_stiff_nonlinear_accuracy(name):
    """Against Radau with an eigenvalue -500 in A, at |λ| h from 50 down to 3: stable and
    accurate at every step size, converging at least at order 1.3. In the stiff regime
    the methods reduce towards their stage order (2 for the ESDIRK stages): measured
    slopes L2 1.45 (not stiffly accurate), ARS222 1.99, ARK3 2.31, ARK4 2.01, ARK5 2.46."""
    errs, slope = _cubic_errors(name, True, [10, 20, 40, 80, 160])
    assert slope > 1.3, (name, slope, errs)
    assert max(errs) < 0.05 and errs[-1] < 1e-3, errs


def _explicit_part(t: pds.IMEXTableau) -> pds.ButcherTableau:
    return pds.ButcherTableau(
        t.name + "-explicit",
        c=t.c_explicit,
        a=[row[:i] for i, row in enumerate(t.a_explicit)][1:],
        b=t.b_explicit,
        order=1,
    )


@pytest.mark.parametrize("name", NAMES)
def test_zero_linear_part_is_the_explicit_tableau(name):
    """With A = 0 every implicit solve is the identity: the scheme is its explicit tableau."""
    t = pds.IMEX_TABLEAUX[name]
    mlp = eqx.nn.MLP(3, 3, 8, 1, activation=jnp.tanh, key=jax.random.PRNGKey(1))
    mlp = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, mlp)
    field = lambda s, y, args: jnp.cos(s) * mlp(y)  # noqa: E731
    y0 = jnp.array([0.3, -0.1, 0.8])
    prob_imex = pds.NeuralODEProblem(field, y0, (0.0, 1.0), linear=jnp.zeros((3, 3)))
    prob_ex = pds.NeuralODEProblem(field, y0, (0.0, 1.0))
    a = pds.solve(prob_imex, pds.IMEXRK(t), dt0=0.1, saveat=pds.SaveAt(steps=True), max_steps=10).ys
    b = pds.solve(prob_ex, pds.ExplicitRK(_explicit_part(t)), dt0=0.1, saveat=pds.SaveAt(steps=True), max_steps=10).ys
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


# ----------------------------------------------------------------------------- gradients


class Field(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, t, y, args):
        f = self.mlp if y.ndim == 1 else jax.vmap(self.mlp)
        return args * jnp.sin(1.0 + t) * f(y)


def _field(seed, n):
    mlp = eqx.nn.MLP(n, n, 8, 2, activation=jnp.tanh, key=jax.random.PRNGKey(seed))
    return Field(jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, mlp))


GRAD_TS = jnp.array([0.3, 0.7, 1.0])
ADJOINTS = {"discrete": pds.DiscreteAdjoint(), "backprop": pds.RecursiveCheckpointAdjoint()}


def _loss(params, name, adjoint, controller=None, ts=GRAD_TS, dt0=0.1):
    field, a, y0, args = params
    prob = pds.NeuralODEProblem(field, y0, (0.0, 1.0), args, linear=a)
    sol = pds.solve(prob, pds.IMEXRK(name), adjoint=ADJOINTS[adjoint], dt0=dt0, controller=controller,
                    saveat=pds.SaveAt(ts=ts), max_steps=64)
    return jnp.sum(sol.ys**2) + jnp.sum(jnp.sin(sol.ys))


def _loss_at(params, ts, dt0, name, adjoint):
    return _loss(params, name, adjoint, ts=ts, dt0=dt0)


@functools.lru_cache(maxsize=None)
def grad_fn(name, adjoint):
    """Jitted `(params, ts, dt0) -> (loss, d loss / d params)` (ts, dt0 traced)."""
    return eqx.filter_jit(eqx.filter_value_and_grad(functools.partial(_loss_at, name=name, adjoint=adjoint)))


@functools.lru_cache(maxsize=None)
def loss_fn(name, adjoint):
    return eqx.filter_jit(functools.partial(_loss_at, name=name, adjoint=adjoint))


def _params(seed, batch):
    rng = np.random.default_rng(seed)
    n = 4
    a = -np.diag(rng.uniform(1.0, 30.0, n)) + 0.3 * rng.normal(size=(n, n))
    y0 = rng.normal(size=(batch, n) if batch else n)
    return (_field(seed % 7, n), jnp.asarray(a), jnp.asarray(y0), jnp.asarray(0.7))


@st.composite
def adjoint_problems(draw, batch):
    """`(params, ts, dt0)`: G's network (its initialisation key), a learnable A = -diag(d) + B
    (d in [1, 30], B entries in [-0.3, 0.3]: Re λ <= -0.1, stiff up to |λ| h ~ 6), y0 of
    shape (batch, 4) or (4,) in [-2, 2], args in [0.2, 1.5], three save times in [0.05, 1]
    (duplicates allowed) and a constant step dt0 in [0.05, 0.2] (clipped at the saves)."""
    a, _ = draw(split_linear_systems(diagonal=(1.0, 30.0), coupling=0.3))
    y0 = draw(float_arrays((batch, 4) if batch else (4,), -2.0, 2.0))
    params = (_field(draw(st.integers(0, 2**16)), 4), as_f64(a), as_f64(y0), as_f64(draw(bounded_floats(0.2, 1.5))))
    return params, as_f64(draw(save_grids(0.05, 1.0, 3))), as_f64(draw(bounded_floats(0.05, 0.2)))


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(data=st.data(), batch=st.sampled_from([0, 3]))
def test_discrete_adjoint_equals_backprop(name, data, batch):
    """Gradients w.r.t. G's parameters, A (learnable), y0 and args equal plain autodiff
    through the same forward scheme to 1e-9 relative, for a drawn problem, save times and
    step; a batch (B, N) shares A."""
    params, ts, dt0 = data.draw(adjoint_problems(batch), label="problem")
    v_d, g_d = grad_fn(name, "discrete")(params, ts, dt0)
    v_b, g_b = grad_fn(name, "backprop")(params, ts, dt0)
    assert float(v_d) == pytest.approx(float(v_b), rel=1e-13)
    gd, gb = flat(g_d), flat(g_b)
    assert float(jnp.linalg.norm(gd - gb) / jnp.linalg.norm(gb)) < 1e-9


@pytest.mark.parametrize("name", ["L2", "ARK4"])
@settings(max_examples=10, deadline=None)
@given(problem=adjoint_problems(0), direction_key=st.integers(0, 2**32 - 1))
def test_discrete_adjoint_finite_differences(name, problem, direction_key):
    """Directional derivatives along a standard normal direction (drawn from a key) of y0,
    A, args and G's weights match central finite differences (float64, eps = 1e-5), for a
    drawn problem, save times and step."""
    params, ts, dt0 = problem
    _, g = grad_fn(name, "discrete")(params, ts, dt0)
    dyn, static = eqx.partition(params, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(dyn)
    keys = jax.random.split(jax.random.PRNGKey(direction_key), len(leaves))
    direction = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])
    loss = loss_fn(name, "backprop")
    eps = 1e-5
    plus = loss(eqx.combine(jax.tree.map(lambda x, d: x + eps * d, dyn, direction), static), ts, dt0)
    minus = loss(eqx.combine(jax.tree.map(lambda x, d: x - eps * d, dyn, direction), static), ts, dt0)
    fd = (plus - minus) / (2 * eps)
    ad = jnp.vdot(flat(g), flat(direction))
    assert float(ad) == pytest.approx(float(fd), rel=1e-6)


def test_adjoint_with_adaptive_steps_and_operator_forms():
    """With PIDController, A as a matrix, a lineax operator and a linear equinox module
    give the same gradients (per adjoint mode, to 1e-10). The discrete adjoint holds the
    accepted steps fixed (as PETSc's TSAdjoint does); backprop also differentiates the
    controller's step sizes, so the two differ by the step-size sensitivity, which is small
    at tight tolerances."""
    params = _params(5, 0)
    field, a, y0, args = params
    ctrl = pds.PIDController(rtol=1e-8, atol=1e-10)

    class MatVec(eqx.Module):
        m: jax.Array

        def __call__(self, y):
            return self.m @ y

    forms = [a, lx.MatrixLinearOperator(a), MatVec(a)]
    grads = {}
    for adjoint in ("discrete", "backprop"):
        for k, lin in enumerate(forms):
            def loss(p, adjoint=adjoint):
                f, op, y = p
                prob = pds.NeuralODEProblem(f, y, (0.0, 1.0), args, linear=op)
                sol = pds.solve(prob, pds.IMEXRK("ARK4"), adjoint=ADJOINTS[adjoint], controller=ctrl, max_steps=1024)
                return jnp.sum(sol.ys**2)

            grads[adjoint, k] = flat(eqx.filter_grad(loss)((field, lin, y0)))
        for k in (1, 2):
            np.testing.assert_allclose(grads[adjoint, k], grads[adjoint, 0], rtol=1e-10, atol=1e-16)
    d, b = grads["discrete", 0], grads["backprop", 0]
    assert float(jnp.linalg.norm(d - b) / jnp.linalg.norm(b)) < 1e-3


def test_jit_vmap_and_batch_agree():
    """`jax.vmap` over y0 equals one solve of the stacked batch (B, N) sharing A."""
    field, a, y0b, args = _params(2, 3)

    def one(y):
        prob = pds.NeuralODEProblem(field, y, (0.0, 1.0), args, linear=a)
        return pds.solve(prob, pds.IMEXRK("ARK4"), dt0=0.05).ys[-1]

    batched = pds.solve(pds.NeuralODEProblem(field, y0b, (0.0, 1.0), args, linear=a), pds.IMEXRK("ARK4"), dt0=0.05).ys[-1]
    np.testing.assert_allclose(jax.jit(jax.vmap(one))(y0b), batched, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- linear solves


def _count(jaxpr, name, inside_cond=False):
    """(# primitives `name` outside any cond, # inside a cond) in a closed jaxpr, recursively."""
    out, inside = 0, 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == name:
            if inside_cond:
                inside += 1
            else:
                out += 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            o, i = _count(sub, name, inside_cond or eqn.primitive.name == "cond")
            out, inside = out + o, inside + i
    return out, inside


def test_lu_factorised_once_with_constant_steps():
    """Constant steps: one LU factorisation outside the time loop (shared by all stages,
    steps and batch rows, and by the adjoint through its transpose); inside the loop a
    factorisation exists only in the branch taken when a clipped step changes dt."""
    field, a, y0b, args = _params(1, 3)

    def loss(f, y):
        prob = pds.NeuralODEProblem(f, y, (0.0, 1.0), args, linear=a)
        return jnp.sum(pds.solve(prob, pds.IMEXRK("ARK5"), dt0=0.1).ys ** 2)

    fwd = eqx.filter_make_jaxpr(loss)(field, y0b)[0].jaxpr
    assert _count(fwd, "lu") [0] == 1 and _count(fwd, "lu")[1] >= 1
    bwd = eqx.filter_make_jaxpr(eqx.filter_grad(loss))(field, y0b)[0].jaxpr
    assert _count(bwd, "lu")[0] == 1


def test_gmres_matches_lu_and_reports_failure():
    field, a, y0, args = _params(4, 0)
    prob = pds.NeuralODEProblem(field, y0, (0.0, 1.0), args, linear=a)
    ref = pds.solve(prob, pds.IMEXRK("ARK3"), dt0=0.1).ys[-1]
    for ls in (lx.GMRES(rtol=1e-12, atol=1e-14), lx.BiCGStab(rtol=1e-12, atol=1e-14)):
        got = pds.solve(prob, pds.IMEXRK("ARK3", linear_solver=ls), dt0=0.1).ys[-1]
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-11)
    starved = pds.IMEXRK("ARK3", linear_solver=lx.GMRES(rtol=1e-14, atol=1e-14, max_steps=1, restart=1))
    sol = pds.solve(prob, starved, dt0=0.1, throw=False)
    assert sol.result == pds.RESULTS.linear_solve_failed
    with pytest.raises(Exception, match="linear solve failed"):
        pds.solve(prob, starved, dt0=0.1)


def test_singular_stage_matrix_and_nonfinite():
    # I - h γ A is singular when h γ λ = 1 for an eigenvalue λ of A.
    g = pds.IMEX_L2.a_implicit[0][0]
    h = 0.1
    a = jnp.diag(jnp.array([1.0 / (h * g), -1.0]))
    prob = pds.NeuralODEProblem(lambda t, y, args: -y, jnp.array([1.0, 1.0]), (0.0, 1.0), linear=a)
    sol = pds.solve(prob, pds.IMEXRK("L2"), dt0=h, throw=False)
    assert sol.result == pds.RESULTS.linear_solve_failed
    with pytest.raises(Exception, match="linear solve failed"):
        pds.solve(prob, pds.IMEXRK("L2"), dt0=h)
    blow = pds.NeuralODEProblem(lambda t, y, args: y**3, jnp.array([10.0, 1.0]), (0.0, 1.0), linear=-jnp.eye(2))
    sol = pds.solve(blow, pds.IMEXRK("L2"), dt0=0.1, throw=False)
    assert sol.result == pds.RESULTS.nonfinite


def test_pid_controller_meets_tolerance():
    """ARK4 with PIDController on the split linear system: error near the tolerance, with
    far fewer steps than the explicit stability limit would need."""
    m, y0 = split_linear_system(11)
    exact = scipy.linalg.expm(m) @ y0
    prob = pds.NeuralODEProblem(linear_explicit, jnp.asarray(y0), (0.0, 1.0), 0.3 * jnp.asarray(m), linear=0.7 * jnp.asarray(m))
    sol = pds.solve(prob, pds.IMEXRK("ARK4"), controller=pds.PIDController(rtol=1e-7, atol=1e-9))
    assert np.linalg.norm(np.asarray(sol.ys[-1]) - exact) < 1e-5
    assert int(sol.stats["num_accepted_steps"]) < 200


def test_backward_time():
    m, y0 = split_linear_system(3)
    prob = pds.NeuralODEProblem(linear_explicit, jnp.asarray(y0), (1.0, 0.0), 0.3 * jnp.asarray(m),
                                linear=0.7 * jnp.asarray(m), backward=True)
    sol = pds.solve(prob, pds.IMEXRK("ARK4"), dt0=0.01)
    np.testing.assert_allclose(sol.ys[-1], scipy.linalg.expm(-m) @ y0, rtol=1e-6)


def test_bad_input():
    f = lambda t, y, args: jax.tree.map(jnp.negative, y)  # noqa: E731
    with pytest.raises(ValueError, match="linear"):
        pds.solve(pds.NeuralODEProblem(f, jnp.ones(2), (0.0, 1.0)), pds.IMEXRK(), dt0=0.1)
    with pytest.raises(ValueError, match="y0"):
        pds.solve(pds.NeuralODEProblem(f, (jnp.ones(2), jnp.ones(2)), (0.0, 1.0), linear=lambda y: y),
                  pds.IMEXRK(), dt0=0.1)
    with pytest.raises(ValueError, match="tableau"):
        pds.IMEXRK("RK4")
    with pytest.raises(ValueError, match="IMEXRK cannot use ReversibleAdjoint; it takes: DiscreteAdjoint"):
        pds.solve(pds.NeuralODEProblem(f, jnp.ones(2), (0.0, 1.0), linear=-jnp.eye(2)), pds.IMEXRK(), dt0=0.1,
                  adjoint=pds.ReversibleAdjoint())
    with pytest.raises(TypeError, match="linear_solver"):
        pds.IMEXRK(linear_solver="lu")
    with pytest.raises(ValueError, match="linear"):
        pds.NeuralODEProblem(f, jnp.ones(3), (0.0, 1.0), linear=jnp.eye(2))
    with pytest.raises(ValueError, match="embedded"):
        pds.solve(pds.NeuralODEProblem(f, jnp.ones(2), (0.0, 1.0), linear=-jnp.eye(2)), pds.IMEXRK("L2"),
                  controller=pds.PIDController(rtol=1e-6, atol=1e-8))


@functools.lru_cache(maxsize=1)
def _ks64():
    from pdesolve.problems import ks_semidiscrete

    return ks_semidiscrete(64, tspan=(0.0, 200.0))


@pytest.mark.parametrize("name", ["L2", "ARK3", "ARK5"])
def test_kuramoto_sivashinsky_stability(name):
    """KS at N = 64 with Δt = 0.2 over 200 time units: IMEXRK stays on the attractor
    (bounded like the data, |u| < 10, and still chaotic: not decayed to a steady state)."""
    prob = _ks64()
    sol = pds.solve(prob, pds.IMEXRK(name), dt0=0.2, max_steps=1100, saveat=pds.SaveAt(ts=jnp.linspace(0.0, 200.0, 101)))
    assert float(jnp.max(jnp.abs(sol.ys))) < 10.0
    assert float(jnp.std(sol.ys[-20:] - sol.ys[-20:].mean(0))) > 0.1


def test_kuramoto_sivashinsky_explicit_rk4_blows_up():
    """The same Δt = 0.2 with explicit RK4 on G + A (stability limit ~2.5e-3 from the
    hyper-diffusion eigenvalue -1112) produces non-finite states within a few steps."""
    sol = pds.solve(_ks64(), pds.RK4(), dt0=0.2, max_steps=1100, throw=False)
    assert sol.result == pds.RESULTS.nonfinite
    assert int(sol.stats["num_accepted_steps"]) < 50


# ----------------------------------------------------------------------------- issue 19

# y' = y² + 100 − 100 y, split as explicit G = y² + 100 and implicit A = −100: the stable
# fixed point is the root of y² − 100 y + 100 = 0 near 1, 50 − √2400 = 100 / (50 + √2400).
STEADY = 100.0 / (50.0 + np.sqrt(2400.0))


def steady_field(t, y, args):
    return y**2 + 100.0


@functools.lru_cache(maxsize=None)
def steady_solver(name):
    """Jitted `dt0 -> (y(10), result)` with constant steps; `name=None` is the default tableau."""
    solver = pds.IMEXRK() if name is None else pds.IMEXRK(name)

    @jax.jit
    def run(dt0):
        prob = pds.NeuralODEProblem(steady_field, jnp.zeros(1), (0.0, 10.0), linear=jnp.array([[-100.0]]))
        sol = pds.solve(prob, solver, dt0=dt0, max_steps=128, throw=False)
        return sol.ys[-1, 0], sol.result

    return run


def test_default_tableau_keeps_the_steady_state_at_large_steps():
    """At h|λ| = 10 and 100 the default tableau converges to the true fixed point (1e-6):
    its explicit and implicit parts share the nodes c (so a steady state of G + A y is a
    fixed point of every stage) and the implicit part is stiffly accurate and L-stable.
    L2 (c = (0, 1), c̃ = (γ, 1 − γ)) converges to −2.005 at h|λ| = 10 and reports success —
    the counter-example in docs/imex.md."""
    tab = pds.IMEXRK().tableau
    assert tab.stiffly_accurate and tab.c_explicit == tab.c_implicit
    for dt in (0.1, 1.0):
        y, result = steady_solver(None)(jnp.asarray(dt))
        assert result == pds.RESULTS.successful
        assert abs(float(y) - STEADY) < 1e-6, (dt, float(y))
    y, result = steady_solver("L2")(jnp.asarray(0.1))
    assert result == pds.RESULTS.successful
    assert float(y) == pytest.approx(-2.0053371, abs=1e-6)


def minus_y(t, y, args):
    return -y


def zero_field(t, y, args):
    return jnp.zeros_like(y)


def _default_gamma():
    return next(d for d in pds.IMEXRK().tableau.implicit_diagonal if d != 0.0)


def test_stage_matrix_zero_by_cancellation_is_singular():
    """`linear = I / (h γ)` makes `I − h γ A` zero up to rounding (in numpy exactly 0 at
    h = 0.1, and 1.1e-16 I at the first h = k/1000 where rounding leaves it nonzero: 0.013 for
    ARK3): singular, although its pivots are all alike. Reported as `linear_solve_failed` at
    the first step (pivots are compared with the size of `I` and `h γ A`, not only with each
    other), not as a successful solve returning ~1e100 (before the fix; over a longer span
    the states overflowed and only then was a solve blamed)."""
    g = _default_gamma()
    rounded = next(k / 1000 for k in range(1, 1000) if 1.0 - (k / 1000 * g) * (1.0 / (k / 1000 * g)) != 0.0)
    for dt in (0.1, rounded):
        lin = jnp.eye(2) / (dt * g)
        m = np.eye(2) - (dt * g) * np.asarray(lin)
        assert np.max(np.abs(m)) <= 2.3e-16 and (dt == 0.1 or np.max(np.abs(m)) > 0.0)
        prob = pds.NeuralODEProblem(minus_y, jnp.ones(2), (0.0, 3 * dt), linear=lin)
        sol = pds.solve(prob, pds.IMEXRK(), dt0=dt, throw=False)
        assert sol.result == pds.RESULTS.linear_solve_failed, (dt, sol.ys[-1])
        assert int(sol.stats["num_steps"]) == 1


def test_near_singular_stage_matrix_still_solves():
    """`h γ λ = 1 − 1e-6` (a stage pivot 1e-6 next to ~1): not singular; one step with G = 0
    equals the implicit part's stability function `R(z) = 1 + z b̃ᵀ (I − z Ã)^{-1} 1`."""
    tab = pds.IMEXRK().tableau
    dt = 0.1
    lam = np.array([(1.0 - 1e-6) / (dt * _default_gamma()), -1.0])
    prob = pds.NeuralODEProblem(zero_field, jnp.ones(2), (0.0, dt), linear=jnp.diag(jnp.asarray(lam)))
    sol = pds.solve(prob, pds.IMEXRK(), dt0=dt, throw=False)
    assert sol.result == pds.RESULTS.successful
    at, bt = np.array(tab.a_implicit), np.array(tab.b_implicit)
    s = len(bt)
    exact = [1.0 + z * bt @ np.linalg.solve(np.eye(s) - z * at, np.ones(s)) for z in dt * lam]
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), exact, rtol=1e-8)


def nan_after_half(t, y, args):
    return jnp.where(t > 0.5, jnp.nan, 1.0) * y


def _nan_problem():
    return pds.NeuralODEProblem(nan_after_half, jnp.ones(2), (0.0, 1.0), linear=-jnp.eye(2))


def test_nonfinite_field_is_not_a_linear_solve_failure_constant_steps():
    """G turns NaN at t > 0.5 and feeds a stage solve (ARK3's third stage): with constant
    steps the accepted non-finite step is `RESULTS.nonfinite`, not `linear_solve_failed`."""
    sol = pds.solve(_nan_problem(), pds.IMEXRK("ARK3"), dt0=0.1, throw=False)
    assert sol.result == pds.RESULTS.nonfinite
    assert int(sol.stats["num_accepted_steps"]) == 5  # the steps ending at t <= 0.5


def _nan_pid_result():
    ctrl = pds.PIDController(rtol=1e-6, atol=1e-8)
    return pds.solve(_nan_problem(), pds.IMEXRK("ARK3"), dt0=0.1, controller=ctrl, max_steps=64, throw=False).result


def test_nonfinite_field_is_not_a_linear_solve_failure_pid():
    """Under PIDController the non-finite candidate is rejected like any other; the solve
    never blames the linear solver for it."""
    assert _nan_pid_result() != pds.RESULTS.linear_solve_failed


def test_nonfinite_field_under_pid_reports_nonfinite():
    """... and the shared integrator ends a run of non-finite rejections with `nonfinite`."""
    assert _nan_pid_result() == pds.RESULTS.nonfinite


def test_dtype_mismatch_between_y0_and_linear():
    """A state dtype different from the operator's raises at solve time, naming both."""
    f32, f64 = jnp.float32, jnp.float64
    cases = [
        (jnp.ones(2, f32), -jnp.eye(2, dtype=f64), "float32", "float64"),
        (jnp.ones(2, f64), -jnp.eye(2, dtype=f32), "float64", "float32"),
        (jnp.ones(2, f32), lx.MatrixLinearOperator(-jnp.eye(2, dtype=f64)), "float32", "float64"),
        (jnp.ones((3, 2), f32), -jnp.eye(2, dtype=f64), "float32", "float64"),
    ]
    for y0, lin, yd, ad in cases:
        prob = pds.NeuralODEProblem(minus_y, y0, (0.0, 1.0), linear=lin)
        with pytest.raises(TypeError, match=rf"`y0` has dtype {yd}.*`linear`.*{ad}.*astype"):
            pds.solve(prob, pds.IMEXRK(), dt0=0.1)
    a64 = -jnp.eye(2, dtype=f64)
    prob = pds.NeuralODEProblem(minus_y, jnp.ones(2, f32), (0.0, 1.0), linear=lambda y: a64 @ y)
    with pytest.raises(TypeError, match=r"`linear`.*returns float64"):
        pds.solve(prob, pds.IMEXRK(), dt0=0.1)
