"""Adaptive explicit Runge–Kutta on the Arenstorf orbit: error against a reference.

Solves one period of the Arenstorf orbit (`pdesolve.problems.arenstorf`) with `Dopri5` and
`Tsit5` under `PIDController` at several tolerances, and compares the state at the end of
the period with scipy's DOP853 reference (`reference_solution`) and with the exact return
to the initial value.

Size: `PDESOLVE_EXAMPLE_SIZE=small` (default, 3 tolerances) or `full` (6 tolerances).
"""

import os

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import pdesolve as pds  # noqa: E402
from pdesolve.problems import ARENSTORF_PERIOD, arenstorf, reference_solution  # noqa: E402

SIZE = os.environ.get("PDESOLVE_EXAMPLE_SIZE", "small")
TOLERANCES = [1e-5, 1e-7, 1e-9] if SIZE == "small" else [1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10]

problem = arenstorf()
reference = reference_solution(problem, np.array([ARENSTORF_PERIOD]))[-1]

print(f"{'solver':8} {'rtol':>8} {'steps':>6} {'rejected':>8} {'error vs DOP853':>16}")
errors = {}
for solver in (pds.Dopri5(), pds.Tsit5()):
    for rtol in TOLERANCES:
        sol = pds.solve(
            problem,
            solver,
            controller=pds.PIDController(rtol=rtol, atol=rtol * 1e-3),
            max_steps=100_000,
        )
        err = float(jnp.max(jnp.abs(sol.ys[-1] - reference)))
        errors[type(solver).__name__, rtol] = err
        print(
            f"{type(solver).__name__:8} {rtol:8.0e} {int(sol.stats['num_accepted_steps']):6d} "
            f"{int(sol.stats['num_rejected_steps']):8d} {err:16.2e}"
        )

# The orbit is periodic: the exact solution returns to y(0) after one period.
print("reference - y0:", float(np.max(np.abs(reference - np.asarray(problem.y0)))))

# Sanity: tighter tolerances give smaller errors, and the tightest is accurate.
for name in ("Dopri5", "Tsit5"):
    assert errors[name, TOLERANCES[-1]] < errors[name, TOLERANCES[0]]
    assert errors[name, TOLERANCES[-1]] < 1e-4, errors
