"""A full disk at write time: one line, exit 2, the files already there intact, no temporary left."""

import errno
import json
from dataclasses import dataclass

import pytest

from experiments import _harness as harness
from ibjax import io


@dataclass(frozen=True)
class Tiny:
    value: float = 1.0


def _run(cfg, out, *, force=False):
    return {"summary": {"value": cfg.value}}


def _claims(results, cfg):
    return [{"claim": "c", "source": "s", "measured": results["summary"]["value"], "agrees": True, "rule": "test"}]


def test_disk_full_is_one_line_and_keeps_the_old_summary(tmp_path, monkeypatch, capsys):
    out = tmp_path / "tiny"
    harness.main("tiny", Tiny, {}, _run, lambda *a: [], _claims, ["--out", str(out)])
    before = (out / "summary.json").read_bytes()
    assert json.loads(before)["value"] == 1.0

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    with pytest.raises(SystemExit) as e:
        harness.main("tiny", Tiny, {}, _run, lambda *a: [], _claims, ["--out", str(out), "--set", "value=2"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: No space left on device") and "files already there are kept" in err
    assert (out / "summary.json").read_bytes() == before  # the old result, whole
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no temporary left behind
    assert not (out / ".lock").exists()  # the lock is released on the way out


def test_os_error_line_names_the_file():
    e = OSError(errno.ENAMETOOLONG, "File name too long", "/x/" + "a" * 300)
    line = io.os_error_line(e)
    assert line.startswith("File name too long writing /x/aaa") and "\n" not in line
