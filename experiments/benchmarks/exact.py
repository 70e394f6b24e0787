"""Exact counting on a quantized default run: accuracy of quantization-aware training, and speed.

    python -m experiments.benchmarks.exact            # szt_12bit, 12-10-7-5-4-3-2 tanh, 8000 epochs, 5 seeds
    python -m experiments.benchmarks.exact --quick    # 300 epochs, 2 seeds (a smoke run)

Trains the default run (``RunConfig(data=DataConfig(name="szt_12bit"))``, as experiments/tishby.py)
in float and with 8-bit activations (``model.quant_bits=8``) and reports their final train/test
accuracies; then evaluates the exact plane of the 8-bit run (seed 0, every kept epoch x every
layer) in one batched ``pipeline.evaluate_arrays`` call, and binning (30 bins) on the same
activations, both timed without compilation (the call is made twice). Writes
results/benchmarks/exact.json (exact_quick.json with --quick); runs go under OUT/runs/exact.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np

from ibjax import checkpoints, io, pipeline, runs
from ibjax.config import DataConfig, RunConfig, with_model

DEFAULT = RunConfig(data=DataConfig(name="szt_12bit"))


def timed_plane(model, params, epochs, ds, estimator, options) -> tuple[float, float, object]:
    """(seconds with compile, seconds without, plane) of one batched call over every epoch and layer."""
    call = lambda: pipeline.evaluate_arrays(
        model, params, epochs, ds.x, ds.y, estimator, options, progress=False, log=lambda *_: None
    )
    t0 = time.perf_counter()
    call()
    t1 = time.perf_counter()
    plane = call()
    return t1 - t0, time.perf_counter() - t1, plane


def accuracies(dirs) -> dict:
    m = [checkpoints.load_metrics(d) for d in dirs]
    acc = {k: np.array([float(x[k][-1]) for x in m]) for k in ("train_acc", "test_acc")}
    return {
        k: {
            "mean": float(v.mean()),
            "se": float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0,
            "per_seed": v.tolist(),
        }
        for k, v in acc.items()
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="300 epochs, 2 seeds")
    p.add_argument("--out", default="results/benchmarks")
    a = p.parse_args(argv)
    runs.use_cpu_cores()
    base = DEFAULT.replace(**{"train.n_epochs": 300, "train.schedule": "log:40"}) if a.quick else DEFAULT
    seeds = range(2 if a.quick else 5)
    root = Path(a.out) / "runs" / ("exact_quick" if a.quick else "exact")
    result = {
        "backend": jax.default_backend(),
        "devices": jax.device_count(),
        "quick": a.quick,
        "n_epochs": base.train.n_epochs,
        "seeds": len(seeds),
        "accuracy": {},
    }
    dirs = {}
    for name, bits in (("float", 0), ("8-bit", 8)):
        cfg = with_model(base, quant_bits=bits)
        t0 = time.perf_counter()
        dirs[name] = pipeline.train_or_reuse(cfg, seeds, root / name.replace("-", ""), log=print)
        result["accuracy"][name] = {**accuracies(dirs[name]), "train_or_reuse_s": time.perf_counter() - t0}
    run = checkpoints.load_run(dirs["8-bit"][0])
    cfg = RunConfig.from_dict(run.config)
    model, ds = cfg.model.build(), runs.load_data(cfg)
    params = jax.tree.map(lambda x: np.asarray(x)[None], run.params)  # 1 run x E epochs
    n_items = len(run.epochs) * model.n_layers
    for name, est, options in (("exact", "exact", {"levels": 256}), ("binning", "binning", {"n_bins": 30})):
        with_compile, without, plane = timed_plane(model, params, run.epochs, ds, est, options)
        result[name] = {
            "options": options,
            "epochs": len(run.epochs),
            "layers": model.n_layers,
            "seconds_with_compile": with_compile,
            "seconds": without,
            "ms_per_epoch_layer": 1e3 * without / n_items,
            "final_i_xt": plane.i_xt[0, -1].tolist(),
            "final_i_ty": plane.i_ty[0, -1].tolist(),
        }
        print(
            f"{name}: {len(run.epochs)} epochs x {model.n_layers} layers in {without:.2f} s "
            f"({1e3 * without / n_items:.2f} ms per (epoch, layer)); with compile {with_compile:.2f} s"
        )
    for k, v in result["accuracy"].items():
        print(
            f"{k}: train acc {v['train_acc']['mean']:.4f} +- {v['train_acc']['se']:.4f}, "
            f"test acc {v['test_acc']['mean']:.4f} +- {v['test_acc']['se']:.4f}"
        )
    out = Path(a.out) / ("exact_quick.json" if a.quick else "exact.json")
    io.atomic_write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
