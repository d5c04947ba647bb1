"""Small helpers shared by the benchmark scripts: timing, tables, JSON results, guards
(relative differences, exit status) and diffrax's missing classical RK4.

Benchmarks are not tests: they measure, print a table and write JSON to
`benchmarks/results/`. Import this module only after choosing the JAX platform
(see `apply_platform`).
"""

import argparse
import datetime
import functools
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the flags every benchmark understands."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="fast smoke run: fewer repeats, smaller cases")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (median reported)")
    p.add_argument(
        "--platform",
        default=None,
        help="JAX platform to run on (cpu, gpu, tpu); default: JAX's own choice (a GPU if present)",
    )
    p.add_argument("--out", default=None, help="JSON output path (default: benchmarks/results/<name>.json)")
    return p


def apply_platform(name: str | None) -> None:
    """Select the JAX platform; must run before any JAX computation."""
    if name:
        import jax

        jax.config.update("jax_platforms", name)


def machine_info() -> dict[str, Any]:
    """Versions, backend, devices and host facts, for the JSON record."""
    import jax
    import jaxlib

    devs = jax.devices()
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        python=platform.python_version(),
        jax=jax.__version__,
        jaxlib=jaxlib.__version__,
        backend=jax.default_backend(),
        devices=[str(getattr(d, "device_kind", d)) for d in devs],
        device_count=len(devs),
        cpu_count=os.cpu_count(),
        host=platform.platform(),
        processor=platform.processor() or platform.machine(),
        x64=bool(jax.config.read("jax_enable_x64")),
    )


def compile_jit(fn: Callable, *args) -> tuple[Callable, float]:
    """`jax.jit(fn)` lowered and compiled for `args`; returns (compiled, seconds)."""
    import jax

    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def rel_diff(a, b) -> float:
    """Relative 2-norm difference ``‖a − b‖ / ‖b‖`` over all leaves of two pytrees of arrays.

    The leaves are paired in order; the denominator is floored at 1e-300 (so ``b = 0`` gives a
    large finite number, not a division by zero). Returns a Python float.
    """
    import jax
    import jax.numpy as jnp

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    num = math.sqrt(sum(float(jnp.sum((x - y) ** 2)) for x, y in zip(la, lb)))
    den = math.sqrt(sum(float(jnp.sum(y**2)) for y in lb))
    return num / max(den, 1e-300)


def time_interleaved(
    fns: dict[str, Callable],
    args: dict[str, tuple],
    repeats: int,
    warmup: int = 1,
    min_total_s: float = 0.0,
    max_repeats: int = 200,
) -> dict:
    """Time several compiled functions, alternating them each round (fair under drift/noise).

    Runs at least `repeats` rounds, and more (up to `max_repeats`) until every function has
    run for `min_total_s` in total, so fast functions get enough samples.
    Returns `{name: {"median_s", "min_s", "times_s"}}`; every call is `block_until_ready`.
    """
    import jax

    for _ in range(warmup):
        for name, fn in fns.items():
            jax.block_until_ready(fn(*args[name]))
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = 0
    while rounds < repeats or (
        rounds < max_repeats and min(sum(ts) for ts in times.values()) < min_total_s
    ):
        rounds += 1
        for name, fn in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(*args[name]))
            times[name].append(time.perf_counter() - t)
    return {
        name: dict(median_s=statistics.median(ts), min_s=min(ts), times_s=ts) for name, ts in times.items()
    }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text (markdown-compatible) table."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print `title` on its own line(s), then `format_table(headers, rows)` below it."""
    print(title)
    print(format_table(headers, rows))


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if x == 0 or 1e-3 <= abs(x) < 1e5:
            return f"{x:.3f}"
        return f"{x:.2e}"
    return str(x)


@functools.cache
def diffrax_rk4() -> type:
    """diffrax's classical RK4 solver class (diffrax 0.7.2 ships none), built on its own ERK machinery.

    An `AbstractERK` subclass with the classical Butcher tableau and zero error weights (unused
    under `ConstantStepSize`), linear interpolation between steps. Imported lazily (diffrax is
    needed only where it is compared against); the same class on every call.
    """
    import diffrax
    import numpy as np

    class DiffraxRK4(diffrax.AbstractERK):
        """Classical RK4 from diffrax's own ERK machinery (diffrax 0.7.2 ships none)."""

        tableau = diffrax.ButcherTableau(
            c=np.array([0.5, 0.5, 1.0]),
            b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
            b_error=np.zeros(4),
            a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
        )

        @staticmethod
        def interpolation_cls(*, t0, t1, y0, y1, k):
            del k
            return diffrax.LocalLinearInterpolation(t0=t0, t1=t1, y0=y0, y1=y1)

        def order(self, terms):
            return 4

    return DiffraxRK4


def write_json(name: str, payload: dict, out: str | None = None) -> Path:
    """Write `payload` (plus machine info) as JSON; returns the path."""
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = dict(benchmark=name, machine=machine_info(), **payload)
    path.write_text(json.dumps(record, indent=2, default=_json_default) + "\n")
    return path


def guard_status(what: str, failures: Sequence[str]) -> int:
    """A benchmark's exit status from its failed guards: 0 if none, else 1 after a warning on stderr.

    The warning reads ``WARNING: <what> failed: <failure>; <failure>; ...``.
    """
    if failures:
        print(f"WARNING: {what} failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def _json_default(x: Any):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(x)
