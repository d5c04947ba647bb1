"""Fields: what a PDE right-hand side sees of the unknown at ONE point.

A PDE is written once, pointwise, in terms of a field `u` at a point `x` of shape (d,):

    def rhs(u, x, t, args):
        return args["nu"] * u.laplacian - u.value * u.partial(0)

Each solver decides how `u` and its derivatives are computed. `Field` does it by
automatic differentiation of a function `fn: (d,) -> () | (k,)` (PINNs, NeuralIVP); other
backends (for example sparse RBF-FD matrices) implement `AbstractField` the same way.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._validation import check_int

__all__ = ["AbstractField", "Field"]


class AbstractField(eqx.Module):
    """The unknown of a PDE and its spatial derivatives at ONE point `x` of shape (d,).

    A scalar field has `value` of shape () ; a system of k components has shape (k,). Solvers
    vmap over points, so every quantity here refers to a single point.

    **Interface:**

    * `value`: shape () or (k,);
    * `grad`: (d,) or (k, d), `grad[..., i] = du/dx_i`;
    * `hessian`: (d, d) or (k, d, d);
    * `laplacian`: () or (k,), the trace of the Hessian;
    * `partial(*axes)`: the mixed partial derivative d^m u / dx_{a1} ... dx_{am}, shaped like
      `value` (`partial(0)` = du/dx0, `partial(0, 0)` = d2u/dx0^2, `partial(0, 1)` mixed;
      `partial()` is `value`);
    * `normal_derivative(n)`: `n . grad u` for a vector `n` of shape (d,), shaped like
      `value`;
    * `u[j]`: the scalar field of component j of a system;
    * `dim`: d; `shape`: the shape of `value`.
    """

    @property
    @abc.abstractmethod
    def value(self) -> jax.Array:
        """The field's value at the point, shape () or (k,)."""

    @property
    @abc.abstractmethod
    def grad(self) -> jax.Array:
        """The spatial gradient, shape (d,) or (k, d)."""

    @property
    @abc.abstractmethod
    def hessian(self) -> jax.Array:
        """The spatial Hessian, shape (d, d) or (k, d, d)."""

    @property
    @abc.abstractmethod
    def laplacian(self) -> jax.Array:
        """The Laplacian (trace of the Hessian), shape () or (k,)."""

    @abc.abstractmethod
    def partial(self, *axes: int) -> jax.Array:
        """The partial derivative along `axes` (one entry per differentiation)."""

    @abc.abstractmethod
    def normal_derivative(self, n: Any) -> jax.Array:
        """The directional derivative `n . grad u` for `n` of shape (d,)."""

    @abc.abstractmethod
    def __getitem__(self, j: int) -> AbstractField:
        """The scalar field of component `j` of a vector-valued field."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The spatial dimension d."""

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The shape of `value`: () or (k,)."""


#: `check_int`'s hint for the component index `j` of `u[j]`.
COMPONENT_HINT = "u[j] takes the index of one component of a vector-valued field (negative counts from the end)."


def check_axis(axis: Any, d: int) -> int:
    """A coordinate index of `partial(*axes)`, as an int in [0, d) (shared with `RecordingField`)."""
    return check_int("axes", axis, 0, d - 1, hint=(
        f"`partial` takes one coordinate index per derivative, each in [0, {d}) for a {d}-D field, "
        "e.g. u.partial(0, 1)."))


def _as_point(x: Any) -> jax.Array:
    """Convert `x` to a floating jnp array (integers are promoted to the default float)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def _directional(fn: Callable, direction: jax.Array) -> Callable:
    """`y -> d/ds fn(y + s * direction) |_{s=0}`, one forward-mode JVP."""

    def derivative(y):
        return jax.jvp(fn, (y,), (direction,))[1]

    return derivative


class _Component(eqx.Module):
    """`y -> fn(y)[index]`: one component of a vector-valued function (a pytree if fn is)."""

    fn: Callable
    index: int = eqx.field(static=True)

    def __call__(self, y):
        return self.fn(y)[self.index]


