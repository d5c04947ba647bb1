"""RecordingField: the equation is traced once for its operators, then evaluated pointwise.

Checks (i) the exact operator sets recorded for sample equations and boundary conditions, and
(ii) that evaluating an equation on RBF-FD-applied arrays reproduces the autodiff residual of a
polynomial field of degree <= 4, which order-4 RBF-FD differentiates exactly (to round-off).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pdesolve as pds
from pdesolve._rbf_fd import assemble
from pdesolve._recording_field import (
    RecordingField,
    evaluate_pointwise,
    record_operators,
)
from pdesolve._sparse import EllMatrix

LAP, VAL, NRM = ("laplacian",), ("value",), ("normal",)


def _ops(fn, *, shape=(), normal=False, dim=2):
    return set(record_operators(fn, dim=dim, shape=shape, with_normal=normal))


# ---------------------------------------------------------------------------------------------
# recording
# ---------------------------------------------------------------------------------------------


def test_records_exact_operator_sets():
    assert _ops(lambda u, x, n: u.laplacian - jnp.sin(x[0])) == {LAP}
    assert _ops(lambda u, x, n: u.laplacian - jnp.exp(u.value)) == {LAP, VAL}
    assert _ops(lambda u, x, n: u.partial(1) + u.partial(0) * u.value) == {
        ("partial", 1),
        ("partial", 0),
        VAL,
    }
    # grad -> every first partial; hessian -> the three distinct second partials in 2-D.
    assert _ops(lambda u, x, n: jnp.sum(u.grad**2)) == {("partial", 0), ("partial", 1)}
    assert _ops(lambda u, x, n: jnp.trace(u.hessian)) == {
        ("partial", 0, 0),
        ("partial", 0, 1),
        ("partial", 1, 1),
    }
    # mixed partials are canonicalised (i <= j); partial() is the value
    assert _ops(lambda u, x, n: u.partial(1, 0) + u.partial()) == {
        ("partial", 0, 1),
        VAL,
    }
    # 3-D
    assert _ops(lambda u, x, n: u.partial(2), dim=3) == {("partial", 2)}


def test_records_boundary_operators():
    def ops(bc):
        return _ops(lambda u, x, n: bc.operator(u, n), normal=True)

    assert ops(pds.Dirichlet(1.0)) == {VAL}
    assert ops(pds.Neumann(0.0)) == {NRM}
    assert ops(pds.Robin(1.0, 1.0, 0.0)) == {NRM, VAL}
    assert ops(pds.Robin(0.0, 2.0, 0.0)) == {
        VAL
    }  # a zero coefficient's term is skipped
    # A direction that is not the point's normal is expanded into partials.
    assert _ops(
        lambda u, x, n: u.normal_derivative(jnp.array([1.0, 0.0])), normal=True
    ) == {
        ("partial", 0),
        ("partial", 1),
    }
    # ... and at interior points (no normal) the same holds.
    assert _ops(lambda u, x, n: u.normal_derivative(x)) == {
        ("partial", 0),
        ("partial", 1),
    }


def test_records_systems():
    def eq(u, x, n):
        return jnp.stack([u[0].laplacian - u[1].value, u[1].partial(0) - u.value[0]])

    assert _ops(eq, shape=(2,)) == {LAP, VAL, ("partial", 0)}
    out = jax.eval_shape(
        lambda: eq(RecordingField(None, _dim=2, _shape=(2,)), jnp.zeros(2), None)
    )
    assert out.shape == (2,)


def test_third_derivatives_raise_clearly():
    with pytest.raises(NotImplementedError, match=r"order 3.*pds\.PINN"):
        _ops(lambda u, x, n: u.partial(0, 0, 1))


def test_bad_access_errors():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        _ops(lambda u, x, n: u.partial(2))
    with pytest.raises(TypeError, match="scalar"):
        _ops(lambda u, x, n: u[0].value)
    with pytest.raises(IndexError, match="out of range"):
        _ops(lambda u, x, n: u[3].value, shape=(2,))
    u = RecordingField({LAP: jnp.array(1.0)}, _dim=2)
    with pytest.raises(KeyError, match="not recorded"):
        u.value  # noqa: B018


def test_shapes_of_grad_and_hessian():
    u = RecordingField(None, _dim=3, _shape=(2,))
    assert u.grad.shape == (2, 3)
    assert u.hessian.shape == (2, 3, 3)
    assert u.laplacian.shape == (2,)
    assert u[1].grad.shape == (3,)
    assert (u.dim, u.shape) == (3, (2,))


# ---------------------------------------------------------------------------------------------
# evaluation against autodiff on polynomials (RBF-FD of order 4 is exact for degree <= 4)
# ---------------------------------------------------------------------------------------------


def _equation(u, x, n):
    # nonlinear in the value and first derivatives, all second derivatives
    return (
        u.laplacian
        - jnp.exp(0.1 * u.value)
        + u.partial(0) * u.partial(1)
        - u.hessian[0, 1] * x[0]
        + jnp.sum(u.grad**2)
        + u.partial(1, 1)
    )


def _robin(u, x, n):
    return pds.Robin(2.0, 0.5, 0.0).operator(u, n) + u.normal_derivative(
        jnp.array([0.6, 0.8])
    )


@pytest.fixture(scope="module")
def disk_setup():
    cloud = pds.Ball([0.0, 0.0], 1.0).node_set(300)
    pde_ops = record_operators(_equation, dim=2)
    bc_ops = record_operators(_robin, dim=2, with_normal=True)
    mats = assemble(
        cloud,
        sorted(op for op in pde_ops if op != VAL),
        order=4,
        boundary_operators=sorted(op for op in bc_ops if op != VAL),
    )
    L = {op: EllMatrix.from_scipy(m) for op, m in mats["pde"].items()}
    B = {op: EllMatrix.from_scipy(m) for op, m in mats["boundary"].items()}
    return cloud, mats["nodes"], L, B, pde_ops, bc_ops


def _poly(coef):
    # all 15 monomials of total degree <= 4 in 2-D
    exps = [(i, k - i) for k in range(5) for i in range(k + 1)]

    def p(x):
        return sum(c * x[0] ** a * x[1] ** b for c, (a, b) in zip(coef, exps))

    return p


def _arrays(mats, ops, u_nodes, lo, hi):
    return {op: (u_nodes[lo:hi] if op == VAL else mats[op] @ u_nodes) for op in ops}


@pytest.fixture(scope="module")
def residuals(disk_setup):
    """jit-compiled ``coef -> (RBF-FD residuals, autodiff residuals)`` (interior, boundary)."""
    cloud, nodes, L, B, pde_ops, bc_ops = disk_setup
    n_i, n_b = cloud.n_interior, cloud.n_boundary
    rows = jnp.asarray(cloud.points)
    bpts, bnrm = jnp.asarray(cloud.boundary), jnp.asarray(cloud.normals)
    nodes = jnp.asarray(nodes)

    @jax.jit
    def compute(coef, L, B):
        p = _poly(coef)
        u_nodes = jax.vmap(p)(nodes)
        got = evaluate_pointwise(
            _equation, _arrays(L, pde_ops, u_nodes, 0, n_i + n_b), rows
        )
        want = jax.vmap(lambda x: _equation(pds.Field(p, x), x, None))(rows)
        got_b = evaluate_pointwise(
            _robin, _arrays(B, bc_ops, u_nodes, n_i, n_i + n_b), bpts, bnrm
        )
        want_b = jax.vmap(lambda x, n: _robin(pds.Field(p, x), x, n))(bpts, bnrm)
        return got, want, got_b, want_b

    return lambda coef: compute(jnp.asarray(coef, dtype=jnp.float64), L, B)


def _check_against_autodiff(residuals, coef):
    got, want, got_b, want_b = residuals(coef)
    scale = 1.0 + float(jnp.max(jnp.abs(want)))
    np.testing.assert_allclose(got, want, atol=1e-7 * scale)
    scale = 1.0 + float(jnp.max(jnp.abs(want_b)))
    np.testing.assert_allclose(got_b, want_b, atol=1e-8 * scale)


def test_evaluation_reproduces_autodiff_on_a_quartic(residuals):
    coef = np.linspace(-1.0, 1.0, 15) * np.array(
        [1, 2, -1, 0.5, 1, -2, 1, 1, 0.3, -1, 1, 2, -1, 0.5, 1]
    )
    _check_against_autodiff(residuals, coef)


@given(st.lists(st.floats(-2.0, 2.0), min_size=15, max_size=15))
def test_evaluation_reproduces_autodiff_on_random_polynomials(residuals, coef):
    _check_against_autodiff(residuals, np.asarray(coef))


def test_evaluation_of_systems_and_jit_grad():
    # Two components, each op array has shape (n, 2); u[j] picks the component.
    def eq(u, x, n):
        return jnp.stack(
            [u[0].laplacian * u[1].value, u[1].partial(0) - u.value[0] ** 2]
        )

    n = 5
    key = jax.random.PRNGKey(0)
    arrays = {
        op: jax.random.normal(k, (n, 2))
        for op, k in zip([LAP, VAL, ("partial", 0)], jax.random.split(key, 3))
    }
    pts = jnp.zeros((n, 2))
    out = jax.jit(lambda a: evaluate_pointwise(eq, a, pts, shape=(2,)))(arrays)
    want = jnp.stack(
        [
            arrays[LAP][:, 0] * arrays[VAL][:, 1],
            arrays[("partial", 0)][:, 1] - arrays[VAL][:, 0] ** 2,
        ],
        axis=1,
    )
    np.testing.assert_allclose(out, want, rtol=1e-14)
    # differentiable w.r.t. the arrays (the sparse products' outputs)
    g = jax.grad(lambda a: jnp.sum(evaluate_pointwise(eq, a, pts, shape=(2,)) ** 2))(
        arrays
    )
    assert set(g) == set(arrays) and all(np.all(np.isfinite(v)) for v in g.values())
