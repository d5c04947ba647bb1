"""MethodOfLines: a classical reference for the initial-value PDEs NeuralIVP solves.

The same `PDEProblem` (`rhs` form, `u_t = rhs(u, x, t, args)`) is discretised in space by the
suite's RBF-FD operators (`pdesolve._rbf_fd`: polyharmonic splines plus polynomials, design
order `order`, on quasi-uniform nodes of the domain) and integrated in time by any of the
suite's ODE solvers. The operators the equation uses are learned by running it once on a
recording field (as DTPINN does); the boundary condition is imposed through the boundary
rows: at every right-hand-side evaluation the boundary values solve `B u = g` given the
interior values (exact for the linear conditions: Dirichlet, Neumann, Robin, `MixedBC`;
one precomputed LU of the N_b x N_b boundary block).

Cost per right-hand-side evaluation: one sparse product per operator (O(N n_stencil)), one
pointwise evaluation of `rhs` at the interior nodes and a triangular solve of size N_b.
The semi-discrete system of an advection-dominated equation on scattered nodes can have
eigenvalues with positive real part (RBF-FD's known instability, Fornberg & Lehto 2011):
spurious modes that grow although the PDE conserves or damps. `hyperviscosity=c` adds
the stabilising term `(−1)^(k+1) c h^(2k−1) Δ^k u` (Fornberg & Lehto 2011; Shankar &
Fogelson 2018 for RBF-FD with polyharmonic splines) at the interior nodes, with `Δ^k` its
own RBF-FD matrix (operator `("hyperlaplacian", k)`, order 2), `h` the mean nearest-node
distance, `c` a speed, and the coefficient tapered to zero at the boundary
(`min(1, (distance to the boundary / stencil radius)²)`: the one-sided `Δ^k` stencils
there have eigenvalues of the wrong sign). On a mode of wavenumber κ it damps at the rate
`c h^(2k−1) κ^(2k)`: strongly at the node scale, by O(h^(2k−1)) on the resolved solution.
With the default `k = 2` that is O(h³), below the operators' order 4, so hyperviscosity
trades accuracy over short horizons for stability over long ones: on the catalogue's
advection (T = 0.5, Tsit5 PID 1e-8) 2000 nodes give 3.4e-2 without it (spectral abscissa
+0.58: a growing mode) and 1.4e-1 with `c = 0.1` (abscissa −8.3); 8000 nodes 3.4e-3 vs
2.3e-2. `stats["spectral_abscissa"]` (the largest real part of the semi-discrete
Jacobian's eigenvalues at `t0`) tells whether the discretisation has growing modes the
PDE does not.
"""

from __future__ import annotations

import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse
import scipy.spatial

from pdesolve._problems import NeuralODEProblem, PDEProblem
from pdesolve._recording_field import VALUE, evaluate_pointwise, record_operators
from pdesolve._solution import FieldSolution
from pdesolve._solve import AbstractSolver, register
from pdesolve._rbf_fd import assemble, rbf_fd_matrix
from pdesolve._sparse import EllMatrix
from pdesolve._validation import check_int

from .explicit_rk import Tsit5
from .imex import IMEXRK
from .pinn._setup import _check_boundary, _node_set, _with_boundary_on

__all__ = ["MethodOfLines"]


