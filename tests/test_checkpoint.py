"""Checkpoint and resume: a resumed run equals the uninterrupted one bit for bit (float64,
same machine), a run killed mid-way loses at most one interval, and corrupt or mismatched
checkpoints are refused."""

import json

import jax
import numpy as np
import pytest

import pdesolve as pds
import pdesolve.problems as P
from pdesolve import _checkpoint

from _ivp_helpers import ADVECTION, SAVE_TS, SMALL

# --- PINN training -----------------------------------------------------------------------------

PINN_KW = dict(n_nodes=120, width=12, depth=2, n_test=256, steps_per_dispatch=7)
PINN_STEPS = 40


def _dtpinn_run(path, *, resume=False, max_steps=PINN_STEPS, every=10, solver_kw=None):
    solver = pds.DTPINN(**{**PINN_KW, **(solver_kw or {})})
    ckpt = pds.Checkpoint(path, every=every, resume=resume)
    return pds.solve(P.poisson_disk(), solver, max_steps=max_steps, checkpoint=ckpt,
                     key=jax.random.PRNGKey(4))


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
    import pdesolve.solvers.pinn as pinn_mod

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
        pds.solve(P.poisson_disk(), solver, max_steps=PINN_STEPS, key=jax.random.PRNGKey(5),
                  checkpoint=pds.Checkpoint(d / "full.eqx", every=10, resume=True))


def _corrupt(src, dst, how):
    blob = bytearray(src.read_bytes())
    if how == "flip":
        blob[-20] ^= 0xFF
    elif how == "truncate":
        blob = blob[: len(blob) - 100]
    elif how == "magic":
        blob[:9] = b"NOTACKPT "
    elif how == "header":
        start = blob.index(b"\n") + 1
        blob[start:start + 1] = b"#"
    dst.write_bytes(bytes(blob))


@pytest.mark.parametrize("how, match", [("flip", "corrupt"), ("truncate", "corrupt"),
                                        ("magic", "not a pdesolve checkpoint"), ("header", "corrupt header")])
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
    bad.write_bytes(b"PDSCKPT 1\n" + json.dumps(header).encode() + b"\n" + payload)
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
        pds.solve(P.poisson_disk(), pds.DTPINN(**PINN_KW), max_steps=1, checkpoint=str(tmp_path / "x.eqx"))


def test_meta_mismatch_is_refused(pinn_runs, tmp_path):
    path = tmp_path / "meta.eqx"
    solver = pds.DTPINN(**PINN_KW)
    pds.solve(P.poisson_disk(), solver, max_steps=3, checkpoint=pds.Checkpoint(path, every=10, meta={"run": "a"}))
    with pytest.raises(pds.CheckpointError, match="meta.run"):
        pds.solve(P.poisson_disk(), solver, max_steps=3,
                  checkpoint=pds.Checkpoint(path, every=10, resume=True, meta={"run": "b"}))


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


def test_solvers_without_checkpoints_refuse_the_option(tmp_path):
    prob = pds.NeuralODEProblem(lambda t, y, args: -y, np.ones(2), (0.0, 1.0))
    with pytest.raises(TypeError, match="RK4 does not take the option `checkpoint`.*long runs"):
        pds.solve(prob, pds.RK4(), dt0=0.1, checkpoint=pds.Checkpoint(tmp_path / "x.eqx"))
    with pytest.raises(TypeError, match="does not take the option `mesh`.*shard_leading"):
        pds.solve(prob, pds.RK4(), dt0=0.1, mesh=object())
    with pytest.raises(TypeError, match="option `rtoll`.*spelling"):
        pds.solve(prob, pds.RK4(), dt0=0.1, rtoll=1e-3)
