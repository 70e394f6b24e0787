"""Goldfeld et al. 2019, noisy networks: I(X;T) by sample propagation, its exact value, and clustering.

Single neuron T = tanh(w X + b) + Z, Z ~ N(0, sigma^2), X uniform on {-3, -1, 1, 3}, Y = 1 iff X = 3,
trained (noisy, full batch, Adam) through a softmax readout that is not part of the measured T.
I(X;T) over epochs by the sample-propagation estimator (registry ``smoothed``, through the engine,
with its standard-error band), against the exact value h(mixture of the four N(tanh(w x + b),
sigma^2)) - h(Z) by Gauss-Hermite quadrature (``ibjax.estimators.mixture``), and the four symbols'
positions tanh(w x + b) (the clustering picture: three symbols merge at one saturated value, so
I(X;T) -> H(1/4, 3/4) = 0.811 bits).

Noisy 12-10-7-5-4-3-2 tanh network (szt_12bit, random 80/20 split, Adam 4e-4, batch 256, T_l = S_l
+ N(0, sigma^2) at every layer in training and measurement), with and without the orthonormality
penalty, several seeds in one vmapped call: I(X;T_l) of every layer over epochs (smoothed estimator
on all 4096 inputs, bands = 2 standard errors over seeds), and each layer's peak-to-final change
with its standard error. The same network trained deterministically: binned I(X;Bin(T_l)) for bin
sizes 1e-4 .. 1e-1 (one sweep call) beside the noisy network's I(X;T_l): binning measures clustering
at the bin's scale, not the (constant, log2 4096 = 12 bits) information of the deterministic layer.

    python -m experiments.goldfeld                       # 3 seeds: about 4 min on 2 idle CPU cores
    python -m experiments.goldfeld --set neuron.train.noise_sigma=0.05
    python -m experiments.goldfeld --set ortho_penalty=0.1 --seeds 5
    python -m experiments.goldfeld --quick               # CI-sized
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import checkpoints, models, pipeline, plotting
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
from ibjax.estimators import mixture

H_QUARTER = 0.8112781244591328  # H(1/4, 3/4) bits: three symbols merged, the fourth apart
TOL_BITS = 0.05  # acceptance: |estimate - exact| < 0.05 bits or < 3 standard errors at every kept epoch


def _neuron_run():
    return RunConfig(MLPConfig((1, 1, 2)), DataConfig(name="single_neuron", split="all"),
                     TrainConfig(learning_rate=0.01, batch_size=0, n_epochs=20000, schedule="log:80", noise_sigma=0.1))


def _mlp_run():
    return RunConfig(data=DataConfig(name="szt_12bit"),
                     train=TrainConfig(n_epochs=4000, schedule="log:60", noise_sigma=0.05))


@dataclass(frozen=True)
class Config:
    neuron: RunConfig = field(default_factory=_neuron_run)
    neuron_seeds: int = 3
    neuron_n_mc: int = 2048  # noise draws per symbol for h(T)
    mlp: RunConfig = field(default_factory=_mlp_run)
    seeds: int = 3
    ortho_penalty: float = 0.01  # the penalised runs' train.ortho_penalty (the others have 0)
    n_c: int = 16  # noisy passes per input for the deeper layers' h(T_l | X)
    n_mc: int = 1
    epochs: str = "all"  # of the MLP's kept epochs
    bin_sizes: tuple = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


QUICK = {"neuron.train.n_epochs": 3000, "neuron.train.schedule": "log:12", "neuron_seeds": 2, "neuron_n_mc": 1024,
         "mlp.train.n_epochs": 60, "mlp.train.schedule": "log:4", "seeds": 2, "n_c": 4, "bin_sizes": (1e-3, 1e-1)}


def hidden_only(model: models.Model) -> models.Model:
    """The model with its first layer as the only T (the readout trains but is not measured)."""
    def apply(params, x):
        logits, acts = model.apply(params, x)
        return logits, acts[:1]

    def noisy_apply(params, x, key, sigma):
        logits, t_acts, s_acts = model.noisy_apply(params, x, key, sigma)
        return logits, t_acts[:1], s_acts[:1]

    return models.Model(model.init, apply, noisy_apply, 1)


def exact_i_xt(symbols_SxExK, sigma):
    """Exact I(X;T) [bits] for T = symbol + N(0, sigma^2), X uniform over the K symbols: S x E."""
    f = jax.vmap(jax.vmap(lambda m: mixture.mutual_information(m, sigma)))
    return np.asarray(f(jnp.asarray(symbols_SxExK, jnp.float32)), np.float64)


def _symbols(model, dirs, x):
    runs = [checkpoints.load_run(d) for d in dirs]
    params = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in runs])  # S x E x ...
    s = jax.vmap(jax.vmap(lambda p: model.apply(p, jnp.asarray(x))[1][0][:, 0]))(params)
    return runs[0].epochs, np.asarray(s, np.float64)


def run_neuron(cfg: Config, out, *, force: bool) -> dict:
    rc = cfg.neuron
    sigma = rc.train.noise_sigma
    model = hidden_only(rc.model.build())
    dirs = pipeline.train_or_reuse(rc, range(cfg.neuron_seeds), out / "runs" / "neuron", force=force)
    plane = pipeline.evaluate_runs(dirs, "smoothed", {"sigma": sigma, "n_mc": cfg.neuron_n_mc}, model=model,
                                   out=out / "planes" / "neuron")
    ds = pipeline.load_data(rc)
    epochs, symbols = _symbols(model, dirs, ds.x)
    if not np.array_equal(epochs, plane.epochs):
        raise ValueError(f"neuron epochs differ between runs and plane: {epochs[:5]} vs {plane.epochs[:5]}")
    exact = exact_i_xt(symbols, sigma)
    return {"plane": plane, "exact": exact, "symbols": symbols, "x": ds.x[:, 0], "sigma": sigma}


def run_mlp(cfg: Config, out, *, force: bool) -> dict:
    rc = cfg.mlp
    if rc.train.noise_sigma <= 0:
        raise ValueError(f"mlp.train.noise_sigma must be > 0 (the noisy network), got {rc.train.noise_sigma}")
    noisy = pipeline.train_or_reuse(rc, range(cfg.seeds), out / "runs" / "noisy", force=force,
                                    sweep={"train.ortho_penalty": [0.0, cfg.ortho_penalty]})
    plane = pipeline.evaluate_runs(noisy, "smoothed", {"n_c": cfg.n_c, "n_mc": cfg.n_mc}, epochs=cfg.epochs,
                                   out=out / "planes" / "noisy")
    det_rc = rc.replace(**{"train.noise_sigma": 0.0})
    det = pipeline.train_or_reuse(det_rc, range(cfg.seeds), out / "runs" / "deterministic", force=force)
    sizes = [float(b) for b in cfg.bin_sizes]
    binned = pipeline.evaluate_runs(det, "binning", {"bin_size": sizes[0]}, sweep={"bin_size": sizes},
                                    epochs=cfg.epochs, out=out / "planes" / "binned")
    metrics = [checkpoints.load_metrics(d) for d in noisy]
    return {"noisy": plane, "binned": binned, "test_acc": [float(m["test_acc"][-1]) for m in metrics]}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    neuron, mlp = run_neuron(cfg, out, force=force), run_mlp(cfg, out, force=force)
    s = cfg.seeds
    i_xt = mlp["noisy"].i_xt  # 2S x E x L: no penalty, then penalty
    layers = list(mlp["noisy"].layer_names)
    change = {}
    for name, part in (("no penalty", slice(0, s)), (f"ortho_penalty={cfg.ortho_penalty}", slice(s, 2 * s))):
        drop = harness.peak_to_final(i_xt[part])
        se_final = mlp["noisy"].values["i_xt_se"][0][part, -1]
        change[name] = {layer: {**harness.mean_se(drop[:, l]),
                                "estimator_se_final": round(float(np.sqrt(np.mean(se_final[:, l] ** 2))), 4)}
                        for l, layer in enumerate(layers)}
    est = neuron["plane"].i_xt[:, :, 0]
    summary = {"dataset": mlp["noisy"].measured["data"], "neuron_sigma": neuron["sigma"],
               "neuron_max_abs_error_bits": round(float(np.abs(est - neuron["exact"]).max()), 4),
               "neuron_final_exact_bits": harness.mean_se(neuron["exact"][:, -1]),
               "peak_to_final_change_bits": change, "noisy_final_test_acc": mlp["test_acc"]}
    return {**neuron, **mlp, "change": change, "summary": summary}


# ---------------------------------------------------------------- figures


def _x(epochs):
    return np.asarray(epochs, float) + 1.0


def _neuron_figures(results, out) -> list:
    plane, exact, sym = results["plane"], results["exact"], results["symbols"]
    est, se = plane.i_xt[:, :, 0], plane.values["i_xt_se"][0][:, :, 0]
    x = _x(plane.epochs)
    n_s = est.shape[0]
    fig = Figure(figsize=(4.2 * n_s, 3.6), layout="constrained")
    for s, ax in enumerate(fig.subplots(1, n_s, squeeze=False)[0]):
        ax.fill_between(x, est[s] - 2 * se[s], est[s] + 2 * se[s], color="C0", alpha=0.3, lw=0, label="± 2 SE")
        ax.plot(x, est[s], "C0", lw=1.2, label="sample propagation")
        ax.plot(x, exact[s], "k--", lw=1, label="exact (quadrature)")
        ax.axhline(H_QUARTER, color="0.6", lw=0.8, ls=":", label="H(1/4) = 0.811")
        ax.axhline(2.0, color="0.6", lw=0.8, ls="-.", label="log2 4 = 2")
        ax.set_xscale("log")
        ax.set(xlabel="epoch + 1", ylabel="I(X;T) [bits]", title=f"seed {s}", ylim=(0, 2.1))
        ax.legend(fontsize=7)
    fig.suptitle(f"single noisy tanh neuron, sigma = {results['sigma']}", fontsize=10)
    fig2 = Figure(figsize=(4.2 * n_s, 3.6), layout="constrained")
    for s, ax in enumerate(fig2.subplots(1, n_s, squeeze=False)[0]):
        for k, xv in enumerate(results["x"]):
            line, = ax.plot(x, sym[s, :, k], lw=1.2, label=f"x = {xv:g}")
            ax.fill_between(x, sym[s, :, k] - results["sigma"], sym[s, :, k] + results["sigma"],
                            color=line.get_color(), alpha=0.15, lw=0)
        ax.set_xscale("log")
        ax.set(xlabel="epoch + 1", ylabel="tanh(w x + b)", title=f"seed {s}", ylim=(-1.15, 1.15))
        ax.legend(fontsize=7)
    fig2.suptitle("symbol positions (shaded: ± sigma, the noise)", fontsize=10)
    return [plotting.save(fig, out / "neuron_mi.png"), plotting.save(fig2, out / "neuron_symbols.png")]


def _band(ax, x, v_SxE, color, label):
    m = v_SxE.mean(0)
    ax.plot(x, m, color=color, lw=1.2, label=label)
    if v_SxE.shape[0] > 1:
        se = v_SxE.std(0, ddof=1) / np.sqrt(v_SxE.shape[0])
        ax.fill_between(x, m - 2 * se, m + 2 * se, color=color, alpha=0.2, lw=0)


def _mlp_figures(results, cfg: Config, out) -> list:
    plane, s = results["noisy"], cfg.seeds
    x, i_xt = _x(plane.epochs), plane.i_xt
    fig = Figure(figsize=(10, 3.8), layout="constrained", )
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (title, part) in zip(axes, (("no penalty", slice(0, s)),
                                        (f"orthonormality penalty {cfg.ortho_penalty}", slice(s, 2 * s)))):
        for l, name in enumerate(plane.layer_names):
            _band(ax, x, i_xt[part, :, l], f"C{l}", name)
        ax.set_xscale("log")
        ax.set(xlabel="epoch + 1", title=title)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("I(X;T_l) [bits] (sample propagation)")
    fig.suptitle(f"noisy tanh MLP, sigma = {cfg.mlp.train.noise_sigma}, {s} seeds; shaded ± 2 SE over seeds",
                 fontsize=10)
    binned = results["binned"]
    sizes = binned.sweep["bin_size"]
    b_GxSxExL = binned.values["i_xt"]
    l = len(binned.layer_names) - 2  # the last hidden layer
    xb = _x(binned.epochs)
    fig2 = Figure(figsize=(10, 3.8), layout="constrained")
    ax1, ax2 = fig2.subplots(1, 2)
    for g, b in enumerate(sizes):
        _band(ax1, xb, b_GxSxExL[g, :, :, l], f"C{g}", f"binned, bin {b:g} (deterministic)")
    _band(ax1, x, i_xt[:s, :, l], "k", f"noisy sigma {cfg.mlp.train.noise_sigma}: I(X;T) (smoothed)")
    ax1.set_xscale("log")
    ax1.set(xlabel="epoch + 1", ylabel="I(X;T) [bits]", title=f"{binned.layer_names[l]}")
    ax1.legend(fontsize=6)
    n_e = b_GxSxExL.shape[2]
    for j, e in enumerate(sorted({0, n_e // 4, n_e // 2, n_e - 1})):
        for ll in range(len(binned.layer_names) - 1):
            ax2.plot(sizes, b_GxSxExL[:, :, e, ll].mean(1), color=f"C{ll}", alpha=0.35 + 0.65 * j / 3,
                     marker="o", ms=3, label=f"{binned.layer_names[ll]}" if j == 0 else None)
    ax2.set_xscale("log")
    ax2.set(xlabel="bin size", ylabel="I(X;Bin(T)) [bits]",
            title=f"deterministic net, epochs {', '.join(str(int(binned.epochs[e])) for e in sorted({0, n_e // 4, n_e // 2, n_e - 1}))} (light to dark)")
    ax2.title.set_fontsize(8)
    ax2.legend(fontsize=7)
    fig2.suptitle("binning measures clustering at the bin's scale; the noisy network's I(X;T) at sigma", fontsize=10)
    return [plotting.save(fig, out / "noisy_mlp.png"), plotting.save(fig2, out / "binning_vs_bin_size.png")]


def figures(results: dict, cfg: Config, out) -> list:
    return _neuron_figures(results, out) + _mlp_figures(results, cfg, out)


# ---------------------------------------------------------------- claims


def neuron_agreement(est_SxE, se_SxE, exact_SxE) -> np.ndarray:
    """Per (seed, epoch): the estimate is within 0.05 bits or 3 standard errors of the exact value."""
    err = np.abs(est_SxE - exact_SxE)
    return (err < TOL_BITS) | (err < 3 * se_SxE)


def claims(results: dict, cfg: Config) -> list[dict]:
    plane, exact = results["plane"], results["exact"]
    est, se = plane.i_xt[:, :, 0], plane.values["i_xt_se"][0][:, :, 0]
    ok = neuron_agreement(est, se, exact)
    peak, final = exact.max(1), exact[:, -1]
    s = cfg.seeds
    layers = list(results["noisy"].layer_names)
    last = layers[-2]
    d0 = results["change"]["no penalty"][last]
    d1 = results["change"][f"ortho_penalty={cfg.ortho_penalty}"][last]
    gap = d0["mean"] - d1["mean"]
    gap_se = float(np.hypot(d0["se"], d1["se"]))
    binned = results["binned"].values["i_xt"][:, :, -1, len(layers) - 2]  # G x S at the last epoch
    noisy_final = results["noisy"].i_xt[:s, -1, len(layers) - 2]
    return [
        {"claim": "sample propagation estimates the single neuron's I(X;T) within 0.05 bits or 3 standard "
                  "errors of the exact value at every kept epoch",
         "source": "Goldfeld et al. 2019, Sec. 4 (estimator) and Fig. 2 (single neuron)", "agrees": bool(ok.all()),
         "measured": {"max |estimate - exact| [bits]": harness.mean_se(np.abs(est - exact).max(1)),
                      "max |estimate - exact| / SE": harness.mean_se((np.abs(est - exact) / se).max(1)),
                      "mean estimator SE [bits]": harness.mean_se(se.mean(1)),
                      "fraction of (seed, epoch) within tolerance": round(float(ok.mean()), 4)}},
        {"claim": "the single neuron's I(X;T) rises toward 2 bits, then falls toward H(1/4) = 0.811 bits as "
                  "three symbols cluster at one saturated value",
         "source": "Goldfeld et al. 2019, Fig. 2", "agrees": bool(peak.mean() > 1.5 and abs(final.mean() - H_QUARTER) < 0.1),
         "measured": {"peak exact I(X;T) [bits]": harness.mean_se(peak),
                      "final exact I(X;T) [bits]": harness.mean_se(final),
                      "final estimate [bits]": harness.mean_se(est[:, -1])}},
        {"claim": "in the noisy tanh network, the orthonormality penalty reduces the last hidden layer's "
                  "compression (peak-to-final drop of I(X;T))",
         "source": "Goldfeld et al. 2019, Sec. 6 (as we read it: orthonormal weights prevent clustering)",
         "agrees": None if abs(gap) < 2 * gap_se else bool(gap > 0),
         "measured": {f"{last} drop, no penalty [bits]": d0, f"{last} drop, penalty {cfg.ortho_penalty} [bits]": d1}},
        {"claim": "binned I(X;Bin(T)) of the deterministic network is set by the bin size (clustering at that "
                  "scale), spanning bits between bin sizes at the same weights",
         "source": "Goldfeld et al. 2019, Sec. 5", "agrees": bool(np.ptp(binned.mean(1)) > 1.0),
         "measured": {f"final binned I(X;T), {last}, bin {b:g} [bits]": harness.mean_se(binned[g])
                      for g, b in enumerate(results["binned"].sweep["bin_size"])}
                     | {f"final noisy I(X;T), {last} [bits]": harness.mean_se(noisy_final)}},
    ]


def main(argv=None) -> dict:
    return harness.main("goldfeld", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
