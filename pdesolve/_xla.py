"""A guard against an XLA:CPU miscompile of fused reductions (private).

With jaxlib 0.10.2 on CPU, XLA hands reductions to YNNPACK fusions
(`xla_cpu_experimental_ynn_fusion_type` includes `LIBRARY_FUSION_TYPE_REDUCE` by default).
In NeuralIVP's θ̇ program this computed a wrong value: the residual
`‖(M + μI)x − F‖ / ‖F‖` that CG's result is checked with came out as 0.30 where the true
value (the same expression compiled without that fusion, or evaluated from the returned
vectors) is 2.7e-8 — while CG's own iterates, and so θ̇, were right. Which program is
affected depends on what XLA fuses around the reduction, so it is not predictable from the
source; tests/test_xla_reductions.py keeps the program that showed it.

`reduce_safe_filter_jit(fn)` is `equinox.filter_jit(fn)` compiled with the YNN fusion
restricted to individual dots (reductions left to XLA's own emitter) on the CPU backend.
Measured: same run time for NeuralIVP's step. Other backends, and jaxlibs without the
option, compile as plain `filter_jit`. It is a per-program compiler option: global flags
(`XLA_FLAGS`) are never changed.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

_OPTION = "xla_cpu_experimental_ynn_fusion_type"
_WITHOUT_REDUCE = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"


@functools.cache
def reduce_fusion_options() -> dict:
    """The compiler options that keep reductions out of YNN fusions, or `{}` where they do
    not apply (not CPU, or a jaxlib that does not know the option)."""
    if jax.default_backend() != "cpu":
        return {}
    options = {_OPTION: _WITHOUT_REDUCE}
    try:
        jax.jit(lambda x: jnp.sum(x * x), compiler_options=options)(jnp.ones(4))
    except Exception:  # noqa: BLE001 - an unknown option: this jaxlib has no YNN fusions
        return {}
    return options


def reduce_safe_filter_jit(fn):
    """`equinox.filter_jit(fn)`, compiled with `reduce_fusion_options()` (decided at the
    first call, when the backend is known). Called inside another trace (`jit`,
    `eval_shape`), where compiler options cannot be set, it is a plain `filter_jit`: the
    enclosing program's options apply."""
    jitted = {}
    plain = eqx.filter_jit(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs))):
            return plain(*args, **kwargs)
        if "fn" not in jitted:
            jitted["fn"] = eqx.filter_jit(fn, compiler_options=reduce_fusion_options())
        return jitted["fn"](*args, **kwargs)

    return wrapper
