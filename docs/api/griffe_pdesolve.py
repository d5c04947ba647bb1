"""Griffe extension for the API reference (used by mkdocstrings in mkdocs.yml only).

pdesolve installs `solvers/` as `pdesolve.solvers` and `problems/` as `pdesolve.problems`
(setuptools `package-dir`), so the two are not sub-directories of `pdesolve/` and griffe's
static loader does not find them. This extension loads them as submodules of `pdesolve`.
It also gives the explicit RK solvers built with `type()` in `solvers/explicit_rk.py`
(`RK4 = _make(...)`) their runtime docstrings, which static analysis cannot see.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import griffe


class PdesolveLayout(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        if pkg.name != "pdesolve":
            return
        root = Path(pkg.filepath).parent.parent
        for name in ("solvers", "problems"):
            if name in pkg.members and not pkg.members[name].is_alias:
                continue
            init = root / name / "__init__.py"
            if not init.exists():
                continue
            module = loader._load_module(name, init, submodules=True, parent=pkg)  # noqa: SLF001
            pkg.set_member(name, module)
        explicit = pkg.members.get("solvers")
        explicit = explicit.members.get("explicit_rk") if explicit is not None else None
        if explicit is None:
            return
        runtime = importlib.import_module("pdesolve.solvers.explicit_rk")
        for member_name, member in list(explicit.members.items()):
            if member.is_alias or not member.is_attribute:
                continue
            value = str(getattr(member, "value", "") or "")
            if not value.startswith("_make("):
                continue
            obj = getattr(runtime, member_name, None)
            if obj is not None and obj.__doc__:
                member.docstring = griffe.Docstring(obj.__doc__.strip(), parent=member)
