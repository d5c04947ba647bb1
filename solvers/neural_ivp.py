"""NeuralIVP: initial-value PDEs by evolving the parameters of a neural network.

Finzi, Potapczynski, Choptuik & Wilson, *A stable and scalable method for solving initial
value PDEs with neural networks*, ICLR 2023.

The solution is represented as `u(x, t) = N(x; θ(t))`. Minimising the instantaneous PDE
residual `‖∂t u − rhs(u)‖²` over θ̇ on `n` Monte-Carlo samples gives the parameter ODE

    (M(θ) + μ̃ I) θ̇ = F(θ),   M = JᵀJ / n,   F = Jᵀ f / n,

with `J = ∂N(x_i; θ)/∂θ` (n x p) and `f_i = rhs(u, x_i, t)`. `M v` costs one JVP and one
transposed JVP (`jax.linearize` + `jax.linear_transpose`): O(n + p) memory, never an
`n x p` or `p x p` array; the system is solved by CG preconditioned with a rank-ℓ
randomized Nyström approximation of `M` (built at every stage, `μ̃ = μ λ_1(M)`). θ is
integrated by any explicit Runge–Kutta tableau (Bosh3 by default) under the suite's step
controllers, with fresh samples for each step shared by its stages.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.flatten_util import ravel_pytree

from pdesolve import _tableau as tab
from pdesolve._boundary import Dirichlet
from pdesolve._checkpoint import check_checkpoint, describe, key_description, problem_computation
from pdesolve._compile_time import CompileTimer
from pdesolve._controllers import PIDController
from pdesolve._driver import AbstractRun, Advanced, Progress, drive
from pdesolve._field import Field
from pdesolve._flat import FlatParams
from pdesolve._geometry import Box
from pdesolve._integrate import (
    conclude_step,
    final_result,
    initial_carry,
    plan_step,
    saved_output,
    still_running,
    validate,
)
from pdesolve._nystrom import NystromPreconditioner, nystrom_cg
from pdesolve._problems import PDEProblem
from pdesolve._results import RESULTS, result_code, result_message
from pdesolve._rk import RKStepper, rk_step_looped
from pdesolve._saveat import SaveAt
from pdesolve._sharding import check_batch, check_mesh, constrain_leading, replicate, shard_leading
from pdesolve._sinusoidal_mlp import AbstractLinearHead, SinusoidalMLP
from pdesolve._solution import FieldSolution
from pdesolve._solve import AbstractSolver, register
from pdesolve._step_options import StepOptions
from pdesolve._tableau import ButcherTableau
from pdesolve._validation import check_int
from pdesolve._xla import reduce_safe_filter_jit

from ._neural_ivp_fit import adam_fit, model_dtype, relative_fit_error, tune_head

__all__ = ["NeuralIVP", "RestartPolicy"]


class RestartPolicy(eqx.Module):
    """When NeuralIVP refits θ to its own current function ("restart", Finzi et al. sec. 4.2).

    Following the parameter ODE drifts θ into badly conditioned regions; a restart fits a
    freshly initialised network to the current solution `N(·; θ(t))` by Adam and the
    least-squares head (the same procedure as the initial fit), which moves θ back to a
    well-conditioned, SGD-like region without changing the represented function (up to the
    fit error, reported in `stats["restart_fit_errors"]`).

    A restart happens after an accepted step when any enabled rule fires:

    * `max_cg_iterations`: a stage's CG solve needed more iterations than this;
    * `max_condition`: the preconditioned condition estimate `(λ_ℓ + μ̃) / μ̃` of the step
      (the bound on `κ(P⁻¹(M + μ̃I))` from the Nyström sketch) exceeded this;
    * `time_fraction` (the reference code's rule, `LogTimer(timeFrac=1/2)`): the wall time
      since the last restart exceeds `min_period` seconds and the average restart duration
      divided by `time_fraction` — restarts then take at most about that fraction of the
      run. Wall-clock based, so not reproducible run to run; off by default.

    Also, a step whose CG solve fails to reach the tolerance triggers one restart and a
    retry of the step before the solve is declared failed (`RESULTS.linear_solve_failed`).

    **Arguments:**

    - `max_cg_iterations`: int or None (default 150).
    - `max_condition`: float or None (default 1e4).
    - `time_fraction`: float in (0, 1] or None (default None; the reference uses 0.5).
    - `min_period`: seconds, default 0.
    - `max_restarts`: upper bound on the number of restarts (default 50).
    """

    max_cg_iterations: int | None = 150
    max_condition: float | None = 1e4
    time_fraction: float | None = None
    min_period: float = 0.0
    max_restarts: int = 50

    def __check_init__(self):
        if self.max_cg_iterations is not None and self.max_cg_iterations < 1:
            raise ValueError(f"`max_cg_iterations` must be >= 1 or None; got {self.max_cg_iterations}.")
        if self.max_condition is not None and not self.max_condition > 1:
            raise ValueError(f"`max_condition` must be > 1 or None; got {self.max_condition}.")
        if self.time_fraction is not None and not 0 < self.time_fraction <= 1:
            raise ValueError(f"`time_fraction` must lie in (0, 1] or be None; got {self.time_fraction}.")
        if self.max_restarts < 0:
            raise ValueError(f"`max_restarts` must be >= 0; got {self.max_restarts}.")

    def reason(self, cg_iterations: int, condition: float, since_last: float, avg_duration: float):
        """The name of the first rule that fires, or `None`."""
        if self.max_cg_iterations is not None and cg_iterations > self.max_cg_iterations:
            return "cg_iterations"
        if self.max_condition is not None and condition > self.max_condition:
            return "condition"
        if (
            self.time_fraction is not None
            and since_last > self.min_period
            and since_last > avg_duration / self.time_fraction
        ):
            return "time"
        return None


# When a step's CG fails even after a restart, μ is raised by this factor (up to the ceiling) and
# the step retried: at μ = 1e-8 the rank-ℓ sketch cannot precondition a Gram matrix of rank
# <= n << p (Fokker–Planck d = 8, n = 1000: CG 500 iterations, linear_solve_failed), at 1e-6 it
# can. Each raise is recorded in stats["mu_history"].
MU_RAISE = 100.0
MU_CEILING = 1e-4

# The n_samples rule (docs/neural-ivp.md): θ̇ is the least-squares fit of the PDE on the
# step's n samples, so n must cover the domain (a floor, and a number per dimension) and
# the Gram matrix M = JᵀJ/n (rank <= n k) must have at least the Nyström sketch's rank.
MIN_SAMPLES = 64
SAMPLES_PER_DIM = 32


def min_samples(solver, dim: int, num_parameters: int, num_outputs: int = 1) -> int:
    """The smallest `n_samples` NeuralIVP accepts for a problem of dimension `dim`, a network
    with `num_parameters` parameters and `num_outputs` components:
    `max(64, 32·dim, ceil(min(rank, p) / k))` (the last term for `linear_solver="cg"`)."""
    need = max(MIN_SAMPLES, SAMPLES_PER_DIM * dim)
    if solver.linear_solver == "cg":
        need = max(need, -(-min(solver.rank, num_parameters) // max(num_outputs, 1)))
    return need


def _check_n_samples(solver, dim, p, k):
    need = min_samples(solver, dim, p, k)
    if solver.n_samples < need:
        rank_part = (f", Nyström rank min(rank, p) / k = ceil({min(solver.rank, p)} / {k})"
                     if solver.linear_solver == "cg" else "")
        raise ValueError(
            f"NeuralIVP: `n_samples`={solver.n_samples} is too few for this problem; the minimum is "
            f"{need} = max({MIN_SAMPLES}, {SAMPLES_PER_DIM} x dimension {dim}{rank_part}). Each step fits θ̇ "
            f"to the PDE on these samples only: with too few the Gram matrix M = JᵀJ/n (rank <= "
            f"n_samples x {k}, for {p} parameters) fits those points and misses the rest of the domain, "
            f"while the run still reports success. Pass NeuralIVP(n_samples={need}) or more (default 5000)."
        )


#: NeuralIVP's integer options: their minimum and what they mean (for the error messages).
_INT_OPTIONS = {
    "width": (1, "the default model's hidden width"),
    "depth": (1, "the default model's number of hidden layers"),
    "n_frequencies": (0, "the default model's highest embedding frequency power L"),
    "n_samples": (1, "the number of Monte-Carlo samples per step"),
    "n_eval_samples": (1, "the number of samples of the residual and error histories"),
    "rank": (1, "the rank of the Nyström preconditioner"),
    "cg_max_steps": (1, "CG's iteration cap"),
    "fit_steps": (0, "the number of Adam steps of the fit to u0"),
    "fit_batch": (1, "the number of points per Adam step of the fit to u0"),
    "head_samples": (1, "the number of points of the last layer's least-squares fit"),
}


class NeuralIVP(AbstractSolver):
    """Neural-IVP (Finzi et al., ICLR 2023) for `PDEProblem(rhs=..., u0=..., domain=Box)`.

    **Method.** `u(x, t) = N(x; θ(t))` with θ following `(M + μ̃ I) θ̇ = F` (see the module
    docstring). Each step draws `n_samples` fresh uniform samples, builds a rank-`rank`
    Nyström preconditioner of `M(θ_n)` (`rank` products with `M`), and solves one linear
    system per Runge–Kutta stage by preconditioned CG to `‖r‖ <= cg_rtol ‖F‖`. Cost per
    stage: (CG iterations + 1) x (one JVP + one VJP of the network on n points) — linear in
    the parameter count p; memory O(n + p ℓ).

    **Arguments** (all keyword):

    - `model`: an equinox module mapping ONE point `(d,)` to `()` or `(k,)`; default a
      `SinusoidalMLP` (3 x 100 swish on a sinusoidal embedding with L = 5, α = 1, scale
      1.5, one trunk per component, bump factor for zero Dirichlet conditions). A user
      model must satisfy the boundary condition itself; head tuning needs a
      `pds.AbstractLinearHead` (as `SinusoidalMLP` is) and is skipped otherwise.
    - `width`, `depth`, `activation`, `n_frequencies`: the default model's shape.
    - `tableau`: any explicit `ButcherTableau` (default Bosh3 = RK23). Adaptive control
      needs an embedded pair.
    - `n_samples`: Monte-Carlo samples per step (default 5000, as the reference code). At
      least `max(64, 32·d, ceil(min(rank, p) / k))` for dimension d, p parameters and k
      components (the last term with `linear_solver="cg"`): θ̇ fits the PDE on these samples
      only, so fewer fit a handful of points while the run reports success; refused with a
      `ValueError` (below 64 at construction, the rest at `solve`).
    - `n_eval_samples`: independent samples for the residual / error histories (2000).
    - `rank`: Nyström rank ℓ (default 100; the paper uses 100–300).
    - `mu`: relative regularisation, `μ̃ = mu · λ_1` (default 1e-8, the reference code's
      `1e-8 λ_max`). It decides the accuracy: on a 2-D bump advected over half its width
      (docs/neural-ivp.md, "Accuracy") the error at T is 1.7e-3 at 1e-8 and 1.7e-2 at 1e-6,
      for ~30 instead of ~7 CG iterations per solve.
    - `cg_rtol`, `cg_max_steps`: CG tolerance (1e-7, as the paper) and iteration cap (500).
      CG stops on the relative residual alone (`ResidualCG`), as the reference code.
    - `linear_solver`: `"cg"` (the method) or `"dense"` — EDNN (Du & Zaki 2021): form J
      (n x p) and `M + μ̃I` and solve by Cholesky; O(n p + p²) memory, O(n p² + p³) time;
      refused above `dense_memory_budget` bytes (default 4 GiB).
    - `fit_steps`, `fit_batch`, `fit_learning_rate`: the Adam fit to `u0` (and restarts);
      default 8000 x 1000 points (the reference: 100 000 x 10 000). The fit error at t = 0
      is a floor for the error at every later time (3.7e-3 after 2000 steps, 1.3e-3 after
      8000 on the bump above).
    - `head_tuning`, `head_samples`, `head_ridge`: the float64 least-squares fit of the last
      layer after Adam (on by default).
    - `restart`: a `RestartPolicy`, or `None` for no restarts.

    **solve options:** `controller` (default `PIDController(rtol=1e-4, atol=1e-4)`, the
    reference's RK23 tolerance; or `dt0=` for constant steps), `saveat` (`ts`, `t0`, `t1`;
    not `steps`), `max_steps`, `throw`, `progress`, `key`; `checkpoint=pds.Checkpoint(...)`
    (save every K attempted steps, resume bit for bit; docs/checkpoint.md); `mesh=` a
    `jax.sharding.Mesh` splitting the samples over its devices, θ replicated (`n_samples`
    a multiple of the device count; docs/scaling.md).

    **Solution:** `ts`; `ys` = flat θ at `ts` (shape `(len(ts), p)`); `sol(x, t)` evaluates
    the network at points `x` (`(d,)` or `(m, d)`) for `t` in `ts` (`t=None`: the last);
    `stats` with `cg_iterations`, `cg_residuals`, `cg_results` (one entry per CG solve),
    `num_accepted_steps`, `num_rejected_steps`, `num_fevals` (θ̇ solves), `restarts`,
    `restart_times`, `mu_history` (`(t, μ)` each time μ was raised ×100 because CG failed
    after a restart; empty normally), `residual_history` (`(t, ‖Jθ̇ − f‖/‖f‖)` on independent samples at
    each accepted step), `error_history` (relative L2 error vs `problem.solution`, if
    any), `condition_history`, `lambda_max_history`, `fit_error`, `num_parameters`,
    `wall_time`, `compile_time` (seconds spent tracing and compiling during this solve) and
    `num_compilations` (XLA programs compiled; 0 for a repeated solve of the same problem
    and options), `model` (the network at the final time).

    Requires float64 (`jax.config.update("jax_enable_x64", True)`): the systems have
    condition numbers up to `1/μ` (1e8 at the default) and CG is asked for 1e-7.
    """

    model: Any = None
    width: int = 100
    depth: int = 3
    activation: Callable = jax.nn.swish
    n_frequencies: int = 5
    tableau: ButcherTableau = tab.BOSH3
    n_samples: int = 5000
    n_eval_samples: int = 2000
    rank: int = 100
    mu: float = 1e-8
    cg_rtol: float = 1e-7
    cg_max_steps: int = 500
    linear_solver: str = "cg"
    dense_memory_budget: float = 4 * 2**30
    fit_steps: int = 8000
    fit_batch: int = 1000
    fit_learning_rate: float = 3e-3
    head_tuning: bool = True
    head_samples: int = 20000
    head_ridge: float = 1e-10
    restart: RestartPolicy | None = RestartPolicy()

    def __check_init__(self):
        if self.model is not None and not callable(self.model):
            raise TypeError(f"`model` must be a callable equinox module or None; got {type(self.model).__name__}.")
        for name, (minimum, meaning) in _INT_OPTIONS.items():
            check_int(name, getattr(self, name), minimum, hint=f"NeuralIVP({name}=...) is {meaning}.")
        if self.n_samples < MIN_SAMPLES:
            raise ValueError(
                f"`n_samples` must be >= {MIN_SAMPLES} (and, at solve, >= 32 x the dimension and the "
                f"Nyström rank; see docs/neural-ivp.md); got {self.n_samples}. Too few samples fit θ̇ to "
                f"a handful of points and the run drifts while reporting success."
            )
        if not isinstance(self.tableau, ButcherTableau):
            raise TypeError(f"`tableau` must be a pds.ButcherTableau; got {type(self.tableau).__name__}.")
        if self.linear_solver not in ("cg", "dense"):
            raise ValueError(f"`linear_solver` must be 'cg' (Nyström-preconditioned CG) or 'dense' (EDNN); got {self.linear_solver!r}.")
        if not self.mu > 0:
            raise ValueError(f"`mu` (relative regularisation) must be > 0; got {self.mu}.")
        if not 0 < self.cg_rtol < 1:
            raise ValueError(f"`cg_rtol` must lie in (0, 1); got {self.cg_rtol}.")
        if self.restart is not None and not isinstance(self.restart, RestartPolicy):
            raise TypeError(f"`restart` must be a pds.RestartPolicy or None; got {type(self.restart).__name__}.")


# ---------------------------------------------------------------------------------------------
# problem checks
# ---------------------------------------------------------------------------------------------


def _is_zero_constant(g) -> bool:
    if callable(g):
        return False
    try:
        return bool(np.all(np.asarray(g) == 0))
    except (TypeError, ValueError):
        return False


def _check_problem(problem: PDEProblem, solver: NeuralIVP):
    if problem.is_steady:
        raise ValueError(
            "NeuralIVP solves initial-value problems `PDEProblem(rhs=..., u0=..., tspan=...)`; "
            "this problem is steady (`residual=`). Use pds.DTPINN or pds.PINN."
        )
    if problem.backward:
        raise ValueError("NeuralIVP integrates forward in time only; give tspan with t0 < t1.")
    if not isinstance(problem.domain, Box):
        raise ValueError(
            f"NeuralIVP supports a pds.Box domain (zero Dirichlet conditions are built into the "
            f"network by a bump factor on the box); got {type(problem.domain).__name__}. Map "
            f"your domain into a box, or use pds.DTPINN/pds.PINN for general domains."
        )
    bc = problem.bc
    if bc is not None and not (isinstance(bc, Dirichlet) and _is_zero_constant(bc.g)):
        raise ValueError(
            f"NeuralIVP supports zero Dirichlet conditions (`bc=pds.Dirichlet(0.0)`, enforced "
            f"exactly by the network's bump factor) or `bc=None` (no boundary condition, e.g. "
            f"a solution that decays inside the box); got {type(bc).__name__}"
            f"{'' if not isinstance(bc, Dirichlet) else ' with a nonzero or callable g'}. "
            f"Subtract a lift of the boundary data to get homogeneous conditions."
        )
    if jnp.result_type(float) != jnp.float64:
        raise ValueError(
            "NeuralIVP needs float64: the parameter ODE's linear systems have condition numbers "
            "up to 1/mu (1e8 at the default) and CG is asked for cg_rtol ~ 1e-7. Enable it at program start "
            "with `jax.config.update('jax_enable_x64', True)`."
        )


def _default_model(problem: PDEProblem, solver: NeuralIVP, key):
    lower, upper = problem.domain.bounding_box()
    x = jnp.asarray((lower + upper) / 2)
    u0 = problem.u0
    assert u0 is not None  # NeuralIVP solves evolution problems, which PDEProblem gives a `u0`
    shape = jnp.shape(u0(x))
    # Everything but the key is static (plain floats and tuples): one compiled initialiser
    # per network shape instead of ~40 one-op programs, shared by the restarts.
    return _init_mlp(
        key,
        problem.dim,
        tuple(float(v) for v in np.ravel(lower)),
        tuple(float(v) for v in np.ravel(upper)),
        n_outputs=None if shape == () else shape[0],
        width=solver.width,
        depth=solver.depth,
        activation=solver.activation,
        n_frequencies=solver.n_frequencies,
        bump=problem.bc is not None,
    )


@eqx.filter_jit
def _init_mlp(key, dim, lower, upper, **options):
    return SinusoidalMLP(key, dim, np.asarray(lower), np.asarray(upper), **options)


# ---------------------------------------------------------------------------------------------
# the parameter ODE
# ---------------------------------------------------------------------------------------------


class _Net(eqx.Module):
    """The model as a function of (flat θ, x)."""

    static: Any
    unravel: Callable

    def model(self, theta):
        return eqx.combine(self.unravel(theta), self.static)

    def outputs(self, theta, X):
        m = self.model(theta)
        return jax.vmap(m)(X).reshape(X.shape[0], -1)

    def pde_rhs(self, problem, theta, X, t):
        m = self.model(theta)
        f = jax.vmap(lambda x: problem.rhs(Field(m, x), x, t, problem.args))(X)
        return f.reshape(X.shape[0], -1)


def _gram_operator(net: _Net, theta, X):
    """`v -> Jᵀ(J v)/n` as a lineax operator, by jax.linearize + jax.linear_transpose."""
    n = X.shape[0]
    _, jvp = jax.linearize(lambda th: net.outputs(th, X), theta)
    vjp = jax.linear_transpose(jvp, theta)

    def mv(v):
        return vjp(jvp(v))[0] / n

    struct = jax.ShapeDtypeStruct(theta.shape, theta.dtype)
    op = lx.FunctionLinearOperator(mv, struct, tags=(lx.symmetric_tag, lx.positive_semidefinite_tag))
    return op, jvp, vjp


def _power_lambda_max(A, iterations=30):
    v = jnp.ones(A.shape[0], A.dtype) / math.sqrt(A.shape[0])

    def body(_, v):
        w = A @ v
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(A.dtype).tiny)

    v = jax.lax.fori_loop(0, iterations, body, v)
    return v @ (A @ v)


def _theta_dot_cg(solver, problem, net, theta, t, X, key, x0=None, mu_scale=1.0):
    """θ̇ from `(M + μ̃ I) θ̇ = F` by Nyström-preconditioned CG at (t, θ) on samples `X`.

    The rank-ℓ sketch is built here, at this θ (ℓ products with `M`): a sketch from a
    nearby θ is a poor preconditioner once μ̃ is tiny, because its complement scaling
    `1/(λ_ℓ + μ̃)` amplifies every direction the old sketch missed (measured: 3 CG
    iterations at θ_n, 200–500 at the next stage's θ). The info dict adds the sketch's
    λ_1 and the preconditioned condition estimate `(λ_ℓ + μ̃) / μ̃`."""
    op, _, vjp = _gram_operator(net, theta, X)
    precond = NystromPreconditioner.build(op, min(solver.rank, theta.shape[0]), key=key)
    f = net.pde_rhs(problem, theta, X, t)
    F = vjp(f)[0] / X.shape[0]
    mu_abs = solver.mu * mu_scale * precond.lambda_max
    x, info = nystrom_cg(
        op, F, precond, mu=mu_abs, rtol=solver.cg_rtol, max_steps=solver.cg_max_steps, x0=x0
    )
    info["lambda_max"] = precond.lambda_max
    info["condition"] = (precond.eigenvalues[-1] + mu_abs) / mu_abs
    return x, info


def _theta_dot_dense(solver, problem, net, theta, t, X, mu_scale=1.0):
    n = X.shape[0]
    # Per-point reverse-mode Jacobians, vmapped: O(n p) work. (jax.jacrev of the batched
    # outputs would pull back n one-hot cotangents through all n points: O(n² p).)
    J = jax.vmap(jax.jacrev(lambda th, x: net.outputs(th, x[None]).ravel()), in_axes=(None, 0))(
        theta, X
    ).reshape(-1, theta.shape[0])  # (n k, p), rows ordered point-major like outputs().ravel()
    f = net.pde_rhs(problem, theta, X, t).ravel()
    M = J.T @ J / n
    lambda_max = _power_lambda_max(M)
    mu_abs = solver.mu * mu_scale * lambda_max
    A = M + mu_abs * jnp.eye(M.shape[0], dtype=M.dtype)
    F = J.T @ f / n
    sol = lx.linear_solve(lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag), F, lx.Cholesky(), throw=False)
    x = sol.value
    residual = jnp.linalg.norm(A @ x - F) / jnp.maximum(jnp.linalg.norm(F), jnp.finfo(F.dtype).tiny)
    ok = jnp.all(jnp.isfinite(x)) & (residual < 1e-6)
    info = dict(
        iterations=jnp.zeros((), jnp.int32),
        residual=residual,
        result=RESULTS.where(ok, RESULTS.successful, RESULTS.linear_solve_failed),
        lambda_max=lambda_max,
        condition=jnp.asarray(jnp.nan, M.dtype),  # no sketch: not estimated
    )
    return x, info


def _residual_and_error(problem, net, theta, theta_dot, t, Xe):
    """Out-of-sample diagnostics at (t, θ): the PDE residual `‖J θ̇ − f‖ / ‖f‖` on the
    points `Xe`, and the relative L2 error against `problem.solution` (NaN without one)."""
    tiny = jnp.finfo(theta.dtype).tiny
    _, jvp = jax.linearize(lambda th: net.outputs(th, Xe), theta)
    f = net.pde_rhs(problem, theta, Xe, t)
    r = jvp(theta_dot) - f
    residual = jnp.sqrt(jnp.sum(r**2)) / jnp.maximum(jnp.sqrt(jnp.sum(f**2)), tiny)
    if problem.solution is None:
        return residual, jnp.asarray(jnp.nan, theta.dtype)
    exact = jax.vmap(lambda x: problem.solution(x, t))(Xe).reshape(Xe.shape[0], -1)
    diff = net.outputs(theta, Xe) - exact
    error = jnp.sqrt(jnp.sum(diff**2)) / jnp.maximum(jnp.sqrt(jnp.sum(exact**2)), tiny)
    return residual, error


def _theta_dot(solver, problem, net, theta, t, X, key, x0, mu_scale):
    """θ̇ at (t, θ) on the samples `X` by the solver's linear solver, and its info dict
    (`iterations`, `residual`, `result` as an int code, `lambda_max`, `condition`).
    `x0` warm-starts CG (ignored by the dense solver)."""
    if solver.linear_solver == "cg":
        x, info = _theta_dot_cg(solver, problem, net, theta, t, X, key, x0, mu_scale)
    else:
        x, info = _theta_dot_dense(solver, problem, net, theta, t, X, mu_scale)
    info = dict(info, result=result_code(info["result"]), iterations=jnp.asarray(info["iterations"], jnp.int32))
    return x, info


@reduce_safe_filter_jit
def _theta_dot_jit(solver, problem, net, theta, t, X, key, mu_scale):
    """One θ̇ solve, compiled once per solve: the controller's initial-step heuristic calls
    it twice (run eagerly, its solves cost 3x and compiled ~385 one-op programs)."""
    return _theta_dot(solver, problem, net, theta, t, X, key, jnp.zeros_like(theta), mu_scale)[0]


def _rk_attempt(solver, problem, net, theta, t, dt, key, mu_scale, mesh=None):
    """One Runge–Kutta step of the parameter ODE on fresh samples (no controller).

    The stages run in a `lax.fori_loop` (`rk_step_looped`): the θ̇ solve (sketch + CG) is
    compiled once, not once per stage. CG warm-starts from the previous stage's θ̇ (same
    samples, nearby θ); each stage draws its own sketch (key folded with the stage index).
    Also returns out-of-sample diagnostics at the step's start (t, θ_n), with θ̇ the first
    stage's solution. With a `mesh` the samples are split over its devices (θ replicated):
    GSPMD all-reduces `Jᵀw`, `F` and the sketch's products."""
    key_x, key_p, key_e = jax.random.split(key, 3)
    domain = problem.domain
    X = constrain_leading(domain.sample_interior(key_x, solver.n_samples).astype(theta.dtype), mesh)

    def stage(i, s, th, k_prev):
        return _theta_dot(solver, problem, net, th, s, X, jax.random.fold_in(key_p, i), k_prev, mu_scale)

    theta_next, theta_err, ks, infos = rk_step_looped(solver.tableau, stage, t, dt, theta)
    Xe = constrain_leading(domain.sample_interior(key_e, solver.n_eval_samples).astype(theta.dtype), mesh)
    residual, error = _residual_and_error(problem, net, theta, ks[0], t, Xe)
    return dict(
        theta=theta_next,
        theta_err=theta_err,
        linear_ok=jnp.all(infos["result"] == result_code(RESULTS.successful)),
        stage=dict(iterations=infos["iterations"], residual=infos["residual"], result=infos["result"]),
        condition=infos["condition"][0],
        lambda_max=infos["lambda_max"][0],
        residual=residual,
        error=error,
    )


@reduce_safe_filter_jit
def _attempt_step(solver, problem, net, controller, carry, save_s, t1, key, mu_scale, max_steps, mesh=None):
    """One iteration of the suite's stepping loop (`pdesolve._integrate`: `plan_step`, the
    step, `conclude_step`), compiled once per solve: landing on saved times, the
    controller's verdict and proposal, failure codes, non-finite bookkeeping and saving are
    the integrator's own. A save-only iteration (a saved time equal to the current time)
    skips the step (`lax.cond`). The step's samples are keyed by the attempt count
    `n_acc + n_rej`, so a resumed run draws the same ones.

    Returns the new loop state and the step's diagnostics (`info`) for the host loop."""
    theta, t = carry["y"], carry["t"]
    eps = jnp.finfo(theta.dtype).eps
    plan = plan_step(carry, save_s, t1, eps)
    key = jax.random.fold_in(key, carry["n_acc"] + carry["n_rej"])

    def attempt(_):
        return _rk_attempt(solver, problem, net, theta, t, plan["dt"], key, mu_scale, mesh)

    def idle(_):  # dt = 0: the state stays, no θ̇ solve
        zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(attempt, None))
        return dict(zeros, theta=theta, linear_ok=jnp.asarray(True))

    out = jax.lax.cond(plan["zero"], idle, attempt, None)
    step_result = RESULTS.where(out["linear_ok"], RESULTS.successful, RESULTS.linear_solve_failed)
    new = conclude_step(carry, plan, out["theta"], out["theta_err"], carry["step"], step_result,
                        controller=controller, error_order=solver.tableau.error_order, eps=eps)
    info = {k: out[k] for k in ("stage", "condition", "lambda_max", "residual", "error")}
    info.update(
        zero=plan["zero"],
        taken=new["n_acc"] > carry["n_acc"],
        linear_failed=~out["linear_ok"],
        t=t,
        t_new=new["t"],
        n_steps=new["n_acc"] + new["n_rej"],
        running=still_running(new, t1, int(save_s.shape[0]), max_steps),
    )
    return new, info


