"""The Python examples in the docs run (the custom-controller example is a real controller).

Pages whose blocks run in a few seconds are in the default suite; the problem pages that
train a network (DTPINN, NeuralIVP) or sample training data are behind the `slow` marker.
Each page's blocks run in order in one namespace; most end with their own sanity assert.
"""

import re
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

FAST = [
    "index.md",
    "checkpoint.md",
    "getting-started.md",
    "custom-controller.md",
    "gradients.md",
    "dense-output.md",
    "events.md",
    "ensembles.md",
    "coming-from/diffrax.md",
    "coming-from/julia.md",
    "coming-from/deepxde.md",
    "explicit-rk.md",
    "reversible.md",
    "imex.md",
    "neural-ivp.md",
    "method-of-lines.md",
    "problems/index.md",
    "problems/lotka_volterra.md",
    "problems/euler_rigid_body.md",
    "problems/arenstorf.md",
    "problems/brusselator.md",
    "problems/pleiades.md",
    "problems/kuramoto_sivashinsky.md",
    "problems/wave3d.md",
]
# 10 s to ~2 min each on a loaded 2-core CPU (mostly compilation of the training loops).
SLOW = [
    "problems/spiral.md",
    "problems/white_dwarf.md",
    "problems/poisson_disk.md",
    "problems/nonlinear_poisson_disk.md",
    "problems/robin_poisson_disk.md",
    "problems/heat_disk.md",
    "problems/advection.md",
    "problems/fokker_planck.md",
    "problems/vlasov.md",
    "problems/wave_maps.md",
]


def _blocks(name):
    text = (DOCS / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.skipif(not DOCS.exists(), reason="needs the source tree")
@pytest.mark.parametrize("name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW])
def test_doc_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples may write files (checkpoints, plots)
    ns: dict = {}
    blocks = _blocks(name)
    assert blocks, f"{name} has no python blocks"
    for block in blocks:
        if block.lstrip().startswith("class AbstractStepController"):
            continue  # interface listing, not runnable
        exec(compile(block, f"{name}", "exec"), ns)
    if name == "custom-controller.md":
        sol = ns["sol"]
        assert bool(sol.successful)
        np.testing.assert_allclose(sol.ys[-1], np.exp(-1.0), rtol=1e-5)


@pytest.mark.skipif(not DOCS.exists(), reason="needs the source tree")
def test_problem_pages_cover_the_catalogue():
    """One page per catalogue problem, each with a runnable snippet."""
    from pdesolve.problems import CATALOGUE

    pages = {p.stem for p in (DOCS / "problems").glob("*.md")} - {"index"}
    assert pages == set(CATALOGUE), (pages ^ set(CATALOGUE))
    for name in CATALOGUE:
        assert f"problems/{name}.md" in FAST + SLOW
