"""Explicit Runge–Kutta steps from a `ButcherTableau` (shared by RK-based solvers)."""

import jax
import jax.numpy as jnp

from ._dense import hermite_coefficients, weight_coefficients
from ._integrate import AbstractStepper
from ._results import RESULTS
from ._linear import apply_linear
from ._tableau import ButcherTableau


def combine(y, dt, coeffs, ks):
    """`y + dt Σ_j coeffs[j] ks[j]` leafwise, skipping zero coefficients (static).

    `y=None` means zero. `dt` is cast to each leaf's dtype.
    """
    terms = [(c, k) for c, k in zip(coeffs, ks) if c != 0.0]
    if not terms:
        return y if y is not None else jax.tree.map(jnp.zeros_like, ks[0])

    def leaf(y_leaf, *k_leaves):
        acc = terms[0][0] * k_leaves[0]
        for (c, _), k in zip(terms[1:], k_leaves[1:]):
            acc = acc + c * k
        inc = dt.astype(acc.dtype) * acc
        return inc if y_leaf is None else y_leaf + inc

    kk = [k for _, k in terms]
    if y is None:
        return jax.tree.map(lambda *k: leaf(None, *k), *kk)
    return jax.tree.map(leaf, y, *kk)


def rk_stages(tableau: ButcherTableau, f, t, dt, y, k0=None):
    """The stage derivatives `k_1..k_s` of one explicit RK step, and the last stage's input.

    `k0`, if given, is `f(t, y)` (a first-same-as-last cache). Cost: `s` evaluations of `f`
    (`s - 1` with `k0`).
    """
    ks = [f(t, y) if k0 is None else k0]
    y_stage = y
    for i in range(1, tableau.stages):
        y_stage = combine(y, dt, tableau.a[i - 1], ks)
        ks.append(f(t + tableau.c[i] * dt, y_stage))
    return ks, y_stage


def _rk_step_ks(tableau: ButcherTableau, f, t, dt, y, k0=None):
    dt = jnp.asarray(dt)
    ks, y_stage = rk_stages(tableau, f, t, dt, y, k0)
    y_next = y_stage if tableau.fsal else combine(y, dt, tableau.b, ks)
    y_error = None if tableau.b_error is None else combine(None, dt, tableau.b_error, ks)
    return y_next, y_error, ks


def rk_step(tableau: ButcherTableau, f, t, dt, y, k0=None):
    """One explicit RK step. Returns `(y_next, y_error or None, k_last)`."""
    y_next, y_error, ks = _rk_step_ks(tableau, f, t, dt, y, k0)
    return y_next, y_error, ks[-1]


def rk_dense_coefficients(tableau: ButcherTableau, f, t, dt, y, y_next, ks):
    """The step's interpolating polynomial (`pdesolve._dense`): the tableau's continuous
    extension where it has one, else cubic Hermite with the slopes `ks[0] = f(t, y)` and
    `f(t + dt, y_next)` — the last stage for FSAL tableaus, one more evaluation otherwise."""
    dt = jnp.asarray(dt)
    if tableau.dense is not None:
        return weight_coefficients(y, dt, tableau.dense, ks)
    k_end = ks[-1] if tableau.fsal else f(t + dt, y_next)
    return hermite_coefficients(y, y_next, ks[0], k_end, dt)


def rk_step_looped(tableau: ButcherTableau, f, t, dt, y):
    """One explicit RK step of a flat array state with the stages in a `lax.fori_loop`.

    `f(i, t_i, y_i, k_prev) -> (k_i, info_i)`: the stage derivative at stage `i` (a traced
    index), given the previous stage's derivative `k_prev` (zeros at `i = 0`; e.g. an
    iterative solver's warm start), and a pytree `info_i` of per-stage diagnostics.

    Numerically the same step as `rk_step`, but `f` is traced and compiled once instead of
    `s` times: for an expensive `f` (NeuralIVP's sketch + CG per stage) this divides the
    step's compile time by about `s`. Costs an `(s, p)` buffer of stage derivatives.

    Returns `(y_next, y_error or None, ks, infos)`: `ks` the `(s, p)` stage derivatives,
    `infos` with a leading stage axis.
    """
    dt = jnp.asarray(dt, y.dtype)
    s = tableau.stages
    A = jnp.zeros((s, s), y.dtype)
    for i in range(1, s):
        A = A.at[i, :i].set(jnp.asarray(tableau.a[i - 1], y.dtype))
    c = jnp.asarray(tableau.c, y.dtype)
    info_shape = jax.eval_shape(lambda: f(0, t, y, y)[1])
    infos0 = jax.tree.map(lambda x: jnp.zeros((s,) + x.shape, x.dtype), info_shape)

    def body(i, carry):
        K, infos = carry
        y_i = y + dt * (A[i] @ K)
        k_prev = jnp.where(i > 0, K[jnp.maximum(i - 1, 0)], jnp.zeros_like(y))
        k, info = f(i, t + c[i] * dt, y_i, k_prev)
        infos = jax.tree.map(lambda buf, v: buf.at[i].set(v), infos, info)
        return K.at[i].set(k), infos

    K, infos = jax.lax.fori_loop(0, s, body, (jnp.zeros((s,) + y.shape, y.dtype), infos0))
    y_next = y + dt * (jnp.asarray(tableau.b, y.dtype) @ K)
    y_error = None if tableau.b_error is None else dt * (jnp.asarray(tableau.b_error, y.dtype) @ K)
    return y_next, y_error, K, infos


def rk_increment(tableau: ButcherTableau, f, t, dt, y):
    """The increment `Ψ_h(t, y) = Φ_h(t, y) − y = h Σ b_i k_i` of one explicit RK step,
    computed directly (no cancellation), and the embedded error estimate (or `None`).
    No first-same-as-last cache: `s` evaluations of `f`."""
    dt = jnp.asarray(dt)
    ks, _ = rk_stages(tableau, f, t, dt, y)
    err = None if tableau.b_error is None else combine(None, dt, tableau.b_error, ks)
    return combine(None, dt, tableau.b, ks), err


class RKStepper(AbstractStepper):
    """Adapter from a `ButcherTableau` to the integrator's stepper interface."""

    method: ButcherTableau

    @property
    def init_fevals(self):
        return 1 if self.method.fsal else 0

    @property
    def step_fevals(self):
        return self.method.stages - (1 if self.method.fsal else 0)

    def init(self, f, t0, y0):
        return f(t0, y0) if self.method.fsal else None

    def step(self, f, t, dt, y, state):
        y_next, y_error, k_last = rk_step(self.method, f, t, dt, y, k0=state)
        return y_next, y_error, (k_last if self.method.fsal else None), RESULTS.successful

    @property
    def dense_fevals(self):
        return 0 if (self.method.dense is not None or self.method.fsal) else 1

    def dense_step(self, f, t, dt, y, state):
        y_next, y_error, ks = _rk_step_ks(self.method, f, t, dt, y, k0=state)
        coeffs = rk_dense_coefficients(self.method, f, t, dt, y, y_next, ks)
        return y_next, y_error, (ks[-1] if self.method.fsal else None), RESULTS.successful, coeffs


def ode_rhs(problem):
    """`f(t, y, args)` of a NeuralODEProblem, with its `linear` part (if any) added explicitly."""
    vf = problem.vector_field
    if problem.linear is None:
        return vf
    linear = problem.linear

    def f(t, y, args):
        return jax.tree.map(jnp.add, vf(t, y, args), apply_linear(linear, y))

    return f


