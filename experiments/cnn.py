"""CNN study: per-layer, per-filter and before/after-pooling information of batch-norm CNNs on MNIST

A course project's study (mel-spectrograms; MNIST stands in here): two networks, each with tanh and
with ReLU, trained with minibatch SGD (and the CNN with full-batch gradient descent), 2 seeds as one
vmapped call, measured with binning (bin size 0.5, unbounded grid), the Kolchinsky-Tracey KDE upper
bound (noise variance 0.1) and Kraskov's kNN (KSG, k = 2 as in the study):

- small CNN: 4 blocks of 3x3 convolution (stride 2) -> activation -> batch norm with 8, 16, 32, 32
  filters, global average pooling, dense softmax head (T's: the 4 blocks, the softmax);
- mini ResNet: a stride-2 3x3 convolution (8 filters, batch norm), 2 residual blocks (8 and 16
  filters; the second strided with a 1x1 projection), 2x2 max pooling, dense softmax head (T's: the
  stem, both blocks, the max pool, the softmax).

Batch norm runs inside the pure training scan (running statistics in the carried state; evaluation
uses the running averages). Data: the official MNIST 10k test split (mnist_test), split at random
(seed 0) by data.train_frac = 0.2 into 2000 training images and 8000 held-out images; test accuracy
is measured on the held-out images and every information quantity on the first 400 of them.
Momentum SGD (lr 0.05, momentum 0.9): batch 100 for 6 epochs (120 steps), or (the CNN only, by
default: gd_nets) the full batch for 20 epochs (20 steps). Per-layer planes on 5 log-spaced kept
epochs; per-filter information (every channel of every convolutional T) and the pooled view (each
convolutional T before and after 2x2 max pooling) on the SGD networks at 3 epochs. Per-filter
arrays (seeds x epochs x layers x filters, NaN where a layer has fewer filters) are saved in
OUT/per_filter.npz.

    python -m experiments.cnn            # 6 networks x 2 seeds: 13.5 CPU-minutes (18 min wall on 2 busy cores)
    python -m experiments.cnn --set gd_nets=cnn,resnet   # the ResNet with full-batch GD too: about 2x
    python -m experiments.cnn --quick    # CI-sized: tiny CNN, tanh, SGD, 1 seed, 2 epochs, binning
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import checkpoints, data, io, pipeline, plotting, registry, schedules
from ibjax import claims as verdicts
from ibjax.config import CNNConfig, DataConfig, ResNetConfig, RunConfig, TrainConfig

NETS, ACTS, OPTS = ("cnn", "resnet"), ("tanh", "relu"), ("sgd", "gd")
ESTIMATORS = ("binning", "kde", "knn")


@dataclass(frozen=True)
class Config:
    cnn: CNNConfig = field(
        default_factory=lambda: CNNConfig(
            filters=(8, 16, 32, 32), strides=(2, 2, 2, 2), batch_norm=True, activation="tanh"
        )
    )
    resnet: ResNetConfig = field(default_factory=lambda: ResNetConfig(filters=(8, 8, 16), activation="tanh"))
    data: DataConfig = field(default_factory=lambda: DataConfig(name="mnist_test", train_frac=0.2))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            optimizer="momentum", learning_rate=0.05, batch_size=100, n_epochs=6, schedule="all"
        )
    )
    gd_epochs: int = 20  # full-batch GD: one step per epoch
    gd_nets: tuple = ("cnn",)  # the nets also trained with full-batch GD (the ResNet's would double the run time)
    nets: tuple = NETS
    estimators: tuple = ESTIMATORS
    activations: tuple = ACTS
    optimizers: tuple = OPTS
    seeds: int = 2
    mi_samples: int = 400  # the first held-out images
    bin_size: float = 0.5
    noise_var: float = 0.1
    k: int = 2
    epochs: str = "log:5"  # kept epochs of the per-layer planes (pipeline.EPOCH_SPECS)
    filter_epochs: str = "log:3"  # kept epochs of the per-filter and pooled views

    def __post_init__(self):
        check(self)


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


def check(cfg: Config) -> None:
    for name, allowed in (("nets", NETS), ("activations", ACTS), ("optimizers", OPTS), ("estimators", ESTIMATORS)):
        v = getattr(cfg, name)
        if not v or any(a not in allowed for a in v) or len(set(v)) != len(v):
            raise ValueError(f"{name} must be distinct values of {allowed}, got {v!r}")
    if any(n not in NETS for n in cfg.gd_nets):
        raise ValueError(f"gd_nets must be values of {NETS}, got {cfg.gd_nets!r}")
    if not networks(cfg):
        raise ValueError(
            f"no network to train: optimizers {cfg.optimizers} with gd_nets {cfg.gd_nets} and nets {cfg.nets}"
        )
    for name in ("seeds", "gd_epochs", "mi_samples", "k"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if cfg.data.name != "mnist_test":
        raise ValueError(f"data.name must be 'mnist_test' (the official 10k test split), got {cfg.data.name!r}")
    n_held = 10000 - int(round(cfg.data.train_frac * 10000))
    if cfg.mi_samples > n_held:
        raise ValueError(f"mi_samples must be <= the {n_held} held-out images, got {cfg.mi_samples}")
    ctx = registry.Context(cfg.mi_samples, 10)
    for est, opts in evaluations(cfg).items():
        try:
            registry.resolve(est, opts, ctx)
        except ValueError as e:
            raise ValueError(f"{est}: {e}") from None
    for name, n in (("epochs", cfg.train.n_epochs), ("filter_epochs", cfg.train.n_epochs)):
        try:
            pipeline.select_epochs(getattr(cfg, name), schedules.from_spec(cfg.train.schedule, n))
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None


def evaluations(cfg: Config) -> dict:
    every = {"binning": {"bin_size": cfg.bin_size}, "kde": {"noise_var": cfg.noise_var}, "knn": {"k": cfg.k}}
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


def held_out(rc: RunConfig) -> data.Split:
    """The run's split of mnist_test: training images and held-out images (test metrics, MI samples)."""
    return data.split(pipeline.load_data(rc), rc.data.split, seed=rc.data.split_seed, train_frac=rc.data.train_frac)


