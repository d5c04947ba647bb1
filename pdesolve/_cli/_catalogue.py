"""Which solvers the command line offers and which of them apply to which catalogue problem.

The solver names (the explicit Runge–Kutta ones from `pdesolve.solvers.explicit_rk.METHOD_NAMES`),
the kind of each catalogue problem (`pdesolve.problems.CATALOGUE`) as far as the choice of
solver depends on it, the solver family that decides which solve keywords and defaults apply,
and the main job (the problem and solvers that `pdesolve` alone runs).
"""

from __future__ import annotations

import numpy as np

import pdesolve as pds
from pdesolve.solvers.explicit_rk import METHOD_NAMES, METHODS

ODE_SOLVERS = METHOD_NAMES + ("ReversibleRK", "ReversibleHeun", "ALF", "IMEXRK")
PDE_SOLVERS = ("NeuralIVP", "MethodOfLines", "DTPINN", "PINN")
SOLVERS = ODE_SOLVERS + PDE_SOLVERS
CHECKPOINT_SOLVERS = ("NeuralIVP", "DTPINN", "PINN")
PINN_SOLVERS = ("DTPINN", "PINN")
# The solvers that take rtol/atol (a PIDController) with the command line's defaults: the
# explicit RK methods with an embedded error estimate, and ReversibleRK (its default base is
# Dopri5).
ADAPTIVE_ODE_SOLVERS = tuple(m.__name__ for m in METHODS if m.tableau.b_error is not None) + ("ReversibleRK",)

MAIN_JOB = ["run", "poisson_disk", "--solver", "DTPINN,PINN", "--plot", "pdesolve-main.png"]

# What each catalogue problem is, so that `pdesolve list` need not build them (some take
# seconds): ("ode", has a stiff linear part) or ("pde", steady, NeuralIVP-ready box, dim).
# The catalogue holds only (constructor, description), so the kinds are written out here;
# tests/test_cli.py checks that the keys are exactly the catalogue's names and that each kind
# is what `_describe_kind` finds on the built problem. Problems missing here are built and
# inspected.
_KNOWN_KINDS = {
    "lotka_volterra": ("ode", False),
    "euler_rigid_body": ("ode", False),
    "arenstorf": ("ode", False),
    "brusselator": ("ode", False),
    "pleiades": ("ode", False),
    "spiral": ("ode", False),
    "white_dwarf": ("ode", False),
    "kuramoto_sivashinsky": ("ode", True),
    "poisson_disk": ("pde", True, False, 2),
    "nonlinear_poisson_disk": ("pde", True, False, 2),
    "robin_poisson_disk": ("pde", True, False, 2),
    "heat_disk": ("pde", False, False, 2),
    "wave3d": ("pde", False, True, 3),
    "advection": ("pde", False, True, 2),
    "fokker_planck": ("pde", False, True, 8),
    "vlasov": ("pde", False, True, 6),
    "wave_maps": ("pde", False, True, 3),
}


def _describe_kind(problem) -> tuple:
    if isinstance(problem, pds.NeuralODEProblem):
        return ("ode", problem.linear is not None)
    box_ready = (
        not problem.is_steady
        and isinstance(problem.domain, pds.Box)
        and (
            problem.bc is None
            or (
                isinstance(problem.bc, pds.Dirichlet)
                and not callable(problem.bc.g)
                and bool(np.all(np.asarray(problem.bc.g) == 0))
            )
        )
    )
    return ("pde", bool(problem.is_steady), bool(box_ready), int(problem.dim))


def solvers_for(kind: tuple) -> list[str]:
    """Names of the command line's solvers that apply to a problem of this kind."""
    if kind[0] == "ode":
        return [s for s in ODE_SOLVERS if s != "IMEXRK" or kind[1]]
    _, steady, box_ready, dim = kind
    out = []
    if box_ready:
        out.append("NeuralIVP")
    if dim <= 3 and not steady:  # the classical reference: RBF-FD in space, an ODE solver in time
        out.append("MethodOfLines")
    if dim <= 3:  # node sets of RBF-FD / collocation grow like 3^d and beyond
        out += ["DTPINN", "PINN"]
    return out


def _solver_class(name):
    return getattr(pds, name)


def _family(name: str) -> str:
    if name in PINN_SOLVERS:
        return "pinn"
    if name == "NeuralIVP":
        return "NeuralIVP"
    if name == "MethodOfLines":
        return "mol"
    return "ode"


def _adaptive(solver) -> bool:
    if isinstance(solver, pds.AbstractExplicitRK):
        return solver.tableau.b_error is not None
    if isinstance(solver, pds.AbstractReversibleSolver):
        return solver.error_order is not None
    if isinstance(solver, pds.IMEXRK):  # its converter turns a tableau's name into the IMEXTableau
        return solver.tableau.embedded_order is not None
    return False


def _canonical(name: str, known) -> str:
    """`name` as spelled in `known` when it matches up to case and `-`/`_` (`poisson-disk`,
    `dtpinn`); otherwise unchanged (the caller reports it with the valid names)."""
    key = name.lower().replace("-", "_")
    matches = [k for k in known if k.lower().replace("-", "_") == key]
    return matches[0] if len(matches) == 1 else name
