"""Saxe et al. 2018: compression follows the activation and the estimator, not SGD noise

Trains the 12-bit task's 12-10-7-5-4-3-2 network (szt_12bit, random 80/20 split; Saxe init, Adam 4e-4,
batch 256) with tanh and with ReLU, and the tanh network once more with full-batch gradient descent,
5 seeds each as one vmapped call. Every network's information plane is measured with Saxe's unbounded
binning (bin size 0.07, so ReLU activations are covered), with the original IDNNs binning (30 bins on
[-1, 1], which folds every ReLU value above 1 into the last bin: the reason the literature disagreed)
and with the Kolchinsky-Tracey KDE upper and lower bounds (noise variance 1e-3). A sensitivity panel
shows each hidden layer's peak-to-final I(X;T) drop against the bin size (one sweep call) and the KDE
noise variance (one sweep call); the main panels are points of those sweeps.

Choices: 8000 epochs (Shwartz-Ziv & Tishby's length, whose setup Saxe et al. re-ran), params kept at
274 log-spaced epochs (schedule log:400: dense while I(X;T) rises, sparse in the slow compression
phase); binning on all kept epochs, KDE (about 17x the cost per point) on 38 of them (log:50).
Full-batch GD trains the same 8000 epochs (8000 Adam steps; SGD takes 13 per epoch) and still fits the
training set. Compression is decided by the shared verdict rule (``ibjax.claims``: the peak-to-final
drop's interval over seeds against max(0.1 bits, 5% of the peak); undecided at the cap log2 4096 or
without power); a network does not compress when every hidden layer clearly does not. A drop depends
strongly on a setting when, at the sweep's largest-drop setting, the layer compresses and its drop
exceeds twice the drop at the smallest-drop setting (paired over seeds, the interval above 0).

    python -m experiments.saxe               # 5 seeds x 8000 epochs: about 8 min on 2 idle CPU cores
    python -m experiments.saxe --seeds 50    # the paper's 50 networks: about 1 h
    python -m experiments.saxe --quick       # CI-sized: 2 seeds x 150 epochs, under 40 s
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

STRONG = 2.0  # "depends strongly": the largest mean drop over a sweep is >= this times the smallest
ESTIMATORS = ("binning", "idnns_binning", "kde_upper", "kde_lower")


def _default_run() -> RunConfig:
    return RunConfig(
        MLPConfig((12, 10, 7, 5, 4, 3, 2), activation="tanh", init="saxe"),
        DataConfig(name="szt_12bit", split="random"),
        TrainConfig(optimizer="adam", learning_rate=4e-4, batch_size=256, n_epochs=8000, schedule="log:400"),
    )


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = harness.setting(  # the saturating, minibatch network (tanh, batch 256)
        factory=_default_run,
        within={
            "model.kind": harness.one_of("mlp"),
            "train.batch_size": harness.integer(least=1),  # the SGD batch (the GD runs use the full batch)
        },
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


QUICK = {
    "seeds": 2,
    "run.train.n_epochs": 150,
    "run.train.schedule": "log:15",
    "kde_epochs": "log:4",
    "bin_sweep": (0.01,),
    "noise_sweep": (1e-1,),
}  # sweeps of 2: with bin_size / noise_var added


def _with(values, value) -> list:
    return sorted({float(v) for v in values} | {float(value)})


def evaluations(cfg: Config) -> dict:
    """Estimator key -> (estimator, options, sweep, epochs) for the minibatch networks."""
    return {
        "binning": (
            "binning",
            {"bin_size": cfg.bin_size},
            {"bin_size": _with(cfg.bin_sweep, cfg.bin_size)},
            cfg.epochs,
        ),
        "idnns_binning": (
            "binning",
            {"n_bins": cfg.idnns_bins, "value_range": tuple(cfg.idnns_range)},
            None,
            cfg.epochs,
        ),
        "kde": (
            "kde",
            {"noise_var": cfg.noise_var},
            {"noise_var": _with(cfg.noise_sweep, cfg.noise_var)},
            cfg.kde_epochs,
        ),
    }


def networks(cfg: Config) -> dict:
    """Network key -> RunConfig: the run's activation, the contrast activation, and full-batch GD."""
    a, b = cfg.run.model.activation, cfg.contrast_activation
    return {
        a: cfg.run,
        b: cfg.run.replace(**{"model.activation": b}),
        f"{a}_gd": cfg.run.replace(**{"train.batch_size": 0}),
    }


def _lower(plane):
    """The plane with the KDE lower bounds as i_xt / i_ty."""
    return dataclasses.replace(plane, values={"i_xt": plane.values["i_xt_lower"], "i_ty": plane.values["i_ty_lower"]})


