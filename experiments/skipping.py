"""Epoch skipping: the information plane from fewer evaluated epochs, its error and the time it saves

Shwartz-Ziv & Tishby's 12-10-7-5-4-3-2 tanh network on the 12-bit task (the `tishby` experiment's
default run: Adam 4e-4, batch 256, 8000 epochs, 274 log-spaced kept epochs), 3 seeds, binning with
30 bins. Every kept epoch is evaluated once as the reference; then three ways of evaluating fewer:
every n-th kept epoch (and the last), the student thesis's approximate delta-skip (a doubling walk:
double the step while consecutive evaluated epochs differ by less than delta) and an exact delta-skip
(bisect until consecutive kept epochs differ by at most delta or are adjacent). Skipped epochs are
filled in by linear interpolation. The table gives, per strategy, the evaluations used, the maximum
and mean interpolation error against the full evaluation and the measured wall time of the strategy
against that of the full evaluation.

Distances and errors are normalised: |delta I(X;T)| / H(X) and |delta I(T;Y)| / H(Y), the larger of the
two over every T (H(X) = 12 bits, H(Y) ~ 1 bit). The seeds share kept epochs: one evaluation is one
epoch of every seed in one batched call, and delta holds for each seed. Timings are the fastest of
``repeats`` warm runs, wall and CPU (compilation done in a first run, reported apart); each call of a
strategy is padded to one of a few sizes (at most 25% more epochs) so that compilations are few.

    python -m experiments.skipping                  # 3 seeds x 8000 epochs: 2.5 min of CPU time (12 min on 2 busy cores)
    python -m experiments.skipping --set deltas=0.01,0.05 --set every=4,16
    python -m experiments.skipping --quick          # CI-sized: 1 seed of a 12-6-4-2 net x 100 epochs
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from experiments import tishby
from ibjax import claims as verdicts
from ibjax import pipeline, plotting, skipping
from ibjax.config import RunConfig

STRATEGIES = ("every", "approx", "exact")
FAR_FEWER = 0.5  # "far fewer epochs": at most this share of the kept epochs evaluated
TIME_SHARE = 0.5  # "saves time": at least this share of the time the skipped epochs would cost is saved


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: tishby.Config().run)
    seeds: int = harness.setting(3, harness.integer(least=1))
    estimator: str = harness.setting("binning", harness.estimator())
    options: str = harness.setting("n_bins=30", harness.options("estimator"))
    # for both delta-skip strategies
    deltas: tuple = harness.setting(
        (0.005, 0.01, 0.02, 0.05, 0.1), harness.distinct(), harness.each(harness.number(above=0, below=1))
    )
    # every n-th kept epoch
    every: tuple = harness.setting((2, 4, 8, 16, 32), harness.distinct(least=0), harness.each(harness.integer(least=1)))
    # the delta of the claims and the curves figure
    headline_delta: float = harness.setting(0.02, harness.member_of("deltas"))
    round_size: int = harness.setting(8, harness.integer(least=1))  # approx: speculative steps per batched call
    # timed warm runs of each strategy (the fastest is reported); 0: time the first run only
    repeats: int = harness.setting(3, harness.integer(least=0))
    # calls are padded to multiples of this many epochs (fewer compiled shapes)
    granule: int = harness.setting(8, harness.integer(least=1))


QUICK = {
    "seeds": 1,
    "run.model.widths": (12, 6, 4, 2),
    "run.train.n_epochs": 100,
    "run.train.schedule": "log:40",
    "deltas": (0.02, 0.1),
    "every": (4,),
    "repeats": 0,
    "granule": 32,
}  # every call one shape: one compilation


# ---------------------------------------------------------------------------------------------
# evaluation: one batched call per list of epochs, every seed at once


def bucket(n: int, granule: int) -> int:
    """``n`` rounded up to a few sizes: multiples of ``granule`` up to 8 granules, then 3 significant bits
    (at most 25% padding): calls of nearby sizes share one compiled shape."""
    m = -(-n // granule)
    step = 1 << max(0, m.bit_length() - 3)
    return -(-m // step) * step * granule


def make_evaluator(fns, params_SxE, epochs_E, x, y, estimator: str, options, granule: int, **plane_info):
    """``evaluate(pos_B) -> InfoPlane`` of those epochs; each call padded (last position repeated) to a bucket size."""

    def evaluate(pos_B):
        pos_B = np.asarray(pos_B, int)
        full = np.concatenate([pos_B, np.repeat(pos_B[-1:], bucket(len(pos_B), granule) - len(pos_B))])
        plane = pipeline.evaluate_arrays(
            fns,
            jax.tree.map(lambda a: a[:, full], params_SxE),
            epochs_E[full],
            x,
            y,
            estimator,
            options,
            progress=False,
            log=lambda *_: None,
            **plane_info,
        )
        b = len(pos_B)  # the padding's values are dropped; the key named them, so it is cleared
        return dataclasses.replace(
            plane, epochs=plane.epochs[:b], values={k: v[:, :, :b] for k, v in plane.values.items()}, key=""
        )

    return evaluate


def as_batch(evaluate, epochs_E):
    """The strategies' ``evaluate_batch``: epochs_B -> (i_xt_Bx(S*L), i_ty_Bx(S*L)), seeds side by side."""

    def batch(epochs_B):
        plane = evaluate(np.searchsorted(epochs_E, epochs_B))
        flat = lambda v_SxBxL: np.asarray(v_SxBxL, np.float64).transpose(1, 0, 2).reshape(len(epochs_B), -1)
        return flat(plane.i_xt), flat(plane.i_ty)

    return batch


