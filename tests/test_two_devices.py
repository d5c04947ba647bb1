"""Runs tests/test_sharding.py in a fresh Python process that sees two CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2` must be set before JAX starts), so the
rest of the suite keeps the ordinary single-device set-up."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(jax.device_count() >= 2, reason="this process has 2 devices: test_sharding.py runs directly")
def test_sharding_suite_on_two_cpu_devices():
    flags = os.environ.get("XLA_FLAGS", "")
    env = {**os.environ, "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2".strip()}
    proc = subprocess.run(
        # -P: do not put the working directory on sys.path, so the *installed* pdesolve is
        # imported (the source tree's pdesolve/ lacks the solvers/problems mapping).
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_sharding.py")],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=1800,
    )
    tail = proc.stdout[-6000:] + "\n" + proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " skipped" not in proc.stdout.split("\n")[-2], tail
