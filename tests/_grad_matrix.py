"""The gradient matrix: every time-stepping solver x controller x SaveAt x transform, with
gradients w.r.t. network parameters, `y0` and `args` against central finite differences.

Shared by tests/test_gradient_matrix.py (the default run takes a pairwise covering of the
axes: every pair of values of any two axes meets in at least one cell) and its `slow`
marker (the full Cartesian product). Compiled functions are cached per configuration.
"""

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import pdesolve as pds
from pdesolve.solvers.explicit_rk import METHOD_NAMES

T1 = 1.0
# Ten steps of 0.1 for constant steps; a non-uniform grid for StepTo.
STEPTO = (0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0)
TS_NO_T0 = (0.2, 0.5, 0.75, 1.0)
TS_WITH_T0 = (0.0, 0.3, 0.6, 1.0)  # the README quick-start's linspace grid starts at t0
MAX_STEPS = 512


class Field(eqx.Module):
    """`G(t, y, args) = args["scale"] * mlp(y) * (1 + 0.3 sin t) - decay * y` (decay 0 when
    the linear part `-0.5 I` is given to an IMEX solver)."""

    mlp: eqx.nn.MLP
    decay: float = eqx.field(static=True)

    def __call__(self, t, y, args):
        return args["scale"] * self.mlp(y) * (1 + 0.3 * jnp.sin(t)) - self.decay * y


def field(decay):
    mlp = eqx.nn.MLP(2, 2, 6, 1, activation=jnp.tanh, key=jax.random.PRNGKey(0))
    mlp = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, mlp)
    return Field(mlp, decay)


SOLVERS = (*METHOD_NAMES, "ReversibleRK", "IMEXRK")  # the built-in explicit RK methods, then the rest
CONTROLLERS = ("constant", "pid", "stepto")
SAVEATS = ("t1", "ts", "ts_with_t0", "t0_ts_t1", "steps")
TRANSFORMS = ("plain", "jit", "vmap")
NO_ERROR_ESTIMATE = ("Euler", "RK4")


def solver_of(name):
    if name == "ReversibleRK":
        return pds.ReversibleRK(base=pds.Bosh3())
    if name == "IMEXRK":
        return pds.IMEXRK("ARK3")
    return getattr(pds, name)()


def order_of(name):
    return {"Euler": 1, "Heun": 2, "Midpoint": 2, "Ralston": 2, "Bosh3": 3, "ReversibleRK": 3,
            "IMEXRK": 3, "RK4": 4, "Dopri5": 5, "Tsit5": 5}[name]


def pid_rtol(name):
    """Tight enough that the adaptive solution is smooth in the parameters to ~1e-6, loose
    enough that low-order methods stay within a few hundred steps."""
    return {2: 1e-5, 3: 1e-7}.get(order_of(name), 1e-9)


def valid(solver, controller, saveat):
    if controller == "pid" and solver in NO_ERROR_ESTIMATE:
        return False
    if saveat == "steps" and solver == "ReversibleRK":
        return False
    return True


def full_matrix():
    return [c for c in itertools.product(SOLVERS, CONTROLLERS, SAVEATS, TRANSFORMS) if valid(*c[:3])]


def pairwise_matrix():
    """A greedy pairwise covering of `full_matrix()` (deterministic)."""
    cells = full_matrix()
    axes = range(4)

    def pairs(cell):
        return {(i, cell[i], j, cell[j]) for i in axes for j in axes if i < j}

    uncovered = set().union(*(pairs(c) for c in cells))
    chosen = []
    while uncovered:
        best = max(cells, key=lambda c: len(pairs(c) & uncovered))
        chosen.append(best)
        uncovered -= pairs(best)
    return sorted(chosen, key=lambda c: tuple(a.index(v) for a, v in zip((SOLVERS, CONTROLLERS, SAVEATS, TRANSFORMS), c)))


def _saveat(name):
    return {
        "t1": pds.SaveAt(t1=True),
        "ts": pds.SaveAt(ts=jnp.asarray(TS_NO_T0)),
        "ts_with_t0": pds.SaveAt(ts=jnp.asarray(TS_WITH_T0)),
        "t0_ts_t1": pds.SaveAt(t0=True, ts=jnp.asarray(TS_NO_T0[:-1]), t1=True),
        "steps": pds.SaveAt(steps=True),
    }[name]


def _options(solver, controller):
    if controller == "constant":
        return dict(dt0=0.1)
    if controller == "stepto":
        return dict(controller=pds.StepTo(jnp.asarray(STEPTO)))
    return dict(controller=pds.PIDController(rtol=pid_rtol(solver), atol=1e-2 * pid_rtol(solver)))


