"""`solve(..., adjoint=...)`: forward mode (jvp, jacfwd, hessian) through every explicit and
IMEX solver, the refusals, `Solution` as a pytree under jit/vmap, run-time checks of traced
times, user errors that keep their type, and random `SaveAt(ts)` grids (hypothesis)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds

from _grad_matrix import SOLVERS, compiled_loss, directions, make_loss, point


@pytest.mark.parametrize("solver", SOLVERS)
def test_jvp_forward_mode_equals_central_differences(solver):
    """jax.jvp with ForwardMode through every solver, tangents in θ, y0 and args."""
    loss = make_loss(solver, "constant", "ts", adjoint=pds.ForwardMode())
    q = point(solver)
    dyn, static = eqx.partition(q, eqx.is_inexact_array)
    jvp = eqx.filter_jit(lambda d, v: jax.jvp(lambda x: loss(eqx.combine(x, static)), (d,), (v,))[1])
    ref = compiled_loss(solver, "constant", "ts")
    eps = 1e-6
    for name, d in directions(q):
        d = eqx.filter(d, eqx.is_inexact_array)
        tangent = float(jvp(dyn, d))
        fd = float(ref(eqx.combine(jax.tree.map(lambda x, v: x + eps * v, dyn, d), static))
                   - ref(eqx.combine(jax.tree.map(lambda x, v: x - eps * v, dyn, d), static))) / (2 * eps)
        assert np.isfinite(tangent)
        assert abs(tangent - fd) <= 1e-7 * max(1.0, abs(fd)), (name, tangent, fd)


def _final_state(solver, controller, adjoint):
    imex = solver == "IMEXRK"
    s = {"Tsit5": pds.Tsit5(), "ReversibleRK": pds.ReversibleRK(base=pds.Bosh3()), "IMEXRK": pds.IMEXRK("ARK3")}[solver]
    kw = dict(dt0=0.1) if controller == "constant" else dict(controller=pds.PIDController(rtol=1e-8, atol=1e-10))
    model = point(solver)[0]

    def f(y0):
        prob = pds.NeuralODEProblem(model, y0, (0.0, 1.0), {"scale": jnp.array(0.8)},
                                    linear=-0.5 * jnp.eye(2) if imex else None)
        return pds.solve(prob, s, adjoint=adjoint, saveat=pds.SaveAt(ts=jnp.array([0.0, 0.5, 1.0])), **kw).ys

    return f


@pytest.mark.parametrize("solver,controller", [("Tsit5", "pid"), ("ReversibleRK", "constant"), ("IMEXRK", "pid")])
def test_jacfwd_equals_jacrev_and_finite_differences(solver, controller):
    y0 = jnp.array([0.4, -0.3])
    fwd = jax.jit(jax.jacfwd(_final_state(solver, controller, pds.DirectAdjoint())))(y0)
    fwd_only = jax.jit(jax.jacfwd(_final_state(solver, controller, pds.ForwardMode())))(y0)
    rev = jax.jit(jax.jacrev(_final_state(solver, controller, None)))(y0)
    np.testing.assert_allclose(fwd, rev, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fwd_only, rev, rtol=1e-10, atol=1e-12)
    f = jax.jit(_final_state(solver, controller, None))
    eps = 1e-6
    fd = jnp.stack([(f(y0.at[i].add(eps)) - f(y0.at[i].add(-eps))) / (2 * eps) for i in range(2)], axis=-1)
    np.testing.assert_allclose(fwd, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("solver", ["Dopri5", "IMEXRK"])
def test_hessian_equals_finite_differences_of_the_gradient(solver):
    loss = make_loss(solver, "constant", "ts_with_t0", adjoint=pds.DirectAdjoint())
    model, y0, args = point(solver)
    h = jax.jit(jax.hessian(lambda y: loss((model, y, args))))(y0)
    g = jax.jit(jax.grad(lambda y: loss((model, y, args))))
    eps = 1e-5
    fd = jnp.stack([(g(y0.at[i].add(eps)) - g(y0.at[i].add(-eps))) / (2 * eps) for i in range(2)], axis=-1)
    assert np.all(np.isfinite(h))
    np.testing.assert_allclose(h, h.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-8)


def _decay(a, solver=None, adjoint=None, **kw):
    p = pds.NeuralODEProblem(lambda t, y, args: -args * y, jnp.array([1.0, 2.0]), (0.0, 1.0), a)
    return jnp.sum(pds.solve(p, solver or pds.Tsit5(), adjoint=adjoint, **(kw or dict(dt0=0.1))).ys)


def test_refusals_name_the_adjoints_a_solver_takes():
    with pytest.raises(ValueError, match="ReversibleRK cannot use DiscreteAdjoint; it takes: ReversibleAdjoint, "
                                         "RecursiveCheckpointAdjoint, DirectAdjoint, ForwardMode"):
        _decay(0.5, pds.ReversibleRK(base=pds.RK4()), pds.DiscreteAdjoint())
    with pytest.raises(ValueError, match="Tsit5 cannot use ReversibleAdjoint"):
        _decay(0.5, adjoint=pds.ReversibleAdjoint())
    with pytest.raises(TypeError, match="`adjoint` must be a pdesolve adjoint"):
        _decay(0.5, adjoint="backprop")
    with pytest.raises(ValueError, match="checkpoints"):
        pds.RecursiveCheckpointAdjoint(checkpoints=0)
    # Reverse mode through ForwardMode, forward mode through the default: say which to use.
    with pytest.raises(RuntimeError, match="ForwardMode\\(\\)\\) supports forward mode only"):
        jax.grad(lambda a: _decay(a, adjoint=pds.ForwardMode()))(0.5)
    with pytest.raises(TypeError) as info:
        jax.jvp(_decay, (0.5,), (1.0,))
    assert any("adjoint=pds.DirectAdjoint()" in n for n in info.value.__notes__)


def test_neural_ivp_refuses_adjoint_with_a_hint():
    from _ivp_helpers import make_advection

    prob = make_advection()
    with pytest.raises(TypeError, match="NeuralIVP does not take the option `adjoint`"):
        pds.solve(prob, pds.NeuralIVP(), adjoint=pds.DirectAdjoint())


def test_solution_is_a_pytree_through_jit_and_vmap():
    prob = pds.NeuralODEProblem(lambda t, y, args: -args * y, jnp.array([1.0, 2.0]), (0.0, 1.0), 0.5)
    ctrl = pds.PIDController(rtol=1e-8, atol=1e-10)

    def run(a):
        return pds.solve(pds.remake(prob, args=a), pds.Tsit5(), controller=ctrl,
                         saveat=pds.SaveAt(ts=jnp.linspace(0.0, 1.0, 5)), throw=False)

    sol = jax.jit(run)(0.5)
    assert isinstance(sol, pds.Solution) and bool(sol.successful)
    np.testing.assert_allclose(sol.evaluate(0.3), jnp.array([1.0, 2.0]) * np.exp(-0.15), rtol=1e-7)
    assert callable(sol.problem.vector_field) and isinstance(sol.solver, pds.Tsit5)
    a = jnp.array([0.5, 2.0, 8.0])
    batch = jax.vmap(run)(a)
    assert batch.ys.shape == (3, 5, 2) and pds.result_code(batch.result).shape == (3,)
    steps = np.asarray(batch.stats["num_steps"])
    assert steps.shape == (3,) and len(set(steps.tolist())) > 1  # members took different steps
    for k in range(3):
        np.testing.assert_allclose(batch.ys[k], run(a[k]).ys, rtol=1e-12)
    # A member that fails reports its own code.
    def short(a):
        return pds.solve(pds.remake(prob, args=a), pds.Tsit5(), controller=ctrl, max_steps=12, throw=False)

    bad = jax.vmap(short)(a)
    codes = [int(pds.result_code(short(x).result)) for x in a]
    assert np.asarray(pds.result_code(bad.result)).tolist() == codes
    assert len(set(codes)) == 2  # some members finish, some hit max_steps


_T = jnp.array([0.2, 0.5])


@functools.lru_cache(maxsize=None)
def _traced_solve():
    @jax.jit
    def run(ts, t1):
        p = pds.NeuralODEProblem(lambda t, y, args: -y, jnp.array([1.0, 2.0]), (0.0, t1))
        return pds.result_code(pds.solve(p, pds.Tsit5(), dt0=0.1, saveat=pds.SaveAt(ts=ts), throw=False).result)

    return run


@pytest.mark.parametrize("ts,t1,ok", [
    ([0.2, 0.5], 1.0, True),
    ([0.5, 0.2], 1.0, False),        # unsorted
    ([0.2, 1.5], 1.0, False),        # beyond t1
    ([-0.1, 0.5], 1.0, False),       # before t0
    ([0.2, 0.5], -1.0, False),       # t1 < t0 without backward=True
    ([0.2, 0.5], float("nan"), False),
    ([0.2, float("nan")], 1.0, False),
])
def test_traced_times_are_checked_at_run_time(ts, t1, ok):
    code = _traced_solve()(jnp.asarray(ts), jnp.asarray(t1))
    want = pds.RESULTS.successful if ok else pds.RESULTS.invalid_times
    assert int(code) == int(pds.result_code(want))


def test_traced_times_raise_with_throw():
    @eqx.filter_jit
    def run(ts):
        p = pds.NeuralODEProblem(lambda t, y, args: -y, jnp.array([1.0, 2.0]), (0.0, 1.0))
        return pds.solve(p, pds.Tsit5(), dt0=0.1, saveat=pds.SaveAt(ts=ts)).ys

    with pytest.raises(Exception, match="times of the solve are invalid"):
        jax.block_until_ready(run(jnp.array([0.5, 0.2])))


def test_python_if_on_a_tracer_keeps_its_type_and_names_the_cause():
    def vf(t, y, args):
        if y[0] > 0:
            return -y
        return y

    with pytest.raises(jax.errors.TracerBoolConversionError) as info:
        pds.NeuralODEProblem(vf, jnp.array([1.0, 2.0]), (0.0, 1.0))
    assert any("vector_field(t0, y0, args)" in n and "jnp.where" in n for n in info.value.__notes__)

    def rhs(u, x, t, args):
        if u.value > 0:
            return u.laplacian
        return -u.laplacian

    with pytest.raises(jax.errors.TracerBoolConversionError) as info:
        pds.PDEProblem(rhs, domain=pds.Box([0.0], [1.0]), u0=lambda x: jnp.sin(x[0]), tspan=(0.0, 1.0))
    assert any("rhs(u, x, t, args)" in n and "jax.lax.cond" in n for n in info.value.__notes__)


# ----------------------------------------------------------------- hypothesis: grids and batches

@functools.lru_cache(maxsize=None)
def _grid_fns():
    model = point("Tsit5")[0]
    ctrl = pds.PIDController(rtol=1e-9, atol=1e-11)

    def loss(y0, scale, ts):
        prob = pds.NeuralODEProblem(model, y0, (0.0, 1.0), {"scale": scale})
        ys = pds.solve(prob, pds.Tsit5(), controller=ctrl, saveat=pds.SaveAt(t0=True, ts=ts), max_steps=512).ys
        return jnp.sum(ys**2) + jnp.sum(jnp.sin(3 * ys))

    grad = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, 0, None)))
    return jax.jit(loss), grad


_edges = st.sampled_from([0.0, 1.0, 0.5, 0.5 + 1e-9, 1e-12, 1.0 - 1e-12])
_times = st.one_of(_edges, st.floats(0.0, 1.0, allow_nan=False))


@given(ts=st.lists(_times, min_size=5, max_size=5).map(sorted),
       scales=st.lists(st.floats(0.2, 2.0), min_size=3, max_size=3),
       y0s=st.lists(st.floats(-1.0, 1.0), min_size=6, max_size=6))
def test_random_grids_and_batches_give_finite_right_gradients(ts, scales, y0s):
    """SaveAt(ts) grids with t0, t1, duplicates and points far closer than a step, a batch of
    problems under PID in one vmap(grad): every entry finite and equal to central FD."""
    loss, grad = _grid_fns()
    ts = jnp.asarray(ts)
    y0 = jnp.asarray(y0s).reshape(3, 2)
    scale = jnp.asarray(scales)
    g_y0, g_s = grad(y0, scale, ts)
    assert np.all(np.isfinite(g_y0)) and np.all(np.isfinite(g_s))
    eps = 1e-4
    for k in range(3):
        fd_s = (loss(y0[k], scale[k] + eps, ts) - loss(y0[k], scale[k] - eps, ts)) / (2 * eps)
        assert abs(float(g_s[k] - fd_s)) <= 1e-5 * max(1.0, abs(float(fd_s)))
        fd_y = [(loss(y0[k].at[i].add(eps), scale[k], ts) - loss(y0[k].at[i].add(-eps), scale[k], ts)) / (2 * eps)
                for i in range(2)]
        np.testing.assert_allclose(g_y0[k], jnp.asarray(fd_y), rtol=1e-5, atol=1e-5)
