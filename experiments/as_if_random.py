"""As-if-random: windows of consecutive epochs pooled as one sample, tanh against ReLU

The student thesis treats the weights of W consecutive kept epochs as draws of a random network: the
activations of those W epochs are pooled as one sample of T (W x 4096 rows), so T is a noisy function
of X and I(X;T) = H(T) - H(T | input) is finite and can fall without any added noise. This trains the
12-bit task's 12-10-7-5-4-3-2 network (the `tishby` run: IDNNs init, Adam 4e-4, batch 256, 8000 epochs,
3 seeds) with tanh and with ReLU, keeps every 40th epoch (200 kept) and measures every layer with
binning of bin size 0.07 (Saxe's unbounded grid, so ReLU values are not folded) twice: per epoch, and
with the ``window:W`` view (W = 5 kept epochs, 160 training epochs from first to last), whose
values are plotted at the window's first epoch.

Compression is decided by the shared verdict rule (``ibjax.claims``: the peak-to-final drop's interval
over seeds against max(0.1 bits, 5% of the peak), undecided at the cap log2 4096 or without power); a
network compresses when one of its hidden layers does. The late-training change is the last value minus
the value at ``late`` x the training length.

    python -m experiments.as_if_random                   # 2 x 3 seeds x 8000 epochs: 3 min of CPU time (11 min on 2 busy cores)
    python -m experiments.as_if_random --set window=10
    python -m experiments.as_if_random --quick           # CI-sized: ReLU only, 1 seed x 40 epochs
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, RunConfig, TrainConfig

THESIS = "student thesis (epoch skipping / as-if-random), in the project's sources"


def _default_run() -> RunConfig:
    return RunConfig(data=DataConfig(name="szt_12bit"), train=TrainConfig(schedule="every:40"))


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=_default_run)  # the activation is replaced by each of `activations`
    activations: tuple = harness.setting(("tanh", "relu"), harness.activations())
    seeds: int = harness.setting(3, harness.integer(least=1))
    window: int = harness.setting(5, harness.integer(least=2))  # kept epochs pooled into one sample
    # a label-conditional estimator (binning or kde)
    estimator: str = harness.setting("binning", harness.estimator(label_conditional=True))
    options: str = harness.setting("bin_size=0.07", harness.options("estimator"))
    # late training starts at this fraction of the epochs
    late: float = harness.setting(0.5, harness.number(least=0, below=1))


QUICK = {
    "activations": ("relu",),
    "seeds": 1,
    "run.model.widths": (12, 4, 2),
    "run.train.n_epochs": 40,
    "run.train.schedule": "every:4",
    "window": 3,
}  # one activation: one training and two evaluation compiles


def views(cfg: Config) -> dict:
    return {"per epoch": "layers", f"window {cfg.window}": f"window:{cfg.window}"}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    planes, metrics, dirs = {}, {}, {}
    for act in cfg.activations:  # structural: one model (and compile) per activation
        rc = cfg.run.replace(**{"model.activation": act})
        dirs[act] = pipeline.train_or_reuse(rc, range(cfg.seeds), out / "runs" / act, force=force)
        for label, view in views(cfg).items():
            planes[(act, label)] = pipeline.evaluate_runs(
                dirs[act], cfg.estimator, cfg.options, view=view, out=out / "planes" / act, recompute=force
            )
        ms = pipeline.load_metrics(dirs[act])
        metrics[act] = {k: ms[k][:, -1].tolist() for k in ("train_acc", "test_acc")}
    table = {f"{act} {label}": layer_table(p, cfg) for (act, label), p in planes.items()}
    return {
        "planes": planes,
        "summary": {
            "dataset": next(iter(planes.values())).measured["data"],
            "run_dirs": {a: [str(d) for d in ds] for a, ds in dirs.items()},
            "final_accuracy": metrics,
            "drops": table,
            "planes": {
                f"{act} {label}": str(pipeline.result_path(out / "planes" / act, cfg.estimator, view))
                for act in cfg.activations
                for label, view in views(cfg).items()
            },
        },
    }


def late_index(epochs_E, n_epochs: int, late: float) -> int:
    """Position of the first plotted epoch at or after ``late`` x the training length."""
    return int(min(np.searchsorted(epochs_E, late * n_epochs), len(epochs_E) - 1))


def layer_stats(plane, cfg: Config) -> dict:
    """Per seed and hidden layer (S x L-1): peak, final, late change of I(X;T)."""
    i_xt = plane.hidden().i_xt
    k = late_index(plane.epochs, cfg.run.train.n_epochs, cfg.late)
    return {"peak": i_xt.max(axis=1), "late_change": i_xt[:, -1] - i_xt[:, k], "final": i_xt[:, -1]}


def compression(plane) -> list:
    """The verdict module's compression statistic of each hidden layer (cap: log2 of the inputs)."""
    return verdicts.layers(plane.hidden().i_xt, plane.epochs, cap=verdicts.cap_xt(plane))


