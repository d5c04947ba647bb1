"""Hypothesis strategies shared by the tests: the problem, grid and options are drawn
themselves (spectra, bases, initial values, horizons, save times, tolerances, tableaux,
couplings, node sets), not a seed that then builds everything out of sight. (The tests
still draw a PRNG key where the object is a random vector in hundreds of coordinates: a
network's initial weights, a direction for a directional derivative.)

Every strategy is bounded so that each value it can draw is a well-posed case for the
assertion it is used with; the bounds are explained where they are defined. Values come
back as numpy arrays / Python floats; pass them to jitted code as arrays (`as_f64`), so
that a new example does not compile a new program.
"""

import math
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pdesolve as pds


def bounded_floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Finite floats in `[lo, hi]` (no NaN, no infinity; subnormals only where they lie in
    the interval)."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def float_arrays(shape, lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of `shape` with every entry drawn on its own from `[lo, hi]`
    (`fill=nothing()`: hypothesis' default fills most of a large array with one value)."""
    return hnp.arrays(np.float64, shape, elements=bounded_floats(lo, hi), fill=st.nothing())


def orthogonal_matrices(n: int) -> st.SearchStrategy[np.ndarray]:
    """An `(n, n)` orthogonal matrix: the `Q` factor (Householder QR) of a drawn matrix with
    entries in `[-1, 1]`. `Q` is orthogonal for every input, singular or zero included (the
    zero matrix gives the identity), so no draw is rejected."""
    return float_arrays((n, n), -1.0, 1.0).map(lambda m: np.linalg.qr(m)[0])


def _from_angles(angles) -> np.ndarray:
    """The point of the unit sphere in R^(k+1) with hyperspherical angles `angles` (k of them)."""
    x, sin_prod = [], 1.0
    for phi in angles:
        x.append(sin_prod * math.cos(phi))
        sin_prod *= math.sin(phi)
    x.append(sin_prod)
    return np.array(x)


def unit_vectors(n: int) -> st.SearchStrategy[np.ndarray]:
    """A unit vector in R^n from `n - 1` drawn hyperspherical angles (norm 1 for every draw)."""
    if n == 1:
        return st.sampled_from([np.array([1.0]), np.array([-1.0])])
    return st.lists(bounded_floats(0.0, 2 * math.pi), min_size=n - 1, max_size=n - 1).map(_from_angles)


class LinearSystem(NamedTuple):
    """`y' = a y, y(0) = y0`, with `a = basis blocks basis^T` (`basis` orthogonal, `blocks`
    2x2 blocks `[[-δ, ω], [-ω, -δ]]`) and `eigenvalues` its spectrum `-δ ± iω`."""

    a: np.ndarray
    y0: np.ndarray
    eigenvalues: np.ndarray
    basis: np.ndarray

    def exact(self, t: float) -> np.ndarray:
        """`e^{a t} y0` in closed form: each block's exponential is
        `e^{-δt} [[cos ωt, sin ωt], [-sin ωt, cos ωt]]` (no `expm`: ~50x cheaper, and
        independent of scipy)."""
        x = self.basis.T @ self.y0
        out = np.empty_like(x)
        for k in range(0, x.size, 2):
            lam = self.eigenvalues[k]  # -δ + iω
            c, s = math.cos(lam.imag * t), math.sin(lam.imag * t)
            out[k : k + 2] = math.exp(lam.real * t) * np.array([c * x[k] + s * x[k + 1], -s * x[k] + c * x[k + 1]])
        return self.basis @ out


@st.composite
def linear_systems(draw, dims=(4,), omega=(1.0, 2.0), decay=(0.0, 0.3)) -> LinearSystem:
    """A real linear system of even dimension `n` (drawn from `dims`): eigenvalues
    `-δ_k ± iω_k` (`ω_k` drawn from `omega`, `δ_k` from `decay`) in 2x2 blocks conjugated by
    a drawn orthogonal matrix, and a drawn unit-norm `y0`.

    The defaults (oscillatory, mildly damped: |λ| in [1, 2.03]) keep errors from vanishing or
    exploding over long horizons. Because the conjugation is orthogonal and the blocks are
    normal, ‖e^{at} y0‖ is a sum of squares of the blocks' contributions: a global error
    measured in the 2-norm has no cancellation between modes, so a measured convergence slope
    is the method's order for every draw (no mode can be missing: ω_k >= 1)."""
    n = draw(st.sampled_from(dims))
    assert n % 2 == 0, "linear_systems draws 2x2 blocks: dims must be even"
    blocks = np.zeros((n, n))
    eig = []
    for i in range(0, n, 2):
        w, d = draw(bounded_floats(*omega)), draw(bounded_floats(*decay))
        blocks[i : i + 2, i : i + 2] = [[-d, w], [-w, -d]]
        eig += [complex(-d, w), complex(-d, -w)]
    q = draw(orthogonal_matrices(n))
    y0 = draw(unit_vectors(n))
    return LinearSystem(q @ blocks @ q.T, y0, np.array(eig), q)


@st.composite
def split_linear_systems(draw, n=4, diagonal=(2.0, 10.0), coupling=0.5):
    """`(M, y0)`: `M = -diag(d) + B` with `d_i` drawn from `diagonal` and every entry of the
    coupling `B` drawn from `[-coupling, coupling]`, and a drawn unit-norm `y0`.

    Gershgorin: every eigenvalue lies within `(n - 1) * coupling` (1.5 at the defaults) of
    some `-d_i`, so `Re λ <= -0.5` (decaying, invertible: no mode is missing from the global
    error) and `|λ| <= 11.5` (|λ| h <= 0.48 at h = 1/24)."""
    d = draw(float_arrays((n,), *diagonal))
    b = draw(float_arrays((n, n), -coupling, coupling))
    np.fill_diagonal(b, 0.0)
    return -np.diag(d) + b, draw(unit_vectors(n))


def save_grids(t0: float, t1: float, size: int) -> st.SearchStrategy[np.ndarray]:
    """`size` sorted times in `[t0, t1]`: duplicates and the endpoints themselves are allowed
    (as `SaveAt(ts=...)` allows them), so hypothesis can draw both."""
    return float_arrays((size,), t0, t1).map(np.sort)


def step_grids(t0: float, t1: float, size: int, min_gap: float = 0.01) -> st.SearchStrategy[np.ndarray]:
    """`size + 1` strictly increasing times from `t0` to `t1` (both included; `StepTo`'s
    grid): `size` drawn gaps with ratios at most `1 / min_gap` between them."""

    def grid(gaps):
        ts = np.concatenate([[0.0], np.cumsum(gaps)])
        return t0 + (t1 - t0) * ts / ts[-1]

    return float_arrays((size,), min_gap, 1.0).map(grid)


def tolerances(log_rtol=(-9.0, -4.0), log_atol_over_rtol=(-3.0, 0.0)):
    """`(rtol, atol)`: `rtol = 10^u`, `u` drawn from `log_rtol`, and `atol = rtol * 10^v`,
    `v` drawn from `log_atol_over_rtol` (atol at most rtol: for states of size ~1 the
    relative part then matters, as it does in practice)."""
    return st.tuples(bounded_floats(*log_rtol), bounded_floats(*log_atol_over_rtol)).map(
        lambda uv: (10.0 ** uv[0], 10.0 ** (uv[0] + uv[1]))
    )


def rk2_tableau(alpha: float) -> pds.ButcherTableau:
    """The explicit 2-stage order-2 method with node `c2 = α`: `a = [[α]]`,
    `b = [1 - 1/(2α), 1/(2α)]` (α = 1/2 midpoint, 2/3 Ralston, 1 Heun)."""
    return pds.ButcherTableau(
        f"RK2(alpha={alpha!r})", c=[0.0, alpha], a=[[alpha]], b=[1.0 - 1.0 / (2 * alpha), 1.0 / (2 * alpha)], order=2
    )


def rk2_family(alpha=(0.05, 1.0)) -> st.SearchStrategy[pds.ButcherTableau]:
    """A member of the one-parameter family of 2-stage order-2 explicit RK methods,
    `c2 = α` drawn from `alpha` (bounded away from 0, where `b` blows up like 1/(2α))."""
    return bounded_floats(*alpha).map(rk2_tableau)


def couplings(lo: float = 0.5, hi: float = 1.0) -> st.SearchStrategy[float]:
    """The coupling `λ` of `ReversibleRK`, in `[lo, hi]` (valid: `0 < λ <= 1`)."""
    return bounded_floats(lo, hi)


def lattice(d: int, per_dim: int) -> np.ndarray:
    """The `per_dim^d` points of the regular grid on `[-1, 1]^d`, shape `(per_dim^d, d)`."""
    axis = np.linspace(-1.0, 1.0, per_dim)
    return np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)


