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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._checkpoint import check_checkpoint, computation, describe, key_description, optimizer_computation, run_lock
from ._checkpoint import load as load_checkpoint
from ._checkpoint import save as save_checkpoint
from ._sharding import check_mesh, constrain_leading, replicate, shard_leading


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
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"`optimizer` must be an optax GradientTransformation, e.g. optax.adam(1e-3); got "
            f"{type(optimizer).__name__}."
        )
    for name, value, minimum in (("steps", steps, 0), ("chunk", chunk, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}.")
    leaves = [x for x in jax.tree.leaves(model) if eqx.is_inexact_array(x)]
    if not leaves:
        raise ValueError("`model` has no floating-point arrays to train.")
    if any(not bool(jnp.all(jnp.isfinite(x))) for x in leaves):
        raise ValueError("`model` has NaN or infinite parameters; re-initialise it.")
    if batch_size is not None:
        if key is None:
            raise ValueError("`batch_size` draws random minibatches: pass `key=jax.random.PRNGKey(...)` too.")
        sizes = {x.shape[0] for x in jax.tree.leaves(data) if hasattr(x, "shape") and x.ndim}
        if len(sizes) != 1:
            raise ValueError(
                f"`batch_size` needs `data` whose array leaves share one leading (batch) axis; found sizes {sorted(sizes)}."
            )
        (n,) = sizes
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
            raise ValueError(f"`batch_size` must be an int in [1, {n}] (the data's leading size); got {batch_size!r}.")


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
    with run_lock(checkpoint, "train"):
        return _train_loop(loss, optimizer, static, params, opt_state, data, key_arr, batch_size, mesh,
                           steps, chunk, progress, checkpoint, fingerprint, wall0)


def _train_loop(loss, optimizer, static, params, opt_state, data, key_arr, batch_size, mesh, steps, chunk,
                progress, checkpoint, fingerprint, wall0):
    """The loop of `train`, run while the checkpoint's lock is held."""
    done, last_saved, resumed_from, losses, train_time = 0, -1, None, [], 0.0
    if checkpoint is not None and checkpoint.resume:
        step, trees, state = load_checkpoint(
            checkpoint, kind="train", fingerprint=fingerprint,
            templates={"params": params, "opt": opt_state, "losses": None}, state_keys=("done", "train_time"),
        )
        params, opt_state = trees["params"], trees["opt"]
        if mesh is not None:
            params, opt_state = replicate(params, mesh), replicate(opt_state, mesh)
        losses = [np.asarray(h) for h in trees["losses"]]
        done, train_time = int(state["done"]), float(state["train_time"])
        resumed_from = last_saved = step

    def save_state():
        nonlocal last_saved
        save_checkpoint(checkpoint, kind="train", fingerprint=fingerprint, step=done,
                        trees={"params": params, "opt": opt_state, "losses": losses},
                        state={"done": done, "train_time": train_time})
        last_saved = done

    t_compile = time.perf_counter()
    args = (loss, optimizer, static)
    jax.block_until_ready(_run_chunk(*args, params, opt_state, data, jnp.asarray(done), jnp.asarray(0),
                                     chunk, key_arr, batch_size, mesh))
    compile_time = time.perf_counter() - t_compile

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=min(done, steps), desc="train", unit="step")
    try:
        while done < steps:
            n = min(chunk, steps - done)
            if checkpoint is not None:
                n = min(n, checkpoint.steps_to_boundary(done))
            t0 = time.perf_counter()
            params, opt_state, hist = _run_chunk(*args, params, opt_state, data, jnp.asarray(done),
                                                 jnp.asarray(n), chunk, key_arr, batch_size, mesh)
            hist = np.asarray(hist)[:n]
            train_time += time.perf_counter() - t0
            done += n
            losses.append(hist)
            if bar is not None:
                bar.update(n)
                bar.set_postfix(loss=f"{hist[-1]:.3e}")
            if checkpoint is not None and checkpoint.due(done, last_saved):
                save_state()
            if not np.isfinite(hist[-1]):
                warnings.warn(
                    f"pdesolve.train: the loss became {hist[-1]} at step {done}; stopped. Lower the "
                    "learning rate or check the model/data for NaNs.", RuntimeWarning, stacklevel=3,
                )
                break
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None and last_saved != done:
        save_state()
    stats = {
        "loss_history": np.concatenate(losses) if losses else np.zeros((0,)),
        "num_steps": done,
        "train_time": train_time,
        "compile_time": compile_time,
        "wall_time": time.perf_counter() - wall0,
        "resumed_from_step": resumed_from,
    }
    return eqx.combine(params, static), stats
