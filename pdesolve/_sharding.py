"""Data-parallel placement on a `jax.sharding.Mesh`: the batch axis split, the rest replicated.

pdesolve has no parallel layer of its own: arrays are placed with `jax.device_put` and a
`NamedSharding`, and XLA's SPMD partitioner splits the jitted computations and inserts the
reductions (sums over samples, rows or trajectories become all-reduces).
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def check_mesh(mesh) -> Mesh:
    """Validate the `mesh` argument of `solve`/`train`; returns it."""
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"`mesh` must be a jax.sharding.Mesh, e.g. jax.make_mesh((jax.device_count(),), "
            f"('data',)); got {type(mesh).__name__}."
        )
    return mesh


def batch_axis(mesh: Mesh):
    """The mesh axes the batch dimension is split over (all of them, in order)."""
    names = tuple(mesh.axis_names)
    return names[0] if len(names) == 1 else names


def shard_leading(tree, mesh: Mesh):
    """Split every array leaf of `tree` along its leading axis over all devices of `mesh`.

    The leading size must be a multiple of `mesh.size`: an error names the size and the fix.
    """
    size = mesh.size

    def put(x):
        if not hasattr(x, "shape") or x.ndim == 0:
            return jax.device_put(x, NamedSharding(mesh, PartitionSpec()))
        if x.shape[0] % size:
            raise ValueError(
                f"cannot split a batch of {x.shape[0]} over {size} devices: choose a batch "
                f"(number of samples, rows or trajectories) that is a multiple of {size}."
            )
        return jax.device_put(x, NamedSharding(mesh, PartitionSpec(batch_axis(mesh))))

    return jax.tree.map(put, tree)


def replicate(tree, mesh: Mesh):
    """Place every array leaf of `tree` whole on every device of `mesh`."""
    spec = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(x, spec) if hasattr(x, "shape") else x, tree)