class MethodOfLines(AbstractSolver):
    """RBF-FD in space, any ODE solver in time, for `PDEProblem(rhs=..., u0=..., tspan=...)`.

    **Arguments:**

    - `n_nodes`: quasi-uniform nodes of the domain (`Box.node_set` / `Ball.node_set`);
      ignored when `nodes` is given or the domain is a `PointCloud`.
    - `order`: design order p of the RBF-FD operators (error O(h^p) on quasi-uniform nodes
      with spacing h; default 4).
    - `nodes`: a `pds.PointCloud` (interior nodes, boundary nodes with outward normals).
    - `time_solver`: the ODE solver for the semi-discrete system (default `pds.Tsit5()`;
      any explicit RK or reversible solver, or `pds.IMEXRK(...)`: then the system's Jacobian
      at `t0` (an N x N matrix, LU through lineax) is the implicit part and the exact
      remainder `f − A y` the explicit one — for diffusion this removes the `dt ~ h²`
      limit). Step control, saving, dense output, events and adjoints are passed through
      `solve(...)` as for an ODE.

    - `hyperviscosity`: `c >= 0` (default 0: none); adds `(−1)^(k+1) c h^(2k−1) Δ^k u` to
      every component's right-hand side at the interior nodes (see the module docstring).
      For pure advection on scattered nodes, `c` about the advection speed removes the
      growing modes (`stats["spectral_abscissa"]` <= 0).
    - `hyperviscosity_power`: `k` (default 2). Measured on the catalogue's advection
      (2-D, 500–2000 nodes, order 4): `k = 2`, `c` in [0.1, 1] gives a negative spectral
      abscissa; `k = 3` stencils (order 2) stay unstable near the boundary even tapered.
    - `stability_check`: compute `stats["spectral_abscissa"]` (default True): a dense
      eigenvalue solve of the Jacobian at `t0` when the system has at most 2000 unknowns
      (about a second), `None` above (check a coarser node set of the same problem). A
      positive value that the PDE itself does not have (pure advection, diffusion) means
      growing spurious modes: the solution may be wrong; refine, or add `hyperviscosity`.

    Returns a field solution: `sol(x, t)` interpolates the nodal values (RBF-FD `"value"`
    weights of the same order) at a saved time, or at any `t` with `SaveAt(dense=True)`;
    `sol.ys` are the interior nodal values (shape `(len(ts), n_interior) + field shape`),
    `sol.stats` the ODE solve's plus `n_nodes`, `operators`, `setup_time`, `node_spacing`,
    `spectral_abscissa`.
    """

    n_nodes: int = 1000
    order: int = 4
    nodes: Any = None
    time_solver: AbstractSolver = Tsit5()
    hyperviscosity: float = 0.0
    hyperviscosity_power: int | None = None
    stability_check: bool = True

    def __check_init__(self):
        check_int("n_nodes", self.n_nodes, 1, hint="MethodOfLines(n_nodes=...) is the number of quasi-uniform nodes of the domain.")
        check_int("order", self.order, 1, hint="MethodOfLines(order=...) is the design order p of the RBF-FD operators.")
        if self.hyperviscosity_power is not None:
            check_int("hyperviscosity_power", self.hyperviscosity_power, 1,
                      hint="MethodOfLines(hyperviscosity_power=k) is the power of the Laplacian Δ^k of the hyperviscosity; None: k = 2.")
        c = self.hyperviscosity
        if isinstance(c, bool) or not isinstance(c, (int, float, np.floating, np.integer)) or not (np.isfinite(c) and c >= 0):
            raise ValueError(f"MethodOfLines(`hyperviscosity`=...) must be a finite float >= 0; got {c!r}.")
        if not isinstance(self.stability_check, bool):
            raise TypeError(f"MethodOfLines(`stability_check`=...) must be a bool; got {self.stability_check!r}.")
        if not isinstance(self.time_solver, AbstractSolver):
            raise TypeError(f"`time_solver` must be a pdesolve ODE solver, e.g. pds.Tsit5(); got {self.time_solver!r}.")


class _Semidiscrete(eqx.Module):
    """`dU_i/dt = rhs(u, x, t)` at the interior nodes, with the boundary values from `B u = g`."""

    L: dict
    B: dict
    interior: jax.Array
    boundary: jax.Array
    normals: jax.Array
    lu: Any
    rhs: Any = eqx.field(static=True)
    bc: Any
    args: Any
    shape: tuple = eqx.field(static=True)
    pde_ops: tuple = eqx.field(static=True)
    bc_ops: tuple = eqx.field(static=True)
    H: Any = None  # the Delta^k matrix (interior rows, all columns), or None
    hv: float = eqx.field(static=True, default=0.0)  # (-1)^(k+1) c h^(2k-1)

    def boundary_residual(self, t, Ui, Ub):
        U = jnp.concatenate([Ui, Ub])
        arrays = {op: (Ub if op == VALUE else self.B[op] @ U) for op in self.bc_ops}
        return evaluate_pointwise(lambda u, x, n: self.bc.residual(u, x, n, t), arrays, self.boundary,
                                  self.normals, shape=self.shape)

    def boundary_values(self, t, Ui):
        """The boundary values solving the (affine) boundary rows `r(U_i, U_b) = 0`."""
        if self.bc is None or self.boundary.shape[0] == 0:
            return jnp.zeros((self.boundary.shape[0],) + self.shape, Ui.dtype)
        zero = jnp.zeros((self.boundary.shape[0],) + self.shape, Ui.dtype)
        r0 = self.boundary_residual(t, Ui, zero).reshape(-1)
        ub = -jax.scipy.linalg.lu_solve(self.lu, r0)
        return ub.reshape(zero.shape)

    def nodal(self, t, Ui):
        return jnp.concatenate([Ui, self.boundary_values(t, Ui)])

    def __call__(self, t, Ui, args):
        del args
        U = self.nodal(t, Ui)
        n_i = Ui.shape[0]
        arrays = {op: (Ui if op == VALUE else (self.L[op] @ U)[:n_i]) for op in self.pde_ops}
        out = evaluate_pointwise(lambda u, x, n: self.rhs(u, x, t, self.args), arrays, self.interior,
                                 shape=self.shape)
        if self.H is not None:
            out = out + self.hv * (self.H @ U)
        return out


