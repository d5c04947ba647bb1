"""How gradients of a time-stepping solve are computed: the `adjoint=` argument of `solve`.

The vocabulary is diffrax's and SciMLSensitivity's. Every time-stepping solver takes
`RecursiveCheckpointAdjoint`, `DirectAdjoint` and `ForwardMode` (autodiff through its own
discrete steps); method-specific adjoints (`ReversibleAdjoint`, `DiscreteAdjoint`) are
accepted only by the solvers they belong to. `solve` refuses any other pairing with a
message naming the adjoints the solver takes.

| adjoint | reverse mode (`grad`, `jacrev`) | forward mode (`jvp`, `jacfwd`) | memory (reverse) | gradient |
|---|---|---|---|---|
| `RecursiveCheckpointAdjoint(checkpoints)` | yes | no | `checkpoints` loop states | exact for the discrete scheme |
| `DirectAdjoint()` | yes | yes (also `hessian`) | `O(max_steps)` loop states | exact for the discrete scheme |
| `ForwardMode()` | no | yes, cheapest | none | exact for the discrete scheme |
| `ReversibleAdjoint()` | yes | no | `O(1)` states (+ step times) | exact up to reconstruction round-off |
| `DiscreteAdjoint(checkpoints)` | yes | no | `checkpoints` step states | exact for the discrete scheme |

In every case the step sizes chosen by an adaptive controller are held fixed in the
derivative (the standard discretise-then-differentiate convention, as in PETSc's
TSAdjoint): the controller's inputs are not differentiated.
"""

import abc
from typing import TYPE_CHECKING, ClassVar, Literal

import equinox as eqx

from ._validation import check_int

#: The kinds of `equinox.internal.while_loop`.
LoopKind = Literal["lax", "checkpointed", "bounded"]


class AbstractAdjoint(eqx.Module):
    """How `solve` differentiates a time-stepping solve. Pass an instance as
    `solve(..., adjoint=...)`.

    `loop_kind` is the kind of `equinox.internal.while_loop` that runs the steps
    (`"checkpointed"`, `"bounded"` or `"lax"`), `checkpoints` its checkpoint count.
    """

    if TYPE_CHECKING:
        # equinox lets a ClassVar or a field implement an `AbstractVar`; mypy reads
        # `AbstractVar[T]` as a plain instance attribute, which a ClassVar may not override,
        # so type checkers see a read-only attribute instead (as `AbstractExplicitRK.tableau`).
        @property
        def checkpoints(self) -> int | None: ...
    else:
        checkpoints: eqx.AbstractVar[int | None]

    @property
    @abc.abstractmethod
    def loop_kind(self) -> LoopKind: ...


def _check_checkpoints(checkpoints, who):
    if checkpoints is not None:
        check_int("checkpoints", checkpoints, 1, hint=f"{who}(checkpoints=...) is the number of checkpoints, or None.")


class RecursiveCheckpointAdjoint(AbstractAdjoint):
    """Backpropagation through the solver's discrete steps with recursive online
    checkpointing (Stumm & Walther 2010, via `equinox.internal.while_loop`): memory holds
    `checkpoints` copies of the loop state (default `O(sqrt(max_steps))`, at most one
    recomputation per step), never steps x stages of intermediates. The default for
    explicit Runge–Kutta methods. Reverse mode only (`jax.grad`, `jax.jacrev`); for
    `jax.jvp`, `jax.jacfwd` or `jax.hessian` use `DirectAdjoint` or `ForwardMode`.
    """

    checkpoints: int | None = None

    def __check_init__(self):
        _check_checkpoints(self.checkpoints, "RecursiveCheckpointAdjoint")

    @property
    def loop_kind(self):
        return "checkpointed"


class DirectAdjoint(AbstractAdjoint):
    """Differentiate the loop directly: a bounded loop (nested scans of depth
    `log_16(max_steps)`) that supports both reverse and forward mode, so `jax.jvp`,
    `jax.jacfwd`, `jax.jacrev` and `jax.hessian` all work. Reverse mode stores the loop
    state of every step, `O(max_steps)` memory, and the forward solve is somewhat slower
    than with the other adjoints: prefer `RecursiveCheckpointAdjoint` for plain gradients
    and `ForwardMode` for Jacobian-vector products.
    """

    checkpoints: ClassVar[None] = None

    @property
    def loop_kind(self):
        return "bounded"


