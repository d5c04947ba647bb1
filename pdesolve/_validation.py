"""Small input checks shared by problems and solvers (private)."""

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when no leaf of `x` is a JAX tracer (values can be inspected on the host)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def check_finite_tree(name: str, tree) -> None:
    """Raise if a concrete pytree of arrays holds NaN or inf (tracers are skipped)."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if isinstance(leaf, jax.core.Tracer):
            continue
        arr = np.asarray(leaf)
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            where = jax.tree_util.keystr(path)
            raise ValueError(
                f"`{name}{where}` contains NaN or inf; pass finite values "
                "(check how it was computed or loaded)."
            )


def check_tspan(tspan, *, backward: bool, name: str = "tspan") -> tuple:
    """Validate a `(t0, t1)` pair: finite, non-empty, and forward unless `backward`.

    Returns the pair with each entry as a scalar array (tracers pass through unchecked).
    """
    if tspan is None:
        raise ValueError(f"`{name}` is required: pass tspan=(t0, t1).")
    try:
        t0, t1 = tspan
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair (t0, t1); got {tspan!r}.") from None
    if jnp.ndim(t0) != 0 or jnp.ndim(t1) != 0:
        raise ValueError(f"`{name}` entries must be scalars; got shapes {jnp.shape(t0)}, {jnp.shape(t1)}.")
    if is_concrete((t0, t1)):
        f0, f1 = float(t0), float(t1)
        if not (np.isfinite(f0) and np.isfinite(f1)):
            raise ValueError(f"`{name}`=({f0}, {f1}) must be finite.")
        if f0 == f1:
            raise ValueError(f"`{name}`=({f0}, {f1}) is empty: t1 must differ from t0.")
        if f1 < f0 and not backward:
            raise ValueError(
                f"`{name}`=({f0}, {f1}) runs backward in time. If that is intended, pass "
                "`backward=True`; otherwise swap the endpoints."
            )
        if f1 > f0 and backward:
            raise ValueError(
                f"`{name}`=({f0}, {f1}) runs forward in time but `backward=True` was given; "
                "drop `backward=True` or swap the endpoints."
            )
    return (t0, t1)


def check_float_tree(name: str, tree) -> None:
    """Raise if any leaf of `tree` is not a floating-point (or complex) array."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"`{name}` has no array leaves.")
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise TypeError(
                f"`{name}{jax.tree_util.keystr(path)}` has dtype {jnp.result_type(leaf)}; "
                "states must be floating point, e.g. jnp.asarray(y0, dtype=float)."
            )


def note_user_error(e: BaseException, what: str) -> None:
    """Add pdesolve's context to an exception raised by a user's function, keeping its type
    (re-raise with a bare `raise`). Exception types whose constructor is not `(message)`
    (JAX's tracer errors) cannot be rebuilt, so the context goes in a note."""
    note = f"pdesolve: {what} failed."
    if isinstance(e, jax.errors.ConcretizationTypeError) or "Tracer" in type(e).__name__:
        note += (
            " The function branches on a traced value (a Python `if`, `while`, `bool()`, "
            "`int()` or `float()` on an array): JAX traces it with abstract values. Use "
            "jnp.where(cond, a, b) or jax.lax.cond instead."
        )
    e.add_note(note)


def is_int(value) -> bool:
    """True for a Python or NumPy integer that is not a `bool`: the test `check_int` applies,
    for code that dispatches on it (an index or a sequence of them) rather than raising."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, *, hint: str = "") -> int:
    """`value` as a Python int, checked: the one "int but not bool" test of the suite.

    Raises `TypeError` naming `name` if `value` is not an integer (`bool`, floats and
    integer-valued arrays of other kinds included), `ValueError` if it is outside
    `[minimum, maximum]`. `hint` is appended to either message (what the option means or
    how to fix it).
    """
    tail = f" {hint}" if hint else ""
    if not is_int(value):
        raise TypeError(f"`{name}` must be an int; got {value!r}.{tail}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = (f">= {minimum}" if maximum is None else f"<= {maximum}" if minimum is None
                  else f"in [{minimum}, {maximum}]")
        raise ValueError(f"`{name}` must be an int {bounds}; got {value!r}.{tail}")
    return int(value)


def check_instance(name: str, value, types, expected: str, *, optional: bool = False) -> None:
    """`TypeError` naming `name` unless `value` is an instance of `types` (or `None`, when
    `optional`); `expected` says what it must be, e.g. "a pds.PointCloud (...)"."""
    if (optional and value is None) or isinstance(value, types):
        return
    raise TypeError(f"`{name}` must be {expected}; got {type(value).__name__}.")
