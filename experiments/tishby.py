"""Shwartz-Ziv & Tishby's information plane, end to end.

    python -m experiments.tishby               # 8000 epochs, 274 log-spaced checkpoints, 1 seed
    python -m experiments.tishby --seeds 8     # 8 networks in one vmapped call, mean plane
    python -m experiments.tishby --quick       # CI-sized: 300 epochs

12-10-7-5-4-3-2 tanh MLP with softmax output on var_u (random 80/20 split, seed 0), Adam 4e-4,
batch 256; I(X;T) and I(T;Y) of every layer by binning (30 bins on [-1, 1]) on all 4096 inputs.
Writes OUT/runs/seed_<s>/ (run directories), OUT/infoplane.npz, OUT/infoplane.png, OUT/mi_epoch.png,
OUT/loss.png and OUT/summary.json. A finished run directory with the same settings is reused.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np
from tqdm.auto import tqdm

from ibjax import adapters, checkpoints, data, infoplane, io, models, plotting, runs
from ibjax.train import TrainConfig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=1, help="networks trained in one vmapped call (default 1)")
    p.add_argument("--epochs", type=int, default=8000, help="training epochs (default 8000)")
    p.add_argument("--checkpoints", type=int, default=400, help="K of the IDNNs log-spaced schedule (default 400 -> 274 epochs)")
    p.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    p.add_argument("--lr", type=float, default=4e-4, help="Adam learning rate (default 4e-4)")
    p.add_argument("--batch-size", type=int, default=256, help="minibatch size; 0 = full batch (default 256)")
    p.add_argument("--split", default="random", choices=data.SPLITS, help="train/test split (default random 80/20)")
    p.add_argument("--n-bins", type=int, default=30, help="bins on [-1, 1] (default 30)")
    p.add_argument("--data", default=None, help="path to var_u.mat (default: search path, else download)")
    p.add_argument("--out", default=None, help="output directory (default results/tishby, or results/tishby_quick)")
    p.add_argument("--force", action="store_true", help="retrain even if finished run directories exist")
    p.add_argument("--quick", action="store_true", help="300 epochs, 60-point schedule: a smoke test")
    a = p.parse_args(argv)
    if a.quick:
        a.epochs, a.checkpoints = 300, 60
    if a.seeds < 1:
        p.error(f"--seeds must be >= 1, got {a.seeds}")
    if a.n_bins < 2:
        p.error(f"--n-bins must be >= 2, got {a.n_bins}")
    a.out = Path(a.out or ("results/tishby_quick" if a.quick else "results/tishby"))
    return a


def main(argv=None) -> dict:
    a = parse_args(argv)
    ds = data.szt_12bit(a.data)
    print(f"dataset: {ds.name} ({ds.source})")
    cfg = TrainConfig(activation=a.activation, learning_rate=a.lr, batch_size=a.batch_size,
                      n_epochs=a.epochs, schedule=f"log:{a.checkpoints}")
    seeds = list(range(a.seeds))
    dirs, t_train = runs.train_and_save(cfg, ds, a.split, 0, seeds, a.out / "runs", force=a.force)

    t0 = time.perf_counter()
    model = models.from_config(cfg.model_config())
    settings = adapters.resolve("binning", {"n_bins": a.n_bins}, n=len(ds.y), n_classes=ds.n_classes)
    loaded = [checkpoints.load_run(d) for d in dirs]  # file I/O: one run directory at a time
    params_SE = jax.tree.map(lambda *a: np.concatenate(a), *[r.params for r in loaded])
    epochs_SE = np.concatenate([r.epochs for r in loaded])  # seeds x epochs as one batch axis
    vals = infoplane.evaluate_params(infoplane.ApplyFns(model.apply), params_SE, epochs_SE, ds.x, ds.y,
                                     estimator="binning", settings=settings,
                                     progress=lambda it: tqdm(it, desc="binning", leave=False))
    t_est = time.perf_counter() - t0
    epochs = loaded[0].epochs
    i_xt = vals["i_xt"].reshape(len(dirs), len(epochs), -1)  # S x E x L
    i_ty = vals["i_ty"].reshape(len(dirs), len(epochs), -1)
    metrics = [r.metrics for r in loaded]

    a.out.mkdir(parents=True, exist_ok=True)
    io.atomic_save_npz(a.out / "infoplane.npz", dict(epochs_E=epochs, i_xt_SxExL=i_xt, i_ty_SxExL=i_ty,
                                                     seeds_S=np.asarray(seeds), n_bins=a.n_bins))
    title = f"{ds.name}, {a.activation}, binning {a.n_bins} bins, mean of {len(seeds)} seed(s)"
    fig = plotting.info_plane(epochs, i_xt.mean(0), i_ty.mean(0), title=title).figure
    plotting.save(fig, a.out / "infoplane.png")
    plotting.save(plotting.mi_vs_epoch(epochs, i_xt.mean(0), i_ty.mean(0)), a.out / "mi_epoch.png")
    stacked = {k: np.stack([m[k] for m in metrics]) for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
    plotting.save(plotting.loss_curves(stacked), a.out / "loss.png")

    summary = dict(
        dataset=ds.name, dataset_source=ds.source, config=cfg.to_dict(), seeds=seeds, split=a.split,
        n_bins=a.n_bins, n_checkpoints=len(epochs), run_dirs=[str(d) for d in dirs],
        final_train_acc=[float(m["train_acc"][-1]) for m in metrics],
        final_test_acc=[float(m["test_acc"][-1]) for m in metrics],
        train_seconds=round(t_train, 2), estimate_seconds=round(t_est, 2), backend=jax.default_backend(),
        i_xt_first_layer_mean=float(i_xt[:, :, 0].mean()),
    )
    io.atomic_write_json(a.out / "summary.json", summary)
    print(f"final accuracy: train {np.mean(summary['final_train_acc']):.4f}, test {np.mean(summary['final_test_acc']):.4f}")
    print(f"time: training {t_train:.1f} s, estimating {t_est:.1f} s ({len(epochs)} epochs x {i_xt.shape[-1]} layers x {len(seeds)} seed(s))")
    print(f"wrote {a.out}/infoplane.png, loss.png, mi_epoch.png, infoplane.npz, summary.json")
    return summary


if __name__ == "__main__":
    main()
