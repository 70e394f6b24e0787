"""The shared experiment harness: command line from a config dataclass, files, summary, one line out.

An experiment module defines a frozen ``Config`` dataclass (fields may be nested dataclasses such as
``RunConfig``), ``QUICK`` (dotted overrides for ``--quick``) and

    run(cfg, out, *, force) -> dict        # planes, metrics, ...: no prints but progress, no plots
    figures(results, cfg, out) -> list     # the figure paths
    claims(results, cfg) -> list[dict]     # ibjax.claims.entry(...): {claim, source, measured, agrees, rule, ...}

and calls ``harness.main(NAME, Config, QUICK, run, figures, claims, argv)``. The command line:
``--set a.b=VALUE`` (repeatable, any field; typed by the field's current value), ``--seeds N``,
``--quick``, ``--out DIR`` (default results/NAME, or results/NAME_quick), ``--force`` (retrain and
re-evaluate: no finished run directory or saved plane is reused).
It writes OUT/config.json and OUT/summary.json (claims, timings, versions, files) and prints where,
holding OUT/.lock meanwhile: a second run into the same OUT stops at once with a one-line error
naming the first (pid, command, since when).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from experiments._settings import (  # noqa: F401  (typed settings: the studies use them as harness.*)
    Invalid,
    Settings,
    activation,
    activations,
    distinct,
    each,
    epochs,
    estimator,
    integer,
    length,
    member_of,
    number,
    one_of,
    option,
    options,
    setting,
    validate,
    values_of,
    where,
)
from ibjax import io
from ibjax.claims import mean_se  # noqa: F401  (the studies' harness.mean_se)
from ibjax.runs import use_cpu_cores, versions
from ibjax.timing import compile_clock, phase_clock


def _fields(obj, prefix="") -> dict:
    """Every settable dotted field of a (nested) dataclass -> its current value."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            out.update(_fields(v, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = v
    return out


def parse_value(key: str, text: str, current):
    """A ``--set`` value typed like the field's current value."""
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            if not text.strip():
                return ()
            items = [t.strip() for t in text.strip("()[]").split(",") if t.strip()]
            kinds = {type(c) for c in current}
            typ = kinds.pop() if len(kinds) == 1 else str
            return tuple(typ(t) if typ in (int, float, str) else t for t in items)
        if current is None:
            return None if text.lower() == "none" else json.loads(text) if text[:1].isdigit() else text
        return text
    except ValueError:
        raise ValueError(f"--set {key}={text!r}: expected a value of type {type(current).__name__}") from None


def apply_settings(cfg, settings: dict):
    """A copy of ``cfg`` with dotted settings replaced (validation runs in the dataclasses)."""
    valid = _fields(cfg)
    for key in settings:
        if key not in valid:
            raise ValueError(f"--set {key}: unknown setting; valid: {sorted(valid)}")
    return _replace(cfg, settings)


def _replace(obj, settings, prefix=""):
    changes = {}
    for f in dataclasses.fields(obj):
        name = f"{prefix}{f.name}"
        v = getattr(obj, f.name)
        if name in settings:
            changes[f.name] = settings[name]
        elif dataclasses.is_dataclass(v) and any(k.startswith(name + ".") for k in settings):
            changes[f.name] = _replace(v, settings, name + ".")
    return dataclasses.replace(obj, **changes) if changes else obj


