"""Checkpoint and resume for long runs: NeuralIVP evolution, PINN training, `pdesolve.train`.

A checkpoint file is one JSON header line followed by the arrays written by
`equinox.tree_serialise_leaves`:

    PDSCKPT 1\\n
    {"format": 1, "pdesolve": "0.1.0", "kind": ..., "fingerprint": {...}, "meta": {...},
     "step": 120, "arrays": {name: [shape, dtype]}, "payload_sha256": ..., "state": {...}}\\n
    <payload>

The header says what produced the file (`kind`: "neural_ivp", "pinn", "train"), a
`fingerprint` of the run (problem, solver options, PRNG key, parameter shapes) and the
caller's `meta`; `state` holds the loop's scalars and histories (JSON floats round-trip
exactly). The payload holds the arrays (parameters, optimiser / controller state) bit for bit.
Loading refuses a file whose magic line, header, checksum, kind, fingerprint, `meta` or array
shapes do not match, with a message naming the difference — it never loads silently.
Writes go to a temporary file renamed over the old one, so a run killed while writing keeps
its previous checkpoint.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

_MAGIC = b"PDSCKPT 1\n"
FORMAT = 1


class Checkpoint(eqx.Module):
    """Save a long run every `every` steps, and optionally resume it from `path`.

        ckpt = pds.Checkpoint("run.eqx", every=50)
        sol = pds.solve(problem, pds.DTPINN(), checkpoint=ckpt, max_steps=2000)
        # ... killed; later:
        sol = pds.solve(problem, pds.DTPINN(), checkpoint=pds.Checkpoint("run.eqx", every=50, resume=True),
                        max_steps=2000)

    **Arguments:**

    - `path`: the checkpoint file (written atomically; the directory must exist).
    - `every`: steps between saves — attempted time steps for `NeuralIVP`, optimiser steps
      for `DTPINN`/`PINN`, training steps for `pdesolve.train`. A run killed mid-way loses
      at most `every` steps. The final state is saved too.
    - `resume`: continue from `path` (which must exist). The continued run gives the same
      result as an uninterrupted one with the same `every` (bit for bit in float64 on the same
      machine). Pass the same problem, solver options and `key` as the first run: a mismatch
      is refused, as are corrupt files. `max_steps` may differ (to train longer).
    - `meta`: a JSON-serialisable dict stored in the header and compared on resume (the
      command line stores its problem name and options there).

    Supported by `NeuralIVP`, `DTPINN`, `PINN` (through `pdesolve.solve(...,
    checkpoint=...)`) and `pdesolve.train`; other solvers raise a `TypeError`.
    """

    path: str
    every: int = 100
    resume: bool = False
    meta: Any = None

    def __init__(self, path, every: int = 100, resume: bool = False, meta=None):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"Checkpoint `path` must be a str or path; got {type(path).__name__}.")
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"Checkpoint `every` must be a positive int (steps between saves); got {every!r}.")
        if meta is not None:
            try:
                json.dumps(meta, sort_keys=True)
            except TypeError as e:
                raise TypeError(f"Checkpoint `meta` must be JSON-serialisable (str, numbers, lists, dicts): {e}") from e
        self.path = os.fspath(path)
        self.every = int(every)
        self.resume = bool(resume)
        self.meta = meta

    def due(self, step: int, last_saved: int) -> bool:
        """Whether `step` completes an interval not yet saved."""
        return step > last_saved and step % self.every == 0

    def steps_to_boundary(self, step: int) -> int:
        """Steps from `step` to the next multiple of `every` (1..every)."""
        return self.every - step % self.every


class CheckpointError(ValueError):
    """A checkpoint file cannot be resumed from: corrupt, or from a different run."""


def check_checkpoint(checkpoint, who: str):
    """Validate the `checkpoint` option; returns it (or None)."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"{who}: `checkpoint` must be a pdesolve.Checkpoint, e.g. "
            f"pds.Checkpoint({os.fspath(checkpoint)!r}, every=100); got a path."
        )
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"{who}: `checkpoint` must be a pdesolve.Checkpoint; got {type(checkpoint).__name__}.")
    if checkpoint.resume and not Path(checkpoint.path).is_file():
        raise FileNotFoundError(
            f"{who}: cannot resume, checkpoint file {checkpoint.path!r} does not exist. Run once "
            f"with pds.Checkpoint({checkpoint.path!r}, every=...) (resume=False) to create it."
        )
    return checkpoint


def describe(value) -> Any:
    """A JSON-able, process-independent description of an option value (for fingerprints)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return describe(value.item())
    if isinstance(value, (tuple, list)):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arr = np.asarray(value)
        if arr.size <= 64:
            return {"array": [describe(x) for x in arr.ravel().tolist()], "shape": list(arr.shape),
                    "dtype": str(arr.dtype)}
        return {"sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest(),
                "shape": list(arr.shape), "dtype": str(arr.dtype)}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    if isinstance(value, eqx.Module):
        fields = {}
        for name in getattr(value, "__dataclass_fields__", {}):
            try:
                fields[name] = describe(getattr(value, name))
            except Exception:  # noqa: BLE001 - a description must never fail
                fields[name] = type(getattr(value, name, None)).__name__
        return {"type": type(value).__name__, "fields": fields}
    return type(value).__name__


def key_description(key):
    """The raw data of a PRNG key (typed or legacy), as a list of ints."""
    if key is None:
        return None
    data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).ravel().tolist()


def _flatten(trees: dict[str, Any]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, tree in trees.items():
        for i, leaf in enumerate(jax.tree.leaves(tree)):
            arrays[f"{name}/{i}"] = np.asarray(leaf)
    return arrays


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):
        return np.asarray(obj).tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint header")


def save(checkpoint: Checkpoint, *, kind: str, fingerprint: dict, step: int, trees: dict[str, Any],
         state: dict) -> None:
    """Write a checkpoint atomically: header (JSON) + `trees`' leaves (equinox serialisation)."""
    from . import __version__

    arrays = _flatten(trees)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, arrays)
    payload = buffer.getvalue()
    header = {
        "format": FORMAT,
        "pdesolve": __version__,
        "kind": kind,
        "fingerprint": fingerprint,
        "meta": checkpoint.meta,
        "every": checkpoint.every,
        "step": int(step),
        "arrays": {name: [list(a.shape), str(a.dtype)] for name, a in arrays.items()},
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "state": state,
    }
    line = json.dumps(header, sort_keys=True, default=_json_default, allow_nan=True).encode()
    tmp = f"{checkpoint.path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(_MAGIC)
        f.write(line + b"\n")
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, checkpoint.path)


