"""The `pdesolve` command line.

    pdesolve                      the main job: DTPINN against PINN on the Poisson disk
    pdesolve list                 problems and solvers, one line each
    pdesolve run PROBLEM --solver NAME[,NAME2] [--set key=value ...] [--plot out.png]
                 [--save run.eqx | --resume run.eqx] [--every K] [--seed S] [--no-progress]
    pdesolve demo [--quick]       train the spiral neural ODE (pdesolve._demo)

Float64 is enabled by the entry point (`pdesolve.__main__.cli`), never here: call `main()`
from your own program only after `jax.config.update("jax_enable_x64", True)`.

`--set key=value` values are Python literals (`ast.literal_eval`; anything else is a
string). Each key goes to the first of: a field of the solver class (`width=32`), a keyword
of `pdesolve.solve` (`max_steps`, `dt0`, `rtol`/`atol` for a `PIDController`, `n_save`: the
number of output times of an ODE solve), a keyword of the problem's constructor
(`advection(d=1)`). The command line's own defaults are small (each run about a minute or
less on 2 CPU cores); `--set` overrides them.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import time
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------
# solvers and what they apply to
# ---------------------------------------------------------------------------------------------

RK_SOLVERS = ("Euler", "Heun", "Midpoint", "Ralston", "Bosh3", "RK4", "Dopri5", "Tsit5")
ODE_SOLVERS = RK_SOLVERS + ("ReversibleRK", "ReversibleHeun", "ALF", "IMEXRK")
PDE_SOLVERS = ("NeuralIVP", "MethodOfLines", "DTPINN", "PINN")
SOLVERS = ODE_SOLVERS + PDE_SOLVERS
CHECKPOINT_SOLVERS = ("NeuralIVP", "DTPINN", "PINN")
PINN_SOLVERS = ("DTPINN", "PINN")

# Solver fields that take objects, not literals, on the command line.
_OBJECT_FIELDS = {"model", "nodes", "activation"}

# Keywords of `pds.solve` the command line understands (beyond the solver's own fields).
_SOLVE_KEYS = {
    "ode": ("max_steps", "dt0", "rtol", "atol", "n_save"),
    "NeuralIVP": ("max_steps", "dt0", "rtol", "atol"),
    "mol": ("max_steps", "dt0", "rtol", "atol"),
    "pinn": ("max_steps",),
}

# What each catalogue problem is, so that `pdesolve list` need not build them (some take
# seconds): ("ode", has a stiff linear part) or ("pde", steady, NeuralIVP-ready box, dim).
# Problems missing here are built and inspected.
_KNOWN_KINDS = {
    "lotka_volterra": ("ode", False),
    "euler_rigid_body": ("ode", False),
    "arenstorf": ("ode", False),
    "brusselator": ("ode", False),
    "pleiades": ("ode", False),
    "spiral": ("ode", False),
    "white_dwarf": ("ode", False),
    "kuramoto_sivashinsky": ("ode", True),
    "poisson_disk": ("pde", True, False, 2),
    "nonlinear_poisson_disk": ("pde", True, False, 2),
    "robin_poisson_disk": ("pde", True, False, 2),
    "heat_disk": ("pde", False, False, 2),
    "wave3d": ("pde", False, True, 3),
    "advection": ("pde", False, True, 2),
    "fokker_planck": ("pde", False, True, 8),
    "vlasov": ("pde", False, True, 6),
    "wave_maps": ("pde", False, True, 3),
}

MAIN_JOB = ["run", "poisson_disk", "--solver", "DTPINN,PINN", "--plot", "pdesolve-main.png"]


class CLIError(Exception):
    """A usage error: printed on stderr (no traceback), exit status 2."""


def _describe_kind(problem) -> tuple:
    import numpy as np

    import pdesolve as pds

    if isinstance(problem, pds.NeuralODEProblem):
        return ("ode", problem.linear is not None)
    box_ready = (
        not problem.is_steady
        and isinstance(problem.domain, pds.Box)
        and (
            problem.bc is None
            or (
                isinstance(problem.bc, pds.Dirichlet)
                and not callable(problem.bc.g)
                and bool(np.all(np.asarray(problem.bc.g) == 0))
            )
        )
    )
    return ("pde", bool(problem.is_steady), bool(box_ready), int(problem.dim))


def solvers_for(kind: tuple) -> list[str]:
    """Names of the command line's solvers that apply to a problem of this kind."""
    if kind[0] == "ode":
        return [s for s in ODE_SOLVERS if s != "IMEXRK" or kind[1]]
    _, steady, box_ready, dim = kind
    out = []
    if box_ready:
        out.append("NeuralIVP")
    if dim <= 3 and not steady:  # the classical reference: RBF-FD in space, an ODE solver in time
        out.append("MethodOfLines")
    if dim <= 3:  # node sets of RBF-FD / collocation grow like 3^d and beyond
        out += ["DTPINN", "PINN"]
    return out


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def format_table(headers, rows) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule] + [fmt(r) for r in cells[1:]])


