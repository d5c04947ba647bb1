"""`pds.MethodOfLines`: RBF-FD in space, the suite's ODE solvers in time. Measured spatial order
against exact solutions (heat with Dirichlet and with Neumann conditions, 1-D; heat 2-D), a
first-order wave system, dense output, gradients through the time stepper, refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds

NU = 0.1
TIGHT = dict(controller=pds.PIDController(rtol=1e-11, atol=1e-11), max_steps=100_000)


def _heat_rhs(u, x, t, args):
    return args * u.laplacian


def _sin_exact(x, t):
    return jnp.exp(-NU * jnp.pi**2 * t) * jnp.sin(jnp.pi * x[0])


def _cos_exact(x, t):
    return jnp.exp(-NU * jnp.pi**2 * t) * jnp.cos(jnp.pi * x[0])


def _rel(sol, exact, X, t):
    want = np.asarray(jax.vmap(lambda x: exact(x, t))(jnp.asarray(X)))
    return np.linalg.norm(np.asarray(sol(X, t)) - want) / np.linalg.norm(want)


@pytest.mark.parametrize(
    "bc, exact", [(pds.Dirichlet(0.0), _sin_exact), (pds.Neumann(0.0), _cos_exact)], ids=["dirichlet", "neumann"]
)
def test_heat_1d_converges_at_the_design_order(bc, exact):
    prob = pds.PDEProblem(rhs=_heat_rhs, u0=lambda x: exact(x, 0.0), tspan=(0.0, 0.5), domain=pds.Box([-1.0], [1.0]),
                          bc=bc, args=NU)
    X = np.linspace(-1, 1, 301)[:, None]
    ns, errs = [21, 41, 81], []
    for n in ns:
        sol = pds.solve(prob, pds.MethodOfLines(n_nodes=n), saveat=pds.SaveAt(ts=jnp.array([0.5])), **TIGHT)
        assert sol.successful and sol.stats["n_nodes"] == n
        errs.append(_rel(sol, exact, X, 0.5))
    slope = np.polyfit(np.log(2.0 / (np.array(ns) - 1)), np.log(errs), 1)[0]
    assert slope > 3.5, (errs, slope)  # order 4 (measured 5.0: uniform nodes in 1-D)
    assert errs[-1] < 2e-5


def test_heat_2d_dense_output_and_operators():
    exact = lambda x, t: jnp.exp(-2 * NU * jnp.pi**2 * t) * jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1])  # noqa: E731
    prob = pds.PDEProblem(rhs=_heat_rhs, u0=lambda x: exact(x, 0.0), tspan=(0.0, 0.3),
                          domain=pds.Box([-1.0, -1.0], [1.0, 1.0]), bc=pds.Dirichlet(0.0), args=NU)
    sol = pds.solve(prob, pds.MethodOfLines(n_nodes=300), saveat=pds.SaveAt(dense=True),
                    controller=pds.PIDController(rtol=1e-9, atol=1e-9))
    X = np.asarray(jax.random.uniform(jax.random.PRNGKey(0), (500, 2), minval=-1, maxval=1))
    assert _rel(sol, exact, X, 0.3) < 4e-3  # measured 1.4e-3 (N = 300, order 4)
    assert _rel(sol, exact, X, 0.1) < 4e-3  # any time, from the dense output
    assert sol.stats["operators"] == {"pde": [("laplacian",)], "boundary": [("value",)]}


def test_wave_as_a_first_order_system():
    exact = lambda x, t: jnp.stack([jnp.sin(jnp.pi * x[0]) * jnp.cos(jnp.pi * t),  # noqa: E731
                                    -jnp.pi * jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * t)])
    prob = pds.PDEProblem(rhs=lambda u, x, t, a: jnp.stack([u.value[1], u[0].laplacian]), u0=lambda x: exact(x, 0.0),
                          tspan=(0.0, 0.5), domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0))
    sol = pds.solve(prob, pds.MethodOfLines(n_nodes=81), controller=pds.PIDController(rtol=1e-9, atol=1e-9))
    X = np.linspace(-1, 1, 101)[:, None]
    err = np.max(np.abs(np.asarray(sol(X)) - np.asarray(jax.vmap(lambda x: exact(x, 0.5))(jnp.asarray(X)))))
    assert err < 2e-5  # measured 2.4e-6


def test_gradient_through_the_time_stepper():
    """d/dν of the solution at one point, through the ODE solver's adjoint, against the exact
    derivative −π² t e^{−νπ²t} sin(πx) and finite differences."""
    nodes = pds.Box([-1.0], [1.0]).node_set(41).interior
    i = int(np.argmin(np.abs(nodes[:, 0] + 0.5)))  # the interior node nearest x = -1/2
    x = float(nodes[i, 0])

    def value(nu):
        prob = pds.PDEProblem(rhs=_heat_rhs, u0=lambda x: jnp.sin(jnp.pi * x[0]), tspan=(0.0, 0.5),
                              domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0), args=nu)
        sol = pds.solve(prob, pds.MethodOfLines(n_nodes=41), controller=pds.PIDController(rtol=1e-10, atol=1e-10))
        return sol.ys[-1][i]
    import numpy.testing as npt

    g = float(jax.grad(value)(NU))
    exact = -np.pi**2 * 0.5 * np.exp(-NU * np.pi**2 * 0.5) * np.sin(np.pi * x)
    fd = (float(value(NU + 1e-6)) - float(value(NU - 1e-6))) / 2e-6
    npt.assert_allclose(g, fd, rtol=1e-5)
    npt.assert_allclose(g, exact, rtol=1e-3, atol=1e-6)


def test_bad_problems_raise():
    steady = pds.PDEProblem(residual=lambda u, x, a: u.laplacian, domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0))
    with pytest.raises(ValueError, match="initial-value problems"):
        pds.solve(steady, pds.MethodOfLines(n_nodes=21), dt0=0.1)
    free = pds.PDEProblem(rhs=_heat_rhs, u0=lambda x: jnp.sin(jnp.pi * x[0]), tspan=(0.0, 0.1),
                          domain=pds.Box([-1.0], [1.0]), bc=None, args=NU)
    with pytest.raises(ValueError, match="needs a boundary condition"):
        pds.solve(free, pds.MethodOfLines(n_nodes=21), dt0=0.01)
    with pytest.raises(ValueError, match="`n_nodes` must be an int >= 1"):
        pds.MethodOfLines(n_nodes=0)
    with pytest.raises(TypeError, match="`order` must be an int"):
        pds.MethodOfLines(order=True)
    with pytest.raises(TypeError, match="time_solver"):
        pds.MethodOfLines(time_solver="tsit5")


def test_imex_time_stepping_removes_the_diffusive_step_limit():
    """Stiff diffusion (ν = 1, 81 nodes): IMEXRK with the system's Jacobian implicit reaches
    the same accuracy in far fewer steps than the explicit default."""
    nu = 1.0
    exact = lambda x, t: jnp.exp(-nu * jnp.pi**2 * t) * jnp.sin(jnp.pi * x[0])  # noqa: E731
    prob = pds.PDEProblem(rhs=_heat_rhs, u0=lambda x: exact(x, 0.0), tspan=(0.0, 0.1), domain=pds.Box([-1.0], [1.0]),
                          bc=pds.Dirichlet(0.0), args=nu)
    X = np.linspace(-1, 1, 201)[:, None]
    ctrl = dict(controller=pds.PIDController(rtol=1e-6, atol=1e-6), max_steps=100_000)
    explicit = pds.solve(prob, pds.MethodOfLines(n_nodes=81), **ctrl)
    implicit = pds.solve(prob, pds.MethodOfLines(n_nodes=81, time_solver=pds.IMEXRK()), **ctrl)
    assert _rel(explicit, exact, X, 0.1) < 1e-4 and _rel(implicit, exact, X, 0.1) < 1e-4
    assert int(implicit.stats["num_steps"]) * 3 < int(explicit.stats["num_steps"]), (
        implicit.stats["num_steps"], explicit.stats["num_steps"])


def test_imex_takes_fields_with_components():
    """The wave equation as a first-order system [φ, φ_t] (a field with two components),
    integrated by IMEXRK with the flattened system's Jacobian implicit: the same answer as
    the explicit default and the exact solution; `ys` and the dense output keep the field's
    shape."""
    exact = lambda x, t: jnp.stack([jnp.sin(jnp.pi * x[0]) * jnp.cos(jnp.pi * t),  # noqa: E731
                                    -jnp.pi * jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * t)])
    prob = pds.PDEProblem(rhs=lambda u, x, t, a: jnp.stack([u.value[1], u[0].laplacian]), u0=lambda x: exact(x, 0.0),
                          tspan=(0.0, 0.5), domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0))
    sol = pds.solve(prob, pds.MethodOfLines(n_nodes=41, time_solver=pds.IMEXRK()), saveat=pds.SaveAt(dense=True),
                    controller=pds.PIDController(rtol=1e-8, atol=1e-8))
    explicit = pds.solve(prob, pds.MethodOfLines(n_nodes=41), saveat=pds.SaveAt(dense=True),
                         controller=pds.PIDController(rtol=1e-8, atol=1e-8))
    assert sol.successful
    assert sol.ys.shape[1:] == (39, 2) == explicit.ys.shape[1:]
    X = np.linspace(-1, 1, 101)[:, None]
    for t in (0.2, 0.5):
        want = np.asarray(jax.vmap(lambda x: exact(x, t))(jnp.asarray(X)))
        got = np.asarray(sol(X, t))
        assert np.max(np.abs(got - want)) < 5e-4  # the spatial error at 41 nodes (measured 1.5e-4)
        assert np.max(np.abs(got - np.asarray(explicit(X, t)))) < 2e-6  # time errors only


def _advection_cloud_problem():
    """Pure advection of a bump across [-1, 1]^2 on 400 scattered nodes (Halton-like)."""
    c = jnp.array([1.0, 0.5])
    exact = lambda x, t: jnp.exp(-20.0 * jnp.sum((x - c * t + 0.3) ** 2))  # noqa: E731
    return pds.PDEProblem(rhs=lambda u, x, t, a: -(c[0] * u.grad[0] + c[1] * u.grad[1]), u0=lambda x: exact(x, 0.0),
                          tspan=(0.0, 0.2), domain=pds.Box([-1.0, -1.0], [1.0, 1.0]), bc=pds.Dirichlet(exact),
                          solution=exact)


def test_stability_check_reports_growing_modes_and_hyperviscosity_removes_them():
    """RBF-FD advection on scattered nodes has eigenvalues with positive real part (the
    PDE has none); `stats["spectral_abscissa"]` reports them, and hyperviscosity (Δ², tapered
    at the boundary) moves them into the left half-plane while the solution stays close."""
    prob = _advection_cloud_problem()
    ctrl = dict(controller=pds.PIDController(rtol=1e-8, atol=1e-8), max_steps=20_000)
    plain = pds.solve(prob, pds.MethodOfLines(n_nodes=400), **ctrl)
    damped = pds.solve(prob, pds.MethodOfLines(n_nodes=400, hyperviscosity=0.1), **ctrl)
    assert plain.stats["spectral_abscissa"] > 0.05, plain.stats["spectral_abscissa"]
    assert damped.stats["spectral_abscissa"] < 0.0, damped.stats["spectral_abscissa"]
    assert plain.stats["node_spacing"] == damped.stats["node_spacing"] > 0
    X = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (400, 2), minval=-1, maxval=1))
    for sol in (plain, damped):
        assert _rel(sol, prob.solution, X, 0.2) < 0.3
    off = pds.solve(prob, pds.MethodOfLines(n_nodes=400, stability_check=False), **ctrl)
    assert off.stats["spectral_abscissa"] is None
    np.testing.assert_array_equal(np.asarray(off.ys), np.asarray(plain.ys))


def test_bad_hyperviscosity_options_raise():
    with pytest.raises(ValueError, match="`hyperviscosity`"):
        pds.MethodOfLines(hyperviscosity=-1.0)
    with pytest.raises(ValueError, match="`hyperviscosity`"):
        pds.MethodOfLines(hyperviscosity=float("nan"))
    with pytest.raises(ValueError, match="`hyperviscosity_power`"):
        pds.MethodOfLines(hyperviscosity_power=0)
    with pytest.raises(TypeError, match="`stability_check`"):
        pds.MethodOfLines(stability_check=1)
