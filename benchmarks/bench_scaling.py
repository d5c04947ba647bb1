"""Throughput of pdesolve's data-parallel paths on 1 and 2 devices (issue 8, "scale out").

Cases (float64, the same compiled code as `pds.solve(..., mesh=mesh)` runs):

* ``NeuralIVP step``: one Bosh3 step of the parameter ODE (`_attempt_step`: fresh samples, per
  stage a rank-ℓ Nyström sketch and preconditioned CG, the out-of-sample diagnostics) on the
  1-D advection problem; samples split, θ replicated.
* ``DTPINN step`` / ``PINN step``: L-BFGS training steps on the linear Poisson disk problem
  (``poisson_disk``), from ``stats["train_time"] / stats["num_steps"]`` of a `pds.solve`
  (compile excluded); collocation rows, nodes and sparse-matrix rows split.
* ``ODE batch grad``: `value_and_grad` of the mean loss of a batch of neural-ODE trajectories
  (`vmap` over `pds.solve`, RK4, constant steps); the batch split, the model replicated.

**How.** Each device count runs in its own subprocess, because the number of CPU devices is
fixed when JAX starts (``XLA_FLAGS=--xla_force_host_platform_device_count=N`` is set before
JAX is imported). In the 2-device process the 1-device placement (plain arrays, device 0)
and the 2-device placement (a `Mesh` over both) are timed *interleaved* (median of repeats,
fair under the load drift of a shared machine), and their outputs compared (max relative
difference). The 1-device process times the 1-device placement alone, to show what merely
splitting the host into two XLA devices costs.

**Expectations.** Two "devices" forced on a 2-core CPU share the same two cores (and XLA's
CPU thread pool), so no speed-up is expected: the point on CPU is correctness and the size of
the SPMD overhead (all-reduces, an all-gather of the network outputs for DTPINN's sparse
products, padding of uneven row counts). On real accelerators the same code splits the
work; `--platform gpu` runs the cases on however many GPUs JAX sees (one GPU: the 1-device
column only).

    python benchmarks/bench_scaling.py            # default sizes (a few minutes)
    python benchmarks/bench_scaling.py --quick    # smoke run
    python benchmarks/bench_scaling.py --devices 2 --cases dtpinn,ode

Writes benchmarks/results/bench_scaling.json.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = ("neural_ivp", "dtpinn", "pinn", "ode")
LABELS = {
    "neural_ivp": "NeuralIVP step",
    "dtpinn": "DTPINN step",
    "pinn": "PINN step",
    "ode": "ODE batch grad",
}
MARK = "BENCH_SCALING_RESULT "


def _sizes(quick: bool) -> dict:
    if quick:
        return {"ivp_samples": 1000, "ivp_width": 32, "ivp_rank": 30, "pinn_nodes": 400, "pinn_steps": 20,
                    "ode_batch": 16, "ode_width": 32, "ode_steps": 20, "repeats": 3}
    return {"ivp_samples": 5000, "ivp_width": 64, "ivp_rank": 50, "pinn_nodes": 828, "pinn_steps": 50,
                "ode_batch": 64, "ode_width": 64, "ode_steps": 50, "repeats": 5}


# ---------------------------------------------------------------------------------------------
# child: one process, one device count
# ---------------------------------------------------------------------------------------------


def _rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-300))


def _tree_rel(a, b) -> float:
    """Max difference over all leaves relative to the largest entry of `a`."""
    import equinox as eqx
    import jax
    import numpy as np

    la = [np.ravel(x) for x in jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array))]
    lb = [np.ravel(x) for x in jax.tree.leaves(eqx.filter(b, eqx.is_inexact_array))]
    return _rel(np.concatenate(la), np.concatenate(lb))


def _case_neural_ivp(sz, placements):
    """{placement: (fn, args)} timing one NeuralIVP step; fn returns the new θ."""
    import jax
    import jax.numpy as jnp
    from pdesolve.solvers import neural_ivp as ivp

    import pdesolve as pds
    from pdesolve._controllers import resolve_controller
    from pdesolve._sharding import replicate

    def exact(x, t):
        return jnp.exp(-jnp.sum((x - (-0.3 + 0.5 * t)) ** 2) / (2 * 0.2**2))

    prob = pds.PDEProblem(rhs=lambda u, x, t, args: -0.5 * u.partial(0), u0=lambda x: exact(x, 0.0),
                          tspan=(0.0, 1.0), domain=pds.Box([-1.0], [1.0]), bc=pds.Dirichlet(0.0),
                          solution=exact)
    solver = pds.NeuralIVP(width=sz["ivp_width"], n_samples=sz["ivp_samples"], n_eval_samples=1000,
                           rank=sz["ivp_rank"], restart=None)
    model = ivp._default_model(prob, solver, jax.random.PRNGKey(0))
    import equinox as eqx
    from jax.flatten_util import ravel_pytree

    params, static = eqx.partition(model, eqx.is_inexact_array)
    theta, unravel = ravel_pytree(params)
    net = ivp._Net(static, unravel)
    controller = resolve_controller(None, 1e-3)
    _, ctrl = controller.init(None, jnp.asarray(0.0), jnp.asarray(1.0), theta, 1e-3, None, 3)
    out = {}
    for name, mesh in placements.items():
        th = theta if mesh is None else replicate(theta, mesh)

        def step(th, mesh=mesh):
            return ivp._attempt_step(solver, prob, net, controller, th, jnp.asarray(0.0),
                                     jnp.asarray(1e-3), ctrl, jax.random.PRNGKey(1), jnp.asarray(1.0), mesh)["theta"]

        out[name] = (step, (th,))
    return out, {"n_samples": sz["ivp_samples"], "parameters": int(theta.size), "rank": sz["ivp_rank"]}


def _case_ode(sz, placements):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import pdesolve as pds
    from pdesolve._sharding import replicate, shard_leading

    class Field(eqx.Module):
        mlp: eqx.nn.MLP

        def __call__(self, t, y, args):
            return self.mlp(y) - 0.3 * y

    mlp = eqx.nn.MLP(3, 3, sz["ode_width"], 2, activation=jnp.tanh, dtype=jnp.float64,
                     key=jax.random.PRNGKey(0))
    params, static = eqx.partition(Field(mlp), eqx.is_inexact_array)
    y0s = jax.random.normal(jax.random.PRNGKey(1), (sz["ode_batch"], 3))
    dt0 = 1.0 / sz["ode_steps"]

    def loss(params, y0s):
        field = eqx.combine(params, static)

        def one(y0):
            return pds.solve(pds.NeuralODEProblem(field, y0, (0.0, 1.0)), pds.RK4(), dt0=dt0).ys[-1]

        return jnp.mean(jnp.sum(jax.vmap(one)(y0s) ** 2, axis=-1))

    vg = jax.jit(jax.value_and_grad(loss))
    out = {}
    for name, mesh in placements.items():
        args = (params, y0s) if mesh is None else (replicate(params, mesh), shard_leading(y0s, mesh))
        out[name] = (vg, args)
    return out, {"batch": sz["ode_batch"], "rk4_steps": sz["ode_steps"], "width": sz["ode_width"]}


def _pinn_solver(kind, sz):
    import pdesolve as pds

    common = {"n_nodes": sz["pinn_nodes"], "n_test": 256, "steps_per_dispatch": sz["pinn_steps"]}
    return pds.DTPINN(**common) if kind == "dtpinn" else pds.PINN(dtype="float64", **common)


def _time_pinn(kind, sz, placements, repeats):
    """Interleaved pds.solve runs; per-step time from train_time (compile excluded)."""
    import statistics

    import jax

    import pdesolve as pds
    from pdesolve import problems as P

    prob, solver = P.poisson_disk(), _pinn_solver(kind, sz)
    times = {name: [] for name in placements}
    sols = {}
    for r in range(repeats + 1):  # the first round compiles
        for name, mesh in placements.items():
            sol = pds.solve(prob, solver, max_steps=sz["pinn_steps"], key=jax.random.PRNGKey(0),
                            mesh=mesh)
            if r:
                times[name].append(sol.stats["train_time"] / sol.stats["num_steps"])
            sols[name] = sol
    res = {name: {"median_s": statistics.median(ts), "min_s": min(ts), "times_s": ts} for name, ts in times.items()}
    diff = None
    if len(sols) == 2:
        a, b = (sols[k] for k in placements)
        diff = max(_rel(a.stats["loss_history"], b.stats["loss_history"]), _tree_rel(a.ys, b.ys))
    s = next(iter(sols.values())).stats
    return res, diff, {"n_nodes": s["n_nodes"], "n_interior": s["n_interior"], "n_boundary": s["n_boundary"],
                           "steps": sz["pinn_steps"], "optimizer": "L-BFGS"}


def child(devices: int, quick: bool, cases, platform):
    from _common import apply_platform, machine_info, time_interleaved

    apply_platform(platform)
    import jax

    jax.config.update("jax_enable_x64", True)
    from jax.sharding import Mesh

    sz = _sizes(quick)
    n = min(devices, jax.device_count())
    placements = {"1 device": None}
    if n >= 2:
        placements[f"{n} devices"] = Mesh(jax.devices()[:n], ("data",))
    rows = []
    for case in cases:
        t0 = time.perf_counter()
        if case in ("dtpinn", "pinn"):
            res, diff, info = _time_pinn(case, sz, placements, sz["repeats"])
        else:
            fns, info = (_case_neural_ivp if case == "neural_ivp" else _case_ode)(sz, placements)
            compiled, args = {}, {}
            for name, (fn, a) in fns.items():
                compiled[name], args[name] = fn, a
            outs = {name: jax.block_until_ready(compiled[name](*args[name])) for name in compiled}
            res = time_interleaved(compiled, args, sz["repeats"], min_total_s=1.0, max_repeats=30)
            diff = None
            if len(outs) == 2:
                a, b = outs.values()
                diff = _tree_rel(a, b)
        rows.append({"case": case, "label": LABELS[case], "process_devices": jax.device_count(),
                         "results": {k: {"median_s": v["median_s"], "min_s": v["min_s"]} for k, v in res.items()},
                         "max_rel_diff": diff, "info": info, "seconds": time.perf_counter() - t0})
        print(f"  [{jax.device_count()} device process] {LABELS[case]}: "
              + ", ".join(f"{k} {v['median_s'] * 1e3:.2f} ms" for k, v in res.items())
              + ("" if diff is None else f", max rel diff {diff:.1e}"), file=sys.stderr, flush=True)
    print(MARK + json.dumps({"rows": rows, "machine": machine_info(), "sizes": sz}), flush=True)


# ---------------------------------------------------------------------------------------------
# parent: one subprocess per device count, the table, the JSON
# ---------------------------------------------------------------------------------------------


def _run_child(devices, opts, cases):
    env = dict(os.environ)
    if opts.platform in (None, "cpu"):
        flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(devices), "--cases", ",".join(cases)]
    if opts.quick:
        cmd.append("--quick")
    if opts.platform:
        cmd += ["--platform", opts.platform]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)][-1]
    return json.loads(line[len(MARK):])


def main(argv=None):
    from _common import base_parser, format_table, write_json

    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--devices", default="1,2", help="device counts, one subprocess each (default 1,2)")
    p.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    p.add_argument("--child", type=int, default=None, help=argparse_suppress())
    opts = p.parse_args(argv)
    cases = [c for c in opts.cases.split(",") if c]
    bad = set(cases) - set(CASES)
    if bad:
        p.error(f"unknown cases {sorted(bad)}; choose from {CASES}")
    if opts.child is not None:
        child(opts.child, opts.quick, cases, opts.platform)
        return 0

    wall = time.perf_counter()
    runs = {}
    for d in (int(x) for x in opts.devices.split(",")):
        print(f"running the {d}-device process ...", file=sys.stderr, flush=True)
        runs[d] = _run_child(d, opts, cases)

    table, records = [], []
    for case in cases:
        row = [LABELS[case]]
        one_alone = next((r for r in runs.get(1, {}).get("rows", []) if r["case"] == case), None)
        multi = next((r for d, run in runs.items() if d > 1 for r in run["rows"] if r["case"] == case), None)
        t_alone = one_alone["results"]["1 device"]["median_s"] if one_alone else None
        t1 = multi["results"]["1 device"]["median_s"] if multi else None
        name2 = next((k for k in (multi or {}).get("results", {}) if k != "1 device"), None)
        t2 = multi["results"][name2]["median_s"] if name2 else None
        ms = lambda t: "—" if t is None else f"{t * 1e3:.2f}"
        row += [ms(t_alone), ms(t1), ms(t2),
                "—" if not (t1 and t2) else f"{t1 / t2:.2f}",
                "—" if not multi or multi["max_rel_diff"] is None else f"{multi['max_rel_diff']:.1e}"]
        table.append(row)
        records.append({"case": case, "label": LABELS[case], "one_device_own_process_s": t_alone,
                            "one_device_s": t1, "multi_device_s": t2, "multi_devices": name2,
                            "speedup": (t1 / t2) if (t1 and t2) else None,
                            "max_rel_diff": multi["max_rel_diff"] if multi else None,
                            "info": (multi or one_alone)["info"]})
    print("\nms per step (median of interleaved repeats); speed-up = 1 device / N devices in the "
          "N-device process; diff = max relative difference of the outputs")
    print(format_table(["case", "1 dev (own process)", "1 dev", "N dev", "speed-up", "diff"], table))
    any_run = next(iter(runs.values()))
    print(f"\nbackend {any_run['machine']['backend']}, {any_run['machine']['cpu_count']} CPU cores, "
          f"wall {time.perf_counter() - wall:.0f} s")
    path = write_json("bench_scaling", {
        "settings": {"quick": opts.quick, "devices": opts.devices, "cases": cases, "sizes": any_run["sizes"],
                      "note": "forced host devices share the same CPU cores: no speed-up expected on CPU"},
        "results": records, "processes": {str(d): run for d, run in runs.items()},
        "wall_time_s": time.perf_counter() - wall}, opts.out)
    print(f"wrote {path}")
    return 0


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
