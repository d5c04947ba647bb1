"""Checkpoint and resume for long runs: NeuralIVP evolution, PINN training, `pdesolve.train`.

A checkpoint file is a magic line, a checksum line, one JSON header line, then the arrays
written by `equinox.tree_serialise_leaves`:

    PDSCKPT 2\\n
    sha256 <64 hex digits: SHA-256 of every byte after this line>\\n
    {"format": 2, "pdesolve": "0.1.0", "jax": ..., "kind": ..., "fingerprint": {...},
     "meta": {...}, "every": 10, "step": 120, "arrays": {name: [shape, dtype]}, "state": {...}}\\n
    <payload>

The checksum covers the whole file after its first two lines — the header (loop state,
fingerprint, shapes) and the payload — so any edited or truncated byte is refused.
The header says what produced the file (`kind`: "neural_ivp", "pinn", "train"), a
`fingerprint` of the run (problem, solver options, PRNG key, parameter shapes, and hashes of
the traced computations: the equation, boundary condition, loss, optimiser) and the
caller's `meta`; `state` holds the loop's scalars and histories (JSON floats round-trip
exactly). The payload holds the arrays (parameters, optimiser / controller state) bit for bit.
Loading refuses a file whose magic line, checksum, header, kind, fingerprint, `meta` or array
shapes do not match, with a message naming the file and the difference — it never loads
silently.

A run holds an exclusive lock (`fcntl.flock` on `<path>.lock`, which records its pid) from
start to end, so two processes cannot write one checkpoint; the kernel drops the lock of a
dead process, so a stale lock file is simply taken over. Writes go to `<path>.tmp<pid>`
renamed over the old file, so a run killed while writing keeps its previous checkpoint;
such leftovers of dead processes are removed when a run starts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._validation import check_int

try:  # POSIX; elsewhere runs are not locked (a warning says so)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # the module or None: `if fcntl is None` below

_MAGIC = b"PDSCKPT 2\n"
_OLD_MAGIC = b"PDSCKPT 1\n"
_SUM_PREFIX = b"sha256 "
_SUM_LINE = len(_SUM_PREFIX) + 64 + 1
FORMAT = 2
_HEADER_KEYS = ("format", "kind", "fingerprint", "meta", "every", "step", "arrays", "state")


def check_path(path: str, who: str) -> None:
    """Refuse, before any work, a checkpoint path that cannot be written: a directory, a
    missing parent directory, or one that is not writable."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(
            f"{who}: checkpoint `path` {path!r} is a directory; give a file path, e.g. "
            f"pds.Checkpoint({os.path.join(path, 'run.eqx')!r})."
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(
            f"{who}: the directory of checkpoint `path` {path!r} ({os.fspath(parent)!r}) does not exist; "
            f"create it first (os.makedirs({os.fspath(parent)!r}, exist_ok=True)) or choose another path."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(
            f"{who}: cannot write checkpoint `path` {path!r}: its directory {os.fspath(parent)!r} is not "
            f"writable; choose another path or fix the directory's permissions."
        )


class Checkpoint(eqx.Module):
    """Save a long run every `every` steps, and optionally resume it from `path`.

        ckpt = pds.Checkpoint("run.eqx", every=50)
        sol = pds.solve(problem, pds.DTPINN(), checkpoint=ckpt, max_steps=2000)
        # ... killed; later:
        sol = pds.solve(problem, pds.DTPINN(), checkpoint=pds.Checkpoint("run.eqx", every=50, resume=True),
                        max_steps=2000)

    **Arguments:**

    - `path`: the checkpoint file (written atomically). It must not be a directory, and its
      directory must exist and be writable: checked here and again when a run starts, before
      any compilation. While a run uses it, `<path>.lock` is locked: a second process
      using the same path is refused (`pds.CheckpointError`) instead of overwriting it.
    - `every`: steps between saves — attempted time steps for `NeuralIVP`, optimiser steps
      for `DTPINN`/`PINN`, training steps for `pdesolve.train`. A run killed mid-way loses
      at most `every` steps. The final state is saved too.
    - `resume`: continue from `path` (which must exist). The continued run gives the same
      result as an uninterrupted one with the same `every` (bit for bit in float64 on the same
      machine). Pass the same problem, solver options and `key` as the first run: a mismatch
      (options, or the traced computation of the equation, boundary condition, loss or
      optimiser) is refused, as are corrupt files. `max_steps` may differ (to train longer).
    - `meta`: a JSON-serialisable dict stored in the header and compared on resume (the
      command line stores its problem name and options there).

    Supported by `NeuralIVP`, `DTPINN`, `PINN` (through `pdesolve.solve(...,
    checkpoint=...)`) and `pdesolve.train`; other solvers raise a `TypeError`.
    See docs/checkpoint.md for the guarantees.
    """

    path: str
    every: int = 100
    resume: bool = False
    meta: Any = None

    def __init__(self, path, every: int = 100, resume: bool = False, meta=None):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"Checkpoint `path` must be a str or path; got {type(path).__name__}.")
        every = check_int("every", every, 1, hint="Checkpoint(every=...) is the number of steps between saves.")
        if meta is not None:
            try:
                json.dumps(meta, sort_keys=True)
            except TypeError as e:
                raise TypeError(f"Checkpoint `meta` must be JSON-serialisable (str, numbers, lists, dicts): {e}") from e
        check_path(os.fspath(path), "Checkpoint")
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
    """A checkpoint file cannot be resumed from (corrupt, or from a different run), or its
    path is in use by another live run."""


