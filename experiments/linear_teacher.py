"""Saxe et al. 2018, Sec. 5: deep linear teacher-student networks, where every information is exact.

A teacher reads 30 of 100 Gaussian inputs (y = W0 x_rel + noise, 10 outputs, label noise std 0.1);
a student 100-50-50-10 linear network is trained on P samples by full-batch gradient descent and by
minibatch SGD (20 samples a step), lr 0.05, 5000 steps, from small (0.1) and large (1.0) initial
weights (scale / sqrt(fan in)), P from 50 to 1000: every (P, init) x seed in one vmapped call per
optimizer. With measurement noise N(0, I) on each hidden layer, I(X;T) and its split into the
task-relevant I(X_rel;T) and task-irrelevant I(X_irr;T | X_rel) are closed-form log-determinants
(``ibjax.linear``), and the generalisation error is exact: ||W - [W0, 0]||^2 + 10 * 0.1^2.
"Generalises": excess error (gen - noise floor) / ||W0||^2 below 0.05; "does not": above 0.1.

    python -m experiments.linear_teacher           # 8 (P, init) x 5 seeds x 2 optimizers x 5000 steps
    python -m experiments.linear_teacher --quick   # 2 seeds, 4 grid points, 150 steps
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import jax
import numpy as np
from matplotlib.figure import Figure

from experiments import _harness as harness
from ibjax import claims, linear, plotting

SOURCE = "Saxe et al. 2018"


@dataclass(frozen=True)
class Config(harness.Settings):
    # P, training samples
    sizes: tuple = harness.setting((50, 100, 300, 1000), harness.distinct(), harness.each(harness.integer(least=2)))
    inits: tuple = harness.setting((0.1, 1.0), harness.distinct(), harness.each(harness.number(above=0)))
    seeds: int = harness.setting(5, harness.integer(least=1))
    steps: int = harness.setting(5000, harness.integer(least=2))
    n_kept: int = harness.setting(40, harness.integer(least=2, most="steps"))  # log-spaced measurement steps
    # the minibatch optimizer (the other is full-batch GD)
    batch_size: int = harness.setting(20, harness.integer(least=1))
    hidden: tuple = harness.setting(
        (50, 50),
        harness.where(lambda v, cfg: len(v) >= 1, "at least one hidden width"),
        harness.each(harness.integer(least=1)),
    )
    learning_rate: float = harness.setting(0.05, harness.number(above=0))
    sigma_y: float = harness.setting(0.1, harness.number(least=0))
    # the (P, small init) network of the fitting-and-compression claim
    fit_size: int = harness.setting(300, harness.member_of("sizes"))
    # excess generalisation error / ||W0||^2: generalises below, not above `bad`
    good: float = harness.setting(0.05, harness.number(above=0))
    bad: float = harness.setting(0.1, harness.number(above="good"))


QUICK = {"sizes": (100, 300), "seeds": 2, "steps": 150, "n_kept": 10, "hidden": (20, 20)}


def setup(cfg: Config, batch_size: int) -> linear.Setup:
    kept = np.unique(np.r_[0, np.geomspace(1, cfg.steps, cfg.n_kept).astype(int)])
    return linear.Setup(
        linear.Teacher(sigma_y=cfg.sigma_y),
        cfg.hidden,
        max(cfg.sizes),
        cfg.learning_rate,
        batch_size,
        1.0,
        tuple(int(k) for k in kept),
    )


def run(cfg: Config, out, *, force: bool = False) -> dict:
    grid = list(itertools.product(cfg.sizes, cfg.inits))
    keys = jax.random.split(jax.random.key(0), cfg.seeds)
    p_g, s_g = (np.array(v, dtype) for v, dtype in zip(zip(*grid), (np.int32, np.float32)))
    results = {}
    for name, bs in (("gd", 0), ("sgd", cfg.batch_size)):
        print(f"{name}: {len(grid)} (P, init) x {cfg.seeds} seeds x {cfg.steps} steps in one call")
        su = setup(cfg, bs)
        res = jax.tree.map(np.asarray, linear.train_grid(keys, p_g, s_g, setup=su))  # G x S x K x ...
        t = su.teacher
        res["excess"] = (res["gen_error"] - t.n_out * t.sigma_y**2) / res["teacher_norm2"]  # / ||W0||^2 of each teacher
        results[name] = res
    steps = np.asarray(setup(cfg, 0).kept_steps)
    arrays = {f"{o}_{k}": v for o, r in results.items() for k, v in r.items()}
    harness.save_arrays(out / "linear.npz", {"steps_K": steps, "sizes_G": p_g, "inits_G": s_g, **arrays})
    summary = {
        "dataset": "linear teacher (Gaussian inputs, 30 relevant of 100)",
        "grid": [list(map(float, g)) for g in grid],
        "kept_steps": steps.tolist(),
        "rule": claims.RULE.describe(),
    }
    return {"opt": results, "grid": grid, "steps": steps, "summary": summary}


def figures(results: dict, cfg: Config, out) -> list:
    grid, steps, r = results["grid"], results["steps"], results["opt"]["gd"]
    fig = Figure(figsize=(15, 4), layout="constrained")
    axes = fig.subplots(1, 4)
    for g, (p, s) in enumerate(grid):
        ls = "-" if s == min(cfg.inits) else "--"
        for ax, key in zip(axes[:3], ("i_xt_L", "i_rel_L", "i_irr_L")):
            ax.plot(steps + 1, r[key][g, :, :, 0].mean(0), ls, label=f"P={p}, init {s:g}")
        axes[3].plot(steps + 1, r["excess"][g].mean(0), ls, label=f"P={p}, init {s:g}")
    titles = (
        "I(X;T), first hidden layer",
        "task-relevant I(X_rel;T)",
        "task-irrelevant I(X_irr;T | X_rel)",
        "excess generalisation error / ||W0||^2",
    )
    for ax, title in zip(axes, titles):
        ax.set(xscale="log", xlabel="steps + 1", title=title)
    axes[3].set_yscale("log")
    axes[0].set_ylabel("bits (mean over seeds); full-batch GD")
    axes[3].legend(fontsize=7)
    fig2 = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig2.subplots()
    for name, mark in (("gd", "o"), ("sgd", "s")):
        o = results["opt"][name]
        drop = (o["i_irr_L"][:, :, :, 0].max(2) - o["i_irr_L"][:, :, -1, 0]).mean(1)
        ax.scatter(drop, o["excess"][:, :, -1].mean(1), marker=mark, label=name)
        for g, (p, s) in enumerate(grid):
            ax.annotate(f"{p},{s:g}", (drop[g], o["excess"][g, :, -1].mean()), fontsize=6)
    ax.set(
        xlabel="compression: peak-to-final drop of I(X_irr;T | X_rel) [bits]",
        yscale="log",
        ylabel="final excess generalisation error",
        title="compression against generalisation (P, init)",
    )
    ax.legend(fontsize=8)
    return [plotting.save(fig, out / "dynamics.png"), plotting.save(fig2, out / "generalisation.png")]


def _fit_and_compress(o, g, steps) -> tuple:
    irr, rel = o["i_irr_L"][g, :, :, 0], o["i_rel_L"][g, :, :, 0]  # S x K, first hidden layer
    comp = claims.decide(claims.compression(irr, steps))
    peak = irr.argmax(axis=1)
    gain = rel[:, -1] - rel[np.arange(len(rel)), peak]  # relevant information gained after the irrelevant peak
    fit = claims.positive(gain, threshold=claims.RULE.min_drop_bits, what="relevant gain after the irrelevant peak")
    both = [comp.agrees, fit.agrees]
    agrees = False if False in both else None if None in both else True
    reason = "; ".join(v.reason for v in (comp, fit) if v.reason)
    v = comp._replace(
        agrees=agrees, outcome="holds" if agrees else "undecided" if agrees is None else "fails", reason=reason
    )
    return v, {
        "irrelevant information": claims.compression(irr, steps).summary(),
        "relevant bits gained after the irrelevant peak": harness.mean_se(gain),
    }


def _decoupled(o, grid, steps, cfg, key) -> tuple:
    """Which (P, init) networks compress (on ``key``, first hidden layer) and which generalise."""
    rows = []
    for g, (p, s) in enumerate(grid):
        comp = claims.decide(claims.compression(o[key][g, :, :, 0], steps)).outcome
        ex = o["excess"][g, :, -1]
        gen = (
            "generalises"
            if claims.positive(cfg.good - ex).agrees
            else "does not generalise"
            if claims.positive(ex - cfg.bad).agrees
            else "undecided"
        )
        rows.append((f"P={p}, init {s:g}", comp, gen, float(ex.mean())))
    a = [r[0] for r in rows if r[1] == "does not compress" and r[2] == "generalises"]
    b = [r[0] for r in rows if r[1] == "compresses" and r[2] == "does not generalise"]
    decided = [r for r in rows if "undecided" not in (r[1], r[2])]
    coupled = (
        not a
        and not b
        and any(r[1] == "compresses" for r in decided)
        and any(r[1] == "does not compress" for r in decided)
    )  # both kinds, each with its generalisation
    agrees = True if a and b else False if coupled else None
    reason = (
        ""
        if agrees is not None
        else "; ".join(
            m
            for m, found in (
                ("no network generalises without compressing", a),
                ("no network compresses without generalising", b),
            )
            if not found
        )
    )
    v = claims.Verdict(
        agrees,
        "holds" if agrees else "fails" if agrees is False else "undecided",
        float(len(a) + len(b)),
        (len(a), len(b)),
        0.0,
        reason,
    )
    return v, {r[0]: f"{r[1]}, {r[2]} (excess {r[3]:.3g})" for r in rows}


def claims_(results: dict, cfg: Config) -> list[dict]:
    grid, steps = results["grid"], results["steps"]
    g_fit = grid.index((cfg.fit_size, min(cfg.inits))) if (cfg.fit_size, min(cfg.inits)) in grid else 0
    out = []
    for name in ("gd", "sgd"):
        v, m = _fit_and_compress(results["opt"][name], g_fit, steps)
        out.append(
            claims.entry(
                f"{name}, P={grid[g_fit][0]}, init {grid[g_fit][1]:g}: task-irrelevant information is "
                "compressed while task-relevant information is fitted",
                f"{SOURCE}, Fig. 5",
                v,
                m,
            )
        )
    for key, what in (("i_xt_L", "I(X;T)"), ("i_irr_L", "task-irrelevant information")):
        v, m = _decoupled(results["opt"]["gd"], grid, steps, cfg, key)
        out.append(
            claims.entry(
                f"gd: compression of {what} and generalisation decouple (one network generalises "
                "without compressing, another compresses without generalising)",
                f"{SOURCE}, Sec. 4",
                v,
                m,
            )
        )
    return out


def main(argv=None) -> dict:
    return harness.main("linear_teacher", Config, QUICK, run, figures, claims_, argv)


if __name__ == "__main__":
    main()
