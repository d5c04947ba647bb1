"""Boundary conditions: residuals on a disk boundary against closed forms; input validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from pdesolve._boundary import AbstractBoundaryCondition, Dirichlet, Neumann, Robin
from pdesolve._field import Field
from pdesolve._geometry import Ball

TOL = dict(rtol=1e-12, atol=1e-12)

CENTER = np.array([0.3, -0.2])
RADIUS = 1.7
DISK = Ball(CENTER, RADIUS)


def u_fn(x):
    return jnp.exp(x[0]) * jnp.sin(2.0 * x[1]) + x[0] * x[1] ** 2


def u_exact(x):
    """Value and gradient of u_fn for points of shape (n, 2)."""
    x0, x1 = x[:, 0], x[:, 1]
    value = np.exp(x0) * np.sin(2 * x1) + x0 * x1**2
    grad = np.stack(
        [np.exp(x0) * np.sin(2 * x1) + x1**2, 2 * np.exp(x0) * np.cos(2 * x1) + 2 * x0 * x1], 1
    )
    return value, grad


def g_fn(x, t):
    return jnp.cos(x[0]) + (0.0 if t is None else t * x[1])


def g_exact(x, t):
    return np.cos(x[:, 0]) + (0.0 if t is None else t * x[:, 1])


def _residuals(bc, xs, normals, t):
    return jax.vmap(lambda x, n: bc.residual(Field(u_fn, x), x, n, t))(xs, normals)


# The condition objects are arguments (pytrees), so all examples share one compilation.
residuals = eqx.filter_jit(_residuals)
steady_residuals = eqx.filter_jit(lambda bc, xs, normals: _residuals(bc, xs, normals, None))


@given(
    st.integers(0, 2**31 - 1),
    st.floats(-3.0, 3.0),
    st.floats(0.1, 2.0),
    st.floats(-2.0, 2.0),
    st.floats(0.0, 2.0),
)
def test_residuals_on_disk_match_closed_forms(seed, g0, alpha, beta, t):
    xs, normals = DISK.sample_boundary(jax.random.key(seed), 32)
    xs_np, n_np = np.asarray(xs), np.asarray(normals)
    np.testing.assert_allclose(n_np, (xs_np - CENTER) / RADIUS, rtol=0, atol=1e-12)
    value, grad = u_exact(xs_np)
    dn = np.sum(grad * n_np, axis=1)
    g = g_exact(xs_np, t)
    # Coefficients as arrays: traced (not static) under filter_jit, so one compilation serves
    # every example.
    g0, alpha, beta, t = (jnp.asarray(v) for v in (g0, alpha, beta, t))

    np.testing.assert_allclose(residuals(Dirichlet(g0), xs, normals, t), value - g0, **TOL)
    np.testing.assert_allclose(residuals(Dirichlet(g_fn), xs, normals, t), value - g, **TOL)
    np.testing.assert_allclose(residuals(Neumann(g0), xs, normals, t), dn - g0, **TOL)
    np.testing.assert_allclose(residuals(Neumann(g_fn), xs, normals, t), dn - g, **TOL)
    np.testing.assert_allclose(
        residuals(Robin(alpha, beta, g_fn), xs, normals, t), alpha * dn + beta * value - g, **TOL
    )
    np.testing.assert_allclose(
        residuals(Robin(alpha, beta, g0), xs, normals, t), alpha * dn + beta * value - g0, **TOL
    )
    # steady problems: t=None is passed through to g
    np.testing.assert_allclose(
        steady_residuals(Dirichlet(g_fn), xs, normals), value - g_exact(xs_np, None), **TOL
    )


def test_defaults_and_degenerate_robin():
    xs, normals = DISK.sample_boundary(jax.random.key(0), 16)
    value, grad = u_exact(np.asarray(xs))
    dn = np.sum(grad * np.asarray(normals), axis=1)
    np.testing.assert_allclose(residuals(Dirichlet(), xs, normals, 0.0), value, **TOL)
    np.testing.assert_allclose(residuals(Neumann(), xs, normals, 0.0), dn, **TOL)
    np.testing.assert_allclose(residuals(Robin(0.0, 2.0), xs, normals, 0.0), 2 * value, **TOL)
    np.testing.assert_allclose(residuals(Robin(3, 0), xs, normals, 0.0), 3 * dn, **TOL)


def test_target_passes_t_and_returns_constants_as_float_arrays():
    seen = []

    def g(x, t):
        seen.append(t)
        return x[0] * 2.0

    bc = Dirichlet(g)
    x = jnp.array([0.5, 1.0])
    np.testing.assert_allclose(bc.target(x), 1.0)
    np.testing.assert_allclose(bc.target(x, 3.0), 1.0)
    assert seen == [None, 3.0]
    const = Neumann(2).target(x)
    assert const.dtype == jnp.float64 and const.shape == ()


def test_vector_valued_field_and_target():
    def w(x):
        return jnp.stack([x[0] ** 2, x[0] * x[1]])

    x = jnp.array([0.6, -0.8])
    n = jnp.array([0.6, -0.8])
    u = Field(w, x)
    grad = np.array([[2 * 0.6, 0.0], [-0.8, 0.6]])
    dn = grad @ np.asarray(n)
    g = jnp.array([1.0, -1.0])
    np.testing.assert_allclose(Dirichlet(g).residual(u, x, n), np.array([0.36, -0.48]) - g, **TOL)
    np.testing.assert_allclose(Neumann(g).residual(u, x, n), dn - g, **TOL)
    np.testing.assert_allclose(
        Robin(0.5, 2.0, g).residual(u, x, n), 0.5 * dn + 2 * np.array([0.36, -0.48]) - g, **TOL
    )
    # a scalar constant broadcasts over the components
    np.testing.assert_allclose(Dirichlet(1.0).residual(u, x, n), np.array([0.36, -0.48]) - 1, **TOL)


def test_gradient_with_respect_to_array_target():
    x = jnp.array([0.2, 0.4])
    n = jnp.array([1.0, 0.0])

    def loss(bc):
        return jnp.sum(bc.residual(Field(u_fn, x), x, n) ** 2)

    bc = Robin(1.0, 1.0, jnp.array(0.5))
    grad = eqx.filter_grad(loss)(bc)
    r = float(bc.residual(Field(u_fn, x), x, n))
    np.testing.assert_allclose(grad.g, -2 * r, rtol=1e-12)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="`g`"):
        Dirichlet(float("nan"))
    with pytest.raises(ValueError, match="`g`"):
        Neumann(jnp.array([1.0, jnp.nan]))
    with pytest.raises(ValueError, match="`g`"):
        Dirichlet(np.inf)
    with pytest.raises(ValueError, match="`g`"):
        Dirichlet(np.ones((2, 2)))
    with pytest.raises(TypeError, match="`g`"):
        Dirichlet("zero")
    with pytest.raises(ValueError, match="alpha"):
        Robin(0.0, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        Robin(np.inf, 1.0)
    with pytest.raises(ValueError, match="beta"):
        Robin(1.0, float("nan"))
    with pytest.raises(TypeError, match="alpha"):
        Robin("one", 1.0)
    with pytest.raises(TypeError, match="beta"):
        Robin(1.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="`g`"):
        Robin(1.0, 1.0, float("nan"))
    with pytest.raises(TypeError, match="`u`"):
        Dirichlet().operator(jnp.ones(2), jnp.ones(2))
    with pytest.raises(TypeError):
        AbstractBoundaryCondition()
