"""CNN study: per-layer, per-filter and before/after-pooling information of batch-norm CNNs on MNIST
and Fashion-MNIST

A course project's study (mel-spectrograms of music; MNIST and Fashion-MNIST stand in here, and
``ibjax.audio.audio_folder`` reads a folder of clips per class for a run on audio): a small CNN (and,
``--set nets=cnn,resnet``, a mini ResNet), each with tanh and with ReLU, trained with minibatch momentum SGD, 3 seeds as one vmapped call, measured
with three estimators whose scale suits each layer:

- binning (bin size 0.5 on the batch-normalised activations; kept for the claims only where the
  ceiling guard does not fire: 10^3-dimensional layers separate every image);
- the Kolchinsky-Tracey KDE upper bound with the kernel variance set per (epoch, T) relative to the
  layer's own spread (``kde_relative``: scale x the mean squared pairwise distance, KDE_SCALE = 0.1,
  the value that takes every hidden layer off log2 N; the variance used is recorded in the planes and
  summarised per layer in summary.json);
- Kraskov's kNN (KSG, k = 2 as in the study; scale-free).

Networks: a small CNN (4 blocks of 3x3 convolution (stride 2) -> activation -> batch norm with 8, 16,
32, 32 filters, global average pooling, dense softmax head) and a mini ResNet (a stride-2 stem, 2
residual blocks, 2x2 max pooling, dense head). Batch norm runs inside the pure training scan (running
statistics in the carried state; evaluation uses the running averages).

Data: the official 10k test split (data.name mnist_test, or fashion_mnist), split at random (seed 0)
by data.train_frac = 0.2 into 2000 training images and 8000 held-out images; test accuracy on the
held-out images, every information quantity on the first 2000 of them. Momentum SGD (lr 0.05,
momentum 0.9, batch 100) for 30 epochs (600 steps); per-layer planes on 8 log-spaced kept epochs
(dense early, the last included); per-filter information (every channel of every convolutional T) and
the pooled view (each convolutional T before and after 2x2 max pooling) at 3 epochs. Per-filter arrays
(seeds x epochs x layers x filters, NaN where a layer has fewer filters) are saved in OUT/per_filter.npz.

    python -m experiments.cnn                                   # MNIST, the CNN (tanh, ReLU) x 3 seeds
    python -m experiments.cnn --set data.name=fashion_mnist --out results/cnn/fashion_mnist
    python -m experiments.cnn --set nets=cnn,resnet             # the mini ResNet too: about 2x the time
    python -m experiments.cnn --set optimizers=sgd,gd           # the CNN with full-batch GD as well
    python -m experiments.cnn --quick    # CI-sized: tiny CNN, tanh, SGD, 1 seed, 2 epochs, binning
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

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
    cnn: CNNConfig = field(
        default_factory=lambda: CNNConfig(
            filters=(8, 16, 32, 32), strides=(2, 2, 2, 2), batch_norm=True, activation="tanh"
        )
    )
    resnet: ResNetConfig = field(default_factory=lambda: ResNetConfig(filters=(8, 8, 16), activation="tanh"))
    data: DataConfig = harness.setting(  # official 10k test splits
        factory=lambda: DataConfig(name="mnist_test", train_frac=0.2), within={"name": harness.one_of(*DATASETS)}
    )
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            optimizer="momentum", learning_rate=0.05, batch_size=100, n_epochs=30, schedule="all"
        )
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
    every = {
        "binning": {"bin_size": cfg.bin_size},
        "kde": {"noise_var": cfg.noise_var},
        "kde_relative": {"scale": cfg.kde_scale},
        "knn": {"k": cfg.k},
    }
    return {est: every[est] for est in cfg.estimators}


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


def filter_array(values_SxExT, coords) -> tuple[np.ndarray, list[int]]:
    """Per-filter values S x E x T (the T's coordinates: layer, filter) as S x E x L x F_max, NaN-padded."""
    ids = [(c["layer"], c["filter"]) for c in coords]
    layers = sorted({l for l, _ in ids})
    out = np.full(values_SxExT.shape[:2] + (len(layers), max(c for _, c in ids)), np.nan, np.float32)
    li = np.array([layers.index(l) for l, _ in ids])
    out[:, :, li, np.array([c - 1 for _, c in ids])] = values_SxExT
    return out, layers


def run(cfg: Config, out, *, force: bool = False) -> dict:
    out = Path(out)
    nets = networks(cfg)
    dirs = {
        k: pipeline.train_or_reuse(rc, range(cfg.seeds), out / "runs" / "_".join(k), force=force)
        for k, rc in nets.items()
    }
    layers, filters, pooled, arrays = {}, {}, {}, {}
    for k, d in dirs.items():
        print(f"evaluating {' '.join(k)}: per layer" + (", per filter, pooled" if k[2] == "sgd" else ""), flush=True)
        layers[k] = _evaluate(d, cfg, "layers", cfg.epochs, out / "planes" / "_".join(k), force)
        if k[2] != "sgd":
            continue
        filters[k] = _evaluate(d, cfg, "filters", cfg.filter_epochs, out / "planes" / "_".join(k), force)
        pooled[k] = _evaluate(d, cfg, "pooled", cfg.filter_epochs, out / "planes" / "_".join(k), force)
        for est, p in filters[k].items():
            for name in ("i_xt", "i_ty"):
                a, conv = filter_array(p.values[name][0], p.t_coords)
                arrays[f"{'_'.join(k)}/{est}/{name}_SxExLxF"] = a
            arrays[f"{'_'.join(k)}/epochs_E"] = p.epochs
            arrays[f"{'_'.join(k)}/layers_L"] = np.array(conv)
    if arrays:
        harness.save_arrays(out / "per_filter.npz", arrays)
    acc = {"_".join(k): harness.mean_se(pipeline.load_metrics(d)["test_acc"][:, -1]) for k, d in dirs.items()}
    sp = pipeline.split_of(next(iter(nets.values())))
    summary = {
        "dataset": cfg.data.name,
        "data_note": f"official {'Fashion-MNIST' if 'fashion' in cfg.data.name else 'MNIST'} test split ({len(sp.y_train) + len(sp.y_test)} "
        f"images): {len(sp.y_train)} training images (data.train_frac {cfg.data.train_frac:g}), "
        f"{len(sp.y_test)} held out; MI on the first {cfg.mi_samples} held-out images",
        "final_test_acc": acc,
        "run_dirs": {"_".join(k): [str(r) for r in d] for k, d in dirs.items()},
        "kde_relative kernel variance by layer [min, max over seeds and epochs]": kernel_variances({"layers": layers}),
        "per_filter_arrays": "per_filter.npz: NET_ACT_sgd/EST/i_xt_SxExLxF (NaN-padded), epochs_E, layers_L",
    }
    return {"layers": layers, "filters": filters, "pooled": pooled, "summary": summary}


# ---------------------------------------------------------------- figures


def _filter_heatmaps(results: dict, cfg: Config) -> Figure:
    """I(X;T) per filter (mean over seeds) against epoch, for every convolutional layer of one net."""
    keys = list(results["filters"])
    fig = Figure(figsize=(3.2 * 4, 2.6 * len(keys) * len(cfg.estimators)), layout="constrained")
    rows = [(k, est) for k in keys for est in cfg.estimators]
    n_l = max(len(filter_array(results["filters"][k][e].i_xt, results["filters"][k][e].t_coords)[1]) for k, e in rows)
    axes = fig.subplots(len(rows), n_l, squeeze=False)
    for i, (k, est) in enumerate(rows):
        p = results["filters"][k][est]
        a, conv = filter_array(p.i_xt, p.t_coords)
        for j in range(n_l):
            ax = axes[i, j]
            if j >= len(conv):
                ax.set_axis_off()
                continue
            live = ~np.isnan(a[0, 0, j])
            m = a[:, :, j][:, :, live].mean(axis=0)  # E x F
            im = ax.imshow(m.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
            ax.set_xticks(range(len(p.epochs)), [str(e) for e in p.epochs], fontsize=7)
            ax.set(
                xlabel="epoch", ylabel=f"{' '.join(k)}\n{est}: filter" if j == 0 else "filter", title=f"layer {conv[j]}"
            )
            fig.colorbar(im, ax=ax, label="I(X;T) [bits]")
    fig.suptitle("per-filter I(X;T) of every convolutional layer (mean over seeds), SGD networks", fontsize=10)
    return fig


def _pooling(results: dict, cfg: Config) -> Figure:
    keys = list(results["pooled"])
    fig = Figure(figsize=(4.0 * len(cfg.estimators), 3.2 * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), len(cfg.estimators), squeeze=False)
    for i, k in enumerate(keys):
        for j, est in enumerate(cfg.estimators):
            p, ax = results["pooled"][k][est], axes[i, j]
            v = p.i_xt  # S x E x 2L
            (before, _), (after, _) = p.select(pool="before"), p.select(pool="after")
            n = v.shape[2] // 2
            for e in range(v.shape[1]):
                ax.plot(
                    np.arange(n) - 0.1,
                    v[:, e, before].mean(0),
                    "o-",
                    color=f"C{e}",
                    ms=4,
                    label=f"before, epoch {p.epochs[e]}",
                )
                ax.plot(
                    np.arange(n) + 0.1,
                    v[:, e, after].mean(0),
                    "s--",
                    color=f"C{e}",
                    ms=4,
                    label=f"after, epoch {p.epochs[e]}",
                )
            ax.set_xticks(range(n), [f"layer {c['layer']}" for c in p.select(pool="before")[1]], fontsize=8)
            ax.set(ylabel=f"{' '.join(k)}\nI(X;T) [bits]" if j == 0 else "", title=est if i == 0 else "")
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    fig.suptitle("each convolutional T before (solid) and after (dashed) 2x2 max pooling; mean over seeds", fontsize=10)
    return fig


def figures(results: dict, cfg: Config, out) -> list:
    out = Path(out)
    paths = []
    for est in cfg.estimators:
        planes = {(f"{n} {a}", o): d[est] for (n, a, o), d in results["layers"].items()}
        labels = {
            "sgd": f"SGD (batch {cfg.train.batch_size}, {cfg.train.n_epochs} epochs)",
            "gd": f"full-batch GD ({cfg.gd_epochs} epochs)",
        }
        title = f"{est}: per-layer information planes, MNIST (first {cfg.mi_samples} held-out images)"
        paths.append(
            plotting.save(
                plotting.panel_grid(planes, kind="plane", col_labels=labels, title=title), out / f"planes_{est}.png"
            )
        )
    paths.append(plotting.save(_filter_heatmaps(results, cfg), out / "per_filter.png"))
    paths.append(plotting.save(_pooling(results, cfg), out / "pooling.png"))
    return paths


# ---------------------------------------------------------------- claims


def _saturated(values, cap: float) -> bool:
    """Every value within the verdict rule's tolerance of the cap: the estimate cannot order or drop."""
    v = np.asarray(values, float)
    return bool(np.isfinite(v).all() and (v >= cap - verdicts.RULE.tolerance(cap)).all())


def _undecided(why: str) -> verdicts.Verdict:
    return verdicts.undecided(why)


def _dpi(results, cap: float) -> tuple[dict, verdicts.Verdict]:
    """The data-processing inequality between consecutive hidden layers (claims.dpi), decided on each
    estimator of I(X;T) (binning, KDE) whose estimates are off their cap log2 N; a saturated one is
    reported and does not decide."""
    measured, found = {}, {}
    for k, d in results["layers"].items():
        name = " ".join(k)
        for est in [e for e in ("binning", "kde", "kde_relative") if e in d]:
            v = d[est].hidden().i_xt  # S x E x hidden
            if v.shape[2] < 2:
                continue
            if _saturated(v, cap):
                measured[f"{name}, {est}"] = f"saturated: every hidden layer at log2 N = {cap:.2f} bits at every epoch"
                continue
            dpi = verdicts.dpi(v)
            measured[f"{name}, {est}: DPI violations (epoch, layer)"] = f"{dpi['violations']} of {dpi['cells']}"
            found[f"{name} {est}"] = verdicts.holds(
                dpi["violations"] == 0, effect=dpi["worst excess [bits]"], what="violated"
            )
    measured["ceiling log2(N) [bits]"] = round(cap, 4)
    if not found:
        return measured, _undecided(f"saturated: no estimator's hidden layers are off log2 N = {cap:.2f} bits")
    return measured, verdicts.every(found)


def _compression(results, cfg, cap: float) -> tuple[dict, verdicts.Verdict]:
    measured, found = {}, {}
    for (n, a, o), d in results["layers"].items():
        for est in [e for e in ("binning", "kde", "kde_relative") if e in d]:
            st = verdicts.compression(d[est].i_xt[:, :, -2], d[est].epochs, cap=cap)  # last hidden T
            measured[f"{n} {a} {o}, {est}: last hidden layer"] = st.summary()
            if _saturated(d[est].i_xt[:, :, -2], cap):  # reported; an estimate at its cap does not decide
                measured[f"{n} {a} {o}, {est}"] = f"saturated at log2 N = {cap:.2f} bits at every epoch"
                continue
            want = "compresses" if a == "tanh" else "does not compress"
            found[f"{n} {a} {o} {est}"] = verdicts.decide(st, want=want)
    if not {"tanh", "relu"} <= set(cfg.activations):
        return measured, _undecided("needs both tanh and relu among the activations")
    if not found:
        return measured, _undecided(f"saturated: every estimate of the last hidden layer at log2 N = {cap:.2f} bits")
    return measured, verdicts.trained_as_long(
        verdicts.every(found), cfg.train.n_epochs, SAXE_EPOCHS, "Saxe et al.'s tanh / ReLU runs"
    )


def _pool(results, cap: float) -> tuple[dict, verdicts.Verdict]:
    """After <= before pooling, on the estimators for which an increase is possible (not binning:
    floor(max t / b) = max floor(t / b), so binning cannot rise by construction; reported only)."""
    measured, found = {}, {}
    for k, d in results["pooled"].items():
        for est, p in d.items():
            v = p.i_xt
            (after, _), (before, _) = p.select(pool="after"), p.select(pool="before")
            diff = v[:, :, after] - v[:, :, before]  # after - before, layer by layer (coordinates in layer order)
            name = f"{' '.join(k)}, {est}"
            measured[f"{name}: share of (epoch, layer) with after <= before"] = harness.mean_se(
                (diff <= 1e-6).mean(axis=(1, 2))
            )
            measured[f"{name}: mean after - before [bits]"] = harness.mean_se(diff.mean(axis=(1, 2)))
            if est == "binning":
                continue
            if _saturated(v, cap):
                found.setdefault(est, {})[name] = _undecided(f"saturated at log2 N = {cap:.2f} bits before and after")
            else:
                found.setdefault(est, {})[name] = verdicts.positive(-diff.mean(axis=(1, 2)), what="before - after")
    if not found:
        return measured, _undecided("only binning, which cannot increase under pooling by construction")
    return measured, _by_estimator(found, measured)


def _by_estimator(found: dict, measured: dict) -> verdicts.Verdict:
    """Each estimator decides over the networks (``every``); the estimators then vote once each."""
    per = {est: verdicts.every(v) for est, v in found.items()}
    measured["estimator verdicts"] = {e: v.outcome if v.agrees is not None else "undecided" for e, v in per.items()}
    return verdicts.vote(per)


def _filters_vs_layers(results, cap: float) -> tuple[dict, verdicts.Verdict]:
    measured, found = {}, {}
    for k, d in results["filters"].items():
        for est in [e for e in ("kde", "kde_relative", "knn") if e in d]:
            a, conv = filter_array(d[est].i_xt, d[est].t_coords)
            per_layer = np.nanmean(a[:, -1], axis=2)  # S x L: mean over filters, last evaluated epoch
            for j, l in enumerate(conv):
                measured[f"{' '.join(k)}, {est}: layer {l} mean per-filter I(X;T) [bits]"] = harness.mean_se(
                    per_layer[:, j]
                )
            name = f"{' '.join(k)} {est}"
            if _saturated(per_layer, cap):
                found.setdefault(est, {})[name] = _undecided(f"saturated at log2 N = {cap:.2f} bits")
            else:  # the first convolutional layer's mean per-filter value above the last one's
                first_last = per_layer[:, 0] - per_layer[:, -1]
                found.setdefault(est, {})[name] = verdicts.positive(first_last, what="first - last layer")
    return measured, _by_estimator(found, measured) if found else _undecided("no kde or knn per-filter planes")


def kernel_variances(results) -> dict:
    """kde_relative's kernel variance per layer (min..max over seeds and epochs), for the summary."""
    out = {}
    for k, d in results["layers"].items():
        if "kde_relative" in d:
            v, names = d["kde_relative"].values["kernel_var"][0], d["kde_relative"].layer_names
            out[" ".join(k)] = {n: [float(v[..., l].min()), float(v[..., l].max())] for l, n in enumerate(names)}
    return out


def claims(results: dict, cfg: Config) -> list[dict]:
    src = "CNN information-plane study (course project, mel-spectrograms); Tishby & Zaslavsky 2015 (DPI)"
    cap = float(np.log2(cfg.mi_samples))
    dpi, v_dpi = _dpi(results, cap)
    comp, v_comp = _compression(results, cfg, cap)
    pool, v_pool = _pool(results, cap)
    filt, v_filt = _filters_vs_layers(results, cap)
    return [
        verdicts.entry(
            "per-layer I(X;T) does not increase with depth (data processing inequality), binning and KDE off their cap",
            src,
            v_dpi,
            dpi,
        ),
        verdicts.entry(
            "tanh networks compress (the last hidden layer's I(X;T) falls after its peak), ReLU networks do not",
            src + "; Saxe et al. 2018",
            v_comp,
            comp,
        ),
        verdicts.entry(
            "pooling reduces I(X;T): after 2x2 max pooling <= before (KDE and kNN; binning cannot rise by construction)",
            src,
            v_pool,
            pool,
        ),
        verdicts.entry(
            "per-filter I(X;T) (mean over a layer's filters) decreases with depth (first above last layer)",
            src,
            v_filt,
            filt,
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("cnn", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
