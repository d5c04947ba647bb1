"""`pds.train`: it trains (the loss falls), resumes bit for bit, draws reproducible
minibatches, and refuses bad arguments."""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pdesolve as pds

TS = jnp.linspace(0.0, 1.0, 6)
A_TRUE = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])


def _data():
    y0s = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [-1.0, 0.3]])
    ys = jax.vmap(lambda y0: jax.vmap(lambda t: jax.scipy.linalg.expm(t * A_TRUE) @ y0)(TS))(y0s)
    return y0s, ys


class Linear(eqx.Module):
    A: jax.Array

    def __call__(self, t, y, args):
        return self.A @ y


LOSS_WEIGHT = 1.0  # read by `loss` when traced: a test changes it to change the loss, not its name


def loss(model, data):
    y0s, ys = data

    def one(y0, y):
        sol = pds.solve(pds.NeuralODEProblem(model, y0, (0.0, 1.0)), pds.RK4(), dt0=0.1, saveat=pds.SaveAt(ts=TS))
        return jnp.mean((sol.ys - y) ** 2)

    return LOSS_WEIGHT * jnp.mean(jax.vmap(one)(y0s, ys))


MODEL = Linear(jnp.zeros((2, 2)))
OPT = optax.adam(0.05)


def _train(path=None, resume=False, steps=30, **kw):
    ckpt = None if path is None else pds.Checkpoint(path, every=10, resume=resume)
    return pds.train(loss, MODEL, OPT, steps=steps, data=_data(), checkpoint=ckpt, chunk=8, **kw)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    path = tmp_path_factory.mktemp("train") / "full.eqx"
    return path, *_train(path)


def test_loss_falls(full):
    _, model, stats = full
    h = stats["loss_history"]
    assert h.shape == (30,) and stats["num_steps"] == 30 and stats["resumed_from_step"] is None
    assert h[-1] < 0.2 * h[0]


def test_resume_is_bit_identical(full, tmp_path):
    _, model, stats = full
    part = tmp_path / "part.eqx"
    _train(part, steps=14)  # stops mid-interval: saved at 10 and at 14
    model2, stats2 = _train(part, resume=True)
    assert stats2["resumed_from_step"] == 14
    np.testing.assert_array_equal(np.asarray(model.A), np.asarray(model2.A))
    np.testing.assert_array_equal(stats["loss_history"], stats2["loss_history"])


def test_minibatches_reproducible_and_resumable(tmp_path):
    kw = dict(batch_size=2, key=jax.random.PRNGKey(1))
    m1, s1 = _train(steps=12, **kw)
    m2, s2 = _train(steps=12, **kw)
    np.testing.assert_array_equal(s1["loss_history"], s2["loss_history"])
    _train(tmp_path / "mb.eqx", steps=5, **kw)
    m3, s3 = _train(tmp_path / "mb.eqx", resume=True, steps=12, **kw)
    np.testing.assert_array_equal(np.asarray(m1.A), np.asarray(m3.A))
    with pytest.raises(pds.CheckpointError, match="batch_size"):
        _train(tmp_path / "mb.eqx", resume=True, steps=12, batch_size=3, key=jax.random.PRNGKey(1))


def test_changed_data_is_refused(full):
    path, *_ = full
    y0s, ys = _data()
    with pytest.raises(pds.CheckpointError, match="data"):
        pds.train(loss, MODEL, OPT, steps=30, data=(y0s, ys + 1.0), chunk=8,
                  checkpoint=pds.Checkpoint(path, every=10, resume=True))


@pytest.mark.parametrize(
    "optimizer",
    [optax.adam(1.0), optax.sgd(0.05), optax.chain(optax.clip(1.0), optax.adam(0.05))],
    ids=["learning rate", "other rule", "added transform"],
)
def test_changed_optimiser_is_refused(full, optimizer):
    path, *_ = full
    with pytest.raises(pds.CheckpointError, match=r"the optimiser \(its update rule or hyperparameters"):
        pds.train(loss, MODEL, optimizer, steps=30, data=_data(), chunk=8,
                  checkpoint=pds.Checkpoint(path, every=10, resume=True))


def test_changed_loss_is_refused(full, monkeypatch):
    path, *_ = full
    monkeypatch.setattr(sys.modules[__name__], "LOSS_WEIGHT", 2.0)
    with pytest.raises(pds.CheckpointError, match=r"the loss function .*differs from the checkpoint's \(its traced"):
        pds.train(loss, MODEL, OPT, steps=30, data=_data(), chunk=8,
                  checkpoint=pds.Checkpoint(path, every=10, resume=True))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(optimizer="adam"), TypeError, "optax GradientTransformation"),
        (dict(steps=-1), ValueError, "steps"),
        (dict(batch_size=2), ValueError, "key"),
        (dict(batch_size=9, key=jax.random.PRNGKey(0)), ValueError, "batch_size"),
        (dict(model=Linear(jnp.full((2, 2), jnp.nan))), ValueError, "NaN"),
        (dict(mesh="cpu"), TypeError, "Mesh"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"model": MODEL, "optimizer": OPT, "steps": 1, "data": _data(), **kwargs}
    with pytest.raises(error, match=match):
        pds.train(loss, args.pop("model"), args.pop("optimizer"), **args)
