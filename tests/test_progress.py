"""`progress=True` shows a tqdm bar from inside jit and does not change results."""

import jax
import jax.numpy as jnp
import numpy as np

import pdesolve as pds


def test_progress_bar_advances_and_results_unchanged(capsys):
    prob = pds.NeuralODEProblem(lambda t, y, a: a * y, jnp.array([1.0, -1.0]), (0.0, 1.0), jnp.array(-0.5))

    @jax.jit
    def run(y0, progress):
        del progress
        return pds.solve(pds.remake(prob, y0=y0), pds.RK4(), dt0=0.01, progress=True).ys

    quiet = pds.solve(prob, pds.RK4(), dt0=0.01, progress=False).ys
    loud = run(prob.y0, 0)
    np.testing.assert_array_equal(np.asarray(quiet), np.asarray(loud))
    err = capsys.readouterr().err
    assert "100/100" in err and "solve" in err
    # Under vmap and grad the bar still completes and the values are unchanged.
    g = jax.grad(lambda y0: pds.solve(pds.remake(prob, y0=y0), pds.RK4(), dt0=0.01, progress=True).ys.sum())
    g_quiet = jax.grad(lambda y0: pds.solve(pds.remake(prob, y0=y0), pds.RK4(), dt0=0.01).ys.sum())
    np.testing.assert_array_equal(np.asarray(g(prob.y0)), np.asarray(g_quiet(prob.y0)))
    batched = jax.vmap(lambda y0: run(y0, 0))(jnp.ones((3, 2)))
    assert batched.shape == (3, 1, 2)
    assert "100/100" in capsys.readouterr().err
