"""Griffe extension for the API reference (used by mkdocstrings in mkdocs.yml only).

pdesolve installs `solvers/` as `pdesolve.solvers` and `problems/` as `pdesolve.problems`
(setuptools `package-dir`), so the two are not sub-directories of `pdesolve/` and griffe's
static loader does not find them. This extension loads them as submodules of `pdesolve`.
"""

from __future__ import annotations

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
