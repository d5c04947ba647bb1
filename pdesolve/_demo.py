"""`python -m pdesolve`: train the spiral neural ODE and compare the explicit RK methods.

The demo of Chen et al. (NeurIPS 2018; torchdiffeq ``examples/ode_demo.py``) on pdesolve:

1. data: the true spiral `dy/dt = (y**3) @ A`, `y(0) = (2, 0)`, sampled at 151 times on
   [0, 15] with `Dopri5` at `rtol=1e-10` (`pdesolve.problems.spiral_data`); the first 101
   (t in [0, 10]) are the training set, the rest measure extrapolation;
2. model: `dy/dt = MLP(y**3)` (2 -> 50 -> 50 -> 2, tanh), `pdesolve.problems.spiral_problem`;
3. training: full-batch mean-squared error of the `RK4` trajectory (constant step 0.025,
   i.e. 4 steps per sample interval) against the data, `optax.adam(3e-3)`, gradients by
   `eqx.filter_value_and_grad` through `pds.solve` (checkpointed backprop). The fitted
   time window grows linearly from 10 % to 100 % of [0, 10] over the first half of the
   iterations (a curriculum that avoids the poor local minima of fitting a long spiral
   from scratch); the window length is a traced value, so one compilation serves all;
4. report: training table, then the trained model solved on [0, 15] by every explicit
   method at the same constant step, against `Dopri5` at `rtol=1e-10, atol=1e-12`.

Needs float64: `python -m pdesolve` enables it in its entry point; call `main()` from
your own script only after `jax.config.update("jax_enable_x64", True)`.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import pdesolve as pds

METHODS = ("Euler", "Heun", "Midpoint", "Ralston", "Bosh3", "RK4", "Dopri5", "Tsit5")

T_TRAIN = 10.0
T_EXTRAP = 15.0
N_TIMES = 151  # sample spacing 0.1; the first 101 samples cover [0, T_TRAIN]
DT = 0.025
LR = 3e-3
DEFAULT_ITERS = 1000
QUICK_ITERS = 30


def _table(headers, rows) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule] + [fmt(r) for r in cells[1:]])


def _rel_l2(y, y_ref) -> float:
    y, y_ref = np.asarray(y), np.asarray(y_ref)
    return float(np.linalg.norm(y - y_ref) / np.linalg.norm(y_ref))


def _parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m pdesolve",
        description="Train the spiral neural ODE (Chen et al. 2018) with pdesolve and compare "
        "the explicit Runge-Kutta methods on the trained model.",
    )
    p.add_argument("--iters", type=int, default=None, help=f"Adam iterations (default {DEFAULT_ITERS}, "
                   f"{QUICK_ITERS} with --quick)")
    p.add_argument("--seed", type=int, default=0, help="seed of the network initialisation (default 0)")
    p.add_argument("--quick", action="store_true", help="tiny training budget (a smoke run, < 20 s)")
    p.add_argument("--no-progress", action="store_true", help="hide the training progress bar")
    args = p.parse_args(argv)
    if args.iters is None:
        args.iters = QUICK_ITERS if args.quick else DEFAULT_ITERS
    if args.iters < 1:
        p.error("--iters must be at least 1")
    return args


def main(argv=None) -> int:
    args = _parse(argv)
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "The pdesolve demo needs float64: run it as `python -m pdesolve`, or call "
            "jax.config.update('jax_enable_x64', True) before pdesolve._demo.main()."
        )
    from tqdm.auto import tqdm

    from pdesolve.problems import make_mlp, spiral_data, spiral_problem

    t_start = time.perf_counter()
    ts, ys = spiral_data(n_times=N_TIMES, t1=T_EXTRAP)
    n_train = int(np.searchsorted(np.asarray(ts), T_TRAIN + 1e-9))
    ts_tr, ys_tr = ts[:n_train], ys[:n_train]
    train_mask = np.asarray(ts) <= T_TRAIN + 1e-9
    t_data = time.perf_counter() - t_start

    model = make_mlp(jax.random.PRNGKey(args.seed))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt = optax.adam(LR)
    opt_state = opt.init(params)
    solver = pds.RK4()
    max_steps = int(np.ceil(T_TRAIN / DT)) + 8

    @eqx.filter_jit
    def train_step(params, opt_state, k):
        # Fit the first k samples: save at ts[min(i, k-1)] (repeats of the last time cost no
        # steps) and mask the repeats out of the loss; k is traced, so one compilation.
        idx = jnp.arange(n_train)
        ts_k = ts_tr[jnp.minimum(idx, k - 1)]
        mask = (idx < k)[:, None]

        def loss_fn(p):
            m = eqx.combine(p, static)
            prob = spiral_problem(m, tspan=(ts_tr[0], ts_tr[k - 1]))
            sol = pds.solve(prob, solver, dt0=DT, saveat=pds.SaveAt(ts=ts_k), max_steps=max_steps)
            return jnp.sum(jnp.where(mask, (sol.ys - ys_tr) ** 2, 0.0)) / (2 * k)

        loss, grads = eqx.filter_value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, loss

    def window(i):
        # linear growth from 10 % to 100 % of the training samples over the first half
        ramp = max(1, args.iters // 2)
        frac = 0.1 + 0.9 * min(1.0, i / ramp)
        return max(2, min(n_train, int(round(frac * n_train))))

    t0 = time.perf_counter()
    k0 = jnp.asarray(window(0), jnp.int32)
    compiled = train_step.lower(params, opt_state, k0).compile()
    t_compile = time.perf_counter() - t0

    losses = []
    full_window_times = []
    bar = tqdm(range(args.iters), desc="training (RK4)", disable=args.no_progress, mininterval=0.5)
    t_train0 = time.perf_counter()
    for i in bar:
        k = window(i)
        t_it = time.perf_counter()
        params, opt_state, loss = compiled(params, opt_state, jnp.asarray(k, jnp.int32))
        loss = float(loss)  # blocks: per-iteration timing is honest
        if k == n_train:
            full_window_times.append(time.perf_counter() - t_it)
        losses.append(loss)
        if i % 25 == 0 or i == args.iters - 1:
            bar.set_postfix(loss=f"{loss:.2e}", window=f"t<={float(ts_tr[k - 1]):.1f}")
    bar.close()
    t_loop = time.perf_counter() - t_train0
    if not np.isfinite(losses[-1]):
        print(f"training diverged (loss {losses[-1]}); try another --seed or fewer --iters")
        return 1
    model = eqx.combine(params, static)

    # ---- the trained model on [0, T_EXTRAP] with the training solver ----
    prob = spiral_problem(model, tspan=(0.0, T_EXTRAP))
    saveat = pds.SaveAt(ts=ts)
    fixed_steps = int(np.ceil(T_EXTRAP / DT)) + N_TIMES + 8
    sol = pds.solve(prob, solver, dt0=DT, saveat=saveat, max_steps=fixed_steps)
    err_train = _rel_l2(sol.ys[train_mask], ys[train_mask])
    err_extrap = _rel_l2(sol.ys[~train_mask], ys[~train_mask])
    grad_ms = 1e3 * float(np.median(full_window_times)) if full_window_times else float("nan")
    wall_total = time.perf_counter() - t_start  # up to here

    print()
    print(
        f"Spiral neural ODE (Chen et al. 2018): dy/dt = MLP(y**3), MLP 2-50-50-2 tanh, "
        f"seed {args.seed}; train t in [0, {T_TRAIN:g}] ({n_train} samples), "
        f"extrapolate to t = {T_EXTRAP:g}; Adam lr {LR:g}; RK4 with dt = {DT:g}"
    )
    print(
        _table(
            ["method", "iters", "final loss", "relL2 [0,10]", "relL2 (10,15]", "steps",
             "fevals", "train wall s", "compile s", "grad ms/iter"],
            [[
                "RK4",
                args.iters,
                f"{losses[-1]:.3e}",
                f"{err_train:.3e}",
                f"{err_extrap:.3e}",
                int(sol.stats["num_steps"]),
                int(sol.stats["num_fevals"]),
                f"{t_loop:.1f}",
                f"{t_compile:.1f}",
                f"{grad_ms:.1f}",
            ]],
        )
    )
    print(
        "  steps/fevals: one solve of the trained model over [0, 15]; grad ms/iter: median "
        "loss+gradient+Adam time over full-window iterations (after compilation)."
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
    for name in METHODS:
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
    print()
    print(
        f"Trained model solved on [0, {T_EXTRAP:g}] with constant dt = {DT:g}; error vs Dopri5 "
        f"(PID rtol 1e-10, atol 1e-12: {int(ref.stats['num_accepted_steps'])} steps, "
        f"{int(ref.stats['num_fevals'])} fevals) and vs the true spiral, relative L2 over "
        f"{N_TIMES} times"
    )
    print(_table(["method", "order", "err vs Dopri5-tight", "err vs truth", "steps", "fevals"], rows))
    t_cmp = time.perf_counter() - t_cmp
    print()
    print(
        f"wall time: total {time.perf_counter() - t_start:.1f} s (data {t_data:.1f} s, training "
        f"{t_compile + t_loop:.1f} s incl. compile {t_compile:.1f} s, evaluation "
        f"{wall_total - t_data - t_compile - t_loop:.1f} s, method comparison "
        f"{t_cmp:.1f} s)"
    )
    return 0
