"""NeuralIVP (Finzi et al. 2023): matrix-free Gram products, Nyström-preconditioned CG,
head tuning, accuracy on advection against the exact solution, and input errors."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds
from pdesolve._nystrom import NystromPreconditioner, nystrom_cg
from pdesolve.solvers._neural_ivp_fit import adam_fit, relative_fit_error, tune_head
from pdesolve.solvers.neural_ivp import _gram_operator, _Net, _theta_dot_cg, _theta_dot_dense
from jax.flatten_util import ravel_pytree
import equinox as eqx

from _ivp_helpers import ADVECTION, SAVE_TS, SMALL, T
from _ivp_helpers import exact as _exact
from _ivp_helpers import make_advection as _advection


@pytest.fixture(scope="module")
def net_and_samples():
    """A small 2-D SinusoidalMLP as (net, θ, X) for the linear-algebra tests."""
    model = pds.SinusoidalMLP(jax.random.PRNGKey(0), 2, width=12, depth=2, n_frequencies=2)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    theta, unravel = ravel_pytree(params)
    X = jax.random.uniform(jax.random.PRNGKey(1), (50, 2), minval=-1, maxval=1)
    return _Net(static, unravel), theta, X


def test_matrix_free_gram_equals_dense(net_and_samples):
    net, theta, X = net_and_samples
    op, _, _ = _gram_operator(net, theta, X)
    J = jax.jacfwd(lambda th: net.outputs(th, X).ravel())(theta)
    for seed in range(3):
        v = jax.random.normal(jax.random.PRNGKey(seed), theta.shape)
        dense = J.T @ (J @ v) / X.shape[0]
        np.testing.assert_allclose(op.mv(v), dense, rtol=1e-12, atol=1e-12 * float(jnp.max(jnp.abs(dense))))


def test_cg_and_dense_theta_dot_agree(net_and_samples):
    """Both linear solvers solve the same regularised system (M + μ λ1 I) θ̇ = F."""
    net, theta, X = net_and_samples
    problem = pds.PDEProblem(
        rhs=lambda u, x, t, args: 0.1 * u.laplacian - u.partial(0),
        u0=lambda x: jnp.prod(1 - x**2),
        tspan=(0.0, 1.0),
        domain=pds.Box([-1.0, -1.0], [1.0, 1.0]),
        bc=pds.Dirichlet(0.0),
    )
    solver = pds.NeuralIVP(rank=theta.shape[0], mu=1e-4, cg_rtol=1e-10, cg_max_steps=2000)
    x_cg, info = _theta_dot_cg(solver, problem, net, theta, 0.0, X, jax.random.PRNGKey(3))
    x_dense, info_d = _theta_dot_dense(solver, problem, net, theta, 0.0, X)
    assert info["result"] == pds.RESULTS.successful and info_d["result"] == pds.RESULTS.successful
    # Full-rank sketch: λ1 is exact to round-off, so μ̃ matches the power iteration's.
    np.testing.assert_allclose(x_cg, x_dense, rtol=1e-5, atol=1e-6 * float(jnp.max(jnp.abs(x_dense))))


@jax.jit
def _pcg_vs_cg(key, decay, mu):
    """Solve one random SPD system (spectrum 1 .. 10^-decay) with and without Nyström."""
    p, rank, rtol = 300, 40, 1e-8
    Q, _ = jnp.linalg.qr(jax.random.normal(key, (p, p)))
    A = (Q * jnp.logspace(0.0, -decay, p)) @ Q.T
    op = lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag)
    b = jax.random.normal(jax.random.fold_in(key, 1), (p,))
    pre = NystromPreconditioner.build(op, rank, key=jax.random.fold_in(key, 2))
    out = []
    for precond in (pre, None):
        x, info = nystrom_cg(op, b, precond, mu=mu, rtol=rtol, max_steps=5000)
        true = jnp.linalg.norm(A @ x + mu * x - b) / jnp.linalg.norm(b)
        out.append((info["iterations"], info["residual"], pds.result_code(info["result"]), true))
    return out


@given(seed=st.integers(0, 2**16), decay=st.floats(2.0, 6.0), mu=st.sampled_from([1e-2, 1e-4, 1e-6]))
def test_nystrom_cg_meets_tolerance_in_fewer_iterations(seed, decay, mu):
    (it_p, res_p, code_p, true_p), (it_0, res_0, code_0, true_0) = _pcg_vs_cg(
        jax.random.PRNGKey(seed), jnp.asarray(decay), jnp.asarray(mu)
    )
    ok = int(pds.result_code(pds.RESULTS.successful))
    for res, code, true in ((res_p, code_p, true_p), (res_0, code_0, true_0)):
        assert int(code) == ok
        assert float(true) <= 1e-8 * (1 + 1e-6)
        np.testing.assert_allclose(res, true, rtol=1e-6, atol=1e-15)
    assert int(it_p) <= int(it_0)


def test_nystrom_eigenvalues_exact_for_low_rank():
    p, r = 200, 10
    key = jax.random.PRNGKey(0)
    Q, _ = jnp.linalg.qr(jax.random.normal(key, (p, r)))
    lam = jnp.linspace(5.0, 1.0, r)
    op = lx.MatrixLinearOperator((Q * lam) @ Q.T, lx.positive_semidefinite_tag)
    pre = NystromPreconditioner.build(op, 20, key=jax.random.PRNGKey(1))
    np.testing.assert_allclose(pre.eigenvalues[:r], lam, rtol=1e-8)
    np.testing.assert_allclose(pre.eigenvalues[r:], 0.0, atol=1e-8)


def test_nystrom_cg_reports_failure():
    p = 100
    A = jnp.diag(jnp.logspace(0, -12, p))
    op = lx.MatrixLinearOperator(A, lx.positive_semidefinite_tag)
    b = jnp.ones(p)
    _, info = nystrom_cg(op, b, None, mu=0.0, rtol=1e-12, max_steps=3)
    assert info["result"] == pds.RESULTS.linear_solve_failed
    assert int(info["iterations"]) == 3


def test_head_tuning_lowers_fit_error():
    domain = pds.Box([-1.0], [1.0])
    target = lambda x: jnp.sin(3 * x[0]) * (1 - x[0] ** 2)  # noqa: E731
    model = pds.SinusoidalMLP(jax.random.PRNGKey(0), 1, width=16, depth=2, n_frequencies=3)
    fitted = adam_fit(model, target, domain, jax.random.PRNGKey(1), steps=200, batch=200, learning_rate=3e-3)
    tuned = tune_head(fitted, target, domain, jax.random.PRNGKey(2), samples=2000, ridge=1e-10)
    X = domain.sample_interior(jax.random.PRNGKey(3), 1000)
    before = float(relative_fit_error(fitted, target, X))
    after = float(relative_fit_error(tuned, target, X))
    assert after < 0.5 * before, (before, after)


def test_bump_gives_zero_dirichlet_values():
    model = pds.SinusoidalMLP(jax.random.PRNGKey(0), 2, [0.0, -2.0], [1.0, 2.0], n_outputs=2, width=8, depth=1)
    boundary, _ = pds.Box([0.0, -2.0], [1.0, 2.0]).sample_boundary(jax.random.PRNGKey(1), 20)
    assert jax.vmap(model)(boundary).shape == (20, 2)
    np.testing.assert_allclose(jax.vmap(model)(boundary), 0.0, atol=1e-14)


@pytest.fixture(scope="module")
def advection_solution():
    return pds.solve(ADVECTION, pds.NeuralIVP(**SMALL), saveat=pds.SaveAt(ts=SAVE_TS), key=jax.random.PRNGKey(0))


def test_advection_matches_exact_solution(advection_solution):
    sol = advection_solution
    assert sol.successful
    X = jnp.linspace(-1, 1, 201)[:, None]
    for t in (0.0, T / 2, T):
        pred = sol(X, t)
        exact = jax.vmap(lambda x: _exact(x, t))(X)
        rel = float(jnp.linalg.norm(pred - exact) / jnp.linalg.norm(exact))
        assert rel < 0.05, (t, rel)  # measured ~0.002 at t=0, ~0.02 at T (24x2 network)
    # The bump factor keeps the boundary values zero for all time (the box is not a parameter).
    np.testing.assert_allclose(sol(jnp.array([[-1.0], [1.0]]), T), 0.0, atol=1e-14)
    hist = sol.stats["error_history"]
    assert hist.shape[1] == 2 and hist[-1, 0] == pytest.approx(T)
    assert float(hist[-1, 1]) < 0.05


def test_advection_stats(advection_solution):
    st_ = advection_solution.stats
    # one θ̇ solve per stage: Bosh3 has 4 stages (no FSAL reuse), counted from the tableau
    stages = len(pds.Bosh3().tableau.c)
    assert st_["cg_iterations"].size == stages * st_["num_steps"] == 4 * st_["num_steps"]
    assert np.all(st_["cg_results"] == int(pds.result_code(pds.RESULTS.successful)))
    assert np.all(st_["cg_residuals"] <= 1e-7 * (1 + 1e-6))
    assert st_["num_accepted_steps"] + st_["num_rejected_steps"] == st_["num_steps"]
    # the reported fit error agrees with an independent measurement of the initial fit (a
    # grid, not the solver's random points), and is small (measured ~2e-3)
    X = jnp.linspace(-1, 1, 401)[:, None]
    exact0 = jax.vmap(lambda x: _exact(x, 0.0))(X)
    rel0 = float(jnp.linalg.norm(advection_solution(X, 0.0) - exact0) / jnp.linalg.norm(exact0))
    assert st_["fit_error"] < 1e-2 and 0.3 * st_["fit_error"] < rel0 < 3 * st_["fit_error"], (rel0, st_["fit_error"])
    assert np.all(st_["residual_history"][:, 1] < 0.05)
    assert advection_solution.ys.shape == (3, st_["num_parameters"])


def test_constant_steps_and_restart_counted():
    # mu=1e-6: with 4 constant steps the small network's parameter ODE at the default mu=1e-8
    # is stepped too coarsely (error 0.24 at T without restarts, 0.53 with; 5.7e-3 at 1e-6).
    solver = pds.NeuralIVP(**{**SMALL, "fit_steps": 200, "mu": 1e-6}, restart=pds.RestartPolicy(max_cg_iterations=1))
    sol = pds.solve(_advection(), solver, dt0=T / 4, key=jax.random.PRNGKey(1))
    assert sol.stats["num_accepted_steps"] == 4 and sol.stats["num_rejected_steps"] == 0
    # Every step needs more than one CG iteration, so every step but the last restarts.
    assert sol.stats["restarts"] == 3
    assert sol.stats["restart_reasons"] == ["cg_iterations"] * 3
    assert max(sol.stats["restart_fit_errors"]) < 0.05
    rel = float(sol.stats["error_history"][-1, 1])
    assert rel < 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(bc=pds.Dirichlet(1.0)), "zero Dirichlet"),
        (dict(bc=pds.Robin(1.0, 1.0, 0.0)), "zero Dirichlet"),
        (dict(bc=pds.Neumann(0.0)), "zero Dirichlet"),
        (dict(domain=pds.Ball([0.0], 1.0)), "Box"),
    ],
)
def test_unsupported_problems_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pds.solve(_advection(**kwargs), pds.NeuralIVP(**SMALL))


def test_steady_problem_raises():
    prob = pds.PDEProblem(residual=lambda u, x, args: u.laplacian, domain=pds.Box([-1.0], [1.0]))
    with pytest.raises(ValueError, match="initial-value"):
        pds.solve(prob, pds.NeuralIVP())


def test_dense_memory_budget_error():
    solver = pds.NeuralIVP(**{**SMALL, "fit_steps": 1}, linear_solver="dense", dense_memory_budget=1e5)
    with pytest.raises(ValueError, match="dense_memory_budget"):
        pds.solve(_advection(), solver, dt0=0.1)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [(dict(linear_solver="lu"), ValueError, "linear_solver"), (dict(mu=0.0), ValueError, "mu"),
     (dict(rank=0), ValueError, "rank"), (dict(cg_rtol=2.0), ValueError, "cg_rtol"),
     (dict(tableau="bosh3"), TypeError, "tableau"), (dict(restart="yes"), TypeError, "restart")],
)
def test_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pds.NeuralIVP(**kwargs)


def test_saveat_steps_refused():
    with pytest.raises(ValueError, match="steps"):
        pds.solve(_advection(), pds.NeuralIVP(**{**SMALL, "fit_steps": 1}), dt0=0.1, saveat=pds.SaveAt(steps=True))


def test_evaluating_an_unsaved_time_raises(advection_solution):
    with pytest.raises(ValueError, match="SaveAt"):
        advection_solution(jnp.zeros((1,)), 0.123)


def test_float32_model_refused():
    model = pds.SinusoidalMLP(jax.random.PRNGKey(0), 1, width=8, depth=1, dtype=jnp.float32)
    with pytest.raises(ValueError, match="float64"):
        pds.solve(_advection(), pds.NeuralIVP(model=model), dt0=0.1)


def test_too_few_samples_refused():
    """n_samples=1 fitted θ̇ to one point (error 0.49 reported successful): refused. The rule is
    max(64, 32·d, ceil(min(rank, p) / k)); the defaults and the tests' values pass it."""
    with pytest.raises(ValueError, match="`n_samples` must be >= 64"):
        pds.NeuralIVP(n_samples=1)
    # Above the floor but below the Nyström rank (100 here): refused at solve, before any fit.
    solver = pds.NeuralIVP(**{**SMALL, "n_samples": 80, "rank": 100})
    with pytest.raises(ValueError, match=r"`n_samples`=80 is too few .* the minimum is 100 "):
        pds.solve(ADVECTION, solver, dt0=0.1)
    from pdesolve.solvers.neural_ivp import min_samples

    # 32 per dimension: a 3-D box needs 96.
    assert min_samples(pds.NeuralIVP(rank=10), 3, 10_000) == 96
    assert min_samples(pds.NeuralIVP(linear_solver="dense"), 1, 10_000) == 64
    assert min_samples(pds.NeuralIVP(rank=300), 2, 10_000, num_outputs=2) == 150
    assert min_samples(pds.NeuralIVP(), 3, 20_000) <= pds.NeuralIVP().n_samples
    assert min_samples(pds.NeuralIVP(**SMALL), 1, 10_000) <= SMALL["n_samples"]


