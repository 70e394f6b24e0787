"""Run directories (readable with numpy alone):

    RUN_DIR/config.json                 every setting + ibjax version + run_id (hash of the settings)
    RUN_DIR/params/epoch_000123.npz     one per kept epoch, keys "Dense_0/kernel", plus __epoch__, __run_id__
    RUN_DIR/metrics.npz                 per-epoch metrics
    RUN_DIR/complete.json               written last: the run finished writing

Every file is written to a temporary name and renamed into place, so an interrupted write never
leaves a file that loads. Each params file records its epoch and the run's id, so a file left by a
different run in the same directory is detected instead of loaded.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import ibjax
from ibjax import io

_META = ("__epoch__", "__run_id__")


class Run(NamedTuple):
    epochs: np.ndarray  # E kept epochs, sorted
    params: dict  # nested dict of arrays stacked over E
    config: dict
    metrics: dict


def run_id(config: dict) -> str:
    """A short hash of the settings (the ibjax version excluded), identifying a run's files."""
    body = {k: v for k, v in config.items() if k not in ("ibjax_version", "run_id")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
    config = dict(config, ibjax_version=ibjax.__version__)
    config["run_id"] = run_id(config)
    io.atomic_write_json(Path(run_dir) / "config.json", config)
    return config


def write_run(run_dir: str | Path, config: dict, epochs, params_stacked: dict, metrics: dict, *, progress=None) -> dict:
    """Write a whole run directory: config first, then one params file per epoch, metrics, and the
    completion marker last. Returns the recorded config."""
    run_dir = Path(run_dir)
    config = write_config(run_dir, config)
    (run_dir / "params").mkdir(parents=True, exist_ok=True)
    flat = {k: np.asarray(v) for k, v in flatten(params_stacked).items()}
    epochs = np.asarray(epochs)
    it = range(len(epochs)) if progress is None else progress(range(len(epochs)))
    for i in it:
        arrays = {k: v[i] for k, v in flat.items()}
        arrays.update(__epoch__=np.int64(epochs[i]), __run_id__=np.array(config["run_id"]))
        io.atomic_save_npz(epoch_path(run_dir, epochs[i]), arrays)
    io.atomic_save_npz(run_dir / "metrics.npz", {k: np.asarray(v) for k, v in metrics.items()})
    io.atomic_write_json(run_dir / "complete.json", {"epochs": epochs.tolist(), "finished": time.time()})
    return config


def is_complete(run_dir: str | Path, config: dict | None = None) -> bool:
    """True when the run finished writing (and, if ``config`` is given, was made with those settings)."""
    run_dir = Path(run_dir)
    if not (run_dir / "complete.json").is_file() or not (run_dir / "config.json").is_file():
        return False
    try:
        saved = read_config(run_dir)
    except ValueError:
        return False
    return config is None or saved.get("run_id") == run_id(config)


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} is not a run directory: no config.json")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: corrupt config.json ({e})") from e


def kept_epochs(run_dir: str | Path) -> np.ndarray:
    """The epochs that have a params file, sorted."""
    names = sorted((Path(run_dir) / "params").glob("epoch_*.npz"))
    return np.array([int(p.stem.split("_")[1]) for p in names], dtype=np.int64)


def load_epoch(run_dir: str | Path, epoch: int, expected_id: str | None = None) -> dict[str, np.ndarray]:
    path = epoch_path(run_dir, epoch)
    try:
        with np.load(path, allow_pickle=False) as z:
            flat = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing params file") from None
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError) as e:
        raise ValueError(f"{path}: corrupt or truncated params file ({e})") from e
    if "__epoch__" not in flat or int(flat["__epoch__"]) != int(epoch):
        raise ValueError(f"{path}: file does not hold epoch {epoch} (found {flat.get('__epoch__')})")
    if expected_id is not None and str(flat.get("__run_id__")) != expected_id:
        raise ValueError(f"{path}: written by a different run (run_id {flat.get('__run_id__')}, expected {expected_id})")
    return {k: v for k, v in flat.items() if k not in _META}


def load_run(run_dir: str | Path, epochs=None) -> Run:
    """Load kept epochs (all when ``epochs`` is None) with params stacked over them."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} does not exist")
    config = read_config(run_dir)
    have = kept_epochs(run_dir)
    if epochs is None:
        epochs = have
    else:
        epochs = np.unique(np.asarray(epochs, dtype=np.int64).ravel())
        missing = np.setdiff1d(epochs, have)
        if missing.size:
            rng = f"{have.min()}..{have.max()} ({len(have)} kept)" if have.size else "none"
            raise ValueError(f"epochs {missing[:10].tolist()} were not kept in {run_dir}; kept epochs: {rng}")
    if len(epochs) == 0:
        raise ValueError(f"run_dir={str(run_dir)!r} has no params files")
    flats = [load_epoch(run_dir, e, config.get("run_id")) for e in epochs]
    stacked = {k: np.stack([f[k] for f in flats]) for k in flats[0]}
    return Run(np.asarray(epochs), unflatten(stacked), config, load_metrics(run_dir))


def load_metrics(run_dir: str | Path) -> dict[str, np.ndarray]:
    path = Path(run_dir) / "metrics.npz"
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        raise ValueError(f"{path}: corrupt metrics file ({e})") from e
