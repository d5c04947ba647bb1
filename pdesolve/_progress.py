"""A tqdm progress bar that advances from inside `jit` (via host callbacks)."""

import itertools

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

_BARS: dict = {}
_COUNTER = itertools.count()


def _open(desc):
    from tqdm.auto import tqdm

    idx = next(_COUNTER) % (2**31 - 1)
    _BARS[idx] = tqdm(total=100, desc=desc, unit="%", bar_format="{l_bar}{bar}| {n:.0f}/100% [{elapsed}<{remaining}]")
    return np.int32(idx)


def _advance(idx, frac):
    idx_arr = np.asarray(idx)
    bar = _BARS.get(int(np.max(idx_arr)))
    if bar is not None:
        n = int(100 * float(np.clip(np.min(np.asarray(frac)), 0.0, 1.0)))
        if n > bar.n:  # never moves backward (e.g. during gradient recomputation)
            bar.update(n - bar.n)
    return idx_arr.astype(np.int32)


def _close(idx):
    bar = _BARS.pop(int(np.max(np.asarray(idx))), None)
    if bar is not None:
        if bar.n < 100:
            bar.update(100 - bar.n)
        bar.close()


class ProgressMeter:
    """Host-side tqdm bar driven by callbacks; a no-op when `enabled` is False.

    The bar is created when the compiled computation starts (not at trace time), so a
    jitted solve shows a fresh bar on every call. Results never depend on the bar: the
    token returned by `update` is carried only to order the callbacks.
    """

    def __init__(self, enabled: bool, desc: str = "solve"):
        self.enabled = bool(enabled)
        self.desc = desc

    def open(self):
        if not self.enabled:
            return jnp.zeros((), jnp.int32)
        return io_callback(lambda: _open(self.desc), jax.ShapeDtypeStruct((), jnp.int32))

    def update(self, token, fraction):
        if not self.enabled:
            return token
        return jax.pure_callback(
            _advance, jax.ShapeDtypeStruct((), jnp.int32), token, fraction, vmap_method="expand_dims"
        )

    def close(self, token):
        if self.enabled:
            io_callback(_close, None, eqxi.unvmap_max(token))
