"""The wave-maps equation on a Schwarzschild background (Neural-IVP, section 5).

A scalar field `φ` on a curved (3+1)-dimensional spacetime obeys

    g^{μν} ∇_μ ∇_ν φ = g^{μν} ∂_μ ∂_ν φ − g^{μν} Γ^σ_{μν} ∂_σ φ = 0,

with `g` the metric and `Γ` its Christoffel symbols (Finzi et al. 2023, equation (8)). The
metric is that of a Schwarzschild black hole of mass `M` (horizon radius `r_s = 2M`) centred
at `c`, in Cartesian-like coordinates `(t, x¹, x², x³)`:

    g_{μν} dx^μ dx^ν = −(1 − r_s/r_c) dt² + [δ_ij + (x − c)_i (x − c)_j / (r_c² (r_c/r_s − 1))] dxⁱ dxʲ,

`r_c = ‖x − c‖` — Schwarzschild's `dr²/(1 − r_s/r) + r² dΩ²` written with `x − c = r n`.
The paper takes `M = 1/2` (`r_s = 1`) and "a black hole located at coordinate value
`c = −2x`"; its released code evaluates the metric at `x + 2e₁`, i.e. `c = (−2, 0, 0)`, which
pdesolve uses. The horizon `‖x − c‖ = 1` then touches the box `[−1, 1]³` at the single face
point `(−1, 0, 0)`, where the metric degenerates (`g_tt → 0`, `g_rr → ∞`): the equation is
regular at every interior point, but its coefficients grow near that point (the local light
speed `1 − r_s/r_c` goes to zero there). Pass another `center` to keep the horizon away.

**First-order form.** With `u = [φ, π]`, `π = φ_t`: the metric is static (`∂_t g = 0`) and
has no time–space part (`g_{0i} = 0`, hence `g^{0i} = 0`), so the equation reads
`g^{00} φ_tt + g^{ij} ∂_i∂_j φ − Γ^0 π − Γ^k ∂_k φ = 0`, with the contracted symbols
`Γ^σ = g^{μν} Γ^σ_{μν}`, and

    ∂t [φ, π] = [π, (Γ^k ∂_k φ + Γ^0 π − g^{ij} ∂_i ∂_j φ) / g^{00}].

(`Γ^0 = 0` for this metric; it is kept, so the formula is that of any static metric with
`g_{0i} = 0`.) `g^{μν}` is `jnp.linalg.inv` of the 4 × 4 metric and `Γ^σ` is computed at the
point by `jax.jacfwd` of the metric, `Γ^σ = g^{σλ} (g^{μν} ∂_μ g_{λν} − ½ g^{μν} ∂_λ g_{μν})`
(with `∂_t g = 0`). With `mass = 0` the metric is Minkowski's and the right-hand side is the
flat wave equation's `[π, Δφ]`.

**Initial condition** (the paper only says "a wave packet"; pdesolve's choice): a Gaussian
packet at rest,

    φ₀(x) = A exp(−‖x − x₀‖² / (2 s²)) cos(k · (x − x₀)),   π₀(x) = 0,

`A = 1`, `x₀ = 0`, `s = 0.15`, `k = (20, 0, 0)` (wavelength ≈ 0.31 along the axis towards
the black hole). On the faces `|φ₀| ≤ exp(−1/(2 s²)) ≈ 2.2e−10`, so the zero Dirichlet
condition is consistent with the data; like the paper (which evolves to `T = 0.5 = 1M`), it
is an artificial boundary condition. No exact solution (the paper reports the PDE residual
and compares with a 150³ finite-difference solution at `t = 0.36`).

Reference: Finzi et al., ICLR 2023, section 5 and figure 4.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import pdesolve as pds

from .wave import _check_positive

__all__ = [
    "schwarzschild_metric",
    "wave_maps",
    "wave_maps_coefficients",
]

_CENTER = (-2.0, 0.0, 0.0)


def schwarzschild_metric(x, mass=0.5, center=_CENTER):
    """The Schwarzschild metric `g_{μν}` (4 × 4, coordinates `(t, x¹, x², x³)`) at ONE
    spatial point `x` (3,), for a black hole of mass `mass` (`r_s = 2 mass`) at `center`.

    `g_00 = −(1 − r_s/r_c)`, `g_0i = 0`,
    `g_ij = δ_ij + r_s (x − c)_i (x − c)_j / (r_c² (r_c − r_s))`, `r_c = ‖x − c‖`. Static.
    Requires `r_c > r_s` (outside the horizon). `mass = 0` gives Minkowski's metric.
    """
    x = jnp.asarray(x)
    y = x - jnp.asarray(center, dtype=x.dtype)
    r = jnp.sqrt(jnp.sum(y * y))
    rs = 2.0 * mass
    g00 = -(1.0 - rs / r)
    spatial = jnp.eye(3, dtype=x.dtype) + (rs / (r * r * (r - rs))) * jnp.outer(y, y)
    g = jnp.zeros((4, 4), dtype=x.dtype)
    return g.at[0, 0].set(g00).at[1:, 1:].set(spatial)


def wave_maps_coefficients(x, mass=0.5, center=_CENTER):
    """`(g^{μν}, Γ^σ)` at ONE spatial point: the inverse metric (4, 4) and the contracted
    Christoffel symbols `Γ^σ = g^{μν} Γ^σ_{μν}` (4,), by `jax.jacfwd` of the metric.

    `Γ^σ = g^{σλ} (g^{μν} ∂_μ g_{λν} − ½ g^{μν} ∂_λ g_{μν})`, time derivatives zero (static).
    """
    x = jnp.asarray(x)
    g = schwarzschild_metric(x, mass, center)
    ginv = jnp.linalg.inv(g)
    dg_space = jax.jacfwd(schwarzschild_metric)(x, mass, center)  # (4, 4, 3): ∂_k g_{ab}
    dg = jnp.concatenate([jnp.zeros((4, 4, 1), dtype=x.dtype), dg_space], axis=-1)  # ∂_c g_ab
    # term1_λ = g^{μν} ∂_μ g_{λν};  term2_λ = ½ g^{μν} ∂_λ g_{μν}
    term1 = jnp.einsum("mn,lnm->l", ginv, dg)
    term2 = 0.5 * jnp.einsum("mn,mnl->l", ginv, dg)
    return ginv, ginv @ (term1 - term2)


def _wave_maps_rhs(u, x, t, args):
    ginv, gamma = wave_maps_coefficients(x, args["mass"], args["center"])
    phi, pi = u[0], u[1]
    spatial = jnp.sum(ginv[1:, 1:] * phi.hessian)
    phi_tt = (jnp.dot(gamma[1:], phi.grad) + gamma[0] * pi.value - spatial) / ginv[0, 0]
    return jnp.stack([pi.value, phi_tt])


class _WavePacket(eqx.Module):
    """`x -> [A exp(−‖x − x₀‖²/(2 s²)) cos(k·(x − x₀)), 0]`."""

    amplitude: float
    center: np.ndarray
    width: float
    wavevector: np.ndarray

    def __call__(self, x):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(jnp.result_type(float))
        y = x - jnp.asarray(self.center, dtype=x.dtype)
        k = jnp.asarray(self.wavevector, dtype=x.dtype)
        phi = self.amplitude * jnp.exp(-jnp.sum(y * y) / (2.0 * self.width**2)) * jnp.cos(k @ y)
        return jnp.stack([phi, jnp.zeros_like(phi)])


def _vector3(name, value):
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"`{name}` must be a finite vector of shape (3,); got {value!r}.")
    return v


def wave_maps(
    T=0.5,
    *,
    mass=0.5,
    center=_CENTER,
    amplitude=1.0,
    packet_center=(0.0, 0.0, 0.0),
    width=0.15,
    wavevector=(20.0, 0.0, 0.0),
):
    """The wave-maps equation `g^{μν} ∇_μ ∇_ν φ = 0` on a Schwarzschild background (section 5).

        ∂t [φ, π] = [π, (Γ^k ∂_k φ + Γ^0 π − g^{ij} ∂_i∂_j φ) / g^{00}],   x ∈ [−1, 1]³,
        t ∈ (0, T),   φ = π = 0 on the boundary,   φ₀ = Gaussian wave packet, π₀ = 0,

    metric of a black hole of mass `mass` at `center` (see the module docstring for the
    derivation, the coordinates and the choice of the packet). No exact solution.

    **Arguments:**

    - `T`: final time (default 0.5, the paper's `T = 1M`).
    - `mass`: black-hole mass `M ≥ 0`, horizon radius `r_s = 2M` (default 1/2, `r_s = 1`);
      `mass = 0` is flat space (the plain wave equation). The horizon must not enter the
      open box: `dist(center, [−1, 1]³) ≥ 2 mass` is required.
    - `center`: the black hole's position (default `(−2, 0, 0)`, the paper's code).
    - `amplitude`, `packet_center`, `width`, `wavevector`: the packet
      `A exp(−‖x − x₀‖²/(2 s²)) cos(k·(x − x₀))` (defaults 1, 0, 0.15, `(20, 0, 0)`).

    **Returns:** a `pds.PDEProblem` with state `[φ, π]` (shape (2,)), `domain=pds.Box(−1, 1)`,
    `bc=pds.Dirichlet(0.0)`, `tspan=(0, T)`, `args={"mass": mass, "center": center}`,
    `solution=None`.

    Reference: Finzi et al., ICLR 2023, section 5.
    """
    T = _check_positive("T", T)
    mass = float(mass)
    if not np.isfinite(mass) or mass < 0.0:
        raise ValueError(f"`mass` must be finite and >= 0; got {mass}.")
    center = _vector3("center", center)
    distance = float(np.linalg.norm(np.maximum(np.abs(center) - 1.0, 0.0)))
    if distance < 2.0 * mass:
        raise ValueError(
            f"The horizon (radius 2*mass = {2.0 * mass}) must stay outside the open box "
            f"[-1, 1]^3, but `center`={center.tolist()} is only {distance:.3g} away; move "
            f"the black hole out or lower `mass`."
        )
    width = _check_positive("width", width)
    packet = _WavePacket(
        amplitude=float(amplitude),
        center=_vector3("packet_center", packet_center),
        width=width,
        wavevector=_vector3("wavevector", wavevector),
    )
    return pds.PDEProblem(
        rhs=_wave_maps_rhs,
        u0=packet,
        tspan=(0.0, T),
        domain=pds.Box(-np.ones(3), np.ones(3)),
        bc=pds.Dirichlet(0.0),
        solution=None,
        args={"mass": mass, "center": center},
    )
