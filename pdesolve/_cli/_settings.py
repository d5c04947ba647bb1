"""`--set key=value`: parsing, routing, and the command line's defaults.

Each key goes to the first of: a field of the solver class (`width=32`), a keyword of
`pdesolve.solve` (`max_steps`, `dt0`, `rtol`/`atol` for a `PIDController`, `n_save`: the number
of output times of an ODE solve), a keyword of the problem's constructor (`advection(d=1)`).
The defaults are small (each run about a minute or less on 2 CPU cores); `--set` overrides
them. Here too: building the solver from its fields and the keywords of `pds.solve`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import pdesolve as pds
from pdesolve.solvers.explicit_rk import METHOD_NAMES
from pdesolve._validation import check_int

from ._catalogue import ADAPTIVE_ODE_SOLVERS, PINN_SOLVERS, _adaptive, _family, _solver_class
from ._errors import CLIError

# Solver fields that take objects, not literals, on the command line.
_OBJECT_FIELDS = {"model", "nodes", "activation"}

# Keywords of `pds.solve` the command line understands (beyond the solver's own fields).
_SOLVE_KEYS = {
    "ode": ("max_steps", "dt0", "rtol", "atol", "n_save"),
    "NeuralIVP": ("max_steps", "dt0", "rtol", "atol"),
    "mol": ("max_steps", "dt0", "rtol", "atol"),
    "pinn": ("max_steps",),
}


def parse_value(text: str) -> Any:
    """A `--set` value: a Python literal if it parses as one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_sets(items) -> dict:
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise CLIError(f"--set expects key=value (e.g. --set max_steps=200); got {item!r}.")
        out[key] = parse_value(value.strip())
    return out


def _solver_fields(name) -> list[str]:
    cls = _solver_class(name)
    return [f.name for f in dataclasses.fields(cls) if f.init and f.name not in _OBJECT_FIELDS]


def _problem_keys(constructor) -> list[str]:
    try:
        params = inspect.signature(constructor).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in params
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty
    ]


def _route(sets: dict, problem_name: str, solver_names: list[str], constructor) -> tuple:
    """Split `--set` items into problem keywords and, per solver, fields and solve keywords."""
    problem_keys = _problem_keys(constructor)
    per_solver: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {n: ({}, {}) for n in solver_names}
    problem_kw: dict[str, Any] = {}
    for key, value in sets.items():
        used = False
        for n in solver_names:
            fields, solve_kw = per_solver[n]
            if key in _solver_fields(n):
                fields[key] = value
                used = True
            elif key in _SOLVE_KEYS[_family(n)]:
                solve_kw[key] = value
                used = True
        if not used and key in problem_keys:
            problem_kw[key] = value
            used = True
        if not used:
            lines = [f"unknown option {key!r} for {problem_name} with {', '.join(solver_names)}. Valid keys:"]
            for n in solver_names:
                lines.append(f"  solver {n}: {', '.join(_solver_fields(n)) or '(none)'}")
                lines.append(f"  solve ({n}): {', '.join(_SOLVE_KEYS[_family(n)])}")
            lines.append(f"  problem {problem_name}: {', '.join(problem_keys) or '(none)'}")
            raise CLIError("\n".join(lines))
    return problem_kw, per_solver


# ---------------------------------------------------------------------------------------------
# defaults: small, so that every run takes about a minute or less on 2 CPU cores
# ---------------------------------------------------------------------------------------------


