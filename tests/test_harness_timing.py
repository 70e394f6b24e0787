"""The harness splits an experiment's wall time (compile / the rest of run / figures and claims) and
keeps summary.json as it was when a rerun reproduces every number (timings are not results)."""

import json
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from experiments import _harness as harness
from experiments import _report


@dataclass(frozen=True)
class Config:
    scale: float = 2.0


def run(cfg, out, *, force=False):
    a = jax.jit(lambda v: jnp.sin(v) * cfg.scale)(jnp.arange(5.0))  # two distinct programs
    b = jax.jit(lambda v: jnp.cumsum(v) - 1.0)(jnp.arange(7.0))
    return {"summary": {"dataset": "none", "value": float(a.sum() + b.sum())}}


def claims(results, cfg):
    return [{"claim": "runs", "source": "test", "measured": results["summary"]["value"], "agrees": True}]


def main(argv):
    return harness.main("timing_probe", Config, {}, run, lambda r, c, o: [], claims, argv)


def test_timing_split_counts_compiles_and_a_reproduced_rerun_keeps_the_summary(tmp_path, capsys):
    out = tmp_path / "t"
    s = main(["--out", str(out)])
    t = s["timing"]
    assert t["programs compiled"] >= 2 and t["compile [s]"] >= 0
    assert set(t) == {
        "compile [s]",
        "train, evaluate, load and write [s]",
        "figures and claims [s]",
        "programs compiled",
    }
    assert t["compile [s]"] + t["train, evaluate, load and write [s]"] <= s["seconds"] + 0.11
    assert "of which" in _report.split(s) and "programs" in _report.split(s)
    before = (out / "summary.json").read_bytes()
    main(["--out", str(out)])  # same numbers, other timings
    assert "summary.json: same results as the saved one; kept it" in capsys.readouterr().out
    assert (out / "summary.json").read_bytes() == before
    main(["--out", str(out), "--set", "scale=3.0"])  # other numbers: rewritten
    assert json.loads((out / "summary.json").read_text())["config"]["scale"] == 3.0
