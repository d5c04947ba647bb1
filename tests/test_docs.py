"""The Python examples in the docs run (the custom-controller example is a real controller)."""

import re
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _blocks(name):
    text = (DOCS / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.skipif(not DOCS.exists(), reason="needs the source tree")
@pytest.mark.parametrize("name", ["getting-started.md", "custom-controller.md", "reversible.md", "imex.md", "neural-ivp.md"])
def test_doc_examples_run(name):
    ns: dict = {}
    for block in _blocks(name):
        if block.lstrip().startswith("class AbstractStepController"):
            continue  # interface listing, not runnable
        exec(compile(block, f"{name}", "exec"), ns)
    if name == "custom-controller.md":
        sol = ns["sol"]
        assert bool(sol.successful)
        np.testing.assert_allclose(sol.ys[-1], np.exp(-1.0), rtol=1e-5)
