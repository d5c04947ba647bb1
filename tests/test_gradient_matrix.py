"""Gradients right in every configuration users write (the suite's most important test).

Each cell: a solver x controller x SaveAt x transform (plain `grad`, `jit(grad)`,
`jit(vmap(grad))` over `y0` and `args` with members taking different steps), gradients
w.r.t. the network parameters, `y0` and `args`, every entry finite and every directional
derivative equal to central finite differences in float64. The default run takes a pairwise
covering of the axes (every pair of values of any two axes meets in some cell, the NaN
configurations of the past among them); `pytest -m slow` runs the full product.
"""

import jax.numpy as jnp
import pytest

import pdesolve as pds

from _grad_matrix import check_against_fd, full_matrix, gradient, pairwise_matrix

PAIRWISE = pairwise_matrix()
# The configurations that returned NaN before the fix, always in the default run.
REGRESSIONS = [
    ("Dopri5", "pid", "ts_with_t0", "plain"),
    ("Tsit5", "pid", "ts_with_t0", "jit"),
    ("Bosh3", "pid", "ts_with_t0", "plain"),
    ("Dopri5", "pid", "t1", "vmap"),
    ("Tsit5", "pid", "ts", "vmap"),
]
DEFAULT = PAIRWISE + [c for c in REGRESSIONS if c not in PAIRWISE]
SLOW = [c for c in full_matrix() if c not in set(DEFAULT)]


def _id(cell):
    return "-".join(cell)


@pytest.mark.parametrize("cell", DEFAULT, ids=_id)
def test_gradient_cell(cell):
    solver, controller, saveat, transform = cell
    check_against_fd(solver, controller, saveat, gradient(*cell))


@pytest.mark.slow
@pytest.mark.parametrize("cell", SLOW, ids=_id)
def test_gradient_cell_full_product(cell):
    solver, controller, saveat, transform = cell
    check_against_fd(solver, controller, saveat, gradient(*cell))


def test_pairwise_covering_covers_every_pair():
    cells = full_matrix()
    for i in range(4):
        for j in range(i + 1, 4):
            want = {(c[i], c[j]) for c in cells}
            got = {(c[i], c[j]) for c in DEFAULT}
            assert want == got


def test_readme_quick_start_gradient_is_finite_and_right():
    """The README's set-up: SaveAt(ts=linspace(t0, t1)) with a PID controller."""
    import jax

    def loss(a):
        p = pds.NeuralODEProblem(lambda t, y, args: -args * y, jnp.array([1.0, 2.0]), (0.0, 1.0), a)
        sol = pds.solve(p, pds.Dopri5(), controller=pds.PIDController(rtol=1e-8, atol=1e-10),
                        saveat=pds.SaveAt(ts=jnp.linspace(0.0, 1.0, 11)))
        return jnp.sum(sol.ys)

    ts = jnp.linspace(0.0, 1.0, 11)
    exact = -jnp.sum(ts * jnp.exp(-0.5 * ts)) * 3.0  # d/da of sum_k (1 + 2) e^{-a t_k}
    g = jax.grad(loss)(0.5)
    assert jnp.isfinite(g)
    assert abs(float(g - exact)) < 1e-6 * abs(float(exact))