def parse_value(text: str) -> Any:
    """A `--set` value: a Python literal if it parses as one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_sets(items) -> dict:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CLIError(f"--set expects key=value (e.g. --set max_steps=200); got {item!r}.")
        out[key] = parse_value(value.strip())
    return out


def _catalogue():
    from pdesolve.problems import CATALOGUE

    return CATALOGUE


def _solver_class(name):
    import pdesolve as pds

    return getattr(pds, name)


def _solver_fields(name) -> list[str]:
    cls = _solver_class(name)
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in _OBJECT_FIELDS]


def _problem_keys(constructor) -> list[str]:
    try:
        params = inspect.signature(constructor).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in params
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty
    ]


def _family(name: str) -> str:
    if name in PINN_SOLVERS:
        return "pinn"
    if name == "NeuralIVP":
        return "NeuralIVP"
    if name == "MethodOfLines":
        return "mol"
    return "ode"


# ---------------------------------------------------------------------------------------------
# defaults: small, so that every run takes about a minute or less on 2 CPU cores
# ---------------------------------------------------------------------------------------------


def _defaults(name: str, kind: tuple) -> tuple[dict, dict]:
    """(solver fields, solve keywords) the command line uses unless `--set` overrides them."""
    if name in PINN_SOLVERS:
        if kind[1]:  # steady: the paper's network, its smallest node set (N=582), n_test reduced
            return {"width": 50, "depth": 4, "n_nodes": 582, "n_test": 1000}, {"max_steps": 1000}
        return {"width": 30, "depth": 3, "n_nodes": 300, "time_slices": 5, "n_test": 500}, {"max_steps": 300}
    if name == "MethodOfLines":  # about as many nodes as a second fits the RBF-FD assembly into
        return {"n_nodes": {1: 81, 2: 2000}.get(kind[3], 4000)}, {"max_steps": 100_000}
    if name == "NeuralIVP":
        return (
            {"width": 32, "depth": 2, "n_samples": 500, "n_eval_samples": 500, "rank": 30, "fit_steps": 500,
                 "fit_batch": 500, "head_samples": 3000},
            {},
        )
    fields = {}
    if name == "ReversibleRK":
        # coupling 0.9: the parasitic mode stays stable while |mu| h < 0.1, so the adaptive
        # drift control needs few extra steps on the catalogue's ODEs (with the class default
        # 0.999, lotka_volterra took 14094 steps, brusselator 29861; measured in
        # docs/reversible.md). This is a forward solve: gradients over many steps favour
        # a coupling nearer 1 (the reconstruction amplifies round-off by 1/coupling per step).
        fields["base"] = "Dopri5"
        fields["coupling"] = 0.9
    return fields, {"max_steps": 100_000, "n_save": 101}


def _convert_field(name: str, key: str, value):
    """Turn command-line strings into the objects some solver fields take."""
    import pdesolve as pds

    if key == "base" and isinstance(value, str):
        if value not in RK_SOLVERS:
            raise CLIError(f"base={value!r}: choose one of {', '.join(RK_SOLVERS)}.")
        return getattr(pds, value)()
    if key == "tableau" and name == "NeuralIVP" and isinstance(value, str):
        if value not in RK_SOLVERS:
            raise CLIError(f"tableau={value!r}: choose one of {', '.join(RK_SOLVERS)}.")
        return getattr(pds, value).tableau
    if key == "restart" and value is not None and name == "NeuralIVP":
        raise CLIError("restart: only restart=None (no restarts) can be set on the command line.")
    return value


def _adaptive(solver) -> bool:
    import pdesolve as pds

    if isinstance(solver, pds.AbstractExplicitRK):
        return solver.tableau.b_error is not None
    if isinstance(solver, pds.AbstractReversibleSolver):
        return solver.error_order is not None
    if isinstance(solver, pds.IMEXRK):
        tab = solver.tableau
        if isinstance(tab, str):
            tab = pds.IMEX_TABLEAUX.get(tab)
        return getattr(tab, "embedded_order", None) is not None
    return False


# ---------------------------------------------------------------------------------------------
# `pdesolve list`
# ---------------------------------------------------------------------------------------------


def cmd_list(args) -> int:
    catalogue = _catalogue()
    width = max(len(n) for n in catalogue)
    print("Problems (pdesolve run PROBLEM --solver NAME; pdesolve.problems.CATALOGUE):")
    for name, (constructor, description) in catalogue.items():
        kind = _KNOWN_KINDS.get(name) or _describe_kind(constructor())
        print(f"  {name.ljust(width)}  {description}")
        print(f"  {''.ljust(width)}  solvers: {', '.join(solvers_for(kind))}")
    print()
    print("Solvers (pdesolve run PROBLEM --solver NAME; --set FIELD=VALUE sets a field):")
    width = max(len(n) for n in SOLVERS)
    for name in SOLVERS:
        note = " [--save/--resume]" if name in CHECKPOINT_SOLVERS else ""
        print(f"  {name.ljust(width)}  {_first_line(_solver_class(name))}{note}")
    print()
    print("Also: `pdesolve demo [--quick]` trains the spiral neural ODE (Chen et al. 2018); "
          "`pdesolve` alone runs the main job (" + " ".join(["pdesolve", *MAIN_JOB]) + ").")
    return 0


# ---------------------------------------------------------------------------------------------
# `pdesolve run`
# ---------------------------------------------------------------------------------------------


def _route(sets: dict, problem_name: str, solver_names: list[str], constructor) -> tuple:
    """Split `--set` items into problem keywords and, per solver, fields and solve keywords."""
    problem_keys = _problem_keys(constructor)
    per_solver = {n: ({}, {}) for n in solver_names}
    problem_kw = {}
    for key, value in sets.items():
        used = False
        for n in solver_names:
            fields, solve_kw = per_solver[n]
            if key in _solver_fields(n):
                fields[key] = value
                used = True
            elif key in _SOLVE_KEYS[_family(n)]:
                solve_kw[key] = value
                used = True
        if not used and key in problem_keys:
            problem_kw[key] = value
            used = True
        if not used:
            lines = [f"unknown option {key!r} for {problem_name} with {', '.join(solver_names)}. Valid keys:"]
            for n in solver_names:
                lines.append(f"  solver {n}: {', '.join(_solver_fields(n)) or '(none)'}")
                lines.append(f"  solve ({n}): {', '.join(_SOLVE_KEYS[_family(n)])}")
            lines.append(f"  problem {problem_name}: {', '.join(problem_keys) or '(none)'}")
            raise CLIError("\n".join(lines))
    return problem_kw, per_solver


def _build_solver(name, kind, fields_set):
    defaults, _ = _defaults(name, kind)
    fields = {**defaults, **fields_set}
    fields = {k: _convert_field(name, k, v) for k, v in fields.items()}
    try:
        return _solver_class(name)(**fields)
    except (TypeError, ValueError) as e:
        raise CLIError(f"{name}({', '.join(f'{k}={v!r}' for k, v in fields_set.items())}): {e}") from None


def _solve_options(name, kind, solver, problem, solve_set, seed):
    import jax

    import pdesolve as pds

    _, defaults = _defaults(name, kind)
    opts = {**defaults, **solve_set}
    extra = {}
    family = _family(name)
    rtol, atol = opts.pop("rtol", None), opts.pop("atol", None)
    if family == "ode":
        import jax.numpy as jnp
        import numpy as np

        n_save = opts.pop("n_save")
        if isinstance(n_save, bool) or not isinstance(n_save, int) or n_save < 2:
            raise CLIError(f"n_save must be an int >= 2 (output times of the ODE solve); got {n_save!r}.")
        t0, t1 = (float(t) for t in problem.tspan)
        ts = np.linspace(t0, t1, n_save)
        opts["saveat"] = pds.SaveAt(ts=jnp.asarray(ts))
        extra["ts"] = ts
        if opts.get("dt0") is None and _adaptive(solver):
            opts["controller"] = pds.PIDController(
                rtol=1e-6 if rtol is None else rtol, atol=1e-8 if atol is None else atol
            )
        elif rtol is not None or atol is not None:
            if not _adaptive(solver):
                raise CLIError(
                    f"{name} has no embedded error estimate, so rtol/atol (a PIDController) "
                    f"do not apply; set a constant step with --set dt0=...; adaptive solvers: "
                    "Heun, Midpoint, Ralston, Bosh3, Dopri5, Tsit5, ReversibleRK."
                )
            opts["controller"] = pds.PIDController(
                rtol=1e-6 if rtol is None else rtol, atol=1e-8 if atol is None else atol
            )
        elif opts.get("dt0") is None:
            opts["dt0"] = (t1 - t0) / 1000  # constant steps: 1000 of them
    elif family == "NeuralIVP":
        if rtol is not None or atol is not None:
            opts["controller"] = pds.PIDController(
                rtol=1e-4 if rtol is None else rtol, atol=1e-4 if atol is None else atol
            )
        opts["key"] = jax.random.PRNGKey(seed)
    elif family == "mol":
        if opts.get("dt0") is None or rtol is not None or atol is not None:
            opts["controller"] = pds.PIDController(
                rtol=1e-6 if rtol is None else rtol, atol=1e-8 if atol is None else atol
            )
    else:
        opts["key"] = jax.random.PRNGKey(seed)
    return opts, extra


def _flatten_ys(ys):
    import jax
    import numpy as np
    from jax.flatten_util import ravel_pytree

    return np.asarray(jax.vmap(lambda y: ravel_pytree(y)[0])(ys))


def _rel_l2(y, ref) -> float:
    import numpy as np

    y, ref = np.asarray(y, dtype=float), np.asarray(ref, dtype=float)
    return float(np.linalg.norm(y - ref) / max(float(np.linalg.norm(ref)), 1e-300))


def _pinn_residual(sol, problem, n=1000, seed=12345) -> float:
    """RMS of the equation's residual of a trained PINN network at random interior points.

    Derivatives by autodiff (`pds.Field`) for DTPINN and PINN alike; evolution problems at
    uniform random times in `tspan`, residual `u_t - rhs`."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import pdesolve as pds

    model = sol.ys
    leaves = [x for x in jax.tree.leaves(model) if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    dtype = leaves[0].dtype if leaves else jnp.result_type(float)
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    X = jnp.asarray(problem.domain.sample_interior(k1, n), dtype=dtype)
    if problem.is_steady:

        def one(x):
            return problem.residual(pds.Field(model, x), x, problem.args)

        r = jax.jit(jax.vmap(one))(X)
    else:
        t0, t1 = (float(t) for t in problem.tspan)
        T = jax.random.uniform(k2, (n,), minval=t0, maxval=t1).astype(dtype)

        def one(x, t):
            u = pds.Field(lambda y: model(jnp.concatenate([y, t[None]])), x)
            ut = jax.jvp(lambda s: model(jnp.concatenate([x, s[None]])), (t,), (jnp.ones_like(t),))[1]
            return ut - problem.rhs(u, x, t, problem.args)

        r = jax.jit(jax.vmap(one))(X, T)
    r = np.asarray(r, dtype=float)
    return float(np.sqrt(np.mean(r**2)))


def _metrics(name, sol, problem, extra) -> dict:
    """error, residual and stats of one solve, as numbers (None where not available)."""
    import numpy as np

    st = sol.stats
    m: dict[str, Any] = {"error": None, "residual": None, "steps": None, "fevals": None,
                         "cg": None, "restarts": None, "loss": None, "train": None}
    family = _family(name)
    if family == "ode":
        from pdesolve.problems import reference_solution

        ref = reference_solution(problem, extra["ts"])
        if sol.successful:
            m["error"] = _rel_l2(_flatten_ys(sol.ys), ref)
        m["steps"] = int(st["num_steps"]) if "num_steps" in st else None
        m["fevals"] = int(st["num_fevals"]) if "num_fevals" in st else None
    elif family == "mol":
        if problem.solution is not None and sol.successful:
            import jax

            t1 = float(problem.tspan[1])
            X = np.asarray(problem.domain.sample_interior(jax.random.PRNGKey(12345), 2000))
            exact = np.asarray(jax.vmap(lambda x: problem.solution(x, t1))(jax.numpy.asarray(X)))
            m["error"] = _rel_l2(np.asarray(sol(X, t1)), exact)
        m["steps"] = int(st["num_steps"])
        m["fevals"] = int(st["num_fevals"])
    elif family == "NeuralIVP":
        if problem.solution is not None and np.size(st.get("error_history", [])):
            m["error"] = float(np.asarray(st["error_history"])[-1, 1])
        if np.size(st.get("residual_history", [])):
            m["residual"] = float(np.asarray(st["residual_history"])[-1, 1])
        m["steps"] = int(st["num_accepted_steps"])
        m["fevals"] = int(st["num_fevals"])
        m["cg"] = int(np.sum(st["cg_iterations"]))
        m["restarts"] = int(st["restarts"])
    else:
        m["error"] = st.get("relative_l2_error")
        m["residual"] = _pinn_residual(sol, problem)
        m["steps"] = int(st["num_steps"])
        m["loss"] = st.get("final_loss")
        m["train"] = st.get("train_time")
    return m


_COLUMNS = [
    ("problem", "problem"),
    ("solver", "solver"),
    ("rel. L2 error", "error"),
    ("PDE residual", "residual"),
    ("steps", "steps"),
    ("fevals", "fevals"),
    ("CG iters", "cg"),
    ("restarts", "restarts"),
    ("final loss", "loss"),
    ("train s", "train"),
    ("wall s", "wall"),
    ("result", "result"),
]


def _cell(key, value) -> str:
    if key in ("problem", "solver"):
        return value
    if key == "result":
        return "successful" if value is None else str(value)
    if value is None:
        return "-"
    if key in ("error", "residual", "loss"):
        return f"{value:.3e}"
    if key in ("train", "wall"):
        return f"{value:.1f}"
    return str(value)


def _result_table(rows: list[dict]) -> str:
    """Columns no row fills are left out (the error and wall-time columns always stay)."""
    keep = [
        (h, k) for h, k in _COLUMNS
        if k in ("problem", "solver", "error", "wall") or any(r.get(k) is not None for r in rows)
    ]
    body = [[_cell(k, r.get(k)) for _, k in keep] for r in rows]
    return format_table([h for h, _ in keep], body)


def _footnotes(rows, families) -> list[str]:
    notes = []
    if "ode" in families:
        notes.append("rel. L2 error (ODE): over the output times, against scipy DOP853 at "
                     "rtol 1e-12 (pdesolve.problems.reference_solution).")
    if "pinn" in families:
        notes.append("rel. L2 error (DTPINN/PINN): against the exact solution on the solver's "
                     "random test set; PDE residual: RMS of the equation's residual of the trained "
                     "network at 1000 random interior points (autodiff, both solvers); steps: L-BFGS "
                     "steps; final loss: the training loss; train s: optimiser loop (compilation "
                     "excluded).")
    if "mol" in families:
        notes.append("MethodOfLines: rel. L2 error vs the exact solution at the final time on 2000 "
                     "random interior points (RBF-FD interpolation of the nodal values); steps: time "
                     "steps; fevals: evaluations of the semi-discrete system.")
    if "NeuralIVP" in families:
        notes.append("NeuralIVP: rel. L2 error vs the exact solution and PDE residual "
                     "||J theta_dot - f|| / ||f|| at the final time; steps: accepted time steps; "
                     "fevals: theta_dot solves.")
    if any(r.get("error") is None for r in rows):
        notes.append("'-' in the error column: no exact solution (or the solve failed).")
    if any(r.get("result") is not None for r in rows):
        notes.append("result: the Solution's pdesolve.RESULTS member (see its message with "
                     "pds.RESULTS[sol.result]).")
    notes.append("wall s: the whole solve including compilation.")
    return notes


def _time_to(err_hist, time_hist, target):
    import numpy as np

    e = np.asarray(err_hist, dtype=float)
    hit = np.nonzero(e <= target)[0]
    return float(np.asarray(time_hist)[hit[0]]) if hit.size else None


def _comparison(results) -> list[str]:
    """One-line ratios when two or more PINN-type solvers ran."""
    pinns = [(n, s) for n, s, _ in results if n in PINN_SOLVERS and "error_history" in s.stats]
    if len(pinns) < 2:
        return []
    lines = []
    (a, sa), (b, sb) = pinns[:2]
    per_step = {n: s.stats["train_time"] / max(int(s.stats["num_steps"]), 1) for n, s in pinns[:2]}
    lines.append(
        f"{a} vs {b}: {per_step[b] / per_step[a]:.1f}x the speed per optimiser step "
        f"({1e3 * per_step[a]:.2f} ms vs {1e3 * per_step[b]:.2f} ms); final errors "
        f"{sa.stats['relative_l2_error']:.2e} vs {sb.stats['relative_l2_error']:.2e}."
    )
    target = max(sa.stats["relative_l2_error"], sb.stats["relative_l2_error"])
    ta = _time_to(sa.stats["error_history"], sa.stats["time_history"], target)
    tb = _time_to(sb.stats["error_history"], sb.stats["time_history"], target)
    if ta is not None and tb is not None:
        lines.append(
            f"Training time to reach rel. L2 error {target:.2e} (the larger final error; errors "
            f"checked every {int(sa.solver.steps_per_dispatch)} steps): {a} {ta:.1f} s, {b} "
            f"{tb:.1f} s ({tb / max(ta, 1e-9):.1f}x)."
        )
    return lines


def _can_plot() -> bool:
    try:
        _check_plotting()
    except CLIError:
        return False
    return True


def _check_plotting():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError('--plot needs matplotlib: pip install "pdesolve[plot]"') from None
    import pdesolve as pds

    if not hasattr(pds, "plot"):
        raise CLIError("--plot needs pdesolve.plot, which this installation lacks.")


def _write_plots(path: Path, results, problem_name) -> list[Path]:
    import pdesolve as pds

    written = []
    if len(results) == 1:
        name, sol, _ = results[0]
        fig = pds.plot(sol, title=f"{problem_name}: {name}")
        fig.savefig(path)
        return [path]
    for name, sol, _ in results:
        p = path.with_name(f"{path.stem}-{name}{path.suffix}")
        fig = pds.plot(sol, title=f"{problem_name}: {name}")
        fig.savefig(p)
        written.append(p)
    fig = _comparison_figure(results, problem_name)
    if fig is not None:
        fig.savefig(path)
        written.insert(0, path)
    return written


def _comparison_figure(results, problem_name):
    """Error against training time (PINN family) or against t (ODEs), one line per solver."""
    import numpy as np
    from matplotlib.figure import Figure

    families = {_family(n) for n, _, _ in results}
    if families == {"pinn"} and all("error_history" in s.stats for _, s, _ in results):
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        for name, sol, _ in results:
            st = sol.stats
            ax1.semilogy(st["time_history"], st["error_history"], marker=".", label=name)
            ax2.semilogy(np.arange(1, st["loss_history"].size + 1), st["loss_history"], label=name)
        ax1.set(xlabel="training time [s] (compilation excluded)", ylabel="relative L2 error",
                title="test error")
        ax2.set(xlabel="optimiser step", ylabel="loss", title="training loss")
        ax1.legend()
        ax2.legend()
        fig.suptitle(f"{problem_name}: " + " vs ".join(n for n, _, _ in results))
        return fig
    if families == {"ode"}:
        from pdesolve.problems import reference_solution

        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        for name, sol, extra in results:
            if not sol.successful:
                continue
            ref = reference_solution(sol.problem, extra["ts"])
            err = np.linalg.norm(_flatten_ys(sol.ys) - ref, axis=1) / max(np.linalg.norm(ref), 1e-300)
            # exact zeros (e.g. at t0) have no logarithm: leave them out rather than plot 1e-300
            ax.semilogy(extra["ts"], np.where(err > 0, err, np.nan), label=name)
        ax.set(xlabel="t", ylabel="|y - y_ref| / ||y_ref||", title=f"{problem_name}: error against the reference")
        ax.legend()
        return fig
    return None


def _canonical(name: str, known) -> str:
    """`name` as spelled in `known` when it matches up to case and `-`/`_` (`poisson-disk`,
    `dtpinn`); otherwise unchanged (the caller reports it with the valid names)."""
    key = name.lower().replace("-", "_")
    matches = [k for k in known if k.lower().replace("-", "_") == key]
    return matches[0] if len(matches) == 1 else name


def cmd_run(args) -> int:
    import pdesolve as pds

    catalogue = _catalogue()
    args.problem = _canonical(args.problem, catalogue)
    if args.problem not in catalogue:
        raise CLIError(
            f"unknown problem {args.problem!r}. Valid problems: {', '.join(catalogue)} "
            "(see `pdesolve list`)."
        )
    names = [_canonical(s.strip(), SOLVERS) for s in args.solver.split(",") if s.strip()]
    if not names:
        raise CLIError(f"--solver needs a solver name. Valid solvers: {', '.join(SOLVERS)}.")
    for n in names:
        if n not in SOLVERS:
            raise CLIError(f"unknown solver {n!r}. Valid solvers: {', '.join(SOLVERS)}.")
    if len(set(names)) != len(names):
        raise CLIError(f"--solver lists a solver twice: {args.solver!r}.")
    constructor, _ = catalogue[args.problem]
    sets = _parse_sets(args.set)
    problem_kw, per_solver = _route(sets, args.problem, names, constructor)
    if args.save and args.resume and Path(args.save) != Path(args.resume):
        raise CLIError("--save and --resume name different files; --resume PATH keeps saving to PATH.")
    ckpt_path = args.resume or args.save
    if ckpt_path:
        if len(names) > 1:
            raise CLIError("--save/--resume checkpoint one solver; give a single --solver.")
        if names[0] not in CHECKPOINT_SOLVERS:
            raise CLIError(
                f"{names[0]} does not support checkpoints; --save/--resume work with "
                f"{', '.join(CHECKPOINT_SOLVERS)}."
            )
        if not hasattr(pds, "Checkpoint"):
            raise CLIError("this pdesolve installation has no pds.Checkpoint; --save/--resume are unavailable.")
        if args.resume and not Path(args.resume).is_file():
            raise CLIError(f"--resume {args.resume}: no such file (create it with --save {args.resume}).")
        parent = Path(ckpt_path).resolve().parent
        if not parent.is_dir():
            raise CLIError(f"--save {ckpt_path}: directory {parent} does not exist.")
    if args.every < 1:
        raise CLIError(f"--every must be >= 1; got {args.every}.")
    plot_path = None
    if args.plot:
        _check_plotting()
        plot_path = Path(args.plot)
        if not plot_path.resolve().parent.is_dir():
            raise CLIError(f"--plot {args.plot}: directory {plot_path.resolve().parent} does not exist.")
        if not plot_path.suffix:
            plot_path = plot_path.with_suffix(".png")

    try:
        problem = constructor(**problem_kw)
    except (TypeError, ValueError) as e:
        raise CLIError(f"{args.problem}({', '.join(f'{k}={v!r}' for k, v in problem_kw.items())}): {e}") from None
    kind = _describe_kind(problem)
    valid = solvers_for(kind)
    for n in names:
        if n not in valid:
            raise CLIError(
                f"{n} cannot solve {args.problem}. Solvers for {args.problem}: {', '.join(valid)}."
            )
    solvers = {n: _build_solver(n, kind, per_solver[n][0]) for n in names}
    try:
        options = {n: _solve_options(n, kind, solvers[n], problem, per_solver[n][1], args.seed) for n in names}
    except (TypeError, ValueError) as e:  # e.g. PIDController(rtol='x')
        raise CLIError(f"solve options {', '.join(f'{k}={v!r}' for n in names for k, v in per_solver[n][1].items())}: {e}") from None

    results, rows = [], []
    for n in names:
        opts, extra = options[n]
        if ckpt_path:
            meta = {
                "problem": args.problem,
                "solver": n,
                "set": {k: repr(v) for k, v in sorted(sets.items()) if k != "max_steps"},
                "seed": args.seed,
            }
            try:
                opts["checkpoint"] = pds.Checkpoint(ckpt_path, every=args.every, resume=bool(args.resume), meta=meta)
            except (TypeError, ValueError) as e:  # e.g. a directory, or a missing parent directory
                raise CLIError(f"--save/--resume {ckpt_path}: {e}") from None
        shown = {k: v for k, v in opts.items() if k not in ("saveat", "key", "checkpoint")}
        solve_text = ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items()) or "(defaults)"
        print(f"{args.problem}: {n} {_short(solvers[n], n, kind, per_solver[n][0])}; solve "
              f"{solve_text}", flush=True)
        t0 = time.perf_counter()
        try:
            sol = pds.solve(problem, solvers[n], progress=not args.no_progress, throw=False, **opts)
        except (TypeError, ValueError, FileNotFoundError) as e:
            raise CLIError(f"{n} on {args.problem}: {e}") from None
        wall = time.perf_counter() - t0
        m = _metrics(n, sol, problem, extra)
        m.update(problem=args.problem, solver=n, wall=wall)
        if not sol.successful:
            m["result"] = _result_text(sol.result)
        if "resumed_from_step" in sol.stats and sol.stats["resumed_from_step"] is not None:
            print(f"  resumed from step {sol.stats['resumed_from_step']} of {ckpt_path}")
        rows.append(m)
        results.append((n, sol, extra))

    print()
    print(_result_table(rows))
    for note in _footnotes(rows, {_family(n) for n in names}):
        print(f"  {note}")
    for line in _comparison(results):
        print(line)
    if ckpt_path:
        print(f"checkpoint: {Path(ckpt_path).resolve()} (every {args.every} steps; continue with "
              f"--resume {ckpt_path})")
    if plot_path is not None:
        for p in _write_plots(plot_path, results, args.problem):
            print(f"plot written to {p.resolve()}")
    failed = [r["solver"] for r, (_, s, _) in zip(rows, results) if not s.successful]
    if failed:
        print(f"pdesolve: unsuccessful: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _result_text(result) -> str:
    """The short name of a `pds.RESULTS` member (e.g. `max_steps_reached`), else its message."""
    import pdesolve as pds

    # equinox.Enumeration keeps its members by name in `_name_to_item`.
    for name, item in getattr(pds.RESULTS, "_name_to_item", {}).items():
        if bool(item == result):
            return name
    return str(pds.RESULTS[result])


def _fmt(v) -> str:
    if hasattr(v, "rtol") and hasattr(v, "atol"):
        return f"PIDController(rtol={v.rtol:g}, atol={v.atol:g})"
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v)


