"""Noshad, Zeng & Hero 2019 (Fig. 5): EDGE information planes of an MNIST MLP, tanh vs ReLU, with HSIC beside

Trains the 784-1024-20-20-20-10 MLP of Noshad et al. with tanh and with ReLU (Adam 3e-3, batch 128,
softmax cross-entropy), 3 seeds per activation as one vmapped call each, and measures I(X;T) and I(T;Y)
of the four hidden layers (and the softmax output) at every kept epoch with EDGE (the registry's
adapter: EDGE 4.4.1 defaults with the original study's U=20 for both terms, L=10) and with normalised
HSIC (Gaussian kernels, median heuristic), the student re-implementation's comparison. X and Y are
held-out samples, never trained on.

Data: the full MNIST (data mnist_train: 60k training images) when its files are present, else the
official 10k test split, split at random (seed 0) into 8000 training images and 2000 MI samples
(run.data.train_frac = 0.8); summary.json's "dataset" and "data_note" say which was used.

What the study used and what we use (to fit ~10 min on 2 CPU cores; the 1024-unit first layer on 784
inputs is the cost):

    original (EDGE repo, information_plane/main.py)       here
    60k training images, MI on 10k training images         8000 training / 2000 held-out MI samples
    20,000 Adam steps of batch 128 (~43 epochs)            30 epochs of batch 128 (~1,900 steps)
    MI at ~85 iterations, dense early                      16 log-spaced kept epochs (incl. epoch 0)
    23 seeds (paper: 20), averaged                         3 seeds, mean +- standard error
    init truncated normal std 0.1                          truncated normal std 1/sqrt(fan_in) (idnns)
    EDGE 4.2.0, I(X;T): U=20, gamma=(0.2, g_l),            the registry's EDGE (4.4.1 defaults, U=20 and
      g = (0.8, 1.0, 1.2, 1.8); I(T;Y): U=10, eps=0.2,       L=10 for both terms, gamma=(1, 1)): the adapter
      gamma=(1e-4, (0.4, 0.5, 0.6, 0.8)_l); L=10, 'range'    exposes no per-layer gamma (see NOTES.md)

A hidden layer compresses when its peak-to-final I(X;T) drop exceeds 10% of its peak by more than 2
standard errors over seeds, and does not when below 10% by more than 2 standard errors.

    python -m experiments.edge_mnist                 # 2 x 3 seeds x 30 epochs: about 10 min on 2 CPU cores
    python -m experiments.edge_mnist --seeds 20      # the paper's 20 networks per activation
    python -m experiments.edge_mnist --set run.train.n_epochs=45 --set mi_samples=1000
    python -m experiments.edge_mnist --quick         # CI-sized: 784-16-10, 2 seeds x 2 epochs, 100 MI samples
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from experiments import _harness as harness
from ibjax import checkpoints, data as data_mod, infoplane, io, pipeline, plotting, registry
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

COMPRESSION = 0.1  # a drop counts as compression above this fraction of the layer's peak I(X;T)
DATA_CHOICES = ("auto", "mnist_train", "mnist_test")
ESTIMATORS = ("edge", "hsic")
ORIGINAL_SETTINGS = {
    "source": "github.com/mrtnoshad/EDGE, information_plane/main.py (EDGE_4_2_0.py); Noshad, Zeng & Hero, "
              "ICASSP 2019, Sec. 5",
    "network": "784-1024-20-20-20-10, tanh (paper: tanh and ReLU), init truncated normal std 0.1, zero biases",
    "training": "Adam lr 0.003, batch 128, 20000 iterations on the 60k MNIST training images, cross-entropy x 100",
    "mi_samples": "the first 10000 MNIST training images",
    "repetitions": "23 (paper: 20), averaged",
    "I(X;T)": "EDGE(X, T_l, U=20, L_ensemble=10, gamma=[0.2, (0.8, 1.0, 1.2, 1.8)[l]], epsilon_vector='range')",
    "I(T;Y)": "EDGE(Y, T_l, U=10, L_ensemble=10, gamma=[1e-4, (0.4, 0.5, 0.6, 0.8)[l]], epsilon=[0.2, 0.2], "
              "epsilon_vector='range')",
}


def _default_run() -> RunConfig:
    return RunConfig(MLPConfig((784, 1024, 20, 20, 20, 10), activation="tanh", init="idnns"),
                     DataConfig(name="mnist_test", split="random", train_frac=0.8),
                     TrainConfig(optimizer="adam", learning_rate=3e-3, batch_size=128, n_epochs=30,
                                 schedule="log:16"))


@dataclass(frozen=True)
class Config:
    run: RunConfig = field(default_factory=_default_run)  # data.name is replaced by `data`'s choice
    contrast_activation: str = "relu"  # the second row: the same network with this activation
    seeds: int = 3
    data: str = "auto"  # auto: mnist_train when its files are present, else mnist_test
    mi_samples: int = 2000  # the first this many held-out samples are X (0: all of them)
    edge_U: float = 20.0  # EDGE cap on the pointwise terms (bits): the original's I(X;T) setting (> log2 N)
    edge_L: int = 10  # EDGE ensemble size
    edge_keys: int = 1  # p-stable projection keys averaged per estimate (the original draws one)
    memory_gb: float = 8.0  # the engine's budget per chunk (the EDGE memory model is conservative)
    epochs: str = "all"  # kept epochs evaluated with EDGE (pipeline.EPOCH_SPECS)
    hsic_epochs: str = "all"  # kept epochs evaluated with HSIC
    eval_seed: int = 0  # PRNG seed of the estimators (EDGE's p-stable projections)

    def __post_init__(self):
        check(self)


QUICK = {"seeds": 2, "run.train.n_epochs": 2, "run.train.schedule": "all", "mi_samples": 100,
         "run.model.widths": (784, 16, 10)}  # CI-sized: EDGE compiles one call per layer, so one hidden layer


def check(cfg: Config) -> None:
    """Every setting and estimator option, checked before anything is trained (one-line ValueErrors)."""
    if isinstance(cfg.seeds, bool) or not isinstance(cfg.seeds, int) or cfg.seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {cfg.seeds!r}")
    if cfg.data not in DATA_CHOICES:
        raise ValueError(f"data must be one of {DATA_CHOICES}, got {cfg.data!r}")
    if cfg.run.model.kind != "mlp" or cfg.run.model.widths[0] != 784 or cfg.run.model.n_classes != 10:
        raise ValueError(f"run.model must be an MLP from 784 inputs to 10 classes, got {cfg.run.model}")
    harness.check_contrast_activation(cfg)
    if isinstance(cfg.mi_samples, bool) or not isinstance(cfg.mi_samples, int) or cfg.mi_samples < 0 \
            or 0 < cfg.mi_samples < 20:
        raise ValueError(f"mi_samples must be 0 (all held-out samples) or an integer >= 20, got {cfg.mi_samples!r}")
    ctx = registry.Context(max(cfg.mi_samples, 20), 10)
    for name, (est, options) in estimators(cfg).items():
        try:
            registry.resolve(est, options, ctx)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{'edge_U / edge_L / edge_keys' if name == 'edge' else name}: {e}") from None
    if isinstance(cfg.memory_gb, bool) or not isinstance(cfg.memory_gb, (int, float)) or not cfg.memory_gb > 0:
        raise ValueError(f"memory_gb must be a number > 0, got {cfg.memory_gb!r}")
    harness.check_epoch_specs(cfg, "epochs", "hsic_epochs")


def estimators(cfg: Config) -> dict:
    """Estimator key -> (registry name, options)."""
    keys = {"n_keys": cfg.edge_keys} if "n_keys" in registry.get("edge").options else {}
    return {"edge": ("edge", {"U": cfg.edge_U, "L": cfg.edge_L, **keys}), "hsic": ("hsic", {"normalized": 1})}


def full_mnist_present() -> bool:
    """Both MNIST training files on the search path (never downloads)."""
    try:
        for kind in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"):
            name = f"train-{kind}"
            io.find_data_file(name, path=None, subdir="mnist", algorithm="md5", digest=data_mod.MNIST_MD5[name],
                              url=None)
    except (FileNotFoundError, ValueError):
        return False
    return True


def resolve_data(cfg: Config) -> str:
    if cfg.data != "auto":
        return cfg.data
    return "mnist_train" if full_mnist_present() else "mnist_test"


def mi_samples(rc: RunConfig, n_max: int):
    """(x, y, dataset, n_train, n_heldout): the held-out split of the training run's data; X is its first
    ``n_max`` samples (all for 0)."""
    ds = pipeline.load_data(rc)
    split = data_mod.split(ds, rc.data.split, seed=rc.data.split_seed, train_frac=rc.data.train_frac)
    n = len(split.y_test) if n_max == 0 else min(n_max, len(split.y_test))
    return split.x_test[:n], split.y_test[:n], ds, len(split.y_train), len(split.y_test)


def evaluate(dirs, rc: RunConfig, x, y, est: str, options: dict, epochs: str, *, seed: int, out: Path, measured,
             memory_gb: float = 8.0):
    """``pipeline.evaluate_runs`` on the held-out samples (x, y) instead of the whole dataset."""
    runs = pipeline.load_runs(dirs)
    model = rc.model.build()
    positions = pipeline.select_epochs(epochs, runs[0].epochs)
    params = jax.tree.map(lambda *a: np.stack(a)[:, positions], *[r.params for r in runs])  # S x E x ...
    return pipeline.evaluate_arrays(
        infoplane.ApplyFns(model.apply, model.noisy_apply), params, runs[0].epochs[positions], x, y, est, options,
        run_ids=[r.config["run_id"] for r in runs], run_dirs=dirs, seed=seed, out=out, run_config=runs[0].config,
        measured=measured, memory_gb=memory_gb)


def hidden(plane):
    """The plane without its last T (the softmax output): the hidden layers only."""
    return dataclasses.replace(plane, values={k: v[..., :-1] for k, v in plane.values.items()},
                               layer_names=tuple(plane.layer_names[:-1]))


def drops(i_xt_SxExL):
    """Hidden layers' peak-to-final drop and peak I(X;T) (each S x H)."""
    return harness.peak_to_final(np.asarray(i_xt_SxExL)), np.asarray(i_xt_SxExL).max(axis=1)