def _drops(i_xt_SxExL):
    """Hidden layers' peak-to-final drop and peak (each S x H; the output layer is left out)."""
    hidden = np.asarray(i_xt_SxExL)[:, :, :-1]
    return hidden.max(axis=1) - hidden[:, -1], hidden.max(axis=1)


def _stats(epochs_E, i_xt_SxExL, cap: float) -> list:
    """The verdict module's compression statistic of each hidden layer."""
    return verdicts.layers(np.asarray(i_xt_SxExL)[:, :, :-1], epochs_E, cap=cap)


def _table(drop_SxH) -> dict:
    return {f"layer {l + 1}": harness.mean_se(drop_SxH[:, l]) for l in range(drop_SxH.shape[1])}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    out = Path(out)
    nets, evals = networks(cfg), evaluations(cfg)
    a, b = cfg.run.model.activation, cfg.contrast_activation
    dirs = {
        net: pipeline.train_or_reuse(rc, range(cfg.seeds), out / "runs" / net, force=force) for net, rc in nets.items()
    }
    planes, sweeps, files = {}, {}, {}

    def evaluate(net, key, sweep=True):
        est, options, sw, epochs = evals[key]
        where = out / "planes" / f"{net}_{key}"
        plane = pipeline.evaluate_runs(
            dirs[net], est, options, sweep=sw if sweep else None, epochs=epochs, out=where, recompute=force
        )
        return plane, str(pipeline.result_path(where, est).relative_to(out))

    def keep(net, key, evaluated, option=None, value="i_xt"):
        plane, path = evaluated
        g = 0 if option is None else int(np.argmin(np.abs(np.asarray(plane.sweep[option]) - getattr(cfg, option))))
        planes[net, key] = plane.setting(g) if plane.shape[0] > 1 else plane
        if value == "i_xt_lower":
            planes[net, key] = _lower(planes[net, key])
        files.setdefault(net, {})[key] = {"file": path, "g": g, "value": value}

    for act in (a, b):
        bins, idnns, kde = evaluate(act, "binning"), evaluate(act, "idnns_binning"), evaluate(act, "kde")
        keep(act, "binning", bins, "bin_size")
        keep(act, "idnns_binning", idnns)
        keep(act, "kde_upper", kde, "noise_var")
        keep(act, "kde_lower", kde, "noise_var", "i_xt_lower")
        sweeps[act] = {
            opt: (
                p.sweep[opt],
                np.stack([_drops(v)[0] for v in p.values["i_xt"]]),
                [_stats(p.epochs, v, verdicts.cap_xt(p)) for v in p.values["i_xt"]],
            )
            for opt, (p, _) in (("bin_size", bins), ("noise_var", kde))
        }
    gd = f"{a}_gd"
    bins, kde = evaluate(gd, "binning", sweep=False), evaluate(gd, "kde", sweep=False)
    keep(gd, "binning", bins)
    keep(gd, "kde_upper", kde)
    keep(gd, "kde_lower", kde, value="i_xt_lower")

    drops = {k: _drops(p.i_xt) for k, p in planes.items()}  # (net, key) -> (drop S x H, peak S x H)
    acc = {net: harness.mean_se(pipeline.load_metrics(ds)["test_acc"][:, -1]) for net, ds in dirs.items()}
    summary = {
        "dataset": planes[a, "binning"].measured["data"],
        "run_dirs": {net: [str(d) for d in ds] for net, ds in dirs.items()},
        "estimators": {
            "binning": f"bin_size={cfg.bin_size:g} (unbounded grid)",
            "idnns_binning": f"n_bins={cfg.idnns_bins} on {tuple(cfg.idnns_range)}, "
            "values outside folded into the edge bins",
            "kde_upper": f"noise_var={cfg.noise_var:g}, upper bound",
            "kde_lower": f"noise_var={cfg.noise_var:g}, lower bound",
        },
        "drops": {act: {k: _table(drops[act, k][0]) for k in ESTIMATORS} for act in (a, b)},
        "drops_full_batch": {a: {k: _table(drops[gd, k][0]) for k in ("binning", "kde_upper", "kde_lower")}},
        "sensitivity": {
            act: {
                opt: {
                    "values": [float(v) for v in vals],
                    **{
                        f"layer {l + 1}": [harness.mean_se(d[g, :, l]) for g in range(len(vals))]
                        for l in range(d.shape[2])
                    },
                }
                for opt, (vals, d, _) in sweeps[act].items()
            }
            for act in (a, b)
        },
        "planes": files,
        "evaluated_epochs": {"binning": len(planes[a, "binning"].epochs), "kde": len(planes[a, "kde_upper"].epochs)},
        "final_test_acc": acc,
    }
    return {"planes": planes, "drops": drops, "sweeps": sweeps, "summary": summary}


