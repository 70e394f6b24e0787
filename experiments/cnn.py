"""CNN study: per-layer, per-filter and before/after-pooling information of batch-norm CNNs on MNIST
and Fashion-MNIST (a course project's study of mel-spectrograms; ``ibjax.audio.audio_folder`` reads a folder
of clips per class for a run on audio). A small CNN (and a mini ResNet), tanh and ReLU, momentum SGD, 3 seeds
as one vmapped call, measured with binning, a relative-variance KDE and Kraskov's kNN on the first 2000
held-out images (setup: results/cnn/NOTES.md).

    python -m experiments.cnn                                   # MNIST, the CNN (tanh, ReLU) x 3 seeds
    python -m experiments.cnn --set data.name=fashion_mnist --out results/cnn/fashion_mnist
    python -m experiments.cnn --set nets=cnn,resnet             # the mini ResNet too: about 2x the time
    python -m experiments.cnn --set optimizers=sgd,gd           # the CNN with full-batch GD as well
    python -m experiments.cnn --quick    # CI-sized: tiny CNN, tanh, SGD, 1 seed, 2 epochs, binning
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import CNNConfig, DataConfig, ResNetConfig, RunConfig, TrainConfig

NETS, ACTS, OPTS = ("cnn", "resnet"), ("tanh", "relu"), ("sgd", "gd")
ESTIMATORS = ("binning", "kde", "kde_relative", "knn")
SAXE_EPOCHS = 8000  # Saxe et al.'s tanh / ReLU contrast: Shwartz-Ziv & Tishby's setup, 8000 epochs (see saxe)
KDE_SCALE = 0.1  # kde_relative's kernel variance / mean squared pairwise distance (NOTES.md: the scan)
DATASETS = ("mnist_test", "fashion_mnist", "fashion_mnist_test")  # official 10k test splits


@dataclass(frozen=True)
class Config(harness.Settings):
    cnn: CNNConfig = CNNConfig(filters=(8, 16, 32, 32), strides=(2, 2, 2, 2), batch_norm=True, activation="tanh")
    resnet: ResNetConfig = ResNetConfig(filters=(8, 8, 16), activation="tanh")
    data: DataConfig = harness.setting(  # official 10k test splits
        factory=lambda: DataConfig(name="mnist_test", train_frac=0.2), within={"name": harness.one_of(*DATASETS)}
    )
    train: TrainConfig = TrainConfig(
        optimizer="momentum", learning_rate=0.05, batch_size=100, n_epochs=30, schedule="all"
    )
    gd_epochs: int = harness.setting(60, harness.integer(least=1))  # full-batch GD: one step per epoch
    gd_nets: tuple = harness.setting(("cnn",), harness.distinct(*NETS, least=0))  # also trained with full-batch GD
    nets: tuple = harness.setting(("cnn",), harness.distinct(*NETS))  # add "resnet" for the mini ResNet (2x time)
    estimators: tuple = harness.setting(("binning", "kde_relative", "knn"), harness.distinct(*ESTIMATORS))
    activations: tuple = harness.setting(ACTS, harness.distinct(*ACTS))
    optimizers: tuple = harness.setting(  # add "gd" for full-batch GD on gd_nets
        ("sgd",),
        harness.distinct(*OPTS),
        harness.where(lambda v, cfg: bool(networks(cfg)), "such that a network trains ('gd' trains gd_nets in nets)"),
    )
    seeds: int = harness.setting(3, harness.integer(least=1))
    mi_samples: int = harness.setting(  # the first held-out images
        2000, harness.integer(least=1, most=lambda cfg: 10000 - int(round(cfg.data.train_frac * 10000)))
    )
    bin_size: float = harness.setting(0.5, harness.option("binning", "bin_size"))
    noise_var: float = harness.setting(0.1, harness.option("kde", "noise_var"))  # kde (absolute): kernel variance
    kde_scale: float = harness.setting(KDE_SCALE, harness.option("kde_relative", "scale"))  # / mean sq. distance
    k: int = harness.setting(2, harness.integer(least=1), harness.option("knn", "k"))
    epochs: str = harness.setting("log:8", harness.epochs("train"))  # kept epochs of the per-layer planes
    filter_epochs: str = harness.setting("log:3", harness.epochs("train"))  # ... of the per-filter and pooled views


QUICK = {
    "seeds": 1,
    "train.n_epochs": 2,
    "nets": ("cnn",),
    "activations": ("tanh",),
    "optimizers": ("sgd",),
    "estimators": ("binning",),
    "mi_samples": 100,
    "epochs": "all",
    "filter_epochs": "log:2",
    "cnn.filters": (2, 3, 4, 4),
    "resnet.filters": (2, 2, 3),
    "train.batch_size": 50,
}


def evaluations(cfg: Config) -> dict:
    opts = {"binning": "bin_size", "kde": "noise_var", "kde_relative": "scale", "knn": "k"}
    value = {"bin_size": cfg.bin_size, "noise_var": cfg.noise_var, "scale": cfg.kde_scale, "k": cfg.k}
    return {est: {opts[est]: value[opts[est]]} for est in cfg.estimators}


def networks(cfg: Config) -> dict:
    """(net, activation, optimizer) -> RunConfig."""
    out = {}
    for net in cfg.nets:
        model = getattr(cfg, net)
        for act in cfg.activations:
            for opt in [o for o in cfg.optimizers if o == "sgd" or net in cfg.gd_nets]:
                rc = RunConfig(model, cfg.data, cfg.train).replace(**{"model.activation": act})
                if opt == "gd":
                    rc = rc.replace(**{"train.batch_size": 0, "train.n_epochs": cfg.gd_epochs})
                out[net, act, opt] = rc
    return out


def _evaluate(dirs, cfg: Config, view: str, epochs: str, where: Path, force: bool) -> dict:
    """Each estimator's plane of the runs on the first mi_samples held-out images of their split."""
    return {
        est: pipeline.evaluate_runs(
            dirs, est, opts, epochs=epochs, samples=f"held-out:{cfg.mi_samples}", view=view, out=where, recompute=force
        )
        for est, opts in evaluations(cfg).items()
    }


