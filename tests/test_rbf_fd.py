"""RBF-FD differentiation matrices: polynomial exactness, convergence order, errors, assembly."""

import itertools
import math

import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings

import pdesolve as pds
from pdesolve._rbf_fd import (
    assemble,
    canonical_operator,
    derivative_order,
    ghost_nodes,
    polynomial_degree,
    rbf_fd_matrix,
    stencil_size,
)

from _strategies import bounded_floats, float_arrays, jittered_grids, unit_vectors

# ---------------------------------------------------------------------------------------------
# helpers: random polynomials and their exact derivatives
# ---------------------------------------------------------------------------------------------


def _exponents(d, degree):
    return np.array(
        [e for e in itertools.product(range(degree + 1), repeat=d) if sum(e) <= degree]
    ).reshape(-1, d)


def _poly_derivative(coefs, exps, y, beta):
    """sum_alpha c_alpha d^beta y^alpha at the rows of y (n, d); beta a multi-index."""
    out = np.zeros(y.shape[0])
    for c, alpha in zip(coefs, exps):
        if np.any(alpha < beta):
            continue
        factor = 1.0
        for a, b in zip(alpha, beta):
            factor *= math.perm(int(a), int(b))
        out += c * factor * np.prod(y ** (alpha - beta), axis=1)
    return out


def _unit(d, *idx):
    beta = np.zeros(d, dtype=int)
    for i in idx:
        beta[i] += 1
    return beta


def _exact(op, coefs, exps, y, scale, normals):
    """Exact operator values of p(x) = q((x - c) / scale) at y = (x - c) / scale."""
    d = y.shape[1]

    def deriv(*idx):
        return _poly_derivative(coefs, exps, y, _unit(d, *idx)) / scale ** len(idx)

    name = op[0]
    if name == "value":
        return deriv()
    if name == "laplacian":
        return sum(deriv(i, i) for i in range(d))
    if name == "partial":
        return deriv(*op[1:])
    normal = sum(normals[:, i] * deriv(i) for i in range(d))
    if name == "normal":
        return normal
    return op[1] * normal + op[2] * deriv()  # robin


def _jittered_grid(rng, d, per_dim):
    """A grid of per_dim^d points in [-1, 1]^d, each moved by up to 0.35 spacings."""
    axis = np.linspace(-1.0, 1.0, per_dim)
    grid = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
    spacing = 2.0 / (per_dim - 1)
    return grid + rng.uniform(-0.35, 0.35, grid.shape) * spacing


_GRID_PER_DIM = {1: 20, 2: 9, 3: 6}  # >= the largest stencil (p = 5, theta = 2): 15, 57, 169


# ---------------------------------------------------------------------------------------------
# (a) exactness on polynomials of degree <= ell
# ---------------------------------------------------------------------------------------------


# A drawn node set is hundreds of floats: "large base example" is the nature of the problem.
LARGE = [HealthCheck.large_base_example]


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("order", [2, 3, 4, 5])
@settings(max_examples=10, deadline=None, suppress_health_check=LARGE)
@given(data=st.data())
def test_operators_reproduce_polynomials(d, order, data):
    _check_polynomial_exactness(d, order, data)


# 3-D stencils are large (169 nodes for the Laplacian at order 5): fewer examples keep it fast
@pytest.mark.parametrize("order", [2, 3, 4, 5])
@settings(max_examples=2, deadline=None, suppress_health_check=LARGE)
@given(data=st.data())
def test_operators_reproduce_polynomials_3d(order, data):
    _check_polynomial_exactness(3, order, data)


def _placements(d, per_dim, lo=-1.5, hi=1.5):
    """`(scale, center, unit_nodes)`: scale 10^u (u in [lo, hi]), center in [-5, 5]^d and a
    jittered grid of per_dim^d nodes in about [-1, 1]^d (see `jittered_grids`; in 3-D the
    jitter is drawn per grid line, per node it would exceed hypothesis' entropy budget);
    the nodes are `center + scale * unit_nodes`."""
    return st.tuples(bounded_floats(lo, hi).map(lambda u: 10.0**u), float_arrays((d,), -5.0, 5.0),
                     jittered_grids(d, per_dim, per_node=d < 3))


