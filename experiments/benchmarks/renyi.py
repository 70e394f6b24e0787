"""Matrix-based Rényi estimator: time per (epoch, layer) at N = 1024 and 4096, and the subset path.

    python -m experiments.benchmarks.renyi            # N = 1024 (batch of 4) and 4096 (one item); subsets
    python -m experiments.benchmarks.renyi --quick    # N = 256 (CI)

Each item is one (epoch, layer): I(X;T) and I(T;Y) with alpha = 1.01, Silverman widths, X the 12-bit
inputs, T = tanh(X W) of width 10 (experiments.benchmarks.estimators.layers), i.e. three N x N
eigenvalue problems (S(T), S(X, T), S(T, Y)) plus S(X), S(Y) shared by the batch. Rows: exact at
N = 1024 batched over 4 items and single, exact at N = 4096 single (one timed call: ~25 s per
eigvalsh on 2 cores), and the subset path at N = 4096 (4 subsets of 512, the registry default).
Writes results/benchmarks/renyi.json (renyi_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from experiments.benchmarks import machine
from experiments.benchmarks.estimators import inputs_12bit, layers
from ibjax import io
from ibjax.estimators import renyi


def _time(fn, args, repeats: int) -> tuple:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return out, first, best


def case(name: str, n: int, batch: int | None, repeats: int, subset: int = 0, n_subsets: int = 4) -> dict:
    y, t = layers(n, 10, batch)
    x = jnp.asarray(inputs_12bit(n))
    if subset:
        one = lambda t: renyi.info_plane_subsets_bits(
            t, x, y, jax.random.key(0), 1.01, 1.0, 10, width="silverman", k=10, subset=subset, n_subsets=n_subsets
        )
    else:
        one = lambda t: renyi.info_plane_bits(t, x, y, 1.01, 1.0, 10, width="silverman", k=10)
    fn = jax.jit(jax.vmap(one) if batch else one)
    out, first, best = _time(fn, (t,), repeats)
    items = batch or 1
    vals = [float(jnp.ravel(v)[0]) for v in out]
    r = dict(
        name=name,
        n=n,
        d=10,
        batch=items,
        subset=subset or None,
        n_subsets=n_subsets if subset else None,
        seconds_per_item=best / items,
        first_call_seconds=first,
        i_xt=vals[0],
        i_ty=vals[1] if not subset else vals[2],
    )
    print(
        f"{name:<24} N={n:<5} batch={items:<2} {r['seconds_per_item']:.3f} s/item  "
        f"I(X;T)={r['i_xt']:.3f} I(T;Y)={r['i_ty']:.3f} bits",
        flush=True,
    )
    return r


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 256 (CI)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="results/benchmarks")
    a = p.parse_args(argv)
    if a.quick:
        rows = [case("exact_batched", 256, 4, 1), case("subsets", 256, None, 1, subset=128)]
    else:
        rows = [
            case("exact_batched", 1024, 4, a.repeats),
            case("exact_single", 1024, None, a.repeats),
            case("subsets_4x512", 4096, None, a.repeats, subset=512),
            case("exact_single", 4096, None, 1),
        ]
    result = dict(renyi=rows, **machine(), quick=a.quick)
    io.atomic_write_json(Path(a.out) / ("renyi_quick.json" if a.quick else "renyi.json"), result)
    return result


if __name__ == "__main__":
    main()