def _final_diagnostics(solver, problem, net, theta, t, key, mu_scale, mesh=None):
    """The residual and error at the final (t, θ): one θ̇ solve on fresh samples, by the
    program already compiled for the controller's initial step."""
    key_x, key_p, key_e = jax.random.split(key, 3)
    X = problem.domain.sample_interior(key_x, solver.n_samples).astype(theta.dtype)
    Xe = problem.domain.sample_interior(key_e, solver.n_eval_samples).astype(theta.dtype)
    if mesh is not None:
        X, Xe = shard_leading(X, mesh), shard_leading(Xe, mesh, strict=False)
    theta_dot = _theta_dot_jit(solver, problem, net, theta, t, X, key_p, mu_scale)
    return _residual_and_error_jit(problem, net, theta, theta_dot, t, Xe)


_residual_and_error_jit = reduce_safe_filter_jit(_residual_and_error)


# ---------------------------------------------------------------------------------------------
# fitting (initial condition and restarts)
# ---------------------------------------------------------------------------------------------


def _fit(solver, problem, model, target, key):
    """Adam fit of `model` to `target`, then the least-squares head; returns the model and
    the relative L2 fit errors after Adam and after the head solve."""
    key_adam, key_head, key_eval = jax.random.split(key, 3)
    fitted = adam_fit(
        model, target, problem.domain, key_adam,
        steps=solver.fit_steps, batch=solver.fit_batch, learning_rate=solver.fit_learning_rate,
    )
    X = problem.domain.sample_interior(key_eval, solver.n_eval_samples).astype(model_dtype(model))
    err_adam = float(relative_fit_error(fitted, target, X))
    if solver.head_tuning and isinstance(fitted, AbstractLinearHead):
        tuned = tune_head(fitted, target, problem.domain, key_head, samples=solver.head_samples,
                          ridge=solver.head_ridge)
        err = float(relative_fit_error(tuned, target, X))
        if err <= err_adam:  # the ridge solve minimises the same loss: keep it unless worse
            fitted = tuned
        else:
            err = err_adam
    else:
        err = err_adam
    return fitted, err_adam, err


