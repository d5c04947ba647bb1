"""IMEX (additive) Runge–Kutta tableaux: coupled order conditions via two-coloured rooted trees,
construction-time validation, and linear stability of the implicit parts. Pure numpy."""

import math

import numpy as np
import pytest

from pdesolve import _imex_tableau as imt
from pdesolve._imex_tableau import IMEX_TABLEAUX, IMEXTableau

TABLEAUX = list(IMEX_TABLEAUX.values())
IDS = list(IMEX_TABLEAUX)
WITH_PAIR = [t for t in TABLEAUX if t.embedded_order is not None]

# The coefficients are float64 roundings of rationals (KC) or of expressions in √2 (L2,
# ARS222); every residual up to the stated orders is <= 5e-16 (ARK5 included). The tolerance
# is 1e-13, tighter than 1e-10 on purpose: a one-digit slip in a 13-digit denominator moves the
# residuals by only ~1e-12 (see test_checker_catches_a_one_digit_slip).
TOL = 1e-13
# A condition counts as "failed" only if it misses by far more than rounding could.
FAIL = 1e-6

# ----------------------------------------------------------------------------------------
# Two-coloured rooted trees. A tree is (colour, children) with colour in "EI" and children a
# sorted tuple of trees: the canonical form of an unordered tree, so equal trees compare equal.


def _canon(colour, children):
    return (colour, tuple(sorted(children)))


def _add_leaf_everywhere(tree, colour):
    """All trees obtained by attaching one leaf of `colour` to some node of `tree`."""
    root_colour, children = tree
    yield _canon(root_colour, children + (_canon(colour, ()),))
    for k, child in enumerate(children):
        for grown in _add_leaf_everywhere(child, colour):
            yield _canon(root_colour, children[:k] + (grown,) + children[k + 1 :])


def coloured_trees(max_order, colours="EI"):
    """`{n: [trees with n nodes]}` for n <= max_order: every tree with n nodes is a tree with
    n - 1 nodes plus a leaf, so growing leaves and deduplicating canonical forms is complete."""
    trees = {1: sorted({_canon(c, ()) for c in colours})}
    for n in range(2, max_order + 1):
        trees[n] = sorted({g for t in trees[n - 1] for c in colours for g in _add_leaf_everywhere(t, c)})
    return trees


def size(t):
    return 1 + sum(size(ch) for ch in t[1])


def density(t):
    """γ(t) = |t| Π γ(children)."""
    return size(t) * math.prod(density(ch) for ch in t[1])


def _stage_vector(t, mats, s):
    """g(t) = Π over children ch of (A^{colour(ch)} g(ch)), elementwise; a leaf child gives A 1 = c."""
    g = np.ones(s)
    for ch in t[1]:
        g = g * (mats[ch[0]] @ _stage_vector(ch, mats, s))
    return g


def elementary_weight(t, mats, weights):
    """Φ(t) = w^{colour(root)} · g(t)."""
    return float(weights[t[0]] @ _stage_vector(t, mats, len(weights[t[0]])))


def residuals(mats, weights, n, colours="EI"):
    """`[(tree, Φ(t) - 1/γ(t))]` for every tree with exactly n nodes coloured from `colours`."""
    return [(t, elementary_weight(t, mats, weights) - 1.0 / density(t)) for t in coloured_trees(n, colours)[n]]


def max_residual(mats, weights, n, colours="EI"):
    return max(abs(r) for _, r in residuals(mats, weights, n, colours))


def parts(tab, embedded=False):
    A, b, _, At, bt, _, be, bte = tab.as_arrays()
    if embedded:
        b, bt = b - be, bt - bte
    return {"E": A, "I": At}, {"E": b, "I": bt}


# ----------------------------------------------------------------------------------------
# The checker itself.


