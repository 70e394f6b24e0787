"""Run directories: round trip, and every way a directory can be damaged or mixed is refused by name.

No data files: runs are written from small synthetic params dicts."""

import json
import os

import numpy as np
import pytest

from ibjax import checkpoints, io

CFG = {"train": {"n_epochs": 10, "schedule": "all"}, "model": {"activation": "tanh"}, "seed": 0}
CFG_B = {"train": {"n_epochs": 5, "schedule": "log"}, "model": {"activation": "relu"}, "seed": 1}


def fake_params(e=4, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "Dense_0": {"kernel": rng.normal(size=(e, 3, 2)).astype(np.float32), "bias": np.zeros((e, 2), np.float32)},
        "Dense_1": {"kernel": rng.normal(size=(e, 2, 2)).astype(np.float32), "bias": np.ones((e, 2), np.float32)},
    }


def fake_metrics(n=10, seed=0):
    return {"train_loss": np.arange(n, dtype=np.float64) + seed, "test_acc": np.linspace(0, 1, n)}


def assert_params_equal(got, want):
    assert checkpoints.flatten(got).keys() == checkpoints.flatten(want).keys()
    for k, v in checkpoints.flatten(want).items():
        np.testing.assert_array_equal(checkpoints.flatten(got)[k], v, err_msg=k)


def leftovers(root):
    """Temporary files and hidden swap directories anywhere under root."""
    out = []
    for _dirpath, dirnames, filenames in os.walk(root):
        out += [n for n in filenames if n.endswith(".tmp")]
        out += [n for n in dirnames if ".tmp-" in n or ".old-" in n]
    return out


def test_round_trip(tmp_path):
    p, run_dir = fake_params(), tmp_path / "run"
    cfg = checkpoints.write_run(run_dir, CFG, [0, 1, 5, 9], p, fake_metrics())
    assert checkpoints.is_complete(run_dir, CFG) and cfg["run_id"] == checkpoints.run_id(CFG)
    assert cfg == json.loads((run_dir / "config.json").read_text()) and cfg["ibjax_version"]
    run = checkpoints.load_run(run_dir)
    np.testing.assert_array_equal(run.epochs, [0, 1, 5, 9])
    assert_params_equal(run.params, p)
    assert run.missing == () and run.config == cfg
    assert run.metrics.keys() == {"train_loss", "test_acc"}  # the records (__run_id__, __digest__) are stripped
    np.testing.assert_array_equal(run.metrics["train_loss"], np.arange(10.0))
    sub = checkpoints.load_run(run_dir, epochs=[9, 1])
    np.testing.assert_array_equal(sub.params["Dense_0"]["kernel"], p["Dense_0"]["kernel"][[1, 3]])
    with np.load(checkpoints.epoch_path(run_dir, 5)) as z:  # readable with numpy alone, '/'-joined names
        assert {"Dense_0/kernel", "Dense_1/bias", "__epoch__", "__run_id__"} <= set(z.files)
        assert int(z["__epoch__"]) == 5 and str(z["__run_id__"]) == cfg["run_id"]
    with np.load(run_dir / "metrics.npz") as z:
        assert str(z["__run_id__"]) == cfg["run_id"]
    assert json.loads((run_dir / "complete.json").read_text())["epochs"] == [0, 1, 5, 9]
    assert sorted(os.listdir(run_dir)) == ["complete.json", "config.json", "metrics.npz", "params"]


def test_written_files_have_ordinary_permissions(tmp_path):
    run_dir = tmp_path / "run"
    checkpoints.write_run(run_dir, CFG, [0, 1], fake_params(2), {})
    os.mkdir(tmp_path / "ref_dir")  # what the umask gives an ordinary directory and file
    (tmp_path / "ref_file").write_text("")
    dir_mode, file_mode = ((tmp_path / n).stat().st_mode & 0o777 for n in ("ref_dir", "ref_file"))
    assert dir_mode & 0o700 == 0o700 and file_mode & 0o600 == 0o600
    assert {(run_dir / d).stat().st_mode & 0o777 for d in ("", "params")} == {dir_mode}
    files = [
        run_dir / "config.json",
        run_dir / "metrics.npz",
        run_dir / "complete.json",
        checkpoints.epoch_path(run_dir, 1),
    ]
    assert {f.stat().st_mode & 0o777 for f in files} == {file_mode}


