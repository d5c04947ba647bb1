"""Explicit Runge–Kutta solvers for `NeuralODEProblem`.

Gradients: discretise-then-differentiate, chosen by `solve(..., adjoint=...)`:
`RecursiveCheckpointAdjoint(checkpoints=None)` (the default: backpropagation through the
exact discrete steps with recursive online checkpointing, memory `checkpoints` loop states,
default `O(sqrt(max_steps))`), `DirectAdjoint()` (forward and reverse mode, so `jax.jvp`,
`jax.jacfwd` and `jax.hessian` work) or `ForwardMode()` (forward mode only, cheapest).
See docs/gradients.md.
"""

from typing import ClassVar

import equinox as eqx

from pdesolve import _tableau as tab
from pdesolve._adjoint import AUTODIFF_ADJOINTS, RecursiveCheckpointAdjoint, resolve_adjoint
from pdesolve._controllers import resolve_controller
from pdesolve._integrate import integrate, validate
from pdesolve._problems import NeuralODEProblem
from pdesolve._rk import RKStepper, ode_rhs
from pdesolve._solution import ode_solution
from pdesolve._solve import AbstractSolver, register
from pdesolve._tableau import ButcherTableau


class AbstractExplicitRK(AbstractSolver):
    """An explicit Runge–Kutta method given by a `ButcherTableau`.

    Gradients are chosen with `solve(..., adjoint=...)`: `RecursiveCheckpointAdjoint`
    (default), `DirectAdjoint` or `ForwardMode` (docs/gradients.md).
    """

    tableau: eqx.AbstractClassVar[ButcherTableau]

    @property
    def order(self) -> int:
        return self.tableau.order


def _doc(t: ButcherTableau, text: str) -> str:
    err = (
        f"Embedded error estimate of order {t.embedded_order} (usable with PIDController)."
        if t.b_error is not None
        else "No error estimate: use ConstantStepSize or StepTo."
    )
    fsal = " First-same-as-last." if t.fsal else ""
    evals = t.stages - (1 if t.fsal else 0)
    return (
        f"{text}\n\nOrder {t.order}; {t.stages} stage{'s' if t.stages > 1 else ''}, {evals} "
        f"evaluation{'s' if evals > 1 else ''} of the vector field per step. {err}{fsal}\n"
    )


def _make(name: str, tableau: ButcherTableau, text: str):
    cls = type(
        name,
        (AbstractExplicitRK,),
        {
            "__annotations__": {"tableau": ClassVar[ButcherTableau]},
            "tableau": tableau,
            "__doc__": _doc(tableau, text),
            "__module__": __name__,
        },
    )
    return cls


Euler = _make("Euler", tab.EULER, "Forward Euler method.")
Heun = _make("Heun", tab.HEUN, "Heun's method (explicit trapezoidal rule), with Euler embedded.")
Midpoint = _make("Midpoint", tab.MIDPOINT, "Explicit midpoint method, with Euler embedded.")
Ralston = _make(
    "Ralston", tab.RALSTON, "Ralston's second-order method (minimum error bound), with Euler embedded."
)
Bosh3 = _make("Bosh3", tab.BOSH3, "Bogacki–Shampine 3(2) method (RK23), BIT 29 (1989).")
RK4 = _make("RK4", tab.RK4, "The classical fourth-order Runge–Kutta method.")
Dopri5 = _make("Dopri5", tab.DOPRI5, "Dormand–Prince 5(4) method, J. Comput. Appl. Math. 6 (1980).")
Tsit5 = _make("Tsit5", tab.TSIT5, "Tsitouras 5(4) method, Comput. Math. Appl. 62 (2011).")


class ExplicitRK(AbstractExplicitRK):
    """An explicit Runge–Kutta solver for a user-supplied `ButcherTableau`."""

    tableau: ButcherTableau  # pyright: ignore


@eqx.filter_jit
def _integrate_ode(problem, solver, saveat, controller, dt0, max_steps, throw, progress, adjoint, events=()):
    t0, t1 = problem.tspan
    return integrate(
        ode_rhs(problem),
        RKStepper(solver.tableau),
        t0,
        t1,
        problem.y0,
        args=problem.args,
        saveat=saveat,
        controller=controller,
        dt0=dt0,
        max_steps=max_steps,
        throw=throw,
        progress=progress,
        adjoint=adjoint,
        backward=problem.backward,
        events=events,
    )


@register(NeuralODEProblem, AbstractExplicitRK)
def _solve_neural_ode(problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, adjoint=None,
                      event=()):
    del key
    adjoint = resolve_adjoint(adjoint, solver, RecursiveCheckpointAdjoint(), AUTODIFF_ADJOINTS)
    controller = resolve_controller(controller, dt0)
    t0, t1 = problem.tspan
    # Checks on concrete values first; the solve itself is compiled once per problem
    # structure (equinox.filter_jit), so repeated solves of one problem reuse it.
    validate(RKStepper(solver.tableau), controller, saveat, t0, t1, max_steps=max_steps, backward=problem.backward)
    ts, ys, stats, result, *dense = _integrate_ode(problem, solver, saveat, controller, dt0, max_steps, throw,
                                                   progress, adjoint, event)
    return ode_solution(ts, ys, stats, result, problem, solver, controller, dt0, max_steps, adjoint,
                        outputs=dense[0] if dense else None)
