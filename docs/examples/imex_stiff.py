"""IMEXRK on a stiff reaction–diffusion system: large steps where explicit RK cannot go.

Allen–Cahn on `[0, 1]` with zero Dirichlet ends, semi-discretised by central differences on
`N` interior points:

    du/dt = u − u³  +  ν D₂ u,     ν = 0.2,

written as `NeuralODEProblem(G, u0, tspan, linear=A)` with the nonlinear part
`G(u) = u − u³` explicit and the stiff diffusion `A = ν D₂` (eigenvalues down to
≈ −4ν(N + 1)²) implicit. `IMEXRK` takes steps of 0.01, about 12x the explicit stability
limit; the error is measured against scipy's Radau at tight tolerance.

Size: `PDESOLVE_EXAMPLE_SIZE=small` (default, N = 64) or `full` (N = 256).
"""

import os

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import pdesolve as pds  # noqa: E402

SIZE = os.environ.get("PDESOLVE_EXAMPLE_SIZE", "small")
N = 64 if SIZE == "small" else 256
NU, T1, DT = 0.2, 1.0, 0.01

x = np.linspace(0.0, 1.0, N + 2)[1:-1]
h = x[1] - x[0]
D2 = (np.diag(-2.0 * np.ones(N)) + np.diag(np.ones(N - 1), 1) + np.diag(np.ones(N - 1), -1)) / h**2
A = NU * D2
u0 = 0.8 * np.sin(3 * np.pi * x) + 0.3 * np.sin(np.pi * x)


def reaction(t, u, args):
    return u - u**3


problem = pds.NeuralODEProblem(reaction, jnp.asarray(u0), (0.0, T1), linear=jnp.asarray(A))

lam_min = float(np.linalg.eigvalsh(A)[0])
print(f"N = {N}: stiffest eigenvalue of A = {lam_min:.3g}; explicit RK4 needs dt < {2.79 / -lam_min:.2e}")

ref = solve_ivp(
    lambda t, u: u - u**3 + A @ u, (0.0, T1), u0, method="Radau", rtol=1e-11, atol=1e-13, jac=lambda t, u: np.diag(1 - 3 * u**2) + A
).y[:, -1]

errors = {}
for name in ("L2", "ARS222", "ARK3", "ARK4"):
    sol = pds.solve(problem, pds.IMEXRK(name), dt0=DT)
    errors[name] = float(jnp.max(jnp.abs(sol.ys[-1] - ref)))
    print(f"IMEXRK({name!r:8}) dt = {DT}: {int(sol.stats['num_accepted_steps'])} steps, max error {errors[name]:.2e}")

# Adaptive steps with an embedded pair.
sol = pds.solve(problem, pds.IMEXRK("ARK3"), controller=pds.PIDController(rtol=1e-6, atol=1e-8), dt0=1e-3)
err = float(jnp.max(jnp.abs(sol.ys[-1] - ref)))
print(f"IMEXRK('ARK3') adaptive rtol 1e-6: {int(sol.stats['num_accepted_steps'])} steps, max error {err:.2e}")

assert DT > 5 * 2.79 / -lam_min  # far beyond the explicit limit
assert max(errors.values()) < 1e-4 and errors["ARK4"] < 1e-6, errors
assert err < 1e-4