def test_run_id_ignores_version_keys_and_survives_json():
    base = checkpoints.run_id(CFG)
    assert checkpoints.run_id({**CFG, "ibjax_version": "9.9", "run_id": "x", "versions": {"jax": "0.1"}}) == base
    assert checkpoints.run_id({**CFG, "seed": 1}) != base
    assert checkpoints.run_id(CFG_B) != base
    # numpy scalars and tuples hash as they read back from config.json
    assert checkpoints.run_id({"seed": np.int64(3), "w": (1, 2)}) == checkpoints.run_id({"seed": 3, "w": [1, 2]})


def test_write_run_checks_its_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"params_stacked\['Dense_0/kernel'\] must be stacked over the 3 epochs"):
        checkpoints.write_run(tmp_path / "r", CFG, [0, 1, 2], fake_params(4), {})
    with pytest.raises(ValueError, match="distinct"):
        checkpoints.write_run(tmp_path / "r", CFG, [0, 1, 1, 2], fake_params(4), {})
    with pytest.raises(ValueError, match="reserved"):
        checkpoints.write_run(tmp_path / "r", CFG, [0, 1, 2, 3], fake_params(4), {"__run_id__": np.zeros(1)})
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="refusing to replace .*notes.*not a run directory.*thesis.tex"):
        checkpoints.write_run(tmp_path / "notes", CFG, [0], fake_params(1), {})
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "precious"
    assert not (tmp_path / "r").exists() and leftovers(tmp_path) == []


def test_errors_name_the_problem(tmp_path):
    checkpoints.write_run(tmp_path / "run", CFG, [0, 1, 5, 9], fake_params(), fake_metrics())
    with pytest.raises(ValueError, match=r"epochs \[2\] were not kept in .*run; kept epochs: 0..9 \(4 kept\)"):
        checkpoints.load_run(tmp_path / "run", epochs=[1, 2])
    with pytest.raises(FileNotFoundError, match="not a run directory: no config.json"):
        checkpoints.load_run(tmp_path / "run" / "params")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.load_run(tmp_path / "nowhere")
    assert not checkpoints.is_complete(tmp_path / "nowhere")


def _foreign_file(run_dir, other_dir, name):
    (run_dir / name).write_bytes((other_dir / name).read_bytes())