def _differences(expected, found, prefix="") -> list[str]:
    if isinstance(expected, dict) and isinstance(found, dict):
        out = []
        for k in sorted(set(expected) | set(found), key=str):
            if k not in found:
                out.append(f"{prefix}{k}: missing in the file")
            elif k not in expected:
                out.append(f"{prefix}{k}: only in the file")
            else:
                out.extend(_differences(expected[k], found[k], f"{prefix}{k}."))
        return out
    if expected != found:
        e, f = json.dumps(expected, default=str)[:80], json.dumps(found, default=str)[:80]
        return [f"{prefix.rstrip('.')}: this run {e}, file {f}"]
    return []


def read_header(path) -> tuple[dict, bytes]:
    """Read and verify a checkpoint file; returns (header, payload). Raises CheckpointError."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path!r}: {e}") from e
    if not blob.startswith(_MAGIC):
        raise CheckpointError(
            f"{path!r} is not a pdesolve checkpoint (its first line is not 'PDSCKPT 1'); refusing to load it."
        )
    end = blob.find(b"\n", len(_MAGIC))
    if end < 0:
        raise CheckpointError(f"checkpoint {path!r} is truncated (no complete header); refusing to load it.")
    try:
        header = json.loads(blob[len(_MAGIC):end])
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path!r} has a corrupt header ({e}); refusing to load it.") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path!r} has format {header.get('format') if isinstance(header, dict) else '?'}; "
            f"this pdesolve reads format {FORMAT}."
        )
    payload = blob[end + 1:]
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise CheckpointError(
            f"checkpoint {path!r} is corrupt: its arrays do not match the checksum in its header "
            f"(truncated or modified file); refusing to load it. Delete it and restart the run."
        )
    return header, payload


def load(checkpoint: Checkpoint, *, kind: str, fingerprint: dict, templates: dict[str, Any]):
    """Load a checkpoint written by `save` for the same run.

    `templates` maps each saved tree name to a pytree of the expected structure (its leaves
    give shapes and dtypes), or to None for a list of arrays of any shape. Returns
    `(step, trees, state)`.
    """
    path = checkpoint.path
    header, payload = read_header(path)
    if header.get("kind") != kind:
        raise CheckpointError(
            f"checkpoint {path!r} was written by a {header.get('kind')!r} run, not {kind!r}; refusing to load it."
        )
    diffs = _differences(json.loads(json.dumps(fingerprint, default=_json_default)), header.get("fingerprint"))
    diffs += _differences(checkpoint.meta, header.get("meta"), "meta.")
    if header.get("every") != checkpoint.every:
        diffs.append(f"every: this run {checkpoint.every}, file {header.get('every')}")
    if diffs:
        raise CheckpointError(
            f"checkpoint {path!r} belongs to a different run; refusing to resume. Differences: "
            + "; ".join(diffs[:8]) + (" ..." if len(diffs) > 8 else "")
            + ". Resume with the same problem, solver options, key and `every`, or start a new checkpoint file."
        )
    shapes = header["arrays"]
    for name, tree in templates.items():
        if tree is None:
            continue
        leaves = jax.tree.leaves(tree)
        found = sorted((k for k in shapes if k.startswith(f"{name}/")), key=lambda k: int(k.split("/")[-1]))
        expected = [[list(x.shape), str(np.dtype(x.dtype))] if hasattr(x, "dtype") else
                    [list(np.shape(x)), str(np.asarray(x).dtype)] for x in leaves]
        if len(found) != len(leaves) or [shapes[k] for k in found] != expected:
            raise CheckpointError(
                f"checkpoint {path!r}: the saved {name!r} has shapes {[shapes[k] for k in found][:4]}..., this "
                f"run expects {expected[:4]}... (a different model or optimiser); refusing to resume."
            )
    like = {name: np.zeros(shape, dtype=np.dtype(dtype)) for name, (shape, dtype) in shapes.items()}
    try:
        arrays = eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as e:  # any decoding failure is a corrupt file
        raise CheckpointError(f"checkpoint {path!r}: cannot decode its arrays ({e}); refusing to load it.") from e
    trees = {}
    for name, tree in templates.items():
        keys = sorted((k for k in arrays if k.startswith(f"{name}/")), key=lambda k: int(k.split("/")[-1]))
        leaves = [arrays[k] for k in keys]
        if tree is None:
            trees[name] = [jax.numpy.asarray(x) for x in leaves]
        else:
            treedef = jax.tree.structure(tree)
            trees[name] = jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
    return int(header["step"]), trees, header["state"]
