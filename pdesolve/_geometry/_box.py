"""`Box`: an axis-aligned box in any dimension."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_int
from ._abstract_domain import AbstractDomain
from ._arguments import _as_float_vector, COUNT_HINT, _check_points, _float_dtype
from ._node_generation import _box_nodes
from ._point_cloud import PointCloud
from ._sampling import _box_boundary, _box_contains, _box_interior


class Box(AbstractDomain):
    """The axis-aligned box `[lower_0, upper_0] x ... x [lower_{d-1}, upper_{d-1}]`, any d >= 1.

    **Arguments:**

    - `lower`: shape (d,), the lower corner.
    - `upper`: shape (d,), the upper corner; `lower < upper` elementwise, both finite.

    Sampling: interior points are i.i.d. uniform (one uniform draw per coordinate). Boundary
    points pick one of the 2d faces with probability proportional to its (d-1)-measure, then a
    uniform point on it; the outward normal is `-e_i` on the face `x_i = lower_i` and
    `+e_i` on `x_i = upper_i`. In 1-D the two end points are equally likely (counting
    measure) with normals -1 and +1. Cost O(n d).

    Node set: a tensor grid with m_j >= 3 points per dimension, the spacings L_j / (m_j - 1) as
    equal as the side lengths allow and prod(m_j) ~ n. Grid points with exactly one coordinate
    on a face become boundary nodes (normal of that face); corners (and in 3-D edges), where the
    normal is undefined, are left out, so no node is duplicated and every boundary node has a
    well-defined normal. Interior nodes are the strictly interior grid points, one grid spacing
    (about h) from the boundary. With h = (volume / N)^(1/d), N the number of nodes returned,
    the separation distance is ~h and the fill distance ~h * sqrt(d) / 2 away from the corners
    and ~h (2-D) or ~1.4 h (3-D) at the dropped corners and edges. Measured with 40 000 random
    probes: unit square, n = 400: separation / h = 1.05, fill distance / h = 0.99; [0,1]x[0,2]x
    [0,1], n = 1000: 1.03 and 1.41. In d >= 3 every node is then moved by up to a quarter
    spacing per coordinate (boundary nodes within their face), seeded by `seed`: on the exact
    3-D grid, RBF-FD stencils of order 4 near the faces are singular or ill-conditioned (they
    span too few planes for their polynomials). In d <= 2 the set is the exact grid and
    `seed` is ignored.
    """

    lower: np.ndarray = eqx.field(converter=_as_float_vector("lower"))
    upper: np.ndarray = eqx.field(converter=_as_float_vector("upper"))

    def __check_init__(self):
        lower, upper = self.lower, self.upper
        if not isinstance(lower, np.ndarray) or not isinstance(upper, np.ndarray):
            return  # rebuilt inside a JAX transformation: validated at construction
        if lower.ndim != 1 or lower.shape[0] < 1:
            raise ValueError(f"`lower` must be a 1-D array of shape (d,), got shape {lower.shape}.")
        if upper.ndim != 1 or upper.shape[0] < 1:
            raise ValueError(f"`upper` must be a 1-D array of shape (d,), got shape {upper.shape}.")
        if lower.shape != upper.shape:
            raise ValueError(
                f"`lower` and `upper` must have the same shape, got {lower.shape} and "
                f"{upper.shape}."
            )
        if not np.all(np.isfinite(lower)):
            raise ValueError(f"`lower` must be finite, got {lower}.")
        if not np.all(np.isfinite(upper)):
            raise ValueError(f"`upper` must be finite, got {upper}.")
        if not np.all(lower < upper):
            raise ValueError(
                f"`lower` must be < `upper` elementwise, got lower={lower}, upper={upper}; "
                f"swap them or widen the box."
            )

    @property
    def dim(self) -> int:
        """The spatial dimension d."""
        return self.lower.shape[0]

    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Return copies of `(lower, upper)` (float64 NumPy, shape (d,))."""
        return np.array(self.lower, dtype=np.float64), np.array(self.upper, dtype=np.float64)

    def volume(self) -> float:
        """Return prod(upper - lower)."""
        return float(np.prod(np.asarray(self.upper) - np.asarray(self.lower)))

    def contains(self, x: Any) -> jax.Array:
        """Return `lower - tol <= x <= upper + tol` in every coordinate, shape `x.shape[:-1]`.

        `tol = 1e-12 * max(1, max|bound|)` in float64 (16 ulp in float32). Cost O(size of x).
        """
        x = _check_points(self, x)
        lower = jnp.asarray(self.lower, dtype=x.dtype)
        upper = jnp.asarray(self.upper, dtype=x.dtype)
        return _box_contains(x, lower, upper)

    def sample_interior(self, key: jax.Array, n: int) -> jax.Array:
        """Return (n, d) points i.i.d. uniform in the box. Jit-able with `n` static; O(n d)."""
        n = check_int("n", n, 0, hint=COUNT_HINT)
        dtype = _float_dtype()
        lower = jnp.asarray(self.lower, dtype=dtype)
        upper = jnp.asarray(self.upper, dtype=dtype)
        return _box_interior(key, lower, upper, n=n)

    def sample_boundary(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """Return `(x, normals)`, (n, d) each: uniform on the box surface, outward normals.

        A face is chosen with probability proportional to its (d-1)-measure, then a uniform
        point on it. Points lie exactly on their face. Jit-able with `n` static; O(n d).
        """
        n = check_int("n", n, 0, hint=COUNT_HINT)
        dtype = _float_dtype()
        lower = jnp.asarray(self.lower, dtype=dtype)
        upper = jnp.asarray(self.upper, dtype=dtype)
        return _box_boundary(key, lower, upper, n=n)

    def node_set(self, n: int, *, seed: int = 0) -> PointCloud:
        """Return a grid-based quasi-uniform `PointCloud` with about `n` nodes.

        See the class docstring for the construction and the achieved spacing ratios. At least
        3 grid points per dimension are used, so tiny `n` gives the minimal 3^d grid minus its
        corners. `seed` seeds the jitter in d >= 3 (deterministic for a given seed) and is
        ignored in d <= 2. Cost O(n) memory and time.
        """
        n = check_int("n", n, 1, hint=COUNT_HINT)
        lower = np.asarray(self.lower, dtype=np.float64)
        upper = np.asarray(self.upper, dtype=np.float64)
        interior, boundary, normals = _box_nodes(lower, upper, n, seed)
        return PointCloud(interior, boundary, normals, domain=self)
