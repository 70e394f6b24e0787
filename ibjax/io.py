"""File plumbing: atomic writes, checksummed downloads, the data search path."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

ENV_DATA_DIR = "IBJAX_DATA_DIR"


def cache_dir() -> Path:
    """The user cache, ``$XDG_CACHE_HOME/ibjax`` or ``~/.cache/ibjax``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "ibjax"


def _read_umask() -> int:
    """The process umask. POSIX only lets it be read by setting it, so this is done once, at import,
    rather than on every write (where another thread could create files in between)."""
    old = os.umask(0)
    os.umask(old)
    return old


_UMASK = _read_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename into place.

    The file gets the mode an ordinary ``open(path, "w")`` would give it, ``0o666 & ~umask``
    (0644 under umask 022), not the 0600 that ``tempfile.mkstemp`` creates it with."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_digest(path: Path, algorithm: str, expected: str) -> None:
    got = file_digest(path, algorithm)
    if got != expected:
        raise ValueError(
            f"{path}: {algorithm} checksum mismatch (expected {expected}, got {got}); the file is corrupt or not the expected dataset"
        )


def download_verified(url: str, dest: Path, algorithm: str, expected: str) -> Path:
    """Download ``url``, check its digest, and only then move it atomically to ``dest``."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise FileNotFoundError(f"could not download {url} ({e}); pass an explicit path or set ${ENV_DATA_DIR}") from e
    got = hashlib.new(algorithm, data).hexdigest()
    if got != expected:
        raise ValueError(f"download of {url}: {algorithm} checksum mismatch (expected {expected}, got {got})")
    atomic_write_bytes(dest, data)
    return dest


def find_data_file(
    name: str,
    *,
    path: str | os.PathLike | None,
    subdir: str,
    algorithm: str,
    digest: str,
    url: str | None,
    arg: str = "path",
) -> Path:
    """Locate a data file: explicit ``path`` (file or directory), else ``$IBJAX_DATA_DIR/subdir``,
    then the user cache ``~/.cache/ibjax/subdir``, then the package's own files (``PACKAGE_DATA``),
    else download ``url`` into the cache. The digest is
    checked wherever it is found."""
    if path is not None:
        p = Path(path)
        p = p / name if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"{arg}={str(path)!r}: no file {name} there")
        verify_digest(p, algorithm, digest)
        return p
    for root in _search_roots():
        cand = root / subdir / name if subdir else root / name
        if cand.is_file():
            verify_digest(cand, algorithm, digest)
            return cand
    if url is None:
        raise FileNotFoundError(f"{name} not found in {[str(r) for r in _search_roots()]}")
    return download_verified(url, cache_dir() / subdir / name, algorithm, digest)


PACKAGE_DATA = Path(__file__).resolve().parent / "_data"  # small files shipped with ibjax (var_u.mat)


def _search_roots() -> Iterable[Path]:
    """Where data is looked for when no explicit path is given: $IBJAX_DATA_DIR (if set), the user
    cache, then the files shipped with the package."""
    roots = []
    if os.environ.get(ENV_DATA_DIR):
        roots.append(Path(os.environ[ENV_DATA_DIR]))
    roots.append(cache_dir())
    roots.append(PACKAGE_DATA)
    return roots
