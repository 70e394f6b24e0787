"""What a researcher waits for beyond the estimation itself: compiling, and a machine shared with others.

    python -m experiments.benchmarks.overhead           # writes results/benchmarks/overhead.json
    python -m experiments.benchmarks.overhead --quick   # tiny sizes (CI): overhead_quick.json

Every measurement is one fresh process, timed from outside (wall clock, imports included):

- ``tishby``: ``python -m experiments.tishby --quick`` with an empty persistent compilation cache
  (cold), then again with ``--force`` on the cache the first run filled (warm); ``warm / cold``.
- ``evaluate``: ``python -m ibjax.evaluate`` binning and KDE on that run's directory, cold and warm.
- ``training``: ``experiments.benchmarks.training`` (1 and 50 seeds of the tishby network) on one
  CPU device, on one device per core, and with the library's default device policy; each on idle
  cores and with two busy processes that this benchmark starts (pure-Python spin loops, one per
  core of a 2-core machine) and stops at the end; 3 repeats of each, interleaved, the median reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from experiments.benchmarks import machine
from ibjax import io

ROOT = Path(__file__).resolve().parents[2]
SPIN = "while True: pass"


def _env(cache: Path | None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "JAX_COMPILATION_CACHE_DIR")}
    env["IBJAX_XLA_CACHE"] = str(cache) if cache is not None else "off"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return {**env, **extra}


def timed(args: list[str], env: dict) -> float:
    """Wall seconds of ``python ARGS`` in a fresh process (fails loudly with its output)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


class busy:
    """``n`` competing CPU-bound processes for the duration of a ``with`` block."""

    def __init__(self, n: int):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(self.n)]
        time.sleep(1.0)  # let the scheduler see them
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def cold_warm(args: list[str], cache: Path, warm_args: list[str] | None = None) -> dict:
    cold = timed(args, _env(cache))
    warm = timed(warm_args or args, _env(cache))
    return dict(cold_seconds=round(cold, 2), warm_seconds=round(warm, 2), warm_over_cold=round(warm / cold, 3))


def training(tmp: Path, seeds: str, epochs: int, n_busy: int, cache: Path, repeats: int = 3) -> list[dict]:
    """Each (load, device setting) ``repeats`` times, the settings interleaved round by round so that a
    change in the machine's state hits all of them; a row holds the median and every repeat."""
    cores = os.cpu_count() or 1
    policies = {
        "one device": {"JAX_NUM_CPU_DEVICES": "1"},
        "one device per core": {"JAX_NUM_CPU_DEVICES": str(cores)},
        "default": {},
    }
    got = {}  # (load, policy, seeds) -> (devices, epochs, [seed-epochs/s per repeat])
    for load in ("idle", f"{n_busy} busy processes"):
        for rep in range(repeats):
            for name, extra in policies.items():
                out = tmp / f"training_{len(got)}_{rep}_{name.replace(' ', '_')}_{load[:4]}"
                args = ["-m", "experiments.benchmarks.training", "--epochs", str(epochs), "--seeds", seeds]
                args += ["--no-checkpoints", "--out", str(out)]
                with contextlib.nullcontext() if load == "idle" else busy(n_busy):
                    timed(args, _env(cache, **extra))
                for r in json.loads((out / "training.json").read_text())["training"]:
                    entry = got.setdefault((load, name, r["seeds"]), (r["devices"], r["epochs"], []))
                    entry[2].append(round(r["seed_epochs_per_second"], 1))
                    print(f"training {load:>18} {name:>20} (repeat {rep + 1}): {r['devices']} device(s), "
                          f"{r['seeds']:>3} seeds, {r['seed_epochs_per_second']:8.1f} seed-epochs/s", flush=True)  # fmt: skip
    return [
        dict(
            load=load,
            policy=name,
            devices=dev,
            seeds=n,
            epochs=ep,
            seed_epochs_per_second=float(np.median(v)),
            repeats=v,
        )  # fmt: skip
        for (load, name, n), (dev, ep, v) in got.items()
    ]


def ratios(rows: list[dict], seeds: int) -> dict:
    """Per load: the default policy's throughput over the best single-setting throughput."""
    out = {}
    for load in dict.fromkeys(r["load"] for r in rows):
        got = {r["policy"]: r["seed_epochs_per_second"] for r in rows if r["load"] == load and r["seeds"] == seeds}
        best = max(v for k, v in got.items() if k != "default")
        out[load] = dict(default_over_best=round(got["default"] / best, 3), **got)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    p.add_argument("--busy", type=int, default=None, help="competing busy processes (default: the core count)")
    p.add_argument("--out", default="results/benchmarks", help="output directory (default results/benchmarks)")
    a = p.parse_args(argv)
    n_busy = a.busy if a.busy is not None else os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="ibjax_overhead_") as d:
        tmp = Path(d)
        tish = ["-m", "experiments.tishby", "--quick", "--out", str(tmp / "tishby")]
        if a.quick:
            tish += ["--set", "run.model.widths=12,6,4,2", "--set", "run.train.n_epochs=40"]
        result = dict(quick=a.quick, **machine())
        result["tishby_quick"] = cold_warm(tish, tmp / "xla_tishby", [*tish, "--force"])
        print(f"tishby --quick: {result['tishby_quick']}", flush=True)
        run_dir = tmp / "tishby" / "runs" / "seed_0"
        for name, opts in (("binning", ["--n-bins", "30"]), ("kde", ["--noise-var", "0.1"])):
            args = ["-m", "ibjax.evaluate", str(run_dir), "--estimator", name, *opts, "--out", str(tmp / name)]
            result[f"evaluate_{name}"] = cold_warm([*args, "--recompute"], tmp / f"xla_{name}")
            print(f"ibjax.evaluate {name}: {result[f'evaluate_{name}']}", flush=True)
        seeds, epochs = ("1,4", 40) if a.quick else ("1,50", 300)
        rows = training(tmp, seeds, epochs, n_busy, tmp / "xla_training", repeats=1 if a.quick else 3)
        result["training"] = rows
        result["training_ratios"] = ratios(rows, int(seeds.split(",")[-1]))
        print(f"default policy / best setting: {result['training_ratios']}", flush=True)
    result["load_average_end"] = list(os.getloadavg())
    io.atomic_write_json(Path(a.out) / ("overhead_quick.json" if a.quick else "overhead.json"), result)
    return result


if __name__ == "__main__":
    main()
