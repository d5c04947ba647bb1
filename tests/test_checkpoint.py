"""Checkpoint and resume: a resumed run equals the uninterrupted one bit for bit (float64,
same machine), a run killed mid-way loses at most one interval, and corrupt or mismatched
checkpoints are refused."""

import json
import os
import subprocess
import sys
import tempfile

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import _ivp_helpers
import pdesolve as pds
import pdesolve.problems as P
from pdesolve import _checkpoint
from pdesolve.problems.poisson_disk import _linear_residual

from _ivp_helpers import ADVECTION, SAVE_TS, SMALL

# --- PINN training -----------------------------------------------------------------------------

PINN_KW = dict(n_nodes=120, width=12, depth=2, n_test=256, steps_per_dispatch=7)
PINN_STEPS = 40


def _shifted(c):
    """The Poisson residual minus a constant closed over: the same function name for every c."""
    def residual(u, x, args):
        return _linear_residual(u, x, args) - c

    return residual


POISSON = pds.remake(P.poisson_disk(), residual=_shifted(0.0))


def _dtpinn_run(path, *, resume=False, max_steps=PINN_STEPS, every=10, solver_kw=None, problem=POISSON):
    solver = pds.DTPINN(**{**PINN_KW, **(solver_kw or {})})
    ckpt = pds.Checkpoint(path, every=every, resume=resume)
    return pds.solve(problem, solver, max_steps=max_steps, checkpoint=ckpt, key=jax.random.PRNGKey(4))


@pytest.fixture(scope="module")
def pinn_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pinn")
    full = _dtpinn_run(d / "full.eqx")
    part = _dtpinn_run(d / "part.eqx", max_steps=23)  # stops mid-interval: saved at 10, 20, 23
    resumed = _dtpinn_run(d / "part.eqx", resume=True)
    return d, full, part, resumed


def test_pinn_resume_is_bit_identical(pinn_runs):
    _, full, part, resumed = pinn_runs
    assert part.stats["num_steps"] == 23 and resumed.stats["resumed_from_step"] == 23
    assert full.stats["resumed_from_step"] is None
    for a, b in zip(jax.tree.leaves(full.ys), jax.tree.leaves(resumed.ys)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.stats["loss_history"], resumed.stats["loss_history"])
    assert full.stats["relative_l2_error"] == resumed.stats["relative_l2_error"]
    # Chunks end at multiples of `every`: the same error evaluations in both runs.
    np.testing.assert_array_equal(full.stats["step_history"][:2], [7, 10])


def test_pinn_checkpoint_header(pinn_runs):
    d, *_ = pinn_runs
    header, _ = _checkpoint.read_header(d / "full.eqx")
    assert header["kind"] == "pinn" and header["step"] == PINN_STEPS and header["every"] == 10
    assert header["fingerprint"]["solver"]["type"] == "DTPINN"
    assert header["fingerprint"]["solver"]["fields"]["n_nodes"] == PINN_KW["n_nodes"]


def test_resuming_a_finished_run_returns_it(pinn_runs):
    d, full, *_ = pinn_runs
    again = _dtpinn_run(d / "full.eqx", resume=True)
    assert again.stats["resumed_from_step"] == PINN_STEPS and again.stats["num_steps"] == PINN_STEPS
    np.testing.assert_array_equal(full.stats["loss_history"], again.stats["loss_history"])


def test_killed_run_loses_at_most_one_interval(tmp_path, monkeypatch):
    import pdesolve.solvers.pinn._training as pinn_mod

    real, calls = pinn_mod._run_chunk, []

    def dying(*args):
        calls.append(1)
        if len(calls) == 5:  # the zero-step compile call + 3 chunks, then "killed"
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(pinn_mod, "_run_chunk", dying)
    path = tmp_path / "killed.eqx"
    with pytest.raises(KeyboardInterrupt):
        _dtpinn_run(path)
    header, _ = _checkpoint.read_header(path)
    # Chunks of 7 clipped at multiples of 10 (7, 10, 17): killed at 17, the file holds 10.
    assert header["step"] == 10  # 7 steps lost, less than one interval


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(solver_kw={"width": 10}), "different run.*width"),
        (dict(every=5), "different run.*every"),
    ],
)
def test_mismatched_checkpoint_is_refused(pinn_runs, change, match):
    d, *_ = pinn_runs
    with pytest.raises(pds.CheckpointError, match=match):
        _dtpinn_run(d / "full.eqx", resume=True, **change)


