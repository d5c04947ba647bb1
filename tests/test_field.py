"""Field: autodiff derivatives at one point against closed forms, under jit / vmap / grad."""

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from pdesolve._field import AbstractField, Field

TOL = dict(rtol=1e-12, atol=1e-12)

coordinate = st.floats(-2.0, 2.0, allow_nan=False)


def _random_unit_vector_3d(seed):
    n = np.random.default_rng(seed).normal(size=3)
    return n / np.linalg.norm(n)


# Evaluation points and unit normals, as numpy arrays.
point_2d = st.tuples(coordinate, coordinate).map(np.array)
point_3d = st.tuples(coordinate, coordinate, coordinate).map(np.array)
normal_2d = st.floats(0.0, 2 * np.pi).map(lambda angle: np.array([np.cos(angle), np.sin(angle)]))
normal_3d = st.integers(0, 2**31 - 1).map(_random_unit_vector_3d)


# -- test functions and their closed forms ----------------------------------------------------


def poly(x):
    return x[0] ** 3 * x[1] + 2.0 * x[1] ** 2 - x[0] * x[1] + 5.0


def poly_exact(x):
    x0, x1 = x
    grad = np.array([3 * x0**2 * x1 - x1, x0**3 + 4 * x1 - x0])
    hess = np.array([[6 * x0 * x1, 3 * x0**2 - 1], [3 * x0**2 - 1, 4.0]])
    return poly(x), grad, hess


def trig(x):
    return jnp.sin(x[0]) * jnp.cos(2.0 * x[1]) * jnp.exp(0.5 * x[2])


def trig_exact(x):
    x0, x1, x2 = x
    e = np.exp(0.5 * x2)
    s0, c0, s1, c1 = np.sin(x0), np.cos(x0), np.sin(2 * x1), np.cos(2 * x1)
    v = s0 * c1 * e
    grad = np.array([c0 * c1 * e, -2 * s0 * s1 * e, 0.5 * v])
    h01 = -2 * c0 * s1 * e
    h02 = 0.5 * c0 * c1 * e
    h12 = -s0 * s1 * e
    hess = np.array([[-v, h01, h02], [h01, -4 * v, h12], [h02, h12, 0.25 * v]])
    return v, grad, hess


def vec(x):
    return jnp.stack([jnp.sin(x[0]) * jnp.cos(x[1]), x[0] ** 2 * x[1] ** 3])


def vec_exact(x):
    x0, x1 = x
    s0, c0, s1, c1 = np.sin(x0), np.cos(x0), np.sin(x1), np.cos(x1)
    value = np.array([s0 * c1, x0**2 * x1**3])
    grad = np.array([[c0 * c1, -s0 * s1], [2 * x0 * x1**3, 3 * x0**2 * x1**2]])
    hess = np.array(
        [
            [[-s0 * c1, -c0 * s1], [-c0 * s1, -s0 * c1]],
            [[2 * x1**3, 6 * x0 * x1**2], [6 * x0 * x1**2, 6 * x0**2 * x1]],
        ]
    )
    return value, grad, hess


POLY_PARTIALS = ((), (0,), (1,), (0, 1), (1, 0), (0, 0), (0, 0, 1), (0, 0, 0, 1), (1, 1, 1))
TRIG_PARTIALS = tuple((i,) for i in range(3)) + tuple((i, j) for i in range(3) for j in range(3))


def _quantities(fn, x, n, partials=(), components=False):
    u = Field(fn, x)
    out = {
        "value": u.value,
        "grad": u.grad,
        "hessian": u.hessian,
        "laplacian": u.laplacian,
        "normal": u.normal_derivative(n),
        "partial": {axes: u.partial(*axes) for axes in partials},
    }
    if components:
        out["components"] = [
            {
                "value": c.value,
                "grad": c.grad,
                "laplacian": c.laplacian,
                "partial11": c.partial(1, 1),
                "normal": c.normal_derivative(n),
                "shape": c.shape,
            }
            for j in range(u.shape[0])
            for c in (u[j], u[j - u.shape[0]])
        ]
        out["iterated"] = [c.value for c in u]
    return out


# One compiled function per test function, shared by all hypothesis examples.
poly_q = jax.jit(lambda x, n: _quantities(poly, x, n, POLY_PARTIALS))
trig_q = jax.jit(lambda x, n: _quantities(trig, x, n, TRIG_PARTIALS))
vec_q = eqx.filter_jit(lambda x, n: _quantities(vec, x, n, ((0, 1),), components=True))


def _check(q, value, grad, hess, n):
    np.testing.assert_allclose(q["value"], value, **TOL)
    np.testing.assert_allclose(q["grad"], grad, **TOL)
    np.testing.assert_allclose(q["hessian"], hess, **TOL)
    np.testing.assert_allclose(q["laplacian"], np.trace(hess, axis1=-2, axis2=-1), **TOL)
    np.testing.assert_allclose(q["normal"], grad @ n, **TOL)


