"""Fokker–Planck equation of d interacting particles in a harmonic trap (Neural-IVP, B.3).

    u_t = D Δu − ∇·(u h),   h(x) = (a − x) + α (11ᵀ/d − I) x,   x ∈ [−1, 1]^d,

with `a = 0.2·1`, `D = 0.01`, `α = 1/4` and `d = 8` in the paper (the harmonic-trap model of
Bruna, Peherstorfer & Vanden-Eijnden 2022, used by Finzi et al. 2023, appendix B.3). The drift
term is expanded as `∇·(u h) = h·∇u + u ∇·h` with the divergence in closed form:

    ∇·h = Σᵢ ∂hᵢ/∂xᵢ = −d + α (d · 1/d − d) = −d + α (1 − d)     (= −9.75 for d = 8),

since `∂/∂xᵢ (a − x)ᵢ = −1` and the diagonal of `11ᵀ/d − I` is `1/d − 1`.

Initial condition: `u₀(x) = (3/4)^d ∏ᵢ (1 − xᵢ²)`, a probability density on `[−1, 1]^d`
(`∫_{−1}^{1} (1 − s²) ds = 4/3`, so the integral is `(4/3)^d (3/4)^d = 1`) that vanishes on
the boundary, consistent with the zero Dirichlet condition. There is no exact solution; the
paper reports the PDE residual. The paper does not state its final time; pdesolve's default is
`T = 1.0` (about one relaxation time of the trap: the drift's Jacobian has eigenvalue −1
along the diagonal `1` and `−(1 + α) = −1.25` across it); override it with `T=`.

Note that the zero Dirichlet condition is absorbing: probability that diffuses to the faces
leaves the box, so the total mass is not conserved exactly (the paper's setup).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

import pdesolve as pds
from pdesolve._validation import check_int

from .wave import _check_positive

__all__ = ["fokker_planck", "fokker_planck_drift", "fokker_planck_drift_divergence"]


def fokker_planck_drift(x, a=0.2, alpha=0.25):
    """The harmonic-trap drift `h(x) = (a − x) + α (11ᵀ/d − I) x` at one point `x` (d,)."""
    x = jnp.asarray(x)
    return (a - x) + alpha * (jnp.mean(x) - x)


def fokker_planck_drift_divergence(d, alpha=0.25):
    """`∇·h = −d + α (1 − d)`, constant in `x` (a Python float)."""
    return -float(d) + float(alpha) * (1.0 - float(d))


def _fp_rhs(u, x, t, args):
    D, alpha, a = args["D"], args["alpha"], args["a"]
    d = x.shape[0]
    h = fokker_planck_drift(x, a, alpha)
    div_h = fokker_planck_drift_divergence(d, alpha)
    return D * u.laplacian - (jnp.dot(h, u.grad) + u.value * div_h)


class _FPInitial(eqx.Module):
    """`x -> (3/4)^d ∏ (1 − xᵢ²)`."""

    def __call__(self, x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(jnp.result_type(float))
        return jnp.prod(0.75 * (1.0 - x * x))


def fokker_planck(d=8, *, T=1.0, D=0.01, alpha=0.25, a=0.2):
    """The harmonic-trap Fokker–Planck equation in `d` dimensions (appendix B.3).

        u_t = D Δu − h·∇u − u ∇·h,   h(x) = (a − x) + α (11ᵀ/d − I) x,
        ∇·h = −d + α (1 − d),   x ∈ [−1, 1]^d,   u = 0 on the boundary,
        u(x, 0) = (3/4)^d ∏ (1 − xᵢ²)   (integrates to 1 over the box).

    No exact solution (`solution=None`); judge solvers by the PDE residual, as the paper does.

    **Arguments:**

    - `d`: dimension, an integer ≥ 1 (default 8, the paper's; figure 5 goes up to 20).
    - `T`: final time (default 1.0 — the paper does not state one; see the module docstring).
    - `D`: diffusion coefficient (default 0.01); `alpha`: interaction strength (default
      1/4); `a`: the trap centre `a·1` (default 0.2).

    **Returns:** a `pds.PDEProblem` with scalar state, `domain=pds.Box(−1, 1)`,
    `bc=pds.Dirichlet(0.0)`, `tspan=(0, T)`, `args={"D": D, "alpha": alpha, "a": a}` (Python
    floats, so they take the dtype of the points).

    Reference: Finzi et al., ICLR 2023, appendix B.3; J. Bruna, B. Peherstorfer,
    E. Vanden-Eijnden, *Neural Galerkin scheme with active learning for high-dimensional
    evolution equations* (2022).
    """
    d = check_int("d", d, 1, hint="It is the dimension of the Fokker–Planck equation.")
    T = _check_positive("T", T)
    D = _check_positive("D", D)
    alpha = float(alpha)
    a = float(a)
    if not (np.isfinite(alpha) and np.isfinite(a)):
        raise ValueError(f"`alpha` and `a` must be finite; got alpha={alpha}, a={a}.")
    return pds.PDEProblem(
        rhs=_fp_rhs,
        u0=_FPInitial(),
        tspan=(0.0, T),
        domain=pds.Box(-np.ones(d), np.ones(d)),
        bc=pds.Dirichlet(0.0),
        solution=None,
        args={"D": D, "alpha": alpha, "a": a},
    )
