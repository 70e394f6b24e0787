"""Shwartz-Ziv & Tishby's information plane of the 12-bit task, end to end.

    python -m experiments.tishby                      # 5 seeds x 8000 epochs, 274 log-spaced checkpoints
    python -m experiments.tishby --seeds 50           # the paper's 50 networks, one vmapped call: 4 min
    python -m experiments.tishby --set estimator=kde --set options=noise_var=1e-3
    python -m experiments.tishby --quick              # CI-sized: 300 epochs

12-10-7-5-4-3-2 tanh MLP with softmax output on var_u (random 80/20 split, seed 0), Adam 4e-4,
batch 256; I(X;T) and I(T;Y) of every layer on all 4096 inputs (binning, 30 bins on [-1, 1], by
default). Writes OUT/runs/seed_<s>/, OUT/infoplane_<estimator>.npz, figures and OUT/summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments import _harness as harness
from ibjax import checkpoints, pipeline, plotting, registry
from ibjax.config import DataConfig, RunConfig


@dataclass(frozen=True)
class Config:
    run: RunConfig = field(default_factory=lambda: RunConfig(data=DataConfig(name="szt_12bit")))
    seeds: int = 5
    estimator: str = "binning"
    options: str = "n_bins=30"  # the estimator's options, "name=value;name=value"
    epochs: str = "all"


QUICK = {"run.train.n_epochs": 300, "run.train.schedule": "log:60"}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    dirs = pipeline.train_or_reuse(cfg.run, range(cfg.seeds), out / "runs", force=force)
    plane = pipeline.evaluate_runs(
        dirs, cfg.estimator, registry.parse_options(cfg.estimator, cfg.options), epochs=cfg.epochs, out=out
    )
    metrics = [checkpoints.load_metrics(d) for d in dirs]
    acc = {k: [float(m[k][-1]) for m in metrics] for k in ("train_acc", "test_acc")}
    return {
        "plane": plane,
        "metrics": {k: np.stack([m[k] for m in metrics]) for k in metrics[0]},
        "summary": {
            "dataset": plane.measured["data"],
            "run_dirs": [str(d) for d in dirs],
            "final_train_acc": acc["train_acc"],
            "final_test_acc": acc["test_acc"],
        },
    }


def figures(results: dict, cfg: Config, out) -> list:
    plane = results["plane"]
    title = f"{plane.measured['data']}, {cfg.run.model.activation}, {cfg.estimator}, {plane.shape[1]} seed(s)"
    return [
        plotting.save(plotting.info_plane(plane, title=title), out / "infoplane.png"),
        plotting.save(plotting.mi_vs_epoch(plane), out / "mi_epoch.png"),
        plotting.save(plotting.loss_curves(results["metrics"]), out / "loss.png"),
        plotting.animate(plane, out / "infoplane.gif"),
    ]


def claims(results: dict, cfg: Config) -> list[dict]:
    plane = results["plane"]
    i_xt, i_ty = plane.i_xt, plane.i_ty  # S x E x L
    drop = harness.peak_to_final(i_xt[:, :, :-1])  # S x hidden layers
    last = drop.shape[1] - 1
    return [
        {
            "claim": "the last hidden layers first gain, then lose information about the input (compression)",
            "source": "Shwartz-Ziv & Tishby 2017, Fig. 3",
            "agrees": bool(drop[:, last].mean() > 0.1),
            "measured": {
                f"layer {l + 1} peak-to-final I(X;T) drop [bits]": harness.mean_se(drop[:, l])
                for l in range(drop.shape[1])
            },
        },
        {
            "claim": "I(T;Y) of the output layer increases during training (fitting)",
            "source": "Shwartz-Ziv & Tishby 2017, Sec. 3",
            "agrees": bool((i_ty[:, -1, -1] - i_ty[:, 0, -1]).mean() > 0),
            "measured": {
                "final minus first I(T;Y) of the output [bits]": harness.mean_se(i_ty[:, -1, -1] - i_ty[:, 0, -1])
            },
        },
    ]


def main(argv=None) -> dict:
    return harness.main("tishby", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
