"""DTPINN against PINN on the Poisson problem on the unit disk, at a tiny size.

`pdesolve.problems.poisson_disk`: `Δu = f` on the unit disk, Dirichlet data, exact solution
`u = 1 + sin(πx) cos(πy)` (Sharma & Shankar 2022). Both solvers get the same node set, the
same small tanh network, L-BFGS and the same number of steps; DTPINN takes its Laplacian
from a sparse RBF-FD matrix in float64, PINN from autodiff in float32. Prints the relative
L2 error on a random test set and the training time of each.

Size: `PDESOLVE_EXAMPLE_SIZE=small` (default: 300 nodes, 300 steps) or `full` (828 nodes,
the paper's 4x50 network, 1500 steps).
"""

import os

import jax

jax.config.update("jax_enable_x64", True)   # DTPINN trains in float64

import pdesolve as pds  # noqa: E402
from pdesolve.problems import poisson_disk  # noqa: E402

SIZE = os.environ.get("PDESOLVE_EXAMPLE_SIZE", "small")
if SIZE == "small":
    common = dict(n_nodes=300, width=20, depth=2, n_test=1000)
    steps = 300
else:
    common = dict(n_nodes=828, width=50, depth=4)
    steps = 1500

problem = poisson_disk()
results = {}
for solver in (pds.DTPINN(order=3, **common), pds.PINN(**common)):
    sol = pds.solve(problem, solver, max_steps=steps, key=jax.random.PRNGKey(0))
    name = type(solver).__name__
    results[name] = sol.stats["relative_l2_error"]
    print(
        f"{name:6}: relative L2 error {sol.stats['relative_l2_error']:.2e}, "
        f"final loss {sol.stats['loss_history'][-1]:.2e}, train time {sol.stats['train_time']:.1f} s"
    )

assert results["DTPINN"] < 5e-2 and results["PINN"] < 5e-2, results