def run(cfg: Config, out, *, force: bool = False) -> dict:
    out, nets = Path(out), networks(cfg)
    dirs = {
        k: pipeline.train_or_reuse(rc, range(cfg.seeds), out / "runs" / "_".join(k), force=force)
        for k, rc in nets.items()
    }
    layers, filters, pooled, arrays = {}, {}, {}, {}
    for k, d in dirs.items():  # the views of one network: per layer; with SGD, also per filter and pooled
        print(f"evaluating {' '.join(k)}: per layer" + (", per filter, pooled" if k[2] == "sgd" else ""), flush=True)
        where, name, stem = out / "planes" / "_".join(k), " ".join(k), "_".join(k)
        layers[k] = _evaluate(d, cfg, "layers", cfg.epochs, where, force)
        if k[2] != "sgd":
            continue
        filters[name] = _evaluate(d, cfg, "filters", cfg.filter_epochs, where, force)
        pooled[name] = _evaluate(d, cfg, "pooled", cfg.filter_epochs, where, force)
        for est, p in filters[name].items():
            for mi in ("i_xt", "i_ty"):
                arrays[f"{stem}/{est}/{mi}_SxExLxF"], conv = p.per_filter(mi)
            arrays[f"{stem}/epochs_E"], arrays[f"{stem}/layers_L"] = p.epochs, np.array(conv)
    if arrays:
        harness.save_arrays(out / "per_filter.npz", arrays)
    acc = {"_".join(k): harness.mean_se(pipeline.load_metrics(d)["test_acc"][:, -1]) for k, d in dirs.items()}
    sp = pipeline.split_of(next(iter(nets.values())))
    named = {" ".join(k): d for k, d in layers.items()}
    summary = {
        "dataset": cfg.data.name,
        "data_note": f"official {'Fashion-MNIST' if 'fashion' in cfg.data.name else 'MNIST'} test split ({len(sp.y_train) + len(sp.y_test)} "
        f"images): {len(sp.y_train)} training images (data.train_frac {cfg.data.train_frac:g}), "
        f"{len(sp.y_test)} held out; MI on the first {cfg.mi_samples} held-out images",
        "final_test_acc": acc,
        "run_dirs": {"_".join(k): [str(r) for r in d] for k, d in dirs.items()},
        "kde_relative kernel variance by layer [min, max over seeds and epochs]": verdicts.kernel_variance_ranges(
            named
        ),
        "per_filter_arrays": "per_filter.npz: NET_ACT_sgd/EST/i_xt_SxExLxF (NaN-padded), epochs_E, layers_L",
    }
    return {"layers": layers, "named": named, "filters": filters, "pooled": pooled, "summary": summary}


