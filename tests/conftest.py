import json
from pathlib import Path

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"tests need ../shared next to the checkout (looked in {SHARED})"
    return SHARED


@pytest.fixture(scope="session")
def reference(shared_dir) -> dict:
    return json.loads((shared_dir / "reference" / "values.json").read_text())


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
