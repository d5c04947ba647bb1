"""Measured order of convergence of every explicit tableau, and tableau consistency."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds
from pdesolve import _tableau as tab

from _ode_helpers import ALL_METHODS, as_f64, exact_linear, fixed_step_solver, random_linear_system

# (t1, numbers of steps) per order. Tsit5's linear stability polynomial matches exp(z) to
# almost 6th order (b A^4 1 = 1.031/720), so its 5th-order term dominates only for |λ h| < 0.05:
# it gets a longer horizon with more steps.
STEPS = {1: (1.0, [64, 128, 256, 512]), 2: (1.0, [16, 32, 64, 128]), 3: (1.0, [8, 16, 32, 64]),
         4: (1.0, [8, 16, 32, 64]), 5: (1.0, [8, 12, 16, 24]), "Tsit5": (8.0, [160, 240, 320, 480])}


@pytest.mark.parametrize("name", ALL_METHODS)
@given(seed=st.integers(0, 2**31 - 1))
def test_order_of_convergence(name, seed):
    a, y0 = random_linear_system(seed)
    order = getattr(pds, name).tableau.order
    t1, ns = STEPS.get(name, STEPS[order])
    exact = exact_linear(a, y0, t1)
    run = fixed_step_solver(name)
    errs = [np.linalg.norm(np.asarray(run(as_f64(a), as_f64(y0), as_f64(t1 / n), as_f64(t1))) - exact) for n in ns]
    slope = np.polyfit(np.log(t1 / np.array(ns)), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (name, slope, errs)


@pytest.mark.parametrize("name", ["Heun", "Midpoint", "Ralston", "Bosh3", "Dopri5", "Tsit5"])
def test_embedded_pair_order(name):
    """The embedded solution y_next - y_error converges at `embedded_order` (local error order+1)."""
    t = getattr(pds, name).tableau
    a, y0 = random_linear_system(7)
    a, y0 = jnp.asarray(a), jnp.asarray(y0)
    hs = np.array([0.2, 0.1, 0.05, 0.025])
    errs = []
    for h in hs:
        y1, err, _ = pds._rk.rk_step(t, lambda s, y: a @ y, 0.0, jnp.asarray(h), y0)
        exact = exact_linear(np.asarray(a), np.asarray(y0), h)
        errs.append(np.linalg.norm(np.asarray(y1 - err) - exact))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert abs(slope - (t.embedded_order + 1)) < 0.3, (name, slope)


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


def test_custom_tableau_solver_matches_builtin():
    a, y0 = random_linear_system(3)
    prob = pds.NeuralODEProblem(lambda t, y, A: A @ y, jnp.asarray(y0), (0.0, 1.0), jnp.asarray(a))
    s1 = pds.solve(prob, pds.ExplicitRK(tab.RK4), dt0=0.1)
    s2 = pds.solve(prob, pds.RK4(), dt0=0.1)
    np.testing.assert_array_equal(s1.ys, s2.ys)
