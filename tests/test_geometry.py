"""Domains: sampling (inside, on the boundary, uniform), node sets (quasi-uniform), validation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial
from hypothesis import given, strategies as st

from pdesolve._geometry import AbstractDomain, Ball, Box, PointCloud

N_SAMPLES = 256


@st.composite
def boxes(draw):
    d = draw(st.sampled_from([1, 2, 3]))
    lower = np.array(draw(st.lists(st.floats(-5.0, 5.0), min_size=d, max_size=d)))
    width = np.array(draw(st.lists(st.floats(0.1, 5.0), min_size=d, max_size=d)))
    return Box(lower, lower + width)


@st.composite
def balls(draw):
    d = draw(st.sampled_from([1, 2, 3]))
    center = np.array(draw(st.lists(st.floats(-5.0, 5.0), min_size=d, max_size=d)))
    return Ball(center, draw(st.floats(0.1, 5.0)))


def _scale(dom):
    lo, hi = dom.bounding_box()
    return max(1.0, float(np.max(np.abs(np.concatenate([lo, hi])))))


# -- random sampling ----------------------------------------------------------------------------


@eqx.filter_jit
def _samples(dom, key):
    """Interior and boundary samples; the domain is a traced argument, so hypothesis examples of
    the same dimension share one compilation."""
    k1, k2 = jax.random.split(key)
    return dom.sample_interior(k1, N_SAMPLES), dom.sample_boundary(k2, N_SAMPLES)


@eqx.filter_jit
def _contains(dom, x):
    return dom.contains(x)


@given(boxes(), st.integers(0, 2**31 - 1))
def test_box_samples(box, seed):
    d = box.dim
    x, (xb, nb) = _samples(box, jax.random.key(seed))
    assert x.shape == (N_SAMPLES, d) and x.dtype == jnp.float64
    assert bool(jnp.all(_contains(box, x)))
    assert np.all((np.asarray(x) >= box.lower) & (np.asarray(x) <= box.upper))

    xb, nb = np.asarray(xb), np.asarray(nb)
    assert xb.shape == nb.shape == (N_SAMPLES, d) and xb.dtype == np.float64
    assert bool(jnp.all(_contains(box, xb)))
    # the normal is +-e_i and the point lies exactly on the matching face
    axis = np.argmax(np.abs(nb), axis=1)
    rows = np.arange(N_SAMPLES)
    np.testing.assert_array_equal(np.abs(nb).sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.abs(nb[rows, axis]), 1.0)
    face = np.where(nb[rows, axis] > 0, box.upper[axis], box.lower[axis])
    np.testing.assert_array_equal(xb[rows, axis], face)


@given(balls(), st.integers(0, 2**31 - 1))
def test_ball_samples(ball, seed):
    d, c, r = ball.dim, ball.center, ball.radius
    x, (xb, nb) = _samples(ball, jax.random.key(seed))
    assert x.shape == (N_SAMPLES, d) and x.dtype == jnp.float64
    assert bool(jnp.all(_contains(ball, x)))
    assert np.all(np.linalg.norm(np.asarray(x) - c, axis=1) <= r * (1 + 1e-14))

    xb, nb = np.asarray(xb), np.asarray(nb)
    assert xb.shape == nb.shape == (N_SAMPLES, d)
    assert bool(jnp.all(_contains(ball, xb)))
    tol = 1e-12 * _scale(ball)
    np.testing.assert_allclose(np.linalg.norm(xb - c, axis=1), r, rtol=0, atol=tol)
    np.testing.assert_allclose(np.linalg.norm(nb, axis=1), 1.0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(nb, (xb - c) / r, rtol=0, atol=tol / r)
    # just outside along the normal is outside, just inside is inside
    assert not bool(jnp.any(_contains(ball, xb + 1e-6 * nb)))
    assert bool(jnp.all(_contains(ball, xb - 1e-6 * nb)))


def test_sampling_is_jittable_with_static_n():
    key = jax.random.key(7)
    k1, k2 = jax.random.split(key)
    for dom in (Box([0.0, 1.0], [2.0, 3.0]), Ball([0.5, 0.5, 0.5], 2.0)):
        x_jit, (xb_jit, nb_jit) = _samples(dom, key)  # compiled, domain traced
        x = dom.sample_interior(k1, N_SAMPLES)  # eager
        xb, nb = dom.sample_boundary(k2, N_SAMPLES)
        for a, b in ((x_jit, x), (xb_jit, xb), (nb_jit, nb)):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
    # closing over the domain (its arrays become constants) works as well
    disk = Ball([0.0, 0.0], 1.0)
    closed = jax.jit(lambda k: disk.sample_boundary(k, 8))(key)
    np.testing.assert_allclose(closed[0], disk.sample_boundary(key, 8)[0], rtol=1e-14, atol=1e-14)
    # domains are pytrees: they can also be jit arguments
    box = Box([0.0, 0.0], [1.0, 2.0])
    inside = jax.jit(lambda b, x: b.contains(x))(box, jnp.array([[0.5, 1.9], [0.5, 2.1]]))
    np.testing.assert_array_equal(inside, [True, False])


def _check_fraction(inside, p):
    n = inside.size
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(inside.mean() - p) <= 4 * sigma, (inside.mean(), p, sigma)


def test_interior_sampling_is_uniform():
    n = 20000
    box = Box([-1.0, 0.0, 2.0], [1.0, 3.0, 2.5])
    x = np.asarray(box.sample_interior(jax.random.key(0), n))
    sub_lo, sub_hi = np.array([-0.5, 0.0, 2.1]), np.array([0.5, 1.0, 2.3])
    _check_fraction(np.all((x >= sub_lo) & (x <= sub_hi), axis=1), (1 * 1 * 0.2) / box.volume())

    for d in (1, 2, 3):
        ball = Ball(np.full(d, 0.5), 2.0)
        x = np.asarray(ball.sample_interior(jax.random.key(d), n)) - 0.5
        _check_fraction(np.linalg.norm(x, axis=1) < 1.0, 0.5**d)  # radial law
        a = 2.0 / np.sqrt(d)  # the cube [0, a]^d lies inside the ball
        _check_fraction(np.all((x >= 0) & (x <= a), axis=1), a**d / ball.volume())


def test_boundary_sampling_is_uniform():
    n = 20000
    box = Box([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    x, normals = box.sample_boundary(jax.random.key(0), n)
    x, normals = np.asarray(x), np.asarray(normals)
    area = 2 * (1 * 2 + 1 * 3 + 2 * 3)
    for axis, measure in ((0, 6.0), (1, 3.0), (2, 2.0)):
        for sign in (-1.0, 1.0):
            _check_fraction(normals[:, axis] == sign, measure / area)
    on_top = normals[:, 2] == 1.0  # uniform within a face
    _check_fraction(x[on_top, 0] < 0.25, 0.25)

    x1, n1 = Box([2.0], [5.0]).sample_boundary(jax.random.key(1), n)
    _check_fraction(np.asarray(n1)[:, 0] < 0, 0.5)
    np.testing.assert_array_equal(np.sort(np.unique(np.asarray(x1))), [2.0, 5.0])

    disk = Ball([1.0, -1.0], 0.5)
    x, _ = disk.sample_boundary(jax.random.key(2), n)
    angle = np.mod(np.arctan2(*(np.asarray(x) - [1.0, -1.0]).T[::-1]), 2 * np.pi)
    _check_fraction(angle < np.pi / 3, 1 / 6)
    _check_fraction((angle > np.pi) & (angle < 1.5 * np.pi), 1 / 4)

    sphere = Ball([0.0, 0.0, 0.0], 2.0)  # Archimedes: z is uniform on [-r, r]
    x, _ = sphere.sample_boundary(jax.random.key(3), n)
    _check_fraction(np.asarray(x)[:, 2] > 1.0, 0.25)
    _check_fraction(np.asarray(x)[:, 0] > 0.0, 0.5)


def test_contains_batch_shapes_and_tolerance():
    box = Box([0.0, 0.0], [1.0, 1.0])
    x = jnp.zeros((3, 4, 2)).at[1, 2].set(jnp.array([1.5, 0.5]))
    inside = box.contains(x)
    assert inside.shape == (3, 4) and int(inside.sum()) == 11
    assert bool(box.contains(jnp.array([1.0 + 1e-13, 0.0])))
    assert not bool(box.contains(jnp.array([1.0 + 1e-9, 0.0])))
    ball = Ball([0.0, 0.0], 1.0)
    assert bool(ball.contains(jnp.array([1.0 + 5e-13, 0.0])))
    assert not bool(ball.contains(jnp.array([1.0 + 1e-9, 0.0])))
    assert ball.contains(np.zeros(2)).shape == ()


def test_volumes_and_bounding_boxes():
    assert Box([0.0, -1.0], [2.0, 2.0]).volume() == pytest.approx(6.0)
    assert Ball([0.0], 1.5).volume() == pytest.approx(3.0)
    assert Ball([0.0, 0.0], 2.0).volume() == pytest.approx(4 * np.pi)
    assert Ball([0.0, 0.0, 0.0], 2.0).volume() == pytest.approx(32 * np.pi / 3)
    lo, hi = Ball([1.0, 2.0], 0.5).bounding_box()
    np.testing.assert_array_equal(lo, [0.5, 1.5])
    np.testing.assert_array_equal(hi, [1.5, 2.5])
    assert isinstance(Box([0.0], [1.0]), AbstractDomain)


# -- node sets ----------------------------------------------------------------------------------


def _spacing_ratios(dom, cloud, n_probe=50000):
    points = cloud.points
    h = (dom.volume() / points.shape[0]) ** (1.0 / dom.dim)
    tree = scipy.spatial.cKDTree(points)
    separation = tree.query(points, k=2)[0][:, 1].min()
    probes = np.asarray(dom.sample_interior(jax.random.key(123), n_probe))
    fill = tree.query(probes)[0].max()
    return separation / h, fill / h, h


@pytest.mark.parametrize(
    "dom",
    [
        Ball([0.0, 0.0], 1.0),
        Ball([2.0, -1.0], 0.3),
        Box([0.0, 0.0], [1.0, 1.0]),
        Box([-1.0, 0.0], [2.0, 1.0]),
    ],
    ids=["unit-disk", "small-disk", "unit-square", "rectangle"],
)
def test_node_set_is_quasi_uniform_2d(dom):
    cloud = dom.node_set(400)
    assert isinstance(cloud, PointCloud) and cloud.domain is dom
    total = cloud.n_interior + cloud.n_boundary
    assert 0.85 * 400 <= total <= 1.15 * 400
    assert cloud.points.shape == (total, 2) and cloud.points.dtype == np.float64
    np.testing.assert_array_equal(cloud.points[: cloud.n_interior], cloud.interior)
    separation, fill, h = _spacing_ratios(dom, cloud)
    assert separation >= 0.3, separation
    assert fill <= 2.0, fill
    assert bool(jnp.all(dom.contains(cloud.points)))
    _check_boundary_nodes(dom, cloud, h)


def _check_boundary_nodes(dom, cloud, h):
    """Boundary nodes on the boundary with the analytic normal; interior nodes >= h/2 inside."""
    xb, nb, xi = cloud.boundary, cloud.normals, cloud.interior
    if isinstance(dom, Ball):
        np.testing.assert_allclose(np.linalg.norm(xb - dom.center, axis=1), dom.radius, atol=1e-12)
        np.testing.assert_allclose(nb, (xb - dom.center) / dom.radius, atol=1e-12)
        depth = dom.radius - np.linalg.norm(xi - dom.center, axis=1)
    else:
        axis = np.argmax(np.abs(nb), axis=1)
        rows = np.arange(nb.shape[0])
        np.testing.assert_array_equal(np.abs(nb).sum(axis=1), 1.0)
        face = np.where(nb[rows, axis] > 0, dom.upper[axis], dom.lower[axis])
        np.testing.assert_array_equal(xb[rows, axis], face)
        depth = np.minimum(xi - dom.lower, dom.upper - xi).min(axis=1)
    assert depth.min() >= 0.5 * h - 1e-12, (depth.min(), h)
    assert cloud.n_boundary >= 2


@pytest.mark.parametrize(
    "dom, n",
    [
        (Ball([0.0], 2.0), 30),
        (Box([1.0], [4.0]), 30),
        (Ball([0.0, 0.0, 0.0], 1.0), 600),
        (Box([0.0, 0.0, 0.0], [1.0, 2.0, 1.0]), 600),
    ],
    ids=["interval-ball", "interval-box", "ball-3d", "box-3d"],
)
def test_node_set_other_dimensions(dom, n):
    cloud = dom.node_set(n)
    total = cloud.n_interior + cloud.n_boundary
    assert 0.8 * n <= total <= 1.2 * n
    separation, fill, h = _spacing_ratios(dom, cloud, n_probe=20000)
    assert separation >= 0.3, separation
    assert fill <= 2.0, fill
    _check_boundary_nodes(dom, cloud, h)


def test_node_set_is_deterministic_and_seeded():
    disk = Ball([0.0, 0.0], 1.0)
    a, b, c = disk.node_set(200, seed=1), disk.node_set(200, seed=1), disk.node_set(200, seed=2)
    np.testing.assert_array_equal(a.points, b.points)
    assert not np.array_equal(a.interior, c.interior)
    tiny = disk.node_set(3)  # the minimal set: 3 boundary nodes and 1 interior node
    assert tiny.n_boundary == 3 and tiny.n_interior == 1


# -- point clouds -------------------------------------------------------------------------------


def _user_cloud(**kwargs):
    interior = np.array([[0.1, 0.2], [0.5, 0.5], [0.7, 0.3]])
    boundary = np.array([[0.0, 0.5], [1.0, 0.5]])
    normals = np.array([[-1.0, 0.0], [1.0, 0.0]])
    return PointCloud(interior, boundary, normals, **kwargs)


def test_point_cloud_sampling_draws_existing_nodes():
    cloud = _user_cloud()
    assert cloud.dim == 2 and cloud.n_interior == 3 and cloud.n_boundary == 2
    x = np.asarray(cloud.sample_interior(jax.random.key(0), 500))
    assert x.shape == (500, 2) and x.dtype == np.float64
    matches = np.all(x[:, None, :] == cloud.interior[None], axis=2)
    assert np.all(matches.sum(axis=1) == 1)
    assert np.all(matches.sum(axis=0) > 100)  # with replacement, every node is drawn
    xb, nb = cloud.sample_boundary(jax.random.key(1), 50)
    for p, n in zip(np.asarray(xb), np.asarray(nb)):
        row = np.flatnonzero(np.all(cloud.boundary == p, axis=1))[0]
        np.testing.assert_array_equal(cloud.normals[row], n)
    x_jit = jax.jit(lambda k: cloud.sample_interior(k, 500))(jax.random.key(0))
    np.testing.assert_array_equal(x_jit, x)


def test_point_cloud_fixed_size_volume_and_inside_test():
    cloud = _user_cloud()
    assert cloud.node_set() is cloud and cloud.node_set(5) is cloud
    with pytest.raises(ValueError, match="fixed"):
        cloud.node_set(10)
    with pytest.raises(NotImplementedError, match="volume="):
        cloud.volume()
    with pytest.raises(NotImplementedError, match="domain="):
        cloud.contains(np.zeros(2))
    assert _user_cloud(volume=1.0).volume() == 1.0
    lo, hi = cloud.bounding_box()
    np.testing.assert_array_equal(lo, [0.0, 0.2])
    np.testing.assert_array_equal(hi, [1.0, 0.5])
    box = Box([0.0, 0.0], [1.0, 1.0])
    from_box = _user_cloud(domain=box)
    assert from_box.volume() == 1.0
    inside = from_box.contains(np.array([[0.5, 0.5], [1.5, 0.5]]))
    np.testing.assert_array_equal(inside, [True, False])
    no_boundary = PointCloud(np.zeros((4, 3)))
    assert no_boundary.n_boundary == 0 and no_boundary.boundary.shape == (0, 3)
    with pytest.raises(ValueError, match="boundary"):
        no_boundary.sample_boundary(jax.random.key(0), 4)


def test_point_cloud_validation():
    good_i, good_b, good_n = np.zeros((3, 2)), np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="normalise"):
        PointCloud(good_i, good_b, 2 * good_n)
    with pytest.raises(ValueError, match="interior"):
        PointCloud(np.zeros(3), good_b, good_n)
    with pytest.raises(ValueError, match="interior"):
        PointCloud(np.zeros((0, 2)), good_b, good_n)
    with pytest.raises(ValueError, match="boundary"):
        PointCloud(good_i, np.zeros((2, 3)), np.ones((2, 3)) / np.sqrt(3))
    with pytest.raises(ValueError, match="normals"):
        PointCloud(good_i, good_b, good_n[:1])
    with pytest.raises(ValueError, match="interior"):
        PointCloud(np.array([[0.0, np.nan]]), good_b, good_n)
    with pytest.raises(ValueError, match="normals"):
        PointCloud(good_i, good_b)
    with pytest.raises(TypeError, match="domain"):
        PointCloud(good_i, good_b, good_n, domain="disk")
    with pytest.raises(ValueError, match="domain"):
        PointCloud(good_i, good_b, good_n, domain=Ball([0.0, 0.0, 0.0], 1.0))
    with pytest.raises(ValueError, match="volume"):
        PointCloud(good_i, good_b, good_n, volume=-1.0)


# -- validation of domains ----------------------------------------------------------------------


def test_bad_domains_are_rejected():
    with pytest.raises(ValueError, match="lower"):
        Box([0.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="lower"):
        Box([1.0, 0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="lower"):
        Box([0.0, 0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="lower"):
        Box([[0.0, 0.0]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="lower"):
        Box([np.nan, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="upper"):
        Box([0.0, 0.0], [np.inf, 1.0])
    with pytest.raises(TypeError, match="upper"):
        Box([0.0], ["one"])
    for radius in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="radius"):
            Ball([0.0, 0.0], radius)
    with pytest.raises(ValueError, match="radius"):
        Ball([0.0, 0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="center"):
        Ball([[0.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match="center"):
        Ball([np.nan, 0.0], 1.0)


def test_bad_arguments_are_rejected():
    disk = Ball([0.0, 0.0], 1.0)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`n`"):
        disk.sample_interior(key, -1)
    with pytest.raises(TypeError, match="`n`"):
        disk.sample_boundary(key, 2.5)
    with pytest.raises(ValueError, match="`n`"):
        disk.node_set(0)
    with pytest.raises(ValueError, match="`x`"):
        disk.contains(np.zeros((4, 3)))
    with pytest.raises(TypeError):
        AbstractDomain()
