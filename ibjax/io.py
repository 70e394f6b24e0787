"""File plumbing: atomic writes, directory locks, checksummed downloads, the data search path."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import shlex
import socket
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ibjax.timing import phased

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


ENV_MEMORY = "IBJAX_MEMORY_GB"


def memory_budget_gb(memory_gb: float | None = None) -> float:
    """The memory budget of one chunk of evaluation: ``memory_gb`` when given, else ``$IBJAX_MEMORY_GB``,
    else a quarter of what the default device has free now (an accelerator's free memory; on the CPU
    the host's MemAvailable), at least 0.5 GB. Raises ValueError for a budget that is not > 0."""
    if memory_gb is None and os.environ.get(ENV_MEMORY):
        text = os.environ[ENV_MEMORY]
        try:
            memory_gb = float(text)
        except ValueError:
            raise ValueError(f"${ENV_MEMORY}={text!r} is not a number of GB") from None
    if memory_gb is None:
        return max(0.5, round(_free_bytes() / 4 / 2**30, 2))
    if isinstance(memory_gb, bool) or not isinstance(memory_gb, int | float) or not memory_gb > 0:
        raise ValueError(
            f"memory_gb must be a number of GB > 0 (or None: a quarter of the free memory), got {memory_gb!r}"
        )
    return float(memory_gb)


def _free_bytes() -> float:
    import jax

    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return float(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8.0 * 2**30  # unknown: 2 GB budget


@phased("write")
def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, sync: bool = True) -> None:
    """Write to a temporary file in the same directory, fsync, then rename into place (``sync=False``: no
    fsync, for files in a directory that is itself synced with ``sync_tree`` before it is published).

    The file gets the mode an ordinary ``open(path, "w")`` would give it, ``0o666 & ~umask``
    (0644 under umask 022), not the 0600 that ``tempfile.mkstemp`` creates it with."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save_npz(path: str | os.PathLike, arrays: dict[str, Any], *, sync: bool = True) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue(), sync=sync)


@phased("write")
def sync_tree(root: str | os.PathLike, files) -> None:
    """Every file in ``files`` (written under ``root`` with ``sync=False``) on disk: one ``syncfs`` of
    ``root``'s filesystem where Linux has it (one call instead of an fsync per file), else an fsync each."""
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        fd = -1
    try:
        if fd >= 0 and _syncfs(fd):
            return
    finally:
        if fd >= 0:
            os.close(fd)
    for f in files:
        with open(f, "rb+") as h:
            os.fsync(h.fileno())


def _syncfs(fd: int) -> bool:
    """Linux's syncfs(2) on ``fd``'s filesystem; False where it is not available or fails."""
    global _LIBC
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _LIBC is None:
            import ctypes

            _LIBC = ctypes.CDLL(None, use_errno=True)
        return _LIBC.syncfs(fd) == 0
    except (OSError, AttributeError):
        return False


_LIBC = None


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


LOCK_NAME = ".lock"  # dir_lock's file inside the directory it guards (hidden: no result listing shows it)
_HELD: dict[str, int] = {}  # real path of a lock file this process holds -> the pid that took it


class DirectoryLocked(RuntimeError, ValueError):
    """Another process is writing the directory (it holds the lock). A RuntimeError (the directory is
    busy, not wrong), and a ValueError so that every command line reports it as its one-line error."""


def dir_lock(path: str | os.PathLike, *, what: str, log: Callable | None = None) -> contextlib.AbstractContextManager:
    """Hold ``path/.lock`` while writing the directory ``path`` (created if absent); see ``path_lock``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path_lock(path / LOCK_NAME, target=path, what=what, log=log)


@contextlib.contextmanager
def path_lock(lock_path: str | os.PathLike, *, target, what: str, log: Callable | None = None) -> Iterator[None]:
    """An advisory lock: ``fcntl.flock`` on ``lock_path``, which records the holder (pid, host,
    command, what, since) for the error another writer gets (``DirectoryLocked``). The kernel drops
    the lock when its process dies, so a lock file left by a killed process is taken over (``log``,
    default stderr, says so). Removed on leaving the block, by return or exception. The same process
    taking the same lock again (an experiment's ``--out``, then an evaluation into it) shares it."""
    lock_path = Path(os.path.realpath(lock_path))
    key = str(lock_path)
    if _HELD.get(key) == os.getpid():  # nested: the outer block releases it
        yield
        return
    fd = _acquire(lock_path, target, what, log or (lambda m: print(m, file=sys.stderr)))
    _HELD[key] = os.getpid()
    try:
        yield
    finally:
        del _HELD[key]
        try:
            if _same_file(fd, lock_path):
                os.unlink(lock_path)
        finally:
            os.close(fd)  # after the unlink: a writer waiting on this file retries on a fresh one


def _acquire(lock_path: Path, target, what: str, log: Callable) -> int:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _flock(fd):
                raise DirectoryLocked(_busy_message(target, lock_path, _read_holder(fd)))
            if _same_file(fd, lock_path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder removed the file between our open and flock: lock the new one
    try:
        old = _read_holder(fd)
        if old is not None:
            log(f"note: taking over the stale lock {lock_path} of {_describe(old)}: that process is gone")
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": _command(),
            "what": what,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _command(limit: int = 200) -> str:
    """This process's command line (``python -m experiments.tishby --quick``), on one line."""
    text = " ".join(shlex.join(getattr(sys, "orig_argv", sys.argv)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flock(fd: int) -> bool:
    """Take the lock without waiting: False when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as e:  # a file system without flock (some NFS): fall back on the recorded pid
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        holder = _read_holder(fd)
        return holder is None or not _alive(holder)


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot tell: assume it runs
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError, ValueError):
        return True
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> dict | None:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict) -> str:
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} ({holder.get('what', '?')}: "
        f"`{holder.get('command', '?')}`, since {holder.get('since', '?')})"
    )


def _busy_message(target, lock_path: Path, holder: dict | None) -> str:
    who = "a process whose lock record is still being written" if holder is None else _describe(holder)
    return (
        f"{target} is being written by another process, {who}; wait for it to finish, or, if that "
        f"process is gone, remove {lock_path}"
    )


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _accepted(expected: str | tuple[str, ...]) -> tuple[str, ...]:
    """One digest, or several accepted ones (the same content packaged twice, e.g. upstream and Debian)."""
    return (expected,) if isinstance(expected, str) else tuple(expected)


def _expected_text(expected) -> str:
    return " or ".join(_accepted(expected))


def verify_digest(path: Path, algorithm: str, expected: str | tuple[str, ...]) -> None:
    got = file_digest(path, algorithm)
    if got not in _accepted(expected):
        raise ValueError(
            f"{path}: {algorithm} checksum mismatch (expected {_expected_text(expected)}, got {got}); "
            "the file is corrupt or not the expected dataset"
        )


def download_verified(url: str, dest: Path, algorithm: str, expected: str | tuple[str, ...]) -> Path:
    """Download ``url``, check its digest, and only then move it atomically to ``dest``."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:
        raise FileNotFoundError(f"could not download {url} ({e}); pass an explicit path or set ${ENV_DATA_DIR}") from e
    got = hashlib.new(algorithm, data).hexdigest()
    if got not in _accepted(expected):
        raise ValueError(
            f"download of {url}: {algorithm} checksum mismatch (expected {_expected_text(expected)}, got {got})"
        )
    atomic_write_bytes(dest, data)
    return dest


def find_data_file(
    name: str,
    *,
    path: str | os.PathLike | None,
    subdir: str,
    algorithm: str,
    digest: str | tuple[str, ...],
    url: str | None,
    arg: str = "path",
) -> Path:
    """Locate a data file: explicit ``path`` (file or directory), else ``$IBJAX_DATA_DIR/subdir``,
    then the user cache ``~/.cache/ibjax/subdir``, then the system's dataset packages
    (``SYSTEM_DATA``, Debian's /usr/share/datasets), then the package's own files (``PACKAGE_DATA``),
    else download ``url`` into the cache. The digest (or one of several accepted digests) is checked
    wherever it is found."""
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
SYSTEM_DATA = Path("/usr/share/datasets")  # Debian's dataset-* packages (dataset-fashion-mnist: fashion-mnist/)


def _search_roots() -> Iterable[Path]:
    """Where data is looked for when no explicit path is given: $IBJAX_DATA_DIR (if set), the user
    cache, the system's dataset packages (when that directory exists), then the files shipped with
    the package."""
    roots = []
    if os.environ.get(ENV_DATA_DIR):
        roots.append(Path(os.environ[ENV_DATA_DIR]))
    roots.append(cache_dir())
    if SYSTEM_DATA.is_dir():
        roots.append(SYSTEM_DATA)
    roots.append(PACKAGE_DATA)
    return roots


def check_out_dir(out: Path) -> None:
    """Fail before any computation when ``out`` cannot hold results."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ValueError(f"--out {str(out)!r} is not writable ({e.strerror or e})") from None


def os_error_line(e: OSError) -> str:
    """An OSError at write time as one line: what failed, where, and that the files already there are kept."""
    where = f" writing {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{where}; the files already there are kept (every write goes to a temporary file first)"
