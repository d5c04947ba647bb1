"""`StepOptions`: the options of a time-stepping solve, as one value.

`pds.solve` takes them as keywords (`saveat`, `controller`, `dt0`, `max_steps`, `throw`,
`progress`, `adjoint`); each ODE solver checks them once (`StepOptions.of`) and passes the one
value down to `pdesolve._integrate.integrate`, to its compiled run and to the solution's
`evaluate(t)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx

from ._adjoint import AbstractAdjoint, RecursiveCheckpointAdjoint
from ._controllers import AbstractStepController, resolve_controller
from ._saveat import SaveAt


class StepOptions(eqx.Module):
    """**Fields:** `saveat`, `controller` (resolved: `ConstantStepSize` when only `dt0` is
    given), `dt0`, `max_steps`, `throw`, `progress`, `adjoint` — as documented on `pds.solve`.

    A pytree: arrays (`saveat.ts`, the controller's tolerances when traced, a traced `dt0`)
    are leaves; `max_steps`, `throw` and `progress` are static, so they select the compiled
    program.
    """

    saveat: SaveAt
    controller: AbstractStepController
    dt0: Any
    adjoint: AbstractAdjoint
    max_steps: int = eqx.field(static=True)
    throw: bool = eqx.field(static=True, default=True)
    progress: bool = eqx.field(static=True, default=False)

    @classmethod
    def of(cls, *, saveat, controller, dt0, max_steps, throw, progress, adjoint=None) -> StepOptions:
        """The options with the controller resolved from `controller` and `dt0`, and the
        adjoint defaulting to `RecursiveCheckpointAdjoint()`."""
        return cls(saveat=saveat, controller=resolve_controller(controller, dt0), dt0=dt0,
                   adjoint=RecursiveCheckpointAdjoint() if adjoint is None else adjoint, max_steps=max_steps,
                   throw=throw, progress=progress)

    def replace(self, **changes) -> StepOptions:
        """A copy with some fields changed (e.g. the inner `saveat` of a mirrored solve)."""
        return dataclasses.replace(self, **changes)
