"""PINN training: the optimistix minimiser's init / step / terminate, several steps per
compiled call, run as a long run of the suite's host driver (`pdesolve._driver`: progress,
checkpoints, timing)."""

from __future__ import annotations

import functools
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx

from pdesolve._driver import AbstractRun, Advanced, Progress, drive
from pdesolve._results import RESULTS


@functools.lru_cache(maxsize=64)
def _make_optimiser(
    name: str, learning_rate: float, rtol: float, atol: float, history: int
):
    # Cached so that equal configurations give the identical object (jit cache hits).
    if name == "lbfgs":
        return optx.LBFGS(rtol=rtol, atol=atol, history_length=history)
    return optx.OptaxMinimiser(optax.adam(learning_rate), rtol=rtol, atol=atol)


def _optimiser(solver):
    if isinstance(solver.optimizer, str):
        return _make_optimiser(
            solver.optimizer,
            float(solver.learning_rate),
            float(solver.rtol),
            float(solver.atol),
            int(solver.history_length),
        )
    return solver.optimizer


def _state_loss(state):
    """The loss of the current iterate held in an optimistix minimiser state."""
    f_info = getattr(state, "f_info", None)
    if f_info is not None and hasattr(f_info, "f"):
        return f_info.f
    return state.f


def _init_full_state(objective, optimiser, params, data):
    f_struct = jax.ShapeDtypeStruct((), jax.tree.leaves(params)[0].dtype)
    return optimiser.init(objective, params, data, {}, f_struct, None, frozenset())


@eqx.filter_jit
def _init_state(objective, optimiser, params, data):
    state = _init_full_state(objective, optimiser, params, data)
    return eqx.partition(state, eqx.is_array)[0]


@eqx.filter_jit
def _run_chunk(objective, optimiser, params, state_dyn, data, n, chunk):
    """Up to ``n`` (<= chunk, traced) optimiser steps; returns the per-step losses."""
    _, state_static = eqx.partition(
        _init_full_state(objective, optimiser, params, data), eqx.is_array
    )
    dtype = jax.tree.leaves(params)[0].dtype
    tags = frozenset()

    def cond(carry):
        i, _, _, _, done = carry
        return (i < n) & jnp.logical_not(done)

    def body(carry):
        i, y, dyn, hist, _ = carry
        state = eqx.combine(dyn, state_static)
        y, state, _ = optimiser.step(objective, y, data, {}, state, tags)
        done, _ = optimiser.terminate(objective, y, data, {}, state, tags)
        hist = hist.at[i].set(_state_loss(state).astype(dtype))
        return i + 1, y, eqx.partition(state, eqx.is_array)[0], hist, done

    hist = jnp.full((chunk,), jnp.nan, dtype)
    carry = (jnp.array(0), params, state_dyn, hist, jnp.array(False))
    i, params, state_dyn, hist, _ = jax.lax.while_loop(cond, body, carry)
    state = eqx.combine(state_dyn, state_static)
    done, result = optimiser.terminate(objective, params, data, {}, state, tags)
    accepted = getattr(state, "num_accepted_steps", i)
    return params, state_dyn, hist, i, done, result, accepted


def _train(objective, optimiser, params, static_model, data, *, max_steps, chunk, progress, desc, error_fn,
           checkpoint=None, fingerprint=None):
    """Run the optimiser (a long run of `pdesolve._driver`); returns final params, a dict of
    histories and counters, and the optimiser's verdict.

    With a `Checkpoint`, compiled chunks end at multiples of `checkpoint.every` and the
    state (flat parameters, optimiser state, histories) is saved there and at the end; a
    resumed run continues from the saved state bit for bit.
    """
    run = _PINNRun(objective, optimiser, params, static_model, data, chunk, error_fn)
    record = drive(run, budget=max_steps, chunk=chunk, checkpoint=checkpoint, fingerprint=fingerprint,
                   progress=Progress(max_steps) if progress else None, desc=desc)
    info = {
        "loss_history": np.concatenate(run.losses) if run.losses else np.zeros((0,)),
        "num_steps": record.steps,
        "num_accepted_steps": run.accepted,
        "converged": run.converged,
        "compile_time": record.compile_time,
        "train_time": record.run_time,
        "step_history": np.asarray(run.steps),
        "time_history": np.asarray(run.times),
        "resumed_from_step": record.resumed_from,
    }
    if error_fn is not None:
        info["error_history"] = np.asarray(run.errors)
    return objective.flat.unravel(run.params), info, run.result


class _PINNRun(AbstractRun):
    """The optimistix minimiser's steps as a long run: chunks of `_run_chunk`, with the test
    error measured after each chunk; stops when the minimiser terminates (converged or
    failed) or a chunk ends early."""

    kind: ClassVar[str] = "pinn"

    def __init__(self, objective, optimiser, params, static_model, data, chunk, error_fn):
        self.objective, self.optimiser, self.static_model, self.data = objective, optimiser, static_model, data
        self.chunk, self.error_fn = chunk, error_fn
        self.params = params
        self.state_dyn = _init_state(objective, optimiser, params, data)
        self.losses: list[np.ndarray] = []
        self.errors: list[float] = []
        self.times: list[float] = []
        self.steps: list[int] = []
        self.accepted, self.converged, self.finished = 0, False, False
        self.result = optx.RESULTS.successful

    def _chunk(self, n):
        return _run_chunk(self.objective, self.optimiser, self.params, self.state_dyn, self.data, jnp.array(n),
                          self.chunk)

    def compile(self):
        jax.block_until_ready(self._chunk(0))  # a zero-step call compiles without training

    def advance(self, n, record):
        del record
        self.params, self.state_dyn, hist, i, done, self.result, acc = self._chunk(n)
        i = int(i)
        hist = np.asarray(hist)[:i]
        self.accepted = int(acc)
        self.losses.append(hist)
        if i and not np.isfinite(hist[-1]):
            self.finished = True
        elif bool(done) or i < n:
            self.converged = bool(done) and RESULTS.promote(self.result) == RESULTS.successful
            self.finished = True
        return Advanced(i, float(hist[-1]) if i else None)

    def after(self, record):
        self.steps.append(record.steps)
        self.times.append(record.run_time)
        if self.error_fn is not None:
            self.errors.append(self.error_fn(eqx.combine(self.objective.flat.unravel(self.params), self.static_model)))

    def stopped(self):
        return self.finished

    def position(self):
        return float(sum(h.size for h in self.losses))

    def checkpoint_trees(self):
        return dict(params=self.params, opt=self.state_dyn, losses=self.losses)

    def checkpoint_templates(self):
        return dict(params=self.params, opt=self.state_dyn, losses=None)

    def checkpoint_state(self):
        return dict(accepted=self.accepted, converged=self.converged, finished=self.finished,
                    errors=[float(e) for e in self.errors], times=self.times, steps=self.steps)

    def restore(self, trees, state):
        self.params, self.state_dyn = trees["params"], trees["opt"]
        self.losses = [np.asarray(h) for h in trees["losses"]]
        self.accepted, self.converged = int(state["accepted"]), bool(state["converged"])
        self.finished = bool(state["finished"])
        self.errors, self.times, self.steps = list(state["errors"]), list(state["times"]), list(state["steps"])
        if self.finished:  # the optimiser had stopped: recover its verdict without another step
            *_, self.result, _ = self._chunk(0)