class CheckpointInUseError(CheckpointError):
    """Another live process holds the checkpoint's lock."""


def check_checkpoint(checkpoint, who: str):
    """Validate the `checkpoint` option (type, path, resume file); returns it (or None).

    Called by every solver at the start of a run, before any compilation."""
    if checkpoint is None:
        return None
    if isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"{who}: `checkpoint` must be a pdesolve.Checkpoint, e.g. "
            f"pds.Checkpoint({os.fspath(checkpoint)!r}, every=100); got a path."
        )
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"{who}: `checkpoint` must be a pdesolve.Checkpoint; got {type(checkpoint).__name__}.")
    check_path(checkpoint.path, who)
    if checkpoint.resume and not Path(checkpoint.path).is_file():
        raise FileNotFoundError(
            f"{who}: cannot resume, checkpoint file {checkpoint.path!r} does not exist. Run once "
            f"with pds.Checkpoint({checkpoint.path!r}, every=...) (resume=False) to create it."
        )
    return checkpoint


def describe(value) -> Any:
    """A JSON-able, process-independent description of an option value (for fingerprints).

    Functions are named by qualified name here; what they compute is fingerprinted
    separately (`computation`, `problem_computation`, `optimizer_computation`)."""
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
    if eqx.is_array(value):
        arr = _host_array(value)
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


def _host_array(value) -> np.ndarray:
    if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    return np.asarray(value)


# --- fingerprints of computations ------------------------------------------------------------

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


def _jaxprs_in(value):
    from jax.extend.core import ClosedJaxpr, Jaxpr

    if isinstance(value, (ClosedJaxpr, Jaxpr)):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _jaxprs_in(v)


