"""Dense output: the per-step interpolating polynomials of a solve (`SaveAt(dense=True)`).

Each accepted step from `t_n` with size `h` stores the coefficients `c_0..c_q` of a
polynomial in `θ = (t − t_n)/h ∈ [0, 1]`,

    y(t_n + θ h) ≈ Σ_m c_m θ^m,        c_0 = y_n,

so every method's interpolant is evaluated the same way (Horner), vectorised over an array
of times, inside `jit`, and differentiated like any other output of the solve (the
coefficients are loop buffers, as `SaveAt(steps=True)`'s states are).

Which polynomial:

* a tableau's own continuous extension `b_i(θ)` where the method's paper gives one —
  `y_n + h Σ_i b_i(θ) k_i`, no extra evaluations: Dopri5 (order 4, Shampine 1986 /
  Hairer, Nørsett & Wanner's DOPRI5 dense output), Tsit5 (order 4, Tsitouras 2011);
* otherwise the cubic Hermite interpolant of `y_n, y_{n+1}` and the slopes `f(t_n, y_n)`,
  `f(t_{n+1}, y_{n+1})` (local order 3: error `O(h⁴)`). FSAL tableaus (Bosh3 — whose
  interpolant this is) have both slopes among their stages; other methods pay one
  (explicit RK) or two (IMEX, where the stages are not slopes of the full field) extra
  evaluations of `f` per step.

The error at an interior time is the global error of the step's start plus the local
interpolation error, so it converges like `h^min(p, q+1)` for a method of order `p` with
an interpolant of order `q`: Dopri5 and Tsit5 5, RK4 4, Bosh3 3.
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpy.polynomial import Polynomial

from ._validation import is_concrete
from ._time_direction import TimeDirection


def hermite_coefficients(y0, y1, f0, f1, dt):
    """Coefficients (θ⁰..θ³, stacked on a new leading axis per leaf) of the cubic Hermite
    interpolant with values `y0`, `y1` and slopes `f0 = f(t_n, y0)`, `f1 = f(t_n + dt, y1)`
    at `θ = 0, 1`."""

    def leaf(a, b, k0, k1):
        d = b - a
        s0, s1 = dt.astype(a.dtype) * k0, dt.astype(a.dtype) * k1
        return jnp.stack([a, s0, 3 * d - 2 * s0 - s1, s0 + s1 - 2 * d])

    return jax.tree.map(leaf, y0, y1, f0, f1)


def weight_coefficients(y0, dt, weights, ks):
    """Coefficients of `y0 + h Σ_i b_i(θ) k_i` with `b_i(θ) = Σ_m weights[i][m] θ^(m+1)`
    (static floats; zero columns cost nothing)."""
    from ._rk import combine

    degree = len(weights[0])
    columns = [[row[m] for row in weights] for m in range(degree)]
    terms = [combine(None, dt, col, ks) for col in columns]
    return jax.tree.map(lambda a, *cs: jnp.stack([a, *cs]), y0, *terms)


def horner(coeffs, theta):
    """`Σ_m coeffs[m] θ^m` for one leaf (`coeffs` of shape `(q+1,) + S`)."""
    out = coeffs[-1]
    for m in range(coeffs.shape[0] - 2, -1, -1):
        out = coeffs[m] + theta.astype(coeffs.dtype) * out
    return out


class DenseInterpolation(eqx.Module):
    """The interpolating polynomials of every accepted step of a solve.

    **Fields:** `t_start`, `dt` (`(max_steps,)`, in the integrator's forward time `s`),
    `coeffs` (the state's pytree with leaves `(max_steps, q+1) + S`), `num_steps` (accepted
    steps stored; slots past it are unused), `t0`, `t_final` (the solved interval, in `s`)
    and `direction` (a `TimeDirection`: a backward solve's time is `t = −s`).

    `evaluate(t)` takes a scalar or an array of times and returns states with `t`'s shape
    in front; times outside the solved interval give NaN (a concrete one raises). A batched
    interpolation (an ensemble's, or one returned from `vmap`) evaluates every member at `t`
    (member axis first; outside a member's interval: NaN).
    """

    t_start: jax.Array
    dt: jax.Array
    coeffs: Any
    num_steps: jax.Array
    t0: jax.Array
    t_final: jax.Array
    direction: TimeDirection = TimeDirection(False)

    def _one(self, t):
        s = self.direction.times(t)
        n = jnp.maximum(self.num_steps, 1)
        i = jnp.clip(jnp.searchsorted(self.t_start, s, side="right") - 1, 0, n - 1)
        h = self.dt[i]
        theta = jnp.where(h > 0, (s - self.t_start[i]) / jnp.where(h > 0, h, 1), 0.0)
        span = jnp.abs(self.t_final - self.t0)
        slack = 64 * jnp.finfo(jnp.result_type(self.t_start)).eps * jnp.maximum(span, jnp.abs(self.t_final))
        inside = (s >= self.t0 - slack) & (s <= self.t_final + slack) & (self.num_steps > 0)
        return jax.tree.map(lambda c: jnp.where(inside, horner(c[i], theta), jnp.nan), self.coeffs)

    def evaluate(self, t):
        t = jnp.asarray(t, jnp.result_type(self.t_start))
        if self.t_start.ndim > 1:  # a batched solution (ensemble, vmap): every member at `t`
            return eqx.filter_vmap(lambda d: d.evaluate(t))(self)
        if is_concrete((t, self.t0, self.t_final, self.num_steps)):
            lo, hi = sorted((self.direction.times(float(self.t0)), self.direction.times(float(self.t_final))))
            tt = np.asarray(t, dtype=float)
            tol = 64 * np.finfo(tt.dtype).eps * max(abs(lo), abs(hi), hi - lo)
            if np.any(tt < lo - tol) or np.any(tt > hi + tol) or not np.all(np.isfinite(tt)):
                raise ValueError(
                    f"evaluate(t): the dense output covers [{lo}, {hi}] (the interval this solve "
                    f"reached); got t from {float(np.min(tt))} to {float(np.max(tt))}."
                )
        flat = t.reshape(-1)
        out = jax.vmap(self._one)(flat)
        return jax.tree.map(lambda x: x.reshape(t.shape + x.shape[1:]), out)


# --- the methods' own continuous extensions ---------------------------------------------------


def _weights(polys, b, name):
    """`weights[i][m]`, the coefficient of θ^(m+1) in b_i(θ), from numpy polynomials; checks
    `b_i(0) = 0` and `b_i(1) = b_i` (the interpolant ends at the step's value)."""
    degree = max(p.degree() for p in polys)
    out = []
    for p, bi in zip(polys, b):
        c = np.zeros(degree + 1)
        c[: len(p.coef)] = p.coef
        if abs(c[0]) > 1e-14 or abs(c.sum() - bi) > 1e-12:
            raise AssertionError(f"{name} dense output: b_i(0) = {c[0]}, b_i(1) = {c.sum()} vs b_i = {bi}")
        out.append(tuple(float(x) for x in c[1:]))
    return tuple(out)


def _dopri5_weights(b):
    """Dormand–Prince 5(4)'s order-4 continuous extension (Shampine 1986; Hairer, Nørsett &
    Wanner, *Solving ODEs I*, DOPRI5's dense output): with `Δ = h Σ b_i k_i`,
    `y(θ) = y_n + θ(Δ + (1−θ)(r₃ + θ(r₄ + (1−θ) r₅)))`, `r₃ = h k₁ − Δ`,
    `r₄ = Δ − h k₇ − r₃`, `r₅ = h Σ d_i k_i`."""
    d = np.array([-12715105075 / 11282082432, 0.0, 87487479700 / 32700410799, -10690763975 / 1880347072,
                  701980252875 / 199316789632, -1453857185 / 822651844, 69997945 / 29380423])
    e = np.eye(7)
    delta, k1, k7 = np.asarray(b), e[0], e[6]
    r3 = k1 - delta
    r4 = delta - k7 - r3
    th, one = Polynomial([0.0, 1.0]), Polynomial([1.0])
    # each stage's b_i(θ): the expression above with k_j -> e_j
    polys = [th * (delta[i] * one + (one - th) * (r3[i] * one + th * (r4[i] * one + (one - th) * d[i])))
             for i in range(7)]
    return _weights(polys, b, "Dopri5")


def _tsit5_weights(b):
    """Tsitouras 5(4)'s order-4 continuous extension (Tsitouras 2011, the `b_i(θ)` of its
    interpolant, in factored form)."""
    th = Polynomial([0.0, 1.0])

    def quad(p, q):
        return Polynomial([q, p, 1.0])  # θ² + pθ + q

    polys = [
        -1.0530884977290216 * th * (th - 1.3299890189751412) * quad(-1.4364028541716351, 0.7139816917074209),
        0.1017 * th**2 * quad(-2.1966568338249754, 1.2949852507374631),
        2.490627285651252793 * th**2 * quad(-2.38535645472061657, 1.57803468208092486),
        -16.54810288924490272 * (th - 1.21712927295533244) * (th - 0.61620406037800089) * th**2,
        47.37952196281928122 * (th - 1.203071208372362603) * (th - 0.658047292653547382) * th**2,
        -34.87065786149660974 * (th - 1.2) * (th - 0.666666666666666667) * th**2,
        2.5 * (th - 1) * (th - 0.6) * th**2,
    ]
    return _weights(polys, b, "Tsit5")