def test_tree_counts():
    """Numbers of rooted trees (OEIS A000081: 1, 1, 2, 4, 9, 20) and of two-coloured rooted
    trees (A000151: 2, 4, 14, 52, 214, 916), and the two classical densities."""
    assert [len(coloured_trees(6, "E")[n]) for n in range(1, 7)] == [1, 1, 2, 4, 9, 20]
    assert [len(coloured_trees(6)[n]) for n in range(1, 7)] == [2, 4, 14, 52, 214, 916]
    bushy = _canon("E", tuple(_canon("E", ()) for _ in range(3)))  # b·c³ = 1/4
    tall = _canon("E", (_canon("E", (_canon("E", (_canon("E", ()),)),)),))  # b A A c = 1/24
    assert density(bushy) == 4 and density(tall) == 24


def test_checker_on_known_pairs():
    """RK4 coupled with itself is order 4 and not 5; forward–backward Euler is order 1 and not 2;
    Heun coupled with the trapezoidal rule is order 2, not 3."""
    rk4 = np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1, 0]])
    b4 = np.array([1, 2, 2, 1]) / 6
    mats, w = {"E": rk4, "I": rk4}, {"E": b4, "I": b4}
    assert all(max_residual(mats, w, n) < 1e-14 for n in range(1, 5))
    assert max_residual(mats, w, 5) > FAIL

    mats, w = {"E": np.array([[0.0]]), "I": np.array([[1.0]])}, {"E": np.ones(1), "I": np.ones(1)}
    assert max_residual(mats, w, 1) < 1e-15 and max_residual(mats, w, 2) > FAIL

    heun, trap = np.array([[0, 0], [1, 0.0]]), np.array([[0, 0], [0.5, 0.5]])
    half = np.array([0.5, 0.5])
    mats, w = {"E": heun, "I": trap}, {"E": half, "I": half}
    assert max_residual(mats, w, 2) < 1e-15 and max_residual(mats, w, 3) > FAIL
    # Wrong implicit weights (still summing to 1) break exactly the order-2 trees rooted at I.
    w_bad = {"E": half, "I": np.array([0.25, 0.75])}
    failed = [t for t, r in residuals(mats, w_bad, 2) if abs(r) > FAIL]
    assert sorted(failed) == sorted(t for t in coloured_trees(2)[2] if t[0] == "I")


def test_checker_catches_a_one_digit_slip():
    """ARK5's ã_76 = -4269925059573/7827059040749; with the denominator misread as ...719 (a
    transcription found in circulation) every condition of order >= 2 misses by ~1e-12."""
    mats, w = parts(imt.ARK5_4_8L2SA)
    At = mats["I"].copy()
    At[6, 5] = -4269925059573 / 7827059040719
    slipped = {"E": mats["E"], "I": At}
    assert all(max_residual(slipped, w, n) > 10 * TOL for n in range(2, 6))
    assert all(max_residual(mats, w, n) < TOL / 10 for n in range(2, 6))


# ----------------------------------------------------------------------------------------
# The tableaux.


@pytest.mark.parametrize("tab", TABLEAUX, ids=IDS)
def test_coupled_order_conditions(tab):
    """Every two-coloured tree with <= `order` nodes: Φ(t) = 1/γ(t)."""
    mats, w = parts(tab)
    for n in range(1, tab.order + 1):
        assert max_residual(mats, w, n) < TOL, (tab.name, n)


@pytest.mark.parametrize("tab", TABLEAUX, ids=IDS)
def test_order_is_not_understated(tab):
    """Some condition of order `order + 1` fails, so `order` is exact."""
    mats, w = parts(tab)
    assert max_residual(mats, w, tab.order + 1) > FAIL, tab.name


@pytest.mark.parametrize("tab", WITH_PAIR, ids=[t.name for t in WITH_PAIR])
def test_embedded_order_conditions(tab):
    """The embedded weights (b̂, b̂̃) satisfy every coupled condition to `embedded_order` and
    fail one of order `embedded_order + 1`; so the error estimate is O(h^error_order)."""
    mats, w = parts(tab, embedded=True)
    for n in range(1, tab.embedded_order + 1):
        assert max_residual(mats, w, n) < TOL, (tab.name, n)
    assert max_residual(mats, w, tab.embedded_order + 1) > FAIL
    assert tab.error_order == tab.embedded_order + 1


