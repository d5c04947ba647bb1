"""ReversibleRK (and the ReversibleHeun / ALF baselines): exact reconstruction, gradients equal
to backprop through the stored discrete trajectory and to finite differences, the base
method's order, and gradient memory flat in the number of steps."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds

from _ode_helpers import ALL_METHODS, as_f64, exact_linear, linear_field, random_linear_system
from test_rk_order import STEPS


def _mlp(seed, n=2, width=16):
    mlp = eqx.nn.MLP(n + 1, n, width, 2, activation=jnp.tanh, key=jax.random.PRNGKey(seed))
    return jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, mlp)


_STATIC = eqx.partition(_mlp(0), eqx.is_inexact_array)[1]


def _f(t, y, p):
    return eqx.combine(p, _STATIC)(jnp.concatenate([y, t[None]]))


@jax.jit
def _roundtrip(p, y0, lam, h, n):
    solver = pds.ReversibleRK(pds.RK4(), lam)
    state = jax.lax.fori_loop(0, n, lambda i, s: solver.forward(_f, i * h, h, s, p)[0], (y0, y0))
    zero = jax.tree.map(jnp.zeros_like, state)
    return jax.lax.fori_loop(0, n, lambda i, s: solver.inverse_vjp(_f, (n - 1 - i) * h, h, s, zero, p)[0], state)


@given(seed=st.integers(0, 1000), lam=st.floats(0.5, 0.9999), h=st.floats(1e-3, 0.05), n=st.integers(1, 1000))
def test_inverse_reconstructs_initial_state(seed, lam, h, n):
    """Reconstruction to 1e-10 relative. The inverse divides by λ each step, so round-off
    grows like λ^-N; N is capped where λ^-N <= 1e5 (all of N <= 1000 for λ >= 0.9885)."""
    n = min(n, int(np.log(1e5) / np.log(1 / lam)))
    p = eqx.partition(_mlp(seed), eqx.is_inexact_array)[0]
    y0 = jax.random.normal(jax.random.PRNGKey(seed), (2,))
    y_rec, z_rec = _roundtrip(p, y0, as_f64(lam), as_f64(h), n)
    scale = float(jnp.linalg.norm(y0))
    assert float(jnp.linalg.norm(y_rec - y0)) <= 1e-10 * scale
    assert float(jnp.linalg.norm(z_rec - y0)) <= 1e-10 * scale


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


def _flat(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])


@pytest.mark.parametrize("name", list(SOLVERS))
def test_gradient_equals_stored_trajectory_backprop(name):
    p = eqx.partition(_mlp(1), eqx.is_inexact_array)[0]
    y0 = jnp.array([0.4, -0.6])
    g1, g2 = _grad_fns(name)
    a, b = _flat(g1(p, y0)), _flat(g2(p, y0))
    assert float(jnp.linalg.norm(a - b)) <= 1e-8 * float(jnp.linalg.norm(b))


@given(seed=st.integers(0, 2**31 - 1))
def test_gradient_matches_central_differences(seed):
    p = eqx.partition(_mlp(1), eqx.is_inexact_array)[0]
    y0 = jnp.array([0.4, -0.6])
    g, _ = _grad_fns("RK-RK4")
    gp, gy = g(p, y0)
    keys = jax.random.split(jax.random.PRNGKey(seed), 2)
    leaves, treedef = jax.tree.flatten(p)
    vk = jax.random.split(keys[0], len(leaves))
    vp = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(vk, leaves)])
    vy = jax.random.normal(keys[1], (2,))
    loss = jax.jit(lambda p, y0: loss_solve(p, y0, SOLVERS["RK-RK4"]))
    eps = 1e-6
    plus = loss(jax.tree.map(lambda x, v: x + eps * v, p, vp), y0 + eps * vy)
    minus = loss(jax.tree.map(lambda x, v: x - eps * v, p, vp), y0 - eps * vy)
    fd = (plus - minus) / (2 * eps)
    ad = jnp.vdot(_flat(gp), _flat(vp)) + jnp.vdot(gy, vy)
    assert float(jnp.abs(fd - ad)) <= 1e-6 * max(1.0, float(jnp.abs(ad)))


@functools.lru_cache(maxsize=None)
def _rev_solver(name):
    solver = pds.ReversibleRK(getattr(pds, name)())

    @jax.jit
    def run(a, y0, dt0, t1):
        prob = pds.NeuralODEProblem(linear_field, y0, (0.0, t1), a)
        return pds.solve(prob, solver, dt0=dt0, max_steps=10_000).ys[-1]

    return run


@pytest.mark.parametrize("name", ALL_METHODS)
def test_order_equals_base_method(name):
    a, y0 = random_linear_system(11)
    order = getattr(pds, name).tableau.order
    t1, ns = STEPS.get(name, STEPS[order])
    exact = exact_linear(a, y0, t1)
    run = _rev_solver(name)
    errs = [np.linalg.norm(np.asarray(run(as_f64(a), as_f64(y0), as_f64(t1 / n), as_f64(t1))) - exact) for n in ns]
    slope = np.polyfit(np.log(t1 / np.array(ns)), np.log(errs), 1)[0]
    if name == "Tsit5":
        # Tsit5's stability polynomial matches exp(z) to almost 6th order, and on linear
        # problems the reversible pair shows ~6 over every step range we can resolve above
        # round-off (measured 5.58-6.0 for t1 = 8-16, |λh| 0.1-0.02): at least order 5.
        assert order - 0.3 < slope < order + 1.0, (name, slope, errs)
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
