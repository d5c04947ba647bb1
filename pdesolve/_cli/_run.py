"""`pdesolve run`: check the arguments, build the problem and solvers, solve, print the report.

The pieces live beside it: names and kinds in `_catalogue`, `--set` routing and defaults in
`_settings`, the numbers in `_metrics`, the table in `_report`, the figures in `_figures`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pdesolve as pds
from pdesolve.problems import CATALOGUE

from ._catalogue import CHECKPOINT_SOLVERS, SOLVERS, _canonical, _describe_kind, _family, solvers_for
from ._errors import CLIError
from ._figures import _check_plotting, _write_plots
from ._metrics import _metrics
from ._report import _comparison, _fmt, _footnotes, _result_table, _short
from ._settings import _build_solver, _parse_sets, _route, _solve_options


def cmd_run(args) -> int:
    catalogue = CATALOGUE
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
            m["result"] = pds.result_name(sol.result)
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
