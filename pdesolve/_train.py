"""`pdesolve.train`: the gradient-descent loop for neural differential equations, with
checkpoint/resume and data-parallel batches.

Minimises `loss(model, data)` with an optax optimiser. The steps run inside compiled chunks
(`jax.lax.fori_loop`), so the host only intervenes between chunks: progress bar, checkpoint.
Gradients come from whatever `loss` does — typically `pds.solve` inside it, differentiated
the way the solver documents (checkpointed backprop for explicit RK, the reversible adjoint
for `ReversibleRK`, the discrete adjoint for `IMEXRK`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._checkpoint import check_checkpoint, computation, describe, key_description, optimizer_computation
from ._driver import AbstractRun, Advanced, Progress, drive
from ._sharding import check_mesh, constrain_leading, replicate, shard_leading
from ._validation import check_int


def _batch(data, key, batch_size):
    n = jax.tree.leaves(data)[0].shape[0]
    idx = jax.random.choice(key, n, (batch_size,), replace=False)
    return jax.tree.map(lambda x: x[idx], data)


@eqx.filter_jit
def _run_chunk(loss, optimizer, static, params, opt_state, data, start, n, chunk, key, batch_size, mesh):
    """Up to `chunk` optimiser steps (`n` of them, traced); returns the per-step losses.

    With a `mesh`, drawn minibatches are constrained to stay split over its devices."""
    dtype = jnp.result_type(*jax.tree.leaves(params))

    def body(i, carry):
        params, opt_state, hist = carry
        if batch_size is None:
            batch = data
        else:
            batch = constrain_leading(_batch(data, jax.random.fold_in(key, start + i), batch_size), mesh)
        value, grads = jax.value_and_grad(lambda p: loss(eqx.combine(p, static), batch))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = eqx.apply_updates(params, updates)
        return params, opt_state, hist.at[i].set(jnp.asarray(value, dtype))

    hist = jnp.full((chunk,), jnp.nan, dtype)
    return jax.lax.fori_loop(0, n, body, (params, opt_state, hist))


def _check_args(loss, model, optimizer, steps, data, batch_size, key, chunk):
    if not callable(loss):
        raise TypeError(f"`loss` must be a function loss(model, data) -> scalar; got {type(loss).__name__}.")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"`optimizer` must be an optax GradientTransformation, e.g. optax.adam(1e-3); got "
            f"{type(optimizer).__name__}."
        )
    check_int("steps", steps, 0, hint="It is the number of optimiser steps.")
    check_int("chunk", chunk, 1, hint="It is the number of steps per compiled call (and per progress-bar update).")
    leaves = [x for x in jax.tree.leaves(model) if eqx.is_inexact_array(x)]
    if not leaves:
        raise ValueError("`model` has no floating-point arrays to train.")
    if any(not bool(jnp.all(jnp.isfinite(x))) for x in leaves):
        raise ValueError("`model` has NaN or infinite parameters; re-initialise it.")
    if batch_size is not None:
        if key is None:
            raise ValueError("`batch_size` draws random minibatches: pass `key=jax.random.PRNGKey(...)` too.")
        sizes = {x.shape[0] for x in jax.tree.leaves(data) if isinstance(x, (jax.Array, np.ndarray)) and x.ndim}
        if len(sizes) != 1:
            raise ValueError(
                f"`batch_size` needs `data` whose array leaves share one leading (batch) axis; found sizes {sorted(sizes)}."
            )
        (n,) = sizes
        check_int("batch_size", batch_size, 1, n, hint=f"At most the data's leading size {n}.")


def train(
    loss: Callable,
    model,
    optimizer,
    *,
    steps: int,
    data=None,
    batch_size: int | None = None,
    key=None,
    checkpoint=None,
    mesh=None,
    progress: bool = False,
    chunk: int = 50,
):
    """Train `model` by minimising `loss(model, data)` with an optax `optimizer`.

        def loss(model, data):
            ts, ys = data
            sol = pds.solve(pds.NeuralODEProblem(model, ys[0], (ts[0], ts[-1])), pds.RK4(), dt0=0.05,
                            saveat=pds.SaveAt(ts=ts))
            return jnp.mean((sol.ys - ys) ** 2)

        model, stats = pds.train(loss, model, optax.adam(1e-3), steps=1000, data=(ts, ys))

    **Arguments:**

    - `loss`: `loss(model, data) -> scalar`, differentiable (usually through `pds.solve`).
    - `model`: an equinox module (or any pytree); its floating-point arrays are trained.
    - `optimizer`: an optax `GradientTransformation`.
    - `steps`: total optimiser steps (a resumed run continues up to `steps`).
    - `data`: a pytree passed to `loss` (full batch), or — with `batch_size` — a pytree
      whose array leaves share a leading batch axis, from which each step draws
      `batch_size` rows without replacement (`key` required; the draw of step `k` uses
      `fold_in(key, k)`, so runs are reproducible and resumable).
    - `checkpoint`: a `pds.Checkpoint`: parameters and optimiser state saved every
      `checkpoint.every` steps and at the end; `resume=True` continues bit for bit.
    - `mesh`: a `jax.sharding.Mesh`: `data`'s leading axis is split over its devices and
      the parameters replicated; XLA reduces the loss and gradients across devices. The
      leading size must be a multiple of the device count.
    - `progress`: a tqdm bar; `chunk`: steps per compiled call (and per bar update).

    **Returns** `(model, stats)`: the trained model and a dict with `loss_history` (one
    value per step, the loss before that step's update), `num_steps`, `train_time`,
    `compile_time`, `wall_time`, `resumed_from_step`.
    """
    _check_args(loss, model, optimizer, steps, data, batch_size, key, chunk)
    checkpoint = check_checkpoint(checkpoint, "train")
    wall0 = time.perf_counter()
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)
    params0, data0 = params, data  # unsharded: the fingerprint traces these
    if mesh is not None:
        check_mesh(mesh)
        data = shard_leading(data, mesh) if data is not None else None
        params, opt_state = replicate(params, mesh), replicate(opt_state, mesh)
    key_arr = jax.random.PRNGKey(0) if key is None else key
    fingerprint = None
    if checkpoint is not None:  # what the run computes: the loss (with the model) and the optimiser
        fingerprint = {"model": describe(model), "data": describe(data), "batch_size": batch_size,
                       "key": key_description(key),
                       "computation": {"loss": computation(lambda p, d: loss(eqx.combine(p, static), d),
                                                           params0, data0),
                                       "optimizer": optimizer_computation(optimizer, params0)}}
    run = _TrainRun(loss, optimizer, static, params, opt_state, data, key_arr, batch_size, mesh, chunk)
    record = drive(run, budget=steps, chunk=chunk, checkpoint=checkpoint, fingerprint=fingerprint,
                   progress=Progress(steps) if progress else None, desc="train")
    if record.nonfinite:
        warnings.warn(
            f"pdesolve.train: the loss became {run.losses[-1][-1]} at step {record.steps}; stopped. Lower the "
            "learning rate or check the model/data for NaNs.", RuntimeWarning, stacklevel=2,
        )
    stats = {
        "loss_history": np.concatenate(run.losses) if run.losses else np.zeros((0,)),
        "num_steps": record.steps,
        "train_time": record.run_time,
        "compile_time": record.compile_time,
        "wall_time": time.perf_counter() - wall0,
        "resumed_from_step": record.resumed_from,
    }
    return eqx.combine(run.params, static), stats


class _TrainRun(AbstractRun):
    """`train`'s optimiser steps as a long run (`pdesolve._driver`): chunks of
    `_run_chunk`, the parameters and optimiser state checkpointed with the loss history."""

    kind: ClassVar[str] = "train"

    def __init__(self, loss, optimizer, static, params, opt_state, data, key, batch_size, mesh, chunk):
        self.args = (loss, optimizer, static)
        self.params, self.opt_state = params, opt_state
        self.data, self.key, self.batch_size, self.mesh, self.chunk = data, key, batch_size, mesh, chunk
        self.losses: list[np.ndarray] = []

    def _chunk(self, start, n):
        return _run_chunk(*self.args, self.params, self.opt_state, self.data, jnp.asarray(start), jnp.asarray(n),
                          self.chunk, self.key, self.batch_size, self.mesh)

    def compile(self):
        jax.block_until_ready(self._chunk(0, 0))

    def advance(self, n, record):
        self.params, self.opt_state, hist = self._chunk(record.steps, n)
        hist = np.asarray(hist)[:n]
        self.losses.append(hist)
        return Advanced(n, float(hist[-1]))

    def after(self, record):
        pass

    def stopped(self):
        return False

    def position(self):
        return float(sum(h.size for h in self.losses))

    def checkpoint_trees(self):
        return {"params": self.params, "opt": self.opt_state, "losses": self.losses}

    def checkpoint_templates(self):
        return {"params": self.params, "opt": self.opt_state, "losses": None}

    def checkpoint_state(self):
        return {}

    def restore(self, trees, state):
        del state
        self.params, self.opt_state = trees["params"], trees["opt"]
        if self.mesh is not None:
            self.params, self.opt_state = replicate(self.params, self.mesh), replicate(self.opt_state, self.mesh)
        self.losses = [np.asarray(h) for h in trees["losses"]]
