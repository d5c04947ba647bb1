"""EllMatrix: gather-sum sparse products equal dense products, under jit and grad."""

import equinox as eqx
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse
from hypothesis import given

import pdesolve as pds
from pdesolve._rbf_fd import assemble
from pdesolve._sparse import EllMatrix


def _random_sparse(seed, n_rows, n_cols, density, fmt="csr"):
    rng = np.random.default_rng(seed)
    mat = scipy.sparse.random(n_rows, n_cols, density=density, format=fmt, random_state=rng)
    return mat


@jax.jit
def _both_products(a, u, U):
    return a @ u, a.matvec(U)


@given(
    seed=st.integers(0, 2**31 - 1),
    n_rows=st.integers(1, 30),
    n_cols=st.integers(1, 30),
    density=st.floats(0.0, 1.0),
    fmt=st.sampled_from(["csr", "csc", "coo"]),
)
def test_matvec_equals_dense(seed, n_rows, n_cols, density, fmt):
    mat = _random_sparse(seed, n_rows, n_cols, density, fmt)
    dense = mat.toarray()
    ell = EllMatrix.from_scipy(mat)
    assert ell.shape == (n_rows, n_cols)
    assert ell.cols.dtype == jnp.int32 and ell.vals.dtype == jnp.float64
    rows = np.repeat(np.arange(n_rows), ell.cols.shape[1])
    rebuilt = np.zeros((n_rows, n_cols))
    np.add.at(rebuilt, (rows, np.asarray(ell.cols).ravel()), np.asarray(ell.vals).ravel())
    np.testing.assert_array_equal(rebuilt, dense)
    rng = np.random.default_rng(seed + 1)
    u = rng.standard_normal(n_cols)
    U = rng.standard_normal((n_cols, 3))
    Au, AU = _both_products(ell, u, U)  # one compilation per example keeps the test fast
    np.testing.assert_allclose(np.asarray(Au), dense @ u, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.asarray(AU), dense @ U, rtol=1e-13, atol=1e-13)


def test_padding_of_uneven_rows():
    # row 0: 3 entries, row 1: none, row 2: 1 entry -> k = 3, padded with column 0 / value 0
    dense = np.array([[0.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0], [5.0, 0.0, 0.0, 0.0]])
    ell = EllMatrix.from_scipy(scipy.sparse.csr_matrix(dense))
    assert ell.cols.shape == ell.vals.shape == (3, 3)
    np.testing.assert_array_equal(np.asarray(ell.cols[1]), [0, 0, 0])
    np.testing.assert_array_equal(np.asarray(ell.vals[1]), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(ell.vals[2]), [5.0, 0.0, 0.0])
    u = np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_array_equal(np.asarray(ell @ u), dense @ u)
    # an all-zero matrix still has k = 1
    empty = EllMatrix.from_scipy(scipy.sparse.csr_matrix((2, 5)))
    assert empty.cols.shape == (2, 1)
    np.testing.assert_array_equal(np.asarray(empty @ jnp.ones(5)), [0.0, 0.0])


def test_duplicate_entries_are_summed():
    coo = scipy.sparse.coo_matrix(([1.0, 2.0, 4.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 2))
    ell = EllMatrix.from_scipy(coo)
    np.testing.assert_array_equal(np.asarray(ell.to_dense()), [[0.0, 3.0], [4.0, 0.0]])
    np.testing.assert_array_equal(np.asarray(ell @ jnp.array([1.0, 2.0])), [6.0, 4.0])


def test_jit_and_grad_match_dense():
    mat = _random_sparse(0, 40, 25, 0.2)
    dense = mat.toarray()
    ell = EllMatrix.from_scipy(mat)
    rng = np.random.default_rng(1)
    u = jnp.asarray(rng.standard_normal(25))
    g = rng.standard_normal(40)

    @jax.jit
    def product(a, v):  # the matrix is an argument, not a closure
        return a @ v

    np.testing.assert_allclose(np.asarray(product(ell, u)), dense @ np.asarray(u), rtol=1e-13)

    def loss(v, a):
        return jnp.dot(jnp.asarray(g), a @ v)

    grad_u = jax.jit(jax.grad(loss))(u, ell)
    np.testing.assert_allclose(np.asarray(grad_u), dense.T @ g, rtol=1e-12, atol=1e-13)

    # matrix operand: d/dU sum(G * (A U)) = A^T G
    U = jnp.asarray(rng.standard_normal((25, 3)))
    G = rng.standard_normal((40, 3))
    grad_U = jax.grad(lambda V: jnp.sum(jnp.asarray(G) * (ell @ V)))(U)
    np.testing.assert_allclose(np.asarray(grad_U), dense.T @ G, rtol=1e-12, atol=1e-13)

    # gradient w.r.t. the stored values: d/dvals g^T (A u) = g[row] * u[col] (0 on padding)
    grads = eqx.filter_grad(lambda a: jnp.dot(jnp.asarray(g), a @ u))(ell)
    expected = g[:, None] * np.asarray(u)[np.asarray(ell.cols)]
    expected = np.where(np.asarray(ell.vals) != 0, expected, np.asarray(grads.vals))
    np.testing.assert_allclose(np.asarray(grads.vals), expected, rtol=1e-12)


def test_from_scipy_float32():
    mat = _random_sparse(3, 10, 12, 0.3)
    ell = EllMatrix.from_scipy(mat, dtype=jnp.float32)
    assert ell.vals.dtype == jnp.float32
    u = np.random.default_rng(0).standard_normal(12).astype(np.float32)
    out = ell @ jnp.asarray(u)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), mat.toarray() @ u, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="dtype"):
        EllMatrix.from_scipy(mat, dtype=np.int32)


def test_shape_errors():
    ell = EllMatrix.from_scipy(_random_sparse(0, 4, 6, 0.5))
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        ell @ jnp.ones(5)
    with pytest.raises(ValueError, match="operand"):
        ell @ jnp.ones((4, 2))
    with pytest.raises(ValueError, match="operand"):
        ell @ jnp.asarray(1.0)
    with pytest.raises(ValueError, match="`vals`"):
        EllMatrix(jnp.zeros((4, 2), jnp.int32), jnp.zeros((4, 3)), (4, 6))
    with pytest.raises(ValueError, match="`cols`"):
        EllMatrix(jnp.zeros((3, 2), jnp.int32), jnp.zeros((3, 2)), (4, 6))
    with pytest.raises(TypeError, match="`shape`"):
        EllMatrix(jnp.zeros((4, 2), jnp.int32), jnp.zeros((4, 2)), 4)
    with pytest.raises(ValueError, match="2-D"):
        EllMatrix.from_scipy(np.ones(3))


def test_rbf_fd_laplacian_as_ell_matrix():
    """An RBF-FD matrix (same stencil size in every row) converts without padding, and the
    jitted product reproduces SciPy's to round-off."""
    cloud = pds.Ball([0.0, 0.0], 1.0).node_set(200)
    out = assemble(cloud, ["laplacian"], order=3)
    L = out["pde"][("laplacian",)]
    ell = EllMatrix.from_scipy(L)
    assert ell.cols.shape == (L.shape[0], 31)  # stencil_size(3, 2, 2)
    x = out["nodes"]
    u = np.sin(x[:, 0]) * np.exp(x[:, 1])
    np.testing.assert_allclose(
        np.asarray(jax.jit(EllMatrix.matvec)(ell, jnp.asarray(u))), L @ u, rtol=1e-12, atol=1e-12
    )