def strategy_fn(kind: str, param, cfg: Config, h_x: float, h_y: float):
    if kind == "every":
        return lambda b, e: skipping.every_nth(b, e, n=int(param))
    if kind == "exact":
        return lambda b, e: skipping.delta_skip_exact(b, e, delta=param, h_x=h_x, h_y=h_y)
    return lambda b, e: skipping.delta_skip_approx(b, e, delta=param, h_x=h_x, h_y=h_y, round_size=cfg.round_size)


def timed(fn, repeats: int):
    """(result of a first run, its wall seconds, then the fastest of ``repeats`` more runs: wall and process
    CPU seconds; with repeats 0, the first run's). The fastest run is the one least slowed by other load."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm = [] if repeats else [(cold, cold_cpu)]
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        warm.append((time.perf_counter() - t0, time.process_time() - c0))
    return result, cold, min(w for w, _ in warm), min(c for _, c in warm)


# ---------------------------------------------------------------------------------------------
# one strategy against the full evaluation


def measure(res: skipping.SkipResult, epochs_E, full_ExSxL: tuple, h_x: float, h_y: float) -> dict:
    """Counts and interpolation errors (overall and per seed) of one strategy's result."""
    n_e, n_s, n_l = full_ExSxL[0].shape
    flat = tuple(v.reshape(n_e, -1) for v in full_ExSxL)
    err = skipping.interp_errors(res, epochs_E, *flat, h_x=h_x, h_y=h_y)
    i_xt, i_ty = (v.reshape(n_e, n_s, n_l) for v in skipping.interpolate(res, epochs_E))
    per_seed_S = np.maximum(
        np.abs(i_xt - full_ExSxL[0]).max(axis=(0, 2)) / h_x, np.abs(i_ty - full_ExSxL[1]).max(axis=(0, 2)) / h_y
    )
    pos_K = np.searchsorted(epochs_E, res.epochs)
    gaps = skipping.consecutive_distances(res.i_xt, res.i_ty, h_x=h_x, h_y=h_y)[np.diff(pos_K) > 1]
    same = np.allclose(res.i_xt, flat[0][pos_K], atol=1e-5) and np.allclose(res.i_ty, flat[1][pos_K], atol=1e-5)
    return {
        "n_evaluated": res.n_evaluated,
        "n_kept": len(res.epochs),
        "n_total": res.n_total,
        "n_rounds": res.n_rounds,
        "fraction_evaluated": round(res.n_evaluated / res.n_total, 4),
        "max_error_norm": err["norm"],
        "mean_error_norm": err["mean_norm"],
        "max_error_i_xt_bits": err["i_xt_abs"],
        "max_error_i_ty_bits": err["i_ty_abs"],
        "mean_error_i_xt_bits": err["i_xt_mean_abs"],
        "mean_error_i_ty_bits": err["i_ty_mean_abs"],
        "max_error_norm_per_seed": per_seed_S.tolist(),
        "max_skipped_gap_norm": float(gaps.max()) if gaps.size else 0.0,
        "values_match_full": bool(same),
        "epochs_kept": res.epochs.tolist(),
    }