def _hash_consts(jaxpr, h) -> None:
    """Feed the values of every constant of `jaxpr` and its sub-jaxprs into `h`."""
    from jax.extend.core import ClosedJaxpr

    if isinstance(jaxpr, ClosedJaxpr):
        for c in jaxpr.consts:
            try:
                arr = _host_array(c)
                h.update(f"{arr.shape}{arr.dtype}".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
            except Exception:  # noqa: BLE001 - a non-array constant: its type only
                h.update(type(c).__name__.encode())
        jaxpr = jaxpr.jaxpr
    for eqn in jaxpr.eqns:
        for param in eqn.params.values():
            for sub in _jaxprs_in(param):
                _hash_consts(sub, h)


def jaxpr_fingerprint(closed_jaxpr) -> str:
    """SHA-256 of a traced computation: its printed jaxpr (memory addresses stripped, so the
    same computation hashes the same in every process) and the values of its constants
    (closed-over arrays), including those of nested jaxprs."""
    h = hashlib.sha256()
    h.update(_ADDRESS.sub("0x?", str(closed_jaxpr)).encode())
    _hash_consts(closed_jaxpr, h)
    return h.hexdigest()


def computation(fn, *args):
    """A fingerprint of what `fn(*args)` computes: the hash of `jax.make_jaxpr(fn)(*args)`
    (`args` may be `jax.ShapeDtypeStruct`s). If tracing fails, the function's qualified
    name instead — a fingerprint never raises."""
    try:
        return {"jaxpr_sha256": jaxpr_fingerprint(jax.make_jaxpr(fn)(*args))}
    except Exception:  # noqa: BLE001 - untraceable: fall back to the name
        return {"name": describe(fn)}


def _probe(shape, dtype):
    """A fixed smooth function of one point with values of `shape`: the field on which the
    problem's equation and boundary condition are traced."""
    import jax.numpy as jnp

    k = int(np.prod(shape)) if shape else 1

    def fn(x):
        w = jnp.arange(1, k + 1, dtype=dtype)
        return jnp.sin(w * jnp.sum(x * jnp.arange(1, x.shape[0] + 1, dtype=dtype)) + 0.5).reshape(shape)

    return fn


def problem_computation(problem, shape, dtype) -> dict:
    """Fingerprints of a `PDEProblem`'s functions (rhs or residual, boundary condition, u0,
    exact solution), each traced on a fixed probe field of value shape `shape`; closed-over
    constants and `args` enter by value."""
    from ._field import Field

    sds = jax.ShapeDtypeStruct
    d = problem.dim
    x, n, t = sds((d,), dtype), sds((d,), dtype), sds((), dtype)
    probe = _probe(tuple(shape), dtype)
    args = problem.args
    out = {}
    if problem.rhs is not None:
        out["problem.rhs"] = computation(lambda x, t: problem.rhs(Field(probe, x), x, t, args), x, t)
    if problem.residual is not None:
        out["problem.residual"] = computation(lambda x: problem.residual(Field(probe, x), x, args), x)
    if problem.u0 is not None:
        out["problem.u0"] = computation(problem.u0, x)
    steady = problem.residual is not None
    if problem.solution is not None:
        if steady:
            out["problem.solution"] = computation(lambda x: problem.solution(x, None), x)
        else:
            out["problem.solution"] = computation(problem.solution, x, t)
    if problem.bc is not None:
        bc = problem.bc
        if steady:
            out["problem.bc"] = computation(lambda x, n: bc.residual(Field(probe, x), x, n, None), x, n)
        else:
            out["problem.bc"] = computation(lambda x, n, t: bc.residual(Field(probe, x), x, n, t), x, n, t)
    return out


def optimizer_computation(optimizer, params) -> dict:
    """Fingerprint of an optax `GradientTransformation`: the traced `init(params)` (state
    structure and initial values) and `update(grads, state, params)` — the latter embeds
    the hyperparameters (learning rate, betas, schedules) as constants."""
    def both(p):
        state = optimizer.init(p)
        return state, optimizer.update(jax.tree.map(lambda a: a * 0, p), state, p)

    return computation(both, params)


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


# --- the run lock and leftover temporary files --------------------------------------------------


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def clean_stale_temporaries(path: str) -> list[str]:
    """Remove `<path>.tmp<pid>` files whose writer is dead (or is this process, which holds
    the lock and is not writing): leftovers of runs killed mid-write or of a full disk.
    Returns the removed paths."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    pattern = re.compile(re.escape(p.name) + r"\.tmp(\d+)$")
    removed: list[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or not _alive(pid):
            try:
                os.remove(parent / name)
                removed.append(os.fspath(parent / name))
            except OSError:
                pass
    return removed


def _read_pid(fd) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode(errors="replace").strip()
        return text or "?"
    except OSError:
        return "?"


def _acquire(path: str, who: str):
    lock_path = f"{path}.lock"
    if fcntl is None:  # pragma: no cover
        warnings.warn(f"{who}: cannot lock {lock_path!r} on this platform; do not run two jobs on one checkpoint.",
                      RuntimeWarning, stacklevel=3)
        return None
    for _ in range(20):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                warnings.warn(f"{who}: cannot lock {lock_path!r} ({e}); do not run two jobs on one checkpoint.",
                              RuntimeWarning, stacklevel=3)
                return None
            holder = _read_pid(fd)
            os.close(fd)
            raise CheckpointInUseError(
                f"{who}: checkpoint {path!r} is in use by another running process (pid {holder} holds "
                f"{lock_path!r}); two runs writing one checkpoint would overwrite each other. Wait for "
                f"that run to finish or stop it, or give this run another checkpoint path."
            ) from None
        # The holder before us may have removed the file after we opened it: lock the file
        # that is at `lock_path` now.
        try:
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd, lock_path
    raise CheckpointInUseError(f"{who}: could not lock {lock_path!r} (it keeps being replaced); retry.")


def _release(lock) -> None:
    if lock is None:
        return
    fd, lock_path = lock
    try:
        os.remove(lock_path)  # while still holding it; a waiting opener re-checks the inode
    except OSError:
        pass
    os.close(fd)


@contextlib.contextmanager
def run_lock(checkpoint, who: str):
    """Hold `<path>.lock` for the duration of a run (released on any exit, exceptions
    included) and remove stale temporary files; a no-op without a checkpoint.

    Raises `CheckpointInUseError` when another live process holds the lock."""
    if checkpoint is None:
        yield
        return
    lock = _acquire(checkpoint.path, who)
    try:
        clean_stale_temporaries(checkpoint.path)
        yield
    finally:
        _release(lock)


# --- writing and reading ------------------------------------------------------------------------


def save(checkpoint: Checkpoint, *, kind: str, fingerprint: dict, step: int, trees: dict[str, Any],
         state: dict) -> None:
    """Write a checkpoint atomically: magic, checksum of the rest, header (JSON), then
    `trees`' leaves (equinox serialisation). A failed write removes its temporary file."""
    from . import __version__

    arrays = _flatten(trees)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, arrays)
    payload = buffer.getvalue()
    header = {
        "format": FORMAT,
        "pdesolve": __version__,
        "jax": jax.__version__,
        "kind": kind,
        "fingerprint": fingerprint,
        "meta": checkpoint.meta,
        "every": checkpoint.every,
        "step": int(step),
        "arrays": {name: [list(a.shape), str(a.dtype)] for name, a in arrays.items()},
        "state": state,
    }
    body = json.dumps(header, sort_keys=True, default=_json_default, allow_nan=True).encode() + b"\n" + payload
    digest = hashlib.sha256(body).hexdigest().encode()
    tmp = f"{checkpoint.path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            f.write(_SUM_PREFIX + digest + b"\n")
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, checkpoint.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


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