def _coefficients(data, exps, label, top=False):
    """Drawn coefficients of a polynomial with exponents `exps`: from [-1, 1] (zeros allowed),
    or with `top`, of size in [0.5, 1] with a drawn sign (a homogeneous polynomial that
    really has the degree of `exps`)."""
    if not top:
        return data.draw(float_arrays((exps.shape[0],), -1.0, 1.0), label=label)
    size = data.draw(float_arrays((exps.shape[0],), 0.5, 1.0), label=label)
    sign = data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=size.size, max_size=size.size), label="signs")
    return size * np.array(sign)


def _homogeneous(d, degree):
    exps = _exponents(d, degree)
    return exps[exps.sum(axis=1) == degree]


def _check_polynomial_exactness(d, order, data):
    """Every operator reproduces a drawn polynomial of degree <= ell to round-off, at nodes
    and off nodes, on a drawn jittered grid shifted and scaled by drawn amounts, with a
    drawn stencil size (the default n plus 0 .. 6 nodes), drawn normals and Robin
    coefficients."""
    scale, center, unit_nodes = data.draw(_placements(d, _GRID_PER_DIM[d]), label="scale, center, nodes")
    nodes = center + scale * unit_nodes
    n_eval = 3 if d < 3 else 2  # per kind (on / off the nodes)
    idx = data.draw(st.lists(st.integers(0, nodes.shape[0] - 1), min_size=n_eval, max_size=n_eval, unique=True),
                    label="on-node points")
    off_node = center + scale * data.draw(float_arrays((n_eval, d), -1.0, 1.0), label="off-node points")
    points = np.concatenate([nodes[idx], off_node])
    normals = np.stack(data.draw(st.lists(unit_vectors(d), min_size=2 * n_eval, max_size=2 * n_eval), label="normals"))
    # |alpha|, |beta| >= 0.25: ("robin", 0, 0) would be the zero operator, and alpha = 0
    # changes the derivative order (("robin", 0, beta) is its own case below)
    nonzero = st.tuples(bounded_floats(0.25, 2.0), st.sampled_from([-1.0, 1.0])).map(lambda v: v[0] * v[1])
    alpha, beta = data.draw(st.tuples(nonzero, nonzero), label="robin alpha, beta")
    extra = data.draw(st.integers(0, 6), label="extra stencil nodes")

    if d < 3:
        ops = ["value", "laplacian", "normal", ("robin", alpha, beta), ("robin", 0.0, beta)]
        ops += [("partial", i) for i in range(d)]
        ops += [("partial", i, j) for i in range(d) for j in range(i, d)]
    else:  # 3-D stencils are large: one operator of each kind, drawn coordinates
        i, j = data.draw(st.permutations(range(d)), label="coordinates")[:2]
        ops = ["value", "laplacian", ("robin", alpha, beta), ("partial", i), ("partial", i, j)]
    for spec in ops:
        op = canonical_operator(spec)
        ell = polynomial_degree(order, derivative_order(op))
        n = min(stencil_size(order, derivative_order(op), d) + extra, nodes.shape[0])
        exps = _exponents(d, ell)
        coefs = _coefficients(data, exps, f"{op}: degree <= {ell}")
        u = _poly_derivative(coefs, exps, (nodes - center) / scale, np.zeros(d, dtype=int))
        D = rbf_fd_matrix(points, nodes, spec, order=order, normals=normals, stencil_size=n)
        assert D.shape == (points.shape[0], nodes.shape[0])
        assert np.all(np.diff(D.indptr) == n)
        approx = D @ u
        exact = _exact(op, coefs, exps, (points - center) / scale, scale, normals)
        # round-off scale of the weighted sum: sum_k |w_k| |u_k| (a real discretisation
        # error is >= 1e-8 relative to it, see below; measured round-off <= 4e-15)
        roundoff = abs(D) @ np.abs(u)
        np.testing.assert_array_less(np.abs(approx - exact), 1e-11 * roundoff + 1e-300)

        # ... and ell is sharp: a drawn homogeneous polynomial of degree ell + 1 (every
        # coefficient of size >= 0.5; the lower degrees are reproduced, as just checked) is
        # not. Measured (max over the points) >= 5e-5 in 2-D/3-D, >= 6e-8 in 1-D for
        # theta >= 1; 1-D interpolation (theta = 0) on 20 nodes is already accurate to
        # ~1e-9, so skipped.
        if d == 1 and derivative_order(op) == 0:
            continue
        exps = _homogeneous(d, ell + 1)
        coefs = _coefficients(data, exps, f"{op}: degree {ell + 1}", top=True)
        u = _poly_derivative(coefs, exps, (nodes - center) / scale, np.zeros(d, dtype=int))
        exact = _exact(op, coefs, exps, (points - center) / scale, scale, normals)
        assert np.max(np.abs(D @ u - exact) / (abs(D) @ np.abs(u))) > 1e-9


