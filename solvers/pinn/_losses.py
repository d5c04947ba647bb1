"""The PINN training losses: mean squared residuals of the equation, the boundary condition
and (evolution problems) the initial condition at the collocation nodes.

Equinox modules: their non-array fields are static under `filter_jit`, so one compiled
training step serves every solve of the same problem and configuration.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from pdesolve._field import Field
from pdesolve._flat import FlatParams
from pdesolve._recording_field import VALUE, evaluate_pointwise
from pdesolve._sharding import constrain_rows


def _append_time(x, t):
    return jnp.concatenate([x, jnp.reshape(t, (1,)).astype(x.dtype)])


def _mean_square(r):
    return jnp.mean(jnp.square(r))


class AbstractLoss(eqx.Module):
    """`(params, data) -> loss` of a PINN: the network `eqx.combine(params, static_model)`,
    the user's `equation` (`residual(u, x, args)` or `rhs(u, x, t, args)`), the boundary
    condition `bc`; `steady` picks `steady_loss` or `evolution_loss`. `shape` is the value
    shape per point; the first `n_interior` collocation rows are interior nodes, the next
    `n_boundary` boundary nodes."""

    static_model: Any
    equation: Callable
    bc: Any
    args: Any
    steady: bool = eqx.field(static=True)
    shape: tuple = eqx.field(static=True)
    n_interior: int = eqx.field(static=True)
    n_boundary: int = eqx.field(static=True)

    @abc.abstractmethod
    def steady_loss(self, model, data):
        """PDE residual plus boundary residual at the nodes."""

    @abc.abstractmethod
    def evolution_loss(self, model, data):
        """PDE residual over the time slices, plus initial-condition and boundary terms."""

    def __call__(self, params, data):
        model = eqx.combine(params, self.static_model)
        return self.steady_loss(model, data) if self.steady else self.evolution_loss(model, data)


class RBFFDLoss(AbstractLoss):
    """DTPINN's loss: each linear spatial operator of the equation (`pde_ops`) and of the
    boundary condition (`bc_ops`) applied to the network's nodal values by its sparse RBF-FD
    matrix (`data["L"]`, `data["B"]`); time derivatives by a forward-mode JVP in t.
    Cost: one network pass over the nodes plus one sparse product per operator."""

    pde_ops: tuple = eqx.field(static=True)
    bc_ops: tuple = eqx.field(static=True)

    @property
    def n_rows(self):
        return self.n_interior + self.n_boundary

    def _apply(self, mats, ops, U, lo, hi):
        """{op: op applied to U} for one node axis in front: sparse matrices, or U[lo:hi]."""
        out = {}
        for op in ops:
            out[op] = U[lo:hi] if op == VALUE else mats[op] @ U
        return out

    def steady_loss(self, model, data):
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

    def evolution_loss(self, model, data):
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


class AutodiffLoss(AbstractLoss):
    """PINN's loss: the equation evaluated on a `pds.Field` of the network at each
    collocation point, every derivative by automatic differentiation (a Laplacian costs
    about 1 + 2d forward-mode passes per point)."""


    def steady_loss(self, model, data):
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

    def evolution_loss(self, model, data):
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


class _Objective(eqx.Module):
    """``(flat params, data) -> (loss, None)``: the function optimistix minimises."""

    loss: AbstractLoss
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
