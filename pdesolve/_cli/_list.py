"""`pdesolve list`: every catalogue problem with the solvers that apply, every solver in one line."""

from __future__ import annotations

import inspect

from pdesolve.problems import CATALOGUE

from ._catalogue import CHECKPOINT_SOLVERS, MAIN_JOB, SOLVERS, _describe_kind, _KNOWN_KINDS, _solver_class, solvers_for


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def cmd_list(args) -> int:
    catalogue = CATALOGUE
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
