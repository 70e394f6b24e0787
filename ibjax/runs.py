"""Train S seeds in one vmapped call and write one run directory per seed.

Rerun semantics: a run directory that finished writing (``complete.json``) with identical settings
is reused, not retrained; any other (interrupted, or made with other settings) is retrained from
scratch, which is deterministic given the seed, and its files are replaced atomically.
``force=True`` always retrains.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from ibjax import checkpoints, data as data_mod
from ibjax.train import TrainConfig, make_train


def data_config(ds: data_mod.Dataset, split: str, split_seed: int, train_frac: float = 0.8) -> dict:
    return dict(name=ds.name, source=ds.source, split=split, split_seed=split_seed, train_frac=train_frac,
                n=int(len(ds.y)), n_classes=ds.n_classes)


def run_config(cfg: TrainConfig, data_cfg: dict, seed: int) -> dict:
    return {"train": cfg.to_dict(), "model": cfg.model_config(), "data": data_cfg, "seed": int(seed)}


def train_seeds(cfg: TrainConfig, split: data_mod.Split, seeds, *, log=print):
    """Train every seed in one ``jax.vmap``'d, jitted call; returns host arrays and seconds taken."""
    train = jax.jit(jax.vmap(make_train(cfg, split)))
    keys = jax.vmap(jax.random.key)(np.asarray(seeds, dtype=np.uint32))
    t0 = time.perf_counter()
    out = jax.block_until_ready(train(keys))
    seconds = time.perf_counter() - t0
    log(f"trained {len(seeds)} seed(s) x {cfg.n_epochs} epochs in {seconds:.1f} s (compile included)")
    return jax.tree.map(np.asarray, out), seconds


def train_and_save(cfg: TrainConfig, ds: data_mod.Dataset, split: str, split_seed: int, seeds, out_root,
                   *, force: bool = False, log=print) -> tuple[list[Path], float]:
    """Train (or reuse) one run directory per seed under ``out_root/seed_<s>``; returns the
    directories and the training seconds (0 when every run was reused)."""
    out_root = Path(out_root)
    dcfg = data_config(ds, split, split_seed)
    configs = [run_config(cfg, dcfg, s) for s in seeds]
    dirs = [out_root / f"seed_{s}" for s in seeds]
    if not force and all(checkpoints.is_complete(d, c) for d, c in zip(dirs, configs)):
        log(f"reusing {len(dirs)} finished run directories under {out_root} (pass --force to retrain)")
        return dirs, 0.0
    sp = data_mod.split(ds, split, seed=split_seed)
    out, seconds = train_seeds(cfg, sp, seeds, log=log)
    for i, (d, c) in enumerate(zip(dirs, configs)):
        params_i = jax.tree.map(lambda a: a[i], out["params"])
        metrics_i = {k: v[i] for k, v in out["metrics"].items()}
        checkpoints.write_run(d, c, out["epochs"][i], params_i, metrics_i,
                              progress=lambda it: tqdm(it, desc=f"writing {d.name}", leave=False))
    return dirs, seconds