class _Flat(eqx.Module):
    """A vector field on `(n,) + shape` states seen as one flat vector (for IMEXRK's matrix)."""

    f: Any
    shape: tuple = eqx.field(static=True)

    def __call__(self, t, y, args):
        return self.f(t, y.reshape(self.shape), args).reshape(-1)


class _Remainder(eqx.Module):
    """`f(t, y) − A y`: the explicit part when `A` is treated implicitly."""

    system: Any
    A: jax.Array

    def __call__(self, t, y, args):
        return self.system(t, y, args) - self.A @ y


def _check_problem(problem):
    if problem.is_steady or problem.rhs is None:
        raise ValueError(
            "MethodOfLines solves initial-value problems: PDEProblem(rhs=..., u0=..., tspan=...). "
            "For a steady problem (`residual=`) use pds.DTPINN or pds.PINN."
        )
    if problem.backward:
        raise ValueError("MethodOfLines integrates forward in time; give tspan with t1 > t0.")


@register(PDEProblem, MethodOfLines)
def _solve_mol(problem, solver, *, saveat, dt0, controller, max_steps, throw, progress, key, adjoint=None,
               event=None):
    del key
    _check_problem(problem)
    t_start = time.perf_counter()
    dtype = jnp.result_type(float)
    if dtype != jnp.float64:
        raise ValueError(
            "MethodOfLines needs float64 (RBF-FD weights lose their accuracy in float32): enable "
            "`jax.config.update('jax_enable_x64', True)` at startup."
        )
    cloud = _node_set(problem, solver)
    _check_boundary(problem, cloud, "MethodOfLines")
    if problem.bc is None and cloud.n_boundary:
        raise ValueError(
            "MethodOfLines needs a boundary condition (`bc=`: Dirichlet, Neumann, Robin or MixedBC) to "
            "close the system at the boundary nodes."
        )
    problem = _with_boundary_on(problem, cloud)
    d = cloud.dim
    t0 = float(problem.tspan[0])
    shape = tuple(jax.eval_shape(problem.u0, jax.ShapeDtypeStruct((d,), dtype)).shape)
    pde_ops = record_operators(lambda u, x, n: problem.rhs(u, x, t0, problem.args), dim=d, shape=shape, dtype=dtype)
    bc_ops = frozenset()
    if problem.bc is not None:
        bc = problem.bc
        bc_ops = record_operators(lambda u, x, n: bc.residual(u, x, n, t0), dim=d, shape=shape, dtype=dtype,
                                  with_normal=True)

    try:
        mats = assemble(cloud, sorted(op for op in pde_ops if op != VALUE), order=solver.order,
                        boundary_operators=sorted(op for op in bc_ops if op != VALUE), ghost=False)
    except ValueError as e:
        raise ValueError(
            f"MethodOfLines could not build its RBF-FD matrices (order={solver.order}) on "
            f"{cloud.n_interior + cloud.n_boundary} nodes: {e}"
        ) from e
    L = {op: EllMatrix.from_scipy(m, dtype=dtype) for op, m in mats["pde"].items()}
    B = {op: EllMatrix.from_scipy(m, dtype=dtype) for op, m in mats["boundary"].items()}
    interior = jnp.asarray(cloud.interior, dtype)
    boundary = jnp.asarray(cloud.boundary, dtype)
    normals = jnp.asarray(cloud.normals, dtype)
    spacing = _node_spacing(np.asarray(cloud.points))
    H, hv = None, 0.0
    if solver.hyperviscosity > 0:
        k = solver.hyperviscosity_power or 2
        try:
            Hs = rbf_fd_matrix(np.asarray(cloud.interior), np.asarray(cloud.points), ("hyperlaplacian", k), order=2)
        except ValueError as e:
            raise ValueError(f"MethodOfLines could not build its hyperviscosity matrix (Δ^{k}): {e}") from e
        # tapered to zero at the boundary: the one-sided Δ^k stencils of nodes whose stencil
        # reaches the boundary have eigenvalues of the wrong sign (measured: the spectral
        # abscissa grows with c untapered, and is negative tapered)
        Hs = scipy.sparse.diags(_boundary_taper(cloud, Hs)) @ Hs
        H = EllMatrix.from_scipy(Hs.tocsr(), dtype=dtype)
        hv = (-1.0) ** (k + 1) * float(solver.hyperviscosity) * spacing ** (2 * k - 1)
    system = _Semidiscrete(L, B, interior, boundary, normals, None, problem.rhs, problem.bc, problem.args, shape,
                           tuple(sorted(pde_ops)), tuple(sorted(bc_ops)), H, hv)
    lu = None
    if problem.bc is not None and cloud.n_boundary:
        # the boundary rows are affine in the boundary values: their Jacobian, factorised once
        zi = jnp.zeros((cloud.n_interior,) + shape, dtype)
        zb = jnp.zeros((cloud.n_boundary,) + shape, dtype)
        A = jax.jacfwd(lambda ub: system.boundary_residual(jnp.asarray(t0, dtype), zi, ub).reshape(-1))(zb)
        A = A.reshape(A.shape[0], -1)
        cond = float(np.linalg.cond(np.asarray(A)))
        if not np.isfinite(cond) or cond > 1e12:
            raise ValueError(
                f"MethodOfLines: the boundary rows are singular or nearly so (condition {cond:.3g}); "
                "check the boundary condition (a pure Neumann condition leaves the boundary values "
                "undetermined by the rows alone) or use more nodes / a lower `order`."
            )
        lu = jax.scipy.linalg.lu_factor(A)
    system = eqx.tree_at(lambda s: s.lu, system, lu, is_leaf=lambda x: x is None)
    y0 = jax.vmap(problem.u0)(interior).astype(dtype)
    state_shape = y0.shape
    f = system if shape == () else _Flat(system, state_shape)
    y_flat = y0.reshape(-1)
    t0_arr = jnp.asarray(t0, dtype)
    imex = isinstance(solver.time_solver, IMEXRK)
    # the semi-discrete Jacobian at t0, computed once: IMEXRK's implicit part and the stability check
    A = _jacobian(f, t0_arr, y_flat) if imex or (solver.stability_check and y_flat.size <= _DENSE_EIG_LIMIT) else None
    abscissa = _spectral_abscissa(A) if solver.stability_check else None
    if imex:
        # the semi-discrete system's Jacobian at t0 as IMEXRK's implicit linear part and the
        # exact remainder f - A y as its explicit part (for a linear equation with
        # time-independent coefficients the remainder holds only boundary data and sources);
        # a field with components is integrated as one flat vector
        ode = NeuralODEProblem(_Remainder(f, A), y_flat, problem.tspan, linear=A)
    else:
        ode = NeuralODEProblem(system, y0, problem.tspan)
    setup_time = time.perf_counter() - t_start

    from pdesolve._solve import solve

    kw = {} if event is None else dict(event=event)
    sol = solve(ode, solver.time_solver, saveat=saveat, dt0=dt0, controller=controller, max_steps=max_steps,
                throw=throw, progress=progress, adjoint=adjoint, **kw)
    interpolation = sol.interpolation
    ys = sol.ys
    if ode.y0.shape != state_shape:
        ys = None if ys is None else ys.reshape(ys.shape[:1] + state_shape)
        interpolation = None if interpolation is None else _Unflatten(interpolation, state_shape)
    stats = dict(sol.stats, n_nodes=cloud.n_interior + cloud.n_boundary, n_interior=cloud.n_interior,
                 n_boundary=cloud.n_boundary, operators={"pde": sorted(pde_ops), "boundary": sorted(bc_ops)},
                 setup_time=setup_time, wall_time=time.perf_counter() - t_start, node_spacing=spacing,
                 spectral_abscissa=abscissa)
    return FieldSolution(ts=sol.ts, ys=ys, stats=stats, result=sol.result, problem=problem, solver=solver,
                    evaluator=_FieldEvaluator(system, np.asarray(cloud.points), solver.order, interpolation),
                    interpolation=interpolation, events=sol.events)


