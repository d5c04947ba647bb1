"""docs/scripts/stability_regions.py: linear stability of ReversibleRK (McCallum & Foster 2024).

The step matrix is checked against the algebra (det M = λ), against a direct run of the
reversible recurrence built from the Butcher stages (independent of the R(z) formula), and,
where `pds.ReversibleRK` is available, against the solver itself.
"""

import importlib.util
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds

from _ode_helpers import ALL_METHODS

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "stability_regions.py"
METHODS = ALL_METHODS
LAMBDAS = [1.0, 0.999, 0.99, 0.9, 0.5, 0.1]

pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="needs the source tree")


def _load():
    spec = importlib.util.spec_from_file_location("stability_regions", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SR = _load() if SCRIPT.exists() else None


def _random_z(n, radius=3.0, seed=0):
    rng = np.random.default_rng(seed)
    r = radius * np.sqrt(rng.uniform(size=n))
    return r * np.exp(2j * np.pi * rng.uniform(size=n))


def _tab(name):
    return getattr(pds, name).tableau


@pytest.mark.parametrize("name", METHODS)
def test_det_is_lambda(name):
    z = _random_z(200, seed=METHODS.index(name))
    for lam in LAMBDAS:
        M = SR.reversible_step_matrix(_tab(name), z, lam)
        assert M.shape == (200, 2, 2)
        det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
        scale = 1.0 + np.abs(M[:, 0, 1] * M[:, 1, 0])  # size of the cancelling products
        assert np.all(np.abs(det - lam) <= 1e-12 * scale), (name, lam, np.abs(det - lam).max())
        np.testing.assert_allclose(np.linalg.det(M), lam, rtol=0, atol=1e-12 * scale.max())


@pytest.mark.parametrize("name", METHODS)
def test_lambda_one_is_never_asymptotically_stable(name):
    x = np.linspace(-4.0, 1.0, 61)
    y = np.linspace(-4.0, 4.0, 81)
    Z = (x[None, :] + 1j * y[:, None]).ravel()
    rho = SR.reversible_spectral_radius(_tab(name), Z, 1.0)
    assert rho.min() >= 1.0 - 1e-12, (name, rho.min())
    # while a smaller coupling does make some decaying modes strictly stable
    assert SR.reversible_spectral_radius(_tab(name), Z, 0.5).min() < 0.99


@pytest.mark.parametrize("name", METHODS)
def test_spectral_radius_is_one_at_zero(name):
    for lam in LAMBDAS:
        np.testing.assert_allclose(SR.reversible_spectral_radius(_tab(name), 0.0, lam), 1.0, atol=1e-15)
        np.testing.assert_allclose(SR.stability_function(_tab(name), 0.0), 1.0, atol=1e-15)


def test_spectral_radius_matches_numpy_eigvals():
    z = _random_z(300, seed=7)
    for name in ("RK4", "Dopri5", "Euler"):
        for lam in (1.0, 0.9, 0.3):
            M = SR.reversible_step_matrix(_tab(name), z, lam)
            ref = np.abs(np.linalg.eigvals(M)).max(axis=-1)
            np.testing.assert_allclose(SR.spectral_radius(M), ref, rtol=1e-10)


def test_rk4_stability_function_is_taylor_polynomial():
    z = _random_z(100, radius=4.0, seed=3)
    want = 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24
    np.testing.assert_allclose(SR.stability_function(pds.RK4.tableau, z), want, rtol=1e-13, atol=1e-13)
    # accepts a solver class or a name too
    np.testing.assert_allclose(SR.stability_function(pds.RK4, z), want, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(SR.stability_function("RK4", z), want, rtol=1e-13, atol=1e-13)
    # p-th order methods agree with exp(z) to O(z^{p+1})
    for name in METHODS:
        tab = _tab(name)
        small = 1e-2 * np.exp(0.7j)
        err = abs(SR.stability_function(tab, small) - np.exp(small))
        assert err < 5 * abs(small) ** (tab.order + 1), (name, err)


def test_stability_function_general_solve_path():
    # A non-explicit (implicit midpoint) tableau goes through the linear-solve branch:
    # R(z) = (1 + z/2) / (1 - z/2).
    class _Implicit:
        def as_arrays(self):
            return np.array([0.5]), np.array([[0.5]]), np.array([1.0]), None

    z = _random_z(50, radius=1.5, seed=5)
    np.testing.assert_allclose(SR.stability_function(_Implicit(), z), (1 + z / 2) / (1 - z / 2), rtol=1e-13)


def _psi(tab, mu, h, x):
    """Base RK increment on y' = mu y, from the Butcher stages (not from R(z))."""
    c, A, b, _ = tab.as_arrays()
    k = []
    for i in range(len(b)):
        k.append(mu * (x + h * sum(A[i, j] * k[j] for j in range(i))))
    return h * sum(b[i] * k[i] for i in range(len(b)))


@pytest.mark.parametrize("name", METHODS)
def test_matrix_reproduces_the_reversible_recurrence(name):
    tab = _tab(name)
    rng = np.random.default_rng(11)
    for z in _random_z(5, radius=2.0, seed=len(name)):
        for lam in (0.999, 0.7):
            h, mu = 0.3, z / 0.3
            state = rng.normal(size=2) + 1j * rng.normal(size=2)
            Y, Z = state
            Y1 = lam * Y + (1 - lam) * Z + _psi(tab, mu, h, Z)
            Z1 = Z - _psi(tab, mu, -h, Y1)
            M = SR.reversible_step_matrix(tab, z, lam)
            np.testing.assert_allclose(M @ state, [Y1, Z1], rtol=1e-12, atol=1e-12)
            # and the algebraic inverse undoes it
            Z0 = Z1 + _psi(tab, mu, -h, Y1)
            Y0 = (Y1 - (1 - lam) * Z0 - _psi(tab, mu, h, Z0)) / lam
            np.testing.assert_allclose([Y0, Z0], state, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not hasattr(pds, "ReversibleRK"), reason="pds.ReversibleRK not available")
@pytest.mark.parametrize("name", ["RK4", "Midpoint"])
def test_matrix_matches_reversible_solver(name):
    # On y' = mu y with constant steps, Y_N = first component of M(h mu)^N (1, 1).
    mu, h, n, lam = -0.8, 0.1, 20, 0.9
    prob = pds.NeuralODEProblem(lambda t, y, args: args * y, jnp.asarray([1.0]), (0.0, n * h), jnp.asarray(mu))
    solver = pds.ReversibleRK(base=getattr(pds, name)(), coupling=lam)
    sol = pds.solve(prob, solver, dt0=h, controller=pds.ConstantStepSize())
    M = SR.reversible_step_matrix(_tab(name), mu * h, lam)
    want = (np.linalg.matrix_power(M, n) @ np.ones(2))[0].real
    np.testing.assert_allclose(float(np.asarray(sol.ys).ravel()[-1]), want, rtol=1e-11)


def test_script_writes_png(tmp_path):
    out = tmp_path / "regions.png"
    assert SR.main(["--out", str(out), "--lambdas", "0.99", "0.5", "--resolution", "40", "--dpi", "40"]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    with pytest.raises(ValueError, match="λ"):
        SR.plot_regions(tmp_path / "bad.png", [1.5], resolution=20)


def test_small_z_region_is_the_strip_ln_lambda_le_re_z_le_0():
    # For R(z) = exp(z) the eigenvalues of M are exp(z) and λ exp(-z), so the region is the
    # strip ln λ <= Re z <= 0; RK4 (R ≈ exp to O(z^5)) follows it on the negative real axis.
    for lam in (0.999, 0.99, 0.9):
        edge = np.log(lam)
        inside = SR.reversible_spectral_radius("RK4", 0.9 * edge, lam)
        outside = SR.reversible_spectral_radius("RK4", 1.1 * edge, lam)
        assert inside <= 1.0 < outside, (lam, inside, outside)
