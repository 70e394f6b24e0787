"""Gradient signal-to-noise ratio: drift and diffusion phases in tanh and ReLU networks (setup: results/snr/NOTES.md).

Shwartz-Ziv & Tishby (2017, Sec. 3.3, Fig. 4): a high-SNR "drift" phase of the minibatch gradients turns into a
low-SNR "diffusion" phase at the onset of compression; Saxe et al. (2018, Sec. 4): also in ReLU networks, which do not.

    python -m experiments.snr                  # 5 seeds x 8000 epochs, tanh and ReLU: 2.5-4.5 min on 2 cores
    python -m experiments.snr --quick          # 2 seeds x 200 epochs: 20-30 s
    python -m experiments.snr --seeds 50       # the paper's 50 networks: ~20 min (training ~880 seed-epochs/s)
    python -m experiments.snr --set run.train.batch_size=0   # full batch: the SNR is undefined
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, RunConfig, TrainConfig, with_model

COINCIDE = 0.5  # decades: the transition coincides with the I(X;T) peak
BOUNDED = ("tanh", "hard_tanh", "softsign", "sigmoid")  # binned with `options`; others with `options_unbounded`
FULL_BATCH = "undefined: full batch (one batch per epoch), so the minibatch gradient std and the SNR do not exist"
SZT, SAXE = "Shwartz-Ziv & Tishby 2017", "Saxe et al. 2018"
SZT_BATCH = 512  # SZT's minibatch size; the SNR and its transition epoch depend on it
UNDEFINED = (  # the notes of the gradient and SNR panels under full batch
    "(no dashed lines: the std of the minibatch\ngradients is undefined under full batch)",
    "SNR undefined:\nfull batch (one batch per epoch),\nso the minibatch gradient std\nand the SNR do not exist",
)
NOTE = dict(ha="center", va="center", fontsize=9, bbox=dict(facecolor="white", alpha=0.8, edgecolor="0.6"))


@dataclass(frozen=True)
class Config(harness.Settings):
    # its activation is not used: the rows are set with activations=...
    run: RunConfig = harness.setting(
        factory=lambda: RunConfig(data=DataConfig(name="szt_12bit"), train=TrainConfig(schedule="log:60")),
        within={"model.activation": harness.one_of("tanh")},
    )
    seeds: int = harness.setting(5, harness.integer(least=1))
    # one row each; replaces run.model.activation
    activations: tuple = harness.setting(("tanh", "relu"), harness.activations())
    # binning of bounded activations (tanh): IDNNs' 30 bins on [-1, 1]; of relu, softplus, linear: a fixed bin width
    options: str = harness.setting("n_bins=30", harness.options(name="binning"))
    options_unbounded: str = harness.setting("bin_size=0.07", harness.options(name="binning"))
    epochs: str = harness.setting("all", harness.epochs())  # the kept epochs (run.train.schedule) of the planes
    # smoothing: moving median over epochs n(1 - window) .. n(1 + window)
    window: float = harness.setting(0.1, harness.number(above=0, below=1))


QUICK = {"seeds": 2, "run.train.n_epochs": 200, "run.train.schedule": "log:30"}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    nets = {act: with_model(cfg.run, activation=act) for act in cfg.activations}
    binning = {act: cfg.options if act in BOUNDED else cfg.options_unbounded for act in cfg.activations}
    rows = pipeline.train_and_evaluate(
        nets, range(cfg.seeds), out, "binning", binning.get, epochs=cfg.epochs, force=force
    )
    for r in rows.values():
        r.update(pipeline.gradient_snr(r["metrics"]["grad_mean_norm"], r["metrics"]["grad_std_norm"], cfg.window))
    keys = ("snr", "smoothed", "transition", "steepest", "peak", "late")
    arrays = {f"{act}_{k}_{'SxExL' if r[k].ndim == 3 else 'SxL'}": r[k] for act, r in rows.items() for k in keys}
    harness.save_arrays(Path(out) / "snr.npz", {"epochs_E": np.arange(1, cfg.run.train.n_epochs + 1), **arrays})
    first = next(iter(rows.values()))
    summary = {
        "dataset": first["plane"].measured["data"],
        "snr_undefined": first["undefined"],
        "transition_epochs": _transition_summary(rows, cfg.window),
        "run_dirs": {act: [str(d) for d in r["dirs"]] for act, r in rows.items()},
        "final_test_acc": {a: [round(float(v), 4) for v in r["metrics"]["test_acc"][:, -1]] for a, r in rows.items()},
    }
    return {"rows": rows, "binning": binning, "summary": summary}


def _transition_summary(rows: dict, window: float) -> dict:
    out = {
        "definition": "epoch n = 1..E (n-th pass); snr_below_1: first epoch after the early peak (max over "
        f"n <= sqrt(E)) with the smoothed SNR (moving median over n(1 ± {window})) below 1; "
        "steepest_decline: epoch of the minimum of d log SNR / d log n after the early peak; "
        "mean ± se over the seeds that have one, n_null seeds without"
    }
    for act, r in rows.items():
        reasons = [x for row in r["reasons"] for x in row if x]
        table = verdicts.layer_table({"snr_below_1": r["transition"], "steepest_decline": r["steepest"]})
        table |= {"null": {why: reasons.count(why) for why in sorted(set(reasons))}} if reasons else {}
        out[act] = {"note": FULL_BATCH} if r["undefined"] else table
    return out


def figures(results: dict, cfg: Config, out) -> list:
    rows, w = results["rows"], cfg.window
    fig = Figure(figsize=(20, 4.4 * len(rows)), layout="constrained")
    for (act, r), ax in zip(rows.items(), fig.subplots(len(rows), 4, squeeze=False)):
        m, (n_s, n_e, n_l) = r["metrics"], r["snr"].shape
        n = np.arange(1, n_e + 1)
        whole = max(1, int(n_e / (1 + w)))  # smoothed curves end where the median window is cut short
        at = np.unique(np.geomspace(1, whole, 400).astype(int)) - 1  # gradient norms at 400 log-spaced epochs
        g_mean, g_std = (pipeline.moving_median(m[k], w, axis=1, at=at) for k in ("grad_mean_norm", "grad_std_norm"))
        for l, c in enumerate(f"C{l}" for l in range(n_l)):
            plotting.mean_band(ax[0], at + 1, g_mean[:, :, l], color=c)
            name = f"layer {l + 1}" + (" (softmax)" if l == n_l - 1 else "")
            plotting.mean_band(ax[2], n, m["weight_norm"][:, :, l], color=c, label=name)
            if not r["undefined"]:
                plotting.mean_band(ax[0], at + 1, g_std[:, :, l], color=c, ls="--")
                plotting.mean_band(ax[1], n[:whole], r["smoothed"][:, :whole, l], color=c)
                if np.isfinite(t := r["transition"][:, l]).any():
                    ax[1].plot(np.nanmean(t), 1.0, "v", color=c, ms=8, mec="k", mew=0.5)
        if r["undefined"]:
            for a, text in zip(ax, UNDEFINED):
                a.text(0.5, 0.5, text, transform=a.transAxes, **NOTE)
            ax[1].set_axis_off()
        else:
            ax[1].axhline(1.0, color="0.4", lw=0.8, ls=":")
        smoothed = f"moving median over n(1 ± {w})"
        titles = (
            f"{act}: gradient norms, mean (solid) and std (dashed) over\neach epoch's batches, {smoothed}",
            f"{act}: SNR = mean / std, {smoothed}\n▼ transition: first below 1 after the early peak",
            f"{act}: weight norm ||W|| per layer",
        )
        for a, title in zip(ax, titles):
            a.set_title(title, fontsize=9)
            a.set(xscale="log", xlabel="epoch n (n-th pass over the data)", yscale="log" if a.has_data() else "linear")
        ax[2].legend(fontsize=7, loc="lower right")
        title = f"{act}: {r['plane'].estimator} {results['binning'][act]}, mean of {n_s} seed(s)"
        plotting.info_plane(r["plane"], ax=ax[3], title=title)
    data = r["plane"].measured["data"]  # (every row: the same data and seeds)
    fig.suptitle(f"{data}, {n_s} seed(s): lines are means over seeds, shaded min-max over seeds", fontsize=10)
    return [plotting.save(fig, Path(out) / "snr.png")]


def _undecided(claim: str, source: str, why: str) -> dict:
    return verdicts.entry(claim, source, verdicts.undecided(why), {"why": why})


def _compression(plane):
    """Per seed and hidden layer (S x L-1): the I(X;T) drop, drop / peak, peak epoch; and each layer's Stat."""
    i_xt = plane.hidden().i_xt
    drop = i_xt.max(1) - i_xt[:, -1]
    stats = verdicts.layers(i_xt, plane.epochs, cap=verdicts.cap_xt(plane))
    return drop, drop / np.maximum(i_xt.max(1), 1e-12), plane.epochs[i_xt.argmax(1)], stats


