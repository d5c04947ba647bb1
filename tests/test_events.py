"""Events (`pds.Event`, `solve(..., event=...)`): terminal and recording events against closed
forms, event-time gradients (implicit function theorem) against finite differences and the
analytic derivative, events under vmap, saving around an event, IMEXRK, refusals."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pdesolve as pds

G = 9.81


def _ball(t, y, args):
    return jnp.stack([y[1], -G + 0.0 * y[0]])


def _landing(h0, v0):
    return (v0 + np.sqrt(v0**2 + 2 * G * h0)) / G


GROUND = pds.Event(lambda t, y, args: y[0], direction=-1)
PID = dict(controller=pds.PIDController(rtol=1e-8, atol=1e-8))


@functools.lru_cache(maxsize=None)
def _landing_solver(name, adaptive):
    solver = getattr(pds, name)()
    kw = PID if adaptive else dict(dt0=0.05, controller=pds.ConstantStepSize())

    @jax.jit
    def run(h0, v0):
        prob = pds.NeuralODEProblem(_ball, jnp.stack([h0, v0]), (0.0, 20.0))
        sol = pds.solve(prob, solver, event=GROUND, max_steps=2000, **kw)
        return sol.event_time, sol.event_state, sol.result, sol.stats["num_accepted_steps"]

    return run


@given(h0=st.floats(0.1, 50.0), v0=st.floats(-5.0, 20.0), name=st.sampled_from(["Tsit5", "Dopri5", "Bosh3"]),
       adaptive=st.booleans())
def test_projectile_lands_at_the_closed_form_time(h0, v0, name, adaptive):
    """The trajectory is a quadratic, which every interpolant here reproduces exactly: the
    event time is the closed form's to round-off, the state there has height 0."""
    t_ev, y_ev, result, n_acc = _landing_solver(name, adaptive)(jnp.asarray(h0), jnp.asarray(v0))
    assert result == pds.RESULTS.event_occurred
    expected = _landing(h0, v0)
    np.testing.assert_allclose(float(t_ev), expected, rtol=1e-9)
    np.testing.assert_allclose(float(y_ev[0]), 0.0, atol=1e-8 * max(1.0, h0))
    np.testing.assert_allclose(float(y_ev[1]), v0 - G * expected, rtol=1e-9, atol=1e-9)


def _event_time(v0, h0=1.0):
    prob = pds.NeuralODEProblem(_ball, jnp.stack([h0, v0]), (0.0, 10.0))
    return pds.solve(prob, pds.Tsit5(), event=GROUND, **PID).event_time


def test_event_time_gradient_matches_closed_form_and_finite_differences():
    v0 = 3.0
    g = float(jax.grad(_event_time)(v0))
    exact = (1.0 + v0 / np.sqrt(v0**2 + 2 * G)) / G
    eps = 1e-6
    fd = (float(_event_time(v0 + eps)) - float(_event_time(v0 - eps))) / (2 * eps)
    np.testing.assert_allclose(g, exact, rtol=1e-9)
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    gh = float(jax.grad(lambda h: _event_time(v0, h))(1.0))
    np.testing.assert_allclose(gh, 1.0 / np.sqrt(v0**2 + 2 * G), rtol=1e-9)


def test_event_state_gradient():
    """Impact speed v(t*) = −sqrt(v0² + 2 g h0): its derivative through the event time and
    the interpolant."""
    def impact(v0):
        prob = pds.NeuralODEProblem(_ball, jnp.stack([1.0, v0]), (0.0, 10.0))
        return pds.solve(prob, pds.Dopri5(), event=GROUND, **PID).event_state[1]

    v0 = 2.0
    np.testing.assert_allclose(float(impact(v0)), -np.sqrt(v0**2 + 2 * G), rtol=1e-9)
    np.testing.assert_allclose(float(jax.grad(impact)(v0)), -v0 / np.sqrt(v0**2 + 2 * G), rtol=1e-8)