# ---------------------------------------------------------------------------------------------
# the driver (host loop: one compiled step function, restarts and bookkeeping in Python)
# ---------------------------------------------------------------------------------------------


def _check_dense_budget(solver, p, k):
    need = 8.0 * (solver.n_samples * k * p * 2 + 2 * p * p)
    if need > solver.dense_memory_budget:
        raise ValueError(
            f"NeuralIVP(linear_solver='dense') would need about {need / 2**30:.1f} GiB for the "
            f"{solver.n_samples * k} x {p} Jacobian and the {p} x {p} matrix, over "
            f"`dense_memory_budget`={solver.dense_memory_budget / 2**30:.1f} GiB. Use "
            f"linear_solver='cg' (matrix-free, O(n + p) memory), fewer `n_samples`, a smaller "
            f"network, or raise `dense_memory_budget`."
        )


def _check_saveat(saveat: SaveAt) -> None:
    if saveat.steps:
        raise ValueError(
            "NeuralIVP does not support SaveAt(steps=True) (each saved θ has p entries); "
            "list the times you need in SaveAt(ts=...)."
        )
    if saveat.dense:
        raise ValueError(
            "NeuralIVP does not support SaveAt(dense=True) (an interpolant would store several "
            "θ of p entries per step); list the times you need in SaveAt(ts=...)."
        )


