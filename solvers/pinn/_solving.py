"""`pds.solve` for `DTPINN` and `PINN`: the shared prologue (options, node set, network),
each method's loss and data, then training and the `FieldSolution`."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from pdesolve._checkpoint import check_checkpoint, computation, describe, key_description, problem_computation
from pdesolve._flat import FlatParams
from pdesolve._geometry import PointCloud
from pdesolve._problems import PDEProblem
from pdesolve._recording_field import VALUE, record_operators
from pdesolve._results import RESULTS, result_message
from pdesolve._sharding import check_mesh, replicate, shard_rows
from pdesolve._solution import FieldSolution
from pdesolve._solve import register
from pdesolve._validation import check_int

from . import _training
from ._losses import AutodiffLoss, RBFFDLoss, _Objective
from ._setup import (
    _build_model,
    _check_boundary,
    _check_problem,
    _common_data,
    _error_function,
    _Evaluator,
    _node_set,
    _test_set,
    _time_slices,
    _value_shape,
    _with_boundary_on,
)
from ._solvers import DTPINN, PINN, _x64_error


@dataclasses.dataclass
class _Prologue:
    """What both solves start from: the checked options, the node set, the network."""

    problem: PDEProblem
    cloud: PointCloud
    model: Any
    out_shape: tuple
    max_steps: int
    checkpoint: Any
    mesh: Any
    t_start: float


def _prologue(problem, solver, dtype, *, max_steps, key, checkpoint, mesh) -> _Prologue:
    t_start = time.perf_counter()
    who = type(solver).__name__
    mesh = None if mesh is None else check_mesh(mesh)
    _check_problem(problem, who)
    checkpoint = check_checkpoint(checkpoint, who)
    max_steps = check_int("max_steps", max_steps, 1, hint="(the number of optimiser steps)")
    cloud = _node_set(problem, solver)
    problem = _with_boundary_on(problem, cloud)
    _check_boundary(problem, cloud, who)
    d = cloud.dim
    model = _build_model(solver, problem, _value_shape(problem, d, dtype), dtype, key)
    x = jax.ShapeDtypeStruct((d + (0 if problem.is_steady else 1),), dtype)
    out_shape = tuple(jax.eval_shape(model, x).shape)
    return _Prologue(problem, cloud, model, out_shape, max_steps, checkpoint, mesh, t_start)


@register(PDEProblem, DTPINN)
def _solve_dtpinn(
    problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, checkpoint=None,
    mesh=None,
):
    del saveat, dt0, controller
    if not jax.config.read("jax_enable_x64"):
        raise _x64_error("DTPINN")
    dtype = jnp.dtype(solver.network_dtype)
    pro = _prologue(problem, solver, dtype, max_steps=max_steps, key=key, checkpoint=checkpoint, mesh=mesh)
    problem, cloud, out_shape = pro.problem, pro.cloud, pro.out_shape
    d = cloud.dim

    # 1. Which operators does the equation use?
    if problem.is_steady:
        eq = problem.residual

        def pde_fn(u, x, n):
            return eq(u, x, problem.args)
    else:
        eq = problem.rhs
        t0 = float(problem.tspan[0])

        def pde_fn(u, x, n):
            return eq(u, x, t0, problem.args)

    pde_ops = record_operators(pde_fn, dim=d, shape=out_shape, dtype=dtype)
    bc_ops: frozenset = frozenset()
    if problem.bc is not None:
        bc = problem.bc
        t_rec = None if problem.is_steady else float(problem.tspan[0])
        # recorded through the residual (a MixedBC's operator depends on the point: every
        # piece's operators are recorded, and each node's rows select its piece)
        bc_ops = record_operators(
            lambda u, x, n: bc.residual(u, x, n, t_rec),
            dim=d,
            shape=out_shape,
            dtype=dtype,
            with_normal=True,
        )

    # 2. Assemble one RBF-FD matrix per operator (host, float64).
    from pdesolve._rbf_fd import assemble
    from pdesolve._sparse import EllMatrix

    ghost = solver.ghost and cloud.n_boundary > 0
    try:
        mats = assemble(
            cloud,
            sorted(op for op in pde_ops if op != VALUE),
            order=solver.order,
            boundary_operators=sorted(op for op in bc_ops if op != VALUE),
            ghost=ghost,
        )
    except ValueError as e:
        raise ValueError(
            f"DTPINN could not build its RBF-FD matrices (order={solver.order}) on "
            f"{cloud.n_interior + cloud.n_boundary} nodes: {e}"
        ) from e
    data = _common_data(problem, cloud, dtype)
    data["nodes"] = jnp.asarray(mats["nodes"], dtype=dtype)
    data["L"] = {op: EllMatrix.from_scipy(m, dtype=dtype) for op, m in mats["pde"].items()}
    data["B"] = {op: EllMatrix.from_scipy(m, dtype=dtype) for op, m in mats["boundary"].items()}
    if not problem.is_steady:
        data["times"] = _time_slices(problem, solver, dtype)

    params, static_model = eqx.partition(pro.model, eqx.is_inexact_array)
    loss = RBFFDLoss(
        static_model=static_model, equation=eq, bc=problem.bc, args=problem.args, steady=problem.is_steady,
        shape=out_shape,
        n_interior=cloud.n_interior, n_boundary=cloud.n_boundary,
        pde_ops=tuple(sorted(pde_ops)), bc_ops=tuple(sorted(bc_ops)),
    )
    extra = {
        "n_ghost": int(mats["nodes"].shape[0]) - cloud.n_interior - cloud.n_boundary,
        "operators": {"pde": sorted(pde_ops), "boundary": sorted(bc_ops)},
        "nnz_per_row": {str(op): int(m.cols.shape[1]) for op, m in {**data["L"], **data["B"]}.items()},
        "dtype": "float64",
    }
    return _train_and_finish(pro, solver, loss, params, static_model, data, dtype=dtype, progress=progress,
                             throw=throw, extra=extra, key=key)


@register(PDEProblem, PINN)
def _solve_pinn(
    problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, checkpoint=None,
    mesh=None,
):
    del saveat, dt0, controller
    dtype = jnp.dtype(solver.network_dtype)
    if dtype == jnp.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "PINN(dtype='float64') needs JAX's 64-bit mode: call "
            "`jax.config.update('jax_enable_x64', True)` at startup (or set JAX_ENABLE_X64=1), "
            "or use dtype='float32'."
        )
    pro = _prologue(problem, solver, dtype, max_steps=max_steps, key=key, checkpoint=checkpoint, mesh=mesh)
    problem, cloud = pro.problem, pro.cloud
    data = _common_data(problem, cloud, dtype)
    if not problem.is_steady:
        data["times"] = _time_slices(problem, solver, dtype)
    params, static_model = eqx.partition(pro.model, eqx.is_inexact_array)
    loss = AutodiffLoss(
        static_model=static_model, equation=problem.residual if problem.is_steady else problem.rhs,
        bc=problem.bc, args=problem.args, steady=problem.is_steady, shape=pro.out_shape, n_interior=cloud.n_interior, n_boundary=cloud.n_boundary,
    )
    return _train_and_finish(pro, solver, loss, params, static_model, data, dtype=dtype, progress=progress,
                             throw=throw, extra={"dtype": np.dtype(dtype).name}, key=key)


def _fingerprint(problem, solver, key, dtype, static_model, params):
    """What a checkpointed PINN run is: the problem and solver options, the key, and the traced
    computations of the equation and boundary condition (and of a user optimiser)."""
    x = jax.ShapeDtypeStruct((problem.dim + (0 if problem.is_steady else 1),), dtype)
    try:
        shape = tuple(jax.eval_shape(eqx.combine(params, static_model), x).shape)
    except Exception:  # noqa: BLE001 - the fingerprint must not fail
        shape = ()
    comp = problem_computation(problem, shape, dtype)
    if not isinstance(solver.optimizer, str):  # its hyperparameters are constants of its traced steps
        comp["solver.optimizer"] = computation(
            lambda y: optx.minimise(lambda y, a: jnp.sum((y - 1.0) ** 2), solver.optimizer, y,
                                    max_steps=2, throw=False).value,
            jax.ShapeDtypeStruct((3,), dtype),
        )
    return dict(problem=describe(problem), solver=describe(solver), key=key_description(key),
                dtype=np.dtype(dtype).name, computation=comp)


def _train_and_finish(pro: _Prologue, solver, loss, params, static_model, data, *, dtype, progress, throw, extra,
                      key=None):
    """Shared tail of DTPINN and PINN: test set, optimiser loop, `FieldSolution`.

    pdesolve never flips jax_enable_x64: a float32 PINN under x64 keeps the optimiser's
    vectors (L-BFGS history, O(p) work) in the default float and casts to float32 inside
    the objective, so every network evaluation and its gradient are float32.
    """
    problem, cloud, mesh, checkpoint = pro.problem, pro.cloud, pro.mesh, pro.checkpoint
    setup_time = time.perf_counter() - pro.t_start
    who = type(solver).__name__
    test_pts, test_desc = _test_set(problem, cloud, solver.n_test, dtype)
    error_fn = _error_function(problem, test_pts, dtype)
    flat_params = FlatParams.ravel(params).astype(jnp.result_type(float))
    if mesh is not None:  # rows split (evenly where they divide), parameters replicated
        data = shard_rows(data, mesh, replicated=("times",))
        flat_params = replicate(flat_params, mesh)
    params, info, result = _training._train(
        _Objective(loss, FlatParams.of(params, jnp.dtype(jax.tree.leaves(params)[0].dtype)), mesh),
        _training._optimiser(solver),
        flat_params,
        static_model,
        data,
        max_steps=pro.max_steps,
        chunk=solver.steps_per_dispatch,
        progress=progress,
        desc=who,
        error_fn=error_fn,
        checkpoint=checkpoint,
        fingerprint=None if checkpoint is None else _fingerprint(problem, solver, key, dtype, static_model, params),
    )
    extra = {
        "setup_time": setup_time,
        "n_nodes": cloud.n_interior + cloud.n_boundary,
        "n_interior": cloud.n_interior,
        "n_boundary": cloud.n_boundary,
        **extra,
    }
    return _finish(
        problem, solver, static_model, params, info, result, throw=throw, extra=extra,
        dtype=dtype, error_fn=error_fn, test_desc=test_desc, t_start=pro.t_start,
    )


def _finish(
    problem,
    solver,
    model_static,
    params,
    info,
    result,
    *,
    throw,
    extra,
    dtype,
    error_fn,
    test_desc,
    t_start,
):
    model = eqx.combine(params, model_static)
    stats = dict(info)
    stats.update(extra)
    loss_history = stats["loss_history"]
    final_loss = float(loss_history[-1]) if loss_history.size else float("nan")
    stats["final_loss"] = final_loss
    if error_fn is not None:
        stats["relative_l2_error"] = error_fn(model)
        stats["test_set"] = test_desc
        hist = stats["error_history"]
        if hist.size:
            best = int(np.nanargmin(hist)) if np.any(np.isfinite(hist)) else 0
            stats["best_relative_l2_error"] = float(hist[best])
            stats["time_to_best_error"] = float(stats["time_history"][best])
            stats["steps_to_best_error"] = int(stats["step_history"][best])
    res = RESULTS.promote(result)
    if loss_history.size and not np.isfinite(final_loss):
        res = RESULTS.nonfinite
    elif res == RESULTS.promote(optx.RESULTS.nonlinear_max_steps_reached):
        res = RESULTS.successful
    stats["wall_time"] = time.perf_counter() - t_start
    who = type(solver).__name__
    if throw and res != RESULTS.successful:
        raise RuntimeError(
            f"{who} training failed after {stats['num_steps']} steps: {result_message(res)} "
            "(pass throw=False to get the solution anyway)."
        )
    return FieldSolution(
        ts=None,
        ys=model,
        stats=stats,
        result=res,
        problem=problem,
        solver=solver,
        evaluator=_Evaluator(problem.is_steady, np.dtype(dtype).name),
    )
