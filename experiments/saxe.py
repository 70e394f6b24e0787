"""Saxe et al. 2018: compression follows the activation and the estimator, not SGD noise.

The 12-bit task's 12-10-7-5-4-3-2 network with tanh, with ReLU, and with tanh trained by full-batch GD, each
measured with unbounded binning, the IDNNs binning (30 bins on [-1, 1]) and the KDE upper / lower bounds, with a
sweep of the bin size and of the KDE noise variance (setup: results/saxe/NOTES.md).

    python -m experiments.saxe               # 5 seeds x 8000 epochs: about 8 min on 2 idle CPU cores
    python -m experiments.saxe --seeds 50    # the paper's 50 networks: about 1 h
    python -m experiments.saxe --quick       # CI-sized: 2 seeds x 150 epochs, under 40 s
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

STRONG = 2.0  # "depends strongly": the largest mean drop over a sweep is >= this times the smallest
# the panels of each minibatch network -> (its evaluation, the swept option it shows at its main value, bound)
PANELS = {"binning": ("binning", "bin_size", ""), "idnns_binning": ("idnns_binning", None, "")}
PANELS |= {"kde_upper": ("kde", "noise_var", ""), "kde_lower": ("kde", "noise_var", "_lower")}
SWEEPS = {"bin_size": "binning", "noise_var": "kde"}  # swept option -> its evaluation


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = harness.setting(  # the saturating, minibatch network (tanh, batch 256)
        factory=lambda: RunConfig(
            MLPConfig((12, 10, 7, 5, 4, 3, 2), activation="tanh", init="saxe"),
            DataConfig(name="szt_12bit", split="random"),
            TrainConfig(optimizer="adam", learning_rate=4e-4, batch_size=256, n_epochs=8000, schedule="log:400"),
        ),  # train.batch_size: the SGD batch (the GD runs use the full batch)
        within={"model.kind": harness.one_of("mlp"), "train.batch_size": harness.integer(least=1)},
    )
    contrast_activation: str = harness.setting("relu", harness.activation(differs_from="run.model.activation"))
    seeds: int = harness.setting(5, harness.integer(least=1))
    bin_size: float = harness.setting(0.07, harness.option("binning", "bin_size"))  # Saxe's floor(t / bin_size)
    idnns_bins: int = harness.setting(30, harness.option("binning", "n_bins"))  # IDNNs: edges on idnns_range,
    idnns_range: tuple = harness.setting(  # values beyond folded into the edge bins
        (-1.0, 1.0), harness.length(2, "low, high"), harness.option("binning", "value_range")
    )
    noise_var: float = harness.setting(1e-3, harness.option("kde", "noise_var"))  # KDE noise variance (Saxe's)
    bin_sweep: tuple = harness.setting(  # bin_size is added if missing
        (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2, 0.3),
        harness.distinct(),
        harness.each(harness.option("binning", "bin_size")),
    )
    noise_sweep: tuple = harness.setting(  # noise_var is added if missing
        (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1), harness.distinct(), harness.each(harness.option("kde", "noise_var"))
    )
    epochs: str = harness.setting("all", harness.epochs())  # kept epochs evaluated with binning
    kde_epochs: str = harness.setting("log:50", harness.epochs())  # the subset evaluated with KDE


QUICK = {"seeds": 2, "run.train.n_epochs": 150, "run.train.schedule": "log:15", "kde_epochs": "log:4"}
QUICK |= {"bin_sweep": (0.01,), "noise_sweep": (1e-1,)}  # sweeps of 2: with bin_size / noise_var added


def run(cfg: Config, out, *, force: bool = False) -> dict:
    a, b, gd = cfg.run.model.activation, cfg.contrast_activation, f"{cfg.run.model.activation}_gd"
    main = {"bin_size": cfg.bin_size, "noise_var": cfg.noise_var}  # the main panels' settings
    nets = {a: cfg.run, b: cfg.run.replace(**{"model.activation": b}), gd: cfg.run.replace(**{"train.batch_size": 0})}
    grid = lambda option, values: {option: sorted({float(v) for v in values} | {float(main[option])})}
    binning = dict(estimator="binning", options={"bin_size": cfg.bin_size}, epochs=cfg.epochs)
    kde = dict(estimator="kde", options={"noise_var": cfg.noise_var}, epochs=cfg.kde_epochs)
    idnns = {"n_bins": cfg.idnns_bins, "value_range": tuple(cfg.idnns_range)}
    ev = {
        "binning": binning | {"sweep": grid("bin_size", cfg.bin_sweep)},
        "idnns_binning": binning | {"options": idnns},
    }
    ev["kde"] = kde | {"sweep": grid("noise_var", cfg.noise_sweep)}
    each = lambda net: {"binning": binning, "kde": kde} if net == gd else ev  # full-batch GD: the main settings only
    rows = pipeline.train_and_evaluate_each(
        nets, range(cfg.seeds), each, out, plane_dir="planes/{net}_{key}", force=force
    )
    planes, files = pipeline.sweep_panels(rows, PANELS, main)
    sweeps = {(act, o): rows[act]["planes"][e].hidden() for act in (a, b) for o, e in SWEEPS.items()}  # G x S x E x H
    sens = {
        k: (p.sweep[k[1]], verdicts.peak_drop(p.values["i_xt"])[0]) for k, p in sweeps.items()
    }  # (settings, drop G x S x H)
    drops = {
        k: verdicts.peak_drop(p.hidden().i_xt) for k, p in planes.items()
    }  # (net, panel) -> (drop S x H, peak S x H)
    stats = {k: verdicts.layers(p.hidden().i_xt, p.epochs, cap=verdicts.cap_xt(p)) for k, p in planes.items()}
    summary = {
        "dataset": planes[a, "binning"].measured["data"],
        "run_dirs": {net: [str(d) for d in row["dirs"]] for net, row in rows.items()},
        "estimators": {
            "binning": f"bin_size={cfg.bin_size:g} (unbounded grid)",
            "idnns_binning": f"n_bins={cfg.idnns_bins} on {tuple(cfg.idnns_range)}, values outside folded into the edge bins",
            **{f"kde_{b_}": f"noise_var={cfg.noise_var:g}, {b_} bound" for b_ in ("upper", "lower")},
        },
        "drops": {act: {k: verdicts.layer_means(drops[act, k][0]) for k in PANELS} for act in (a, b)},
        "drops_full_batch": {a: {k: verdicts.layer_means(drops[gd, k][0]) for k in PANELS if (gd, k) in drops}},
        "sensitivity": {act: {o: verdicts.setting_table(*sens[act, o]) for o in SWEEPS} for act in (a, b)},
        "planes": files,
        "evaluated_epochs": {"binning": len(planes[a, "binning"].epochs), "kde": len(planes[a, "kde_upper"].epochs)},
        "final_test_acc": {net: verdicts.mean_se(row["metrics"]["test_acc"][:, -1]) for net, row in rows.items()},
    }
    return {"planes": planes, "drops": drops, "stats": stats, "sweeps": sweeps, "sensitivity": sens, "summary": summary}


def figures(results: dict, cfg: Config, out) -> list:
    out, planes, a, b = Path(out), results["planes"], cfg.run.model.activation, cfg.contrast_activation
    n_s, hi, batch = planes[a, "binning"].shape[1], cfg.idnns_range[1], cfg.run.train.batch_size
    labels = {
        "binning": f"binning, bin size {cfg.bin_size:g}\n(unbounded grid)",
        "idnns_binning": f"IDNNs binning, {cfg.idnns_bins} bins on [{cfg.idnns_range[0]:g}, {hi:g}]\n"
        f"(values > {hi:g} folded into the last bin)",
        **{f"kde_{b_}": f"KDE {b_} bound\nnoise var {cfg.noise_var:g}" for b_ in ("upper", "lower")},
    }
    grid = {(act, k): planes[act, k] for act in (a, b) for k in PANELS}
    title = (
        f"{planes[a, 'binning'].measured['data']}, Saxe init, Adam, batch {batch}, {n_s} seeds. The IDNNs binning "
        f"folds every {b} value above {hi:g} into its last bin: the reason the literature disagreed"
    )
    nets = {f"SGD (batch {batch})": a, "full-batch GD": f"{a}_gd"}
    versus = {(row, k): planes[net, k] for row, net in nets.items() for k in ("binning", "kde_upper")}
    vs_title = f"{a}: full-batch gradient descent vs minibatch SGD, {cfg.run.train.n_epochs} epochs each ({n_s} seeds)"
    panels = lambda planes_, kind, t: plotting.panel_grid(planes_, kind=kind, col_labels=labels, title=t)
    sensitivity = plotting.setting_grid(
        results["sensitivity"],
        marks={"bin_size": cfg.bin_size, "noise_var": cfg.noise_var},
        xlabels={"bin_size": "bin size (unbounded binning)", "noise_var": "KDE noise variance (upper bound)"},
        ylabel="peak-to-final I(X;T) drop [bits]",
        title="Sensitivity of the compression (peak-to-final drop) to the estimator setting: mean ± se over "
        f"{n_s} seeds; dashed: the main panels' setting",
    )
    return [
        plotting.save(panels(grid, "plane", title), out / "infoplane_grid.png"),
        plotting.save(panels(grid, "mi_xt", title), out / "mi_xt_grid.png"),
        plotting.save(panels(versus, "plane", vs_title), out / "gd_vs_sgd.png"),
        plotting.save(panels(versus, "mi_xt", vs_title), out / "gd_vs_sgd_mi_xt.png"),
        plotting.save(sensitivity, out / "sensitivity.png"),
    ]


def claims(results: dict, cfg: Config) -> list[dict]:
    a, b, gd = cfg.run.model.activation, cfg.contrast_activation, f"{cfg.run.model.activation}_gd"
    dr, stats, last = results["drops"], results["stats"], results["drops"][a, "binning"][0].shape[1] - 1
    lasts, unbounded = range(max(0, last - 1), last + 1), ("binning", "kde_upper")  # the last hidden layers
    est = {"binning": f"binning {cfg.bin_size:g}", "kde_upper": f"KDE upper {cfg.noise_var:g}"}
    ms = lambda net, k, l=last: verdicts.mean_se(dr[net, k][0][:, l])
    rel = lambda net, k: dr[net, k][0] / np.maximum(dr[net, k][1], 1e-12)  # drop / peak, S x H
    every = lambda verdict: verdicts.every({est[k]: verdict(k) for k in unbounded})  # binning and KDE agree
    c1 = {f"{a} layer {l + 1} drop, {est[k]} [bits]": ms(a, k, l) for k in unbounded for l in lasts}
    c1 |= {f"{a} layer {last + 1} drop / peak, {est[k]}": verdicts.mean_se(rel(a, k)[:, last]) for k in unbounded}
    c2 = {f"{b} layer {last + 1} drop, {est[k]} [bits]": ms(b, k) for k in unbounded}
    c2 |= {
        f"{b} largest hidden-layer drop / peak, {est[k]}": verdicts.mean_se(rel(b, k).max(axis=1)) for k in unbounded
    }
    folded = f"{b} layer {last + 1} drop, IDNNs {cfg.idnns_bins} bins (folded; not used for the verdict) [bits]"
    c2[folded] = ms(b, "idnns_binning")
    nets = ((a, "SGD"), (gd, "full-batch GD"))
    c3 = {f"{a} layer {last + 1} drop, {lab}, {est[k]} [bits]": ms(net, k) for k in unbounded for net, lab in nets}
    v1, v3 = every(lambda k: verdicts.decide(stats[a, k][last])), every(lambda k: verdicts.decide(stats[gd, k][last]))
    if v1.agrees is not True:  # GD "as SGD does" needs SGD's compression first
        why = f"SGD's own compression is not shown: {v1.reason or v1.outcome}"
        v3 = v3._replace(agrees=None, outcome="undecided", reason=why)
    c4 = {}
    for opt in SWEEPS:
        vals, d = results["sensitivity"][a, opt][0], results["sensitivity"][a, opt][1][:, :, last]  # G x S
        c4[f"{a} layer {last + 1} drop at {opt} {vals[0]:g} [bits]"] = verdicts.mean_se(d[0])
        c4[f"{a} layer {last + 1} drop at {opt} {vals[-1]:g} [bits]"] = verdicts.mean_se(d[-1])
        c4[f"range of that drop over the {len(vals)} {opt} values [bits]"] = verdicts.mean_se(d.max(0) - d.min(0))
    v4 = verdicts.every(
        {opt: verdicts.depends_strongly(results["sweeps"][a, opt], opt, last, factor=STRONG) for opt in SWEEPS}
    )
    v2 = every(lambda k: verdicts.network(stats[b, k], want="does not compress"))
    claimed = {  # claim -> where in Saxe et al. 2018
        f"{a} networks compress: the last hidden layers' I(X;T) falls after its peak": ", Fig. 1 / Shwartz-Ziv & Tishby 2017, Fig. 3",
        f"{b} networks do not compress (unbounded binning and KDE)": ", Fig. 1",
        "full-batch GD compresses as SGD does (compression is not caused by SGD noise)": ", Sec. 4",
        "the size of the drop depends strongly on the bin size and on the KDE noise variance": " (estimator settings); Goldfeld et al. 2019 (binning tracks clustering at the bin scale)",
    }
    found = ((v1, c1), (v2, c2), (v3, c3), (v4, c4))
    return [verdicts.entry(c, "Saxe et al. 2018 (ICLR)" + w, *vc) for (c, w), vc in zip(claimed.items(), found)]


def main(argv=None) -> dict:
    return harness.main("saxe", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