def test_different_key_is_refused(pinn_runs):
    d, *_ = pinn_runs
    solver = pds.DTPINN(**PINN_KW)
    with pytest.raises(pds.CheckpointError, match="key"):
        pds.solve(POISSON, solver, max_steps=PINN_STEPS, key=jax.random.PRNGKey(5),
                  checkpoint=pds.Checkpoint(d / "full.eqx", every=10, resume=True))


def _write_raw(path, header, payload):
    """A file with a valid checksum over an arbitrary header (a deliberate forgery)."""
    import hashlib

    body = json.dumps(header).encode() + b"\n" + payload
    path.write_bytes(b"PDSCKPT 2\nsha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


def _corrupt(src, dst, how):
    blob = bytearray(src.read_bytes())
    if how == "flip":
        blob[-20] ^= 0xFF
    elif how == "truncate":
        blob = blob[: len(blob) - 100]
    elif how == "magic":
        blob[:9] = b"NOTACKPT "
    elif how == "header":  # the JSON header's first byte (the checksum line comes before it)
        start = blob.index(b"\n", blob.index(b"\n") + 1) + 1
        blob[start:start + 1] = b"#"
    dst.write_bytes(bytes(blob))


@pytest.mark.parametrize("how, match", [("flip", "corrupt"), ("truncate", "corrupt"),
                                        ("magic", "not a pdesolve checkpoint"), ("header", "checksum")])
def test_corrupt_checkpoint_is_refused(pinn_runs, tmp_path, how, match):
    d, *_ = pinn_runs
    bad = tmp_path / f"{how}.eqx"
    _corrupt(d / "full.eqx", bad, how)
    with pytest.raises(pds.CheckpointError, match=match):
        _dtpinn_run(bad, resume=True)


def test_wrong_kind_and_shapes_are_refused(pinn_runs, tmp_path):
    d, *_ = pinn_runs
    header, payload = _checkpoint.read_header(d / "full.eqx")
    with pytest.raises(pds.CheckpointError, match="written by a 'pinn' run"):
        _checkpoint.load(pds.Checkpoint(d / "full.eqx", every=10), kind="train", fingerprint={}, templates={})
    # A tampered header that still passes the checksum but declares other shapes.
    header["arrays"]["params/0"][0] = [3]
    bad = tmp_path / "shapes.eqx"
    _write_raw(bad, header, payload)
    with pytest.raises(pds.CheckpointError, match="shapes"):
        _dtpinn_run(bad, resume=True)


def test_checkpoint_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="every"):
        pds.Checkpoint(tmp_path / "x.eqx", every=0)
    with pytest.raises(TypeError, match="JSON"):
        pds.Checkpoint(tmp_path / "x.eqx", meta={"f": object()})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _dtpinn_run(tmp_path / "missing.eqx", resume=True)
    with pytest.raises(TypeError, match="pdesolve.Checkpoint"):
        pds.solve(POISSON, pds.DTPINN(**PINN_KW), max_steps=1, checkpoint=str(tmp_path / "x.eqx"))


def test_meta_mismatch_is_refused(pinn_runs, tmp_path):
    path = tmp_path / "meta.eqx"
    solver = pds.DTPINN(**PINN_KW)
    pds.solve(POISSON, solver, max_steps=3, checkpoint=pds.Checkpoint(path, every=10, meta={"run": "a"}))
    with pytest.raises(pds.CheckpointError, match="meta.run"):
        pds.solve(POISSON, solver, max_steps=3,
                  checkpoint=pds.Checkpoint(path, every=10, resume=True, meta={"run": "b"}))


