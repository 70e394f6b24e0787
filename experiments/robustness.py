"""How robust is "this layer compresses"? One network, every estimator and setting

Trains the 12-bit task's 12-10-7-5-4-3-2 network with tanh and with ReLU (several seeds, one vmapped
call each; Adam 4e-4, batch 256, as in experiments.tishby) and their 8-bit quantization-aware twins, then
measures every hidden layer's peak-to-final I(X;T) drop under a grid of estimators and settings:
Saxe's binning at several bin sizes (one sweep call), IDNNs-style binning with 30 bins in fixed,
per-layer and per-neuron ranges and with equal-mass bins, KDE upper bound at several noise variances
(one sweep call), Kraskov kNN at two k, EDGE averaged over projection keys, matrix-based Rényi entropy
at two orders and both kernel-width rules, and the exact plane of the 8-bit twin. Each setting's
network is decided by the shared verdict rule (``ibjax.claims``: a hidden layer compresses when its
peak-to-final drop's interval over seeds lies above max(0.1 bits, 5% of its peak); undecided at the
estimate's cap or without power; the network compresses when one hidden layer does, does not when
none can). Settings of one estimator family (binning, KDE, kNN, EDGE, Rényi) vote within it; each
family then votes once on the claim (tanh compresses; ReLU does not), so two kNN k or four bin sizes
count as one family. The exact plane of the quantized twin, the one estimator-free measurement, is
its own claim line and does not vote.

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
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

FAMILIES = {"binning": "binning", "kde": "KDE", "knn": "kNN", "edge": "EDGE", "renyi": "Renyi"}


def _default_run() -> RunConfig:
    return RunConfig(
        MLPConfig((12, 10, 7, 5, 4, 3, 2), activation="tanh"),
        DataConfig(name="szt_12bit"),
        TrainConfig(optimizer="adam", learning_rate=4e-4, batch_size=256, n_epochs=3000, schedule="log:40"),
    )


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=_default_run)
    activations: tuple = harness.setting(("tanh", "relu"), harness.activations())
    seeds: int = harness.setting(3, harness.integer(least=1))
    bin_sizes: tuple = harness.setting(
        (0.01, 0.03, 0.1, 0.3), harness.distinct(), harness.each(harness.option("binning", "bin_size"))
    )
    n_bins: int = harness.setting(30, harness.integer(least=2, zero=True))  # 0: no IDNNs-style binning modes
    noise_vars: tuple = harness.setting(
        (1e-4, 1e-3, 1e-2, 1e-1), harness.distinct(), harness.each(harness.option("kde", "noise_var"))
    )
    knn_k: tuple = harness.setting((3, 10), harness.distinct(least=0), harness.each(harness.integer(least=1)))
    edge_keys: int = harness.setting(4, harness.integer(least=1, zero=True))  # 0: no EDGE
    renyi_alphas: tuple = harness.setting(
        (1.01, 2.0), harness.distinct(least=0), harness.each(harness.option("renyi", "alpha"))
    )
    renyi_widths: tuple = harness.setting(
        ("silverman", "knn"), harness.distinct(least=0), harness.each(harness.option("renyi", "width"))
    )
    renyi_subset: int = harness.setting(256, harness.integer(least=2, zero=True))
    exact_bits: int = harness.setting(8, harness.one_of(0, 2, 4, 8))  # 0: no quantized twin


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
    "renyi_subset": 64,
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


def cap(plane) -> float:
    """The estimate's cap: log2 of the samples it sees (Renyi: its subset)."""
    n = plane.measured["n_samples"]
    return float(np.log2(min(n, plane.settings.get("subset") or n)))


def drop_stats(plane) -> dict:
    """Per hidden layer: the verdict module's statistic and outcome (drop, peak, compresses), and the
    network's verdicts for both claims; an undefined (NaN) estimate decides nothing."""
    i_xt = np.asarray(plane.hidden().i_xt, float)  # S x E x hidden layers
    n_h = i_xt.shape[2]
    if not np.isfinite(i_xt).all():
        nan = np.full(n_h, np.nan)
        none = verdicts.undecided("undefined (NaN) estimates")
        return {
            "drop": nan,
            "peak": nan,
            "compresses": np.zeros(n_h, bool),
            "finite": np.zeros(n_h, bool),
            "network": {"compresses": none, "does not compress": none},
        }
    stats = verdicts.layers(i_xt, plane.epochs, cap=cap(plane))
    return {
        "drop": np.array([st.drop.mean for st in stats]),
        "peak": np.array([st.peak for st in stats]),
        "compresses": np.array([verdicts.decide(st).outcome == "compresses" for st in stats]),
        "finite": np.ones(n_h, bool),
        "network": {w: verdicts.network(stats, want=w) for w in ("compresses", "does not compress")},
    }


