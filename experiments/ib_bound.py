"""The information-bottleneck bound under the layers' planes, the IB equations, and the timing of the phases (Shwartz-Ziv & Tishby 2017).

SZT's 12-10-7-5-4-3-2 tanh MLP (Adam 4e-4, batch 256, 8000 epochs, 274 log-spaced kept epochs) on
two 12-bit tasks: var_u (deterministic labels, so the IB curve is the trivial corner I(T;Y) =
min(I(X;T), H(Y)); Kolchinsky, Tracey & Van Kuyk 2019) and ``stochastic_12bit`` (labels drawn once
from p(y=1|x) = sigmoid(f(x) - theta): I(X;Y) = 0.56 of H(Y) = 1 bit), each on 80% and on 5% of the
inputs (one vmapped call per task). Every layer is binned (30 bins on [-1, 1]) and its exact I(X;T),
I(T;Y) under the true p(y|x) computed on all 4096 inputs; the IB curve of the true p(x, y) comes
from ``ibjax.ib.curve`` (64 betas x 4 restarts + an annealed path). Distance to the bound: the
curve's I(T;Y) at the layer's final I(X;T) minus its I(T;Y). IB equations: the layer's gap
E_x KL[p(t|x) || p(t) exp(-beta KL[p(y|x) || p(y|t)]) / Z] minimised over beta (zero on the IB
solutions, shown beside a random encoder with as many symbols). Timing, on var_u's last hidden
layer: the share of epochs after the compression onset (its peak I(X;T)), the share of the
training-loss decrease done by the onset, and with 5% of the data the I(T;Y) lost while it compresses.
Writes OUT/TASK/infoplane_exact_{full,small}.npz (seeds x epochs x layers) and the figures.

    python -m experiments.ib_bound             # 2 tasks x 2 sizes x 5 seeds x 8000 epochs
    python -m experiments.ib_bound --quick     # the stochastic task only, 2 seeds, 150 epochs, 8 betas
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import claims, ib, pipeline, plotting
from ibjax.config import DataConfig, RunConfig

SOURCE = "Shwartz-Ziv & Tishby 2017"


@dataclass(frozen=True)
class Config(harness.Settings):
    run: RunConfig = field(default_factory=lambda: RunConfig(data=DataConfig(name="szt_12bit")))
    tasks: tuple = harness.setting(("szt_12bit", "stochastic_12bit"), harness.distinct("szt_12bit", "stochastic_12bit"))
    # the small training set, as a fraction of all inputs (<= run.data.train_frac)
    small: float = harness.setting(0.05, harness.number(above=0, most="run.data.train_frac"))
    seeds: int = harness.setting(5, harness.integer(least=1))
    n_bins: int = harness.setting(30, harness.option("binning", "n_bins"))
    betas: int = harness.setting(64, harness.integer(least=2))  # geomspace(1, 2000, betas)
    n_iter: int = harness.setting(500, harness.integer(least=1))
    # "on the curve": final distance below this fraction of I(X;Y)
    bound_margin: float = harness.setting(0.1, harness.number(above=0, below=1))
    # bits: "satisfies the IB equations": gap below this
    consistency_margin: float = harness.setting(0.05, harness.number(above=0))


QUICK = {
    "seeds": 2,
    "run.train.n_epochs": 150,
    "run.train.schedule": "log:20",
    "betas": 8,
    "n_iter": 100,
    "tasks": ("stochastic_12bit",),
}


def _task(cfg, name):
    rc = dataclasses.replace(cfg.run, data=dataclasses.replace(cfg.run.data, name=name))
    ds = pipeline.load_data(rc)
    p1 = ds.meta.get("p_y1_given_x", ds.y.astype(np.float64))
    return rc, ds, np.stack([1 - p1, p1], axis=1)


def _evaluate(cfg, name, out, force):
    rc, ds, p_yx = _task(cfg, name)
    small = cfg.small / cfg.run.data.train_frac
    dirs = pipeline.train_or_reuse(
        rc, range(cfg.seeds), out / "runs" / name, sweep={"data.train_subset": [1.0, small]}, force=force
    )
    runs, model = pipeline.load_runs(dirs), rc.model.build()
    params = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in runs])  # R x E x ...
    n_r, n_e = len(runs), len(runs[0].epochs)
    flat = jax.tree.map(lambda a: a.reshape((n_r * n_e,) + a.shape[2:]), params)
    i_xt, i_ty = (v.reshape(n_r, n_e, -1) for v in ib.layer_planes(model.apply, flat, ds.x, p_yx, n_bins=cfg.n_bins))
    n = len(ds.y)
    p_x = np.full(n, 1.0 / n)
    betas = np.geomspace(1.0, 2000.0, cfg.betas)
    curve = ib.curve(p_x, p_yx, betas, n_iter=cfg.n_iter)
    _, rows, level = ib.merge_rows(p_x, p_yx)
    f32 = lambda a: np.asarray(a, np.float32)
    gap_betas = np.geomspace(1.0, 1e7, 128)  # hard encoders reach their fixed point only as beta grows
    gap = lambda ids: np.asarray(ib.min_hard_gaps(ids, f32(p_x), f32(p_yx), level, f32(rows), f32(gap_betas)))
    final = jax.tree.map(lambda a: a[: cfg.seeds, -1], params)  # the full-size runs' last kept epoch
    ids = np.asarray(
        jax.jit(jax.vmap(lambda p, x: ib.layer_ids(model.apply, p, x, n_bins=cfg.n_bins), in_axes=(0, None)))(
            final, ds.x
        )
    )  # S x L x N
    rand = np.random.default_rng(0).permuted(ids, axis=2)  # the layer's own symbols, shuffled over inputs: same H(T)
    own = jax.vmap(lambda e, b: ib.consistency_gap(e, f32(p_x), f32(p_yx), b[None])[0])(
        f32(curve.encoder_BxXxT[::8]), f32(betas[::8])
    )  # the IB solutions at their own beta
    gaps, gaps_rand, gap_best = gap(ids), gap(rand), float(gap(level[None, None].astype(np.int32))[0, 0])
    names = tuple(f"layer {l + 1}" for l in range(i_xt.shape[2]))
    plane = lambda idx: pipeline.InfoPlane(
        runs[0].epochs,
        {"i_xt": i_xt[None, idx], "i_ty": i_ty[None, idx]},
        "binning (true p(y|x))",
        {"n_bins": cfg.n_bins},
        layer_names=names,
        measured={"data": ds.name, "n_samples": n},
    )
    metrics = pipeline.load_metrics(dirs[: cfg.seeds])
    planes = {"full": plane(slice(0, cfg.seeds)), "small": plane(slice(cfg.seeds, None))}
    for size, pl in planes.items():
        pl.save(out / name / f"infoplane_exact_{size}.npz")
    return {
        **planes,
        "curve": curve,
        "gap": gaps,
        "gap_random": gaps_rand,
        "gap_ib": np.asarray(own),
        "gap_best_hard": gap_best,
        "train_loss": metrics["train_loss"],
        "train_acc": metrics["train_acc"],
        "data": ds.name,
    }


def run(cfg: Config, out, *, force: bool = False) -> dict:
    results = {name: _evaluate(cfg, name, out, force) for name in cfg.tasks}
    summary = {"dataset": ", ".join(r["data"] for r in results.values()), "rule": claims.RULE.describe()}
    for name, r in results.items():
        c = r["curve"]
        summary[name] = {
            "i_xy_bits": round(c.i_xy, 4),
            "h_y_bits": round(c.h_y, 4),
            "caveat": c.caveat,
            "curve": {"i_xt": np.round(c.hull_xt, 4).tolist(), "i_ty": np.round(c.hull_ty, 4).tolist()},
            "ib_solutions_own_gap_bits": np.round(r["gap_ib"], 6).tolist(),
            "best_hard_encoder_gap_bits": round(r["gap_best_hard"], 6),
            "per_layer": _per_layer(r),
        }
    return {"tasks": results, "summary": summary}


def _per_layer(r) -> dict:
    """Final distance below the curve, excess I(X;T) over it and IB-equation gap of every layer (mean, se)."""
    p, c = r["full"], r["curve"]
    d, x = c.distance(p.i_xt[:, -1], p.i_ty[:, -1]), c.excess(p.i_xt[:, -1], p.i_ty[:, -1])  # S x L
    return {
        name: {
            "distance_bits": harness.mean_se(d[:, l]),
            "excess_i_xt_bits": harness.mean_se(x[:, l]),
            "gap_bits": harness.mean_se(r["gap"][:, l]),
        }
        for l, name in enumerate(p.layer_names)
    }


def _last_hidden(plane):
    return plane.shape[3] - 2  # the output is the last T


def figures(results: dict, cfg: Config, out) -> list:
    tasks = results["tasks"]
    fig = Figure(figsize=(6.4 * len(tasks), 4.8), layout="constrained")
    for ax, r in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks.values()):
        plotting.info_plane(r["full"], ax=ax, title=f"{r['data']}: {cfg.seeds} seed(s); black: IB curve")
        ax.plot(r["curve"].hull_xt, r["curve"].hull_ty, "k-", lw=1.5)
        if r["curve"].caveat:
            ax.text(0.02, 0.02, "deterministic Y: the IB curve is the corner", transform=ax.transAxes, fontsize=8)
    fig2 = Figure(figsize=(11, 4), layout="constrained")
    a, b = fig2.subplots(1, 2)
    for k, r in enumerate(tasks.values()):
        p, n_l = r["full"], r["full"].shape[3]
        d = r["curve"].distance(p.i_xt[:, -1], p.i_ty[:, -1])  # S x L
        x = np.arange(1, n_l + 1) + 0.2 * (k - 0.5)
        a.errorbar(x, d.mean(0), yerr=d.std(0), fmt="o", capsize=3, label=r["data"])
        b.errorbar(x, r["gap"].mean(0), yerr=r["gap"].std(0), fmt="o", capsize=3, label=f"{r['data']}: layer")
        b.plot(x, r["gap_random"].mean(0), "x", label=f"{r['data']}: random encoder, same symbols")
    a.set(xlabel="layer", ylabel="final distance below the IB curve [bits]")
    b.set(xlabel="layer", ylabel="IB-equation gap, min over beta [bits]", yscale="symlog")
    a.legend(fontsize=8), b.legend(fontsize=7)
    fig3 = Figure(figsize=(6.4, 4), layout="constrained")
    ax = fig3.subplots()
    for r in tasks.values():
        for size in ("full", "small"):
            p = r[size]
            ax.plot(p.epochs, p.mean("i_ty")[:, _last_hidden(p)], label=f"{r['data']}, {size} training set")
    ax.set(xscale="symlog", xlabel="epoch", ylabel="I(T;Y) of the last hidden layer [bits]")
    ax.legend(fontsize=8)
    return [
        plotting.save(fig, out / "planes.png"),
        plotting.save(fig2, out / "distance.png"),
        plotting.save(fig3, out / "small_data.png"),
    ]


def claims_(results: dict, cfg: Config) -> list[dict]:
    tasks = results["tasks"]
    out = []
    for r in tasks.values():
        p, c = r["full"], r["curve"]
        last = _last_hidden(p)
        d = c.distance(p.i_xt[:, -1, last], p.i_ty[:, -1, last])
        margin = cfg.bound_margin * c.i_xy
        note = " (deterministic Y: the curve is the trivial corner)" if c.caveat else ""
        v, knee = claims.positive(margin - d, what="margin minus distance"), float(c.xt_needed(c.i_xy - margin))
        if v.agrees and p.i_xt[:, -1, last].mean() > knee:  # where the curve is flat the distance is I(X;Y) - I(T;Y)
            v = v._replace(
                agrees=None,
                outcome="undecided",
                reason=(
                    f"the layer ends at I(X;T) = {p.i_xt[:, -1, last].mean():.2f} bits, where the curve is flat (within the "
                    f"margin of I(X;Y) from {knee:.2f} bits on): the distance only says that it keeps I(X;Y); see the excess"
                ),
            )
        out.append(
            claims.entry(
                f"{r['data']}: the last hidden layer ends on the IB curve{note}",
                f"{SOURCE}, Sec. 3",
                v,
                {
                    "final distance below the curve [bits]": harness.mean_se(d),
                    "margin [bits]": round(margin, 4),
                    "final excess I(X;T) over the curve at equal I(T;Y) [bits]": harness.mean_se(
                        c.excess(p.i_xt[:, -1, last], p.i_ty[:, -1, last])
                    ),
                },
            )
        )
        out.append(
            claims.entry(
                f"{r['data']}: the last hidden layer's encoder and decoder satisfy the IB self-consistent equations",
                f"{SOURCE}, Sec. 2",
                claims.positive(
                    cfg.consistency_margin - (r["gap"][:, last] - r["gap_best_hard"]),
                    what="margin minus the gap above the best hard encoder's",
                ),
                {
                    "gap, min over beta [bits]": harness.mean_se(r["gap"][:, last]),
                    "the best hard encoder's gap (T = the inputs' p(y|x) class) [bits]": round(r["gap_best_hard"], 4),
                    "its own symbols shuffled over the inputs: gap [bits]": harness.mean_se(r["gap_random"][:, last]),
                    "margin [bits]": cfg.consistency_margin,
                },
            )
        )
    return out + _timing(tasks[cfg.tasks[0]], cfg)


def _timing(r, cfg) -> list[dict]:
    p, small = r["full"], r["small"]
    last = _last_hidden(p)
    stat = claims.compression(p.i_xt[:, :, last], p.epochs, cap=claims.cap_xt(p))
    comp = claims.decide(stat)
    onset_S = p.epochs[p.i_xt[:, :, last].argmax(axis=1)]
    share = 1 - onset_S / cfg.run.train.n_epochs
    loss = r["train_loss"]
    at_onset = np.minimum(onset_S, loss.shape[1] - 1)
    done = (loss[:, 0] - loss[np.arange(len(loss)), at_onset]) / (loss[:, 0] - loss[:, -1])
    small_stat = claims.compression(small.i_xt[:, :, last], small.epochs, cap=claims.cap_xt(small))
    ty = claims.compression(small.i_ty[:, :, last], small.epochs, cap=r["curve"].i_xy)
    k_S = small.i_xt[:, :, last].argmax(axis=1)  # the small networks' own onsets
    during = np.where(np.arange(small.shape[2])[None] >= k_S[:, None], small.i_ty[:, :, last], -np.inf)
    lost_S = during.max(axis=1) - small.i_ty[:, -1, last]  # I(T;Y) lost within the compression phase
    gate = lambda v, s: (
        v
        if claims.decide(s).outcome == "compresses"
        else v._replace(
            agrees=None,
            outcome="undecided",
            reason="the last hidden layer does not clearly compress: "
            + (claims.decide(s).reason or claims.decide(s).outcome),
        )
    )
    src = f"{SOURCE}, Sec. 3.3 and Fig. 6"
    return [
        claims.entry(f"{r['data']}: the last hidden layer compresses", src, comp, stat.summary()),
        claims.entry(
            "most of training is spent compressing (share of epochs after the onset > 0.5)",
            src,
            gate(claims.positive(share - 0.5, what="share - 0.5"), stat),
            {"onset epoch": harness.mean_se(onset_S), "share of epochs after it": harness.mean_se(share)},
        ),
        claims.entry(
            "compression begins when the training error has become small (> half the loss decrease done)",
            src,
            gate(claims.positive(done - 0.5, what="done - 0.5"), stat),
            {
                "share of the training-loss decrease done at the onset": harness.mean_se(done),
                "training loss at the onset [nats]": harness.mean_se(loss[np.arange(len(loss)), at_onset]),
                "training accuracy at the onset": harness.mean_se(r["train_acc"][np.arange(len(loss)), at_onset]),
                "training loss at epoch 0 / at the end [nats]": [
                    harness.mean_se(loss[:, 0]),
                    harness.mean_se(loss[:, -1]),
                ],
            },
        ),
        claims.entry(
            f"with {cfg.small:.0%} of the data the last hidden layer loses I(T;Y) while it compresses",
            src,
            gate(
                claims.positive(
                    lost_S, threshold=claims.RULE.threshold(ty.peak), what="I(T;Y) lost within the compression phase"
                ),
                small_stat,
            ),
            {
                "I(X;T)": small_stat.summary(),
                "I(T;Y) (true labels, all inputs)": ty.summary(),
                "I(T;Y) lost within the compression phase (its highest value after the I(X;T) onset minus the "
                "final) [bits]": harness.mean_se(lost_S),
            },
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("ib_bound", Config, QUICK, run, figures, claims_, argv)


if __name__ == "__main__":
    main()