def test_value_at_nodes_is_identity():
    rng = np.random.default_rng(0)
    nodes = _jittered_grid(rng, 2, 8)
    D = rbf_fd_matrix(nodes, nodes, "value", order=3).toarray()
    np.testing.assert_allclose(D, np.eye(nodes.shape[0]), atol=1e-9)


def test_stencil_size_and_degree():
    # Sharma & Shankar 2022: ell = p + theta - 1, n = 2 C(ell + d, d) + 1
    assert polynomial_degree(4, 2) == 5
    assert stencil_size(4, 2, 2) == 2 * math.comb(7, 2) + 1 == 43
    assert stencil_size(2, 0, 1) == 2 * math.comb(2, 1) + 1 == 5
    assert [stencil_size(p, 2, 2) for p in (2, 3, 4, 5)] == [21, 31, 43, 57]
    assert stencil_size(5, 2, 3) == 169
    assert derivative_order(("robin", 0, 1)) == 0
    assert derivative_order(("robin", 1, 0)) == 1
    assert canonical_operator("laplacian") == ("laplacian",)
    assert canonical_operator(["partial", 1, 0]) == ("partial", 0, 1)
    assert canonical_operator(("robin", 1, 2)) == ("robin", 1.0, 2.0)


# ---------------------------------------------------------------------------------------------
# (b) convergence of the Laplacian on the unit disk (with ghost nodes)
# ---------------------------------------------------------------------------------------------

_NODE_COUNTS = (400, 800, 1600, 3200)


@pytest.fixture(scope="module")
def disk_clouds():
    disk = pds.Ball([0.0, 0.0], 1.0)
    return [disk.node_set(n) for n in _NODE_COUNTS]


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_laplacian_convergence_order(disk_clouds, order):
    """RMS error of L u at interior nodes vs h = N^(-1/2): slope within 0.7 of the design order.

    Measured (interior rows, RMS; N = 400 .. 3200): p = 2: 2.06, p = 3: 3.22, p = 4: 3.92,
    p = 5: 5.10 (max-norm over interior rows: 1.94, 2.85, 3.77, 4.91; RMS over all rows,
    boundary included: 2.16, 3.29, 4.02, 5.42).
    """
    log_h, log_err = [], []
    for cloud in disk_clouds:
        out = assemble(cloud, ["laplacian"], order=order)
        L = out["pde"][("laplacian",)]
        x = out["nodes"]
        u = 1.0 + np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])
        pts = cloud.interior
        exact = -2.0 * np.pi**2 * np.sin(np.pi * pts[:, 0]) * np.cos(np.pi * pts[:, 1])
        err = (L @ u)[: cloud.n_interior] - exact
        n_total = cloud.n_interior + cloud.n_boundary
        log_h.append(math.log(n_total**-0.5))
        log_err.append(math.log(np.sqrt(np.mean(err**2))))
    slope = np.polyfit(log_h, log_err, 1)[0]
    assert abs(slope - order) < 0.7, f"order {order}: measured slope {slope:.2f}"
    assert log_err[-1] < log_err[0]


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_normal_derivative_convergence_order(disk_clouds, order):
    """The boundary operator n.grad (boundary rows, ghost nodes in the stencils) converges at
    the design order too. Measured RMS slopes (N = 400 .. 3200): 2.35, 3.21, 4.16, 4.94."""
    log_h, log_err = [], []
    for cloud in disk_clouds:
        out = assemble(cloud, [], order=order, boundary_operators=["normal"])
        B = out["boundary"][("normal",)]
        x = out["nodes"]
        u = 1.0 + np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])
        xb, nb = cloud.boundary, cloud.normals
        ux = np.pi * np.cos(np.pi * xb[:, 0]) * np.cos(np.pi * xb[:, 1])
        uy = -np.pi * np.sin(np.pi * xb[:, 0]) * np.sin(np.pi * xb[:, 1])
        err = B @ u - (ux * nb[:, 0] + uy * nb[:, 1])
        log_h.append(math.log((cloud.n_interior + cloud.n_boundary) ** -0.5))
        log_err.append(math.log(np.sqrt(np.mean(err**2))))
    slope = np.polyfit(log_h, log_err, 1)[0]
    assert abs(slope - order) < 0.7, f"order {order}: measured slope {slope:.2f}"


