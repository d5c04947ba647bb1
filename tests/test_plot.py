"""pds.plot: figures for field (NeuralIVP, DTPINN, PINN) and ODE solutions and stats dicts.

Invariants: the error maps hold |u - u_exact| at the grid points (reconstructed from the image's
extent), points outside a disk are masked, field and exact rows share colour limits, ODE lines
hold the saved states. Real solutions are tiny (seconds); a few hand-made `FieldSolution`s with a
known evaluator cover slices of 3-D domains and vector-valued fields cheaply.
"""

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pdesolve as pds
from pdesolve import problems as P

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

# ---------------------------------------------------------------------------------------------
# shared tiny solutions
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ode_sol():
    return pds.solve(
        P.lotka_volterra(), pds.Dopri5(), saveat=pds.SaveAt(ts=jnp.linspace(0.0, 20.0, 60)),
        controller=pds.PIDController(rtol=1e-6, atol=1e-8),
    )


@pytest.fixture(scope="module")
def dtpinn_sol():
    return pds.solve(P.poisson_disk(), pds.DTPINN(n_nodes=120, width=10, depth=2, n_test=256,
                                                  steps_per_dispatch=10), max_steps=20)


def _tiny_pinn_heat():
    """A real space-time PINN solve (~10-20 s of compiling on a loaded 2-core machine)."""
    solver = pds.PINN(n_nodes=80, time_slices=3, width=10, depth=2, n_test=256, steps_per_dispatch=10,
                      optimizer="adam", learning_rate=1e-2)
    return pds.solve(P.heat_disk(), solver, max_steps=20)


@pytest.fixture(scope="module")
def space_time_like_sol():
    """Shaped like a space-time PINN solution of heat_disk: `ts=None`, `sol(x, t)` for any t."""
    problem = P.heat_disk()
    sol = _fake_field(problem, None, lambda y: 0.05 * y[0])
    stats = {"loss_history": np.geomspace(10.0, 0.1, 20), "error_history": np.array([0.3, 0.2]),
                 "step_history": np.array([10, 20])}
    return pds.FieldSolution(ts=None, ys=None, stats=stats, result=sol.result, problem=problem,
                             solver=pds.PINN(), evaluator=sol.evaluator)


def _tiny_neural_ivp():
    """A real NeuralIVP solve (compiling it takes ~30-50 s on a loaded 2-core machine)."""
    solver = pds.NeuralIVP(width=10, depth=1, n_samples=100, n_eval_samples=100, rank=10,
                           fit_steps=20, head_tuning=False, fit_batch=100, restart=None)
    return pds.solve(
        P.advection(d=1, T=0.2, sigma=0.2), solver, saveat=pds.SaveAt(ts=jnp.array([0.0, 0.1, 0.2])),
        dt0=0.1, controller=pds.ConstantStepSize(), key=jax.random.PRNGKey(0),
    )


@pytest.fixture(scope="module")
def neural_ivp_like_sol():
    """A field solution shaped like NeuralIVP's: saved times, and its stats in NeuralIVP's format
    (cg_iterations per solve; residual/error/condition histories as (t, value) rows)."""
    problem = P.advection(d=1, T=0.2, sigma=0.2)
    sol = _fake_field(problem, jnp.array([0.0, 0.1, 0.2]), lambda y: 0.01 * jnp.sin(3.0 * y[0]))
    t = np.array([0.0, 0.1, 0.2])
    stats = {
        "cg_iterations": np.array([12, 15, 14, 20, 18, 17]),
        "residual_history": np.stack([t, [1e-3, 2e-3, 3e-3]], axis=1),
        "error_history": np.stack([t, [1e-4, 2e-4, 4e-4]], axis=1),
        "condition_history": np.stack([t[:2], [30.0, 40.0]], axis=1),
        "restart_times": [0.1],
    }
    return pds.FieldSolution(ts=sol.ts, ys=None, stats=stats, result=sol.result, problem=problem,
                             solver=sol.solver, evaluator=sol.evaluator)


