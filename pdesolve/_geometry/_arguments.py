"""Converters and checks of the domains' constructor and method arguments (host side)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from ._abstract_domain import AbstractDomain


def _float_dtype():
    """The default JAX floating dtype: float64 with x64 enabled, float32 otherwise."""
    return jnp.result_type(float)


def _as_float_array(name: str, expected: str, show_value: bool) -> Callable[[Any], np.ndarray]:
    """Converter: anything array-like -> float64 NumPy array; the error names `name`, says
    what was `expected`, and shows the value (`show_value`) or only its type."""

    def convert(value: Any) -> np.ndarray:
        try:
            return np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            got = repr(value) if show_value else f"an object of type {type(value).__name__}"
            raise TypeError(f"`{name}` must be {expected}, got {got}.") from err

    return convert


def _as_float_vector(name: str) -> Callable[[Any], np.ndarray]:
    """Converter for a point or a corner: a float64 NumPy vector."""
    return _as_float_array(name, "a real array-like of numbers", show_value=True)


def _as_float_matrix(name: str) -> Callable[[Any], np.ndarray]:
    """Converter for a set of points: a float64 NumPy array."""
    return _as_float_array(name, "a real array of shape (n, d)", show_value=False)


def _as_float_scalar(name: str) -> Callable[[Any], float]:
    """Converter: a real number -> Python float; the error names `name`."""

    def convert(value: Any) -> float:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"`{name}` must be a real number, got {value!r}.") from err
        if arr.ndim != 0:
            raise ValueError(f"`{name}` must be a scalar, got an array of shape {arr.shape}.")
        return float(arr)

    return convert


def _as_radius(value: Any) -> np.float64:
    """Converter for `radius`: a NumPy float64 scalar (an array leaf, traced by filter_jit)."""
    return np.float64(_as_float_scalar("radius")(value))


#: `check_int`'s hint for the sample and node counts `n` of the domains' methods.
COUNT_HINT = "It is the number of points, a static Python int: under `jax.jit` mark it static (e.g. `static_argnums`)."


def _check_points(domain: AbstractDomain, x: Any) -> jax.Array:
    """Validate query points of shape (..., d) and return them as a floating jnp array."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(_float_dtype())
    if x.ndim == 0 or x.shape[-1] != domain.dim:
        raise ValueError(
            f"`x` must have shape (..., {domain.dim}) for this {domain.dim}-D domain, got "
            f"shape {x.shape}."
        )
    return x