class Field(AbstractField):
    """A field defined by a function, differentiated with JAX autodiff at the point `x`.

    **Arguments:**

    - `fn`: maps ONE point of shape (d,) to the value, shape () or (k,); usually a neural
      network (an `eqx.Module`) or a closure over its parameters.
    - `x`: the point, shape (d,). Integer arrays are promoted to the default float dtype.

    Every quantity is computed on access, from `fn` at `x` (nothing is cached; inside
    `jax.jit` each is traced once per use, and XLA removes duplicated work it can see).
    With C the cost of one evaluation of `fn`:

    * `value`: `fn(x)`, cost C;
    * `grad`: `jax.jacfwd` (d JVPs, batched), about 3 d C;
    * `hessian`: `jax.jacfwd(jax.jacfwd(fn))`, about d^2 second-order JVPs;
    * `laplacian`: forward-over-forward JVPs — sum over i of the second directional
      derivative along the unit vector e_i, `jvp(y -> jvp(fn, y, e_i), x, e_i)`, vmapped over
      i — about d second-order JVPs; never forms the Hessian (cheaper than `jax.hessian` for
      training: no reverse pass, no d x d intermediate);
    * `partial(a1, ..., am)`: m nested JVPs along e_{a1}, ..., e_{am}, about 2^m C;
    * `normal_derivative(n)`: one JVP along `n`, about 3 C.

    All of them work under `jax.jit`, `jax.vmap` over points (build the Field inside the
    vmapped function) and `jax.grad` with respect to parameters closed over in / held by
    `fn`. Reference for forward-over-forward Laplacians: Griewank & Walther, *Evaluating
    Derivatives* (SIAM 2008), ch. 13 (univariate Taylor propagation along coordinate
    directions).
    """

    fn: Callable
    x: jax.Array = eqx.field(converter=_as_point)

    def __check_init__(self):
        if not callable(self.fn):
            raise TypeError(
                f"`fn` must be callable, mapping one point of shape (d,) to the field value; "
                f"got {type(self.fn).__name__}."
            )
        shape = jnp.shape(self.x)
        if len(shape) != 1:
            raise ValueError(
                f"x must be ONE point of shape (d,); vmap over points. Got shape {shape}."
            )
        if shape[0] < 1:
            raise ValueError("x must be ONE point of shape (d,) with d >= 1; got shape (0,).")

    # -- shapes -----------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """The spatial dimension d = `x.shape[0]`."""
        return self.x.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of `value` (found with `jax.eval_shape`: no evaluation of `fn`)."""
        out = jax.eval_shape(self.fn, self.x)
        shape = tuple(getattr(out, "shape", ()))
        if len(shape) > 1:
            raise ValueError(
                f"`fn` must return a scalar or a vector of shape (k,) at one point, got shape "
                f"{shape}; flatten the components of a system into one vector."
            )
        return shape

    def _unit(self, axis: int) -> jax.Array:
        return jnp.zeros(self.dim, dtype=self.x.dtype).at[axis].set(1)

    # -- derivatives ------------------------------------------------------------------------

    @property
    def value(self) -> jax.Array:
        """`fn(x)`, shape () or (k,). Cost: one evaluation."""
        value = jnp.asarray(self.fn(self.x))
        if value.ndim > 1:
            raise ValueError(
                f"`fn` must return a scalar or a vector of shape (k,) at one point, got shape "
                f"{value.shape}; flatten the components of a system into one vector."
            )
        return value

    @property
    def grad(self) -> jax.Array:
        """The gradient by `jax.jacfwd`: shape (d,) or (k, d)."""
        return jax.jacfwd(self.fn)(self.x)

    @property
    def hessian(self) -> jax.Array:
        """The Hessian by `jax.jacfwd(jax.jacfwd(fn))`: shape (d, d) or (k, d, d)."""
        return jax.jacfwd(jax.jacfwd(self.fn))(self.x)

    @property
    def laplacian(self) -> jax.Array:
        """Sum of second directional derivatives along e_i (forward-over-forward JVPs).

        Shape () or (k,). Cost: d second-order JVPs (vmapped over i), no Hessian formed.
        """
        fn, x = self.fn, self.x

        def second(direction):
            return _directional(_directional(fn, direction), direction)(x)

        basis = jnp.eye(self.dim, dtype=x.dtype)
        return jnp.sum(jax.vmap(second)(basis), axis=0)

    def partial(self, *axes: int) -> jax.Array:
        """The mixed partial derivative d^m u / dx_{axes[0]} ... dx_{axes[m-1]}.

        **Arguments:**

        - `*axes`: integers in [0, d), one per differentiation; none gives `value`.

        **Returns:** an array shaped like `value`.

        Cost: m nested JVPs along unit vectors, about 2^m evaluations of `fn`.
        """
        checked = tuple(check_axis(axis, self.dim) for axis in axes)
        if not checked:
            return self.value
        fn = self.fn
        for axis in checked:
            fn = _directional(fn, self._unit(axis))
        return fn(self.x)

    def normal_derivative(self, n: Any) -> jax.Array:
        """`n . grad u` by one JVP along `n` (not normalised here), shaped like `value`.

        **Arguments:**

        - `n`: shape (d,), usually the outward unit normal.
        """
        n = jnp.asarray(n)
        if n.shape != (self.dim,):
            raise ValueError(
                f"`n` must have shape ({self.dim},) (one normal vector at this point), got "
                f"shape {n.shape}."
            )
        return _directional(self.fn, n.astype(self.x.dtype))(self.x)

    def __getitem__(self, j: int) -> Field:
        """The scalar `Field` of component `j` (negative `j` counts from the end).

        Raises TypeError for a scalar field or a non-integer `j`, IndexError if `j` is out
        of range (so `for c in u` iterates over the components).
        """
        shape = self.shape
        if not shape:
            raise TypeError(
                "This field is scalar (value shape ()); u[j] needs a vector-valued `fn` "
                "returning shape (k,)."
            )
        j = check_int("j", j, hint=COMPONENT_HINT)
        k = shape[0]
        if not -k <= j < k:
            raise IndexError(
                f"Component index `j`={j} is out of range for a field with {k} components."
            )
        return Field(_Component(self.fn, j % k), self.x)