# ---------------------------------------------------------------- figures


def _labels(cfg: Config) -> dict:
    lo, hi = cfg.idnns_range
    return {
        "binning": f"binning, bin size {cfg.bin_size:g}\n(unbounded grid)",
        "idnns_binning": f"IDNNs binning, {cfg.idnns_bins} bins on [{lo:g}, {hi:g}]\n"
        f"(values > {hi:g} folded into the last bin)",
        "kde_upper": f"KDE upper bound\nnoise var {cfg.noise_var:g}",
        "kde_lower": f"KDE lower bound\nnoise var {cfg.noise_var:g}",
    }


def _sensitivity(results: dict, cfg: Config) -> Figure:
    acts = list(results["sweeps"])
    fig = Figure(figsize=(10, 3.4 * len(acts)), layout="constrained")
    axes = fig.subplots(len(acts), 2, squeeze=False)
    main = {"bin_size": cfg.bin_size, "noise_var": cfg.noise_var}
    xlabel = {"bin_size": "bin size (unbounded binning)", "noise_var": "KDE noise variance (upper bound)"}
    for i, act in enumerate(acts):
        for j, (opt, (vals, d, _)) in enumerate(results["sweeps"][act].items()):
            ax, x = axes[i, j], np.asarray(vals, float)
            n_s = d.shape[1]
            se = d.std(axis=1, ddof=1) / np.sqrt(n_s) if n_s > 1 else np.zeros(d.shape[::2])
            for l in range(d.shape[2]):
                ax.errorbar(
                    x, d.mean(axis=1)[:, l], yerr=se[:, l], marker="o", ms=3, capsize=2, lw=1.2, label=f"layer {l + 1}"
                )
            ax.axvline(main[opt], color="0.5", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set(xlabel=xlabel[opt], ylabel=f"{act}\npeak-to-final I(X;T) drop [bits]")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    n_s = results["sweeps"][acts[0]]["bin_size"][1].shape[1]
    fig.suptitle(
        f"Sensitivity of the compression (peak-to-final drop) to the estimator setting: mean ± se over "
        f"{n_s} seeds; dashed: the main panels' setting",
        fontsize=10,
    )
    return fig


def figures(results: dict, cfg: Config, out) -> list:
    out, planes = Path(out), results["planes"]
    a, b = cfg.run.model.activation, cfg.contrast_activation
    n_s = planes[a, "binning"].shape[1]
    grid = {(act, k): planes[act, k] for act in (a, b) for k in ESTIMATORS}
    title = (
        f"{planes[a, 'binning'].measured['data']}, Saxe init, Adam, batch {cfg.run.train.batch_size}, "
        f"{n_s} seeds. "
        f"The IDNNs binning folds every {b} value above {cfg.idnns_range[1]:g} into its last bin: "
        f"the reason the literature disagreed"
    )
    sgd, gd = f"SGD (batch {cfg.run.train.batch_size})", "full-batch GD"
    versus = {(row, k): planes[net, k] for row, net in ((sgd, a), (gd, f"{a}_gd")) for k in ("binning", "kde_upper")}
    vs_title = f"{a}: full-batch gradient descent vs minibatch SGD, {cfg.run.train.n_epochs} epochs each ({n_s} seeds)"
    panels = lambda planes_, kind, t: plotting.panel_grid(planes_, kind=kind, col_labels=_labels(cfg), title=t)
    return [
        plotting.save(panels(grid, "plane", title), out / "infoplane_grid.png"),
        plotting.save(panels(grid, "mi_xt", title), out / "mi_xt_grid.png"),
        plotting.save(panels(versus, "plane", vs_title), out / "gd_vs_sgd.png"),
        plotting.save(panels(versus, "mi_xt", vs_title), out / "gd_vs_sgd_mi_xt.png"),
        plotting.save(_sensitivity(results, cfg), out / "sensitivity.png"),
    ]


# ---------------------------------------------------------------- claims


def _layer_stats(results, net, key) -> list:
    p = results["planes"][net, key]
    return _stats(p.epochs, p.i_xt, verdicts.cap_xt(p))


def _strong(vals, d_GxS, stats_G, last: int) -> verdicts.Verdict:
    """The drop at the sweep's largest-drop setting compresses and exceeds STRONG x the drop at its
    smallest-drop setting (paired over seeds)."""
    means = d_GxS.mean(axis=1)
    lo, hi = int(np.argmin(means)), int(np.argmax(means))
    if len(vals) < 2:
        return verdicts.undecided("one setting: nothing to compare")
    top = verdicts.decide(stats_G[hi][last])
    if top.outcome != "compresses":
        why = top.reason or "the layer does not compress at any setting"
        return top._replace(agrees=None, outcome="undecided", reason=f"at the largest-drop setting {vals[hi]:g}: {why}")
    return verdicts.positive(
        d_GxS[hi] - STRONG * d_GxS[lo], what=f"drop at {vals[hi]:g} - {STRONG:g} x drop at {vals[lo]:g}"
    )


def claims(results: dict, cfg: Config) -> list[dict]:
    a, b, gd = cfg.run.model.activation, cfg.contrast_activation, f"{cfg.run.model.activation}_gd"
    dr = results["drops"]
    n_h = dr[a, "binning"][0].shape[1]
    last, lasts = n_h - 1, range(max(0, n_h - 2), n_h)
    est = {
        "binning": f"binning {cfg.bin_size:g}",
        "kde_upper": f"KDE upper {cfg.noise_var:g}",
        "idnns_binning": f"IDNNs {cfg.idnns_bins} bins",
    }
    ms = lambda net, k, l: harness.mean_se(dr[net, k][0][:, l])
    rel = lambda net, k, l: harness.mean_se(dr[net, k][0][:, l] / np.maximum(dr[net, k][1][:, l], 1e-12))
    unbounded = ("binning", "kde_upper")
    stats = {(net, k): _layer_stats(results, net, k) for net in (a, b, gd) for k in unbounded}

    c1 = {f"{a} layer {l + 1} drop, {est[k]} [bits]": ms(a, k, l) for k in unbounded for l in lasts}
    c1.update({f"{a} layer {last + 1} drop / peak, {est[k]}": rel(a, k, last) for k in unbounded})
    sgd = {est[k]: verdicts.decide(stats[a, k][last]) for k in unbounded}
    v1 = verdicts.every(sgd)

    c2 = {f"{b} layer {last + 1} drop, {est[k]} [bits]": ms(b, k, last) for k in unbounded}
    c2.update(
        {
            f"{b} largest hidden-layer drop / peak, {est[k]}": harness.mean_se(
                (dr[b, k][0] / np.maximum(dr[b, k][1], 1e-12)).max(axis=1)
            )
            for k in unbounded
        }
    )
    c2[f"{b} layer {last + 1} drop, {est['idnns_binning']} (folded; not used for the verdict) [bits]"] = ms(
        b, "idnns_binning", last
    )
    v2 = verdicts.every({est[k]: verdicts.network(stats[b, k], want="does not compress") for k in unbounded})

    c3 = {
        f"{a} layer {last + 1} drop, {net_label}, {est[k]} [bits]": ms(net, k, last)
        for k in unbounded
        for net, net_label in ((a, "SGD"), (gd, "full-batch GD"))
    }
    v3 = verdicts.every({est[k]: verdicts.decide(stats[gd, k][last]) for k in unbounded})
    if v1.agrees is not True:  # GD "as SGD does" needs SGD's compression first
        v3 = v3._replace(
            agrees=None, outcome="undecided", reason=f"SGD's own compression is not shown: {v1.reason or v1.outcome}"
        )

    c4, strong = {}, {}
    for opt in ("bin_size", "noise_var"):
        vals, d, st = results["sweeps"][a][opt]
        d = d[:, :, last]  # G x S
        c4[f"{a} layer {last + 1} drop at {opt} {vals[0]:g} [bits]"] = harness.mean_se(d[0])
        c4[f"{a} layer {last + 1} drop at {opt} {vals[-1]:g} [bits]"] = harness.mean_se(d[-1])
        c4[f"range of that drop over the {len(vals)} {opt} values [bits]"] = harness.mean_se(d.max(0) - d.min(0))
        strong[opt] = _strong(vals, d, st, last)
    v4 = verdicts.every(strong)

    src = "Saxe et al. 2018 (ICLR)"
    return [
        verdicts.entry(
            f"{a} networks compress: the last hidden layers' I(X;T) falls after its peak",
            f"{src}, Fig. 1 / Shwartz-Ziv & Tishby 2017, Fig. 3",
            v1,
            c1,
        ),
        verdicts.entry(f"{b} networks do not compress (unbounded binning and KDE)", f"{src}, Fig. 1", v2, c2),
        verdicts.entry(
            "full-batch GD compresses as SGD does (compression is not caused by SGD noise)", f"{src}, Sec. 4", v3, c3
        ),
        verdicts.entry(
            "the size of the drop depends strongly on the bin size and on the KDE noise variance",
            f"{src} (estimator settings); Goldfeld et al. 2019 (binning tracks clustering at the bin scale)",
            v4,
            c4,
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("saxe", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
