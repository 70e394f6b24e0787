"""Speed of every estimator per (epoch, layer), batched and single, + KSG memory.

    python -m experiments.benchmarks.estimators            # N = 4096, d = 10, batch of 64; KSG N = 5000
    python -m experiments.benchmarks.estimators --quick    # tiny sizes (CI), no memory run
    python -m experiments.benchmarks.estimators --only edge_i_xt edge_i_ty --no-memory

Cases: binning (two conventions), KDE bounds, KSG and KL (Estimators I); EDGE I(X;T) and I(T;Y),
Goldfeld smoothed entropy with one noise draw per centre, normalised HSIC (Estimators II).

Layers are T = tanh(X W_b) of the 4096 distinct 12-bit inputs X (random 12 x d matrices W_b,
balanced random labels). Each case runs as one jitted call over a vmapped batch (time / batch =
amortised time per item, which the targets apply to) and as a single call. The first call compiles
and is reported separately; then the best of ``--repeats`` timed calls (jax.block_until_ready)
counts. Process CPU time per item (all threads) is reported too: XLA spreads some work over both
cores when they are free, and when other jobs share the cores the CPU time is the steadier number.
KSG runs on X, Y in R^5 (Y = tanh(X A) + noise), N = 5000. The memory run measures the peak
resident set size of a child process computing KSG at N = 60,000, d = 20 (X and Y both 20-d).

Other estimator modules add rows with ``register(name, what, target_ms)`` on a setup function
``setup(sizes, batch) -> (jitted fn, args)`` (``batch`` None = one item). Writes estimators.json
(estimators_quick.json with --quick) under ``--out`` atomically.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks import machine
from ibjax import io
from ibjax.estimators import binning, edge, hsic, kde, knn, smoothed


@dataclass(frozen=True)
class Sizes:
    n: int = 4096  # samples per layer (binning, KDE)
    d: int = 10  # layer width
    batch: int = 64  # epochs in the amortised call
    n_knn: int = 5000
    d_knn: int = 5
    batch_knn: int = 8


QUICK = Sizes(n=256, d=10, batch=4, n_knn=256, d_knn=5, batch_knn=2)


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    setup: Callable  # (sizes, batch or None) -> (fn, args)
    target_ms: float | None = None
    knn_sizes: bool = False  # N, d, batch from the n_knn, d_knn, batch_knn fields


CASES: list[Case] = []


def register(name: str, what: str, target_ms: float | None = None, *, knn_sizes: bool = False):
    """Decorator: add a benchmark case built by ``setup(sizes, batch) -> (fn, args)``."""

    def deco(setup):
        CASES.append(Case(name, what, setup, target_ms, knn_sizes))
        return setup

    return deco


def inputs_12bit(n: int):
    """The first n of the 4096 distinct 12-bit input patterns, (n, 12) float32."""
    return ((np.arange(4096)[:n, None] >> np.arange(12)) & 1).astype(np.float32)


def layers(n: int, d: int, batch: int | None, seed: int = 0):
    """Labels y_N and activations tanh(X W): (batch, n, d), or (n, d) when ``batch`` is None."""
    x_NxF = inputs_12bit(n)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((batch or 1, 12, d)) / math.sqrt(12)
    t = np.tanh(np.einsum("nf,bfd->bnd", x_NxF, w)).astype(np.float32)
    y = (rng.permutation(n) < n // 2).astype(np.int32)
    return jnp.asarray(y), jnp.asarray(t if batch else t[0])


def gaussian_pairs(n: int, d: int, batch: int | None, seed: int = 1):
    """X ~ N(0, I_d) and Y = tanh(X A) + 0.3 noise: (batch, n, d) each, or (n, d)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch or 1, n, d))
    y = np.tanh(x @ (rng.standard_normal((d, d)) / math.sqrt(d))) + 0.3 * rng.standard_normal(x.shape)
    cast = (lambda a: jnp.asarray(a.astype(np.float32))) if batch else (lambda a: jnp.asarray(a[0].astype(np.float32)))
    return cast(x), cast(y)


