"""Checkpoint directories as researchers write them, behind one function:

    src = sources.open_dir("ckpts/")            # format detected; or format="orbax", params_key="state/params"
    src.epochs                                   # E kept epochs (orbax steps, numbers in file names), sorted
    params_E = src.load()                        # nested dict of numpy arrays stacked over E (or src.load(positions))

Formats: an ibjax run directory (``checkpoints.load_run`` and all its checks); an orbax
``CheckpointManager`` directory (one step directory per epoch, any pytree layout: the ``params``
subtree is found, or named by ``params_key``); flax msgpack files (``flax.serialization.to_bytes``)
and safetensors files, one per epoch, the epoch read from the file name by ``pattern`` (a regex
with one group, matched against the whole name). Steps are read at the I/O edge, one at a time or,
for orbax, as one batch of concurrent tensorstore reads; ``load`` fills preallocated stacked arrays.
A corrupt or truncated step, a step that is missing or was never committed, and steps holding
other arrays than the first are refused with one line naming the step.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ibjax import checkpoints, orbax_steps
from ibjax.source_base import EXTRA, Source, _check_shapes, _files_id, _one_line, select_params  # noqa: F401

FORMATS = ("ibjax", "orbax", "msgpack", "safetensors")
PATTERNS = {"msgpack": r".*?(\d+)\.msgpack", "safetensors": r".*?(\d+)\.safetensors"}
_SEP = re.compile(r"[/.]")


def open_dir(
    path,
    *,
    format: str | None = None,
    params_key: str | None = None,
    pattern: str | None = None,
    allow_partial: bool = False,
) -> Source:
    """A checkpoint directory as a ``Source`` (see the module docstring); ``format`` None: detected."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"path={str(path)!r} is not a directory")
    fmt = format or detect(path)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if fmt == "ibjax":
        return _open_ibjax(path, allow_partial)
    if fmt == "orbax":
        return orbax_steps.open_steps(path, params_key, allow_partial)
    return _open_files(path, fmt, params_key, pattern or PATTERNS[fmt])


def classify(path: Path) -> str | None:
    """The format of a checkpoint directory, "experiment" for an output directory holding run
    directories, or None."""
    names = sorted(os.listdir(path))
    if "config.json" in names and ("params" in names or "complete.json" in names):
        return "ibjax"
    if orbax_steps.has_steps(path, names):
        return "orbax"
    for fmt, ext in (("safetensors", ".safetensors"), ("msgpack", ".msgpack")):
        if any(n.endswith(ext) for n in names):
            return fmt
    return "experiment" if find_runs(path) else None


def detect(path: Path) -> str:
    """The format of a checkpoint directory; an experiment's output directory names its run directories."""
    kind = classify(path)
    if kind == "experiment":
        runs = find_runs(path)
        shown = " ".join(str(r) for r in runs[:4]) + (" ..." if len(runs) > 4 else "")
        raise ValueError(
            f"path={str(path)!r} is an experiment's output directory, not a run directory; its "
            f"{len(runs)} run directories: {shown}"
        )
    if kind is None:
        names = sorted(os.listdir(path))
        what = (
            "an experiment's output directory without run directories (they are not committed: rerun the "
            "experiment to make them)"
            if "config.json" in names
            else f"holding {names[:5]}"
        )
        raise ValueError(
            f"path={str(path)!r} is not a run directory nor a checkpoint directory ({what}); expected an ibjax run directory "
            "(config.json, params/), orbax step directories (0/, 1/, ...), or *.msgpack / *.safetensors files"
        )
    return kind


def find_runs(path, *, depth: int = 4) -> list[Path]:
    """ibjax run directories (config.json and params/ or complete.json) under ``path``, sorted."""
    found, path = [], Path(path)
    for root, dirs, files in os.walk(path):
        rel = Path(root).relative_to(path)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if len(rel.parts) < depth else []
        if rel.parts and "config.json" in files and ("complete.json" in files or "params" in dirs):
            found.append(Path(root))
            dirs[:] = []
    return sorted(found, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(p))])


