"""Boundary conditions `B u = g` on the boundary of a domain.

A boundary condition is a linear boundary operator `B` applied to a field `u` (see
`pdesolve._field`) at one boundary point with outward unit normal `n`, and a target
`g`. Solvers use `AbstractBoundaryCondition.residual` `B u - g` as the boundary part of
their loss (PINNs) or as rows of their discretisation (RBF-FD).
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._field import AbstractField
from ._validation import is_int

__all__ = ["AbstractBoundaryCondition", "Dirichlet", "MixedBC", "Neumann", "Robin"]


def _check_target(g: Any) -> None:
    """Validate a boundary target: a callable `g(x, t)` or a finite scalar / (k,) constant."""
    if callable(g):
        return
    try:
        arr = np.asarray(g)
    except jax.errors.TracerArrayConversionError:
        return  # a traced constant (built inside a JAX transformation): cannot be inspected
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(
            f"`g` must be a number, an array of shape (k,) or a callable g(x, t); got "
            f"{type(g).__name__}."
        )
    if arr.ndim > 1:
        raise ValueError(
            f"`g` must be a scalar or have the value's shape (k,), got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`g` must be finite (it contains NaN or inf): got {g!r}.")


def _check_coefficient(name: str, value: Any) -> float | None:
    """Validate a Robin coefficient; return it as a float when it is concrete."""
    try:
        arr = np.asarray(value)
    except jax.errors.TracerArrayConversionError:
        return None
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.ndim != 0:
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    if np.iscomplexobj(arr):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    out = float(arr)
    if not math.isfinite(out):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    return out


def _check_field(u: Any) -> None:
    if not isinstance(u, AbstractField):
        raise TypeError(
            f"`u` must be a pdesolve field (an AbstractField, e.g. pds.Field(fn, x)), got "
            f"{type(u).__name__}."
        )


class AbstractBoundaryCondition(eqx.Module):
    """A boundary condition `B u = g`.

    Subclasses define the boundary operator `operator` `B` and hold the target `g`:
    a constant (a Python number or an array of shape () or (k,) for a system) or a callable
    `g(x, t)` taking ONE boundary point `x` of shape (d,) and the time `t` (`None` for
    steady problems — a callable used in a steady problem must accept `t=None`), returning a
    value shaped like the field's value (or broadcastable to it).

    **Methods:**

    * `operator(u, normal)`: `B u` for a field `u` at a boundary point with outward unit
      normal `normal` (shape (d,)), shaped like `u.value`;
    * `target(x, t=None)`: `g` at `x`;
    * `residual(u, x, normal, t=None)`: `operator(u, normal) - target(x, t)`.

    All are pointwise: vmap over boundary points.
    """

    g: eqx.AbstractVar[Any]

    @abc.abstractmethod
    def operator(self, u: AbstractField, normal: Any) -> jax.Array:
        """Apply the boundary operator to the field `u` at a point with outward normal."""

    def target(self, x: Any, t: Any = None) -> jax.Array:
        """Return `g` at the boundary point `x` (shape (d,)) and time `t`.

        A callable `g` is called as `g(x, t)` (`t` is passed through, `None` for steady
        problems); a constant is returned as an array of the default float dtype. Cost: one
        call of `g`.
        """
        if callable(self.g):
            return jnp.asarray(self.g(x, t))
        g = jnp.asarray(self.g)
        if not jnp.issubdtype(g.dtype, jnp.inexact):
            g = g.astype(jnp.result_type(float))
        return g

    def residual(self, u: AbstractField, x: Any, normal: Any, t: Any = None) -> jax.Array:
        """Return `operator(u, normal) - target(x, t)`, shaped like `u.value`.

        **Arguments:**

        - `u`: the field at the boundary point `x`.
        - `x`: the boundary point, shape (d,).
        - `normal`: the outward unit normal at `x`, shape (d,).
        - `t`: the time, or `None` for steady problems.
        """
        return self.operator(u, normal) - self.target(x, t)


class Dirichlet(AbstractBoundaryCondition):
    """The Dirichlet condition `u = g`.

    **Arguments:**

    - `g`: the boundary value: a finite constant (scalar or shape (k,)) or a callable
      `g(x, t)`; default 0.

    `operator(u, normal) = u.value` (the normal is ignored). Cost: one field evaluation.
    """

    g: Any = 0.0

    def __check_init__(self):
        _check_target(self.g)

    def operator(self, u: AbstractField, normal: Any = None) -> jax.Array:
        """Return `u.value`; `normal` is accepted for a uniform interface and ignored."""
        _check_field(u)
        return u.value


class Neumann(AbstractBoundaryCondition):
    """The Neumann condition `n . grad u = g` with `n` the outward unit normal.

    **Arguments:**

    - `g`: the prescribed outward normal derivative: a finite constant (scalar or shape (k,))
      or a callable `g(x, t)`; default 0 (no flux).

    `operator(u, normal) = u.normal_derivative(normal)`. Cost: one JVP for autodiff fields.
    """

    g: Any = 0.0

    def __check_init__(self):
        _check_target(self.g)

    def operator(self, u: AbstractField, normal: Any) -> jax.Array:
        """Return `normal . grad u`, shaped like `u.value`."""
        _check_field(u)
        return u.normal_derivative(normal)


class Robin(AbstractBoundaryCondition):
    """The Robin condition `alpha n . grad u + beta u = g`.

    **Arguments:**

    - `alpha`: finite real coefficient of the outward normal derivative.
    - `beta`: finite real coefficient of the value; `alpha` and `beta` not both zero.
    - `g`: a finite constant (scalar or shape (k,)) or a callable `g(x, t)`; default 0.

    `alpha = 0` gives a (scaled) Dirichlet condition and `beta = 0` a (scaled) Neumann one;
    a term whose coefficient is a concrete zero is not evaluated (so a discretisation that
    traces the operator does not see it). Cost: one value and one JVP for autodiff fields.
    """

    alpha: Any
    beta: Any
    g: Any

    def __init__(self, alpha: Any, beta: Any, g: Any = 0.0):
        self.alpha = alpha
        self.beta = beta
        self.g = g

    def __check_init__(self):
        alpha = _check_coefficient("alpha", self.alpha)
        beta = _check_coefficient("beta", self.beta)
        if alpha == 0.0 and beta == 0.0:
            raise ValueError(
                "`alpha` and `beta` are both zero, so the condition says 0 = g; give at least "
                "one nonzero coefficient (alpha for the normal derivative, beta for the value)."
            )
        _check_target(self.g)

    def operator(self, u: AbstractField, normal: Any) -> jax.Array:
        """Return `alpha * normal . grad u + beta * u.value`, shaped like `u.value`."""
        _check_field(u)
        terms = []
        if not _is_concrete_zero(self.alpha):
            terms.append(self.alpha * u.normal_derivative(normal))
        if not _is_concrete_zero(self.beta):
            terms.append(self.beta * u.value)
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]


class MixedBC(AbstractBoundaryCondition):
    """Different conditions on different parts of the boundary.

    **Arguments:**

    - `pieces`: a sequence of `(where, condition)` pairs: `where(x) -> bool` for one
      boundary point `x` of shape (d,), or a boundary tag (an int or string, or a
      tuple of them) of a `PointCloud(..., boundary_tags=...)`; `condition` a
      `Dirichlet`, `Neumann` or `Robin`. At each boundary point the first piece
      whose `where` holds applies; every boundary point must be covered by some
      piece (checked by the solvers on their boundary nodes, with an error naming an
      uncovered point). Tags are resolved against the solver's node set (`on`).

    Example: Dirichlet on the left and bottom sides of the unit square, no flux elsewhere:

        pds.MixedBC([(lambda x: (x[0] <= 1e-9) | (x[1] <= 1e-9), pds.Dirichlet(0.0)),
                     (lambda x: True, pds.Neumann(0.0))])

    Supported by `PINN` (autodiff residuals per point) and `DTPINN` (one RBF-FD boundary
    matrix per operator any piece uses, over all boundary nodes, with the ghost nodes it
    already has; each node's rows select its piece). `NeuralIVP` refuses it (its boundary
    treatment is the bump factor for `Dirichlet(0)`). Cost: every piece's residual is
    evaluated at every boundary point and the applicable one selected.
    """

    pieces: tuple
    g: Any  # always None (each piece holds its own target); set in __init__

    def __init__(self, pieces):
        try:
            pieces = tuple((where, bc) for where, bc in pieces)
        except (TypeError, ValueError):
            raise TypeError(
                "MixedBC(pieces) takes a sequence of (where, condition) pairs, `where(x) -> bool`; "
                f"got {pieces!r}."
            ) from None
        self.pieces = pieces
        self.g = None

    def __check_init__(self):
        if not self.pieces:
            raise ValueError("MixedBC needs at least one (where, condition) pair.")
        for i, (where, bc) in enumerate(self.pieces):
            if not (callable(where) or _is_tags(where)):
                raise TypeError(
                    f"MixedBC piece {i}: `where` must be callable `where(x) -> bool` or a boundary tag "
                    f"(int or str, or a tuple of them); got {where!r}."
                )
            if isinstance(bc, MixedBC) or not isinstance(bc, AbstractBoundaryCondition):
                raise TypeError(
                    f"MixedBC piece {i}: the condition must be a Dirichlet, Neumann or Robin; got "
                    f"{type(bc).__name__}."
                )

    @property
    def uses_tags(self) -> bool:
        return any(_is_tags(where) for where, _ in self.pieces)

    def on(self, cloud: Any) -> MixedBC:
        """This condition with its tag pieces resolved against `cloud`'s
        `boundary_tags`: a tag selects exactly the boundary nodes that carry it."""
        if not self.uses_tags:
            return self
        tags = getattr(cloud, "boundary_tags", None)
        if tags is None:
            raise ValueError(
                "MixedBC selects parts of the boundary by tag, but the node set has no "
                "boundary_tags: build it as pds.PointCloud(..., boundary_tags=...) and pass it as "
                "the solver's `nodes=` (or select by `where(x)` functions)."
            )
        pieces = []
        for where, bc in self.pieces:
            if _is_tags(where):
                wanted = list(where) if isinstance(where, tuple) else [where]
                mask = np.isin(tags, wanted)
                if not mask.any():
                    raise ValueError(f"MixedBC: no boundary node has tag {where!r} (tags present: "
                                     f"{sorted(set(np.asarray(tags).tolist()))}).")
                where = _OnNodes(np.asarray(cloud.boundary)[mask])
            pieces.append((where, bc))
        return MixedBC(pieces)

    def piece_index(self, x: Any) -> jax.Array:
        """The index of the piece that applies at `x` (the first whose `where` holds), or
        `-1` where none does."""
        if self.uses_tags:
            raise TypeError("This MixedBC selects by boundary tags: resolve it first with .on(point_cloud) "
                            "(the solvers do this with their node set).")
        index = jnp.asarray(-1)
        for i in range(len(self.pieces) - 1, -1, -1):
            index = jnp.where(jnp.asarray(self.pieces[i][0](x), bool), i, index)
        return index

    def check_covers(self, points: Any) -> None:
        """Raise a `ValueError` naming an uncovered point if some of `points` (n, d) match
        no piece."""
        idx = np.asarray(jax.vmap(self.piece_index)(jnp.asarray(points)))
        if np.any(idx < 0):
            bad = np.asarray(points)[idx < 0]
            raise ValueError(
                f"MixedBC covers {int(np.sum(idx >= 0))} of {idx.size} boundary nodes; e.g. "
                f"x = {bad[0].tolist()} matches no `where`. Add a last piece (lambda x: True, ...) "
                "for the rest of the boundary."
            )

    def operator(self, u: AbstractField, normal: Any) -> jax.Array:
        """Not defined without the point: the operator depends on where `x` lies; use
        `residual`."""
        raise TypeError("MixedBC has no single boundary operator; use residual(u, x, normal, t).")

    def target(self, x: Any, t: Any = None) -> jax.Array:
        """The applicable piece's target at `x`."""
        i = self.piece_index(x)
        out = self.pieces[0][1].target(x, t)
        for k in range(1, len(self.pieces)):
            out = jnp.where(i == k, self.pieces[k][1].target(x, t), out)
        return out

    def residual(self, u: AbstractField, x: Any, normal: Any, t: Any = None) -> jax.Array:
        """The applicable piece's residual `B_k u − g_k` at `x` (every piece is evaluated;
        NaN where no piece applies)."""
        i = self.piece_index(x)
        out = jnp.full_like(self.pieces[0][1].residual(u, x, normal, t), jnp.nan)
        for k, (_, bc) in enumerate(self.pieces):
            out = jnp.where(i == k, bc.residual(u, x, normal, t), out)
        return out


def _is_tags(where: Any) -> bool:
    if isinstance(where, tuple):
        return len(where) > 0 and all(_is_tags(w) for w in where)
    return isinstance(where, str) or is_int(where)


class _OnNodes(eqx.Module):
    """`where(x)`: `x` is one of the given boundary nodes (exactly, after casting both to
    `x`'s dtype: the solvers pass their own node coordinates)."""

    nodes: np.ndarray

    def __call__(self, x):
        nodes = jnp.asarray(self.nodes, jnp.result_type(x))
        return jnp.any(jnp.all(nodes == x, axis=-1))


def _is_concrete_zero(value: Any) -> bool:
    """True if `value` is a concrete (non-traced) scalar equal to zero."""
    if isinstance(value, jax.core.Tracer):
        return False
    try:
        return bool(np.asarray(value) == 0)
    except (TypeError, ValueError):
        return False