class _Unflatten(eqx.Module):
    """Dense output of a flattened state, evaluated in the field's shape."""

    interpolation: Any
    shape: tuple = eqx.field(static=True)

    def evaluate(self, t):
        y = self.interpolation.evaluate(t)
        return y.reshape(jnp.shape(y)[: jnp.ndim(y) - 1] + self.shape)


def _boundary_taper(cloud, stencils) -> np.ndarray:
    """min(1, (distance to the nearest boundary node / stencil radius)^2) per interior node."""
    interior, points = np.asarray(cloud.interior), np.asarray(cloud.points)
    if cloud.n_boundary == 0:
        return np.ones(interior.shape[0])
    dist_b, _ = scipy.spatial.cKDTree(np.asarray(cloud.boundary)).query(interior)
    stencils = stencils.tocsr()
    rows = np.repeat(np.arange(interior.shape[0]), np.diff(stencils.indptr))
    dist = np.linalg.norm(points[stencils.indices] - interior[rows], axis=1)
    radius = np.maximum.reduceat(dist, stencils.indptr[:-1])
    return np.clip(dist_b / radius, 0.0, 1.0) ** 2


def _node_spacing(points: np.ndarray) -> float:
    """h: the mean distance from a node to its nearest neighbour."""
    dist, _ = scipy.spatial.cKDTree(points).query(points, k=2)
    return float(np.mean(dist[:, 1]))


