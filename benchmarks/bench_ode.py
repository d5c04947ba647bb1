"""Neural ODE forward solve and gradient: pdesolve vs diffrax, same tableau, same steps.

Base rows (`--rows base`). For each case (an MLP vector field of some size) and each method
(RK4, Dopri5) this times, in one run and on the same inputs:

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

Feature rows (`--rows new`; by default on the tiny case, `--feature-cases` for others), each
pdesolve vs diffrax with the same configuration, each timed as a forward pass and a derivative:

* `saveat-ts-pid`: Dopri5, adaptive steps from dt0=None (automatic initial step on both sides),
  max_steps=4096, saving at `ts = linspace(0, 1, 21)` (ts[0] == t0); derivative `jax.grad` of
  `sum(ys**2)` over all saved states w.r.t. the MLP parameters and `y0`, RecursiveCheckpointAdjoint
  on both sides (pdesolve's default).
    pdesolve: `pds.solve(..., pds.Dopri5(), controller=pds.PIDController(rtol=1e-6, atol=1e-8),
              saveat=pds.SaveAt(ts=ts), max_steps=4096)`
    diffrax:  `diffeqsolve(..., Dopri5(), 0, 1, None, y0, PIDController(rtol=1e-6, atol=1e-8,
              step_ts=ts), SaveAt(ts=ts), max_steps=4096, adjoint=RecursiveCheckpointAdjoint())`
  pdesolve's `SaveAt(ts)` clips steps to land on every saved time (no interpolation), so the
  like-for-like diffrax call passes `step_ts=ts`, which does the same. The full run adds a row
  `saveat-ts-pid (dfx interp)` with diffrax's default (no `step_ts`: dense-output interpolation
  at ts), which takes far fewer steps on a smooth problem; it is not a like-for-like comparison.
* `vmap-grad-pid`: the same solve with SaveAt(t1=True), `jax.jit(jax.vmap(f, in_axes=(None, 0)))`
  of the forward and of `jax.grad(sum(y(t1)**2))` over a batch of 8 random y0 (PRNGKey(1)).
* `dense-evaluate-1000`: Dopri5 under the same PID controller with `SaveAt(dense=True)`, the
  dense output evaluated at 1000 times in [0, 1] (pdesolve: `sol.evaluate(ts)`, vectorised;
  diffrax: `jax.vmap(sol.evaluate)(ts)`); derivative `jax.grad` of `sum(ys**2)` over the 1000
  values. Both use Dopri5's order-4 continuous extension.
* `event-terminal`: Dopri5 under the same PID controller, ended by the terminal event
  `t − 0.7 + 1e-3 tanh(y_0) = 0` (state-dependent), located by `optimistix.Bisection` on the
  step's dense output on both sides (`pds.Event(cond)` vs `diffrax.Event(cond, Bisection)`);
  values: the state and the time at the event; derivative `jax.grad` of
  `sum(y(t*)**2) + t*`.
* `jacfwd ForwardMode` / `jacfwd DirectAdjoint`: `jax.jit(jax.jacfwd(y0 -> y(t1)))` with 100
  constant steps of dt=1e-2 (max_steps=100), RK4 and Dopri5, `adjoint=pds.ForwardMode()` vs
  `diffrax.ForwardMode()` and `pds.DirectAdjoint()` vs `diffrax.DirectAdjoint()`; the forward
  pass under the same adjoint is timed too.
The guard for these rows: saved values and derivatives agree to 1e-5 relative under PID (the
two PID controllers are separate implementations; step counts are reported for both sides but
need not match) and to 1e-9 with constant steps (which must take the same 100 steps); every
derivative must be finite.

Peer rows (`--rows peers`; in the default full run too; `--peer-cases` restricts the cases, default
the base rows' cases): pdesolve and diffrax next to the PyTorch libraries torchdiffeq and torchode,
measured in the same run (torch eager, CPU, float64; `--torch-threads` sets torch.set_num_threads,
default torch's own; the JSON records both). Peers are imported lazily; a missing one is printed
and recorded as "peer X not installed: <error>". The torch vector field is a copy of the equinox
one (`_peers_ode.py`: the same Linear weights and biases as float64 `nn.Linear`s, tanh between
them; `f(y) = -rate*y` for the linear case), checked to agree with it to 1e-12 before timing.
Two settings per case, each a forward `y(t1)` (torch under `torch.no_grad()`) and the gradient of
`sum(y(t1)**2)` w.r.t. the MLP parameters and y0 (torch: `torch.autograd.grad`):

* `rk4-const`: 1000 constant steps of dt=1e-3.
    pdesolve, diffrax: as in the base rows (classical RK4, N=1000, RecursiveCheckpointAdjoint).
    torchdiffeq: `odeint(f, y0, t=[0, 1], method='rk4', options=dict(step_size=1e-3))`. torchdiffeq
      0.2.5's 'rk4' is NOT the classical tableau but Kutta's 3/8 rule (`rk4_alt_step_func`); it is
      checked to round-off against pdesolve with the 3/8 tableau (`pds.ExplicitRK`, untimed), and
      its difference from classical RK4 is reported.
    torchode: `AutoDiffAdjoint(RK4, FixedStepController(), max_steps=1000).solve(IVP, dt0=1e-3)`,
      where RK4 is the classical tableau built from torchode's own `ExplicitRungeKutta` and
      `ButcherTableau` (torchode 1.0.1 ships Euler, Heun, Dopri5, Tsit5 only).
* `dopri5-adaptive`: Dopri5, rtol=1e-6, atol=1e-8, automatic initial step, integral control.
    pdesolve: `pds.solve(..., pds.Dopri5(), dt0=None, controller=pds.PIDController(rtol=1e-6,
      atol=1e-8), max_steps=4096)` (pcoeff=0, icoeff=1: integral control; the feature rows' setting).
    diffrax: `diffeqsolve(..., Dopri5(), 0, 1, None, y0, PIDController(rtol=1e-6, atol=1e-8),
      max_steps=4096, adjoint=RecursiveCheckpointAdjoint())`.
    torchdiffeq: `odeint(f, y0, t=[0, 1], method='dopri5', rtol=1e-6, atol=1e-8)` (its fixed
      integral-type controller: safety 0.9, factor in [0.2, 10] but never below 1 after an accepted
      step; it steps past t1 and returns its dense interpolant at t1).
    torchode: `AutoDiffAdjoint(Dopri5(), IntegralController(atol=1e-8, rtol=1e-6), max_steps=4096)
      .solve(IVP, dt0=None)`; IntegralController is the exact match of pdesolve's default
      PIDController (safety 0.9, factors [0.2, 10], exponent 1/5, RMS norm), so torchode's PIDController
      is not used. torchode works on (batch, features): the whole state is ONE sample of
      prod(shape) features (one ODE, one error norm, as pdesolve/diffrax), not 64 separate ODEs.
  Gradient methods for the peers: backprop through the solver (`odeint`; torchode's
  `AutoDiffAdjoint`) and the continuous adjoint (`odeint_adjoint` with the same method, options,
  rtol/atol for the adjoint solve; torchode's `BacksolveAdjoint(term, step, controller)`, the
  same step method and controller backwards). pdesolve: its default RecursiveCheckpointAdjoint
  (pdesolve has no continuous/backsolve adjoint; its other adjoints are DirectAdjoint,
  ForwardMode, and ReversibleAdjoint/DiscreteAdjoint for ReversibleRK/IMEXRK).
  torch.compile is not used (eager torch, as most torchdiffeq users run it).
  All sides of one pass are timed in one interleaved measurement (`time_mixed`: call by call, each
  side warmed up by an untimed checked call first; a side wants `--repeats` samples, fewer (>= 3) if
  that would take over 8 s, more until 0.3 s in total if fast). Ratio = pdesolve median / the
  fastest torch side's median (pdesolve / diffrax also shown); target: gradients <= 1.0x the
  fastest peer (PASS / MISS with the shortfall). Correctness: y(t1) and gradients vs pdesolve to
  1e-10 relative with constant steps (same tableau) and, under adaptive steps, y(t1) to 1e-5 and
  backprop gradients to 1e-4 (the step sequences and torchdiffeq's end-point interpolation differ);
  continuous-adjoint gradients are reported, not checked. Step counts (accepted/taken, and the
  adjoint's backward steps) are reported for every side. Written to the JSON under "peers".

Everything is float64, jitted, compiled once (compile time reported separately), then the
median of `--repeats` calls (default 5, more for fast calls); pdesolve and diffrax alternate
call by call after one warm-up call each, and a row slower than diffrax is re-measured with
twice the repeats and reported over all samples. For the forward pass the table also shows a
floor: the same vector-field evaluations chained in a bare `fori_loop` with no solver logic,
so each library's loop overhead is its time minus the floor. A correctness guard compares the
final states, the gradients and the step counts of the two libraries.

Ratio = pdesolve time / diffrax time. Target <= 1.0; above 1.25 is a defect.

    python benchmarks/bench_ode.py            # full run, base + feature + peer rows
    python benchmarks/bench_ode.py --quick    # smoke run
    python benchmarks/bench_ode.py --rows new # feature rows only (--rows base: base rows only)
    python benchmarks/bench_ode.py --rows peers --merge   # peer rows only, merged into the JSON
                                                          # (the other row groups' results kept)
    python benchmarks/bench_ode.py --platform cpu   # force a platform (default: JAX's choice;
                                                    # runs unchanged on a GPU)
    python benchmarks/bench_ode.py --cases tiny --max-steps 1000 4096   # a subset

Writes benchmarks/results/bench_ode.json; every run overwrites it unless `--merge`, which loads
it and replaces only the row groups named in `--rows`.
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import apply_platform, base_parser, compile_jit, diffrax_rk4  # noqa: E402
from _common import format_table, machine_info, rel_diff, time_interleaved, write_json  # noqa: E402

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

# Feature rows (`--rows new`): adaptive PID stepping with SaveAt(ts), vmap(grad) under PID,
# and forward-mode Jacobians with constant steps.
PID_RTOL, PID_ATOL, PID_MAX_STEPS = 1e-6, 1e-8, 4096
N_SAVE_TS = 21  # SaveAt(ts=linspace(t0, t1, 21)); ts[0] == t0
N_DENSE = 1000  # dense output evaluated at linspace(t0, t1, 1000)
VMAP_BATCH = 8
JAC_DT, JAC_STEPS = 1e-2, 100  # jacfwd rows: 100 constant steps, max_steps = 100
PID_TOL, FIXED_TOL = 1e-5, 1e-9  # relative agreement required between the libraries
FEATURE_CASES = ["tiny"]


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
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=["base", "new", "peers"],
        default=["base", "new", "peers"],
        help="base: the constant-step forward/gradient rows; new: the feature rows (SaveAt(ts) under "
        "PID, vmap(grad) under PID, jacfwd with ForwardMode / DirectAdjoint); peers: pdesolve and diffrax "
        "next to torchdiffeq and torchode (PyTorch, CPU); default all three",
    )
    parser.add_argument(
        "--peer-cases",
        nargs="+",
        choices=list(CASES),
        default=None,
        help="cases for the peer rows (default: the base rows' cases)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads for the peer rows (default: leave torch's default)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="load the existing JSON and replace only what this run produced (the row groups in --rows), "
        "keeping the others",
    )
    parser.add_argument(
        "--feature-cases",
        nargs="+",
        choices=[c for c in CASES if c != "linear"],
        default=FEATURE_CASES,
        help="cases for the feature rows (default: tiny)",
    )
    opts = parser.parse_args(argv)
    row_sets, feature_cases = set(opts.rows), opts.feature_cases
    apply_platform(opts.platform)

    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import equinox as eqx
    import optimistix as optx
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
    DiffraxRK4 = diffrax_rk4()  # classical RK4 (diffrax 0.7.2 ships none)

    pds_solvers = {"RK4": pds.RK4(), "Dopri5": pds.Dopri5()}
    dfx_solvers = {"RK4": DiffraxRK4(), "Dopri5": diffrax.Dopri5()}

    # ------------------------------------------------------------------ solves
    def pds_forward(method, max_steps, static, *, dt0=DT, controller=None, saveat=None, adjoint=None,
                    all_ys=False):
        """pdesolve solve of the MLP field; returns (y(t1) or all saved ys, num_steps).
        `controller`, `saveat` and `adjoint` left as None take pdesolve's defaults
        (ConstantStepSize given dt0, SaveAt(t1=True), RecursiveCheckpointAdjoint())."""

        def fwd(params, y0):
            sol = pds.solve(
                pds.NeuralODEProblem(eqx.combine(params, static), y0, (T0, T1)),
                pds_solvers[method],
                dt0=dt0,
                max_steps=max_steps,
                controller=controller,
                saveat=saveat,
                adjoint=adjoint,
            )
            return (sol.ys if all_ys else sol.ys[-1]), sol.stats["num_steps"]

        return fwd

    def dfx_forward(method, max_steps, static, *, dt0=DT, controller=None, saveat=None, adjoint=None,
                    all_ys=False):
        """diffrax twin of `pds_forward`; None means ConstantStepSize(), SaveAt(t1=True),
        RecursiveCheckpointAdjoint()."""

        def fwd(params, y0):
            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(eqx.combine(params, static)),
                dfx_solvers[method],
                T0,
                T1,
                dt0,
                y0,
                stepsize_controller=controller or diffrax.ConstantStepSize(),
                saveat=saveat or diffrax.SaveAt(t1=True),
                max_steps=max_steps,
                adjoint=adjoint or diffrax.RecursiveCheckpointAdjoint(),
            )
            return (sol.ys if all_ys else sol.ys[-1]), sol.stats["num_steps"]

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

    def all_finite(tree):
        return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))

    def measure(fns, args):
        """Time compiled `fns` (name -> fn) on `args` (name -> tuple), alternating calls; a
        pdesolve median above diffrax's is confirmed by a second, longer round (2-core machines
        are noisy) and the medians are then taken over both rounds' samples.
        Returns (timing, remeasured)."""
        timing = time_interleaved(fns, args, repeats=repeats, min_total_s=0.0 if opts.quick else 0.3)
        if opts.quick or timing["pdesolve"]["median_s"] <= TARGET * timing["diffrax"]["median_s"]:
            return timing, False
        again = time_interleaved(fns, args, repeats=2 * repeats, warmup=0)
        for name in fns:
            ts = timing[name]["times_s"] + again[name]["times_s"]
            timing[name] = dict(median_s=statistics.median(ts), min_s=min(ts), times_s=ts)
        return timing, True

    def timing_fields(timing, remeasured, tcp, tcd):
        """The timing part of a result row (ms, ratio, verdict, compile s, raw samples)."""
        mp, md = timing["pdesolve"]["median_s"], timing["diffrax"]["median_s"]
        ratio = mp / md
        return dict(
            pdesolve_ms=1e3 * mp,
            diffrax_ms=1e3 * md,
            pdesolve_min_ms=1e3 * timing["pdesolve"]["min_s"],
            diffrax_min_ms=1e3 * timing["diffrax"]["min_s"],
            floor_ms=1e3 * timing["floor"]["median_s"] if "floor" in timing else None,
            ratio=ratio,
            ratio_of_minima=timing["pdesolve"]["min_s"] / timing["diffrax"]["min_s"],
            verdict="ok" if ratio <= TARGET else ("slower" if ratio <= DEFECT else "DEFECT"),
            repeats=len(timing["pdesolve"]["times_s"]),
            remeasured=remeasured,
            pdesolve_compile_s=tcp,
            diffrax_compile_s=tcd,
            pdesolve_times_s=timing["pdesolve"]["times_s"],
            diffrax_times_s=timing["diffrax"]["times_s"],
        )

    def print_row(tag, what, r):
        print(
            f"  {tag:28s} {what:9s} pdesolve {r['pdesolve_ms']:9.3f} ms  diffrax {r['diffrax_ms']:9.3f} ms  "
            f"ratio {r['ratio']:5.2f} (min {r['ratio_of_minima']:4.2f})  {r['verdict']}",
            flush=True,
        )

    # ------------------------------------------------------------------ run
    info = machine_info()
    print(
        f"bench_ode: jax {info['jax']} on {info['backend']} ({', '.join(info['devices'])}), "
        f"{info['cpu_count']} CPU cores, float64, {n_steps} steps of dt={DT}, repeats={repeats}"
    )
    rows, checks = [], []
    key = jax.random.PRNGKey(0)
    for case, max_steps in runs if "base" in row_sets else []:
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
                timing, remeasured = measure(fns, {name: (params, y0) for name in fns})
                row = dict(
                    row="constant-step",
                    case=case,
                    description=CASES[case][0],
                    state_shape=list(y0.shape),
                    n_params=int(n_params),
                    method=method,
                    max_steps=max_steps,
                    what=what,
                    config="ConstantStepSize dt=1e-3, SaveAt(t1), RecursiveCheckpointAdjoint",
                    **timing_fields(timing, remeasured, tcp, tcd),
                )
                # Correctness guard: same final state, step count and gradient.
                if what == "forward":
                    (yp, sp), (yd, sd) = cp(params, y0), cd(params, y0)
                    state_diff = float(jnp.max(jnp.abs(yp - yd)))
                    state_scale = float(jnp.max(jnp.abs(yd)))
                else:
                    row["gradient_rel_diff"] = rel_diff(cp(params, y0), cd(params, y0))
                rows.append(row)
                print_row(tag, what, row)
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

    # ------------------------------------------------------------------ feature rows
    # Adaptive stepping, batched gradients and forward-mode Jacobians (see the module docstring).
    # Each entry: (row, case, method, what, pdesolve fn, diffrax fn, args, is_pid, config).
    feature_rows, feature_checks = [], []
    pid = dict(rtol=PID_RTOL, atol=PID_ATOL)
    save_ts = jnp.linspace(T0, T1, N_SAVE_TS)
    for case in feature_cases if "new" in row_sets else []:
        vf, y0 = build(case, key)
        params, static = eqx.partition(vf, eqx.is_inexact_array)
        y0_batch = jax.random.normal(jax.random.PRNGKey(1), (VMAP_BATCH,) + y0.shape, jnp.float64)
        specs = []
        # 1. SaveAt(ts) with ts[0] == t0 under PID (Dopri5, dt0=None, max_steps=4096).
        fp = pds_forward("Dopri5", PID_MAX_STEPS, static, dt0=None, controller=pds.PIDController(**pid),
                         saveat=pds.SaveAt(ts=save_ts), all_ys=True)
        gp = gradient(fp)  # one object for both diffrax variants, so it is compiled once
        for label, dfx_pid in (
            # Like for like: pdesolve lands on every saved time, so diffrax is told to as well.
            ("saveat-ts-pid", diffrax.PIDController(**pid, step_ts=save_ts)),
            # diffrax's own default: dense-output interpolation at ts, so fewer steps.
            ("saveat-ts-pid (dfx interp)", diffrax.PIDController(**pid)),
        ):
            fd = dfx_forward("Dopri5", PID_MAX_STEPS, static, dt0=None, controller=dfx_pid,
                             saveat=diffrax.SaveAt(ts=save_ts), all_ys=True)
            cfg = (f"Dopri5, PID(rtol={PID_RTOL:g}, atol={PID_ATOL:g}), dt0=None, SaveAt(ts=linspace(0,1,"
                   f"{N_SAVE_TS})), RCA" + (", dfx step_ts=ts" if "interp" not in label else ", dfx interpolates"))
            specs.append((label, "forward", fp, fd, (params, y0), True, cfg))
            specs.append((label, "gradient", gp, gradient(fd), (params, y0), True, cfg))
        # 2. vmap(grad) under PID over a batch of y0, SaveAt(t1=True).
        fp = pds_forward("Dopri5", PID_MAX_STEPS, static, dt0=None, controller=pds.PIDController(**pid))
        fd = dfx_forward("Dopri5", PID_MAX_STEPS, static, dt0=None, controller=diffrax.PIDController(**pid))
        cfg = f"Dopri5, PID(rtol={PID_RTOL:g}, atol={PID_ATOL:g}), dt0=None, SaveAt(t1), RCA, vmap over {VMAP_BATCH} y0"
        batched = lambda f: jax.vmap(f, in_axes=(None, 0))  # noqa: E731
        specs.append(("vmap-grad-pid", "vmap fwd", batched(fp), batched(fd), (params, y0_batch), True, cfg))
        specs.append(("vmap-grad-pid", "vmap(grad)", batched(gradient(fp)), batched(gradient(fd)),
                      (params, y0_batch), True, cfg))
        # 3. jacfwd of y0 -> y(t1), constant steps, ForwardMode and DirectAdjoint.
        for method in opts.methods:
            for label, pds_adj, dfx_adj in (
                ("jacfwd ForwardMode", pds.ForwardMode(), diffrax.ForwardMode()),
                ("jacfwd DirectAdjoint", pds.DirectAdjoint(), diffrax.DirectAdjoint()),
            ):
                fp = pds_forward(method, JAC_STEPS, static, dt0=JAC_DT, adjoint=pds_adj)
                fd = dfx_forward(method, JAC_STEPS, static, dt0=JAC_DT, adjoint=dfx_adj)
                jac = lambda f: jax.jacfwd(lambda p, y: f(p, y)[0], argnums=1)  # noqa: E731
                cfg = f"{method}, ConstantStepSize dt={JAC_DT:g} ({JAC_STEPS} steps), max_steps={JAC_STEPS}, {type(pds_adj).__name__}"
                specs.append((label, "forward", fp, fd, (params, y0), False, cfg))
                specs.append((label, "jacfwd", jac(fp), jac(fd), (params, y0), False, cfg))

        # 4. Dense output: SaveAt(dense=True), evaluated at 1000 times (Dopri5, PID).
        dense_ts = jnp.linspace(T0, T1, N_DENSE)

        def pds_dense(params, y0):
            sol = pds.solve(pds.NeuralODEProblem(eqx.combine(params, static), y0, (T0, T1)), pds.Dopri5(),
                            controller=pds.PIDController(**pid), saveat=pds.SaveAt(dense=True),
                            max_steps=PID_MAX_STEPS)
            return sol.evaluate(dense_ts), sol.stats["num_steps"]

        def dfx_dense(params, y0):
            sol = diffrax.diffeqsolve(diffrax.ODETerm(eqx.combine(params, static)), diffrax.Dopri5(), T0, T1, None, y0,
                                      stepsize_controller=diffrax.PIDController(**pid),
                                      saveat=diffrax.SaveAt(dense=True), max_steps=PID_MAX_STEPS,
                                      adjoint=diffrax.RecursiveCheckpointAdjoint())
            return jax.vmap(sol.evaluate)(dense_ts), sol.stats["num_steps"]

        cfg = (f"Dopri5, PID(rtol={PID_RTOL:g}, atol={PID_ATOL:g}), dt0=None, SaveAt(dense=True), evaluate at "
               f"linspace(0,1,{N_DENSE}), RCA")
        specs.append(("dense-evaluate-1000", "forward", pds_dense, dfx_dense, (params, y0), True, cfg))
        specs.append(("dense-evaluate-1000", "gradient", gradient(pds_dense), gradient(dfx_dense), (params, y0), True, cfg))

        # 5. A terminal event (the state-dependent condition t - 0.7 + 1e-3 tanh(y_0)), Dopri5, PID.
        def cond(t, y, args, **kwargs):
            return t - 0.7 + 1e-3 * jnp.tanh(jnp.ravel(y)[0])

        def pds_event(params, y0):
            sol = pds.solve(pds.NeuralODEProblem(eqx.combine(params, static), y0, (T0, T1)), pds.Dopri5(),
                            controller=pds.PIDController(**pid), event=pds.Event(cond), max_steps=PID_MAX_STEPS)
            return (sol.ys[-1], sol.event_time), sol.stats["num_steps"]

        def dfx_event(params, y0):
            sol = diffrax.diffeqsolve(diffrax.ODETerm(eqx.combine(params, static)), diffrax.Dopri5(), T0, T1, None, y0,
                                      stepsize_controller=diffrax.PIDController(**pid),
                                      event=diffrax.Event(cond, optx.Bisection(rtol=1e-14, atol=1e-14)),
                                      max_steps=PID_MAX_STEPS, adjoint=diffrax.RecursiveCheckpointAdjoint())
            return (sol.ys[-1], sol.ts[-1]), sol.stats["num_steps"]

        def event_gradient(fwd):
            def loss(p, y0):
                (y, t), _ = fwd(p, y0)
                return jnp.sum(y**2) + t

            return jax.grad(loss, argnums=(0, 1))

        cfg = (f"Dopri5, PID(rtol={PID_RTOL:g}, atol={PID_ATOL:g}), dt0=None, terminal event t - 0.7 + 1e-3 tanh(y0) "
               "located by optx.Bisection on the dense output (both), RCA")
        specs.append(("event-terminal", "forward", pds_event, dfx_event, (params, y0), True, cfg))
        specs.append(("event-terminal", "gradient", event_gradient(pds_event), event_gradient(dfx_event), (params, y0),
                      True, cfg))

        method_of = lambda cfg: cfg.split(",")[0]  # noqa: E731
        outputs, compiled = {}, {}
        for label, what, fn_p, fn_d, args, is_pid, cfg in specs:
            like_for_like = not label.endswith("(dfx interp)")
            if opts.quick and not like_for_like:
                continue
            if id(fn_p) not in compiled:
                compiled[id(fn_p)] = compile_jit(fn_p, *args)
            cp, tcp = compiled[id(fn_p)]
            cd, tcd = compile_jit(fn_d, *args)
            timing, remeasured = measure({"pdesolve": cp, "diffrax": cd}, {"pdesolve": args, "diffrax": args})
            row = dict(
                row=label, case=case, description=CASES[case][0], state_shape=list(y0.shape),
                n_params=int(sum(x.size for x in jax.tree.leaves(params))), method=method_of(cfg),
                max_steps=PID_MAX_STEPS if is_pid else JAC_STEPS, what=what, config=cfg,
                **timing_fields(timing, remeasured, tcp, tcd),
            )
            if not like_for_like:
                # diffrax interpolates at ts and takes fewer steps: the ratio is informative
                # (what pdesolve's clip-to-ts SaveAt costs) but not a like-for-like verdict.
                row.update(like_for_like=False, raw_verdict=row["verdict"], verdict="not like-for-like")
            feature_rows.append(row)
            print_row(f"{case}/{label}", what, row)
            outputs[(label, method_of(cfg), what)] = (cp(*args), cd(*args), is_pid, cfg)

        # Correctness guard: values (with step counts) and derivatives agree, derivatives finite.
        for (label, method, what), (out_p, out_d, is_pid, cfg) in outputs.items():
            if what in ("forward", "vmap fwd"):
                continue
            (vp, sp), (vd, sd) = outputs[(label, method, "vmap fwd" if what == "vmap(grad)" else "forward")][:2]
            sp, sd = np.asarray(sp).ravel().tolist(), np.asarray(sd).ravel().tolist()
            tol = PID_TOL if is_pid else FIXED_TOL
            value_rel, deriv_rel = rel_diff(vp, vd), rel_diff(out_p, out_d)
            finite = all_finite(out_p) and all_finite(out_d)
            same_steps = sp == sd
            ok = value_rel <= tol and deriv_rel <= tol and finite and (is_pid or (same_steps and sp[0] == JAC_STEPS))
            feature_checks.append(dict(
                row=label, case=case, method=method, what=what, pdesolve_steps=sp, diffrax_steps=sd,
                same_steps=same_steps, value_rel_diff=value_rel, derivative_rel_diff=deriv_rel, tolerance=tol,
                finite=finite, ok=bool(ok),
            ))

    # ------------------------------------------------------------------ peer rows
    # pdesolve and diffrax next to torchdiffeq and torchode (PyTorch, eager, CPU, float64); see the
    # module docstring for each side's exact configuration.
    peer_rows, peer_checks, peer_info = [], [], {}
    if "peers" in row_sets:
        peer_rows, peer_checks, peer_info = run_peers(
            opts, cases=opts.peer_cases or cases, build=build, key=jax.random.PRNGKey(0), n_steps=n_steps,
            pds_forward=pds_forward, dfx_forward=dfx_forward, gradient=gradient, repeats=repeats,
        )

    # ------------------------------------------------------------------ report
    all_rows = rows + feature_rows
    if all_rows:
        print()
        print(
            "Timings (median ms; ratio = pdesolve / diffrax of the medians, ratio(min) of the fastest "
            "calls; target <= 1.0, > 1.25 is a defect; f-evals only = the same number of vector-field "
            "evaluations in a bare fori_loop, a floor for the forward solve)"
        )
        print(
            format_table(
                ["row", "case", "method", "N", "pass", "pdesolve ms", "diffrax ms", "ratio", "ratio(min)", "target",
                 "verdict", "f-evals only ms"],
                [
                    [r["row"], r["case"], r["method"], r["max_steps"], r["what"], r["pdesolve_ms"], r["diffrax_ms"],
                     f"{r['ratio']:.2f}", f"{r['ratio_of_minima']:.2f}", "<=1.0", r["verdict"],
                     "" if r["floor_ms"] is None else r["floor_ms"]]
                    for r in all_rows
                ],
            )
        )
        if feature_rows:
            print("\nFeature-row configurations (identical on both sides unless noted)")
            for cfg in dict.fromkeys(r["row"] + ": " + r["config"] for r in feature_rows):
                print(f"  {cfg}")
        print()
        print("Compile times (s)")
        print(
            format_table(
                ["row", "case", "method", "N", "pass", "pdesolve s", "diffrax s"],
                [[r["row"], r["case"], r["method"], r["max_steps"], r["what"], r["pdesolve_compile_s"],
                  r["diffrax_compile_s"]] for r in all_rows],
            )
        )
        if checks:
            print()
            print("Correctness guard, constant-step rows (same final state, gradient and step count)")
            print(
                format_table(
                    ["case", "method", "N", "steps pds/dfx", "max|dy(t1)|", "grad rel diff", "ok"],
                    [[c["case"], c["method"], c["max_steps"], f"{c['pdesolve_steps']}/{c['diffrax_steps']}",
                      f"{c['final_state_max_abs_diff']:.1e}", f"{c['gradient_rel_diff']:.1e}",
                      "ok" if c["ok"] else "MISMATCH"] for c in checks],
                )
            )

        def steps_str(st):
            return str(st[0]) if len(st) == 1 else f"{min(st)}..{max(st)} (sum {sum(st)})"

        if feature_checks:
            print()
            print(
                "Correctness guard, feature rows (relative diff of saved values and of the derivative, "
                "derivatives finite; fixed-step rows must also take the same steps. Under PID the step "
                "counts are reported, not required to match: the controllers are separate implementations)"
            )
            print(
                format_table(
                    ["row", "case", "method", "pass", "steps pds", "steps dfx", "value rel diff",
                     "deriv rel diff", "tol", "finite", "ok"],
                    [[c["row"], c["case"], c["method"], c["what"], steps_str(c["pdesolve_steps"]),
                      steps_str(c["diffrax_steps"]), f"{c['value_rel_diff']:.1e}", f"{c['derivative_rel_diff']:.1e}",
                      f"{c['tolerance']:.0e}", "yes" if c["finite"] else "NO", "ok" if c["ok"] else "MISMATCH"]
                     for c in feature_checks],
                )
            )
        worst = max((r for r in all_rows if r.get("like_for_like", True)), key=lambda r: r["ratio"])
        print(f"\nworst ratio: {worst['ratio']:.2f} ({worst['row']}/{worst['case']}/{worst['method']}/{worst['what']})")
    if "peers" in row_sets:
        print_peers(peer_rows, peer_checks, peer_info)

    import diffrax as _dfx
    import equinox as _eqx

    payload = dict(
        settings=dict(
            t0=T0, t1=T1, dt=DT, steps=n_steps, dtype="float64", repeats=repeats, quick=opts.quick,
            max_steps=sorted({n for _, n in runs}), target_ratio=TARGET, defect_ratio=DEFECT,
            adjoint="recursive checkpointing, default checkpoints O(sqrt(max_steps)) on both sides",
            diffrax_rk4="AbstractERK subclass with the classical tableau (diffrax ships no RK4)",
            rows=sorted(row_sets),
            feature_rows=dict(
                cases=feature_cases if "new" in row_sets else [], pid_rtol=PID_RTOL, pid_atol=PID_ATOL,
                pid_max_steps=PID_MAX_STEPS, saveat_ts=f"linspace({T0}, {T1}, {N_SAVE_TS})",
                vmap_batch=VMAP_BATCH, jacfwd_dt=JAC_DT, jacfwd_steps=JAC_STEPS,
                pid_tolerance=PID_TOL, fixed_step_tolerance=FIXED_TOL,
            ),
        ),
        versions=dict(diffrax=_dfx.__version__, equinox=_eqx.__version__,
                      pdesolve=getattr(pds, "__version__", "?")),
        cases={k: CASES[k][0] for k in [c for c, _ in runs] + (feature_cases if "new" in row_sets else [])},
        runs=[dict(case=c, max_steps=n) for c, n in runs] if "base" in row_sets else [],
        results=all_rows,
        checks=checks,
        feature_checks=feature_checks,
        worst_ratio=worst["ratio"] if all_rows else None,
    )
    if "peers" in row_sets:
        payload["peers"] = dict(
            cases={c: CASES[c][0] for c in (opts.peer_cases or cases)}, machine=machine_info(),
            settings=dict(rk4_const=f"{n_steps} constant steps of dt={DT:g}",
                          dopri5_adaptive=f"Dopri5, rtol={PID_RTOL:g}, atol={PID_ATOL:g}, dt0=None, integral control",
                          fixed_step_tolerance=PEER_FIXED_TOL, adaptive_tolerance=PID_TOL, target_gradient_ratio=TARGET,
                          ratio="pdesolve median / fastest peer median (torch sides only)"),
            **peer_info, rows=peer_rows, checks=peer_checks,
        )
    if opts.merge:
        payload = merge_results(payload, row_sets, opts.out)
    path = write_json("bench_ode", payload, opts.out)
    print(f"wrote {path}" + (" (merged: only the row groups of this run replaced)" if opts.merge else ""))
    if not all(c["ok"] for c in checks + feature_checks):
        print("WARNING: pdesolve and diffrax disagree; timings are not comparable", file=sys.stderr)
        return 1
    if not all(c["ok"] for c in peer_checks):
        print("WARNING: a peer disagrees with pdesolve beyond its tolerance; see the peer correctness table",
              file=sys.stderr)
        return 1
    return 0


def merge_results(payload, row_sets, out):
    """`--merge`: the existing JSON with only this run's row groups replaced. base owns `runs`,
    `checks` and the constant-step rows of `results`; new owns `feature_checks` and the other
    rows of `results`; peers owns `peers`. Settings are merged key by key (`rows` becomes the
    union), `worst_ratio` is recomputed over the merged results."""
    from _common import RESULTS_DIR

    path = out or (RESULTS_DIR / "bench_ode.json")
    if not os.path.exists(path):
        return payload
    with open(path) as fh:
        old = json.load(fh)
    old.pop("benchmark", None)
    prev_machine = old.pop("machine", None)
    merged = dict(old)
    group_of = lambda r: "base" if r.get("row") == "constant-step" else "new"  # noqa: E731
    merged["results"] = [r for r in old.get("results", []) if group_of(r) not in row_sets] + [
        r for r in payload["results"] if group_of(r) in row_sets]
    for key, group in (("runs", "base"), ("checks", "base"), ("feature_checks", "new"), ("peers", "peers")):
        if group in row_sets and key in payload:
            merged[key] = payload[key]
    settings = dict(old.get("settings", {}))
    keep_rows = set(settings.get("rows", []))
    new_settings = dict(payload["settings"])
    if not row_sets & {"base", "new"}:  # a peers-only run: the base/feature settings stay as they were
        new_settings = {k: v for k, v in new_settings.items() if k not in settings}
    settings.update(new_settings)
    settings["rows"] = sorted(keep_rows | row_sets)
    merged["settings"] = settings
    merged["versions"] = {**old.get("versions", {}), **payload["versions"]}
    merged["cases"] = {**old.get("cases", {}), **payload["cases"]}
    like = [r for r in merged["results"] if r.get("like_for_like", True) and "ratio" in r]
    merged["worst_ratio"] = max((r["ratio"] for r in like), default=None)
    if prev_machine is not None:
        merged["machine_of_merged_rows"] = merged.get("machine_of_merged_rows", prev_machine)
    return merged


def print_peers(rows, checks, info):
    """The peer tables: timings with ratios and verdicts, configurations, correctness."""
    if not rows:
        print("\nPeer rows: none ran" + (" (" + "; ".join(info.get("not_installed", {}).values()) + ")"
                                       if info.get("not_installed") else ""))
        return
    sides = list(dict.fromkeys(s for r in rows for s in r["times_ms"]))
    print()
    print(
        "Peer rows (median ms; torch sides eager on CPU, float64, torch.get_num_threads() = "
        f"{info['torch_num_threads']}; ratio = pdesolve / the fastest torch side; target for gradients <= 1.0; "
        "the continuous-adjoint sides' forward pass is the plain solve, so they have gradient rows only)"
    )

    def steps_of(r):
        st = r["steps"]
        return " / ".join(f"{st[s]['accepted']}" + (f"+{st[s]['backward_steps']}b" if st[s].get("backward_steps") else "")
                          for s in sides if s in st)

    print(
        format_table(
            ["case", "setting", "pass"] + [f"{s} ms" for s in sides]
            + ["fastest peer", "pds/fastest", "pds/dfx", "verdict", "accepted steps (" + " / ".join(sides) + ")"],
            [[r["case"], r["setting"], r["what"]] + [r["times_ms"].get(s, "") for s in sides]
             + [r["fastest_peer"], f"{r['ratio_vs_fastest_peer']:.3f}", f"{r['ratio_vs_diffrax']:.3f}", r["verdict"],
                steps_of(r)] for r in rows],
        )
    )
    grads = [r for r in rows if r["what"] == "gradient"]
    n_pass = sum(r["verdict"] == "PASS" for r in grads)
    worst = max(grads, key=lambda r: r["ratio_vs_fastest_peer"])
    print(f"gradient target (pdesolve <= 1.0x the fastest peer): {n_pass}/{len(grads)} PASS; worst "
          f"{worst['ratio_vs_fastest_peer']:.3f} ({worst['case']}/{worst['setting']} vs {worst['fastest_peer']})")
    print("\nPeer configurations")
    for side, cfg in info.get("configs", {}).items():
        for setting, text in cfg.items():
            print(f"  {side} [{setting}]: {text}")
    print("\nPeer correctness (relative 2-norm differences vs pdesolve: y(t1), and the gradient w.r.t. all MLP "
          "parameters and y0 together; torchdiffeq's rk4 (3/8 rule) is checked against pdesolve with the 3/8 "
          "tableau, its difference from classical RK4 in the last columns; continuous-adjoint gradients are "
          "reported, not checked)")
    print(
        format_table(
            ["case", "setting", "side", "gradient", "steps acc/taken", "back steps", "y(t1) rel", "grad rel", "tol y/grad",
             "ok", "y rel vs classical", "grad rel vs classical"],
            [[c["case"], c["setting"], c["side"], c["gradient_method"], f"{c['accepted']}/{c['steps']}",
              c["backward_steps"] if c["backward_steps"] is not None else "", f"{c['y1_rel_diff']:.1e}",
              f"{c['grad_rel_diff']:.1e}", f"{c['tolerance']:.0e}/{c['grad_tolerance']:.0e}", "ok" if c.get("ok", True) else "MISMATCH",
              f"{c['y1_rel_diff_vs_classical']:.1e}" if "y1_rel_diff_vs_classical" in c else "",
              f"{c['grad_rel_diff_vs_classical']:.1e}" if "grad_rel_diff_vs_classical" in c else ""]
             for c in checks],
        )
    )
    compile_rows = [[r["case"], r["setting"], r["what"], r["compile_s"]["pdesolve"], r["compile_s"]["diffrax"]]
                    for r in rows]
    print("\nPeer rows, JAX compile times (s; torch has none)")
    print(format_table(["case", "setting", "pass", "pdesolve s", "diffrax s"], compile_rows))


# ---------------------------------------------------------------------- peer rows
PEER_SETTINGS = ("rk4-const", "dopri5-adaptive")
PEER_FIXED_TOL = 1e-10  # constant-step RK4, same tableau: y(t1) and gradients relative agreement
# Adaptive Dopri5: y(t1) must agree to PID_TOL (1e-5); backprop gradients to 1e-4, since torchdiffeq
# steps past t1 and returns its 4th-order dense interpolant there (the gradient of an interpolated
# value), and the step sequences may differ. Continuous-adjoint gradients are reported only.
PEER_ADAPTIVE_GRAD_TOL = 1e-4
PEER_SLOW_BUDGET_S = 8.0  # a side whose call takes longer gets fewer samples (>= PEER_MIN_SAMPLES)
PEER_MIN_SAMPLES = 3
PEER_FAST_TOTAL_S = 0.3  # fast sides are repeated until they have run this long in total


def time_mixed(fns, args, repeats, *, first_s, slow_budget_s=PEER_SLOW_BUDGET_S, min_total_s=PEER_FAST_TOTAL_S,
               max_repeats=200):
    """Like `_common.time_interleaved` (sides alternate call by call, round by round), but for
    sides whose call times differ by 1000x (eager torch vs compiled JAX): a side wants
    `repeats` samples, fewer (at least PEER_MIN_SAMPLES) if `repeats` calls would exceed
    `slow_budget_s`, more (up to `max_repeats`) until it has run `min_total_s` in total.
    `first_s[name]`: the time of an earlier (untimed) call of that side, which served as its
    warm-up. Returns `{name: {"median_s", "min_s", "times_s"}}`."""
    import jax

    want = {}
    for name in fns:
        t = max(first_s.get(name, 0.0), 1e-9)
        want[name] = repeats if t * repeats <= slow_budget_s else max(PEER_MIN_SAMPLES, int(slow_budget_s // t))
    times = {name: [] for name in fns}

    def needs(name):
        n = len(times[name])
        return n < want[name] or (n < max_repeats and want[name] >= repeats and sum(times[name]) < min_total_s)

    while any(needs(n) for n in fns):
        for name, fn in fns.items():
            if needs(name):
                t = time.perf_counter()
                jax.block_until_ready(fn(*args[name]))
                times[name].append(time.perf_counter() - t)
    return {name: dict(median_s=statistics.median(ts), min_s=min(ts), times_s=ts) for name, ts in times.items()}


def run_peers(opts, *, cases, build, key, n_steps, pds_forward, dfx_forward, gradient, repeats):
    """The peer row group. Returns (rows, checks, info) for the report and the JSON."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pdesolve as pds
    import _peers_ode as peers_mod

    mods, errors = peers_mod.import_peers()
    for name, err in errors.items():
        print(f"peer {name} not installed: {err}", flush=True)
    info = dict(not_installed={k: f"peer {k} not installed: {v}" for k, v in errors.items()})
    if not mods:
        return [], [], info
    import torch

    default_threads = torch.get_num_threads()
    if opts.torch_threads:
        torch.set_num_threads(opts.torch_threads)
    info.update(versions=peers_mod.versions(), torch_default_num_threads=default_threads,
                torch_num_threads=torch.get_num_threads())
    print(f"\npeer rows: torch {torch.__version__} (eager, CPU, float64), torch.get_num_threads() = "
          f"{torch.get_num_threads()} (default {default_threads}); "
          + ", ".join(f"{k} {getattr(m, '__version__', '?')}" for k, m in mods.items()), flush=True)

    pid = dict(rtol=PID_RTOL, atol=PID_ATOL)
    # torchdiffeq's method='rk4' is the 3/8 rule; this pdesolve twin checks it to round-off (untimed).
    rk38 = pds.ExplicitRK(pds.ButcherTableau(
        "RK4 3/8", c=[0.0, 1 / 3, 2 / 3, 1.0], a=[[1 / 3], [-1 / 3, 1.0], [1.0, -1.0, 1.0]],
        b=[1 / 8, 3 / 8, 3 / 8, 1 / 8], order=4))

    def flat_grads(g):
        return [np.asarray(x) for x in jax.tree.leaves(g[0])] + [np.asarray(g[1])]

    def rel(a, b):
        a = np.concatenate([np.ravel(x) for x in a]) if isinstance(a, list) else np.ravel(a)
        b = np.concatenate([np.ravel(x) for x in b]) if isinstance(b, list) else np.ravel(b)
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))

    rows, checks = [], []
    for case in cases:
        vf, y0 = build(case, key)
        params, static = eqx.partition(vf, eqx.is_inexact_array)
        if hasattr(vf, "mlp"):
            spec = dict(kind="mlp", layers=[(np.asarray(l.weight), np.asarray(l.bias)) for l in vf.mlp.layers])
        else:
            spec = dict(kind="linear", rate=float(vf.rate))
        # The same weights in torch: f(y) must agree to 1e-12 before anything is timed.
        tmod = peers_mod.build_field(spec)
        ys_test = [y0] + [jax.random.normal(jax.random.PRNGKey(10 + i), y0.shape, jnp.float64) for i in range(3)]
        f_diff = max(
            float(np.max(np.abs(np.asarray(vf(T0, y, None)) - peers_mod.eval_field(tmod, np.asarray(y)))))
            / max(1.0, float(np.max(np.abs(np.asarray(vf(T0, y, None))))))
            for y in ys_test
        )
        print(f"  {case}: torch field vs equinox field, max |df| / max(1, |f|) = {f_diff:.1e}", flush=True)
        if not f_diff <= 1e-12:
            raise RuntimeError(f"{case}: the torch copy of the vector field disagrees with equinox ({f_diff:.1e})")
        torch_shapes = [tuple(p.shape) for p in tmod.parameters()] + [tuple(y0.shape)]
        jax_shapes = [tuple(x.shape) for x in jax.tree.leaves(params)] + [tuple(y0.shape)]
        assert torch_shapes == jax_shapes, (torch_shapes, jax_shapes)

        for setting in PEER_SETTINGS:
            if setting == "rk4-const":
                fp, fd = pds_forward("RK4", n_steps, static), dfx_forward("RK4", n_steps, static)
                ms, label = n_steps, f"RK4, {n_steps} steps dt={DT:g}"
                solve_kw = dict(dt0=DT, max_steps=n_steps)
                pds_solver = pds.RK4()
            else:
                fp = pds_forward("Dopri5", PID_MAX_STEPS, static, dt0=None, controller=pds.PIDController(**pid))
                fd = dfx_forward("Dopri5", PID_MAX_STEPS, static, dt0=None, controller=diffrax.PIDController(**pid))
                ms, label = PID_MAX_STEPS, f"Dopri5, rtol={PID_RTOL:g} atol={PID_ATOL:g}"
                solve_kw = dict(dt0=None, max_steps=PID_MAX_STEPS, controller=pds.PIDController(**pid))
                pds_solver = pds.Dopri5()
            cfgs = peers_mod.make_configs(spec, np.asarray(y0), setting, dt=DT, t0=T0, t1=T1, rtol=PID_RTOL,
                                          atol=PID_ATOL, max_steps=ms, peers=mods)
            # JAX sides: compile, one call each (also their warm-up), step counts.
            jax_fns, compile_s, first_s, results = {}, {}, {}, {}
            for side, f in (("pdesolve", fp), ("diffrax", fd)):
                for what, fn in (("forward", f), ("gradient", gradient(f))):
                    c, tc = compile_jit(fn, params, y0)
                    t = time.perf_counter()
                    out = jax.block_until_ready(c(params, y0))
                    first_s[(side, what)] = time.perf_counter() - t
                    jax_fns[(side, what)], compile_s[(side, what)] = c, tc
                    results[(side, what)] = out
            sol = pds.solve(pds.NeuralODEProblem(vf, y0, (T0, T1)), pds_solver, **solve_kw)
            dsol = None
            if setting != "rk4-const":
                dsol = diffrax.diffeqsolve(diffrax.ODETerm(vf), diffrax.Dopri5(), T0, T1, None, y0,
                                           stepsize_controller=diffrax.PIDController(**pid), max_steps=PID_MAX_STEPS)
            steps = dict(
                pdesolve=dict(steps=int(sol.stats["num_steps"]), accepted=int(sol.stats["num_accepted_steps"])),
                diffrax=dict(steps=int(results[("diffrax", "forward")][1]),
                             accepted=int(dsol.stats["num_accepted_steps"]) if dsol is not None
                             else int(results[("diffrax", "forward")][1])),
            )
            y_ref = np.asarray(results[("pdesolve", "forward")][0])
            g_ref = flat_grads(results[("pdesolve", "gradient")])
            tag = f"{case}/{setting}"
            checks.append(dict(
                case=case, setting=setting, side="diffrax", gradient_method="backprop (RecursiveCheckpointAdjoint)",
                y1_rel_diff=rel(np.asarray(results[("diffrax", "forward")][0]), y_ref),
                grad_rel_diff=rel(flat_grads(results[("diffrax", "gradient")]), g_ref),
                steps=steps["diffrax"]["steps"], accepted=steps["diffrax"]["accepted"], backward_steps=None,
                reference="pdesolve", tolerance=PEER_FIXED_TOL if setting == "rk4-const" else PID_TOL,
                grad_tolerance=PEER_FIXED_TOL if setting == "rk4-const" else PEER_ADAPTIVE_GRAD_TOL,
            ))
            checks[-1]["ok"] = bool(checks[-1]["y1_rel_diff"] <= checks[-1]["tolerance"]
                                    and checks[-1]["grad_rel_diff"] <= checks[-1]["grad_tolerance"])
            ref38 = None
            if setting == "rk4-const" and "torchdiffeq" in mods:
                f38 = lambda p, y: pds.solve(pds.NeuralODEProblem(eqx.combine(p, static), y, (T0, T1)), rk38,  # noqa: E731
                                             dt0=DT, max_steps=n_steps).ys[-1]
                y38 = np.asarray(jax.jit(f38)(params, y0))
                g38 = flat_grads(jax.jit(jax.grad(lambda p, y: jnp.sum(f38(p, y) ** 2), argnums=(0, 1)))(params, y0))
                ref38 = (y38, g38)
            # Torch sides: one checked call each (forward + gradient, step counts), also their warm-up.
            torch_fns, peer_cfg = {}, {}
            for c in cfgs:
                t = time.perf_counter()
                r = c.check()
                t_check = time.perf_counter() - t
                peer_cfg[c.name] = c
                if c.forward is not None:
                    t = time.perf_counter()
                    c.forward()
                    first_s[(c.name, "forward")] = time.perf_counter() - t
                    torch_fns[(c.name, "forward")] = c.forward
                first_s[(c.name, "gradient")] = max(t_check - first_s.get((c.name, "forward"), 0.0), 1e-6)
                torch_fns[(c.name, "gradient")] = c.gradient
                adjoint = c.gradient_method == "continuous adjoint"
                use38 = ref38 is not None and c.library == "torchdiffeq"
                yr, gr = ref38 if use38 else (y_ref, g_ref)
                ck = dict(
                    case=case, setting=setting, side=c.name, gradient_method=c.gradient_method,
                    y1_rel_diff=rel(r["y1"], y_ref), grad_rel_diff=rel(r["grads"], g_ref),
                    steps=r["steps"], accepted=r["accepted"], backward_steps=r.get("backward_steps"),
                    reference="pdesolve", tolerance=PEER_FIXED_TOL if setting == "rk4-const" else PID_TOL,
                    grad_tolerance=PEER_FIXED_TOL if setting == "rk4-const" else PEER_ADAPTIVE_GRAD_TOL,
                    grads_finite=bool(all(np.all(np.isfinite(x)) for x in r["grads"])),
                    status=r.get("status"),
                )
                if use38:
                    ck.update(reference="pdesolve ExplicitRK(3/8 tableau)", y1_rel_diff_vs_classical=ck["y1_rel_diff"],
                              grad_rel_diff_vs_classical=ck["grad_rel_diff"], y1_rel_diff=rel(r["y1"], yr),
                              grad_rel_diff=rel(r["grads"], gr))
                # Continuous adjoints: the gradient is the adjoint ODE's, not the derivative of the
                # discrete solve; its difference is reported, not checked.
                ck["ok"] = bool(ck["y1_rel_diff"] <= ck["tolerance"] and ck["grads_finite"]
                                and (adjoint or ck["grad_rel_diff"] <= ck["grad_tolerance"])
                                and (setting != "rk4-const" or ck["steps"] == n_steps))
                checks.append(ck)
                steps[c.name] = dict(steps=r["steps"], accepted=r["accepted"], backward_steps=r.get("backward_steps"))
            print(f"  {tag}: checked; " + ", ".join(
                f"{k} {v['accepted']}/{v['steps']}" + (f" (+{v['backward_steps']} back)" if v.get("backward_steps") else "")
                for k, v in steps.items()) + " steps accepted/taken", flush=True)
            # Timing: all sides of a pass in one interleaved measurement.
            for what in ("forward", "gradient"):
                fns = {s: f for (s, w), f in jax_fns.items() if w == what}
                fns.update({s: f for (s, w), f in torch_fns.items() if w == what})
                args = {s: ((params, y0) if s in ("pdesolve", "diffrax") else ()) for s in fns}
                timing = time_mixed(fns, args, repeats, first_s={s: first_s[(s, what)] for s in fns})
                ms_ = {s: 1e3 * v["median_s"] for s, v in timing.items()}
                peer_names = [s for s in fns if s not in ("pdesolve", "diffrax")]
                fastest = min(peer_names, key=lambda s: ms_[s])
                ratio = ms_["pdesolve"] / ms_[fastest]
                if what == "gradient":
                    verdict = "PASS" if ratio <= TARGET else f"MISS (+{100 * (ratio / TARGET - 1):.0f}%)"
                else:
                    verdict = "ok" if ratio <= TARGET else f"slower (+{100 * (ratio - 1):.0f}%)"
                row = dict(
                    case=case, description=CASES[case][0], setting=setting, config=label, what=what,
                    times_ms=ms_, min_ms={s: 1e3 * v["min_s"] for s, v in timing.items()},
                    samples=({s: len(v["times_s"]) for s, v in timing.items()}),
                    times_s={s: v["times_s"] for s, v in timing.items()},
                    fastest_peer=fastest, ratio_vs_fastest_peer=ratio, ratio_vs_diffrax=ms_["pdesolve"] / ms_["diffrax"],
                    target=TARGET if what == "gradient" else None, verdict=verdict,
                    compile_s={s: compile_s[(s, what)] for s in ("pdesolve", "diffrax")},
                    steps=steps,
                )
                rows.append(row)
                print(f"  {tag:28s} {what:9s} " + "  ".join(f"{s} {v:.3f} ms" for s, v in ms_.items())
                      + f"  pdesolve/{fastest} {ratio:.3f}  {verdict}", flush=True)
    info["configs"] = {
        "pdesolve": dict(
            rk4_const=f"pds.solve(NeuralODEProblem(f, y0, (0, 1)), pds.RK4(), dt0={DT:g}, max_steps={n_steps}) "
                      "(RecursiveCheckpointAdjoint)",
            dopri5_adaptive=f"pds.solve(..., pds.Dopri5(), dt0=None, controller=pds.PIDController(rtol={PID_RTOL:g}, "
                            f"atol={PID_ATOL:g}), max_steps={PID_MAX_STEPS}) (RecursiveCheckpointAdjoint)"),
        "diffrax": dict(
            rk4_const=f"diffeqsolve(ODETerm(f), RK4 (AbstractERK), 0, 1, {DT:g}, y0, ConstantStepSize(), "
                      f"max_steps={n_steps}, adjoint=RecursiveCheckpointAdjoint())",
            dopri5_adaptive=f"diffeqsolve(ODETerm(f), Dopri5(), 0, 1, None, y0, PIDController(rtol={PID_RTOL:g}, "
                            f"atol={PID_ATOL:g}), max_steps={PID_MAX_STEPS}, adjoint=RecursiveCheckpointAdjoint())"),
    }
    for setting in PEER_SETTINGS:
        for c in peers_mod.make_configs(dict(kind="linear", rate=1.0), np.zeros(2), setting, dt=DT, t0=T0, t1=T1,
                                        rtol=PID_RTOL, atol=PID_ATOL,
                                        max_steps=n_steps if setting == "rk4-const" else PID_MAX_STEPS, peers=mods):
            info["configs"].setdefault(c.name, {})[setting.replace("-", "_")] = c.config
    return rows, checks, info


if __name__ == "__main__":
    sys.exit(main())
