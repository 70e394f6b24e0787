import json
import os
import shutil
import tempfile
from pathlib import Path

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

DATA = Path(__file__).resolve().parent / "data"

# The library's search path ($IBJAX_DATA_DIR, then the user cache, then a download) points at the
# committed test data, whatever the user's environment says; tests never download (_no_network).
os.environ["IBJAX_DATA_DIR"] = str(DATA)


def pytest_configure(config):
    """One compilation cache for the whole run, shared by the xdist workers (they inherit the
    environment of the controller, which starts them after this hook) and by the experiments' child
    processes; fresh per run, so no test depends on programs compiled by an older checkout."""
    if hasattr(config, "workerinput") or "IBJAX_XLA_CACHE" in os.environ:
        return
    config._ibjax_xla_cache = tempfile.mkdtemp(prefix="ibjax-xla-")
    os.environ["IBJAX_XLA_CACHE"] = config._ibjax_xla_cache


def pytest_unconfigure(config):
    path = getattr(config, "_ibjax_xla_cache", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop("IBJAX_XLA_CACHE", None)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: var_u.mat, mnist/ (official test labels, first1000/ subset), reference/."""
    return DATA


@pytest.fixture(scope="session")
def reference(data_dir) -> dict:
    return json.loads((data_dir / "reference" / "values.json").read_text())


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never download: any attempt fails loudly."""
    import urllib.request

    def refuse(url, *a, **k):
        if str(getattr(url, "full_url", url)).startswith("file:"):
            return _urlopen(url, *a, **k)
        raise AssertionError(f"test tried to reach the network: {url}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


_urlopen = __import__("urllib.request").request.urlopen


@pytest.fixture
def refused(tmp_path, capsys, monkeypatch):
    """``refused(module, argv)``: an experiment's main with bad settings must exit 2 with a one-line
    error before any training; returns that error line."""

    def run(module, argv):
        monkeypatch.setattr(module.pipeline, "train_or_reuse", lambda *a, **k: pytest.fail("trained"))
        with pytest.raises(SystemExit) as e:
            module.main([*argv, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
        return err

    return run