def run(cfg: Config, out, *, force: bool = False) -> dict:
    check(cfg)
    out = Path(out)
    name = resolve_data(cfg)
    a, b = cfg.run.model.activation, cfg.contrast_activation
    rc = cfg.run.replace(**{"data.name": name})
    nets = {a: rc, b: rc.replace(**{"model.activation": b})}
    x, y, ds, n_train, n_held = mi_samples(rc, cfg.mi_samples)
    note = (f"{ds.name} ({ds.source}): {n_train} training images, {len(y)} of the {n_held} held-out images as "
            f"MI samples" + ("" if name == "mnist_train" else "; the full MNIST training images were not found, so "
                                                              "the official 10k test split was split in two"))
    print(f"data: {note}")
    measured = {"data": ds.name, "data_source": ds.source, "samples": f"held-out split, first {len(y)}",
                "n_samples": int(len(y))}
    dirs = {act: pipeline.train_or_reuse(r, range(cfg.seeds), out / "runs" / act, force=force)
            for act, r in nets.items()}
    planes, files = {}, {}
    for act in (a, b):
        for key, (est, options) in estimators(cfg).items():
            where = out / "planes" / f"{act}_{key}"
            epochs = cfg.epochs if key == "edge" else cfg.hsic_epochs
            print(f"evaluating {act} with {key} on {len(y)} samples ...")
            planes[act, key] = evaluate(dirs[act], nets[act], x, y, est, options, epochs, seed=cfg.eval_seed,
                                        out=where, measured=measured, memory_gb=cfg.memory_gb)
            files.setdefault(act, {})[key] = str(pipeline.result_path(where, est).relative_to(out))
    hid = {k: hidden(p) for k, p in planes.items()}
    dr = {k: drops(p.i_xt) for k, p in hid.items()}
    metrics = {act: [checkpoints.load_metrics(d) for d in ds_] for act, ds_ in dirs.items()}
    acc = {act: harness.mean_se([float(m["test_acc"][-1]) for m in ms]) for act, ms in metrics.items()}
    summary = {
        "dataset": ds.name, "data_note": note, "n_train": n_train, "n_mi_samples": int(len(y)),
        "run_dirs": {act: [str(d) for d in ds_] for act, ds_ in dirs.items()},
        "estimator_settings": {"ours": {k: dict(p.settings) for k, p in
                                        (("edge", planes[a, "edge"]), ("hsic", planes[a, "hsic"]))},
                               "original": ORIGINAL_SETTINGS},
        "drops": {act: {key: _table(dr[act, key][0]) for key in ESTIMATORS} for act in (a, b)},
        "peaks": {act: {key: _table(dr[act, key][1]) for key in ESTIMATORS} for act in (a, b)},
        "planes": files,
        "evaluated_epochs": {key: [int(e) for e in planes[a, key].epochs] for key in ESTIMATORS},
        "final_test_acc": acc,
    }
    curves = {f"{act} {k}": np.stack([m[k] for m in ms]) for act, ms in metrics.items()
              for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
    return {"planes": hid, "drops": dr, "metrics": curves, "acc": metrics, "summary": summary}


def _table(v_SxH) -> dict:
    return {f"layer {l + 1}": harness.mean_se(v_SxH[:, l]) for l in range(v_SxH.shape[1])}


# ---------------------------------------------------------------- figures


def figures(results: dict, cfg: Config, out) -> list:
    out, planes = Path(out), results["planes"]
    a, b = cfg.run.model.activation, cfg.contrast_activation
    p0 = planes[a, "edge"]
    n_s, n = p0.shape[1], p0.measured.get("n_samples")
    cols = {"edge": f"EDGE (U={cfg.edge_U:g}, L={cfg.edge_L}) [bits]", "hsic": "normalised HSIC (median heuristic)"}
    grid = {(act, key): planes[act, key] for act in (a, b) for key in ESTIMATORS}
    net = "-".join(map(str, cfg.run.model.widths))
    title = (f"{p0.measured['data']}, {net}, hidden layers, {n} held-out MI samples, {n_s} seeds, "
             f"Adam {cfg.run.train.learning_rate:g}, batch {cfg.run.train.batch_size}")
    panels = lambda kind: plotting.panel_grid(grid, kind=kind, col_labels=cols, title=title)
    return [plotting.save(panels("plane"), out / "infoplane_edge_hsic.png"),
            plotting.save(panels("mi_xt"), out / "mi_xt.png"),
            plotting.save(panels("mi_ty"), out / "mi_ty.png"),
            plotting.save(plotting.loss_curves(results["metrics"]), out / "loss.png")]


# ---------------------------------------------------------------- claims


def _rel(dr, k):
    drop, peak = dr[k]
    return drop / np.maximum(peak, 1e-12)  # S x H


def curve_corr(a_SxExH, b_SxExH):
    """Per seed and layer, the Pearson correlation over epochs of two I(X;T) curves (S x H; 0 if flat)."""
    a = np.asarray(a_SxExH, float) - np.mean(a_SxExH, axis=1, keepdims=True)
    b = np.asarray(b_SxExH, float) - np.mean(b_SxExH, axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), 0.0)


