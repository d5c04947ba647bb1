"""NeuralIVP on the advection catalogue problem, at a tiny size.

`pdesolve.problems.advection(d=1)`: a Gaussian bump carried across `[-1, 1]` at speed 1,
zero Dirichlet ends, exact solution. NeuralIVP fits a small network to the initial bump,
then evolves its parameters by `(M + μI) θ̇ = F` with Nyström-preconditioned CG. Prints the
relative L2 error against the exact solution at the saved times and the solver's counters.

Size: `PDESOLVE_EXAMPLE_SIZE=small` (default: width 24, 400 samples) or `full` (the
default NeuralIVP network and sampling, 2-D).
"""

import os

import jax

jax.config.update("jax_enable_x64", True)   # NeuralIVP needs float64

import jax.numpy as jnp  # noqa: E402

import pdesolve as pds  # noqa: E402
from pdesolve.problems import advection  # noqa: E402

SIZE = os.environ.get("PDESOLVE_EXAMPLE_SIZE", "small")
if SIZE == "small":
    problem = advection(d=1, T=0.2, sigma=0.15)
    solver = pds.NeuralIVP(width=16, depth=2, n_samples=200, n_eval_samples=500, rank=10, fit_steps=300, head_samples=1000)
else:
    problem = advection(d=2)
    solver = pds.NeuralIVP()

T = problem.tspan[1]
sol = pds.solve(problem, solver, saveat=pds.SaveAt(ts=jnp.array([0.0, T / 2, T])), key=jax.random.PRNGKey(0))
for t, err in sol.stats["error_history"]:
    print(f"t = {float(t):.3f}: relative L2 error {float(err):.2e}")
print(
    f"parameters {sol.stats['num_parameters']}, steps {int(sol.stats['num_accepted_steps'])} "
    f"(+{int(sol.stats['num_rejected_steps'])} rejected), CG iterations per solve "
    f"{float(jnp.mean(jnp.asarray(sol.stats['cg_iterations']))):.1f}, restarts {sol.stats['restarts']}"
)
x = jnp.linspace(-1.0, 1.0, 5)[:, None]
print("u(x, T) learned:", sol(x, T))
print("u(x, T) exact:  ", jax.vmap(lambda p: problem.solution(p, T))(x))

assert float(sol.stats["error_history"][-1][1]) < 0.1
