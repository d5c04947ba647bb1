"""The spiral: the classic neural-ODE demonstration problem.

The true system is the cubic oscillator of the torchdiffeq ``ode_demo.py`` that accompanies
Chen, Rubanova, Bettencourt & Duvenaud, *Neural Ordinary Differential Equations*,
NeurIPS 2018:

    dy/dt = (y**3) @ A,   A = [[-0.1, 2.0], [-2.0, -0.1]],   y(0) = (2, 0),   t in [0, 25]

(``y`` a row vector, so ``dy1/dt = -0.1 y1³ - 2 y2³``, ``dy2/dt = 2 y1³ - 0.1 y2³``): a
slowly decaying spiral whose angular speed grows with the radius.

The model follows the demo: an MLP applied to ``y**3`` (``cube_input=True``, the default),
so the network only has to learn a (nearly) linear map — which is why it extrapolates
well; with ``cube_input=False`` it sees ``y`` itself and must learn the cubic too.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import pdesolve as pds
from pdesolve._validation import check_int

__all__ = [
    "SPIRAL_MATRIX",
    "SPIRAL_Y0",
    "SpiralField",
    "make_mlp",
    "spiral_data",
    "spiral_problem",
    "true_spiral_problem",
]

#: The matrix `A` of the true system `dy/dt = (y**3) @ A`.
SPIRAL_MATRIX = ((-0.1, 2.0), (-2.0, -0.1))
#: The initial state of the demo.
SPIRAL_Y0 = (2.0, 0.0)


def _true_field(t, y, args):
    return (y**3) @ args


def true_spiral_problem(*, tspan=(0.0, 25.0), y0=SPIRAL_Y0, dtype=None):
    """The true spiral system `dy/dt = (y**3) @ A` as a `NeuralODEProblem` (`args = A`).

    Chen et al. (NeurIPS 2018), torchdiffeq ``examples/ode_demo.py``: `A = [[-0.1, 2],
    [-2, -0.1]]`, `y(0) = (2, 0)`, `t in [0, 25]`. Arrays use JAX's default float dtype
    unless `dtype` is given.
    """
    dt = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    a = jnp.asarray(np.asarray(SPIRAL_MATRIX), dtype=dt)
    return pds.NeuralODEProblem(
        _true_field, jnp.asarray(np.asarray(y0), dtype=dt), tuple(float(t) for t in tspan), a
    )


def spiral_data(
    n_times: int = 1000,
    t1: float = 25.0,
    noise: float = 0.0,
    key=None,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    dtype=None,
):
    """Sample a trajectory of the true spiral system (the neural-ODE training data).

    Solves `dy/dt = (y**3) @ A`, `y(0) = (2, 0)` with `pds.Dopri5()` and
    `PIDController(rtol, atol)` (tight by default), saving at `n_times` equally spaced
    times in `[0, t1]`. The defaults reproduce the demo's data (1000 points on [0, 25]).

    **Arguments:**

    - `n_times`: number of samples (>= 2), including both ends.
    - `t1`: final time (> 0).
    - `noise`: standard deviation of i.i.d. Gaussian noise added to the states (not the
      times). Needs `key` when positive.
    - `key`: a JAX PRNG key for the noise; the data are a deterministic function of it.
    - `rtol`, `atol`: tolerances of the reference integration.
    - `dtype`: floating dtype (default: JAX's default float, float64 under x64).

    **Returns:** `(ts, ys)` with shapes `(n_times,)` and `(n_times, 2)`.
    """
    n_times = check_int("n_times", n_times, 2, hint="It is the number of samples, both ends included.")
    if not float(t1) > 0.0:
        raise ValueError(f"`t1` must be positive; got {t1}.")
    if noise < 0:
        raise ValueError(f"`noise` must be non-negative; got {noise}.")
    if noise > 0 and key is None:
        raise ValueError("`noise > 0` needs a PRNG key: pass key=jax.random.PRNGKey(seed).")
    prob = true_spiral_problem(tspan=(0.0, float(t1)), dtype=dtype)
    ts = jnp.linspace(0.0, float(t1), n_times, dtype=prob.y0.dtype)
    sol = pds.solve(
        prob,
        pds.Dopri5(),
        controller=pds.PIDController(rtol=rtol, atol=atol),
        saveat=pds.SaveAt(ts=ts),
        max_steps=1_000_000,
    )
    ys = sol.ys
    if noise > 0:
        ys = ys + noise * jax.random.normal(key, ys.shape, dtype=ys.dtype)
    return ts, ys


def make_mlp(key, *, width: int = 50, depth: int = 2, dtype=None) -> eqx.nn.MLP:
    """The demo's network: `eqx.nn.MLP(2 -> 2, width 50, depth 2 hidden layers, tanh)`.

    (torchdiffeq's demo uses one hidden layer of 50: `depth=1` is its architecture.)
    """
    return eqx.nn.MLP(
        in_size=2, out_size=2, width_size=width, depth=depth, activation=jnp.tanh, key=key, dtype=dtype
    )


class SpiralField(eqx.Module):
    """Neural vector field `(t, y, args) -> mlp(y**3)` (or `mlp(y)` with `cube_input=False`)."""

    mlp: eqx.nn.MLP
    cube_input: bool = eqx.field(default=True, static=True)

    def __call__(self, t, y, args):
        return self.mlp(y**3 if self.cube_input else y)


def spiral_problem(model, *, tspan=(0.0, 25.0), y0=SPIRAL_Y0, cube_input: bool = True):
    """A `NeuralODEProblem` `dy/dt = model(y**3)` for learning the spiral.

    **Arguments:**

    - `model`: an `eqx.nn.MLP` from `make_mlp` (or any `2 -> 2` callable of one array), or
      an already wrapped `SpiralField`.
    - `tspan`: time span (default the demo's `[0, 25]`).
    - `y0`: initial state (default `(2, 0)`), cast to the model's dtype.
    - `cube_input`: feed `y**3` to the network (as in the demo) or `y`.

    Differentiate a loss of `pds.solve(spiral_problem(model), ...)` with
    `eqx.filter_grad` to get gradients with respect to the network's weights.
    """
    field = model if isinstance(model, SpiralField) else SpiralField(model, cube_input)
    leaves = [x for x in jax.tree.leaves(field) if eqx.is_inexact_array(x)]
    dt = leaves[0].dtype if leaves else jnp.result_type(float)
    y0 = jnp.asarray(np.asarray(y0) if not isinstance(y0, jax.Array) else y0, dtype=dt)
    return pds.NeuralODEProblem(field, y0, tuple(tspan), None)
