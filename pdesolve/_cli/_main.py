"""The argument parser and `main`: which command runs, the main job, the demo's short forms."""

from __future__ import annotations

import argparse
import sys

from ._catalogue import MAIN_JOB
from ._errors import CLIError
from ._figures import _can_plot
from ._list import cmd_list
from ._run import cmd_run


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
            # Imported here, not at the top: the demo imports this package's table helpers
            # (one direction only) and optax, which the other commands do not need.
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