# fault -> (exception, message, is_complete afterwards); run written with epochs [0, 1, 5, 9]
FAULTS = {
    "truncated params": (
        lambda d, o: checkpoints.epoch_path(d, 5).write_bytes(checkpoints.epoch_path(d, 5).read_bytes()[:300]),
        ValueError,
        r"params/epoch_000005.npz: corrupt or truncated params file",
        True,
    ),
    "deleted complete.json": (
        lambda d, o: (d / "complete.json").unlink(),
        ValueError,
        r"incomplete run directory .*run: no complete.json, training was interrupted or is still "
        r"writing; retrain it, or pass allow_partial=True to load the 4 epochs present",
        False,
    ),
    "corrupt complete.json": (
        lambda d, o: (d / "complete.json").write_text('{"epochs": [0, 1'),
        ValueError,
        r"run/complete.json: corrupt complete.json",
        False,
    ),
    "edited config.json": (
        lambda d, o: (d / "config.json").write_text((d / "config.json").read_text().replace("tanh", "relu")),
        ValueError,
        r"run/config.json: config.json was edited after the run was written",
        False,
    ),
    "deleted params file": (
        lambda d, o: checkpoints.epoch_path(d, 5).unlink(),
        FileNotFoundError,
        r"run/params: 1 of 4 params files listed in complete.json are missing \(epoch_000005.npz; "
        r"epochs \[5\]\); retrain the run, or pass allow_partial=True to load the 3 epochs present",
        False,
    ),
    "params file from another run": (
        lambda d, o: _foreign_file(d, o, "params/epoch_000005.npz"),
        ValueError,
        r"params/epoch_000005.npz: params file written by a different run",
        True,
    ),
    "extra params file": (
        lambda d, o: _foreign_file(d, o, "params/epoch_000007.npz"),
        ValueError,
        r"run/params: 1 params files not in complete.json's epoch list \(epoch_000007.npz\)",
        False,
    ),
    "truncated metrics": (
        lambda d, o: (d / "metrics.npz").write_bytes((d / "metrics.npz").read_bytes()[:-40]),
        ValueError,
        r"run/metrics.npz: corrupt or truncated metrics file",
        True,
    ),
    "metrics from another run": (
        lambda d, o: _foreign_file(d, o, "metrics.npz"),
        ValueError,
        r"run/metrics.npz: metrics file written by a different run",
        True,
    ),
    "deleted metrics": (
        lambda d, o: (d / "metrics.npz").unlink(),
        FileNotFoundError,
        r"run/metrics.npz: missing metrics file",
        False,
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_refused_naming_the_file(tmp_path, fault):
    inject, exc, msg, still_complete = FAULTS[fault]
    checkpoints.write_run(tmp_path / "run", CFG, [0, 1, 5, 9], fake_params(), fake_metrics())
    checkpoints.write_run(tmp_path / "other", CFG_B, [0, 5, 7], fake_params(3, seed=1), fake_metrics(seed=1))
    inject(tmp_path / "run", tmp_path / "other")
    with pytest.raises(exc, match=msg):
        checkpoints.load_run(tmp_path / "run")
    # the cheap reuse check reads no arrays: it catches everything but damaged or foreign file contents
    assert checkpoints.is_complete(tmp_path / "run", CFG) is still_complete


def test_allow_partial_reports_what_is_missing(tmp_path):
    p, run_dir = fake_params(), tmp_path / "run"
    checkpoints.write_run(run_dir, CFG, [0, 1, 5, 9], p, fake_metrics())
    checkpoints.epoch_path(run_dir, 5).unlink()
    with pytest.warns(
        checkpoints.IncompleteRunWarning,
        match=r"loaded 3 epochs; 1 of 4 params files listed in complete.json are missing \(epoch_000005.npz; epochs \[5\]\)",
    ):
        run = checkpoints.load_run(run_dir, allow_partial=True)
    np.testing.assert_array_equal(run.epochs, [0, 1, 9])
    assert run.missing == (5,)
    np.testing.assert_array_equal(run.params["Dense_0"]["kernel"], p["Dense_0"]["kernel"][[0, 1, 3]])
    np.testing.assert_array_equal(run.metrics["train_loss"], np.arange(10.0))
    with pytest.warns(checkpoints.IncompleteRunWarning, match=r"epochs \[5\]"):
        sub = checkpoints.load_run(run_dir, epochs=[1, 5], allow_partial=True)
    np.testing.assert_array_equal(sub.epochs, [1])
    assert sub.missing == (5,)
    (run_dir / "complete.json").unlink()
    with pytest.warns(checkpoints.IncompleteRunWarning, match=r"\(no complete.json\): loaded the 3 epochs present"):
        run = checkpoints.load_run(run_dir, allow_partial=True)
    np.testing.assert_array_equal(run.epochs, [0, 1, 9])
    assert run.missing == ()
    # allow_partial tolerates absence only: a damaged file is still refused
    checkpoints.epoch_path(run_dir, 9).write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match="epoch_000009.npz: corrupt or truncated"):
        checkpoints.load_run(run_dir, allow_partial=True)


def _flip_outcomes(path, load, originals, n, rng):
    """Flip one byte (XOR with a random non-zero value) at n random positions, each on a fresh copy of
    the file: every load must raise a ValueError naming the file or return exactly the originals."""
    good = path.read_bytes()
    raised = identical = 0
    for pos in rng.integers(0, len(good), size=n):
        bad = bytearray(good)
        bad[pos] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(bad))
        try:
            got = load()
        except ValueError as e:
            assert path.name in str(e), (pos, str(e))
            raised += 1
        else:
            assert got.keys() == originals.keys(), pos
            for k, v in originals.items():
                assert got[k].dtype == v.dtype and got[k].shape == v.shape, (pos, k)
                np.testing.assert_array_equal(got[k], v, err_msg=f"byte {pos}: {k}")
            identical += 1
    path.write_bytes(good)
    return raised, identical


