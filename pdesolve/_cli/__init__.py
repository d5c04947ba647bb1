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

One module per idea, re-exported here:

    _catalogue  solver names, which solvers apply to which catalogue problem, the main job
    _settings   `--set` parsing and routing, the defaults, building solvers and solve options
    _metrics    errors, the PINN residual and the counters of one solve
    _report     the plain-text tables and the lines printed around them
    _figures    `--plot`: the per-solver and comparison figures
    _list       `pdesolve list`
    _run        `pdesolve run`
    _main       the parser and `main`
    _errors     `CLIError`
"""

from ._catalogue import (
    CHECKPOINT_SOLVERS as CHECKPOINT_SOLVERS,
    MAIN_JOB as MAIN_JOB,
    ODE_SOLVERS as ODE_SOLVERS,
    PDE_SOLVERS as PDE_SOLVERS,
    PINN_SOLVERS as PINN_SOLVERS,
    SOLVERS as SOLVERS,
    _canonical as _canonical,
    solvers_for as solvers_for,
)
from ._errors import CLIError as CLIError
from ._list import cmd_list as cmd_list
from ._main import main as main
from ._report import format_table as format_table
from ._run import cmd_run as cmd_run
from ._settings import _defaults as _defaults, _route as _route, parse_value as parse_value

__all__ = [
    "CHECKPOINT_SOLVERS",
    "CLIError",
    "MAIN_JOB",
    "ODE_SOLVERS",
    "PDE_SOLVERS",
    "PINN_SOLVERS",
    "SOLVERS",
    "cmd_list",
    "cmd_run",
    "format_table",
    "main",
    "parse_value",
    "solvers_for",
]
