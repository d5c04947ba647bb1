"""`solve`: one verb, dispatching on the (problem, solver) pair."""

import inspect
from collections.abc import Callable

import equinox as eqx
import jax
import numpy as np

from ._problems import AbstractProblem, NeuralODEProblem
from ._ensemble import EnsembleProblem, solve_ensemble
from ._events import check_events
from ._results import is_successful, result_message
from ._saveat import SaveAt
from ._validation import is_concrete

_REGISTRY: dict[tuple[type, type], Callable] = {}


class AbstractSolver(eqx.Module):
    """Base of every pdesolve solver: *how* to solve. Pass it to `pdesolve.solve`."""


def register(problem_type: type, solver_type: type):
    """Decorator registering the implementation of `solve` for a (problem, solver) pair.

    The implementation is called as `impl(problem, solver, saveat=..., dt0=...,
    controller=..., max_steps=..., throw=..., progress=..., key=..., **extra)`.
    Lookup walks both classes' MROs, so subclasses inherit implementations.
    """

    def wrap(fn):
        _REGISTRY[(problem_type, solver_type)] = fn
        return fn

    return wrap


def _lookup_types(problem_type: type, solver_type: type) -> Callable | None:
    for p in problem_type.__mro__:
        for s in solver_type.__mro__:
            fn = _REGISTRY.get((p, s))
            if fn is not None:
                return fn
    return None


def _lookup(problem, solver):
    return _lookup_types(type(problem), type(solver))


def _is_abstract(cls: type) -> bool:
    """Abstract in equinox's sense: unimplemented abstract methods, `AbstractVar`s or
    `AbstractClassVar`s (such a class cannot be instantiated)."""
    return any(getattr(cls, attr, ()) for attr in ("__abstractmethods__", "__abstractvars__", "__abstractclassvars__"))


def _solver_classes(base: type) -> list[type]:
    """The public, instantiable classes among `base` and its subclasses (definition order)."""
    found: list[type] = [] if _is_abstract(base) or base.__name__.startswith("_") else [base]
    subclasses: list[type] = base.__subclasses__()
    for sub in subclasses:
        found += [c for c in _solver_classes(sub) if c not in found]
    return found


def _solvers_for(problem_type: type) -> list[type]:
    """The instantiable solver classes `solve` dispatches to for `problem_type`, in
    registration order (registered classes and their subclasses)."""
    found: list[type] = []
    for p, s in _REGISTRY:
        if issubclass(problem_type, p):
            found += [c for c in _solver_classes(s) if c not in found]
    return found


def supported_solvers(problem_type: type) -> list[str]:
    """Names of the solver classes that can solve `problem_type`: the registered classes and
    their subclasses, abstract ones left out (read from the registry, so always current)."""
    return list(dict.fromkeys(c.__name__ for c in _solvers_for(problem_type)))


def _takes(impl: Callable, option: str) -> bool:
    params = inspect.signature(impl).parameters
    return option in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _solvers_taking(option: str) -> str:
    """Which solvers take the solver-specific `option`, per problem type (from the registry):
    e.g. "NeuralIVP, DTPINN, PINN (for PDEProblem)"; "" if none does."""
    parts = []
    for problem_type in dict.fromkeys(p for p, _ in _REGISTRY):
        impls = {c: _lookup_types(problem_type, c) for c in _solvers_for(problem_type)}
        names = dict.fromkeys(c.__name__ for c, impl in impls.items() if impl is not None and _takes(impl, option))
        if names:
            parts.append(f"{', '.join(names)} (for {problem_type.__name__})")
    return "; ".join(parts)


#: What the solver-specific options of `solve` are for, added to the error for a solver that
#: does not take one. Which solvers do take it is read from the registry (`_solvers_taking`).
_OPTION_HINTS = {
    "mesh": "`mesh=` splits a solve's samples over devices; a time-stepping ODE solve has no "
            "batch axis to split: split a batch of problems instead (jax.vmap over pds.solve with "
            "inputs placed by pds.shard_leading, or pds.train(..., mesh=...)); see docs/scaling.md.",
    "adjoint": "`adjoint=` chooses how a time-stepping solve is differentiated; see docs/gradients.md.",
    "checkpoint": "checkpoints are for long runs (also pds.train's, for neural-ODE training); see "
                  "docs/checkpoint.md.",
    "event": "events are located on the dense output of a time-stepping solve (a reversible "
             "solver's gradient has no rule for the event's interpolant); see docs/events.md.",
}


