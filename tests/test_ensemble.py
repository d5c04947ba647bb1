"""`pds.EnsembleProblem`: batches of y0/args and prob_func, as one vmapped solve, equal to a
loop of single solves; per-member results; summaries; refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds


def _osc(t, y, w):
    return jnp.stack([y[1], -w * y[0]])


BASE = pds.NeuralODEProblem(_osc, jnp.array([1.0, 0.0]), (0.0, 2.0), 1.0)
KW = dict(saveat=pds.SaveAt(ts=jnp.linspace(0.0, 2.0, 5)), controller=pds.PIDController(rtol=1e-8, atol=1e-8))


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6), solver=st.sampled_from(["Tsit5", "Dopri5", "Bosh3"]),
       batch_y0=st.booleans())
def test_ensemble_equals_a_loop_of_single_solves(seed, n, solver, batch_y0):
    rng = np.random.default_rng(seed)
    y0s = jnp.asarray(rng.normal(size=(n, 2))) if batch_y0 else None
    ws = jnp.asarray(rng.uniform(0.3, 3.0, size=n))
    solver = getattr(pds, solver)()
    sol = pds.solve(pds.EnsembleProblem(BASE, y0=y0s, args=ws), solver, **KW)
    assert sol.ys.shape == (n, 5, 2) and np.asarray(sol.successful).shape == (n,)
    for i in range(n):
        prob = pds.remake(BASE, args=ws[i], **({} if y0s is None else dict(y0=y0s[i])))
        single = pds.solve(prob, solver, **KW)
        np.testing.assert_array_equal(np.asarray(sol.ys[i]), np.asarray(single.ys))
        assert int(sol.stats["num_steps"][i]) == int(single.stats["num_steps"])


def test_prob_func_with_keys_and_summary():
    def perturb(problem, i, key):
        return pds.remake(problem, y0=problem.y0 + 0.1 * jax.random.normal(key, (2,)), args=1.0 + 0.1 * i)

    key = jax.random.PRNGKey(3)
    sol = pds.solve(pds.EnsembleProblem(BASE, prob_func=perturb), pds.Tsit5(), trajectories=6, key=key, **KW)
    for i in (0, 5):
        prob = perturb(BASE, i, jax.random.fold_in(key, i))
        np.testing.assert_allclose(np.asarray(sol.ys[i]), np.asarray(pds.solve(prob, pds.Tsit5(), **KW).ys),
                                   rtol=0, atol=1e-14)
    summary = pds.ensemble_summary(sol, quantiles=(0.1, 0.5, 0.9))
    ys = np.asarray(sol.ys)
    np.testing.assert_allclose(summary["mean"], ys.mean(0))
    np.testing.assert_allclose(summary["std"], ys.std(0))
    np.testing.assert_allclose(summary["quantiles"], np.quantile(ys, [0.1, 0.5, 0.9], axis=0))
    assert summary["num_successful"] == 6 and summary["ts"].shape == (5,)


def test_failed_members_are_reported_per_member():
    sol = pds.solve(pds.EnsembleProblem(BASE, args=jnp.array([1.0, 400.0])), pds.Tsit5(), max_steps=40,
                    throw=False, **KW)
    np.testing.assert_array_equal(np.asarray(sol.successful), [True, False])
    member = jax.tree.map(lambda r: r[1], sol.result)
    assert member == pds.RESULTS.max_steps_reached
    with pytest.raises(RuntimeError, match="1 of 2 members failed; member \\(1,\\)"):
        pds.solve(pds.EnsembleProblem(BASE, args=jnp.array([1.0, 400.0])), pds.Tsit5(), max_steps=40, **KW)
    summary = pds.ensemble_summary(sol)
    assert summary["num_successful"] == 1


def test_ensemble_with_dense_output_events_and_gradients():
    ws = jnp.array([1.0, 4.0])
    ens = pds.EnsembleProblem(BASE, args=ws)
    sol = pds.solve(ens, pds.Tsit5(), saveat=pds.SaveAt(dense=True), event=pds.Event(lambda t, y, a: y[0]),
                    controller=pds.PIDController(rtol=1e-9, atol=1e-9))
    np.testing.assert_allclose(np.asarray(sol.event_time), np.pi / 2 / np.sqrt(np.asarray(ws)), rtol=1e-7)
    y = sol.evaluate(jnp.array([0.3]))
    np.testing.assert_allclose(np.asarray(y[:, 0, 0]), np.cos(0.3 * np.sqrt(np.asarray(ws))), atol=1e-7)

    def loss(w):
        s = pds.solve(pds.EnsembleProblem(BASE, args=w), pds.Tsit5(), **KW)
        return jnp.sum(s.ys[:, -1, 0])

    g = jax.grad(loss)(ws)
    eps = 1e-6
    fd = [(loss(ws.at[i].add(eps)) - loss(ws.at[i].add(-eps))) / (2 * eps) for i in range(2)]
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-5)


@pytest.mark.parametrize(
    "make, kw, match",
    [(lambda: pds.EnsembleProblem(BASE, y0=jnp.ones((3, 3))), {}, "base y0's shape"),
     (lambda: pds.EnsembleProblem(BASE, y0=jnp.ones((3, 2)), args=jnp.ones(4)), {}, "different member counts"),
     (lambda: pds.EnsembleProblem(BASE, prob_func=lambda p, i, k: p), {}, "trajectories=N"),
     (lambda: pds.EnsembleProblem(BASE, args=jnp.ones(3)), dict(trajectories=4), "batches hold 3"),
     (lambda: pds.EnsembleProblem(BASE, args=jnp.ones(3)), dict(trajectories=0), "`trajectories` must be an int >= 1")],
)
def test_bad_ensembles_raise(make, kw, match):
    with pytest.raises(ValueError, match=match):
        pds.solve(make(), pds.Tsit5(), **KW, **kw)


def test_ensemble_refuses_non_ode_problems_and_trajectories_alone():
    pde = pds.PDEProblem(rhs=lambda u, x, t, a: -u.partial(0), u0=lambda x: jnp.exp(-10 * x[0] ** 2),
                         tspan=(0.0, 0.1), domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0))
    with pytest.raises(TypeError, match="must be a NeuralODEProblem"):
        pds.EnsembleProblem(pde)
    with pytest.raises(TypeError, match="`trajectories` is for ensembles"):
        pds.solve(BASE, pds.Tsit5(), trajectories=3, **KW)
