"""The information-bottleneck bound under the layers' planes, the IB equations, and the timing of the phases
(Shwartz-Ziv & Tishby 2017): SZT's 12-bit tanh MLP on var_u and on a task with drawn labels, each on 80% and 5%
of the inputs, every layer's exact plane under the true p(y|x) against the IB curve (setup: NOTES.md).

    python -m experiments.ib_bound             # 2 tasks x 2 sizes x 5 seeds x 8000 epochs
    python -m experiments.ib_bound --quick     # the stochastic task only, 2 seeds, 150 epochs, 8 betas
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from experiments import _harness as harness
from ibjax import claims, pipeline, plotting
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


QUICK = {"seeds": 2, "run.train.n_epochs": 150, "run.train.schedule": "log:20", "betas": 8, "n_iter": 100}
QUICK |= {"tasks": ("stochastic_12bit",)}


def _evaluate(cfg, name, out, force):
    rc = dataclasses.replace(cfg.run, data=dataclasses.replace(cfg.run.data, name=name))
    subsets = {"data.train_subset": [1.0, cfg.small / cfg.run.data.train_frac]}
    dirs = pipeline.train_or_reuse(rc, range(cfg.seeds), out / "runs" / name, sweep=subsets, force=force)
    r = pipeline.ib_bound_planes(dirs, n_final=cfg.seeds, n_bins=cfg.n_bins, betas=cfg.betas, n_iter=cfg.n_iter)
    s, n_r = cfg.seeds, r["plane"].shape[1]
    planes = {"full": r["plane"].runs(range(s)), "small": r["plane"].runs(range(s, n_r))}
    for size, pl in planes.items():
        pl.save(out / name / f"infoplane_exact_{size}.npz")
    return r | planes | {k: r["metrics"][k][:s] for k in ("train_loss", "train_acc")}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    results = {name: _evaluate(cfg, name, out, force) for name in cfg.tasks}
    summary = {"dataset": ", ".join(r["data"] for r in results.values()), "rule": claims.RULE.describe()}
    summary |= {name: claims.ib_summary(r["curve"], r["full"], r) for name, r in results.items()}
    return {"tasks": results, "summary": summary}


def figures(results: dict, cfg: Config, out) -> list:
    figs = plotting.ib_bound_figures(results["tasks"], cfg.seeds)
    return [plotting.save(f, out / n) for f, n in zip(figs, ("planes.png", "distance.png", "small_data.png"))]


def claims_(results: dict, cfg: Config) -> list[dict]:
    out = []
    for r in results["tasks"].values():
        p, c = r["full"], r["curve"]
        last = p.shape[3] - 2  # the last hidden layer (the output is the last T)
        xt, ty = p.i_xt[:, -1, last], p.i_ty[:, -1, last]
        note = " (deterministic Y: the curve is the trivial corner)" if c.caveat else ""
        v, m1 = claims.ends_on_curve(c, xt, ty, margin=cfg.bound_margin * c.i_xy)
        out.append(
            claims.entry(f"{r['data']}: the last hidden layer ends on the IB curve{note}", f"{SOURCE}, Sec. 3", v, m1)
        )
        gap = r["gap"][:, last]
        v2 = claims.positive(
            cfg.consistency_margin - (gap - r["gap_best_hard"]),
            what="margin minus the gap above the best hard encoder's",
        )
        m2 = {"gap, min over beta [bits]": claims.mean_se(gap)}
        m2["the best hard encoder's gap (T = the inputs' p(y|x) class) [bits]"] = round(r["gap_best_hard"], 4)
        m2["its own symbols shuffled over the inputs: gap [bits]"] = claims.mean_se(r["gap_random"][:, last])
        m2["margin [bits]"] = cfg.consistency_margin
        what = f"{r['data']}: the last hidden layer's encoder and decoder satisfy the IB self-consistent equations"
        out.append(claims.entry(what, f"{SOURCE}, Sec. 2", v2, m2))
    return out + _timing(results["tasks"][cfg.tasks[0]], cfg)


def _timing(r, cfg) -> list[dict]:
    p, small = r["full"], r["small"]
    last, src = p.shape[3] - 2, f"{SOURCE}, Sec. 3.3 and Fig. 6"
    stat = claims.compression(p.i_xt[:, :, last], p.epochs, cap=claims.cap_xt(p))
    sh = claims.onset_shares(p.i_xt[:, :, last], p.epochs, r["train_loss"], cfg.run.train.n_epochs)
    small_stat = claims.compression(small.i_xt[:, :, last], small.epochs, cap=claims.cap_xt(small))
    ty = claims.compression(small.i_ty[:, :, last], small.epochs, cap=r["curve"].i_xy)
    lost_S = claims.lost_after_peak(small.i_xt[:, :, last], small.i_ty[:, :, last])
    gate = lambda v, s: claims.if_compresses(v, s, what="the last hidden layer")
    at, loss = (np.arange(len(sh["at"])), sh["at"]), r["train_loss"]
    return [
        claims.entry(f"{r['data']}: the last hidden layer compresses", src, claims.decide(stat), stat.summary()),
        claims.entry(
            "most of training is spent compressing (share of epochs after the onset > 0.5)",
            src,
            gate(claims.positive(sh["after"] - 0.5, what="share - 0.5"), stat),
            {"onset epoch": claims.mean_se(sh["onset"]), "share of epochs after it": claims.mean_se(sh["after"])},
        ),
        claims.entry(
            "compression begins when the training error has become small (> half the loss decrease done)",
            src,
            gate(claims.positive(sh["done"] - 0.5, what="done - 0.5"), stat),
            {
                "share of the training-loss decrease done at the onset": claims.mean_se(sh["done"]),
                "training loss at the onset [nats]": claims.mean_se(sh["loss_at"]),
                "training accuracy at the onset": claims.mean_se(r["train_acc"][at]),
                "training loss at epoch 0 / at the end [nats]": [
                    claims.mean_se(loss[:, 0]),
                    claims.mean_se(loss[:, -1]),
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
                "final) [bits]": claims.mean_se(lost_S),
            },
        ),
    ]


def main(argv=None) -> dict:
    return harness.main("ib_bound", Config, QUICK, run, figures, claims_, argv)


if __name__ == "__main__":
    main()