@register(PDEProblem, NeuralIVP)
def _solve_neural_ivp(problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key,
                      checkpoint=None, mesh=None):
    _check_problem(problem, solver)
    checkpoint = check_checkpoint(checkpoint, "NeuralIVP")
    with CompileTimer() as timer:  # (the checkpoint's lock is held by the driver)
        sol = _run(problem, solver, saveat=saveat, dt0=dt0, controller=controller, max_steps=max_steps,
                   throw=throw, progress=progress, key=key, checkpoint=checkpoint, mesh=mesh)
    sol.stats.update(compile_time=timer.seconds, num_compilations=timer.programs)
    return sol


def _run(problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, checkpoint, mesh):
    if mesh is not None:  # Monte-Carlo samples split over the devices, θ replicated
        mesh = check_mesh(mesh)
        check_batch(solver.n_samples, mesh, "NeuralIVP n_samples", "pass NeuralIVP(n_samples=...)")
    wall0 = time.perf_counter()
    t0, t1 = (float(s) for s in problem.tspan)
    if controller is None and dt0 is None:
        controller = PIDController(rtol=1e-4, atol=1e-4)
    options = StepOptions.of(saveat=saveat, controller=controller, dt0=dt0, max_steps=max_steps,
                             throw=throw, progress=progress)
    controller = options.controller
    validate(RKStepper(solver.tableau), options, t0, t1, backward=False)
    _check_saveat(saveat)
    key = jax.random.PRNGKey(0) if key is None else key
    key_init, key_fit, key_loop = jax.random.split(key, 3)
    fingerprint = None
    if checkpoint is not None:  # options, key, and what the equation computes (traced)
        value_shape = tuple(jax.eval_shape(problem.u0, jax.ShapeDtypeStruct((problem.dim,), jnp.float64)).shape)
        fingerprint = dict(problem=describe(problem), solver=describe(solver), controller=describe(controller),
                           dt0=describe(dt0), saveat=describe(saveat), key=key_description(key),
                           computation=problem_computation(problem, value_shape, jnp.float64))
    resuming = checkpoint is not None and checkpoint.resume

    model = solver.model if solver.model is not None else _default_model(problem, solver, key_init)
    if model_dtype(model) != jnp.float64:
        raise ValueError(
            f"NeuralIVP needs a float64 model; the given model's parameters are "
            f"{model_dtype(model)}. Build it with dtype=jnp.float64 (and enable x64)."
        )
    n_params = sum(int(np.size(x)) for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    n_out = int(np.prod(jax.eval_shape(problem.u0, jax.ShapeDtypeStruct((problem.dim,), jnp.float64)).shape))
    _check_n_samples(solver, problem.dim, n_params, n_out)
    if resuming:  # the parameters come from the checkpoint: no initial fit
        fit_error_adam = fit_error = math.nan
    else:
        model, fit_error_adam, fit_error = _fit(solver, problem, model, problem.u0, key_fit)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    unravel = FlatParams.of(params)  # hashable: repeated solves reuse the compiled step
    theta = unravel.ravel(params)
    p = theta.shape[0]
    k = int(np.prod(jnp.shape(problem.u0(jnp.zeros(problem.dim)))))
    if solver.linear_solver == "dense":
        _check_dense_budget(solver, p, k)
    net = _Net(static, unravel)

    dtype = theta.dtype
    # The controller's initial step (if it picks one) sees θ̇ on one fixed sample set.
    X_init = problem.domain.sample_interior(jax.random.fold_in(key_loop, 2**31 - 1), solver.n_samples).astype(dtype)
    if mesh is not None:
        X_init, theta = shard_leading(X_init, mesh), replicate(theta, mesh)

    def f_init(s, th, args=None):
        del args
        return _theta_dot_jit(solver, problem, net, th, s, X_init, key_loop, jnp.asarray(1.0, dtype))

    def init_controller(th):
        return controller.init(f_init, jnp.asarray(t0, dtype), jnp.asarray(t1, dtype), th,
                               dt0, None, solver.tableau.error_order)

    if resuming:
        dt, ctrl_state = None, jax.eval_shape(init_controller, theta)[1]  # a template
    else:
        dt, ctrl_state = init_controller(theta)
        dt = float(dt)

    # The loop state is the shared integrator's (pdesolve._integrate); saved θs are buffered in it.
    save_s = jnp.zeros((0,), dtype) if saveat.ts is None else jnp.asarray(saveat.ts, dtype).ravel()
    n_ts = int(save_s.shape[0])
    carry = initial_carry(jnp.asarray(t0, dtype), theta, jnp.asarray(0.0 if dt is None else dt, dtype), ctrl_state,
                          None, RESULTS.successful, n_ts=n_ts, dtype=dtype)
    s1 = jnp.asarray(t1, dtype)
    run = _NeuralIVPRun(solver, problem, net, controller, carry, save_s, key_loop, key_init, key_fit, max_steps,
                        mesh, fit_error_adam, fit_error, wall0)
    record = drive(run, budget=max_steps, chunk=1, checkpoint=checkpoint, fingerprint=fingerprint,
                   progress=Progress(100.0, "%") if progress else None, desc="NeuralIVP")
    carry, stats, theta0, mu_scale = run.carry, run.stats, run.theta0, run.mu_scale
    fit_error_adam, fit_error = run.fit_error_adam, run.fit_error
    result = final_result(carry, s1, n_ts)
    theta, t = carry["y"], float(carry["t"])
    ts, ys = saved_output(saveat, t0, theta0, carry, n_ts, dtype)

    final_residual, final_error = _final_diagnostics(solver, problem, net, _place(theta, mesh), jnp.asarray(t, dtype),
                                                     jax.random.fold_in(key_loop, 2**31 - 2),
                                                     jnp.asarray(mu_scale, dtype), mesh)
    stats["residual_history"].append((t, float(final_residual)))
    if problem.solution is not None:
        stats["error_history"].append((t, float(final_error)))
    for name in ("residual_history", "error_history", "condition_history", "lambda_max_history", "mu_history"):
        stats[name] = np.asarray(stats[name], dtype=float).reshape(-1, 2)
    for name in ("cg_iterations", "cg_results"):
        stats[name] = np.asarray(stats[name], dtype=int)
    stats["cg_residuals"] = np.asarray(stats["cg_residuals"], dtype=float)
    stats.update(
        num_steps=record.steps,
        num_accepted_steps=int(carry["n_acc"]),
        num_rejected_steps=int(carry["n_rej"]),
        num_fevals=int(stats["cg_iterations"].size),
        restarts=run.restarts,
        fit_error_adam=fit_error_adam,
        fit_error=fit_error,
        num_parameters=p,
        n_samples=solver.n_samples,
        model=net.model(theta),
        t_final=t,
        wall_time=run.wall_time(),
        resumed_from_step=record.resumed_from,
    )
    if throw and result != RESULTS.successful:
        raise RuntimeError(
            f"NeuralIVP stopped at t={t:.6g} of {t1:.6g}: {result_message(result)}"
        )
    return FieldSolution(
        ts=ts, ys=ys, stats=stats, result=result, problem=problem, solver=solver,
        evaluator=_field_evaluator(net),
    )


_UNSAVED = ("result", "token", "step")  # loop entries rebuilt on resume (a saved run is resumed as running)


class _NeuralIVPRun(AbstractRun):
    """NeuralIVP's parameter ODE as a long run (`pdesolve._driver`): each `advance` is one
    iteration of the shared integrator's step (`_attempt_step`), followed on the host by the
    solver's repairs — a refit (restart) after a failed θ̇ solve or when the
    `RestartPolicy` asks, or a larger μ — and the per-step diagnostics. A step is an
    attempt (accepted or rejected); save-only iterations take none."""

    kind: ClassVar[str] = "neural_ivp"

    def __init__(self, solver, problem, net, controller, carry, save_s, key_loop, key_init, key_fit, max_steps,
                 mesh, fit_error_adam, fit_error, wall0):
        self.solver, self.problem, self.net, self.controller = solver, problem, net, controller
        self.carry, self.save_s, self.mesh = carry, save_s, mesh
        self.key_loop, self.key_init, self.key_fit = key_loop, key_init, key_fit
        self.dtype = carry["y"].dtype
        self.t0, self.t1 = (float(s) for s in problem.tspan)
        self.s1 = jnp.asarray(self.t1, self.dtype)
        self.steps_cap = jnp.asarray(max_steps, jnp.int32)  # traced: no recompilation
        self.max_steps = max_steps
        self.theta0 = carry["y"]  # saved for SaveAt(t0=True)
        self.fit_error_adam, self.fit_error = fit_error_adam, fit_error
        self.wall0, self.wall_before = wall0, 0.0
        self.mu_scale = 1.0  # raised by MU_RAISE when CG fails after a restart
        self.restarts, self.retried = 0, False
        self.restart_durations: list[float] = []
        self.last_restart_wall = time.perf_counter()
        self.stats: dict[str, Any] = dict(
            cg_iterations=[], cg_residuals=[], cg_results=[], restart_times=[], restart_reasons=[],
            restart_fit_errors=[], residual_history=[], error_history=[], condition_history=[],
            lambda_max_history=[], mu_history=[],
        )
        self.running = self._unfinished()

    def _unfinished(self):
        """Time or saved outputs left, and attempts left (the state before any step)."""
        left = float(self.carry["t"]) < self.t1 or int(self.carry["save_idx"]) < int(self.save_s.shape[0])
        return left and self._attempts() < self.max_steps

    def _attempts(self):
        return int(self.carry["n_acc"]) + int(self.carry["n_rej"])

    def wall_time(self):
        return self.wall_before + time.perf_counter() - self.wall0

    def _restart(self, reason, t):
        """Refit a fresh network to the current field; returns its θ."""
        solver, problem = self.solver, self.problem
        start = time.perf_counter()
        current = self.net.model(self.carry["y"])
        n = self.restarts + 1
        fresh = solver.model if solver.model is not None else _default_model(
            problem, solver, jax.random.fold_in(self.key_init, n))
        refit, _, err = _fit(solver, problem, fresh, current, jax.random.fold_in(self.key_fit, n))
        new_theta, _ = ravel_pytree(eqx.partition(refit, eqx.is_inexact_array)[0])
        self.restarts = n
        self.restart_durations.append(time.perf_counter() - start)
        self.last_restart_wall = time.perf_counter()
        self.stats["restart_times"].append(t)
        self.stats["restart_reasons"].append(reason)
        self.stats["restart_fit_errors"].append(err)
        return new_theta

    def compile(self):
        pass  # compiled by the first step; NeuralIVP times compilation with a CompileTimer

    def advance(self, n, record):
        del n, record
        solver, stats, before = self.solver, self.stats, self._attempts()
        self.carry, info = _attempt_step(solver, self.problem, self.net, self.controller, _place(self.carry, self.mesh),
                                         self.save_s, self.s1, self.key_loop, jnp.asarray(self.mu_scale, self.dtype),
                                         self.steps_cap, self.mesh)
        info = jax.device_get(info)
        self.running = bool(info["running"])
        taken = self._attempts() - before
        if bool(info["zero"]):  # a save-only iteration
            return Advanced(taken)
        stage = info["stage"]
        stats["cg_iterations"].extend(int(i) for i in stage["iterations"])
        stats["cg_residuals"].extend(float(r) for r in stage["residual"])
        stats["cg_results"].extend(int(r) for r in stage["result"])
        t = float(info["t"])
        can_restart = solver.restart is not None and self.restarts < solver.restart.max_restarts
        if bool(info["linear_failed"]):  # rejected with linear_solve_failed: repair and retry, or stop
            if can_restart and not self.retried:
                self.carry = dict(self.carry, y=self._restart("cg_failed", t))
                self.retried = True
            elif solver.mu * self.mu_scale * MU_RAISE <= MU_CEILING:  # CG cannot meet the tolerance at this μ
                self.mu_scale *= MU_RAISE
                stats["mu_history"].append((t, solver.mu * self.mu_scale))
                self.retried = False
            else:
                self.running = False
                return Advanced(taken)
            self.carry = dict(self.carry, result=RESULTS.successful)
            self.running = int(info["n_steps"]) < self.max_steps
            return Advanced(taken)
        if bool(info["taken"]):
            stats["residual_history"].append((t, float(info["residual"])))
            if self.problem.solution is not None:
                stats["error_history"].append((t, float(info["error"])))
            stats["condition_history"].append((t, float(info["condition"])))
            stats["lambda_max_history"].append((t, float(info["lambda_max"])))
            t_new = float(info["t_new"])
            self.retried = False
            if self.running and can_restart and t_new < self.t1:
                avg = float(np.mean(self.restart_durations)) if self.restart_durations else 0.0
                reason = solver.restart.reason(int(np.max(stage["iterations"])), float(info["condition"]),
                                               time.perf_counter() - self.last_restart_wall, avg)
                if reason is not None:
                    self.carry = dict(self.carry, y=self._restart(reason, t_new))
        return Advanced(taken)

    def after(self, record):
        pass

    def stopped(self):
        return not self.running

    def position(self):
        return 100.0 * (float(self.carry["t"]) - self.t0) / (self.t1 - self.t0)

    def checkpoint_trees(self):
        return dict(loop={k: v for k, v in self.carry.items() if k not in _UNSAVED}, theta0=self.theta0)

    def checkpoint_templates(self):
        return self.checkpoint_trees()

    def checkpoint_state(self):
        return dict(restarts=self.restarts, mu_scale=self.mu_scale, retried=self.retried, stats=self.stats,
                    restart_durations=self.restart_durations, fit_error_adam=self.fit_error_adam,
                    fit_error=self.fit_error, wall_time=self.wall_time())

    def restore(self, trees, state):
        self.carry = dict(self.carry, **trees["loop"])
        self.theta0 = trees["theta0"]
        self.restarts, self.retried, self.mu_scale = int(state["restarts"]), bool(state["retried"]), float(state["mu_scale"])
        self.stats = {name: list(value) for name, value in state["stats"].items()}
        self.restart_durations = list(state["restart_durations"])
        self.fit_error_adam, self.fit_error = state["fit_error_adam"], state["fit_error"]
        self.wall_before = float(state["wall_time"])
        self.running = self._unfinished()


def _place(tree, mesh):
    """θ (or the controller state) replicated on the mesh: after a restart or a resume θ may
    come from elsewhere, and the first controller state is unplaced (a placement that changes
    between steps would recompile the step)."""
    return tree if mesh is None else replicate(tree, mesh)


def _field_evaluator(net: _Net):
    def evaluate(sol, x, t=None):
        ts = np.asarray(sol.ts)
        if ts.size == 0:
            raise ValueError("This NeuralIVP solution saved no times; pass SaveAt(ts=...).")
        if t is None:
            i = ts.size - 1
        else:
            matches = np.nonzero(np.isclose(ts, float(t), rtol=1e-12, atol=1e-12))[0]
            if matches.size == 0:
                raise ValueError(
                    f"t={float(t)} is not a saved time of this NeuralIVP solution (saved: "
                    f"{ts.tolist()}); add it to SaveAt(ts=...)."
                )
            i = int(matches[-1])
        x = jnp.asarray(x, sol.ys.dtype)
        single = x.ndim == 1
        X = x[None] if single else x
        if X.ndim != 2 or X.shape[1] != sol.problem.dim:
            raise ValueError(f"`x` must have shape ({sol.problem.dim},) or (m, {sol.problem.dim}); got {x.shape}.")
        out = jax.vmap(net.model(sol.ys[i]))(X)
        return out[0] if single else out

    return evaluate