def _fake_field(problem, ts, perturb):
    """A FieldSolution whose evaluator is the exact solution times (1 + perturb(x))."""

    def evaluate(sol, x, t=None):
        x = jnp.asarray(x)
        X = x[None] if x.ndim == 1 else x
        out = jax.vmap(lambda y: problem.solution(y, t) * (1.0 + perturb(y)))(X)
        return out[0] if x.ndim == 1 else out

    return pds.FieldSolution(ts=ts, ys=None, stats={}, result=pds.RESULTS.successful, problem=problem,
                             solver=pds.NeuralIVP(), evaluator=evaluate)


def _vector_problem():
    """A 3-D evolution problem with a two-component state [phi, phi_t]."""

    def exact(x, t):
        s = jnp.sin(jnp.pi * x[0]) * jnp.cos(x[1] + 0.5 * x[2])
        return jnp.stack([s * jnp.cos(t), -s * jnp.sin(t)])

    return pds.PDEProblem(
        rhs=lambda u, x, t, args: jnp.stack([u.value[1], u.laplacian[0]]),
        u0=lambda x: exact(x, 0.0), tspan=(0.0, 1.0), domain=pds.Box([-1.0, -1.0, 0.0], [1.0, 1.0, 2.0]),
        solution=exact,
    )


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _titles(fig):
    return [ax.get_title() for ax in fig.get_axes()]


def _images(fig):
    """Map axes (not colour bars) in layout order and their image artists."""
    out = []
    for ax in fig.get_axes():
        ims = [a for a in ax.get_children() if isinstance(a, AxesImage)]
        if ims and ax.get_label() != "<colorbar>":
            out.append((ax, ims[0]))
    return out


def _grid_of(image):
    """The grid points under the pixel centres of a map (2-D coordinates)."""
    x0, x1, y0, y1 = image.get_extent()
    ny, nx = image.get_array().shape
    xs = x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx
    ys = y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny
    xx, yy = np.meshgrid(xs, ys)
    return xx, yy


# ---------------------------------------------------------------------------------------------
# PDE field solutions
# ---------------------------------------------------------------------------------------------


def test_dtpinn_steady_disk(dtpinn_sol, tmp_path):
    path = tmp_path / "poisson.png"
    fig = pds.plot(dtpinn_sol, resolution=40, path=path)
    assert isinstance(fig, Figure)
    maps = _images(fig)
    assert len(maps) == 2  # field, error (steady: one column)
    titles = _titles(fig)
    assert titles.count("u") == 1 and "|u - u exact|" in titles
    assert any("loss" in t for t in titles)
    assert "DTPINN" in fig.get_suptitle() and "disk" in fig.get_suptitle()
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_error_map_is_abs_error_on_grid_and_masks_disk_exterior(dtpinn_sol):
    fig = pds.plot(dtpinn_sol, resolution=33, show_exact=True)
    (ax_u, im_u), (_ax_e, im_ex), (_ax_err, im_err) = _images(fig)
    xx, yy = _grid_of(im_err)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    u = np.asarray(dtpinn_sol(jnp.asarray(pts)))
    exact = np.asarray(jax.vmap(lambda x: P.disk_exact(x, None))(jnp.asarray(pts)))
    outside = (np.linalg.norm(pts, axis=1) > 1.0 + 1e-12).reshape(xx.shape)
    for im, want in ((im_u, u), (im_ex, exact), (im_err, np.abs(u - exact))):
        arr = im.get_array()
        np.testing.assert_array_equal(np.ma.getmaskarray(arr), outside)
        np.testing.assert_allclose(arr.filled(np.nan)[~outside], want.reshape(xx.shape)[~outside],
                                   rtol=1e-12, atol=1e-14)
    # field and exact share colour limits; the error map starts at 0
    assert im_u.get_clim() == im_ex.get_clim()
    lo, hi = im_u.get_clim()
    assert lo <= min(u[~outside.ravel()].min(), exact[~outside.ravel()].min())
    assert hi >= max(u[~outside.ravel()].max(), exact[~outside.ravel()].max())
    assert im_err.get_clim()[0] == 0.0
    assert im_u.origin == "lower" and ax_u.get_aspect() == 1.0


