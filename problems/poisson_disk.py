"""Poisson and heat problems on the unit disk (Sharma & Shankar, NeurIPS 2022, section 4).

Manufactured solutions on the unit disk ``Omega = {x : |x| <= 1}``:

* steady: ``u(x, y) = 1 + sin(pi x) cos(pi y)`` (their eq. 19);
* heat: ``u(x, y, t) = 1 + sin(pi x) cos(pi y) sin(pi t)``, ``t in [0, 1]`` (their eq. 20).

The forcing ``f`` and boundary data ``g`` are computed from the exact solution so that it
solves each problem exactly. Every function here is defined at module level (not as a closure)
so that repeated calls return problems whose functions are identical objects, which lets
jitted solvers reuse their compiled code.

Reference: R. Sharma, V. Shankar, *Accelerated training of physics informed neural networks
(PINNs) using meshless discretizations*, NeurIPS 2022.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from pdesolve._boundary import Dirichlet, Robin
from pdesolve._geometry import Ball
from pdesolve._problems import PDEProblem

__all__ = [
    "disk_exact",
    "heat_disk",
    "heat_exact",
    "nonlinear_poisson_disk",
    "poisson_disk",
    "robin_poisson_disk",
]

PI = jnp.pi


def _unit_disk() -> Ball:
    return Ball(np.zeros(2), 1.0)


# -- steady manufactured solution -----------------------------------------------------------


def disk_exact(x, t=None):
    """``u(x) = 1 + sin(pi x0) cos(pi x1)`` (``t`` ignored)."""
    del t
    return 1.0 + jnp.sin(PI * x[0]) * jnp.cos(PI * x[1])


def _disk_laplacian(x):
    """``Delta u = -2 pi^2 sin(pi x0) cos(pi x1)``."""
    return -2.0 * PI**2 * jnp.sin(PI * x[0]) * jnp.cos(PI * x[1])


def _disk_grad(x):
    return jnp.stack(
        [
            PI * jnp.cos(PI * x[0]) * jnp.cos(PI * x[1]),
            -PI * jnp.sin(PI * x[0]) * jnp.sin(PI * x[1]),
        ]
    )


def _linear_residual(u, x, args):
    del args
    return u.laplacian - _disk_laplacian(x)


def _nonlinear_residual(u, x, args):
    del args
    f = _disk_laplacian(x) - jnp.exp(disk_exact(x))
    return u.laplacian - jnp.exp(u.value) - f


def _robin_target(x, t=None):
    """``g = n . grad u + u`` on the unit circle, ``n = x / |x|`` (alpha = beta = 1)."""
    del t
    n = x / jnp.linalg.norm(x)
    return jnp.dot(n, _disk_grad(x)) + disk_exact(x)


def poisson_disk() -> PDEProblem:
    """Linear Poisson ``Delta u = f`` on the unit disk, Dirichlet ``u = g`` on the circle.

    Exact solution ``u = 1 + sin(pi x) cos(pi y)``, ``f = Delta u``, ``g = u``
    (Sharma & Shankar 2022, eq. 3 and 19). Steady problem (``residual=``).
    """
    return PDEProblem(
        residual=_linear_residual,
        domain=_unit_disk(),
        bc=Dirichlet(disk_exact),
        solution=disk_exact,
    )


def nonlinear_poisson_disk() -> PDEProblem:
    """Nonlinear Poisson ``Delta u = exp(u) + f`` on the unit disk, Dirichlet ``u = g``.

    Exact solution ``u = 1 + sin(pi x) cos(pi y)``, ``f = Delta u - exp(u)``, ``g = u``
    (Sharma & Shankar 2022, eq. 1 and 19).
    """
    return PDEProblem(
        residual=_nonlinear_residual,
        domain=_unit_disk(),
        bc=Dirichlet(disk_exact),
        solution=disk_exact,
    )


def robin_poisson_disk() -> PDEProblem:
    """Linear Poisson ``Delta u = f`` with the Robin condition ``n . grad u + u = g``.

    ``alpha = beta = 1`` as in Sharma & Shankar 2022 (eq. 2); ``g`` from the exact solution
    ``u = 1 + sin(pi x) cos(pi y)`` with the outward normal ``n = x / |x|``.
    """
    return PDEProblem(
        residual=_linear_residual,
        domain=_unit_disk(),
        bc=Robin(1.0, 1.0, _robin_target),
        solution=disk_exact,
    )


# -- heat ------------------------------------------------------------------------------------


def heat_exact(x, t):
    """``u(x, t) = 1 + sin(pi x0) cos(pi x1) sin(pi t)``."""
    return 1.0 + jnp.sin(PI * x[0]) * jnp.cos(PI * x[1]) * jnp.sin(PI * t)


def _heat_forcing(x, t):
    """``f = u_t - Delta u = pi s c cos(pi t) + 2 pi^2 s c sin(pi t)``, ``s c = sin(pi x0) cos(pi x1)``."""
    sc = jnp.sin(PI * x[0]) * jnp.cos(PI * x[1])
    return PI * sc * jnp.cos(PI * t) + 2.0 * PI**2 * sc * jnp.sin(PI * t)


def _heat_rhs(u, x, t, args):
    del args
    return u.laplacian + _heat_forcing(x, t)


def _heat_u0(x):
    return heat_exact(x, 0.0)


def heat_disk() -> PDEProblem:
    """Forced heat equation ``u_t = Delta u + f`` on the unit disk, ``t in [0, 1]``.

    Exact solution ``u = 1 + sin(pi x) cos(pi y) sin(pi t)`` (Sharma & Shankar 2022, eq. 5-7
    and 20): ``u0 = 1``, Dirichlet ``g(x, t) = u(x, t)`` on the circle.
    """
    return PDEProblem(
        rhs=_heat_rhs,
        domain=_unit_disk(),
        bc=Dirichlet(heat_exact),
        u0=_heat_u0,
        tspan=(0.0, 1.0),
        solution=heat_exact,
    )