class ForwardMode(AbstractAdjoint):
    """Forward-mode differentiation only (`jax.jvp`, `jax.jacfwd`), through a plain
    `lax.while_loop`: no memory beyond the tangents, the cheapest choice when there are
    fewer inputs than outputs (sensitivities of a few parameters, Lyapunov exponents).
    Reverse mode (`jax.grad`) raises; use `RecursiveCheckpointAdjoint` for that.
    """

    checkpoints: ClassVar[None] = None

    @property
    def loop_kind(self):
        return "lax"


class ReversibleAdjoint(AbstractAdjoint):
    """The reversible adjoint of `ReversibleRK`, `ReversibleHeun` and `ALF` (McCallum &
    Foster 2024; Kidger et al. 2021): the backward pass reconstructs each state by the
    step's exact algebraic inverse from the final state, so memory is `O(1)` in the number
    of steps (plus the accepted step times). The default for those solvers. Reverse mode
    only; for forward mode pass `DirectAdjoint` or `ForwardMode` to the same solver.

    **Exactness check.** The backward pass ends by comparing its reconstruction of the
    initial state with the true one. Round-off in the reconstruction is amplified by up to
    `1/λ` per step (docs/reversible.md), so with a small coupling over many steps the
    reconstructed trajectory, and with it the gradient, can be wrong (λ = 0.9 over 300
    steps: relative error ~1e-4). If the relative error `max|ŷ0 − y0| / max|y0|` exceeds
    `reconstruction_tol` (default `sqrt(eps)` of the state's dtype: 1.5e-8 in float64,
    3.5e-4 in float32) the gradient raises (inside `jit` too) instead of returning an
    inexact value; pass `reconstruction_tol=float("inf")` to switch the check off.
    """

    reconstruction_tol: float | None = None
    checkpoints: ClassVar[None] = None

    def __check_init__(self):
        tol = self.reconstruction_tol
        if tol is not None and not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol > 0):
            raise ValueError(
                f"ReversibleAdjoint(reconstruction_tol=...) must be a positive float (or None for "
                f"sqrt(eps)); got {tol!r}."
            )

    @property
    def loop_kind(self):
        # The forward solve inside the custom VJP is never differentiated by JAX.
        return "lax"


class DiscreteAdjoint(AbstractAdjoint):
    """The discrete adjoint of `IMEXRK` (Zhang, Liu & Maulik 2023, SINODE eq. 5): a custom
    VJP per step that solves the transposed stage systems with the transposed LU factors,
    with steps held by recursive checkpointing (`checkpoints` step states, default
    `O(sqrt(max_steps))`). The default for `IMEXRK`. Reverse mode only.
    """

    checkpoints: int | None = None

    def __check_init__(self):
        _check_checkpoints(self.checkpoints, "DiscreteAdjoint")

    @property
    def loop_kind(self):
        return "checkpointed"


AUTODIFF_ADJOINTS = (RecursiveCheckpointAdjoint, DirectAdjoint, ForwardMode)


def resolve_adjoint(adjoint, solver, default: AbstractAdjoint, allowed: tuple[type, ...]) -> AbstractAdjoint:
    """`adjoint` (or `default` when `None`), checked against the types `solver` takes."""
    if adjoint is None:
        return default
    if not isinstance(adjoint, AbstractAdjoint):
        raise TypeError(
            f"`adjoint` must be a pdesolve adjoint such as pds.RecursiveCheckpointAdjoint(), "
            f"pds.DirectAdjoint() or pds.ForwardMode(); got {adjoint!r}."
        )
    if not isinstance(adjoint, allowed):
        names = ", ".join(t.__name__ for t in allowed)
        raise ValueError(
            f"{type(solver).__name__} cannot use {type(adjoint).__name__}; it takes: {names} "
            f"(default {type(default).__name__}). See docs/gradients.md."
        )
    return adjoint
