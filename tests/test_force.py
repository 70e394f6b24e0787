"""The harness owns --force and passes it: every evaluation a study saves passes ``recompute=`` and every
training ``force=``, so a forced rerun never shows a plane from older code (no ambient switch)."""

import ast
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
SAVING = {
    "evaluate_runs",
    "evaluate_arrays",
    "evaluate_grid",
    "evaluate_samples",
    "evaluate_layers",
    "evaluate_edge420",
}
TRAINING = {"train_or_reuse", "train_and_evaluate", "train_and_evaluate_each"}


def _calls(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            yield name, {k.arg for k in node.keywords if k.arg}, node.lineno


@pytest.mark.parametrize("path", sorted(p for p in EXPERIMENTS.glob("*.py") if p.name != "_harness.py"), ids=str)
def test_every_saving_evaluation_and_training_gets_force_passed(path):
    missing = [
        f"{path.name}:{line} {name}"
        for name, kws, line in _calls(path)
        if (name in SAVING and "out" in kws and "recompute" not in kws and "**" not in kws)
        or (name in TRAINING and "force" not in kws)
    ]
    assert not missing, f"calls that would ignore --force: {missing}"


def test_the_harness_has_no_ambient_force():
    assert "recomputing(" not in (EXPERIMENTS / "_harness.py").read_text()
