import json
import textwrap

import pytest

from experiments import all as all_mod

TINY = '''
"""A two-claim stand-in experiment."""
from dataclasses import dataclass
from experiments import _harness as harness

@dataclass(frozen=True)
class Config:
    value: float = 1.0
    fail: bool = False

QUICK = {"value": 2.0}

def run(cfg, out, *, force=False):
    if cfg.fail:
        raise RuntimeError("boom: planted failure")
    return {"summary": {"dataset": "none", "value": cfg.value}}

def figures(results, cfg, out):
    return []

def claims(results, cfg):
    return [{"claim": "value is positive", "source": "test", "measured": cfg.value, "agrees": cfg.value > 0, "rule": "test"},
            {"claim": "value is two", "source": "test", "measured": cfg.value, "agrees": cfg.value == 2.0, "rule": "test"}]

def main(argv=None):
    return harness.main("tiny", Config, QUICK, run, figures, claims, argv)

if __name__ == "__main__":
    main()
'''


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    pkg = tmp_path / "fakeexp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tiny.py").write_text(textwrap.dedent(TINY))
    (pkg / "broken.py").write_text(textwrap.dedent(TINY).replace("fail: bool = False", "fail: bool = True"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return tmp_path


def test_run_all_runs_each_experiment_and_reports_its_claims(fake_package, tmp_path):
    lines = []
    times = all_mod.run_all(["tiny"], tmp_path / "res", quick=True, package="fakeexp", log=lines.append)
    summary = json.loads((tmp_path / "res" / "tiny_quick" / "summary.json").read_text())
    assert summary["value"] == 2.0 and "--quick" in summary["command"]
    assert lines == [f"[1/1] tiny: {times['tiny']:.0f} s, 2 of 2 claims agree -> {tmp_path / 'res' / 'tiny_quick'}"]
    assert times["total_seconds"] >= times["tiny"] > 0


def test_run_all_names_the_failing_experiment(fake_package, tmp_path):
    with pytest.raises(RuntimeError, match=r"experiment 'broken' failed \(exit 1\)[\s\S]*boom: planted failure"):
        all_mod.run_all(["tiny", "broken"], tmp_path / "res", package="fakeexp", log=lambda s: None)
    assert (tmp_path / "res" / "tiny" / "summary.json").is_file()  # the ones before it stay


def test_unknown_experiment_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        all_mod.main(["--only", "tishby,nosuch"])
    assert e.value.code == 2 and "--only nosuch: unknown experiment; valid: tishby" in capsys.readouterr().err