@pytest.mark.parametrize("tab", TABLEAUX, ids=IDS)
@pytest.mark.parametrize("colour", ["E", "I"])
def test_each_part_alone(tab, colour):
    """The colour-blind (classical) conditions of each part on its own, up to `order`."""
    mats, w = parts(tab)
    for n in range(1, tab.order + 1):
        assert max_residual(mats, w, n, colours=colour) < TOL, (tab.name, colour, n)


@pytest.mark.parametrize("tab", TABLEAUX, ids=IDS)
def test_structure(tab):
    A, b, c, At, bt, ct, _, _ = tab.as_arrays()
    s = tab.stages
    assert A.shape == At.shape == (s, s) and b.shape == bt.shape == c.shape == ct.shape == (s,)
    assert np.all(np.triu(A) == 0) and np.all(np.triu(At, 1) == 0)
    np.testing.assert_allclose(A.sum(1), c, atol=1e-14)
    np.testing.assert_allclose(At.sum(1), ct, atol=1e-14)
    assert tab.implicit_diagonal == tuple(np.diag(At))
    assert all(d >= 0 for d in tab.implicit_diagonal)


@pytest.mark.parametrize("tab", [imt.ARK3_2_4L2SA, imt.ARK4_3_6L2SA, imt.ARK5_4_8L2SA], ids=["ARK3", "ARK4", "ARK5"])
def test_kennedy_carpenter_structure(tab):
    """ESDIRK (ã_11 = 0, constant diagonal γ), stiffly accurate, shared b and c, and the
    embedded pair shares its weights across the parts too."""
    A, b, c, At, bt, ct, be, bte = tab.as_arrays()
    d = tab.implicit_diagonal
    assert d[0] == 0.0 and len(set(d[1:])) == 1 and d[1] > 0
    assert tab.stiffly_accurate
    np.testing.assert_array_equal(At[-1], bt)
    np.testing.assert_array_equal(b, bt)
    np.testing.assert_array_equal(c, ct)
    np.testing.assert_array_equal(be, bte)
    assert tab.error_order == tab.order  # min(p, p - 1) + 1


def test_named_coefficients():
    g = 1 - 1 / math.sqrt(2)
    assert imt.IMEX_L2.c_implicit == pytest.approx((g, 1 - g), abs=1e-15)
    assert imt.IMEX_L2.c_explicit == (0.0, 1.0) and not imt.IMEX_L2.stiffly_accurate
    assert imt.ARS222.stiffly_accurate and imt.ARS222.b_explicit[2] == 0.0
    assert imt.ARS222.b_explicit[0] == pytest.approx(1 - 1 / (2 * g), abs=1e-15)
    assert [t.implicit_diagonal[-1] for t in IMEX_TABLEAUX.values()] == pytest.approx(
        [g, g, 1767732205903 / 4055673282236, 0.25, 0.205], abs=1e-15
    )
    assert [(t.order, t.embedded_order, t.stages) for t in TABLEAUX] == [
        (2, None, 2), (2, None, 3), (3, 2, 4), (4, 3, 6), (5, 4, 8)
    ]


# ----------------------------------------------------------------------------------------
# Linear stability of the implicit part: R(z) = 1 + z b̃ᵀ (I - z Ã)⁻¹ 1.


def stability_function(tab, z):
    _, _, _, At, bt, _, _, _ = tab.as_arrays()
    s = tab.stages
    return 1 + z * (bt @ np.linalg.solve(np.eye(s) - z * At, np.ones(s)))


@pytest.mark.parametrize("tab", TABLEAUX, ids=IDS)
def test_implicit_part_is_l_stable(tab):
    """A-stable: the poles of R are 1/ã_ii > 0 (right half plane), so by the maximum modulus
    principle |R| <= 1 on the closed left half plane follows from |R(iy)| <= 1 on the imaginary
    axis (sampled) and |R(∞)| <= 1. L-stable: R(-1e8) ≈ 0. All five implicit parts are L-stable:
    KC's ESDIRKs and ARS(2,2,2) by construction (stiffly accurate, A-stable), L2 because its
    γ = 1 - 1/√2 is a root of R(∞) = (2γ² - 4γ + 1)/(2γ²)."""
    assert all(d > 0 for d in tab.implicit_diagonal if d != 0)
    y = np.concatenate([-np.logspace(-3, 8, 400), np.logspace(-3, 8, 400), [0.0]])
    on_axis = np.array([abs(stability_function(tab, 1j * v)) for v in y])
    assert on_axis.max() <= 1 + 1e-12, (tab.name, on_axis.max(), y[on_axis.argmax()])
    assert abs(stability_function(tab, -1e8)) < 1e-6, tab.name
    # and some left-half-plane interior points, as a spot check of the principle
    rng = np.random.default_rng(0)
    z = -rng.exponential(10, 200) + 1j * rng.normal(0, 30, 200)
    assert max(abs(stability_function(tab, zz)) for zz in z) <= 1 + 1e-12


