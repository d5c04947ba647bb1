"""Shared helpers for ODE tests: random linear systems and jitted solve wrappers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

import pdesolve as pds


def random_linear_system(seed: int, n: int = 3):
    """A random `A` with spectrum in the closed left half plane (|λ| <= 2) and a `y0`."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = -rng.uniform(0.0, 1.5, size=n)
    skew = rng.normal(size=(n, n))
    skew = 0.5 * (skew - skew.T)
    a = q @ np.diag(lam) @ q.T + skew
    a = 2.0 * a / max(1.0, np.abs(np.linalg.eigvals(a)).max())
    y0 = rng.normal(size=n)
    return a, y0


def linear_field(t, y, args):
    return args @ y


def exact_linear(a, y0, t):
    return scipy.linalg.expm(a * t) @ y0


@functools.lru_cache(maxsize=None)
def fixed_step_solver(solver_name: str):
    """A jitted `(A, y0, dt0, t1) -> y(t1)` with constant steps; one compile per method."""
    solver = getattr(pds, solver_name)()

    @jax.jit
    def run(a, y0, dt0, t1):
        prob = pds.NeuralODEProblem(linear_field, y0, (0.0, t1), a)
        return pds.solve(prob, solver, dt0=dt0, max_steps=10_000).ys[-1]

    return run


ALL_METHODS = ["Euler", "Heun", "Midpoint", "Ralston", "Bosh3", "RK4", "Dopri5", "Tsit5"]
ADAPTIVE_METHODS = ["Heun", "Midpoint", "Ralston", "Bosh3", "Dopri5", "Tsit5"]


def as_f64(x):
    return jnp.asarray(x, dtype=jnp.float64)
