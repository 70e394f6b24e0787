"""What every checkpoint reader shares (``ibjax.sources`` and ``ibjax.orbax_steps``): the ``Source`` a
directory opens to, the params-subtree lookup and the one-line error and shape checks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ibjax import checkpoints

EXTRA = "pip install 'ibjax[io]'"


class Source(NamedTuple):
    path: Path
    format: str
    epochs: np.ndarray  # E, sorted
    shapes: dict  # '/'-joined leaf name -> (shape, dtype) of one epoch's params
    run_id: str  # identifies the files (names, sizes, times): a changed checkpoint is a new id
    read: Callable  # epochs -> list of flat dicts (one per epoch), every leaf checked against ``shapes``
    config: dict | None = None  # an ibjax run directory's config.json
    missing: tuple = ()  # steps skipped under allow_partial

    @property
    def nbytes_per_epoch(self) -> int:
        return int(sum(np.prod(s) * np.dtype(d).itemsize for s, d in self.shapes.values()))

    def load(self, positions=None, *, group: int = 64) -> dict:
        """Params of the epochs at ``positions`` (all when None), stacked: nested dict of E' x ... arrays."""
        pos = np.arange(len(self.epochs)) if positions is None else np.asarray(positions, np.int64).ravel()
        eps = self.epochs[pos]
        flat = {k: np.empty((len(eps),) + tuple(s), d) for k, (s, d) in self.shapes.items()}
        for start in range(0, len(eps), group):  # bounded batches of files in flight
            for i, step in enumerate(self.read(eps[start : start + group])):
                for k, v in step.items():
                    flat[k][start + i] = v
        return checkpoints.unflatten(flat)


def select_params(names, params_key: str | None, where: str) -> str:
    """The prefix of the params subtree among '/'-joined leaf names ('' for the whole tree)."""
    names = list(names)
    if params_key:
        key = params_key.strip("/")
        if not any(n == key or n.startswith(key + "/") for n in names):
            tops = sorted({n.split("/")[0] for n in names})
            raise ValueError(f"params_key={params_key!r} names no subtree of {where}; its top-level keys: {tops}")
        return key
    found = {"/".join(n.split("/")[: i + 1]) for n in names for i, p in enumerate(n.split("/")[:-1]) if p == "params"}
    if not found:
        return ""
    depth = min(f.count("/") for f in found)
    best = sorted(f for f in found if f.count("/") == depth)
    if len(best) > 1:
        raise ValueError(
            f"{where} holds several params subtrees {best}; pass params_key= (CLI: --params-key) to choose"
        )
    return best[0]


def _files_id(fmt: str, files) -> str:
    h = hashlib.sha256(fmt.encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def _one_line(e: Exception) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


def _check_shapes(where: str, flat: dict, shapes: dict, first: str) -> dict:
    got = {k: (tuple(np.shape(v)), np.asarray(v).dtype) for k, v in flat.items()}
    if got != {k: (tuple(s), np.dtype(d)) for k, (s, d) in shapes.items()}:
        diff = sorted(set(got) ^ set(shapes)) or [
            k for k in shapes if got[k] != (tuple(shapes[k][0]), np.dtype(shapes[k][1]))
        ]
        k = diff[0]
        raise ValueError(
            f"{where}: holds other params than {first} ({k}: {got.get(k, 'absent')} vs "
            f"{shapes.get(k, 'absent')}); the directory mixes runs, evaluate them separately"
        )
    return flat
