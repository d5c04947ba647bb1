"""Domains: where a PDE lives.

A domain answers four questions a solver asks about it:

* is a point inside? (`AbstractDomain.contains`)
* give me random collocation points inside it / on its boundary with outward normals
  (`AbstractDomain.sample_interior`, `AbstractDomain.sample_boundary`; pure JAX, jit-able with
  a static count, used by PINN-type solvers that resample every step);
* give me a fixed quasi-uniform node set (`AbstractDomain.node_set`; NumPy/SciPy on the host,
  float64, used by meshless discretisations such as RBF-FD);
* how large is it? (`AbstractDomain.volume`, `AbstractDomain.bounding_box`).

Concrete domains: `Box` (any dimension), `Ball` (interval, disk, ball, ...) and `PointCloud`
(a fixed node set, user supplied or built by another domain's `node_set`).

Sampling functions return `jnp` arrays of the default floating dtype (`float64` when
`jax_enable_x64` is on, `float32` otherwise); node sets are always float64 NumPy arrays.

Layout of the package:

* `_abstract_domain`: `AbstractDomain`, the interface every domain implements;
* `_box`, `_ball`, `_point_cloud`: the concrete domains (equinox modules; their methods
  validate arguments and call the helpers below);
* `_node_generation`: host-side node generation (NumPy/SciPy): tensor grids, Halton starts,
  spring repulsion, the Fibonacci sphere; returns plain arrays;
* `_sampling`: the jitted JAX kernels behind `sample_interior`, `sample_boundary` and
  `contains`;
* `_arguments`: converters and checks of constructor and method arguments;
* `_measures`: volumes and surface areas of balls.
"""

from ._abstract_domain import AbstractDomain
from ._ball import Ball
from ._box import Box
from ._point_cloud import PointCloud

__all__ = ["AbstractDomain", "Box", "Ball", "PointCloud"]
