"""Linear advection of a Gaussian bump: a fast initial-value PDE with an exact solution.

    u_t + c·∇u = 0   on [−1, 1]^d,   t ∈ (0, T),
    u(x, 0) = exp(−‖x − x₀‖² / (2σ²)),   u(x, t) = exp(−‖x − x₀ − c t‖² / (2σ²)).

The bump starts at `x₀ = −c T / 2` and ends at `+c T / 2`, so it stays centred in the box.
The zero Dirichlet condition is approximate: the bump's centre stays at least
`δ = 1 − ‖c‖_∞ T / 2` from every face, so on the boundary `|u| ≤ exp(−δ² / (2σ²))` for all
`t ∈ [0, T]` — `exp(−0.75² / 0.02) ≈ 6.4e−13` at the defaults (`c = 1`, `T = 0.5`,
`σ = 0.1`). `advection_boundary_bound(...)` returns this bound.

The advection equation is the "easy" PDE of Finzi et al. (ICLR 2023, section 3.2 and
figure 1), whose linear systems stay well conditioned; it is meant as a quick smoke / accuracy
test for time-stepping PDE solvers (a NeuralIVP run takes seconds), not as a paper benchmark.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

import pdesolve as pds
from pdesolve._validation import check_int

from .wave import _check_positive

__all__ = ["advection", "advection_boundary_bound"]


class _AdvectionSolution(eqx.Module):
    """`(x, t) -> exp(−‖x − x₀ − c t‖² / (2σ²))`."""

    velocity: np.ndarray
    start: np.ndarray
    sigma: float

    def __call__(self, x, t):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(jnp.result_type(float))
        c = jnp.asarray(self.velocity, dtype=x.dtype)
        x0 = jnp.asarray(self.start, dtype=x.dtype)
        t = jnp.asarray(t, dtype=x.dtype)
        z = x - x0 - c * t
        return jnp.exp(-jnp.sum(z * z) / (2.0 * self.sigma**2))


class _AdvectionInitial(eqx.Module):
    solution: _AdvectionSolution

    def __call__(self, x):
        return self.solution(x, 0.0)


def _advection_rhs(u, x, t, args):
    c = jnp.asarray(args["velocity"], dtype=u.grad.dtype)
    return -jnp.dot(c, u.grad)


def _check_velocity(velocity, d):
    if velocity is None:
        return np.ones(d)
    c = np.asarray(velocity, dtype=np.float64)
    if c.ndim == 0:
        c = np.full(d, float(c))
    if c.shape != (d,):
        raise ValueError(
            f"`velocity` must be a scalar or have shape ({d},); got shape {c.shape}."
        )
    if not np.all(np.isfinite(c)):
        raise ValueError(f"`velocity` must be finite; got {velocity!r}.")
    return c


def advection_boundary_bound(*, d=2, velocity=None, T=0.5, sigma=0.1) -> float:
    """Upper bound of `|u|` on `∂[−1, 1]^d` over `t ∈ [0, T]`: `exp(−δ²/(2σ²))`,
    `δ = 1 − ‖c‖_∞ T/2` (the closest the bump's centre gets to a face)."""
    d = check_int("d", d, 1, hint="It is the spatial dimension.")
    c = _check_velocity(velocity, d)
    delta = 1.0 - float(np.max(np.abs(c))) * float(T) / 2.0
    return float(np.exp(-(delta**2) / (2.0 * float(sigma) ** 2)))


def advection(*, d=2, velocity=None, T=0.5, sigma=0.1):
    """Advection `u_t + c·∇u = 0` of a Gaussian bump on `[−1, 1]^d`, with its exact solution.

        u(x, t) = exp(−‖x − x₀ − c t‖² / (2σ²)),   x₀ = −c T / 2,   t ∈ (0, T),
        rhs(u, x, t, args) = −c · ∇u,   Dirichlet(0) on ∂[−1, 1]^d.

    Exact: the solution satisfies the PDE exactly on ℝ^d. Approximate: the zero Dirichlet
    condition holds to `exp(−δ²/(2σ²))`, `δ = 1 − ‖c‖_∞ T/2` (6.4e−13 at the defaults; see
    `advection_boundary_bound`).

    **Arguments:**

    - `d`: spatial dimension, an integer ≥ 1 (default 2).
    - `velocity`: the constant velocity `c`, a scalar (same in every direction) or shape
      `(d,)`; default all ones.
    - `T`: final time (default 0.5). Needs `‖c‖_∞ T / 2 < 1` (the bump's centre stays inside).
    - `sigma`: the bump's width (default 0.1).

    **Returns:** a `pds.PDEProblem` with scalar state, `domain=pds.Box(−1, 1)`,
    `bc=pds.Dirichlet(0.0)`, `tspan=(0, T)`, `args={"velocity": c}` (float64 NumPy, cast to
    the point's dtype inside `rhs`), `solution(x, t)` exact.
    """
    d = check_int("d", d, 1, hint="It is the spatial dimension.")
    T = _check_positive("T", T)
    sigma = _check_positive("sigma", sigma)
    c = _check_velocity(velocity, d)
    if float(np.max(np.abs(c))) * T / 2.0 >= 1.0:
        raise ValueError(
            f"The bump would leave the box: need max|velocity| * T / 2 < 1, got "
            f"{float(np.max(np.abs(c)))} * {T} / 2; shorten `T` or slow `velocity`."
        )
    solution = _AdvectionSolution(velocity=c, start=-c * T / 2.0, sigma=sigma)
    return pds.PDEProblem(
        rhs=_advection_rhs,
        u0=_AdvectionInitial(solution),
        tspan=(0.0, T),
        domain=pds.Box(-np.ones(d), np.ones(d)),
        bc=pds.Dirichlet(0.0),
        solution=solution,
        args={"velocity": c},
    )
