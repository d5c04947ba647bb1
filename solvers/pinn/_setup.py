"""PINN set-up shared by `DTPINN` and `PINN`: the node set, the network, the test set and
its error, the solution's evaluator, and the training data."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pdesolve._boundary import MixedBC
from pdesolve._geometry import PointCloud
from pdesolve._problems import PDEProblem, remake
from pdesolve._validation import note_user_error


def _node_set(problem: PDEProblem, solver) -> PointCloud:
    if solver.nodes is not None:
        cloud = solver.nodes
        if cloud.dim != problem.dim:
            raise ValueError(
                f"`nodes` are {cloud.dim}-D but the problem's domain is {problem.dim}-D."
            )
        return cloud
    domain = problem.domain
    if isinstance(domain, PointCloud):
        return domain
    try:
        return domain.node_set(solver.n_nodes)
    except NotImplementedError as e:
        raise NotImplementedError(
            f"{type(solver).__name__} needs a node set, but the domain "
            f"{type(domain).__name__} cannot build one ({e}); pass `nodes=pds.PointCloud(...)`."
        ) from e


def _check_boundary(problem: PDEProblem, cloud: PointCloud, who: str) -> None:
    if problem.bc is not None and cloud.n_boundary == 0:
        raise ValueError(
            f"The problem has a boundary condition `bc`, but the node set has no boundary "
            f"nodes with outward normals, so {who} cannot enforce it (and has nowhere to put "
            "ghost nodes). Build the nodes with boundary points and unit normals: "
            "`pds.PointCloud(interior, boundary, normals)`, or use `domain.node_set(n)`."
        )


def _value_shape(problem: PDEProblem, dim: int, dtype) -> tuple:
    x = jax.ShapeDtypeStruct((dim,), dtype)
    u0, solution = problem.u0, problem.solution
    if not problem.is_steady:
        assert u0 is not None  # (PDEProblem requires u0 for an evolution problem)
        return tuple(jax.eval_shape(u0, x).shape)
    if solution is not None:
        return tuple(jax.eval_shape(lambda y: solution(y, None), x).shape)
    return ()


def _build_model(solver, problem, shape, dtype, key):
    d = problem.dim
    in_size = d if problem.is_steady else d + 1
    who = type(solver).__name__
    if solver.model is None:
        if key is None:
            key = jax.random.PRNGKey(0)
        out_size = "scalar" if shape == () else shape[0]
        return eqx.nn.MLP(
            in_size,
            out_size,
            solver.width,
            solver.depth,
            activation=jnp.tanh,
            dtype=dtype,
            key=key,
        )
    model = solver.model
    leaves = [x for x in jax.tree.leaves(model) if eqx.is_inexact_array(x)]
    if not leaves:
        raise ValueError("`model` has no floating-point parameters to train.")
    bad = {str(x.dtype) for x in leaves if x.dtype != dtype}
    if bad:
        if who == "DTPINN":
            raise ValueError(
                f"DTPINN trains in float64, but `model` has parameters of dtype {sorted(bad)}; "
                "build the network in float64 (e.g. `eqx.nn.MLP(..., dtype=jnp.float64)` with "
                "`jax_enable_x64` on)."
            )
        raise ValueError(
            f"`model` has parameters of dtype {sorted(bad)}, but PINN(dtype={np.dtype(dtype).name!r}) "
            "was asked for; build the network with that dtype or change `dtype`."
        )
    try:
        out = jax.eval_shape(model, jax.ShapeDtypeStruct((in_size,), dtype))
    except Exception as e:
        note_user_error(e, f"Calling `model` on one input of shape ({in_size},) "
                           f"({'x' if problem.is_steady else '(x, t)'})")
        raise
    if tuple(out.shape) not in ((), shape) and not (
        shape == () and len(out.shape) == 1
    ):
        raise ValueError(
            f"`model` returns shape {tuple(out.shape)} per point, but the problem's unknown has "
            f"shape {shape}."
        )
    return model


def _test_set(problem: PDEProblem, cloud: PointCloud, n_test: int, dtype):
    """Random interior + boundary points (float64 NumPy), or the nodes of a bare cloud."""
    domain = problem.domain
    if isinstance(domain, PointCloud) and domain.domain is not None:
        domain = domain.domain
    if isinstance(domain, PointCloud):
        return np.asarray(cloud.points), "training nodes"
    k1, k2 = jax.random.split(jax.random.PRNGKey(20221128))
    inner = np.asarray(domain.sample_interior(k1, n_test), dtype=np.float64)
    try:
        outer = np.asarray(
            domain.sample_boundary(k2, max(n_test // 8, 1))[0], dtype=np.float64
        )
    except (NotImplementedError, ValueError):
        outer = np.zeros((0, inner.shape[1]))
    return np.concatenate(
        [inner, outer], axis=0
    ), f"{n_test} random interior + {outer.shape[0]} boundary points"


def _test_inputs(problem, test_pts):
    """The network inputs of the test set (points, or points x 11 times for an evolution
    problem) and the exact solution there, as float64 host arrays."""
    if problem.is_steady:
        inputs = test_pts
        exact = np.asarray(
            jax.vmap(lambda x: problem.solution(x, None))(jnp.asarray(test_pts))
        )
    else:
        t0, t1 = (float(t) for t in problem.tspan)
        ts = np.linspace(t0, t1, 11)
        xs = np.repeat(test_pts, ts.size, axis=0)
        tt = np.tile(ts, test_pts.shape[0])
        inputs = np.concatenate([xs, tt[:, None]], axis=1)
        exact = np.asarray(jax.vmap(problem.solution)(jnp.asarray(xs), jnp.asarray(tt)))
    return inputs, exact


@eqx.filter_jit
def _batched(model, inputs):
    return jax.vmap(model)(inputs)


def _error_function(problem, test_pts, dtype):
    """``model -> relative L2 error`` against ``problem.solution`` on the test set."""
    if problem.solution is None:
        return None
    inputs, exact = _test_inputs(problem, test_pts)
    exact = exact.reshape(exact.shape[0], -1)
    norm = float(np.linalg.norm(exact))
    inputs_j = jnp.asarray(inputs, dtype=dtype)

    def error(model):
        pred = np.asarray(_batched(model, inputs_j), dtype=np.float64).reshape(
            exact.shape
        )
        return float(np.linalg.norm(pred - exact) / max(norm, 1e-300))

    return error


class _Evaluator(eqx.Module):
    """`sol(x)` (steady) or `sol(x, t)` for a trained network `sol.ys`, in its dtype."""

    steady: bool = eqx.field(static=True)
    dtype: str = eqx.field(static=True)

    def __call__(self, sol, x, t=None):
        dtype = self.dtype
        x = jnp.asarray(x, dtype=dtype)
        single = x.ndim == 1
        X = x[None] if single else x
        if self.steady:
            if t is not None:
                raise TypeError("This is a steady problem: call sol(x) without a time.")
            inputs = X
        else:
            if t is None:
                raise TypeError("This is an evolution problem: call sol(x, t).")
            t = jnp.broadcast_to(jnp.asarray(t, dtype=dtype), X.shape[:1])
            inputs = jnp.concatenate([X, t[:, None]], axis=1)
        out = _batched(sol.ys, inputs)
        return out[0] if single else out


def _check_problem(problem: PDEProblem, who: str) -> None:
    if problem.backward:
        raise NotImplementedError(
            f"{who} solves forward-in-time problems; `backward=True` is not supported."
        )


def _time_slices(problem, solver, dtype):
    t0, t1 = (float(t) for t in problem.tspan)
    return jnp.asarray(np.linspace(t0, t1, solver.time_slices), dtype=dtype)


def _with_boundary_on(problem, cloud):
    """`problem` with a `MixedBC`'s tags resolved against the node set, and its coverage of
    the boundary nodes checked."""
    if not isinstance(problem.bc, MixedBC):
        return problem
    bc = problem.bc.on(cloud)
    if cloud.n_boundary:
        bc.check_covers(cloud.boundary)
    return problem if bc is problem.bc else remake(problem, bc=bc)


def _common_data(problem, cloud, dtype):
    """Collocation rows, boundary points/normals (and slices, IC values for evolution)."""
    rows = jnp.asarray(cloud.points, dtype=dtype)
    data = {
        "rows": rows,
        "bpts": jnp.asarray(cloud.boundary, dtype=dtype),
        "bnormals": jnp.asarray(cloud.normals, dtype=dtype),
    }
    if not problem.is_steady:
        data["u0"] = jax.vmap(problem.u0)(rows).astype(dtype)
    return data
