"""Run directories (readable with numpy alone):

    RUN_DIR/config.json                 every setting + ibjax_version + run_id (hash of the settings)
    RUN_DIR/params/epoch_000123.npz     one per kept epoch: "Dense_0/kernel" etc. + __epoch__, __run_id__, __digest__
    RUN_DIR/metrics.npz                 per-epoch metrics + __run_id__, __digest__
    RUN_DIR/complete.json               written last: format, run_id and the list of kept epochs

Writing. ``write_run`` writes the whole run into a hidden sibling ``.RUN.tmp-<random>`` (each file
to a temporary name and renamed, complete.json last), then swaps it into place: the old directory
is renamed to ``.RUN.old-<random>``, the new one to RUN_DIR, and the old one is deleted. A swap,
rather than deleting complete.json and rewriting in place, because the old finished run stays intact
and loadable for its own settings until the new one is complete; an interrupted rewrite can never
mix its files with the old run's (stale metrics, stale params of epochs the new schedule does not
keep). Between the two renames RUN_DIR is briefly absent, which loaders treat as "not a run". A
killed write leaves its hidden sibling behind (``load_run(..., allow_partial=True)`` reads it); the
next write of the same directory deletes such orphans first. Files in RUN_DIR that the run did not
write (notes, an evaluation saved into the run directory) are moved into the rewrite, never deleted.
A symlinked RUN_DIR is written where it points, unless a finished run of other settings is there
(another experiment's run): that is refused, not replaced through the link. Two processes cannot write the same
run directory at once: a write holds ``run_lock`` (the hidden sibling ``.RUN.lock``, outside the
directory that is swapped), and a second writer gets ``io.DirectoryLocked`` naming the first.

Loading. ``load_run`` refuses, naming the file and what to do: a directory without complete.json, a
config.json whose settings no longer hash to its recorded run_id, params files missing from or extra
to complete.json's epoch list, files written by another run, and corrupt files (every npz carries a
sha256 ``__digest__`` of its arrays, names, dtypes and shapes, so a flipped byte either fails to load
or changes nothing that is returned). ``is_complete`` is the cheap check used to reuse a run.
"""

from __future__ import annotations

import glob
import hashlib
import io as _pyio
import json
import os
import re
import secrets
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import ibjax
from ibjax import io
from ibjax.timing import phased

FORMAT = 2  # complete.json "format"; 1 (no key) = before run ids in metrics and npz digests
_META = ("__epoch__", "__run_id__", "__digest__")
_UNHASHED = ("ibjax_version", "run_id", "versions")
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.npz")


class IncompleteRunWarning(UserWarning):
    """``load_run(..., allow_partial=True)`` loaded a run with epochs (or complete.json) missing."""


class Run(NamedTuple):
    epochs: np.ndarray  # E loaded epochs, sorted
    params: dict  # nested dict of arrays stacked over E
    config: dict
    metrics: dict
    missing: tuple = ()  # requested epochs listed in complete.json whose params file is absent


def _jsonable(o: Any):
    if isinstance(o, np.generic | np.ndarray):
        return o.tolist()
    return str(o)


def _normalise(config: dict) -> dict:
    """The config as it reads back from JSON (tuples -> lists, numpy scalars -> numbers, Path -> str)."""
    return json.loads(json.dumps(config, default=_jsonable))


def run_id(config: dict) -> str:
    """A short hash of the settings (ibjax_version, run_id and versions excluded), identifying a run's files."""
    body = {k: v for k, v in _normalise(config).items() if k not in _UNHASHED}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def epoch_path(run_dir: str | Path, epoch: int) -> Path:
    return Path(run_dir) / "params" / f"epoch_{int(epoch):06d}.npz"


def flatten(params: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "/"))
        else:
            out[name] = v
    return out


