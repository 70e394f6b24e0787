"""Directory locks: a second writer of a run directory or an output directory is refused, naming the first."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from experiments import _harness as harness
from ibjax import checkpoints, io, pipeline, runs
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

CFG = RunConfig(
    MLPConfig((12, 6, 4, 2)), DataConfig(name="var_u"), TrainConfig(n_epochs=12, schedule="every:6", learning_rate=0.01)
)
QUIET = lambda *_: None
HOLDER = textwrap.dedent(
    """
    import sys
    from ibjax import checkpoints, io
    kind, path = sys.argv[1], sys.argv[2]
    lock = checkpoints.run_lock(path) if kind == "run" else io.dir_lock(path, what="a test holder")
    with lock:
        print("held", flush=True)
        sys.stdin.read()  # until the test closes stdin
    """
)


@pytest.fixture
def held():
    """``held(kind, path)``: another process holds the lock ("run": of a run directory, "dir": of an
    output directory) until the test ends; returns its pid."""
    procs = []

    def hold(kind, path):
        p = subprocess.Popen(
            [sys.executable, "-c", HOLDER, kind, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p.pid

    yield hold
    for p in procs:
        p.stdin.close()
        assert p.wait(timeout=60) == 0


def _locks(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.lock"))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lock_file_is_removed_after_normal_exit_and_after_an_exception(tmp_path):
    with io.dir_lock(tmp_path / "out", what="test") as _:
        holder = json.loads((tmp_path / "out" / io.LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["what"] == "test" and holder["since"]
    assert not (tmp_path / "out" / io.LOCK_NAME).exists()
    with pytest.raises(KeyError), io.dir_lock(tmp_path / "out", what="test"):
        raise KeyError("boom")
    assert _locks(tmp_path) == []


def test_nested_lock_of_the_same_directory_in_one_process_is_shared(tmp_path):
    """An experiment locks --out and then evaluates into it: no deadlock, and the outer block releases."""
    with io.dir_lock(tmp_path, what="outer"), io.dir_lock(tmp_path / "." / "", what="inner"):
        assert json.loads((tmp_path / io.LOCK_NAME).read_text())["what"] == "outer"
    assert _locks(tmp_path) == []


def test_a_second_training_of_the_same_run_directory_is_refused(tmp_path, held):
    pid = held("run", tmp_path / "seed_0")
    with pytest.raises(io.DirectoryLocked) as e:
        runs.train_or_reuse(CFG, [0, 1], tmp_path, log=QUIET)
    msg = str(e.value)
    assert "\n" not in msg and f"run directory {tmp_path / 'seed_0'}" in msg and f"pid {pid}" in msg
    assert "`" + sys.executable in msg and "since" in msg and "wait for it to finish" in msg
    assert f"remove {tmp_path / '.seed_0.lock'}" in msg
    assert not (tmp_path / "seed_1").exists()  # refused before training anything
    runs.train_or_reuse(CFG, [1], tmp_path, log=QUIET)  # another run directory of the same root: allowed


def test_a_second_evaluation_into_the_same_out_is_refused(tmp_path, held):
    d = runs.train_or_reuse(CFG, [0], tmp_path / "runs", log=QUIET)[0]
    out = tmp_path / "out"
    pid = held("dir", out)
    with pytest.raises(io.DirectoryLocked, match=f"{out} is being written by another process, pid {pid} "):
        pipeline.evaluate_runs([d], "binning", out=out, progress=False, log=QUIET)
    assert not list(out.glob("infoplane_*"))
    pipeline.evaluate_runs([d], "binning", out=tmp_path / "other", progress=False, log=QUIET)


@dataclasses.dataclass(frozen=True)
class _Cfg:
    seeds: int = 1


def _experiment(out_seen):
    def run(cfg, out, *, force):
        out_seen.append(json.loads((out / io.LOCK_NAME).read_text())["what"])
        return {"summary": {}}

    return run


def test_a_second_experiment_into_the_same_out_exits_with_one_line(tmp_path, held, capsys):
    out, seen = tmp_path / "out", []
    pid = held("dir", out)
    with pytest.raises(SystemExit) as e:
        harness.main("toy", _Cfg, {}, _experiment(seen), lambda *a: [], lambda *a: [], ["--out", str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"error: {out} is being written by another process, pid {pid}" in err and "a test holder" in err
    assert seen == [] and not (out / "config.json").exists()


def test_an_experiment_holds_its_out_while_it_runs_and_releases_it(tmp_path, capsys):
    out, seen = tmp_path / "out", []
    summary = harness.main("toy", _Cfg, {}, _experiment(seen), lambda *a: [], lambda *a: [], ["--out", str(out)])
    assert seen == ["experiment toy"] and _locks(tmp_path) == []
    assert ".lock" not in json.dumps(summary["files"])


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    stale = {"pid": _dead_pid(), "host": "h", "command": "python -m experiments.tishby", "what": "x", "since": "then"}
    (tmp_path / io.LOCK_NAME).write_text(json.dumps(stale))
    said = []
    with io.dir_lock(tmp_path, what="test", log=said.append):
        assert json.loads((tmp_path / io.LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(said) == 1 and f"taking over the stale lock {tmp_path / io.LOCK_NAME} of pid {stale['pid']}" in said[0]
    assert _locks(tmp_path) == []
    (tmp_path / ".seed_0.lock").write_text(json.dumps(stale))  # a run directory's, left by a killed training
    runs.train_or_reuse(CFG, [0], tmp_path, log=QUIET)
    assert checkpoints.is_complete(tmp_path / "seed_0") and _locks(tmp_path) == []


def test_training_leaves_no_lock_after_success_or_failure(tmp_path, monkeypatch):
    runs.train_or_reuse(CFG, [0, 1], tmp_path, log=QUIET)
    assert _locks(tmp_path) == []

    def fail(*a, **k):
        raise RuntimeError("killed in training")

    monkeypatch.setattr(runs, "_train_group", fail)
    with pytest.raises(RuntimeError, match="killed in training"):
        runs.train_or_reuse(CFG, [2], tmp_path, log=QUIET)
    assert _locks(tmp_path) == []