# ---------------------------------------------------------------------------------------------
# (c) bad inputs
# ---------------------------------------------------------------------------------------------


def test_too_few_nodes_names_the_count():
    nodes = _jittered_grid(np.random.default_rng(0), 2, 5)  # 25 nodes
    with pytest.raises(ValueError, match=r"needs 43 nodes.*lower `order`"):
        rbf_fd_matrix(nodes, nodes, "laplacian", order=4)
    # the same nodes suffice at order 2 (21 nodes)
    assert rbf_fd_matrix(nodes, nodes, "laplacian", order=2).shape == (25, 25)
    with pytest.raises(ValueError, match="stencil_size"):
        rbf_fd_matrix(nodes, nodes, "laplacian", order=2, stencil_size=26)
    with pytest.raises(ValueError, match="stencil_size"):
        rbf_fd_matrix(nodes, nodes, "laplacian", order=2, stencil_size=5)


def test_bad_inputs():
    nodes = _jittered_grid(np.random.default_rng(1), 2, 8)
    pts = nodes[:4]
    with pytest.raises(ValueError, match="needs `normals`"):
        rbf_fd_matrix(pts, nodes, "normal")
    with pytest.raises(ValueError, match="needs `normals`"):
        rbf_fd_matrix(pts, nodes, ("robin", 1.0, 2.0))
    # alpha = 0: no normal derivative, no normals needed
    np.testing.assert_allclose(
        rbf_fd_matrix(pts, nodes, ("robin", 0, 2.0)).toarray(),
        2.0 * rbf_fd_matrix(pts, nodes, "value").toarray(),
        atol=1e-13,
    )
    with pytest.raises(ValueError, match="`normals` must have shape"):
        rbf_fd_matrix(pts, nodes, "normal", normals=np.ones((3, 2)) / np.sqrt(2))
    with pytest.raises(ValueError, match="unit length"):
        rbf_fd_matrix(pts, nodes, "normal", normals=np.ones((4, 2)))
    with pytest.raises(ValueError, match="`points`"):
        rbf_fd_matrix(pts[:, 0], nodes, "value")
    with pytest.raises(ValueError, match="`nodes`"):
        rbf_fd_matrix(pts, nodes[None], "value")
    with pytest.raises(ValueError, match="2-D but `nodes` are 3-D"):
        rbf_fd_matrix(pts, np.ones((70, 3)), "value")
    bad = nodes.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"`nodes` must be finite; row 5"):
        rbf_fd_matrix(pts, bad, "value")
    with pytest.raises(ValueError, match="`points` must be finite"):
        rbf_fd_matrix(np.full((1, 2), np.inf), nodes, "value")
    with pytest.raises(ValueError, match="Valid forms"):
        rbf_fd_matrix(pts, nodes, "gradient")
    with pytest.raises(ValueError, match="Valid forms"):
        rbf_fd_matrix(pts, nodes, ("partial", 0, 1, 1))
    with pytest.raises(ValueError, match="coordinate 2"):
        rbf_fd_matrix(pts, nodes, ("partial", 2))
    with pytest.raises(TypeError, match="`order`"):
        rbf_fd_matrix(pts, nodes, "value", order=2.5)


def test_duplicate_nodes_name_the_evaluation_point():
    nodes = _jittered_grid(np.random.default_rng(2), 2, 8)
    nodes = np.concatenate([nodes, nodes[10:11]])  # node 64 duplicates node 10
    with pytest.raises(ValueError, match=r"nodes 10 and 64 coincide.*evaluation point 0"):
        rbf_fd_matrix(nodes[10:11], nodes, "laplacian", order=2)


# ---------------------------------------------------------------------------------------------
# (d) assembly for DT-PINNs
# ---------------------------------------------------------------------------------------------