def test_stability_function_detects_instability():
    """The same check rejects an implicit part that is not A-stable (γ = 0.2 < 1/4 for the
    2-stage order-2 SDIRK) and one that is A- but not L-stable (the trapezoidal rule)."""
    g = 0.2
    bad = IMEXTableau(
        "bad", a_explicit=[[0, 0], [1, 0]], b_explicit=[0.5, 0.5],
        a_implicit=[[g, 0], [1 - 2 * g, g]], b_implicit=[0.5, 0.5], order=2,
    )
    y = np.logspace(-3, 8, 400)
    assert max(abs(stability_function(bad, 1j * v)) for v in y) > 1 + 1e-6
    trap = IMEXTableau(
        "trap", a_explicit=[[0, 0], [1, 0]], b_explicit=[0.5, 0.5],
        a_implicit=[[0, 0], [0.5, 0.5]], b_implicit=[0.5, 0.5], order=2,
    )
    assert abs(stability_function(trap, -1e8)) > 0.5


# ----------------------------------------------------------------------------------------
# Validation at construction.

_OK = dict(
    a_explicit=[[0, 0], [1, 0]], b_explicit=[0.5, 0.5], a_implicit=[[0.5, 0], [0, 0.5]], b_implicit=[0.5, 0.5], order=2
)


def _make(**changes):
    return IMEXTableau("test", **{**_OK, **changes})


def test_valid_construction_derives_c():
    t = _make()
    assert t.c_explicit == (0.0, 1.0) and t.c_implicit == (0.5, 0.5)
    assert t.error_order is None and t.b_explicit_error is None
    t = _make(b_explicit_hat=[1, 0], b_implicit_hat=[1, 0], embedded_order=1)
    assert t.b_explicit_error == (-0.5, 0.5) and t.b_implicit_error == (-0.5, 0.5) and t.error_order == 2
    assert all(isinstance(x, float) for row in t.a_explicit for x in row)


