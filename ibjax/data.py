"""Datasets as ``Dataset(x_NxD float32, y_N int32, ...)``: var_u (SZT), its generated stand-in, the
12-bit task with stochastic labels (``stochastic_12bit``), the single-neuron task, MNIST and
Fashion-MNIST (IDX files), folders of audio clips as log-mel spectrograms (``audio_folder``) and
correlated Gaussian pairs."""

from __future__ import annotations

import gzip
import itertools
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ibjax import io

VAR_U_SHA256 = "0ba9551878a855396a8de0cbaae620788ede1e7b1eb2b8373bbe017d5ea02036"
VAR_U_URL = "https://raw.githubusercontent.com/ravidziv/IDNNs/master/data/var_u.mat"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_MD5 = {  # (upstream, Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1): same content
    "train-images-idx3-ubyte.gz": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "cf8536b0aa1a6ac5fa3f23001093305c"),
    "train-labels-idx1-ubyte.gz": ("25c81989df183df01b3e8a0aad5dffbe", "10bea18fdb374794d4bb42e356e600c9"),
    "t10k-images-idx3-ubyte.gz": ("bef4ecab320f06d8554ea6380940ec79", "f78720b4224f21cce2f2ccf2d7a94c9a"),
    "t10k-labels-idx1-ubyte.gz": ("bb300cfdad3c16e7a12a480ee83cd310", "0d30e22e447f3c33dab9ed536400ac01"),
}
SPLITS = ("random", "ordered", "all")


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # N x D float32 (or N x 28 x 28 x 1 for images)
    y: np.ndarray  # N int32 class ids
    name: str
    source: str = ""  # where it came from: a path, or "generated"
    meta: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.y.max()) + 1