def run(cfg: Config, out, *, force: bool = False) -> dict:
    dirs = pipeline.train_or_reuse(cfg.run, range(cfg.seeds), out / "runs", force=force)
    runs = pipeline.load_runs(dirs)
    rc = RunConfig.from_dict(runs[0].config)
    model, (x, y, measured) = rc.model.build(), pipeline.samples_of(rc)
    params_SxE = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in runs])
    epochs_E = runs[0].epochs
    evaluate = make_evaluator(
        model,
        params_SxE,
        epochs_E,
        x,
        y,
        cfg.estimator,
        cfg.options,
        cfg.granule,
        run_ids=[r.config["run_id"] for r in runs],
        run_dirs=dirs,
        measured=measured,
    )
    h_x, h_y = float(np.log2(len(y))), verdicts.cap_ty(y)
    every_pos = np.arange(len(epochs_E))
    full, full_cold, full_warm, full_cpu = timed(lambda: evaluate(every_pos), cfg.repeats)
    full_ExSxL = tuple(np.asarray(v, np.float64).transpose(1, 0, 2) for v in (full.i_xt, full.i_ty))
    print(
        f"skipping: full evaluation of {len(epochs_E)} epochs x {cfg.seeds} seed(s): {full_warm:.2f} s warm "
        f"({full_cold:.2f} s with compilation)"
    )
    batch = as_batch(evaluate, epochs_E)
    rows, results = [], {}
    grid = [("every", n) for n in cfg.every] + [(k, d) for k in ("approx", "exact") for d in cfg.deltas]
    for kind, param in grid:  # the strategies are sequential rounds of batched calls; one strategy at a time
        res, cold, warm, cpu = timed(lambda: strategy_fn(kind, param, cfg, h_x, h_y)(batch, epochs_E), cfg.repeats)
        row = {
            "strategy": kind,
            "param": param,
            "seconds": round(warm, 3),
            "seconds_cold": round(cold, 3),
            "cpu_seconds": round(cpu, 3),
            "time_fraction": round(warm / full_warm, 4),
            "cpu_fraction": round(cpu / full_cpu, 4),
            **measure(res, epochs_E, full_ExSxL, h_x, h_y),
        }
        rows.append(row)
        results[(kind, param)] = res
        print(
            f"skipping: {kind} {param}: {row['n_evaluated']}/{row['n_total']} epochs in {row['n_rounds']} call(s), "
            f"max error {row['max_error_norm']:.4f}, {warm:.2f} s"
        )
    full.save(pipeline.result_path(out, cfg.estimator))
    harness.save_text(out / "table.md", table_markdown(rows, full_warm, full_cpu, len(epochs_E)))
    return {
        "rows": rows,
        "results": results,
        "full": full_ExSxL,
        "epochs": epochs_E,
        "plane": full,
        "h": (h_x, h_y),
        "summary": {
            "dataset": measured["data"],
            "run_dirs": [str(d) for d in dirs],
            "h_x_bits": h_x,
            "h_y_bits": h_y,
            "n_kept_epochs": int(len(epochs_E)),
            "full_seconds": round(full_warm, 3),
            "full_cpu_seconds": round(full_cpu, 3),
            "full_seconds_cold": round(full_cold, 3),
            "table": [_light(r) for r in rows],
        },
    }


def _light(row: dict) -> dict:
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items() if k != "epochs_kept"}


def table_markdown(rows: list, full_seconds: float, full_cpu: float, n_total: int) -> str:
    head = (
        "| strategy | setting | evaluated / kept | calls | max error (norm.) | mean error (norm.) | "
        "max error I(X;T) / I(T;Y) [bits] | wall [s] | wall / full | CPU [s] | CPU / full |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| full | all | {n_total} / {n_total} | 1 | 0 | 0 | 0 / 0 | {full_seconds:.2f} | 1 | {full_cpu:.2f} | 1 |\n"
    )
    name = {"every": "every n-th", "approx": "delta-skip approx", "exact": "delta-skip exact"}
    return head + "".join(
        f"| {name[r['strategy']]} | {'n' if r['strategy'] == 'every' else 'delta'} = {r['param']} | "
        f"{r['n_evaluated']} / {r['n_total']} | {r['n_rounds']} | {r['max_error_norm']:.4f} | {r['mean_error_norm']:.5f} | "
        f"{r['max_error_i_xt_bits']:.3f} / {r['max_error_i_ty_bits']:.3f} | {r['seconds']:.2f} | {r['time_fraction']:.2f} | "
        f"{r['cpu_seconds']:.2f} | {r['cpu_fraction']:.2f} |\n"
        for r in rows
    )