_DENSE_EIG_LIMIT = 2000


def _spectral_abscissa(J):
    """max Re λ of the Jacobian `J` by a dense eigenvalue solve, or None when it was not formed
    (above `_DENSE_EIG_LIMIT` unknowns: ARPACK's largest-real-part iteration did not converge
    on these non-normal spectra in tests, 4000 nodes of 2-D advection) or is traced (a solve
    under `grad`/`vmap`: no host eigenvalue solve)."""
    if J is None or J.shape[0] > _DENSE_EIG_LIMIT:
        return None
    try:
        J = np.asarray(J)
    except jax.errors.TracerArrayConversionError:
        return None
    return float(np.max(np.linalg.eigvals(J).real))


@eqx.filter_jit
def _jacobian(f, t, y):
    return jax.jacfwd(lambda v: f(t, v, None))(y)


class _FieldEvaluator(eqx.Module):
    """`sol(x, t)`: the nodal values at `t` (a saved time, or any time with dense output),
    completed by the boundary rows, interpolated to `x` by RBF-FD `"value"` weights."""

    system: _Semidiscrete
    nodes: np.ndarray
    order: int = eqx.field(static=True)
    interpolation: Any = None

    def __call__(self, sol, x, t=None):
        ts = np.asarray(sol.ts)
        if t is None:
            t = float(ts[np.isfinite(ts)][-1])
        if self.interpolation is not None:
            Ui = self.interpolation.evaluate(t)
        else:
            hit = np.nonzero(np.isclose(ts, float(t), rtol=1e-12, atol=1e-12))[0]
            if hit.size == 0:
                raise ValueError(
                    f"t={float(t)} is not a saved time of this MethodOfLines solution (saved: {ts.tolist()}); "
                    "add it to SaveAt(ts=...) or solve with SaveAt(dense=True)."
                )
            Ui = sol.ys[int(hit[-1])]
        U = self.system.nodal(jnp.asarray(t, Ui.dtype), Ui)
        x = np.asarray(x, dtype=float)
        single = x.ndim == 1
        X = x[None] if single else x
        if X.ndim != 2 or X.shape[1] != self.nodes.shape[1]:
            raise ValueError(f"`x` must have shape ({self.nodes.shape[1]},) or (m, {self.nodes.shape[1]}); got {x.shape}.")
        # sparse (one stencil per point), not an m x N dense matrix
        W = EllMatrix.from_scipy(rbf_fd_matrix(X, self.nodes, "value", order=self.order), dtype=U.dtype)
        out = W @ U
        return out[0] if single else out
