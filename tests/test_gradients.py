"""Gradients through `solve` for explicit RK: vs an unrolled reference, finite differences,
under jit and vmap, and memory that does not grow as steps x stages."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds
from pdesolve._rk import rk_step


class Field(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, t, y, args):
        return args["scale"] * self.mlp(jnp.concatenate([y, t[None]])) - args["decay"] * y


def _model(seed=0, n=3):
    mlp = eqx.nn.MLP(n + 1, n, 16, 2, activation=jnp.tanh, key=jax.random.PRNGKey(seed))
    mlp = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, mlp)
    return Field(mlp)


TS = jnp.array([0.25, 0.5, 1.0])
ARGS = {"scale": jnp.array(0.7), "decay": jnp.array(0.3)}
Y0 = jnp.array([0.3, -0.2, 0.5])


def loss_solve(field, y0, args, method="RK4", n=40):
    prob = pds.NeuralODEProblem(field, y0, (0.0, 1.0), args)
    sol = pds.solve(prob, getattr(pds, method)(), dt0=1.0 / n, saveat=pds.SaveAt(ts=TS))
    return jnp.sum(sol.ys**2) + jnp.sum(jnp.sin(sol.ys[-1]))


def loss_unrolled(field, y0, args, method="RK4", n=40):
    """Reference: the same steps in a plain `lax.scan` storing the trajectory, differentiated
    by ordinary backprop (no checkpointing, no while loop)."""
    tab = getattr(pds, method).tableau
    dt = jnp.asarray(1.0 / n)

    def body(y, k):
        y = rk_step(tab, lambda t, y: field(t, y, args), k * dt, dt, y)[0]
        return y, y

    _, traj = jax.lax.scan(body, y0, jnp.arange(n))
    ys = traj[jnp.array([n // 4, n // 2, n]) - 1]
    return jnp.sum(ys**2) + jnp.sum(jnp.sin(ys[-1]))


@functools.lru_cache(maxsize=None)
def _grads(method):
    g1 = eqx.filter_jit(eqx.filter_grad(lambda p: loss_solve(p[0], p[1], p[2], method)))
    g2 = eqx.filter_jit(eqx.filter_grad(lambda p: loss_unrolled(p[0], p[1], p[2], method)))
    return g1, g2


def _flat(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))])


@pytest.mark.parametrize("method", ["RK4", "Dopri5", "Bosh3"])
def test_gradient_equals_unrolled_backprop(method):
    params = (_model(), Y0, ARGS)
    g1, g2 = _grads(method)
    a, b = _flat(g1(params)), _flat(g2(params))
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@given(seed=st.integers(0, 2**31 - 1))
def test_gradient_matches_central_differences(seed):
    """Directional derivative along a random direction in (θ, y0, args) vs central differences."""
    params = (_model(), Y0, ARGS)
    g, _ = _grads("RK4")
    grad = g(params)
    dyn, static = eqx.partition(params, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(dyn)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    direction = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])
    loss = eqx.filter_jit(lambda d: loss_solve(*eqx.combine(d, static)))
    eps = 1e-6
    plus = loss(jax.tree.map(lambda x, v: x + eps * v, dyn, direction))
    minus = loss(jax.tree.map(lambda x, v: x - eps * v, dyn, direction))
    fd = (plus - minus) / (2 * eps)
    ad = jnp.vdot(_flat(grad), _flat(direction))
    assert float(jnp.abs(fd - ad)) <= 1e-6 * max(1.0, float(jnp.abs(ad)))


def test_gradient_under_vmap_and_jit():
    field = _model()
    y0s = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    g = jax.jit(jax.vmap(jax.grad(lambda y0: loss_solve(field, y0, ARGS)), in_axes=0))
    batched = g(y0s)
    single = jnp.stack([jax.grad(lambda y0: loss_unrolled(field, y0, ARGS))(y) for y in y0s])
    np.testing.assert_allclose(batched, single, rtol=1e-10)
    # Forward solve under vmap with an adaptive controller and per-element step counts.
    prob = pds.NeuralODEProblem(field, Y0, (0.0, 1.0), ARGS)
    run = jax.jit(jax.vmap(lambda y0: pds.solve(pds.remake(prob, y0=y0), pds.Dopri5(),
                                                 controller=pds.PIDController(rtol=1e-8, atol=1e-10)).ys[-1]))
    out = run(y0s)
    for y0, o in zip(y0s, out):
        ref = pds.solve(pds.remake(prob, y0=y0), pds.Dopri5(), controller=pds.PIDController(rtol=1e-8, atol=1e-10))
        np.testing.assert_allclose(o, ref.ys[-1], rtol=1e-12)


def _temp_bytes(n_steps, stored):
    """Compiled temp memory of the gradient of a 4-stage RK4 solve over n_steps on a (64, 64) state."""
    w = jax.random.normal(jax.random.PRNGKey(0), (64, 64)) / 8
    y0 = jnp.ones((64, 64))
    f = lambda t, y, w: jnp.tanh(y @ w)  # noqa: E731

    def loss(w):
        if stored:  # naive reference: backprop through a scan storing every stage
            def body(y, _):
                return rk_step(pds.RK4.tableau, lambda t, y: f(t, y, w), 0.0, jnp.asarray(1e-3), y)[0], None
            y, _ = jax.lax.scan(body, y0, None, length=n_steps)
            return jnp.sum(y)
        prob = pds.NeuralODEProblem(f, y0, (0.0, n_steps * 1e-3), w)
        return jnp.sum(pds.solve(prob, pds.RK4(), dt0=1e-3, max_steps=n_steps).ys)

    compiled = jax.jit(jax.grad(loss)).lower(w).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_gradient_memory_does_not_grow_as_steps_times_stages():
    ours_small, ours_big = _temp_bytes(250, False), _temp_bytes(4000, False)
    naive_big = _temp_bytes(4000, True)
    state = 64 * 64 * 8
    # Checkpointing keeps O(sqrt(max_steps)) states: far below steps x stages x state.
    assert ours_big < 0.1 * naive_big
    assert ours_big < 4000 * state / 4
    assert ours_big / ours_small < 16 / 2  # sub-linear in the number of steps
