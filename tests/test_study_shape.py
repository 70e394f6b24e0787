"""The studies stay thin (issue 19): an experiment module is its settings, run, figures and claims;
what several studies or a user's script need lives in the library. Measured on the source files."""

import ast
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted(p for p in (ROOT / "experiments").glob("[a-z]*.py") if p.stem != "all")
# What a study may import from the library: its door (pipeline), its settings' types (config), the
# verdict rule (claims), the figures (plotting) and the harness.
ALLOWED = {
    "ibjax",
    "ibjax.config",
    "ibjax.pipeline",
    "ibjax.plotting",
    "ibjax.claims",
    "experiments",
    "experiments._harness",
}
MEDIAN_LINES, MOST_LINES = 150, 220


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def _library_imports(path: Path) -> set:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] in ("ibjax", "experiments")
        ):
            out |= (
                {node.module}
                if node.module != "ibjax" and node.module != "experiments"
                else {f"{node.module}.{a.name}" for a in node.names}
            )
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] in ("ibjax", "experiments")}
    return out


def test_the_study_list_is_the_report_list():
    from experiments import _report

    assert sorted(p.stem for p in STUDIES) == sorted(_report.ORDER)


def test_studies_are_short():
    sizes = {p.stem: _lines(p) for p in STUDIES}
    assert statistics.median(sizes.values()) <= MEDIAN_LINES, sorted(sizes.items(), key=lambda kv: kv[1])
    assert max(sizes.values()) <= MOST_LINES, {k: v for k, v in sizes.items() if v > MOST_LINES}


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_a_study_imports_only_the_door(path):
    assert _library_imports(path) <= ALLOWED, sorted(_library_imports(path) - ALLOWED)


def test_the_import_check_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from ibjax import pipeline, views\nfrom ibjax.estimators import edge\nimport ibjax.ib\n")
    assert _library_imports(bad) - ALLOWED == {"ibjax.views", "ibjax.estimators", "ibjax.ib"}
