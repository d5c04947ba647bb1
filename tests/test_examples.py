"""The example scripts in docs/examples/ run at their small size and pass their own checks.

Each script enables float64, prints a result and asserts a sanity bound (accuracy against a
reference, a loss decrease, gradient = finite differences); running it is the test. They
are executed in-process with `runpy`, at `PDESOLVE_EXAMPLE_SIZE=small`.
"""

import os
import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"

# Scripts whose first run is dominated by compilation too long for the default suite
# (NeuralIVP compiles its fit, sketch and CG loops: ~70 s on a loaded 2-core CPU).
SLOW = {"neural_ivp_advection.py"}

SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py")) if EXAMPLES.exists() else []


def test_examples_found():
    if not EXAMPLES.exists():
        pytest.skip("needs the source tree")
    assert len(SCRIPTS) >= 4, SCRIPTS


@pytest.mark.skipif(not EXAMPLES.exists(), reason="needs the source tree")
@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in SCRIPTS]
)
def test_example_runs(name, monkeypatch, capsys):
    monkeypatch.setenv("PDESOLVE_EXAMPLE_SIZE", "small")
    runpy.run_path(os.fspath(EXAMPLES / name), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{name} printed nothing"