def unflatten(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for name, v in flat.items():
        node = out
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def write_config(run_dir: str | Path, config: dict) -> dict:
    """Write config.json (with run_id and version); returns the recorded config."""
    config = dict(_normalise(config), ibjax_version=ibjax.__version__)
    config["run_id"] = run_id(config)
    io.atomic_write_json(Path(run_dir) / "config.json", config)
    return config


def run_lock(run_dir: str | Path, *, what: str = "writing a run directory"):
    """The lock held while writing ``run_dir``: ``.NAME.lock`` beside it (a file inside would be swapped
    away with the directory); see ``io.path_lock``."""
    run_dir = Path(os.path.realpath(run_dir))
    return io.path_lock(run_dir.parent / f".{run_dir.name}.lock", target=f"run directory {run_dir}", what=what)


@phased("write")
def write_run(run_dir: str | Path, config: dict, epochs, params_stacked: dict, metrics: dict, *, progress=None) -> dict:
    """Write a whole run directory, replacing whatever RUN_DIR held only once the new run is complete
    (see the module docstring). Returns the recorded config."""
    given = Path(run_dir)
    run_dir = Path(os.path.realpath(run_dir))  # a symlinked run directory is rewritten where it lives ...
    epochs_E, flat, metrics = _check_run_inputs(epochs, params_stacked, metrics)
    _check_replaceable(run_dir)
    if run_dir != Path(os.path.abspath(given)):  # reached through a symlink
        _check_link_target(given, run_dir, config)  # ... unless that would destroy another run
    with run_lock(run_dir):
        return _write_run(run_dir, config, epochs_E, flat, metrics, progress)


def _write_run(run_dir: Path, config: dict, epochs_E, flat: dict, metrics: dict, progress) -> dict:
    clean_orphans(run_dir)
    tmp = _new_sibling(run_dir, "tmp")
    os.mkdir(tmp)  # mode 0777 & ~umask, like any directory (mkdtemp would make it 0700)
    config = write_config(tmp, config)
    rid = config["run_id"]
    os.mkdir(tmp / "params")
    it = range(len(epochs_E)) if progress is None else progress(range(len(epochs_E)))
    for i in it:  # synced together below (one syncfs, not an fsync per file), before the directory is published
        arrays = {k: v[i] for k, v in flat.items()}
        arrays.update(__epoch__=np.int64(epochs_E[i]), __run_id__=np.array(rid))
        io.atomic_save_npz(epoch_path(tmp, epochs_E[i]), _with_digest(arrays), sync=False)
    io.atomic_save_npz(tmp / "metrics.npz", _with_digest(dict(metrics, __run_id__=np.array(rid))), sync=False)
    io.sync_tree(tmp, [epoch_path(tmp, e) for e in epochs_E] + [tmp / "metrics.npz"])
    _fsync_dir(tmp / "params")
    io.atomic_write_json(
        tmp / "complete.json", {"format": FORMAT, "run_id": rid, "epochs": epochs_E.tolist(), "finished": time.time()}
    )
    _fsync_dir(tmp)
    _swap_into_place(tmp, run_dir)
    _remember(run_dir, Run(epochs_E, unflatten(flat), config, dict(metrics)))
    return config


def _check_run_inputs(epochs, params_stacked: dict, metrics: dict):
    epochs_E = np.asarray(epochs)
    if epochs_E.ndim != 1 or epochs_E.size == 0 or not np.issubdtype(epochs_E.dtype, np.integer):
        raise ValueError(
            f"epochs must be a non-empty 1-d array of integers, got {epochs_E.dtype} of shape {epochs_E.shape}"
        )
    if (epochs_E < 0).any() or np.unique(epochs_E).size != epochs_E.size:
        raise ValueError(f"epochs must be distinct and >= 0, got {epochs_E.tolist()[:20]}")
    flat = {k: np.asarray(v) for k, v in flatten(params_stacked).items()}
    for k, v in flat.items():
        if k in _META or v.ndim == 0 or v.shape[0] != epochs_E.size:
            raise ValueError(
                f"params_stacked[{k!r}] must be stacked over the {epochs_E.size} epochs "
                f"(leading axis {epochs_E.size}), got shape {v.shape}"
            )
    bad = sorted(set(metrics) & set(_META))
    if bad:
        raise ValueError(f"metrics keys {bad} are reserved for the run directory's own records")
    return epochs_E.astype(np.int64), flat, {k: np.asarray(v) for k, v in metrics.items()}


def _check_replaceable(run_dir: Path) -> None:
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise ValueError(f"run_dir={str(run_dir)!r} exists and is not a directory; remove it or choose another path")
    names = [n for n in os.listdir(run_dir) if not n.startswith(".")]
    if names and "config.json" not in names and "params" not in names:
        raise ValueError(
            f"refusing to replace run_dir={str(run_dir)!r}: it is not a run directory (it holds "
            f"{sorted(names)[:5]}); remove it or choose another directory"
        )


def _check_link_target(given: Path, run_dir: Path, config: dict) -> None:
    """Through a symlink (seed_N linked to a bigger disk, say) a run is written where the link points,
    but a finished run of other settings there is another experiment's: never replaced through a link."""
    try:
        saved = read_config(run_dir)
    except (OSError, ValueError):
        return  # nothing finished there (an empty directory, a killed write): nothing to lose
    if saved.get("run_id") != run_id(config):
        raise ValueError(
            f"run_dir={str(given)!r} links to {str(run_dir)!r}, which holds another finished run (run_id "
            f"{saved.get('run_id')}; these settings are run_id {run_id(config)}): replacing it through the "
            "link would destroy that run; remove the link or choose another directory"
        )


RUN_FILES = ("config.json", "params", "metrics.npz", "complete.json")  # what write_run writes


def _carry_user_files(src: Path, dst: Path) -> None:
    """Move what a user (or an evaluation) put in a run directory into its rewrite: nothing but the
    run's own files is replaced. A name the new run already holds is kept beside it as NAME.old."""
    if not src.is_dir() or src.is_symlink():
        return
    for p in sorted(src.iterdir()):
        if p.name in RUN_FILES or (p.name.startswith(".") and p.name.endswith(".tmp")):
            continue
        dst.mkdir(exist_ok=True)  # (a kill between the swap's renames left no RUN_DIR)
        target = dst / p.name
        while os.path.lexists(target):
            target = target.with_name(target.name + ".old")
        os.rename(p, target)


def clean_orphans(run_dir: str | Path) -> list[Path]:
    """Delete what killed writes of ``run_dir`` left: hidden ``.NAME.tmp-*``/``.NAME.old-*`` siblings
    and ``.*.tmp`` files inside it. Returns the paths removed."""
    run_dir = Path(os.path.realpath(run_dir))
    stem = glob.escape(f".{run_dir.name}")
    found = [*run_dir.parent.glob(f"{stem}.tmp-*"), *run_dir.parent.glob(f"{stem}.old-*")]
    for d in (run_dir, run_dir / "params"):
        if d.is_dir() and not d.is_symlink():
            found += [p for p in d.glob(".*.tmp") if p.is_file()]
    for p in found:
        if p.is_dir() and not p.is_symlink():
            if ".old-" in p.name:  # a rewrite killed before it carried the user's files across
                _carry_user_files(p, run_dir)
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)
    return found


