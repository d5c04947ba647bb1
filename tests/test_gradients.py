"""Gradients through `solve` for explicit RK: vs an unrolled reference, finite differences,
under jit and vmap, and memory that does not grow as steps x stages."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pdesolve as pds
from pdesolve._rk import rk_step

from _ode_helpers import as_f64, flat
from _strategies import bounded_floats, float_arrays, save_grids


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


def loss_solve(field, y0, args, method="RK4", n=40, ts=TS, dt0=None):
    """`sum(y(ts)^2) + sum(sin y(t_last))` with constant steps `dt0` (default `1 / n`)."""
    prob = pds.NeuralODEProblem(field, y0, (0.0, 1.0), args)
    sol = pds.solve(prob, getattr(pds, method)(), dt0=1.0 / n if dt0 is None else dt0, saveat=pds.SaveAt(ts=ts))
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


# A drawn point (y0, args): y0 in [-1, 1]^3, scale in [0.2, 1.5], decay in [0, 1]. The field is
# scale * MLP(y, t) - decay * y with a tanh MLP (bounded output), so y stays O(1) on [0, 1].
points = st.tuples(float_arrays((3,), -1.0, 1.0), bounded_floats(0.2, 1.5), bounded_floats(0.0, 1.0)).map(
    lambda p: (as_f64(p[0]), {"scale": as_f64(p[1]), "decay": as_f64(p[2])})
)


@pytest.mark.parametrize("method", ["RK4", "Dopri5", "Bosh3"])
@settings(max_examples=10, deadline=None)
@given(point=points)
def test_gradient_equals_unrolled_backprop(method, point):
    """Checkpointed solve gradients equal plain backprop through the unrolled steps at a
    drawn (y0, args), to round-off."""
    y0, args = point
    params = (_model(), y0, args)
    g1, g2 = _grads(method)
    a, b = flat(g1(params)), flat(g2(params))
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@functools.lru_cache(maxsize=None)
def _drawn_loss_and_grad():
    """Jitted `loss(params, ts, dt0)` and its gradient in `params` (ts, dt0 traced)."""

    def loss(p, ts, dt0):
        return loss_solve(*p, ts=ts, dt0=dt0)

    return eqx.filter_jit(loss), eqx.filter_jit(eqx.filter_grad(loss))


@settings(max_examples=10, deadline=None)
@given(point=points, ts=save_grids(0.05, 1.0, 3), dt0=bounded_floats(1 / 60, 1 / 20),
       direction_key=st.integers(0, 2**32 - 1))
def test_gradient_matches_central_differences(point, ts, dt0, direction_key):
    """Directional derivative vs central differences (eps = 1e-6) at a drawn point (y0, args),
    drawn save times in [0.05, 1] (duplicates allowed) and step size dt0 in [1/60, 1/20]
    (the last step clipped to t1); the direction is a standard normal in all of (θ, y0,
    args) — 400 coordinates, drawn from a key rather than one by one. Truncation
    eps² |v|³ |∂³L| ~ 1e-8 (|v| ~ 20) and round-off 1e-16 |L| / eps ~ 1e-10 are far below
    the 1e-6 tolerance."""
    y0, args = point
    params = (_model(), y0, args)
    loss_fn, grad_fn = _drawn_loss_and_grad()
    ts, dt0 = as_f64(ts), as_f64(dt0)
    grad = grad_fn(params, ts, dt0)
    dyn, static = eqx.partition(params, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(dyn)
    keys = jax.random.split(jax.random.PRNGKey(direction_key), len(leaves))
    direction = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])
    eps = 1e-6
    plus = loss_fn(eqx.combine(jax.tree.map(lambda x, v: x + eps * v, dyn, direction), static), ts, dt0)
    minus = loss_fn(eqx.combine(jax.tree.map(lambda x, v: x - eps * v, dyn, direction), static), ts, dt0)
    fd = (plus - minus) / (2 * eps)
    ad = jnp.vdot(flat(grad), flat(direction))
    assert float(jnp.abs(fd - ad)) <= 1e-6 * max(1.0, float(jnp.abs(ad))), (float(fd), float(ad))


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
