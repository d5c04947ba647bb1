"""Chandrasekhar's white dwarf equation: the benchmark of McCallum & Foster (2024).

Chandrasekhar's equation for the density profile of a white dwarf star,

    (1/t²) d/dt (t² dx/dt) + (x² − C)^{3/2} = 0,

written as a first-order system in `y = (x, v)`:

    x' = v,
    v' = −(x² − C)^{3/2} − 2 v / t.

The benchmark of McCallum & Foster uses `C = 0.001`, `(x(0), v(0)) = (1, 0)` and
`t ∈ [0, 5]`, with time shifted by `+0.5`: the right-hand side is evaluated at
`t_eff = t + shift` (`shift = 0.5`), which keeps the `2v/t` term away from its singularity
at the origin. Synthetic data are sampled on 1000 steps of 0.005 (1001 times), and a neural
ODE (an MLP of `(t, x, v)`, one hidden layer of 10 tanh units) is fitted to them.

**The guard for `x² < C`.** `(x² − C)^{3/2}` is real only while `x² ≥ C`; `x = √C` is the
star's surface, beyond which the density is zero. The problem's own solution never gets
there on the benchmark interval (`x(5) ≈ 0.042 > √C ≈ 0.032`; it first reaches `√C` near
`t ≈ 5.16`), but a trial step of an adaptive solver, a longer time span or a learned model's
trajectory can. The papers do not say what to do there; pdesolve uses the physical
continuation `max(x² − C, 0)^{3/2}` (zero density outside the star, so `v' = −2v/t_eff`).
It is continuous with a continuous first derivative `3x·max(x² − C, 0)^{1/2}`, and its
gradients are finite everywhere (no NaN from a fractional power of a negative number).

References:

- S. McCallum, J. Foster, *Efficient, accurate and stable gradients for neural ODEs*,
  arXiv:2410.11648 (2024) — the benchmark (white dwarf data, neural ODE training).
- S. Chandrasekhar, *An Introduction to the Study of Stellar Structure*, University of
  Chicago Press (1939), ch. XI — the white dwarf equation.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import pdesolve as pds
from pdesolve._validation import check_int

__all__ = [
    "WHITE_DWARF_DT",
    "WHITE_DWARF_N_STEPS",
    "WhiteDwarfMLP",
    "white_dwarf",
    "white_dwarf_data",
    "white_dwarf_model",
    "white_dwarf_neural_problem",
]

#: Step of the benchmark's time grid (1000 steps on [0, 5]).
WHITE_DWARF_DT = 0.005
#: Number of steps of the benchmark's time grid.
WHITE_DWARF_N_STEPS = 1000

_Y0 = (1.0, 0.0)
_TSPAN = (0.0, 5.0)


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def _white_dwarf_field(t, y, args):
    C, shift = args
    x, v = y[0], y[1]
    t_eff = t + shift
    density = jnp.maximum(x * x - C, 0.0) ** 1.5
    return jnp.stack([v, -density - 2.0 * v / t_eff])


def white_dwarf(*, C=0.001, shift=0.5, tspan=_TSPAN, dtype=None):
    """Chandrasekhar's white dwarf equation, the benchmark of McCallum & Foster (2024).

        x' = v,   v' = −max(x² − C, 0)^{3/2} − 2 v / (t + shift),
        (x, v)(0) = (1, 0),   C = 0.001,   shift = 0.5,   t in [0, 5].

    Non-stiff; `x` decreases monotonically from 1 to ≈ 0.042 at `t = 5` and `v` has a
    single minimum ≈ −0.325 near `t ≈ 1.08`. The `max(·, 0)` guard (zero density outside the
    star) is inactive along the true solution on `[0, 5]`; see the module docstring.

    **Arguments:**

    - `C`: the constant of the equation (default 0.001).
    - `shift`: the time shift: the right-hand side is evaluated at `t + shift` (default
      0.5), so `2v/t` stays finite; must keep `t + shift > 0` on `tspan`.
    - `tspan`: time span (default `(0, 5)`).
    - `dtype`: floating dtype of `y0` and `args` (default JAX's default float).

    **Returns:** a `pds.NeuralODEProblem` with `args = (C, shift)` (scalar arrays, so
    differentiable and replaceable with `pds.remake(prob, args=...)`).

    Reference: McCallum & Foster, arXiv:2410.11648 (2024); Chandrasekhar (1939), ch. XI.
    """
    t0, t1 = (float(t) for t in tspan)
    if min(t0, t1) + float(shift) <= 0.0:
        raise ValueError(
            f"`shift` must keep t + shift > 0 on the whole span (the 2v/t term is singular at "
            f"0); got shift={shift} with tspan={tspan}."
        )
    dt = _dtype(dtype)
    args = (jnp.asarray(float(C), dtype=dt), jnp.asarray(float(shift), dtype=dt))
    return pds.NeuralODEProblem(_white_dwarf_field, jnp.asarray(np.asarray(_Y0), dtype=dt), (t0, t1), args)


def white_dwarf_data(
    n_times: int = WHITE_DWARF_N_STEPS + 1,
    ts=None,
    *,
    t1: float = _TSPAN[1],
    C: float = 0.001,
    shift: float = 0.5,
    rtol: float = 1e-12,
    atol: float = 1e-14,
):
    """Reference trajectory of the white dwarf equation (the benchmark's training data).

    Integrates `white_dwarf(C=C, shift=shift)` from `t = 0`, `(x, v) = (1, 0)` with
    `scipy.integrate.solve_ivp(method="DOP853", rtol, atol)` using a numpy right-hand side,
    so it is float64 whatever `jax_enable_x64` says.

    **Arguments:**

    - `n_times`: number of equally spaced times on `[0, t1]`, both ends included. The
      default, 1001 on `[0, 5]`, is the benchmark's grid of 1000 steps of 0.005.
    - `ts`: explicit save times instead (1-D, non-decreasing, `ts[0] >= 0`); overrides
      `n_times` and `t1`.
    - `t1`: final time of the default grid.
    - `C`, `shift`: as in `white_dwarf`.
    - `rtol`, `atol`: scipy tolerances.

    **Returns:** `(ts, ys)`, numpy float64 arrays of shapes `(n,)` and `(n, 2)` (columns
    `x`, `v`). The paper fits the neural ODE to the `x` column.
    """
    from scipy.integrate import solve_ivp

    if ts is None:
        n_times = check_int("n_times", n_times, 2, hint="It is the number of equally spaced times on [0, t1].")
        if not float(t1) > 0.0:
            raise ValueError(f"`t1` must be positive; got {t1}.")
        ts = np.linspace(0.0, float(t1), n_times)
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError(f"`ts` must be a non-empty 1-D array of times; got shape {ts.shape}.")
    if not np.all(np.isfinite(ts)) or ts[0] < 0.0 or np.any(np.diff(ts) < 0):
        raise ValueError("`ts` must be finite, non-decreasing and start at or after t = 0.")
    if float(shift) <= 0.0:
        raise ValueError(f"`shift` must be positive (2v/t is singular at t = 0); got {shift}.")
    C, shift = float(C), float(shift)

    def rhs(t, y):
        x, v = y
        return np.array([v, -max(x * x - C, 0.0) ** 1.5 - 2.0 * v / (t + shift)])

    y0 = np.asarray(_Y0, dtype=np.float64)
    t_end = float(ts[-1])
    if t_end == 0.0:
        return ts, np.tile(y0, (ts.size, 1))
    sol = solve_ivp(rhs, (0.0, t_end), y0, method="DOP853", rtol=rtol, atol=atol, t_eval=ts)
    if not sol.success:  # pragma: no cover - the problem is smooth and non-stiff
        raise RuntimeError(f"scipy DOP853 failed on the white dwarf equation: {sol.message}")
    return ts, np.ascontiguousarray(sol.y.T, dtype=np.float64)


class WhiteDwarfMLP(eqx.Module):
    """The benchmark's neural vector field: `(t, y, args) -> mlp([t, x, v])`.

    An `eqx.nn.MLP` with input 3 (`t` and the state), one hidden layer of `hidden` tanh
    units and output 2 (3·10 + 10 + 10·2 + 2 = 62 parameters for `hidden=10`). The network
    sees the solver's time `t` (not `t + shift`). `args` is ignored.
    """

    mlp: eqx.nn.MLP

    def __call__(self, t, y, args):
        t = jnp.asarray(t, dtype=y.dtype).reshape(1)
        return self.mlp(jnp.concatenate([t, y]))


def white_dwarf_model(key, *, hidden: int = 10, dtype=None) -> WhiteDwarfMLP:
    """A freshly initialised `WhiteDwarfMLP` (McCallum & Foster 2024): 3 -> `hidden` -> 2, tanh.

    **Arguments:** `key` a JAX PRNG key; `hidden` the width of the single hidden layer
    (default 10, the paper's); `dtype` of the weights (default JAX's default float).
    """
    hidden = check_int("hidden", hidden, 1, hint="It is the width of the hidden layer.")
    mlp = eqx.nn.MLP(
        in_size=3,
        out_size=2,
        width_size=hidden,
        depth=1,
        activation=jnp.tanh,
        key=key,
        dtype=_dtype(dtype),
    )
    return WhiteDwarfMLP(mlp)


def white_dwarf_neural_problem(model, *, tspan=_TSPAN, y0=_Y0):
    """The neural ODE `dy/dt = model(t, y)` of the benchmark, `y(0) = (1, 0)`, `t in [0, 5]`.

    **Arguments:**

    - `model`: a `WhiteDwarfMLP` (from `white_dwarf_model`) or any `(t, y, args) -> dy/dt`
      `equinox` module / callable with a length-2 state.
    - `tspan`, `y0`: override the span and initial state; `y0` is cast to the model's dtype.

    Differentiate a loss of `pds.solve(white_dwarf_neural_problem(model), ...)` with
    `eqx.filter_grad` for gradients with respect to the weights (with
    `pds.ReversibleRK(...)` these are the O(1)-memory reversible gradients of the paper).
    """
    leaves = [x for x in jax.tree.leaves(model) if eqx.is_inexact_array(x)]
    dt = leaves[0].dtype if leaves else jnp.result_type(float)
    y0 = jnp.asarray(y0 if isinstance(y0, jax.Array) else np.asarray(y0), dtype=dt)
    return pds.NeuralODEProblem(model, y0, tuple(float(t) for t in tspan), None)
