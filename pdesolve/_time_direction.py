"""Backward solves in one place: a solve from `t0` to `t1 < t0` runs forward in the mirrored
time `s = -t`.

Every integrator in the suite (explicit RK, `ReversibleRK`, `IMEXRK`, NeuralIVP's parameter
ODE) steps forward only. With `σ = -1` for a backward solve and `+1` otherwise, the solve in
`s = σ t` has the vector field `dy/ds = σ f(σ s, y)`, starts at `σ t0`, saves at `σ ts`, and
its times are mapped back with `t = σ s`. `TimeDirection` holds `σ` (static: backward and
forward solves compile separately) and does each of these maps.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp


class TimeDirection(eqx.Module):
    """The direction of a solve: `sign` is `-1.0` (backward, `t1 < t0`) or `1.0`.

    Mirroring is an involution, so `times` maps user times to the integrator's `s` and back.
    """

    sign: float = eqx.field(static=True)

    def __init__(self, backward: bool):
        self.sign = -1.0 if backward else 1.0

    @property
    def backward(self) -> bool:
        return self.sign < 0

    def times(self, t, dtype=None):
        """`σ t`: user times to the integrator's (or back); an array of `dtype` if given."""
        t = t if dtype is None else jnp.asarray(t, dtype)
        return t if self.sign > 0 else -t

    def rate(self, dy: Any) -> Any:
        """`σ dy`: a derivative in `t` as one in `s` (or back), for any pytree."""
        return dy if self.sign > 0 else jax.tree.map(jnp.negative, dy)

    def scale(self, x):
        """`σ x` for a step-size-like scalar (e.g. `σ h γ` in an implicit stage matrix)."""
        return x if self.sign > 0 else -x

    def field(self, f, t, y, *rest):
        """`dy/ds = σ f(σ s, y, *rest)` evaluated at `s = t`."""
        return self.rate(f(self.times(t), y, *rest))
