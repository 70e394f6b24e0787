"""How robust is "this layer compresses"? One network, every estimator and setting

Trains the 12-bit task's 12-10-7-5-4-3-2 network with tanh and with ReLU (several seeds, one vmapped
call each; Adam 4e-4, batch 256, as in experiments.tishby) and their 8-bit quantization-aware twins, then
measures every hidden layer's peak-to-final I(X;T) drop under a grid of estimators and settings:
Saxe's binning at several bin sizes (one sweep call), IDNNs-style binning with 30 bins in fixed,
per-layer and per-neuron ranges and with equal-mass bins, KDE upper bound at several noise variances
(one sweep call), Kraskov kNN at two k, EDGE averaged over projection keys, matrix-based Rényi entropy
at two orders and both kernel-width rules, and the exact plane of the 8-bit twin. A layer compresses
under a setting when its mean drop over seeds exceeds 0.05 bits and 5% of its peak, and twice the
standard error from the seeds and the estimator's own randomness (EDGE keys, Rényi subsets) combined.
For each claim (tanh compresses; ReLU does not) the README table gives the share of settings that
support it.

    python -m experiments.robustness            # 3 seeds x 2 activations, 3000 epochs, 40 kept, full grid
    python -m experiments.robustness --quick    # CI-sized
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from experiments import _grid
from experiments import _harness as harness
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

MIN_BITS, MIN_FRACTION = 0.05, 0.05  # a drop below 0.05 bits or 5% of the layer's peak is not compression


def _default_run() -> RunConfig:
    return RunConfig(
        MLPConfig((12, 10, 7, 5, 4, 3, 2), activation="tanh"),
        DataConfig(name="szt_12bit"),
        TrainConfig(optimizer="adam", learning_rate=4e-4, batch_size=256, n_epochs=3000, schedule="log:40"),
    )


@dataclass(frozen=True)
class Config:
    run: RunConfig = field(default_factory=_default_run)
    activations: tuple = ("tanh", "relu")
    seeds: int = 3
    bin_sizes: tuple = (0.01, 0.03, 0.1, 0.3)
    n_bins: int = 30  # 0: no IDNNs-style binning modes
    noise_vars: tuple = (1e-4, 1e-3, 1e-2, 1e-1)
    knn_k: tuple = (3, 10)
    edge_keys: int = 4  # 0: no EDGE
    renyi_alphas: tuple = (1.01, 2.0)
    renyi_widths: tuple = ("silverman", "knn")
    renyi_subset: int = 256
    exact_bits: int = 8  # 0: no quantized twin


QUICK = {
    "seeds": 2,
    "run.train.n_epochs": 60,
    "run.train.schedule": "log:5",
    "activations": ("tanh", "relu"),
    "bin_sizes": (0.1,),
    "n_bins": 0,
    "noise_vars": (1e-1,),
    "knn_k": (),
    "edge_keys": 0,
    "renyi_alphas": (2.0,),
    "renyi_widths": ("silverman",),
    "renyi_subset": 128,
    "exact_bits": 0,
}


def grid(cfg: Config) -> list:
    g = []
    if cfg.bin_sizes:
        g.append(
            _grid.Setting(
                "bin size {:g}",
                "binning",
                {"bin_size": cfg.bin_sizes[0]},
                {"bin_size": [float(b) for b in cfg.bin_sizes]},
            )
        )
    if cfg.n_bins:
        nb = cfg.n_bins
        g += [
            _grid.Setting(f"{nb} bins {m}", "binning", {"n_bins": nb, "range_mode": m})
            for m in ("fixed", "layer", "neuron")
        ]
        g.append(
            _grid.Setting(
                f"{nb} bins quantile", "binning", {"n_bins": nb, "range_mode": "layer", "spacing": "quantile"}
            )
        )
    if cfg.noise_vars:
        g.append(_grid.Setting("KDE var {:g}", "kde", {}, {"noise_var": [float(v) for v in cfg.noise_vars]}))
    g += [_grid.Setting(f"kNN k={k}", "knn", {"k": k}) for k in cfg.knn_k]
    if cfg.edge_keys:
        g.append(_grid.Setting(f"EDGE x{cfg.edge_keys}", "edge", {"n_keys": cfg.edge_keys}))
    for w in cfg.renyi_widths:
        g.append(
            _grid.Setting(
                f"Renyi {w} a={{:g}}",
                "renyi",
                {"width": w, "subset": cfg.renyi_subset},
                {"alpha": [float(a) for a in cfg.renyi_alphas]},
            )
        )
    return g


def drop_stats(plane) -> dict:
    """Per hidden layer: mean drop over seeds, its standard error (seeds and estimator noise combined),
    the mean peak, and whether the layer compresses."""
    i_xt = np.asarray(plane.i_xt, float)[:, :, :-1]  # S x E x hidden layers
    s = i_xt.shape[0]
    drop = harness.peak_to_final(i_xt)  # S x L
    se_seed = drop.std(axis=0, ddof=1) / np.sqrt(s) if s > 1 else np.zeros(drop.shape[1])
    se_est = np.zeros(drop.shape[1])
    try:
        est = np.asarray(plane.i_xt_se, float)[:, :, :-1]
        peak = i_xt.argmax(axis=1)  # S x L
        se_peak = np.take_along_axis(est, peak[:, None, :], axis=1)[:, 0]
        se_est = np.sqrt((se_peak**2 + est[:, -1] ** 2).mean(axis=0) / s)
    except AttributeError:
        pass
    se = np.sqrt(se_seed**2 + se_est**2)
    mean, top = drop.mean(axis=0), i_xt.max(axis=1).mean(axis=0)
    ok = np.isfinite(mean)
    compresses = ok & (mean > MIN_BITS) & (mean > MIN_FRACTION * top) & (mean > 2 * se)
    return {"drop": mean, "se": se, "peak": top, "compresses": compresses, "finite": ok}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    stats, dpi, excluded, settings = {}, {}, {}, None
    binary_x = _grid.binary_inputs(cfg.run)
    for act in cfg.activations:
        base = cfg.run.replace(**{"model.activation": act})
        dirs = pipeline.train_or_reuse(base, range(cfg.seeds), out / "runs" / act, force=force)
        planes = _grid.evaluate(dirs, grid(cfg), out / "planes" / act)
        if cfg.exact_bits:
            q = pipeline.train_or_reuse(
                base.replace(**{"model.quant_bits": cfg.exact_bits}),
                range(cfg.seeds),
                out / "runs" / f"{act}_{cfg.exact_bits}bit",
                force=force,
            )
            planes[f"exact ({cfg.exact_bits}-bit twin)"] = pipeline.evaluate_runs(
                q, "exact", {}, out=out / "planes" / f"{act}_{cfg.exact_bits}bit"
            )
        stats[act] = {label: drop_stats(p) for label, p in planes.items()}
        dpi[act] = {label: _grid.dpi_check(p) for label, p in planes.items()}
        excluded[act] = {
            label: why for label, p in planes.items() if (why := _grid.unusable(p, dpi[act][label], binary_x))
        }
        settings = list(planes)
        dataset = planes[settings[0]].measured["data"]
    table = {
        act: {lab: {k: np.round(v.astype(float), 4).tolist() for k, v in st.items()} for lab, st in s.items()}
        for act, s in stats.items()
    }
    summary = {"dataset": dataset, "settings": settings, "drops": table, "dpi": dpi, "excluded": excluded}
    return {"stats": stats, "settings": settings, "excluded": excluded, "summary": summary}


def share(stats: dict, act: str, *, compress: bool, excluded=()) -> tuple[int, int]:
    """(settings under which the network compresses (any hidden layer) or, with compress=False, under which
    no hidden layer does, settings where the estimator is defined and not ``excluded``)."""
    s = [st for lab, st in stats[act].items() if st["finite"].all() and lab not in excluded]
    hits = sum(bool(st["compresses"].any()) == compress for st in s)
    return hits, len(s)


def figures(results: dict, cfg: Config, out) -> list:
    stats, settings = results["stats"], results["settings"]
    fig = Figure(figsize=(2.2 + 2.6 * len(stats), 1.2 + 0.3 * len(settings)), layout="constrained")
    axes = fig.subplots(1, len(stats), squeeze=False)[0]
    for ax, (act, st) in zip(axes, stats.items()):
        rel = np.array([st[lab]["drop"] / np.maximum(st[lab]["peak"], 1e-9) for lab in settings])
        im = ax.imshow(rel, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -0.25, 1.0), aspect="auto")
        for (r, c), comp in np.ndenumerate(np.array([st[lab]["compresses"] for lab in settings])):
            ax.text(c, r, "C" if comp else "", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(rel.shape[1]), [f"T{l + 1}" for l in range(rel.shape[1])], fontsize=8)
        ax.set_yticks(range(len(settings)), settings if ax is axes[0] else [""] * len(settings), fontsize=7)
        ax.set_title(f"{act}", fontsize=9)
    fig.colorbar(im, ax=axes[-1], label="peak-to-final drop / peak I(X;T)")
    fig.suptitle("compression per hidden layer and estimator setting (C: beyond seed and estimator noise)", fontsize=9)
    return [plotting.save(fig, out / "heatmap.png")]


def claims(results: dict, cfg: Config) -> list[dict]:
    stats = results["stats"]
    out = []
    for act, compress, text, source in (
        (
            "tanh",
            True,
            "tanh networks compress (a hidden layer loses information about the input late in training)",
            "Shwartz-Ziv & Tishby 2017; Saxe et al. 2018 (binning)",
        ),
        ("relu", False, "ReLU networks do not compress", "Saxe et al. 2018"),
    ):
        if act not in stats:
            continue
        skip = results.get("excluded", {}).get(act, {})
        hits, n = share(stats, act, compress=compress, excluded=skip)
        usable = [st for lab, st in stats[act].items() if lab not in skip]
        per_layer = {
            f"T{l + 1}": f"{int(sum(st['compresses'][l] for st in usable))} of {len(usable)}"
            for l in range(len(next(iter(stats[act].values()))["drop"]))
        }
        out.append(
            {
                "claim": text,
                "source": source,
                "agrees": bool(hits > n / 2) if n else None,
                "measured": {
                    "share of estimator settings supporting it": f"{hits} of {n} ({hits / max(n, 1):.0%})",
                    "settings under which each hidden layer compresses": per_layer,
                    "settings left out of the share (undecided)": skip or "none",
                },
            }
        )
    return out


def main(argv=None) -> dict:
    return harness.main("robustness", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