def test_changed_residual_constant_is_refused(pinn_runs):
    """Same function name, another closed-over constant: the traced computation differs."""
    d, *_ = pinn_runs
    other = pds.remake(POISSON, residual=_shifted(5.0))
    with pytest.raises(pds.CheckpointError,
                       match=r"the problem's residual function differs from the checkpoint's \(its traced computation"):
        _dtpinn_run(d / "full.eqx", resume=True, problem=other)
    header, _ = _checkpoint.read_header(d / "full.eqx")
    assert set(header["fingerprint"]["computation"]) == {"problem.residual", "problem.bc", "problem.solution"}


def test_computation_fingerprint_is_by_value_and_process_independent(tmp_path):
    import jax.numpy as jnp

    x = jax.ShapeDtypeStruct((3,), jnp.float64)
    c1, c2 = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
    f = lambda c: (lambda y: jax.nn.relu(y) @ c)  # noqa: E731 - custom_jvp inside (its printout has addresses)
    assert _checkpoint.computation(f(c1), x) == _checkpoint.computation(f(c1.copy()), x)
    assert _checkpoint.computation(f(c1), x) != _checkpoint.computation(f(c2), x)  # a const, by value
    # Untraceable: the qualified name, not an error.
    assert "name" in _checkpoint.computation(lambda y: float(y[0]), x)
    # The same hash in a fresh process (no addresses or ids in what is hashed).
    code = ("import jax, numpy as np; jax.config.update('jax_enable_x64', True); from pdesolve import _checkpoint; "
            "c = np.array([1.0, 2.0, 3.0]); "
            "print(_checkpoint.computation(lambda y: jax.nn.relu(y) @ c, jax.ShapeDtypeStruct((3,), np.float64)))")
    # Outside the source tree, so that `import pdesolve` is the installed package (as in CI).
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(_checkpoint.computation(f(c1), x))


# --- the file: every byte checksummed ------------------------------------------------------------

_SMALL_TREES = {"params": {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(2, np.float32)},
                "losses": [np.linspace(0.0, 1.0, 5)]}
_SMALL_STATE = {"done": 7, "finished": False, "train_time": 0.25, "errors": [0.5, 0.125]}


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.eqx"
    ckpt = pds.Checkpoint(path, every=5)
    _checkpoint.save(ckpt, kind="train", fingerprint={"model": "m"}, step=7, trees=_SMALL_TREES, state=_SMALL_STATE)
    return path


def _load_small(path, **kw):
    return _checkpoint.load(pds.Checkpoint(path, every=5), kind="train", fingerprint={"model": "m"},
                            templates={"params": _SMALL_TREES["params"], "losses": None}, **kw)


