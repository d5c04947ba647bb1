"""The XLA:CPU fused-reduction miscompile (pdesolve/_xla.py) and NeuralIVP's guard against it.

NeuralIVP's θ̇ program (Nyström sketch + CG + the residual check) on the default 3 x 100
network at n = 1000 samples: compiled plainly with jaxlib 0.10.2, the residual
`‖(M + μI)x − F‖ / ‖F‖` it reports is 0.25 where the true one is 3e-10. The guarded program
(what NeuralIVP runs) must report the residual recomputed on the host from the vectors.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds
from pdesolve._flat import FlatParams
from pdesolve._xla import reduce_fusion_options, reduce_safe_filter_jit
from pdesolve.solvers import neural_ivp as nivp


def _u0(x):
    return jnp.exp(-jnp.sum(x**2) / (2 * 0.15**2)) * jnp.prod(1 - x**2)


def _rhs(u, x, t, args):
    return -jnp.dot(jnp.array([0.3, -0.2], x.dtype), u.grad)


@pytest.fixture(scope="module")
def stage_setup():
    problem = pds.PDEProblem(rhs=_rhs, u0=_u0, domain=pds.Box([-1.0, -1.0], [1.0, 1.0]), tspan=(0.0, 0.5),
                             bc=pds.Dirichlet(0.0))
    solver = pds.NeuralIVP(n_samples=1000)
    model = nivp._default_model(problem, solver, jax.random.PRNGKey(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    unravel = FlatParams.of(params)
    net = nivp._Net(static, unravel)
    X = problem.domain.sample_interior(jax.random.PRNGKey(3), solver.n_samples)

    def stage(theta, X, key):
        x, info = nivp._theta_dot(solver, problem, net, theta, 0.0, X, key, jnp.zeros_like(theta), 1.0)
        return x, info["residual"], info["lambda_max"]

    @eqx.filter_jit
    def residual_vectors(theta, X, x, lambda_max):  # returned vectors: normed on the host
        op, _, vjp = nivp._gram_operator(net, theta, X)
        F = vjp(net.pde_rhs(problem, theta, X, 0.0))[0] / X.shape[0]
        return op.mv(x) + solver.mu * lambda_max * x - F, F

    def run(jit):
        theta = unravel.ravel(params)
        x, reported, lam = jit(stage)(theta, X, jax.random.PRNGKey(1))
        r, F = residual_vectors(theta, X, x, lam)
        return float(reported), float(np.linalg.norm(np.asarray(r)) / np.linalg.norm(np.asarray(F)))

    return run


def test_the_guard_applies_on_cpu():
    if jax.default_backend() == "cpu":
        assert reduce_fusion_options() == {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def test_neural_ivp_reports_the_true_cg_residual(stage_setup):
    reported, true = stage_setup(reduce_safe_filter_jit)
    assert true < 1e-7  # CG met cg_rtol
    np.testing.assert_allclose(reported, true, rtol=1e-3, atol=1e-12)


@pytest.mark.xfail(reason="XLA:CPU YNN reduce fusion miscompile (jaxlib 0.10.2); passes once fixed upstream",
                   strict=False)
def test_plain_compilation_reports_the_true_cg_residual(stage_setup):
    reported, true = stage_setup(eqx.filter_jit)
    np.testing.assert_allclose(reported, true, rtol=1e-3, atol=1e-12)