@given(point_2d, normal_2d)
def test_polynomial_scalar(x, n):
    value, grad, hess = poly_exact(x)
    q = poly_q(x, n)
    assert q["value"].shape == () and q["grad"].shape == (2,) and q["hessian"].shape == (2, 2)
    _check(q, value, grad, hess, n)
    p = q["partial"]
    np.testing.assert_allclose(p[()], value, **TOL)
    np.testing.assert_allclose(p[(0,)], grad[0], **TOL)
    np.testing.assert_allclose(p[(1,)], grad[1], **TOL)
    np.testing.assert_allclose(p[(0, 1)], hess[0, 1], **TOL)
    np.testing.assert_allclose(p[(1, 0)], hess[0, 1], **TOL)
    np.testing.assert_allclose(p[(0, 0)], hess[0, 0], **TOL)
    np.testing.assert_allclose(p[(0, 0, 1)], 6 * x[0], **TOL)
    np.testing.assert_allclose(p[(0, 0, 0, 1)], 6.0, **TOL)
    np.testing.assert_allclose(p[(1, 1, 1)], 0.0, **TOL)
    u = Field(poly, x)
    assert u.dim == 2 and u.shape == ()


@given(point_3d, normal_3d)
def test_trigonometric_scalar_3d(x, n):
    value, grad, hess = trig_exact(x)
    q = trig_q(x, n)
    _check(q, value, grad, hess, n)
    for i in range(3):
        np.testing.assert_allclose(q["partial"][(i,)], grad[i], **TOL)
        for j in range(3):
            np.testing.assert_allclose(q["partial"][(i, j)], hess[i, j], **TOL)


@given(point_2d, normal_2d)
def test_two_component_field(x, n):
    value, grad, hess = vec_exact(x)
    q = vec_q(x, n)
    assert q["grad"].shape == (2, 2) and q["hessian"].shape == (2, 2, 2)
    assert q["laplacian"].shape == (2,)
    _check(q, value, grad, hess, n)
    assert Field(vec, x).shape == (2,)
    np.testing.assert_allclose(q["partial"][(0, 1)], hess[:, 0, 1], **TOL)
    # u[j] and u[j - 2] (negative index) both give component j
    for idx, c in enumerate(q["components"]):
        j = idx // 2
        assert c["shape"] == ()
        np.testing.assert_allclose(c["value"], value[j], **TOL)
        np.testing.assert_allclose(c["grad"], grad[j], **TOL)
        np.testing.assert_allclose(c["laplacian"], np.trace(hess[j]), **TOL)
        np.testing.assert_allclose(c["partial11"], hess[j, 1, 1], **TOL)
        np.testing.assert_allclose(c["normal"], grad[j] @ n, **TOL)
    np.testing.assert_allclose(np.stack(q["iterated"]), value, **TOL)


# -- a small network: jit, vmap, parameter gradients -------------------------------------------

MLP = eqx.nn.MLP(3, 1, width_size=16, depth=2, activation=jnp.tanh, key=jax.random.key(0))


def mlp_scalar(model, x):
    return model(x)[0]


@eqx.filter_jit
def _lap_vs_hessian(model, xs):
    def one(x):
        u = Field(lambda y: mlp_scalar(model, y), x)
        return u.laplacian, jnp.trace(jax.hessian(lambda y: mlp_scalar(model, y))(x)), u.grad

    return jax.vmap(one)(xs)