@register("binning_n_bins30", "IDNNs binning, 30 bins: I(X;T), I(T;Y)", target_ms=1.0)
def _binning_n_bins(s: Sizes, batch):
    y, t = layers(s.n, s.d, batch)
    return jax.jit(lambda t: binning.info_plane(t, y, n_bins=30)), (t,)


@register("binning_bin_size0.07", "ibsgd binning, bin_size 0.07 (traced): I(X;T), I(T;Y)", target_ms=1.0)
def _binning_bin_size(s: Sizes, batch):
    y, t = layers(s.n, s.d, batch)
    return jax.jit(lambda t, b: binning.info_plane(t, y, bin_size=b)), (t, jnp.float32(0.07))


@register("kde_upper_lower", "KDE upper + lower bounds, var 0.1: I(X;T), I(T;Y)", target_ms=20.0)
def _kde_both(s: Sizes, batch):
    y, t = layers(s.n, s.d, batch)
    return jax.jit(lambda t: kde.info_plane(t, y, 0.1, bound="both", n_classes=2)), (t,)


@register("ksg_mi", "KSG-1 I(X;Y), k=3, max-norm, X and Y in R^5", target_ms=100.0, knn_sizes=True)
def _ksg(s: Sizes, batch):
    x, y = gaussian_pairs(s.n_knn, s.d_knn, batch)
    return jax.jit(lambda x, y: knn.mi(x, y)), (x, y)


@register("kl_entropy", "Kozachenko-Leonenko h(X), k=3, max-norm, X in R^5", knn_sizes=True)
def _kl(s: Sizes, batch):
    x, _ = gaussian_pairs(s.n_knn, s.d_knn, batch)
    return jax.jit(lambda x: knn.entropy(x)), (x,)


def _per_item(fn, batch, in_axes=0):
    """jit(fn), vmapped over the leading axis of the batched arguments when ``batch`` is set.
    Shared inputs are arguments (in_axes None), not closure constants XLA would fold at compile time."""
    return jax.jit(jax.vmap(fn, in_axes=in_axes) if batch else fn)


@register("edge_i_xt", "EDGE I(X;T), X the 12-bit inputs (p-stable hashing)", target_ms=15.0)
def _edge_xt(s: Sizes, batch):
    _, t = layers(s.n, s.d, batch)
    return _per_item(lambda x, t: edge.mi(x, t), batch, (None, 0)), (jnp.asarray(inputs_12bit(s.n)), t)


@register("edge_i_ty", "EDGE I(T;Y), Y the labels (p-stable hashing)", target_ms=15.0)
def _edge_ty(s: Sizes, batch):
    y, t = layers(s.n, s.d, batch)
    return _per_item(lambda t: edge.mi(t, y), batch), (t,)


@register("smoothed_entropy_nmc1", "Goldfeld smoothed h(T), sigma^2 = 0.1, n_mc = 1", target_ms=50.0)
def _smoothed(s: Sizes, batch):
    _, t = layers(s.n, s.d, batch)
    keys = jax.random.split(jax.random.key(0), batch) if batch else jax.random.key(0)
    return _per_item(lambda t, k: smoothed.entropy(t, math.sqrt(0.1), k), batch), (t, keys)


@register("hsic_normalized", "normalised HSIC(X, T), median-heuristic bandwidths")
def _hsic(s: Sizes, batch):
    _, t = layers(s.n, s.d, batch)
    return _per_item(lambda x, t: hsic.hsic(x, t, normalized=True), batch, (None, 0)), (
        jnp.asarray(inputs_12bit(s.n)),
        t,
    )


