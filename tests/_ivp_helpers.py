"""The 1-D advection problem shared by the NeuralIVP tests: one problem object, so that the
tests solving it with the same solver options share one compiled step (the jit cache keys on
the problem's functions by identity)."""

import jax.numpy as jnp

import pdesolve as pds

C, SIGMA, X0, T = 0.5, 0.2, -0.3, 0.4


def exact(x, t):
    return jnp.exp(-jnp.sum((x - (X0 + C * t)) ** 2) / (2 * SIGMA**2))


def _rhs(u, x, t, args):
    return -C * u.partial(0)


def _u0(x):
    return exact(x, 0.0)


_ZERO_DIRICHLET = pds.Dirichlet(0.0)


def make_advection(bc=_ZERO_DIRICHLET, domain=None):
    return pds.PDEProblem(
        rhs=_rhs, u0=_u0, tspan=(0.0, T),
        domain=pds.Box([-1.0], [1.0]) if domain is None else domain,
        bc=bc, solution=exact,
    )


ADVECTION = make_advection()

SMALL = dict(width=24, depth=2, n_samples=400, n_eval_samples=400, rank=30, fit_steps=400,
             head_samples=3000, fit_batch=400)
SAVE_TS = jnp.array([0.0, T / 2, T])
