"""Measuring the time a computation spends compiling (private).

`CompileTimer` listens to JAX's monitoring events while it is open and adds up tracing,
lowering and XLA compilation, and counts the XLA programs compiled. Events from other
threads compiling at the same time are counted too.
"""

import jax.monitoring

_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_BACKEND = "/jax/core/compile/backend_compile_duration"


class CompileTimer:
    """Context manager: `seconds` (trace + lower + XLA compile) and `programs` (XLA
    compilations) spent inside the `with` block.

        with CompileTimer() as timer:
            ...
        stats["compile_time"], stats["num_compilations"] = timer.seconds, timer.programs
    """

    def __init__(self):
        self.seconds = 0.0
        self.programs = 0

    def _listen(self, event, duration, **kwargs):
        del kwargs
        if event in (_TRACE, _LOWER, _BACKEND):
            self.seconds += float(duration)
        if event == _BACKEND:
            self.programs += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)
        return False