@pytest.mark.parametrize(
    "changes, field",
    [
        (dict(a_explicit=[[0, 0], [1, 0.5]]), "a_explicit"),  # diagonal entry: not strictly lower
        (dict(a_explicit=[[0, 0.5], [1, 0]]), "a_explicit"),  # upper entry
        (dict(a_implicit=[[0.5, 0.1], [0, 0.5]]), "a_implicit"),  # upper entry
        (dict(b_explicit=[0.5, 0.6]), "b_explicit"),
        (dict(b_implicit=[0.4, 0.5]), "b_implicit"),
        (dict(b_explicit_hat=[1, 0], b_implicit_hat=[1, 0]), "embedded_order"),
        (dict(embedded_order=1), "embedded_order"),
        (dict(b_explicit_hat=[1, 0], embedded_order=1), "b_implicit_hat"),
        (dict(b_explicit_hat=[1, 0.5], b_implicit_hat=[1, 0], embedded_order=1), "b_explicit_error"),
        (dict(c_explicit=[0, 0.9]), "c_explicit"),
        (dict(c_implicit=[0.5, 0.6]), "c_implicit"),
        (dict(b_implicit=[1.0]), "b_implicit"),
        (dict(a_implicit=[[0.5, 0], [0, 0.5, 0]]), "a_implicit"),
        (dict(a_explicit=[[0, 0]]), "a_explicit"),
    ],
)
def test_invalid_construction_names_the_field(changes, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        _make(**changes)


def test_fields_are_static():
    """No array leaves: the tableau is pure static data for tracing."""
    import jax

    for t in TABLEAUX:
        assert jax.tree_util.tree_leaves(t) == []
        assert hash(t) == hash(t)


@pytest.mark.parametrize("tab", TABLEAUX, ids=IDS)
def test_convergence_on_a_nonlinear_split_problem(tab):
    """Independent of the tree checker: integrate y' = G(y) + L(y) with nonlinear G and L (a
    scalar problem, implicit stages solved by Newton) and measure the order of the global error."""
    lam = -2.0

    def G(y):
        return np.sin(y) + y**2 / 3

    def L(y):
        return lam * y + 0.5 * y**3 / (1 + y**2)

    def dL(y):
        return lam + 0.5 * (3 * y**2 + y**4) / (1 + y**2) ** 2

    def f(y):
        return G(y) + L(y)

    def step(y, h):
        A, b, _, At, bt, _, _, _ = tab.as_arrays()
        Gs, Ls = np.zeros(tab.stages), np.zeros(tab.stages)
        for i in range(tab.stages):
            rhs = y + h * (A[i, :i] @ Gs[:i] + At[i, :i] @ Ls[:i])
            u = rhs
            for _ in range(50):
                r = u - h * At[i, i] * L(u) - rhs
                u -= r / (1 - h * At[i, i] * dL(u))
                if abs(r) < 1e-15:
                    break
            Gs[i], Ls[i] = G(u), L(u)
        return y + h * (b @ Gs + bt @ Ls)

    def solve(y0, t1, n):
        y = y0
        for _ in range(n):
            y = step(y, t1 / n)
        return y

    def reference(y0, t1, n=2000):  # classical RK4, error ~1e-15 here
        y, h = y0, t1 / n
        for _ in range(n):
            k1 = f(y); k2 = f(y + h / 2 * k1); k3 = f(y + h / 2 * k2); k4 = f(y + h * k3)  # noqa: E702
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y

    y0, t1 = 0.8, 1.0
    exact = reference(y0, t1)
    ns = {2: [40, 80, 160], 3: [10, 20, 40], 4: [8, 16, 32], 5: [8, 12, 16]}[tab.order]
    errs = [abs(solve(y0, t1, n) - exact) for n in ns]
    slope = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(slope - tab.order) < 0.35, (tab.name, slope, errs)


def _steady_step(tab, y, h):
    """One step of y' = G + L with G = y² + 100 (explicit) and L = −100 y (implicit), scalar:
    each implicit stage is `u (1 + 100 h ã_ii) = rhs`."""
    A, b, _, At, bt, _, _, _ = tab.as_arrays()
    Gs, Ls = np.zeros(tab.stages), np.zeros(tab.stages)
    for i in range(tab.stages):
        u = (y + h * (A[i, :i] @ Gs[:i] + At[i, :i] @ Ls[:i])) / (1.0 + 100.0 * h * At[i, i])
        Gs[i], Ls[i] = u**2 + 100.0, -100.0 * u
    return y + h * (b @ Gs + bt @ Ls)


@pytest.mark.parametrize("tab", TABLEAUX, ids=IDS)
def test_steady_state_is_a_fixed_point_iff_nodes_agree(tab):
    """If `c = c̃` (and Σb = Σb̃ = 1) a steady state y* of G + L is a fixed point of every
    stage, so of the step, at any h: checked at h|λ| = 10 and 100 on y' = y² + 100 − 100 y
    (y* = 50 − √2400). L2 (c = (0, 1), c̃ = (γ, 1 − γ)) moves y* by O(1) at h|λ| = 10; its
    fixed point there is −2.005 (tests/test_imex.py, docs/imex.md)."""
    ystar = 100.0 / (50.0 + math.sqrt(2400.0))
    same_nodes = tab.c_explicit == tab.c_implicit
    assert same_nodes == (tab.name != "L2")
    for h in (0.1, 1.0):
        drift = abs(_steady_step(tab, ystar, h) - ystar)
        if same_nodes:
            assert drift < 1e-12, (tab.name, h, drift)
        else:
            assert drift > 0.1, (tab.name, h, drift)
