"""Exact information planes of quantized networks (Lorenzen, Igel & Nielsen, ICLR 2022), and every estimator against them

Set up as Lorenzen et al.'s code (ExactIBAnalysisInQNNs) ran it: the 12-bit task's 12-10-7-5-4-3-2
network with quantization-aware training and their quantizers (``model.quant_range=minmax``,
``ibjax.quantize``: tanh on the batch [min, max]; ReLU layers and the output logits on a moving-average
[min, max], their kernels on [min, max]; TensorFlow's nudged fake-quant grid; straight-through
gradients), truncated-normal init with std 1/sqrt(fan_out), Adam 1e-4, batch 256, 8000 epochs, 10
seeds vmapped; tanh and ReLU, 8 and 4 bits, and the float networks for the accuracy comparison. A
quantized layer takes finitely many values, so its information plane is computed exactly by counting
codes (estimator ``exact``: I(X;T) = H(T), I(T;Y) from the counts; no bins, no noise). Every continuous
estimator is then run on the same networks' activations (binning with 30 and 100 bins in fixed, per-layer
and per-neuron ranges and per-layer equal-mass bins; KDE at several noise variances in one sweep call;
Kraskov kNN; EDGE averaged over projection keys) and compared with the exact plane: the mean absolute
error in bits per layer, and per layer whether the estimator agrees with the exact plane on compression
(``ibjax.claims``). The MNIST case is their MNIST-Bottleneck-2 network (784-16-8-4-2-10 ReLU, 8 bits,
3000 epochs, 5 seeds) on the 10k images we have (8000 train; exact plane on all 10,000, where they
used the 70,000 of train + test), whose 2-unit layer's exact plane is far below log2 N.

    python -m experiments.quantized            # Lorenzen et al.'s setup (above)
    python -m experiments.quantized --quick    # CI-sized
    python -m experiments.quantized --set run.model.quant_range=fixed   # fixed grids + a learned PACT clip

``quant_range=fixed`` (this study's earlier quantizers: tanh on [-1, 1], ReLU on a learned [0, alpha],
the softmax output on [0, 1]) stays available as a contrast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from experiments import _grid
from experiments import _harness as harness
from ibjax import pipeline, plotting
from ibjax.claims import RULE, Verdict, cap_ty, cap_xt, compression, decide, entry, every, holds, positive, undecided
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

ACCURACY_GAP = 3e-2  # "within a few points": float minus 8-bit test accuracy below this


def _default_run() -> RunConfig:  # Lorenzen et al.'s SYN runs: quantizers, init, Adam 1e-4, batch 256, 8000 epochs
    return RunConfig(
        MLPConfig((12, 10, 7, 5, 4, 3, 2), activation="tanh", init="saxe", quant_bits=8, quant_range="minmax"),
        DataConfig(name="szt_12bit"),
        TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=256, n_epochs=8000, schedule="log:40"),
    )


def _mnist_run() -> RunConfig:  # their MNIST-Bottleneck-2 (ReLU, 8 bits, 3000 epochs) on the 10k test images
    return RunConfig(
        MLPConfig((784, 16, 8, 4, 2, 10), activation="relu", init="saxe", quant_bits=8, quant_range="minmax"),
        DataConfig(name="mnist_test", train_frac=0.8),
        TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=256, n_epochs=3000, schedule="log:30"),
    )


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=_default_run)
    activations: tuple = harness.setting(("tanh", "relu"), harness.activations())
    bits: tuple = harness.setting((8, 4), harness.distinct(2, 4, 8))
    seeds: int = harness.setting(10, harness.integer(least=1))
    n_bins: tuple = harness.setting((30, 100), harness.distinct(), harness.each(harness.option("binning", "n_bins")))
    noise_vars: tuple = harness.setting(
        (1e-3, 1e-2, 1e-1), harness.distinct(), harness.each(harness.option("kde", "noise_var"))
    )
    knn_k: int = harness.setting(3, harness.integer(least=1, zero=True))  # 0: no kNN
    edge_keys: int = harness.setting(4, harness.integer(least=1, zero=True))  # 0: no EDGE
    mnist: bool = True
    mnist_run: RunConfig = field(default_factory=_mnist_run)
    # > 1 with more than one kept epoch: the MNIST plane joins the fitting and output claims
    mnist_seeds: int = harness.setting(5, harness.integer(least=1))


QUICK = {
    "seeds": 2,
    "run.train.n_epochs": 60,
    "run.train.schedule": "log:5",
    "activations": ("relu",),
    "bits": (4,),
    "n_bins": (30,),
    "noise_vars": (1e-1,),
    "knn_k": 0,
    "edge_keys": 0,
    "mnist": False,
}


def grid(cfg: Config) -> list:
    g = []
    for nb in cfg.n_bins:
        g += [
            _grid.Setting(f"bin{nb} {m}", "binning", {"n_bins": nb, "range_mode": m})
            for m in ("fixed", "layer", "neuron")
        ]
        g.append(
            _grid.Setting(
                f"bin{nb} layer-quantile", "binning", {"n_bins": nb, "range_mode": "layer", "spacing": "quantile"}
            )
        )
    if cfg.noise_vars:
        g.append(_grid.Setting("KDE var {:g}", "kde", {}, {"noise_var": [float(v) for v in cfg.noise_vars]}))
    if cfg.knn_k:
        g.append(_grid.Setting(f"kNN k={cfg.knn_k}", "knn", {"k": cfg.knn_k}))
    if cfg.edge_keys:
        g.append(_grid.Setting("EDGE", "edge", {"n_keys": cfg.edge_keys}))
    return g


def _final_acc(dirs) -> list[float]:
    return pipeline.load_metrics(dirs)["test_acc"][:, -1].tolist()


def run(cfg: Config, out, *, force: bool = False) -> dict:
    nets, accuracy, exact, estimated = {}, {}, {}, {}
    for act in cfg.activations:
        base = cfg.run.replace(**{"model.activation": act, "model.quant_bits": 0})
        accuracy[f"{act} float"] = _final_acc(
            pipeline.train_or_reuse(base, range(cfg.seeds), out / "runs" / f"{act}_float", force=force)
        )
        for b in cfg.bits:
            name = f"{act} {b}-bit"
            dirs = pipeline.train_or_reuse(
                base.replace(**{"model.quant_bits": b}), range(cfg.seeds), out / "runs" / f"{act}_{b}bit", force=force
            )
            accuracy[name] = _final_acc(dirs)
            t0 = time.perf_counter()
            exact[name] = pipeline.evaluate_runs(
                dirs, "exact", {}, out=out / "planes" / f"{act}_{b}bit", recompute=force
            )
            nets[name] = {"exact_seconds": round(time.perf_counter() - t0, 2)}
            estimated[name] = _grid.evaluate(dirs, grid(cfg), out / "planes" / f"{act}_{b}bit", recompute=force)
    binary_x = _grid.binary_inputs(cfg.run)
    errors = {name: compare(exact[name], estimated[name], binary_x=binary_x) for name in exact}
    mnist, mnist_plane = run_mnist(cfg, out, force=force) if cfg.mnist else (None, None)
    table = error_table(errors, exact)
    harness.save_text(out / "error_table.md", table)
    layers = exact[next(iter(exact))].layer_names
    _, counts = np.unique(pipeline.load_data(cfg.run).y, return_counts=True)
    h_y = float(-(counts / counts.sum() * np.log2(counts / counts.sum())).sum())
    return {
        "exact": exact,
        "h_y": h_y,
        "estimated": estimated,
        "errors": errors,
        "accuracy": accuracy,
        "mnist_plane": mnist_plane,
        "mnist_h_y": cap_ty(pipeline.load_data(cfg.mnist_run).y) if cfg.mnist else None,
        "summary": {
            "dataset": exact[next(iter(exact))].measured["data"],
            "networks": list(exact),
            "layers": list(layers),
            "accuracy": {k: harness.mean_se(v) for k, v in accuracy.items()},
            "exact_seconds": {k: v["exact_seconds"] for k, v in nets.items()},
            "errors": errors,
            "mnist": mnist,
            "settings": [s.label for s in grid(cfg)],
        },
    }


def compare(exact, planes: dict, *, binary_x: bool = False) -> dict:
    """Per estimator setting: mean absolute error per layer (bits; over seeds and epochs) of I(X;T) and
    I(T;Y) against the exact plane, and per layer whether it agrees on the presence of compression."""
    ref = _grid.outcomes(exact)
    drop = exact.i_xt.max(axis=1) - exact.i_xt[:, -1]  # S x L
    out = {"exact outcome": ref, "exact drop": [harness.mean_se(d) for d in drop.T]}
    for label, p in planes.items():
        est = np.asarray(p.i_xt, float)
        finite = bool(np.isfinite(est).all())
        mae_xt = np.abs(est - exact.i_xt).mean(axis=(0, 1))
        mae_ty = np.abs(np.asarray(p.i_ty, float) - exact.i_ty).mean(axis=(0, 1))
        agree = _grid.agreement(_grid.outcomes(p), ref)
        out[label] = {
            "mae_i_xt": np.round(mae_xt, 4).tolist(),
            "mae_i_ty": np.round(mae_ty, 4).tolist(),
            "agrees": agree,
            "finite": finite,
            "dpi": _grid.dpi_check(p),
        }
        out[label]["undecided"] = _grid.unusable(p, out[label]["dpi"], binary_x)  # "": its agreement counts
    return out


def error_table(errors: dict, exact: dict) -> str:
    """Markdown: per network, estimator setting x layer MAE of I(X;T) in bits (a * marks disagreement on
    compression with the exact plane)."""
    lines = []
    for name, e in errors.items():
        layers = [f"T{l + 1}" for l in range(len(e["exact outcome"]))]
        lines += [
            f"**{name}** (exact plane compresses in: "
            f"{', '.join(l for l, c in zip(layers, e['exact outcome']) if c == 'compresses') or 'no layer'})",
            "",
            "| setting | " + " | ".join(layers) + " | agrees | DPI violations |",
            "|---" * (len(layers) + 3) + "|",
        ]
        for label, v in e.items():
            if not isinstance(v, dict) or "mae_i_xt" not in v:
                continue
            cells = [f"{m:.2f}" + {True: "", False: "*", None: "?"}[a] for m, a in zip(v["mae_i_xt"], v["agrees"])]
            d = v.get("dpi", {})
            dpi = "-" if d.get("violations") is None else f"{d['violations']}/{d['cells']}"
            n_dec = sum(a is not None for a in v["agrees"])
            agrees = f"{sum(a is True for a in v['agrees'])}/{n_dec}" if not v.get("undecided") else "undecided†"
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {agrees} | {dpi} |")
        why = sorted({v["undecided"] for v in e.values() if isinstance(v, dict) and v.get("undecided")})
        lines += ["", *(f"† {w}" for w in why)] if why else []
        lines.append("")
    return "\n".join(lines)


def run_mnist(cfg: Config, out, *, force: bool) -> tuple[dict, object]:
    t0 = time.perf_counter()
    dirs = pipeline.train_or_reuse(cfg.mnist_run, range(cfg.mnist_seeds), out / "runs" / "mnist_8bit", force=force)
    t1 = time.perf_counter()
    plane = pipeline.evaluate_runs(dirs, "exact", {}, out=out / "planes" / "mnist_8bit", recompute=force)
    t2 = time.perf_counter()
    final = plane.i_xt[:, -1].mean(axis=0)
    summary = {
        "dataset": plane.measured["data"],
        "network": "-".join(map(str, cfg.mnist_run.model.widths)) + f" {cfg.mnist_run.model.activation}",
        "n_samples": plane.measured.get("n_samples"),
        "train_seconds": round(t1 - t0, 1),
        "exact_plane_seconds": round(t2 - t1, 1),
        "items": int(np.prod(plane.shape[1:3])),
        "layers": int(plane.shape[-1]),
        "final_test_acc": harness.mean_se(_final_acc(dirs)),
        "i_xt_last": np.round(final, 3).tolist(),
        "i_ty_last": np.round(plane.i_ty[:, -1].mean(axis=0), 3).tolist(),
        "layers below log2 N at the last epoch (not vacuous)": [
            f"T{l + 1}" for l in np.flatnonzero(final < cap_xt(plane) - RULE.tolerance(cap_xt(plane)))
        ],
    }
    return summary, plane


def figures(results: dict, cfg: Config, out) -> list:
    exact, estimated, errors = results["exact"], results["estimated"], results["errors"]
    show = [
        lab
        for lab in (
            f"bin{cfg.n_bins[0]} fixed",
            f"bin{cfg.n_bins[0]} layer",
            f"KDE var {cfg.noise_vars[-1]:g}" if cfg.noise_vars else None,
            f"kNN k={cfg.knn_k}" if cfg.knn_k else None,
        )
        if lab and lab in next(iter(estimated.values()))
    ]
    planes = {}
    for name in exact:
        planes[(name, "exact")] = exact[name]
        planes.update({(name, lab): estimated[name][lab] for lab in show})
    paths = [
        plotting.save(
            plotting.panel_grid(
                planes, title="exact (counted) vs estimated information planes, quantized 12-bit networks"
            ),
            out / "planes.png",
        )
    ]
    labels = [
        lab
        for lab in next(iter(errors.values()))
        if isinstance(errors[next(iter(errors))][lab], dict) and "mae_i_xt" in errors[next(iter(errors))][lab]
    ]
    n_layers = len(next(iter(errors.values()))["exact outcome"])
    panels = {
        name: ([e[lab]["agrees"] for lab in labels], np.array([e[lab]["mae_i_xt"] for lab in labels]))
        for name, e in errors.items()
    }
    fig = _grid.agreement_figure(
        labels,
        [f"T{l + 1}" for l in range(n_layers)],
        panels,
        title="agrees with the exact plane on compression (green) / not (red) / undecided (grey); "
        "numbers: mean |I(X;T) error| in bits",
    )
    paths.append(plotting.save(fig, out / "agreement.png"))
    mp = results.get("mnist_plane")
    if mp is not None and len(mp.epochs) > 1:
        title = f"exact plane, {results['summary']['mnist']['network']} on {mp.measured['data']}, {mp.shape[1]} seed(s)"
        paths.append(plotting.save(plotting.info_plane(mp, title=title), out / "mnist_plane.png"))
    return paths


def _activation_dependence(exact: dict) -> list[dict]:
    """One claim per bit width: per hidden layer, the exact plane's verdict (ibjax.claims) for tanh and for
    ReLU; the dependence holds where both are decided and differ, fails where every pair is decided and
    the same, and is undecided otherwise (a count of compressing layers pooled over widths tied)."""
    bits = lambda act: {n.split(" ", 1)[1] for n in exact if n.split(" ", 1)[0] == act}
    out = []
    for w in sorted(bits("tanh") & bits("relu")):
        planes = {a: exact[f"{a} {w}"] for a in ("tanh", "relu")}
        measured, differ, open_pairs, n_pairs = {}, [], [], 0
        for l in range(planes["tanh"].i_xt.shape[-1] - 1):  # hidden layers
            v = {a: decide(compression(p.i_xt[:, :, l], p.epochs, cap=cap_xt(p))) for a, p in planes.items()}
            where, n_pairs = f"T{l + 1}", n_pairs + 1
            measured[f"{where}: tanh / ReLU"] = " / ".join(
                f"{x.outcome} (drop {x.effect:.2f} bits{', ' + x.reason if x.reason else ''})" for x in v.values()
            )
            if "undecided" in (v["tanh"].outcome, v["relu"].outcome):
                open_pairs.append(where)
            elif v["tanh"].outcome != v["relu"].outcome:
                differ.append(where)
        agrees = True if differ else (None if open_pairs or not n_pairs else False)
        reason = (
            f"no hidden layer where the tanh and ReLU verdicts are both decided and differ; undecided at "
            f"{len(open_pairs)} of {n_pairs}: {', '.join(open_pairs)}"
        )
        outcome = "holds" if agrees else ("fails" if agrees is False else "undecided")
        verdict = Verdict(agrees, outcome, float(len(differ)), (np.nan, np.nan), np.nan, reason)
        measured["layers where the verdicts differ"] = ", ".join(differ) or "none"
        out.append(
            entry(
                f"compression of the hidden layers depends on the activation (tanh vs ReLU), {w} (exact planes)",
                "Lorenzen, Igel & Nielsen 2022, abstract",
                verdict,
                measured,
            )
        )
    return out or [
        entry(
            "compression of the hidden layers depends on the activation (tanh vs ReLU), per bit width (exact planes)",
            "Lorenzen, Igel & Nielsen 2022, abstract",
            undecided("no network pair of the same bit width"),
            {},
        )
    ]


def claims(results: dict, cfg: Config) -> list[dict]:
    exact, errors, acc = results["exact"], results["errors"], results["accuracy"]
    out_layer = {n: decide(compression(p.i_xt[:, :, -1], p.epochs, cap=cap_xt(p))) for n, p in exact.items()}
    fit = {name: _fitting(p, results["h_y"]) for name, p in exact.items()}
    mp = results.get("mnist_plane")
    if mp is not None and mp.shape[1] > 1 and len(mp.epochs) > 1:  # seeds and epochs to decide on
        name = f"MNIST {results['summary']['mnist']['network']} 8-bit"
        out_layer[name] = decide(compression(mp.i_xt[:, :, -1], mp.epochs, cap=cap_xt(mp)))
        fit[name] = _fitting(mp, results["mnist_h_y"])
    binning = [
        (name, lab)
        for name in errors
        for lab, v in errors[name].items()
        if isinstance(v, dict) and lab.startswith("bin") and not v.get("undecided")
    ]
    # judged only on the layers where both verdicts are decided (None: the exact plane or the estimate
    # cannot decide there, e.g. a layer saturated at 12 bits): refutes = one decided layer disagrees
    n_flip = sum(any(a is False for a in errors[name][lab]["agrees"]) for name, lab in binning)
    n_ok = sum(
        all(a is not False for a in errors[name][lab]["agrees"]) and any(a is True for a in errors[name][lab]["agrees"])
        for name, lab in binning
    )
    if not binning:
        v_bin = undecided("no usable binning setting")
    elif n_flip and n_ok:
        v_bin = holds(True, effect=n_flip / len(binning))
    elif n_flip + n_ok < len(binning):
        v_bin = Verdict(
            None,
            "undecided",
            np.nan,
            (np.nan, np.nan),
            np.nan,
            f"no power: {len(binning) - n_flip - n_ok} of {len(binning)} binning settings are decided in no "
            "layer, and the decided ones all go one way",
        )
    else:
        v_bin = holds(False, effect=n_flip / len(binning), what="every binning setting gives the same pattern")
    acts = list(cfg.activations)
    gaps = {a: np.array(acc[f"{a} float"]) - np.array(acc[f"{a} 8-bit"]) for a in acts if f"{a} 8-bit" in acc}
    src = "Lorenzen, Igel & Nielsen 2022"
    v_acc = (
        every({a: positive(ACCURACY_GAP - g, what=f"{ACCURACY_GAP:g} - ({a} float - 8-bit)") for a, g in gaps.items()})
        if gaps
        else undecided("no 8-bit network beside a float one")
    )
    return [
        entry(
            f"a fitting phase in every layer: I(T;Y) rises (by > {RULE.min_drop_bits:g} bits) in all layers that "
            "start below H(Y) (exact planes)",
            f"{src}, abstract",
            every({f"{k} {l}": v for k, f in fit.items() for l, v in f.items()})
            if any(fit.values())
            else undecided("every layer starts at H(Y)"),
            {f"{k}: layers starting below H(Y)": sorted(f) for k, f in fit.items()},
        ),
        entry(
            "the output layer compresses in all experiments (exact planes)",
            f"{src}, abstract",
            every(out_layer),
            {f"{n}: output peak-to-final drop [bits]": round(v.effect, 4) for n, v in out_layer.items()},
        ),
        *_activation_dependence(exact),
        entry(
            "binning choices alone give qualitatively different results (some settings support, some refute "
            "the exact plane's compression pattern)",
            f"{src}, Sec. 4",
            v_bin,
            {
                "usable binning settings x networks agreeing in every decided layer": f"{n_ok} of {len(binning)}",
                "disagreeing in at least one layer": f"{n_flip} of {len(binning)}",
            },
        ),
        entry(
            "8-bit quantization-aware training reaches the float network's accuracy within a few points",
            f"{src}, Sec. 5 (accuracy of quantized networks)",
            v_acc,
            {
                **{f"{k} test accuracy": harness.mean_se(v) for k, v in acc.items()},
                **{f"{a}: float minus 8-bit": harness.mean_se(g) for a, g in gaps.items()},
            },
        ),
    ]


def _fitting(plane, h_y: float) -> dict:
    """Per layer that starts below its ceiling H(Y) (a layer at H(Y), all inputs apart, cannot rise):
    whether its I(T;Y) rises, peak minus first over seeds, by more than the rule's minimum change."""
    i_ty = np.asarray(plane.i_ty, float)  # S x E x L
    room = i_ty[:, 0].mean(axis=0) < h_y - RULE.tolerance(h_y)
    return {
        f"T{l + 1}": positive(i_ty[:, :, l].max(axis=1) - i_ty[:, 0, l], threshold=RULE.min_drop_bits, what="rise")
        for l in np.flatnonzero(room)
    }


def main(argv=None) -> dict:
    return harness.main("quantized", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