def claims(results: dict, cfg: Config) -> list[dict]:
    c1 = ("training has a high-SNR drift phase followed by a low-SNR diffusion phase", f"{SZT}, Fig. 4")
    c2 = ("the drift-to-diffusion transition coincides with the onset of compression", f"{SZT}, Sec. 3.3")
    c3 = ("the same transition occurs in ReLU networks, which do not compress", f"{SAXE}, Sec. 4 / Fig. 4")
    if results["summary"]["snr_undefined"]:
        return [_undecided(*c, "SNR " + FULL_BATCH) for c in (c1, c2, c3)]
    tanh, relu = results["rows"].get("tanh"), results["rows"].get("relu")
    if tanh is None:
        out = [_undecided(*c, "not measured: tanh is not among the activations") for c in (c1, c2)]
    else:
        layers, phases = range(tanh["snr"].shape[2]), {}
        for l in layers:  # early SNR above 1 and late SNR below 1, each with its interval over seeds
            phases[f"T{l + 1} drift"] = verdicts.positive_finite(tanh["peak"][:, l] - 1, what="early SNR - 1")
            phases[f"T{l + 1} diffusion"] = verdicts.positive_finite(1 - tanh["late"][:, l], what="1 - late SNR")
        measured = {
            f"layer {l + 1} early SNR (peak, n <= sqrt(E))": verdicts.mean_se(tanh["peak"][:, l]) for l in layers
        }
        measured |= {f"layer {l + 1} late SNR (median, n > E/10)": verdicts.mean_se(tanh["late"][:, l]) for l in layers}
        out = [verdicts.entry(*c1, verdicts.every(phases), measured), _coincide(tanh, c2, cfg.run.train.batch_size)]
    if relu is None:
        return out + [_undecided(*c3, "not measured: relu is not among the activations")]
    drop, frac, _, stats = _compression(relu["plane"])
    last = drop.shape[1] - 1
    v = verdicts.decide(stats[last], want="does not compress")
    if not np.all(np.isfinite(relu["transition"][:, :-1]).mean(0) >= 0.5):  # each hidden layer: in half the seeds
        v = v._replace(agrees=False, outcome="fails: a hidden layer has a transition in fewer than half the seeds")
    measured = {
        f"layer {l + 1} transition epoch": verdicts.finite_mean_se(t) for l, t in enumerate(relu["transition"].T)
    }
    measured[f"layer {last + 1} peak-to-final I(X;T) drop [bits]"] = verdicts.mean_se(drop[:, last])
    measured[f"layer {last + 1} drop / peak I(X;T)"] = verdicts.mean_se(frac[:, last])
    measured[f"layer {last + 1} compression"] = stats[last].summary()
    return out + [verdicts.entry(*c3, v, measured)]


