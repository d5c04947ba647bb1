"""DT-PINN (RBF-FD, float64) vs vanilla PINN (autodiff, float32 and float64) on the unit disk.

The experiments of Sharma & Shankar, *Accelerated training of physics-informed neural networks
(PINNs) using meshless discretizations* (NeurIPS 2022; text in
/work/shared/papers/dt-pinn_sharma-shankar2022.txt, section 4, Figures 2, 4 and 5):

* linear Poisson ``Δu = f`` and nonlinear Poisson ``Δu = e^u + f`` on the unit disk with the
  manufactured solution ``u = 1 + sin(πx)cos(πy)`` (catalogue: ``poisson_disk``,
  ``nonlinear_poisson_disk``; Dirichlet boundary data from the exact solution), on
  quasi-uniform node sets of N ∈ {582, 828, 1663, 3196} nodes (``Ball.node_set(N)``) with
  RBF-FD orders p ∈ {2, 3, 4, 5};
* the forced heat equation ``u_t = Δu + f``, ``u = 1 + sin(πx)cos(πy)sin(πt)``, t ∈ [0, 1]
  (``heat_disk``) at N = 828 with 25 time slices (autodiff in t, RBF-FD in x).

**Methods** (same network — tanh MLP, 4 hidden layers of 50 —, same initial parameters
(``key=PRNGKey(seed)``), same node set, same optimiser — optimistix L-BFGS, history 10,
backtracking Armijo — and the same number of optimiser steps for every method):

* ``DT p`` : ``pds.DTPINN(order=p)``, float64, sparse RBF-FD matrices (ELL gather-sum) with
  ghost nodes; PDE at interior + boundary nodes.
* ``PINN32`` / ``PINN64``: ``pds.PINN(dtype=...)``, the same loss with forward-over-forward
  autodiff Laplacians (and a JVP in t), collocation at the same nodes (no ghosts).

**Measured** per run: the relative L2 error on a separate random test set (4096 interior +
512 boundary points of the disk; 11 times for heat) after every 25 optimiser steps; the best
error; the training time to reach it (compile excluded; the error evaluations are not timed);
the time per optimiser step, measured after the training runs of one (problem, N) by timing
the compiled training loop of every method *interleaved* (median of repeats; fair under the
load drift of a shared machine); time to best = steps to best x time per step (the wall time
measured during training is reported too). Ratios: ``speedup = t_best(PINN32) / t_best(DT)``
(the paper's Figure 2c/4c/5b definition) and ``speedup at equal error`` = t_best(PINN32) /
(time DT needs to first reach an error <= PINN32's best error); "—" when DT never gets there.

**Target:** speedup >= 4x at equal or better error, on this CPU (the paper measured 2-4x on an
RTX 2070 for p > 2, up to 20x for p = 2).

    python benchmarks/bench_pinn.py              # full run (~40 min on 2 CPU cores)
    python benchmarks/bench_pinn.py --quick      # smoke run (a few minutes)
    python benchmarks/bench_pinn.py --problems linear --sizes 828 --orders 4 --steps 3000

Writes benchmarks/results/bench_pinn.json.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    apply_platform,
    base_parser,
    format_table,
    time_interleaved,
    write_json,
)

SIZES = (582, 828, 1663, 3196)
ORDERS = (2, 3, 4, 5)
PROBLEMS = ("linear", "nonlinear", "heat")
STEPS = 2000
HEAT_STEPS = 300
CHUNK = 25
TARGET = 4.0
PAPER = {
    "speedup_linear_p_gt_2": "up to 4x (Figure 2c)",
    "speedup_nonlinear": "2-4x, lower than linear (Figure 4c)",
    "speedup_heat": "2-2.5x (Figure 5b)",
    "device": "NVIDIA RTX 2070, 5000 L-BFGS epochs",
}


def _run(prob, solver, steps, seed):
    import jax

    import pdesolve as pds

    with _Capture() as cap:
        sol = pds.solve(
            prob, solver, max_steps=steps, key=jax.random.PRNGKey(seed), throw=False
        )
    s = sol.stats
    return cap.calls[0], {
        "error": float(s["relative_l2_error"]),
        "best_error": float(s["best_relative_l2_error"]),
        "time_to_best": float(s["time_to_best_error"]),
        "steps_to_best": int(s["steps_to_best_error"]),
        "train_time": float(s["train_time"]),
        "compile_time": float(s["compile_time"]),
        "setup_time": float(s["setup_time"]),
        "steps": int(s["num_steps"]),
        "accepted_steps": int(s["num_accepted_steps"]),
        "s_per_step": float(s["train_time"]) / max(int(s["num_steps"]), 1),
        "final_loss": float(s["final_loss"]),
        "result": str(sol.result),
        "error_history": [float(e) for e in s["error_history"]],
        "time_history": [float(t) for t in s["time_history"]],
        "step_history": [int(k) for k in s["step_history"]],
    }


class _Capture:
    """Records the inputs of the solvers' training loop (objective, optimiser, data, ...).

    Used to time the compiled training step of every method *interleaved* after the training
    runs, which is fair under the load drift of a shared machine; the training runs themselves
    give the (deterministic) number of steps to the best error.
    """

    def __enter__(self):
        from pdesolve.solvers import pinn

        self.module, self.original, self.calls = pinn, pinn._train, []

        def spy(objective, optimiser, params, static_model, data, **kw):
            self.calls.append((objective, optimiser, params, data))
            return self.original(objective, optimiser, params, static_model, data, **kw)

        pinn._train = spy
        return self

    def __exit__(self, *exc):
        self.module._train = self.original


def _step_timer(captured, n_steps, float32):
    """A no-argument function running ``n_steps`` optimiser steps from the initial state."""
    import jax
    import jax.numpy as jnp
    from pdesolve.solvers import pinn

    objective, optimiser, params, data = captured
    del float32  # the library runs float32 networks under x64 itself (no flag flipping)
    state = pinn._init_state(objective, optimiser, params, data)

    def run():
        return pinn._run_chunk(
            objective, optimiser, params, state, data, jnp.array(n_steps), CHUNK
        )

    return run


def _steps_to_reach(rec, err):
    """Optimiser steps after which the run's test error first drops to <= err (None if never)."""
    for e, k in zip(rec["error_history"], rec["step_history"]):
        if e <= err:
            return k
    return None


