"""Engine vs direct: the sample-propagation estimator on the single noisy neuron, both ways.

    python -m experiments.benchmarks.noisy            # 64 epochs x n_mc 2048, with and without a readout
    python -m experiments.benchmarks.noisy --quick    # tiny (CI)

The same stacked params (E epochs of a 1-1-2 tanh MLP) are evaluated (a) directly: one jitted
``vmap`` over epochs of ``ibjax.noisy.info_plane`` on ``model.noisy_apply``, and (b) through the
engine: ``pipeline.evaluate_arrays(model, ..., "smoothed", {...})`` (the noisy apply picked up from
the model; every sampling option, ``n_c``, ``n_mc``, ``n_mc_cond``, passed through). Cases: the
hidden neuron only (the experiment's T) and the neuron + softmax readout (2 layers, so the n_c
conditional passes run). First call (compile included) and best of ``--repeats`` are reported for
both; the engine's target is within 2x of direct. Writes results/benchmarks/noisy.json atomically.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ibjax import data, io, models, noisy, pipeline
from ibjax.runs import use_cpu_cores, versions


def _params(model, n_epochs: int):
    """E x ... params: the neuron's w, b on a grid (from unsaturated to saturated)."""
    p = model.init(jax.random.key(0))
    w = np.linspace(0.2, 4.0, n_epochs, dtype=np.float32)
    p = jax.tree.map(lambda a: np.broadcast_to(np.asarray(a), (n_epochs,) + a.shape).copy(), p)
    p["Dense_0"]["kernel"][:, 0, 0] = w
    p["Dense_0"]["bias"][:, 0] = -2.0 * w
    return p


def _best(fn, repeats: int):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, min(times)


def case(model, name: str, *, n_epochs: int, sigma: float, n_mc: int, n_c: int, repeats: int) -> dict:
    ds = data.single_neuron()
    x, y = jnp.asarray(ds.x), jnp.asarray(ds.y)
    params_E = _params(model, n_epochs)
    keys = jax.random.split(jax.random.key(0), n_epochs)
    direct = jax.jit(
        jax.vmap(
            lambda p, k: noisy.info_plane(
                lambda kk: model.noisy_apply(p, x, kk, sigma)[2], y, sigma, k, n_c=n_c, n_mc=n_mc
            )
        )
    )
    d_first, d_best = _best(lambda: direct(params_E, keys), repeats)
    params_SxE = jax.tree.map(lambda a: a[None], params_E)
    engine = lambda: (
        pipeline.evaluate_arrays(
            model,
            params_SxE,
            np.arange(n_epochs),
            ds.x,
            ds.y,
            "smoothed",
            {"sigma": sigma, "n_mc": n_mc, "n_c": n_c},
            progress=False,
            log=lambda *a: None,
        ).i_xt
    )
    e_first, e_best = _best(engine, repeats)
    d_out = np.asarray(direct(params_E, keys).i_xt)
    return {
        "name": name,
        "epochs": n_epochs,
        "n_mc": n_mc,
        "n_c": n_c,
        "sigma": sigma,
        "direct_first_s": round(d_first, 3),
        "direct_s": round(d_best, 4),
        "engine_first_s": round(e_first, 3),
        "engine_s": round(e_best, 4),
        "engine_over_direct": round(e_best / d_best, 2),
        "within_2x": bool(e_best <= 2 * d_best),
        "max_abs_difference_bits": round(float(np.abs(np.asarray(engine())[0] - d_out).max()), 4),
    }


def hidden_only(model):
    from experiments.goldfeld import hidden_only as h

    return h(model)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.noisy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="results/benchmarks")
    a = p.parse_args(argv)
    use_cpu_cores()
    sizes = dict(n_epochs=8, n_mc=256, n_c=4) if a.quick else dict(n_epochs=64, n_mc=2048, n_c=16)
    full = models.mlp((1, 1, 2))
    rows = [
        case(hidden_only(full), "neuron (hidden layer only)", sigma=0.1, repeats=a.repeats, **sizes),
        case(full, "neuron + softmax readout (2 layers)", sigma=0.1, repeats=a.repeats, **sizes),
    ]
    result = {
        "quick": a.quick,
        "backend": jax.default_backend(),
        "devices": jax.device_count(),
        "machine": platform.machine(),
        "versions": versions(),
        "noisy": rows,
    }
    path = Path(a.out) / ("noisy_quick.json" if a.quick else "noisy.json")
    io.atomic_write_json(path, result)
    for r in rows:
        print(
            f"{r['name']}: direct {r['direct_s']:.3f} s (first {r['direct_first_s']:.1f} s), engine "
            f"{r['engine_s']:.3f} s (first {r['engine_first_s']:.1f} s): {r['engine_over_direct']}x"
        )
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
