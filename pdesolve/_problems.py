"""Problem objects: `NeuralODEProblem`, `PDEProblem`, and `remake`."""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from ._boundary import AbstractBoundaryCondition
from ._field import Field
from ._geometry import AbstractDomain
from ._linear import linear_operator
from ._validation import check_finite_tree, check_float_tree, check_instance, check_tspan, is_concrete, note_user_error


def _as_array_tree(tree):
    return jax.tree.map(lambda x: x if isinstance(x, jax.Array) else jnp.asarray(x), tree)


class AbstractProblem(eqx.Module):
    """Base of every pdesolve problem: *what* to solve. Pass it to `pdesolve.solve`."""


class NeuralODEProblem(AbstractProblem):
    """An initial-value problem `dy/dt = vector_field(t, y, args) [+ linear @ y]`.

    **Arguments:**

    - `vector_field`: `(t, y, args) -> dy/dt` with the same pytree structure, shapes and
      dtypes as `y`; usually an `equinox.Module` (a neural network).
    - `y0`: the initial state, any pytree of floating-point arrays.
    - `tspan`: `(t0, t1)`. Backward integration (`t1 < t0`) must be asked for with
      `backward=True`; an empty interval is an error.
    - `args`: anything passed through to `vector_field` (differentiable).
    - `linear`: optional stiff linear part `A` for implicit–explicit solvers: an `(N, N)`
      matrix (acting on the last axis, so `y0` may be `(N,)` or a batch `(B, N)`), a
      `lineax.AbstractLinearOperator` (on `y0`'s structure, or on one trajectory
      `y0.shape[1:]` for a batch), or a linear function / module of the whole `y`. With it
      the ODE is `dy/dt = vector_field(t, y, args) + A y`; explicit solvers add `A y` to
      the vector field, `IMEXRK` treats it implicitly.
    - `backward`: set to `True` to integrate from a later `t0` to an earlier `t1`.

    Validated at construction: `y0` floating point and finite (when concrete), `tspan`
    non-empty and in the declared direction, and `vector_field(t0, y0, args)` traced
    abstractly (`jax.eval_shape`, no FLOPs) to return the structure and shapes of `y0`.
    """

    vector_field: Callable
    y0: Any = eqx.field(converter=_as_array_tree)
    tspan: tuple
    args: Any = None
    linear: Any = eqx.field(default=None, kw_only=True)
    backward: bool = eqx.field(default=False, kw_only=True, static=True)

    def __check_init__(self):
        if not callable(self.vector_field):
            raise TypeError(
                f"`vector_field` must be callable as vector_field(t, y, args); got "
                f"{type(self.vector_field).__name__}."
            )
        check_float_tree("y0", self.y0)
        check_finite_tree("y0", self.y0)
        check_tspan(self.tspan, backward=self.backward)
        t0 = jnp.asarray(self.tspan[0], dtype=jnp.result_type(float))
        try:
            out = jax.eval_shape(self.vector_field, t0, self.y0, self.args)
        except Exception as e:  # re-raised with context: the user's function failed
            note_user_error(e, "Calling `vector_field(t0, y0, args)` while checking shapes")
            raise
        want = jax.tree.structure(self.y0)
        got = jax.tree.structure(out)
        if want != got:
            raise ValueError(
                f"`vector_field(t, y, args)` must return the same pytree structure as `y0`: "
                f"y0 is {want}, output is {got}."
            )
        for a, b in zip(jax.tree.leaves(self.y0), jax.tree.leaves(out)):
            if jnp.shape(a) != b.shape:
                raise ValueError(
                    f"`vector_field(t, y, args)` returned shape {b.shape} for a state leaf "
                    f"of shape {jnp.shape(a)}; they must match."
                )
        if self.linear is not None:
            _check_linear(self.linear, self.y0)


def _check_linear(linear, y0) -> None:
    if not callable(linear) and not isinstance(linear, lx.AbstractLinearOperator):
        check_finite_tree("linear", linear)
    linear_operator(linear, y0)  # raises with a message naming `linear`


