"""Non-stiff ODE test problems: the DETEST set and Hairer–Nørsett–Wanner classics.

Each function returns a ready `pdesolve.NeuralODEProblem` whose vector field is a plain
function of `(t, y, args)`; the problem's parameters live in `args` (a tuple of scalar
arrays), so they are differentiable and can be swapped with `pds.remake(prob, args=...)`.
Arrays use JAX's default floating dtype: float64 when `jax_enable_x64` is on (which these
problems are meant for: tight-tolerance accuracy checks), float32 otherwise. Pass
`dtype=` to choose explicitly.

`reference_solution(problem, ts)` integrates any of them (or any `NeuralODEProblem` with a
flat or pytree state) with scipy's DOP853 at `rtol=1e-12, atol=1e-14`.

References:

- T. E. Hull, W. H. Enright, B. M. Fellen, A. E. Sedgwick, *Comparing numerical methods
  for ordinary differential equations*, SIAM J. Numer. Anal. 9(4):603–637 (1972) — the
  DETEST set (problem classes A–E; B1 and B5 are used here).
- E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I:
  Nonstiff Problems*, 2nd ed., Springer (1993) — Arenstorf orbit (Sec. II.0, eq. 0.1),
  Brusselator (Sec. II.10, eq. 10.2 with A=1, B=3), Pleiades (Sec. II.10, eq. 10.3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

import pdesolve as pds

__all__ = [
    "lotka_volterra",
    "euler_rigid_body",
    "arenstorf",
    "ARENSTORF_PERIOD",
    "brusselator",
    "pleiades",
    "reference_solution",
]

#: Period of the Arenstorf orbit with the initial value of `arenstorf()` (Hairer I, II.0).
ARENSTORF_PERIOD = 17.0652165601579625588917206249


def _dtype(dtype):
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def _arr(x, dtype):
    return jnp.asarray(np.asarray(x, dtype=np.float64), dtype=_dtype(dtype))


def _params(dtype, *values):
    return tuple(_arr(v, dtype) for v in values)


# --------------------------------------------------------------------------------------
# DETEST B1: Lotka–Volterra predator–prey
# --------------------------------------------------------------------------------------


def _lotka_volterra_field(t, y, args):
    a, b = args
    y1, y2 = y[0], y[1]
    return jnp.stack([a * (y1 - y1 * y2), -b * (y2 - y1 * y2)])


def lotka_volterra(*, y0=(1.0, 3.0), tspan=(0.0, 20.0), a=2.0, b=1.0, dtype=None):
    """Lotka–Volterra predator–prey system, DETEST problem B1.

        y1' = a (y1 - y1 y2),   y2' = -b (y2 - y1 y2),   a = 2, b = 1,
        y(0) = (1, 3),   t in [0, 20].

    Periodic orbit: `V = b (y1 - ln y1) + a (y2 - ln y2)` is conserved; non-stiff.
    `args = (a, b)`.

    Reference: Hull, Enright, Fellen & Sedgwick, SIAM J. Numer. Anal. 9 (1972), class B,
    problem B1.
    """
    return pds.NeuralODEProblem(
        _lotka_volterra_field, _arr(y0, dtype), tuple(float(t) for t in tspan), _params(dtype, a, b)
    )


# --------------------------------------------------------------------------------------
# DETEST B5: Euler's equations of a rigid body without external forces
# --------------------------------------------------------------------------------------


def _euler_rigid_body_field(t, y, args):
    (k,) = args
    y1, y2, y3 = y[0], y[1], y[2]
    return jnp.stack([y2 * y3, -y1 * y3, -k * y1 * y2])


def euler_rigid_body(*, y0=(0.0, 1.0, 1.0), tspan=(0.0, 20.0), k=0.51, dtype=None):
    """Euler's equations of rotation of a free rigid body, DETEST problem B5.

        y1' = y2 y3,   y2' = -y1 y3,   y3' = -k y1 y2,   k = 0.51,
        y(0) = (0, 1, 1),   t in [0, 20].

    The exact solution is given by Jacobi elliptic functions (sn, cn, dn with modulus
    m = 0.51); `y1² + y2²` and `k y1² + y3²` are conserved. `args = (k,)`.

    Reference: Hull, Enright, Fellen & Sedgwick, SIAM J. Numer. Anal. 9 (1972), problem B5;
    also Hairer–Nørsett–Wanner I, Sec. II.10 ("EULR").
    """
    return pds.NeuralODEProblem(
        _euler_rigid_body_field, _arr(y0, dtype), tuple(float(t) for t in tspan), _params(dtype, k)
    )


# --------------------------------------------------------------------------------------
# Arenstorf orbit (restricted three-body problem)
# --------------------------------------------------------------------------------------


def _arenstorf_field(t, y, args):
    (mu,) = args
    mu1 = 1.0 - mu
    y1, y2, v1, v2 = y[0], y[1], y[2], y[3]
    d1 = ((y1 + mu) ** 2 + y2**2) ** 1.5
    d2 = ((y1 - mu1) ** 2 + y2**2) ** 1.5
    a1 = y1 + 2.0 * v2 - mu1 * (y1 + mu) / d1 - mu * (y1 - mu1) / d2
    a2 = y2 - 2.0 * v1 - mu1 * y2 / d1 - mu * y2 / d2
    return jnp.stack([v1, v2, a1, a2])


def arenstorf(*, tspan=(0.0, ARENSTORF_PERIOD), mu=0.012277471, dtype=None):
    """Arenstorf orbit: a periodic orbit of the restricted three-body problem (Earth–Moon
    –satellite in a rotating frame).

        y1'' = y1 + 2 y2' - μ' (y1 + μ)/D1 - μ (y1 - μ')/D2,
        y2'' = y2 - 2 y1' - μ' y2/D1 - μ y2/D2,
        D1 = ((y1 + μ)² + y2²)^{3/2},  D2 = ((y1 - μ')² + y2²)^{3/2},  μ' = 1 - μ,
        μ = 0.012277471.

    State `y = (y1, y2, y1', y2')`, `y(0) = (0.994, 0, 0, -2.00158510637908252240537862224)`,
    `t in [0, T]` with period `T = 17.0652165601579625588917206249` (`ARENSTORF_PERIOD`):
    the exact solution returns to `y(0)` at `t = T`. Two close approaches to the Moon make
    step-size control essential (a fixed-step method needs ~10⁴–10⁵ steps). `args = (μ,)`.

    Reference: Hairer, Nørsett & Wanner, *Solving ODEs I*, 2nd ed. (1993), Sec. II.0,
    eq. (0.1); R. F. Arenstorf, Amer. J. Math. 85 (1963).
    """
    y0 = (0.994, 0.0, 0.0, -2.00158510637908252240537862224)
    return pds.NeuralODEProblem(
        _arenstorf_field, _arr(y0, dtype), tuple(float(t) for t in tspan), _params(dtype, mu)
    )


# --------------------------------------------------------------------------------------
# Brusselator (non-stiff ODE version)
# --------------------------------------------------------------------------------------


def _brusselator_field(t, y, args):
    a, b = args
    y1, y2 = y[0], y[1]
    return jnp.stack([a + y1**2 * y2 - (b + 1.0) * y1, b * y1 - y1**2 * y2])


def brusselator(*, y0=(1.5, 3.0), tspan=(0.0, 20.0), a=1.0, b=3.0, dtype=None):
    """The Brusselator chemical oscillator (ODE version, non-stiff).

        y1' = A + y1² y2 - (B + 1) y1,   y2' = B y1 - y1² y2,   A = 1, B = 3,
        y(0) = (1.5, 3),   t in [0, 20].

    Converges to a limit cycle (B > 1 + A²). `args = (A, B)`.

    Reference: Hairer, Nørsett & Wanner, *Solving ODEs I*, 2nd ed. (1993), Sec. II.10,
    eq. (10.2) ("BRUS"); I. Prigogine & R. Lefever, J. Chem. Phys. 48 (1968).
    """
    return pds.NeuralODEProblem(
        _brusselator_field, _arr(y0, dtype), tuple(float(t) for t in tspan), _params(dtype, a, b)
    )


# --------------------------------------------------------------------------------------
# Pleiades (seven-body problem)
# --------------------------------------------------------------------------------------


def _pleiades_field(t, y, args):
    (m,) = args
    n = m.shape[0]
    x, v = y[: 2 * n].reshape(n, 2), y[2 * n :]
    diff = x[None, :, :] - x[:, None, :]  # diff[i, j] = x_j - x_i
    r2 = jnp.sum(diff**2, axis=-1)
    eye = jnp.eye(n, dtype=bool)
    inv_r3 = jnp.where(eye, 0.0, jnp.where(eye, 1.0, r2) ** -1.5)
    acc = jnp.einsum("ij,j,ijk->ik", inv_r3, m, diff)
    return jnp.concatenate([v, acc.reshape(-1)])


def pleiades(*, tspan=(0.0, 3.0), dtype=None):
    """The Pleiades problem: seven stars in the plane under Newtonian gravity (G = 1).

        x_i'' = Σ_{j≠i} m_j (x_j - x_i) / r_ij³,   r_ij = |x_i - x_j|,   m_i = i, i = 1..7.

    State `y = (x_1, y_1, ..., x_7, y_7, x_1', y_1', ..., x_7', y_7')` (28 components),
    initial positions (3,3), (3,-3), (-1,2), (-3,0), (2,0), (-2,-4), (2,4), initial
    velocities (0,0), (0,0), (0,0), (0,-1.25), (0,1), (1.75,0), (-1.5,0); `t in [0, 3]`.
    Several close encounters make step-size control essential. `args = (m,)`.

    Reference: Hairer, Nørsett & Wanner, *Solving ODEs I*, 2nd ed. (1993), Sec. II.10,
    eq. (10.3) ("PLEI").
    """
    pos = [(3, 3), (3, -3), (-1, 2), (-3, 0), (2, 0), (-2, -4), (2, 4)]
    vel = [(0, 0), (0, 0), (0, 0), (0, -1.25), (0, 1), (1.75, 0), (-1.5, 0)]
    y0 = np.concatenate([np.ravel(pos), np.ravel(vel)]).astype(np.float64)
    m = np.arange(1.0, 8.0)
    return pds.NeuralODEProblem(
        _pleiades_field, _arr(y0, dtype), tuple(float(t) for t in tspan), (_arr(m, dtype),)
    )


# --------------------------------------------------------------------------------------
# Reference solutions
# --------------------------------------------------------------------------------------


def reference_solution(problem, ts, *, rtol: float = 1e-12, atol: float = 1e-14):
    """High-accuracy reference values of a `NeuralODEProblem` at times `ts`, from scipy.

    Integrates `problem.vector_field` (jitted, called from numpy in float64) with
    `scipy.integrate.solve_ivp(method="DOP853", rtol=1e-12, atol=1e-14, t_eval=ts)` from
    `problem.tspan[0]`. The stiff `linear` part, if any, is added.

    **Arguments:**

    - `problem`: a `pdesolve.NeuralODEProblem` (any pytree state).
    - `ts`: 1-D increasing (or, for backward problems, decreasing) times inside the span.
    - `rtol`, `atol`: scipy tolerances.

    **Returns:** a numpy float64 array `(len(ts), n)` of the flattened state (the same
    ordering as `jax.flatten_util.ravel_pytree(problem.y0)`); for a single 1-D state leaf
    that is simply `y(ts)`.

    Requires float64 (`jax.config.update("jax_enable_x64", True)` at program start): a
    1e-12 reference computed in float32 would be meaningless.
    """
    from jax.flatten_util import ravel_pytree
    from scipy.integrate import solve_ivp

    if not isinstance(problem, pds.NeuralODEProblem):
        raise TypeError(f"reference_solution expects a NeuralODEProblem; got {type(problem).__name__}.")
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "reference_solution needs float64: call jax.config.update('jax_enable_x64', True) "
            "at the start of your program (before creating arrays)."
        )
    flat0, unravel = ravel_pytree(problem.y0)
    if flat0.dtype != jnp.float64:
        raise TypeError(
            f"reference_solution needs a float64 problem; y0 has dtype {flat0.dtype}. Build the "
            "problem with x64 enabled (or dtype=jnp.float64)."
        )
    linear = problem.linear

    @jax.jit
    def rhs(t, y):
        yt = unravel(y)
        out = problem.vector_field(t, yt, problem.args)
        if linear is not None:
            if isinstance(linear, lx.AbstractLinearOperator):
                lin = linear.mv(yt)
            elif callable(linear):
                lin = linear(yt)
            else:
                lin = jnp.asarray(linear) @ y
                lin = unravel(lin)
            out = jax.tree.map(jnp.add, out, lin)
        return ravel_pytree(out)[0]

    ts = np.asarray(ts, dtype=np.float64)
    t0, t1 = float(problem.tspan[0]), float(problem.tspan[1])
    t_end = ts[-1] if ts.size else t1
    if ts.size and np.isclose(t_end, t0):
        return np.repeat(np.asarray(flat0)[None], ts.size, axis=0)
    res = solve_ivp(
        lambda t, y: np.asarray(rhs(t, y)),
        (t0, float(t_end)),
        np.asarray(flat0, dtype=np.float64),
        method="DOP853",
        rtol=rtol,
        atol=atol,
        t_eval=ts,
        dense_output=False,
    )
    if not res.success:
        raise RuntimeError(f"scipy DOP853 reference failed: {res.message}")
    return res.y.T
