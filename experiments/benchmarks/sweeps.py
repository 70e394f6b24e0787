"""Sweeps in one call vs one call per setting: KDE noise variances, and a learning-rate x seeds grid.

    python -m experiments.tishby                        # makes results/tishby/runs/seed_0 first
    python -m experiments.benchmarks.sweeps             # KDE over the tishby run; 4 x 8 grid, 1000 epochs
    python -m experiments.benchmarks.sweeps --quick     # a tiny fresh run (3 epochs, 3 noise variances), 12-6-4-2 grid, 20 epochs (CI)

(a) KDE (upper and lower bounds, I(X;T) and I(T;Y)) of every kept epoch and layer of ``--run-dir``
for 8 noise variances (logspace 1e-4 .. 1e-1): ONE ``pipeline.evaluate_runs(..., sweep={"noise_var":
[...]})`` call (the variance is a traced option: one compile, a leading settings axis) vs 8 separate
``evaluate_runs`` calls, both end to end (load, compile, estimate; nothing cached: ``out=None``) in this
process, the one call first. The max abs difference between the two results must be ~0.

(b) The default tishby network (12-10-7-5-4-3-2 tanh, Adam, batch 256, var_u 80/20 split) trained for
4 learning rates x 8 seeds = 32 runs: ONE ``jit(vmap(Trainer.train))`` call over the 32 (learning
rate, seed) pairs (the learning rate is a traced setting) vs 32 sequential calls of one
``jit(Trainer.train)`` (compiled once, by its first call). Times with compile (first call / first
pass) and without (a second grid call; the sequential runs 2..32 plus run 1 timed again), seed-epochs
per second, and the max abs difference of the kept and final params between grid and sequential runs.

Writes results/benchmarks/sweeps.json (sweeps_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from experiments.benchmarks import machine
from experiments.benchmarks.evaluate import quick_run
from experiments.benchmarks.training import QUICK, TISHBY, load_split
from ibjax import checkpoints, io, pipeline
from ibjax.config import RunConfig, expand_sweep
from ibjax.train import hyper, make_train, uses

NOISE_VARS = np.logspace(-4, -1, 8).tolist()
LEARNING_RATES = [2e-4, 4e-4, 8e-4, 1.6e-3]
N_SEEDS = 8


def _quiet(*_):
    pass


def kde_sweep(run_dir: Path, noise_vars, epochs: str = "all") -> dict:
    """One evaluate_runs call over all noise variances vs one call per variance."""
    common = dict(epochs=epochs, out=None, progress=False, log=_quiet)
    t0 = time.perf_counter()
    one = pipeline.evaluate_runs([run_dir], "kde", sweep={"noise_var": list(noise_vars)}, **common)
    one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    separate = [pipeline.evaluate_runs([run_dir], "kde", {"noise_var": v}, **common) for v in noise_vars]
    sep_s = time.perf_counter() - t0
    diff = {
        k: float(np.max(np.abs(one.values[k] - np.concatenate([p.values[k] for p in separate])))) for k in one.values
    }
    g, s, e, l = one.shape
    return dict(
        run_dir=str(run_dir),
        noise_vars=list(noise_vars),
        shape=[g, s, e, l],
        order="one call first",
        one_call_seconds=one_s,
        separate_calls_seconds=sep_s,
        speedup=sep_s / one_s,
        one_call_ms_per_value=1e3 * one_s / (g * s * e * l),
        separate_ms_per_value=1e3 * sep_s / (g * s * e * l),
        max_abs_diff=max(diff.values()),
        max_abs_diff_by_output=diff,
    )


def _block(tree):
    return jax.tree.map(np.asarray, jax.block_until_ready(tree))


def training_grid(base: RunConfig, learning_rates, n_seeds: int, n_epochs: int) -> dict:
    """A (learning rate x seeds) grid in one vmapped training call vs one jitted call per run."""
    base = base.replace(**{"train.n_epochs": n_epochs})
    cfgs = [g for g in expand_sweep(base, {"train.learning_rate": list(learning_rates)}) for _ in range(n_seeds)]
    seeds = [s for _ in learning_rates for s in range(n_seeds)]
    n_runs = len(cfgs)
    tr = make_train(base.model.build(), base.train, load_split(base), u=uses(cfgs))
    keys = jax.vmap(jax.random.key)(np.asarray(seeds, np.uint32))
    hp = hyper(cfgs)

    grid = jax.jit(jax.vmap(tr.train))
    t0 = time.perf_counter()
    out_grid = _block(grid(keys, hp))
    grid_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    _block(grid(keys, hp))
    grid_s = time.perf_counter() - t0

    single = jax.jit(tr.train)
    hps = [hyper(c) for c in cfgs]
    secs, outs = [], []
    for r in range(n_runs):
        t0 = time.perf_counter()
        outs.append(_block(single(keys[r], hps[r])))
        secs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    _block(single(keys[0], hps[0]))
    again = time.perf_counter() - t0
    seq_first, seq_s = sum(secs), again + sum(secs[1:])

    stacked = jax.tree.map(lambda *a: np.stack(a), *outs)
    diff = {
        what: float(
            max(np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(out_grid[what]), jax.tree.leaves(stacked[what])))
        )
        for what in ("params", "final_params")
    }
    seed_epochs = n_runs * n_epochs
    return dict(
        widths=list(base.model.widths),
        learning_rates=list(learning_rates),
        n_seeds=n_seeds,
        n_runs=n_runs,
        epochs=n_epochs,
        kept_epochs=len(tr.kept),
        order="grid first",
        grid=dict(
            first_call_seconds=grid_first,
            seconds=grid_s,
            seed_epochs_per_second=seed_epochs / grid_s,
            seed_epochs_per_second_with_compile=seed_epochs / grid_first,
        ),
        sequential=dict(
            seconds_with_compile=seq_first,
            seconds=seq_s,
            first_call_seconds=secs[0],
            seed_epochs_per_second=seed_epochs / seq_s,
            seed_epochs_per_second_with_compile=seed_epochs / seq_first,
        ),
        speedup=seq_s / grid_s,
        speedup_with_compile=seq_first / grid_first,
        max_abs_param_diff=max(diff.values()),
        max_abs_param_diff_by_kind=diff,
    )


def print_table(kde: dict, grid: dict) -> None:
    g, s, e, l = kde["shape"]
    print(f"KDE, {g} noise variances x {s} run x {e} epochs x {l} layers (compile included)")
    print(f"  {'one call':<22} {kde['one_call_seconds']:>8.2f} s")
    print(
        f"  {'separate calls':<22} {kde['separate_calls_seconds']:>8.2f} s   {kde['speedup']:.1f}x"
        f"   max |diff| {kde['max_abs_diff']:.2e}"
    )
    print(
        f"training, {len(grid['learning_rates'])} learning rates x {grid['n_seeds']} seeds x {grid['epochs']} epochs, "
        f"widths {'-'.join(map(str, grid['widths']))}"
    )
    print(f"  {'':<22} {'s+compile':>10} {'s':>9} {'seed-ep/s':>10}")
    for name in ("grid", "sequential"):
        r = grid[name]
        with_c = r["first_call_seconds"] if name == "grid" else r["seconds_with_compile"]
        print(
            f"  {name + (' (1 call)' if name == 'grid' else ' (32 calls)'):<22} {with_c:>10.2f} {r['seconds']:>9.2f} "
            f"{r['seed_epochs_per_second']:>10.1f}"
        )
    print(
        f"  speedup {grid['speedup']:.1f}x ({grid['speedup_with_compile']:.1f}x with compile); "
        f"max |param diff| {grid['max_abs_param_diff']:.2e}"
    )
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--run-dir",
        default="results/tishby/runs/seed_0",
        help="run directory for the KDE sweep (default: the tishby run)",
    )
    p.add_argument("--quick", action="store_true", help="a tiny freshly trained run, a 12-6-4-2 grid, 20 epochs (CI)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs of the grid (default 1000; quick 20)")
    p.add_argument(
        "--eval-epochs",
        default=None,
        help="kept epochs the KDE sweep evaluates, as in ibjax.evaluate --epochs (default all; quick log:3)",
    )
    p.add_argument("--out", default="results/benchmarks", help="output directory (default results/benchmarks)")
    a = p.parse_args(argv)
    n_epochs = a.epochs or (20 if a.quick else 1000)
    tmp = Path(tempfile.mkdtemp(prefix="ibjax_bench_"))
    try:
        run_dir = Path(a.run_dir)
        if a.quick:
            run_dir = quick_run(tmp / "runs")
        elif not checkpoints.is_complete(run_dir):
            raise SystemExit(f"{run_dir} is not a finished run directory: run `python -m experiments.tishby` first")
        noise_vars = NOISE_VARS[::3] if a.quick else NOISE_VARS  # quick: 3 of the 8 (each separate call compiles)
        kde = kde_sweep(run_dir, noise_vars, a.eval_epochs or ("log:3" if a.quick else "all"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    grid = training_grid(QUICK if a.quick else TISHBY, LEARNING_RATES, N_SEEDS, n_epochs)
    print_table(kde, grid)
    result = dict(kde_sweep=kde, training_grid=grid, **machine(), quick=a.quick)
    io.atomic_write_json(Path(a.out) / ("sweeps_quick.json" if a.quick else "sweeps.json"), result)
    return result


if __name__ == "__main__":
    main()