class PDEProblem(AbstractProblem):
    """A PDE on a domain: evolution `∂u/∂t = rhs(u, x, t, args)` or steady `residual(u, x, args) = 0`.

    **Arguments:**

    - `rhs`: evolution right-hand side. `u` is a `pdesolve.AbstractField` at ONE point `x`
      of shape `(d,)` (solvers vmap over points) exposing `value`, `grad`, `hessian`,
      `laplacian`, `partial(i, ...)`, `normal_derivative(n)` and `u[j]`. Needs `u0` and
      `tspan`. Second order in time is written as a first-order system.
    - `residual`: steady problems, `residual(u, x, args) = 0`. Exactly one of `rhs` and
      `residual` must be given.
    - `domain`: a `pdesolve.AbstractDomain` (`Box`, `Ball`, `PointCloud`).
    - `bc`: a boundary condition (`Dirichlet`, `Neumann`, `Robin`) or `None`.
    - `u0`: initial condition `u0(x) -> value` (shape `()` or `(k,)`), for `rhs` problems.
    - `tspan`: `(t0, t1)` for `rhs` problems (`backward=True` for `t1 < t0`).
    - `args`: passed through to `rhs` / `residual`.
    - `solution`: optional exact solution `solution(x, t)` (`t` is `None` for steady
      problems) used for error reports.

    Validated at construction: `u0` is evaluated (vmapped) at 16 interior samples of the
    domain and must be finite with a consistent shape; `rhs` is traced abstractly on an
    autodiff `Field` of `u0` and must return the shape of `u0`'s value.
    """

    rhs: Callable | None = None
    residual: Callable | None = None
    domain: AbstractDomain = eqx.field(kw_only=True)
    bc: AbstractBoundaryCondition | None = eqx.field(default=None, kw_only=True)
    u0: Callable | None = eqx.field(default=None, kw_only=True)
    tspan: tuple | None = eqx.field(default=None, kw_only=True)
    args: Any = eqx.field(default=None, kw_only=True)
    solution: Callable | None = eqx.field(default=None, kw_only=True)
    backward: bool = eqx.field(default=False, kw_only=True, static=True)

    @property
    def is_steady(self) -> bool:
        return self.residual is not None

    @property
    def dim(self) -> int:
        return self.domain.dim

    def __check_init__(self):
        if (self.rhs is None) == (self.residual is None):
            raise ValueError(
                "Pass exactly one of `rhs` (evolution ∂u/∂t = rhs(u, x, t, args)) or "
                "`residual` (steady residual(u, x, args) = 0); got "
                + ("both." if self.rhs is not None else "neither.")
            )
        check_instance("domain", self.domain, AbstractDomain, "a pdesolve domain (Box, Ball, PointCloud)")
        check_instance("bc", self.bc, AbstractBoundaryCondition,
                       "pdesolve.Dirichlet, Neumann, Robin or MixedBC (or None)", optional=True)
        for name in ("rhs", "residual", "u0", "solution"):
            fn = getattr(self, name)
            if fn is not None and not callable(fn):
                raise TypeError(f"`{name}` must be callable; got {type(fn).__name__}.")
        if self.residual is not None:
            if self.tspan is not None or self.u0 is not None:
                raise ValueError(
                    "A steady problem (`residual=`) takes no `u0` or `tspan`; for an "
                    "evolution problem pass `rhs=` instead."
                )
            return
        if self.u0 is None:
            raise ValueError("An evolution problem (`rhs=`) needs an initial condition `u0(x)`.")
        check_tspan(self.tspan, backward=self.backward)
        self._check_u0_and_rhs()

    def _check_u0_and_rhs(self):
        x = self.domain.sample_interior(jax.random.PRNGKey(0), 16)
        if not is_concrete(x):
            return
        try:
            vals = jax.vmap(self.u0)(x)
        except Exception as e:
            note_user_error(e, f"Evaluating `u0(x)` on a point x of shape ({self.dim},)")
            raise
        if not jnp.issubdtype(vals.dtype, jnp.floating):
            raise TypeError(
                f"`u0(x)` must return floating-point values; it returned dtype {vals.dtype} "
                "(e.g. `lambda x: 1` returns a Python int). Return a float, e.g. `lambda x: 1.0` "
                "or `jnp.sin(x[0])`."
            )
        if vals.ndim not in (1, 2):
            raise ValueError(
                f"`u0(x)` must return a scalar or a 1-D vector per point; got shape {vals.shape[1:]}."
            )
        if is_concrete(vals) and not np.all(np.isfinite(np.asarray(vals))):
            raise ValueError("`u0` returned NaN or inf at interior sample points; fix the initial condition.")
        t0 = jnp.asarray(self.tspan[0], dtype=x.dtype)
        try:
            out = jax.eval_shape(lambda xi: self.rhs(Field(self.u0, xi), xi, t0, self.args), x[0])
        except Exception as e:
            note_user_error(e, "Tracing `rhs(u, x, t, args)` on the initial condition")
            raise
        if out.shape != vals.shape[1:]:
            raise ValueError(
                f"`rhs(u, x, t, args)` returned shape {out.shape}, but `u0(x)` has shape "
                f"{vals.shape[1:]}; they must match."
            )
        if self.solution is not None:
            sol = jax.eval_shape(lambda xi: self.solution(xi, t0), x[0])
            if sol.shape != vals.shape[1:]:
                raise ValueError(
                    f"`solution(x, t)` returned shape {sol.shape}, but `u0(x)` has shape "
                    f"{vals.shape[1:]}; they must match."
                )


def remake(problem: AbstractProblem, **changes) -> AbstractProblem:
    """Return a copy of `problem` with some fields replaced; validation runs again.

    Example: `pds.remake(prob, y0=new_y0, tspan=(0.0, 2.0))`.
    """
    if not isinstance(problem, AbstractProblem):
        raise TypeError(f"remake expects a pdesolve problem; got {type(problem).__name__}.")
    names = {f.name for f in dataclasses.fields(problem)}
    unknown = set(changes) - names
    if unknown:
        raise TypeError(
            f"{type(problem).__name__} has no field(s) {sorted(unknown)}; valid fields are "
            f"{sorted(names)}."
        )
    return dataclasses.replace(problem, **changes)
