"""The linear part `A` of a `NeuralODEProblem` as a lineax operator (private).

`linear` may be

* a matrix of shape `(N, N)`: it acts on the last axis of the state, so `y0` may be one
  trajectory `(N,)` or a batch of trajectories `(B, N)` sharing `A`;
* a `lineax.AbstractLinearOperator`: its input structure is either `y0`'s (one state) or,
  for a single-array `y0` of shape `(B,) + S`, the shape `S` of one trajectory (a batch);
* a linear function / equinox module of the whole state `y` (`linear(y)` has `y`'s
  structure). Wrap it in `lineax.FunctionLinearOperator(fn, jax.ShapeDtypeStruct(S, dtype))`
  to have it act on each trajectory of a batch instead.

A batch shares one operator, so implicit solvers factorise it once for all trajectories.
"""

from typing import Any

import jax
import jax.numpy as jnp
import lineax as lx

from ._validation import note_user_error


def _same_structure(struct, tree) -> bool:
    # Any: jaxlib's PyTreeDef has no type stubs, and mypy cannot compare the unresolved type.
    treedef: Any = jax.tree.structure(struct)
    return treedef == jax.tree.structure(tree) and all(
        s.shape == jnp.shape(y) for s, y in zip(jax.tree.leaves(struct), jax.tree.leaves(tree))
    )


def linear_operator(linear, y0) -> tuple[lx.AbstractLinearOperator, bool]:
    """`(operator, batched)`: `linear` as a lineax operator on one trajectory, and whether
    `y0` is a batch of trajectories (a single array with a leading batch axis).

    Raises `ValueError` naming `linear` when its shape does not fit `y0`.
    """
    leaves = jax.tree.leaves(y0)
    single = jax.tree_util.treedef_is_leaf(jax.tree.structure(y0))
    if isinstance(linear, lx.AbstractLinearOperator):
        struct = linear.in_structure()
        if _same_structure(struct, y0):
            return linear, False
        s_leaves = jax.tree.leaves(struct)
        if single and len(s_leaves) == 1 and jnp.ndim(y0) >= 1 and s_leaves[0].shape == jnp.shape(y0)[1:]:
            return linear, True
        raise ValueError(
            "`linear` operator's input structure does not match `y0`: operator takes "
            f"{struct}, y0 has shapes {[jnp.shape(y) for y in leaves]}. Pass an operator on "
            "one state, or on one trajectory (shape y0.shape[1:]) for a batch."
        )
    if callable(linear):
        struct = jax.tree.map(lambda y: jax.ShapeDtypeStruct(jnp.shape(y), jnp.result_type(y)), y0)
        try:
            out = jax.eval_shape(linear, y0)
        except Exception as e:
            note_user_error(e, "Calling `linear(y0)` while checking shapes")
            raise
        if not _same_structure(out, y0):
            raise ValueError("`linear(y)` must return the same structure and shapes as `y0`.")
        return lx.FunctionLinearOperator(linear, struct), False
    a = jnp.asarray(linear)
    if not single or jnp.ndim(y0) not in (1, 2):
        raise ValueError(
            "A matrix `linear` needs `y0` to be one array of shape (N,), or (B, N) for a batch "
            "of B trajectories; for other states pass a lineax operator or a linear function of y."
        )
    n = jnp.shape(y0)[-1]
    if a.shape != (n, n):
        raise ValueError(f"`linear` must be a ({n}, {n}) matrix for y0 of shape {jnp.shape(y0)}; got {a.shape}.")
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        a = a.astype(jnp.result_type(y0))
    return lx.MatrixLinearOperator(a), jnp.ndim(y0) == 2


def check_operator_dtype(op: lx.AbstractLinearOperator, y0, who: str) -> None:
    """Raise `TypeError` naming `y0` and `linear` when the operator's input or output dtype
    is not the state's (for solvers that solve with `op`: lineax needs one dtype, and a
    mixed pair would otherwise fail deep inside the solve, or factorise in the lower
    precision of the two)."""
    y_dtype = jnp.result_type(*jax.tree.leaves(y0))
    ins = {jnp.dtype(s.dtype) for s in jax.tree.leaves(op.in_structure())}
    outs = {jnp.dtype(s.dtype) for s in jax.tree.leaves(op.out_structure())}
    if ins == outs == {y_dtype}:
        return
    fix = (
        "Use one dtype for both: cast the state (`y0.astype(...)`) or the operator "
        f"(`linear=jnp.asarray(A, dtype={y_dtype})` for a matrix, `ShapeDtypeStruct(..., {y_dtype})` "
        "for a lineax operator, a function computing in y's dtype); float64 needs "
        "`jax.config.update('jax_enable_x64', True)`."
    )
    if ins != {y_dtype}:
        got = ", ".join(sorted(str(d) for d in ins))
        raise TypeError(f"{who}: `y0` has dtype {y_dtype} but `linear` has dtype {got}. {fix}")
    got = ", ".join(sorted(str(d) for d in outs))
    raise TypeError(f"{who}: `y0` has dtype {y_dtype} but `linear` returns {got} for it. {fix}")


def apply_operator(op: lx.AbstractLinearOperator, batched: bool, y):
    """`A y`, applied to each trajectory of a batch when `batched`."""
    if batched:
        return jax.vmap(op.mv)(y)
    return op.mv(y)


def apply_linear(linear, y):
    """`A y` for the `linear` of a `NeuralODEProblem` (matrix, lineax operator or function)."""
    op, batched = linear_operator(linear, y)
    return apply_operator(op, batched, y)
