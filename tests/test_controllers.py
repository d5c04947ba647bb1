"""Step-size controller invariants and saving at requested times."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pdesolve as pds

from _ode_helpers import as_f64, exact_linear, linear_field, random_linear_system
from _strategies import bounded_floats, linear_systems, save_grids, step_grids, tolerances


@functools.lru_cache(maxsize=None)
def _adaptive(name, pcoeff=0.0, icoeff=1.0):
    """Jitted `(A, y0, t1, rtol, atol) -> (ts, ys, stats)` saving every accepted step. The
    PID coefficients are static (the controller branches on them), so they are
    parametrised; everything else is traced."""
    solver = getattr(pds, name)()

    @jax.jit
    def run(a, y0, t1, rtol, atol):
        prob = pds.NeuralODEProblem(linear_field, y0, (0.0, t1), a)
        ctrl = pds.PIDController(rtol=rtol, atol=atol, pcoeff=pcoeff, icoeff=icoeff)
        sol = pds.solve(prob, solver, controller=ctrl, saveat=pds.SaveAt(steps=True), max_steps=4000,
                        throw=False)
        return sol.ts, sol.ys, sol.stats, sol.result

    return run


@pytest.mark.parametrize("name,pcoeff,icoeff", [("Dopri5", 0.0, 1.0), ("Tsit5", 0.4, 0.3), ("Bosh3", 0.0, 1.0)])
@settings(max_examples=10, deadline=None)
@given(system=linear_systems(), t1=bounded_floats(0.5, 3.0), tols=tolerances())
def test_tolerance_respected(name, pcoeff, icoeff, system, t1, tols):
    """Global error at every accepted step stays within a small multiple of the tolerance
    (`100 (atol + rtol |y|)`), for a drawn system, horizon and (rtol, atol)."""
    a, y0 = system.a, system.y0
    rtol, atol = tols
    ts, ys, stats, result = _adaptive(name, pcoeff, icoeff)(as_f64(a), as_f64(y0), as_f64(t1), as_f64(rtol),
                                                          as_f64(atol))
    assert result == pds.RESULTS.successful
    n = int(stats["num_accepted_steps"])
    ts, ys = np.asarray(ts)[:n], np.asarray(ys)[:n]
    assert ts[-1] == t1
    assert np.all(np.diff(ts) > 0), "accepted times must increase strictly"
    for t, y in zip(ts, ys):
        exact = system.exact(t)
        assert np.linalg.norm(y - exact) <= 100 * (atol + rtol * np.linalg.norm(exact)), (t, rtol, atol)


@jax.jit
def _dt_bounded(a, y0, t1, dtmin, dtmax):
    prob = pds.NeuralODEProblem(linear_field, y0, (0.0, t1), a)
    ctrl = pds.PIDController(rtol=1e-3, atol=1e-6, dtmin=dtmin, dtmax=dtmax)
    return pds.solve(prob, pds.Dopri5(), controller=ctrl, saveat=pds.SaveAt(t0=True, steps=True)).ts


@settings(max_examples=10, deadline=None)
@given(system=linear_systems(), t1=bounded_floats(0.5, 3.0), dtmin=bounded_floats(1e-3, 2e-2),
       dtmax=bounded_floats(0.05, 0.3))
def test_dtmin_dtmax_honoured(system, t1, dtmin, dtmax):
    ts = np.asarray(_dt_bounded(as_f64(system.a), as_f64(system.y0), as_f64(t1), as_f64(dtmin), as_f64(dtmax)))
    ts = ts[np.isfinite(ts)]
    assert ts[-1] == t1
    dts = np.diff(ts)
    assert np.all(dts <= dtmax * (1 + 1e-12))
    assert np.all(dts[:-1] >= dtmin * (1 - 1e-12))  # only the final step may be clipped to t1


def test_dtmin_failure_reported():
    """A stiff problem with a large dtmin cannot meet the tolerance: dt_min_reached, not silence."""
    prob = pds.NeuralODEProblem(lambda t, y, a: -1e4 * (y - jnp.cos(t)), jnp.array([0.0]), (0.0, 1.0))
    ctrl = pds.PIDController(rtol=1e-8, atol=1e-10, dtmin=0.05)
    sol = pds.solve(prob, pds.Dopri5(), controller=ctrl, throw=False)
    assert sol.result == pds.RESULTS.dt_min_reached
    assert not bool(sol.successful)
    with pytest.raises(Exception, match="dtmin"):
        pds.solve(prob, pds.Dopri5(), controller=ctrl)


@jax.jit
def _step_to(a, y0, ts):
    prob = pds.NeuralODEProblem(linear_field, y0, (0.0, 1.0), a)
    sol = pds.solve(prob, pds.RK4(), controller=pds.StepTo(ts), saveat=pds.SaveAt(steps=True), max_steps=64)
    return sol.ts, sol.stats["num_accepted_steps"]


@settings(max_examples=10, deadline=None)
@given(system=linear_systems(), ts=step_grids(0.0, 1.0, 7))
def test_step_to_hits_its_times(system, ts):
    """StepTo on a drawn grid of 8 times (gaps with ratios up to 100): one accepted step per
    interval, landing on every time to the last bit."""
    out_ts, n = _step_to(as_f64(system.a), as_f64(system.y0), as_f64(ts))
    assert int(n) == len(ts) - 1
    np.testing.assert_allclose(np.asarray(out_ts)[: int(n)], ts[1:], rtol=0, atol=1e-15)


class RejectEveryOther(pds.AbstractStepController):
    """Custom controller (as in docs/custom-controller.md): fixed dt, rejects every 2nd attempt."""

    dt: float
    requires_error_estimate = False
    resume_after_clip = False

    def check(self, t0, t1):
        pass

    def init(self, f, t0, t1, y0, dt0, args, error_order):
        return jnp.asarray(self.dt, jnp.result_type(t0)), jnp.asarray(0)

    def adapt(self, t, dt, y, y_next, y_error, error_order, state):
        accept = state % 2 == 1
        return accept, jnp.asarray(self.dt, dt.dtype), state + 1, pds.RESULTS.successful


def test_custom_controller_and_rejections_never_advance_time():
    a, y0 = random_linear_system(2)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, 1.0), as_f64(a))
    saveat = pds.SaveAt(steps=True)
    sol = pds.solve(prob, pds.RK4(), controller=RejectEveryOther(0.125), saveat=saveat, max_steps=64)
    ref = pds.solve(prob, pds.RK4(), dt0=0.125, saveat=saveat, max_steps=64)
    assert int(sol.stats["num_accepted_steps"]) == 8
    assert int(sol.stats["num_rejected_steps"]) == 8
    np.testing.assert_array_equal(sol.ts[:8], ref.ts[:8])
    np.testing.assert_array_equal(sol.ys[:8], ref.ys[:8])


@settings(max_examples=10, deadline=None)
@given(system=linear_systems(), span=bounded_floats(0.5, 3.0).flatmap(
    lambda t1: st.tuples(st.just(t1), save_grids(0.0, t1, 5), bounded_floats(0.0, t1))))
def test_saveat_ts_exact_times_and_values(system, span):
    """SaveAt(t0, ts, t1) with a drawn sorted grid of 5 times in [0, t1] plus t0 and a
    duplicate of the first: exactly the requested times come back, each with the solver's
    accuracy, and `evaluate(t)` at a drawn time in between too."""
    t1, grid, tq = span
    a, y0 = system.a, system.y0
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, as_f64(t1)), as_f64(a))
    ts = np.sort(np.concatenate([[0.0], grid, grid[:1]]))  # includes t0 and a duplicate
    sol = pds.solve(prob, pds.Tsit5(), controller=pds.PIDController(rtol=1e-10, atol=1e-12),
                    saveat=pds.SaveAt(t0=True, ts=ts, t1=True))
    np.testing.assert_array_equal(np.asarray(sol.ts), np.concatenate([[0.0], ts, [t1]]))
    for t, y in zip(np.asarray(sol.ts), np.asarray(sol.ys)):
        np.testing.assert_allclose(y, system.exact(t), rtol=1e-8, atol=1e-9)
    # evaluate(t) between saved times has the solver's accuracy
    np.testing.assert_allclose(sol.evaluate(tq), system.exact(tq), rtol=1e-8, atol=1e-9)


def test_constant_steps_land_on_grid_with_saves_between():
    a, y0 = random_linear_system(4)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, 1.0), as_f64(a))
    sol = pds.solve(prob, pds.RK4(), dt0=0.1, saveat=pds.SaveAt(ts=[0.25], steps=True), max_steps=32)
    ts = np.asarray(sol.ts)[1:]
    ts = ts[np.isfinite(ts)]
    expected = np.sort(np.concatenate([np.arange(1, 11) / 10, [0.25]]))
    np.testing.assert_allclose(ts, expected, rtol=0, atol=1e-14)


def test_backward_integration():
    a, y0 = random_linear_system(5)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (1.0, 0.0), as_f64(a), backward=True)
    sol = pds.solve(prob, pds.Dopri5(), controller=pds.PIDController(rtol=1e-10, atol=1e-12),
                    saveat=pds.SaveAt(ts=[0.5, 0.0]))
    np.testing.assert_allclose(sol.ys[-1], exact_linear(a, y0, -1.0), rtol=1e-8)
    np.testing.assert_allclose(sol.ys[0], exact_linear(a, y0, -0.5), rtol=1e-8)


def test_max_steps_and_nonfinite_reported():
    a, y0 = random_linear_system(6)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, 1.0), as_f64(a))
    sol = pds.solve(prob, pds.RK4(), dt0=0.01, max_steps=10, throw=False)
    assert sol.result == pds.RESULTS.max_steps_reached
    blow = pds.NeuralODEProblem(lambda t, y, a: y**2, jnp.array([10.0]), (0.0, 10.0))
    sol = pds.solve(blow, pds.Euler(), dt0=0.5, throw=False)
    assert sol.result == pds.RESULTS.nonfinite
    with pytest.raises(Exception, match="max_steps"):
        pds.solve(prob, pds.RK4(), dt0=0.01, max_steps=10)


def test_fevals_counted():
    a, y0 = random_linear_system(6)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, 1.0), as_f64(a))
    calls = []
    for name, per_step, init in [("RK4", 4, 0), ("Dopri5", 6, 1), ("Bosh3", 3, 1), ("Euler", 1, 0)]:
        sol = pds.solve(prob, getattr(pds, name)(), dt0=0.1)
        assert int(sol.stats["num_fevals"]) == per_step * 10 + init, name
        calls.append(int(sol.stats["num_steps"]))
    assert calls == [10, 10, 10, 10]


def test_controller_bad_inputs():
    with pytest.raises(ValueError, match="rtol"):
        pds.PIDController(rtol=-1.0, atol=1e-6)
    with pytest.raises(ValueError, match="both be 0"):
        pds.PIDController(rtol=0.0, atol=0.0)
    with pytest.raises(ValueError, match="dtmin"):
        pds.PIDController(rtol=1e-3, atol=1e-6, dtmin=1.0, dtmax=0.1)
    with pytest.raises(ValueError, match="factormin"):
        pds.PIDController(rtol=1e-3, atol=1e-6, factormin=2.0)
    with pytest.raises(ValueError, match="strictly monotonic"):
        pds.StepTo([0.0, 0.5, 0.5, 1.0])
    a, y0 = random_linear_system(0)
    prob = pds.NeuralODEProblem(linear_field, as_f64(y0), (0.0, 1.0), as_f64(a))
    with pytest.raises(ValueError, match="dt0"):
        pds.solve(prob, pds.RK4())
    with pytest.raises(ValueError, match="embedded error estimate"):
        pds.solve(prob, pds.RK4(), controller=pds.PIDController(rtol=1e-6, atol=1e-8))
    with pytest.raises(ValueError, match="StepTo"):
        pds.solve(prob, pds.RK4(), controller=pds.StepTo([0.0, 0.5]))
    with pytest.raises(ValueError, match="inside tspan"):
        pds.solve(prob, pds.RK4(), dt0=0.1, saveat=pds.SaveAt(ts=[0.5, 2.0]))
    with pytest.raises(TypeError, match="controller"):
        pds.solve(prob, pds.RK4(), dt0=0.1, controller="pid")
    with pytest.raises(ValueError, match="saves nothing"):
        pds.SaveAt(t1=False)