def _check_space_time_figure(sol):
    fig = pds.plot(sol, resolution=24)
    maps = _images(fig)
    assert len(maps) == 8  # 4 times in tspan x (field, error)
    titles = _titles(fig)
    for t in ("0", "0.3333", "0.6667", "1"):
        assert f"u, t = {t}" in titles and f"|u - u exact|, t = {t}" in titles
    fig = pds.plot(sol, times=[0.5], resolution=24)
    assert len(_images(fig)) == 2 and "u, t = 0.5" in _titles(fig)
    # the error at t = 0.5 is |u - exact| at that time
    im = _images(fig)[1][1]
    xx, yy = _grid_of(im)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=1))
    want = np.abs(np.asarray(sol(pts, 0.5)) - np.asarray(jax.vmap(lambda x: P.heat_exact(x, 0.5))(pts)))
    arr = im.get_array()
    inside = ~np.ma.getmaskarray(arr)
    np.testing.assert_allclose(arr.filled(np.nan)[inside], want.reshape(xx.shape)[inside], rtol=1e-5, atol=1e-6)
    assert "PINN" in fig.get_suptitle()
    assert any(t.startswith("training loss and test error") for t in _titles(fig))
    with pytest.raises(ValueError, match="`times`.*tspan"):
        pds.plot(sol, times=[0.5, 1.5])


def test_space_time_field(space_time_like_sol):
    _check_space_time_figure(space_time_like_sol)


@pytest.mark.slow
def test_real_pinn_space_time_figure():
    _check_space_time_figure(_tiny_pinn_heat())


def _check_neural_ivp_figure(sol):
    fig = pds.plot(sol, resolution=50)
    titles = _titles(fig)
    assert titles[:2] == ["u", "|u - u exact|"]
    assert any(t.startswith("CG iterations per solve") for t in titles)
    assert "PDE residual and error over t" in titles
    assert "NeuralIVP" in fig.get_suptitle()
    ax_u, ax_err = fig.get_axes()[:2]
    lines = [ln for ln in ax_u.get_lines() if ln.get_label().startswith("t = ")]
    assert [ln.get_label() for ln in lines] == ["t = 0", "t = 0.1", "t = 0.2"]
    x = lines[2].get_xdata()
    np.testing.assert_allclose(x, np.linspace(-1, 1, 50))
    u = np.asarray(sol(jnp.asarray(x)[:, None], 0.2))
    np.testing.assert_allclose(lines[2].get_ydata(), u, rtol=1e-12)
    exact = np.asarray(jax.vmap(lambda y: sol.problem.solution(y, 0.2))(jnp.asarray(x)[:, None]))
    np.testing.assert_allclose(ax_err.get_lines()[2].get_ydata(),
                               np.maximum(np.abs(u - exact), np.finfo(float).tiny), rtol=1e-12)
    # one point per linear solve; residual history against t
    cg_ax = next(ax for ax in fig.get_axes() if ax.get_title().startswith("CG"))
    np.testing.assert_array_equal(cg_ax.get_lines()[0].get_ydata(), sol.stats["cg_iterations"])
    res_ax = next(ax for ax in fig.get_axes() if ax.get_title().startswith("PDE residual"))
    np.testing.assert_array_equal(res_ax.get_lines()[0].get_xydata(), sol.stats["residual_history"])
    assert res_ax.get_yscale() == "log"
    # only saved times can be drawn
    fig = pds.plot(sol, times=0.1)
    assert [ln.get_label() for ln in fig.get_axes()[0].get_lines() if ln.get_label().startswith("t")] == ["t = 0.1"]
    with pytest.raises(ValueError, match="`times`: t=0.15 is not a saved time"):
        pds.plot(sol, times=[0.15])