# ---------------------------------------------------------------------------------------------
# held-out-style accuracy (exact solutions) and compilation counts (issue 18)
# ---------------------------------------------------------------------------------------------

_NU, _OMEGA = 0.1, 1.0


def _heat_exact(x, t):
    return jnp.exp(-_NU * jnp.pi**2 * t) * jnp.sin(jnp.pi * x[0])


HEAT = pds.PDEProblem(rhs=lambda u, x, t, args: _NU * u.laplacian, u0=lambda x: _heat_exact(x, 0.0),
                      tspan=(0.0, 0.3), domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0), solution=_heat_exact)


def _rotation_exact(x, t):  # a bump at (0.3, 0) turned about the origin by ω t
    c, s = jnp.cos(_OMEGA * t), jnp.sin(_OMEGA * t)
    y = jnp.array([c * x[0] + s * x[1], -s * x[0] + c * x[1]])  # R(-ωt) x
    return jnp.exp(-jnp.sum((y - jnp.array([0.3, 0.0])) ** 2) / (2 * 0.2**2))


ROTATION = pds.PDEProblem(
    rhs=lambda u, x, t, args: -_OMEGA * (-x[1] * u.partial(0) + x[0] * u.partial(1)),
    u0=lambda x: _rotation_exact(x, 0.0), tspan=(0.0, 0.2), domain=pds.Box([-1.0, -1.0], [1.0, 1.0]),
    bc=pds.Dirichlet(0.0), solution=_rotation_exact,
)


