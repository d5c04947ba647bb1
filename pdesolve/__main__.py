"""`pdesolve` console script and `python -m pdesolve`: the command line (`pdesolve._cli`).

    pdesolve                 the main job (DTPINN against PINN on the Poisson disk)
    pdesolve list            problems and solvers
    pdesolve run PROBLEM --solver NAME [--set key=value ...] [--plot out.png] ...
    pdesolve demo [--quick]  the spiral neural-ODE training demo

This entry point is the one place that enables float64: library modules never flip
`jax_enable_x64`, but a program's entry point may, before any array is created.
"""

import jax


def cli(argv=None) -> int:
    """Run the command line with `argv` (default `sys.argv[1:]`); returns the exit status."""
    jax.config.update("jax_enable_x64", True)
    from pdesolve._cli import main

    return main(argv)


if __name__ == "__main__":
    raise SystemExit(cli())