# ---------------------------------------------------------------------------------------------
# figures and claims


def figures(results: dict, cfg: Config, out) -> list:
    return [
        plotting.save(tradeoff_figure(results), out / "skipping.png"),
        plotting.save(curves_figure(results, cfg), out / "skipping_curves.png"),
    ]


def tradeoff_figure(results: dict) -> Figure:
    rows, full_s = results["rows"], results["summary"]["full_seconds"]
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_err, ax_t = fig.subplots(1, 2)
    for kind, marker in zip(STRATEGIES, "s^o"):
        rs = [r for r in rows if r["strategy"] == kind]
        if not rs:
            continue
        frac = [r["fraction_evaluated"] for r in rs]
        (line,) = ax_err.plot(frac, [max(r["max_error_norm"], 1e-6) for r in rs], marker=marker, label=f"{kind}: max")
        ax_err.plot(
            frac,
            [max(r["mean_error_norm"], 1e-6) for r in rs],
            marker=marker,
            ls="--",
            mfc="none",
            color=line.get_color(),
            label=f"{kind}: mean",
        )
        for r in rs:
            ax_err.annotate(
                f"{'n' if kind == 'every' else 'δ'}={r['param']}",
                (r["fraction_evaluated"], r["max_error_norm"]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax_t.plot(frac, [r["seconds"] for r in rs], marker=marker, color=line.get_color(), label=f"{kind}: wall")
        ax_t.plot(
            frac,
            [r["cpu_seconds"] for r in rs],
            marker=marker,
            color=line.get_color(),
            ls="--",
            mfc="none",
            label=f"{kind}: CPU",
        )
    ax_err.set(
        xscale="log", yscale="log", xlabel="evaluated epochs / kept epochs", ylabel="interpolation error (normalised)"
    )
    ax_err.legend(fontsize=7)
    full_cpu = results["summary"]["full_cpu_seconds"]
    ax_t.axhline(full_s, color="k", lw=1, ls=":", label=f"full evaluation: wall {full_s:.2f} s")
    ax_t.axhline(full_cpu, color="0.5", lw=1, ls=":", label=f"full evaluation: CPU {full_cpu:.2f} s")
    ax_t.set(xscale="log", yscale="log", xlabel="evaluated epochs / kept epochs", ylabel="time, compiled [s]")
    ax_t.legend(fontsize=7)
    fig.suptitle("epoch skipping against full evaluation (errors: max / mean over epochs, T's and seeds)", fontsize=10)
    return fig


def curves_figure(results: dict, cfg: Config) -> Figure:
    """Seed 0: the full curves, and the kept points and interpolation of both delta-skips at headline_delta."""
    epochs, full, n_l = results["epochs"], results["full"], results["full"][0].shape[2]
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, name, f in zip(fig.subplots(1, 2), ("I(X;T)", "I(T;Y)"), full):
        x = np.maximum(epochs, 0) + 1
        for l in range(n_l):
            (line,) = ax.plot(x, f[:, 0, l], lw=2.5, alpha=0.3, label=f"layer {l + 1}")
            for kind, marker in (("exact", "o"), ("approx", "x")):
                res = results["results"][(kind, cfg.headline_delta)]
                v = (res.i_xt if name == "I(X;T)" else res.i_ty)[:, l]  # seed 0 is columns 0..L-1
                ax.plot(
                    res.epochs + 1,
                    v,
                    marker=marker,
                    ms=3,
                    lw=0.7,
                    color=line.get_color(),
                    ls="-" if kind == "exact" else ":",
                )
        ax.set(xscale="log", xlabel="epoch + 1", ylabel=f"{name} [bits]")
    fig.axes[0].legend(fontsize=7)
    fig.suptitle(
        f"seed 0: full evaluation (thick), delta-skip exact (o, solid) and approx (x, dotted), "
        f"delta = {cfg.headline_delta}",
        fontsize=10,
    )
    return fig


def fewer(n_evaluated: int, n_kept: int) -> verdicts.Verdict:
    """ "Far fewer epochs": at most FAR_FEWER of the kept epochs evaluated (273 of 274 fails)."""
    r = n_evaluated / n_kept
    return verdicts.holds(r <= FAR_FEWER, effect=r, threshold=FAR_FEWER, what=f"{n_evaluated} of {n_kept} evaluated")


def saves_time(time_fraction: float, evaluated_fraction: float) -> verdicts.Verdict:
    """Skipping saves at least TIME_SHARE of the time its skipped epochs would cost:
    1 - time / full >= TIME_SHARE (1 - evaluated / kept). A run that skips half the epochs and saves
    5% of the time fails."""
    need = TIME_SHARE * (1 - evaluated_fraction)
    saved = 1 - time_fraction
    return verdicts.holds(
        saved >= need, effect=saved, threshold=need, what=f"saved {saved:.0%} of the time, need {need:.0%}"
    )


def within_delta(max_error_norm: list, deltas) -> verdicts.Verdict:
    """The exact walk's guarantee: an unevaluated epoch lies between evaluated ones whose values differ
    by at most delta H(X); the interpolated plane is within delta where I(X;T) is monotone between
    them. Fails when a delta's worst normalised error exceeds it."""
    worst = max(e / d for e, d in zip(max_error_norm, deltas))
    return verdicts.holds(worst <= 1 + 1e-9, effect=worst, threshold=1.0, what=f"worst error {worst:.2f} x delta")


def claims(results: dict, cfg: Config) -> list[dict]:
    rows = {(r["strategy"], r["param"]): r for r in results["rows"]}
    d = cfg.headline_delta
    ex, ap = rows[("exact", d)], rows[("approx", d)]
    h_x, _ = results["h"]
    thesis = "student thesis (epoch skipping / as-if-random), in the project's sources"
    exact_rows = [rows[("exact", dd)] for dd in cfg.deltas]
    full_x, last = results["full"][0], results["full"][0].shape[2] - 2  # last hidden layer
    stat = verdicts.compression(full_x[:, :, last].T, cap=h_x)  # all kept epochs: seeds x epochs
    drop_full = full_x[:, :, last].max(axis=0) - full_x[-1, :, last]
    kept = np.asarray(results["results"][("exact", d)].i_xt).reshape(len(ex["epochs_kept"]), -1, full_x.shape[2])
    drop_skip = kept[:, :, last].max(axis=0) - kept[-1, :, last]
    gap = float(np.abs(drop_skip - drop_full).max())
    survives = verdicts.every(
        {
            "compresses": verdicts.decide(stat),
            "survives": verdicts.holds(
                gap <= d * h_x + 1e-6, effect=gap, threshold=d * h_x, what="drop moved by skipping"
            ),
        }
    )
    return [
        verdicts.entry(
            f"delta-skip evaluates far fewer epochs than the full schedule (at most {FAR_FEWER:.0%} of them)",
            thesis,
            fewer(ex["n_evaluated"], ex["n_total"]),
            {
                f"exact, delta={d}: evaluated / kept": round(ex["n_evaluated"] / ex["n_total"], 4),
                f"approx, delta={d}: evaluated / kept": round(ap["n_evaluated"] / ap["n_total"], 4),
            },
        ),
        verdicts.entry(
            "the plane interpolated from the kept epochs is within delta of the full one "
            "(exact delta-skip; linear interpolation)",
            thesis,
            within_delta([r["max_error_norm"] for r in exact_rows], cfg.deltas),
            {
                f"max normalised error, delta={dd}": harness.mean_se(r["max_error_norm_per_seed"])
                for r, dd in zip(exact_rows, cfg.deltas)
            },
        ),
        verdicts.entry(
            "the approximate (doubling) walk needs fewer evaluations than exact bisection, at a larger worst error",
            thesis,
            verdicts.holds(
                ap["n_evaluated"] < ex["n_evaluated"] and ap["max_error_norm"] > ex["max_error_norm"],
                effect=ap["n_evaluated"] / ex["n_evaluated"],
                what="approx is not both cheaper and coarser",
            ),
            {
                f"approx, delta={d}: max normalised error": harness.mean_se(ap["max_error_norm_per_seed"]),
                f"exact, delta={d}: max normalised error": harness.mean_se(ex["max_error_norm_per_seed"]),
                "approx / exact evaluations": round(ap["n_evaluated"] / ex["n_evaluated"], 4),
            },
        ),
        verdicts.entry(
            f"skipping epochs saves evaluation wall time (at least {TIME_SHARE:.0%} of what the skipped epochs cost)",
            thesis,
            saves_time(ex["time_fraction"], ex["n_evaluated"] / ex["n_total"]),
            {
                f"exact, delta={d}: time / full evaluation": ex["time_fraction"],
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
                f"layer {last + 1} drop, exact delta={d} epochs [bits]": harness.mean_se(drop_skip),
            },
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("skipping", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
