"""Training and checkpoint speed on the default Tishby network.

    python -m experiments.benchmarks.training            # 1 and 50 seeds, 274-epoch checkpoint I/O
    python -m experiments.benchmarks.training --quick    # tiny sizes (CI): 12-6-4-2 net, 20 epochs, 1 and 2 seeds

Reports epochs per second (compile excluded: the first call compiles, the second is timed) for the
12-10-7-5-4-3-2 tanh net, Adam, batch 256 on var_u's 80/20 split (the default tishby ``RunConfig``,
seeds vmapped in one ``jit(vmap(Trainer.train))`` call, the seed axis sharded over one CPU device per
core; ``JAX_NUM_CPU_DEVICES=1`` measures a single device), and the time to write and load a 274-epoch
run directory. Writes results/benchmarks/training.json (training_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from ibjax import checkpoints, data, io, runs
from ibjax.config import DataConfig, MLPConfig, RunConfig
from ibjax.train import hyper, make_train, uses

TISHBY = RunConfig(data=DataConfig(name="szt_12bit"))  # experiments.tishby's default run
QUICK = dataclasses.replace(TISHBY, model=MLPConfig(widths=(12, 6, 4, 2)))  # compiles ~3x faster (CI)


def load_split(cfg: RunConfig) -> data.Split:
    ds = runs.load_data(cfg)
    return data.split(ds, cfg.data.split, seed=cfg.data.split_seed, train_frac=cfg.data.train_frac)


def time_training(split, seeds: int, n_epochs: int, cfg: RunConfig = TISHBY) -> dict:
    cfg = cfg.replace(**{"train.n_epochs": n_epochs})
    cfgs = [cfg] * seeds
    tr = make_train(cfg.model.build(), cfg.train, split, u=uses(cfgs))
    train = jax.jit(jax.vmap(tr.train))
    keys, hp = runs.shard_runs((jax.vmap(jax.random.key)(np.arange(seeds, dtype=np.uint32)), hyper(cfgs)))
    t0 = time.perf_counter()
    jax.block_until_ready(train(keys, hp))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(train(keys, hp))
    run_s = time.perf_counter() - t0
    return dict(
        seeds=seeds,
        epochs=n_epochs,
        devices=jax.device_count(),
        seconds=run_s,
        first_call_seconds=compile_s,
        epochs_per_second=n_epochs / run_s,
        seed_epochs_per_second=seeds * n_epochs / run_s,
    )


def time_checkpoints(n_kept: int, cfg: RunConfig = TISHBY) -> dict:
    """Write and load a run directory of ``n_kept`` epochs of ``cfg``'s network (initial params repeated)."""
    params = jax.tree.map(
        lambda a: np.repeat(np.asarray(a)[None], n_kept, axis=0), cfg.model.build().init(jax.random.key(0))
    )
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        checkpoints.write_run(
            d, runs.run_config(cfg, 0, 1, cfg.train.n_epochs), np.arange(n_kept), params, {"x": np.zeros(3)}
        )
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run = checkpoints.load_run(d)
        load_s = time.perf_counter() - t0
        assert len(run.epochs) == n_kept
    return dict(n_epochs=n_kept, write_seconds=write_s, load_seconds=load_s)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    p.add_argument("--epochs", type=int, default=1000, help="epochs per timed run (default 1000)")
    p.add_argument("--seeds", default=None, help="seed counts to time, comma-separated (default 1,50; --quick 1,2)")
    p.add_argument("--no-checkpoints", action="store_true", help="skip the checkpoint write/load timing")
    p.add_argument("--out", default="results/benchmarks", help="output directory (default results/benchmarks)")
    a = p.parse_args(argv)
    runs.use_cpu_cores()  # one device per core (JAX_NUM_CPU_DEVICES=1 measures one)
    split = load_split(TISHBY)
    cfg = QUICK if a.quick else TISHBY
    epochs, seed_counts, kept = (20, (1, 2), 10) if a.quick else (a.epochs, (1, 50), 274)
    if a.seeds:
        seed_counts = tuple(int(s) for s in a.seeds.split(","))
    rows = [time_training(split, s, epochs, cfg) for s in seed_counts]
    ck = None if a.no_checkpoints else time_checkpoints(kept, cfg)
    result = dict(
        training=rows,
        checkpoints=ck,
        widths=list(cfg.model.widths),
        backend=jax.default_backend(),
        cpu_count=os.cpu_count(),
        machine=platform.machine(),
        jax_version=jax.__version__,
        quick=a.quick,
    )
    print(f"{'seeds':>6} {'epochs':>7} {'s':>8} {'epochs/s':>10} {'seed-epochs/s':>14}")
    for r in rows:
        print(
            f"{r['seeds']:>6} {r['epochs']:>7} {r['seconds']:>8.2f} {r['epochs_per_second']:>10.1f} {r['seed_epochs_per_second']:>14.1f}"
        )
    if ck:
        print(
            f"checkpoints: write {ck['n_epochs']} epochs {ck['write_seconds']:.2f} s, load {ck['load_seconds']:.2f} s"
        )
    io.atomic_write_json(Path(a.out) / ("training_quick.json" if a.quick else "training.json"), result)
    return result


if __name__ == "__main__":
    main()
