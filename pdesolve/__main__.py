"""`pdesolve` console script and `python -m pdesolve`: the spiral neural-ODE demo.

This entry point is the one place that enables float64: library modules never flip
`jax_enable_x64`, but a program's entry point may, before any array is created.
"""

import jax


def cli(argv=None) -> int:
    jax.config.update("jax_enable_x64", True)
    from pdesolve._demo import main

    return main(argv)


if __name__ == "__main__":
    raise SystemExit(cli())
