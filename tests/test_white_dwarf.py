"""Chandrasekhar's white dwarf equation (McCallum & Foster 2024 benchmark): problem, data, model."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds
from pdesolve import problems as P


@functools.lru_cache(maxsize=None)
def _benchmark_data():
    return P.white_dwarf_data()


def _f(prob, t, y):
    return np.asarray(prob.vector_field(jnp.asarray(t), jnp.asarray(y), prob.args))


def test_problem_constructs_with_the_benchmark_setup():
    prob = P.white_dwarf()
    assert isinstance(prob, pds.NeuralODEProblem)
    assert prob.tspan == (0.0, 5.0)
    np.testing.assert_array_equal(np.asarray(prob.y0), [1.0, 0.0])
    assert prob.y0.dtype == jnp.float64
    C, shift = (float(a) for a in prob.args)
    assert (C, shift) == (0.001, 0.5)
    assert "white_dwarf" in P.CATALOGUE and P.CATALOGUE["white_dwarf"][0] is P.white_dwarf
    assert P.white_dwarf(dtype=jnp.float32).y0.dtype == jnp.float32
    with pytest.raises(ValueError, match="shift"):
        P.white_dwarf(shift=0.0)


def test_vector_field_matches_hand_computed_values():
    prob = P.white_dwarf()
    # at the initial value: x' = 0, v' = -(1 - 0.001)^{3/2} - 0
    np.testing.assert_allclose(_f(prob, 0.0, [1.0, 0.0]), [0.0, -(0.999**1.5)], rtol=1e-15)
    # generic point: t_eff = 1.5 + 0.5 = 2
    x, v = 0.6, -0.3
    np.testing.assert_allclose(
        _f(prob, 1.5, [x, v]), [v, -((x * x - 0.001) ** 1.5) - 2 * v / 2.0], rtol=1e-15
    )
    # the parameters live in args
    p2 = pds.remake(prob, args=(jnp.asarray(0.25), jnp.asarray(1.0)))
    np.testing.assert_allclose(_f(p2, 1.0, [x, v]), [v, -((0.36 - 0.25) ** 1.5) - 2 * v / 2.0], rtol=1e-15)
    # guard: outside the star (x² < C) the density term vanishes, only -2v/t_eff is left
    np.testing.assert_allclose(_f(prob, 0.5, [0.01, -0.2]), [-0.2, 0.4], rtol=1e-15)
    np.testing.assert_allclose(_f(prob, 0.5, [-0.02, 0.1]), [0.1, -0.2], rtol=1e-15)


def test_guard_is_differentiable_across_the_surface():
    prob = P.white_dwarf()
    C = 0.001

    def g(x):
        return prob.vector_field(jnp.asarray(1.0), jnp.stack([x, jnp.asarray(-0.1)]), prob.args)[1]

    dg = jax.grad(g)
    for x in (0.0, 0.01, np.sqrt(C), 0.05, 0.5):
        d = float(dg(jnp.asarray(x)))
        assert np.isfinite(d)
        np.testing.assert_allclose(d, -3 * x * max(x * x - C, 0.0) ** 0.5, atol=1e-14)


def test_data_default_grid_and_dtype():
    ts, ys = _benchmark_data()
    assert isinstance(ts, np.ndarray) and isinstance(ys, np.ndarray)
    assert ts.dtype == ys.dtype == np.float64
    assert ts.shape == (1001,) and ys.shape == (1001, 2)
    np.testing.assert_allclose(np.diff(ts), P.WHITE_DWARF_DT, rtol=1e-12)
    assert ts[0] == 0.0 and ts[-1] == 5.0
    np.testing.assert_array_equal(ys[0], [1.0, 0.0])
    x, v = ys.T
    # x falls monotonically but stays outside the guard (x² > C) on [0, 5]
    assert np.all(np.diff(x) < 0) and np.all(v[1:] < 0)
    assert np.all(x**2 > 0.001)
    assert 0.03 < x[-1] < 0.06


def test_data_agrees_with_pds_dopri5():
    ts, ref = _benchmark_data()
    ts_sub, ref_sub = ts[::40], ref[::40]  # 26 save times
    sol = pds.solve(
        P.white_dwarf(),
        pds.Dopri5(),
        controller=pds.PIDController(rtol=1e-10, atol=1e-12),
        saveat=pds.SaveAt(ts=jnp.asarray(ts_sub)),
        max_steps=100_000,
    )
    ys = np.asarray(sol.ys)
    err = np.linalg.norm(ys - ref_sub, axis=-1) / np.linalg.norm(ref_sub, axis=-1)
    assert err.max() < 1e-7, err
    # and with explicit ts the generator returns exactly those times
    ts2, ys2 = P.white_dwarf_data(ts=ts_sub)
    np.testing.assert_array_equal(ts2, ts_sub)
    np.testing.assert_allclose(ys2, ref_sub, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError):
        P.white_dwarf_data(ts=[1.0, 0.5])
    with pytest.raises(ValueError):
        P.white_dwarf_data(n_times=1)


def test_model_shapes_and_parameter_count():
    model = P.white_dwarf_model(jax.random.PRNGKey(0))
    assert isinstance(model, P.WhiteDwarfMLP)
    params = [x for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))]
    assert sum(p.size for p in params) == 3 * 10 + 10 + 10 * 2 + 2 == 62
    assert model.mlp.in_size == 3 and model.mlp.out_size == 2
    assert model.mlp.width_size == 10 and model.mlp.depth == 1
    assert all(p.dtype == jnp.float64 for p in params)
    # the network sees [t, x, v]
    t, y = 0.7, jnp.asarray([0.9, -0.2])
    out = model(t, y, None)
    assert out.shape == (2,)
    np.testing.assert_allclose(np.asarray(out), np.asarray(model.mlp(jnp.asarray([0.7, 0.9, -0.2]))), rtol=1e-15)
    hidden = jnp.tanh(model.mlp.layers[0](jnp.asarray([0.7, 0.9, -0.2])))
    np.testing.assert_allclose(np.asarray(out), np.asarray(model.mlp.layers[1](hidden)), rtol=1e-14)
    small = P.white_dwarf_model(jax.random.PRNGKey(0), hidden=4, dtype=jnp.float32)
    assert sum(p.size for p in jax.tree.leaves(eqx.filter(small, eqx.is_inexact_array))) == 3 * 4 + 4 + 4 * 2 + 2
    assert small(0.0, jnp.zeros(2, jnp.float32), None).dtype == jnp.float32


def test_neural_problem_solves_and_differentiates():
    model = P.white_dwarf_model(jax.random.PRNGKey(1))
    prob = P.white_dwarf_neural_problem(model)
    assert isinstance(prob, pds.NeuralODEProblem)
    assert prob.tspan == (0.0, 5.0)
    np.testing.assert_array_equal(np.asarray(prob.y0), [1.0, 0.0])
    assert prob.y0.dtype == jnp.float64
    ts = jnp.linspace(0.0, 5.0, 11)
    _, data = P.white_dwarf_data(ts=np.asarray(ts))
    data = jnp.asarray(data)

    def loss(m):
        sol = pds.solve(
            P.white_dwarf_neural_problem(m),
            pds.RK4(),
            controller=pds.ConstantStepSize(),
            dt0=0.05,
            saveat=pds.SaveAt(ts=ts),
        )
        return jnp.mean((sol.ys[:, 0] - data[:, 0]) ** 2)

    value, grads = eqx.filter_value_and_grad(loss)(model)
    assert np.isfinite(float(value)) and float(value) > 0
    g = jnp.concatenate([x.ravel() for x in jax.tree.leaves(grads)])
    assert g.shape == (62,) and bool(jnp.all(jnp.isfinite(g))) and float(jnp.linalg.norm(g)) > 0
    # gradient agrees with a central finite difference along a random direction
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
    direction = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])
    eps = 1e-6

    def at(s):
        return loss(eqx.combine(jax.tree.map(lambda p, d: p + s * d, params, direction), static))

    fd = (float(at(eps)) - float(at(-eps))) / (2 * eps)
    ad = sum(float(jnp.vdot(a, d)) for a, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction)))
    np.testing.assert_allclose(ad, fd, rtol=1e-6, atol=1e-10)