def time_call(fn, args, items: int, repeats: int) -> dict:
    """First call (compile + run) untimed in the result; best and median of ``repeats`` calls."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(*args))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return dict(
        first_call_seconds=compile_s,
        best_seconds=min(wall),
        median_seconds=float(np.median(wall)),
        ms_per_item=1e3 * min(wall) / items,
        ms_per_item_median=1e3 * float(np.median(wall)) / items,
        cpu_ms_per_item=1e3 * min(cpu) / items,
    )


def run_case(case: Case, sizes: Sizes, repeats: int) -> list[dict]:
    rows = []
    n, d = (sizes.n_knn, sizes.d_knn) if case.knn_sizes else (sizes.n, sizes.d)
    for mode, batch in (("batched", sizes.batch_knn if case.knn_sizes else sizes.batch), ("single", None)):
        fn, args = case.setup(sizes, batch)
        r = time_call(fn, args, batch or 1, repeats)
        target = case.target_ms if batch else None  # targets are for the amortised (batched) time
        met = None if target is None else r["ms_per_item"] <= target
        rows.append(
            dict(name=case.name, what=case.what, mode=mode, n=n, d=d, batch=batch or 1, target_ms=target, met=met, **r)
        )
    return rows


_MEMORY_CHILD = """
import resource, sys, time, numpy as np
from ibjax.estimators import knn
n, d = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, d)).astype(np.float32)
y = (x + rng.standard_normal((n, d))).astype(np.float32)
t0 = time.perf_counter()
v = float(knn.mi(x, y))
seconds = time.perf_counter() - t0
try:  # this process image's own high-water mark (Linux)
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):  # ru_maxrss: KB on Linux, bytes on macOS
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform == "darwin" else 1)
print(v, seconds, kb)
"""


def ksg_memory(n: int = 60_000, d: int = 20) -> dict:
    """Peak resident set size of a fresh child process running knn.mi at (n, d), in MB.

    The child reports its own VmHWM: the parent's RUSAGE_CHILDREN would also count the RSS the child
    had between fork and exec, i.e. this (large) benchmark process."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(n), str(d)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    value, seconds, peak_kb = (float(v) for v in out.stdout.split())
    peak_mb = peak_kb / 1024
    return dict(
        n=n,
        d=d,
        peak_rss_mb=peak_mb,
        target_mb=4096,
        met=peak_mb < 4096,
        mi_bits=value,
        compute_seconds=seconds,
        process_seconds=time.perf_counter() - t0,
    )


def print_table(rows, memory):
    print(
        f"{'estimator':<22} {'mode':<8} {'N':>5} {'d':>3} {'batch':>5} {'ms/item':>9} {'median':>9} "
        f"{'cpu ms':>8} {'target':>7} {'met':>4} {'compile s':>9}"
    )
    for r in rows:
        tgt = "-" if r["target_ms"] is None else f"{r['target_ms']:g}"
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(
            f"{r['name']:<22} {r['mode']:<8} {r['n']:>5} {r['d']:>3} {r['batch']:>5} {r['ms_per_item']:>9.3f} "
            f"{r['ms_per_item_median']:>9.3f} {r['cpu_ms_per_item']:>8.3f} {tgt:>7} {met:>4} "
            f"{r['first_call_seconds']:>9.2f}"
        )
    if memory:
        print(
            f"KSG N={memory['n']} d={memory['d']}: peak RSS {memory['peak_rss_mb']:.0f} MB "
            f"(target < {memory['target_mb']} MB), {memory['compute_seconds']:.1f} s"
        )
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, no memory run (CI)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per case (default 5)")
    p.add_argument("--only", nargs="*", default=None, help="run only these case names")
    p.add_argument("--no-memory", action="store_true", help="skip the N = 60,000 KSG memory run")
    p.add_argument("--out", default="results/benchmarks", help="output directory (default results/benchmarks)")
    a = p.parse_args(argv)
    sizes = QUICK if a.quick else Sizes()
    rows = [r for c in CASES if a.only is None or c.name in a.only for r in run_case(c, sizes, a.repeats)]
    memory = None if (a.quick or a.no_memory) else ksg_memory()
    print_table(rows, memory)
    result = dict(estimators=rows, ksg_memory=memory, sizes=vars(sizes), **machine(), quick=a.quick)
    io.atomic_write_json(Path(a.out) / ("estimators_quick.json" if a.quick else "estimators.json"), result)
    return result


if __name__ == "__main__":
    main()