def _rel_error(sol, problem, t, n=4000):
    X = problem.domain.sample_interior(jax.random.PRNGKey(11), n)
    exact = jax.vmap(lambda x: problem.solution(x, t))(X)
    return float(jnp.linalg.norm(sol(X, t).ravel() - exact.ravel()) / jnp.linalg.norm(exact))


@pytest.mark.parametrize(
    "problem, dt0, bound",
    # measured (PID defaults): heat 4.5e-4 at t=0, 3.6e-4 at T (40 + 7 steps); rotation 1.4e-2 at
    # t=0 (the 32-wide network's fit), 2.4e-2 at T (25 + 7 steps). 10 constant steps give 0.12 on
    # the rotation: the step controller matters.
    [(HEAT, None, 2e-3), (ROTATION, None, 4e-2)], ids=["heat-1d", "rotation-2d"],
)
def test_accuracy_against_exact_solutions(problem, dt0, bound):
    solver = pds.NeuralIVP(**{**SMALL, "width": 32, "fit_steps": 1500})
    T1 = problem.tspan[1]
    sol = pds.solve(problem, solver, saveat=pds.SaveAt(ts=[0.0, T1]), key=jax.random.PRNGKey(0), dt0=dt0)
    assert sol.successful
    err0, err1 = _rel_error(sol, problem, 0.0), _rel_error(sol, problem, T1)
    assert err1 < bound, (err0, err1)
    assert np.all(sol.stats["cg_results"] == int(pds.result_code(pds.RESULTS.successful)))


