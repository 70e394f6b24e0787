"""How robust is "this layer compresses"? One network (tanh, ReLU and their 8-bit twins), every estimator and
setting; estimator families vote once each (setup: results/robustness/NOTES.md).

    python -m experiments.robustness            # 3 seeds x 2 activations, 3000 epochs, 40 kept, full grid
    python -m experiments.robustness --quick    # CI-sized
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

FAMILIES = {"binning": "binning", "kde": "KDE", "knn": "kNN", "edge": "EDGE", "renyi": "Renyi"}


RUN = RunConfig(  # SZT's 12-bit network, as in experiments.tishby
    MLPConfig((12, 10, 7, 5, 4, 3, 2), activation="tanh"),
    DataConfig(name="szt_12bit"),
    TrainConfig(optimizer="adam", learning_rate=4e-4, batch_size=256, n_epochs=3000, schedule="log:40"),
)


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: RUN)
    activations: tuple = harness.setting(("tanh", "relu"), harness.activations())
    seeds: int = harness.setting(3, harness.integer(least=1))
    bin_sizes: tuple = harness.values_of((0.01, 0.03, 0.1, 0.3), harness.option("binning", "bin_size"))
    n_bins: int = harness.setting(30, harness.integer(least=2, zero=True))  # 0: no IDNNs-style binning modes
    noise_vars: tuple = harness.values_of((1e-4, 1e-3, 1e-2, 1e-1), harness.option("kde", "noise_var"))
    knn_k: tuple = harness.values_of((3, 10), harness.integer(least=1), least=0)
    edge_keys: int = harness.setting(4, harness.integer(least=1, zero=True))  # 0: no EDGE
    renyi_alphas: tuple = harness.values_of((1.01, 2.0), harness.option("renyi", "alpha"), least=0)
    renyi_widths: tuple = harness.values_of(("silverman", "knn"), harness.option("renyi", "width"), least=0)
    renyi_subset: int = harness.setting(256, harness.integer(least=2, zero=True))
    exact_bits: int = harness.setting(8, harness.one_of(0, 2, 4, 8))  # 0: no quantized twin


QUICK = {"seeds": 2, "run.train.n_epochs": 60, "run.train.schedule": "log:5", "activations": ("tanh", "relu")}
QUICK |= {"bin_sizes": (0.1,), "n_bins": 0, "noise_vars": (1e-1,), "knn_k": (), "edge_keys": 0, "exact_bits": 0}
QUICK |= {"renyi_alphas": (2.0,), "renyi_widths": ("silverman",), "renyi_subset": 64}


def grid(cfg: Config) -> list:
    S, nb = pipeline.EstimatorSetting, cfg.n_bins
    bins = {"bin_size": [float(b) for b in cfg.bin_sizes]}
    g = [S("bin size {:g}", "binning", {"bin_size": cfg.bin_sizes[0]}, bins)] if cfg.bin_sizes else []
    if nb:
        g += [S(f"{nb} bins {m}", "binning", {"n_bins": nb, "range_mode": m}) for m in ("fixed", "layer", "neuron")]
        g.append(S(f"{nb} bins quantile", "binning", {"n_bins": nb, "range_mode": "layer", "spacing": "quantile"}))
    if cfg.noise_vars:
        g.append(S("KDE var {:g}", "kde", {}, {"noise_var": [float(v) for v in cfg.noise_vars]}))
    g += [S(f"kNN k={k}", "knn", {"k": k}) for k in cfg.knn_k]
    g += [S(f"EDGE x{cfg.edge_keys}", "edge", {"n_keys": cfg.edge_keys})] if cfg.edge_keys else []
    alphas = {"alpha": [float(a) for a in cfg.renyi_alphas]}
    return g + [
        S(f"Renyi {w} a={{:g}}", "renyi", {"width": w, "subset": cfg.renyi_subset}, alphas) for w in cfg.renyi_widths
    ]


def run(cfg: Config, out, *, force: bool = False) -> dict:
    stats, dpi, excluded, families = {}, {}, {}, {}
    binary_x = pipeline.binary_inputs(cfg.run)
    for act in cfg.activations:
        base = cfg.run.replace(**{"model.activation": act})
        dirs = pipeline.train_or_reuse(base, range(cfg.seeds), out / "runs" / act, force=force)
        planes = pipeline.evaluate_grid(dirs, grid(cfg), out / "planes" / act, recompute=force)
        if cfg.exact_bits:
            twin, name = base.replace(**{"model.quant_bits": cfg.exact_bits}), f"{act}_{cfg.exact_bits}bit"
            q = pipeline.train_or_reuse(twin, range(cfg.seeds), out / "runs" / name, force=force)
            where = out / "planes" / name
            exact = pipeline.evaluate_runs(q, "exact", {}, out=where, recompute=force)
            planes[f"exact ({cfg.exact_bits}-bit twin)"] = exact
        stats[act] = {label: verdicts.hidden_drops(p) for label, p in planes.items()}
        dpi[act] = {label: verdicts.dpi_check(p) for label, p in planes.items()}
        why = {lab: verdicts.unusable(p, dpi[act][lab], binary_x) for lab, p in planes.items()}
        excluded[act] = {lab: w for lab, w in why.items() if w}
        families[act] = {lab: p.estimator for lab, p in planes.items()}
    settings = list(planes)
    row = lambda st: {k: np.round(v.astype(float), 4).tolist() for k, v in st.items() if k != "network"}
    table = {
        a: {lab: row(st) | {"network": st["network"]["compresses"].outcome} for lab, st in s.items()}
        for a, s in stats.items()
    }
    summary = {"dataset": planes[settings[0]].measured["data"], "settings": settings, "drops": table, "dpi": dpi}
    summary["excluded"] = excluded
    return {"stats": stats, "settings": settings, "excluded": excluded, "families": families, "summary": summary}


def figures(results: dict, cfg: Config, out) -> list:
    title = "compression per hidden layer and estimator setting (C: beyond seed and estimator noise)"
    return [plotting.save(plotting.compression_heatmap(results["stats"], title=title), out / "heatmap.png")]


CLAIMS = {  # activation -> (what it should do, the claim, its source)
    "tanh": (
        "compresses",
        "tanh networks compress (a hidden layer loses information about the input late in training)",
        "Shwartz-Ziv & Tishby 2017; Saxe et al. 2018 (binning)",
    ),
    "relu": ("does not compress", "ReLU networks do not compress", "Saxe et al. 2018"),
}


def claims(results: dict, cfg: Config) -> list[dict]:
    stats, families, out = results["stats"], results["families"], []
    for act, (want, text, source) in CLAIMS.items():
        if act not in stats:
            continue
        skip, st = results.get("excluded", {}).get(act, {}), stats[act]
        fam = {lab: FAMILIES[e] for lab, e in families[act].items() if e in FAMILIES}
        votes = verdicts.family_votes(st, fam, want, excluded=skip)
        usable = [s for lab, s in st.items() if lab not in skip]
        n_l = len(next(iter(st.values()))["drop"])
        per_layer = {
            f"T{l + 1}": f"{int(sum(s['compresses'][l] for s in usable))} of {len(usable)}" for l in range(n_l)
        }
        v = verdicts.vote(votes) if votes else verdicts.undecided("no usable estimator family")
        measured = {
            "family votes": {
                f: fv.outcome if fv.agrees is not None else f"undecided: {fv.reason}" for f, fv in votes.items()
            },
            "settings, network verdict": {lab: st[lab]["network"]["compresses"].outcome for lab in fam},
            "settings under which each hidden layer compresses": per_layer,
            "settings left out (undecided)": skip or "none",
        }
        out.append(verdicts.entry(f"{text} (estimator families vote once each)", source, v, measured))
        for lab in (lab for lab in st if families[act][lab] == "exact"):
            m = {"per hidden layer: compresses": st[lab]["compresses"].tolist()}
            out.append(
                verdicts.entry(
                    f"{text}: the exact plane of the quantized twin ({lab})", source, st[lab]["network"][want], m
                )
            )
    return out


def main(argv=None) -> dict:
    return harness.main("robustness", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
