"""The options of the PINN solvers: `DTPINN` (RBF-FD derivatives, float64) and `PINN`
(autodiff derivatives), with their checks."""

from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np
import optimistix as optx

from pdesolve._geometry import PointCloud
from pdesolve._solve import AbstractSolver
from pdesolve._validation import check_instance, check_int

OPTIMIZERS = ("lbfgs", "adam")


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


def _x64_error(who: str) -> ValueError:
    return ValueError(
        f"{who} trains in float64 (RBF-FD weights lose their accuracy in float32, and the "
        "paper's speed-up is for float64 training), but JAX's 64-bit mode is off. Enable it at "
        "the start of your program with `jax.config.update('jax_enable_x64', True)` (or set "
        "the environment variable JAX_ENABLE_X64=1 before importing JAX)."
    )


class AbstractPINNSolver(AbstractSolver):
    """What `DTPINN` and `PINN` share: a network trained by an optimistix minimiser on a node
    set. The shared options (documented on `DTPINN`) are declared and checked once, here;
    each solver adds its own (`order` and `ghost`; `dtype`)."""

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
    n_test: int = 4096
    steps_per_dispatch: int = 50

    @property
    @abc.abstractmethod
    def network_dtype(self) -> np.dtype:
        """The dtype the network trains in: float64 for DTPINN, the `dtype` option for PINN."""

    def __check_init__(self):
        solver = self
        for name, minimum in (
            ("width", 1),
            ("depth", 0),
            ("n_nodes", 1),
            ("time_slices", 2),
            ("history_length", 1),
            ("n_test", 1),
            ("steps_per_dispatch", 1),
        ):
            check_int(name, getattr(solver, name), minimum)
        _check_real(solver, "learning_rate", positive=True)
        _check_real(solver, "rtol", positive=False)
        _check_real(solver, "atol", positive=False)
        opt = solver.optimizer
        if isinstance(opt, str):
            if opt not in OPTIMIZERS:
                raise ValueError(
                    f"`optimizer` must be one of {OPTIMIZERS} or an optimistix minimiser "
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
        check_instance("nodes", solver.nodes, PointCloud,
                       "a pds.PointCloud (interior nodes, boundary nodes, outward normals)", optional=True)


class DTPINN(AbstractPINNSolver):
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
    ghost: bool = True

    @property
    def network_dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def __check_init__(self):
        check_int("order", self.order, 1)
        if not isinstance(self.ghost, bool):
            raise TypeError(f"`ghost` must be True or False, got {self.ghost!r}.")


class PINN(AbstractPINNSolver):
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

    dtype: Any = "float32"

    @property
    def network_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def __check_init__(self):
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