def jittered_grids(d: int, per_dim: int, jitter: float = 0.15, per_node: bool = True) -> st.SearchStrategy[np.ndarray]:
    """`per_dim^d` nodes in (about) `[-1, 1]^d`: the regular grid, moved by a fixed irregular
    pattern of up to 0.2 spacings per coordinate plus a drawn offset of up to `jitter`
    spacings (at most 0.35 spacings in all: nodes stay distinct). With `per_node` the offset
    is drawn for every node and coordinate; without, for every grid line of every axis (a
    drawn non-uniform tensor grid: `d * per_dim` floats instead of `d * per_dim^d`, for 3-D
    node sets whose per-node draws would exceed hypothesis' entropy budget).

    Why the fixed pattern: the simplest draws (all offsets 0, or all equal) would otherwise
    give a (translated) lattice, on which symmetric stencils are exact for one more odd
    degree (central differences) and 3-D stencils near the faces are singular; with it every
    draw is a generic scattered node set, which is what the RBF-FD statements are about."""
    base = lattice(d, per_dim)
    spacing = 2.0 / (per_dim - 1)
    pattern = np.random.default_rng(20240).uniform(-0.2, 0.2, base.shape)  # fixed: not a draw
    if per_node:
        return float_arrays(base.shape, -jitter, jitter).map(lambda off: base + (pattern + off) * spacing)
    index = np.stack(np.meshgrid(*([np.arange(per_dim)] * d), indexing="ij"), axis=-1).reshape(-1, d)

    def nodes(lines):  # lines[c, i]: the offset of grid line i of axis c
        return base + (pattern + lines[np.arange(d), index]) * spacing

    return float_arrays((d, per_dim), -jitter, jitter).map(nodes)
