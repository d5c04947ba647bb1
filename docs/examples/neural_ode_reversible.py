"""Train a small neural ODE with exact O(1)-memory gradients from `ReversibleRK`.

Fits `dy/dt = MLP(y**3)` to a trajectory of the spiral (`pdesolve.problems.spiral_data`)
by Adam on the mean-squared error at the data times. Gradients come from `jax.grad`
through `pds.solve(..., pds.ReversibleRK(base=pds.RK4()))`: the reversible adjoint
reconstructs the trajectory backwards instead of storing it. The first gradient is checked
against central finite differences of the loss along one random direction.

Size: `PDESOLVE_EXAMPLE_SIZE=small` (default: 300 Adam steps) or `full` (2000 steps).
"""

import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import pdesolve as pds  # noqa: E402
from pdesolve.problems import make_mlp, spiral_data, spiral_problem  # noqa: E402

SIZE = os.environ.get("PDESOLVE_EXAMPLE_SIZE", "small")
N_STEPS = 300 if SIZE == "small" else 2000
T1, N_TIMES, DT = 0.5, 26, 0.01

ts, ys = spiral_data(N_TIMES, T1)
model = make_mlp(jax.random.PRNGKey(0), width=16, depth=1)
solver = pds.ReversibleRK(base=pds.RK4(), coupling=0.999)


def loss(model):
    problem = spiral_problem(model, tspan=(0.0, T1))
    sol = pds.solve(problem, solver, dt0=DT, saveat=pds.SaveAt(ts=ts))
    return jnp.mean((sol.ys - ys) ** 2)


loss_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(loss))

# Check the reversible gradient against central finite differences along one direction.
params, static = eqx.partition(model, eqx.is_inexact_array)
direction = jax.tree.map(lambda p: jax.random.normal(jax.random.PRNGKey(1), p.shape, p.dtype), params)
_, grads = loss_and_grad(model)
directional = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array)), jax.tree.leaves(direction)))
eps = 1e-6
shifted = lambda s: eqx.combine(jax.tree.map(lambda p, d: p + s * d, params, direction), static)  # noqa: E731
fd = (loss(shifted(eps)) - loss(shifted(-eps))) / (2 * eps)
print(f"directional derivative: reversible adjoint {float(directional):.10e}, finite differences {float(fd):.10e}")
assert abs(directional - fd) <= 1e-6 * abs(fd) + 1e-10

optimiser = optax.adam(1e-2)
state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))
start = time.perf_counter()
first = None
for step in range(N_STEPS):
    value, grads = loss_and_grad(model)
    first = float(value) if first is None else first
    updates, state = optimiser.update(grads, state)
    model = eqx.apply_updates(model, updates)
    if step % 50 == 0:
        print(f"step {step:4d}  loss {float(value):.4e}")
final = float(loss(model))
print(f"loss {first:.4e} -> {final:.4e} after {N_STEPS} Adam steps ({time.perf_counter() - start:.1f} s)")
assert final < 0.1 * first