def _strip(flat: dict, prefix: str) -> dict:
    if not prefix:
        return flat
    return {k[len(prefix) + 1 :]: v for k, v in flat.items() if k.startswith(prefix + "/")}


# ---------------------------------------------------------------- ibjax run directories


def _open_ibjax(path: Path, allow_partial: bool) -> Source:
    run = checkpoints.load_run(path, allow_partial=allow_partial)  # every check of a run directory
    flat = checkpoints.flatten(run.params)
    shapes = {k: (v.shape[1:], v.dtype) for k, v in flat.items()}
    index = {int(e): i for i, e in enumerate(run.epochs)}

    def read(eps):
        return [{k: v[index[int(e)]] for k, v in flat.items()} for e in eps]

    return Source(path, "ibjax", run.epochs, shapes, run.config["run_id"], read, run.config, run.missing)


# ---------------------------------------------------------------- msgpack and safetensors files


def _open_files(path: Path, fmt: str, params_key: str | None, pattern: str) -> Source:
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"pattern={pattern!r} is not a regular expression ({e})") from None
    if rx.groups != 1:
        raise ValueError(f"pattern={pattern!r} must have exactly one group (the epoch), e.g. {PATTERNS[fmt]!r}")
    files: dict[int, Path] = {}
    for n in sorted(os.listdir(path)):
        m = rx.fullmatch(n)
        if m and (path / n).is_file():
            try:
                e = int(m.group(1))
            except ValueError:
                raise ValueError(
                    f"pattern={pattern!r}: the group of {n!r} is {m.group(1)!r}, not an epoch number"
                ) from None
            if e in files:
                raise ValueError(f"{path}: {files[e].name} and {n} both hold epoch {e}; the directory mixes runs")
            files[e] = path / n
    if not files:
        raise FileNotFoundError(
            f"{path}: no {fmt} file matches pattern={pattern!r} (found {sorted(os.listdir(path))[:5]})"
        )
    epochs = np.array(sorted(files), np.int64)
    reader = _read_msgpack if fmt == "msgpack" else _read_safetensors
    first = reader(files[int(epochs[0])], None)
    prefix = select_params(first, params_key, str(files[int(epochs[0])]))
    first = _strip(first, prefix)
    shapes = {k: (np.shape(v), np.asarray(v).dtype) for k, v in first.items()}

    def read(eps):
        return [
            _check_shapes(
                str(files[int(e)]), _strip(reader(files[int(e)], prefix), prefix), shapes, files[int(epochs[0])].name
            )
            for e in eps
        ]

    return Source(path, fmt, epochs, shapes, _files_id(fmt, [files[int(e)] for e in epochs]), read)


def _read_msgpack(f: Path, prefix) -> dict:
    from flax import serialization

    try:
        tree = serialization.msgpack_restore(f.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{f}: missing msgpack file") from None
    except Exception as e:  # msgpack raises its own types on damaged bytes
        raise ValueError(f"{f}: corrupt or truncated msgpack file ({_one_line(e)}); re-save it") from e
    if not isinstance(tree, dict):
        raise ValueError(f"{f}: holds a {type(tree).__name__}, not a tree of arrays (flax.serialization.to_bytes)")
    return {k: np.asarray(v) for k, v in checkpoints.flatten(tree).items()}


def _read_safetensors(f: Path, prefix) -> dict:
    try:
        from safetensors import safe_open
    except ImportError:
        raise ValueError(f"reading safetensors needs the safetensors package: {EXTRA}") from None
    try:
        with safe_open(str(f), framework="numpy") as st:
            names = {"/".join(_SEP.split(k)): k for k in st.keys()}
            keep = [n for n in names if not prefix or n.startswith(prefix + "/")]
            return {n: st.get_tensor(names[n]) for n in keep}
    except Exception as e:  # safetensors raises SafetensorError on a damaged header or short data
        raise ValueError(f"{f}: corrupt or truncated safetensors file ({_one_line(e)}); re-save it") from e
