"""The wheel maps solvers/ and problems/ into the package and imports from a fresh venv."""

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_subpackages_import():
    import pdesolve
    import pdesolve.problems
    import pdesolve.solvers

    assert hasattr(pdesolve, "solve") and hasattr(pdesolve.solvers, "RK4")
    assert Path(pdesolve.solvers.__file__).parent.name == "solvers"
    if os.environ.get("PDESOLVE_EXPECT_INSTALLED"):  # set by .ci/run: tests run on the installed wheel
        assert "site-packages" in pdesolve.__file__, pdesolve.__file__


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="needs the source tree")
def test_wheel_installs_into_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
    )
    (wheel,) = dist.glob("pdesolve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every module of the source tree is in the wheel (a new sub-package missing from
    # pyproject's `packages` list would be left out silently).
    expected = {f"pdesolve/{p.relative_to(ROOT / 'pdesolve').as_posix()}" for p in (ROOT / "pdesolve").rglob("*.py")}
    for top in ("solvers", "problems"):
        expected |= {f"pdesolve/{top}/{p.relative_to(ROOT / top).as_posix()}" for p in (ROOT / top).rglob("*.py")}
    missing = sorted(expected - names)
    assert not missing, f"modules missing from the wheel (add their package to pyproject's `packages`): {missing}"
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # Install the wheel alone into the fresh venv; its dependencies come from this
    # environment through a .pth placed after the venv's own site-packages.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True
    )
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import pdesolve, pdesolve.solvers, pdesolve.problems, sys; "
        "assert pdesolve.__file__.startswith(sys.argv[1]), pdesolve.__file__; print('ok')"
    )
    out = subprocess.run([str(py), "-c", code, str(site)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.skipif(not (ROOT / "solvers" / "__init__.py").exists(), reason="needs the source tree")
def test_source_tree_imports_from_its_root(tmp_path):
    """A script run from a clone's root imports the clone (not an install) with its
    subpackages: `python -c 'import pdesolve'` put the tree's `pdesolve/` first on sys.path,
    and `pdesolve.solvers` used to fail there (No module named 'pdesolve.solvers')."""
    code = (
        "import sys, pdesolve, pdesolve.solvers, pdesolve.problems; "
        "assert pdesolve.__file__.startswith(sys.argv[1]), pdesolve.__file__; "
        "assert pdesolve.solvers.__file__.startswith(sys.argv[1]), pdesolve.solvers.__file__; "
        "assert pdesolve.solvers.RK4 is pdesolve.RK4; print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