def test_first_solve_compiles_a_bounded_number_of_programs_and_a_repeat_none():
    """The θ̇ solve is compiled once per solve (stages in a loop, the controller's initial
    step jitted), not per stage, step size or restart; a repeated solve compiles nothing."""
    solver = pds.NeuralIVP(**{**SMALL, "fit_steps": 100}, restart=pds.RestartPolicy(max_cg_iterations=1))
    problem = _advection()  # new functions: nothing of this problem is in the jit caches
    first = pds.solve(problem, solver, key=jax.random.PRNGKey(0), dt0=T / 2)
    assert first.stats["restarts"] == 1
    assert 0 < first.stats["num_compilations"] <= 60, first.stats["num_compilations"]
    assert first.stats["compile_time"] > 0
    again = pds.solve(problem, solver, key=jax.random.PRNGKey(1), dt0=T / 3)  # new key and step size
    assert again.stats["num_compilations"] <= 2, again.stats["num_compilations"]


def test_mu_is_raised_when_cg_cannot_meet_the_tolerance():
    """A CG cap too small for μ = 1e-8 (the solve needs ~30 iterations there, ~7 at 1e-6): the
    step is retried at μ × 100 and the solve completes; the raise is recorded."""
    solver = pds.NeuralIVP(**{**SMALL, "fit_steps": 200, "cg_max_steps": 5}, restart=None)
    sol = pds.solve(ADVECTION, solver, key=jax.random.PRNGKey(1))
    assert sol.successful
    np.testing.assert_allclose(sol.stats["mu_history"], [[0.0, 1e-6]])
    assert float(sol.stats["error_history"][-1, 1]) < 1e-2  # measured 3.0e-3