def _check_options(impl, solver, options) -> None:
    """Refuse solver-specific options the implementation does not take, naming them and the
    solvers that do take them."""
    for name in options:
        if _takes(impl, name):
            continue
        hint = _OPTION_HINTS.get(name, "")
        takers = _solvers_taking(name)
        if takers:
            hint += f"{' ' if hint else ''}Solvers taking `{name}`: {takers}."
        raise TypeError(
            f"{type(solver).__name__} does not take the option `{name}`"
            + (f": {hint}" if hint else ". Check the spelling; its solve options are listed in "
               f"help(pds.{type(solver).__name__}).")
        )


def solve(
    problem,
    solver,
    *,
    saveat: SaveAt | None = None,
    dt0=None,
    controller=None,
    max_steps: int = 4096,
    throw: bool = True,
    progress: bool = False,
    key=None,
    adjoint=None,
    event=None,
    trajectories=None,
    **options,
):
    """Solve `problem` with `solver`; returns a `pdesolve.Solution`.

    **Arguments:**

    - `problem`: a `NeuralODEProblem` or `PDEProblem`.
    - `solver`: e.g. `pds.Dopri5()`, `pds.ReversibleRK(...)`, `pds.NeuralIVP()`.
    - `saveat`: which times to return (default `SaveAt(t1=True)`).
    - `dt0`: initial (or constant) step size.
    - `controller`: a step-size controller; default `ConstantStepSize()` when `dt0` is
      given, otherwise an error asks for one of the two.
    - `max_steps`: bound on attempted steps (accepted + rejected); also sizes the
      `SaveAt(steps=True)` output and the default number of gradient checkpoints
      (`O(sqrt(max_steps))`).
    - `throw`: raise on failure (the default) or report it in `Solution.result`. For an
      ODE solve computed eagerly the error is a `RuntimeError` with the code's message,
      the time reached and the accepted/rejected steps; inside `jit`/`vmap`/`grad` it is
      raised by the program (`equinox.error_if`), with the code's message.
    - `progress`: show a tqdm progress bar (works inside `jit`; results are unchanged).
    - `key`: a JAX PRNG key for solvers that sample (NeuralIVP, PINNs).
    - `adjoint`: how time-stepping solvers are differentiated: `RecursiveCheckpointAdjoint()`
      (default for explicit RK), `DirectAdjoint()` (forward and reverse mode: `jax.jvp`,
      `jax.jacfwd`, `jax.hessian`), `ForwardMode()`, `ReversibleAdjoint()` (default for
      reversible solvers), `DiscreteAdjoint()` (default for `IMEXRK`). A solver refuses an
      adjoint it cannot use, naming those it can (docs/gradients.md).
    - `event`: a `pds.Event` or a sequence of them (explicit RK and `IMEXRK` solves): stop
      at (or record) the zero crossings of a condition of the state, located on the dense
      output; see `sol.event_time`, `sol.event_state`, `sol.event_times` and docs/events.md.
    - `trajectories`: for a `pds.EnsembleProblem`, the number of members (needed with a
      `prob_func` alone); an ensemble is solved as one vmapped program (split over
      `mesh=`'s devices when given) and returns a batched `Solution` (docs/ensembles.md).
    - `options`: further solver-specific keyword arguments.

    Differentiable with `jax.grad` / `eqx.filter_grad` w.r.t. everything in `problem`;
    each solver documents how it computes gradients. The returned `Solution` is a pytree:
    it can be returned from `jax.jit`- and `jax.vmap`-ed functions (with per-member
    `result` and `stats` under `vmap`).
    """
    if isinstance(problem, EnsembleProblem):
        if not isinstance(solver, AbstractSolver):
            raise TypeError(f"`solver` must be a pdesolve solver instance, e.g. pds.Dopri5(); got {solver!r}.")
        return solve_ensemble(problem, solver, trajectories=trajectories, key=key, mesh=options.pop("mesh", None),
                              throw=throw, solve_fn=solve, saveat=saveat, dt0=dt0, controller=controller,
                              max_steps=max_steps, progress=progress, adjoint=adjoint, event=event, **options)
    if trajectories is not None:
        raise TypeError("`trajectories` is for ensembles: solve(pds.EnsembleProblem(problem, ...), solver, "
                        "trajectories=N).")
    if not isinstance(problem, AbstractProblem):
        raise TypeError(
            f"`problem` must be a pdesolve problem (NeuralODEProblem, PDEProblem); got "
            f"{type(problem).__name__}."
        )
    if not isinstance(solver, AbstractSolver):
        raise TypeError(
            f"`solver` must be a pdesolve solver instance, e.g. pds.Dopri5(); got {solver!r}."
        )
    impl = _lookup(problem, solver)
    if impl is None:
        valid = supported_solvers(type(problem))
        raise TypeError(
            f"{type(solver).__name__} cannot solve a {type(problem).__name__}. Solvers for "
            f"{type(problem).__name__}: {', '.join(valid) if valid else 'none registered'}."
        )
    if adjoint is not None:
        options = dict(options, adjoint=adjoint)
    if event is not None:
        options = dict(options, event=check_events(event))
    _check_options(impl, solver, options)
    if saveat is None:
        saveat = SaveAt(t1=True)
    elif not isinstance(saveat, SaveAt):
        raise TypeError(f"`saveat` must be a pdesolve.SaveAt; got {type(saveat).__name__}.")
    # An ODE solve is run with throw=False and its result checked here: computed eagerly, a
    # failure raises from Python saying where it stopped; traced (inside jit/vmap/grad, also
    # through a vector field that closes over traced values), it raises inside the program
    # (`Solution.result.error_if`) with the code's message.
    eager = throw and isinstance(problem, NeuralODEProblem)
    try:
        sol = impl(
            problem,
            solver,
            saveat=saveat,
            dt0=dt0,
            controller=controller,
            max_steps=max_steps,
            throw=throw and not eager,
            progress=progress,
            key=key,
            **options,
        )
    except (TypeError, ValueError) as e:
        _note_autodiff_mode(e, solver)
        raise
    if eager:
        if is_concrete(sol.result):
            _raise_if_failed(sol, problem)
        else:
            # (The code is never differentiated: it may leave a custom VJP as a perturbed value.)
            result = jax.lax.stop_gradient(sol.result)
            ts, ys, stats = result.error_if((sol.ts, sol.ys, sol.stats), ~is_successful(result))
            sol = eqx.tree_at(lambda s: (s.ts, s.ys, s.stats), sol, (ts, ys, stats))
    return sol