def test_flipped_bytes_never_load_wrong_values(tmp_path):
    p, run_dir, rng = fake_params(), tmp_path / "run", np.random.default_rng(0)
    checkpoints.write_run(run_dir, CFG, [0, 1, 5, 9], p, fake_metrics())
    want = {k: v[2] for k, v in checkpoints.flatten(p).items()}
    raised, identical = _flip_outcomes(
        checkpoints.epoch_path(run_dir, 5),
        lambda: checkpoints.flatten(checkpoints.load_run(run_dir, epochs=[5]).params),
        {k: v[None] for k, v in want.items()},
        300,
        rng,
    )
    assert raised + identical == 300
    assert raised >= 200 and identical >= 1, (raised, identical)  # both outcomes occur (zip metadata holds slack)
    m_raised, m_identical = _flip_outcomes(
        run_dir / "metrics.npz", lambda: checkpoints.load_run(run_dir).metrics, fake_metrics(), 100, rng
    )
    assert m_raised + m_identical == 100 and m_raised >= 60, (m_raised, m_identical)
    print(
        f"params flips: {raised} raised, {identical} identical; metrics flips: {m_raised} raised, {m_identical} identical"
    )
    assert checkpoints.is_complete(run_dir, CFG)
    assert_params_equal(checkpoints.load_run(run_dir).params, p)


def test_rewrite_with_other_settings_replaces_the_whole_directory(tmp_path):
    run_dir = tmp_path / "seed_0"
    checkpoints.write_run(run_dir, CFG, np.arange(10), fake_params(10), fake_metrics(10))
    b = fake_params(5, seed=1)
    cfg_b = checkpoints.write_run(run_dir, CFG_B, [0, 1, 3, 7, 15], b, fake_metrics(5, seed=1))
    assert sorted(os.listdir(run_dir)) == ["complete.json", "config.json", "metrics.npz", "params"]
    assert sorted(os.listdir(run_dir / "params")) == [f"epoch_{e:06d}.npz" for e in (0, 1, 3, 7, 15)]
    run = checkpoints.load_run(run_dir)
    np.testing.assert_array_equal(run.epochs, [0, 1, 3, 7, 15])
    assert_params_equal(run.params, b)
    assert run.config == cfg_b and run.config["model"]["activation"] == "relu"
    np.testing.assert_array_equal(run.metrics["train_loss"], np.arange(5.0) + 1)
    assert checkpoints.is_complete(run_dir, CFG_B) and not checkpoints.is_complete(run_dir, CFG)
    assert sorted(os.listdir(tmp_path)) == ["seed_0"]


def test_fewer_epochs_on_rewrite_leave_no_stale_params(tmp_path):
    run_dir = tmp_path / "run"
    checkpoints.write_run(run_dir, CFG, np.arange(10), fake_params(10), fake_metrics(10))
    cfg = {**CFG, "train": {"n_epochs": 10, "schedule": "log"}}
    p = fake_params(4, seed=2)
    checkpoints.write_run(run_dir, cfg, [0, 1, 3, 9], p, fake_metrics(10, seed=2))
    np.testing.assert_array_equal(checkpoints.kept_epochs(run_dir), [0, 1, 3, 9])
    checkpoints.write_run(run_dir, cfg, [0, 1, 3, 9], p, fake_metrics(10, seed=2))  # same settings again (--force)
    run = checkpoints.load_run(run_dir)
    np.testing.assert_array_equal(run.epochs, [0, 1, 3, 9])
    assert_params_equal(run.params, p)
    assert sorted(os.listdir(tmp_path)) == ["run"] and leftovers(tmp_path) == []


def _kill_after(monkeypatch, n_files):
    real, calls = io.atomic_save_npz, {"n": 0}

    def dying(path, arrays, **kw):
        calls["n"] += 1
        if calls["n"] > n_files:
            raise KeyboardInterrupt
        real(path, arrays, **kw)

    monkeypatch.setattr(io, "atomic_save_npz", dying)


