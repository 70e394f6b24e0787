"""The harness splits an experiment's wall time (load / compile / compute / write / plot) and
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
    return [
        {"claim": "runs", "source": "test", "measured": results["summary"]["value"], "agrees": True, "rule": "test"}
    ]


def main(argv):
    return harness.main("timing_probe", Config, {}, run, lambda r, c, o: [], claims, argv)


def test_timing_split_counts_compiles_and_a_reproduced_rerun_keeps_the_summary(tmp_path, capsys):
    out = tmp_path / "t"
    s = main(["--out", str(out)])
    t = s["timing"]
    assert t["programs compiled"] >= 2 and t["compile [s]"] >= 0
    assert set(t) == {"load [s]", "compile [s]", "compute [s]", "write [s]", "plot [s]", "programs compiled"} | set(
        harness.TALLIES
    )
    assert [t[k] for k in harness.TALLIES] == [0, 0, 0, 0]  # the probe trains and evaluates nothing
    assert sum(t[k] for k in ("load [s]", "compile [s]", "compute [s]", "write [s]")) <= s["seconds"] + 0.25
    assert "of which" in _report.split(s) and "programs" in _report.split(s) and "s write" in _report.split(s)
    before = (out / "summary.json").read_bytes()
    main(["--out", str(out)])  # same numbers, other timings
    assert "summary.json: same results as the saved one; kept it" in capsys.readouterr().out
    assert (out / "summary.json").read_bytes() == before
    old = json.loads(before)
    old["timing"] = {"compile [s]": 0.1, "figures and claims [s]": 0.0}  # an older summary's split
    (out / "summary.json").write_text(json.dumps(old))
    main(["--out", str(out)])  # same numbers, the split in the new form: rewritten
    assert set(json.loads((out / "summary.json").read_text())["timing"]) == set(t)
    main(["--out", str(out), "--set", "scale=3.0"])  # other numbers: rewritten
    assert json.loads((out / "summary.json").read_text())["config"]["scale"] == 3.0


def test_phase_clock_counts_loads_and_writes_once_each(tmp_path):
    import time

    from ibjax import io, timing

    @timing.phased("load")
    def load():
        time.sleep(0.05)
        io.atomic_write_json(tmp_path / "inner.json", {})  # a write inside a load counts as the load only

    with timing.phase_clock() as p:
        load()
        with timing.phase("write"):
            time.sleep(0.03)
    assert 0.05 <= p["load"] < 0.5 and 0.03 <= p["write"] < 0.2
    load()  # no clock open: nothing counted, nothing fails
    assert set(p) == {"load", "write"}