def _ratio(a, b):
    return None if a is None or b is None or b <= 0 else a / b


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"L-BFGS steps per Poisson run (default {STEPS})",
    )
    parser.add_argument(
        "--heat-steps",
        type=int,
        default=None,
        help=f"L-BFGS steps per heat run (default {HEAT_STEPS})",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help=f"node counts (default {SIZES})",
    )
    parser.add_argument(
        "--orders",
        type=int,
        nargs="+",
        default=None,
        help=f"RBF-FD orders (default {ORDERS})",
    )
    parser.add_argument(
        "--problems", nargs="+", choices=PROBLEMS, default=None, help="which problems"
    )
    parser.add_argument(
        "--heat-slices",
        type=int,
        default=25,
        help="time slices for the heat problem (default 25)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="network initialisation seed (same for all methods)",
    )
    parser.add_argument(
        "--no-fp64-pinn", action="store_true", help="skip the float64 vanilla PINN"
    )
    args = parser.parse_args(argv)
    apply_platform(args.platform)

    import jax

    jax.config.update("jax_enable_x64", True)

    import pdesolve as pds
    from pdesolve import problems as P

    quick = args.quick
    steps = args.steps or (300 if quick else STEPS)
    heat_steps = args.heat_steps or (100 if quick else HEAT_STEPS)
    sizes = args.sizes or ((582, 828) if quick else SIZES)
    orders = args.orders or ((3, 4) if quick else ORDERS)
    problems = args.problems or PROBLEMS
    pinn_dtypes = ("float32",) if args.no_fp64_pinn else ("float32", "float64")
    repeats = args.repeats or (3 if quick else 7)
    min_total = 0.5 if quick else 2.0
    makers = {
        "linear": P.poisson_disk,
        "nonlinear": P.nonlinear_poisson_disk,
        "heat": P.heat_disk,
    }
    wall0 = time.perf_counter()

    # Warm-up: the first solve in a process pays JAX's start-up costs (not part of any timing
    # below, which exclude compilation anyway, but keeps the first measured run honest).
    pds.solve(P.poisson_disk(), pds.DTPINN(n_nodes=200, width=8, depth=1), max_steps=2)

    runs = []
    for name in problems:
        prob = makers[name]()
        n_list = (828,) if name == "heat" else sizes
        n_steps = heat_steps if name == "heat" else steps
        timed_steps = 5 if name == "heat" else CHUNK
        extra = {"time_slices": args.heat_slices} if name == "heat" else {}
        for n in n_list:
            # The same node set for every method at this N.
            cloud = prob.domain.node_set(n)
            timers = {}
            for p in orders:
                label = f"DT p={p}"
                print(f"[{name} N={n}] {label} ...", end=" ", flush=True)
                captured, rec = _run(
                    prob,
                    pds.DTPINN(order=p, nodes=cloud, steps_per_dispatch=CHUNK, **extra),
                    n_steps,
                    args.seed,
                )
                timers[label] = _step_timer(captured, timed_steps, float32=False)
                print(
                    f"best {rec['best_error']:.2e} at {rec['time_to_best']:.1f} s ({rec['s_per_step'] * 1e3:.2f} ms/step)",
                    flush=True,
                )
                runs.append(
                    {
                        "problem": name,
                        "N": n,
                        "method": label,
                        "order": p,
                        "dtype": "float64",
                        **rec,
                    }
                )
            for dt in pinn_dtypes:
                label = "PINN32" if dt == "float32" else "PINN64"
                print(f"[{name} N={n}] {label} ...", end=" ", flush=True)
                captured, rec = _run(
                    prob,
                    pds.PINN(dtype=dt, nodes=cloud, steps_per_dispatch=CHUNK, **extra),
                    n_steps,
                    args.seed,
                )
                timers[label] = _step_timer(
                    captured, timed_steps, float32=dt == "float32"
                )
                print(
                    f"best {rec['best_error']:.2e} at {rec['time_to_best']:.1f} s ({rec['s_per_step'] * 1e3:.2f} ms/step)",
                    flush=True,
                )
                runs.append(
                    {
                        "problem": name,
                        "N": n,
                        "method": label,
                        "order": None,
                        "dtype": dt,
                        **rec,
                    }
                )
            # Interleaved timing of `timed_steps` optimiser steps per method (median of repeats).
            timed = time_interleaved(
                timers, {k: () for k in timers}, repeats=repeats, min_total_s=min_total
            )
            for run in runs:
                if run["problem"] == name and run["N"] == n:
                    t = timed[run["method"]]
                    run["s_per_step_interleaved"] = t["median_s"] / timed_steps
                    run["s_per_step_interleaved_min"] = t["min_s"] / timed_steps
                    run["time_to_best_interleaved"] = (
                        run["s_per_step_interleaved"] * run["steps_to_best"]
                    )
            print(
                f"[{name} N={n}] interleaved ms/step: "
                + ", ".join(
                    f"{k} {1e3 * v['median_s'] / timed_steps:.2f}"
                    for k, v in timed.items()
                ),
                flush=True,
            )
            # Partial record after every block: a long run that is stopped keeps its measurements.
            write_json(
                "bench_pinn", {"partial": True, "quick": quick, "runs": runs}, args.out
            )

    # Ratios against PINN32 (and PINN64) at the same problem and N.
    rows, ratios = [], []
    for run in runs:
        ref = next(
            r
            for r in runs
            if r["problem"] == run["problem"]
            and r["N"] == run["N"]
            and r["method"] == "PINN32"
        )
        ref64 = next(
            (
                r
                for r in runs
                if r["problem"] == run["problem"]
                and r["N"] == run["N"]
                and r["method"] == "PINN64"
            ),
            None,
        )
        # Times to best = steps to best x the interleaved per-step time (fair under load drift).
        speedup = _ratio(
            ref["time_to_best_interleaved"], run["time_to_best_interleaved"]
        )
        k_eq = _steps_to_reach(run, ref["best_error"])
        t_eq = None if k_eq is None else k_eq * run["s_per_step_interleaved"]
        speedup_eq = _ratio(ref["time_to_best_interleaved"], t_eq)
        speedup64 = (
            _ratio(ref64["time_to_best_interleaved"], run["time_to_best_interleaved"])
            if ref64
            else None
        )
        step_ratio = _ratio(
            ref["s_per_step_interleaved"], run["s_per_step_interleaved"]
        )
        wall_speedup = _ratio(ref["time_to_best"], run["time_to_best"])
        run.update(
            speedup_vs_pinn32=speedup,
            speedup_vs_pinn32_at_equal_error=speedup_eq,
            speedup_vs_pinn64=speedup64,
            per_step_speedup_vs_pinn32=step_ratio,
            wall_speedup_vs_pinn32=wall_speedup,
        )
        dt_run = not run["method"].startswith("PINN")
        rows.append(
            [
                run["problem"],
                run["N"],
                run["method"],
                run["best_error"],
                run["error"],
                run["steps_to_best"],
                1e3 * run["s_per_step_interleaved"],
                run["time_to_best_interleaved"],
                run["time_to_best"],
                _fmt_ratio(step_ratio) if dt_run else "—",
                _fmt_ratio(speedup) if dt_run else "—",
                _fmt_ratio(speedup_eq) if dt_run else "—",
                _fmt_ratio(speedup64) if dt_run else "—",
            ]
        )
        if not run["method"].startswith("PINN"):
            ratios.append(run)

    print("\n" + "=" * 110)
    print(
        f"DT-PINN (float64, RBF-FD) vs PINN (autodiff) on the unit disk: tanh MLP 4x50, L-BFGS (history 10), "
        f"{steps} steps (Poisson) / {heat_steps} (heat, {args.heat_slices} slices), seed {args.seed}; "
        f"errors on a separate test set every {CHUNK} steps; times exclude compilation."
    )
    print(
        format_table(
            [
                "problem",
                "N",
                "method",
                "best err",
                "final err",
                "steps→best",
                "ms/step",
                "t→best [s]",
                "wall t→best",
                "per-step x",
                "speedup x",
                "x at PINN32 err",
                "vs PINN64 x",
            ],
            rows,
        )
    )
    print(
        "ms/step: median of interleaved timed calls of the compiled training loop; t→best = steps→best x ms/step; "
        "wall t→best: measured during the training run (load-sensitive).\nspeedup x = t→best(PINN32) / t→best(DT); "
        "x at PINN32 err = t→best(PINN32) / (time DT needs to reach PINN32's best error), '—' if it never does; "
        "per-step x = ms/step(PINN32) / ms/step(DT); vs PINN64 x = t→best(PINN64) / t→best(DT)."
    )
    good = [r for r in ratios if (r["speedup_vs_pinn32_at_equal_error"] or 0) >= TARGET]
    names = (
        ", ".join("{} N={} {}".format(r["problem"], r["N"], r["method"]) for r in good)
        or "none"
    )
    print(
        f"\nTarget >= {TARGET:g}x at equal or better error: met by {len(good)}/{len(ratios)} DT runs "
        f"({names})."
    )
    wall = time.perf_counter() - wall0
    print(f"wall time {wall:.0f} s")
    path = write_json(
        "bench_pinn",
        {
            "quick": quick,
            "config": {
                "steps": steps,
                "heat_steps": heat_steps,
                "heat_slices": args.heat_slices,
                "sizes": list(sizes),
                "orders": list(orders),
                "problems": list(problems),
                "seed": args.seed,
                "chunk": CHUNK,
                "network": "tanh MLP, 4 hidden layers x 50",
                "optimizer": "optimistix LBFGS(history_length=10), backtracking Armijo",
                "test_set": "4096 random interior + 512 random boundary points (11 times for heat)",
            },
            "paper": PAPER,
            "target_speedup": TARGET,
            "runs": runs,
            "wall_time_s": wall,
        },
        args.out,
    )
    print(f"wrote {path}")


def _fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}"


if __name__ == "__main__":
    main()
