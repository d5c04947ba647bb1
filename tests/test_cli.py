"""The `pdesolve` command line, end to end at small sizes (the pdesolve._cli package via __main__.cli)."""

import contextlib
import io
import re
import subprocess
import sys

import pytest
from pdesolve.problems import CATALOGUE

from pdesolve import _cli
from pdesolve.__main__ import cli
from pdesolve._cli import _catalogue, _main


def _plotting() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


PLOT = _plotting()
TINY_PINN = ["--set", "n_nodes=200", "--set", "width=20", "--set", "depth=2", "--set", "n_test=300",
             "--no-progress"]


def _run(capsys, argv):
    code = cli(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _run_captured(argv):
    """cli(argv) with stdout/stderr captured (for module-scoped fixtures, where capsys is not)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(argv)
    return code, out.getvalue(), err.getvalue()


def _row(out, solver):
    """The numbers of one result-table row (problem, solver, then the cells)."""
    m = re.search(rf"^[a-z0-9_]+ +{solver} +(.*)$", out, re.MULTILINE)
    assert m, (solver, out)
    return m[1].split()


def _is_png(path):
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# shared runs (module scope: each compiles once)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ode_run(tmp_path_factory):
    """lotka_volterra with Dopri5 (PID, rtol 1e-6) and RK4 (1000 constant steps)."""
    tmp = tmp_path_factory.mktemp("ode")
    argv = ["run", "lotka_volterra", "--solver", "Dopri5,RK4", "--set", "n_save=21", "--no-progress"]
    if PLOT:
        argv += ["--plot", str(tmp / "lv.png")]
    return (*_run_captured(argv), tmp)


@pytest.fixture(scope="module")
def pinn_run(tmp_path_factory):
    """DTPINN on poisson_disk at a tiny size, checkpointed every 100 steps (and plotted)."""
    tmp = tmp_path_factory.mktemp("pinn")
    argv = ["run", "poisson_disk", "--solver", "DTPINN", "--set", "max_steps=200", *TINY_PINN,
            "--save", str(tmp / "run.eqx"), "--every", "100"]
    if PLOT:
        argv += ["--plot", str(tmp / "pd.png")]
    return (*_run_captured(argv), tmp)


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------


def test_list_names_every_problem_and_solver(capsys):
    code, out, err = _run(capsys, ["list"])
    assert code == 0, err
    for name, (_, description) in CATALOGUE.items():
        assert re.search(rf"^  {name}\s+{re.escape(description)}$", out, re.MULTILINE), name
    for name in _cli.SOLVERS:
        assert re.search(rf"^  {name}\s+\S", out, re.MULTILINE), name
    # which solvers apply: the disk Poisson problem is for the PINNs, advection also NeuralIVP
    # and the classical MethodOfLines (time-dependent, d <= 3)
    block = out.split("  poisson_disk ", 1)[1].splitlines()[1]
    assert block.strip() == "solvers: DTPINN, PINN"
    block = out.split("  advection ", 1)[1].splitlines()[1]
    assert block.strip() == "solvers: NeuralIVP, MethodOfLines, DTPINN, PINN"


def test_known_kinds_match_the_catalogue():
    """`pdesolve list` reads each problem's kind from `_KNOWN_KINDS` instead of building it (the
    catalogue holds only constructor and description): the table names exactly the catalogue's
    problems, and each kind is what the built problem has."""
    known, names = set(_catalogue._KNOWN_KINDS), set(CATALOGUE)
    assert known == names, f"only in _KNOWN_KINDS: {known - names}; only in CATALOGUE: {names - known}"
    for name, (constructor, _) in CATALOGUE.items():
        assert _catalogue._KNOWN_KINDS[name] == _catalogue._describe_kind(constructor()), name


def test_solver_names_follow_the_explicit_rk_methods():
    from pdesolve.solvers.explicit_rk import METHOD_NAMES

    assert _cli.ODE_SOLVERS[: len(METHOD_NAMES)] == METHOD_NAMES
    assert set(METHOD_NAMES) <= set(_cli.SOLVERS)


def test_console_module_lists(tmp_path):
    # Outside the source tree: there `-m` would import the unmapped source folder.
    proc = subprocess.run(
        [sys.executable, "-m", "pdesolve", "list"], check=False, capture_output=True, text=True, timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "poisson_disk" in proc.stdout and "NeuralIVP" in proc.stdout


def test_parse_value():
    assert _cli.parse_value("3") == 3
    assert _cli.parse_value("1e-3") == 1e-3
    assert _cli.parse_value("None") is None
    assert _cli.parse_value("(1, 2)") == (1, 2)
    assert _cli.parse_value("lbfgs") == "lbfgs"
    assert _cli.parse_value("'adam'") == "adam"


def test_set_routing():
    """Solver field first, then solve keyword, then problem keyword; per solver."""
    from pdesolve.problems import advection

    sets = {"order": 3, "n_nodes": 100, "max_steps": 5, "rtol": 1e-3, "d": 1}
    problem_kw, per = _cli._route(sets, "advection", ["DTPINN", "PINN", "NeuralIVP"], advection)
    assert problem_kw == {"d": 1}
    assert per["DTPINN"] == ({"order": 3, "n_nodes": 100, "rtol": 1e-3}, {"max_steps": 5})
    assert per["PINN"] == ({"n_nodes": 100, "rtol": 1e-3}, {"max_steps": 5})
    assert per["NeuralIVP"] == ({}, {"max_steps": 5, "rtol": 1e-3})


# ---------------------------------------------------------------------------------------------
# run: an ODE and a PINN
# ---------------------------------------------------------------------------------------------


def test_run_ode_table(ode_run):
    code, out, err, _tmp = ode_run
    assert code == 0, err
    header = out.split("\n\n", 1)[1].splitlines()[0]
    assert header.split()[:5] == ["problem", "solver", "rel.", "L2", "error"]
    dopri, rk4 = _row(out, "Dopri5"), _row(out, "RK4")
    # rel. L2 error against the scipy reference: rtol 1e-6 / 1000 RK4 steps on [0, 20]
    assert 0 < float(dopri[0]) < 1e-4, dopri
    assert 0 < float(rk4[0]) < 1e-4, rk4
    assert int(rk4[1]) == 1000 and 4000 <= int(rk4[2]) <= 4008, rk4  # 4 evaluations per step
    assert "PIDController(rtol=1e-06" in out and "dt0=0.02" in out


@pytest.mark.skipif(not PLOT, reason="needs matplotlib")
def test_run_ode_plots(ode_run):
    code, out, _, tmp = ode_run
    assert code == 0
    for name in ("lv.png", "lv-Dopri5.png", "lv-RK4.png"):
        assert _is_png(tmp / name), name
        assert str(tmp / name) in out


def test_run_dtpinn(pinn_run):
    code, out, err, tmp = pinn_run
    assert code == 0, err
    row = _row(out, "DTPINN")
    error, residual, steps = float(row[0]), float(row[1]), int(row[2])
    assert steps == 200
    # 200 L-BFGS steps, 200 nodes, a 20x2 network: measured 4-5e-2
    assert error < 0.15, out
    assert 0 < residual < 0.4, out  # measured 0.17
    assert (tmp / "run.eqx").is_file()


@pytest.mark.skipif(not PLOT, reason="needs matplotlib")
def test_run_dtpinn_plot(pinn_run):
    assert _is_png(pinn_run[3] / "pd.png")


def test_resume_continues_and_refuses_other_runs(pinn_run, capsys):
    code, out, _, tmp = pinn_run
    assert code == 0
    ckpt = str(tmp / "run.eqx")
    base = ["run", "poisson_disk", "--solver", "DTPINN", *TINY_PINN, "--every", "100"]
    code, out, err = _run(capsys, [*base, "--set", "max_steps=300", "--resume", ckpt])
    assert code == 0, err
    assert "resumed from step 200" in out
    assert int(_row(out, "DTPINN")[2]) == 300
    # a different option: refused, no traceback
    code, out, err = _run(capsys, [*base, "--set", "max_steps=300", "--set", "order=3", "--resume", ckpt])
    assert code == 2 and "Traceback" not in err
    assert "different run" in err and "order" in err


def test_run_neural_ivp(capsys):
    argv = ["run", "advection", "--solver", "NeuralIVP", "--no-progress",
            *[x for kv in ("d=1", "T=0.2", "sigma=0.15", "width=16", "n_samples=200", "rank=10",
                           "fit_steps=300", "head_samples=1000") for x in ("--set", kv)]]
    code, out, err = _run(capsys, argv)
    assert code == 0, err
    header = out.split("\n\n", 1)[1].splitlines()[0]
    assert "CG iters" in header and "PDE residual" in header
    error, residual, steps, fevals, cg = _row(out, "NeuralIVP")[:5]
    assert float(error) < 0.1 and 0 < float(residual) < 0.5  # the docs' tiny run: ~1e-2
    assert int(steps) >= 1 and int(cg) > 0 and int(fevals) >= 3 * int(steps)


# ---------------------------------------------------------------------------------------------
# usage errors: exit 2, a message listing the valid choices, no traceback
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run", "no_such_problem", "--solver", "RK4"], ["unknown problem", "poisson_disk", "lotka_volterra"]),
        (["run", "lotka_volterra", "--solver", "RK5"], ["unknown solver", "Dopri5", "DTPINN"]),
        (["run", "poisson_disk", "--solver", "NeuralIVP"], ["cannot solve", "DTPINN, PINN"]),
        (["run", "lotka_volterra", "--solver", "IMEXRK"], ["cannot solve", "Tsit5"]),
        (["run", "poisson_disk", "--solver", "DTPINN", "--set", "colour=3"],
         ["unknown option 'colour'", "n_nodes", "max_steps"]),
        (["run", "advection", "--solver", "NeuralIVP", "--set", "bogus=1"],
         ["unknown option 'bogus'", "n_samples", "rtol", "problem advection: d, velocity, T, sigma"]),
        (["run", "poisson_disk", "--solver", "DTPINN", "--set", "width"], ["key=value"]),
        (["run", "poisson_disk", "--solver", "DTPINN", "--set", "width=-3"], ["width"]),
        (["run", "lotka_volterra", "--solver", "RK4", "--save", "x.eqx"],
         ["does not support checkpoints", "NeuralIVP, DTPINN, PINN"]),
        (["run", "poisson_disk", "--solver", "DTPINN", "--resume", "/nonexistent/run.eqx"], ["no such file"]),
        (["run", "poisson_disk", "--solver", "DTPINN", "--save", "/nonexistent/dir/run.eqx"],
         ["--save /nonexistent/dir/run.eqx", "does not exist"]),
        (["run", "poisson_disk", "--solver", "DTPINN", "--save", "."], ["is a directory"]),
        (["run", "lotka_volterra", "--solver", "RK4", "--set", "rtol=1e-3"], ["no embedded error estimate"]),
        (["run", "lotka_volterra"], ["--solver"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_usage_errors(capsys, argv, expected):
    code, out, err = _run(capsys, argv)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)


def test_no_arguments_runs_the_main_job(capsys, monkeypatch):
    tiny = ["run", "lotka_volterra", "--solver", "Tsit5", "--set", "n_save=5", "--no-progress"]
    monkeypatch.setattr(_main, "MAIN_JOB", tiny)
    code, out, err = _run(capsys, [])
    assert code == 0, err
    assert out.startswith("pdesolve main job:")
    assert float(_row(out, "Tsit5")[0]) < 1e-4


def test_main_job_without_matplotlib_skips_the_plot(capsys, monkeypatch):
    tiny = ["run", "lotka_volterra", "--solver", "RK4", "--set", "n_save=5", "--no-progress",
            "--plot", "never-written.png"]
    monkeypatch.setattr(_main, "MAIN_JOB", tiny)
    monkeypatch.setattr(_main, "_can_plot", lambda: False)
    code, out, err = _run(capsys, [])
    assert code == 0, err
    assert 'pip install "pdesolve[plot]"' in out and "plot written" not in out


def test_plot_without_matplotlib_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = _run(capsys, ["run", "lotka_volterra", "--solver", "RK4", "--plot", "x.png"])
    assert code == 2 and 'pip install "pdesolve[plot]"' in err


def test_demo_is_reachable(capsys):
    code, out, _ = _run(capsys, ["demo", "--help"])
    assert code == 0 and "spiral" in out.lower() and "--quick" in out and "--resume" in out


@pytest.mark.slow  # ~30 s: the demo's full report (its plain run is tests/test_catalogue.py's)
def test_demo_checkpoint(capsys, tmp_path):
    """`pdesolve demo --save` checkpoints pds.train; a resume with another seed is refused."""
    ckpt = str(tmp_path / "demo.eqx")
    code, out, err = _run(capsys, ["demo", "--iters", "10", "--no-progress", "--save", ckpt, "--every", "5"])
    assert code == 0, err
    assert re.search(r"^RK4\s+10\s", out, re.MULTILINE) and (tmp_path / "demo.eqx").is_file()
    code, _, err = _run(capsys, ["demo", "--iters", "10", "--seed", "1", "--no-progress", "--resume", ckpt])
    assert code == 2 and "different run" in err


def test_names_match_up_to_case_and_dashes():
    assert _cli._canonical("poisson-disk", CATALOGUE) == "poisson_disk"
    assert _cli._canonical("Poisson-Disk", CATALOGUE) == "poisson_disk"
    assert _cli._canonical("dtpinn", _cli.SOLVERS) == "DTPINN"
    assert _cli._canonical("tsit5", _cli.SOLVERS) == "Tsit5"
    assert _cli._canonical("nonsense", _cli.SOLVERS) == "nonsense"


def test_option_alone_runs_the_main_job_with_it(monkeypatch):
    """`pdesolve --no-progress` is the main job without progress bars (it ran the spiral demo);
    `pdesolve --quick` is still the demo's short form."""
    seen = {}
    monkeypatch.setattr(_main, "cmd_run", lambda args: seen.update(run=args) or 0)
    import pdesolve._demo as demo_mod

    monkeypatch.setattr(demo_mod, "main", lambda argv: seen.update(demo=argv) or 0)
    assert cli(["--no-progress"]) == 0
    args = seen.pop("run")
    assert args.problem == "poisson_disk" and args.solver == "DTPINN,PINN" and args.no_progress
    assert cli(["--quick", "--no-progress"]) == 0
    assert seen.pop("demo") == ["--quick", "--no-progress"] and "run" not in seen


def test_run_accepts_dashed_problem_and_lowercase_solver(capsys):
    code, out, err = _run(capsys, ["run", "lotka-volterra", "--solver", "tsit5", "--set", "n_save=5", "--no-progress"])
    assert code == 0, err
    assert "Tsit5" in out


def test_method_of_lines_row(capsys):
    code, out, err = _run(capsys, ["run", "advection", "--solver", "methodoflines", "--set", "d=1", "--set", "T=0.2",
                                   "--no-progress"])
    assert code == 0, err
    error, steps, fevals = _row(out, "MethodOfLines")[:3]
    assert float(error) < 1e-3 and int(steps) > 0 and int(fevals) > int(steps)  # measured 4.7e-4
