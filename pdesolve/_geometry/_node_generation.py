"""Host-side node generation (NumPy / SciPy, float64) behind the domains' `node_set`.

The functions here return plain arrays `(interior, boundary, normals)`; the domains' `node_set`
methods validate `n` and wrap the arrays in a `PointCloud`. Nothing here is traced by JAX.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.optimize
import scipy.spatial
import scipy.stats
from scipy.stats import qmc

from ._measures import _ball_volume, _sphere_area

# Number of neighbours each moving node feels during repulsion: enough for the first shell
# of the densest packing (2 in 1-D, 6 in 2-D, 12 in 3-D, 24 in 4-D) plus some slack.
_REPEL_NEIGHBOURS = {1: 2, 2: 8, 3: 16, 4: 30}
_REPEL_ITERATIONS = 60
# Spring rest length relative to the mean spacing (volume per node)^(1/d). It exceeds the
# nearest-neighbour distance of the densest packing in d <= 4 (1.07 in 2-D, 1.12 in 3-D,
# 1.19 in 4-D), so every spring between neighbours is compressed and the node set behaves like
# a gas under pressure that spreads evenly over the region (the idea behind DistMesh's
# `Fscale`).
_REST_FACTOR = 1.3


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------


def _halton(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` scrambled Halton points in [0, 1)^d (scipy.stats.qmc)."""
    return qmc.Halton(d, scramble=True, rng=rng).random(n)


def _repel(
    moving: np.ndarray,
    fixed: np.ndarray,
    spacing: float,
    project: Callable[[np.ndarray], np.ndarray],
    iterations: int = _REPEL_ITERATIONS,
) -> np.ndarray:
    """Make `moving` quasi-uniform by k-nearest-neighbour spring repulsion.

    Each iteration builds a `scipy.spatial.cKDTree` of all nodes (moving and fixed), finds the
    k nearest neighbours of every moving node and pushes it away from each neighbour closer than
    the rest length `1.3 * spacing` by `0.2 * (rest - distance)` (explicit Euler step of a
    compressed spring network, step capped at `spacing / 2`), then maps it back into the
    admissible region with `project`. Fixed nodes (boundary nodes) repel but do not move.

    **Arguments:**

    - `moving`: `(m, d)` initial positions (e.g. scrambled Halton points).
    - `fixed`: `(f, d)` nodes that repel but stay put; may be empty.
    - `spacing`: the target mean spacing (volume per node)^(1/d).
    - `project`: maps an `(m, d)` array back into the admissible region.
    - `iterations`: number of repulsion steps.

    **Returns:** `(m, d)` float64 positions.

    Cost: `iterations` k-d tree builds and k-NN queries, O(iterations * n log n).
    """
    moving = np.array(moving, dtype=np.float64)
    m, d = moving.shape
    if m == 0:
        return moving
    total = m + fixed.shape[0]
    k = min(_REPEL_NEIGHBOURS.get(d, 2 * d * (d + 1)), total - 1)
    if k < 1:
        return project(moving)
    rest = _REST_FACTOR * spacing
    step_cap = 0.5 * spacing
    self_index = np.arange(m)[:, None]
    for _ in range(iterations):
        nodes = np.concatenate([moving, fixed], axis=0)
        tree = scipy.spatial.cKDTree(nodes)
        dist, idx = tree.query(moving, k=k + 1)
        dist = dist.reshape(m, k + 1)
        idx = idx.reshape(m, k + 1)
        valid = (idx != self_index) & (dist > 0.0)
        diff = moving[:, None, :] - nodes[idx]  # (m, k+1, d), points away from the neighbour
        safe = np.where(valid, dist, 1.0)
        strength = np.where(valid, np.maximum(rest - dist, 0.0) / safe, 0.0)
        disp = 0.2 * np.einsum("mk,mkd->md", strength, diff)
        norm = np.linalg.norm(disp, axis=1, keepdims=True)
        disp *= np.minimum(1.0, step_cap / np.maximum(norm, 1e-300))
        moving = project(moving + disp)
    return moving


def _box_grid(lower: np.ndarray, upper: np.ndarray, n: int) -> np.ndarray:
    """Points per dimension for the box node set, chosen so that it has about `n` nodes.

    The node set keeps the grid points with at most one coordinate on a face (corners and
    edges dropped). With m_j = L_j / h + 1 points per dimension that count is
    prod_j (m_j - 2) + sum_i 2 prod_{j != i} (m_j - 2); it is solved for the spacing h with
    Brent's method, then m_j = max(3, round(L_j / h) + 1).
    """
    lengths = upper - lower
    d = lengths.shape[0]

    def count(h):
        inner = np.maximum(lengths / h - 1.0, 0.0)
        faces = sum(2.0 * np.prod(np.delete(inner, i)) for i in range(d))
        return float(np.prod(inner)) + faces

    hi = float(lengths.max())  # count(hi) <= 2d: no interior node at all
    if n <= count(hi):
        return np.full(d, 3)
    lo = float(lengths.min()) / (n + 2.0)  # every m_j - 2 >= n + 1 there, so count(lo) > n
    h = scipy.optimize.brentq(lambda h: count(h) - n, lo, hi, xtol=1e-12 * hi)
    return np.maximum(3, np.rint(lengths / h).astype(int) + 1)


def _fibonacci_sphere(n: int) -> np.ndarray:
    """`n` nearly evenly spread unit vectors in 3-D (golden-angle spiral, equal-area bands)."""
    k = np.arange(n, dtype=np.float64)
    z = 1.0 - (2.0 * k + 1.0) / n
    rho = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = k * (math.pi * (3.0 - math.sqrt(5.0)))
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1)


