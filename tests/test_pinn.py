"""DTPINN (RBF-FD, float64) and PINN (autodiff) on the disk problems of Sharma & Shankar 2022.

CI tests (fast): linear Poisson with DTPINN at the paper's N = 828, p = 4 (relative L2 test
error <= 1e-2), Robin Poisson, the nonlinear Poisson and heat problems at reduced size against
PINN, options (Adam, user node sets, progress bar) and bad inputs. Full-size comparisons with
PINN are marked `slow`.

Measured on the 2-core CI machine (float64 DTPINN, float32 PINN unless noted):

* linear Poisson, N = 828, p = 4, 2500 L-BFGS steps: DTPINN 5.8e-3 (8.3e-3 after 1500);
* Robin Poisson, N = 828, 500 steps: DTPINN 2.9e-3;
* nonlinear Poisson, N = 300, 4x30 -> 3x30 MLP, 600 steps: DTPINN 1.0e-1, PINN 5.6e-2;
* heat, N = 150, 5 time slices, 3x30 MLP, 200 steps: DTPINN 1.42e-1, PINN 1.39e-1.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds
from pdesolve import problems as P

SMALL = {"width": 30, "depth": 3}


def _independent_error(sol, exact, n=1500, seed=3):
    """Relative L2 error on a node set the solver never saw."""
    pts = pds.Ball([0.0, 0.0], 1.0).node_set(n, seed=seed).points
    pred = np.asarray(sol(pts))
    want = np.asarray(jax.vmap(lambda x: exact(x, None))(jnp.asarray(pts)))
    return np.linalg.norm(pred - want) / np.linalg.norm(want)


# ---------------------------------------------------------------------------------------------
# linear Poisson, the paper's setting (N = 828, p = 4, 4 x 50 tanh MLP, L-BFGS)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_dt():
    return pds.solve(P.poisson_disk(), pds.DTPINN(order=4), max_steps=2500)


def test_dtpinn_linear_poisson_reaches_1e_2(linear_dt):
    sol, s = linear_dt, linear_dt.stats
    assert sol.successful and isinstance(sol, pds.FieldSolution)
    assert s["relative_l2_error"] <= 1e-2, s["relative_l2_error"]
    assert _independent_error(sol, P.disk_exact) <= 1e-2
    assert s["n_nodes"] == 828 and s["n_ghost"] == s["n_boundary"] > 0
    assert s["operators"] == {"pde": [("laplacian",)], "boundary": [("value",)]}
    assert s["nnz_per_row"] == {"('laplacian',)": 43}  # 2 C(5 + 2, 2) + 1 at p = 4
    assert s["num_steps"] == 2500 and 0 < s["num_accepted_steps"] <= 2500


def test_dtpinn_histories(linear_dt):
    s = linear_dt.stats
    loss = s["loss_history"]
    assert loss.shape == (s["num_steps"],) and np.all(np.isfinite(loss))
    # L-BFGS reports the loss of the last accepted iterate: it never increases.
    assert np.all(np.diff(loss) <= 1e-12 * loss[:-1])
    assert loss[-1] < 1e-3 * loss[0]
    assert s["final_loss"] == loss[-1]
    errs, times = s["error_history"], s["time_history"]
    assert errs.shape == times.shape == s["step_history"].shape
    assert np.all(np.diff(times) >= 0) and s["step_history"][-1] == s["num_steps"]
    assert s["best_relative_l2_error"] == errs.min() < 1e-2 * errs[0]  # training cut the error 100x
    assert s["relative_l2_error"] == pytest.approx(errs[-1])


def test_solution_evaluation(linear_dt):
    x = jnp.array([[0.1, -0.2], [0.5, 0.3], [-0.7, 0.0]])
    out = linear_dt(x)
    assert out.shape == (3,) and out.dtype == jnp.float64
    assert linear_dt(x[0]).shape == ()
    np.testing.assert_allclose(out, jax.vmap(P.disk_exact)(x), atol=5e-2)
    with pytest.raises(TypeError, match="steady"):
        linear_dt(x, 0.5)
    # ys is the trained network itself
    np.testing.assert_allclose(jax.vmap(linear_dt.ys)(x), out)


# ---------------------------------------------------------------------------------------------
# Robin boundary condition (normal-derivative operator at boundary nodes)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def robin_dt():
    return pds.solve(P.robin_poisson_disk(), pds.DTPINN(), max_steps=500)


def test_dtpinn_robin_poisson(robin_dt):
    s = robin_dt.stats
    assert s["operators"]["boundary"] == [("normal",), ("value",)]
    assert s["relative_l2_error"] <= 1e-2, s["relative_l2_error"]


def test_progress_bar_does_not_change_results(robin_dt, capsys):
    sol = pds.solve(P.robin_poisson_disk(), pds.DTPINN(), max_steps=100, progress=True)
    np.testing.assert_array_equal(
        sol.stats["loss_history"], robin_dt.stats["loss_history"][:100]
    )
    assert "DTPINN" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# nonlinear Poisson and heat against the autodiff PINN (reduced size in CI)
# ---------------------------------------------------------------------------------------------


def test_nonlinear_poisson_comparable_to_pinn():
    prob = P.nonlinear_poisson_disk()
    # 1200 L-BFGS steps: at 600 DTPINN sat on a loss plateau (error 0.115 vs PINN's 0.037,
    # with numpy 2.4.6 / scipy 1.17.1 on 2026-12-02, the same at the previous commit) and
    # left it shortly after (0.011 vs 0.0075 at 1200): the ratio bound needs converged runs.
    dt = pds.solve(prob, pds.DTPINN(n_nodes=300, **SMALL), max_steps=1200)
    ad = pds.solve(prob, pds.PINN(n_nodes=300, **SMALL), max_steps=1200)
    assert dt.stats["operators"]["pde"] == [("laplacian",), ("value",)]
    e_dt, e_ad = dt.stats["relative_l2_error"], ad.stats["relative_l2_error"]
    assert e_dt <= 0.15 and e_ad <= 0.15, (e_dt, e_ad)
    assert e_dt <= 3.0 * e_ad, (e_dt, e_ad)
    assert (
        ad.stats["dtype"] == "float32" and ad.ys.layers[0].weight.dtype == jnp.float32
    )


def test_heat_quick_comparable_to_pinn():
    prob = P.heat_disk()
    kw = dict(n_nodes=150, time_slices=5, **SMALL)
    dt = pds.solve(prob, pds.DTPINN(**kw), max_steps=200)
    ad = pds.solve(prob, pds.PINN(**kw), max_steps=200)
    e_dt, e_ad = dt.stats["relative_l2_error"], ad.stats["relative_l2_error"]
    assert e_dt <= 0.2 and e_ad <= 0.2, (e_dt, e_ad)
    assert e_dt <= 2.0 * e_ad, (e_dt, e_ad)
    # sol(x, t): the network of (x, t)
    x = jnp.array([[0.2, 0.1], [-0.4, 0.5]])
    assert dt(x, 0.5).shape == (2,) and dt(x[0], 0.5).shape == ()
    np.testing.assert_allclose(dt(x, 0.0), 1.0, atol=0.1)  # u0 = 1
    np.testing.assert_allclose(
        dt(x, 0.5), jax.vmap(lambda y: P.heat_exact(y, 0.5))(x), atol=0.2
    )
    with pytest.raises(TypeError, match="sol\\(x, t\\)"):
        dt(x)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make_problem, steps, tol",
    [(P.nonlinear_poisson_disk, 3000, 2e-2), (P.heat_disk, 1000, 5e-2)],
    ids=["nonlinear_poisson", "heat"],
)
def test_full_size_vs_pinn(make_problem, steps, tol):
    prob = make_problem()
    dt = pds.solve(prob, pds.DTPINN(), max_steps=steps)
    ad = pds.solve(prob, pds.PINN(), max_steps=steps)
    e_dt, e_ad = dt.stats["relative_l2_error"], ad.stats["relative_l2_error"]
    assert e_dt <= tol and e_dt <= 3.0 * e_ad, (e_dt, e_ad)


# ---------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------


def test_adam_and_user_point_cloud():
    base = pds.Ball([0.0, 0.0], 1.0).node_set(250, seed=1)
    cloud = pds.PointCloud(
        base.interior, base.boundary, base.normals
    )  # bare user cloud
    solver = pds.DTPINN(nodes=cloud, optimizer="adam", learning_rate=3e-3, **SMALL)
    sol = pds.solve(P.poisson_disk(), solver, max_steps=300, key=jax.random.PRNGKey(3))
    s = sol.stats
    assert s["n_nodes"] == 250 and s["n_ghost"] == base.n_boundary
    assert s["loss_history"][-1] < 0.05 * s["loss_history"][0]
    assert s["relative_l2_error"] < 0.3, s["relative_l2_error"]  # measured 0.196 (300 Adam steps)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_boundary_condition_without_normals():
    cloud = pds.PointCloud(pds.Ball([0.0, 0.0], 1.0).node_set(200).interior)
    for solver in (pds.DTPINN(nodes=cloud), pds.PINN(nodes=cloud)):
        with pytest.raises(
            ValueError, match="no boundary\\s+nodes with outward normals"
        ):
            pds.solve(P.poisson_disk(), solver, max_steps=1)


def test_too_few_nodes_for_the_stencil():
    with pytest.raises(
        ValueError, match=r"RBF-FD matrices \(order=4\).*needs 43 nodes.*lower `order`"
    ):
        pds.solve(P.poisson_disk(), pds.DTPINN(n_nodes=20), max_steps=1)


def test_float32_is_refused():
    prob = P.poisson_disk()
    msg = r"float64.*jax\.config\.update\('jax_enable_x64', True\)"
    with jax.enable_x64(False), pytest.raises(ValueError, match=msg):
        pds.solve(prob, pds.DTPINN(), max_steps=1)
    model = eqx.nn.MLP(2, "scalar", 8, 1, key=jax.random.PRNGKey(0), dtype=jnp.float32)
    with pytest.raises(ValueError, match="DTPINN trains in float64.*dtype=jnp.float64"):
        pds.solve(prob, pds.DTPINN(model=model), max_steps=1)


def test_unsupported_equations_and_problems():
    prob = pds.PDEProblem(
        residual=lambda u, x, args: u.partial(0, 0, 1) - 1.0,
        domain=pds.Ball([0.0, 0.0], 1.0),
        bc=pds.Dirichlet(0.0),
    )
    with pytest.raises(NotImplementedError, match="pds.PINN"):
        pds.solve(prob, pds.DTPINN(n_nodes=200), max_steps=1)
    ode = pds.NeuralODEProblem(lambda t, y, a: -y, jnp.ones(2), (0.0, 1.0))
    with pytest.raises(TypeError, match="DTPINN cannot solve a NeuralODEProblem"):
        pds.solve(ode, pds.DTPINN())


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: pds.DTPINN(order=0), ValueError, "`order` must be an int >= 1"),
        (lambda: pds.DTPINN(order=2.5), TypeError, "`order` must be an int"),
        (lambda: pds.DTPINN(order=True), TypeError, "`order` must be an int"),
        (lambda: pds.DTPINN(optimizer="sgd"), ValueError, "`optimizer` must be one of"),
        (lambda: pds.DTPINN(nodes=np.zeros((5, 2))), TypeError, "`nodes` must be a pds.PointCloud"),
        (lambda: pds.DTPINN(time_slices=1), ValueError, "`time_slices` must be an int >= 2"),
        (lambda: pds.DTPINN(learning_rate=-1.0), ValueError, "`learning_rate` must be a finite number > 0"),
        (lambda: pds.DTPINN(ghost=1), TypeError, "`ghost` must be True or False"),
        (lambda: pds.PINN(dtype="float16"), ValueError, "`dtype` must be 'float32' or 'float64'"),
        (lambda: pds.PINN(width=0), ValueError, "`width` must be an int >= 1"),
    ],
)
def test_constructor_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_max_steps():
    with pytest.raises(ValueError, match="`max_steps`"):
        pds.solve(P.poisson_disk(), pds.DTPINN(), max_steps=0)


def test_docs_first_example_runs():
    """The first example of docs/pinn.md runs as written (the others train longer)."""
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "pinn.md"
    if not docs.exists():
        pytest.skip("needs the source tree")
    block = re.findall(r"```python\n(.*?)```", docs.read_text(), flags=re.DOTALL)[0]
    ns: dict = {}
    exec(compile(block, "docs/pinn.md", "exec"), ns)  # noqa: S102 - the docs example
    sol = ns["sol"]
    assert sol.stats["operators"] == {
        "pde": [("laplacian",), ("value",)],
        "boundary": [("normal",), ("value",)],
    }
    loss = sol.stats["loss_history"]
    assert loss[-1] < 1e-2 * loss[0]
