"""Test configuration: float64 everywhere (pdesolve itself never flips this flag).

The 2-device tests (tests/test_sharding.py) run in a subprocess started by
tests/test_two_devices.py with XLA_FLAGS=--xla_force_host_platform_device_count=2; the rest
of the suite runs on the usual single CPU device.
"""

import jax

jax.config.update("jax_enable_x64", True)

import hypothesis  # noqa: E402

hypothesis.settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.load_profile("ci")
