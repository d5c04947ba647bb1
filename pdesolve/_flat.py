"""A parameter pytree as ONE flat vector, with a hashable (jit-cache-friendly) unraveller."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp


class FlatParams(eqx.Module):
    """Static description of a parameter pytree: `ravel` it to one vector, `unravel` it back.

    Unlike `jax.flatten_util.ravel_pytree`, whose unravel function is a fresh closure on every
    call (so a jitted function taking it recompiles for every new model instance), this holds
    only the tree structure and leaf shapes as static fields: equal structures hash equal and
    hit the jit cache. Leaves are concatenated in `jax.tree.leaves` order, as `ravel_pytree`.
    """

    treedef: Any = eqx.field(static=True)
    shapes: tuple = eqx.field(static=True)
    dtype: Any = eqx.field(static=True, default=None)  # cast leaves to this on unravel (None: keep)

    @classmethod
    def of(cls, tree, dtype=None):
        leaves, treedef = jax.tree.flatten(tree)
        return cls(treedef, tuple(tuple(x.shape) for x in leaves), dtype)

    @staticmethod
    def ravel(tree):
        return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(tree)])

    def unravel(self, flat):
        leaves, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            leaf = jnp.reshape(flat[start : start + size], shape)
            leaves.append(leaf if self.dtype is None else leaf.astype(self.dtype))
            start += size
        return jax.tree.unflatten(self.treedef, leaves)

    def __call__(self, flat):
        return self.unravel(flat)