def _new_sibling(run_dir: Path, kind: str) -> Path:
    while True:
        p = run_dir.parent / f".{run_dir.name}.{kind}-{secrets.token_hex(4)}"
        if not os.path.lexists(p):
            return p


def _swap_into_place(tmp: Path, run_dir: Path) -> None:
    if os.path.lexists(run_dir):
        old = _new_sibling(run_dir, "old")
        os.rename(run_dir, old)
        os.rename(tmp, run_dir)  # a kill between the renames leaves no RUN_DIR: "not a run", never a stale one
        _fsync_dir(run_dir.parent)
        _carry_user_files(old, run_dir)  # (a kill before this: the next write's clean_orphans carries them)
        try:
            shutil.rmtree(old)
        except OSError as e:  # the new run is in place; the next write of run_dir retries the removal
            warnings.warn(f"could not remove the replaced run {old} ({e})", stacklevel=3)
    else:
        os.rename(tmp, run_dir)
        _fsync_dir(run_dir.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of named arrays: every name, dtype, shape and byte (what each run-directory file carries)."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _with_digest(arrays: dict) -> dict:
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    return dict(arrays, __digest__=np.array(digest(arrays)))


def _read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """All arrays of an npz written by ``write_run``, its digest checked and removed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing {what} file; retrain the run") from None
    try:
        z = np.load(_pyio.BytesIO(data), allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an npz archive")
        with z:
            flat = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile, numpy and struct all raise their own types on damaged bytes
        raise ValueError(f"{path}: corrupt or truncated {what} file ({type(e).__name__}: {e}); retrain the run") from e
    stored = flat.pop("__digest__", None)
    if stored is None:
        raise ValueError(
            f"{path}: {what} file has no __digest__: corrupt, or written by an ibjax older than "
            f"run-directory format {FORMAT}; retrain the run"
        )
    if str(stored) != digest(flat):
        raise ValueError(
            f"{path}: corrupt {what} file (its arrays do not match their sha256 __digest__); retrain the run"
        )
    return flat


def _check_run_id(path: Path, flat: dict, expected_id: str | None, what: str) -> None:
    found = str(flat.get("__run_id__"))
    if expected_id is not None and found != expected_id:
        raise ValueError(
            f"{path}: {what} file written by a different run (run_id {found}, expected "
            f"{expected_id}); the directory mixes runs, retrain it"
        )


def is_complete(run_dir: str | Path, config: dict | None = None) -> bool:
    """Cheap check (no arrays read) that the run finished writing, that config.json still hashes to its
    recorded run_id, that exactly the listed params files exist, and, if ``config`` is given, that the
    run was made with those settings."""
    run_dir = Path(run_dir)
    try:
        saved = read_config(run_dir)
        complete = _read_complete(run_dir, saved)
        files = {p.name for p in (run_dir / "params").iterdir()}
    except (OSError, ValueError):
        return False
    if complete is None or saved.get("run_id") != run_id(saved) or not (run_dir / "metrics.npz").is_file():
        return False
    if config is not None and saved.get("run_id") != run_id(config):
        return False
    listed = {epoch_path(run_dir, e).name for e in complete["epochs"]}
    return {n for n in files if _EPOCH_FILE.fullmatch(n)} == listed


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} is not a run directory: no config.json")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupt config.json ({e})") from e
    if not isinstance(config, dict):
        raise ValueError(f"{path}: corrupt config.json (not a JSON object)")
    return config


def _check_config(run_dir: Path, config: dict) -> str:
    recorded, computed = config.get("run_id"), run_id(config)
    if recorded != computed:
        raise ValueError(
            f"{run_dir / 'config.json'}: config.json was edited after the run was written (its settings "
            f"hash to {computed}, the recorded run_id is {recorded}); restore it or retrain the run"
        )
    return computed


def _read_complete(run_dir: Path, config: dict) -> dict | None:
    """complete.json checked against config.json, or None when absent."""
    path = run_dir / "complete.json"
    if not path.is_file():
        return None
    try:
        complete = json.loads(path.read_text())
        epochs = [int(e) for e in complete["epochs"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: corrupt complete.json ({type(e).__name__}: {e}); retrain the run") from e
    if complete.get("format") != FORMAT:
        raise ValueError(
            f"{path}: run written in run-directory format {complete.get('format', 1)}, this ibjax "
            f"reads format {FORMAT}; retrain the run"
        )
    if complete.get("run_id") != config.get("run_id"):
        raise ValueError(
            f"{path}: complete.json belongs to run {complete.get('run_id')}, config.json to "
            f"{config.get('run_id')}; the directory mixes runs, retrain it"
        )
    return dict(complete, epochs=epochs)


def kept_epochs(run_dir: str | Path) -> np.ndarray:
    """The epochs that have a params file, sorted."""
    d = Path(run_dir) / "params"
    names = os.listdir(d) if d.is_dir() else []
    return np.array(sorted(int(m[1]) for n in names if (m := _EPOCH_FILE.fullmatch(n))), dtype=np.int64)


def load_epoch(run_dir: str | Path, epoch: int, expected_id: str | None = None) -> dict[str, np.ndarray]:
    path = epoch_path(run_dir, epoch)
    flat = _read_npz(path, "params")
    if "__epoch__" not in flat or int(flat["__epoch__"]) != int(epoch):
        raise ValueError(f"{path}: file does not hold epoch {epoch} (found {flat.get('__epoch__')})")
    _check_run_id(path, flat, expected_id, "params")
    return {k: v for k, v in flat.items() if k not in _META}


@phased("load")
def load_run(run_dir: str | Path, epochs=None, *, allow_partial: bool = False) -> Run:
    """Load a finished run (``epochs``: a subset of the kept epochs; all when None), params stacked over
    epochs. ``allow_partial=True`` also loads a run without complete.json or with params files missing
    (warning, and ``Run.missing`` lists them); damaged or foreign files are refused either way."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} does not exist (or is being replaced by a rewrite)")
    config = read_config(run_dir)
    rid = _check_config(run_dir, config)
    complete = _read_complete(run_dir, config)
    have = kept_epochs(run_dir)
    if complete is None and not allow_partial:
        raise ValueError(
            f"incomplete run directory {run_dir}: no complete.json, training was interrupted or is "
            f"still writing; retrain it, or pass allow_partial=True to load the {have.size} epochs present"
        )
    listed = have if complete is None else np.array(sorted(complete["epochs"]), dtype=np.int64)
    _refuse_extra_files(run_dir, np.setdiff1d(have, listed))
    missing = np.setdiff1d(listed, have)
    if missing.size and not allow_partial:
        raise FileNotFoundError(
            f"{run_dir / 'params'}: {_missing_text(run_dir, missing, listed)}; retrain the run, "
            f"or pass allow_partial=True to load the {listed.size - missing.size} epochs present"
        )
    want = listed if epochs is None else _requested(run_dir, epochs, listed)
    missing = np.intersect1d(want, missing)
    want = np.setdiff1d(want, missing)
    if want.size == 0:
        raise ValueError(f"run_dir={str(run_dir)!r} has no params files to load")
    known = _recalled(run_dir, config) if complete is not None and not missing.size else None
    if known is not None:  # this process wrote or read these very files: no need to read them again
        pos = np.searchsorted(known.epochs, want)
        return Run(want, _take(known.params, pos), config, known.metrics)
    flats = [load_epoch(run_dir, e, rid) for e in want]
    _check_same_arrays(run_dir, want, flats)
    metrics = load_metrics(run_dir, expected_id=rid, required=complete is not None)
    if complete is None or missing.size:
        _warn_partial(run_dir, complete is None, missing, listed, want.size)
    stacked = {k: np.stack([f[k] for f in flats]) for k in flats[0]}
    run = Run(want, unflatten(stacked), config, metrics, tuple(missing.tolist()))
    if complete is not None and not missing.size and np.array_equal(want, listed):
        _remember(run_dir, run)
    return run


