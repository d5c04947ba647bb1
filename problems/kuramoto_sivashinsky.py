"""The Kuramoto–Sivashinsky equation: the SINODE benchmark of Zhang, Liu & Maulik (2023).

    u_t = −u u_x − u_xx − u_xxxx,   x ∈ [0, L),  L = 22,  periodic,

on the grid `x_j = j L / N`, `j = 0, …, N − 1` (default `N = 64`, `Δx = L / N`). This module
holds the three pieces of the benchmark:

**Data** (`ks_etdrk4`, `ks_reference_data`). As in the paper, the equation is discretised
by a Fourier pseudo-spectral method and integrated by the exponential time-differencing
fourth-order Runge–Kutta method ETDRK4 of Cox & Matthews in the form of Kassam & Trefethen
(2005), whose φ-function coefficients are evaluated by contour integrals (mean over points on
a circle of radius 1 around each `z = h λ_k`), which avoids the cancellation of the direct
formulas near `z = 0`. With `v = rfft(u)`, wavenumbers `k = 2π m / L`,

    v_t = λ_k v + g_k rfft(u²),   λ_k = k² − k⁴,   g_k = −i k / 2

(the nonlinear term is written in conservation form `−½ ∂x(u²)`; the derivative of the
Nyquist mode is set to zero, which keeps `u` real; no dealiasing, as in Kassam & Trefethen).
The data are generated in numpy float64 / complex128, whatever JAX's x64 flag says.

The paper's initial condition is `u(x, 0) = cos(x/22) sin(1 + x/22)`, used here as written
on `x ∈ [0, L)`. Two properties of it are worth knowing:

* it is not periodic on `[0, 22)` (`u(0) = sin 1 ≈ 0.841`, `u(22⁻) = cos 1 sin 2 ≈ 0.491`);
  the spectral method sees a jump, which the hyperdiffusion smooths within a fraction of a
  time unit. While it does, ETDRK4 converges at a reduced order (measured ≈ 1.3 over
  `t ∈ [0, 1]`); after the discard of `t ∈ [0, 100]` the state is smooth and the method
  is back near fourth order (measured local slopes 3.3–3.8 for `h` from 0.05 down to 1/320).
* its mean `ū ≈ 0.806` is conserved by the equation, so the chaotic pattern drifts at
  speed `ū` (Galilean invariance: `u = ū + w(x − ū t, t)` with `w` a zero-mean KS solution).

It does lead to chaos: after the discard the solution stays in `|u| ≲ 4` and two
trajectories started `1e-8` apart separate exponentially (see the tests).

**Default internal step.** `h = dt / 8` (0.025 for the paper's `dt = 0.2`; 12 000 steps for
300 time units, about 0.5 s in numpy at `N = 64`). Measured at `N = 64` from a state on the
attractor against `scipy.integrate.solve_ivp(method="Radau", rtol=1e-12)` on the same Fourier
semi-discretisation, the max-norm error of ETDRK4 over one time unit is ≈ 6e-6 for
`h = 0.05`, ≈ 6e-7 for `h = 0.025` and ≈ 5e-8 for `h = 0.0125`: far below the training
losses the paper reports (≈ 1e-3). No step makes a chaotic trajectory converge pointwise
over 300 time units (runs with `h = 0.05` and `h = 0.025` differ by ≈ 1e-5 at t = 5 and
by O(1) at t = 300: chaos); the data are one accurate
trajectory of the discrete system, with a local error of ≲ 6e-7 per time unit.

**Model** (`CircularStencil`, `ks_linear_stencil`, `ks_linear_operator`, `SINODEMLP`,
`sinode_model`, `kuramoto_sivashinsky`). Following Linot et al. (2022), SINODE splits the
right-hand side into a learned nonlinear term `G(u)` (an MLP `N → H → H → H → H → N`,
`H = 25N/8`, ReLU) and a fixed linear term `A u`: a circular 5-point convolution with the
filter `[−1/Δx⁴, 4/Δx⁴ − 1/Δx², −6/Δx⁴ + 2/Δx², 4/Δx⁴ − 1/Δx², −1/Δx⁴]`, the centred
finite-difference operator for `−u_xx − u_xxxx`. `A` is the stiff part (eigenvalues down to
≈ −1.1e3 at `N = 64`, ≈ −4.7e6 at `N = 512`) and is treated implicitly by the IMEX solver
with step `0.2`; explicit methods need steps of ≈ 1e-3 at `N = 64`. (The paper's sentence
"we treat the MLP part implicitly and the CNN part explicitly" has the two parts swapped;
its method section, and pdesolve's `IMEXRK`, treat the linear part implicitly.)

**True equation** (`KSNonlinearity`, `ks_semidiscrete`): the exact KS nonlinearity
`−½ ∂x(u²)` (spectral, in JAX) with the same finite-difference linear operator, as a
`NeuralODEProblem` for comparing IMEX and explicit solvers on a stiff chaotic system.

References:

- H. Zhang, Y. Liu, R. Maulik, *Semi-implicit neural ordinary differential equations for
  learning chaotic systems*, NeurIPS 2023 workshop (SINODE) — benchmark set-up, initial
  condition, filter, data span.
- A.-K. Kassam, L. N. Trefethen, *Fourth-order time-stepping for stiff PDEs*, SIAM J. Sci.
  Comput. 26(4):1214–1233 (2005) — ETDRK4 with contour-integral coefficients.
- S. M. Cox, P. C. Matthews, *Exponential time differencing for stiff systems*, J. Comput.
  Phys. 176:430–455 (2002) — the ETDRK4 scheme.
- A. J. Linot, J. W. Burby, Q. Tang, P. Balaprakash, M. D. Graham, R. Maulik, *Stabilized
  neural ordinary differential equations for long-time forecasting of dynamical systems*,
  J. Comput. Phys. 474:111838 (2023; arXiv:2203.15706, 2022) — the fixed-stencil linear
  term and the MLP nonlinear term.
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

import pdesolve as pds
from pdesolve._validation import check_int

__all__ = [
    "KS_LENGTH",
    "CircularStencil",
    "KSNonlinearity",
    "SINODEMLP",
    "etdrk4_coefficients",
    "ks_etdrk4",
    "ks_initial_condition",
    "ks_linear_operator",
    "ks_linear_stencil",
    "ks_reference_data",
    "ks_semidiscrete",
    "kuramoto_sivashinsky",
    "sinode_model",
]

#: Domain length of the SINODE benchmark.
KS_LENGTH = 22.0

_DEFAULT_DT = 0.2


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


_N_HINT = ("It is the number of grid points: an even int >= 8 (the Fourier method needs an even N "
           "and the 5-point stencil at least 5 points).")


def _check_N(N) -> int:
    n = check_int("N", N, 8, hint=_N_HINT)
    if n % 2:
        raise ValueError(f"`N` must be even; got N={N!r}. {_N_HINT}")
    return n


def _check_positive(name, value) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"`{name}` must be a positive finite number; got {name}={value!r}.")
    return v


def _ratio(num_name, num, den_name, den) -> int:
    """`num / den` as an integer, or a ValueError naming both arguments."""
    r = num / den
    n = round(r)
    if n < 0 or abs(r - n) > 1e-9 * max(1.0, abs(r)):
        raise ValueError(
            f"`{num_name}` must be an integer multiple of `{den_name}`; got "
            f"{num_name}={num!r}, {den_name}={den!r} (ratio {r!r})."
        )
    return int(n)


def ks_initial_condition(x):
    """SINODE's initial condition `u(x, 0) = cos(x/22) sin(1 + x/22)` (numpy float64).

    Used as written in Zhang, Liu & Maulik (2023) on `x ∈ [0, L)`; see the module
    docstring for its jump at the periodic boundary and its non-zero mean.
    """
    x = np.asarray(x, dtype=np.float64)
    return np.cos(x / 22.0) * np.sin(1.0 + x / 22.0)


# ---------------------------------------------------------------------------------------
# ETDRK4 (Kassam & Trefethen 2005), numpy
# ---------------------------------------------------------------------------------------


def etdrk4_coefficients(z, *, M: int = 32):
    """The ETDRK4 φ-function coefficients at `z = h λ`, by contour integrals.

    Returns `(q, f1, f2, f3)`, dimensionless (multiply by the step `h`), with

        q  = (e^{z/2} − 1) / z,
        f1 = (−4 − z + e^z (4 − 3z + z²)) / z³,
        f2 = ( 2 + z + e^z (z − 2)) / z³,
        f3 = (−4 − 3z − z² + e^z (4 − z)) / z³,

    all entire functions (`q(0) = 1/2`, `f1(0) = f2(0) = f3(0) = 1/6`). The direct formulas
    lose all accuracy near `z = 0` (cancellation). Following Kassam & Trefethen (2005) each
    is evaluated as the mean of the formula over the `M` points `z + e^{2πi (j + ½)/M}`,
    `j = 0, …, M − 1`, on the circle of radius 1 around `z`: the trapezoidal rule for
    Cauchy's integral, exact up to a term of size `|f^{(M)}(z)| / M!`. For real `z` the
    real part of the mean is returned (the functions are real there); for complex `z` the
    complex mean. Kassam & Trefethen use 32 points on the upper half circle and the real
    part, which for real `z` is the same as 64 points on the full circle; the default
    `M = 32` on the full circle already agrees with the Taylor series to ≈ 1e-13 relative
    for `|z| ≤ 1` and with the direct formulas to ≈ 1e-15 for `|z| ≥ 2`.

    Cost: `O(M)` complex exponentials per entry of `z`, once per step size.

    **Arguments:** `z` array-like (real or complex); `M` number of contour points (>= 8).

    **Returns:** four numpy arrays with the shape of `z` (float64 for real `z`).
    """
    M = check_int("M", M, 8, hint="It is the number of contour points.")
    z = np.asarray(z)
    real = not np.iscomplexobj(z)
    zc = z.astype(np.complex128)
    r = np.exp(2j * np.pi * (np.arange(M) + 0.5) / M)
    w = zc[..., None] + r  # points on the circles, shape z.shape + (M,)
    ew = np.exp(w)
    w3 = w**3
    q = np.mean((np.exp(w / 2) - 1.0) / w, axis=-1)
    f1 = np.mean((-4.0 - w + ew * (4.0 - 3.0 * w + w * w)) / w3, axis=-1)
    f2 = np.mean((2.0 + w + ew * (w - 2.0)) / w3, axis=-1)
    f3 = np.mean((-4.0 - 3.0 * w - w * w + ew * (4.0 - w)) / w3, axis=-1)
    if real:
        return tuple(np.real(c) for c in (q, f1, f2, f3))
    return q, f1, f2, f3


def _ks_fourier(N: int, L: float):
    """Wavenumbers of `rfft`, the KS linear symbol `λ_k = k² − k⁴` and `g_k = −i k/2`."""
    k = 2.0 * np.pi / L * np.arange(N // 2 + 1)
    lam = k**2 - k**4
    g = -0.5j * k
    g[-1] = 0.0  # odd derivative of the Nyquist mode: zero keeps u real
    return lam, g


def ks_etdrk4(u0, *, L: float = KS_LENGTH, h: float = 0.025, n_steps: int, save_every: int = 1, M: int = 32):
    """Integrate the periodic KS equation with Fourier spectral + ETDRK4 (Kassam & Trefethen).

    Semi-discretisation: `v = rfft(u)`, `v_t = λ v + g rfft(u²)` with `λ_k = k² − k⁴`,
    `g_k = −i k / 2` (`k = 2π m / L`, Nyquist derivative zero, no dealiasing). One ETDRK4
    step of size `h` (Cox & Matthews 2002, in Kassam & Trefethen's notation, `E = e^{hλ}`,
    `E2 = e^{hλ/2}`, `Q = h q`, `f_i = h f_i` from `etdrk4_coefficients(h λ, M=M)`):

        a = E2 v + Q N(v),        b = E2 v + Q N(a),
        c = E2 a + Q (2 N(b) − N(v)),
        v ← E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c).

    The linear part is integrated exactly, so the step is not limited by the stiffness of
    `k⁴`; the nonlinear part is fourth order for smooth solutions (order reduction towards
    2–3 for stiff, non-smooth data; measured 3.3–3.8 on the KS attractor, see the module
    docstring). Cost per step: 4 evaluations of `N(v) = g rfft(irfft(v)²)`, i.e. 4 real
    FFT pairs, `O(N log N)`; the coefficients are computed once, `O(N M)`.

    numpy float64 / complex128 throughout.

    **Arguments:**

    - `u0`: initial grid values, shape `(N,)` or a batch `(..., N)` (integrated
      independently), on `x_j = j L / N`; `N` even, >= 8.
    - `L`: period (default 22).
    - `h`: time step (default 0.025).
    - `n_steps`: number of steps (>= 0).
    - `save_every`: save every this many steps.
    - `M`: number of contour points for the coefficients.

    **Returns:** numpy array of shape `(n_steps // save_every + 1, ..., N)`: the states at
    `t = j · save_every · h`, `j = 0, 1, …`, the first being `u0`.
    """
    u = np.array(u0, dtype=np.float64)
    if u.ndim < 1:
        raise ValueError("`u0` must have the grid as its last axis, shape (N,) or (..., N).")
    N = _check_N(u.shape[-1])
    if not np.all(np.isfinite(u)):
        raise ValueError("`u0` contains NaN or inf.")
    L = _check_positive("L", L)
    h = _check_positive("h", h)
    n_steps = check_int("n_steps", n_steps, 0, hint="It is the number of steps of size h.")
    save_every = check_int("save_every", save_every, 1, hint="The states are saved every this many steps.")

    lam, g = _ks_fourier(N, L)
    z = h * lam
    E, E2 = np.exp(z), np.exp(z / 2.0)
    q, f1, f2, f3 = (h * c for c in etdrk4_coefficients(z, M=M))
    rfft, irfft = np.fft.rfft, np.fft.irfft

    def nonlinear(v):
        return g * rfft(irfft(v, n=N, axis=-1) ** 2, axis=-1)

    out = np.empty((n_steps // save_every + 1,) + u.shape, dtype=np.float64)
    out[0] = u
    v = rfft(u, axis=-1)
    for i in range(1, n_steps + 1):
        Nv = nonlinear(v)
        a = E2 * v + q * Nv
        Na = nonlinear(a)
        b = E2 * v + q * Na
        Nb = nonlinear(b)
        c = E2 * a + q * (2.0 * Nb - Nv)
        Nc = nonlinear(c)
        v = E * v + f1 * Nv + 2.0 * f2 * (Na + Nb) + f3 * Nc
        if i % save_every == 0:
            out[i // save_every] = irfft(v, n=N, axis=-1)
    if not np.all(np.isfinite(out)):  # pragma: no cover - ETDRK4 is stable on KS
        raise RuntimeError("ETDRK4 produced NaN/inf; reduce `h`.")
    return out


@functools.lru_cache(maxsize=16)
def _reference_data_cached(N, L, dt, t_discard, t_span, h, u0):
    x = L * np.arange(N) / N
    u0 = ks_initial_condition(x) if u0 is None else np.asarray(u0, dtype=np.float64)
    per_save = _ratio("dt", dt, "h", h)
    n_save = _ratio("t_span", t_span, "dt", dt)
    n_discard = _ratio("t_discard", t_discard, "h", h)
    start = ks_etdrk4(u0, L=L, h=h, n_steps=n_discard, save_every=max(n_discard, 1))[-1]
    us = ks_etdrk4(start, L=L, h=h, n_steps=n_save * per_save, save_every=per_save)
    ts = dt * np.arange(n_save + 1, dtype=np.float64)
    for a in (ts, us, x):
        a.setflags(write=False)
    return ts, us, x


def ks_reference_data(
    N: int = 64,
    *,
    L: float = KS_LENGTH,
    dt: float = _DEFAULT_DT,
    t_discard: float = 100.0,
    t_span: float = 200.0,
    h: float | None = None,
    u0=None,
):
    """The SINODE training data: a chaotic KS trajectory sampled every `dt`.

    Starts from `u0` (default SINODE's `cos(x/22) sin(1 + x/22)` on `x_j = j L / N`),
    integrates with `ks_etdrk4` (step `h`, default `dt / 8`), discards `t ∈ [0, t_discard]`
    and samples `t_discard + ts` for `ts = 0, dt, …, t_span` (both ends included: 1001
    snapshots for the default 200 / 0.2). Cost at the defaults: 12 000 ETDRK4 steps at
    `N = 64`, ≈ 0.5 s. Results are cached in-process (`functools.lru_cache` on the
    arguments); the returned arrays are shared and read-only (copy them to modify).

    **Arguments:**

    - `N`: grid points (even, >= 8; the paper uses 64 and 512).
    - `L`: period (default 22).
    - `dt`: sampling interval (default 0.2, the paper's time step).
    - `t_discard`: transient discarded (default 100), an integer multiple of `h`.
    - `t_span`: length of the returned series (default 200), an integer multiple of `dt`.
    - `h`: ETDRK4 step (default `dt / 8`); `dt` must be an integer multiple of it.
    - `u0`: optional initial grid values of shape `(N,)` at `t = 0` (before the discard).

    **Returns:** `(ts, us, x)`, numpy float64: `ts` of shape `(n,)` starting at 0 (time
    after the discard), `us` of shape `(n, N)`, `x` of shape `(N,)` the grid
    (`n = t_span / dt + 1`).

    Reference: Zhang, Liu & Maulik (2023), §3; Kassam & Trefethen (2005).
    """
    N = _check_N(N)
    L = _check_positive("L", L)
    dt = _check_positive("dt", dt)
    t_span = _check_positive("t_span", t_span)
    t_discard = float(t_discard)
    if not (math.isfinite(t_discard) and t_discard >= 0.0):
        raise ValueError(f"`t_discard` must be a finite number >= 0; got {t_discard!r}.")
    h = dt / 8.0 if h is None else _check_positive("h", h)
    _ratio("dt", dt, "h", h)
    if _ratio("t_span", t_span, "dt", dt) < 1:
        raise ValueError(f"`t_span` must be at least `dt`; got t_span={t_span}, dt={dt}.")
    _ratio("t_discard", t_discard, "h", h)
    if u0 is not None:
        u0 = np.asarray(u0, dtype=np.float64)
        if u0.shape != (N,):
            raise ValueError(f"`u0` must have shape (N,) = ({N},); got {u0.shape}.")
        if not np.all(np.isfinite(u0)):
            raise ValueError("`u0` contains NaN or inf.")
        u0 = tuple(float(v) for v in u0)
    return _reference_data_cached(N, L, dt, t_discard, t_span, h, u0)


# ---------------------------------------------------------------------------------------
# The SINODE model, JAX
# ---------------------------------------------------------------------------------------


def _as_weights(weights):
    return tuple(float(w) for w in weights)


class CircularStencil(eqx.Module):
    """A fixed circular (periodic) stencil along the last axis: a non-trainable conv layer.

        out[..., i] = Σ_m weights[m + r] · u[..., (i + m) mod N],   m = −r, …, r,

    with `r = (len(weights) − 1) / 2` (a correlation; for the symmetric KS filter
    correlation and convolution coincide). Equivalent to a 1-channel `Conv1d` with circular
    padding and fixed weights, as in Linot et al. (2022) and SINODE. The weights are stored
    as a static tuple of Python floats, so they are not parameters: `eqx.filter_grad` sees
    none and optimisers do not change them; the output has the dtype of `u`.

    Works for `u` of shape `(N,)` or any batch `(..., N)` (row-wise). Linear in `u`.
    Cost: `len(weights)` multiply–adds per grid value.
    """

    weights: tuple = eqx.field(static=True, converter=_as_weights)

    def __check_init__(self):
        if len(self.weights) % 2 != 1:
            raise ValueError(
                f"`weights` must have an odd length (a centred stencil); got {len(self.weights)}."
            )
        if not all(math.isfinite(w) for w in self.weights):
            raise ValueError(f"`weights` must be finite; got {self.weights}.")

    @property
    def radius(self) -> int:
        return len(self.weights) // 2

    def __call__(self, u):
        u = jnp.asarray(u)
        if u.ndim < 1 or u.shape[-1] < len(self.weights):
            raise ValueError(
                f"CircularStencil of width {len(self.weights)} needs an input with at least "
                f"that many points along its last axis; got shape {u.shape}."
            )
        r = self.radius
        out = jnp.zeros_like(u)
        for j, w in enumerate(self.weights):
            if w != 0.0:
                out = out + w * jnp.roll(u, -(j - r), axis=-1)
        return out


def ks_linear_stencil(N: int = 64, L: float = KS_LENGTH) -> CircularStencil:
    """The SINODE filter for `−u_xx − u_xxxx`: a `CircularStencil` with `Δx = L / N`,

        [−1/Δx⁴, 4/Δx⁴ − 1/Δx², −6/Δx⁴ + 2/Δx², 4/Δx⁴ − 1/Δx², −1/Δx⁴],

    i.e. `−δ²u/Δx² − δ⁴u/Δx⁴` with the centred second difference `δ²u_i = u_{i−1} − 2u_i +
    u_{i+1}` and fourth difference `δ⁴ = δ²δ²`. Second-order accurate; on the mode
    `e^{ikx}` it multiplies by `s − s²` with `s = 2(1 − cos kΔx)/Δx² = k² + O(k⁴Δx²)`.
    Its eigenvalues lie in `[4/Δx² − 16/Δx⁴, 1/4]` (≈ `[−1112, 0.25]` at `N = 64`).

    Reference: Zhang, Liu & Maulik (2023), §3; Linot et al. (2022).
    """
    N = _check_N(N)
    dx = _check_positive("L", L) / N
    a2, a4 = 1.0 / dx**2, 1.0 / dx**4
    return CircularStencil((-a4, 4 * a4 - a2, -6 * a4 + 2 * a2, 4 * a4 - a2, -a4))


def ks_linear_operator(N: int = 64, L: float = KS_LENGTH, dtype=None) -> lx.FunctionLinearOperator:
    """`ks_linear_stencil(N, L)` as a `lineax.FunctionLinearOperator` on states of shape `(N,)`.

    The stiff linear part `A` of SINODE (`NeuralODEProblem(..., linear=...)`), tagged
    symmetric. It acts on ONE state vector (input structure `ShapeDtypeStruct((N,), dtype)`,
    `dtype` default JAX's default float); apply it to a batch `(B, N)` with
    `jax.vmap(op.mv)` or call the stencil directly. `op.as_matrix()` gives the dense
    circulant `(N, N)` matrix an IMEX solver LU-factorises (as `I − γ h A`) once.
    """
    N = _check_N(N)
    stencil = ks_linear_stencil(N, L)
    return lx.FunctionLinearOperator(
        stencil, jax.ShapeDtypeStruct((N,), _dtype(dtype)), tags=lx.symmetric_tag
    )


class SINODEMLP(eqx.Module):
    """SINODE's learned nonlinear term `G(t, u, args) = mlp(u)` (Linot et al. 2022).

    A fully connected `eqx.nn.MLP` `N → H → H → H → H → N` (four hidden layers of width `H`,
    ReLU, linear output), `H = 25N/8` by default (200 at `N = 64`): `N·H + H + 3(H² + H) +
    H·N + N` parameters (146 464 at `N = 64`). Autonomous (`t` and `args` are ignored).
    `u` may be one state `(N,)` or a batch `(..., N)`; the MLP is applied along the last
    axis (vmapped over the others). Cost: ≈ 2 × (number of weights) FLOPs per state.
    """

    mlp: eqx.nn.MLP

    @property
    def size(self) -> int:
        n = self.mlp.in_size
        if isinstance(n, str):  # "scalar": an MLP on scalars has no state size N
            raise TypeError("SINODEMLP needs an MLP on states of shape (N,), not in_size='scalar'.")
        return n

    def __call__(self, t, u, args=None):
        n = self.mlp.in_size
        if jnp.ndim(u) < 1 or jnp.shape(u)[-1] != n:
            raise ValueError(
                f"SINODEMLP expects states of shape (N,) or (..., N) with N={n}; got shape "
                f"{jnp.shape(u)}."
            )
        if u.ndim == 1:
            return self.mlp(u)
        return jax.vmap(self.mlp)(u.reshape(-1, n)).reshape(u.shape)


def sinode_model(key, N: int = 64, dtype=None, *, hidden: int | None = None) -> SINODEMLP:
    """A freshly initialised `SINODEMLP` for `N` grid points (SINODE / Linot et al. 2022).

    **Arguments:** `key` a JAX PRNG key (default initialisation of `eqx.nn.Linear`); `N`
    grid points (even, >= 8); `dtype` of the weights (default JAX's default float);
    `hidden` the width `H` (default `round(25 N / 8)`, exact when 8 divides N: 200 for 64,
    1600 for 512).
    """
    N = _check_N(N)
    H = round(25 * N / 8) if hidden is None else check_int("hidden", hidden, 1, hint="It is the width H of the hidden layers (None: round(25 N / 8)).")
    mlp = eqx.nn.MLP(
        in_size=N,
        out_size=N,
        width_size=H,
        depth=4,
        activation=jax.nn.relu,
        key=key,
        dtype=_dtype(dtype),
    )
    return SINODEMLP(mlp)


def kuramoto_sivashinsky(N: int = 64, *, key=None, dt: float = _DEFAULT_DT, L: float = KS_LENGTH, dtype=None):
    """The SINODE neural ODE for Kuramoto–Sivashinsky data (Zhang, Liu & Maulik 2023).

        du/dt = G_θ(u) + A u,   G_θ = SINODEMLP (learned),   A = ks_linear_operator(N) (fixed),

    with `y0` the first snapshot of `ks_reference_data(N, L=L, dt=dt)` (the state at
    `t = 100` of the paper's trajectory) and `tspan = (0, dt)`: one training interval. To
    train, `pds.remake(prob, y0=us[i], tspan=...)` over windows of the data, or vmap over
    initial states. `A` is stiff (spectrum down to ≈ −1.1e3 at N = 64): solve with the
    IMEX solver at the paper's step `dt = 0.2`; explicit methods need `h ≲ 2.5e-3`.

    **Arguments:**

    - `N`: grid points (even, >= 8; 64 or 512 in the paper).
    - `key`: PRNG key for the MLP's weights (default `jax.random.PRNGKey(0)`).
    - `dt`: the data's sampling interval and the problem's span (default 0.2).
    - `L`: period (default 22).
    - `dtype`: dtype of `y0`, the weights and the operator (default JAX's default float).

    **Returns:** a `pds.NeuralODEProblem(vector_field=SINODEMLP, y0 (N,), (0, dt),
    linear=ks_linear_operator(N, L))`. Building it generates (and caches) the data:
    ≈ 0.5 s at N = 64.
    """
    N = _check_N(N)
    dt = _check_positive("dt", dt)
    key = jax.random.PRNGKey(0) if key is None else key
    dtp = _dtype(dtype)
    _, us, _ = ks_reference_data(N, L=L, dt=dt)
    model = sinode_model(key, N, dtp)
    y0 = jnp.asarray(us[0], dtype=dtp)
    return pds.NeuralODEProblem(model, y0, (0.0, dt), None, linear=ks_linear_operator(N, L, dtp))


class KSNonlinearity(eqx.Module):
    """The exact KS nonlinear term `G(t, u, args) = −u u_x = −½ ∂x(u²)`, spectrally (JAX).

    `−½ irfft(i k rfft(u²))` along the last axis (`k = 2π m / L`, Nyquist derivative zero;
    no dealiasing), for `u` of shape `(N,)` or `(..., N)`; the output has `u`'s dtype.
    The same term as `ks_etdrk4` uses. Cost: one real FFT pair, `O(N log N)` per state.
    """

    L: float = eqx.field(static=True, default=KS_LENGTH)

    def __call__(self, t, u, args=None):
        u = jnp.asarray(u)
        N = u.shape[-1]
        _, g = _ks_fourier(N, self.L)
        uh = jnp.fft.rfft(u * u, axis=-1)
        return jnp.fft.irfft(jnp.asarray(g, dtype=uh.dtype) * uh, n=N, axis=-1).astype(u.dtype)


def ks_semidiscrete(
    N: int = 64,
    *,
    L: float = KS_LENGTH,
    tspan=(0.0, 200.0),
    u0=None,
    dtype=None,
):
    """The true KS equation as a stiff `NeuralODEProblem` on the grid: `du/dt = G(u) + A u`.

    `G = KSNonlinearity(L)` (spectral `−½ ∂x(u²)`) and `A = ks_linear_operator(N, L)` (the
    5-point finite differences of `−u_xx − u_xxxx`, the same `A` as the SINODE model), i.e.
    the system a perfectly trained SINODE model would represent. For stability tests of
    IMEX against explicit methods: `A`'s spectrum reaches ≈ −1.1e3 at N = 64, so explicit
    RK4 is unstable for `h ≳ 2.5e-3` whereas IMEX steps of 0.2 are stable. The mixed
    discretisation differs from the spectral ETDRK4 data by `O(k⁴Δx²)` in the linear
    symbol, so its trajectories follow the data only for short times (it is chaotic too).

    **Arguments:**

    - `N`: grid points (even, >= 8).
    - `L`: period (default 22).
    - `tspan`: time span (default `(0, 200)`, the data's span).
    - `u0`: initial state of shape `(N,)` (default the first snapshot of
      `ks_reference_data(N, L=L)`, a state on the attractor).
    - `dtype`: dtype of `y0` and the operator (default JAX's default float).

    **Returns:** `pds.NeuralODEProblem(KSNonlinearity(L), y0, tspan, linear=A)`.
    """
    N = _check_N(N)
    L = _check_positive("L", L)
    dtp = _dtype(dtype)
    if u0 is None:
        u0 = ks_reference_data(N, L=L)[1][0]
    u0 = np.asarray(u0)
    if u0.shape != (N,):
        raise ValueError(f"`u0` must have shape (N,) = ({N},); got {u0.shape}.")
    y0 = jnp.asarray(u0, dtype=dtp)
    tspan = tuple(float(t) for t in tspan)
    return pds.NeuralODEProblem(KSNonlinearity(L), y0, tspan, None, linear=ks_linear_operator(N, L, dtp))
