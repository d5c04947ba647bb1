"""`pdesolve demo`: train the spiral neural ODE and compare the explicit RK methods.

The demo of Chen et al. (NeurIPS 2018; torchdiffeq ``examples/ode_demo.py``) on pdesolve:

1. data: the true spiral `dy/dt = (y**3) @ A`, `y(0) = (2, 0)`, sampled at 151 times on
   [0, 15] (spacing 0.1) with `Dopri5` at `rtol=1e-10` (`pdesolve.problems.spiral_data`);
   the 101 samples with t <= 10 are the training set, the rest measure extrapolation;
2. model: `dy/dt = MLP(y**3)` (2 -> 50 -> 50 -> 2, tanh), `pdesolve.problems.spiral_problem`;
3. training, as in the torchdiffeq demo, on trajectory segments: every second training
   sample starts a segment of 20 samples (t-length 1.9), integrated from the observed
   state at its start with `RK4` at a constant step 0.05 (2 steps per sample interval);
   all 41 segments at once (`jax.vmap` over `pds.solve`, full batch, deterministic); loss
   = mean squared error; `optax.adam` with the learning rate decaying from 3e-3 to 3e-4
   (cosine); the loop is `pds.train` (gradients by `jax.value_and_grad` through
   `pds.solve`, checkpointed backprop; `--save`/`--resume` checkpoint it). Measured on this problem (1000-1500 iterations, 2 CPU cores): fitting the
   whole trajectory from y(0) with a growing time window left 28-38 % relative error on
   [0, 10], segments ~4 %; a constant learning rate gave loss spikes (final-iterate error
   2-30 % depending on the seed), the decay a monotone error history;
4. report: a training table (errors of the trained model's full trajectory from y(0) on
   [0, 10] and extrapolated to (10, 15]), then the trained model solved on [0, 15] by
   every explicit method at the same constant step, against `Dopri5` at `rtol=1e-10`.

Needs float64: `pdesolve demo` (also `python -m pdesolve demo`) enables it in its entry
point; call `main()` from your own script only after
`jax.config.update("jax_enable_x64", True)`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import pdesolve as pds
from pdesolve._cli._metrics import _rel_l2
from pdesolve._cli._report import format_table as _table
from pdesolve.solvers.explicit_rk import METHOD_NAMES

T_TRAIN = 10.0
T_EXTRAP = 15.0
N_TIMES = 151  # sample spacing 0.1; the first 101 samples cover [0, T_TRAIN]
SEGMENT = 20  # samples per training segment
STRIDE = 2  # a segment starts at every STRIDE-th training sample
DT = 0.05
LR = 3e-3
LR_FINAL = 3e-4
DEFAULT_ITERS = 1500
QUICK_ITERS = 30


def _parse(argv):
    p = argparse.ArgumentParser(
        prog="pdesolve demo",
        description="Train the spiral neural ODE (Chen et al. 2018) with pdesolve and compare "
        "the explicit Runge-Kutta methods on the trained model.",
    )
    p.add_argument("--iters", type=int, default=None, help=f"Adam iterations (default {DEFAULT_ITERS}, "
                   f"{QUICK_ITERS} with --quick)")
    p.add_argument("--seed", type=int, default=0, help="seed of the network initialisation (default 0)")
    p.add_argument("--quick", action="store_true", help="tiny training budget (a smoke run, < 20 s)")
    p.add_argument("--no-progress", action="store_true", help="hide the training progress bar")
    p.add_argument("--save", metavar="RUN.eqx", help="checkpoint the training (pds.Checkpoint)")
    p.add_argument("--resume", metavar="RUN.eqx", help="continue the training from this checkpoint")
    p.add_argument("--every", type=int, default=100, help="steps between checkpoints (default 100)")
    args = p.parse_args(argv)
    if args.save and args.resume and args.save != args.resume:
        p.error("--save and --resume name different files; --resume PATH keeps saving to PATH")
    if args.resume and not os.path.isfile(args.resume):
        p.error(f"--resume {args.resume}: no such file (create it with --save {args.resume})")
    if args.every < 1:
        p.error("--every must be at least 1")
    if args.iters is None:
        args.iters = QUICK_ITERS if args.quick else DEFAULT_ITERS
    if args.iters < 1:
        p.error("--iters must be at least 1")
    return args


def main(argv=None) -> int:
    """Run the demo; `argv` as for `pdesolve demo` (`--iters`, `--seed`, `--quick`)."""
    args = _parse(argv)
    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "The pdesolve demo needs float64: run it as `pdesolve demo`, or call "
            "jax.config.update('jax_enable_x64', True) before pdesolve._demo.main()."
        )
    from pdesolve.problems import make_mlp, spiral_data, spiral_problem

    t_start = time.perf_counter()
    ts, ys = spiral_data(n_times=N_TIMES, t1=T_EXTRAP)
    ts_np = np.asarray(ts)
    train_mask = ts_np <= T_TRAIN + 1e-9
    n_train = int(train_mask.sum())
    starts = np.arange(0, n_train - SEGMENT + 1, STRIDE)
    seg_idx = starts[:, None] + np.arange(SEGMENT)[None, :]
    seg_ts, seg_ys = ts[seg_idx], ys[seg_idx]  # (n_seg, SEGMENT), (n_seg, SEGMENT, 2)
    t_data = time.perf_counter() - t_start

    model = make_mlp(jax.random.PRNGKey(args.seed))
    opt = optax.adam(optax.cosine_decay_schedule(LR, args.iters, alpha=LR_FINAL / LR))
    solver = pds.RK4()
    seg_steps = int(np.ceil((SEGMENT - 1) * 0.1 / DT)) + SEGMENT + 8

    def segments(m, data):
        seg_ts, seg_ys = data

        def one(t, y):
            prob = spiral_problem(m, tspan=(t[0], t[-1]), y0=y[0])
            sol = pds.solve(prob, solver, dt0=DT, saveat=pds.SaveAt(ts=t), max_steps=seg_steps)
            return sol.ys, sol.stats["num_fevals"]

        return jax.vmap(one)(seg_ts, seg_ys)

    def loss_fn(m, data):
        pred, _ = segments(m, data)
        return jnp.mean((pred - data[1]) ** 2)

    checkpoint = None
    path = args.resume or args.save
    if path:
        # The learning-rate schedule depends on --iters, so a resumed run must keep it.
        meta = {"demo": "spiral", "iters": args.iters, "seed": args.seed}
        try:
            checkpoint = pds.Checkpoint(path, every=args.every, resume=bool(args.resume), meta=meta)
        except (TypeError, ValueError) as e:  # e.g. a directory, or a missing parent directory
            print(f"pdesolve demo: error: --save/--resume {path}: {e}", file=sys.stderr)
            return 2
    # pds.train: the optimiser steps run in compiled chunks of 25 (the bar updates between them)
    try:
        model, tstats = pds.train(loss_fn, model, opt, steps=args.iters, data=(seg_ts, seg_ys),
                                  checkpoint=checkpoint, progress=not args.no_progress, chunk=25)
    except pds.CheckpointError as e:
        print(f"pdesolve demo: error: {e}", file=sys.stderr)
        return 2
    losses = np.asarray(tstats["loss_history"])
    t_compile, t_loop = float(tstats["compile_time"]), float(tstats["train_time"])
    if tstats.get("resumed_from_step") is not None:
        print(f"resumed from step {tstats['resumed_from_step']} of {path}")
    if not losses.size or not np.isfinite(losses[-1]):
        print(f"training diverged (loss {losses[-1] if losses.size else 'nan'}); try another --seed")
        return 1
    fevals = int(jnp.sum(eqx.filter_jit(segments)(model, (seg_ts, seg_ys))[1]))

    # ---- the trained model from y(0) over [0, T_EXTRAP] with the training solver ----
    t_eval0 = time.perf_counter()
    prob = spiral_problem(model, tspan=(0.0, T_EXTRAP))
    saveat = pds.SaveAt(ts=ts)
    fixed_steps = int(np.ceil(T_EXTRAP / DT)) + N_TIMES + 8
    sol = pds.solve(prob, solver, dt0=DT, saveat=saveat, max_steps=fixed_steps)
    err_train = _rel_l2(sol.ys[train_mask], ys[train_mask])
    err_extrap = _rel_l2(sol.ys[~train_mask], ys[~train_mask])
    grad_ms = 1e3 * t_loop / max(int(tstats["num_steps"]), 1)
    t_eval = time.perf_counter() - t_eval0

    print()
    print(
        f"Spiral neural ODE (Chen et al. 2018): dy/dt = MLP(y**3), MLP 2-50-50-2 tanh, seed "
        f"{args.seed}. Train on t in [0, {T_TRAIN:g}] ({n_train} samples) as {len(starts)} "
        f"segments of {SEGMENT} samples, RK4 dt = {DT:g}, Adam lr {LR:g} -> {LR_FINAL:g} "
        f"(cosine); errors: trained model integrated from y(0), relative L2 vs truth."
    )
    print(
        _table(
            ["method", "iters", "final loss", "relL2 [0,10]", "relL2 (10,15]", "steps", "fevals",
             "train fevals/iter", "compile s", "train s", "grad ms/iter"],
            [[
                "RK4",
                int(tstats["num_steps"]),
                f"{losses[-1]:.3e}",
                f"{err_train:.3e}",
                f"{err_extrap:.3e}",
                int(sol.stats["num_steps"]),
                int(sol.stats["num_fevals"]),
                int(fevals),
                f"{t_compile:.1f}",
                f"{t_loop:.1f}",
                f"{grad_ms:.1f}",
            ]],
        )
    )
    print(
        "  steps/fevals: the solve from y(0) over [0, 15]; train fevals/iter: forward vector-field "
        "evaluations of one loss (all segments); grad ms/iter: mean time of one loss + gradient "
        "+ Adam update after compilation (pds.train)."
    )

    # ---- every explicit method on the trained model ----
    t_cmp = time.perf_counter()
    ref = pds.solve(
        prob,
        pds.Dopri5(),
        controller=pds.PIDController(rtol=1e-10, atol=1e-12),
        saveat=saveat,
        max_steps=100_000,
    )
    rows = []
    for name in METHOD_NAMES:
        method = getattr(pds, name)()
        s = pds.solve(prob, method, dt0=DT, saveat=saveat, max_steps=fixed_steps, throw=False)
        ok = bool(s.successful)
        rows.append([
            name,
            method.order,
            f"{_rel_l2(s.ys, ref.ys):.2e}" if ok else str(s.result),
            f"{_rel_l2(s.ys, ys):.2e}" if ok else "-",
            int(s.stats["num_steps"]),
            int(s.stats["num_fevals"]),
        ])
    t_cmp = time.perf_counter() - t_cmp
    print()
    print(
        f"Trained model solved on [0, {T_EXTRAP:g}] with constant dt = {DT:g}: relative L2 error "
        f"over {N_TIMES} times vs Dopri5 (PID rtol 1e-10, atol 1e-12: "
        f"{int(ref.stats['num_accepted_steps'])} steps, {int(ref.stats['num_fevals'])} fevals) "
        f"and vs the true spiral"
    )
    print(_table(["method", "order", "err vs Dopri5-tight", "err vs truth", "steps", "fevals"], rows))
    print()
    print(
        f"wall time: total {time.perf_counter() - t_start:.1f} s (data {t_data:.1f} s, compile "
        f"{t_compile:.1f} s, training {t_loop:.1f} s, evaluation {t_eval:.1f} s, method "
        f"comparison {t_cmp:.1f} s; excludes Python/JAX start-up)"
    )
    return 0
