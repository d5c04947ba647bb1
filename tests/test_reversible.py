"""ReversibleRK (and the ReversibleHeun / ALF baselines): exact reconstruction, gradients equal
to backprop through the stored discrete trajectory and to finite differences, the base
method's order, and gradient memory flat in the number of steps."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pdesolve as pds

from _ode_helpers import ALL_METHODS, as_f64, exact_linear, flat, linear_field, random_linear_system
from _strategies import bounded_floats, couplings, linear_systems, unit_vectors
from test_rk_order import STEPS


def _mlp(seed, n=2, width=16):
    mlp = eqx.nn.MLP(n + 1, n, width, 2, activation=jnp.tanh, key=jax.random.PRNGKey(seed))
    return jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, mlp)


_STATIC = eqx.partition(_mlp(0), eqx.is_inexact_array)[1]


def _f(t, y, p):
    return eqx.combine(p, _STATIC)(jnp.concatenate([y, t[None]]))


@jax.jit
def _roundtrip(p, y0, lam, h, n):
    """N forward steps then N inverse steps; also the largest |Y|, |Z| met going forward."""
    solver = pds.ReversibleRK(pds.RK4(), lam)

    def step(i, carry):
        s, size = carry
        s = solver.forward(_f, i * h, h, s, p)[0]
        return s, jnp.maximum(size, jnp.maximum(jnp.linalg.norm(s[0]), jnp.linalg.norm(s[1])))

    state, size = jax.lax.fori_loop(0, n, step, ((y0, y0), jnp.linalg.norm(y0)))
    zero = jax.tree.map(jnp.zeros_like, state)
    back = jax.lax.fori_loop(0, n, lambda i, s: solver.inverse_vjp(_f, (n - 1 - i) * h, h, s, zero, p)[0], state)
    return back, size


# A drawn nonzero initial value in R^2: a direction and a radius in [0.1, 2].
initial_values = st.tuples(unit_vectors(2), bounded_floats(0.1, 2.0)).map(lambda v: v[0] * v[1])


@settings(max_examples=10, deadline=None)
@given(net_key=st.integers(0, 2**16), y0=initial_values, lam=couplings(0.5, 0.9999), h=bounded_floats(1e-3, 0.05),
       n=st.integers(1, 1000))
def test_inverse_reconstructs_initial_state(net_key, y0, lam, h, n):
    """N forward then N inverse steps give back y0 to round-off, for a drawn network (its
    initialisation key), y0, coupling λ, step h and number of steps N: the error is at most
    (50 λ^-N + 2 N) ε times the largest state of the trajectory (ε = 2.2e-16).

    The inverse divides by λ each step, so round-off grows like λ^-N (measured 5-15 ε λ^-N
    once that dominates; N is capped where λ^-N <= 1e5, so all of N <= 1000 for λ >= 0.9885);
    near λ = 1 it accumulates like N ε (measured ~300 ε at N = 1000). The former fixed
    1e-10 · |y0| was 4.5 ε λ^-N at the cap, below the measured constant, and relative to y0
    alone (the field does not vanish at 0, so the states can be many times |y0|):
    hypothesis found y0 = (0.25, 0), λ = 0.875, N = 82 (error 1.2e-10 |y0|) and y0 = (1, 0),
    λ = 0.96875, N = 340, h = 0.035 (1.05e-10 of the largest state, 9.8 ε λ^-N)."""
    n = min(n, int(np.log(1e5) / np.log(1 / lam)))
    p = eqx.partition(_mlp(net_key), eqx.is_inexact_array)[0]
    y0 = as_f64(y0)
    (y_rec, z_rec), size = _roundtrip(p, y0, as_f64(lam), as_f64(h), n)
    tol = (50 * lam**-n + 2 * n) * np.finfo(np.float64).eps * float(size)
    assert float(jnp.linalg.norm(y_rec - y0)) <= tol, (float(jnp.linalg.norm(y_rec - y0)), tol)
    assert float(jnp.linalg.norm(z_rec - y0)) <= tol, (float(jnp.linalg.norm(z_rec - y0)), tol)


TS = jnp.array([0.2, 0.5, 1.0])
N = 50


def _loss_of(ys):
    return jnp.sum(ys**2) + jnp.sum(jnp.sin(ys[-1]))


def loss_solve(p, y0, solver):
    field = lambda t, y, args: _f(t, y, args)  # noqa: E731
    prob = pds.NeuralODEProblem(field, y0, (0.0, 1.0), p)
    return _loss_of(pds.solve(prob, solver, dt0=1.0 / N, saveat=pds.SaveAt(ts=TS)).ys)


def loss_stored(p, y0, solver):
    """Reference: the same scheme in a scan that stores the trajectory; plain backprop."""
    h = jnp.asarray(1.0 / N)
    state0 = solver.init_state(_f, jnp.asarray(0.0), y0, p)

    def body(s, k):
        s = solver.forward(_f, k * h, h, s, p)[0]
        return s, solver.output(s)

    _, traj = jax.lax.scan(body, state0, jnp.arange(N))
    return _loss_of(traj[jnp.array([10, 25, 50]) - 1])


SOLVERS = {
    "RK-Euler": pds.ReversibleRK(pds.Euler(), 0.9),
    "RK-Midpoint": pds.ReversibleRK(pds.Midpoint(), 0.99),
    "RK-RK4": pds.ReversibleRK(pds.RK4()),
    "RK-Dopri5": pds.ReversibleRK(pds.Dopri5(), 0.95),
    "ReversibleHeun": pds.ReversibleHeun(),
    "ALF": pds.ALF(),
}


@functools.lru_cache(maxsize=None)
def _grad_fns(name):
    solver = SOLVERS[name]
    g1 = jax.jit(jax.grad(lambda p, y0: loss_solve(p, y0, solver), argnums=(0, 1)))
    g2 = jax.jit(jax.grad(lambda p, y0: loss_stored(p, y0, solver), argnums=(0, 1)))
    return g1, g2


@pytest.mark.parametrize("name", list(SOLVERS))
def test_gradient_equals_stored_trajectory_backprop(name):
    p = eqx.partition(_mlp(1), eqx.is_inexact_array)[0]
    y0 = jnp.array([0.4, -0.6])
    g1, g2 = _grad_fns(name)
    a, b = flat(g1(p, y0)), flat(g2(p, y0))
    assert float(jnp.linalg.norm(a - b)) <= 1e-8 * float(jnp.linalg.norm(b))


@functools.lru_cache(maxsize=None)
def _coupled_loss_and_grad():
    """Jitted `loss(p, y0, λ)` of ReversibleRK(RK4, λ) and its gradient in (p, y0), λ traced."""

    def loss(p, y0, lam):
        return loss_solve(p, y0, pds.ReversibleRK(pds.RK4(), lam))

    return jax.jit(loss), jax.jit(jax.grad(loss, argnums=(0, 1)))


@settings(max_examples=10, deadline=None)
@given(y0=initial_values, lam=couplings(0.8, 1.0), direction_key=st.integers(0, 2**32 - 1))
def test_gradient_matches_central_differences(y0, lam, direction_key):
    """Directional derivative of the ReversibleRK(RK4, λ) loss vs central differences, for a
    drawn y0 and coupling λ in [0.8, 1] (λ = 1 included), along a standard normal direction
    in (θ, y0) drawn from a key (~350 coordinates). λ >= 0.8: the backward pass divides by λ
    each of the N = 50 steps, so round-off grows like λ^-50 <= 7e4 (at λ = 0.5, 1e15: the
    reconstruction check refuses the gradient, as it should)."""
    p = eqx.partition(_mlp(1), eqx.is_inexact_array)[0]
    y0, lam = as_f64(y0), as_f64(lam)
    loss, grad = _coupled_loss_and_grad()
    gp, gy = grad(p, y0, lam)
    keys = jax.random.split(jax.random.PRNGKey(direction_key), 2)
    leaves, treedef = jax.tree.flatten(p)
    vk = jax.random.split(keys[0], len(leaves))
    vp = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(vk, leaves)])
    vy = jax.random.normal(keys[1], (2,))
    eps = 1e-6
    plus = loss(jax.tree.map(lambda x, v: x + eps * v, p, vp), y0 + eps * vy, lam)
    minus = loss(jax.tree.map(lambda x, v: x - eps * v, p, vp), y0 - eps * vy, lam)
    fd = (plus - minus) / (2 * eps)
    ad = jnp.vdot(flat(gp), flat(vp)) + jnp.vdot(gy, vy)
    assert float(jnp.abs(fd - ad)) <= 1e-6 * max(1.0, float(jnp.abs(ad))), (float(fd), float(ad))


@functools.lru_cache(maxsize=None)
def _rev_solver(name):
    solver = pds.ReversibleRK(getattr(pds, name)())

    @jax.jit
    def run(a, y0, dt0, t1):
        prob = pds.NeuralODEProblem(linear_field, y0, (0.0, t1), a)
        return pds.solve(prob, solver, dt0=dt0, max_steps=10_000).ys[-1]

    return run


# Tsit5's own (8.0, 160 .. 480 steps) leaves the reversible pair's finest errors at the
# round-off floor (~5e-14 = N eps) for the slowest drawn modes: coarser steps, errors >= 9e-11.
REVERSIBLE_STEPS = {"Tsit5": (4.0, [20, 30, 40, 60])}


@pytest.mark.parametrize("name", ALL_METHODS)
@settings(max_examples=10, deadline=None)
@given(system=linear_systems())
def test_order_equals_base_method(name, system):
    """The reversible pair (default coupling λ = 0.999) converges at the base method's order,
    for a drawn linear system (see `linear_systems`: no cancellation between modes).

    λ is not drawn: the order is the base order for every λ, but only asymptotically, once
    h << (1 - λ) / |μ| (or (1 - λ) N << 1): for λ in [0.9, 0.99] the coupling's relaxation
    over ~1 / (1 - λ) steps dominates these step ranges (Euler, y' = i y, λ = 0.9375, N = 64 ..
    512: local slopes 0.43 .. 0.95, order 1 only from N ~ 4096; Dopri5 up to 6.4)."""
    a, y0 = system.a, system.y0
    order = getattr(pds, name).tableau.order
    t1, ns = REVERSIBLE_STEPS.get(name, STEPS[order])
    exact = system.exact(t1)
    run = _rev_solver(name)
    errs = [np.linalg.norm(np.asarray(run(as_f64(a), as_f64(y0), as_f64(t1 / n), as_f64(t1))) - exact) for n in ns]
    slope = np.polyfit(np.log(t1 / np.array(ns)), np.log(errs), 1)[0]
    if name == "Tsit5":
        # Tsit5's stability polynomial matches exp(z) to almost 6th order (its z^6 error
        # coefficient is 0.031/720), so on linear problems the next term competes over every
        # step range we can resolve above round-off: the reversible pair shows slopes 5-6
        # (measured 5.26-6.30 over single modes ω in [1, 2], δ in [0, 0.3] with these steps)
        # and, where the two terms have opposite signs, more (hypothesis, with Tsit5's
        # (8.0, 160 .. 480): 6.88 for ω = 1.5625, δ = 0.125, errors falling 21x for 1.5x the
        # steps). Only "at least order 5" is a statement about the method.
        assert slope > order - 0.3, (name, slope, errs)
    else:
        assert abs(slope - order) < 0.3, (name, slope, errs)


def test_adaptive_steps_and_saving():
    a, y0 = random_linear_system(12)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, 2.0), as_f64(a))
    ts = np.array([0.0, 0.5, 1.5, 2.0])
    sol = pds.solve(prob, pds.ReversibleRK(pds.Tsit5()), controller=pds.PIDController(rtol=1e-9, atol=1e-11),
                    saveat=pds.SaveAt(t0=True, ts=ts))
    assert int(sol.stats["num_accepted_steps"]) > 5
    for t, y in zip(np.asarray(sol.ts), np.asarray(sol.ys)):
        np.testing.assert_allclose(y, exact_linear(a, y0, t), rtol=1e-7, atol=1e-8)
    # Gradient under adaptive steps (accepted steps frozen) against finite differences.
    def loss(y0):
        s = pds.solve(pds.remake(prob, y0=y0), pds.ReversibleRK(pds.Dopri5()),
                      controller=pds.PIDController(rtol=1e-10, atol=1e-12), saveat=pds.SaveAt(ts=ts))
        return jnp.sum(s.ys**2)
    g = jax.grad(loss)(as_f64(y0))
    v = jnp.ones_like(g)
    fd = (loss(as_f64(y0) + 1e-6 * v) - loss(as_f64(y0) - 1e-6 * v)) / 2e-6
    assert float(jnp.abs(jnp.vdot(g, v) - fd)) <= 1e-6 * max(1.0, float(jnp.abs(fd)))


def _grad_temp_bytes(n_steps, solver, max_steps):
    w = jax.random.normal(jax.random.PRNGKey(0), (64, 64)) / 8
    y0 = jnp.ones((16, 64))
    f = lambda t, y, w: jnp.tanh(y @ w)  # noqa: E731

    def loss(w):
        prob = pds.NeuralODEProblem(f, y0, (0.0, n_steps * 1e-3), w)
        return jnp.sum(pds.solve(prob, solver, dt0=1e-3, max_steps=max_steps).ys)

    return jax.jit(jax.grad(loss)).lower(w).compile().memory_analysis().temp_size_in_bytes


def test_gradient_memory_flat_in_number_of_steps():
    rev = pds.ReversibleRK(pds.RK4())
    small, big = _grad_temp_bytes(250, rev, 4096), _grad_temp_bytes(4000, rev, 4096)
    assert big <= 1.2 * small
    ck_small, ck_big = _grad_temp_bytes(250, pds.RK4(), 250), _grad_temp_bytes(4000, pds.RK4(), 4000)
    assert ck_big > 2 * ck_small  # the checkpointed RK gradient, for contrast, grows
    assert big < ck_big


def test_bad_inputs():
    with pytest.raises(ValueError, match="coupling"):
        pds.ReversibleRK(pds.RK4(), 0.0)
    with pytest.raises(ValueError, match="coupling"):
        pds.ReversibleRK(pds.RK4(), 1.5)
    with pytest.raises(TypeError, match="base"):
        pds.ReversibleRK(pds.RK4)
    a, y0 = random_linear_system(0)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, 1.0), as_f64(a))
    with pytest.raises(ValueError, match="steps=True"):
        pds.solve(prob, pds.ReversibleRK(pds.RK4()), dt0=0.1, saveat=pds.SaveAt(steps=True))
    with pytest.raises(ValueError, match="error estimate"):
        pds.solve(prob, pds.ReversibleHeun(), controller=pds.PIDController(rtol=1e-6, atol=1e-8))
    with pytest.raises(ValueError, match="no error estimate"):
        pds.solve(prob, pds.ReversibleRK(pds.RK4()), controller=pds.PIDController(rtol=1e-6, atol=1e-8))


def test_backward_time_pytree_state_and_vmap():
    back = pds.NeuralODEProblem(lambda t, y, a: -y, jnp.array([1.0]), (1.0, 0.0), backward=True)
    solver = pds.ReversibleRK(pds.RK4())
    sol = pds.solve(back, solver, dt0=0.01, saveat=pds.SaveAt(ts=[0.5, 0.0]))
    np.testing.assert_allclose(sol.ys.ravel(), np.exp([0.5, 1.0]), rtol=1e-9)
    g = jax.grad(lambda y0: pds.solve(pds.remake(back, y0=y0), solver, dt0=0.01,
                                      saveat=pds.SaveAt(ts=[0.5, 0.0])).ys.sum())(back.y0)
    np.testing.assert_allclose(g, np.exp(0.5) + np.e, rtol=1e-9)
    tree = pds.NeuralODEProblem(lambda t, y, a: {"a": -a * y["a"], "b": y["a"] * jnp.ones(2)},
                                {"a": jnp.array(1.0), "b": jnp.zeros(2)}, (0.0, 1.0), jnp.array(0.5))

    def loss(a):
        s = pds.solve(pds.remake(tree, args=a), solver, dt0=0.05, saveat=pds.SaveAt(ts=[0.5, 1.0]))
        return s.ys["b"].sum()

    def exact(a):
        return 2 * (1 - jnp.exp(-a * 0.5)) / a + 2 * (1 - jnp.exp(-a)) / a

    a = jnp.array([0.5, 1.0])
    np.testing.assert_allclose(jax.vmap(jax.grad(loss))(a), jax.vmap(jax.grad(exact))(a), rtol=1e-6)
