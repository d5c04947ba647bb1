"""`RecordingField`: the field DTPINN hands to the user's equation.

DT-PINNs (Sharma & Shankar, NeurIPS 2022) replace the autodiff spatial derivatives of a PINN
by sparse RBF-FD differentiation matrices: every linear operator `L` that appears in the
equation is applied to the network's values at all nodes with one sparse product `L @ u`.
The equation itself is still written once, pointwise, on an `AbstractField`
(`residual(u, x, args)`, `rhs(u, x, t, args)`, `bc.operator(u, normal)`). This module
lets the same function run on precomputed operator-applied arrays:

1. **Record.** `record_operators` traces the equation abstractly (`jax.eval_shape`, no
   FLOPs) on a `RecordingField` in *recording mode*: every `u.value`,
   `u.partial(...)`, `u.laplacian`, `u.grad`, `u.hessian`, `u.normal_derivative(n)`
   adds the canonical operator(s) it needs to a set and returns zeros of the right shape.
2. **Assemble.** The solver builds one sparse matrix per recorded operator (RBF-FD).
3. **Evaluate.** The solver computes `arrays = {op: L_op @ u_nodes}` (one entry per node and
   operator) and maps `evaluate_pointwise` over the points: at each point the field in
   *evaluation mode* holds `{op: scalar}` and every access returns the matching entry, so
   nonlinear terms such as `jnp.exp(u.value)` act pointwise on the discrete values. The field
   is a pytree (its dict of arrays is a leaf set), so it works under `jax.vmap`/`jit`/`grad`.

Canonical operators (the keys; `pdesolve._rbf_fd` defines them, the forms
`pdesolve._rbf_fd.canonical_operator` returns):

* `("value",)` (`VALUE`): `u.value`, `u.partial()`, `u[j].value`;
* `("partial", i)` (`partial_key(i)`): `u.partial(i)`, each column of `u.grad`;
* `("partial", i, j)` with `i <= j` (`partial_key(i, j)`): `u.partial(i, j)`, entries of
  `u.hessian`;
* `("laplacian",)` (`LAPLACIAN`): `u.laplacian`;
* `("normal",)` (`NORMAL`): `u.normal_derivative(n)` where `n` *is* the normal the solver gave the
  field (boundary points; the boundary conditions pass it through unchanged). Any other
  direction `n` is expanded as `sum_i n_i u.partial(i)`, which is the same operator by
  linearity, so it works at interior points too.

Derivatives of order three or more have no RBF-FD matrix here and raise
`NotImplementedError` naming `pdesolve.PINN` (autodiff) as the alternative.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._field import COMPONENT_HINT, AbstractField, check_axis
# The operator keys are defined once, in _rbf_fd (the matrices are keyed by them). DTPINN and
# MethodOfLines import VALUE from here.
from ._rbf_fd import LAPLACIAN, NORMAL, VALUE, partial_key
from ._validation import check_int

__all__ = [
    "OperatorRecorder",
    "RecordingField",
    "evaluate_pointwise",
    "record_operators",
]

class OperatorRecorder:
    """A mutable set of canonical operators, filled while an equation is traced.

    Hashed by identity, so it can sit in a static field of an equinox module.
    """

    def __init__(self) -> None:
        self.ops: set[tuple] = set()

    def add(self, op: tuple) -> None:
        self.ops.add(op)

    def __repr__(self) -> str:
        return f"OperatorRecorder({sorted(self.ops)})"


class RecordingField(AbstractField):
    """A field whose derivatives are entries of precomputed operator-applied arrays.

    **Arguments:**

    - `values`: `{canonical operator: array}` for ONE point, each array shaped like the
      field's value (`()` or `(k,)`), or `None` in recording mode (every access
      then returns zeros).
    - `normal`: the outward unit normal at this point (shape `(d,)`) for boundary points,
      else `None`. `normal_derivative(n)` with `n is normal` uses the `("normal",)`
      operator.
    - `dim`: the spatial dimension d.
    - `shape`: the shape of `value`: `()` or `(k,)`.
    - `dtype`: the dtype returned in recording mode.
    - `recorder`: an `OperatorRecorder` that collects every operator accessed (or
      `None`).

    See the module docstring for the operator keys. Cost: nothing beyond dictionary look-ups
    and, for `normal_derivative` along a direction other than the point's normal, d
    multiply-adds.
    """

    values: dict | None
    normal: Any = None
    _dim: int = eqx.field(static=True, default=2)
    _shape: tuple = eqx.field(static=True, default=())
    dtype: Any = eqx.field(static=True, default=None)
    recorder: OperatorRecorder | None = eqx.field(static=True, default=None)
    component: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if self._dim < 1:
            raise ValueError(f"`dim` must be >= 1, got {self._dim}.")
        if len(self._shape) > 1:
            raise ValueError(f"`shape` must be () or (k,), got {self._shape}.")

    # -- shapes -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """The spatial dimension d."""
        return self._dim

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of `value`: () or (k,)."""
        return self._shape

    # -- the one look-up everything goes through --------------------------------------------

    def _get(self, op: tuple) -> jax.Array:
        if self.recorder is not None:
            self.recorder.add(op)
        if self.values is None:
            dtype = self.dtype if self.dtype is not None else jnp.result_type(float)
            return jnp.zeros(self._shape, dtype)
        try:
            out = self.values[op]
        except KeyError:
            raise KeyError(
                f"The equation asked for operator {op!r}, which was not recorded when it was "
                f"first traced (recorded: {sorted(self.values)}). DTPINN traces the equation "
                "once to find its operators; the equation must use the same derivatives on "
                "every call (no Python branching on values or on the point)."
            ) from None
        if self.component is not None:
            out = out[self.component]
        return out

    # -- the field interface ----------------------------------------------------------------

    @property
    def value(self) -> jax.Array:
        """`u` at the point (the network's value there)."""
        return self._get(VALUE)

    def partial(self, *axes: int) -> jax.Array:
        """The RBF-FD approximation of d^m u / dx_{axes[0]} ... dx_{axes[m-1]}, m <= 2.

        `partial()` is `value`. Raises NotImplementedError for m >= 3 (no RBF-FD matrix).
        """
        axes = tuple(check_axis(a, self._dim) for a in axes)
        if not axes:
            return self.value
        if len(axes) <= 2:
            return self._get(partial_key(*axes))
        raise NotImplementedError(
            f"u.partial{axes}: derivatives of order {len(axes)} are not supported by DTPINN, "
            "whose RBF-FD differentiation matrices cover first and second derivatives "
            "(partial(i), partial(i, j), laplacian, grad, hessian, normal_derivative). Use "
            "pds.PINN (automatic differentiation) for this equation."
        )

    @property
    def grad(self) -> jax.Array:
        """`[partial(0), ..., partial(d-1)]` along the last axis: (d,) or (k, d)."""
        return jnp.stack([self.partial(i) for i in range(self._dim)], axis=-1)

    @property
    def hessian(self) -> jax.Array:
        """Entries `partial(i, j)` (symmetric): (d, d) or (k, d, d)."""
        rows = [
            jnp.stack([self.partial(i, j) for j in range(self._dim)], axis=-1)
            for i in range(self._dim)
        ]
        return jnp.stack(rows, axis=-2)

    @property
    def laplacian(self) -> jax.Array:
        """The RBF-FD Laplacian (one operator, not the trace of the Hessian's entries)."""
        return self._get(LAPLACIAN)

    def normal_derivative(self, n: Any) -> jax.Array:
        """`n . grad u`.

        If `n` is the very array the solver attached to this boundary point as its normal
        (boundary conditions pass it through unchanged), this is the RBF-FD `("normal",)`
        operator; otherwise `sum_i n_i partial(i)` (the same operator by linearity).
        """
        if self.normal is not None and n is self.normal:
            return self._get(NORMAL)
        n = jnp.asarray(n)
        if n.shape != (self._dim,):
            raise ValueError(
                f"`n` must have shape ({self._dim},) (one direction at this point), got shape "
                f"{n.shape}."
            )
        g = self.grad
        return jnp.sum(g * n.astype(g.dtype), axis=-1)

    def __getitem__(self, j: int) -> RecordingField:
        """The scalar field of component `j` of a system (same recorder, same normal)."""
        if not self._shape or self.component is not None:
            raise TypeError(
                "This field is scalar (value shape ()); u[j] needs a vector-valued field "
                "(a model returning shape (k,))."
            )
        j = check_int("j", j, hint=COMPONENT_HINT)
        k = self._shape[0]
        if not -k <= j < k:
            raise IndexError(
                f"Component index `j`={j} is out of range for a field with {k} components."
            )
        return RecordingField(
            self.values,
            self.normal,
            _dim=self._dim,
            _shape=(),
            dtype=self.dtype,
            recorder=self.recorder,
            component=j % k,
        )