def mi_samples(rc: RunConfig, n: int):
    """The first n held-out images of the run's split (x, y)."""
    sp = held_out(rc)
    return sp.x_test[:n], sp.y_test[:n]


def _evaluate(dirs, cfg: Config, x, y, view: str, epochs: str, where: Path) -> dict:
    runs = pipeline.load_runs(dirs)
    model = RunConfig.from_dict(runs[0].config).model.build()
    pos = pipeline.select_epochs(epochs, runs[0].epochs)
    params = jax.tree.map(lambda *a: np.stack(a)[:, pos], *[r.params for r in runs])
    measured = {"data": "mnist_test", "samples": f"first {len(y)} held-out images", "n_samples": int(len(y))}
    return {
        est: pipeline.evaluate_arrays(
            model.apply,
            params,
            runs[0].epochs[pos],
            x,
            y,
            est,
            opts,
            view=view,
            run_ids=[r.config["run_id"] for r in runs],
            run_dirs=dirs,
            out=where,
            run_config=runs[0].config,
            measured=measured,
        )
        for est, opts in evaluations(cfg).items()
    }


def filter_array(values_SxExT, names) -> tuple[np.ndarray, list[int]]:
    """Per-filter values S x E x T (T named "layer i filter c") as S x E x L x F_max, NaN-padded."""
    ids = [tuple(int(v) for v in re.fullmatch(r"layer (\d+) filter (\d+)", n).groups()) for n in names]
    layers = sorted({l for l, _ in ids})
    out = np.full(values_SxExT.shape[:2] + (len(layers), max(c for _, c in ids)), np.nan, np.float32)
    li = np.array([layers.index(l) for l, _ in ids])
    out[:, :, li, np.array([c - 1 for _, c in ids])] = values_SxExT
    return out, layers


def run(cfg: Config, out, *, force: bool = False) -> dict:
    check(cfg)
    out = Path(out)
    nets = networks(cfg)
    dirs = {
        k: pipeline.train_or_reuse(rc, range(cfg.seeds), out / "runs" / "_".join(k), force=force)
        for k, rc in nets.items()
    }
    x, y = mi_samples(next(iter(nets.values())), cfg.mi_samples)
    layers, filters, pooled, arrays = {}, {}, {}, {}
    for k, d in dirs.items():
        print(f"evaluating {' '.join(k)}: per layer" + (", per filter, pooled" if k[2] == "sgd" else ""), flush=True)
        layers[k] = _evaluate(d, cfg, x, y, "layers", cfg.epochs, out / "planes" / "_".join(k))
        if k[2] != "sgd":
            continue
        filters[k] = _evaluate(d, cfg, x, y, "filters", cfg.filter_epochs, out / "planes" / "_".join(k))
        pooled[k] = _evaluate(d, cfg, x, y, "pooled", cfg.filter_epochs, out / "planes" / "_".join(k))
        for est, p in filters[k].items():
            for name in ("i_xt", "i_ty"):
                a, conv = filter_array(p.values[name][0], p.layer_names)
                arrays[f"{'_'.join(k)}/{est}/{name}_SxExLxF"] = a
            arrays[f"{'_'.join(k)}/epochs_E"] = p.epochs
            arrays[f"{'_'.join(k)}/layers_L"] = np.array(conv)
    if arrays:
        io.atomic_save_npz(out / "per_filter.npz", arrays)
    acc = {
        "_".join(k): harness.mean_se([float(checkpoints.load_metrics(r)["test_acc"][-1]) for r in d])
        for k, d in dirs.items()
    }
    sp = held_out(next(iter(nets.values())))
    summary = {
        "dataset": "mnist_test",
        "data_note": f"official MNIST test split ({len(sp.y_train) + len(sp.y_test)} "
        f"images): {len(sp.y_train)} training images (data.train_frac {cfg.data.train_frac:g}), "
        f"{len(sp.y_test)} held out; MI on the first {cfg.mi_samples} held-out images",
        "final_test_acc": acc,
        "run_dirs": {"_".join(k): [str(r) for r in d] for k, d in dirs.items()},
        "per_filter_arrays": "per_filter.npz: NET_ACT_sgd/EST/i_xt_SxExLxF (NaN-padded), epochs_E, layers_L",
    }
    return {"layers": layers, "filters": filters, "pooled": pooled, "summary": summary}


