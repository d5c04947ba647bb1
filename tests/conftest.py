"""Test configuration: float64 everywhere (pdesolve itself never flips this flag)."""

import jax

jax.config.update("jax_enable_x64", True)

import hypothesis  # noqa: E402

hypothesis.settings.register_profile(
    "ci", max_examples=10, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.load_profile("ci")