def test_killed_rewrite_keeps_the_old_run(tmp_path, monkeypatch):
    run_dir, a = tmp_path / "seed_0", fake_params(10)
    cfg_a = checkpoints.write_run(run_dir, CFG, np.arange(10), a, fake_metrics(10))
    _kill_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.write_run(run_dir, CFG_B, np.arange(5), fake_params(5, seed=1), fake_metrics(5, seed=1))
    monkeypatch.undo()
    # RUN_DIR still holds A, whole and loadable; B is not there
    assert checkpoints.is_complete(run_dir, CFG) and not checkpoints.is_complete(run_dir, CFG_B)
    run = checkpoints.load_run(run_dir)
    assert run.config == cfg_a
    np.testing.assert_array_equal(run.epochs, np.arange(10))
    assert_params_equal(run.params, a)
    np.testing.assert_array_equal(run.metrics["train_loss"], np.arange(10.0))
    # the killed write's hidden sibling holds its 3 finished params files, readable only as partial
    (orphan,) = [tmp_path / n for n in os.listdir(tmp_path) if n.startswith(".seed_0.tmp-")]
    with pytest.raises(ValueError, match="incomplete run directory"):
        checkpoints.load_run(orphan)
    with pytest.warns(checkpoints.IncompleteRunWarning, match="loaded the 3 epochs present"):
        part = checkpoints.load_run(orphan, allow_partial=True)
    np.testing.assert_array_equal(part.params["Dense_0"]["kernel"], fake_params(5, seed=1)["Dense_0"]["kernel"][:3])
    # the next write of B cleans the orphan and succeeds
    b = fake_params(5, seed=1)
    checkpoints.write_run(run_dir, CFG_B, np.arange(5), b, fake_metrics(5, seed=1))
    assert checkpoints.is_complete(run_dir, CFG_B)
    assert_params_equal(checkpoints.load_run(run_dir).params, b)
    assert sorted(os.listdir(tmp_path)) == ["seed_0"] and leftovers(tmp_path) == []


def test_kill_between_the_renames_leaves_no_stale_run(tmp_path, monkeypatch):
    run_dir = tmp_path / "seed_0"
    checkpoints.write_run(run_dir, CFG, np.arange(4), fake_params(4), fake_metrics(4))
    real, calls = os.rename, {"n": 0}

    def dying(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # old moved aside, new not yet in place
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "rename", dying)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.write_run(run_dir, CFG_B, np.arange(5), fake_params(5, seed=1), fake_metrics(5))
    monkeypatch.undo()
    assert not run_dir.exists()
    assert not checkpoints.is_complete(run_dir) and not checkpoints.is_complete(run_dir, CFG)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.load_run(run_dir)
    assert sorted(n.split("-")[0] for n in os.listdir(tmp_path)) == [".seed_0.old", ".seed_0.tmp"]
    removed = checkpoints.clean_orphans(run_dir)
    assert sorted(p.name.split("-")[0] for p in removed) == [".seed_0.old", ".seed_0.tmp"]
    assert os.listdir(tmp_path) == []


def test_orphans_of_earlier_kills_are_cleaned_and_only_ours(tmp_path):
    run_dir = tmp_path / "seed_1"
    checkpoints.write_run(run_dir, CFG, [0, 1], fake_params(2), {})
    for name in (".seed_1.tmp-dead", ".seed_1.old-dead", ".seed_10.tmp-alive"):
        (tmp_path / name / "params").mkdir(parents=True)
    (run_dir / ".config.json.abc.tmp").write_bytes(b"half")
    (run_dir / "params" / ".epoch_000002.npz.abc.tmp").write_bytes(b"half")
    checkpoints.write_run(run_dir, CFG, [0, 1, 2], fake_params(3), {})
    assert sorted(os.listdir(tmp_path)) == [".seed_10.tmp-alive", "seed_1"]  # another run's sibling is left alone
    assert leftovers(run_dir) == []
    np.testing.assert_array_equal(checkpoints.load_run(run_dir).epochs, [0, 1, 2])


def test_file_from_another_run_is_refused(tmp_path):
    checkpoints.write_run(tmp_path / "a", CFG, [0, 1], fake_params(2), {})
    cfg_b = checkpoints.write_run(tmp_path / "b", {**CFG, "seed": 1}, [0, 1], fake_params(2), {})
    src = checkpoints.epoch_path(tmp_path / "b", 1)
    checkpoints.epoch_path(tmp_path / "a", 1).write_bytes(src.read_bytes())
    with pytest.raises(
        ValueError, match=f"epoch_000001.npz: params file written by a different run \\(run_id {cfg_b['run_id']}"
    ):
        checkpoints.load_run(tmp_path / "a")
    checkpoints.epoch_path(tmp_path / "a", 0).rename(checkpoints.epoch_path(tmp_path / "a", 7))
    with pytest.raises(ValueError, match="does not hold epoch 7 \\(found 0\\)"):
        checkpoints.load_epoch(tmp_path / "a", 7)
    with pytest.raises(ValueError, match=r"not in complete.json's epoch list \(epoch_000007.npz\)"):
        checkpoints.load_run(tmp_path / "a")