# ------------------------------------------------------------------------------------------------
# the runs this process wrote or verified, by the state of their files (a rewrite, a damaged or
# touched file, a file more or less: any change to a file's inode, size or mtime, and the run is
# read from disk again)

MEMO_BYTES = 512 * 2**20  # held at most (least recently used runs dropped first); runs above 1/8 of it never
_MEMO: dict[str, tuple[tuple, Run, int]] = {}  # real path -> (files' state, the whole run, its bytes)


def _files_state(run_dir: Path) -> tuple:
    """(name, inode, size, mtime) of every file of the run directory, sorted; () when unreadable."""
    try:
        names = ["config.json", "complete.json", "metrics.npz"]
        names += [f"params/{n}" for n in os.listdir(run_dir / "params")]
        out = []
        for n in sorted(names):
            st = os.stat(run_dir / n)
            out.append((n, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return (os.stat(run_dir).st_ino, *out)
    except OSError:
        return ()


def _remember(run_dir: Path, run: Run) -> None:
    key = os.path.realpath(run_dir)
    _MEMO.pop(key, None)
    size = sum(int(a.nbytes) for a in flatten(run.params).values())
    state = _files_state(Path(key))
    if not state or size > MEMO_BYTES // 8:
        return
    frozen = lambda a: np.array(a, copy=True)  # a copy: a caller changing its arrays later cannot change these
    params = unflatten({k: _readonly(frozen(v)) for k, v in flatten(run.params).items()})
    metrics = {k: _readonly(frozen(v)) for k, v in run.metrics.items()}
    _MEMO[key] = (state, Run(np.asarray(run.epochs).copy(), params, run.config, metrics), size)
    while sum(v[2] for v in _MEMO.values()) > MEMO_BYTES:
        _MEMO.pop(next(iter(_MEMO)))


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _recalled(run_dir: Path, config: dict) -> Run | None:
    key = os.path.realpath(run_dir)
    hit = _MEMO.get(key)
    if hit is None or hit[0] != _files_state(Path(key)) or hit[1].config != config:
        _MEMO.pop(key, None)
        return None
    _MEMO[key] = _MEMO.pop(key)  # most recently used last
    return hit[1]


def _take(params: dict, pos: np.ndarray) -> dict:
    flat = flatten(params)
    if len(pos) == len(next(iter(flat.values()))) and np.array_equal(pos, np.arange(len(pos))):
        return params
    return unflatten({k: v[pos] for k, v in flat.items()})


def forget_runs() -> None:
    """Drop every remembered run (the next ``load_run`` reads and verifies the files again)."""
    _MEMO.clear()


def _requested(run_dir: Path, epochs, listed: np.ndarray) -> np.ndarray:
    want = np.unique(np.asarray(epochs, dtype=np.int64).ravel())
    absent = np.setdiff1d(want, listed)
    if absent.size:
        rng = f"{listed.min()}..{listed.max()} ({listed.size} kept)" if listed.size else "none"
        raise ValueError(f"epochs {absent[:10].tolist()} were not kept in {run_dir}; kept epochs: {rng}")
    return want


def _missing_text(run_dir: Path, missing: np.ndarray, listed: np.ndarray) -> str:
    names = ", ".join(epoch_path(run_dir, e).name for e in missing[:10]) + (", ..." if missing.size > 10 else "")
    return (
        f"{missing.size} of {listed.size} params files listed in complete.json are missing ({names}; "
        f"epochs {missing[:10].tolist()}{' ...' if missing.size > 10 else ''})"
    )


def _refuse_extra_files(run_dir: Path, extra: np.ndarray) -> None:
    if extra.size:
        names = ", ".join(epoch_path(run_dir, e).name for e in extra[:10])
        raise ValueError(
            f"{run_dir / 'params'}: {extra.size} params files not in complete.json's epoch list "
            f"({names}), left by another run or copied in; retrain the run"
        )


def _check_same_arrays(run_dir: Path, epochs: np.ndarray, flats: list[dict]) -> None:
    ref = {k: (v.dtype, v.shape) for k, v in flats[0].items()}
    for e, f in zip(epochs[1:], flats[1:]):
        if {k: (v.dtype, v.shape) for k, v in f.items()} != ref:
            raise ValueError(
                f"{epoch_path(run_dir, e)}: holds other arrays than {epoch_path(run_dir, epochs[0]).name}; "
                f"the directory mixes runs, retrain it"
            )


def _warn_partial(run_dir: Path, no_complete: bool, missing: np.ndarray, listed: np.ndarray, n: int) -> None:
    if no_complete:
        msg = f"incomplete run directory {run_dir} (no complete.json): loaded the {n} epochs present; the full epoch list is unknown"
    else:
        msg = f"incomplete run directory {run_dir}: loaded {n} epochs; {_missing_text(run_dir, missing, listed)}"
    warnings.warn(msg, IncompleteRunWarning, stacklevel=3)


def load_metrics(
    run_dir: str | Path, *, expected_id: str | None = None, required: bool = False
) -> dict[str, np.ndarray]:
    """metrics.npz without its records; ``expected_id``: refuse one written by another run; absent: {}
    (or FileNotFoundError when ``required``)."""
    path = Path(run_dir) / "metrics.npz"
    if not path.is_file() and not required:
        return {}
    flat = _read_npz(path, "metrics")
    _check_run_id(path, flat, expected_id, "metrics")
    return {k: v for k, v in flat.items() if k not in _META}
