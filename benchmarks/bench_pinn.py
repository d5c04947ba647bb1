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

**Peers** (``--peers none|deepxde|jinns|all``; default ``all``, ``none`` with ``--quick``;
code in benchmarks/_peers_pinn.py, each imported lazily: a missing one is reported as
"peer X not installed: <ImportError>" and recorded in the JSON), measured in the same run as
pdesolve's rows on the problems they can express:

* ``robin``: the paper's Poisson setting with the Robin condition ``n.grad u + u = g``
  (catalogue ``robin_poisson_disk``; pdesolve rows DT p=4 and PINN32 unless ``--orders``);
* ``heat``: ``heat_disk`` (N = 828, the same ``--heat-slices`` time slices);
* ``poisson_nd``: PINNacle's Poisson-ND, ``-Lap u = (pi^2/4) sum sin(pi x_i/2)`` on ``[0,1]^5``,
  Dirichlet from ``u = sum sin(pi x_i/2)``, built inline from the public API (4000 random
  interior + 1000 random boundary points; test set 10000 random interior + 1250 boundary points).

Every peer gets the same collocation points (interior + boundary nodes, x every time slice
for heat), the same initial weights (pdesolve's float32 ``eqx.nn.MLP`` initialisation,
``key=PRNGKey(seed)`` — equinox's uniform(+-1/sqrt(fan_in)) scheme, not Glorot — copied into
the peer's network), the same loss (mean squared PDE residual at all nodes + mean squared
boundary residual [+ initial condition], unit weights), the same test set and error
definition, and ``--steps`` (``--heat-steps``, ``--nd-steps``) L-BFGS iterations, with the test
error after every 25 iterations (evaluation time excluded from training time):

