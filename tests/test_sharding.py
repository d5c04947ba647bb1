"""Two CPU devices (tests/test_two_devices.py runs this file in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=2; in a 1-device process it is skipped) give the single-device results to 1e-10 in float64, and the compiled programs really split the
work: their HLO holds the all-reduces GSPMD inserts for the sums over the split axis.

* NeuralIVP: Monte-Carlo samples split (`solve(..., mesh=mesh)`), θ replicated;
* DTPINN / PINN: collocation rows, nodes and sparse-matrix rows split, parameters replicated;
* neural-ODE training: a batch of trajectories (vmap over `pds.solve`) split, the model
  replicated, `value_and_grad` of the mean loss, for RK4, ReversibleRK and IMEXRK.

Tiny sizes (every case compiles twice: once per placement).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding

import pdesolve as pds
from pdesolve import problems as P
from pdesolve._sharding import (
    check_mesh,
    collectives,
    constrain_leading,
    replicate,
    shard_leading,
)

pytestmark = pytest.mark.skipif(
    jax.device_count() < 2,
    reason="needs 2 devices: run by tests/test_two_devices.py in a subprocess with "
    "XLA_FLAGS=--xla_force_host_platform_device_count=2",
)

TOL = 1e-10


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:2]), ("data",))


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-300))


def _tree_rel(a, b):
    """Max difference over all leaves relative to the largest entry of `a` (a leaf can be ~0:
    e.g. the gradient of a last-layer bias under a Laplacian, whose rows sum to zero)."""
    la = [np.ravel(x) for x in jax.tree.leaves(eqx.filter(a, eqx.is_inexact_array))]
    lb = [np.ravel(x) for x in jax.tree.leaves(eqx.filter(b, eqx.is_inexact_array))]
    assert len(la) == len(lb) > 0
    return _rel(np.concatenate(la), np.concatenate(lb))


def _is_split(x, mesh):
    """True when `x` lives on every device of `mesh`, cut along its leading axis."""
    return (
        isinstance(x.sharding, NamedSharding)
        and x.sharding.mesh.size == mesh.size
        and len({s.device for s in x.addressable_shards}) == mesh.size
        and x.addressable_shards[0].data.shape[0] == x.shape[0] // mesh.size
    )


# ---------------------------------------------------------------------------------------------
# placement helpers and input errors
# ---------------------------------------------------------------------------------------------


def test_placement_helpers(mesh):
    x = jnp.arange(12.0).reshape(6, 2)
    s = shard_leading({"x": x, "c": jnp.asarray(2.0)}, mesh)
    assert _is_split(s["x"], mesh) and s["c"].sharding.is_fully_replicated
    odd = shard_leading(jnp.ones(5), mesh, strict=False)  # uneven: kept whole on each device
    assert odd.sharding.is_fully_replicated and len(odd.sharding.device_set) == 2
    r = replicate(x, mesh)
    assert r.sharding.is_fully_replicated and len(r.sharding.device_set) == 2
    # Inside jit an uneven split is fine (XLA pads the last shard) and changes nothing.
    f = jax.jit(lambda v: jnp.sum(constrain_leading(v, mesh) ** 2))
    np.testing.assert_allclose(f(jnp.arange(5.0)), 30.0, rtol=0, atol=0)
    assert collectives(f.lower(jnp.arange(5.0)).compile().as_text())["all-reduce"] >= 1


def test_bad_mesh_errors(mesh):
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        check_mesh(jax.devices())
    explicit = jax.make_mesh((2,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
    with pytest.raises(ValueError, match="Auto"):
        check_mesh(explicit)
    with pytest.raises(ValueError, match="multiple of 2"):
        shard_leading(jnp.ones((3, 2)), mesh)
    prob = _advection()
    with pytest.raises(ValueError, match=r"n_samples = 201 .*multiple of 2"):
        pds.solve(prob, pds.NeuralIVP(**{**IVP, "n_samples": 201}), dt0=0.1, mesh=mesh)
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        pds.solve(prob, pds.NeuralIVP(**IVP), dt0=0.1, mesh="data")
    with pytest.raises(TypeError, match="jax.sharding.Mesh"):
        pds.solve(P.poisson_disk(), pds.DTPINN(**PINN_SMALL), max_steps=1, mesh=2)


# ---------------------------------------------------------------------------------------------
# NeuralIVP: samples split
# ---------------------------------------------------------------------------------------------

C, SIGMA, X0, T = 0.5, 0.2, -0.3, 0.2


def _exact(x, t):
    return jnp.exp(-jnp.sum((x - (X0 + C * t)) ** 2) / (2 * SIGMA**2))


def _advection():
    return pds.PDEProblem(
        rhs=lambda u, x, t, args: -C * u.partial(0),
        u0=lambda x: _exact(x, 0.0),
        tspan=(0.0, T),
        domain=pds.Box([-1.0], [1.0]),
        bc=pds.Dirichlet(0.0),
        solution=_exact,
    )


# mu = 1e-4 keeps the systems' condition number <= 1e4, and cg_rtol = 1e-12 solves them to
# rounding: the two runs then differ by ~ eps * kappa (with the default mu = 1e-6 and
# cg_rtol = 1e-7 a CG solve may stop one iteration apart: measured 2.6e-10 after 4 steps).
# Euler steps and no head tuning: fewer programs to compile (the step compiles once per placement).
IVP = {"width": 12, "depth": 2, "n_samples": 256, "n_eval_samples": 128, "rank": 16, "fit_steps": 60,
       "fit_batch": 128, "head_tuning": False, "mu": 1e-4, "cg_rtol": 1e-12, "restart": None,
       "tableau": pds.Euler.tableau}


@pytest.fixture(scope="module")
def ivp_runs(mesh):
    prob, solver = _advection(), pds.NeuralIVP(**IVP)
    kw = {"dt0": T / 2, "saveat": pds.SaveAt(ts=jnp.array([T / 2, T])), "key": jax.random.PRNGKey(4)}
    return pds.solve(prob, solver, **kw), pds.solve(prob, solver, mesh=mesh, **kw)


def test_neural_ivp_two_devices_equal_one(ivp_runs, mesh):
    one, two = ivp_runs
    assert two.ys.sharding.is_fully_replicated and len(two.ys.sharding.device_set) == 2
    assert _rel(one.ys, two.ys) < TOL
    s1, s2 = one.stats, two.stats
    np.testing.assert_array_equal(s1["cg_iterations"], s2["cg_iterations"])
    for name in ("residual_history", "error_history", "lambda_max_history"):
        assert _rel(s1[name], s2[name]) < 1e-8, name  # diagnostics: sums of squares, a sketch
    assert s1["num_steps"] == s2["num_steps"] == 2


def test_neural_ivp_gram_product_hlo_has_all_reduce(ivp_runs, mesh):
    """`M v = Jᵀ(J v)/n` on split samples: one all-reduce of the p-vector `Jᵀ(J v)` (the same
    product serves every CG iteration, F = Jᵀf/n and each column of the Nyström sketch)."""
    from jax.flatten_util import ravel_pytree
    from pdesolve.solvers import neural_ivp as ivp

    two = ivp_runs[1]
    params, static = eqx.partition(two.stats["model"], eqx.is_inexact_array)
    theta, unravel = ravel_pytree(params)
    net = ivp._Net(static, unravel)
    X = two.problem.domain.sample_interior(jax.random.PRNGKey(0), 256)

    def mv(theta, X, v):
        return ivp._gram_operator(net, theta, X)[0].mv(v)

    ref = jax.jit(mv)(theta, X, theta)
    args = (replicate(theta, mesh), shard_leading(X, mesh), replicate(theta, mesh))
    compiled = jax.jit(mv).lower(*args).compile()
    assert _rel(ref, compiled(*args)) < 1e-13
    assert collectives(compiled.as_text())["all-reduce"] == 1
    assert collectives(jax.jit(mv).lower(theta, X, theta).compile().as_text())["all-reduce"] == 0


# ---------------------------------------------------------------------------------------------
# DTPINN / PINN: collocation rows split
# ---------------------------------------------------------------------------------------------

PINN_SMALL = {"width": 12, "depth": 2, "n_nodes": 150, "n_test": 64, "steps_per_dispatch": 10}
STEPS = 10  # L-BFGS amplifies rounding: 30 steps gave 4e-10, 10 steps 7e-13


@pytest.mark.parametrize(
    "solver",
    [pds.DTPINN(**PINN_SMALL), pds.PINN(dtype="float64", **PINN_SMALL)],
    ids=["DTPINN", "PINN"],
)
def test_pinn_two_devices_equal_one(solver, mesh):
    # N = 150 nodes: 107 interior + 43 boundary, 193 with ghosts -- odd counts, split unevenly.
    prob = P.poisson_disk()
    one = pds.solve(prob, solver, max_steps=STEPS)
    two = pds.solve(prob, solver, max_steps=STEPS, mesh=mesh)
    l1, l2 = one.stats["loss_history"], two.stats["loss_history"]
    assert l1.size == l2.size == STEPS and l1[-1] < l1[0]
    assert _rel(l1, l2) < TOL
    assert _tree_rel(one.ys, two.ys) < TOL


def test_dtpinn_step_hlo(mesh):
    """The row-split loss gradient: all-reduce for the means and the parameter gradient; the
    neighbour values of the sparse products come from an all-gather of the network outputs."""
    from pdesolve.solvers import pinn

    cloud = pds.Ball([0.0, 0.0], 1.0).node_set(200)  # 150 interior + 50 boundary: even
    n_rows = cloud.n_interior + cloud.n_boundary
    lap = pds.rbf_fd_assemble(cloud, ["laplacian"], order=3, ghost=False)["pde"][("laplacian",)]
    L = pds.EllMatrix.from_scipy(lap)
    assert L.shape == (n_rows, n_rows)
    mlp = eqx.nn.MLP(2, "scalar", 8, 1, activation=jnp.tanh, dtype=jnp.float64, key=jax.random.PRNGKey(0))
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    nodes = jnp.asarray(cloud.points)

    def loss(params, nodes, L):
        u = jax.vmap(eqx.combine(params, static))(nodes)
        return jnp.mean((L @ u - 1.0) ** 2)

    vg = jax.jit(jax.value_and_grad(loss))
    ref = vg(params, nodes, L)
    args = (replicate(params, mesh), shard_leading(nodes, mesh), shard_leading(L, mesh))
    compiled = vg.lower(*args).compile()
    out = compiled(*args)
    assert _rel(ref[0], out[0]) < TOL and _tree_rel(ref[1], out[1]) < TOL
    counts = collectives(compiled.as_text())
    assert counts["all-reduce"] >= 1 and counts["all-gather"] >= 1, counts
    del pinn


# ---------------------------------------------------------------------------------------------
# neural-ODE training: a batch of trajectories split
# ---------------------------------------------------------------------------------------------


class _Field(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, t, y, args):
        return self.mlp(y) - 0.3 * y


A = -0.5 * jnp.eye(3)


def _batch_loss(solver):
    def loss(params, static, y0s):
        field = eqx.combine(params, static)

        def one(y0):
            kw = {"linear": A} if isinstance(solver, pds.IMEXRK) else {}
            prob = pds.NeuralODEProblem(field, y0, (0.0, 1.0), None, **kw)
            return pds.solve(prob, solver, dt0=0.25).ys[-1]

        return jnp.mean(jnp.sum(jax.vmap(one)(y0s) ** 2, axis=-1))

    return jax.jit(jax.value_and_grad(loss), static_argnums=1)


@pytest.mark.parametrize(
    "solver",
    [pds.RK4(), pds.ReversibleRK(pds.RK4()), pds.IMEXRK("L2")],
    ids=["RK4", "ReversibleRK", "IMEXRK"],
)
def test_ode_batch_gradient_two_devices_equal_one(solver, mesh):
    mlp = eqx.nn.MLP(3, 3, 6, 1, activation=jnp.tanh, dtype=jnp.float64, key=jax.random.PRNGKey(0))
    params, static = eqx.partition(_Field(mlp), eqx.is_inexact_array)
    y0s = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    vg = _batch_loss(solver)
    l1, g1 = vg(params, static, y0s)
    args = (replicate(params, mesh), shard_leading(y0s, mesh))
    compiled = vg.lower(args[0], static, args[1]).compile()
    l2, g2 = compiled(*args)
    assert _rel(l1, l2) < TOL and _tree_rel(g1, g2) < TOL
    leaf = jax.tree.leaves(g2)[0]
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 2
    # The mean over the batch and the parameter gradient summed over trajectories.
    assert collectives(compiled.as_text())["all-reduce"] >= 2


def test_train_two_devices_equal_one(mesh):
    """`pds.train(..., mesh=)`: trajectories split, model replicated; 3 Adam steps."""
    import optax

    mlp = eqx.nn.MLP(3, 3, 6, 1, activation=jnp.tanh, dtype=jnp.float64, key=jax.random.PRNGKey(2))
    y0s = jax.random.normal(jax.random.PRNGKey(3), (4, 3))

    def loss(field, y0s):
        def one(y0):
            return pds.solve(pds.NeuralODEProblem(field, y0, (0.0, 1.0)), pds.RK4(), dt0=0.25).ys[-1]

        return jnp.mean(jnp.sum(jax.vmap(one)(y0s) ** 2, axis=-1))

    kw = {"steps": 3, "data": y0s, "chunk": 3}
    m1, s1 = pds.train(loss, _Field(mlp), optax.adam(1e-2), **kw)
    m2, s2 = pds.train(loss, _Field(mlp), optax.adam(1e-2), mesh=mesh, **kw)
    assert s1["loss_history"].size == 3 and s1["loss_history"][-1] < s1["loss_history"][0]
    assert _rel(s1["loss_history"], s2["loss_history"]) < TOL
    assert _tree_rel(m1, m2) < TOL
    leaf = jax.tree.leaves(eqx.filter(m2, eqx.is_inexact_array))[0]
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 2
    # Minibatches drawn from split data stay split (and equal the 1-device draws).
    kw = {**kw, "batch_size": 2, "key": jax.random.PRNGKey(7)}
    m3, s3 = pds.train(loss, _Field(mlp), optax.adam(1e-2), **kw)
    m4, s4 = pds.train(loss, _Field(mlp), optax.adam(1e-2), mesh=mesh, **kw)
    assert _rel(s3["loss_history"], s4["loss_history"]) < TOL
    assert _tree_rel(m3, m4) < TOL


def test_ensemble_two_devices_equal_one(mesh):
    """`solve(EnsembleProblem, ..., mesh=)`: members split over the devices, same answers."""
    def vf(t, y, w):
        return jnp.stack([y[1], -w * y[0]])

    base = pds.NeuralODEProblem(vf, jnp.array([1.0, 0.0]), (0.0, 2.0), 1.0)
    ens = pds.EnsembleProblem(base, y0=jax.random.normal(jax.random.PRNGKey(4), (4, 2)),
                              args=jnp.linspace(0.5, 2.0, 4))
    kw = dict(saveat=pds.SaveAt(ts=jnp.linspace(0, 2, 5)), controller=pds.PIDController(rtol=1e-8, atol=1e-8))
    one = pds.solve(ens, pds.Tsit5(), **kw)
    two = pds.solve(ens, pds.Tsit5(), mesh=mesh, **kw)
    assert _rel(one.ys, two.ys) < TOL
    np.testing.assert_array_equal(np.asarray(one.stats["num_steps"]), np.asarray(two.stats["num_steps"]))
    assert _is_split(two.ys, mesh)
    with pytest.raises(ValueError, match="cannot split the ensemble's members = 3"):
        pds.solve(pds.EnsembleProblem(base, args=jnp.ones(3)), pds.Tsit5(), mesh=mesh, **kw)