_LABELS = {
    "problem.rhs": "the problem's rhs function",
    "problem.residual": "the problem's residual function",
    "problem.bc": "the problem's boundary condition",
    "problem.u0": "the problem's initial condition u0",
    "problem.solution": "the problem's exact solution",
    "loss": "the loss function (or the model it calls)",
    "optimizer": "the optimiser (its update rule or hyperparameters, e.g. the learning rate)",
    "solver.optimizer": "the solver's optimiser (its update rule or hyperparameters, e.g. the learning rate)",
}


def _computation_differences(expected: dict, found) -> list[str]:
    found = found if isinstance(found, dict) else {}
    out = []
    for name in sorted(set(expected) | set(found)):
        label = _LABELS.get(name, name)
        if name not in found:
            out.append(f"{label} is not in the checkpoint")
        elif name not in expected:
            out.append(f"the checkpoint has {label}, this run has none")
        elif expected[name] != found[name]:
            out.append(f"{label} differs from the checkpoint's (its traced computation changed)")
    return out


def _corrupt(path, why: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path!r} is corrupt ({why}); refusing to load it. Delete it and restart the "
        f"run, or resume from an intact copy."
    )


def read_header(path) -> tuple[dict, bytes]:
    """Read and verify a checkpoint file; returns (header, payload). Raises CheckpointError
    naming the file, "corrupt" and the cause for any damage."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path!r}: {e}") from e
    if blob.startswith(_OLD_MAGIC) and blob[len(_OLD_MAGIC):len(_OLD_MAGIC) + 1] == b"{":
        raise CheckpointError(
            f"checkpoint {path!r} has format 1 (an older pdesolve, whose header is not covered by the "
            f"checksum); this pdesolve reads format {FORMAT} only. Restart the run to write a new checkpoint."
        )
    if not blob.startswith(_MAGIC):
        raise CheckpointError(
            f"{path!r} is not a pdesolve checkpoint, or is corrupt (its first line is not "
            f"{_MAGIC.decode().strip()!r}); refusing to load it."
        )
    line = blob[len(_MAGIC):len(_MAGIC) + _SUM_LINE]
    digest = line[len(_SUM_PREFIX):-1]
    if (len(line) != _SUM_LINE or not line.startswith(_SUM_PREFIX) or not line.endswith(b"\n")
            or re.fullmatch(rb"[0-9a-f]{64}", digest) is None):
        raise _corrupt(path, "its checksum line is damaged or the file is truncated")
    body = blob[len(_MAGIC) + _SUM_LINE:]
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise _corrupt(path, "its contents do not match the checksum: truncated or modified")
    end = body.find(b"\n")
    try:
        if end < 0:
            raise ValueError("no complete header line")
        header = json.loads(body[:end])
    except ValueError as e:
        raise _corrupt(path, f"corrupt header: {e}") from e
    if not isinstance(header, dict):
        raise _corrupt(path, "corrupt header: not a JSON object")
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path!r} has format {header.get('format')!r}; this pdesolve reads format {FORMAT}."
        )
    missing = [k for k in _HEADER_KEYS if k not in header]
    if missing:
        raise _corrupt(path, f"corrupt header: missing {', '.join(missing)}")
    arrays = header["arrays"]
    ok = isinstance(arrays, dict) and isinstance(header["step"], int) and isinstance(header["state"], dict)
    if ok:
        for spec in arrays.values():
            if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], list)
                    and all(isinstance(s, int) and s >= 0 for s in spec[0]) and isinstance(spec[1], str)):
                ok = False
                break
            try:
                np.dtype(spec[1])
            except TypeError:
                ok = False
                break
    if not ok:
        raise _corrupt(path, "corrupt header: malformed step, state or array table")
    return header, body[end + 1:]


def load(checkpoint: Checkpoint, *, kind: str, fingerprint: dict, templates: dict[str, Any],
         state_keys=()):
    """Load a checkpoint written by `save` for the same run.

    `templates` maps each saved tree name to a pytree of the expected structure (its leaves
    give shapes and dtypes), or to None for a list of arrays of any shape. `state_keys`:
    entries `state` must have. Returns `(step, trees, state)`.
    """
    path = checkpoint.path
    header, payload = read_header(path)
    if header.get("kind") != kind:
        raise CheckpointError(
            f"checkpoint {path!r} was written by a {header.get('kind')!r} run, not {kind!r}; refusing to load it."
        )
    expected = json.loads(json.dumps(fingerprint, default=_json_default))
    found = header.get("fingerprint")
    found = found if isinstance(found, dict) else {}
    diffs = _computation_differences(expected.pop("computation", {}), found.get("computation"))
    if diffs and header.get("jax") != jax.__version__:
        diffs[-1] += (f" (the file was written under jax {header.get('jax')}, this is jax {jax.__version__}: "
                      f"tracing can differ between versions)")
    diffs += _differences(expected, {k: v for k, v in found.items() if k != "computation"})
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
    missing = [k for k in state_keys if k not in header["state"]]
    if missing:
        raise _corrupt(path, f"its loop state lacks {', '.join(missing)}")

    def index(k):
        tail = k.rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    for name, tree in templates.items():
        if tree is None:
            continue
        leaves = jax.tree.leaves(tree)
        found_keys = sorted((k for k in shapes if k.startswith(f"{name}/")), key=index)
        expected_shapes = [[list(np.shape(x)), str(x.dtype if isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct)) else np.asarray(x).dtype)]
                           for x in leaves]
        if len(found_keys) != len(leaves) or [shapes[k] for k in found_keys] != expected_shapes:
            raise CheckpointError(
                f"checkpoint {path!r}: the saved {name!r} has shapes {[shapes[k] for k in found_keys][:4]}..., this "
                f"run expects {expected_shapes[:4]}... (a different model or optimiser); refusing to resume."
            )
    try:
        like = {name: np.zeros(shape, dtype=np.dtype(dtype)) for name, (shape, dtype) in shapes.items()}
        arrays = eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as e:  # any decoding failure is a corrupt file
        raise _corrupt(path, f"cannot decode its arrays: {e}") from e
    trees = {}
    for name, tree in templates.items():
        keys = sorted((k for k in arrays if k.startswith(f"{name}/")), key=index)
        leaves = [arrays[k] for k in keys]
        if tree is None:
            trees[name] = [jax.numpy.asarray(x) for x in leaves]
        else:
            treedef = jax.tree.structure(tree)
            trees[name] = jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
    return int(header["step"]), trees, header["state"]