* **DeepXDE 1.15, PyTorch backend** (``DDE_BACKEND=pytorch``), float32 (its default and most
  used configuration), optimiser ``"L-BFGS"``: torch.optim.LBFGS through
  ``dde.optimizers.config.set_LBFGS_options(maxiter=steps)`` with DeepXDE's defaults (history
  100, strong-Wolfe line search, <= 1.25 evaluations per iteration). L-BFGS because it is the
  paper's optimiser and pdesolve's, and DeepXDE's recommended one for such fits; the PyTorch
  backend because it is DeepXDE's main backend with a native L-BFGS (the TF backends go through
  scipy/tfp). Points: ``dde.data.PDE``/``TimePDE`` with ``num_domain=num_boundary=0,
  anchors=<the node set>`` on ``dde.geometry.Disk`` / ``GeometryXTime`` / ``Hypercube`` (the
  analytic geometry gives exact outward normals for the Robin condition; a ``PointCloud``
  would need them passed by hand), boundary rows selected by exact membership in the
  boundary node set. Robin: DeepXDE's ``RobinBC`` is ``du/dn = func(x, u)`` with the
  outward normal, so ``func = g - u`` (checked: normals = x/|x|, g equals the catalogue's).
  Chunks of 25 iterations via DeepXDE's ``iter_per_step`` (callbacks fire between calls).
  ``torch.get_num_threads()`` is recorded (``--torch-threads`` overrides torch's default; on
  a 2-core machine shared with other jobs torch's default of 2 OpenMP threads stalls badly —
  measured 130 ms/iteration and 25-iteration calls of 3-29 s vs 18 ms/iteration and 0.4 s with
  1 thread under the same load — so the recorded results use ``--torch-threads 1``).
* **jinns 1.10** (JAX): ``jinns.solve`` with ``optax.lbfgs()`` (memory 10, zoom line search)
  through ``extra_optax_args_and_kwargs`` (value, grad, value_fn), float32 network and points,
  ``PINN_MLP.create(eqx_network=<pdesolve's initial MLP>)``, user ``PDEStatio``/``PDENonStatio``
  dynamic losses with ``jinns.loss.laplacian_rev``, user boundary conditions
  (``BoundaryConditionAbstract``: Robin with n = x/|x|, Dirichlet with data) and a data
  generator holding the fixed node set (full batch). 25-iteration chunks of ``jinns.solve``
  inside one ``eqx.filter_jit`` (compiled once).

Peer per-step times are medians of interleaved timed calls (the same rounds as pdesolve's
methods; ``timed_steps`` iterations from the initial state, after a warm-up call); a peer
"step" is one L-BFGS *iteration* (which may evaluate the loss several times) while a pdesolve
step is one loss+gradient evaluation, so compare times to an error rather than step counts.
Ratios: t->err(fastest peer) / (time DT p=4 needs to reach that peer's best error), target >=
4 on the Robin disk; PINN32 / jinns per step and time to best (and to jinns' best error),
target <= 1. Table and JSON key ``"peers"``; ``--merge`` keeps the existing JSON's rows.

    python benchmarks/bench_pinn.py              # full run (all problems and peers; >1 h on 2 CPU cores)
    python benchmarks/bench_pinn.py --quick      # smoke run (a few minutes, no peers)
    python benchmarks/bench_pinn.py --problems linear --sizes 828 --orders 4 --steps 3000
    python benchmarks/bench_pinn.py --problems robin --sizes 828 --peers all --steps 1000 --merge

Writes benchmarks/results/bench_pinn.json.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import apply_platform, base_parser, format_table, time_interleaved, write_json

SIZES = (582, 828, 1663, 3196)
ORDERS = (2, 3, 4, 5)
PROBLEMS = ("linear", "nonlinear", "heat", "robin", "poisson_nd")
PEER_PROBLEMS = ("robin", "heat", "poisson_nd")
STEPS = 2000
ND_DIM = 5
ND_INTERIOR, ND_BOUNDARY, ND_TEST = 4000, 1000, 10000
HEAT_STEPS = 300
CHUNK = 25
TARGET = 4.0
PEER_DT_TARGET = 4.0  # time to error: fastest peer / DTPINN, Poisson (Robin) disk
PEER_PINN_TARGET = 1.0  # pdesolve PINN32 / jinns (per step and time to best): <= 1
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


def _record_run(runs, rec, **key):
    """Finish a pdesolve method's progress line with its best error and time; append its record.

    The record is the identifying fields `key` (problem, N, method, order, dtype), in that
    order, followed by `rec` (from `_run`).
    """
    print(
        f"best {rec['best_error']:.2e} at {rec['time_to_best']:.1f} s ({rec['s_per_step'] * 1e3:.2f} ms/step)",
        flush=True,
    )
    runs.append({**key, **rec})


class _Capture:
    """Records the inputs of the solvers' training loop (objective, optimiser, data, ...).

    Used to time the compiled training step of every method *interleaved* after the training
    runs, which is fair under the load drift of a shared machine; the training runs themselves
    give the (deterministic) number of steps to the best error.
    """

    def __enter__(self):
        from pdesolve.solvers.pinn import _training

        self.module, self.original, self.calls = _training, _training._train, []

        def spy(objective, optimiser, params, static_model, data, **kw):
            self.calls.append((objective, optimiser, params, data))
            return self.original(objective, optimiser, params, static_model, data, **kw)

        _training._train = spy
        return self

    def __exit__(self, *exc):
        self.module._train = self.original


def _step_timer(captured, n_steps, float32):
    """A no-argument function running ``n_steps`` optimiser steps from the initial state."""
    import jax.numpy as jnp
    from pdesolve.solvers.pinn import _training as pinn

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


# -- PINNacle Poisson-ND, built inline from the public API (not in the catalogue) -------------


def _nd_exact(x, t=None):
    """``u = sum_i sin(pi x_i / 2)`` (PINNacle Poisson-ND, exact solution)."""
    import jax.numpy as jnp

    del t
    return jnp.sum(jnp.sin(jnp.pi * x / 2))


def _nd_forcing(x):
    """``f = (pi^2 / 4) sum_i sin(pi x_i / 2)`` so that ``-Lap u = f``."""
    import jax.numpy as jnp

    return (jnp.pi**2 / 4) * jnp.sum(jnp.sin(jnp.pi * x / 2))


def _nd_residual(u, x, args):
    del args
    return u.laplacian + _nd_forcing(x)


def _nd_problem_and_nodes(seed=0):
    """``-Lap u = f`` on ``[0, 1]^5``, Dirichlet from the exact solution; 4000 random interior
    + 1000 random boundary points (with outward normals), the same for every method."""
    import jax
    import numpy as np

    import pdesolve as pds

    box = pds.Box(np.zeros(ND_DIM), np.ones(ND_DIM))
    prob = pds.PDEProblem(
        residual=_nd_residual, domain=box, bc=pds.Dirichlet(_nd_exact), solution=_nd_exact
    )
    k1, k2 = jax.random.split(jax.random.PRNGKey(1000 + seed))
    interior = np.asarray(box.sample_interior(k1, ND_INTERIOR), np.float64)
    bpts, normals = box.sample_boundary(k2, ND_BOUNDARY)
    cloud = pds.PointCloud(interior, np.asarray(bpts, np.float64), np.asarray(normals, np.float64), domain=box)
    return prob, cloud


# -- peers (benchmarks/_peers_pinn.py) ------------------------------------------------------


def _test_data(prob, cloud, n_test):
    """The test inputs and exact values of pdesolve's own error report (same points, same
    11 times for evolution problems), for evaluating the peers."""
    import jax.numpy as jnp
    import numpy as np
    from pdesolve.solvers.pinn import _setup as pinn

    pts, desc = pinn._test_set(prob, cloud, n_test, jnp.float64)
    inputs, exact = pinn._test_inputs(prob, pts)
    return np.asarray(inputs, np.float64), np.asarray(exact, np.float64).ravel(), desc


def _jax_fns(kind):
    """The problem's JAX functions (pdesolve's own, from the catalogue) for the peers."""
    import importlib

    import jax

    pdk = importlib.import_module("pdesolve.problems.poisson_disk")  # the module, not the function

    if kind == "robin":
        return {
            "exact": pdk.disk_exact,
            "laplacian": pdk._disk_laplacian,
            "g": pdk._robin_target,
            "forcing_at": jax.vmap(pdk._disk_laplacian),
            "g_at": jax.vmap(pdk._robin_target),
        }
    if kind == "heat":
        return {
            "exact": pdk.heat_exact,
            "forcing": pdk._heat_forcing,
            "forcing_at": jax.vmap(lambda z: pdk._heat_forcing(z[:-1], z[-1])),
        }
    if kind == "poisson_nd":
        return {"exact": _nd_exact, "forcing": _nd_forcing, "forcing_at": jax.vmap(_nd_forcing)}
    raise ValueError(kind)


def _initial_network(din, seed):
    """pdesolve's default initial network for PINN(dtype='float32') (solvers/pinn/_setup.py
    `_build_model`): eqx.nn.MLP(din, 'scalar', 50, 4, tanh, float32, key=PRNGKey(seed))."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    return eqx.nn.MLP(din, "scalar", 50, 4, activation=jnp.tanh, dtype=jnp.float32, key=jax.random.PRNGKey(seed))


def _check_same_init(model0, captured):
    """Max |difference| between `model0`'s parameters and the PINN32 run's initial ones."""
    import equinox as eqx
    import jax
    import numpy as np

    objective, _, flat, _ = captured
    theirs = jax.tree.leaves(objective.flat.unravel(flat))
    ours = jax.tree.leaves(eqx.filter(model0, eqx.is_inexact_array))
    if len(theirs) != len(ours):
        return float("inf")
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) for a, b in zip(ours, theirs))


def _peer_list(arg):
    from _peers_pinn import PEERS

    return [] if arg == "none" else list(PEERS) if arg == "all" else [arg]


def _merge_runs(old, new):
    """Old rows, with those of the same (problem, N, method, steps) replaced by the new ones;
    new rows of other keys are added. Old rows with a different step budget are kept."""
    key = lambda r: (r.get("problem"), r.get("N"), r.get("method"), r.get("steps"))  # noqa: E731
    new_keys = {key(r) for r in new}
    old_pm = {key(r)[:3] for r in old}
    kept = [r for r in old if key(r) not in new_keys]
    added = [r for r in new if key(r) in {key(o) for o in old} or key(r)[:3] not in old_pm]
    return kept + added


def _merge_payload(path, payload):
    """`payload` merged into the JSON at `path` (for --merge)."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        return payload
    old = json.loads(path.read_text())
    merged = {k: v for k, v in old.items() if k not in ("benchmark", "machine")}
    if "machine" in old:  # write_json records this run's machine; keep the kept rows' one
        merged.setdefault("machine_of_kept_runs", old["machine"])
    meta = {}
    for k, v in payload.items():
        if k == "runs":
            merged["runs"] = _merge_runs(old.get("runs", []), v)
        elif k == "peers" and not isinstance(old.get("peers"), dict):
            merged["peers"] = dict(v)
        elif k == "peers":
            p = dict(old["peers"])
            for sub, val in v.items():
                if sub in ("runs", "reference_runs", "ratios", "unavailable") and isinstance(p.get(sub), list):
                    kk = ("problem", "N", "method", "comparison")
                    newk = {tuple(r.get(x) for x in kk) for r in val}
                    p[sub] = [r for r in p[sub] if tuple(r.get(x) for x in kk) not in newk] + val
                else:
                    p[sub] = val
            merged["peers"] = p
        else:
            if k in old:  # the existing top-level record is kept; this run's goes under peers
                meta[k] = v
            else:
                merged[k] = v
    if "partial" not in payload:  # a finished run clears the mark of its partial writes
        merged.pop("partial", None)
    merged.setdefault("peers", {})["merge_run"] = meta
    return merged


def _write(args, payload):
    from _common import RESULTS_DIR

    if args.merge:
        payload = _merge_payload(args.out or RESULTS_DIR / "bench_pinn.json", payload)
    return write_json("bench_pinn", payload, args.out)


def _verdict(value, target, higher_is_better):
    if value is None:
        return "MISS (not reached)"
    ok = value >= target if higher_is_better else value <= target
    if ok:
        return "PASS"
    short = target / value if higher_is_better else value / target
    return f"MISS ({value:.2f}x vs {target:g}x: short by {short:.2f}x)"


def _peer_ratios(runs, peer_runs):
    """The peer comparisons of every (problem, N) that has peer rows."""
    out = []
    blocks = {(r["problem"], r["N"]) for r in peer_runs}
    for problem, n in sorted(blocks, key=lambda b: (PROBLEMS.index(b[0]), b[1])):
        peers = [r for r in peer_runs if r["problem"] == problem and r["N"] == n and "best_error" in r]
        own = [r for r in runs if r["problem"] == problem and r["N"] == n]
        dts = [r for r in own if r["method"].startswith("DT")]
        dt = next((r for r in dts if r["method"] == "DT p=4"), dts[0] if dts else None)
        pinn = next((r for r in own if r["method"] == "PINN32"), None)
        if peers:
            fast = min(peers, key=lambda r: r["time_to_best_interleaved"])
            if dt is not None:
                k = _steps_to_reach(dt, fast["best_error"])
                t_dt = None if k is None else k * dt["s_per_step_interleaved"]
                val = _ratio(fast["time_to_best_interleaved"], t_dt)
                target = PEER_DT_TARGET if problem == "robin" else None
                out.append({
                    "problem": problem, "N": n, "comparison": f"t→err {fast['method']} / {dt['method']}",
                    "method": dt["method"], "value": val, "target": f">= {target:g}" if target else "—",
                    "verdict": _verdict(val, target, True) if target else "—",
                    "detail": f"{fast['method']} best {fast['best_error']:.2e} in {fast['time_to_best_interleaved']:.1f} s; "
                    + (f"{dt['method']} reaches it after {k} steps ({t_dt:.1f} s)" if k is not None
                       else f"{dt['method']} never reaches it (best {dt['best_error']:.2e})"),
                })
                # The other direction: time the fastest peer needs to reach DT's best error.
                peer_t = [
                    (k2 * r["s_per_step_interleaved"], r) for r in peers
                    if (k2 := _steps_to_reach(r, dt["best_error"])) is not None
                ]
                if peer_t:
                    t_p, rp = min(peer_t, key=lambda z: z[0])
                    val2 = _ratio(t_p, dt["time_to_best_interleaved"])
                    det2 = (f"{rp['method']} reaches {dt['method']}'s best {dt['best_error']:.2e} in {t_p:.1f} s; "
                            f"{dt['method']} in {dt['time_to_best_interleaved']:.1f} s")
                else:
                    val2, det2 = None, f"no peer reaches {dt['method']}'s best {dt['best_error']:.2e}"
                out.append({
                    "problem": problem, "N": n, "comparison": f"t→{dt['method']}'s best err: fastest peer / {dt['method']}",
                    "method": dt["method"], "value": val2, "target": f">= {target:g}" if target else "—",
                    "verdict": (_verdict(val2, target, True) if val2 is not None else "— (no peer reaches it)")
                    if target else "—",
                    "detail": det2,
                })
            elif problem == "poisson_nd":
                out.append({"problem": problem, "N": n, "comparison": f"t→err {fast['method']} / DTPINN",
                            "method": "DTPINN", "value": None, "target": "—",
                            "verdict": "— (DTPINN not available)", "detail": ""})
        jin = next((r for r in peers if r["method"] == "jinns"), None)
        if pinn is not None and jin is not None:
            per = _ratio(pinn["s_per_step_interleaved"], jin["s_per_step_interleaved"])
            tb = _ratio(pinn["time_to_best_interleaved"], jin["time_to_best_interleaved"])
            k = _steps_to_reach(pinn, jin["best_error"])
            t_eq = None if k is None else k * pinn["s_per_step_interleaved"]
            eq = _ratio(t_eq, jin["time_to_best_interleaved"])
            for name, val, det in (
                ("ms/step PINN32 / jinns", per,
                 f"{1e3 * pinn['s_per_step_interleaved']:.2f} vs {1e3 * jin['s_per_step_interleaved']:.2f} ms/step "
                 "(a pdesolve step is one loss+gradient evaluation, a jinns step one L-BFGS iteration)"),
                ("t→best PINN32 / jinns", tb,
                 f"{pinn['time_to_best_interleaved']:.1f} s (best {pinn['best_error']:.2e}) vs "
                 f"{jin['time_to_best_interleaved']:.1f} s (best {jin['best_error']:.2e})"),
                ("t→jinns' best err PINN32 / jinns", eq,
                 "PINN32 never reaches jinns' best error" if k is None else f"PINN32 needs {k} steps ({t_eq:.1f} s)"),
            ):
                hib = False
                out.append({
                    "problem": problem, "N": n, "comparison": name, "method": "PINN32", "value": val,
                    "target": f"<= {PEER_PINN_TARGET:g}",
                    "verdict": _verdict(val, PEER_PINN_TARGET, hib) if val is not None else "MISS (not reached)",
                    "detail": det,
                })
    return out


def _run_peers(name, n, prob, cloud, n_steps, timed_steps, args, peer_names, peer_info, captured32,
               timers, peer_runs, unavailable):
    """Train every requested peer on this (problem, N) block's nodes; adds their timers."""
    import traceback

    import jax
    import jax.numpy as jnp
    import numpy as np
    from pdesolve.solvers.pinn import _setup as pinn

    from _peers_pinn import RUNNERS, _rel_l2

    n_test = ND_TEST if name == "poisson_nd" else 4096
    inputs, exact, desc = _test_data(prob, cloud, n_test)
    model0 = _initial_network(inputs.shape[1], args.seed)
    init_dev = None if captured32 is None else _check_same_init(model0, captured32)
    pts, _ = pinn._test_set(prob, cloud, n_test, jnp.float64)
    err_lib = pinn._error_function(prob, pts, jnp.float32)(model0)
    err_ours = _rel_l2(jax.vmap(model0)(jnp.asarray(inputs, jnp.float32)), exact)
    checks = {
        "init_max_abs_diff_vs_pdesolve_PINN32": init_dev,
        "initial_error_pdesolve_error_fn": err_lib,
        "initial_error_peer_test_set": err_ours,
    }
    print(f"[{name} N={n}] peers: same initial weights (max |diff| {init_dev}), initial test error "
          f"{err_lib:.4e} (pdesolve) / {err_ours:.4e} (peer evaluation)", flush=True)
    times = None
    if not prob.is_steady:
        t0, t1 = (float(t) for t in prob.tspan)
        times = np.linspace(t0, t1, args.heat_slices)
    spec = dict(
        kind=name, interior=np.asarray(cloud.interior, np.float64), boundary=np.asarray(cloud.boundary, np.float64),
        normals=np.asarray(cloud.normals, np.float64), times=times, model0=model0, test_inputs=inputs,
        exact=exact, jax_fns=_jax_fns(name), steps=n_steps, chunk=CHUNK, timed_steps=timed_steps,
    )
    labels = {"deepxde": "DeepXDE", "jinns": "jinns"}
    for peer in peer_names:
        label = labels[peer]
        if not peer_info[peer]["installed"]:
            unavailable.append({"problem": name, "N": n, "method": label,
                                "error": f"peer {peer} not installed: {peer_info[peer]['info']}"})
            continue
        print(f"[{name} N={n}] {label} ...", end=" ", flush=True)
        try:
            rec, timer = RUNNERS[peer](spec)
        except Exception as e:  # noqa: BLE001 - reported in the table and JSON
            msg = f"{label} failed: {type(e).__name__}: {e}"
            print(msg, flush=True)
            traceback.print_exc()
            unavailable.append({"problem": name, "N": n, "method": label, "error": msg})
            continue
        rec.update(problem=name, N=n, peer=peer, test_set=desc, checks=checks)
        timers[label] = timer
        peer_runs.append(rec)
        print(
            f"best {rec['best_error']:.2e} at {rec['time_to_best']:.1f} s ({rec['s_per_step'] * 1e3:.2f} ms/step, "
            f"{rec['steps']} steps)",
            flush=True,
        )


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
    parser.add_argument(
        "--peers",
        choices=("none", "deepxde", "jinns", "all"),
        default=None,
        help="peer libraries measured in the same run on robin/heat/poisson_nd "
        "(default: all; none with --quick)",
    )
    parser.add_argument(
        "--nd-steps",
        type=int,
        default=None,
        help="L-BFGS steps for poisson_nd (default: --steps)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads for DeepXDE (default: torch's own default, recorded)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="merge into the existing JSON instead of overwriting it: rows of the same "
        "(problem, N, method, steps) are replaced, other existing rows and keys are kept",
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
    # --quick keeps its original three problems (no peers); the full run adds the peers' ones
    problems = args.problems or (PROBLEMS[:3] if quick else PROBLEMS)
    pinn_dtypes = ("float32",) if args.no_fp64_pinn else ("float32", "float64")
    repeats = args.repeats or (3 if quick else 7)
    min_total = 0.5 if quick else 2.0
    makers = {
        "linear": P.poisson_disk,
        "nonlinear": P.nonlinear_poisson_disk,
        "heat": P.heat_disk,
        "robin": P.robin_poisson_disk,
    }
    nd_steps = args.nd_steps or steps
    peers_arg = args.peers or ("none" if quick else "all")
    peer_names = _peer_list(peers_arg)
    peer_info = {}
    if peer_names:
        from _peers_pinn import available

        for name in peer_names:
            ok, msg = available(name)
            peer_info[name] = {"installed": ok, "info": msg}
            if not ok:
                print(f"peer {name} not installed: {msg}", flush=True)
        if "deepxde" in peer_info and peer_info["deepxde"]["installed"]:
            import torch

            if args.torch_threads:
                torch.set_num_threads(args.torch_threads)

            peer_info["deepxde"]["torch_num_threads"] = torch.get_num_threads()
    peer_runs, unavailable = [], []
    wall0 = time.perf_counter()

    # Warm-up: the first solve in a process pays JAX's start-up costs (not part of any timing
    # below, which exclude compilation anyway, but keeps the first measured run honest).
    pds.solve(P.poisson_disk(), pds.DTPINN(n_nodes=200, width=8, depth=1), max_steps=2)

    runs = []
    for name in problems:
        nd = name == "poisson_nd"
        if nd:
            prob, nd_cloud = _nd_problem_and_nodes(args.seed)
        else:
            prob = makers[name]()
        n_list = (828,) if name == "heat" else (nd_cloud.n_interior + nd_cloud.n_boundary,) if nd else sizes
        n_steps = heat_steps if name == "heat" else nd_steps if nd else steps
        timed_steps = 5 if name in ("heat", "poisson_nd") else CHUNK
        extra = {"time_slices": args.heat_slices} if name == "heat" else {}
        if nd:
            extra["n_test"] = ND_TEST
        # Robin disk and Poisson-ND: the peer comparison's pdesolve rows (DT p=4, PINN32)
        # unless --orders is given.
        p_orders = orders if (args.orders or name not in ("robin", "poisson_nd")) else (4,)
        p_dtypes = ("float32",) if name in ("robin", "poisson_nd") else pinn_dtypes
        for n in n_list:
            # The same node set for every method at this N.
            cloud = nd_cloud if nd else prob.domain.node_set(n)
            timers = {}
            captured32 = None
            for p in p_orders:
                label = f"DT p={p}"
                print(f"[{name} N={n}] {label} ...", end=" ", flush=True)
                try:
                    captured, rec = _run(
                        prob,
                        pds.DTPINN(order=p, nodes=cloud, steps_per_dispatch=CHUNK, **extra),
                        n_steps,
                        args.seed,
                    )
                except Exception as e:  # noqa: BLE001 - only for Poisson-ND (d = 5), reported
                    if not nd:
                        raise
                    msg = f"DTPINN: not available in d={ND_DIM}: {type(e).__name__}: {e}"
                    print(msg, flush=True)
                    unavailable.append({"problem": name, "N": n, "method": label, "error": msg})
                    continue
                timers[label] = _step_timer(captured, timed_steps, float32=False)
                _record_run(runs, rec, problem=name, N=n, method=label, order=p, dtype="float64")
            for dt in p_dtypes:
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
                if dt == "float32":
                    captured32 = captured
                _record_run(runs, rec, problem=name, N=n, method=label, order=None, dtype=dt)
            # Peers on the same nodes, initial weights, test set and iteration budget.
            peer_timers = {}
            if peer_names and name in PEER_PROBLEMS:
                _run_peers(
                    name, n, prob, cloud, n_steps, timed_steps, args, peer_names, peer_info,
                    captured32, peer_timers, peer_runs, unavailable,
                )
            # Interleaved timing of `timed_steps` optimiser steps per method (median of repeats).
            timed = time_interleaved(
                timers, {k: () for k in timers}, repeats=repeats, min_total_s=min_total
            )
            if peer_timers:
                # The peers, interleaved with pdesolve's methods again: `repeats` rounds (no
                # minimum total time: a peer round costs seconds). pdesolve's rows keep the
                # timing above; this round's values of theirs are recorded alongside.
                both = {**timers, **peer_timers}
                timed_p = time_interleaved(both, {k: () for k in both}, repeats=repeats)
                for run in runs:
                    if run["problem"] == name and run["N"] == n and run["method"] in timed_p:
                        run["s_per_step_peer_round"] = timed_p[run["method"]]["median_s"] / timed_steps
                timed = {**timed, **{k: timed_p[k] for k in peer_timers}}
            for run in runs + peer_runs:
                if run["problem"] == name and run["N"] == n and run["method"] in timed:
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
            _write(
                args,
                {
                    "partial": True,
                    "quick": quick,
                    "runs": runs,
                    "peers": {"runs": peer_runs, "unavailable": unavailable, "availability": peer_info},
                },
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
    peer_ratios = _print_peers(runs, peer_runs, unavailable, peer_names, peer_info) if peer_names else []
    wall = time.perf_counter() - wall0
    print(f"wall time {wall:.0f} s")
    peer_problems = [q for q in problems if q in PEER_PROBLEMS]
    peers_payload = {
        "requested": peers_arg,
        "availability": peer_info,
        "problems": peer_problems if peer_names else [],
        "runs": peer_runs,
        # pdesolve's rows of the peer problems in this run (also under "runs" unless --merge
        # kept an existing row with another step budget)
        "reference_runs": [r for r in runs if r["problem"] in peer_problems] if peer_names else [],
        "ratios": peer_ratios,
        "unavailable": unavailable,
        "targets": {
            "dt_vs_fastest_peer_time_to_error_robin": f">= {PEER_DT_TARGET:g}",
            "pinn32_vs_jinns_per_step_and_time_to_best": f"<= {PEER_PINN_TARGET:g}",
        },
        "config": {
            "steps": {"robin": steps, "heat": heat_steps, "poisson_nd": nd_steps},
            "chunk": CHUNK,
            "poisson_nd": f"d={ND_DIM}, {ND_INTERIOR} random interior + {ND_BOUNDARY} random boundary "
            f"points, test {ND_TEST} random interior + {ND_TEST // 8} boundary points",
            "network": "tanh MLP 4x50, the same initial weights for every method (pdesolve's "
            "eqx.nn.MLP init, key=PRNGKey(seed), copied into the peers)",
            "timing": "ms/step: median of the interleaved timed calls (timed_steps iterations from the "
            "initial state) of every method of the block, peers included; t→best = steps→best x ms/step",
        },
    }
    path = _write(
        args,
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
            "peers": peers_payload,
            "wall_time_s": wall,
        },
    )
    print(f"wrote {path}")


def _print_peers(runs, peer_runs, unavailable, peer_names, peer_info):
    """Print the peer table and the ratio/verdict table; returns the ratio records."""
    rows = []
    for r in sorted(runs + peer_runs, key=lambda r: (PROBLEMS.index(r["problem"]), r["N"])):
        if r["problem"] not in PEER_PROBLEMS:
            continue
        is_peer = "peer" in r
        cfg = r.get("config", {}) if is_peer else {}
        how = (
            f"{cfg.get('dtype', '')}; {cfg.get('optimizer', '').split(';')[0].split(' (')[0]}"
            if is_peer
            else f"pdesolve {r['dtype']}, optimistix L-BFGS(10)"
        )
        rows.append([
            r["problem"], r["N"], r["method"], r["best_error"], r["error"], r["steps_to_best"], r["steps"],
            1e3 * r.get("s_per_step_interleaved", float("nan")), r.get("time_to_best_interleaved", float("nan")),
            r["time_to_best"], 1e3 * r["s_per_step"], r["compile_time"], r["setup_time"], how,
        ])
    for u in unavailable:
        rows.append([u["problem"], u["N"], u["method"], "—", "—", "—", "—", "—", "—", "—", "—", "—", "—", u["error"]])
    print("\nPeers (same nodes, initial weights, test set and iteration budget; errors every "
          f"{CHUNK} steps):")
    print(format_table(
        ["problem", "N", "method", "best err", "final err", "steps→best", "steps", "ms/step", "t→best [s]",
         "wall t→best", "wall ms/step", "compile [s]", "setup [s]", "configuration"],
        rows,
    ))
    print("ms/step: median of interleaved timed calls (compiled/warm, from the initial state); "
          "t→best = steps→best x ms/step; wall: measured during training (error evaluations excluded).")
    ratios = _peer_ratios(runs, peer_runs)
    if ratios:
        print("\nPeer ratios and verdicts:")
        print(format_table(
            ["problem", "N", "comparison", "ratio", "target", "verdict", "detail"],
            [[r["problem"], r["N"], r["comparison"], _fmt_ratio(r["value"]), r["target"], r["verdict"], r["detail"]]
             for r in ratios],
        ))
    for name in peer_names:
        if not peer_info[name]["installed"]:
            print(f"peer {name} not installed: {peer_info[name]['info']}")
    return ratios


def _fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}"


if __name__ == "__main__":
    main()
