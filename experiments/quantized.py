"""Exact information planes of quantized networks (Lorenzen, Igel & Nielsen, ICLR 2022), and every estimator against them

Set up as Lorenzen et al.'s code (ExactIBAnalysisInQNNs) ran it: the 12-bit task's 12-10-7-5-4-3-2 network with
quantization-aware training and their quantizers, tanh and ReLU, 8 and 4 bits, 10 seeds vmapped, and the float
networks for the accuracy comparison; their MNIST-Bottleneck-2 network on the 10k MNIST test images. A quantized
layer's information plane is computed exactly by counting codes (estimator ``exact``); every continuous estimator
is run on the same networks and compared with it (setup: results/quantized/NOTES.md).

    python -m experiments.quantized            # Lorenzen et al.'s setup
    python -m experiments.quantized --quick    # CI-sized
    python -m experiments.quantized --set run.model.quant_range=fixed   # fixed grids + a learned PACT clip
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig

ACCURACY_GAP = 3e-2  # "within a few points": float minus 8-bit test accuracy below this
SRC = "Lorenzen, Igel & Nielsen 2022"
RUN = RunConfig(  # Lorenzen et al.'s SYN runs: quantizers, init, Adam 1e-4, batch 256, 8000 epochs
    MLPConfig((12, 10, 7, 5, 4, 3, 2), activation="tanh", init="saxe", quant_bits=8, quant_range="minmax"),
    DataConfig(name="szt_12bit"),
    TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=256, n_epochs=8000, schedule="log:40"),
)
MNIST_RUN = RunConfig(  # their MNIST-Bottleneck-2 (ReLU, 8 bits, 3000 epochs) on the 10k test images
    MLPConfig((784, 16, 8, 4, 2, 10), activation="relu", init="saxe", quant_bits=8, quant_range="minmax"),
    DataConfig(name="mnist_test", train_frac=0.8),
    TrainConfig(optimizer="adam", learning_rate=1e-4, batch_size=256, n_epochs=3000, schedule="log:30"),
)


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: RUN)
    activations: tuple = harness.setting(("tanh", "relu"), harness.activations())
    bits: tuple = harness.setting((8, 4), harness.distinct(2, 4, 8))
    seeds: int = harness.setting(10, harness.integer(least=1))
    n_bins: tuple = harness.values_of((30, 100), harness.option("binning", "n_bins"))
    noise_vars: tuple = harness.values_of((1e-3, 1e-2, 1e-1), harness.option("kde", "noise_var"))
    knn_k: int = harness.setting(3, harness.integer(least=1, zero=True))  # 0: no kNN
    edge_keys: int = harness.setting(4, harness.integer(least=1, zero=True))  # 0: no EDGE
    mnist: bool = True
    mnist_run: RunConfig = field(default_factory=lambda: MNIST_RUN)
    # > 1 with more than one kept epoch: the MNIST plane joins the fitting and output claims
    mnist_seeds: int = harness.setting(5, harness.integer(least=1))


QUICK = {"seeds": 2, "run.train.n_epochs": 60, "run.train.schedule": "log:5", "activations": ("relu",)}
QUICK |= {"bits": (4,), "n_bins": (30,), "noise_vars": (1e-1,), "knn_k": 0, "edge_keys": 0, "mnist": False}


def grid(cfg: Config) -> list:
    S, g = pipeline.EstimatorSetting, []
    for nb in cfg.n_bins:
        g += [S(f"bin{nb} {m}", "binning", {"n_bins": nb, "range_mode": m}) for m in ("fixed", "layer", "neuron")]
        g.append(S(f"bin{nb} layer-quantile", "binning", {"n_bins": nb, "range_mode": "layer", "spacing": "quantile"}))
    if cfg.noise_vars:
        g.append(S("KDE var {:g}", "kde", {}, {"noise_var": [float(v) for v in cfg.noise_vars]}))
    g += [S(f"kNN k={cfg.knn_k}", "knn", {"k": cfg.knn_k})] if cfg.knn_k else []
    return g + ([S("EDGE", "edge", {"n_keys": cfg.edge_keys})] if cfg.edge_keys else [])


def _final_acc(dirs) -> list[float]:
    return pipeline.load_metrics(dirs)["test_acc"][:, -1].tolist()


def run(cfg: Config, out, *, force: bool = False) -> dict:
    nets, accuracy, exact, estimated = {}, {}, {}, {}
    for act in cfg.activations:
        base = cfg.run.replace(**{"model.activation": act, "model.quant_bits": 0})
        floats = pipeline.train_or_reuse(base, range(cfg.seeds), out / "runs" / f"{act}_float", force=force)
        accuracy[f"{act} float"] = _final_acc(floats)
        for b in cfg.bits:
            name, where = f"{act} {b}-bit", f"{act}_{b}bit"
            twin = base.replace(**{"model.quant_bits": b})
            dirs = pipeline.train_or_reuse(twin, range(cfg.seeds), out / "runs" / where, force=force)
            accuracy[name], t0 = _final_acc(dirs), time.perf_counter()
            exact[name] = pipeline.evaluate_runs(dirs, "exact", {}, out=out / "planes" / where, recompute=force)
            nets[name] = round(time.perf_counter() - t0, 2)
            estimated[name] = pipeline.evaluate_grid(dirs, grid(cfg), out / "planes" / where, recompute=force)
    binary_x = pipeline.binary_inputs(cfg.run)
    errors = {name: verdicts.vs_exact(exact[name], estimated[name], binary_x=binary_x) for name in exact}
    mnist, mnist_plane = run_mnist(cfg, out, force=force) if cfg.mnist else (None, None)
    harness.save_text(out / "error_table.md", verdicts.exact_error_table(errors))
    first = exact[next(iter(exact))]
    return {
        "exact": exact,
        "h_y": verdicts.cap_ty(pipeline.load_data(cfg.run).y),
        "estimated": estimated,
        "errors": errors,
        "accuracy": accuracy,
        "mnist_plane": mnist_plane,
        "mnist_h_y": verdicts.cap_ty(pipeline.load_data(cfg.mnist_run).y) if cfg.mnist else None,
        "summary": {
            "dataset": first.measured["data"],
            "networks": list(exact),
            "layers": list(first.layer_names),
            "accuracy": {k: harness.mean_se(v) for k, v in accuracy.items()},
            "exact_seconds": nets,
            "errors": errors,
            "mnist": mnist,
            "settings": [s.label for s in grid(cfg)],
        },
    }


def run_mnist(cfg: Config, out, *, force: bool) -> tuple[dict, object]:
    t0 = time.perf_counter()
    dirs = pipeline.train_or_reuse(cfg.mnist_run, range(cfg.mnist_seeds), out / "runs" / "mnist_8bit", force=force)
    t1 = time.perf_counter()
    plane = pipeline.evaluate_runs(dirs, "exact", {}, out=out / "planes" / "mnist_8bit", recompute=force)
    return {
        "network": "-".join(map(str, cfg.mnist_run.model.widths)) + f" {cfg.mnist_run.model.activation}",
        "train_seconds": round(t1 - t0, 1),
        "exact_plane_seconds": round(time.perf_counter() - t1, 1),
        "final_test_acc": harness.mean_se(_final_acc(dirs)),
        **verdicts.exact_plane_facts(plane),
    }, plane


def figures(results: dict, cfg: Config, out) -> list:
    exact, estimated = results["exact"], results["estimated"]
    kde = f"KDE var {cfg.noise_vars[-1]:g}" if cfg.noise_vars else None
    knn = f"kNN k={cfg.knn_k}" if cfg.knn_k else None
    wanted = (f"bin{cfg.n_bins[0]} fixed", f"bin{cfg.n_bins[0]} layer", kde, knn)
    show = [lab for lab in wanted if lab and lab in next(iter(estimated.values()))]
    planes = {}
    for name in exact:
        planes[(name, "exact")] = exact[name]
        planes.update({(name, lab): estimated[name][lab] for lab in show})
    title = "exact (counted) vs estimated information planes, quantized 12-bit networks"
    paths = [plotting.save(plotting.panel_grid(planes, title=title), out / "planes.png")]
    paths.append(plotting.save(plotting.exact_agreement(results["errors"]), out / "agreement.png"))
    mp = results.get("mnist_plane")
    if mp is not None and len(mp.epochs) > 1:
        title = f"exact plane, {results['summary']['mnist']['network']} on {mp.measured['data']}, {mp.shape[1]} seed(s)"
        paths.append(plotting.save(plotting.info_plane(mp, title=title), out / "mnist_plane.png"))
    return paths


def _activation_dependence(exact: dict) -> list[dict]:
    bits = lambda act: {n.split(" ", 1)[1] for n in exact if n.split(" ", 1)[0] == act}
    text = "compression of the hidden layers depends on the activation (tanh vs ReLU), {} (exact planes)"
    out = [
        verdicts.entry(
            text.format(w),
            f"{SRC}, abstract",
            *verdicts.outcomes_differ({"tanh": exact[f"tanh {w}"], "ReLU": exact[f"relu {w}"]}),
        )
        for w in sorted(bits("tanh") & bits("relu"))
    ]
    none = verdicts.undecided("no network pair of the same bit width")
    return out or [verdicts.entry(text.format("per bit width"), f"{SRC}, abstract", none, {})]


def claims(results: dict, cfg: Config) -> list[dict]:
    exact, errors, acc = results["exact"], results["errors"], results["accuracy"]
    output = lambda p: verdicts.decide(verdicts.compression(p.i_xt[:, :, -1], p.epochs, cap=verdicts.cap_xt(p)))
    out_layer = {n: output(p) for n, p in exact.items()}
    fit = {name: verdicts.rises(p.i_ty, cap=results["h_y"]) for name, p in exact.items()}
    mp = results.get("mnist_plane")
    if mp is not None and mp.shape[1] > 1 and len(mp.epochs) > 1:  # seeds and epochs to decide on
        name = f"MNIST {results['summary']['mnist']['network']} 8-bit"
        out_layer[name], fit[name] = output(mp), verdicts.rises(mp.i_ty, cap=results["mnist_h_y"])
    # judged only on the layers where both verdicts are decided (e.g. not a layer saturated at 12 bits)
    v_bin, n_ok, n_flip, n_bin = verdicts.settings_disagree(errors)
    pairs = {a: (acc[f"{a} float"], acc[f"{a} 8-bit"]) for a in cfg.activations if f"{a} 8-bit" in acc}
    none = "no 8-bit network beside a float one"
    v_acc, gaps = verdicts.within_gap(pairs, ACCURACY_GAP, what="float - 8-bit", empty=none)
    fits = {f"{k} {l}": v for k, f in fit.items() for l, v in f.items()}
    return [
        verdicts.entry(
            f"a fitting phase in every layer: I(T;Y) rises (by > {verdicts.RULE.min_drop_bits:g} bits) in all layers "
            "that start below H(Y) (exact planes)",
            f"{SRC}, abstract",
            verdicts.every(fits) if fits else verdicts.undecided("every layer starts at H(Y)"),
            {f"{k}: layers starting below H(Y)": sorted(f) for k, f in fit.items()},
        ),
        verdicts.entry(
            "the output layer compresses in all experiments (exact planes)",
            f"{SRC}, abstract",
            verdicts.every(out_layer),
            {f"{n}: output peak-to-final drop [bits]": round(v.effect, 4) for n, v in out_layer.items()},
        ),
        *_activation_dependence(exact),
        verdicts.entry(
            "binning choices alone give qualitatively different results (some settings support, some refute "
            "the exact plane's compression pattern)",
            f"{SRC}, Sec. 4",
            v_bin,
            {
                "usable binning settings x networks agreeing in every decided layer": f"{n_ok} of {n_bin}",
                "disagreeing in at least one layer": f"{n_flip} of {n_bin}",
            },
        ),
        verdicts.entry(
            "8-bit quantization-aware training reaches the float network's accuracy within a few points",
            f"{SRC}, Sec. 5 (accuracy of quantized networks)",
            v_acc,
            {
                **{f"{k} test accuracy": harness.mean_se(v) for k, v in acc.items()},
                **{f"{a}: float minus 8-bit": harness.mean_se(g) for a, g in gaps.items()},
            },
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("quantized", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