def _raise_if_failed(sol, problem) -> None:
    """Raise the failure of an eagerly computed ODE solve, naming the time and step reached."""
    failed = np.asarray(~is_successful(sol.result))
    if not failed.any():
        return
    stats = sol.stats
    where = ""
    if failed.ndim == 0 and "t_final" in stats:
        where = (
            f" The solve stopped at t = {float(stats['t_final']):.6g} of tspan = "
            f"({float(problem.tspan[0]):.6g}, {float(problem.tspan[1]):.6g}), after "
            f"{int(stats['num_accepted_steps'])} accepted and {int(stats['num_rejected_steps'])} "
            "rejected steps."
        )
    if failed.ndim == 0:
        message = result_message(sol.result)
    else:  # a batched problem: name the first failed member
        i = tuple(int(k) for k in np.argwhere(failed)[0])
        member = jax.tree.map(lambda v: v[i], sol.result)
        message = f"{int(failed.sum())} of {failed.size} members failed; member {i}: {result_message(member)}"
    raise RuntimeError(
        f"{message}{where} Pass throw=False to get the partial solution and its `result`."
    )


def _note_autodiff_mode(e: Exception, solver) -> None:
    """Name the `adjoint=` that makes the requested autodiff mode work."""
    msg = str(e)
    if "forward-mode" in msg and "custom_vjp" in msg:
        e.add_note(
            f"pdesolve: forward-mode autodiff (jax.jvp, jax.jacfwd) through {type(solver).__name__} "
            "needs solve(..., adjoint=pds.DirectAdjoint()) (forward and reverse mode, also "
            "jax.hessian) or adjoint=pds.ForwardMode() (forward only, cheapest); the default "
            "adjoint is reverse mode only. See docs/gradients.md."
        )