def run(cfg: Config, out, *, force: bool = False) -> dict:
    stats, dpi, excluded, settings = {}, {}, {}, None
    binary_x = _grid.binary_inputs(cfg.run)
    for act in cfg.activations:
        base = cfg.run.replace(**{"model.activation": act})
        dirs = pipeline.train_or_reuse(base, range(cfg.seeds), out / "runs" / act, force=force)
        planes = _grid.evaluate(dirs, grid(cfg), out / "planes" / act, recompute=force)
        if cfg.exact_bits:
            q = pipeline.train_or_reuse(
                base.replace(**{"model.quant_bits": cfg.exact_bits}),
                range(cfg.seeds),
                out / "runs" / f"{act}_{cfg.exact_bits}bit",
                force=force,
            )
            planes[f"exact ({cfg.exact_bits}-bit twin)"] = pipeline.evaluate_runs(
                q, "exact", {}, out=out / "planes" / f"{act}_{cfg.exact_bits}bit", recompute=force
            )
        stats[act] = {label: drop_stats(p) for label, p in planes.items()}
        dpi[act] = {label: _grid.dpi_check(p) for label, p in planes.items()}
        excluded[act] = {
            label: why for label, p in planes.items() if (why := _grid.unusable(p, dpi[act][label], binary_x))
        }
        settings = list(planes)
        dataset = planes[settings[0]].measured["data"]
    table = {
        act: {
            lab: {k: np.round(v.astype(float), 4).tolist() for k, v in st.items() if k != "network"}
            | {"network": st["network"]["compresses"].outcome}
            for lab, st in s.items()
        }
        for act, s in stats.items()
    }
    summary = {"dataset": dataset, "settings": settings, "drops": table, "dpi": dpi, "excluded": excluded}
    families = {act: {lab: p.estimator for lab, p in planes.items()} for act in stats}  # same grid per activation
    return {"stats": stats, "settings": settings, "excluded": excluded, "families": families, "summary": summary}


def family_votes(stats: dict, families: dict, want: str, excluded=()) -> dict:
    """Family name -> its vote on ``want`` (its settings vote within it; the exact plane is left out)."""
    by = {}
    for lab, st in stats.items():
        if lab in excluded or families[lab] not in FAMILIES:
            continue
        by.setdefault(FAMILIES[families[lab]], {})[lab] = st["network"][want]
    return {fam: verdicts.vote(vs) for fam, vs in by.items()}


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
    stats, families = results["stats"], results["families"]
    out = []
    for act, want, text, source in (
        (
            "tanh",
            "compresses",
            "tanh networks compress (a hidden layer loses information about the input late in training)",
            "Shwartz-Ziv & Tishby 2017; Saxe et al. 2018 (binning)",
        ),
        ("relu", "does not compress", "ReLU networks do not compress", "Saxe et al. 2018"),
    ):
        if act not in stats:
            continue
        skip = results.get("excluded", {}).get(act, {})
        votes = family_votes(stats[act], families[act], want, skip)
        usable = [st for lab, st in stats[act].items() if lab not in skip]
        per_layer = {
            f"T{l + 1}": f"{int(sum(st['compresses'][l] for st in usable))} of {len(usable)}"
            for l in range(len(next(iter(stats[act].values()))["drop"]))
        }
        v = verdicts.vote(votes) if votes else verdicts.undecided("no usable estimator family")
        measured = {
            "family votes": {
                fam: fv.outcome if fv.agrees is not None else f"undecided: {fv.reason}" for fam, fv in votes.items()
            },
            "settings, network verdict": {
                lab: st["network"]["compresses"].outcome
                for lab, st in stats[act].items()
                if families[act][lab] in FAMILIES
            },
            "settings under which each hidden layer compresses": per_layer,
            "settings left out (undecided)": skip or "none",
        }
        out.append(verdicts.entry(f"{text} (estimator families vote once each)", source, v, measured))
        exact = [lab for lab in stats[act] if families[act][lab] == "exact"]
        for lab in exact:
            ve = stats[act][lab]["network"][want]
            out.append(
                verdicts.entry(
                    f"{text}: the exact plane of the quantized twin ({lab})",
                    source,
                    ve,
                    {"per hidden layer: compresses": stats[act][lab]["compresses"].tolist()},
                )
            )
    return out


def main(argv=None) -> dict:
    return harness.main("robustness", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