def claims(results: dict, cfg: Config) -> list[dict]:
    a, b = cfg.run.model.activation, cfg.contrast_activation
    dr, planes = results["drops"], results["planes"]
    n_h = dr[a, "edge"][0].shape[1]
    st = {k: [harness.status(_rel(dr, k)[:, l], COMPRESSION) for l in range(n_h)] for k in dr}
    ms = lambda k, l: harness.mean_se(dr[k][0][:, l])
    rel = lambda k, l: harness.mean_se(_rel(dr, k)[:, l])
    src = "Noshad, Zeng & Hero 2019 (ICASSP), Sec. 5, Fig. 5"

    def per_layer(act):
        c = {f"{act} layer {l + 1} EDGE I(X;T) drop [bits]": ms((act, "edge"), l) for l in range(n_h)}
        c.update({f"{act} layer {l + 1} EDGE drop / peak": rel((act, "edge"), l) for l in range(n_h)})
        return c

    ratio = {f"layer {l + 1} EDGE drop / peak, {b} minus {a}": harness.mean_se(
        _rel(dr, (b, "edge"))[:, l] - _rel(dr, (a, "edge"))[:, l]) for l in range(n_h)}
    differ = [harness.status(np.abs(_rel(dr, (b, "edge"))[:, l] - _rel(dr, (a, "edge"))[:, l]), 0.0) for l in range(n_h)]

    agree, c4 = [], {}
    for act in (a, b):
        corr = curve_corr(planes[act, "edge"].i_xt, planes[act, "hsic"].i_xt) \
            if np.array_equal(planes[act, "edge"].epochs, planes[act, "hsic"].epochs) else None
        for l in range(n_h):
            e, h = st[act, "edge"][l], st[act, "hsic"][l]
            agree.append(None if e is None or h is None else e == h)
            c4[f"{act} layer {l + 1} drop / peak, EDGE | HSIC"] = [rel((act, "edge"), l), rel((act, "hsic"), l)]
            if corr is not None:
                c4[f"{act} layer {l + 1} correlation over epochs of EDGE and HSIC I(X;T)"] = harness.mean_se(corr[:, l])
    decided = [x for x in agree if x is not None]
    v4 = None if not decided else all(decided)

    acc = {act: [float(m["test_acc"][-1]) for m in results["acc"][act]] for act in (a, b)}
    full = results["summary"]["dataset"] == "mnist_train"
    return [
        {"claim": f"{a}: EDGE shows compression in every hidden layer (I(X;T) rises, then falls)",
         "source": src, "agrees": harness.verdict(st[a, "edge"], True), "measured": per_layer(a)},
        {"claim": f"{b}: EDGE shows compression in every hidden layer too (contrary to Saxe et al. 2018)",
         "source": src, "agrees": harness.verdict(st[b, "edge"], True), "measured": per_layer(b)},
        {"claim": f"the amount of compression differs between {b} and {a}", "source": src,
         "agrees": True if any(d is True for d in differ) else False if all(d is False for d in differ) else None,
         "measured": ratio},
        {"claim": "EDGE and normalised HSIC agree on the trend of I(X;T) (compression or not, per layer)",
         "source": "the student re-implementation of Noshad et al. (EDGE vs normalised HSIC, 15 epochs), as cited in "
                   "the issue; compression decided per estimator as in this module's docstring",
         "agrees": v4, "measured": c4},
        {"claim": "test accuracy of both networks is around 0.98" + ("" if full else
                  " (trained on 60k images; here on 8000, so not comparable: agrees left open)"),
         "source": src, "agrees": (all(np.mean(v) >= 0.97 for v in acc.values()) if full else None),
         "measured": {f"{act} final test accuracy": harness.mean_se(v) for act, v in acc.items()}},
    ]


def main(argv=None) -> dict:
    return harness.main("edge_mnist", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