# ---------------------------------------------------------------- figures


def _filter_heatmaps(results: dict, cfg: Config) -> Figure:
    """I(X;T) per filter (mean over seeds) against epoch, for every convolutional layer of one net."""
    keys = list(results["filters"])
    fig = Figure(figsize=(3.2 * 4, 2.6 * len(keys) * len(cfg.estimators)), layout="constrained")
    rows = [(k, est) for k in keys for est in cfg.estimators]
    n_l = max(
        len(filter_array(results["filters"][k][e].i_xt, results["filters"][k][e].layer_names)[1]) for k, e in rows
    )
    axes = fig.subplots(len(rows), n_l, squeeze=False)
    for i, (k, est) in enumerate(rows):
        p = results["filters"][k][est]
        a, conv = filter_array(p.i_xt, p.layer_names)
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
            v = p.i_xt  # S x E x 2L (before, after)
            n = v.shape[2] // 2
            for e in range(v.shape[1]):
                ax.plot(
                    np.arange(n) - 0.1,
                    v[:, e, 0::2].mean(0),
                    "o-",
                    color=f"C{e}",
                    ms=4,
                    label=f"before, epoch {p.epochs[e]}",
                )
                ax.plot(
                    np.arange(n) + 0.1,
                    v[:, e, 1::2].mean(0),
                    "s--",
                    color=f"C{e}",
                    ms=4,
                    label=f"after, epoch {p.epochs[e]}",
                )
            ax.set_xticks(range(n), [p.layer_names[2 * l].replace(" before pool", "") for l in range(n)], fontsize=8)
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
    """The data-processing inequality between consecutive hidden layers under binning (claims.dpi)."""
    if "binning" not in next(iter(results["layers"].values())):
        return {}, _undecided("binning not among the estimators")
    measured, found = {}, {}
    for k, d in results["layers"].items():
        v = d["binning"].i_xt[:, :, :-1]  # S x E x hidden
        name = " ".join(k)
        if v.shape[2] < 2:
            continue
        if _saturated(v, cap):
            found[name] = _undecided(f"saturated: every hidden layer at its cap log2 N = {cap:.2f} bits at every epoch")
            continue
        dpi = verdicts.dpi(v)
        measured[f"{name}: DPI violations (epoch, layer)"] = f"{dpi['violations']} of {dpi['cells']}"
        found[name] = verdicts.holds(dpi["violations"] == 0, effect=dpi["worst excess [bits]"], what="violated")
    measured["ceiling log2(N) [bits]"] = round(cap, 4)
    return measured, verdicts.every(found) if found else _undecided("no network has two hidden layers")


def _compression(results, cfg, cap: float) -> tuple[dict, verdicts.Verdict]:
    measured, found = {}, {}
    for (n, a, o), d in results["layers"].items():
        for est in [e for e in ("binning", "kde") if e in d]:
            st = verdicts.compression(d[est].i_xt[:, :, -2], d[est].epochs, cap=cap)  # last hidden T
            measured[f"{n} {a} {o}, {est}: last hidden layer"] = st.summary()
            want = "compresses" if a == "tanh" else "does not compress"
            found[f"{n} {a} {o} {est}"] = verdicts.decide(st, want=want)
    if not {"tanh", "relu"} <= set(cfg.activations):
        return measured, _undecided("needs both tanh and relu among the activations")
    return measured, verdicts.every(found)


def _pool(results, cap: float) -> tuple[dict, verdicts.Verdict]:
    """After <= before pooling, on the estimators for which an increase is possible (not binning:
    floor(max t / b) = max floor(t / b), so binning cannot rise by construction; reported only)."""
    measured, found = {}, {}
    for k, d in results["pooled"].items():
        for est, p in d.items():
            v = p.i_xt
            diff = v[:, :, 1::2] - v[:, :, 0::2]  # after - before
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
        for est in [e for e in ("kde", "knn") if e in d]:
            a, conv = filter_array(d[est].i_xt, d[est].layer_names)
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


def claims(results: dict, cfg: Config) -> list[dict]:
    src = "CNN information-plane study (course project, mel-spectrograms); Tishby & Zaslavsky 2015 (DPI)"
    cap = float(np.log2(cfg.mi_samples))
    dpi, v_dpi = _dpi(results, cap)
    comp, v_comp = _compression(results, cfg, cap)
    pool, v_pool = _pool(results, cap)
    filt, v_filt = _filters_vs_layers(results, cap)
    return [
        verdicts.entry(
            "per-layer I(X;T) does not increase with depth (data processing inequality), binning", src, v_dpi, dpi
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
