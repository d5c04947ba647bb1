"""Finite-difference reference solver for the 3-D wave benchmark (`problems.wave.wave3d`).

A classical baseline for the Neural-IVP wave experiment (Finzi et al. 2023, appendix B.1 and
figure 6, which compares against finite differences on a 100 × 100 × 100 grid):

* grid: `n` equispaced nodes per axis on `[−1, 1]` (spacing `h = 2/(n − 1)`), `n³` nodes in
  all, indexed `[i, j, k] ↔ (x_i, x_j, x_k)`; the boundary nodes hold the zero Dirichlet value;
* space: the second-order 7-point Laplacian `(Σ neighbours − 6 φ)/h²`;
* time: Störmer–Verlet (velocity Verlet / leapfrog, second order, symplectic, one Laplacian
  per step) with the constant step `dt = T / ceil(T / (cfl · h / √3))`. The 7-point
  Laplacian's spectral radius is below `12/h²`, so leapfrog is stable for `dt < h/√3`;
  the default `cfl = 0.5` keeps a factor 2 margin. (The paper integrated its grid with RK45 at
  tolerance 1e−4; leapfrog is the standard choice for the wave equation. The error is
  dominated by the spatial dispersion of the pulse: halving `dt` at `n = 100` moves the error
  from 0.182 to 0.199, leapfrog's own phase error partly offsetting the stencil's.)
* initial data: the exact solution `[φ, φ_t]` at `t = 0` (`wave3d_exact`), so the error at `T`
  measures the discretisation alone (the free-space solution satisfies the zero boundary
  condition to 1e−21 for `T ≤ 0.5`).

The whole solve is one `jax.jit` of a `lax.fori_loop`; memory is a few arrays of `n³`
numbers (8 MB each at `n = 100` in float64).

Measured (float64, default sharpness 200, `T = 0.5`, relative L2 error over the grid against
`wave3d_exact`): `n = 100`: 0.182 (86 steps, about 1 s on 2 CPU cores); `n = 150`: 0.081;
`n = 200`: 0.046 — second order (observed rates 1.98 and 1.97). With sharpness 50 and
`T = 0.3`: 0.274, 0.095, 0.047 at `n = 24, 40, 56`. The dtype is JAX's default float (float32 unless
`jax_enable_x64` is on) or the `dtype=` argument.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from pdesolve._validation import check_int

from .wave import (
    WAVE_SHARPNESS,
    _check_positive,
    _WaveSolution,
    wave3d_exact,
)

__all__ = ["WaveFDResult", "wave3d_fd_error", "wave3d_finite_difference"]


class WaveFDResult(NamedTuple):
    """Result of `wave3d_finite_difference`.

    - `x`: the 1-D node coordinates, shape (n,) (the grid is `x ⊗ x ⊗ x`, `ij` indexing);
    - `phi`: φ at time `T` on the grid, shape (n, n, n) (zero on the boundary nodes);
    - `phi_t`: φ_t at time `T`, shape (n, n, n);
    - `T`, `dt`, `steps`: the final time, the time step and the number of steps.
    """

    x: jax.Array
    phi: jax.Array
    phi_t: jax.Array
    T: float
    dt: float
    steps: int


def _laplacian_interior(phi, h):
    """7-point Laplacian of the interior values `phi` (m, m, m), zero outside."""
    p = jnp.pad(phi, 1)
    c = p[1:-1, 1:-1, 1:-1]
    nb = (
        p[2:, 1:-1, 1:-1]
        + p[:-2, 1:-1, 1:-1]
        + p[1:-1, 2:, 1:-1]
        + p[1:-1, :-2, 1:-1]
        + p[1:-1, 1:-1, 2:]
        + p[1:-1, 1:-1, :-2]
    )
    return (nb - 6.0 * c) / (h * h)


@jax.jit
def _leapfrog(phi, psi, h, dt, steps):
    def body(_, state):
        phi, psi = state
        psi = psi + 0.5 * dt * _laplacian_interior(phi, h)
        phi = phi + dt * psi
        psi = psi + 0.5 * dt * _laplacian_interior(phi, h)
        return phi, psi

    return jax.lax.fori_loop(0, steps, body, (phi, psi))


def _grid_values(fn, x):
    """`fn(point)` on the tensor grid `x ⊗ x ⊗ x`, returned as (n, n, n); one vmap per axis."""
    f = lambda a, b, c: fn(jnp.stack([a, b, c]))
    f = jax.vmap(f, in_axes=(None, None, 0))
    f = jax.vmap(f, in_axes=(None, 0, None))
    f = jax.vmap(f, in_axes=(0, None, None))
    return f(x, x, x)


@functools.partial(jax.jit, static_argnames=("sharpness",))
def _exact_state_grid(x, t, sharpness):
    """`[φ, φ_t]` of the exact solution on the grid `x ⊗ x ⊗ x`, shape (n, n, n, 2)."""
    solution = _WaveSolution(sharpness)
    return _grid_values(lambda p: solution(p, t), x)


@functools.partial(jax.jit, static_argnames=("sharpness",))
def _exact_phi_grid(x, t, sharpness):
    """φ of the exact solution on the grid `x ⊗ x ⊗ x`, shape (n, n, n)."""
    return _grid_values(lambda p: wave3d_exact(p, t, sharpness), x)


def wave3d_finite_difference(
    n=100, T=0.5, *, sharpness=WAVE_SHARPNESS, cfl=0.5, dtype=None
):
    """Solve the 3-D wave benchmark `φ_tt = Δφ` on an `n³` grid of `[−1, 1]³` up to time `T`.

    Second-order central differences in space (7-point Laplacian, zero Dirichlet boundary),
    Störmer–Verlet (leapfrog) in time with `dt ≤ cfl · h/√3`, started from the exact solution
    of `problems.wave.wave3d` at `t = 0`. Second order in `h` overall. See the module docstring.

    **Arguments:**

    - `n`: nodes per axis including the two boundary nodes (integer ≥ 3; default 100, the
      paper's grid).
    - `T`: final time (> 0; default 0.5).
    - `sharpness`: the pulse sharpness of `wave3d` (default 200).
    - `cfl`: `dt / (h/√3)`, in (0, 1] (default 0.5).
    - `dtype`: floating dtype of the computation (default JAX's default float).

    **Returns:** a `WaveFDResult(x, phi, phi_t, T, dt, steps)`.

    Cost: `steps = ceil(√3 T (n − 1)/(2 cfl))` (86 at the defaults) applications of the 7-point
    stencil to `(n − 2)³` values, plus evaluating the exact initial data on the grid.
    """
    n = check_int("n", n, 3, hint="It is the number of nodes per axis, the two boundary nodes included.")
    T = _check_positive("T", T)
    sharpness = _check_positive("sharpness", sharpness)
    cfl = _check_positive("cfl", cfl)
    if cfl > 1.0:
        raise ValueError(
            f"`cfl` must be in (0, 1] for a stable leapfrog step; got {cfl}."
        )
    dt_type = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dt_type, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype; got {dtype!r}.")
    h = 2.0 / (n - 1)
    steps = max(1, math.ceil(T / (cfl * h / math.sqrt(3.0))))
    dt = T / steps
    x = jnp.linspace(-1.0, 1.0, n, dtype=dt_type)
    u0 = _exact_state_grid(
        x[1:-1], jnp.asarray(0.0, dt_type), sharpness
    )  # (m, m, m, 2)
    phi, psi = _leapfrog(
        u0[..., 0], u0[..., 1], jnp.asarray(h, dt_type), jnp.asarray(dt, dt_type), steps
    )
    phi = jnp.pad(phi, 1)
    psi = jnp.pad(psi, 1)
    return WaveFDResult(x=x, phi=phi, phi_t=psi, T=T, dt=dt, steps=steps)


def wave3d_fd_error(result, *, sharpness=WAVE_SHARPNESS):
    """Relative L2 error `‖φ_fd − φ_exact‖ / ‖φ_exact‖` over all grid nodes at `result.T`.

    `φ_exact` is `wave3d_exact` evaluated on the same grid (boundary nodes included, where
    both are ≈ 0). Pass the `sharpness` used for the solve. Returns a Python float.
    """
    x = result.x
    exact = _exact_phi_grid(x, jnp.asarray(result.T, x.dtype), float(sharpness))
    err = jnp.linalg.norm((result.phi - exact).ravel()) / jnp.linalg.norm(exact.ravel())
    return float(err)