def record_operators(
    fn: Callable[[AbstractField, jax.Array, jax.Array | None], Any],
    *,
    dim: int,
    shape: tuple = (),
    dtype: Any = None,
    with_normal: bool = False,
) -> frozenset:
    """Return the canonical operators `fn` applies to its field.

    **Arguments:**

    - `fn`: `fn(u, x, normal) -> array`, the equation at one point (`normal` is `None`
      unless `with_normal`).
    - `dim`: spatial dimension d.
    - `shape`: the field's value shape, `()` or `(k,)`.
    - `dtype`: the floating dtype to trace with (default: JAX's default float).
    - `with_normal`: give the field (and `fn`) a unit normal, as at boundary points.

    Traced with `jax.eval_shape`: no computation runs. Errors raised by `fn` (for
    example third derivatives) propagate.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    recorder = OperatorRecorder()

    def traced(x, normal):
        u = RecordingField(
            None, normal, _dim=dim, _shape=tuple(shape), dtype=dtype, recorder=recorder
        )
        return fn(u, x, normal)

    x = jax.ShapeDtypeStruct((dim,), dtype)
    normal = jax.ShapeDtypeStruct((dim,), dtype) if with_normal else None
    jax.eval_shape(traced, x, normal)
    return frozenset(recorder.ops)


def evaluate_pointwise(
    fn: Callable[[AbstractField, jax.Array, jax.Array | None], Any],
    arrays: dict,
    points: jax.Array,
    normals: jax.Array | None = None,
    *,
    shape: tuple = (),
) -> jax.Array:
    """Evaluate `fn(u, x, normal)` at every point, `u` reading from `arrays`.

    **Arguments:**

    - `fn`: the equation at one point, as for `record_operators`.
    - `arrays`: `{canonical operator: (n, *shape) array}`, the operators applied to the
      unknown at the `n` points (e.g. `L_op @ u_nodes`).
    - `points`: (n, d) points.
    - `normals`: (n, d) unit normals (boundary points) or `None`.
    - `shape`: the field's value shape.

    **Returns:** `jax.vmap` of `fn` over the points: shape `(n, *out_shape)`. Differentiable
    w.r.t. `arrays`; jit-able.
    """
    dim = points.shape[-1]

    def one(x, normal, vals):
        u = RecordingField(vals, normal, _dim=dim, _shape=tuple(shape))
        return fn(u, x, normal)

    return jax.vmap(one)(points, normals, arrays)
