"""Saxe et al. 2018, Sec. 5: deep linear teacher-student networks, where every information is exact.

A deep linear student of a linear teacher reading 30 of 100 Gaussian inputs, trained by GD and minibatch SGD on P
samples from small and large initial weights: I(X;T), its task-relevant and task-irrelevant parts and the
generalisation error are closed-form (setup: results/linear_teacher/NOTES.md).

    python -m experiments.linear_teacher           # 8 (P, init) x 5 seeds x 2 optimizers x 5000 steps
    python -m experiments.linear_teacher --quick   # 2 seeds, 4 grid points, 150 steps
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import claims as verdicts
from ibjax import pipeline, plotting

SOURCE = "Saxe et al. 2018"
NON_EMPTY = harness.where(lambda v, cfg: len(v) >= 1, "at least one hidden width")


@dataclass(frozen=True)
class Config(harness.Settings):
    # P, training samples
    sizes: tuple = harness.setting((50, 100, 300, 1000), harness.distinct(), harness.each(harness.integer(least=2)))
    inits: tuple = harness.setting((0.1, 1.0), harness.distinct(), harness.each(harness.number(above=0)))
    seeds: int = harness.setting(5, harness.integer(least=1))
    steps: int = harness.setting(5000, harness.integer(least=2))
    n_kept: int = harness.setting(40, harness.integer(least=2, most="steps"))  # log-spaced measurement steps
    batch_size: int = harness.setting(20, harness.integer(least=1))  # of the minibatch optimizer (the other: GD)
    hidden: tuple = harness.setting((50, 50), NON_EMPTY, harness.each(harness.integer(least=1)))
    learning_rate: float = harness.setting(0.05, harness.number(above=0))
    sigma_y: float = harness.setting(0.1, harness.number(least=0))
    fit_size: int = harness.setting(300, harness.member_of("sizes"))  # P (small init) of the fit-and-compress claim
    # excess generalisation error / ||W0||^2: generalises below, not above `bad`
    good: float = harness.setting(0.05, harness.number(above=0))
    bad: float = harness.setting(0.1, harness.number(above="good"))


QUICK = {"sizes": (100, 300), "seeds": 2, "steps": 150, "n_kept": 10, "hidden": (20, 20)}


def run(cfg: Config, out, *, force: bool = False) -> dict:
    grid = list(itertools.product(cfg.sizes, cfg.inits))
    sizes, inits = (np.array(v, dtype) for v, dtype in zip(zip(*grid), (np.int32, np.float32)))
    steps = np.unique(np.r_[0, np.geomspace(1, cfg.steps, cfg.n_kept).astype(int)])
    opt = {}
    for name, bs in (("gd", 0), ("sgd", cfg.batch_size)):
        print(f"{name}: {len(grid)} (P, init) x {cfg.seeds} seeds x {cfg.steps} steps in one call")
        kw = dict(hidden=cfg.hidden, batch_size=bs, learning_rate=cfg.learning_rate, sigma_y=cfg.sigma_y)
        opt[name] = pipeline.teacher_student(sizes, inits, cfg.seeds, steps, **kw)
    arrays = {f"{o}_{k}": v for o, r in opt.items() for k, v in r.items()}
    harness.save_arrays(out / "linear.npz", {"steps_K": steps, "sizes_G": sizes, "inits_G": inits, **arrays})
    summary = {"dataset": "linear teacher (Gaussian inputs, 30 relevant of 100)", "kept_steps": steps.tolist()}
    summary |= {"grid": [list(map(float, g)) for g in grid], "rule": verdicts.RULE.describe()}
    return {"opt": opt, "grid": grid, "steps": steps, "summary": summary}


def figures(results: dict, cfg: Config, out) -> list:
    grid, steps, opt = results["grid"], results["steps"], results["opt"]
    fig = Figure(figsize=(15, 4), layout="constrained")
    axes = fig.subplots(1, 4)
    panels = {
        "i_xt_L": "I(X;T), first hidden layer",
        "i_rel_L": "task-relevant I(X_rel;T)",
        "i_irr_L": "task-irrelevant I(X_irr;T | X_rel)",
        "excess": "excess generalisation error / ||W0||^2",
    }
    for ax, (key, title) in zip(axes, panels.items()):
        for g, (p, s) in enumerate(grid):
            v = opt["gd"][key][g] if key == "excess" else opt["gd"][key][g, :, :, 0]  # S x K: the first hidden layer
            ax.plot(steps + 1, v.mean(0), "-" if s == min(cfg.inits) else "--", label=f"P={p}, init {s:g}")
        ax.set(xscale="log", xlabel="steps + 1", title=title)
    axes[3].set_yscale("log")
    axes[0].set_ylabel("bits (mean over seeds); full-batch GD")
    axes[3].legend(fontsize=7)
    ax = (fig2 := Figure(figsize=(6, 4.5), layout="constrained")).subplots()
    for name, mark in (("gd", "o"), ("sgd", "s")):
        irr, excess = opt[name]["i_irr_L"][:, :, :, 0], opt[name]["excess"][:, :, -1].mean(1)
        drop = (irr.max(2) - irr[:, :, -1]).mean(1)
        ax.scatter(drop, excess, marker=mark, label=name)
        for g, (p, s) in enumerate(grid):
            ax.annotate(f"{p},{s:g}", (drop[g], excess[g]), fontsize=6)
    ax.set(xlabel="compression: peak-to-final drop of I(X_irr;T | X_rel) [bits]", yscale="log")
    ax.set(ylabel="final excess generalisation error", title="compression against generalisation (P, init)")
    ax.legend(fontsize=8)
    return [plotting.save(fig, out / "dynamics.png"), plotting.save(fig2, out / "generalisation.png")]


def _decoupled(o, grid, steps, cfg, key) -> tuple:
    """Which (P, init) networks compress (on ``key``, first hidden layer) and which generalise."""
    rows = {}
    for g, (p, s) in enumerate(grid):
        ex = o["excess"][g, :, -1]
        good, bad = verdicts.positive(cfg.good - ex).agrees, verdicts.positive(ex - cfg.bad).agrees
        comp = verdicts.decide(verdicts.compression(o[key][g, :, :, 0], steps)).outcome
        gen = "generalises" if good else "does not generalise" if bad else "undecided"
        rows[f"P={p}, init {s:g}"] = (comp, gen, ex)
    a = [k for k, row in rows.items() if row[:2] == ("does not compress", "generalises")]
    b = [k for k, row in rows.items() if row[:2] == ("compresses", "does not generalise")]
    decided = {comp for comp, gen, _ in rows.values() if "undecided" not in (comp, gen)}
    coupled = not a and not b and decided == {"compresses", "does not compress"}  # both kinds, each as it generalises
    agrees = True if a and b else False if coupled else None
    missing = (("no network generalises without compressing", a), ("no network compresses without generalising", b))
    reason = "" if agrees is not None else "; ".join(m for m, found in missing if not found)
    outcome = "holds" if agrees else "fails" if agrees is False else "undecided"
    v = verdicts.Verdict(agrees, outcome, float(len(a) + len(b)), (len(a), len(b)), 0.0, reason)
    return v, {k: f"{comp}, {gen} (excess {float(ex.mean()):.3g})" for k, (comp, gen, ex) in rows.items()}


def claims(results: dict, cfg: Config) -> list[dict]:
    grid, steps, out = results["grid"], results["steps"], []
    g = grid.index((cfg.fit_size, min(cfg.inits))) if (cfg.fit_size, min(cfg.inits)) in grid else 0
    for name in ("gd", "sgd"):
        irr, rel = (results["opt"][name][k][g, :, :, 0] for k in ("i_irr_L", "i_rel_L"))  # S x K, first hidden layer
        gain = rel[:, -1] - rel[np.arange(len(rel)), irr.argmax(axis=1)]  # relevant bits gained after the irr. peak
        stat, what = verdicts.compression(irr, steps), "relevant gain after the irrelevant peak"
        v = verdicts.joint(
            verdicts.decide(stat), verdicts.positive(gain, threshold=verdicts.RULE.min_drop_bits, what=what)
        )
        measured = {"irrelevant information": stat.summary()}
        measured["relevant bits gained after the irrelevant peak"] = harness.mean_se(gain)
        claim = f"{name}, P={grid[g][0]}, init {grid[g][1]:g}: task-irrelevant information is compressed while "
        out.append(verdicts.entry(claim + "task-relevant information is fitted", f"{SOURCE}, Fig. 5", v, measured))
    for key, what in (("i_xt_L", "I(X;T)"), ("i_irr_L", "task-irrelevant information")):
        claim = f"gd: compression of {what} and generalisation decouple (one network generalises without compressing, "
        v, measured = _decoupled(results["opt"]["gd"], grid, steps, cfg, key)
        out.append(verdicts.entry(claim + "another compresses without generalising)", f"{SOURCE}, Sec. 4", v, measured))
    return out


def main(argv=None) -> dict:
    return harness.main("linear_teacher", Config, QUICK, run, figures, claims, argv)


if __name__ == "__main__":
    main()