def test_small_file_round_trips(small_file):
    step, trees, state = _load_small(small_file)
    assert step == 7 and state == _SMALL_STATE
    np.testing.assert_array_equal(trees["params"]["w"], _SMALL_TREES["params"]["w"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_is_refused(small_file, data):
    """Header (loop state, step, shapes) and payload alike: one changed byte anywhere is refused
    with a CheckpointError naming the file and "corrupt"/"checksum" — never loaded, never a KeyError."""
    blob = bytearray(small_file.read_bytes())
    i = data.draw(st.integers(0, len(blob) - 1), label="position")
    blob[i] ^= data.draw(st.integers(1, 255), label="xor")
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "flipped.eqx")
        with open(bad, "wb") as f:
            f.write(bytes(blob))
        with pytest.raises(pds.CheckpointError, match="corrupt|checksum") as info:
            _load_small(bad)
        assert bad in str(info.value)


def test_forged_header_without_keys_is_refused(small_file, tmp_path):
    header, payload = _checkpoint.read_header(small_file)
    for key in ("state", "arrays", "step"):
        forged = {k: v for k, v in header.items() if k != key}
        _write_raw(tmp_path / "forged.eqx", forged, payload)
        with pytest.raises(pds.CheckpointError, match=f"corrupt.*{key}"):
            _load_small(tmp_path / "forged.eqx")
    _write_raw(tmp_path / "forged.eqx", {**header, "state": {"done": 7}}, payload)
    with pytest.raises(pds.CheckpointError, match="corrupt.*loop state lacks"):
        _load_small(tmp_path / "forged.eqx", state_keys=tuple(_SMALL_STATE))


def test_old_format_is_refused(small_file, tmp_path):
    header, payload = _checkpoint.read_header(small_file)
    old = tmp_path / "old.eqx"
    old.write_bytes(b"PDSCKPT 1\n" + json.dumps({**header, "format": 1}).encode() + b"\n" + payload)
    with pytest.raises(pds.CheckpointError, match="format 1.*checksum"):
        _load_small(old)


# --- one run per path: the lock, leftovers, early path checks ------------------------------------


def _tiny_loss(model, data):
    return jax.numpy.sum((model - 1.0) ** 2)


def _tiny_train(path, steps=4, resume=False):
    import optax

    return pds.train(_tiny_loss, jax.numpy.zeros(3), optax.sgd(0.1), steps=steps, chunk=2,
                     checkpoint=pds.Checkpoint(path, every=2, resume=resume))


_HOLD = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode()); print('locked', flush=True); "
         "time.sleep(60)")