def figures(results: dict, cfg: Config, out) -> list:
    out, paths = Path(out), []
    labels = {
        "sgd": f"SGD (batch {cfg.train.batch_size}, {cfg.train.n_epochs} epochs)",
        "gd": f"full-batch GD ({cfg.gd_epochs} epochs)",
    }
    for est in cfg.estimators:
        planes = {(f"{n} {a}", o): d[est] for (n, a, o), d in results["layers"].items()}
        title = f"{est}: per-layer information planes, MNIST (first {cfg.mi_samples} held-out images)"
        grid = plotting.panel_grid(planes, kind="plane", col_labels=labels, title=title)
        paths.append(plotting.save(grid, out / f"planes_{est}.png"))
    paths.append(plotting.save(plotting.filter_heatmaps(results["filters"], cfg.estimators), out / "per_filter.png"))
    paths.append(plotting.save(plotting.pooling_figure(results["pooled"], cfg.estimators), out / "pooling.png"))
    return paths


def _compression(results, cfg, cap: float) -> tuple[dict, verdicts.Verdict]:
    """tanh compresses and ReLU does not: the last hidden layer, per network and I(X;T) estimator off its cap."""
    measured, found = {}, {}
    for (n, a, o), d in results["layers"].items():
        for est in [e for e in ("binning", "kde", "kde_relative") if e in d]:
            st = verdicts.compression(d[est].i_xt[:, :, -2], d[est].epochs, cap=cap)  # last hidden T
            measured[f"{n} {a} {o}, {est}: last hidden layer"] = st.summary()
            if verdicts.saturated(d[est].i_xt[:, :, -2], cap):  # reported; an estimate at its cap does not decide
                measured[f"{n} {a} {o}, {est}"] = f"saturated at log2 N = {cap:.2f} bits at every epoch"
                continue
            found[f"{n} {a} {o} {est}"] = verdicts.decide(st, want="compresses" if a == "tanh" else "does not compress")
    if not {"tanh", "relu"} <= set(cfg.activations):
        return measured, verdicts.undecided("needs both tanh and relu among the activations")
    if not found:
        why = f"saturated: every estimate of the last hidden layer at log2 N = {cap:.2f} bits"
        return measured, verdicts.undecided(why)
    saxe = "Saxe et al.'s tanh / ReLU runs"
    return measured, verdicts.trained_as_long(verdicts.every(found), cfg.train.n_epochs, SAXE_EPOCHS, saxe)


def claims(results: dict, cfg: Config) -> list[dict]:
    src = "CNN information-plane study (course project, mel-spectrograms); Tishby & Zaslavsky 2015 (DPI)"
    cap = float(np.log2(cfg.mi_samples))
    texts = (
        "per-layer I(X;T) does not increase with depth (data processing inequality), binning and KDE off their cap",
        "tanh networks compress (the last hidden layer's I(X;T) falls after its peak), ReLU networks do not",
        "pooling reduces I(X;T): after 2x2 max pooling <= before (KDE and kNN; binning cannot rise by construction)",
        "per-filter I(X;T) (mean over a layer's filters) decreases with depth (first above last layer)",
    )
    found = (
        verdicts.dpi_off_cap(results["named"], cap),
        _compression(results, cfg, cap),
        verdicts.pooling_reduces(results["pooled"], cap),
        verdicts.filters_decrease(results["filters"], cap),
    )
    sources = (src, src + "; Saxe et al. 2018", src, src)
    return [verdicts.entry(t, s, v, m) for t, s, (m, v) in zip(texts, sources, found)]


def main(argv=None) -> dict:
    return harness.main("cnn", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
