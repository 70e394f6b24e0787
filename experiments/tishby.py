"""Shwartz-Ziv & Tishby's information plane of the 12-bit task, end to end.

    python -m experiments.tishby                      # the paper's 50 seeds x 8000 epochs, one vmapped call
    python -m experiments.tishby --seeds 5            # 274 log-spaced checkpoints each
    python -m experiments.tishby --set estimator=kde --set options=noise_var=1e-3
    python -m experiments.tishby --quick              # CI-sized: 300 epochs

12-10-7-5-4-3-2 tanh MLP with softmax output on var_u (random 80/20 split, seed 0), Adam 4e-4,
batch 256; I(X;T) and I(T;Y) of every layer on all 4096 inputs (binning, 30 bins on [-1, 1], by
default). Writes OUT/runs/seed_<s>/, OUT/infoplane_<estimator>.npz, figures and OUT/summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, RunConfig


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: RunConfig(data=DataConfig(name="szt_12bit")))
    seeds: int = harness.setting(50, harness.integer(least=1))
    estimator: str = harness.setting("binning", harness.estimator())
    options: str = harness.setting("n_bins=30", harness.options("estimator"))  # "name=value;name=value"
    epochs: str = harness.setting("all", harness.epochs())


QUICK = {"run.train.n_epochs": 300, "run.train.schedule": "log:60"}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    dirs = pipeline.train_or_reuse(cfg.run, range(cfg.seeds), out / "runs", force=force)
    plane = pipeline.evaluate_runs(dirs, cfg.estimator, cfg.options, epochs=cfg.epochs, out=out, recompute=force)
    metrics = pipeline.load_metrics(dirs)  # S x epochs each
    return {
        "plane": plane,
        "h_y": verdicts.cap_ty(pipeline.load_data(cfg.run).y),
        "metrics": metrics,
        "summary": {
            "dataset": plane.measured["data"],
            "run_dirs": [str(d) for d in dirs],
            **{f"final_{k}": metrics[k][:, -1].tolist() for k in ("train_acc", "test_acc")},
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
    plane, h_y, szt = results["plane"], results["h_y"], "Shwartz-Ziv & Tishby 2017"
    i_xt, i_ty = plane.hidden().i_xt, plane.i_ty  # S x E x hidden layers; S x E x L
    stats = verdicts.layers(i_xt, plane.epochs, cap=verdicts.cap_xt(plane))
    last = len(stats) - 1  # the last hidden layer
    rise, ty = verdicts.rises(i_ty, cap=h_y), verdicts.layers(i_ty, plane.epochs, cap=h_y)
    return [
        verdicts.entry(
            f"the last hidden layer (T{last + 1}) first gains, then loses information about the input (compression)",
            f"{szt}, Fig. 3",
            verdicts.gains_then_loses(i_xt[:, :, last], plane.epochs, cap=verdicts.cap_xt(plane)),
            {f"T{l + 1}": st.summary() for l, st in enumerate(stats)},
        ),
        verdicts.entry(
            "every layer's I(T;Y) rises during training (fitting); layers at H(Y) from the first epoch cannot rise",
            f"{szt}, Sec. 3",
            verdicts.every(rise) if rise else verdicts.undecided("every T at H(Y) from the first epoch"),
            {"H(Y) [bits]": round(h_y, 4), "decided on (the others start at H(Y))": sorted(rise)}
            | {f"T{l + 1} I(T;Y)": st.summary()["peak minus first [bits]"] for l, st in enumerate(ty)},
        ),
        verdicts.entry(
            f"compression follows fitting: T{last + 1}'s I(X;T) peaks after most (> 50%) of its I(T;Y) gain",
            f"{szt}, Sec. 3.2",
            verdicts.after_fitting(i_xt[:, :, last], i_ty[:, :, last]),
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("tishby", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
