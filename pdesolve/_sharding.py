"""Data-parallel placement on a `jax.sharding.Mesh`: the batch axis split, the rest replicated.

pdesolve has no parallel layer of its own: arrays are placed with `jax.device_put` and a
`NamedSharding` (or constrained inside a jitted function with
`jax.lax.with_sharding_constraint`), and XLA's SPMD partitioner (GSPMD) splits the jitted
computations and inserts the communication: sums over samples, rows or trajectories become
all-reduces, and a gather from a split array (the neighbour values of a row-split sparse
product) becomes an all-gather. See docs/scaling.md.

The mesh must have Auto axes (`jax.sharding.Mesh(devices, names)`, or
`jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Auto,) * len(names))`): with
Explicit axes (the default of `jax.make_mesh` in recent JAX) sharding is part of the type and
the contractions over the split axis (JᵀJ, sums of squares) raise `ShardingTypeError`.
"""

from __future__ import annotations

import re

import equinox as eqx
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "batch_axis",
    "check_batch",
    "check_mesh",
    "collectives",
    "constrain_leading",
    "constrain_rows",
    "replicate",
    "shard_leading",
    "shard_rows",
]


def check_mesh(mesh) -> Mesh:
    """Validate the `mesh` argument of `solve`/`train`; returns it.

    Raises `TypeError` for anything but a `jax.sharding.Mesh`, and `ValueError` for a mesh with
    an Explicit axis (pdesolve relies on the partitioner choosing shardings: Auto axes)."""
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"`mesh` must be a jax.sharding.Mesh, e.g. jax.sharding.Mesh(jax.devices(), "
            f"('data',)); got {type(mesh).__name__}."
        )
    explicit = [
        name
        for name, kind in zip(mesh.axis_names, getattr(mesh, "axis_types", ()))
        if kind == jax.sharding.AxisType.Explicit
    ]
    if explicit:
        raise ValueError(
            f"`mesh` axes {explicit} are Explicit; pdesolve needs Auto axes (the partitioner "
            f"places the reductions). Build the mesh with jax.sharding.Mesh(devices, names) or "
            f"jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Auto,) * "
            f"{len(mesh.axis_names)})."
        )
    return mesh


def batch_axis(mesh: Mesh):
    """The mesh axes the batch dimension is split over (all of them, in order)."""
    names = tuple(mesh.axis_names)
    return names[0] if len(names) == 1 else names


def check_batch(n: int, mesh: Mesh, what: str, fix: str) -> None:
    """Raise a `ValueError` naming `what` and `fix` unless `n` is a multiple of `mesh.size`."""
    if n % mesh.size:
        raise ValueError(
            f"cannot split {what} = {n} over the {mesh.size} devices of `mesh`: {fix} "
            f"(a multiple of {mesh.size})."
        )


def _leading_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(batch_axis(mesh)))


def shard_leading(tree, mesh: Mesh, *, strict: bool = True):
    """Split every array leaf of `tree` along its leading axis over all devices of `mesh`.

    Scalars are replicated. With `strict=True` (the default) a leading size that is not a
    multiple of `mesh.size` raises an error that names the size and the fix; with
    `strict=False` such a leaf is replicated instead (use `constrain_leading` inside the
    jitted function to split its computation unevenly).
    """
    size = mesh.size
    split = _leading_sharding(mesh)
    whole = NamedSharding(mesh, PartitionSpec())

    def put(x):
        if not eqx.is_array(x):
            return x
        if x.ndim == 0:
            return jax.device_put(x, whole)
        if x.shape[0] % size:
            if not strict:
                return jax.device_put(x, whole)
            raise ValueError(
                f"cannot split a batch of {x.shape[0]} over {size} devices: choose a batch "
                f"(number of samples, rows or trajectories) that is a multiple of {size}."
            )
        return jax.device_put(x, split)

    return jax.tree.map(put, tree)


def replicate(tree, mesh: Mesh):
    """Place every array leaf of `tree` whole on every device of `mesh`."""
    spec = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(x, spec) if eqx.is_array(x) else x, tree)


def constrain_leading(tree, mesh: Mesh | None):
    """Inside `jit`: ask the partitioner to split every array leaf of `tree` (ndim >= 1) along
    its leading axis over `mesh`. Uneven sizes are allowed here (XLA pads the last shard).
    `mesh=None` returns `tree` unchanged, so single-device code paths stay identical."""
    if mesh is None:
        return tree
    spec = _leading_sharding(mesh)

    def constrain(x):
        if eqx.is_array(x) and x.ndim >= 1:
            return jax.lax.with_sharding_constraint(x, spec)
        return x

    return jax.tree.map(constrain, tree)


def shard_rows(data: dict, mesh: Mesh, *, replicated=()) -> dict:
    """Place a dict of row-indexed arrays (collocation points, sparse-matrix rows, nodes):
    split along the leading axis where its size is a multiple of `mesh.size`, replicated
    otherwise and for the keys in `replicated` (e.g. the time slices)."""
    return {
        k: replicate(v, mesh) if k in replicated else shard_leading(v, mesh, strict=False)
        for k, v in data.items()
    }


def constrain_rows(data: dict, mesh: Mesh | None, *, replicated=()) -> dict:
    """Inside `jit`: `constrain_leading` on every entry of `data` but those in `replicated`
    (uneven row counts allowed). `mesh=None` returns `data` unchanged."""
    if mesh is None:
        return data
    return {k: v if k in replicated else constrain_leading(v, mesh) for k, v in data.items()}


_COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")


def collectives(hlo_text: str) -> dict[str, int]:
    """Count the cross-device operations in compiled HLO text
    (`jax.jit(f).lower(*args).compile().as_text()`): `{"all-reduce": k, ...}`.

    Counts instructions (including their async `-start` forms), not executions: one inside a
    loop body counts once."""
    out = {}
    for name in _COLLECTIVES:
        out[name] = len(re.findall(rf"\s{name}(?:-start)?\(", hlo_text))
    return out
