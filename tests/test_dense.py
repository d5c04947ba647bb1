"""Dense output (`SaveAt(dense=True)`, `Solution.evaluate(t)`): interpolation order, continuity,
agreement with the saved values, gradients, backward solves, IMEXRK, refusals."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds
from pdesolve._dense import horner

from _ode_helpers import as_f64, exact_linear, linear_field, random_linear_system


def _logistic(t, y, args):
    return args * y * (1.0 - y)


def _logistic_exact(t, y0, r):
    return 1.0 / (1.0 + (1.0 / y0 - 1.0) * np.exp(-r * t))


@functools.lru_cache(maxsize=None)
def _one_step(name):
    """A jitted `(h, thetas) -> y(θ h)` from one constant step of the logistic equation."""
    solver = getattr(pds, name)()

    @jax.jit
    def run(h, thetas):
        prob = pds.NeuralODEProblem(_logistic, jnp.array([0.2]), (jnp.zeros(()), h), jnp.asarray(1.5))
        sol = pds.solve(prob, solver, saveat=pds.SaveAt(dense=True), dt0=h, controller=pds.ConstantStepSize())
        return sol.evaluate(thetas * h)[:, 0]

    return run


# local order of the interpolant: one step from the exact state, error at interior θ ~ h^(min(p, q) + 1)
LOCAL_SLOPES = {"Dopri5": 5, "Tsit5": 5, "Bosh3": 4, "RK4": 4, "Heun": 3, "Euler": 2}


@pytest.mark.parametrize("name", sorted(LOCAL_SLOPES))
def test_interpolant_has_its_stated_local_order(name):
    hs = np.array([0.4, 0.2, 0.1, 0.05])
    thetas = jnp.array([0.3, 0.5, 0.8])
    errs = []
    for h in hs:
        y = np.asarray(_one_step(name)(as_f64(h), thetas))
        errs.append(np.max(np.abs(y - _logistic_exact(np.asarray(thetas) * h, 0.2, 1.5))))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - LOCAL_SLOPES[name]) < 0.35, (errs, slope)


@functools.lru_cache(maxsize=None)
def _dense_linear(name, adaptive):
    solver = getattr(pds, name)()

    @jax.jit
    def run(a, y0, t1, dt0, tq):
        prob = pds.NeuralODEProblem(linear_field, y0, (jnp.zeros(()), t1), a)
        if adaptive:
            kw = dict(controller=pds.PIDController(rtol=1e-7, atol=1e-7))
        else:
            kw = dict(dt0=dt0, controller=pds.ConstantStepSize())
        sol = pds.solve(prob, solver, saveat=pds.SaveAt(dense=True, ts=t1 * jnp.array([0.25, 0.5, 1.0])),
                        max_steps=2000, **kw)
        return sol.evaluate(tq), sol.ts, sol.ys, sol.interpolation

    return run


@given(
    seed=st.integers(0, 2**31 - 1),
    name=st.sampled_from(["Dopri5", "Tsit5", "Bosh3", "RK4"]),
    adaptive=st.booleans(),
    t1=st.floats(0.5, 4.0),
    n_steps=st.integers(8, 40),
    query=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
)
def test_dense_output_of_random_linear_systems(seed, name, adaptive, t1, n_steps, query):
    """Random oscillatory systems, random query times, fixed or adaptive steps: the dense
    output is close to the exact solution (within the method's error at its steps), equals
    the saved states at the saved times, and is continuous across step boundaries."""
    if adaptive and name == "RK4":
        adaptive = False  # RK4 has no error estimate
    a, y0 = random_linear_system(seed)
    tq = np.sort(np.asarray(query) * t1)
    run = _dense_linear(name, adaptive)
    y, ts, ys, interp = run(as_f64(a), as_f64(y0), as_f64(t1), as_f64(t1 / n_steps), as_f64(tq))
    exact = np.stack([exact_linear(a, y0, t) for t in tq])
    # the error at the steps' ends, then the interpolation's own (it can only be as good as both)
    h = t1 / n_steps
    order = {"Dopri5": 5, "Tsit5": 5, "Bosh3": 3, "RK4": 4}[name]
    bound = 1e-5 if adaptive else 20.0 * t1 * h**order + 1e-12
    assert np.max(np.abs(np.asarray(y) - exact)) < bound
    # at the saved times the dense output is the saved state (the steps land there)
    at_saved = np.asarray(jax.jit(lambda i, t: i.evaluate(t))(interp, ts))
    np.testing.assert_allclose(at_saved, np.asarray(ys), rtol=0, atol=1e-13)
    # continuity: the polynomial of step i at θ = 1 equals that of step i + 1 at θ = 0
    n = int(interp.num_steps)
    c = np.asarray(interp.coeffs)[:n]
    left = np.stack([np.asarray(horner(jnp.asarray(c[i]), jnp.asarray(1.0))) for i in range(n - 1)])
    right = c[1:, 0]
    np.testing.assert_allclose(left, right, rtol=0, atol=1e-12)


def test_global_dense_error_converges_at_min_p_q_plus_1():
    """Over a grid of 401 times in [0, 3], the dense output's error converges like
    h^min(p, q+1): the interpolant does not cost the method its order."""
    a, y0 = random_linear_system(3)
    tq = np.linspace(0.0, 3.0, 401)
    exact = np.stack([exact_linear(a, y0, t) for t in tq])
    for name, expected in (("Dopri5", 5), ("Bosh3", 3), ("RK4", 4)):
        errs, hs = [], [3.0 / 12, 3.0 / 24, 3.0 / 48]
        for h in hs:
            y = _dense_linear(name, False)(as_f64(a), as_f64(y0), as_f64(3.0), as_f64(h), as_f64(tq))[0]
            errs.append(np.max(np.abs(np.asarray(y) - exact)))
        slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
        assert abs(slope - expected) < 0.3, (name, errs, slope)


def test_fevals_count_the_extra_dense_evaluations():
    prob = pds.NeuralODEProblem(_logistic, jnp.array([0.2]), (0.0, 1.0), 1.5)
    for solver, per_step in ((pds.Dopri5(), 6), (pds.Bosh3(), 3), (pds.RK4(), 5), (pds.Euler(), 2)):
        sol = pds.solve(prob, solver, saveat=pds.SaveAt(dense=True), dt0=0.1, controller=pds.ConstantStepSize())
        fsal = 1 if solver.tableau.fsal else 0
        assert int(sol.stats["num_fevals"]) == per_step * 10 + fsal, type(solver).__name__


# --- gradients -------------------------------------------------------------------------------


def _oscillator(t, y, w):
    return jnp.stack([y[1], -w * y[0]])


def _dense_loss(w, y0, solver, adjoint, tq, **kw):
    prob = pds.NeuralODEProblem(_oscillator, y0, (0.0, 2.0), w)
    sol = pds.solve(prob, solver, saveat=pds.SaveAt(dense=True), adjoint=adjoint, **kw)
    return jnp.sum(sol.evaluate(tq) ** 2 * jnp.array([1.0, 0.3]))


TQ = jnp.linspace(0.05, 2.0, 9)
PID = dict(controller=pds.PIDController(rtol=1e-10, atol=1e-10))


@pytest.mark.parametrize(
    "solver, adjoint, kw",
    [(pds.Dopri5(), pds.RecursiveCheckpointAdjoint(), PID),
     (pds.Tsit5(), pds.DirectAdjoint(), PID),
     (pds.Bosh3(), pds.RecursiveCheckpointAdjoint(), dict(dt0=0.002, controller=pds.ConstantStepSize())),
     (pds.IMEXRK(), pds.DiscreteAdjoint(), None)],
    ids=["dopri5-checkpoint", "tsit5-direct", "bosh3-constant", "imex-discrete"],
)
def test_gradients_through_evaluate_match_finite_differences(solver, adjoint, kw):
    if kw is None:  # IMEX: the oscillator's linear part implicit, nothing explicit
        def loss(w, y0):
            A = jnp.array([[0.0, 1.0], [-1.0, 0.0]]) * jnp.array([[1.0], [w]])
            prob = pds.NeuralODEProblem(lambda t, y, a: jnp.zeros_like(y), y0, (0.0, 2.0), linear=A)
            sol = pds.solve(prob, solver, saveat=pds.SaveAt(dense=True), adjoint=adjoint, dt0=0.002,
                            controller=pds.ConstantStepSize())
            return jnp.sum(sol.evaluate(TQ) ** 2 * jnp.array([1.0, 0.3]))
    else:
        def loss(w, y0):
            return _dense_loss(w, y0, solver, adjoint, TQ, **kw)
    w, y0 = 1.3, jnp.array([1.0, 0.2])
    gw, gy = jax.jit(jax.grad(loss, argnums=(0, 1)))(w, y0)
    eps = 1e-6
    fw = (loss(w + eps, y0) - loss(w - eps, y0)) / (2 * eps)
    fy = np.array([(loss(w, y0 + eps * e) - loss(w, y0 - eps * e)) / (2 * eps) for e in jnp.eye(2)])
    np.testing.assert_allclose(float(gw), float(fw), rtol=2e-5)
    np.testing.assert_allclose(np.asarray(gy), fy, rtol=2e-5)


def test_vmap_of_grad_through_evaluate():
    """Members with different step sequences under vmap(grad): each equals its own grad."""
    def loss(w):
        return _dense_loss(w, jnp.array([1.0, 0.0]), pds.Tsit5(), None, TQ, **PID)
    ws = jnp.array([0.7, 1.3, 2.9])
    batched = jax.jit(jax.vmap(jax.grad(loss)))(ws)
    single = np.array([float(jax.grad(loss)(w)) for w in ws])
    assert np.all(np.isfinite(np.asarray(batched)))
    np.testing.assert_allclose(np.asarray(batched), single, rtol=1e-9)


def test_gradient_with_respect_to_time_is_the_vector_field():
    prob = pds.NeuralODEProblem(_oscillator, jnp.array([1.0, 0.0]), (0.0, 2.0), 1.0)
    sol = pds.solve(prob, pds.Dopri5(), saveat=pds.SaveAt(dense=True), **PID)
    t = 1.234
    dydt = jax.jacfwd(sol.evaluate)(t)
    np.testing.assert_allclose(np.asarray(dydt), [-np.sin(t), -np.cos(t)], atol=1e-6)


# --- backward, IMEX, refusals ----------------------------------------------------------------


def test_backward_solve_dense_output():
    T = 2.0
    y_T = jnp.array([np.cos(T), -np.sin(T)])
    prob = pds.NeuralODEProblem(_oscillator, y_T, (T, 0.0), 1.0, backward=True)
    sol = pds.solve(prob, pds.Tsit5(), saveat=pds.SaveAt(dense=True), controller=pds.PIDController(rtol=1e-9, atol=1e-9))
    tq = np.linspace(0.0, T, 13)
    np.testing.assert_allclose(np.asarray(sol.evaluate(tq)), np.stack([np.cos(tq), -np.sin(tq)], -1), atol=1e-7)


def test_imex_dense_output_is_third_order_hermite():
    """IMEXRK: cubic Hermite from the full field at the step's ends; the dense error over a
    grid converges at min(p, 4) (ARK3(2)4L[2]SA, p = 3)."""
    A = jnp.array([[0.0, 1.0], [-1.0, 0.0]])
    tq = np.linspace(0.0, 2.0, 201)
    exact = np.stack([np.cos(tq), -np.sin(tq)], -1)
    errs, hs = [], [0.2, 0.1, 0.05]
    for h in hs:
        prob = pds.NeuralODEProblem(lambda t, y, a: jnp.zeros_like(y), jnp.array([1.0, 0.0]), (0.0, 2.0), linear=A)
        sol = pds.solve(prob, pds.IMEXRK(), saveat=pds.SaveAt(dense=True), dt0=h, controller=pds.ConstantStepSize())
        errs.append(np.max(np.abs(np.asarray(sol.evaluate(tq)) - exact)))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - pds.IMEXRK().tableau.order) < 0.3, (errs, slope)


def test_evaluate_outside_the_solved_interval_raises():
    prob = pds.NeuralODEProblem(_oscillator, jnp.array([1.0, 0.0]), (0.0, 2.0), 1.0)
    sol = pds.solve(prob, pds.Dopri5(), saveat=pds.SaveAt(dense=True), **PID)
    with pytest.raises(ValueError, match="dense output covers"):
        sol.evaluate(jnp.array([0.5, 2.5]))
    # inside jit (no check possible) the value is NaN, not an extrapolation
    out = jax.jit(lambda s, t: s.evaluate(t))(sol, jnp.array([1.0, 2.5]))
    assert np.all(np.isfinite(np.asarray(out[0]))) and np.all(np.isnan(np.asarray(out[1])))


def test_failed_solve_covers_only_the_interval_reached():
    prob = pds.NeuralODEProblem(_oscillator, jnp.array([1.0, 0.0]), (0.0, 2.0), 1.0)
    sol = pds.solve(prob, pds.Dopri5(), saveat=pds.SaveAt(dense=True), dt0=0.1,
                    controller=pds.ConstantStepSize(), max_steps=5, throw=False)
    assert not sol.successful
    np.testing.assert_allclose(np.asarray(sol.evaluate(0.45)), [np.cos(0.45), -np.sin(0.45)], atol=1e-6)
    with pytest.raises(ValueError, match="covers"):
        sol.evaluate(1.0)


def test_array_times_without_dense_output_raise():
    prob = pds.NeuralODEProblem(_oscillator, jnp.array([1.0, 0.0]), (0.0, 2.0), 1.0)
    sol = pds.solve(prob, pds.Dopri5(), **PID)
    with pytest.raises(ValueError, match="SaveAt\\(dense=True\\)"):
        sol.evaluate(jnp.array([0.5, 1.0]))


@pytest.mark.parametrize(
    "solver, problem, match",
    [(pds.ReversibleRK(pds.Tsit5()), "ode", "ReversibleRK does not support SaveAt\\(dense=True\\)"),
     (pds.NeuralIVP(width=8, depth=1, n_samples=200, rank=10, fit_steps=10), "pde",
      "NeuralIVP does not support SaveAt\\(dense=True\\)")],
)
def test_dense_output_refused_where_the_method_cannot_provide_it(solver, problem, match):
    if problem == "ode":
        prob = pds.NeuralODEProblem(_oscillator, jnp.array([1.0, 0.0]), (0.0, 2.0), 1.0)
    else:
        prob = pds.PDEProblem(rhs=lambda u, x, t, a: -u.partial(0), u0=lambda x: jnp.exp(-10 * x[0] ** 2),
                              tspan=(0.0, 0.1), domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0))
    with pytest.raises(ValueError, match=match):
        pds.solve(prob, solver, saveat=pds.SaveAt(dense=True), dt0=0.05)


def test_saveat_dense_alone_keeps_the_final_state():
    s = pds.SaveAt(dense=True)
    assert s.dense and s.t1 and not s.t0