def _halton_in_ball(
    center: np.ndarray, m: int, radius: float, rng: np.random.Generator
) -> np.ndarray:
    """The first `m` scrambled Halton points of the bounding cube inside the given ball."""
    d = center.shape[0]
    sampler = qmc.Halton(d, scramble=True, rng=rng)
    ratio = (2.0 * radius) ** d / _ball_volume(d, radius)
    kept = []
    count = 0
    while count < m:
        batch = 2.0 * sampler.random(int(1.2 * ratio * (m - count)) + 16) - 1.0
        batch = batch[np.linalg.norm(batch, axis=1) < 1.0]
        kept.append(batch)
        count += batch.shape[0]
    return center + radius * np.concatenate(kept, axis=0)[:m]


# ---------------------------------------------------------------------------------------------
# node sets of the concrete domains
# ---------------------------------------------------------------------------------------------


def _box_nodes(
    lower: np.ndarray, upper: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The node set of `Box(lower, upper)` with about `n` nodes (see `Box`'s docstring).

    **Arguments:**

    - `lower`, `upper`: float64 arrays of shape `(d,)`, `lower < upper`.
    - `n`: the requested number of nodes, >= 1.
    - `seed`: seeds the jitter in d >= 3; ignored in d <= 2.

    **Returns:** `(interior, boundary, normals)`, float64 arrays of shape `(., d)`.
    """
    d = lower.shape[0]
    counts = _box_grid(lower, upper, n)
    axes = []
    for j in range(d):
        coords = np.linspace(lower[j], upper[j], counts[j])
        coords[0], coords[-1] = lower[j], upper[j]
        axes.append(coords)
    index = np.stack(
        np.meshgrid(*[np.arange(m) for m in counts], indexing="ij"), axis=-1
    ).reshape(-1, d)
    points = np.stack([axes[j][index[:, j]] for j in range(d)], axis=1)
    at_lower = index == 0
    at_upper = index == (counts - 1)[None, :]
    n_extreme = (at_lower | at_upper).sum(axis=1)
    interior = points[n_extreme == 0]
    on_face = n_extreme == 1
    boundary = points[on_face]
    normals = at_upper[on_face].astype(np.float64) - at_lower[on_face].astype(np.float64)
    if d >= 3:
        # A 3-D tensor grid makes RBF-FD stencils near the faces span too few planes for
        # their polynomials (order 4: 113 nodes; the local systems are singular or weights
        # reach 1e15 times the typical size): the nodes are moved by up to a quarter
        # spacing, inside the box and within their face for boundary nodes.
        rng = np.random.default_rng(seed)
        spacing = (upper - lower) / (counts - 1)
        interior = interior + rng.uniform(-0.25, 0.25, interior.shape) * spacing
        tangential = 1.0 - np.abs(normals)
        boundary = np.clip(boundary + rng.uniform(-0.25, 0.25, boundary.shape) * spacing * tangential,
                           lower, upper)
    return interior, boundary, normals


def _ball_nodes(
    center: np.ndarray, radius: float, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The node set of `Ball(center, radius)` with about `n` nodes (see `Ball`'s docstring).

    **Arguments:**

    - `center`: float64 array of shape `(d,)`.
    - `radius`: a finite number > 0.
    - `n`: the requested number of nodes, >= 1.
    - `seed`: seeds the scrambled Halton starts (and the boundary's start in d >= 4).

    **Returns:** `(interior, boundary, normals)`, float64 arrays of shape `(., d)`; at least
    max(2, d + 1) boundary nodes and one interior node.
    """
    c, r = center, radius
    d = c.shape[0]
    volume = _ball_volume(d, r)
    h = (volume / n) ** (1.0 / d)
    rng = np.random.default_rng(seed)

    if d == 1:
        normals = np.array([[-1.0], [1.0]])
        boundary = c + r * normals
        n_int = max(n - 2, 1)
        t = np.arange(1, n_int + 1) / (n_int + 1)
        interior = (c[0] - r + 2.0 * r * t)[:, None]
        return interior, boundary, normals

    n_bnd_min = max(3, d + 1)
    n_bnd = int(round(_sphere_area(d, r) / h ** (d - 1)))
    n_bnd = max(n_bnd_min, min(n_bnd, n - 1))
    if d == 2:
        theta = 2.0 * math.pi * np.arange(n_bnd) / n_bnd
        normals = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    elif d == 3:
        normals = _fibonacci_sphere(n_bnd)
    else:
        start = scipy.stats.norm.ppf(np.clip(_halton(d, n_bnd, rng), 1e-12, 1 - 1e-12))
        start /= np.linalg.norm(start, axis=1, keepdims=True)

        def to_sphere(p):
            return p / np.linalg.norm(p, axis=1, keepdims=True)

        area_spacing = (_sphere_area(d, 1.0) / n_bnd) ** (1.0 / (d - 1))
        normals = _repel(start, np.zeros((0, d)), area_spacing, to_sphere)
    normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    boundary = c + r * normals

    n_int = max(n - n_bnd, 1)
    r_in = max(r - 0.5 * h, 0.25 * r)
    start = _halton_in_ball(c, n_int, r_in, rng)

    def to_inner_ball(p):
        offset = p - c
        dist = np.linalg.norm(offset, axis=1, keepdims=True)
        scale = np.minimum(1.0, r_in / np.maximum(dist, 1e-300))
        return c + offset * scale

    spacing = (_ball_volume(d, r_in) / n_int) ** (1.0 / d)
    interior = _repel(start, boundary, spacing, to_inner_ball)
    return interior, boundary, normals