def make_loss(solver, controller, saveat, adjoint=None):
    """`loss((model, y0, args))` for one configuration. For `SaveAt(steps=True)` under PID
    the number of saved states depends on the parameters, so the loss uses the last one."""
    imex = solver == "IMEXRK"
    s = solver_of(solver)
    options = _options(solver, controller)
    save = _saveat(saveat)

    def loss(q):
        model, y0, args = q
        prob = pds.NeuralODEProblem(model, y0, (0.0, T1), args, linear=-0.5 * jnp.eye(2) if imex else None)
        sol = pds.solve(prob, s, saveat=save, max_steps=MAX_STEPS, adjoint=adjoint, **options)
        ys = sol.ys
        if saveat == "steps":
            if controller == "pid":
                ys = ys[sol.stats["num_accepted_steps"] - 1]
            else:
                ys = jnp.where(jnp.isfinite(ys), ys, 0.0)
        return jnp.sum(ys**2) + jnp.sum(jnp.sin(3 * ys))

    return loss


def point(solver, member=0):
    """The point `(model, y0, args)` at which gradients are taken (two batch members)."""
    y0 = jnp.array([[0.4, -0.3], [-0.7, 0.9]])[member]
    args = {"scale": jnp.array([0.8, 1.6])[member]}
    return field(0.0 if solver == "IMEXRK" else 0.5), y0, args


def batch(solver):
    model, _, _ = point(solver)
    return model, jnp.array([[0.4, -0.3], [-0.7, 0.9]]), {"scale": jnp.array([0.8, 1.6])}


@functools.lru_cache(maxsize=None)
def compiled_loss(solver, controller, saveat):
    return eqx.filter_jit(make_loss(solver, controller, saveat))


def gradient(solver, controller, saveat, transform, adjoint=None):
    """The gradient(s) as the transform computes them: a list of one pytree per member."""
    loss = make_loss(solver, controller, saveat, adjoint)
    if transform == "plain":
        return [eqx.filter_grad(loss)(point(solver))]
    if transform == "jit":
        return [eqx.filter_jit(eqx.filter_grad(loss))(point(solver))]
    g = eqx.filter_jit(eqx.filter_vmap(eqx.filter_grad(loss), in_axes=((None, 0, 0),)))(batch(solver))
    return [jax.tree.map(lambda x, k=k: x[k] if eqx.is_array(x) else x, g) for k in range(2)]


def directions(q, key=0):
    """Unit directions: one random direction in the network parameters, each entry of `y0`
    and of `args` (as pytrees shaped like `q`, zero elsewhere)."""
    dyn = eqx.filter(q, eqx.is_inexact_array)
    zero = jax.tree.map(jnp.zeros_like, dyn)
    model, y0, args = zero
    leaves, treedef = jax.tree.flatten(dyn[0])
    keys = jax.random.split(jax.random.PRNGKey(key), len(leaves))
    rnd = [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
    norm = jnp.sqrt(sum(jnp.sum(r**2) for r in rnd))
    out = [("params", (jax.tree.unflatten(treedef, [r / norm for r in rnd]), y0, args))]
    for i in range(y0.size):
        out.append((f"y0[{i}]", (model, y0.at[i].set(1.0), args)))
    out.append(("args", (model, y0, {"scale": jnp.ones_like(args["scale"])})))
    return out


def vdot_tree(a, b):
    la = jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array))
    lb = jax.tree.leaves(eqx.filter(b, eqx.is_inexact_array))
    assert len(la) == len(lb)
    return float(sum(jnp.vdot(x, y) for x, y in zip(la, lb)))


def fd_tolerance(solver, controller):
    """Central differences of the discrete scheme: `eps=1e-6`, agreement to ~1e-7 with
    fixed grids. Under PID the finite difference also sees the step sizes move with the
    parameters (the gradient holds them fixed), an O(rtol) effect: `eps=1e-4`."""
    if controller == "pid":
        return 1e-4, max(1e-5, 30 * pid_rtol(solver))
    return 1e-6, 1e-7


def check_against_fd(solver, controller, saveat, grads):
    """Every gradient finite and every directional derivative equal to central FD."""
    loss = compiled_loss(solver, controller, saveat)
    eps, tol = fd_tolerance(solver, controller)
    for member, g in enumerate(grads):
        for leaf in jax.tree.leaves(eqx.filter(g, eqx.is_inexact_array)):
            assert np.all(np.isfinite(np.asarray(leaf))), f"non-finite gradient, member {member}"
        q = point(solver, member)
        dyn, static = eqx.partition(q, eqx.is_inexact_array)
        for name, d in directions(q):
            d = eqx.filter(d, eqx.is_inexact_array)
            plus = loss(eqx.combine(jax.tree.map(lambda x, v: x + eps * v, dyn, d), static))
            minus = loss(eqx.combine(jax.tree.map(lambda x, v: x - eps * v, dyn, d), static))
            fd = float(plus - minus) / (2 * eps)
            ad = vdot_tree(g, d)
            assert abs(ad - fd) <= tol * max(1.0, abs(fd)), (
                f"member {member}, d/d{name}: autodiff {ad!r} vs central differences {fd!r}"
            )
