"""Fitting a network to a target function: Adam on fresh samples, then a least-squares head.

Used by NeuralIVP for the initial condition and for restarts (Finzi et al. 2023, sec. 4.2
"last layer linear solves" and "projection to SGD-like regions").
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optax

from pdesolve._xla import reduce_safe_filter_jit


def _values(fn, X):
    return jax.vmap(fn)(X).reshape(X.shape[0], -1)


@reduce_safe_filter_jit
def relative_fit_error(model, target, X) -> jax.Array:
    """`‖model − target‖ / ‖target‖` over the sample points `X` (root mean squares)."""
    diff = _values(model, X) - _values(target, X)
    denom = jnp.sqrt(jnp.mean(jnp.square(_values(target, X))))
    return jnp.sqrt(jnp.mean(jnp.square(diff))) / jnp.where(denom > 0, denom, 1.0)


@reduce_safe_filter_jit
def adam_fit(model, target, domain, key, *, steps: int, batch: int, learning_rate: float):
    """Minimise `mean ‖model(x) − target(x)‖²` with Adam over `steps` fresh uniform batches.

    The learning rate decays from `learning_rate` to 1 % of it along a cosine schedule.
    `target` may be any callable on one point (the initial condition, or a network for a
    restart: a module's arrays are traced, so all restarts share one compilation).
    Cost: `steps` forward/backward passes on `batch` points.
    """
    params, static = eqx.partition(model, eqx.is_inexact_array)
    schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.01)
    optimiser = optax.adam(schedule)
    opt_state = optimiser.init(params)

    def loss(p, X, Y):
        m = eqx.combine(p, static)
        return jnp.mean(jnp.square(_values(m, X) - Y))

    def body(i, carry):
        p, s = carry
        X = domain.sample_interior(jax.random.fold_in(key, i), batch).astype(model_dtype(model))
        Y = jax.lax.stop_gradient(_values(target, X))
        g = jax.grad(loss)(p, X, Y)
        updates, s = optimiser.update(g, s, p)
        return optax.apply_updates(p, updates), s

    params, _ = jax.lax.fori_loop(0, steps, body, (params, opt_state))
    return eqx.combine(params, static)


def model_dtype(model):
    leaves = [x for x in jax.tree.leaves(model) if eqx.is_inexact_array(x)]
    return leaves[0].dtype if leaves else jnp.result_type(float)


@reduce_safe_filter_jit
def tune_head(model, target, domain, key, *, samples: int, ridge: float):
    """Refit the last layer of each output trunk by ridge-regularised least squares (float64).

    Solves `(ΦᵀΦ/n + ρ I) w = ΦᵀY/n` per output component with `Φ = model.head_design(X)`
    on `samples` uniform points and `ρ = ridge · trace(ΦᵀΦ/n) / (width + 1)`, by Cholesky
    through lineax. Cost O(n width²) plus one `(width+1)³` factorisation per component.
    """
    X = domain.sample_interior(key, samples).astype(model_dtype(model))
    Phi = jax.vmap(model.head_design)(X)  # (n, k, h)
    Y = _values(target, X)  # (n, k)
    n = X.shape[0]
    coeffs = []
    for j in range(Phi.shape[1]):
        A = Phi[:, j].T @ Phi[:, j] / n
        rho = ridge * jnp.trace(A) / A.shape[0]
        A = A + rho * jnp.eye(A.shape[0], dtype=A.dtype)
        b = Phi[:, j].T @ Y[:, j] / n
        op = lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag)
        coeffs.append(lx.linear_solve(op, b, lx.Cholesky(), throw=False).value)
    fitted = model.with_head(jnp.stack(coeffs))
    # Keep the Adam head if the solve broke down (non-finite), never a NaN model.
    ok = jnp.all(jnp.isfinite(jnp.stack(coeffs)))
    return jax.tree.map(
        lambda a, b: jnp.where(ok, a, b) if eqx.is_array(a) else a, fitted, model
    )