def test_laplacian_is_hessian_trace_under_jit_and_vmap():
    assert MLP.layers[0].weight.dtype == jnp.float64
    xs = jax.random.normal(jax.random.key(1), (50, 3))
    lap, trace, grad = _lap_vs_hessian(MLP, xs)
    assert lap.shape == (50,) and grad.shape == (50, 3)
    np.testing.assert_allclose(lap, trace, rtol=1e-12, atol=1e-12)
    for i in (0, 17, 49):  # spot-check against an eager, unbatched evaluation
        u = Field(lambda y: mlp_scalar(MLP, y), xs[i])
        np.testing.assert_allclose(lap[i], u.laplacian, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(grad[i], jax.grad(lambda y: mlp_scalar(MLP, y))(xs[i]), **TOL)


def test_components_under_jit_and_vmap():
    xs = np.random.default_rng(0).uniform(-2, 2, size=(50, 2))

    @jax.jit
    def per_point(xs):
        def one(x):
            u = Field(vec, x)
            return u[1].laplacian, u[0].partial(0, 1), u.laplacian

        return jax.vmap(one)(xs)

    lap1, mixed0, lap = per_point(xs)
    x0, x1 = xs[:, 0], xs[:, 1]
    np.testing.assert_allclose(lap1, 2 * x1**3 + 6 * x0**2 * x1, **TOL)
    np.testing.assert_allclose(mixed0, -np.cos(x0) * np.sin(x1), **TOL)
    np.testing.assert_allclose(lap[:, 0], -2 * np.sin(x0) * np.cos(x1), **TOL)


def test_module_as_fn_is_a_pytree_child():
    """A Field holding an eqx.Module: its parameters are leaves and components stay pytrees."""
    fn = eqx.nn.MLP(2, 2, width_size=8, depth=1, activation=jnp.tanh, key=jax.random.key(3))
    u = Field(fn, jnp.array([0.3, -0.2]))
    leaves = jax.tree_util.tree_leaves(eqx.filter(u[1], eqx.is_inexact_array))
    assert sum(leaf.size for leaf in leaves) == sum(
        leaf.size for leaf in jax.tree_util.tree_leaves(eqx.filter(fn, eqx.is_inexact_array))
    ) + 2  # the network's parameters plus the point x
    np.testing.assert_allclose(u[1].value, fn(u.x)[1], **TOL)


XS_GRAD = jax.random.normal(jax.random.key(2), (20, 3))


@eqx.filter_jit
def _laplacian_loss(model):
    def residual(x):
        u = Field(lambda y: mlp_scalar(model, y), x)
        return u.laplacian + jnp.sin(u.value) * u.partial(0, 1)

    return jnp.mean(jax.vmap(residual)(XS_GRAD) ** 2)


def test_parameter_gradient_matches_finite_differences():
    params, static = eqx.partition(MLP, eqx.is_inexact_array)
    grads = eqx.filter_grad(_laplacian_loss)(MLP)
    flat_g, _ = jax.flatten_util.ravel_pytree(eqx.filter(grads, eqx.is_inexact_array))
    flat_p, unravel = jax.flatten_util.ravel_pytree(params)
    rng = np.random.default_rng(0)
    eps = 1e-5
    directions = [rng.normal(size=flat_p.shape)] + [np.eye(flat_p.size)[i] for i in (0, 40, 300)]
    for v in directions:
        plus = _laplacian_loss(eqx.combine(unravel(flat_p + eps * v), static))
        minus = _laplacian_loss(eqx.combine(unravel(flat_p - eps * v), static))
        fd = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(flat_g @ v, fd, rtol=1e-6, atol=1e-12)


def test_gradient_through_closed_over_scalar_parameter():
    x = jnp.array([0.4, -0.7])

    def loss(w):
        # laplacian of cos(w x0) x1^2 is -w^2 cos(w x0) x1^2 + 2 cos(w x0)
        return Field(lambda y: jnp.cos(w * y[0]) * y[1] ** 2, x).laplacian

    def dloss_exact(w):
        x0, x1 = x
        s, c = jnp.sin(w * x0), jnp.cos(w * x0)
        return (-2 * w * c + w**2 * x0 * s) * x1**2 - 2 * x0 * s

    for w in (0.3, 1.3):
        np.testing.assert_allclose(jax.jit(jax.grad(loss))(w), dloss_exact(w), **TOL)
    # a harmonic function of x for every w: its laplacian and the gradient of it vanish
    def harmonic_laplacian(w):
        return Field(lambda y: jnp.sin(w * y[0]) * jnp.exp(w * y[1]), x).laplacian

    harmonic = jax.grad(harmonic_laplacian)
    np.testing.assert_allclose(harmonic(1.3), 0.0, atol=1e-12)


# -- errors -----------------------------------------------------------------------------------


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="ONE point"):
        Field(poly, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="ONE point"):
        Field(poly, 1.0)
    with pytest.raises(TypeError, match="fn"):
        Field(3.0, jnp.zeros(2))
    u = Field(poly, jnp.array([0.1, 0.2]))
    with pytest.raises(TypeError, match="scalar"):
        u[0]
    with pytest.raises(ValueError, match="axes"):
        u.partial(2)
    with pytest.raises(TypeError, match="axes"):
        u.partial((0, 1))
    with pytest.raises(ValueError, match="`n`"):
        u.normal_derivative(jnp.ones(3))
    v = Field(vec, jnp.array([0.1, 0.2]))
    with pytest.raises(IndexError, match="out of range"):
        v[2]
    with pytest.raises(TypeError, match="int"):
        v[0.5]
    w = Field(lambda y: jnp.outer(y, y), jnp.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="shape"):
        w.value
    with pytest.raises(ValueError, match="shape"):
        w.shape


def test_integer_point_is_promoted_and_interface_is_abstract():
    u = Field(poly, jnp.array([1, 2]))
    assert jnp.issubdtype(u.x.dtype, jnp.floating)
    np.testing.assert_allclose(u.grad, poly_exact(np.array([1.0, 2.0]))[1], **TOL)
    assert isinstance(u, AbstractField)
    with pytest.raises(TypeError):
        AbstractField()