class Split(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# ---------------------------------------------------------------- the SZT 12-bit task


def portable_source(source: str) -> str:
    """A dataset's ``source`` without this machine's prefix, for files that are shared (summaries, notes):
    ``$IBJAX_DATA_DIR/...``, ``~/.cache/ibjax/...`` or ``ibjax/_data/...``; other paths keep their last two parts."""
    p = Path(source)
    if not p.is_absolute():
        return source
    roots = [(os.environ.get("IBJAX_DATA_DIR"), "$IBJAX_DATA_DIR"), (io.cache_dir(), "~/.cache/ibjax")]
    for root, label in [*roots, (io.PACKAGE_DATA, "ibjax/_data")]:
        if root and p.resolve().is_relative_to(Path(root).resolve()):
            return str(Path(label) / p.resolve().relative_to(Path(root).resolve()))
    return str(Path(*p.parts[-2:]))


def var_u(path: str | os.PathLike | None = None) -> Dataset:
    """The 12-bit task of Shwartz-Ziv & Tishby: every 12-bit pattern, binary labels (var_u.mat).

    Looks in ``path``, else ``$IBJAX_DATA_DIR``, then ``~/.cache/ibjax``, then the copy shipped with
    the package (1003 bytes), so it is found offline on a fresh install; the sha256 is checked in
    every case.
    """
    import scipy.io

    p = io.find_data_file("var_u.mat", path=path, subdir="", algorithm="sha256", digest=VAR_U_SHA256, url=VAR_U_URL)
    m = scipy.io.loadmat(p)
    return Dataset(m["F"].astype(np.float32), m["y"].ravel().astype(np.int32), "var_u", str(p))


def icosahedron_vertices() -> np.ndarray:
    """The 12 unit vertices of a regular icosahedron, 12 x 3."""
    phi = (1 + 5**0.5) / 2
    v = []
    for a, b in itertools.product((-1, 1), repeat=2):
        v += [(0, a, b * phi), (a, b * phi, 0), (b * phi, 0, a)]
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _rule_12bit():
    """The 4096 12-bit inputs, the rotation-invariant f(x) of ``generated_12bit`` and its threshold."""
    x = ((np.arange(4096)[:, None] >> np.arange(11, -1, -1)[None, :]) & 1).astype(np.float32)
    v = icosahedron_vertices()
    c = v @ v.T
    g = np.triu(c + 0.5 * c**2, k=1)
    s = 2.0 * x - 1.0
    f = np.einsum("ni,ij,nj->n", s, g, s)
    levels = np.unique(np.round(f, 9))
    frac = np.array([(f > t).mean() for t in levels])
    return x, f, levels[np.argmin(np.abs(frac - 0.5))]


def generated_12bit() -> Dataset:
    """Deterministic stand-in for var_u built as SZT describe: 12 binary inputs on the vertices of an
    icosahedron, label = threshold of the rotation-invariant f(x) = sum_{i<j} s_i s_j g(v_i . v_j),
    s = 2x - 1, g(c) = c + c^2 / 2; the threshold is the one making p(y=1) closest to 0.5."""
    x, f, thr = _rule_12bit()
    y = (f > thr).astype(np.int32)
    return Dataset(x, y, "generated_12bit", "generated", {"threshold": float(thr), "p_y1": float(y.mean())})


STOCHASTIC_GAMMA = 1.0
STOCHASTIC_SEED = 0


def stochastic_12bit(gamma: float = STOCHASTIC_GAMMA, seed: int = STOCHASTIC_SEED) -> Dataset:
    """The 12-bit task with stochastic labels: p(y=1 | x) = sigmoid(gamma (f(x) - theta)) with the
    rule f and threshold theta of ``generated_12bit``; one label per input drawn once from it
    (``numpy.random.default_rng(seed)``). The default gamma = 1 gives I(X;Y) = 0.563 bits against
    H(Y) = 1.000 bits (f has 37 distinct values, spread 3.75), so the IB curve is not the trivial corner
    of a deterministic task. ``meta`` holds the true ``p_y1_given_x`` (N), ``gamma``, ``seed``,
    ``threshold``, ``i_xy_bits`` and ``h_y_bits`` (of the true p(x, y), uniform p(x))."""
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be positive and finite, got {gamma}")
    x, f, thr = _rule_12bit()
    p1 = 1.0 / (1.0 + np.exp(-gamma * (f - thr)))
    y = (np.random.default_rng(seed).random(len(p1)) < p1).astype(np.int32)
    py = np.array([1 - p1.mean(), p1.mean()])
    h = lambda q: -(q * np.log2(np.where(q > 0, q, 1.0))).sum(axis=-1)
    h_y, h_yx = float(h(py)), float(h(np.stack([1 - p1, p1], axis=1)).mean())
    meta = {
        "gamma": float(gamma),
        "seed": int(seed),
        "threshold": float(thr),
        "p_y1_given_x": p1,
        "i_xy_bits": h_y - h_yx,
        "h_y_bits": h_y,
        "p_y1": float(y.mean()),
    }
    return Dataset(x, y, "stochastic_12bit", "generated", meta)


def szt_12bit(path: str | os.PathLike | None = None, *, allow_generated: bool = True) -> Dataset:
    """var_u when it can be had, else (with a warning) the generated stand-in."""
    try:
        return var_u(path)
    except (FileNotFoundError, ValueError) as e:
        if not allow_generated or path is not None:
            raise
        warnings.warn(f"var_u.mat unavailable ({e}); using the generated 12-bit stand-in", stacklevel=2)
        return generated_12bit()


def split(ds: Dataset, how: str = "random", *, seed: int = 0, train_frac: float = 0.8) -> Split:
    """Train/test split: "random" (Saxe et al., from ``seed``), "ordered" (IDNNs: first
    ``train_frac`` in order; not i.i.d.) or "all" (train = test = everything)."""
    if how not in SPLITS:
        raise ValueError(f"how must be one of {SPLITS}, got {how!r}")
    if not 0.0 < train_frac < 1.0:
        raise ValueError(f"train_frac must be in (0, 1), got {train_frac}")
    n = len(ds.y)
    if how == "all":
        return Split(ds.x, ds.y, ds.x, ds.y)
    n_train = int(round(train_frac * n))
    if how == "ordered":
        idx = np.arange(n)
        tr, te = ds.y[:n_train].mean(), ds.y[n_train:].mean()
        warnings.warn(f"ordered split is not i.i.d.: p(y=1) is {tr:.2f} in train vs {te:.2f} in test", stacklevel=2)
    else:
        idx = np.random.default_rng(seed).permutation(n)
    return Split(ds.x[idx[:n_train]], ds.y[idx[:n_train]], ds.x[idx[n_train:]], ds.y[idx[n_train:]])


# ---------------------------------------------------------------- small synthetic tasks


def single_neuron() -> Dataset:
    """Goldfeld et al.: X uniform on {-3, -1, 1, 3} (one row each), y = 1 iff X = 3."""
    x = np.array([[-3.0], [-1.0], [1.0], [3.0]], np.float32)
    return Dataset(x, (x[:, 0] == 3).astype(np.int32), "single_neuron", "generated")


def gaussian_pair(n: int, rho: float, *, dim: int = 1, seed: int = 0):
    """``dim`` independent coordinate pairs with correlation ``rho``: (x_NxD, y_NxD, mi_nats)."""
    if not -1.0 < rho < 1.0:
        raise ValueError(f"rho must be in (-1, 1), got {rho}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    y = rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((n, dim))
    return x.astype(np.float32), y.astype(np.float32), -0.5 * dim * np.log(1 - rho**2)


# ---------------------------------------------------------------- MNIST (IDX)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read IDX file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX type code {raw[2]:#x}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dt = np.dtype(dtypes[raw[2]])
    body = raw[4 + 4 * ndim :]
    if len(body) != dt.itemsize * int(np.prod(shape)):
        raise ValueError(f"{path}: IDX payload has {len(body)} bytes, header says shape {shape}")
    return np.frombuffer(body, dt).reshape(shape).astype(dt.newbyteorder("="))


def mnist(
    split: str = "test",
    *,
    path: str | os.PathLike | None = None,
    flat: bool = True,
    md5: Mapping[str, str] | None = None,
) -> Dataset:
    """MNIST ``split`` ("train" or "test") as float32 in [0, 1], flat (N x 784) or N x 28 x 28 x 1.

    The IDX files are looked up in ``path``, else ``$IBJAX_DATA_DIR/mnist``, then
    ``~/.cache/ibjax/mnist``, else downloaded into that cache, and md5-checked against the official
    digests (``MNIST_MD5``). ``md5`` replaces some of those digests by file name, for a known subset
    of the official files (the tests use the first 1000 test images); it needs an explicit ``path``,
    so a subset's digest is never applied to a file found on the search path or downloaded.
    """
    return _idx_images("mnist", "mnist", MNIST_MD5, MNIST_URL, split, path=path, flat=flat, md5=md5)


def fashion_mnist(
    split: str = "test",
    *,
    path: str | os.PathLike | None = None,
    flat: bool = True,
    md5: Mapping[str, str] | None = None,
) -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017, 10 clothing classes, MNIST's layout) ``split`` as float32 in
    [0, 1], flat (N x 784) or N x 28 x 28 x 1.

    Looked up in ``path``, else ``fashion-mnist/`` under ``$IBJAX_DATA_DIR``, the user cache, then
    /usr/share/datasets (where Debian's ``dataset-fashion-mnist`` package installs the files, offline),
    else downloaded from the upstream mirror. Each .gz file must match one of its two known md5s
    (``FASHION_MNIST_MD5``): upstream's, or the Debian package's, which re-compressed the same bytes
    (its decompressed content is identical). ``md5`` works as in ``mnist``.
    """
    return _idx_images(
        "fashion_mnist", "fashion-mnist", FASHION_MNIST_MD5, FASHION_MNIST_URL, split, path=path, flat=flat, md5=md5
    )


IDX_SETS = {"mnist": ("mnist", MNIST_MD5), "fashion_mnist": ("fashion-mnist", FASHION_MNIST_MD5)}


def idx_present(name: str, split: str, path=None) -> bool:
    """Whether ``name``'s (mnist, fashion_mnist) ``split`` files are on the search path with their official
    digests; never downloads."""
    if name not in IDX_SETS or split not in ("train", "test"):
        raise ValueError(f"name must be one of {sorted(IDX_SETS)} and split train or test, got {name!r}, {split!r}")
    subdir, digests = IDX_SETS[name]
    prefix = "train" if split == "train" else "t10k"
    try:
        for kind in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"):
            file = f"{prefix}-{kind}"
            io.find_data_file(file, path=path, subdir=subdir, algorithm="md5", digest=digests[file], url=None)
    except (FileNotFoundError, ValueError):
        return False
    return True


def _idx_images(name, subdir, official, url, split, *, path, flat, md5) -> Dataset:
    """An MNIST-layout dataset (IDX images and labels, "train" or "t10k" prefixes) found, checked, read."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if md5 is not None:
        if path is None:
            raise ValueError("md5 (digests of a subset) needs an explicit path to the subset's files")
        unknown = sorted(set(md5) - set(official))
        if unknown:
            title = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}.get(name, name)
            raise ValueError(f"md5 names unknown {title} files {unknown}; known: {sorted(official)}")
    digests = {**official, **(md5 or {})}
    prefix = "train" if split == "train" else "t10k"
    arrays = []
    for kind in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"):
        file = f"{prefix}-{kind}"
        p = io.find_data_file(file, path=path, subdir=subdir, algorithm="md5", digest=digests[file], url=url + file)
        arrays.append(read_idx(p))
    images, labels = arrays
    if len(images) != len(labels):
        raise ValueError(f"{p.parent}: {len(images)} images but {len(labels)} labels")
    x = images.astype(np.float32) / 255.0
    x = x.reshape(len(x), -1) if flat else x[..., None]
    return Dataset(x, labels.astype(np.int32), f"{name}_{split}", str(p.parent))
