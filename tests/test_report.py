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


def test_a_no_without_the_shared_rule_says_so():
    old = {"claim": "c", "source": "s", "measured": 1.0, "agrees": False}
    assert _report.agreement(old).startswith("**no** (the study's own test")
    assert _report.agreement({**old, "rule": "ibjax-verdict/1"}) == "**no**"
