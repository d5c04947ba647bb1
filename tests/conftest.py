"""Test configuration: float64 everywhere (pdesolve itself never flips this flag), and
compiled programs released between test modules once the process holds many memory maps.

The 2-device tests (tests/test_sharding.py) run in a subprocess started by
tests/test_two_devices.py with XLA_FLAGS=--xla_force_host_platform_device_count=2; the rest
of the suite runs on the usual single CPU device.
"""

import gc
import os

import jax
import pytest

jax.config.update("jax_enable_x64", True)

import hypothesis  # noqa: E402

hypothesis.settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.load_profile("ci")


# Every XLA:CPU executable holds several memory mappings; the whole suite compiles thousands
# of programs, and at Linux's vm.max_map_count (65530 by default) the next compilation
# segfaults inside XLA (seen in test_reversible after ~80 % of the suite). Measured: one
# module (tests/test_cli.py) leaves ~5500 maps, `jax.clear_caches()` brings it back to ~1200.
# Clearing only above a threshold keeps most of the cross-module compile sharing.
_MAPS = f"/proc/{os.getpid()}/maps"
_MAX_MAPS = 20000


def _map_count() -> int:
    try:
        with open(_MAPS) as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux: no limit to watch
        return 0


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    yield
    if _map_count() > _MAX_MAPS:
        jax.clear_caches()
        gc.collect()


# A module that compiles hundreds of programs (the gradient matrix: ~140 maps per compiled
# program; its full product segfaulted inside XLA after ~470 programs) also checks between
# tests, at a higher threshold so that sharing within the module is kept.
_MAX_MAPS_IN_MODULE = 45000


@pytest.fixture(autouse=True)
def _release_compiled_programs_in_long_modules():
    yield
    if _map_count() > _MAX_MAPS_IN_MODULE:
        jax.clear_caches()
        gc.collect()