def layer_table(plane, cfg: Config) -> dict:
    st = layer_stats(plane, cfg)
    return {
        f"layer {l + 1}": {name: harness.mean_se(v[:, l]) for name, v in st.items()}
        | {"compression": c.summary(), "verdict": verdicts.decide(c).outcome}
        for l, c in enumerate(compression(plane))
    }


def figures(results: dict, cfg: Config, out) -> list:
    planes = results["planes"]
    return [
        plotting.save(overlay_figure(planes, cfg), out / "as_if_random.png"),
        plotting.save(
            plotting.panel_grid(planes, kind="plane", title=f"{cfg.estimator} {cfg.options}"),
            out / "infoplane_grid.png",
        ),
    ]


def overlay_figure(planes: dict, cfg: Config) -> Figure:
    """I(X;T) of each hidden layer against epoch: window view (solid) over the per-epoch estimate (dashed)."""
    labels = list(views(cfg))
    fig = Figure(figsize=(5.2 * len(cfg.activations), 4), layout="constrained")
    for ax, act in zip(fig.subplots(1, len(cfg.activations), squeeze=False)[0], cfg.activations):
        per, win = planes[(act, labels[0])], planes[(act, labels[1])]
        for l in range(per.shape[3] - 1):
            (line,) = ax.plot(per.epochs + 1, per.mean("i_xt")[:, l], ls="--", lw=1, alpha=0.8)
            ax.plot(win.epochs + 1, win.mean("i_xt")[:, l], lw=1.6, color=line.get_color(), label=f"layer {l + 1}")
        ax.axvline(cfg.late * cfg.run.train.n_epochs, color="0.6", lw=0.8, ls=":")
        ax.set(xscale="log", xlabel="epoch + 1 (window: its first epoch)", ylabel="I(X;T) [bits]", title=act)
        ax.legend(fontsize=7)
    n_s = next(iter(planes.values())).shape[1]
    fig.suptitle(
        f"solid: {labels[1]} kept epochs pooled (as-if-random); dashed: per epoch; "
        f"mean over {n_s} seed(s); dotted: start of late training",
        fontsize=10,
    )
    return fig


def _claim(claim, source, plane, cfg, expect: bool) -> dict:
    stats = compression(plane)
    v = verdicts.network(stats, want="compresses" if expect else "does not compress")
    measured = {f"layer {l + 1}": c.summary() for l, c in enumerate(stats)}
    measured["hidden layers compressing"] = sum(verdicts.decide(c).outcome == "compresses" for c in stats)
    return verdicts.entry(claim, source, v, measured)


def claims(results: dict, cfg: Config) -> list[dict]:
    planes, (per, win) = results["planes"], list(views(cfg))
    out = []
    if "relu" in cfg.activations:
        out += [
            _claim(
                "pooling late-training epochs as a random network shows compression even with ReLU",
                THESIS,
                planes[("relu", win)],
                cfg,
                True,
            ),
            _claim(
                "a ReLU network does not compress under (per-epoch) binning",
                "Saxe et al. 2018, Fig. 1",
                planes[("relu", per)],
                cfg,
                False,
            ),
        ]
    if "tanh" in cfg.activations:
        out += [
            _claim(
                "a tanh network compresses (per-epoch binning)",
                "Shwartz-Ziv & Tishby 2017, Fig. 3",
                planes[("tanh", per)],
                cfg,
                True,
            ),
            _claim(
                "the tanh network's compression is still seen with as-if-random windows",
                THESIS,
                planes[("tanh", win)],
                cfg,
                True,
            ),
        ]
    return out


def main(argv=None) -> dict:
    return harness.main("as_if_random", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