def _short(solver, name, kind, fields_set) -> str:
    defaults, _ = _defaults(name, kind)
    keys = list(dict.fromkeys([*defaults, *fields_set]))
    if not keys:
        return "(defaults)"
    parts = []
    for k in keys:
        v = getattr(solver, k)
        parts.append(f"{k}={type(v).__name__ + '()' if k == 'base' else _fmt(v)}")
    return "(" + ", ".join(parts) + ")"


# ---------------------------------------------------------------------------------------------
# parser and entry
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pdesolve",
        description="Solve catalogue problems with pdesolve's solvers. Without a command: the main "
        "job, " + " ".join(["pdesolve", *MAIN_JOB]) + ".",
    )
    sub = p.add_subparsers(dest="command", metavar="{list,run,demo}")
    sub.add_parser("list", help="problems and solvers, one line each")
    r = sub.add_parser(
        "run",
        help="solve a catalogue problem and print a result table",
        description="Solve a catalogue problem (see `pdesolve list`) with one or more solvers and "
        "print a table: error against the exact/reference solution, PDE residual, solver stats, "
        "wall time.",
    )
    r.add_argument("problem", help="a catalogue problem name (pdesolve list)")
    r.add_argument("--solver", required=True, help="solver name, or several separated by commas (DTPINN,PINN)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a solver field, solve keyword (max_steps, dt0, rtol, atol, n_save) or "
                   "problem keyword; repeatable; values are Python literals")
    r.add_argument("--plot", metavar="OUT.png", help="draw the solution(s) with pdesolve.plot and save")
    r.add_argument("--save", metavar="RUN.eqx", help="checkpoint to this file (NeuralIVP, DTPINN, PINN)")
    r.add_argument("--resume", metavar="RUN.eqx", help="continue from this checkpoint (keeps saving to it)")
    r.add_argument("--every", type=int, default=100, help="steps between checkpoints (default 100)")
    r.add_argument("--seed", type=int, default=0, help="PRNG seed of network initialisation and sampling")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    d = sub.add_parser("demo", help="train the spiral neural ODE (Chen et al. 2018)", add_help=False)
    d.add_argument("demo_args", nargs=argparse.REMAINDER)
    return p


