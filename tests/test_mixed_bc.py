"""`pds.MixedBC`: different conditions on different parts of the boundary. Poisson on an
L-shaped point cloud, Dirichlet on two sides and Neumann on the other four (the re-entrant
edges included), against a manufactured solution, for DTPINN and PINN; the residual's
piece selection; coverage and refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds

TOL = 1e-6  # geometric tolerance of the side tests (the PINN evaluates them in float32)


def l_cloud(m):
    """Nodes of [-1, 1]² minus (0, 1]² on an m x m grid; normals outward (diagonal at corners)."""
    g = np.linspace(-1, 1, m)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    pts = pts[~((pts[:, 0] > 1e-12) & (pts[:, 1] > 1e-12))]
    on = np.asarray(jax.vmap(lambda x: jnp.linalg.norm(_normal(x)) > 0)(jnp.asarray(pts)))
    b = pts[on]
    n = np.asarray(jax.vmap(_normal)(jnp.asarray(b)))
    return pds.PointCloud(pts[~on], b, n / np.linalg.norm(n, axis=1, keepdims=True))


def _normal(x):
    nx = jnp.where(x[0] < -1 + TOL, -1.0, 0.0) + jnp.where(x[0] > 1 - TOL, 1.0, 0.0) \
        + jnp.where((jnp.abs(x[0]) < TOL) & (x[1] > -TOL), 1.0, 0.0)
    ny = jnp.where(x[1] < -1 + TOL, -1.0, 0.0) + jnp.where(x[1] > 1 - TOL, 1.0, 0.0) \
        + jnp.where((jnp.abs(x[1]) < TOL) & (x[0] > -TOL), 1.0, 0.0)
    return jnp.stack([nx, ny])


def _unit_normal(x):
    n = _normal(x)
    return n / jnp.maximum(jnp.linalg.norm(n), 1e-30)


def exact(x, t=None):
    return jnp.sin(jnp.pi * x[0] / 2) * jnp.cos(jnp.pi * x[1] / 3) + 0.5 * x[1]


def _laplacian(x):
    return jnp.trace(jax.hessian(exact)(x))


def _dirichlet_sides(x):
    return (x[0] < -1 + TOL) | (x[1] < -1 + TOL)


BC = pds.MixedBC([
    (_dirichlet_sides, pds.Dirichlet(lambda x, t: exact(x))),
    (lambda x: True, pds.Neumann(lambda x, t: jnp.dot(jax.grad(exact)(x), _unit_normal(x)))),
])
CLOUD = l_cloud(25)
PROBLEM = pds.PDEProblem(residual=lambda u, x, a: u.laplacian - _laplacian(x), domain=CLOUD, bc=BC, solution=exact)


def _held_out_error(sol):
    pts = jnp.asarray(l_cloud(41).points)
    want = np.asarray(jax.vmap(exact)(pts))
    return np.linalg.norm(np.asarray(sol(pts)) - want) / np.linalg.norm(want)


@pytest.mark.parametrize(
    "solver, bound",
    [(pds.DTPINN(nodes=CLOUD, width=30, depth=3), 4e-3),   # measured 9.5e-4
     (pds.PINN(nodes=CLOUD, width=30, depth=3), 3e-3)],    # float32 autodiff; measured 6.9e-4
    ids=["DTPINN", "PINN"],
)
def test_poisson_on_an_l_shape_with_dirichlet_and_neumann_sides(solver, bound):
    sol = pds.solve(PROBLEM, solver, max_steps=1500)
    assert sol.successful
    assert _held_out_error(sol) < bound
    if isinstance(solver, pds.DTPINN):
        # one boundary matrix per operator any piece uses; ghost nodes at every boundary node
        assert sol.stats["operators"]["boundary"] == [("normal",), ("value",)]
        assert sol.stats["n_ghost"] == CLOUD.n_boundary


def test_residual_selects_the_first_matching_piece():
    bc = pds.MixedBC([(lambda x: x[0] < 0, pds.Dirichlet(2.0)), (lambda x: True, pds.Neumann(5.0))])
    f = lambda x: x[0] ** 2 + 3 * x[1]  # noqa: E731
    n = jnp.array([0.0, 1.0])
    left, right = jnp.array([-0.5, 1.0]), jnp.array([0.5, 1.0])
    np.testing.assert_allclose(bc.residual(pds.Field(f, left), left, n), f(left) - 2.0)
    np.testing.assert_allclose(bc.residual(pds.Field(f, right), right, n), 3.0 - 5.0)
    np.testing.assert_allclose(bc.target(left), 2.0)
    np.testing.assert_allclose(bc.target(right), 5.0)


def test_uncovered_boundary_nodes_raise():
    bc = pds.MixedBC([(_dirichlet_sides, pds.Dirichlet(0.0))])
    prob = pds.PDEProblem(residual=lambda u, x, a: u.laplacian, domain=CLOUD, bc=bc)
    with pytest.raises(ValueError, match="MixedBC covers .* of 96 boundary nodes.*matches no `where`"):
        pds.solve(prob, pds.DTPINN(nodes=CLOUD, width=8, depth=1), max_steps=1)


@pytest.mark.parametrize(
    "pieces, err, match",
    [([], ValueError, "at least one"),
     ([(1.0, pds.Dirichlet())], TypeError, "callable"),
     ([(lambda x: True, 3.0)], TypeError, "Dirichlet, Neumann or Robin"),
     ([(lambda x: True, pds.MixedBC([(lambda x: True, pds.Dirichlet())]))], TypeError, "Dirichlet, Neumann"),
     (3, TypeError, "pairs")],
)
def test_bad_pieces_raise(pieces, err, match):
    with pytest.raises(err, match=match):
        pds.MixedBC(pieces)


def test_neural_ivp_refuses_mixed_conditions():
    prob = pds.PDEProblem(rhs=lambda u, x, t, a: -u.partial(0), u0=lambda x: jnp.exp(-10 * x[0] ** 2),
                          tspan=(0.0, 0.1), domain=pds.Box([-1.0], [1.0]),
                          bc=pds.MixedBC([(lambda x: x[0] < 0, pds.Dirichlet(0.0)), (lambda x: True, pds.Neumann())]))
    with pytest.raises(ValueError, match="NeuralIVP supports zero Dirichlet.*got MixedBC"):
        pds.solve(prob, pds.NeuralIVP(width=8, depth=1, n_samples=200, rank=10, fit_steps=10), dt0=0.05)


def test_boundary_tags_select_the_same_parts():
    """The same split by `PointCloud(boundary_tags=...)`: the same residuals, so the same
    training (DTPINN, identical loss histories)."""
    tags = np.where(np.asarray(jax.vmap(_dirichlet_sides)(jnp.asarray(CLOUD.boundary))), "held", "flux")
    tagged = pds.PointCloud(CLOUD.interior, CLOUD.boundary, CLOUD.normals, boundary_tags=tags)
    neumann = BC.pieces[1][1]
    bc = pds.MixedBC([("held", BC.pieces[0][1]), (("flux",), neumann)])
    prob = pds.PDEProblem(residual=PROBLEM.residual, domain=tagged, bc=bc, solution=exact)
    a = pds.solve(PROBLEM, pds.DTPINN(nodes=CLOUD, width=12, depth=2), max_steps=50)
    b = pds.solve(prob, pds.DTPINN(nodes=tagged, width=12, depth=2), max_steps=50)
    np.testing.assert_array_equal(a.stats["loss_history"], b.stats["loss_history"])
    with pytest.raises(ValueError, match="no boundary_tags"):
        pds.solve(pds.PDEProblem(residual=PROBLEM.residual, domain=CLOUD, bc=bc), pds.DTPINN(nodes=CLOUD), max_steps=1)
    with pytest.raises(ValueError, match="no boundary node has tag 'inlet'"):
        pds.solve(pds.PDEProblem(residual=PROBLEM.residual, domain=tagged, bc=pds.MixedBC([("inlet", neumann)])),
                  pds.DTPINN(nodes=tagged), max_steps=1)
    with pytest.raises(ValueError, match="one label per boundary node"):
        pds.PointCloud(CLOUD.interior, CLOUD.boundary, CLOUD.normals, boundary_tags=tags[:-1])
