"""The host loop of every long run: `pds.train`, `DTPINN`/`PINN` training and `NeuralIVP`'s
parameter ODE.

A long run is a compiled step (or chunk of steps) called again and again from Python.
`drive` owns what is the same for all of them: the checkpoint's lock, resuming from it and
saving it every `Checkpoint.every` steps and at the end, chunk sizes that end on those
save boundaries, the progress bar, timing (compilation apart from running), and stopping on
a non-finite loss. What differs — what one chunk computes, what its state is, when the run
has finished early — is an `AbstractRun`.

Cost: the loop itself is host bookkeeping, O(1) per chunk; a chunk of `n` steps is one
dispatch of a compiled program, so `chunk` trades host round trips against how often the bar
moves and how finely a non-finite loss is caught.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from typing import Any, ClassVar

import numpy as np

from ._checkpoint import Checkpoint, run_lock
from ._checkpoint import load as load_checkpoint
from ._checkpoint import save as save_checkpoint


@dataclasses.dataclass(frozen=True)
class Advanced:
    """What one call of `AbstractRun.advance` did: `steps` taken (0 for a call that only
    saved output or repaired the state) and the loss after the last of them (`None` for runs
    without a loss)."""

    steps: int
    loss: float | None = None


@dataclasses.dataclass(frozen=True)
class Progress:
    """How the bar counts: `total` units of `unit`; `AbstractRun.position` says where the
    run is."""

    total: float
    unit: str = "step"


@dataclasses.dataclass
class Record:
    """What `drive` measured: `steps` (taken, resumed ones included), `run_time` (seconds
    inside `advance`, summed over resumed runs), `compile_time` (seconds of `compile`),
    `resumed_from` (the checkpoint's step, or `None`), `nonfinite` (the loss became NaN or
    infinite and the run stopped)."""

    steps: int = 0
    run_time: float = 0.0
    compile_time: float = 0.0
    resumed_from: int | None = None
    nonfinite: bool = False


class AbstractRun(abc.ABC):
    """One kind of long run, as `drive` sees it.

    `kind` names its checkpoints (a file written by one kind is refused by another).
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def compile(self) -> None:
        """Compile the chunk before timing starts (e.g. a zero-step call); may do nothing."""

    @abc.abstractmethod
    def advance(self, n: int, record: Record) -> Advanced:
        """Run up to `n` steps in one compiled call and keep their results; `record` holds
        the steps and time before this call."""

    @abc.abstractmethod
    def after(self, record: Record) -> None:
        """Called after each `advance`, with `record` updated (histories per chunk)."""

    @abc.abstractmethod
    def stopped(self) -> bool:
        """Whether the run has ended before its step budget (converged or failed)."""

    @abc.abstractmethod
    def position(self) -> float:
        """Where the run is, in the units of its `Progress`."""

    @abc.abstractmethod
    def checkpoint_trees(self) -> dict[str, Any]:
        """The arrays a checkpoint saves: name -> pytree (or list of arrays)."""

    @abc.abstractmethod
    def checkpoint_templates(self) -> dict[str, Any]:
        """What `checkpoint_trees` looks like, for loading: name -> pytree whose leaves give
        shapes and dtypes, or `None` for a list of arrays of any shape."""

    @abc.abstractmethod
    def checkpoint_state(self) -> dict[str, Any]:
        """The run's host state (JSON-serialisable) a checkpoint saves."""

    @abc.abstractmethod
    def restore(self, trees: dict[str, Any], state: dict[str, Any]) -> None:
        """Continue from a checkpoint's `trees` and `state`."""


_DRIVER_KEYS = ("driver_steps", "driver_run_time")


def drive(
    run: AbstractRun,
    *,
    budget: int,
    chunk: int,
    checkpoint: Checkpoint | None,
    fingerprint: dict | None,
    progress: Progress | None,
    desc: str,
) -> Record:
    """Run `run` to `budget` steps (or until it stops) in chunks of at most `chunk` steps.

    With a `checkpoint`, its lock is held throughout; `resume=True` restores the run first;
    chunks end on multiples of `checkpoint.every`, where the state is saved, and at the end.
    A chunk whose last loss is not finite ends the run (`Record.nonfinite`). `progress`, if
    given, shows a tqdm bar. Returns the `Record`.
    """
    with run_lock(checkpoint, desc):  # held until the last save, released on any exit
        return _drive_locked(run, budget, chunk, checkpoint, fingerprint, progress, desc)


def _drive_locked(run, budget, chunk, checkpoint, fingerprint, progress, desc):
    record = Record()
    last_saved = -1

    def save():
        nonlocal last_saved
        state = dict(run.checkpoint_state(), driver_steps=record.steps, driver_run_time=record.run_time)
        save_checkpoint(checkpoint, kind=run.kind, fingerprint=fingerprint, step=record.steps,
                        trees=run.checkpoint_trees(), state=state)
        last_saved = record.steps

    if checkpoint is not None and checkpoint.resume:
        step, trees, state = load_checkpoint(checkpoint, kind=run.kind, fingerprint=fingerprint,
                                             templates=run.checkpoint_templates(),
                                             state_keys=(*_DRIVER_KEYS, *run.checkpoint_state()))
        run.restore(trees, {k: v for k, v in state.items() if k not in _DRIVER_KEYS})
        record.steps, record.run_time = int(state["driver_steps"]), float(state["driver_run_time"])
        record.resumed_from = last_saved = step

    t_compile = time.perf_counter()
    run.compile()
    record.compile_time = time.perf_counter() - t_compile

    bar = None
    if progress is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=progress.total, initial=min(run.position(), progress.total), desc=desc, unit=progress.unit)
    try:
        while record.steps < budget and not run.stopped():
            n = min(chunk, budget - record.steps)
            if checkpoint is not None:
                n = min(n, checkpoint.steps_to_boundary(record.steps))
            t0 = time.perf_counter()
            out = run.advance(n, record)
            record.run_time += time.perf_counter() - t0
            record.steps += out.steps
            run.after(record)
            if bar is not None:
                bar.update(max(min(run.position(), progress.total) - bar.n, 0))
                if out.loss is not None and out.steps:
                    bar.set_postfix(loss=f"{out.loss:.3e}")
            if checkpoint is not None and checkpoint.due(record.steps, last_saved):
                save()
            if out.steps and out.loss is not None and not np.isfinite(out.loss):
                record.nonfinite = True
                break
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None and last_saved != record.steps:
        save()
    return record
