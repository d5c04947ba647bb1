"""Measured order of convergence of every explicit tableau (and of the drawn members of the
2-stage order-2 family), and tableau consistency."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings

import pdesolve as pds
from pdesolve import _tableau as tab

from _ode_helpers import ADAPTIVE_METHODS, ALL_METHODS, as_f64, fixed_step_solver, linear_field
from _strategies import bounded_floats, float_arrays, linear_systems, rk2_family

# (t1 - t0, numbers of steps) per order. Tsit5's linear stability polynomial matches exp(z) to
# almost 6th order (b A^4 1 = 1.031/720), so its 5th-order term dominates only for |λ h| < 0.05:
# it gets a longer horizon with more steps.
STEPS = {1: (1.0, [64, 128, 256, 512]), 2: (1.0, [16, 32, 64, 128]), 3: (1.0, [8, 16, 32, 64]),
         4: (1.0, [8, 16, 32, 64]), 5: (1.0, [8, 12, 16, 24]), "Tsit5": (8.0, [160, 240, 320, 480])}


def _slope(hs, errs):
    return np.polyfit(np.log(hs), np.log(errs), 1)[0]


@pytest.mark.parametrize("name", ALL_METHODS)
@settings(max_examples=10, deadline=None)
@given(system=linear_systems(), t0=bounded_floats(-2.0, 2.0))
def test_order_of_convergence(name, system, t0):
    """Log-log slope of the global error (against the closed form) equals the order (±0.3), for a drawn
    spectrum (|λ| in [1, 2.03]), orthogonal basis, unit y0 and start time t0 (traced: one
    compile per method). The 2-norm error has no cancellation between modes (see
    `linear_systems`), so the slope is the order for every draw."""
    a, y0 = system.a, system.y0
    order = getattr(pds, name).tableau.order
    span, ns = STEPS.get(name, STEPS[order])
    exact = system.exact(span)
    run = fixed_step_solver(name)
    errs = [np.linalg.norm(np.asarray(run(as_f64(a), as_f64(y0), as_f64(span / n), as_f64(t0), as_f64(t0 + span))) - exact)
            for n in ns]
    slope = _slope(span / np.array(ns), errs)
    assert abs(slope - order) < 0.3, (name, slope, errs)


@pytest.mark.parametrize("name", ADAPTIVE_METHODS)
@settings(max_examples=10, deadline=None)
@given(system=linear_systems())
def test_embedded_pair_order(name, system):
    """The embedded solution y_next - y_error converges at `embedded_order` (local error
    order + 1), on a drawn linear system (one step, hs 0.2 .. 0.025: |λ h| <= 0.41).

    The four step sizes go through one eager `rk_step` call: a step of size h of y' = A y
    is the step of size 1 of y' = (h A) y, so row k of the batched state uses h_k A."""
    t = getattr(pds, name).tableau
    hs = np.array([0.2, 0.1, 0.05, 0.025])
    ha = as_f64(hs[:, None, None] * system.a)
    y0 = jnp.broadcast_to(as_f64(system.y0), (len(hs), system.y0.size))
    y1, err, _ = pds._rk.rk_step(t, lambda s, y: jnp.einsum("kij,kj->ki", ha, y), 0.0, as_f64(1.0), y0)
    ys = np.asarray(y1 - err)
    errs = [np.linalg.norm(y - system.exact(h)) for y, h in zip(ys, hs)]
    slope = _slope(hs, errs)
    assert abs(slope - (t.embedded_order + 1)) < 0.3, (name, slope, errs)


def _varying_rate(t, y, args):
    lam, eps = args
    return (lam + eps * jnp.cos(t)) * y


@jax.jit
def _varying_rate_exact(lam, eps, t0, t1):
    return jnp.exp(lam * (t1 - t0) + eps * (jnp.sin(t1) - jnp.sin(t0)))


