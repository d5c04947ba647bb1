"""Shared helpers for ODE tests: random linear systems, jitted solve wrappers, the lists of
built-in explicit RK methods and `flat` (a pytree's inexact arrays as one vector)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

import pdesolve as pds
from pdesolve.solvers.explicit_rk import METHOD_NAMES


def random_linear_system(seed: int, n: int = 4):
    """A random real `A` (n even) with eigenvalues `-δ ± iω`, `ω ∈ [1, 2]`, `δ ∈ [0, 0.3]`,
    conjugated by a random orthogonal matrix, and a unit-norm `y0`. Oscillatory with mild
    damping, so errors neither vanish nor explode over long horizons."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    blocks = np.zeros((n, n))
    for i in range(0, n, 2):
        w, d = rng.uniform(1.0, 2.0), rng.uniform(0.0, 0.3)
        blocks[i : i + 2, i : i + 2] = [[-d, w], [-w, -d]]
    y0 = rng.normal(size=n)
    return q @ blocks @ q.T, y0 / np.linalg.norm(y0)


def linear_field(t, y, args):
    return args @ y


def exact_linear(a, y0, t):
    return scipy.linalg.expm(a * t) @ y0


@functools.lru_cache(maxsize=None)
def fixed_step_solver(solver_name: str):
    """A jitted `(A, y0, dt0, t0, t1) -> y(t1)` with constant steps from `y(t0) = y0`; one
    compile per method (all arguments traced)."""
    solver = getattr(pds, solver_name)()

    @jax.jit
    def run(a, y0, dt0, t0, t1):
        prob = pds.NeuralODEProblem(linear_field, y0, (t0, t1), a)
        return pds.solve(prob, solver, dt0=dt0, max_steps=10_000).ys[-1]

    return run


#: The built-in explicit RK methods by name (the library's own list), and those with an
#: embedded error estimate (usable with PIDController).
ALL_METHODS = list(METHOD_NAMES)
ADAPTIVE_METHODS = [name for name in METHOD_NAMES if getattr(pds, name).tableau.b_error is not None]


def flat(tree):
    """Every inexact array leaf of `tree` (equinox modules included), raveled and joined:
    one vector, for comparing gradients and taking directional derivatives."""
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))])


def as_f64(x):
    return jnp.asarray(x, dtype=jnp.float64)