def test_assemble_shapes_and_ghost_nodes():
    cloud = pds.Ball([0.0, 0.0], 1.0).node_set(300)
    n_i, n_b = cloud.n_interior, cloud.n_boundary
    out = assemble(
        cloud,
        ["laplacian", ("laplacian",), ("partial", 1, 0)],
        order=3,
        boundary_operators=["value", "normal", ("robin", 1, 2)],
    )
    assert set(out["pde"]) == {("laplacian",), ("partial", 0, 1)}
    assert set(out["boundary"]) == {("value",), ("normal",), ("robin", 1.0, 2.0)}
    assert out["nodes"].shape == (n_i + 2 * n_b, 2)
    for L in out["pde"].values():
        assert isinstance(L, scipy.sparse.csr_matrix)
        assert L.shape == (n_i + n_b, n_i + 2 * n_b)
    for B in out["boundary"].values():
        assert B.shape == (n_b, n_i + 2 * n_b)
    np.testing.assert_array_equal(out["nodes"][:n_i], cloud.interior)
    np.testing.assert_array_equal(out["nodes"][n_i : n_i + n_b], cloud.boundary)

    ghosts = out["nodes"][n_i + n_b :]
    np.testing.assert_array_equal(ghosts, ghost_nodes(cloud))
    h = (n_i + n_b) ** -0.5
    offset = ghosts - cloud.boundary
    np.testing.assert_allclose(np.linalg.norm(offset, axis=1), 0.25 * h, rtol=1e-12)
    np.testing.assert_allclose(offset / (0.25 * h), cloud.normals, atol=1e-12)
    assert np.all(np.linalg.norm(ghosts, axis=1) > 1.0)

    # the boundary operators act on u = x^2 + 3y: normal derivative 2x n_x + 3 n_y
    x = out["nodes"]
    u = x[:, 0] ** 2 + 3 * x[:, 1]
    xb, nb = cloud.boundary, cloud.normals
    dn = 2 * xb[:, 0] * nb[:, 0] + 3 * nb[:, 1]
    np.testing.assert_allclose(out["boundary"][("normal",)] @ u, dn, atol=1e-9)
    np.testing.assert_allclose(
        out["boundary"][("robin", 1.0, 2.0)] @ u, dn + 2 * u[n_i : n_i + n_b], atol=1e-9
    )

    plain = assemble(cloud, ["laplacian"], order=3, ghost=False)
    assert plain["nodes"].shape == (n_i + n_b, 2)
    assert plain["pde"][("laplacian",)].shape == (n_i + n_b, n_i + n_b)
    assert plain["boundary"] == {}

    with pytest.raises(ValueError, match="boundary_operators"):
        assemble(cloud, ["normal"])
    with pytest.raises(TypeError, match="iterable"):
        assemble(cloud, 3)
    # a single spec counts as a list of one; a tuple of specs as a list
    single = assemble(cloud, "laplacian", order=2, boundary_operators=("robin", 0, 1))
    assert set(single["pde"]) == {("laplacian",)}
    assert set(single["boundary"]) == {("robin", 0.0, 1.0)}
    several = assemble(cloud, ("laplacian", ("partial", 0)), order=2, ghost=False)
    assert set(several["pde"]) == {("laplacian",), ("partial", 0)}


def test_ghost_nodes_errors():
    with pytest.raises(TypeError, match="PointCloud"):
        ghost_nodes(np.zeros((3, 2)))
    no_boundary = pds.PointCloud(np.random.default_rng(0).uniform(size=(10, 2)))
    with pytest.raises(ValueError, match="no boundary nodes"):
        ghost_nodes(no_boundary)
    cloud = pds.Ball([0.0, 0.0], 1.0).node_set(50)
    with pytest.raises(ValueError, match="`factor`"):
        ghost_nodes(cloud, factor=-1.0)


def _exact_hyperlaplacian(k, coefs, exps, y, scale):
    """Delta^k p = sum over k_1 + ... + k_d = k of k!/prod(k_i!) prod d^(2 k_i)/dx_i^(2 k_i) p."""
    d = y.shape[1]
    out = np.zeros(y.shape[0])
    for ks in itertools.product(range(k + 1), repeat=d):
        if sum(ks) != k:
            continue
        multinomial = math.factorial(k) / math.prod(math.factorial(j) for j in ks)
        out += multinomial * _poly_derivative(coefs, exps, y, 2 * np.array(ks))
    return out / scale ** (2 * k)


