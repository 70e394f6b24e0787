import gzip
import hashlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ibjax import data, io

ROOT = Path(__file__).resolve().parents[1]


def test_var_u_from_test_data(data_dir):
    ds = data.var_u(data_dir / "var_u.mat")
    assert ds.x.shape == (4096, 12) and ds.x.dtype == np.float32
    assert ds.y.shape == (4096,) and ds.y.dtype == np.int32
    assert len(np.unique(ds.x, axis=0)) == 4096  # every 12-bit pattern once
    assert ds.y.mean() == pytest.approx(0.51708984375)


def test_var_u_found_via_env_dir_set_by_conftest(data_dir):
    assert data.var_u().source == str(data_dir / "var_u.mat")


def test_var_u_search_path_without_env_is_cache_then_the_packaged_copy(monkeypatch, tmp_path, data_dir):
    monkeypatch.delenv(io.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(io, "SYSTEM_DATA", tmp_path / "no-system-datasets")
    cache = tmp_path / "ibjax"
    assert list(io._search_roots()) == [cache, io.PACKAGE_DATA]  # nothing next to the checkout is searched
    shipped = data.var_u()  # offline, no cache, no env: the copy shipped with the package, not the stand-in
    assert shipped.source == str(io.PACKAGE_DATA / "var_u.mat") and shipped.name == "var_u"
    np.testing.assert_array_equal(shipped.y, data.var_u(data_dir / "var_u.mat").y)
    assert data.szt_12bit().name == "var_u"
    cache.mkdir()
    shutil.copy(data_dir / "var_u.mat", cache / "var_u.mat")
    assert data.var_u().source == str(cache / "var_u.mat")


def test_var_u_env_dir_wins(monkeypatch, tmp_path, data_dir):
    (tmp_path / "var_u.mat").write_bytes((data_dir / "var_u.mat").read_bytes())
    monkeypatch.setenv(io.ENV_DATA_DIR, str(tmp_path))
    assert data.var_u().source == str(tmp_path / "var_u.mat")


def test_var_u_missing_and_bad_checksum(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        data.var_u(tmp_path / "nope.mat")
    bad = tmp_path / "var_u.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="sha256 checksum mismatch"):
        data.var_u(bad)


def test_download_checks_digest_then_moves_atomically(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    good = hashlib.sha256(b"payload").hexdigest()
    dest = tmp_path / "cache" / "x.bin"
    with pytest.raises(ValueError, match="checksum mismatch"):
        io.download_verified(src.as_uri(), dest, "sha256", "0" * 64)
    assert not dest.exists()
    io.download_verified(src.as_uri(), dest, "sha256", good)
    assert dest.read_bytes() == b"payload"


def test_generated_stand_in_is_deterministic_and_balanced():
    a, b = data.generated_12bit(), data.generated_12bit()
    np.testing.assert_array_equal(a.y, b.y)
    assert abs(a.y.mean() - 0.5) < 0.05
    v = data.icosahedron_vertices()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)
    # rotation invariance: the label depends only on the pattern's Gram structure; flipping all
    # bits (s -> -s) leaves the quadratic form unchanged
    np.testing.assert_array_equal(a.y, a.y[4095 - np.arange(4096)])


def test_splits(data_dir):
    ds = data.var_u(data_dir / "var_u.mat")
    r = data.split(ds, "random", seed=0)
    assert len(r.y_train) == 3277 and len(r.y_test) == 819
    assert len(np.unique(np.concatenate([r.x_train, r.x_test]), axis=0)) == 4096
    np.testing.assert_array_equal(data.split(ds, "random", seed=0).y_train, r.y_train)
    with pytest.warns(UserWarning, match="not i.i.d.: p\\(y=1\\) is 0.44 in train vs 0.84"):
        o = data.split(ds, "ordered")
    np.testing.assert_array_equal(o.x_train, ds.x[:3277])
    a = data.split(ds, "all")
    assert len(a.y_train) == len(a.y_test) == 4096
    with pytest.raises(ValueError, match="how"):
        data.split(ds, "stratified")


def test_single_neuron():
    ds = data.single_neuron()
    np.testing.assert_array_equal(ds.x[:, 0], [-3, -1, 1, 3])
    np.testing.assert_array_equal(ds.y, [0, 0, 0, 1])


def test_gaussian_pair_mi():
    x, y, mi = data.gaussian_pair(20000, 0.5, dim=2, seed=1)
    assert mi == pytest.approx(-np.log(0.75))
    assert np.corrcoef(x[:, 0], y[:, 0])[0, 1] == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="rho"):
        data.gaussian_pair(10, 1.0)


def test_idx_round_trip_written_by_test(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 0x08, 3]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes()
    p = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(raw)
    np.testing.assert_array_equal(data.read_idx(p), arr)
    (tmp_path / "bad").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="payload"):
        data.read_idx(tmp_path / "bad")