def main(argv=None) -> int:
    """Run the command line with `argv` (default `sys.argv[1:]`); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options_only = bool(argv) and argv[0].startswith("-") and argv[0] not in ("-h", "--help")
        demo_only = {"--quick", "--iters"}
        if argv and argv[0] == "demo" or (options_only and any(a.split("=")[0] in demo_only for a in argv)):
            # `pdesolve demo ...`, and the older `pdesolve --quick ...` form of the spiral demo.
            from pdesolve._demo import main as demo

            return demo(argv[1:] if argv[0] == "demo" else argv)
        main_job = not argv or options_only  # `pdesolve --no-progress`: the main job with that option
        if main_job:
            print("pdesolve main job: DTPINN (RBF-FD derivatives, float64) against a vanilla PINN "
                  "(autodiff, float32) on the Poisson disk, same network, nodes and L-BFGS steps.\n"
                  "Same as: " + " ".join(["pdesolve", *MAIN_JOB]) + "   (see `pdesolve --help`)\n",
                  flush=True)
            argv = list(MAIN_JOB) + argv
            if "--plot" in argv and not _can_plot():
                i = argv.index("--plot")
                del argv[i:i + 2]
                print('(matplotlib is not installed, so no plot: pip install "pdesolve[plot]")\n',
                      flush=True)
        args = _parser().parse_args(argv)
        if args.command == "list":
            return cmd_list(args)
        if args.command == "run":
            return cmd_run(args)
        _parser().print_help()
        return 2
    except CLIError as e:
        print(f"pdesolve: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse: --help (0) and usage errors (2)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