def test_event_inside_vmap_members_stop_at_different_times():
    v0s = jnp.array([0.0, 3.0, 10.0, -0.5])
    times = jax.jit(jax.vmap(_event_time))(v0s)
    np.testing.assert_allclose(np.asarray(times), [_landing(1.0, float(v)) for v in v0s], rtol=1e-9)
    grads = jax.jit(jax.vmap(jax.grad(_event_time)))(v0s)
    np.testing.assert_allclose(np.asarray(grads), [(1 + v / np.sqrt(v * v + 2 * G)) / G for v in np.asarray(v0s)],
                               rtol=1e-8)


def test_recording_events_and_directions():
    """Non-terminal events record every crossing up to the terminal one, filtered by direction."""
    prob = pds.NeuralODEProblem(_ball, jnp.array([1.0, 3.0]), (0.0, 10.0))
    both = pds.Event(lambda t, y, a: y[0] - 1.2, terminal=False)
    up = pds.Event(lambda t, y, a: y[0] - 1.2, terminal=False, direction=1)
    down = pds.Event(lambda t, y, a: y[0] - 1.2, terminal=False, direction=-1)
    sol = pds.solve(prob, pds.Tsit5(), event=[both, up, down, GROUND], **PID)
    roots = np.sort(np.roots([-G / 2, 3.0, -0.2]))
    times = np.asarray(sol.event_times)
    np.testing.assert_allclose(times[0, :2], roots, rtol=1e-9)
    np.testing.assert_allclose(times[1, :1], roots[:1], rtol=1e-9)
    np.testing.assert_allclose(times[2, :1], roots[1:], rtol=1e-9)
    assert np.all(np.isinf(times[:3, 2:]))
    np.testing.assert_array_equal(np.asarray(sol.stats["num_events"]), [2, 1, 1, 1])
    assert int(sol.event_index) == 3
    np.testing.assert_allclose(float(times[3, 0]), float(sol.event_time))


def test_earliest_terminal_event_wins():
    prob = pds.NeuralODEProblem(_ball, jnp.array([1.0, 3.0]), (0.0, 10.0))
    apex = pds.Event(lambda t, y, a: y[1])  # v = 0 at t = 3/g, before the landing
    sol = pds.solve(prob, pds.Tsit5(), event=[GROUND, apex], **PID)
    assert int(sol.event_index) == 1
    np.testing.assert_allclose(float(sol.event_time), 3.0 / G, rtol=1e-9)


def test_saving_around_a_terminal_event():
    """Saved times after the event are not reached (inf), t1 holds the event state, and the
    last saved step is the event; the dense output ends at the event."""
    prob = pds.NeuralODEProblem(_ball, jnp.array([1.0, 3.0]), (0.0, 10.0))
    t_ev = _landing(1.0, 3.0)
    sol = pds.solve(prob, pds.Tsit5(), event=GROUND, saveat=pds.SaveAt(ts=jnp.linspace(0, 2, 5), t1=True), **PID)
    ts = np.asarray(sol.ts)
    np.testing.assert_allclose(ts[:2], [0.0, 0.5])
    assert np.all(np.isinf(ts[2:5])) and np.all(np.isinf(np.asarray(sol.ys)[2:5]))
    np.testing.assert_allclose(ts[5], t_ev, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(sol.ys)[5], np.asarray(sol.event_state))
    steps = pds.solve(prob, pds.Tsit5(), event=GROUND, saveat=pds.SaveAt(steps=True, dense=True), **PID)
    n = int(steps.stats["num_accepted_steps"])
    np.testing.assert_allclose(float(steps.ts[n - 1]), t_ev, rtol=1e-9)
    assert np.all(np.isinf(np.asarray(steps.ts)[n:]))
    np.testing.assert_allclose(np.asarray(steps.evaluate(t_ev / 2)), [1 + 3 * t_ev / 2 - G * t_ev**2 / 8, 3 - G * t_ev / 2],
                               rtol=1e-9)
    with pytest.raises(ValueError, match="covers"):
        steps.evaluate(t_ev + 0.1)