@settings(max_examples=10, deadline=None)
@given(
    tableau=rk2_family(),
    lam=float_arrays((2,), -2.0, -1.0),
    eps_ratio=float_arrays((2,), 0.0, 1.0),
    t0=bounded_floats(-1.0, 1.0),
    span=bounded_floats(0.5, 2.0),
)
def test_rk2_family_order_of_convergence(tableau, lam, eps_ratio, t0, span):
    """Every member c2 = α of the 2-stage order-2 family (α in [0.05, 1]), as a user tableau
    in `ExplicitRK`, satisfies the order conditions and converges at order 2 (±0.3) on the
    non-autonomous y' = (λ + ε cos t) y, y = exp(λ (t - t0) + ε (sin t - sin t0)).

    On autonomous linear problems every member has the same R(z) = 1 + z + z²/2: the time
    dependence is what makes the stages' c2 = α (and the weights) matter. The family's
    local error is h³ [(1/6 - α/4) P + Q/6] with P = F''(F, F) = (2 μ' μ + μ'') y and
    Q = F'F'F = (μ³ + μ μ') y (μ = λ + ε cos t); for λ in [-2, -1] and ε <= 0.1 |λ| one has
    |P| < |Q| (e.g. λ = -1, ε = 0.1: |P| <= 0.32, |Q| >= 0.62), so the local error keeps its
    sign for every α and the global error cannot cancel (at ε = 0.6 |λ| it does: slope 3.45
    at α = 1, λ = -0.5). Measured worst over a grid of α, λ, ε, span: |slope - 2| = 0.09."""
    c, A, b, _ = tableau.as_arrays()
    assert b.sum() == pytest.approx(1.0, abs=1e-14) and b @ c == pytest.approx(0.5, abs=1e-14)
    eps = 0.1 * eps_ratio * np.abs(lam)
    args = (as_f64(lam), as_f64(eps))
    solver = pds.ExplicitRK(tableau)
    exact = np.asarray(_varying_rate_exact(*args, as_f64(t0), as_f64(t0 + span)))
    errs = []
    ns = np.array([16, 32, 64, 128])
    for n in ns:
        prob = pds.NeuralODEProblem(_varying_rate, jnp.ones(2), (as_f64(t0), as_f64(t0 + span)), args)
        y = pds.solve(prob, solver, dt0=as_f64(span / n), max_steps=256).ys[-1]
        errs.append(np.linalg.norm(np.asarray(y) - exact))
    slope = _slope(span / ns, errs)
    assert abs(slope - 2) < 0.3, (tableau.c[1], slope, errs)


@pytest.mark.parametrize(
    "t", [tab.EULER, tab.HEUN, tab.MIDPOINT, tab.RALSTON, tab.BOSH3, tab.RK4, tab.DOPRI5, tab.TSIT5]
)
def test_order_conditions(t):
    """Classical order conditions up to the stated order (trees up to order 4, plus Σ b c^4 = 1/5)."""
    c, A, b, _ = t.as_arrays()
    conds = {1: [(b.sum(), 1.0)], 2: [(b @ c, 1 / 2)], 3: [(b @ c**2, 1 / 3), (b @ A @ c, 1 / 6)],
             4: [(b @ c**3, 1 / 4), (b @ (c * (A @ c)), 1 / 8), (b @ A @ c**2, 1 / 12), (b @ A @ A @ c, 1 / 24)],
             5: [(b @ c**4, 1 / 5), (b @ A @ A @ A @ c, 1 / 120)]}
    for p in range(1, t.order + 1):
        for got, want in conds[p]:
            assert got == pytest.approx(want, abs=1e-12), (t.name, p)


def test_bad_tableau_rejected():
    with pytest.raises(ValueError, match="sum to 1"):
        pds.ButcherTableau("bad", c=[0.0, 1.0], a=[[1.0]], b=[0.5, 0.6], order=2)
    with pytest.raises(ValueError, match="sum to c"):
        pds.ButcherTableau("bad", c=[0.0, 0.5], a=[[1.0]], b=[0.5, 0.5], order=2)


@settings(max_examples=10, deadline=None)
@given(system=linear_systems(), t1=bounded_floats(0.3, 2.0))
def test_custom_tableau_solver_matches_builtin(system, t1):
    """`ExplicitRK(RK4 tableau)` and `RK4()` take bit-identical steps (drawn system, end time)."""
    prob = pds.NeuralODEProblem(linear_field, as_f64(system.y0), (0.0, as_f64(t1)), as_f64(system.a))
    s1 = pds.solve(prob, pds.ExplicitRK(tab.RK4), dt0=0.1)
    s2 = pds.solve(prob, pds.RK4(), dt0=0.1)
    np.testing.assert_array_equal(s1.ys, s2.ys)
