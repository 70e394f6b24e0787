"""Evaluate the information plane of run directories.

    python -m ibjax.evaluate RUN_DIR [RUN_DIR ...] --estimator kde --noise-var 0.1
    python -m ibjax.evaluate results/tishby/runs/seed_* --estimator binning --epochs log:50
    python -m ibjax.evaluate RUN_DIR --estimator binning --epochs delta:0.02:exact

Writes ``infoplane_<estimator>.npz`` (epochs_E, i_xt_RxExL, i_ty_RxExL, ... per run R, plus the mean
over runs) and ``infoplane_<estimator>.png`` into the run directory (one run) or ``--out``. Finished
chunks are cached under ``<out>/.cache/``: an interrupted evaluation resumes where it stopped, and a
finished one is not recomputed unless ``--recompute`` is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from ibjax import adapters, checkpoints, data, infoplane, io, models, plotting, schedules, skipping

OPTIONS = {  # CLI flag -> (estimator, option name, type, help)
    "--n-bins": ("binning", "n_bins", int, "bins on --value-range (default 30)"),
    "--bin-size": ("binning", "bin_size", float, "Saxe's floor(t / bin_size) grid instead of --n-bins"),
    "--value-range": ("binning", "value_range", float, "two numbers, the binning range (default -1 1)"),
    "--noise-var": ("kde", "noise_var", float, "KDE noise variance (default 0.1)"),
    "--k": ("knn", "k", int, "neighbours for KSG (default 3)"),
    "--metric": ("knn", "metric", str, "chebyshev (default) or euclidean"),
    "--U": ("edge", "U", float, "EDGE cap on pointwise terms (default 10)"),
    "--L": ("edge", "L", int, "EDGE ensemble size (default 10)"),
    "--normalized": ("hsic", "normalized", int, "1 (default): normalised HSIC; 0: raw"),
    "--sigma": ("smoothed", "sigma", float, "noise std of T = S + Z (default 0.1)"),
    "--n-c": ("smoothed", "n_c", int, "noisy passes per input for conditional terms (default 16)"),
    "--n-mc": ("smoothed", "n_mc", int, "noise draws per centre (default 1)"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m ibjax.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (same architecture and data)")
    p.add_argument("--estimator", required=True, choices=sorted(adapters.ESTIMATORS), help="which estimator")
    for flag, (est, _, typ, text) in OPTIONS.items():
        p.add_argument(flag, type=typ, default=None, nargs=2 if flag == "--value-range" else None,
                       help=f"[{est}] {text}")
    p.add_argument("--epochs", default="all",
                   help="all | every:N | log:K (of the kept epochs) | list:E1,E2,... | delta:D[:exact|approx] (default all)")
    p.add_argument("--memory-gb", type=float, default=2.0, help="memory budget per chunk of epochs (default 2.0)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed for random estimators (default 0)")
    p.add_argument("--out", default=None, help="output directory (default: the run directory when there is one)")
    p.add_argument("--compare-full", action="store_true",
                   help="with delta:...: also evaluate every kept epoch and report the max interpolation error")
    p.add_argument("--recompute", action="store_true", help="ignore cached chunks and finished results")
    p.add_argument("--data", default=None, help="dataset path (default: the loaders' search path)")
    return p.parse_args(argv)


def estimator_options(a) -> dict:
    """The options given on the command line; an option of another estimator is an error."""
    opts = {}
    for flag, (est, name, _, _) in OPTIONS.items():
        v = getattr(a, flag.lstrip("-").replace("-", "_"))
        if v is None:
            continue
        if est != a.estimator:
            raise ValueError(f"option {flag} belongs to estimator {est!r}, not {a.estimator!r}")
        opts[name] = v
    return opts


def load_dataset(config: dict, path=None) -> data.Dataset:
    """The dataset a run was trained on (MI is computed on all its samples)."""
    name = config["data"]["name"]
    if name == "var_u":
        return data.var_u(path)
    if name == "generated_12bit":
        return data.generated_12bit()
    if name == "single_neuron":
        return data.single_neuron()
    if name.startswith("mnist_"):
        return data.mnist(name.split("_", 1)[1], path=path, flat=config["model"].get("kind", "mlp") == "mlp")
    raise ValueError(f"run config names dataset {name!r}, which ibjax cannot load")


def select_epochs(spec: str, kept: np.ndarray) -> np.ndarray | None:
    """Positions of the kept epochs to evaluate (None for the adaptive ``delta`` strategies)."""
    kind, _, arg = spec.partition(":")
    if kind == "delta":
        return None
    if kind == "all" and not arg:
        return np.arange(len(kept))
    if kind == "list":
        want = np.array([_int(spec, v) for v in arg.split(",")])
        missing = np.setdiff1d(want, kept)
        if missing.size:
            raise ValueError(f"--epochs: epochs {missing[:10].tolist()} are not present in the run; "
                             f"kept epochs run {kept.min()}..{kept.max()} ({len(kept)} kept)")
        return np.searchsorted(kept, np.unique(want))
    if kind in ("every", "log"):
        return (schedules.every if kind == "every" else schedules.log_spaced)(len(kept), _int(spec, arg))
    raise ValueError(f"--epochs must be all, every:N, log:K, list:E1,E2 or delta:D[:exact|approx], got {spec!r}")


def _int(spec, arg):
    try:
        return int(arg)
    except ValueError:
        raise ValueError(f"--epochs {spec!r}: {arg!r} is not an integer") from None


def parse_delta(spec: str) -> tuple[float, str]:
    _, _, rest = spec.partition(":")
    d, _, how = rest.partition(":")
    how = how or "exact"
    try:
        delta = float(d)
    except ValueError:
        raise ValueError(f"--epochs {spec!r}: delta {d!r} is not a number") from None
    if not delta > 0 or how not in ("exact", "approx"):
        raise ValueError(f"--epochs {spec!r}: need delta > 0 and exact|approx")
    return delta, how


def load_runs(run_dirs):
    runs = []
    for d in run_dirs:
        d = Path(d)
        if not (d / "config.json").is_file():
            raise FileNotFoundError(f"RUN_DIR {str(d)!r} is not a run directory (no config.json)")
        runs.append(checkpoints.load_run(d))
    first = runs[0]
    for d, r in zip(run_dirs, runs):
        if r.config["model"] != first.config["model"] or r.config["data"]["name"] != first.config["data"]["name"]:
            raise ValueError(f"RUN_DIR {d} has a different model or dataset than {run_dirs[0]}")
        if not np.array_equal(r.epochs, first.epochs):
            raise ValueError(f"RUN_DIR {d} kept different epochs than {run_dirs[0]}")
    return runs


def main(argv=None) -> dict:
    a = parse_args(argv)
    try:
        return run(a)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def run(a) -> dict:
    runs = load_runs(a.run_dirs)
    cfg = runs[0].config
    ds = load_dataset(cfg, a.data)
    settings = adapters.resolve(a.estimator, estimator_options(a), n=len(ds.y), n_classes=ds.n_classes)
    kept = runs[0].epochs
    positions = select_epochs(a.epochs, kept)
    if a.memory_gb <= 0:
        raise ValueError(f"--memory-gb must be > 0, got {a.memory_gb}")
    out_dir = Path(a.out) if a.out else Path(a.run_dirs[0]) if len(a.run_dirs) == 1 else None
    if out_dir is None:
        raise ValueError("several RUN_DIRs need --out")
    result_path = out_dir / f"infoplane_{a.estimator}.npz"
    if result_path.is_file() and not a.recompute:
        print(f"{result_path} exists; pass --recompute to evaluate again")
        with np.load(result_path) as z:
            return {k: z[k] for k in z.files}
    m = models.from_config(cfg["model"])
    fns = infoplane.ApplyFns(m.apply, m.noisy_apply)
    key = jax.random.key(a.seed)
    t0 = time.perf_counter()
    values, report = [], {}
    for r in runs:  # run directories are separate files; each is one batched evaluation
        cache = out_dir / ".cache" / infoplane.cache_key(a.estimator, settings, r.config["run_id"], a.seed, len(ds.y))
        if a.recompute and cache.exists():
            shutil.rmtree(cache)
        evaluate = lambda pos, r=r, cache=cache: infoplane.evaluate_params(
            fns, jax.tree.map(lambda v: v[pos], r.params), kept[pos], ds.x, ds.y, estimator=a.estimator,
            settings=settings, key=key, memory_gb=a.memory_gb, cache_dir=cache,
            progress=lambda it: tqdm(it, desc=f"{a.estimator} {Path(r.config.get('run_id', ''))}", leave=False))
        if positions is not None:
            values.append(evaluate(positions))
            continue
        delta, how = parse_delta(a.epochs)
        res, values_r, h_x, h_y = adaptive(evaluate, kept, ds, delta, how)
        values.append(values_r)
        report = dict(strategy=how, delta=delta, n_evaluated=res.n_evaluated, n_total=res.n_total,
                      n_rounds=res.n_rounds, epochs_kept=res.epochs.tolist(), h_x=h_x, h_y=h_y)
        if a.compare_full:
            full = evaluate(np.arange(len(kept)))
            report["max_interp_error"] = skipping.max_interp_error(res, kept, full["i_xt"], full["i_ty"], h_x=h_x, h_y=h_y)
        positions = np.searchsorted(kept, res.epochs)
    seconds = time.perf_counter() - t0
    epochs = kept[positions]
    stacked = {f"{k}_RxExL": np.stack([v[k] for v in values]) for k in values[0]}
    means = {f"{k}_mean_ExL": np.mean([v[k] for v in values], axis=0) for k in values[0]}
    arrays = dict(epochs_E=epochs, **stacked, **means,
                  settings=np.array(repr(sorted(settings.items()))), estimator=np.array(a.estimator),
                  run_dirs=np.array([str(d) for d in a.run_dirs]))
    io.atomic_save_npz(result_path, arrays)
    units = "HSIC" if a.estimator == "hsic" else "bits"
    title = f"{a.estimator} {dict(settings)}" if len(str(settings)) < 60 else a.estimator
    fig = plotting.info_plane(epochs, stacked["i_xt_RxExL"].mean(0), stacked["i_ty_RxExL"].mean(0), title=title, units=units).figure
    plotting.save(fig, out_dir / f"infoplane_{a.estimator}.png")
    if report:
        io.atomic_write_json(out_dir / f"skipping_{a.estimator}.json", report)
        err = report.get("max_interp_error")
        print(f"{report['strategy']} delta-skip: evaluated {report['n_evaluated']} of {report['n_total']} epochs "
              f"in {report['n_rounds']} rounds, kept {len(report['epochs_kept'])}"
              + ("" if err is None else f"; max interpolation error {err['norm']:.4f} (normalised)"))
    mean_xt, mean_ty = stacked["i_xt_RxExL"].mean(0), stacked["i_ty_RxExL"].mean(0)
    print(f"{a.estimator}: {len(runs)} run(s) x {len(epochs)} epochs x {mean_xt.shape[1]} layers in {seconds:.1f} s")
    print("last epoch, per layer: I(X;T) " + " ".join(f"{v:.3f}" for v in mean_xt[-1])
          + f" | I(T;Y) " + " ".join(f"{v:.3f}" for v in mean_ty[-1]) + f" [{units}]")
    print(f"wrote {result_path} and {result_path.with_suffix('.png')}")
    return arrays


def adaptive(evaluate, kept, ds, delta: float, how: str):
    """Run a delta-skip strategy over the kept epochs, each round one batched evaluation."""
    h_x = float(np.log2(len(np.unique(ds.x.reshape(len(ds.x), -1), axis=0))))
    h_y = float(-np.sum((p := np.bincount(ds.y) / len(ds.y))[p > 0] * np.log2(p[p > 0])))
    batch = lambda epochs_B: (lambda v: (v["i_xt"], v["i_ty"]))(evaluate(np.searchsorted(kept, epochs_B)))
    strategy = skipping.delta_skip_exact if how == "exact" else skipping.delta_skip_approx
    res = strategy(batch, kept, delta=delta, h_x=h_x, h_y=h_y)
    return res, evaluate(np.searchsorted(kept, res.epochs)), h_x, h_y


if __name__ == "__main__":
    main()