def test_no_crossing_is_a_plain_success():
    prob = pds.NeuralODEProblem(_ball, jnp.array([100.0, 0.0]), (0.0, 1.0))
    sol = pds.solve(prob, pds.Tsit5(), event=GROUND, **PID)
    assert sol.result == pds.RESULTS.successful
    assert np.isinf(float(sol.event_time)) and int(sol.event_index) == -1
    assert np.all(np.isnan(np.asarray(sol.event_state)))


def test_imex_event():
    """IMEXRK (linear part implicit): the oscillator's first zero of y0 at t = π/2."""
    A = jnp.array([[0.0, 1.0], [-1.0, 0.0]])
    prob = pds.NeuralODEProblem(lambda t, y, a: jnp.zeros_like(y), jnp.array([1.0, 0.0]), (0.0, 5.0), linear=A)
    sol = pds.solve(prob, pds.IMEXRK(), event=pds.Event(lambda t, y, a: y[0]), **PID)
    assert sol.successful and sol.result == pds.RESULTS.event_occurred
    np.testing.assert_allclose(float(sol.event_time), np.pi / 2, rtol=1e-6)


def test_backward_event():
    """Back in time from (t = 1, h = 0, v = −3): h(t) = −3τ − gτ²/2 with τ = t − 1 < 0. The
    start at h = 0 does not count; the ball is at h = 0 again at τ = −6/g, and first at
    h = 0.3 at the root of gτ²/2 + 3τ + 0.3 nearest zero."""
    prob = pds.NeuralODEProblem(_ball, jnp.array([0.0, -3.0]), (1.0, -5.0), backward=True)
    sol = pds.solve(prob, pds.Tsit5(), event=pds.Event(lambda t, y, a: y[0]), **PID)
    np.testing.assert_allclose(float(sol.event_time), 1.0 - 6.0 / G, rtol=1e-9)
    # (the error estimate of a quadratic is zero, so the steps are long: a crossing and its
    # return inside one step would go unseen; dtmax keeps the steps shorter than the arc)
    short = pds.PIDController(rtol=1e-8, atol=1e-8, dtmax=0.05)
    sol = pds.solve(prob, pds.Tsit5(), event=pds.Event(lambda t, y, a: y[0] - 0.3), controller=short)
    t_up = 1.0 + (-3.0 + np.sqrt(9.0 - 2 * G * 0.3)) / G
    np.testing.assert_allclose(float(sol.event_time), t_up, rtol=1e-9)


@pytest.mark.parametrize(
    "bad, match",
    [(dict(cond_fn=3.0), "callable"), (dict(cond_fn=lambda t, y, a: y[0], direction=2), "direction")],
)
def test_bad_events_raise(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        pds.Event(**bad)


def test_unsupported_solvers_and_shapes_raise():
    prob = pds.NeuralODEProblem(_ball, jnp.array([1.0, 3.0]), (0.0, 10.0))
    with pytest.raises(TypeError, match="does not take the option `event`.*Solvers taking `event`: .*Tsit5.*IMEXRK"):
        pds.solve(prob, pds.ReversibleRK(pds.Tsit5()), event=GROUND, dt0=0.01)
    with pytest.raises(TypeError, match="pds.Event"):
        pds.solve(prob, pds.Tsit5(), event=lambda t, y, a: y[0], **PID)
    with pytest.raises(ValueError, match="scalar"):
        pds.solve(prob, pds.Tsit5(), event=pds.Event(lambda t, y, a: y), **PID)
    sol = pds.solve(prob, pds.Tsit5(), **PID)
    with pytest.raises(AttributeError, match="no events"):
        sol.event_time