def _defaults(name: str, kind: tuple) -> tuple[dict, dict]:
    """(solver fields, solve keywords) the command line uses unless `--set` overrides them."""
    if name in PINN_SOLVERS:
        if kind[1]:  # steady: the paper's network, its smallest node set (N=582), n_test reduced
            return {"width": 50, "depth": 4, "n_nodes": 582, "n_test": 1000}, {"max_steps": 1000}
        return {"width": 30, "depth": 3, "n_nodes": 300, "time_slices": 5, "n_test": 500}, {"max_steps": 300}
    if name == "MethodOfLines":  # about as many nodes as a second fits the RBF-FD assembly into
        return {"n_nodes": {1: 81, 2: 2000}.get(kind[3], 4000)}, {"max_steps": 100_000}
    if name == "NeuralIVP":
        return (
            {"width": 32, "depth": 2, "n_samples": 500, "n_eval_samples": 500, "rank": 30, "fit_steps": 500,
                 "fit_batch": 500, "head_samples": 3000},
            {},
        )
    fields: dict[str, Any] = {}
    if name == "ReversibleRK":
        # coupling 0.9: the parasitic mode stays stable while |mu| h < 0.1, so the adaptive
        # drift control needs few extra steps on the catalogue's ODEs (with the class default
        # 0.999, lotka_volterra took 14094 steps, brusselator 29861; measured in
        # docs/reversible.md). This is a forward solve: gradients over many steps favour
        # a coupling nearer 1 (the reconstruction amplifies round-off by 1/coupling per step).
        fields["base"] = "Dopri5"
        fields["coupling"] = 0.9
    return fields, {"max_steps": 100_000, "n_save": 101}


def _convert_field(name: str, key: str, value):
    """Turn command-line strings into the objects some solver fields take."""
    if key == "base" and isinstance(value, str):
        if value not in METHOD_NAMES:
            raise CLIError(f"base={value!r}: choose one of {', '.join(METHOD_NAMES)}.")
        return getattr(pds, value)()
    if key == "tableau" and name == "NeuralIVP" and isinstance(value, str):
        if value not in METHOD_NAMES:
            raise CLIError(f"tableau={value!r}: choose one of {', '.join(METHOD_NAMES)}.")
        return getattr(pds, value).tableau
    if key == "restart" and value is not None and name == "NeuralIVP":
        raise CLIError("restart: only restart=None (no restarts) can be set on the command line.")
    return value


def _build_solver(name, kind, fields_set):
    defaults, _ = _defaults(name, kind)
    fields = {**defaults, **fields_set}
    fields = {k: _convert_field(name, k, v) for k, v in fields.items()}
    try:
        return _solver_class(name)(**fields)
    except (TypeError, ValueError) as e:
        raise CLIError(f"{name}({', '.join(f'{k}={v!r}' for k, v in fields_set.items())}): {e}") from None


def _solve_options(name, kind, solver, problem, solve_set, seed):
    _, defaults = _defaults(name, kind)
    opts = {**defaults, **solve_set}
    extra = {}
    family = _family(name)
    rtol, atol = opts.pop("rtol", None), opts.pop("atol", None)
    if family == "ode":
        n_save = opts.pop("n_save")
        try:
            check_int("n_save", n_save, 2, hint="It is the number of output times of the ODE solve.")
        except (TypeError, ValueError) as e:
            raise CLIError(str(e)) from None
        t0, t1 = (float(t) for t in problem.tspan)
        ts = np.linspace(t0, t1, n_save)
        opts["saveat"] = pds.SaveAt(ts=jnp.asarray(ts))
        extra["ts"] = ts
        if opts.get("dt0") is None and _adaptive(solver):
            opts["controller"] = pds.PIDController(
                rtol=1e-6 if rtol is None else rtol, atol=1e-8 if atol is None else atol
            )
        elif rtol is not None or atol is not None:
            if not _adaptive(solver):
                raise CLIError(
                    f"{name} has no embedded error estimate, so rtol/atol (a PIDController) "
                    f"do not apply; set a constant step with --set dt0=...; adaptive solvers: "
                    f"{', '.join(ADAPTIVE_ODE_SOLVERS)}."
                )
            opts["controller"] = pds.PIDController(
                rtol=1e-6 if rtol is None else rtol, atol=1e-8 if atol is None else atol
            )
        elif opts.get("dt0") is None:
            opts["dt0"] = (t1 - t0) / 1000  # constant steps: 1000 of them
    elif family == "NeuralIVP":
        if rtol is not None or atol is not None:
            opts["controller"] = pds.PIDController(
                rtol=1e-4 if rtol is None else rtol, atol=1e-4 if atol is None else atol
            )
        opts["key"] = jax.random.PRNGKey(seed)
    elif family == "mol":
        if opts.get("dt0") is None or rtol is not None or atol is not None:
            opts["controller"] = pds.PIDController(
                rtol=1e-6 if rtol is None else rtol, atol=1e-8 if atol is None else atol
            )
    else:
        opts["key"] = jax.random.PRNGKey(seed)
    return opts, extra
