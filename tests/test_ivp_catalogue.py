"""The initial-value PDE catalogue: wave, advection, Fokker–Planck, Vlasov, wave maps, and the
finite-difference reference for the 3-D wave benchmark (float64, see conftest.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pdesolve.problems.advection import advection, advection_boundary_bound
from pdesolve.problems.fokker_planck import (
    fokker_planck,
    fokker_planck_drift,
    fokker_planck_drift_divergence,
)
from pdesolve.problems.vlasov import vlasov, vlasov_field
from pdesolve.problems.wave import wave3d, wave3d_exact, wave3d_pulse
from pdesolve.problems.wave_fd import wave3d_fd_error, wave3d_finite_difference
from pdesolve.problems.wave_maps import (
    schwarzschild_metric,
    wave_maps,
    wave_maps_coefficients,
)

import pdesolve as pds

coord = st.floats(-1.0, 1.0, allow_nan=False)


def point(d):
    return st.lists(coord, min_size=d, max_size=d).map(lambda v: jnp.asarray(v, jnp.float64))


def pde_residual(problem, x, t):
    """`∂t u − rhs(u, x, t, args)` for the exact solution `u = problem.solution`."""
    sol = problem.solution
    t = jnp.asarray(t, jnp.float64)
    dudt = jax.jvp(lambda s: sol(x, s), (t,), (jnp.ones_like(t),))[1]
    rhs = problem.rhs(pds.Field(lambda y: sol(y, t), x), x, t, problem.args)
    return dudt - rhs, dudt, rhs


def boundary_points(problem, n, seed=0):
    pts, _ = problem.domain.sample_boundary(jax.random.PRNGKey(seed), n)
    return pts


# ---------------------------------------------------------------------------------------------
# wave3d
# ---------------------------------------------------------------------------------------------

WAVE = wave3d()
wave_residual = jax.jit(lambda x, t: pde_residual(WAVE, x, t))
wave_value_and_grad = jax.jit(jax.value_and_grad(wave3d_exact))
wave_state = jax.jit(jax.vmap(WAVE.solution, in_axes=(0, None)))  # [φ, φ_t] at points


@jax.jit
def pulse_derivatives(t):
    out, fn = [], wave3d_pulse
    for _ in range(5):
        fn = jax.grad(fn)
        out.append(fn(t))
    return out


@given(x=point(3), t=st.floats(0.0, 0.6))
def test_wave_exact_solution_satisfies_the_pde(x, t):
    res, dudt, rhs = wave_residual(x, t)
    scale = 1.0 + float(jnp.max(jnp.abs(dudt)))
    assert np.all(np.isfinite(np.asarray(rhs)))
    np.testing.assert_allclose(np.asarray(res), 0.0, atol=1e-9 * scale)


@pytest.mark.parametrize("r", [0.0, 1e-7, 5.7e-4, 5.9e-4, 2e-3])
@pytest.mark.parametrize("t", [0.0, 0.07])
def test_wave_exact_is_smooth_and_nan_free_near_the_origin(r, t):
    # On both sides of the Taylor-series switch (r* ≈ 5.8e-4 in float64) and at r = 0: finite
    # value / gradient / Laplacian, and the PDE holds (the Laplacian is what needs care).
    x = jnp.asarray([r, 0.0, 0.0]) @ jnp.asarray([[0.6, 0.8, 0.0], [-0.8, 0.6, 0.0], [0, 0, 1]])
    res, dudt, rhs = wave_residual(x, t)
    value, g = wave_value_and_grad(x, t)
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.isfinite(np.asarray(rhs)))
    np.testing.assert_allclose(np.asarray(res), 0.0, atol=1e-7 * (1.0 + float(jnp.abs(dudt[1]))))
    # the value agrees with the Taylor series -2f' - r^2 f'''/3 - r^4 f^(5)/60 on both sides
    # of the switch (the neglected O(r^6 f^(7)) term is ~1e-8 relative at r = 2e-3)
    derivs = [float(v) for v in pulse_derivatives(jnp.asarray(t))]
    series = -2.0 * derivs[0] - r**2 * derivs[2] / 3.0 - r**4 * derivs[4] / 60.0
    assert float(value) == pytest.approx(series, rel=1e-9 if r < 1e-3 else 1e-7, abs=1e-12)


def test_wave_initial_condition_and_boundary():
    x = WAVE.domain.sample_interior(jax.random.PRNGKey(1), 64)
    u0 = jax.jit(jax.vmap(WAVE.u0))(x)
    np.testing.assert_allclose(u0, wave_state(x, 0.0), rtol=1e-14, atol=1e-18)
    r = jnp.linalg.norm(x, axis=1)
    np.testing.assert_allclose(u0[:, 0], 0.0, atol=1e-15)  # starts from rest
    np.testing.assert_allclose(u0[:, 1], (1600 * r**2 - 8) * jnp.exp(-200 * r**2), atol=1e-12)
    # zero Dirichlet holds to 1.1e-21 on the faces for t in [0, 0.5]
    xb = boundary_points(WAVE, 256)
    for t in (0.0, 0.25, 0.5):
        vals = wave_state(xb, t)
        assert float(jnp.max(jnp.abs(vals[:, 0]))) <= 1.1e-21
    face = jnp.asarray([1.0, 0.0, 0.0])
    assert float(wave3d_exact(face, 0.5)) <= 1.1e-21
    assert WAVE.tspan == (0.0, 0.5) and WAVE.dim == 3


def test_wave_matches_the_papers_formula_at_the_final_time():
    # At T = 0.5 the regular solution equals f(t − r)/r of appendix B.1 to ~1e-22 for r > 0.
    x = WAVE.domain.sample_interior(jax.random.PRNGKey(2), 512)
    x = x[jnp.linalg.norm(x, axis=1) > 1e-3]
    r = jnp.linalg.norm(x, axis=1)
    paper = wave3d_pulse(0.5 - r) / r
    ours = wave_state(x, 0.5)[:, 0]
    np.testing.assert_allclose(ours, paper, rtol=1e-13, atol=1e-19)
    assert float(jnp.max(jnp.abs(paper))) > 1e-3  # the pulse is there


# ---------------------------------------------------------------------------------------------
# advection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 3])
def test_advection_exact_solution(d):
    prob = advection(d=d, velocity=np.linspace(0.5, 1.0, d), T=0.5)
    key = jax.random.PRNGKey(d)
    x = prob.domain.sample_interior(key, 32)
    ts = jax.random.uniform(jax.random.PRNGKey(10 + d), (32,), maxval=0.5)
    res = jax.jit(jax.vmap(lambda p, t: pde_residual(prob, p, t)[0]))(x, ts)
    np.testing.assert_allclose(res, 0.0, atol=1e-12)
    sol_at = jax.jit(jax.vmap(prob.solution, in_axes=(0, None)))
    np.testing.assert_allclose(jax.vmap(prob.u0)(x), sol_at(x, 0.0), rtol=1e-12, atol=1e-300)
    # the bump moves by c·T and stays centred
    c = jnp.linspace(0.5, 1.0, d)
    np.testing.assert_allclose(sol_at(-c[None] * 0.25, 0.0), [1.0], rtol=1e-15)
    np.testing.assert_allclose(sol_at(c[None] * 0.25, 0.5), [1.0], rtol=1e-15)
    bound = advection_boundary_bound(d=d, velocity=np.linspace(0.5, 1.0, d), T=0.5)
    assert bound == pytest.approx(math.exp(-(0.75**2) / 0.02))
    xb = boundary_points(prob, 128)
    for t in (0.0, 0.25, 0.5):
        assert float(jnp.max(sol_at(xb, t))) <= bound


def test_advection_default_boundary_bound_is_small():
    assert advection_boundary_bound() < 1e-12
    prob = advection()
    assert prob.dim == 2 and prob.tspan == (0.0, 0.5)


# ---------------------------------------------------------------------------------------------
# Fokker–Planck
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 8, 20])
def test_fokker_planck_drift_divergence_matches_autodiff(d):
    kx, ka = jax.random.split(jax.random.PRNGKey(d))
    x = jax.random.uniform(kx, (16, d), minval=-1.0, maxval=1.0)
    alpha = jax.random.uniform(ka, (16,), minval=-1.0, maxval=1.0)

    @jax.jit
    @jax.vmap
    def autodiff(y, al):
        jac = jax.jacfwd(lambda z: fokker_planck_drift(z, 0.2, al))(y)
        A = jnp.ones((d, d)) / d - jnp.eye(d)
        return jnp.trace(jac), fokker_planck_drift(y, 0.2, al) - (0.2 - y + al * A @ y)

    div, h_err = autodiff(x, alpha)
    want = [fokker_planck_drift_divergence(d, float(al)) for al in alpha]
    np.testing.assert_allclose(div, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_err, 0.0, atol=1e-15)  # h = (a − x) + α (11ᵀ/d − I) x
    assert fokker_planck_drift_divergence(8, 0.25) == -9.75


@pytest.mark.parametrize("d", [2, 8])
def test_fokker_planck_initial_condition_is_a_density(d):
    prob = fokker_planck(d)
    # tensor Gauss–Legendre, 3 nodes per axis: exact for the degree-2-per-axis integrand
    nodes, weights = np.polynomial.legendre.leggauss(3)
    grids = np.stack(np.meshgrid(*([nodes] * d), indexing="ij"), -1).reshape(-1, d)
    w = np.prod(np.stack(np.meshgrid(*([weights] * d), indexing="ij"), -1).reshape(-1, d), 1)
    total = float(jnp.sum(w * jax.jit(jax.vmap(prob.u0))(jnp.asarray(grids))))
    assert total == pytest.approx(1.0, abs=1e-13)
    np.testing.assert_allclose(jax.vmap(prob.u0)(boundary_points(prob, 64)), 0.0, atol=1e-15)


def test_fokker_planck_rhs_equals_the_divergence_form():
    prob = fokker_planck(8)
    D, alpha, a = prob.args["D"], prob.args["alpha"], prob.args["a"]

    def fn(y):  # a smooth non-separable test field
        return jnp.exp(-jnp.sum((y - 0.1) ** 2)) * (1.0 + 0.3 * jnp.sin(y @ jnp.arange(1.0, 9.0)))

    def reference(x):
        lap = jnp.trace(jax.hessian(fn)(x))
        flux = lambda y: fn(y) * fokker_planck_drift(y, a, alpha)
        return D * lap - jnp.trace(jax.jacfwd(flux)(x))

    x = prob.domain.sample_interior(jax.random.PRNGKey(3), 16)
    ours = jax.jit(jax.vmap(lambda p: prob.rhs(pds.Field(fn, p), p, 0.0, prob.args)))(x)
    np.testing.assert_allclose(ours, jax.jit(jax.vmap(reference))(x), rtol=1e-12, atol=1e-13)
    assert prob.solution is None and prob.dim == 8 and prob.tspan == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Vlasov
# ---------------------------------------------------------------------------------------------


def test_vlasov_initial_condition_is_a_normalised_density_on_r6():
    prob = vlasov()
    s = 0.3
    # Gauss–Hermite (weight e^{-z²}) after z = y/(σ√2): the integrand becomes a constant, so
    # any rule integrates it exactly; 3 nodes per axis, 729 points.
    nodes, weights = np.polynomial.hermite.hermgauss(3)
    z = np.stack(np.meshgrid(*([nodes] * 6), indexing="ij"), -1).reshape(-1, 6)
    w = np.prod(np.stack(np.meshgrid(*([weights] * 6), indexing="ij"), -1).reshape(-1, 6), 1)
    y = jnp.asarray(s * math.sqrt(2.0) * z)
    vals = jax.vmap(prob.u0)(y) * jnp.exp(jnp.sum(jnp.asarray(z) ** 2, axis=1))
    total = float(jnp.sum(w * vals)) * (s * math.sqrt(2.0)) ** 6
    assert total == pytest.approx(1.0, abs=1e-12)
    # analytic peak and the documented boundary ratio at a face centre
    assert float(prob.u0(jnp.zeros(6))) == pytest.approx((2 * math.pi * s * s) ** -3)
    face = jnp.zeros(6).at[0].set(1.0)
    ratio = float(prob.u0(face) / prob.u0(jnp.zeros(6)))
    assert ratio == pytest.approx(math.exp(-1 / (2 * s * s))) and ratio < 4e-3


def test_vlasov_rhs():
    prob = vlasov()
    z = prob.domain.sample_interior(jax.random.PRNGKey(4), 8)
    out = jax.jit(jax.vmap(lambda p: prob.rhs(pds.Field(prob.u0, p), p, 0.0, prob.args)))(z)
    assert out.shape == (8,) and out.dtype == jnp.float64

    def reference(p):
        x, v = p[:3], p[3:]
        E = jax.grad(lambda y: jnp.exp(-jnp.sum(y * y)))(x)
        gx, gv = jax.grad(prob.u0)(p)[:3], jax.grad(prob.u0)(p)[3:]
        return -(v @ gx) - E @ gv

    np.testing.assert_allclose(out, jax.jit(jax.vmap(reference))(z), rtol=1e-12, atol=1e-14)
    x = z[0, :3]
    np.testing.assert_allclose(
        vlasov_field(x), jax.grad(lambda y: jnp.exp(-jnp.sum(y * y)))(x), rtol=1e-14
    )
    assert prob.dim == 6 and prob.solution is None and prob.tspan == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# finite-difference reference for the wave benchmark
# ---------------------------------------------------------------------------------------------


def test_wave_finite_difference_converges_at_second_order():
    # a wider pulse (sharpness 50) so that coarse grids are in the asymptotic regime
    errors = []
    for n in (24, 40):
        res = wave3d_finite_difference(n, 0.3, sharpness=50.0)
        assert res.phi.shape == (n, n, n) and res.phi.dtype == jnp.float64
        assert bool(jnp.all(jnp.isfinite(res.phi))) and bool(jnp.all(jnp.isfinite(res.phi_t)))
        assert float(jnp.max(jnp.abs(res.phi[0]))) == 0.0  # Dirichlet nodes
        assert res.steps * res.dt == pytest.approx(0.3)
        assert res.dt <= 0.5 * (2.0 / (n - 1)) / math.sqrt(3.0) + 1e-15
        errors.append(wave3d_fd_error(res, sharpness=50.0))
    order = math.log(errors[0] / errors[1]) / math.log(39 / 23)
    assert errors[1] < 0.15
    assert 1.6 < order < 2.5, (errors, order)


def test_wave_finite_difference_validates_arguments():
    with pytest.raises(ValueError, match="`n`"):
        wave3d_finite_difference(2)
    with pytest.raises(TypeError, match="`n`"):
        wave3d_finite_difference(10.0)
    with pytest.raises(ValueError, match="`cfl`"):
        wave3d_finite_difference(10, cfl=1.5)
    with pytest.raises(ValueError, match="`T`"):
        wave3d_finite_difference(10, T=0.0)


# ---------------------------------------------------------------------------------------------
# argument validation of the constructors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda T: wave3d(T),
        lambda T: advection(T=T),
        lambda T: fokker_planck(2, T=T),
        lambda T: vlasov(T=T),
    ],
)
@pytest.mark.parametrize("T", [0.0, -1.0, float("nan"), float("inf")])
def test_constructors_reject_bad_final_times(make, T):
    with pytest.raises(ValueError, match="`T`"):
        make(T)


@pytest.mark.parametrize("make", [lambda T: wave3d(T), lambda T: vlasov(T=T)])
@pytest.mark.parametrize("T", ["1", None, True])
def test_constructors_reject_non_numeric_times(make, T):
    with pytest.raises(TypeError, match="`T`"):
        make(T)


@pytest.mark.parametrize("make", [lambda d: advection(d=d), lambda d: fokker_planck(d)])
def test_constructors_validate_the_dimension(make):
    for bad in (0, -3):
        with pytest.raises(ValueError, match="`d`"):
            make(bad)
    for bad in (2.0, True, "2"):
        with pytest.raises(TypeError, match="`d`"):
            make(bad)


def test_advection_rejects_a_bump_that_leaves_the_box():
    with pytest.raises(ValueError, match="leave the box"):
        advection(velocity=2.0, T=1.0)
    with pytest.raises(ValueError, match="`velocity`"):
        advection(d=2, velocity=[1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "prob", [wave3d(), advection(), fokker_planck(), vlasov()], ids=["wave", "adv", "fp", "vl"]
)
def test_problems_are_box_dirichlet_zero(prob):
    assert isinstance(prob.domain, pds.Box) and isinstance(prob.bc, pds.Dirichlet)
    np.testing.assert_array_equal(prob.domain.lower, -1.0)
    np.testing.assert_array_equal(prob.domain.upper, 1.0)
    assert float(prob.bc.g) == 0.0


# ---------------------------------------------------------------------------------------------
# wave maps on Schwarzschild
# ---------------------------------------------------------------------------------------------


def _generic_state(y):
    """A smooth non-symmetric test state [φ, π]."""
    phi = jnp.sin(y @ jnp.asarray([1.0, 2.0, -1.5])) * jnp.exp(-(y @ y)) + 0.3 * y[0] * y[2]
    return jnp.stack([phi, jnp.cos(y[0]) * y[1]])


def test_wave_maps_flat_limit_is_the_wave_equation():
    flat, wave = wave_maps(mass=0.0), wave3d()
    x = flat.domain.sample_interior(jax.random.PRNGKey(5), 8)

    @jax.jit
    @jax.vmap
    def both(p):
        u = pds.Field(_generic_state, p)
        return flat.rhs(u, p, 0.0, flat.args), wave.rhs(u, p, 0.0, wave.args)

    ours, want = both(x)
    np.testing.assert_allclose(ours, want, rtol=1e-13, atol=1e-13)


def test_wave_maps_operator_is_the_covariant_dalembertian():
    prob = wave_maps()
    mass, center = prob.args["mass"], prob.args["center"]
    rs = 2.0 * mass
    x = prob.domain.sample_interior(jax.random.PRNGKey(6), 8)

    def sqrt_minus_g(p):
        return jnp.sqrt(-jnp.linalg.det(schwarzschild_metric(p, mass, center)))

    @jax.jit
    @jax.vmap
    def check(p):
        # g^{00} φ_tt + (1/√−g) ∂_i(√−g g^{ij} ∂_j φ) = 0 for the static metric with g_{0i} = 0
        ginv, gamma = wave_maps_coefficients(p, mass, center)
        phi_tt = prob.rhs(pds.Field(_generic_state, p), p, 0.0, prob.args)[1]

        def flux(q):
            gi = wave_maps_coefficients(q, mass, center)[0][1:, 1:]
            return sqrt_minus_g(q) * gi @ jax.grad(lambda z: _generic_state(z)[0])(q)

        div = jnp.trace(jax.jacfwd(flux)(p)) / sqrt_minus_g(p)
        # static radial solution ln(1 − r_s/r_c): φ_tt = 0
        static = lambda q: jnp.stack(
            [jnp.log(1.0 - rs / jnp.linalg.norm(q - center)), 0.0 * q[0]]
        )
        static_tt = prob.rhs(pds.Field(static, p), p, 0.0, prob.args)[1]
        # analytic inverse metric
        y = p - center
        r = jnp.linalg.norm(y)
        n = y / r
        ginv_exact = jnp.zeros((4, 4)).at[0, 0].set(-1.0 / (1.0 - rs / r))
        ginv_exact = ginv_exact.at[1:, 1:].set(jnp.eye(3) - (rs / r) * jnp.outer(n, n))
        return ginv[0, 0] * phi_tt + div, static_tt, ginv - ginv_exact, gamma[0], phi_tt

    residual, static_tt, ginv_err, gamma0, phi_tt = check(x)
    scale = float(jnp.max(jnp.abs(phi_tt)))
    np.testing.assert_allclose(residual, 0.0, atol=1e-12 * scale)
    np.testing.assert_allclose(static_tt, 0.0, atol=1e-13)
    np.testing.assert_allclose(ginv_err, 0.0, atol=1e-14)
    np.testing.assert_allclose(gamma0, 0.0, atol=1e-15)


def test_wave_maps_problem():
    prob = wave_maps()
    assert prob.tspan == (0.0, 0.5) and prob.dim == 3 and prob.solution is None
    np.testing.assert_array_equal(prob.args["center"], [-2.0, 0.0, 0.0])
    xb = boundary_points(prob, 256)
    u0b = jax.vmap(prob.u0)(xb)
    assert u0b.shape == (256, 2)
    assert float(jnp.max(jnp.abs(u0b))) <= math.exp(-1 / (2 * 0.15**2))
    assert float(prob.u0(jnp.zeros(3))[0]) == 1.0
    with pytest.raises(ValueError, match="horizon"):
        wave_maps(center=(-1.5, 0.0, 0.0))
    with pytest.raises(ValueError, match="`mass`"):
        wave_maps(mass=-1.0)
    with pytest.raises(ValueError, match="`T`"):
        wave_maps(0.0)
