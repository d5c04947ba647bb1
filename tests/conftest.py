"""Test configuration: float64 everywhere (pdesolve itself never flips this flag), and two CPU
devices so that tests/test_sharding.py can check 2-device runs against 1-device runs (the
flag only splits the host into two XLA devices; everything else still runs on device 0)."""

import os

_FLAG = "--xla_force_host_platform_device_count=2"
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

import jax

jax.config.update("jax_enable_x64", True)

import hypothesis  # noqa: E402

hypothesis.settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.load_profile("ci")
