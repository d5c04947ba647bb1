"""What `pdesolve run` prints: the plain-text table, the result table and its footnotes, the
comparison lines of two PINN-type solvers, and the one-line description of each solve.

`format_table` is shared with the spiral demo (`pdesolve._demo`).
"""

from __future__ import annotations

import numpy as np

import pdesolve as pds

from ._catalogue import PINN_SOLVERS
from ._settings import _defaults


def format_table(headers, rows) -> str:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule] + [fmt(r) for r in cells[1:]])


_COLUMNS = [
    ("problem", "problem"),
    ("solver", "solver"),
    ("rel. L2 error", "error"),
    ("PDE residual", "residual"),
    ("steps", "steps"),
    ("fevals", "fevals"),
    ("CG iters", "cg"),
    ("restarts", "restarts"),
    ("final loss", "loss"),
    ("train s", "train"),
    ("wall s", "wall"),
    ("result", "result"),
]


def _cell(key, value) -> str:
    if key in ("problem", "solver"):
        return value
    if key == "result":
        return "successful" if value is None else str(value)
    if value is None:
        return "-"
    if key in ("error", "residual", "loss"):
        return f"{value:.3e}"
    if key in ("train", "wall"):
        return f"{value:.1f}"
    return str(value)


def _result_table(rows: list[dict]) -> str:
    """Columns no row fills are left out (the error and wall-time columns always stay)."""
    keep = [
        (h, k) for h, k in _COLUMNS
        if k in ("problem", "solver", "error", "wall") or any(r.get(k) is not None for r in rows)
    ]
    body = [[_cell(k, r.get(k)) for _, k in keep] for r in rows]
    return format_table([h for h, _ in keep], body)


def _footnotes(rows, families) -> list[str]:
    notes = []
    if "ode" in families:
        notes.append("rel. L2 error (ODE): over the output times, against scipy DOP853 at "
                     "rtol 1e-12 (pdesolve.problems.reference_solution).")
    if "pinn" in families:
        notes.append("rel. L2 error (DTPINN/PINN): against the exact solution on the solver's "
                     "random test set; PDE residual: RMS of the equation's residual of the trained "
                     "network at 1000 random interior points (autodiff, both solvers); steps: L-BFGS "
                     "steps; final loss: the training loss; train s: optimiser loop (compilation "
                     "excluded).")
    if "mol" in families:
        notes.append("MethodOfLines: rel. L2 error vs the exact solution at the final time on 2000 "
                     "random interior points (RBF-FD interpolation of the nodal values); steps: time "
                     "steps; fevals: evaluations of the semi-discrete system.")
    if "NeuralIVP" in families:
        notes.append("NeuralIVP: rel. L2 error vs the exact solution and PDE residual "
                     "||J theta_dot - f|| / ||f|| at the final time; steps: accepted time steps; "
                     "fevals: theta_dot solves.")
    if any(r.get("error") is None for r in rows):
        notes.append("'-' in the error column: no exact solution (or the solve failed).")
    if any(r.get("result") is not None for r in rows):
        notes.append("result: the name of the Solution's pdesolve.RESULTS member (see its message "
                     "with pds.result_message(sol.result)).")
    notes.append("wall s: the whole solve including compilation.")
    return notes


def _time_to(err_hist, time_hist, target):
    e = np.asarray(err_hist, dtype=float)
    hit = np.nonzero(e <= target)[0]
    return float(np.asarray(time_hist)[hit[0]]) if hit.size else None


def _comparison(results) -> list[str]:
    """One-line ratios when two or more PINN-type solvers ran."""
    pinns = [(n, s) for n, s, _ in results if n in PINN_SOLVERS and "error_history" in s.stats]
    if len(pinns) < 2:
        return []
    lines = []
    (a, sa), (b, sb) = pinns[:2]
    per_step = {n: s.stats["train_time"] / max(int(s.stats["num_steps"]), 1) for n, s in pinns[:2]}
    lines.append(
        f"{a} vs {b}: {per_step[b] / per_step[a]:.1f}x the speed per optimiser step "
        f"({1e3 * per_step[a]:.2f} ms vs {1e3 * per_step[b]:.2f} ms); final errors "
        f"{sa.stats['relative_l2_error']:.2e} vs {sb.stats['relative_l2_error']:.2e}."
    )
    target = max(sa.stats["relative_l2_error"], sb.stats["relative_l2_error"])
    ta = _time_to(sa.stats["error_history"], sa.stats["time_history"], target)
    tb = _time_to(sb.stats["error_history"], sb.stats["time_history"], target)
    if ta is not None and tb is not None:
        lines.append(
            f"Training time to reach rel. L2 error {target:.2e} (the larger final error; errors "
            f"checked every {int(sa.solver.steps_per_dispatch)} steps): {a} {ta:.1f} s, {b} "
            f"{tb:.1f} s ({tb / max(ta, 1e-9):.1f}x)."
        )
    return lines


def _fmt(v) -> str:
    if isinstance(v, pds.PIDController):
        return f"PIDController(rtol={v.rtol:g}, atol={v.atol:g})"
    if isinstance(v, float):
        return f"{v:g}"
    return repr(v)


def _short(solver, name, kind, fields_set) -> str:
    defaults, _ = _defaults(name, kind)
    keys = list(dict.fromkeys([*defaults, *fields_set]))
    if not keys:
        return "(defaults)"
    parts = []
    for k in keys:
        v = getattr(solver, k)
        parts.append(f"{k}={type(v).__name__ + '()' if k == 'base' else _fmt(v)}")
    return "(" + ", ".join(parts) + ")"
