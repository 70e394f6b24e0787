"""Epoch skipping: the information plane from fewer evaluated epochs, its error and the time it saves

Shwartz-Ziv & Tishby's 12-bit tanh network (tishby's run), 3 seeds, binning with 30 bins: every kept epoch
evaluated once as the reference, then every n-th kept epoch, the student thesis's approximate delta-skip and an
exact delta-skip, with interpolation errors and measured time against the full evaluation (setup:
results/skipping/NOTES.md).

    python -m experiments.skipping                  # 3 seeds x 8000 epochs: 2.5 min of CPU time (12 min on 2 busy cores)
    python -m experiments.skipping --set deltas=0.01,0.05 --set every=4,16
    python -m experiments.skipping --quick          # CI-sized: 1 seed of a 12-6-4-2 net x 100 epochs
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting
from ibjax.config import DataConfig, RunConfig

FAR_FEWER = 0.5  # "far fewer epochs": at most this share of the kept epochs evaluated
TIME_SHARE = 0.5  # "saves time": at least this share of the time the skipped epochs would cost is saved
THESIS = "student thesis (epoch skipping / as-if-random), in the project's sources"


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: RunConfig(data=DataConfig(name="szt_12bit")))  # tishby's run
    seeds: int = harness.setting(3, harness.integer(least=1))
    estimator: str = harness.setting("binning", harness.estimator())
    options: str = harness.setting("n_bins=30", harness.options("estimator"))
    deltas: tuple = harness.values_of(
        (0.005, 0.01, 0.02, 0.05, 0.1), harness.number(above=0, below=1)
    )  # both delta-skips
    every: tuple = harness.values_of((2, 4, 8, 16, 32), harness.integer(least=1), least=0)  # every n-th kept epoch
    # the delta of the claims and the curves figure
    headline_delta: float = harness.setting(0.02, harness.member_of("deltas"))
    round_size: int = harness.setting(8, harness.integer(least=1))  # approx: speculative steps per batched call
    # timed warm runs of each strategy (the fastest is reported); 0: time the first run only
    repeats: int = harness.setting(3, harness.integer(least=0))
    # calls are padded to multiples of this many epochs (fewer compiled shapes)
    granule: int = harness.setting(8, harness.integer(least=1))


QUICK = {"seeds": 1, "run.model.widths": (12, 6, 4, 2), "run.train.n_epochs": 100, "run.train.schedule": "log:40"}
QUICK |= {"deltas": (0.02, 0.1), "every": (4,), "repeats": 0, "granule": 32}  # every call one shape: one compilation


def run(cfg: Config, out, *, force: bool = False) -> dict:
    dirs = pipeline.train_or_reuse(cfg.run, range(cfg.seeds), out / "runs", force=force)
    grid = [("every", n) for n in cfg.every] + [(k, d) for k in ("approx", "exact") for d in cfg.deltas]
    kw = dict(granule=cfg.granule, repeats=cfg.repeats, round_size=cfg.round_size)
    r = pipeline.compare_skipping(dirs, cfg.estimator, cfg.options, grid, **kw)
    r["plane"].save(pipeline.result_path(out, cfg.estimator))
    harness.save_text(out / "table.md", r["table"])
    return r


def figures(results: dict, cfg: Config, out) -> list:
    return [
        plotting.save(plotting.skipping_tradeoff(results), out / "skipping.png"),
        plotting.save(plotting.skipping_curves(results, cfg.headline_delta), out / "skipping_curves.png"),
    ]


def claims(results: dict, cfg: Config) -> list[dict]:
    rows = {(r["strategy"], r["param"]): r for r in results["rows"]}
    d = cfg.headline_delta
    ex, ap = rows[("exact", d)], rows[("approx", d)]
    exact_rows = [rows[("exact", dd)] for dd in cfg.deltas]
    h_x, full_x = results["h"][0], results["full"][0]
    last = full_x.shape[2] - 2  # the last hidden layer
    kept = np.asarray(results["results"][("exact", d)].i_xt).reshape(len(ex["epochs_kept"]), -1, full_x.shape[2])
    survives, stat, drop_full, drop_kept = verdicts.drop_survives(
        full_x[:, :, last], kept[:, :, last], tol=d * h_x, cap=h_x
    )
    return [
        verdicts.entry(
            f"delta-skip evaluates far fewer epochs than the full schedule (at most {FAR_FEWER:.0%} of them)",
            THESIS,
            verdicts.share_at_most(ex["n_evaluated"], ex["n_total"], FAR_FEWER),
            {
                f"exact, delta={d}: evaluated / kept": round(ex["n_evaluated"] / ex["n_total"], 4),
                f"approx, delta={d}: evaluated / kept": round(ap["n_evaluated"] / ap["n_total"], 4),
            },
        ),
        verdicts.entry(
            "the plane interpolated from the kept epochs is within delta of the full one "
            "(exact delta-skip; linear interpolation)",
            THESIS,
            verdicts.within_bounds([r["max_error_norm"] for r in exact_rows], cfg.deltas),
            {
                f"max normalised error, delta={dd}": harness.mean_se(r["max_error_norm_per_seed"])
                for r, dd in zip(exact_rows, cfg.deltas)
            },
        ),
        verdicts.entry(
            "the approximate (doubling) walk needs fewer evaluations than exact bisection, at a larger worst error",
            THESIS,
            verdicts.cheaper_but_coarser(
                ap["n_evaluated"], ex["n_evaluated"], ap["max_error_norm"], ex["max_error_norm"], name="approx"
            ),
            {
                f"approx, delta={d}: max normalised error": harness.mean_se(ap["max_error_norm_per_seed"]),
                f"exact, delta={d}: max normalised error": harness.mean_se(ex["max_error_norm_per_seed"]),
                "approx / exact evaluations": round(ap["n_evaluated"] / ex["n_evaluated"], 4),
            },
        ),
        verdicts.entry(
            f"skipping epochs saves evaluation wall time (at least {TIME_SHARE:.0%} of what the skipped epochs cost)",
            THESIS,
            verdicts.saves_time(
                ex["time_fraction"],
                ex["n_evaluated"] / ex["n_total"],
                share=TIME_SHARE,
                time_range=ex["time_fraction_range"],
            ),
            {
                f"exact, delta={d}: time / full evaluation": ex["time_fraction"],
                f"exact, delta={d}: time / full evaluation, range over the repeats": ex["time_fraction_range"],
                f"approx, delta={d}: time / full evaluation": ap["time_fraction"],
                f"exact, delta={d}: CPU time / full evaluation": ex["cpu_fraction"],
            },
        ),
        verdicts.entry(
            "the last hidden layer compresses (peak-to-final I(X;T) drop); the drop survives skipping (within delta H(X))",
            "Shwartz-Ziv & Tishby 2017, Fig. 3",
            survives,
            {
                f"layer {last + 1} compression, all epochs": stat.summary(),
                f"layer {last + 1} drop, all epochs [bits]": harness.mean_se(drop_full),
                f"layer {last + 1} drop, exact delta={d} epochs [bits]": harness.mean_se(drop_kept),
            },
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("skipping", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
