import gzip
import hashlib

import numpy as np
import pytest

from ibjax import data, io


def test_var_u_from_shared(shared_dir):
    ds = data.var_u(shared_dir / "data" / "var_u.mat")
    assert ds.x.shape == (4096, 12) and ds.x.dtype == np.float32
    assert ds.y.shape == (4096,) and ds.y.dtype == np.int32
    assert len(np.unique(ds.x, axis=0)) == 4096  # every 12-bit pattern once
    assert ds.y.mean() == pytest.approx(0.51708984375)


def test_var_u_search_path_finds_shared(monkeypatch, tmp_path):
    monkeypatch.delenv(io.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data.var_u().source.endswith("var_u.mat")


def test_var_u_env_dir_wins(monkeypatch, tmp_path, shared_dir):
    (tmp_path / "var_u.mat").write_bytes((shared_dir / "data" / "var_u.mat").read_bytes())
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


def test_splits(shared_dir):
    ds = data.var_u(shared_dir / "data" / "var_u.mat")
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


def test_mnist_test_split_from_shared(shared_dir):
    ds = data.mnist("test", path=shared_dir / "data" / "mnist")
    assert ds.x.shape == (10000, 784) and ds.x.dtype == np.float32
    assert 0.0 <= ds.x.min() and ds.x.max() == 1.0
    np.testing.assert_array_equal(ds.y[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    assert np.bincount(ds.y).tolist()[:3] == [980, 1135, 1032]
    img = data.mnist("test", path=shared_dir / "data" / "mnist", flat=False)
    assert img.x.shape == (10000, 28, 28, 1)
    with pytest.raises(ValueError, match="split"):
        data.mnist("val")
