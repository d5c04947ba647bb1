"""Neural ODE forward solve and gradient: pdesolve vs diffrax, same tableau, same steps.

For each case (an MLP vector field of some size) and each method (RK4, Dopri5) this times,
in one run and on the same inputs:

* forward: `y(t1)` (and the step count) of `dy/dt = mlp(y)` on [0, 1] with 1000 constant
  steps (dt = 1e-3);
* gradient: `jax.grad` of `sum(y(t1)**2)` w.r.t. the MLP parameters and `y0`.

pdesolve:  `pds.solve(NeuralODEProblem(f, y0, (0, 1)), pds.RK4() | pds.Dopri5(), dt0=dt, max_steps=N)`
diffrax:   `diffeqsolve(ODETerm(f), RK4 | Dopri5(), 0, 1, dt, y0, ConstantStepSize(), SaveAt(t1=True),
            max_steps=N, adjoint=RecursiveCheckpointAdjoint())`

Both differentiate by recursive checkpointing with the same default number of checkpoints
(O(sqrt(N)), equinox's checkpointed while loop), so `max_steps` is the same on both sides:
N = 1000 (= the steps taken; 44 checkpoints) for every case, and in the full run the tiny case
again with N = 4096 (pdesolve's default max_steps; 90 checkpoints).
diffrax 0.7.2 has no classical RK4 solver class; the benchmark builds one from diffrax's own
`ButcherTableau` + `AbstractERK` (its zero error weights are unused under ConstantStepSize).

Everything is float64, jitted, compiled once (compile time reported separately), then the
median of `--repeats` calls (default 5, more for fast calls); pdesolve and diffrax alternate
call by call after one warm-up call each, and a row slower than diffrax is re-measured with
twice the repeats and reported over all samples. For the forward pass the table also shows a
floor: the same vector-field evaluations chained in a bare `fori_loop` with no solver logic,
so each library's loop overhead is its time minus the floor. A correctness guard compares the
final states, the gradients and the step counts of the two libraries.

Ratio = pdesolve time / diffrax time. Target <= 1.0; above 1.25 is a defect.

    python benchmarks/bench_ode.py            # full run (~2-3 min on 2 CPU cores)
    python benchmarks/bench_ode.py --quick    # smoke run
    python benchmarks/bench_ode.py --platform cpu   # force a platform (default: JAX's choice;
                                                    # runs unchanged on a GPU)
    python benchmarks/bench_ode.py --cases tiny --max-steps 1000 4096   # a subset

Writes benchmarks/results/bench_ode.json.
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (  # noqa: E402
    apply_platform,
    base_parser,
    compile_jit,
    format_table,
    machine_info,
    time_interleaved,
    write_json,
)

T0, T1, DT = 0.0, 1.0, 1e-3
TARGET, DEFECT = 1.0, 1.25

# name -> (description, state shape, MLP width, MLP depth, batched over the leading axis)
CASES = {
    "linear": ("f(y) = -y, y in R^2 (per-step overhead only)", (2,), None, None, False),
    "tiny": ("MLP 2-64-64-2 tanh, y in R^2", (2,), 64, 2, False),
    "batch": ("MLP 2-64-64-2 tanh vmapped over 64 states, y (64, 2)", (64, 2), 64, 2, True),
    "wide": ("MLP 256-128-128-256 tanh, y in R^256", (256,), 128, 2, False),
}
DEFAULT_CASES = ["linear", "tiny", "batch", "wide"]
QUICK_CASES = ["linear", "tiny"]
# The default run also repeats these cases with pdesolve's default max_steps=4096 (more
# gradient checkpoints: 90 instead of 44), since the checkpoint count depends on max_steps.
EXTRA_RUNS = [("tiny", 4096)]


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=None)
    parser.add_argument("--methods", nargs="+", choices=["RK4", "Dopri5"], default=["RK4", "Dopri5"])
    parser.add_argument(
        "--max-steps",
        nargs="+",
        type=int,
        default=None,
        help="max_steps on both sides (sets the number of gradient checkpoints); several values "
        "allowed; default 1000 for every case, plus tiny with 4096 in the full run",
    )
    opts = parser.parse_args(argv)
    apply_platform(opts.platform)

    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    import pdesolve as pds

    repeats = opts.repeats or (3 if opts.quick else 5)
    cases = opts.cases or (QUICK_CASES if opts.quick else DEFAULT_CASES)
    n_steps = round((T1 - T0) / DT)
    if opts.max_steps is not None:
        runs = [(c, n) for c in cases for n in opts.max_steps]
    else:
        runs = [(c, n_steps) for c in cases]
        if not (opts.quick or opts.cases):
            runs += EXTRA_RUNS
    for _, n in runs:
        if n < n_steps:
            parser.error(f"--max-steps must be >= {n_steps} (the number of steps taken)")

    # ------------------------------------------------------------------ vector fields
    class MLPField(eqx.Module):
        mlp: eqx.nn.MLP
        batched: bool = eqx.field(static=True)

        def __call__(self, t, y, args):
            return jax.vmap(self.mlp)(y) if self.batched else self.mlp(y)

    class LinearField(eqx.Module):
        rate: jax.Array

        def __call__(self, t, y, args):
            return -self.rate * y

    def build(case, key):
        _, shape, width, depth, batched = CASES[case]
        kf, ky = jax.random.split(key)
        y0 = jax.random.normal(ky, shape, jnp.float64)
        if width is None:
            return LinearField(jnp.asarray(1.0, jnp.float64)), y0
        d = shape[-1]
        mlp = eqx.nn.MLP(d, d, width, depth, activation=jnp.tanh, key=kf, dtype=jnp.float64)
        # Scale the last layer so the dynamics stay O(1) over [0, 1].
        mlp = eqx.tree_at(lambda m: m.layers[-1].weight, mlp, mlp.layers[-1].weight * 0.5)
        return MLPField(mlp, batched), y0

    # ------------------------------------------------------------------ diffrax RK4
    class DiffraxRK4(diffrax.AbstractERK):
        """Classical RK4 from diffrax's own ERK machinery (diffrax 0.7.2 ships none)."""

        tableau = diffrax.ButcherTableau(
            c=np.array([0.5, 0.5, 1.0]),
            b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
            b_error=np.zeros(4),
            a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
        )

        @staticmethod
        def interpolation_cls(*, t0, t1, y0, y1, k):
            del k
            return diffrax.LocalLinearInterpolation(t0=t0, t1=t1, y0=y0, y1=y1)

        def order(self, terms):
            return 4

    pds_solvers = {"RK4": pds.RK4(), "Dopri5": pds.Dopri5()}
    dfx_solvers = {"RK4": DiffraxRK4(), "Dopri5": diffrax.Dopri5()}

    # ------------------------------------------------------------------ solves
    def pds_forward(method, max_steps, static):
        def fwd(params, y0):
            sol = pds.solve(
                pds.NeuralODEProblem(eqx.combine(params, static), y0, (T0, T1)),
                pds_solvers[method],
                dt0=DT,
                max_steps=max_steps,
            )
            return sol.ys[-1], sol.stats["num_steps"]

        return fwd

    def dfx_forward(method, max_steps, static):
        def fwd(params, y0):
            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(eqx.combine(params, static)),
                dfx_solvers[method],
                T0,
                T1,
                DT,
                y0,
                stepsize_controller=diffrax.ConstantStepSize(),
                saveat=diffrax.SaveAt(t1=True),
                max_steps=max_steps,
                adjoint=diffrax.RecursiveCheckpointAdjoint(),
            )
            return sol.ys[-1], sol.stats["num_steps"]

        return fwd

    def floor_forward(method, static):
        """The vector-field evaluations alone: 1000 iterations of `evals` chained calls (RK4: 4,
        Dopri5: 6 with FSAL), no solver logic; a lower bound for either library's forward."""
        evals = {"RK4": 4, "Dopri5": 6}[method]

        def fwd(params, y0):
            vf = eqx.combine(params, static)

            def body(i, y):
                z = y
                for j in range(evals):
                    z = y + DT * vf(T0 + i * DT, z, None)
                return z

            return jax.lax.fori_loop(0, n_steps, body, y0)

        return fwd

    def gradient(fwd):
        def loss(p, y0):
            return jnp.sum(fwd(p, y0)[0] ** 2)

        return jax.grad(loss, argnums=(0, 1))

    def rel_diff(a, b):
        la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
        num = np.sqrt(sum(float(jnp.sum((x - y) ** 2)) for x, y in zip(la, lb)))
        den = np.sqrt(sum(float(jnp.sum(y**2)) for y in lb))
        return num / max(den, 1e-300)

    # ------------------------------------------------------------------ run
    info = machine_info()
    print(
        f"bench_ode: jax {info['jax']} on {info['backend']} ({', '.join(info['devices'])}), "
        f"{info['cpu_count']} CPU cores, float64, {n_steps} steps of dt={DT}, repeats={repeats}"
    )
    rows, checks = [], []
    key = jax.random.PRNGKey(0)
    for case, max_steps in runs:
        vf, y0 = build(case, key)
        params, static = eqx.partition(vf, eqx.is_inexact_array)
        n_params = sum(x.size for x in jax.tree.leaves(params))
        for method in opts.methods:
            fp = pds_forward(method, max_steps, static)
            fd = dfx_forward(method, max_steps, static)
            tag = f"{case}/{method}/N={max_steps}"

            for what, fn_p, fn_d in (("forward", fp, fd), ("gradient", gradient(fp), gradient(fd))):
                cp, tcp = compile_jit(fn_p, params, y0)
                cd, tcd = compile_jit(fn_d, params, y0)
                fns = {"pdesolve": cp, "diffrax": cd}
                if what == "forward":
                    fns["floor"] = compile_jit(floor_forward(method, static), params, y0)[0]
                timing = time_interleaved(
                    fns,
                    {name: (params, y0) for name in fns},
                    repeats=repeats,
                    min_total_s=0.0 if opts.quick else 0.3,
                )
                remeasured = False
                if not opts.quick and timing["pdesolve"]["median_s"] > TARGET * timing["diffrax"]["median_s"]:
                    # Confirm a miss with a second, longer round (2-core machines are noisy);
                    # medians are then taken over both rounds' samples.
                    again = time_interleaved(
                        fns, {name: (params, y0) for name in fns}, repeats=2 * repeats, warmup=0
                    )
                    for name in fns:
                        ts = timing[name]["times_s"] + again[name]["times_s"]
                        timing[name] = dict(median_s=statistics.median(ts), min_s=min(ts), times_s=ts)
                    remeasured = True
                mp, md = timing["pdesolve"]["median_s"], timing["diffrax"]["median_s"]
                ratio = mp / md
                ratio_min = timing["pdesolve"]["min_s"] / timing["diffrax"]["min_s"]
                verdict = "ok" if ratio <= TARGET else ("slower" if ratio <= DEFECT else "DEFECT")
                row = dict(
                    case=case,
                    description=CASES[case][0],
                    state_shape=list(y0.shape),
                    n_params=int(n_params),
                    method=method,
                    max_steps=max_steps,
                    what=what,
                    pdesolve_ms=1e3 * mp,
                    diffrax_ms=1e3 * md,
                    pdesolve_min_ms=1e3 * timing["pdesolve"]["min_s"],
                    diffrax_min_ms=1e3 * timing["diffrax"]["min_s"],
                    floor_ms=1e3 * timing["floor"]["median_s"] if "floor" in timing else None,
                    ratio=ratio,
                    ratio_of_minima=ratio_min,
                    verdict=verdict,
                    repeats=len(timing["pdesolve"]["times_s"]),
                    remeasured=remeasured,
                    pdesolve_compile_s=tcp,
                    diffrax_compile_s=tcd,
                    pdesolve_times_s=timing["pdesolve"]["times_s"],
                    diffrax_times_s=timing["diffrax"]["times_s"],
                )
                # Correctness guard: same final state, step count and gradient.
                if what == "forward":
                    (yp, sp), (yd, sd) = cp(params, y0), cd(params, y0)
                    state_diff = float(jnp.max(jnp.abs(yp - yd)))
                    state_scale = float(jnp.max(jnp.abs(yd)))
                else:
                    row["gradient_rel_diff"] = rel_diff(cp(params, y0), cd(params, y0))
                rows.append(row)
                print(
                    f"  {tag:24s} {what:8s} pdesolve {1e3 * mp:9.3f} ms  diffrax {1e3 * md:9.3f} ms  "
                    f"ratio {ratio:5.2f} (min {ratio_min:4.2f})  {verdict}",
                    flush=True,
                )
            grad_rel = rows[-1]["gradient_rel_diff"]
            ok = (
                int(sp) == int(sd) == n_steps
                and state_diff <= 1e-10 * max(1.0, state_scale)
                and grad_rel <= 1e-8
            )
            checks.append(
                dict(
                    case=case,
                    method=method,
                    max_steps=max_steps,
                    pdesolve_steps=int(sp),
                    diffrax_steps=int(sd),
                    final_state_max_abs_diff=state_diff,
                    final_state_max_abs=state_scale,
                    gradient_rel_diff=grad_rel,
                    ok=bool(ok),
                )
            )

    # ------------------------------------------------------------------ report
    print()
    print(
        "Timings (median ms; ratio = pdesolve / diffrax of the medians, ratio(min) of the fastest "
        "calls; target <= 1.0, > 1.25 is a defect; f-evals only = the same number of vector-field "
        "evaluations in a bare fori_loop, a floor for the forward solve)"
    )
    print(
        format_table(
            ["case", "method", "N", "pass", "pdesolve ms", "diffrax ms", "ratio", "ratio(min)", "target",
             "verdict", "f-evals only ms"],
            [
                [r["case"], r["method"], r["max_steps"], r["what"], r["pdesolve_ms"], r["diffrax_ms"],
                 f"{r['ratio']:.2f}", f"{r['ratio_of_minima']:.2f}", "<=1.0", r["verdict"],
                 "" if r["floor_ms"] is None else r["floor_ms"]]
                for r in rows
            ],
        )
    )
    print()
    print("Compile times (s)")
    print(
        format_table(
            ["case", "method", "N", "pass", "pdesolve s", "diffrax s"],
            [[r["case"], r["method"], r["max_steps"], r["what"], r["pdesolve_compile_s"], r["diffrax_compile_s"]]
             for r in rows],
        )
    )
    print()
    print("Correctness guard (same final state, gradient and step count)")
    print(
        format_table(
            ["case", "method", "N", "steps pds/dfx", "max|dy(t1)|", "grad rel diff", "ok"],
            [[c["case"], c["method"], c["max_steps"], f"{c['pdesolve_steps']}/{c['diffrax_steps']}",
              f"{c['final_state_max_abs_diff']:.1e}", f"{c['gradient_rel_diff']:.1e}",
              "ok" if c["ok"] else "MISMATCH"] for c in checks],
        )
    )
    worst = max(rows, key=lambda r: r["ratio"])
    print(f"\nworst ratio: {worst['ratio']:.2f} ({worst['case']}/{worst['method']}/{worst['what']})")

    import diffrax as _dfx
    import equinox as _eqx

    path = write_json(
        "bench_ode",
        dict(
            settings=dict(
                t0=T0, t1=T1, dt=DT, steps=n_steps, dtype="float64", repeats=repeats, quick=opts.quick,
                max_steps=sorted({n for _, n in runs}), target_ratio=TARGET, defect_ratio=DEFECT,
                adjoint="recursive checkpointing, default checkpoints O(sqrt(max_steps)) on both sides",
                diffrax_rk4="AbstractERK subclass with the classical tableau (diffrax ships no RK4)",
            ),
            versions=dict(diffrax=_dfx.__version__, equinox=_eqx.__version__,
                          pdesolve=getattr(pds, "__version__", "?")),
            cases={k: CASES[k][0] for k, _ in runs},
            runs=[dict(case=c, max_steps=n) for c, n in runs],
            results=rows,
            checks=checks,
            worst_ratio=worst["ratio"],
        ),
        opts.out,
    )
    print(f"wrote {path}")
    if not all(c["ok"] for c in checks):
        print("WARNING: pdesolve and diffrax disagree; timings are not comparable", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
