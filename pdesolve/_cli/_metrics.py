"""What a run measured: relative L2 errors, the PINN residual, and each solve's counters.

`_metrics` turns one solve into the numbers of its result-table row (error against the exact
or reference solution, PDE residual, steps, function evaluations, CG iterations, restarts,
final loss, training time); `_rel_l2` is shared with the spiral demo (`pdesolve._demo`).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

import pdesolve as pds
from pdesolve.problems import reference_solution

from ._catalogue import _family


def _flatten_ys(ys):
    return np.asarray(jax.vmap(lambda y: ravel_pytree(y)[0])(ys))


def _rel_l2(y, ref) -> float:
    y, ref = np.asarray(y, dtype=float), np.asarray(ref, dtype=float)
    return float(np.linalg.norm(y - ref) / max(float(np.linalg.norm(ref)), 1e-300))


def _pinn_residual(sol, problem, n=1000, seed=12345) -> float:
    """RMS of the equation's residual of a trained PINN network at random interior points.

    Derivatives by autodiff (`pds.Field`) for DTPINN and PINN alike; evolution problems at
    uniform random times in `tspan`, residual `u_t - rhs`."""
    model = sol.ys
    leaves = [x for x in jax.tree.leaves(model) if eqx.is_inexact_array(x)]
    dtype = leaves[0].dtype if leaves else jnp.result_type(float)
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    X = jnp.asarray(problem.domain.sample_interior(k1, n), dtype=dtype)
    if problem.is_steady:

        def residual_at(x):
            return problem.residual(pds.Field(model, x), x, problem.args)

        r = jax.jit(jax.vmap(residual_at))(X)
    else:
        t0, t1 = (float(t) for t in problem.tspan)
        T = jax.random.uniform(k2, (n,), minval=t0, maxval=t1).astype(dtype)

        def residual_at_time(x, t):
            u = pds.Field(lambda y: model(jnp.concatenate([y, t[None]])), x)
            ut = jax.jvp(lambda s: model(jnp.concatenate([x, s[None]])), (t,), (jnp.ones_like(t),))[1]
            return ut - problem.rhs(u, x, t, problem.args)

        r = jax.jit(jax.vmap(residual_at_time))(X, T)
    r = np.asarray(r, dtype=float)
    return float(np.sqrt(np.mean(r**2)))


def _metrics(name, sol, problem, extra) -> dict:
    """error, residual and stats of one solve, as numbers (None where not available)."""
    st = sol.stats
    m: dict[str, Any] = {"error": None, "residual": None, "steps": None, "fevals": None,
                         "cg": None, "restarts": None, "loss": None, "train": None}
    family = _family(name)
    if family == "ode":
        ref = reference_solution(problem, extra["ts"])
        if sol.successful:
            m["error"] = _rel_l2(_flatten_ys(sol.ys), ref)
        m["steps"] = int(st["num_steps"]) if "num_steps" in st else None
        m["fevals"] = int(st["num_fevals"]) if "num_fevals" in st else None
    elif family == "mol":
        if problem.solution is not None and sol.successful:
            t1 = float(problem.tspan[1])
            X = np.asarray(problem.domain.sample_interior(jax.random.PRNGKey(12345), 2000))
            exact = np.asarray(jax.vmap(lambda x: problem.solution(x, t1))(jax.numpy.asarray(X)))
            m["error"] = _rel_l2(np.asarray(sol(X, t1)), exact)
        m["steps"] = int(st["num_steps"])
        m["fevals"] = int(st["num_fevals"])
    elif family == "NeuralIVP":
        if problem.solution is not None and np.size(st.get("error_history", [])):
            m["error"] = float(np.asarray(st["error_history"])[-1, 1])
        if np.size(st.get("residual_history", [])):
            m["residual"] = float(np.asarray(st["residual_history"])[-1, 1])
        m["steps"] = int(st["num_accepted_steps"])
        m["fevals"] = int(st["num_fevals"])
        m["cg"] = int(np.sum(st["cg_iterations"]))
        m["restarts"] = int(st["restarts"])
    else:
        m["error"] = st.get("relative_l2_error")
        m["residual"] = _pinn_residual(sol, problem)
        m["steps"] = int(st["num_steps"])
        m["loss"] = st.get("final_loss")
        m["train"] = st.get("train_time")
    return m