def parse_args(name: str, cfg0, quick: dict, argv=None):
    module = sys.modules.get(f"experiments.{name}") or sys.modules.get("__main__")
    p = argparse.ArgumentParser(
        prog=f"python -m experiments.{name}",
        description=getattr(module, "__doc__", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a setting, e.g. run.train.learning_rate=1e-3 (repeatable); keys: "
        + ", ".join(sorted(_fields(cfg0))),
    )
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (one vmapped axis)")
    p.add_argument(
        "--quick", action="store_true", help="a CI-sized run: " + ", ".join(f"{k}={v}" for k, v in quick.items())
    )
    p.add_argument(
        "--memory-gb",
        type=float,
        default=None,
        help="memory budget of one chunk of evaluation (default: $IBJAX_MEMORY_GB, else a quarter of the free memory)",
    )
    p.add_argument("--out", default=None, help=f"output directory (default results/{name}, or results/{name}_quick)")
    p.add_argument(
        "--force",
        action="store_true",
        help="retrain and re-evaluate even where finished run directories and saved planes exist",
    )
    return p.parse_args(argv)


def build_config(cfg0, quick: dict, a, log=print):
    """Defaults, then --quick, then --set and --seeds (explicit settings win, and say so)."""
    fields = _fields(cfg0)
    explicit = {}
    for item in a.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        if key not in fields:
            raise ValueError(f"--set {key}: unknown setting; valid: {sorted(fields)}")
        explicit[key] = parse_value(key, text, fields[key])
    if a.seeds is not None:
        if "seeds" not in fields:
            raise ValueError("--seeds: this experiment has no seeds setting")
        if a.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {a.seeds}")
        explicit["seeds"] = a.seeds
    settings = dict(quick) if a.quick else {}
    for k, v in explicit.items():
        if k in settings and settings[k] != v:
            log(f"note: --set {k}={v} overrides --quick's {k}={settings[k]}")
    settings.update(explicit)
    return apply_settings(cfg0, settings), settings


def main(name: str, config_cls, quick: dict, run, figures, claims, argv=None) -> dict:
    """Run an experiment from the command line; errors are one line naming the option (exit 2)."""
    use_cpu_cores()  # before any JAX computation: seeds and items shard over the cores
    cfg0 = config_cls()
    a = parse_args(name, cfg0, quick, argv)
    try:
        return _main(name, cfg0, quick, run, figures, claims, a)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:  # a full disk, a path too long: one line; every write is atomic, nothing half-written
        print(f"error: {io.os_error_line(e)}", file=sys.stderr)
        raise SystemExit(2) from None


def _main(name, cfg0, quick, run, figures, claims, a) -> dict:
    cfg, settings = build_config(cfg0, quick, a)
    if a.memory_gb is not None:  # the engine's default budget for every evaluation of this run
        os.environ[io.ENV_MEMORY] = str(io.memory_budget_gb(a.memory_gb))
    out = Path(a.out or (f"results/{name}_quick" if a.quick else f"results/{name}"))
    io.check_out_dir(out)
    with io.dir_lock(out, what=f"experiment {name}"):  # a second run into the same --out is refused, naming this one
        return _write(name, cfg, settings, run, figures, claims, a, out)


def _write(name, cfg, settings, run, figures, claims, a, out) -> dict:
    if isinstance(cfg, Settings):
        validate(cfg)  # again: a config changed around its dataclass is refused before anything is trained
    io.atomic_write_json(
        out / "config.json",
        {"experiment": name, "config": _fields(cfg), "set": settings, "quick": a.quick, "versions": versions()},
    )
    t0 = time.perf_counter()
    with compile_clock() as compiled, phase_clock() as phases:  # --force is passed: the study hands it to
        results = run(cfg, out, force=a.force)  # every training (retrain) and evaluation (recompute) it calls
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    paths = [Path(p) for p in figures(results, cfg, out)]
    checked = claims(results, cfg)
    plot = time.perf_counter() - t1
    timing = split_time(seconds, compiled, phases, plot)
    for c in checked:  # every verdict from ibjax.claims: its rule named, and why when undecided
        missing = {"claim", "source", "measured", "agrees", "rule"} - set(c)
        if missing:
            raise ValueError(f"claim {c.get('claim')!r} lacks {sorted(missing)} (build it with ibjax.claims.entry)")
        if c["agrees"] is None and not c.get("reason"):
            raise ValueError(f"claim {c['claim']!r} is undecided without a reason")
    files = sorted(
        {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not _hidden(p, out)} | {"summary.json"}
    )  # (summary.json itself is written below: listed on the first run too)
    summary = {
        "experiment": name,
        "command": f"python -m experiments.{name} " + " ".join(_argv(a)),
        "seconds": round(seconds, 1),
        "timing": timing,
        "claims": checked,
        "config": _fields(cfg),
        "versions": versions(),
        **results.get("summary", {}),
        "files": files,
    }
    saved = out / "summary.json"  # a rerun that reproduced every number, its time split the same way, keeps it
    if _same_results(saved, summary):
        print(f"summary.json: same results as the saved one; kept it (this run took {seconds:.0f} s)")
    else:
        io.atomic_write_json(out / "summary.json", summary)
    agree = sum(c["agrees"] is True for c in checked)
    n_runs = len(list((out / "runs").rglob("complete.json")))
    print(
        f"{name}: {len(checked)} claim(s) checked, {agree} agree; {seconds:.0f} s; data: {summary.get('dataset', '?')}"
    )
    print(f"runs: {n_runs} run directories under {out / 'runs'}")
    print(
        f"wrote {out}/summary.json, {out}/config.json and {len(paths)} figure(s): " + ", ".join(p.name for p in paths)
    )
    return summary


def split_time(seconds: float, compiled: dict, phases: dict, plot: float) -> dict:
    """The run's wall seconds as load (runs, data, saved planes) / compile (tracing, lowering, XLA) /
    compute (training and estimation: the rest) / write (run directories, planes, JSON), and the
    figures and claims after it as plot."""
    load, write, comp = phases.get("load", 0.0), phases.get("write", 0.0), compiled["seconds"]
    return {
        "load [s]": round(load, 1),
        "compile [s]": round(comp, 1),
        "compute [s]": round(max(0.0, seconds - comp - load - write), 1),
        "write [s]": round(write, 1),
        "plot [s]": round(plot, 1),
        "programs compiled": compiled["programs"],
        **{k: int(phases.get(k, 0)) for k in TALLIES},  # what the run did from scratch and what it found done
    }


TALLIES = ("runs trained", "runs reused", "planes computed", "planes reused")


TIMING_KEYS = ("seconds", "timing")  # how long a run took: not a result (nor is any *_seconds)


def _same_results(path: Path, summary: dict) -> bool:
    """Whether the saved summary equals ``summary`` in everything but its timings, and splits its time
    the same way (a summary with an older split is rewritten)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    plain = lambda s: _untimed(json.loads(json.dumps(s, default=io._json_default)))
    same_split = set(old.get("timing") or {}) == set(summary.get("timing") or {})
    return same_split and plain(old) == plain(summary)


def _untimed(v):
    """``v`` without its timings: TIMING_KEYS and any ``*_seconds`` key, at any depth."""
    if isinstance(v, dict):
        return {k: _untimed(x) for k, x in v.items() if k not in TIMING_KEYS and not str(k).endswith("_seconds")}
    return [_untimed(x) for x in v] if isinstance(v, list) else v


def _hidden(p: Path, root: Path) -> bool:
    return any(part.startswith(".") or part == "runs" for part in p.relative_to(root).parts)


def _argv(a) -> list[str]:
    args = [f"--set {s}" for s in a.set]
    args += ([f"--seeds {a.seeds}"] if a.seeds else []) + (["--quick"] if a.quick else [])
    args += [f"--memory-gb {a.memory_gb:g}"] if a.memory_gb is not None else []
    return args + ([f"--out {a.out}"] if a.out else [])


def save_arrays(path, arrays: dict) -> None:
    """A study's own arrays as an npz, written atomically (an interrupted run leaves the old file whole)."""
    io.atomic_save_npz(path, arrays)


def save_text(path, text: str) -> None:
    """A study's own text file (a table), written atomically."""
    io.atomic_write_bytes(path, text.encode())