def test_legacy_run_directory_is_not_reused(tmp_path):
    run_dir = tmp_path / "run"
    checkpoints.write_run(run_dir, CFG, [0, 1], fake_params(2), {})
    complete = json.loads((run_dir / "complete.json").read_text())
    del complete["format"], complete["run_id"]
    (run_dir / "complete.json").write_text(json.dumps(complete))
    assert not checkpoints.is_complete(run_dir, CFG)
    with pytest.raises(
        ValueError, match="complete.json: run written in run-directory format 1, this ibjax reads format 2; retrain"
    ):
        checkpoints.load_run(run_dir)


def test_symlinked_run_directory_is_rewritten_where_it_lives(tmp_path):
    (tmp_path / "big_disk" / "seed_0").mkdir(parents=True)  # seed_0 linked to a bigger disk, then trained
    target, link = tmp_path / "big_disk" / "seed_0", tmp_path / "seed_0"
    link.symlink_to(target, target_is_directory=True)
    a = fake_params(3)
    checkpoints.write_run(link, CFG, [0, 1, 2], a, {})
    checkpoints.write_run(link, CFG, [0, 1, 2], a, {})  # a forced rewrite of the same run
    assert link.is_symlink() and checkpoints.is_complete(target, CFG)
    assert_params_equal(checkpoints.load_run(link).params, a)
    assert sorted(os.listdir(tmp_path / "big_disk")) == ["seed_0"]


def test_another_run_behind_a_symlink_is_never_replaced(tmp_path):
    """seed_0 of one experiment linked to a finished run of another: training other settings into the
    link used to replace the run it points to."""
    other, link = tmp_path / "other_experiment" / "seed_3", tmp_path / "mine" / "seed_0"
    checkpoints.write_run(other, CFG, [0, 1, 2], fake_params(3), {})
    link.parent.mkdir()
    link.symlink_to(other, target_is_directory=True)
    before = {p.name: p.read_bytes() for p in (other / "params").iterdir()}
    with pytest.raises(ValueError, match=r"links to .*seed_3'?, which holds another finished run .*remove the link"):
        checkpoints.write_run(link, CFG_B, [0, 4], fake_params(2, seed=1), {})
    assert checkpoints.is_complete(other, CFG) and link.is_symlink()
    assert {p.name: p.read_bytes() for p in (other / "params").iterdir()} == before