@settings(max_examples=12, deadline=None, suppress_health_check=LARGE)
@given(d=st.sampled_from([1, 2]), k=st.integers(1, 3), order=st.integers(1, 3), data=st.data())
def test_hyperlaplacian_reproduces_polynomials(d, k, order, data):
    """("hyperlaplacian", k) = Delta^k (hyperviscosity) is exact on polynomials of degree
    <= ell = order + 2k - 1, on drawn shifted and scaled jittered grids at drawn points, and
    ell is sharp."""
    scale, center, unit_nodes = data.draw(_placements(d, {1: 24, 2: 13}[d], -1.0, 1.0), label="scale, center, nodes")
    nodes = center + scale * unit_nodes
    idx = data.draw(st.lists(st.integers(0, nodes.shape[0] - 1), min_size=2, max_size=2, unique=True),
                    label="on-node points")
    points = np.concatenate([nodes[idx], center + scale * data.draw(float_arrays((2, d), -0.5, 0.5), label="off-node")])
    op = ("hyperlaplacian", k)
    assert derivative_order(op) == 2 * k
    ell = polynomial_degree(order, 2 * k)
    D = rbf_fd_matrix(points, nodes, op, order=order)
    for degree, exact_expected in ((ell, True), (ell + 1, False)):
        exps = _exponents(d, degree) if exact_expected else _homogeneous(d, degree)
        coefs = _coefficients(data, exps, f"degree {degree}", top=not exact_expected)
        u = _poly_derivative(coefs, exps, (nodes - center) / scale, np.zeros(d, dtype=int))
        err = np.abs(D @ u - _exact_hyperlaplacian(k, coefs, exps, (points - center) / scale, scale))
        roundoff = abs(D) @ np.abs(u)
        if exact_expected:
            np.testing.assert_array_less(err, 1e-10 * roundoff + 1e-300)
        elif degree >= 2 * k:  # a degree-(ell + 1) polynomial is not reproduced
            assert np.max(err / roundoff) > 1e-9


def test_hyperlaplacian_spec_errors():
    assert canonical_operator(["hyperlaplacian", 2]) == ("hyperlaplacian", 2)
    for bad in (("hyperlaplacian",), ("hyperlaplacian", 0), ("hyperlaplacian", 1.5), ("hyperlaplacian", True)):
        with pytest.raises(ValueError, match="one int power k >= 1"):
            canonical_operator(bad)


def test_3d_box_nodes_give_well_conditioned_stencils_and_a_lattice_is_refused():
    """On the exact 3-D tensor grid, order-4 Laplacian stencils near the faces span too few
    planes: the local systems are singular or their weights are up to 1e13 times the typical
    size (derivatives wrong by 1e11 at such rows, measured). Box.node_set jitters 3-D nodes, so
    the Laplacian is accurate at every row there; a bare lattice raises naming the cause."""
    f = lambda X: np.sin(X[:, 0]) * np.cos(2 * X[:, 1]) * np.exp(X[:, 2] / 2)  # noqa: E731
    cloud = pds.Box(-np.ones(3), np.ones(3)).node_set(1000)
    D = rbf_fd_matrix(cloud.interior, cloud.points, "laplacian", order=4)
    err = np.abs(D @ f(cloud.points) + 4.75 * f(cloud.interior))
    assert err.max() < 0.1, err.max()  # measured 2.3e-2 (h = 0.22)
    axis = np.linspace(-1.0, 1.0, 10)
    lattice = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    lattice = lattice[np.sum(np.abs(lattice) == 1.0, axis=1) <= 1]  # edges and corners left out, as Box does
    inner = lattice[np.all(np.abs(lattice) < 1.0, axis=1)]
    with pytest.raises(ValueError, match="singular"):
        rbf_fd_matrix(inner, lattice, "laplacian", order=4)
    # a stencil that is solvable but ill-conditioned (the rows near the faces, alone)
    bad = np.array([[1, 7, 3], [5, 7, 5]]) / 9.0  # measured: weights 1e15 at these grid points
    near = np.concatenate([inner[np.max(np.abs(inner), axis=1) < 0.4], bad])
    with pytest.raises(ValueError, match="ill-conditioned.*lattice"):
        rbf_fd_matrix(near, lattice, "laplacian", order=4)
