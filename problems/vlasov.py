"""The Vlasov equation in 6-D phase space with a fixed electric field (Neural-IVP, B.2).

    u_t = −v·∇ₓu − (q/m) E(x)·∇ᵥu,   z = (x, v) ∈ [−1, 1]⁶,   t ∈ (0, T),

for the density `u(x, v, t)` of collisionless charged particles (Finzi et al. 2023, appendix
B.2, with `q = m = 1`). Instead of the self-consistent field of the Vlasov–Poisson system the
paper fixes the field, `E(x) = ∇ₓ exp(−‖x‖²) = −2x exp(−‖x‖²)`, i.e. `E = −∇ϕ` with the
potential `ϕ(x) = −exp(−‖x‖²)` (a potential well at the origin for positive charges).

Initial condition: the product of a Gaussian in position and a Maxwell–Boltzmann distribution
in velocity, both isotropic with standard deviation `σ = 0.3` (the released Neural-IVP code's
choice),

    u₀(x, v) = (2πσ²)^{−3} exp(−‖x‖²/(2σ²)) · (2πσ²)^{−3} exp(−‖v‖²/(2σ²)),

a normalised probability density on ℝ⁶. On the box `[−1, 1]⁶` it holds
`erf(1/(σ√2))⁶ ≈ 0.9948` of the mass, and on the boundary `u₀ ≤ u₀(0) exp(−1/(2σ²)) ≈
3.9e−3 u₀(0)` (at the centres of the faces), so the zero Dirichlet condition is an
approximation at the 0.4 % level (the paper's setup). No exact solution; the paper reports the
PDE residual. The paper does not state its final time; pdesolve's default is `T = 1.0`.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

import pdesolve as pds

from .wave import _check_positive

__all__ = ["vlasov", "vlasov_field"]


def vlasov_field(x):
    """The fixed electric field `E(x) = ∇ₓ exp(−‖x‖²) = −2x exp(−‖x‖²)` at one point (3,)."""
    x = jnp.asarray(x)
    return -2.0 * x * jnp.exp(-jnp.sum(x * x))


def _vlasov_rhs(u, z, t, args):
    x, v = z[:3], z[3:]
    force = args["q_over_m"] * vlasov_field(x)
    return -jnp.dot(u.grad, jnp.concatenate([v, force]))


class _VlasovInitial(eqx.Module):
    """`(x, v) -> N(x; 0, σ²I₃) N(v; 0, σ²I₃)`."""

    sigma_x: float
    sigma_v: float

    def __call__(self, z):
        z = jnp.asarray(z)
        if not jnp.issubdtype(z.dtype, jnp.inexact):
            z = z.astype(jnp.result_type(float))
        x, v = z[:3], z[3:]

        def gaussian(y, s):
            return (
                jnp.exp(-jnp.sum(y * y) / (2.0 * s * s)) / (2.0 * np.pi * s * s) ** 1.5
            )

        return gaussian(x, self.sigma_x) * gaussian(v, self.sigma_v)


def vlasov(*, T=1.0, sigma_x=0.3, sigma_v=0.3, q_over_m=1.0):
    """The 6-D Vlasov equation with the fixed field `E(x) = ∇ exp(−‖x‖²)` (appendix B.2).

        u_t = −v·∇ₓu − (q/m) E(x)·∇ᵥu,   (x, v) ∈ [−1, 1]⁶,   u = 0 on the boundary,
        u(x, v, 0) = N(x; 0, σₓ² I) · N(v; 0, σᵥ² I).

    The state point is `z = (x, v)` of shape (6,); `rhs` is `−∇_z u · (v, (q/m) E(x))`.
    No exact solution (`solution=None`).

    **Arguments:**

    - `T`: final time (default 1.0; the paper does not state one).
    - `sigma_x`, `sigma_v`: standard deviations of the initial Gaussians (default 0.3 each).
    - `q_over_m`: charge-to-mass ratio (default 1, the paper's `q = m = 1`).

    **Returns:** a `pds.PDEProblem` with scalar state, `domain=pds.Box(−1, 1)` in 6-D,
    `bc=pds.Dirichlet(0.0)`, `tspan=(0, T)`, `args={"q_over_m": q_over_m}`.

    Reference: Finzi et al., ICLR 2023, appendix B.2.
    """
    T = _check_positive("T", T)
    sigma_x = _check_positive("sigma_x", sigma_x)
    sigma_v = _check_positive("sigma_v", sigma_v)
    q_over_m = float(q_over_m)
    if not np.isfinite(q_over_m):
        raise ValueError(f"`q_over_m` must be finite; got {q_over_m}.")
    return pds.PDEProblem(
        rhs=_vlasov_rhs,
        u0=_VlasovInitial(sigma_x, sigma_v),
        tspan=(0.0, T),
        domain=pds.Box(-np.ones(6), np.ones(6)),
        bc=pds.Dirichlet(0.0),
        solution=None,
        args={"q_over_m": q_over_m},
    )
