"""`AbstractDomain`: the interface every domain implements."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import equinox as eqx
import jax
import numpy as np

if TYPE_CHECKING:
    from ._point_cloud import PointCloud


class AbstractDomain(eqx.Module):
    """A bounded region of R^d on which a PDE is posed.

    Subclasses provide:

    * `dim` — the spatial dimension d;
    * `bounding_box()` — `(lower, upper)`, float64 NumPy arrays of shape (d,);
    * `contains(x)` — for `x` of shape (..., d) a boolean jnp array of shape (...), True for
      points in the closed domain (boundary included to a tolerance of 1e-12 relative to
      max(1, domain size));
    * `sample_interior(key, n)` — (n, d) points i.i.d. uniform in the domain; pure JAX, jit-able
      with `n` static;
    * `sample_boundary(key, n)` — `(x, normals)`, each (n, d): points i.i.d. uniform with
      respect to the boundary's surface measure and the unit outward normals there;
    * `node_set(n, *, seed=0)` — a `PointCloud` of about `n` quasi-uniform nodes
      (interior plus boundary) for meshless discretisations;
    * `volume()` — the d-dimensional measure (length in 1-D, area in 2-D).
    """

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The spatial dimension d."""

    @abc.abstractmethod
    def bounding_box(self) -> tuple[np.ndarray, np.ndarray]:
        """Return `(lower, upper)`, float64 NumPy arrays of shape (d,) enclosing the domain."""

    @abc.abstractmethod
    def contains(self, x: Any) -> jax.Array:
        """Return a boolean array of shape `x.shape[:-1]`: is each point in the closed domain?"""

    @abc.abstractmethod
    def sample_interior(self, key: jax.Array, n: int) -> jax.Array:
        """Return `n` points, shape (n, d), drawn uniformly from the domain."""

    @abc.abstractmethod
    def sample_boundary(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        """Return `(x, normals)`, each (n, d): uniform boundary points, outward unit normals."""

    @abc.abstractmethod
    def node_set(self, n: int, *, seed: int = 0) -> PointCloud:
        """Return a quasi-uniform `PointCloud` with about `n` nodes in total."""

    @abc.abstractmethod
    def volume(self) -> float:
        """Return the d-dimensional measure of the domain."""
