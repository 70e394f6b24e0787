"""Depth and training-set size: epochs to fit and the information plane (Shwartz-Ziv & Tishby 2017, Figs. 5-6).

tanh MLPs with 1 to 6 hidden layers on szt_12bit (var_u; random split, seed 0, 85% train / 15% test),
Adam 4e-4, batch 256, 4000 epochs; depth k keeps the first k hidden widths of ``run.model.widths``
(default 12-10-7-5-4-3-3-2: depths 1-5 are SZT's 12-10-7-5-4-3-2 net cut after k hidden layers, i.e.
12-10-2, 12-10-7-2, ..., and depth 6 adds a second 3-unit layer). Training sets of 5%, 45% and 85% of
the 4096 inputs (205, 1843, 3482 samples) are the ``data.train_subset`` axis of one vmapped call per
depth (3 sizes x 5 seeds). Epochs to threshold: the epochs trained when the cross-entropy on the
network's own training subset (after the epoch's updates) is first <= 0.1 nats, i.e. the label's
geometric-mean probability >= 0.905; null if never, and a cell's mean is null unless every seed got
there. Compression onset: the epoch of peak I(X;T) of the last hidden layer (null in a seed whose own
peak-to-final drop is below the verdict rule's threshold, ``ibjax.claims.seed_compresses``); I(X;T), I(T;Y) by binning (30 bins) on all inputs at the 81
log-spaced kept epochs.

Why the training loss: it is defined for every size; the 5% networks fit their 205 samples but their
test loss stays above ~0.3 nats, so a test-loss threshold leaves that row null (``--set
threshold_metric=test_loss`` measures it anyway). A 5% network takes one minibatch step per epoch, a
full one 14, so small sets need more epochs: the slowest cell (1 hidden layer, 5%) crossed at 2125-2739
epochs in a pilot, hence 4000. Time, measured with other jobs sharing the 2 cores: 15 runs cost ~15
ms/epoch at depth 1, ~24 at depth 3, ~40 at depth 6 (~0.165 s/epoch for all six depths: ~11 min for
4000 epochs), plus ~20 s per depth to compile, write and bin (depth 1 alone: 75 s end to end), about
13 min in all; roughly half that on idle cores.

    python -m experiments.depth_and_data               # 6 depths x 3 sizes x 5 seeds x 4000 epochs (~7-13 min)
    python -m experiments.depth_and_data --quick       # depths 1-2, 2 seeds, 100 epochs, threshold 0.5 nats (< 40 s)
    python -m experiments.depth_and_data --seeds 50    # the paper's 50 networks per cell (~1-2 h)
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

METRICS = ("train_loss", "test_loss")


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(
        default_factory=lambda: RunConfig(
            MLPConfig(widths=(12, 10, 7, 5, 4, 3, 3, 2)),
            DataConfig(name="szt_12bit", train_frac=0.85),
            TrainConfig(n_epochs=4000, schedule="log:100"),
        )
    )
    # hidden layers: the first k hidden widths of run.model.widths
    depths: tuple = harness.setting(
        (1, 2, 3, 4, 5, 6),
        harness.distinct(),
        harness.each(harness.integer(least=1, most=lambda cfg: len(cfg.run.model.widths) - 2)),
    )
    # training-set sizes as fractions of all inputs (<= run.data.train_frac)
    sizes: tuple = harness.setting(
        (0.05, 0.45, 0.85), harness.distinct(), harness.each(harness.number(above=0, most="run.data.train_frac"))
    )
    seeds: int = harness.setting(5, harness.integer(least=1))
    threshold_metric: str = harness.setting("train_loss", harness.one_of(*METRICS))  # or test_loss
    threshold: float = harness.setting(0.1, harness.number(above=0, what="a finite loss (nats)"))  # nats
    estimator: str = harness.setting("binning", harness.estimator())
    options: str = harness.setting("n_bins=30", harness.options("estimator"))
    # evaluated subset of the kept epochs (these are log-spaced already)
    epochs: str = harness.setting("all", harness.epochs())


QUICK = {"depths": (1, 2), "seeds": 2, "run.train.n_epochs": 100, "run.train.schedule": "log:30", "threshold": 0.5}


def widths(cfg: Config, depth: int) -> tuple:
    w = cfg.run.model.widths
    return (w[0], *w[1 : 1 + depth], w[-1])


def subsets(cfg: Config) -> list[float]:
    """data.train_subset of each size (the fraction of the training split used)."""
    return [s / cfg.run.data.train_frac for s in cfg.sizes]


def epochs_to_threshold(loss_E, threshold: float):
    """Epochs trained when the per-epoch loss first is <= threshold (index + 1), None if never."""
    hit = np.flatnonzero(np.asarray(loss_E, float) <= threshold)
    return int(hit[0]) + 1 if hit.size else None


def cell(values) -> dict:
    """mean_se over seeds, with the per-seed values; mean and se null unless every value is there."""
    n_reached = sum(v is not None for v in values)
    out = harness.mean_se(values) if n_reached == len(values) else {"mean": None, "se": None, "n_seeds": len(values)}
    return {**out, "n_reached": n_reached, "per_seed": list(values)}


def _key(x) -> str:
    return f"{x:g}"


def _runs(plane, idx):
    """The plane of runs ``idx`` only."""
    return dataclasses.replace(
        plane,
        values={k: v[:, idx] for k, v in plane.values.items()},
        run_ids=tuple(plane.run_ids[i] for i in idx),
        run_dirs=tuple(plane.run_dirs[i] for i in idx) if plane.run_dirs else (),
    )


def run(cfg: Config, out, *, force: bool = False) -> dict:
    subs, n_s = subsets(cfg), cfg.seeds
    planes, sub_planes, losses, dirs_by_depth, timings, archs = {}, {}, {}, {}, {}, {}
    table = {
        k: {}
        for k in (
            "epochs_to_threshold",
            "peak_ixt_epoch",
            "peak_ixt_drop",
            "final_i_ty",
            "final_train_loss",
            "final_test_loss",
        )
    }
    dataset = n_train = None
    for d in cfg.depths:
        w = widths(cfg, d)
        archs[str(d)] = "-".join(map(str, w))
        print(f"depth {d}: {archs[str(d)]}, {len(subs)} sizes x {n_s} seeds in one call")
        rc = dataclasses.replace(cfg.run, model=dataclasses.replace(cfg.run.model, widths=w))
        t0 = time.perf_counter()
        dirs = pipeline.train_or_reuse(
            rc, range(n_s), out / "runs" / f"depth_{d}", sweep={"data.train_subset": subs}, force=force
        )
        t1 = time.perf_counter()
        plane = pipeline.evaluate_runs(
            dirs, cfg.estimator, cfg.options, epochs=cfg.epochs, out=out / f"depth_{d}", recompute=force
        )
        timings[str(d)] = {"train_s": round(t1 - t0, 1), "evaluate_s": round(time.perf_counter() - t1, 1)}
        dataset, planes[d], dirs_by_depth[str(d)] = plane.measured["data"], plane, [str(p) for p in dirs]
        metrics = pipeline.load_metrics(dirs)
        if n_train is None:
            n_train = _n_train(rc, subs)
        for t in table.values():
            t[str(d)] = {}
        for i, size in enumerate(cfg.sizes):
            idx = list(range(i * n_s, (i + 1) * n_s))  # grid-major: size, then seed
            sub_planes[(size, d)] = p = _runs(plane, idx)
            losses[(size, d)] = metrics[cfg.threshold_metric][idx]
            last = p.shape[3] - 2  # the last hidden layer (the output is the last T)
            k = _key(size)
            table["epochs_to_threshold"][str(d)][k] = cell(
                [epochs_to_threshold(metrics[cfg.threshold_metric][j], cfg.threshold) for j in idx]
            )
            xt = p.i_xt[:, :, last]  # S x E
            drop = xt.max(axis=1) - xt[:, -1]
            table["peak_ixt_epoch"][str(d)][k] = cell(
                [int(p.epochs[e]) if ok else None for e, ok in zip(xt.argmax(axis=1), verdicts.seed_compresses(xt))]
            )
            table["peak_ixt_drop"][str(d)][k] = harness.mean_se(drop)
            table["final_i_ty"][str(d)][k] = harness.mean_se(p.i_ty[:, -1, -1])
            for m in ("train_loss", "test_loss"):
                table[f"final_{m}"][str(d)][k] = harness.mean_se(metrics[m][idx, -1])
    summary = {
        "dataset": dataset,
        "architectures": archs,
        "sizes": {_key(s): {"train_subset": round(u, 6), "n_train": n} for s, u, n in zip(cfg.sizes, subs, n_train)},
        "threshold": {
            "metric": cfg.threshold_metric,
            "value": cfg.threshold,
            "units": "nats",
            "definition": "epochs trained when the per-epoch loss is first <= value; null if never",
        },
        "compression_onset": {
            "rule": verdicts.RULE.describe(),
            "definition": "epoch of peak I(X;T) of the last hidden layer; null when that seed's peak minus "
            "final I(X;T) is below the verdict rule's threshold max(min_drop_bits, min_drop_frac x peak)",
        },
        **table,
        "timings": timings,
        "run_dirs": dirs_by_depth,
    }
    return {"planes": planes, "sub_planes": sub_planes, "losses": losses, "summary": summary}


def _n_train(rc: RunConfig, subs) -> list[int]:
    """Training samples of each size, as training computes them (float32 fraction x split size)."""
    n = len(pipeline.split_of(rc).y_train)
    return [int(np.round(np.float32(u) * np.float32(n))) for u in subs]


def _size_label(cfg, results, size) -> str:
    n = results["summary"]["sizes"][_key(size)]["n_train"]
    return f"{size:.0%} of the data ({n} samples)"


def figures(results: dict, cfg: Config, out) -> list:
    s = results["summary"]
    rows = {size: _size_label(cfg, results, size) for size in cfg.sizes}
    cols = {d: f"{d} hidden: {s['architectures'][str(d)]}" for d in cfg.depths}
    planes = {(size, d): results["sub_planes"][(size, d)] for size in cfg.sizes for d in cfg.depths}
    title = f"{s['dataset']}, {cfg.estimator}, {cfg.seeds} seed(s): rows training size, columns depth"
    grid = plotting.panel_grid(planes, kind="plane", row_labels=rows, col_labels=cols, title=title)
    return [
        plotting.save(grid, out / "infoplanes.png"),
        plotting.save(_epochs_figure(results, cfg), out / "epochs.png"),
        plotting.save(_loss_figure(results, cfg), out / "loss.png"),
    ]


def _epochs_figure(results, cfg) -> Figure:
    s = results["summary"]
    fig = Figure(figsize=(10, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    ylabels = {
        "epochs_to_threshold": f"epochs to {cfg.threshold_metric} <= {cfg.threshold:g} nats",
        "peak_ixt_epoch": "epoch of peak I(X;T), last hidden layer",
    }
    for ax, (name, ylabel) in zip(axes, ylabels.items()):
        empty = True
        for size in cfg.sizes:
            c = [s[name][str(d)][_key(size)] for d in cfg.depths]
            mean = [np.nan if v["mean"] is None else v["mean"] for v in c]
            se = [np.nan if v["se"] is None else v["se"] for v in c]
            empty = empty and bool(np.isnan(mean).all())
            ax.errorbar(cfg.depths, mean, yerr=se, marker="o", capsize=3, label=_size_label(cfg, results, size))
        ax.set_xlabel("hidden layers")
        ax.set_ylabel(ylabel)
        if empty:
            ax.text(0.5, 0.5, "no cell with a value in every seed", ha="center", transform=ax.transAxes)
        else:  # log epochs; symlog: a peak at epoch 0 is possible
            ax.set_yscale("log") if name == "epochs_to_threshold" else ax.set_yscale("symlog", linthresh=1)
        ax.set_xticks(list(cfg.depths))
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"mean ± se over {cfg.seeds} seed(s); missing points: not reached (left) or no compression (right, "
        "peak-to-final I(X;T) below the verdict rule's threshold) in some seed",
        fontsize=10,
    )
    return fig


def _loss_figure(results, cfg) -> Figure:
    fig = Figure(figsize=(4 * len(cfg.sizes), 3.5), layout="constrained")
    axes = fig.subplots(1, len(cfg.sizes), squeeze=False)[0]
    for ax, size in zip(axes, cfg.sizes):
        for d in cfg.depths:
            loss = results["losses"][(size, d)]
            ax.plot(np.arange(1, loss.shape[1] + 1), loss.mean(0), label=f"{d} hidden")
        ax.axhline(cfg.threshold, color="k", lw=0.8, ls="--")
        ax.set(xscale="log", yscale="log", xlabel="epochs trained", title=_size_label(cfg, results, size))
    axes[0].set_ylabel(f"{cfg.threshold_metric} [nats], mean over seeds")
    axes[0].legend(fontsize=8)
    return fig


def trend(xs, cells, sign: int):
    """Whether mean(cell) moves with x in direction ``sign`` beyond the spread: True when the last minus
    the first available mean has its whole interval (``ibjax.claims.combined``: Welch, the rule's level)
    on that side of 0 and the rank correlation has that sign, False when the same holds in the opposite
    direction, None (no power) otherwise or when fewer than two cells have a mean."""
    pts = [(x, c) for x, c in zip(xs, cells) if c["mean"] is not None]
    if len(pts) < 2:
        return None
    means = np.array([c["mean"] for _, c in pts])
    ranks = lambda a: np.argsort(np.argsort(a)).astype(float)
    r = np.nan_to_num(np.corrcoef(ranks(np.array([x for x, _ in pts])), ranks(means))[0, 1])
    iv = lambda c: verdicts.Interval(c["mean"], c["se"], np.nan, np.nan, c["n_seeds"])
    d = verdicts.combined(iv(pts[-1][1]), iv(pts[0][1]))  # last - first
    lo, hi = (d.lo, d.hi) if sign > 0 else (-d.hi, -d.lo)
    if lo > 0 and sign * r > 0:
        return True
    if hi < 0 and sign * r < 0:
        return False
    return None


def _decided(xs, cells, sign: int) -> verdicts.Verdict:
    """A claim's verdict by ``trend`` (effect: last minus first available mean), with the reason when
    it is undecided."""
    v = trend(xs, cells, sign)
    means = [c["mean"] for c in cells if c["mean"] is not None]
    effect = means[-1] - means[0] if len(means) >= 2 else np.nan
    if v is not None:
        return verdicts.Verdict(
            v, "holds" if v else "fails: significant the other way", effect, (np.nan, np.nan), 0.0, ""
        )
    n = len(means)
    why = f"fewer than two of the {len(cells)} settings have a value" if n < 2 else "no power"
    if n >= 2:
        why += ": the last-minus-first difference's interval contains 0, or the ranks disagree"
    return verdicts.Verdict(None, "undecided", effect, (np.nan, np.nan), 0.0, why)


def _show(c: dict, what: str):
    """A cell as the report shows it: mean/se/n_seeds, or a sentence when not every seed has a value."""
    if c["mean"] is not None:
        return {k: c[k] for k in ("mean", "se", "n_seeds")}
    return f"{what} in {c['n_seeds'] - c['n_reached']} of {c['n_seeds']} seeds"


def claims(results: dict, cfg: Config) -> list[dict]:
    s, big, depths = results["summary"], _key(max(cfg.sizes)), sorted(cfg.depths)
    ett = [s["epochs_to_threshold"][str(d)][big] for d in depths]
    what = f"epochs to {cfg.threshold_metric} <= {cfg.threshold:g} nats ({big} of the data)"
    peak = [s["peak_ixt_epoch"][str(d)][big] for d in depths]
    sizes = sorted(cfg.sizes)
    # per seed the mean over depths of the output's final I(T;Y); mean and se over seeds
    pooled = [
        harness.mean_se(np.mean([results["sub_planes"][(size, d)].i_ty[:, -1, -1] for d in depths], axis=0))
        for size in sizes
    ]
    src = "Shwartz-Ziv & Tishby 2017"
    return [
        verdicts.entry(
            "deeper networks reach the loss threshold in fewer epochs",
            f"{src}, Fig. 5",
            _decided(depths, ett, -1),
            {f"{d} hidden, {what}": _show(c, "not reached") for d, c in zip(depths, ett)},
        ),
        verdicts.entry(
            "deeper networks start compressing sooner",
            f"{src}, Sec. 3.4",
            _decided(depths, peak, -1),
            {
                f"{d} hidden, epoch of peak I(X;T) of the last hidden layer ({big} of the data)": _show(
                    c, "no compression"
                )
                for d, c in zip(depths, peak)
            },
        ),
        verdicts.entry(
            "with less training data the network generalises worse: I(T;Y) at the end of training is lower",
            f"{src}, Fig. 6",
            _decided(sizes, pooled, +1),
            {
                f"final I(T;Y) of the output, {size:g} of the data, mean over depths [bits]": c
                for size, c in zip(sizes, pooled)
            },
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("depth_and_data", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