def _lock_is_free(lock_path):
    import fcntl

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_live_run_holding_the_path_is_refused(tmp_path):
    path = tmp_path / "run.eqx"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, f"{path}.lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(pds.CheckpointError, match=rf"in use by another running process \(pid {holder.pid}"):
            _tiny_train(path)
        assert not path.exists()  # nothing written over the other run's file
    finally:
        holder.kill()
        holder.wait()
    # The holder is dead: its lock file (with its pid) is stale and taken over.
    assert (tmp_path / "run.eqx.lock").read_text().strip() == str(holder.pid)
    model, stats = _tiny_train(path)
    assert stats["num_steps"] == 4 and _checkpoint.read_header(path)[0]["step"] == 4
    assert not (tmp_path / "run.eqx.lock").exists()  # released at the end


def test_lock_is_released_when_the_run_fails(tmp_path, monkeypatch):
    import pdesolve._train as train_mod

    path = tmp_path / "run.eqx"

    def dying(*args):
        assert not _lock_is_free(f"{path}.lock")  # held during the run
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_run_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        _tiny_train(path)
    assert _lock_is_free(f"{path}.lock")


def test_stale_temporary_files_are_removed(tmp_path):
    path = tmp_path / "run.eqx"
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()  # a dead pid
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_tmp, own_tmp, live_tmp = (tmp_path / f"run.eqx.tmp{pid}" for pid in (done.pid, os.getpid(), live.pid))
        other = tmp_path / "other.eqx.tmp1"
        for f in (dead_tmp, own_tmp, live_tmp, other):
            f.write_bytes(b"partial")
        _tiny_train(path)
        assert not dead_tmp.exists() and not own_tmp.exists()  # leftovers of dead writers (and of this process)
        assert live_tmp.exists() and other.exists()  # a live writer's, another checkpoint's
    finally:
        live.kill()
        live.wait()


def test_unwritable_paths_are_refused_early(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="`path`.*is a directory"):
        pds.Checkpoint(tmp_path)
    with pytest.raises(ValueError, match="directory of checkpoint `path`.*does not exist; create it"):
        pds.Checkpoint(tmp_path / "missing" / "run.eqx")
    # Checked again when the run starts, before compiling anything.
    import pdesolve._train as train_mod

    sub = tmp_path / "sub"
    sub.mkdir()
    ckpt = pds.Checkpoint(sub / "run.eqx", every=2)
    sub.rmdir()
    monkeypatch.setattr(train_mod, "_run_chunk", lambda *a: pytest.fail("compiled before checking the path"))
    import optax

    with pytest.raises(ValueError, match="does not exist"):
        pds.train(_tiny_loss, jax.numpy.zeros(3), optax.sgd(0.1), steps=2, checkpoint=ckpt)
    with pytest.raises(ValueError, match="is a directory"):
        pds.solve(POISSON, pds.DTPINN(**PINN_KW), max_steps=2,
                  checkpoint=_dir_checkpoint(tmp_path))


def _dir_checkpoint(tmp_path):
    """A Checkpoint whose path became a directory after construction."""
    target = tmp_path / "became_dir.eqx"
    ckpt = pds.Checkpoint(target, every=2)
    target.mkdir()
    return ckpt


# --- NeuralIVP evolution -------------------------------------------------------------------------

# The problem object and options of tests/test_neural_ivp.py's advection fixture: the same
# compiled step serves all these solves.
IVP_SOLVER = pds.NeuralIVP(**SMALL)
IVP_SAVE = pds.SaveAt(ts=SAVE_TS)


def _ivp_run(path, *, resume=False, max_steps=4096, throw=True):
    return pds.solve(ADVECTION, IVP_SOLVER, saveat=IVP_SAVE, key=jax.random.PRNGKey(0), max_steps=max_steps,
                     throw=throw, checkpoint=pds.Checkpoint(path, every=2, resume=resume))


def test_neural_ivp_resume_is_bit_identical(tmp_path, monkeypatch):
    import pdesolve.solvers.neural_ivp as ivp_mod

    full = _ivp_run(tmp_path / "full.eqx")
    n = full.stats["num_steps"]
    assert n >= 4, n  # adaptive steps, with the controller state carried through the file
    real, calls = ivp_mod._attempt_step, []

    def dying(*args):
        calls.append(1)
        if len(calls) == 4:  # killed during the 4th step: steps 0-2 done, saved at 2
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(ivp_mod, "_attempt_step", dying)
    with pytest.raises(KeyboardInterrupt):
        _ivp_run(tmp_path / "part.eqx")
    monkeypatch.setattr(ivp_mod, "_attempt_step", real)
    assert _checkpoint.read_header(tmp_path / "part.eqx")[0]["step"] == 2
    resumed = _ivp_run(tmp_path / "part.eqx", resume=True)
    assert resumed.stats["resumed_from_step"] == 2
    np.testing.assert_array_equal(np.asarray(full.ts), np.asarray(resumed.ts))
    np.testing.assert_array_equal(np.asarray(full.ys), np.asarray(resumed.ys))
    for name in ("cg_iterations", "cg_residuals", "residual_history", "error_history"):
        np.testing.assert_array_equal(full.stats[name], resumed.stats[name])
    assert resumed.stats["num_steps"] == n and resumed.stats["fit_error"] == full.stats["fit_error"]
    # The final state is saved: the header says where the run ended.
    assert _checkpoint.read_header(tmp_path / "part.eqx")[0]["step"] == n
    # The same rhs function reading another advection speed: another computation, refused
    # (before any compilation: the file is checked first).
    monkeypatch.setattr(_ivp_helpers, "C", 0.6)
    with pytest.raises(pds.CheckpointError, match=r"the problem's rhs function differs from the checkpoint's"):
        _ivp_run(tmp_path / "part.eqx", resume=True)


def test_solvers_without_checkpoints_refuse_the_option(tmp_path):
    prob = pds.NeuralODEProblem(lambda t, y, args: -y, np.ones(2), (0.0, 1.0))
    with pytest.raises(TypeError, match="RK4 does not take the option `checkpoint`.*long runs"):
        pds.solve(prob, pds.RK4(), dt0=0.1, checkpoint=pds.Checkpoint(tmp_path / "x.eqx"))
    with pytest.raises(TypeError, match="does not take the option `mesh`.*shard_leading"):
        pds.solve(prob, pds.RK4(), dt0=0.1, mesh=object())
    with pytest.raises(TypeError, match="option `rtoll`.*spelling"):
        pds.solve(prob, pds.RK4(), dt0=0.1, rtoll=1e-3)
