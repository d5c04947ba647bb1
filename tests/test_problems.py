"""Problem construction, validation of bad inputs, remake, and solve dispatch."""

import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds


def vf(t, y, args):
    return -y


Y0 = jnp.array([1.0, 2.0])


def test_neural_ode_problem_valid_and_remake():
    prob = pds.NeuralODEProblem(vf, Y0, (0.0, 1.0))
    p2 = pds.remake(prob, tspan=(0.0, 2.0))
    assert p2.tspan == (0.0, 2.0) and p2.vector_field is vf
    with pytest.raises(TypeError, match="no field"):
        pds.remake(prob, y_0=Y0)
    with pytest.raises(ValueError, match="tspan"):
        pds.remake(prob, tspan=(1.0, 1.0))  # validation runs again


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(y0=jnp.array([1.0, jnp.nan])), ValueError, "y0"),
        (dict(y0=jnp.array([1, 2])), TypeError, "y0"),
        (dict(tspan=(0.0, 0.0)), ValueError, "empty"),
        (dict(tspan=(1.0, 0.0)), ValueError, "backward=True"),
        (dict(tspan=(0.0, 1.0), backward=True), ValueError, "backward=True"),
        (dict(tspan=(0.0, np.inf)), ValueError, "finite"),
        (dict(tspan=(0.0,)), ValueError, "pair"),
        (dict(vector_field=lambda t, y, a: y[:1]), ValueError, "shape"),
        (dict(vector_field=lambda t, y, a: (y, y)), ValueError, "structure"),
        (dict(vector_field=3.0), TypeError, "vector_field"),
        (dict(linear=jnp.eye(3)), ValueError, "linear"),
    ],
)
def test_neural_ode_problem_bad_inputs(kwargs, exc, match):
    base = dict(vector_field=vf, y0=Y0, tspan=(0.0, 1.0))
    base.update(kwargs)
    backward = base.pop("backward", False)
    linear = base.pop("linear", None)
    with pytest.raises(exc, match=match):
        pds.NeuralODEProblem(base["vector_field"], base["y0"], base["tspan"], linear=linear, backward=backward)


def test_pytree_state_and_linear_part():
    y0 = {"a": jnp.ones(2), "b": jnp.zeros((2, 2))}
    prob = pds.NeuralODEProblem(lambda t, y, args: {"a": -y["a"], "b": y["b"] + 1.0}, y0, (0.0, 1.0))
    sol = pds.solve(prob, pds.Tsit5(), controller=pds.PIDController(rtol=1e-10, atol=1e-12))
    np.testing.assert_allclose(sol.ys["a"][-1], np.exp(-1.0) * np.ones(2), rtol=1e-9)
    np.testing.assert_allclose(sol.ys["b"][-1], (np.e - 1) * np.ones((2, 2)), rtol=1e-9)
    a = jnp.array([[-1.0, 0.5], [0.0, -2.0]])
    lin = pds.NeuralODEProblem(lambda t, y, args: jnp.zeros_like(y), Y0, (0.0, 1.0), linear=a)
    sol = pds.solve(lin, pds.Dopri5(), controller=pds.PIDController(rtol=1e-10, atol=1e-12))
    import scipy.linalg

    np.testing.assert_allclose(sol.ys[-1], scipy.linalg.expm(np.asarray(a)) @ np.asarray(Y0), rtol=1e-8)


def _u0(x):
    return jnp.prod(1 - x**2)


def _rhs(u, x, t, args):
    return u.laplacian


def test_pde_problem_valid():
    prob = pds.PDEProblem(rhs=_rhs, domain=pds.Box([-1.0, -1.0], [1.0, 1.0]), bc=pds.Dirichlet(0.0),
                          u0=_u0, tspan=(0.0, 1.0))
    assert not prob.is_steady and prob.dim == 2
    steady = pds.PDEProblem(residual=lambda u, x, a: u.laplacian - 1.0, domain=pds.Ball(jnp.zeros(2), 1.0),
                            bc=pds.Dirichlet(0.0))
    assert steady.is_steady


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(residual=lambda u, x, a: u.value), ValueError, "exactly one"),
        (dict(rhs=None), ValueError, "exactly one"),
        (dict(u0=None), ValueError, "u0"),
        (dict(tspan=None), ValueError, "tspan"),
        (dict(tspan=(1.0, 0.0)), ValueError, "backward"),
        (dict(u0=lambda x: jnp.log(x[0])), ValueError, "NaN"),
        (dict(u0=lambda x: jnp.ones((2, 2))), ValueError, "scalar or a 1-D"),
        (dict(rhs=lambda u, x, t, a: jnp.ones(3)), ValueError, "rhs"),
        (dict(domain="unit disk"), TypeError, "domain"),
        (dict(bc=0.0), TypeError, "bc"),
        (dict(solution=lambda x, t: jnp.ones(2)), ValueError, "solution"),
    ],
)
def test_pde_problem_bad_inputs(kwargs, exc, match):
    base = dict(rhs=_rhs, domain=pds.Box([-1.0, -1.0], [1.0, 1.0]), bc=pds.Dirichlet(0.0), u0=_u0,
                tspan=(0.0, 1.0))
    base.update(kwargs)
    with pytest.raises(exc, match=match):
        pds.PDEProblem(**base)


def test_solve_dispatch_errors():
    prob = pds.PDEProblem(rhs=_rhs, domain=pds.Box([-1.0], [1.0]), u0=_u0, tspan=(0.0, 1.0))
    with pytest.raises(TypeError, match="cannot solve a PDEProblem"):
        pds.solve(prob, pds.RK4(), dt0=0.1)
    ode = pds.NeuralODEProblem(vf, Y0, (0.0, 1.0))
    with pytest.raises(TypeError, match="solver instance"):
        pds.solve(ode, pds.RK4, dt0=0.1)
    with pytest.raises(TypeError, match="problem"):
        pds.solve((vf, Y0), pds.RK4(), dt0=0.1)
    with pytest.raises(TypeError, match="SaveAt"):
        pds.solve(ode, pds.RK4(), dt0=0.1, saveat=[0.5])


def test_saveat_bad_inputs():
    with pytest.raises(ValueError, match="monotonic"):
        pds.SaveAt(ts=[0.0, 0.5, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        pds.SaveAt(ts=[0.0, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        pds.SaveAt(ts=np.zeros((2, 2)))
