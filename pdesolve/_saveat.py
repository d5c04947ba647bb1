"""`SaveAt`: which times a time-stepping solve returns."""

import equinox as eqx
import jax
import numpy as np


class SaveAt(eqx.Module):
    """Which times of a time-stepping solve to return in `Solution.ts` / `Solution.ys`.

    **Arguments:**

    - `t0`: save the initial state.
    - `t1`: save the final state (default when nothing else is requested).
    - `ts`: an increasing array of times inside `tspan` at which to save. The integrator
      clips its steps so that it lands exactly on each of these times (no interpolation):
      the saved values are the solver's own step values, with the solver's full order.
      Clipping shortens at most one step per saved time; an adaptive controller resumes
      from its unclipped proposal afterwards.
    - `steps`: save after every accepted step. The output then has `max_steps` slots;
      unused trailing slots hold `inf` times and `inf` states.
    - `dense`: keep every accepted step's interpolating polynomial, so that
      `Solution.evaluate(t)` is a continuous function of `t` (vectorised over an array of
      times, inside `jit`, differentiable) instead of a re-integration. Costs `max_steps`
      copies of (degree + 1) states; see docs/dense-output.md for each method's interpolant.
      Does not change `ts`/`ys` (alone, it keeps the default `t1=True`).

    Saved times are concatenated in the order `t0`, `ts`, `steps`, `t1`.
    """

    t0: bool = False
    t1: bool = False
    ts: jax.Array | np.ndarray | None = None
    steps: bool = False
    dense: bool = False

    def __init__(self, t0=False, t1=None, ts=None, steps=False, dense=False):
        self.t0 = bool(t0)
        self.steps = bool(steps)
        self.dense = bool(dense)
        if ts is not None:
            if not isinstance(ts, jax.core.Tracer):
                ts = np.asarray(ts)
                if ts.ndim != 1:
                    raise ValueError(f"SaveAt(ts=...) must be a 1-D array of times; got shape {ts.shape}.")
                if ts.size == 0:
                    raise ValueError(
                        "SaveAt(ts=...) is empty: pass at least one time, or leave `ts` out "
                        "(SaveAt(t1=True) saves the final state)."
                    )
                if not np.all(np.isfinite(ts)):
                    raise ValueError("SaveAt(ts=...) contains NaN or inf; pass finite times.")
                if ts.size > 1 and np.any(np.diff(ts) < 0) and np.any(np.diff(ts) > 0):
                    raise ValueError(
                        "SaveAt(ts=...) must be monotonic (increasing for a forward solve, "
                        "decreasing for a backward one); sort the times."
                    )
            elif ts.ndim != 1 or ts.shape[0] == 0:
                raise ValueError(f"SaveAt(ts=...) must be a non-empty 1-D array of times; got shape {ts.shape}.")
        self.ts = ts
        if t1 is None:
            t1 = not (self.t0 or self.steps or ts is not None)
        self.t1 = bool(t1)
        if not (self.t0 or self.t1 or self.steps or ts is not None):
            raise ValueError("SaveAt saves nothing: set at least one of t0, t1, ts, steps.")
