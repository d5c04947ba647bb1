"""Helpers shared by the figure families: the lazy matplotlib import, labels."""

from __future__ import annotations

import jax

from .._results import result_message


def _matplotlib():
    """Import matplotlib lazily; a clear message if the optional extra is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle
    except ImportError as err:
        raise ImportError(
            'pdesolve.plot needs matplotlib, an optional dependency: pip install "pdesolve[plot]"'
        ) from err
    return Figure, Circle


def _fmt(t) -> str:
    return f"{float(t):.4g}"


def _solver_name(sol) -> str:
    return type(sol.solver).__name__


def _result_note(sol) -> str:
    try:
        ok = bool(sol.successful)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):  # traced or batched
        return ""
    return "" if ok else f"\n[not successful: {result_message(sol.result)}]"
