"""Regenerate every committed result under results/ in one command.

    python -m experiments.all                       # every experiment, full size, then results/README.md
    python -m experiments.all --quick               # every --quick (CI-sized), under results/NAME_quick
    python -m experiments.all --only tishby,saxe    # a subset, in the report's order
    python -m experiments.all --force               # from scratch: retrain and re-evaluate everything

Runs ``python -m experiments.NAME`` for each experiment in ``experiments._report.ORDER`` as its own
process (each sets up its own JAX devices), one progress line per experiment (time, claims that agree),
stops at the first failure with its last lines, then regenerates results/README.md (not for --quick)
and writes ``ROOT/all.json`` with every experiment's time and the total.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from experiments import _report
from ibjax import io


def run_all(names, root="results", *, quick=False, force=False, package="experiments", log=print) -> dict:
    """Run the experiments ``names`` (in order) as subprocesses; returns {name: seconds, ...,
    "total_seconds"}. Raises ``RuntimeError`` naming the experiment that failed."""
    root = Path(root)
    times, t_all = {}, time.perf_counter()
    for i, name in enumerate(names, 1):
        out = root / (f"{name}_quick" if quick else name)
        cmd = [sys.executable, "-m", f"{package}.{name}"]
        cmd += [] if root == Path("results") else ["--out", str(out)]  # the default keeps summaries' commands plain
        cmd += ["--quick"] if quick else []
        cmd += ["--force"] if force else []
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"experiment {name!r} failed (exit {proc.returncode}) after {seconds:.0f} s:\n{tail}")
        summary = json.loads((out / "summary.json").read_text())
        agree = sum(c["agrees"] is True for c in summary["claims"])
        times[name] = round(seconds, 1)
        log(
            f"[{i}/{len(names)}] {name}: {times[name]:.0f} s, {agree} of {len(summary['claims'])} claims agree -> {out}"
        )
    times["total_seconds"] = round(time.perf_counter() - t_all, 1)
    return times


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m experiments.all", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", default="", help="comma-separated experiment names (default: all, in report order)")
    p.add_argument("--quick", action="store_true", help="every experiment's --quick")
    p.add_argument(
        "--force",
        action="store_true",
        help="from scratch: retrain and re-evaluate even where finished runs and saved planes exist",
    )
    p.add_argument("--root", default="results", help="where results/NAME go (default results)")
    a = p.parse_args(argv)
    names = list(_report.ORDER)
    if a.only:
        wanted = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"error: --only {','.join(unknown)}: unknown experiment; valid: {', '.join(names)}", file=sys.stderr)
            raise SystemExit(2)
        names = [n for n in names if n in wanted]
    try:
        times = run_all(names, a.root, quick=a.quick, force=a.force)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    io.atomic_write_json(
        Path(a.root) / ("all_quick.json" if a.quick else "all.json"),
        {"experiments": names, "seconds": times, "quick": a.quick},
    )
    if not a.quick:
        _report.main(a.root)
    total = times["total_seconds"]
    print(f"all: {len(names)} experiment(s) in {total:.0f} s ({total / 60:.1f} min)")
    return times


if __name__ == "__main__":
    main()
