"""Physics-informed neural networks for `PDEProblem`: `DTPINN` (RBF-FD) and `PINN` (autodiff).

Both solvers train one network ``u_w(x)`` (steady problems) or ``u_w(x, t)`` (evolution
problems) to make the user's equation and boundary condition hold at a fixed node set, by
minimising the mean squared residuals with L-BFGS (optimistix). They differ in how the spatial
derivatives inside the loss are computed:

* `DTPINN` (discretely trained PINN, Sharma & Shankar, NeurIPS 2022): every linear spatial
  operator in the equation (Laplacian, partials, normal derivative) is replaced by a sparse
  RBF-FD differentiation matrix of design order ``p`` (polyharmonic splines + polynomials,
  stencils of ``2 C(p + theta - 1 + d, d) + 1`` nearest nodes), applied to the network's values
  at the nodes with one sparse product per operator. Ghost nodes outside the boundary make
  boundary stencils less one-sided and let the PDE be enforced on the boundary too. The loss is

      mean_{interior+boundary} |L u - f|^2 + mean_{boundary} |B u - g|^2,

  written through the user's pointwise equation (nonlinear terms act pointwise on the
  discrete values). Evolution problems use autodiff in time (one forward-mode JVP) and RBF-FD
  in space over ``time_slices`` time levels, plus an initial-condition term.
* `PINN` (vanilla): the same network and loss with every derivative by automatic
  differentiation (forward-over-forward Laplacian of the network).

Cost per loss evaluation with N nodes, P network parameters and n-point stencils: DTPINN one
forward pass over N_i + 2 N_b nodes (O(N P)) plus O(N n) per operator for the sparse products;
the reverse pass the same again. PINN pays about (1 + 2d) forward-mode passes for a Laplacian
per point (second-order JVPs along each coordinate), i.e. several times more per iteration, and
more again in float64.

Reference: R. Sharma, V. Shankar, *Accelerated training of physics-informed neural networks
(PINNs) using meshless discretizations*, NeurIPS 2022.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx

from pdesolve._checkpoint import check_checkpoint, computation, describe, key_description, problem_computation
from pdesolve._boundary import MixedBC
from pdesolve._driver import AbstractRun, Advanced, Progress, drive
from pdesolve._field import Field
from pdesolve._flat import FlatParams
from pdesolve._geometry import PointCloud
from pdesolve._problems import PDEProblem, remake
from pdesolve._recording_field import VALUE, evaluate_pointwise, record_operators
from pdesolve._results import RESULTS
from pdesolve._sharding import check_mesh, constrain_rows, replicate, shard_rows
from pdesolve._solution import FieldSolution
from pdesolve._solve import AbstractSolver, register
from pdesolve._validation import note_user_error

__all__ = ["DTPINN", "PINN"]

_OPTIMIZERS = ("lbfgs", "adam")


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _check_int(obj, name: str, minimum: int) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")


def _check_real(obj, name: str, *, positive: bool) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.") from None
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        raise ValueError(
            f"`{name}` must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}."
        )


def _check_common(solver) -> None:
    for name, minimum in (
        ("width", 1),
        ("depth", 0),
        ("n_nodes", 1),
        ("time_slices", 2),
        ("history_length", 1),
        ("n_test", 1),
        ("steps_per_dispatch", 1),
    ):
        _check_int(solver, name, minimum)
    _check_real(solver, "learning_rate", positive=True)
    _check_real(solver, "rtol", positive=False)
    _check_real(solver, "atol", positive=False)
    opt = solver.optimizer
    if isinstance(opt, str):
        if opt not in _OPTIMIZERS:
            raise ValueError(
                f"`optimizer` must be one of {_OPTIMIZERS} or an optimistix minimiser "
                f"(e.g. optx.BFGS(rtol, atol)); got {opt!r}."
            )
    elif not isinstance(opt, optx.AbstractMinimiser):
        raise TypeError(
            f"`optimizer` must be 'lbfgs', 'adam' or an optimistix minimiser instance; got "
            f"{type(opt).__name__}."
        )
    if solver.model is not None and not callable(solver.model):
        raise TypeError(
            f"`model` must be a callable network (an equinox module mapping one input point to "
            f"the value), got {type(solver.model).__name__}."
        )
    if solver.nodes is not None and not isinstance(solver.nodes, PointCloud):
        raise TypeError(
            f"`nodes` must be a pds.PointCloud (interior nodes, boundary nodes, outward "
            f"normals), got {type(solver.nodes).__name__}."
        )


def _x64_error(who: str) -> ValueError:
    return ValueError(
        f"{who} trains in float64 (RBF-FD weights lose their accuracy in float32, and the "
        "paper's speed-up is for float64 training), but JAX's 64-bit mode is off. Enable it at "
        "the start of your program with `jax.config.update('jax_enable_x64', True)` (or set "
        "the environment variable JAX_ENABLE_X64=1 before importing JAX)."
    )


# ---------------------------------------------------------------------------------------------
# the solvers
# ---------------------------------------------------------------------------------------------


class DTPINN(AbstractSolver):
    """Discretely-trained PINN: spatial derivatives by sparse RBF-FD matrices, float64, L-BFGS.

    Solves a `pds.PDEProblem` (steady `residual=`, or evolution `rhs=` with `u0`, `tspan`) on
    its domain's quasi-uniform node set (`domain.node_set(n_nodes)`) or on the `nodes` given.

    **Method** (Sharma & Shankar 2022). The equation is traced once on a recording field to
    find the linear operators it uses (`u.laplacian`, `u.partial(i[, j])`, `u.grad`,
    `u.hessian`, `u.normal_derivative(n)`, `u.value`); one RBF-FD matrix is assembled per
    operator on the nodes plus one ghost node outside each boundary node (PDE rows at interior
    and boundary nodes: (N_i + N_b) x (N_i + 2 N_b); boundary-condition rows at boundary nodes:
    N_b x (N_i + 2 N_b)). Training minimises

        mean_i |residual(u_i)|^2 + mean_b |B u_b - g_b|^2

    where the field at node i returns `(L_op @ u_nodes)[i]` for each operator, so nonlinear
    terms act pointwise. Evolution problems `u_t = rhs(u, x, t)`: the network takes `(x, t)`,
    `u_t` comes from a forward-mode JVP in t, the spatial operators from RBF-FD at each of
    `time_slices` equally spaced times in `tspan` (both ends included); the loss adds
    `mean |u(x, t0) - u0(x)|^2` and averages PDE and boundary residuals over all slices.

    **Arguments:**

    - `order`: RBF-FD design order p (default 4; the paper uses 2-5). Stencils have
      `2 C(p + theta - 1 + d, d) + 1` nodes (43 for the 2-D Laplacian at p = 4).
    - `model`: an equinox network mapping one input (`(d,)`, or `(d + 1,)` = `(x, t)` for
      evolution problems) to `()` or `(k,)`, with float64 parameters; default: an MLP.
    - `width`, `depth`: hidden width and number of hidden layers of the default tanh MLP
      (50 and 4, as in the paper).
    - `optimizer`: `"lbfgs"` (default; `optx.LBFGS` with backtracking Armijo line search),
      `"adam"` (`optx.OptaxMinimiser(optax.adam(learning_rate))`), or any optimistix minimiser.
    - `learning_rate`: Adam's step size (default 1e-3; unused by L-BFGS).
    - `n_nodes`: about how many nodes `domain.node_set` builds (default 828, as in the paper).
    - `nodes`: a `pds.PointCloud` (interior nodes, boundary nodes with outward unit normals)
      to use instead.
    - `time_slices`: number of time levels for evolution problems (default 25, the paper's
      heat problem).
    - `rtol`, `atol`: stopping tolerances (optimistix's Cauchy test on the loss and the
      parameters); the defaults are tiny, so training normally runs `max_steps` iterations.
    - `history_length`: L-BFGS memory (default 10).
    - `ghost`: append ghost nodes (default True).
    - `n_test`: size of the random test set for `stats["relative_l2_error"]` (default 4096
      interior points plus an eighth as many boundary points).
    - `steps_per_dispatch`: optimiser steps per compiled call (default 50); the progress bar,
      loss history and test error history are updated between calls.

    `pds.solve(problem, DTPINN(), max_steps=..., key=..., progress=..., throw=...)`:
    `max_steps` is the number of optimiser steps (one loss and gradient evaluation each;
    L-BFGS line-search trials count as steps); `key` initialises the default network.
    `checkpoint=pds.Checkpoint(...)` saves every K optimiser steps and resumes bit for bit
    (docs/checkpoint.md); `mesh=` a `jax.sharding.Mesh` splits the collocation rows, nodes
    and sparse-matrix rows over its devices, parameters replicated (docs/scaling.md).

    **Returns** a `pds.FieldSolution`: `sol(x)` (steady) / `sol(x, t)`;
    `ys` the trained network; `stats` with `loss_history` (the loss of the last accepted
    iterate after every step), `num_steps`, `num_accepted_steps`, `converged`,
    `relative_l2_error` (when the problem has `solution=`), `error_history`/`time_history`/
    `step_history` (test error and cumulative training time after each dispatch),
    `best_relative_l2_error`, `time_to_best_error`, `setup_time` (node set and matrices),
    `compile_time`, `train_time`, `wall_time`, `n_nodes`, `n_ghost`, `operators`.
    Reaching `max_steps` is the normal end of training and counts as `RESULTS.successful`;
    a non-finite loss gives `RESULTS.nonfinite`.

    **Why float64.** RBF-FD weights of order p >= 3 cancel large terms (their entries grow
    like h^(-theta)); in float32 the discrete Laplacian of a smooth field loses several digits.
    In float64 the sparse products are cheap enough that DT-PINNs train faster than float32
    autodiff PINNs (the paper's central observation). `jax_enable_x64` must be on; DTPINN never
    turns it on itself.

    **Cost** per step with N nodes, P parameters: one network forward and backward pass over
    N + N_b nodes (O(N P)) plus O(N n) per operator for the gather-sum sparse products (ELL
    format, matrices passed as arguments to the compiled step). Setup: O(N n^3) for the
    local RBF-FD systems. Compare `PINN`, whose forward-over-forward Laplacian costs several
    network passes per point.

    **Limits.** First and second spatial derivatives only (third derivatives raise and point
    to `PINN`); normals are needed at boundary nodes (for ghost nodes and normal derivatives);
    accuracy follows the node spacing h as O(h^p) in the derivatives.

    Reference: R. Sharma, V. Shankar, *Accelerated training of physics-informed neural
    networks (PINNs) using meshless discretizations*, NeurIPS 2022.
    """

    order: int = 4
    model: Any = None
    width: int = 50
    depth: int = 4
    optimizer: Any = "lbfgs"
    learning_rate: float = 1e-3
    n_nodes: int = 828
    nodes: PointCloud | None = None
    time_slices: int = 25
    rtol: float = 1e-13
    atol: float = 1e-13
    history_length: int = 10
    ghost: bool = True
    n_test: int = 4096
    steps_per_dispatch: int = 50

    def __check_init__(self):
        _check_int(self, "order", 1)
        _check_common(self)
        if not isinstance(self.ghost, bool):
            raise TypeError(f"`ghost` must be True or False, got {self.ghost!r}.")


class PINN(AbstractSolver):
    """Vanilla physics-informed neural network: every derivative by automatic differentiation.

    The baseline of Sharma & Shankar 2022: the same network, loss, node set and optimiser as
    `DTPINN`, but the user's equation is evaluated on a `pds.Field` of the network at each
    collocation point (Laplacian by forward-over-forward JVPs, normal derivatives by one JVP;
    time derivatives by a JVP in t). Collocation points: the node set (interior and boundary
    nodes; no ghost nodes).

    **Arguments:** as `DTPINN` (no `order`, `ghost`), plus

    - `dtype`: `"float32"` (default, the usual PINN precision) or `"float64"` (needs
      `jax_enable_x64`).

    Any equation a `pds.Field` supports works, including derivatives of order three or more.
    **Cost** per point and step: about (1 + 2d) forward-mode network passes for a Laplacian in
    d dimensions, plus the reverse pass through them; float64 roughly doubles it on CPUs.

    solve options as `DTPINN`: `max_steps`, `key`, `progress`, `throw`, `checkpoint`, `mesh`.

    Reference: M. Raissi, P. Perdikaris, G. E. Karniadakis, *Physics-informed neural networks*,
    J. Comput. Phys. 378 (2019); the comparison setting of Sharma & Shankar, NeurIPS 2022.
    """

    model: Any = None
    width: int = 50
    depth: int = 4
    dtype: Any = "float32"
    optimizer: Any = "lbfgs"
    learning_rate: float = 1e-3
    n_nodes: int = 828
    nodes: PointCloud | None = None
    time_slices: int = 25
    rtol: float = 1e-13
    atol: float = 1e-13
    history_length: int = 10
    n_test: int = 4096
    steps_per_dispatch: int = 50

    def __check_init__(self):
        _check_common(self)
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            raise TypeError(
                f"`dtype` must be 'float32' or 'float64', got {self.dtype!r}."
            ) from None
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(
                f"`dtype` must be 'float32' or 'float64', got {self.dtype!r}."
            )


# ---------------------------------------------------------------------------------------------
# the losses (equinox modules: their non-array fields are static under filter_jit, so one
# compiled training step serves every solve of the same problem and configuration)
# ---------------------------------------------------------------------------------------------


def _append_time(x, t):
    return jnp.concatenate([x, jnp.reshape(t, (1,)).astype(x.dtype)])


def _mean_square(r):
    return jnp.mean(jnp.square(r))


class _Loss(eqx.Module):
    static_model: Any
    equation: Callable
    bc: Any
    args: Any
    steady: bool = eqx.field(static=True)
    shape: tuple = eqx.field(static=True)
    n_interior: int = eqx.field(static=True)
    n_boundary: int = eqx.field(static=True)
    discrete: bool = eqx.field(static=True)
    pde_ops: tuple = eqx.field(static=True)
    bc_ops: tuple = eqx.field(static=True)

    @property
    def n_rows(self):
        return self.n_interior + self.n_boundary

    # -- DT-PINN: operators applied with sparse matrices ------------------------------------

    def _apply(self, mats, ops, U, lo, hi):
        """{op: op applied to U} for one node axis in front: sparse matrices, or U[lo:hi]."""
        out = {}
        for op in ops:
            out[op] = U[lo:hi] if op == VALUE else mats[op] @ U
        return out

    def _dt_steady(self, model, data):
        U = jax.vmap(model)(data["nodes"])
        arrays = self._apply(data["L"], self.pde_ops, U, 0, self.n_rows)
        res = evaluate_pointwise(
            lambda u, x, n: self.equation(u, x, self.args),
            arrays,
            data["rows"],
            shape=self.shape,
        )
        loss = _mean_square(res)
        if self.bc is not None:
            arrays = self._apply(
                data["B"], self.bc_ops, U, self.n_interior, self.n_rows
            )
            bres = evaluate_pointwise(
                lambda u, x, n: self.bc.residual(u, x, n, None),
                arrays,
                data["bpts"],
                data["bnormals"],
                shape=self.shape,
            )
            loss = loss + _mean_square(bres)
        return loss

    def _dt_evolution(self, model, data):
        times, nodes = data["times"], data["nodes"]

        def net(ts):  # (S,) -> (S, n_cols, *shape)
            return jax.vmap(
                lambda t: jax.vmap(lambda x: model(_append_time(x, t)))(nodes)
            )(ts)

        U, Ut = jax.jvp(net, (times,), (jnp.ones_like(times),))
        Un = jnp.moveaxis(
            U, 1, 0
        )  # (n_cols, S, *shape): node axis first for the products

        def slices_first(arrays):  # {op: (rows, S, ...)} -> {op: (S, rows, ...)}
            return {op: jnp.moveaxis(a, 0, 1) for op, a in arrays.items()}

        arrays = slices_first(self._apply(data["L"], self.pde_ops, Un, 0, self.n_rows))
        rhs = jax.vmap(
            lambda t, arr: evaluate_pointwise(
                lambda u, x, n: self.equation(u, x, t, self.args),
                arr,
                data["rows"],
                shape=self.shape,
            )
        )(times, arrays)
        loss = _mean_square(Ut[:, : self.n_rows] - rhs)
        loss = loss + _mean_square(U[0, : self.n_rows] - data["u0"])
        if self.bc is not None:
            arrays = slices_first(
                self._apply(data["B"], self.bc_ops, Un, self.n_interior, self.n_rows)
            )
            bres = jax.vmap(
                lambda t, arr: evaluate_pointwise(
                    lambda u, x, n: self.bc.residual(u, x, n, t),
                    arr,
                    data["bpts"],
                    data["bnormals"],
                    shape=self.shape,
                )
            )(times, arrays)
            loss = loss + _mean_square(bres)
        return loss

    # -- vanilla PINN: autodiff fields ------------------------------------------------------

    def _ad_steady(self, model, data):
        res = jax.vmap(lambda x: self.equation(Field(model, x), x, self.args))(
            data["rows"]
        )
        loss = _mean_square(res)
        if self.bc is not None:
            bres = jax.vmap(lambda x, n: self.bc.residual(Field(model, x), x, n, None))(
                data["bpts"], data["bnormals"]
            )
            loss = loss + _mean_square(bres)
        return loss

    def _ad_evolution(self, model, data):
        times = data["times"]

        def at_time(t):
            return lambda y: model(_append_time(y, t))

        def pde_point(x, t):
            u_t = jax.jvp(
                lambda s: model(_append_time(x, s)), (t,), (jnp.ones_like(t),)
            )[1]
            return u_t - self.equation(Field(at_time(t), x), x, t, self.args)

        res = jax.vmap(lambda t: jax.vmap(lambda x: pde_point(x, t))(data["rows"]))(
            times
        )
        loss = _mean_square(res)
        u_start = jax.vmap(lambda x: model(_append_time(x, times[0])))(data["rows"])
        loss = loss + _mean_square(u_start - data["u0"])
        if self.bc is not None:
            bres = jax.vmap(
                lambda t: jax.vmap(
                    lambda x, n: self.bc.residual(Field(at_time(t), x), x, n, t)
                )(data["bpts"], data["bnormals"])
            )(times)
            loss = loss + _mean_square(bres)
        return loss

    def __call__(self, params, data):
        model = eqx.combine(params, self.static_model)
        if self.discrete:
            return (
                self._dt_steady(model, data)
                if self.steady
                else self._dt_evolution(model, data)
            )
        return (
            self._ad_steady(model, data)
            if self.steady
            else self._ad_evolution(model, data)
        )


class _Objective(eqx.Module):
    """``(flat params, data) -> (loss, None)``: the function optimistix minimises."""

    loss: _Loss
    # The parameters pass through the optimiser as ONE flat vector: L-BFGS keeps histories
    # of the iterate and does tree-wide dot products; on one vector that is one fused op per
    # update instead of one per leaf (roughly halves the step's compile time). Unravelled in
    # the network's arithmetic dtype.
    flat: FlatParams
    mesh: Any = eqx.field(static=True, default=None)  # split the rows of `data` over it

    def __call__(self, y, data):
        # Rows (collocation points, nodes, sparse-matrix rows) split over `mesh`, also where
        # their count is not a multiple of the device count; GSPMD all-reduces the means.
        data = constrain_rows(data, self.mesh, replicated=("times",))
        # The network runs in its own dtype; the optimiser's iterate may be wider (a float32
        # PINN under x64 keeps its L-BFGS vectors in float64, its arithmetic in float32).
        return self.loss(self.flat.unravel(y), data).astype(y.dtype), None


# ---------------------------------------------------------------------------------------------
# training loop: optimistix init / step / terminate, several steps per compiled call
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _make_optimiser(
    name: str, learning_rate: float, rtol: float, atol: float, history: int
):
    # Cached so that equal configurations give the identical object (jit cache hits).
    if name == "lbfgs":
        return optx.LBFGS(rtol=rtol, atol=atol, history_length=history)
    return optx.OptaxMinimiser(optax.adam(learning_rate), rtol=rtol, atol=atol)


def _optimiser(solver):
    if isinstance(solver.optimizer, str):
        return _make_optimiser(
            solver.optimizer,
            float(solver.learning_rate),
            float(solver.rtol),
            float(solver.atol),
            int(solver.history_length),
        )
    return solver.optimizer


def _state_loss(state):
    """The loss of the current iterate held in an optimistix minimiser state."""
    f_info = getattr(state, "f_info", None)
    if f_info is not None and hasattr(f_info, "f"):
        return f_info.f
    return state.f


def _init_full_state(objective, optimiser, params, data):
    f_struct = jax.ShapeDtypeStruct((), jax.tree.leaves(params)[0].dtype)
    return optimiser.init(objective, params, data, {}, f_struct, None, frozenset())


@eqx.filter_jit
def _init_state(objective, optimiser, params, data):
    state = _init_full_state(objective, optimiser, params, data)
    return eqx.partition(state, eqx.is_array)[0]


@eqx.filter_jit
def _run_chunk(objective, optimiser, params, state_dyn, data, n, chunk):
    """Up to ``n`` (<= chunk, traced) optimiser steps; returns the per-step losses."""
    _, state_static = eqx.partition(
        _init_full_state(objective, optimiser, params, data), eqx.is_array
    )
    dtype = jax.tree.leaves(params)[0].dtype
    tags = frozenset()

    def cond(carry):
        i, _, _, _, done = carry
        return (i < n) & jnp.logical_not(done)

    def body(carry):
        i, y, dyn, hist, _ = carry
        state = eqx.combine(dyn, state_static)
        y, state, _ = optimiser.step(objective, y, data, {}, state, tags)
        done, _ = optimiser.terminate(objective, y, data, {}, state, tags)
        hist = hist.at[i].set(_state_loss(state).astype(dtype))
        return i + 1, y, eqx.partition(state, eqx.is_array)[0], hist, done

    hist = jnp.full((chunk,), jnp.nan, dtype)
    carry = (jnp.array(0), params, state_dyn, hist, jnp.array(False))
    i, params, state_dyn, hist, _ = jax.lax.while_loop(cond, body, carry)
    state = eqx.combine(state_dyn, state_static)
    done, result = optimiser.terminate(objective, params, data, {}, state, tags)
    accepted = getattr(state, "num_accepted_steps", i)
    return params, state_dyn, hist, i, done, result, accepted


@eqx.filter_jit
def _batched(model, inputs):
    return jax.vmap(model)(inputs)


def _train(objective, optimiser, params, static_model, data, *, max_steps, chunk, progress, desc, error_fn,
           checkpoint=None, fingerprint=None):
    """Run the optimiser (a long run of `pdesolve._driver`); returns final params, a dict of
    histories and counters, and the optimiser's verdict.

    With a `Checkpoint`, compiled chunks end at multiples of `checkpoint.every` and the
    state (flat parameters, optimiser state, histories) is saved there and at the end; a
    resumed run continues from the saved state bit for bit.
    """
    run = _PINNRun(objective, optimiser, params, static_model, data, chunk, error_fn)
    record = drive(run, budget=max_steps, chunk=chunk, checkpoint=checkpoint, fingerprint=fingerprint,
                   progress=Progress(max_steps) if progress else None, desc=desc)
    info = {
        "loss_history": np.concatenate(run.losses) if run.losses else np.zeros((0,)),
        "num_steps": record.steps,
        "num_accepted_steps": run.accepted,
        "converged": run.converged,
        "compile_time": record.compile_time,
        "train_time": record.run_time,
        "step_history": np.asarray(run.steps),
        "time_history": np.asarray(run.times),
        "resumed_from_step": record.resumed_from,
    }
    if error_fn is not None:
        info["error_history"] = np.asarray(run.errors)
    return objective.flat.unravel(run.params), info, run.result


class _PINNRun(AbstractRun):
    """The optimistix minimiser's steps as a long run: chunks of `_run_chunk`, with the test
    error measured after each chunk; stops when the minimiser terminates (converged or
    failed) or a chunk ends early."""

    kind: ClassVar[str] = "pinn"

    def __init__(self, objective, optimiser, params, static_model, data, chunk, error_fn):
        self.objective, self.optimiser, self.static_model, self.data = objective, optimiser, static_model, data
        self.chunk, self.error_fn = chunk, error_fn
        self.params = params
        self.state_dyn = _init_state(objective, optimiser, params, data)
        self.losses: list[np.ndarray] = []
        self.errors: list[float] = []
        self.times: list[float] = []
        self.steps: list[int] = []
        self.accepted, self.converged, self.finished = 0, False, False
        self.result = optx.RESULTS.successful

    def _chunk(self, n):
        return _run_chunk(self.objective, self.optimiser, self.params, self.state_dyn, self.data, jnp.array(n),
                          self.chunk)

    def compile(self):
        jax.block_until_ready(self._chunk(0))  # a zero-step call compiles without training

    def advance(self, n, record):
        del record
        self.params, self.state_dyn, hist, i, done, self.result, acc = self._chunk(n)
        i = int(i)
        hist = np.asarray(hist)[:i]
        self.accepted = int(acc)
        self.losses.append(hist)
        if i and not np.isfinite(hist[-1]):
            self.finished = True
        elif bool(done) or i < n:
            self.converged = bool(done) and RESULTS.promote(self.result) == RESULTS.successful
            self.finished = True
        return Advanced(i, float(hist[-1]) if i else None)

    def after(self, record):
        self.steps.append(record.steps)
        self.times.append(record.run_time)
        if self.error_fn is not None:
            self.errors.append(self.error_fn(eqx.combine(self.objective.flat.unravel(self.params), self.static_model)))

    def stopped(self):
        return self.finished

    def position(self):
        return float(sum(h.size for h in self.losses))

    def checkpoint_trees(self):
        return dict(params=self.params, opt=self.state_dyn, losses=self.losses)

    def checkpoint_templates(self):
        return dict(params=self.params, opt=self.state_dyn, losses=None)

    def checkpoint_state(self):
        return dict(accepted=self.accepted, converged=self.converged, finished=self.finished,
                    errors=[float(e) for e in self.errors], times=self.times, steps=self.steps)

    def restore(self, trees, state):
        self.params, self.state_dyn = trees["params"], trees["opt"]
        self.losses = [np.asarray(h) for h in trees["losses"]]
        self.accepted, self.converged = int(state["accepted"]), bool(state["converged"])
        self.finished = bool(state["finished"])
        self.errors, self.times, self.steps = list(state["errors"]), list(state["times"]), list(state["steps"])
        if self.finished:  # the optimiser had stopped: recover its verdict without another step
            *_, self.result, _ = self._chunk(0)


# ---------------------------------------------------------------------------------------------
# shared set-up
# ---------------------------------------------------------------------------------------------


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
    if not problem.is_steady:
        return tuple(jax.eval_shape(problem.u0, x).shape)
    if problem.solution is not None:
        return tuple(jax.eval_shape(lambda y: problem.solution(y, None), x).shape)
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


def _evaluator(steady: bool, dtype):
    def evaluate(sol, x, t=None):
        x = jnp.asarray(x, dtype=dtype)
        single = x.ndim == 1
        X = x[None] if single else x
        if steady:
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

    return evaluate


def _check_problem(problem: PDEProblem, who: str) -> None:
    if problem.backward:
        raise NotImplementedError(
            f"{who} solves forward-in-time problems; `backward=True` is not supported."
        )


def _time_slices(problem, solver, dtype):
    t0, t1 = (float(t) for t in problem.tspan)
    return jnp.asarray(np.linspace(t0, t1, solver.time_slices), dtype=dtype)


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
            f"{who} training failed after {stats['num_steps']} steps: {RESULTS[res]} "
            "(pass throw=False to get the solution anyway)."
        )
    return FieldSolution(
        ts=None,
        ys=model,
        stats=stats,
        result=res,
        problem=problem,
        solver=solver,
        evaluator=_evaluator(problem.is_steady, dtype),
    )


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


# ---------------------------------------------------------------------------------------------
# solve implementations
# ---------------------------------------------------------------------------------------------


def _check_max_steps(max_steps) -> int:
    if (
        isinstance(max_steps, bool)
        or not isinstance(max_steps, (int, np.integer))
        or max_steps < 1
    ):
        raise ValueError(
            f"`max_steps` (the number of optimiser steps) must be an int >= 1, got {max_steps!r}."
        )
    return int(max_steps)


@register(PDEProblem, DTPINN)
def _solve_dtpinn(
    problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, checkpoint=None,
    mesh=None,
):
    del saveat, dt0, controller
    mesh = None if mesh is None else check_mesh(mesh)
    t_start = time.perf_counter()
    who = "DTPINN"
    _check_problem(problem, who)
    checkpoint = check_checkpoint(checkpoint, who)
    max_steps = _check_max_steps(max_steps)
    if not jax.config.jax_enable_x64:
        raise _x64_error(who)
    dtype = jnp.float64
    cloud = _node_set(problem, solver)
    problem = _with_boundary_on(problem, cloud)
    _check_boundary(problem, cloud, who)
    d = cloud.dim
    shape = _value_shape(problem, d, dtype)
    model = _build_model(solver, problem, shape, dtype, key)
    out_shape = tuple(
        jax.eval_shape(
            model, jax.ShapeDtypeStruct((d + (0 if problem.is_steady else 1),), dtype)
        ).shape
    )

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
    bc_ops = frozenset()
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
    data["L"] = {
        op: EllMatrix.from_scipy(m, dtype=dtype) for op, m in mats["pde"].items()
    }
    data["B"] = {
        op: EllMatrix.from_scipy(m, dtype=dtype) for op, m in mats["boundary"].items()
    }
    if not problem.is_steady:
        data["times"] = _time_slices(problem, solver, dtype)
    setup_time = time.perf_counter() - t_start

    params, static_model = eqx.partition(model, eqx.is_inexact_array)
    loss = _Loss(
        static_model,
        eq,
        problem.bc,
        problem.args,
        steady=problem.is_steady,
        shape=out_shape,
        n_interior=cloud.n_interior,
        n_boundary=cloud.n_boundary,
        discrete=True,
        pde_ops=tuple(sorted(pde_ops)),
        bc_ops=tuple(sorted(bc_ops)),
    )
    extra = {
        "n_ghost": int(mats["nodes"].shape[0]) - cloud.n_interior - cloud.n_boundary,
        "operators": {"pde": sorted(pde_ops), "boundary": sorted(bc_ops)},
        "nnz_per_row": {
            str(op): int(m.cols.shape[1])
            for op, m in {**data["L"], **data["B"]}.items()
        },
        "dtype": "float64",
    }
    return _train_and_finish(
        problem, solver, loss, params, static_model, data, cloud, dtype=dtype,
        max_steps=max_steps, progress=progress, who=who, throw=throw, t_start=t_start,
        setup_time=setup_time, extra=extra, checkpoint=checkpoint, key=key, mesh=mesh,
    )


@register(PDEProblem, PINN)
def _solve_pinn(
    problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, checkpoint=None,
    mesh=None,
):
    del saveat, dt0, controller
    mesh = None if mesh is None else check_mesh(mesh)
    t_start = time.perf_counter()
    who = "PINN"
    _check_problem(problem, who)
    checkpoint = check_checkpoint(checkpoint, who)
    max_steps = _check_max_steps(max_steps)
    dtype = jnp.dtype(np.dtype(solver.dtype))
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "PINN(dtype='float64') needs JAX's 64-bit mode: call "
            "`jax.config.update('jax_enable_x64', True)` at startup (or set JAX_ENABLE_X64=1), "
            "or use dtype='float32'."
        )
    cloud = _node_set(problem, solver)
    problem = _with_boundary_on(problem, cloud)
    _check_boundary(problem, cloud, who)
    d = cloud.dim
    shape = _value_shape(problem, d, dtype)
    model = _build_model(solver, problem, shape, dtype, key)
    out_shape = tuple(
        jax.eval_shape(
            model, jax.ShapeDtypeStruct((d + (0 if problem.is_steady else 1),), dtype)
        ).shape
    )
    data = _common_data(problem, cloud, dtype)
    if not problem.is_steady:
        data["times"] = _time_slices(problem, solver, dtype)
    setup_time = time.perf_counter() - t_start
    params, static_model = eqx.partition(model, eqx.is_inexact_array)
    loss = _Loss(
        static_model,
        problem.residual if problem.is_steady else problem.rhs,
        problem.bc,
        problem.args,
        steady=problem.is_steady,
        shape=out_shape,
        n_interior=cloud.n_interior,
        n_boundary=cloud.n_boundary,
        discrete=False,
        pde_ops=(),
        bc_ops=(),
    )
    return _train_and_finish(
        problem, solver, loss, params, static_model, data, cloud, dtype=dtype,
        max_steps=max_steps, progress=progress, who=who, throw=throw, t_start=t_start,
        setup_time=setup_time, extra={"dtype": np.dtype(dtype).name}, checkpoint=checkpoint, key=key,
        mesh=mesh,
    )


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


def _train_and_finish(
    problem, solver, loss, params, static_model, data, cloud, *, dtype, max_steps, progress,
    who, throw, t_start, setup_time, extra, checkpoint=None, key=None, mesh=None,
):
    """Shared tail of DTPINN and PINN: test set, optimiser loop, `Solution`.

    pdesolve never flips jax_enable_x64: a float32 PINN under x64 keeps the optimiser's
    vectors (L-BFGS history, O(p) work) in the default float and casts to float32 inside
    the objective, so every network evaluation and its gradient are float32.
    """
    test_pts, test_desc = _test_set(problem, cloud, solver.n_test, dtype)
    error_fn = _error_function(problem, test_pts, dtype)
    flat_params = FlatParams.ravel(params).astype(jnp.result_type(float))
    if mesh is not None:  # rows split (evenly where they divide), parameters replicated
        data = shard_rows(data, mesh, replicated=("times",))
        flat_params = replicate(flat_params, mesh)
    params, info, result = _train(
        _Objective(loss, FlatParams.of(params, jnp.dtype(jax.tree.leaves(params)[0].dtype)), mesh),
        _optimiser(solver),
        flat_params,
        static_model,
        data,
        max_steps=max_steps,
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
        dtype=dtype, error_fn=error_fn, test_desc=test_desc, t_start=t_start,
    )