# --- the shared stepping loop (pdesolve._integrate's plan_step / conclude_step) ------------------


def test_failed_solve_reports_like_the_ode_solvers(advection_solution):
    """Out of steps under the PID controller: `max_steps_reached`, unreached SaveAt(ts) slots
    are inf (times and states) and the t1 slot holds the state reached, as `integrate` returns
    them; the step count is the attempt count (the compiled step of the fixture is reused)."""
    sol = pds.solve(ADVECTION, pds.NeuralIVP(**SMALL), saveat=pds.SaveAt(ts=SAVE_TS, t1=True),
                    key=jax.random.PRNGKey(0), max_steps=3, throw=False)
    assert sol.result == pds.RESULTS.max_steps_reached and not sol.successful
    st_ = sol.stats
    assert st_["num_steps"] == 3 == st_["num_accepted_steps"] + st_["num_rejected_steps"]
    t_final = st_["t_final"]
    assert 0.0 < t_final < T / 2
    ts = np.asarray(sol.ts)
    assert ts[0] == 0.0 and np.all(np.isinf(ts[1:3])) and ts[3] == t_final
    assert np.all(np.isinf(np.asarray(sol.ys)[1:3]))
    assert np.all(np.isfinite(np.asarray(sol.ys)[[0, 3]]))
    # the same first steps as the successful solve of the same problem, key and options
    full = advection_solution.stats["residual_history"]
    np.testing.assert_array_equal(st_["residual_history"][:3], full[:3])
    with pytest.raises(RuntimeError, match="NeuralIVP stopped at t="):
        pds.solve(ADVECTION, pds.NeuralIVP(**SMALL), saveat=pds.SaveAt(ts=SAVE_TS), key=jax.random.PRNGKey(0),
                  max_steps=3)