def test_files_a_user_put_in_a_run_directory_survive_a_rewrite(tmp_path):
    """README evaluates into the run directory by default; a --force retrain used to delete that."""
    run_dir = tmp_path / "seed_0"
    checkpoints.write_run(run_dir, CFG, [0, 1, 2], fake_params(3), {})
    (run_dir / "notes.txt").write_text("lr looked too high")
    (run_dir / "eval").mkdir()
    (run_dir / "eval" / "infoplane_binning.npz").write_bytes(b"a saved plane")
    (run_dir / ".cache").mkdir()
    b = fake_params(2, seed=1)
    checkpoints.write_run(run_dir, CFG_B, [0, 4], b, {})
    assert (run_dir / "notes.txt").read_text() == "lr looked too high"
    assert (run_dir / "eval" / "infoplane_binning.npz").read_bytes() == b"a saved plane"
    assert (run_dir / ".cache").is_dir() and checkpoints.is_complete(run_dir, CFG_B)
    assert_params_equal(checkpoints.load_run(run_dir).params, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_0"]  # no .old or .tmp sibling left


def test_user_files_of_a_rewrite_killed_mid_swap_are_carried_by_the_next_write(tmp_path):
    run_dir = tmp_path / "seed_0"
    checkpoints.write_run(run_dir, CFG, [0, 1], fake_params(2), {})
    (run_dir / "notes.txt").write_text("keep me")
    os.rename(run_dir, tmp_path / ".seed_0.old-deadbeef")  # killed between the swap's two renames
    checkpoints.write_run(run_dir, CFG_B, [0, 4], fake_params(2, seed=1), {})
    assert (run_dir / "notes.txt").read_text() == "keep me" and checkpoints.is_complete(run_dir, CFG_B)
    assert not (tmp_path / ".seed_0.old-deadbeef").exists()


def test_a_run_this_process_wrote_is_not_read_again_until_a_file_changes(tmp_path, monkeypatch):
    """write_run remembers the run: load_run returns the same arrays (read-only) without reading a params
    file; an epoch subset is sliced from it; any changed file (damaged, rewritten, removed) is read and
    checked from disk again."""
    d = tmp_path / "run"
    epochs, params, metrics = [0, 2, 5, 9], fake_params(), fake_metrics()
    checkpoints.write_run(d, CFG, epochs, params, metrics)
    reads = []
    real = checkpoints._read_npz
    monkeypatch.setattr(checkpoints, "_read_npz", lambda p, what: reads.append(p) or real(p, what))
    run = checkpoints.load_run(d)
    assert reads == [] and run.epochs.tolist() == epochs and run.missing == ()
    assert_params_equal(run.params, params)
    np.testing.assert_array_equal(run.metrics["train_loss"], metrics["train_loss"])
    with pytest.raises(ValueError, match="read-only"):
        run.params["Dense_0"]["kernel"][0, 0, 0] = 1.0  # the remembered copy cannot be changed by a caller
    want = params["Dense_0"]["kernel"].copy()
    params["Dense_0"]["kernel"][:] = 7.0  # the writer's own arrays changed after the write: the run is not
    np.testing.assert_array_equal(checkpoints.load_run(d).params["Dense_0"]["kernel"], want)
    params["Dense_0"]["kernel"][:] = want
    part = checkpoints.load_run(d, epochs=[2, 9])
    assert reads == [] and part.epochs.tolist() == [2, 9]
    np.testing.assert_array_equal(part.params["Dense_1"]["kernel"], params["Dense_1"]["kernel"][[1, 3]])
    checkpoints.forget_runs()
    assert_params_equal(checkpoints.load_run(d).params, params)  # read from disk, then remembered
    assert len(reads) == 5
    f = checkpoints.epoch_path(d, 5)
    b = bytearray(f.read_bytes())
    b[-40] ^= 1
    with open(f, "r+b") as h:  # in place: same inode and size, a new mtime
        h.write(b)
    with pytest.raises(ValueError, match="corrupt"):
        checkpoints.load_run(d)
    checkpoints.write_run(d, CFG, epochs, fake_params(seed=1), metrics)  # rewritten: the new run is remembered
    assert_params_equal(checkpoints.load_run(d).params, fake_params(seed=1))
    os.remove(checkpoints.epoch_path(d, 9))
    with pytest.raises(FileNotFoundError, match="missing"):
        checkpoints.load_run(d)


def test_the_files_of_a_run_are_synced_before_it_is_published(tmp_path, monkeypatch):
    """Epoch files are written without an fsync each and synced together (syncfs, else an fsync per
    file) before the directory is swapped in; a sync that fails leaves the old run whole."""
    run_dir = tmp_path / "seed_0"
    checkpoints.write_run(run_dir, CFG, np.arange(10), fake_params(10), fake_metrics(10))
    synced = []
    monkeypatch.setattr(io, "_syncfs", lambda fd: False)  # no syncfs: one fsync per file
    real_fsync = io.os.fsync
    monkeypatch.setattr(io.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    checkpoints.write_run(tmp_path / "seed_1", CFG_B, np.arange(5), fake_params(5, seed=1), fake_metrics(5))
    assert len(synced) >= 6  # 5 epoch files and metrics.npz (config.json and complete.json sync themselves)

    def failing(root, files):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io, "sync_tree", failing)
    with pytest.raises(OSError, match="No space left"):
        checkpoints.write_run(run_dir, CFG_B, np.arange(5), fake_params(5, seed=1), fake_metrics(5, seed=1))
    monkeypatch.undo()
    checkpoints.forget_runs()
    assert checkpoints.load_run(run_dir).epochs.tolist() == list(range(10))  # the old run, whole
    checkpoints.write_run(run_dir, CFG, np.arange(10), fake_params(10), fake_metrics(10))  # cleans the orphan
    assert not leftovers(tmp_path)
