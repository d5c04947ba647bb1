"""Kuramoto–Sivashinsky (SINODE benchmark): ETDRK4 data generator, stencil, model, problems."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.integrate import solve_ivp

import pdesolve as pds
from pdesolve import problems as P

L = 22.0
N = 64


@functools.lru_cache(maxsize=None)
def _data():
    return P.ks_reference_data()


def _attractor_state():
    return np.array(_data()[1][0])


def _spectral_rhs(N, L):
    """An independent coding of the Fourier semi-discretisation (full complex FFT)."""
    k = 2 * np.pi * np.fft.fftfreq(N, d=L / N)
    k_odd = k.copy()
    k_odd[N // 2] = 0.0  # Nyquist derivative zero
    sym = k**2 - k**4

    def f(t, u):
        return np.real(np.fft.ifft(sym * np.fft.fft(u) - 0.5j * k_odd * np.fft.fft(u * u)))

    return f


@functools.lru_cache(maxsize=None)
def _radau_reference(T=10.0):
    sol = solve_ivp(
        _spectral_rhs(N, L), (0.0, T), _attractor_state(), method="Radau", rtol=1e-12, atol=1e-12
    )
    assert sol.success
    return sol.y[:, -1]


def _etd_final(u0, h, T):
    n = int(round(T / h))
    return P.ks_etdrk4(u0, h=h, n_steps=n, save_every=n)[-1]


# ---------------------------------------------------------------------------------------
# ETDRK4
# ---------------------------------------------------------------------------------------


def test_etdrk4_matches_radau_on_the_fourier_semidiscretisation():
    # t in [0, 10] from a state on the attractor, N = 64; reference: scipy Radau at
    # rtol = atol = 1e-12 on an independently coded right-hand side. Measured max errors:
    # h = 0.05: 2.2e-5, h = 0.025 (the default): 1.9e-6, h = 0.0125: 1.4e-7.
    ref = _radau_reference()
    u0 = _attractor_state()
    errs = {h: np.abs(_etd_final(u0, h, 10.0) - ref).max() for h in (0.05, 0.025, 0.0125)}
    assert errs[0.05] < 1e-4, errs
    assert errs[0.025] < 1e-5, errs
    assert errs[0.0125] < 1e-6, errs
    # and the two ETDRK4 runs agree with each other to the coarse run's error
    assert np.abs(_etd_final(u0, 0.05, 10.0) - _etd_final(u0, 0.0125, 10.0)).max() < 1e-4
    assert np.abs(ref - u0).max() > 1.0  # the state moved: not a trivial comparison


def test_etdrk4_order_is_about_four():
    # One time unit from a state on the attractor; fine-step ETDRK4 reference. Stiff
    # order reduction makes the pre-asymptotic slope a bit below 4 (measured ≈ 3.6).
    u0 = _attractor_state()
    T = 1.0
    ref = _etd_final(u0, T / 4096, T)
    hs = np.array([1 / 40, 1 / 80, 1 / 160, 1 / 320])
    errs = np.array([np.abs(_etd_final(u0, h, T) - ref).max() for h in hs])
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - 4.0) < 0.5, (slope, errs)
    assert np.all(np.diff(errs) < 0), errs


@pytest.mark.parametrize("m", [1, 2, 4, 7])
def test_etdrk4_is_exact_on_small_linear_modes(m):
    # An amplitude-1e-10 Fourier mode evolves as exp((k² − k⁴) t): checks the sign and
    # size of both linear terms (m = 1, 2 grow, m = 4, 7 decay). Nonlinearity: O(1e-10).
    x = L * np.arange(N) / N
    k = 2 * np.pi * m / L
    u0 = 1e-10 * np.cos(k * x)
    T = 2.0
    got = P.ks_etdrk4(u0, h=0.1, n_steps=20, save_every=20)[-1]
    # the mode's Fourier coefficient is multiplied by exactly exp(λ T) (to roundoff) ...
    ratio = np.fft.rfft(got)[m] / np.fft.rfft(u0)[m]
    np.testing.assert_allclose(ratio, np.exp((k**2 - k**4) * T), rtol=1e-10)
    # ... and the other modes stay O(amplitude²) (the quadratic term feeds mode 2m only)
    others = np.abs(np.fft.rfft(got)) / N
    assert np.delete(others, [m, 2 * m]).max() < 1e-15 * 1e-10
    assert others[2 * m] < 1e-9 * 1e-10


def test_etdrk4_batch_and_saving_conventions():
    u0 = _attractor_state()
    u1 = np.roll(u0, 5)
    out = P.ks_etdrk4(np.stack([u0, u1]), h=0.05, n_steps=10, save_every=3)
    assert out.shape == (4, 2, N)  # steps 0, 3, 6, 9
    np.testing.assert_array_equal(out[0, 0], u0)
    single = P.ks_etdrk4(u1, h=0.05, n_steps=9, save_every=3)
    np.testing.assert_allclose(out[:, 1], single, rtol=0, atol=1e-13)
    # translation equivariance of the periodic problem
    np.testing.assert_allclose(np.roll(out[-1, 0], 5), out[-1, 1], atol=1e-12)
    assert P.ks_etdrk4(u0, n_steps=0).shape == (1, N)


# ---------------------------------------------------------------------------------------
# contour-integral coefficients
# ---------------------------------------------------------------------------------------


def _taylor(z, terms=40):
    f = math.factorial
    q = sum(z ** (n - 1) / (2**n * f(n)) for n in range(1, terms))
    f1 = sum((m - 2) ** 2 * z ** (m - 3) / f(m) for m in range(3, terms))
    f2 = sum((m - 2) * z ** (m - 3) / f(m) for m in range(3, terms))
    f3 = sum((4 - m) * z ** (m - 3) / f(m) for m in range(3, terms))
    return q, f1, f2, f3


def _direct(z):
    e = np.exp(z)
    return (
        (np.exp(z / 2) - 1) / z,
        (-4 - z + e * (4 - 3 * z + z * z)) / z**3,
        (2 + z + e * (z - 2)) / z**3,
        (-4 - 3 * z - z * z + e * (4 - z)) / z**3,
    )


def test_coefficients_at_zero_and_small_z_match_taylor():
    z = np.array([-1.0, -0.5, -0.1, -1e-4, 0.0, 1e-8, 0.1, 0.5, 1.0])
    got = P.etdrk4_coefficients(z)
    want = _taylor(z)
    for g, w in zip(got, want):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, w, rtol=1e-12)
    np.testing.assert_allclose([c[4] for c in got], [0.5, 1 / 6, 1 / 6, 1 / 6], rtol=1e-13)
    # the direct formulas are useless here (cancellation), which is why contours are used
    assert abs(_direct(np.array(1e-6))[1] - 1 / 6) > 1e-3


@given(st.floats(-1.0, 1.0))
def test_coefficients_match_taylor_property(z):
    for g, w in zip(P.etdrk4_coefficients(np.array([z])), _taylor(z)):
        np.testing.assert_allclose(g[0], w, rtol=1e-12)


@given(st.one_of(st.floats(-5000.0, -2.0), st.floats(2.0, 30.0)))
def test_coefficients_match_direct_formulas_for_large_z(z):
    for g, w in zip(P.etdrk4_coefficients(np.array([z])), _direct(np.array([z]))):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_coefficients_for_complex_z():
    z = np.array([3.0 + 4.0j, -10.0 + 2.0j, -2.5j])
    for g, w in zip(P.etdrk4_coefficients(z, M=64), _direct(z)):
        assert np.iscomplexobj(g)
        np.testing.assert_allclose(g, w, rtol=1e-12)
    with pytest.raises(ValueError, match="`M`"):
        P.etdrk4_coefficients(z, M=4)


# ---------------------------------------------------------------------------------------
# stencil and linear operator
# ---------------------------------------------------------------------------------------


def _fd_symbol(k, dx):
    s = 2 * (1 - np.cos(k * dx)) / dx**2  # symbol of −δ²/Δx²
    return s - s**2  # −u_xx − u_xxxx: −δ²/Δx² − δ⁴/Δx⁴


def test_stencil_weights_are_the_papers_filter():
    dx = L / N
    want = [-1 / dx**4, 4 / dx**4 - 1 / dx**2, -6 / dx**4 + 2 / dx**2, 4 / dx**4 - 1 / dx**2, -1 / dx**4]
    np.testing.assert_allclose(P.ks_linear_stencil(N).weights, want, rtol=1e-15)


@pytest.mark.parametrize("m", [1, 2, 5, 16, 31])
def test_stencil_symbol_on_sine_modes(m):
    x = L * np.arange(N) / N
    k = 2 * np.pi * m / L
    dx = L / N
    stencil = P.ks_linear_stencil(N)
    for u in (np.sin(k * x), np.cos(k * x)):
        got = np.asarray(stencil(jnp.asarray(u)))
        np.testing.assert_allclose(got, _fd_symbol(k, dx) * u, atol=1e-10 * abs(_fd_symbol(k, dx)) + 1e-10)
    if m <= 2:  # low modes: close to the PDE's symbol k² − k⁴ (second-order FD)
        got = np.asarray(stencil(jnp.asarray(np.sin(k * x))))
        np.testing.assert_allclose(got, (k**2 - k**4) * np.sin(k * x), atol=0.01 * abs(k**2 - k**4))


def test_stencil_is_second_order_accurate():
    k = 2 * np.pi * 3 / L
    errs = []
    for n in (32, 64, 128, 256):
        x = L * np.arange(n) / n
        got = np.asarray(P.ks_linear_stencil(n)(jnp.asarray(np.sin(k * x))))
        errs.append(np.abs(got - (k**2 - k**4) * np.sin(k * x)).max())
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    np.testing.assert_allclose(rates, 2.0, atol=0.15)


def test_stencil_acts_row_wise_and_keeps_dtype():
    stencil = P.ks_linear_stencil(N)
    batch = jax.random.normal(jax.random.PRNGKey(1), (3, 2, N))
    out = stencil(batch)
    assert out.shape == batch.shape
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(out[i, j], stencil(batch[i, j]), rtol=1e-14, atol=1e-10)
    assert stencil(batch.astype(jnp.float32)).dtype == jnp.float32
    # fixed: no trainable leaves, so gradients see no parameters
    assert jax.tree.leaves(eqx.filter(stencil, eqx.is_array)) == []
    with pytest.raises(ValueError, match="odd"):
        P.CircularStencil((1.0, 2.0))
    with pytest.raises(ValueError, match="at least"):
        stencil(jnp.ones(3))


def test_linear_operator_matrix_is_circulant_symmetric_with_fd_spectrum():
    op = P.ks_linear_operator(N)
    assert isinstance(op, lx.AbstractLinearOperator)
    assert op.in_structure().shape == (N,) and op.in_structure().dtype == jnp.float64
    A = np.asarray(op.as_matrix())
    np.testing.assert_array_equal(A, A.T)
    for i in range(N):
        np.testing.assert_array_equal(A[i], np.roll(A[0], i))
    np.testing.assert_allclose(A.sum(axis=1), 0.0, atol=1e-10)  # constants are annihilated
    dx = L / N
    eig = np.sort(np.linalg.eigvalsh(A))
    want = np.sort(_fd_symbol(2 * np.pi * np.fft.fftfreq(N, d=dx), dx))
    np.testing.assert_allclose(eig, want, atol=1e-9 * np.abs(want).max())
    np.testing.assert_allclose(eig[0], 4 / dx**2 - 16 / dx**4, rtol=1e-12)  # ≈ −1112
    assert eig[-1] <= 0.25
    # applied row-wise to a batch (as the IMEX solver does) it is the stencil
    batch = jax.random.normal(jax.random.PRNGKey(2), (5, N))
    np.testing.assert_allclose(jax.vmap(op.mv)(batch), P.ks_linear_stencil(N)(batch), rtol=1e-13, atol=1e-10)
    assert P.ks_linear_operator(N, dtype=jnp.float32).in_structure().dtype == jnp.float32


# ---------------------------------------------------------------------------------------
# reference data
# ---------------------------------------------------------------------------------------


def test_reference_data_shapes_times_and_cache():
    ts, us, x = _data()
    assert ts.shape == (1001,) and us.shape == (1001, N) and x.shape == (N,)
    assert ts[0] == 0.0 and ts[-1] == pytest.approx(200.0)
    np.testing.assert_allclose(np.diff(ts), 0.2, rtol=1e-12)
    np.testing.assert_allclose(x, L * np.arange(N) / N)
    assert us.dtype == np.float64 and not us.flags.writeable
    assert P.ks_reference_data() is _data()  # cached
    # the first snapshot is the state at t = 100 of the paper's initial condition
    u100 = P.ks_etdrk4(P.ks_initial_condition(x), h=0.025, n_steps=4000, save_every=4000)[-1]
    np.testing.assert_allclose(us[0], u100, rtol=0, atol=1e-12)
    ts2, us2, _ = P.ks_reference_data(32, dt=0.5, t_discard=5.0, t_span=10.0)
    assert ts2.shape == (21,) and us2.shape == (21, 32)


def test_reference_data_are_bounded_chaotic_and_conserve_the_mean():
    ts, us, x = _data()
    assert np.all(np.isfinite(us)) and np.abs(us).max() < 10.0
    assert us.std(axis=0).min() > 0.1  # not a steady state at any grid point
    assert np.abs(np.diff(us, axis=0)).max() > 0.1
    # the mean is conserved (k = 0 mode: no linear or nonlinear forcing)
    mean0 = P.ks_initial_condition(x).mean()
    np.testing.assert_allclose(us.mean(axis=1), mean0, atol=1e-12)
    # sensitivity to initial data: a 1e-8 perturbation grows by > 1e3 within 200 time units
    u0 = us[0]
    pair = np.stack([u0, u0 + 1e-8 * np.sin(2 * np.pi * x / L)])
    out = P.ks_etdrk4(pair, h=0.025, n_steps=8000, save_every=400)
    sep = np.abs(out[:, 0] - out[:, 1]).max(axis=1)
    assert sep[-5:].max() > 1e3 * sep[0], sep


def test_reference_data_bad_arguments():
    with pytest.raises(ValueError, match="`dt`"):
        P.ks_reference_data(dt=0.2, h=0.03)
    with pytest.raises(ValueError, match="`t_span`"):
        P.ks_reference_data(t_span=10.1)
    with pytest.raises(ValueError, match="`u0`"):
        P.ks_reference_data(u0=np.zeros(10))
    with pytest.raises(ValueError, match="`dt`"):
        P.ks_reference_data(dt=-0.2)


# ---------------------------------------------------------------------------------------
# model and problems
# ---------------------------------------------------------------------------------------


def test_sinode_mlp_size_and_batching():
    model = P.sinode_model(jax.random.PRNGKey(0), N)
    H = 25 * N // 8
    assert H == 200 and model.mlp.width_size == H and model.mlp.depth == 4
    n_params = sum(a.size for a in jax.tree.leaves(eqx.filter(model, eqx.is_array)))
    assert n_params == N * H + H + 3 * (H * H + H) + H * N + N == 146_464
    u = jax.random.normal(jax.random.PRNGKey(3), (4, N))
    out = model(0.0, u, None)
    assert out.shape == (4, N)
    for i in range(4):
        np.testing.assert_allclose(out[i], model(0.0, u[i], None), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model(0.0, u.reshape(2, 2, N), None).reshape(4, N), out, rtol=1e-12, atol=1e-12)
    # ReLU hidden layers: positively homogeneous up to the biases — check the activation
    assert model.mlp.activation is jax.nn.relu
    with pytest.raises(ValueError, match="N=64"):
        model(0.0, jnp.ones(32), None)
    m32 = P.sinode_model(jax.random.PRNGKey(0), 16, jnp.float32)
    assert m32(0.0, jnp.ones(16, jnp.float32), None).dtype == jnp.float32
    # the MLP is trainable: non-zero gradients for its weights
    grads = eqx.filter_grad(lambda m: jnp.sum(m(0.0, u, None) ** 2))(model)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(grads))


def test_kuramoto_sivashinsky_problem():
    prob = P.kuramoto_sivashinsky()
    assert isinstance(prob, pds.NeuralODEProblem)
    assert P.CATALOGUE["kuramoto_sivashinsky"][0] is P.kuramoto_sivashinsky
    assert prob.tspan == (0.0, 0.2)
    assert isinstance(prob.vector_field, P.SINODEMLP)
    assert isinstance(prob.linear, lx.FunctionLinearOperator)
    np.testing.assert_array_equal(np.asarray(prob.y0), _data()[1][0])
    assert prob.y0.dtype == jnp.float64
    rhs = prob.vector_field(0.0, prob.y0, prob.args) + prob.linear.mv(prob.y0)
    assert rhs.shape == (N,) and bool(jnp.all(jnp.isfinite(rhs)))
    other = P.kuramoto_sivashinsky(key=jax.random.PRNGKey(7))
    assert not np.allclose(other.vector_field(0.0, prob.y0, None), prob.vector_field(0.0, prob.y0, None))
    p32 = P.kuramoto_sivashinsky(dtype=jnp.float32)
    assert p32.y0.dtype == jnp.float32
    assert p32.vector_field(0.0, p32.y0, None).dtype == jnp.float32


def test_semidiscrete_nonlinear_term():
    prob = P.ks_semidiscrete()
    assert isinstance(prob, pds.NeuralODEProblem) and prob.tspan == (0.0, 200.0)
    x = L * np.arange(N) / N
    k = 2 * np.pi * 3 / L
    u = np.sin(k * x) + 0.5
    # −u u_x, exact for a band-limited u
    want = -u * k * np.cos(k * x)
    np.testing.assert_allclose(prob.vector_field(0.0, jnp.asarray(u), None), want, atol=1e-12)
    batch = jnp.stack([jnp.asarray(u), prob.y0])
    out = prob.vector_field(0.0, batch, None)
    np.testing.assert_allclose(out[1], prob.vector_field(0.0, prob.y0, None), atol=1e-13)
    # matches the independently coded spectral right-hand side minus its linear part
    y = np.asarray(prob.y0)
    f = _spectral_rhs(N, L)
    kk = 2 * np.pi * np.fft.fftfreq(N, d=L / N)
    lin = np.real(np.fft.ifft((kk**2 - kk**4) * np.fft.fft(y)))
    np.testing.assert_allclose(out[1], f(0.0, y) - lin, atol=1e-11)
    assert prob.vector_field(0.0, jnp.asarray(u, jnp.float32), None).dtype == jnp.float32
    with pytest.raises(ValueError, match="`u0`"):
        P.ks_semidiscrete(u0=np.zeros(10))


def test_semidiscrete_follows_the_data_and_is_stiff_for_explicit_rk4():
    # G + A integrated by explicit RK4: h = 1e-3 is stable and stays near the spectral data
    # (the 5-point linear part differs by O(k⁴Δx²)); h = 3e-3 exceeds RK4's stability
    # limit 2.785 / 1112 ≈ 2.5e-3 for A's most negative eigenvalue and blows up.
    semi = P.ks_semidiscrete(tspan=(0.0, 1.0))
    A = P.ks_linear_stencil(N)
    full = pds.NeuralODEProblem(lambda t, u, a: semi.vector_field(t, u, a) + A(u), semi.y0, (0.0, 1.0))
    us = _data()[1]
    sol = pds.solve(full, pds.RK4(), dt0=1e-3, controller=pds.ConstantStepSize(), max_steps=2000)
    err = np.abs(np.asarray(sol.ys[-1]) - us[5]).max()  # data at t = 1
    assert err < 0.1 * np.abs(us[5] - us[0]).max(), err  # measured 0.026 vs a change of 1.75
    bad = pds.solve(full, pds.RK4(), dt0=3e-3, controller=pds.ConstantStepSize(), max_steps=2000, throw=False)
    assert not bool(bad.successful)


@pytest.mark.parametrize("bad, error", [(63, ValueError), (6, ValueError), (0, ValueError), (64.5, TypeError),
                                        ("64", TypeError), (True, TypeError)])
def test_bad_N_raises(bad, error):
    for make in (
        lambda: P.kuramoto_sivashinsky(bad),
        lambda: P.ks_semidiscrete(bad),
        lambda: P.ks_linear_stencil(bad),
        lambda: P.ks_linear_operator(bad),
        lambda: P.sinode_model(jax.random.PRNGKey(0), bad),
        lambda: P.ks_reference_data(bad),
    ):
        with pytest.raises(error, match="`N`"):
            make()
    if error is ValueError:
        with pytest.raises(ValueError, match="`N`"):
            P.ks_etdrk4(np.zeros(bad), n_steps=1)
