"""Explicit Runge–Kutta solvers for `NeuralODEProblem`.

Gradients: discretise-then-differentiate, chosen by `solve(..., adjoint=...)`:
`RecursiveCheckpointAdjoint(checkpoints=None)` (the default: backpropagation through the
exact discrete steps with recursive online checkpointing, memory `checkpoints` loop states,
default `O(sqrt(max_steps))`), `DirectAdjoint()` (forward and reverse mode, so `jax.jvp`,
`jax.jacfwd` and `jax.hessian` work) or `ForwardMode()` (forward mode only, cheapest).
See docs/gradients.md.
"""

from typing import TYPE_CHECKING, ClassVar, final

import equinox as eqx

from pdesolve import _tableau as tab
from pdesolve._adjoint import AUTODIFF_ADJOINTS, RecursiveCheckpointAdjoint, resolve_adjoint
from pdesolve._step_options import StepOptions
from pdesolve._integrate import integrate, validate
from pdesolve._problems import NeuralODEProblem
from pdesolve._rk import RKStepper, ode_rhs
from pdesolve._solution import ode_solution
from pdesolve._solve import AbstractSolver, register
from pdesolve._tableau import ButcherTableau


class AbstractExplicitRK(AbstractSolver):
    """An explicit Runge–Kutta method given by a `ButcherTableau`.

    A subclass provides `tableau`: as a `ClassVar` (the built-in methods, e.g. `Tsit5`, whose
    `Tsit5.tableau` is read on the class) or as a field (`ExplicitRK(tableau)`).

    Gradients are chosen with `solve(..., adjoint=...)`: `RecursiveCheckpointAdjoint`
    (default), `DirectAdjoint` or `ForwardMode` (docs/gradients.md).
    """

    if TYPE_CHECKING:
        # equinox lets a ClassVar or a field implement an `AbstractVar`; mypy reads
        # `AbstractVar[T]` as a plain instance attribute, which a ClassVar may not override,
        # so type checkers see a read-only attribute instead.
        @property
        def tableau(self) -> ButcherTableau: ...
    else:
        tableau: eqx.AbstractVar[ButcherTableau]

    @property
    def order(self) -> int:
        return self.tableau.order


class Euler(AbstractExplicitRK):
    """Forward Euler method.

    Order 1; 1 stage, 1 evaluation of the vector field per step. No error estimate: use
    ConstantStepSize or StepTo.
    """

    tableau: ClassVar[ButcherTableau] = tab.EULER


class Heun(AbstractExplicitRK):
    """Heun's method (explicit trapezoidal rule), with Euler embedded.

    Order 2; 2 stages, 2 evaluations of the vector field per step. Embedded error estimate
    of order 1 (usable with PIDController).
    """

    tableau: ClassVar[ButcherTableau] = tab.HEUN


class Midpoint(AbstractExplicitRK):
    """Explicit midpoint method, with Euler embedded.

    Order 2; 2 stages, 2 evaluations of the vector field per step. Embedded error estimate
    of order 1 (usable with PIDController).
    """

    tableau: ClassVar[ButcherTableau] = tab.MIDPOINT


class Ralston(AbstractExplicitRK):
    """Ralston's second-order method (minimum error bound), with Euler embedded.

    Order 2; 2 stages, 2 evaluations of the vector field per step. Embedded error estimate
    of order 1 (usable with PIDController).
    """

    tableau: ClassVar[ButcherTableau] = tab.RALSTON


class Bosh3(AbstractExplicitRK):
    """Bogacki–Shampine 3(2) method (RK23), BIT 29 (1989).

    Order 3; 4 stages, 3 evaluations of the vector field per step. Embedded error estimate
    of order 2 (usable with PIDController). First-same-as-last.
    """

    tableau: ClassVar[ButcherTableau] = tab.BOSH3


class RK4(AbstractExplicitRK):
    """The classical fourth-order Runge–Kutta method.

    Order 4; 4 stages, 4 evaluations of the vector field per step. No error estimate: use
    ConstantStepSize or StepTo.
    """

    tableau: ClassVar[ButcherTableau] = tab.RK4


class Dopri5(AbstractExplicitRK):
    """Dormand–Prince 5(4) method, J. Comput. Appl. Math. 6 (1980).

    Order 5; 7 stages, 6 evaluations of the vector field per step. Embedded error estimate
    of order 4 (usable with PIDController). First-same-as-last.
    """

    tableau: ClassVar[ButcherTableau] = tab.DOPRI5


class Tsit5(AbstractExplicitRK):
    """Tsitouras 5(4) method, Comput. Math. Appl. 62 (2011).

    Order 5; 7 stages, 6 evaluations of the vector field per step. Embedded error estimate
    of order 4 (usable with PIDController). First-same-as-last.
    """

    tableau: ClassVar[ButcherTableau] = tab.TSIT5


#: The built-in explicit Runge–Kutta methods, lowest order first: the one list the CLI,
#: the catalogue and the tests read.
METHODS: tuple[type[AbstractExplicitRK], ...] = (Euler, Heun, Midpoint, Ralston, Bosh3, RK4, Dopri5, Tsit5)
METHOD_NAMES: tuple[str, ...] = tuple(m.__name__ for m in METHODS)


@final
class ExplicitRK(AbstractExplicitRK):
    """An explicit Runge–Kutta solver for a user-supplied `ButcherTableau`."""

    tableau: ButcherTableau


@eqx.filter_jit
def _integrate_ode(problem, solver, options, events=()):
    t0, t1 = problem.tspan
    return integrate(ode_rhs(problem), RKStepper(solver.tableau), t0, t1, problem.y0, options, args=problem.args,
                     backward=problem.backward, events=events)


@register(NeuralODEProblem, AbstractExplicitRK)
def _solve_neural_ode(problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, adjoint=None,
                      event=()):
    del key
    adjoint = resolve_adjoint(adjoint, solver, RecursiveCheckpointAdjoint(), AUTODIFF_ADJOINTS)
    options = StepOptions.of(saveat=saveat, controller=controller, dt0=dt0, adjoint=adjoint, max_steps=max_steps,
                             throw=throw, progress=progress)
    t0, t1 = problem.tspan
    # Checks on concrete values first; the solve itself is compiled once per problem
    # structure (equinox.filter_jit), so repeated solves of one problem reuse it.
    validate(RKStepper(solver.tableau), options, t0, t1, backward=problem.backward)
    ts, ys, stats, result, *dense = _integrate_ode(problem, solver, options, event)
    return ode_solution(ts, ys, stats, result, problem, solver, options, outputs=dense[0] if dense else None)