def _coincide(r: dict, claim, batch_size: int) -> dict:
    drop, frac, peak_epoch, stats = _compression(r["plane"])
    measured, vs = {}, {}
    for l in range(max(0, drop.shape[1] - 2), drop.shape[1]):  # the last two hidden layers
        at = np.maximum(peak_epoch[:, l], 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio, steep = (np.abs(np.log10(r[k][:, l] / at)) for k in ("transition", "steepest"))
        outcome, name = verdicts.decide(stats[l]).outcome, f"layer {l + 1}"
        measured |= {
            f"{name} epoch of peak I(X;T)": verdicts.mean_se(peak_epoch[:, l]),
            f"{name} transition epoch": verdicts.finite_mean_se(r["transition"][:, l]),
            f"{name} |log10(transition / peak epoch)|": verdicts.finite_mean_se(ratio, 3),
            f"{name} |log10(steepest decline / peak epoch)|": verdicts.finite_mean_se(steep, 3),
            f"{name} drop / peak I(X;T)": verdicts.mean_se(frac[:, l]),
            f"{name} compression verdict": outcome,
        }
        if outcome == "compresses" and np.isfinite(ratio).any():
            vs[f"T{l + 1}"] = verdicts.positive_finite(
                COINCIDE - ratio, what=f"{COINCIDE:g} - |log10(transition / peak epoch)|"
            )
    why = "no last hidden layer compresses (by the verdict rule) or has a transition"
    v = verdicts.every(vs) if vs else verdicts.undecided(why)
    if v.agrees is False and batch_size != SZT_BATCH:  # a "no" only in the paper's setting
        why = f"not SZT's setting: batch {batch_size}, SZT used {SZT_BATCH}; the transition epoch's dependence on "
        why += "the batch size (and on the SNR threshold) is not measured"
        v = v._replace(agrees=None, outcome="undecided", reason=why)
    return verdicts.entry(*claim, v, measured)


def main(argv=None) -> dict:
    return harness.main("snr", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