# tests/data/mnist holds the official t10k labels (md5 as published) and, in first1000/, the first
# 1000 test images and labels cut from the official files (same IDX layout, count 1000), with their
# own md5s below; the full test images (1.6 MB) are not committed.
MNIST_FIRST1000_MD5 = {
    "t10k-images-idx3-ubyte.gz": "c3379f275b566375ab4528689c1795c4",
    "t10k-labels-idx1-ubyte.gz": "1d88dbe1fbee9022616057ede4463181",
}


def test_mnist_official_test_labels_via_search_path(data_dir):
    name = "t10k-labels-idx1-ubyte.gz"  # found through $IBJAX_DATA_DIR/mnist, official md5 checked
    p = io.find_data_file(name, path=None, subdir="mnist", algorithm="md5", digest=data.MNIST_MD5[name], url=None)
    assert p == data_dir / "mnist" / name
    y = data.read_idx(p)
    assert y.shape == (10000,)
    np.testing.assert_array_equal(y[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    assert np.bincount(y).tolist()[:3] == [980, 1135, 1032]


def test_mnist_test_split_first1000(data_dir):
    sub = data_dir / "mnist" / "first1000"
    ds = data.mnist("test", path=sub, md5=MNIST_FIRST1000_MD5)
    assert ds.x.shape == (1000, 784) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int32 and ds.source == str(sub)
    assert 0.0 <= ds.x.min() and ds.x.max() == 1.0
    np.testing.assert_array_equal(ds.y[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(ds.y, data.read_idx(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz")[:1000])
    np.testing.assert_array_equal(ds.x * 255, data.read_idx(sub / "t10k-images-idx3-ubyte.gz").reshape(1000, 784))
    img = data.mnist("test", path=sub, flat=False, md5=MNIST_FIRST1000_MD5)
    assert img.x.shape == (1000, 28, 28, 1)
    np.testing.assert_array_equal(img.x.reshape(1000, 784), ds.x)
    with pytest.raises(ValueError, match="split"):
        data.mnist("val")


def test_mnist_official_md5_check_rejects_subset(data_dir, tmp_path):
    sub = data_dir / "mnist" / "first1000"
    with pytest.raises(ValueError, match="md5 checksum mismatch"):  # the default check is the official one
        data.mnist("test", path=sub)
    with pytest.raises(ValueError, match="explicit path"):  # a subset digest never applies to a search
        data.mnist("test", md5=MNIST_FIRST1000_MD5)
    with pytest.raises(ValueError, match="unknown MNIST files"):
        data.mnist("test", path=sub, md5={"t10k-images.gz": "0" * 32})
    shutil.copy(sub / "t10k-images-idx3-ubyte.gz", tmp_path)  # subset images, official full labels
    shutil.copy(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", tmp_path)
    images_md5 = {"t10k-images-idx3-ubyte.gz": MNIST_FIRST1000_MD5["t10k-images-idx3-ubyte.gz"]}
    with pytest.raises(ValueError, match="1000 images but 10000 labels"):
        data.mnist("test", path=tmp_path, md5=images_md5)


def test_atomic_write_is_complete_and_leaves_no_temporary(tmp_path, monkeypatch):
    dest = tmp_path / "sub" / "out.bin"
    io.atomic_write_bytes(dest, b"first")
    io.atomic_write_bytes(dest, b"second")  # replaces in place
    assert dest.read_bytes() == b"second"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.bin"]

    def fail(*a):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        io.atomic_write_bytes(dest, b"third")
    assert dest.read_bytes() == b"second"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_mode_follows_umask(tmp_path, umask, mode):
    # in a fresh interpreter: the module reads the umask once, at import
    dest = tmp_path / "out.json"
    code = (
        f"import os; os.umask({umask:#o}); from ibjax import io; "
        f"io.atomic_write_json({str(dest)!r}, {{'a': 1}}); print(oct(os.stat({str(dest)!r}).st_mode & 0o777))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == oct(mode)
    assert stat.S_IMODE(dest.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_portable_source_hides_the_machine_prefix(tmp_path, monkeypatch):
    monkeypatch.setenv("IBJAX_DATA_DIR", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    assert data.portable_source(str(tmp_path / "mnist" / "t10k.gz")) == "$IBJAX_DATA_DIR/mnist/t10k.gz"
    assert data.portable_source(str(io.PACKAGE_DATA / "var_u.mat")) == "ibjax/_data/var_u.mat"
    assert data.portable_source("/somewhere/else/file.mat") == "else/file.mat"
    assert data.portable_source("generated") == "generated"


# tests/data/fashion-mnist: the test labels as Debian's dataset-fashion-mnist installs them (its md5 is
# the second of the two accepted digests) and, in first500/, the first 500 test images and labels.
FASHION_FIRST500_MD5 = {
    "t10k-images-idx3-ubyte.gz": "de8c3e9bbf39c9b1488ea32722149bda",
    "t10k-labels-idx1-ubyte.gz": "054aa312f89c1a1bd60b2658a90cc583",
}
FASHION_LABELS_HEAD = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # ankle boot, pullover, trouser, trouser, shirt, ...


def test_fashion_mnist_labels_of_the_debian_package_pass_their_digest_through_the_search_path(data_dir):
    name = "t10k-labels-idx1-ubyte.gz"
    upstream, debian = data.FASHION_MNIST_MD5[name]
    assert upstream != debian and io.file_digest(data_dir / "fashion-mnist" / name, "md5") == debian
    p = io.find_data_file(
        name, path=None, subdir="fashion-mnist", algorithm="md5", digest=data.FASHION_MNIST_MD5[name], url=None
    )
    assert p == data_dir / "fashion-mnist" / name
    y = data.read_idx(p)
    assert y.shape == (10000,) and np.bincount(y).tolist() == [1000] * 10  # 1000 test images per class
    np.testing.assert_array_equal(y[:10], FASHION_LABELS_HEAD)
    with pytest.raises(ValueError, match=f"expected {upstream} or {debian}, got"):  # MNIST's labels are not it
        io.verify_digest(data_dir / "mnist" / name, "md5", data.FASHION_MNIST_MD5[name])


def test_fashion_mnist_is_found_where_debian_installs_it(data_dir, tmp_path, monkeypatch):
    """Nothing in $IBJAX_DATA_DIR or the cache: the loader finds SYSTEM_DATA/fashion-mnist (Debian's
    /usr/share/datasets), after the user's own roots and before the files shipped with ibjax."""
    monkeypatch.delenv(io.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    system = tmp_path / "usr-share-datasets"
    monkeypatch.setattr(io, "SYSTEM_DATA", system)
    assert io.SYSTEM_DATA not in io._search_roots()  # absent directories are not searched
    (system / "fashion-mnist").mkdir(parents=True)
    for f in FASHION_FIRST500_MD5:
        shutil.copy(data_dir / "fashion-mnist" / "first500" / f, system / "fashion-mnist" / f)
    assert list(io._search_roots()) == [tmp_path / "cache" / "ibjax", system, io.PACKAGE_DATA]
    for f, digest in FASHION_FIRST500_MD5.items():
        monkeypatch.setitem(data.FASHION_MNIST_MD5, f, (data.FASHION_MNIST_MD5[f][0], digest))
    ds = data.fashion_mnist("test", flat=False)
    assert ds.source == str(system / "fashion-mnist") and ds.name == "fashion_mnist_test"
    assert ds.x.shape == (500, 28, 28, 1) and ds.x.dtype == np.float32 and ds.x.max() == 1.0


def test_fashion_mnist_first500_and_the_data_names(data_dir, monkeypatch):
    sub = data_dir / "fashion-mnist" / "first500"
    ds = data.fashion_mnist("test", path=sub, md5=FASHION_FIRST500_MD5)
    assert ds.x.shape == (500, 784) and ds.y.dtype == np.int32
    np.testing.assert_array_equal(ds.y, data.read_idx(data_dir / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")[:500])
    np.testing.assert_array_equal(ds.x * 255, data.read_idx(sub / "t10k-images-idx3-ubyte.gz").reshape(500, 784))
    assert not np.array_equal(
        ds.x, data.mnist("test", path=data_dir / "mnist" / "first1000", md5=MNIST_FIRST1000_MD5).x[:500]
    )
    with pytest.raises(ValueError, match="md5 checksum mismatch"):  # the official digests reject the subset
        data.fashion_mnist("test", path=sub)
    with pytest.raises(ValueError, match="unknown Fashion-MNIST files"):
        data.fashion_mnist("test", path=sub, md5={"t10k.gz": "0" * 32})
    from ibjax import runs
    from ibjax.config import CNNConfig, DataConfig, RunConfig

    for f, digest in FASHION_FIRST500_MD5.items():
        monkeypatch.setitem(data.FASHION_MNIST_MD5, f, digest)
    cfg = RunConfig(CNNConfig((28, 28, 1), (2,), 10, "tanh"), DataConfig(name="fashion_mnist"))
    img = runs.load_data(cfg, path=sub)
    assert img.name == "fashion_mnist_test" and img.x.shape == (500, 28, 28, 1)
    with pytest.raises(ValueError, match="fashion_mnist_train"):  # the error lists the valid names
        runs.load_data(RunConfig(data=DataConfig(name="fashion")))
