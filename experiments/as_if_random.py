"""As-if-random: windows of consecutive epochs pooled as one sample, tanh against ReLU

The student thesis pools the activations of W consecutive kept epochs as one sample of T (a random network), so
I(X;T) is finite and can fall without added noise. SZT's 12-bit network with tanh and with ReLU, binning of bin size
0.07, per epoch and with the ``window:W`` view (setup: results/as_if_random/NOTES.md).

    python -m experiments.as_if_random                   # 2 x 3 seeds x 8000 epochs: 3 min of CPU time (11 min on 2 busy cores)
    python -m experiments.as_if_random --set window=10
    python -m experiments.as_if_random --quick           # CI-sized: ReLU only, 1 seed x 40 epochs
"""

from __future__ import annotations

from dataclasses import dataclass, field

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, RunConfig, TrainConfig

THESIS = "student thesis (epoch skipping / as-if-random), in the project's sources"


RUN = RunConfig(data=DataConfig(name="szt_12bit"), train=TrainConfig(schedule="every:40"))


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: RUN)  # the activation is replaced by each of `activations`
    activations: tuple = harness.setting(("tanh", "relu"), harness.activations())
    seeds: int = harness.setting(3, harness.integer(least=1))
    window: int = harness.setting(5, harness.integer(least=2))  # kept epochs pooled into one sample
    # a label-conditional estimator (binning or kde)
    estimator: str = harness.setting("binning", harness.estimator(label_conditional=True))
    options: str = harness.setting("bin_size=0.07", harness.options("estimator"))
    # late training starts at this fraction of the epochs
    late: float = harness.setting(0.5, harness.number(least=0, below=1))


QUICK = {"activations": ("relu",), "seeds": 1, "run.model.widths": (12, 4, 2), "run.train.n_epochs": 40}
QUICK |= {"run.train.schedule": "every:4", "window": 3}  # one activation: one training and two evaluation compiles


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
    table = {f"{a} {v}": verdicts.late_table(p, cfg.run.train.n_epochs, cfg.late) for (a, v), p in planes.items()}
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


def figures(results: dict, cfg: Config, out) -> list:
    planes, late = results["planes"], cfg.late * cfg.run.train.n_epochs
    overlay = plotting.overlay_views(planes, cfg.activations, tuple(views(cfg)), late_epoch=late)
    grid = plotting.panel_grid(planes, kind="plane", title=f"{cfg.estimator} {cfg.options}")
    return [plotting.save(overlay, out / "as_if_random.png"), plotting.save(grid, out / "infoplane_grid.png")]


CLAIMS = (  # (activation, view: 0 per epoch / 1 windows, the claim, its source, what the network should do)
    ("relu", 1, "pooling late-training epochs as a random network shows compression even with ReLU", THESIS, True),
    ("relu", 0, "a ReLU network does not compress under (per-epoch) binning", "Saxe et al. 2018, Fig. 1", False),
    ("tanh", 0, "a tanh network compresses (per-epoch binning)", "Shwartz-Ziv & Tishby 2017, Fig. 3", True),
    ("tanh", 1, "the tanh network's compression is still seen with as-if-random windows", THESIS, True),
)


def claims(results: dict, cfg: Config) -> list[dict]:
    planes, labels = results["planes"], list(views(cfg))
    want = {True: "compresses", False: "does not compress"}
    return [
        verdicts.network_claim(text, src, planes[(act, labels[v])], want[expect])
        for act, v, text, src, expect in CLAIMS
        if act in cfg.activations
    ]


def main(argv=None) -> dict:
    return harness.main("as_if_random", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
