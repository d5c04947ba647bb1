"""`PointCloud`: a fixed, finite node set (user supplied or built by a domain's `node_set`)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import check_int
from ._abstract_domain import AbstractDomain
from ._arguments import _as_float_matrix, _as_float_scalar, COUNT_HINT, _float_dtype
from ._sampling import _pick_rows


class PointCloud(AbstractDomain):
    """A fixed, finite node set: interior nodes plus boundary nodes with outward unit normals.

    Built by hand from user data, or returned by `Box.node_set` / `Ball.node_set` (then
    `domain` is the generating domain and inside tests and volumes are delegated to it).

    **Arguments:**

    - `interior`: `(n_i, d)` interior nodes, n_i >= 1, finite.
    - `boundary`: `(n_b, d)` boundary nodes, finite; `None` (or a `(0, d)` array) for none.
    - `normals`: `(n_b, d)` outward unit normals at `boundary` (unit length to 1e-6).
    - `domain`: the `AbstractDomain` the nodes discretise, or `None` (user clouds).
    - `volume`: optional measure of the region the nodes fill (used by `volume()` when
      there is no `domain`).
    - `boundary_tags`: optional `(n_b,)` labels of the boundary nodes (ints or strings, e.g.
      `"inlet"`), which a `pdesolve.MixedBC` can select parts of the boundary by.

    **Fields:** `interior`, `boundary`, `normals` (float64 NumPy arrays on the host; without
    boundary nodes, `(0, d)` arrays), `domain`, `boundary_tags` (a NumPy array or `None`) and
    `given_volume` (the `volume=` argument, or `None`).

    Sampling: `sample_interior` / `sample_boundary` draw existing nodes uniformly at random
    *with replacement* (so they are uniform w.r.t. the node set, which approximates the
    uniform measure only as well as the nodes are quasi-uniform).
    """

    interior: np.ndarray
    boundary: np.ndarray
    normals: np.ndarray
    domain: AbstractDomain | None
    given_volume: float | None
    boundary_tags: np.ndarray | None

    def __init__(
        self,
        interior: Any,
        boundary: Any = None,
        normals: Any = None,
        *,
        domain: AbstractDomain | None = None,
        volume: float | None = None,
        boundary_tags: Any = None,
    ):
        interior = _as_float_matrix("interior")(interior)
        if (boundary is None) != (normals is None):
            raise ValueError(
                "`boundary` and `normals` must be given together (both None for a cloud "
                "without boundary nodes)."
            )
        if boundary is None:
            d = interior.shape[1] if interior.ndim == 2 else 1
            boundary = np.zeros((0, d))
            normals = np.zeros((0, d))
        self.interior = interior
        self.boundary = _as_float_matrix("boundary")(boundary)
        self.normals = _as_float_matrix("normals")(normals)
        if domain is not None and not isinstance(domain, AbstractDomain):
            raise TypeError(
                f"`domain` must be an AbstractDomain (e.g. pds.Box, pds.Ball) or None, got "
                f"{type(domain).__name__}."
            )
        self.domain = domain
        if volume is not None:
            volume = _as_float_scalar("volume")(volume)
            if not (math.isfinite(volume) and volume > 0.0):
                raise ValueError(f"`volume` must be a finite number > 0, got {volume}.")
        self.given_volume = volume
        if boundary_tags is not None:
            boundary_tags = np.asarray(boundary_tags)
            if boundary_tags.shape != (self.boundary.shape[0],):
                raise ValueError(
                    f"`boundary_tags` must have one label per boundary node, shape "
                    f"({self.boundary.shape[0]},); got shape {boundary_tags.shape}."
                )
            if not (np.issubdtype(boundary_tags.dtype, np.integer) or np.issubdtype(boundary_tags.dtype, np.str_)):
                raise TypeError(f"`boundary_tags` must be ints or strings; got dtype {boundary_tags.dtype}.")
        self.boundary_tags = boundary_tags

    def __check_init__(self):
        interior, boundary, normals = self.interior, self.boundary, self.normals
        if interior.ndim != 2:
            raise ValueError(
                f"`interior` must be a 2-D array of shape (n_interior, d), got shape "
                f"{interior.shape}."
            )
        n_i, d = interior.shape
        if d < 1:
            raise ValueError("`interior` must have at least one coordinate column (d >= 1).")
        if n_i < 1:
            raise ValueError("`interior` must contain at least one node (n_interior >= 1).")
        if boundary.ndim != 2 or boundary.shape[1] != d:
            raise ValueError(
                f"`boundary` must be a 2-D array of shape (n_boundary, {d}) (same d as "
                f"`interior`), got shape {boundary.shape}."
            )
        if normals.shape != boundary.shape:
            raise ValueError(
                f"`normals` must have the same shape as `boundary` {boundary.shape}, got "
                f"{normals.shape}."
            )
        for name, arr in (("interior", interior), ("boundary", boundary), ("normals", normals)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"`{name}` must be finite (it contains NaN or inf).")
        if normals.shape[0] > 0:
            deviation = float(np.max(np.abs(np.linalg.norm(normals, axis=1) - 1.0)))
            if deviation > 1e-6:
                raise ValueError(
                    f"`normals` must have unit length (largest deviation {deviation:.3g}); "
                    f"normalise them: normals / np.linalg.norm(normals, axis=1, keepdims=True)."
                )
        if self.domain is not None and self.domain.dim != d:
            raise ValueError(
                f"`domain` is {self.domain.dim}-D but the nodes are {d}-D; pass the domain the "
                f"nodes were built for."
            )

    @property
    def dim(self) -> int:
        """The spatial dimension d."""
        return self.interior.shape[1]

    @property
    def n_interior(self) -> int:
        """Number of interior nodes."""
        return self.interior.shape[0]

    @property
    def n_boundary(self) -> int:
        """Number of boundary nodes."""
        return self.boundary.shape[0]

    @property
    def points(self) -> np.ndarray:
        """All nodes, shape (n_interior + n_boundary, d): interior first, then boundary."""
        return np.concatenate([np.asarray(self.interior), np.asarray(self.boundary)], axis=0)

    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        """The generating domain's bounding box if there is one, else the nodes' min / max."""
        if self.domain is not None:
            return self.domain.bounding_box()
        pts = self.points
        return pts.min(axis=0), pts.max(axis=0)

    def volume(self) -> float:
        """The `volume=` given at construction, else the generating domain's volume.

        Raises NotImplementedError for a bare point cloud: a volume cannot be inferred reliably
        from the nodes.
        """
        if self.given_volume is not None:
            return float(self.given_volume)
        if self.domain is not None:
            return self.domain.volume()
        raise NotImplementedError(
            "A PointCloud built from user nodes has no volume; pass `volume=` when "
            "constructing it (or build it with a domain's `node_set`)."
        )

    def contains(self, x: Any) -> jax.Array:
        """Delegate to the generating domain; a bare point cloud has no inside test.

        Raises NotImplementedError when `domain` is None.
        """
        if self.domain is None:
            raise NotImplementedError(
                "A PointCloud built from user nodes has no inside test; pass `domain=` (the "
                "AbstractDomain the nodes discretise) when constructing it."
            )
        return self.domain.contains(x)

    def sample_interior(self, key: jax.Array, n: int) -> jax.Array:
        """Return (n, d) interior nodes drawn uniformly at random with replacement. O(n d)."""
        n = check_int("n", n, 0, hint=COUNT_HINT)
        return _pick_rows(key, (jnp.asarray(self.interior, dtype=_float_dtype()),), n=n)[0]

    def sample_boundary(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """Return `(x, normals)`: n boundary nodes drawn at random with replacement. O(n d)."""
        n = check_int("n", n, 0, hint=COUNT_HINT)
        if self.n_boundary == 0:
            raise ValueError(
                "This PointCloud has no boundary nodes; pass `boundary=` and `normals=` to "
                "sample its boundary."
            )
        dtype = _float_dtype()
        arrays = (jnp.asarray(self.boundary, dtype=dtype), jnp.asarray(self.normals, dtype=dtype))
        return _pick_rows(key, arrays, n=n)

    def node_set(self, n: int | None = None, *, seed: int = 0) -> PointCloud:
        """Return `self`: a point cloud is already a fixed node set.

        Raises ValueError if `n` is an int different from the number of nodes.
        """
        if n is not None:
            n = check_int("n", n, 1, hint=COUNT_HINT)
            total = self.n_interior + self.n_boundary
            if n != total:
                raise ValueError(
                    f"A PointCloud is a fixed node set of {total} nodes; `n`={n} cannot change "
                    f"it. Call node_set() without `n`, or build the nodes from a Box/Ball."
                )
        return self
