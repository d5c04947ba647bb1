"""`EnsembleProblem`: many solves of one ODE problem as one compiled, vmapped program.

As SciML's `EnsembleProblem`: a base `NeuralODEProblem` plus either batches of `y0`/`args`
(leading axis = members) or a `prob_func(problem, index, key) -> problem`.
`solve(ensemble, solver, trajectories=N)` vmaps the member solves (one program, members
finishing at different times simply idle), optionally split over a `mesh`'s devices along
the member axis, and returns one batched `Solution`: every leaf — `ts`, `ys`, `result`,
`stats`, dense output and events — has the member axis first.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._problems import NeuralODEProblem, remake
from ._validation import check_int


class EnsembleProblem(eqx.Module):
    """An ensemble of solves of `problem`.

    **Arguments:**

    - `problem`: the base `NeuralODEProblem`.
    - `y0`: a batch of initial states (the base `y0`'s pytree with a leading member axis),
      or `None` to keep the base `y0`.
    - `args`: a batch of `args` (leading member axis on every array leaf), or `None`.
    - `prob_func`: `prob_func(problem, index, key) -> problem`, applied per member after
      `y0`/`args` (with `index` a traced integer and `key` the solve's `key` folded with
      it, or `None` without a key); it must keep the problem's structure (shapes, dtypes,
      `tspan` type). Needs `trajectories=` unless `y0`/`args` fix the count.

    The number of members comes from `y0`/`args` or from `solve(..., trajectories=N)`.
    """

    problem: NeuralODEProblem
    y0: Any = None
    args: Any = None
    prob_func: Callable | None = None

    def __check_init__(self):
        if not isinstance(self.problem, NeuralODEProblem):
            raise TypeError(
                f"EnsembleProblem(problem=...) must be a NeuralODEProblem; got {type(self.problem).__name__}. "
                "(PDE solvers run host loops; solve PDE ensembles one by one.)"
            )
        if self.prob_func is not None and not callable(self.prob_func):
            raise TypeError("EnsembleProblem(prob_func=...) must be callable `(problem, index, key) -> problem`.")

    def size(self) -> int | None:
        """Members given by the `y0`/`args` batches (their common leading size), or `None`."""
        sizes = set()
        for name, batch, base in (("y0", self.y0, self.problem.y0), ("args", self.args, self.problem.args)):
            if batch is None:
                continue
            leaves = jax.tree.leaves(batch)
            if not leaves:
                raise ValueError(f"EnsembleProblem({name}=...) has no arrays.")
            for leaf in leaves:
                if np.ndim(leaf) == 0:
                    raise ValueError(f"EnsembleProblem({name}=...) needs a leading member axis on every array.")
                sizes.add(int(np.shape(leaf)[0]))
            if name == "y0":
                # Any: jaxlib's PyTreeDef has no type stubs, and mypy cannot compare the unresolved type.
                want: Any = jax.tree.structure(base)
                if want != jax.tree.structure(batch):
                    raise ValueError(f"EnsembleProblem(y0=...) must have the base y0's structure {want}.")
                for b, y in zip(jax.tree.leaves(batch), jax.tree.leaves(base)):
                    if tuple(np.shape(b)[1:]) != tuple(np.shape(y)):
                        raise ValueError(
                            f"EnsembleProblem(y0=...): each member must have the base y0's shape "
                            f"{np.shape(y)}; got {np.shape(b)[1:]} (batch shape {np.shape(b)})."
                        )
        if len(sizes) > 1:
            raise ValueError(f"EnsembleProblem: the y0/args batches have different member counts {sorted(sizes)}.")
        return sizes.pop() if sizes else None


def _members(ensemble: EnsembleProblem, trajectories):
    n = ensemble.size()
    if trajectories is not None:
        trajectories = check_int("trajectories", trajectories, 1, hint="It is the number of ensemble members.")
        if n is not None and trajectories != n:
            raise ValueError(f"`trajectories`={trajectories} but the y0/args batches hold {n} members.")
        n = trajectories
    if n is None:
        raise ValueError("solve(EnsembleProblem(..., prob_func=...), solver, trajectories=N): give N.")
    return n


def solve_ensemble(ensemble: EnsembleProblem, solver, *, trajectories=None, key=None, mesh=None, throw=True,
                   solve_fn, **kwargs):
    """Solve every member (`solve(ensemble, ...)` lands here); returns a batched `Solution`."""
    n = _members(ensemble, trajectories)
    index = jnp.arange(n)
    batch = (index, ensemble.y0, ensemble.args)
    if mesh is not None:
        from ._sharding import check_batch, check_mesh, shard_leading

        mesh = check_mesh(mesh)
        check_batch(n, mesh, "the ensemble's members", "choose `trajectories` (or the batch sizes)")
        batch = shard_leading(batch, mesh)

    sol = _solve_members(ensemble, solver, key, batch, kwargs, solve_fn)
    if throw:
        from ._solve import _raise_if_failed

        _raise_if_failed(sol, ensemble.problem)
    return sol


@eqx.filter_jit
def _solve_members(ensemble, solver, key, batch, kwargs, solve_fn):
    """The vmapped member solves, compiled once per ensemble structure and options (a module
    level function, so that repeated solves of one ensemble reuse the program)."""

    def member(i, y0, args):
        prob = ensemble.problem
        if y0 is not None:
            prob = remake(prob, y0=y0)
        if args is not None:
            prob = remake(prob, args=args)
        if ensemble.prob_func is not None:
            prob = ensemble.prob_func(prob, i, None if key is None else jax.random.fold_in(key, i))
        return solve_fn(prob, solver, throw=False, **kwargs)

    return eqx.filter_vmap(member)(*batch)


def ensemble_summary(sol, quantiles=(0.05, 0.5, 0.95)) -> dict:
    """Mean, standard deviation and quantiles of a batched solution's saved states over its
    members (axis 0), counting only successful members; `ts` is the first member's (the
    saved times of `SaveAt(ts)` are shared). Returns a dict with `ts`, `mean`, `std`,
    `quantiles` (leading axis: one entry per requested quantile) and `num_successful`."""
    ok = np.asarray(sol.successful).reshape(-1)
    if ok.ndim != 1 or ok.size < 1:
        raise ValueError("ensemble_summary needs a batched Solution (from solve(EnsembleProblem(...), ...)).")
    if not ok.any():
        raise ValueError("ensemble_summary: no member of this ensemble succeeded (see sol.result).")
    q = np.asarray(quantiles, dtype=float)
    if q.ndim != 1 or np.any((q < 0) | (q > 1)):
        raise ValueError(f"`quantiles` must be a 1-D sequence of numbers in [0, 1]; got {quantiles!r}.")

    def over(f):
        return jax.tree.map(lambda y: f(np.asarray(y)[ok]), sol.ys)

    return dict(
        ts=np.asarray(sol.ts)[0],
        mean=over(lambda y: y.mean(axis=0)),
        std=over(lambda y: y.std(axis=0)),
        quantiles=over(lambda y: np.quantile(y, q, axis=0)),
        num_successful=int(ok.sum()),
    )