def test_saved_times_field_1d_lines_and_histories(neural_ivp_like_sol):
    _check_neural_ivp_figure(neural_ivp_like_sol)
    restart_lines = [ln for ax in pds.plot(neural_ivp_like_sol).get_axes() for ln in ax.get_lines()
                     if ln.get_label() == "restart"]
    assert len(restart_lines) == 1 and restart_lines[0].get_xdata()[0] == 0.1


@pytest.mark.slow
def test_real_neural_ivp_figure():
    _check_neural_ivp_figure(_tiny_neural_ivp())


def test_slice_of_3d_vector_field_and_component():
    problem = _vector_problem()
    sol = _fake_field(problem, jnp.array([0.0, 0.5, 1.0]), lambda y: 0.1 * y[0] * y[1])
    fig = pds.plot(sol, component=1, times=[0.5], resolution=21)
    (ax_u, im_u), (_ax_e, im_e) = _images(fig)
    assert ax_u.get_title() == "u[1], t = 0.5"
    assert fig.get_suptitle().endswith("; slice x2 = 1")
    xx, yy = _grid_of(im_e)
    pts = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)], axis=1)  # centre of [0, 2]
    u = np.asarray(sol(jnp.asarray(pts), 0.5))[:, 1]
    exact = np.asarray(jax.vmap(lambda x: problem.solution(x, 0.5))(jnp.asarray(pts)))[:, 1]
    assert not np.ma.getmaskarray(im_e.get_array()).any()  # a box: nothing masked
    np.testing.assert_allclose(im_u.get_array().filled(np.nan).ravel(), u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(im_e.get_array().filled(np.nan).ravel(), np.abs(u - exact), rtol=1e-12, atol=1e-12)
    # default times: all three saved times; no exact row without show_exact
    assert len(_images(pds.plot(sol, resolution=8))) == 6
    assert len(_images(pds.plot(sol, resolution=8, show_exact=True))) == 9
    with pytest.raises(ValueError, match="`component`=2 is out of range.*2 components"):
        pds.plot(sol, component=2)


# ---------------------------------------------------------------------------------------------
# ODE solutions and stats dicts
# ---------------------------------------------------------------------------------------------


def test_ode_trajectories_and_phase_plane(ode_sol, tmp_path):
    fig = pds.plot(ode_sol, path=tmp_path / "lv.png")
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["trajectories at saved times", "phase plane"]
    assert "Dopri5" in fig.get_suptitle() and "accepted" in fig.get_suptitle()
    ys = np.asarray(ode_sol.ys)
    lines = axes[0].get_lines()
    assert [ln.get_label() for ln in lines] == ["y[0]", "y[1]"]
    for j, ln in enumerate(lines):
        np.testing.assert_allclose(ln.get_xdata(), np.asarray(ode_sol.ts))
        np.testing.assert_allclose(ln.get_ydata(), ys[:, j])
    np.testing.assert_allclose(axes[1].get_lines()[0].get_xydata(), ys)
    assert (tmp_path / "lv.png").stat().st_size > 5000
    # one component: no phase plane
    fig = pds.plot(ode_sol, component=1)
    assert len(fig.get_axes()) == 1 and fig.get_axes()[0].get_lines()[0].get_label() == "y[1]"


def test_ode_steps_panel():
    sol = pds.solve(P.lotka_volterra(tspan=(0.0, 2.0)), pds.Dopri5(), saveat=pds.SaveAt(steps=True),
                    controller=pds.PIDController(rtol=1e-5, atol=1e-7), max_steps=200)
    fig = pds.plot(sol)
    step_ax = fig.get_axes()[-1]
    assert step_ax.get_title() == "accepted step sizes"
    ts = np.asarray(sol.ts)
    ts = ts[np.isfinite(ts)]
    assert ts.size == int(sol.stats["num_accepted_steps"])
    starts = np.concatenate([[0.0], ts[:-1]])  # each saved time ends one accepted step
    np.testing.assert_allclose(step_ax.get_lines()[0].get_xydata(), np.stack([starts, ts - starts], axis=1))


def test_stats_dict(dtpinn_sol, neural_ivp_like_sol):
    fig = pds.plot(dtpinn_sol.stats)
    (ax,) = fig.get_axes()
    loss, err = ax.get_lines()
    np.testing.assert_array_equal(loss.get_ydata(), dtpinn_sol.stats["loss_history"])
    np.testing.assert_array_equal(err.get_xdata(), dtpinn_sol.stats["step_history"])
    assert ax.get_yscale() == "log"
    fig = pds.plot(neural_ivp_like_sol.stats, title="advection")
    assert len(fig.get_axes()) == 3 and fig.get_suptitle() == "advection"
    assert "condition number over t" in _titles(fig)


# ---------------------------------------------------------------------------------------------
# bad inputs
# ---------------------------------------------------------------------------------------------


class _OtherSolution(pds.Solution):
    """A concrete Solution that is neither an ODESolution nor a FieldSolution."""

    evaluation: ClassVar[str] = "not at all"

    def __init__(self):
        self.ts, self.ys, self.stats, self.result = None, None, {}, pds.RESULTS.successful
        self.interpolation, self.events = None, None
        self._dynamic, self._static = None, (None, None, None)


def test_bad_inputs(ode_sol, dtpinn_sol):
    with pytest.raises(TypeError, match="`sol` must be a pds.Solution"):
        pds.plot(np.zeros(3))
    with pytest.raises(TypeError, match="`sol` must be a pds.Solution.*got object"):
        pds.plot(object())
    other = _OtherSolution()
    with pytest.raises(ValueError, match="`sol` is a _OtherSolution; pds.plot draws FieldSolution and ODESolution"):
        pds.plot(other)
    not_pde = pds.FieldSolution(ts=None, ys=None, stats={}, result=pds.RESULTS.successful,
                                problem=ode_sol.problem, solver=pds.PINN(), evaluator=None)
    with pytest.raises(ValueError, match="`sol`: a field solution needs a PDEProblem; got NeuralODEProblem"):
        pds.plot(not_pde)
    with pytest.raises(ValueError, match="`component`=1: the field is scalar"):
        pds.plot(dtpinn_sol, component=1)
    with pytest.raises(ValueError, match="`times`: this is a steady problem"):
        pds.plot(dtpinn_sol, times=0.5)
    with pytest.raises(ValueError, match="`component`=5 is out of range"):
        pds.plot(ode_sol, component=5)
    with pytest.raises(ValueError, match="`times` selects snapshots"):
        pds.plot(ode_sol, times=[1.0])
    with pytest.raises(ValueError, match="`sol`: the dict holds no history"):
        pds.plot({"wall_time": 1.0})
    with pytest.raises(ValueError, match="`resolution` must be an int >= 2"):
        pds.plot(dtpinn_sol, resolution=1)


def test_missing_matplotlib_names_the_extra(ode_sol, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(ImportError, match=r'pip install "pdesolve\[plot\]"'):
        pds.plot(ode_sol)


def test_bare_point_cloud_masks_what_its_nodes_do_not_cover():
    """An L-shaped cloud without a generating domain: the removed quadrant is masked (was
    drawn, and showed the largest error there), the L itself is not."""
    from pdesolve._plot._fields import _grid

    g = np.linspace(-1, 1, 41)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    keep = ~((pts[:, 0] > 0) & (pts[:, 1] > 0))
    edge = (np.abs(pts).max(1) == 1.0)
    interior, boundary = pts[keep & ~edge], pts[keep & edge]
    normals = np.sign(boundary) * (np.abs(boundary) == 1.0)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    cloud = pds.PointCloud(interior, boundary, normals)
    grid, inside, _ = _grid(cloud, 2, 51)
    quadrant = (grid[:, 0] > 0.15) & (grid[:, 1] > 0.15)
    assert not inside[quadrant].any()
    ell = (grid[:, 0] < -0.05) | (grid[:, 1] < -0.05)
    assert inside[ell].all()
