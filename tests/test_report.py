"""results/README.md's claims tables: a '|' inside a cell (a norm ||K||) is escaped, not a new column."""

import json

from experiments import _report


def test_pipes_in_a_claim_are_escaped(tmp_path):
    (tmp_path / "tishby").mkdir()
    claim = {
        "claim": "a penalty sum ||K^T K - I||_F^2 stops it",
        "source": "s",
        "measured": 1.0,
        "agrees": None,
        "reason": "no power: |interval| straddles",
    }
    summary = {"command": "python -m experiments.tishby", "seconds": 1.0, "claims": [claim], "files": []}
    (tmp_path / "tishby" / "summary.json").write_text(json.dumps(summary))
    row = [ln for ln in _report.section("tishby", tmp_path).splitlines() if ln.startswith("| a penalty")][0]
    assert row.replace("\\|", "").count("|") == 5  # four cells
    assert "\\|\\|K^T K - I\\|\\|_F^2" in row and "undecided: no power: \\|interval\\|" in row


def test_undecided_renders_its_reason_never_no():
    c = {"claim": "c", "source": "s", "measured": 1.0, "agrees": None, "reason": "saturated at its cap", "rule": "r"}
    assert _report.agreement(c) == "undecided: saturated at its cap"
    assert _report.agreement({**c, "agrees": False}) == "**no**" and _report.agreement({**c, "agrees": True}) == "yes"
    d = {**c, "agrees": True, "effect": 1.6375, "interval": [1.1036, 2.1714], "threshold": 0.1}
    assert _report.agreement(d) == "yes (effect 1.64, interval [1.1, 2.17], threshold 0.1)"


def test_the_harness_refuses_a_claim_without_the_shared_rule(tmp_path, capsys):
    import dataclasses

    import pytest

    from experiments import _harness as harness

    @dataclasses.dataclass(frozen=True)
    class Config:
        value: float = 1.0

    def claims(results, cfg):
        return [{"claim": "c", "source": "s", "measured": 1.0, "agrees": False}]  # its own test, no rule

    with pytest.raises(SystemExit):
        harness.main(
            "tiny", Config, {}, lambda c, o, force: {}, lambda r, c, o: [], claims, ["--out", str(tmp_path / "o")]
        )
    assert "lacks ['rule'] (build it with ibjax.claims.entry)" in capsys.readouterr().err


def test_wall_time_table_splits_new_summaries_and_marks_old_ones(tmp_path):
    new = {"load [s]": 1.0, "compile [s]": 8.4, "compute [s]": 2.2, "write [s]": 0.3, "plot [s]": 1.9}
    fresh = {"runs trained": 50, "runs reused": 0, "planes computed": 1, "planes reused": 0}
    rerun = {"runs trained": 0, "runs reused": 50, "planes computed": 0, "planes reused": 1}
    cases = (
        ("tishby", {**new, "programs compiled": 19, **fresh}),
        ("saxe", {**new, "programs compiled": 0, **rerun}),
        ("snr", {"compile [s]": 5.0}),
        ("cnn", None),
    )
    for name, timing in cases:
        (tmp_path / name).mkdir()
        s = {"seconds": 14.0, **({"timing": timing} if timing else {})}
        (tmp_path / name / "summary.json").write_text(json.dumps(s))
    rows = _report.time_table([n for n, _ in cases], tmp_path).splitlines()
    assert "| load [s] | compile [s] | compute [s] | write [s] | plot [s] | programs compiled | run as |" in rows[4]
    assert rows[6] == "| tishby | 14 | 1 | 8 | 2 | 0 | 2 | 19 | from scratch |"
    assert rows[7] == "| saxe | 14 | 1 | 8 | 2 | 0 | 2 | 0 | rerun: reused 50 runs, 1 planes |"
    assert (
        rows[8] == "| snr | 14 | - | 5 | - | - | - | - | - |" and rows[9] == "| cnn | 14 | - | - | - | - | - | - | - |"
    )