def test_repeated_saved_times_save_without_a_solve(advection_solution):
    """Saved times equal to the current time (t0, a repeated entry) are save-only iterations:
    no θ̇ solve, the same θ in each copy, and the trajectory unchanged."""
    ts = jnp.array([0.0, 0.0, T / 2, T / 2, T])
    sol = pds.solve(ADVECTION, pds.NeuralIVP(**SMALL), saveat=pds.SaveAt(ts=ts, t0=True), key=jax.random.PRNGKey(0))
    assert sol.successful
    np.testing.assert_array_equal(np.asarray(sol.ts), [0.0, 0.0, 0.0, T / 2, T / 2, T])
    ys = np.asarray(sol.ys)
    np.testing.assert_array_equal(ys[0], ys[1])
    np.testing.assert_array_equal(ys[1], ys[2])
    np.testing.assert_array_equal(ys[3], ys[4])
    st_ = sol.stats
    assert st_["num_fevals"] == 4 * st_["num_steps"]  # Bosh3: 4 θ̇ solves per attempted step, none per save
    ref = advection_solution  # SaveAt(ts=[0, T/2, T]): the same steps, so the same θ at the saved times
    np.testing.assert_array_equal(ys[[2, 3, 5]], np.asarray(ref.ys))


@pytest.mark.parametrize(
    "tableau, options",
    [(pds.Heun().tableau, dict(controller=pds.PIDController(rtol=1e-3, atol=1e-3))),
     (pds.RK4().tableau, dict(dt0=T / 8)),
     (pds.Tsit5().tableau, dict(controller=pds.PIDController(rtol=1e-4, atol=1e-4, pcoeff=0.2, icoeff=0.4)))],
    ids=["heun-pid", "rk4-constant", "tsit5-pid"],
)
def test_any_explicit_tableau_and_controller(tableau, options):
    """Other tableaus and controllers through the same loop: exact solution within the
    accuracy the small network reaches with the default (measured ~3e-3 at T)."""
    solver = pds.NeuralIVP(**{**SMALL, "fit_steps": 200}, tableau=tableau)
    sol = pds.solve(ADVECTION, solver, key=jax.random.PRNGKey(0), **options)
    assert sol.successful
    st_ = sol.stats
    assert st_["num_fevals"] == len(tableau.b) * st_["num_steps"]
    assert st_["num_accepted_steps"] + st_["num_rejected_steps"] == st_["num_steps"]
    if "dt0" in options:
        assert st_["num_accepted_steps"] == 8
    assert float(st_["error_history"][-1, 1]) < 0.02
