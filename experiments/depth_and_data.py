"""Depth and training-set size: epochs to fit and the information plane (Shwartz-Ziv & Tishby 2017, Figs. 5-6).

tanh MLPs with 1 to 6 hidden layers (the first k hidden widths of 12-10-7-5-4-3-3-2) on szt_12bit, each trained on
5%, 45% and 85% of the 4096 inputs in one vmapped call per depth: the epochs until the training loss is <= 0.1 nats,
the epoch of the last hidden layer's I(X;T) peak and the final I(T;Y) (setup: results/depth_and_data/NOTES.md).

    python -m experiments.depth_and_data               # 6 depths x 3 sizes x 5 seeds x 4000 epochs (~7-13 min)
    python -m experiments.depth_and_data --quick       # depths 1-2, 2 seeds, 100 epochs, threshold 0.5 nats (< 40 s)
    python -m experiments.depth_and_data --seeds 50    # the paper's 50 networks per cell (~1-2 h)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

METRICS = ("train_loss", "test_loss")
PHASE = 0.9  # a compression phase ends when this share of the layer's peak-to-final I(X;T) drop is done
RUN = RunConfig(
    MLPConfig(widths=(12, 10, 7, 5, 4, 3, 3, 2)),
    DataConfig(name="szt_12bit", train_frac=0.85),
    TrainConfig(n_epochs=4000, schedule="log:100"),
)
LESS_DATA = "with less training data the network generalises worse: I(T;Y) at the end of training is lower"
REACHED = "epochs trained when the per-epoch loss is first <= value; null if never"
ONSET = (
    "epoch of peak I(X;T) of the last hidden layer; null when that seed's peak minus final I(X;T) is below the "
    "verdict rule's threshold max(min_drop_bits, min_drop_frac x peak)"
)


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: RUN)
    depths: tuple = harness.values_of(  # hidden layers: the first k hidden widths of run.model.widths
        (1, 2, 3, 4, 5, 6), harness.integer(least=1, most=lambda cfg: len(cfg.run.model.widths) - 2)
    )
    # training-set sizes as fractions of all inputs (<= run.data.train_frac)
    sizes: tuple = harness.values_of((0.05, 0.45, 0.85), harness.number(above=0, most="run.data.train_frac"))
    seeds: int = harness.setting(5, harness.integer(least=1))
    threshold_metric: str = harness.setting("train_loss", harness.one_of(*METRICS))  # or test_loss
    threshold: float = harness.setting(0.1, harness.number(above=0, what="a finite loss (nats)"))  # nats
    estimator: str = harness.setting("binning", harness.estimator())
    options: str = harness.setting("n_bins=30", harness.options("estimator"))
    epochs: str = harness.setting("all", harness.epochs())  # evaluated subset of the kept epochs (log-spaced already)


QUICK = {"depths": (1, 2), "seeds": 2, "run.train.n_epochs": 100, "run.train.schedule": "log:30", "threshold": 0.5}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    w, n_s, subs = cfg.run.model.widths, cfg.seeds, [s / cfg.run.data.train_frac for s in cfg.sizes]  # train_subset
    nets = {f"depth_{d}": cfg.run.replace(**{"model.widths": (w[0], *w[1 : 1 + d], w[-1])}) for d in cfg.depths}
    archs = {str(d): "-".join(map(str, nets[f"depth_{d}"].model.widths)) for d in cfg.depths}
    plane = {"plane": dict(estimator=cfg.estimator, options=cfg.options, epochs=cfg.epochs)}
    made = pipeline.train_and_evaluate_each(
        nets, range(n_s), plane, out, train_sweep={"data.train_subset": subs}, force=force
    )
    rows, tables, sub_planes, losses = dict(zip(cfg.depths, made.values())), {}, {}, {}
    for d, row in rows.items():
        for size, (planes, m) in zip(cfg.sizes, pipeline.split_grid(row, len(subs))):
            p = sub_planes[size, d] = planes["plane"]
            loss = losses[size, d] = m[cfg.threshold_metric]
            cells = verdicts.depth_cell(p, loss, cfg.threshold, {k: m[k] for k in METRICS}, share=PHASE)
            for name, c in cells.items():
                tables.setdefault(name, {}).setdefault(str(d), {})[f"{size:g}"] = c
    n_train = pipeline.train_sizes(cfg.run, subs)
    summary = {
        "dataset": p.measured["data"],
        "architectures": archs,
        "sizes": {f"{s:g}": {"train_subset": round(u, 6), "n_train": n} for s, u, n in zip(cfg.sizes, subs, n_train)},
        "threshold": {"metric": cfg.threshold_metric, "value": cfg.threshold, "units": "nats", "definition": REACHED},
        "compression_onset": {"rule": verdicts.RULE.describe(), "definition": ONSET},
        "compression_phase": f"phase_T<l>: epochs from layer l's I(X;T) peak to {PHASE:.0%} of its drop (null as above)",
        **tables,
        "timings": {str(d): {k: r[k] for k in ("train_seconds", "evaluate_seconds")} for d, r in rows.items()},
        "run_dirs": {str(d): [str(p) for p in r["dirs"]] for d, r in rows.items()},
    }
    return {"sub_planes": sub_planes, "losses": losses, "summary": summary}


def figures(results: dict, cfg: Config, out) -> list:
    s, out = results["summary"], Path(out)
    label = lambda size: f"{size:.0%} of the data ({s['sizes'][f'{size:g}']['n_train']} samples)"
    rows, cols = {z: label(z) for z in cfg.sizes}, {d: f"{d} hidden: {s['architectures'][str(d)]}" for d in cfg.depths}
    title = f"{s['dataset']}, {cfg.estimator}, {cfg.seeds} seed(s): rows training size, columns depth"
    grid = plotting.panel_grid(results["sub_planes"], row_labels=rows, col_labels=cols, title=title)
    by_size = lambda name: {label(z): [s[name][str(d)][f"{z:g}"] for d in cfg.depths] for z in cfg.sizes}
    reached = f"epochs to {cfg.threshold_metric} <= {cfg.threshold:g} nats"
    onset = "epoch of peak I(X;T), last hidden layer"
    epochs = plotting.cells_figure(
        cfg.depths,
        {reached: by_size("epochs_to_threshold"), onset: by_size("peak_ixt_epoch")},
        xlabel="hidden layers",
        scales={reached: "log", onset: ("symlog", {"linthresh": 1})},  # symlog: a peak at epoch 0 is possible
        title=f"mean ± se over {cfg.seeds} seed(s); missing points: not reached (left) or no compression (right, "
        "peak-to-final I(X;T) below the verdict rule's threshold) in some seed",
    )
    loss = plotting.curve_panels(
        {label(z): {f"{d} hidden": results["losses"][z, d] for d in cfg.depths} for z in cfg.sizes},
        hline=cfg.threshold,
        xlabel="epochs trained",
        ylabel=f"{cfg.threshold_metric} [nats], mean over seeds",
    )
    return [
        plotting.save(f, out / n) for f, n in ((grid, "infoplanes.png"), (epochs, "epochs.png"), (loss, "loss.png"))
    ]


def claims(results: dict, cfg: Config) -> list[dict]:
    s, big, depths, sizes = results["summary"], f"{max(cfg.sizes):g}", sorted(cfg.depths), sorted(cfg.sizes)
    ett = [s["epochs_to_threshold"][str(d)][big] for d in depths]
    what = f"epochs to {cfg.threshold_metric} <= {cfg.threshold:g} nats ({big} of the data)"
    # layer l has width run.model.widths[l] at every depth >= l: equal widths compared
    phases = {(l, d): s[f"phase_T{l}"][str(d)][big] for d in depths for l in range(1, d + 1)}
    v2, m2 = verdicts.shorter_with_depth(phases, depths, share=PHASE)
    # per seed the mean over depths of the output's final I(T;Y); mean and se over seeds
    pooled = [
        verdicts.mean_se(np.mean([results["sub_planes"][z, d].i_ty[:, -1, -1] for d in depths], axis=0)) for z in sizes
    ]
    v1, v3 = verdicts.trend_verdict(depths, ett, -1), verdicts.trend_verdict(sizes, pooled, +1)
    m1 = {f"{d} hidden, {what}": verdicts.shown_cell(c, "not reached") for d, c in zip(depths, ett)}
    m3 = {f"final I(T;Y) of the output, {z:g} of the data, mean over depths [bits]": c for z, c in zip(sizes, pooled)}
    src = "Shwartz-Ziv & Tishby 2017"
    phase = (
        f"deeper networks compress faster: a hidden layer's compression phase (epochs from its I(X;T) peak to "
        f"{PHASE:.0%} of its drop, {big} of the data) is shorter in deeper networks, layers of equal width compared"
    )
    return [
        verdicts.entry("deeper networks reach the loss threshold in fewer epochs", f"{src}, Fig. 5", v1, m1),
        verdicts.entry(phase, f"{src}, Sec. 3.4", v2, m2),
        verdicts.entry(LESS_DATA, f"{src}, Fig. 6", v3, m3),
    ]


def main(argv=None) -> dict:
    return harness.main("depth_and_data", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
