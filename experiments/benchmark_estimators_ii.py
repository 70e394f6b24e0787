"""Speed of the EDGE, smoothed-entropy and HSIC estimators, amortised over a vmapped batch.

    python -m experiments.benchmark_estimators_ii            # N = 4096, d = 10, batch of 64
    python -m experiments.benchmark_estimators_ii --quick    # tiny sizes (CI)

Each estimator runs on a batch of (epoch, layer) activations T = tanh(X W_b) of the 4096 distinct
12-bit inputs X (var_u's input set; 64 random 12 x 10 matrices W_b; balanced random labels), in one
jitted, vmapped call. The first call compiles and is not timed; then the best of ``--repeats`` timed
calls (jax.block_until_ready) divided by the batch size is the time per (epoch, layer). Targets on
2 CPU cores: EDGE <= 15 ms, smoothed entropy (1 noise draw per centre) <= 50 ms. Also reported: the
process CPU time per item (XLA:CPU uses both cores when they are free, so on an idle machine this
exceeds the wall time; when other jobs hold the cores, wall time inflates instead).
Writes ``estimators_ii.json`` under ``--out`` (``estimators_ii_quick.json`` with --quick: N = 256,
batch 4, without edge_i_ty). With several XLA devices the batch is sharded over them.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmark_estimators import time_call
from ibjax import io
from ibjax.estimators import edge, hsic, smoothed

TARGET_MS = {"edge_i_xt": 15.0, "edge_i_ty": 15.0, "smoothed_entropy_nmc1": 50.0}
QUICK_SKIP = ("edge_i_ty",)  # same code path as edge_i_xt; --quick checks the plumbing, and compiling costs


def inputs(n: int, batch: int, d: int, seed: int = 0):
    """12-bit inputs X (n x 12), labels y and a batch of layers T_b = tanh(X W_b) (batch x n x d)."""
    codes = np.arange(4096)[:n]
    x_NxF = ((codes[:, None] >> np.arange(12)) & 1).astype(np.float32)
    y_N = (np.random.default_rng(seed).permutation(n) < n // 2).astype(np.int32)
    w_BxFxD = np.random.default_rng(seed).standard_normal((batch, 12, d)) / math.sqrt(12)
    t_BxNxD = np.tanh(np.einsum("nf,bfd->bnd", x_NxF, w_BxFxD)).astype(np.float32)
    return jnp.asarray(x_NxF), jnp.asarray(y_N), jnp.asarray(t_BxNxD)


def shard_batch(tree):
    """Leading (batch) axes split over all devices (a no-op with one device)."""
    if jax.device_count() == 1:
        return tree
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("batch",))
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    return jax.tree.map(lambda a: jax.device_put(a, spec), tree)


def estimators(sigma: float):
    """name -> (function of (x, y, t_BxNxD, keys_B), description)."""
    return {
        "edge_i_xt": (jax.jit(jax.vmap(lambda x, t: edge.mi(x, t), in_axes=(None, 0))), "EDGE I(X;T), X 12-d shared"),
        "edge_i_ty": (jax.jit(jax.vmap(lambda t, y: edge.mi(t, y), in_axes=(0, None))), "EDGE I(T;Y), labels shared"),
        "smoothed_entropy_nmc1": (jax.jit(jax.vmap(lambda t, k: smoothed.entropy(t, sigma, k))),
                                  "smoothed h(T), n_mc=1"),
        "hsic_normalized": (jax.jit(jax.vmap(lambda x, t: hsic.hsic(x, t, normalized=True), in_axes=(None, 0))),
                            "normalised HSIC(X, T)"),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per estimator (default 3)")
    p.add_argument("--out", default="results/benchmarks", help="output directory (default results/benchmarks)")
    a = p.parse_args(argv)
    n, batch, d = (256, 4, 10) if a.quick else (4096, 64, 10)
    x, y, t = inputs(n, batch, d)
    keys = jax.random.split(jax.random.key(0), batch)
    t, keys = shard_batch((t, keys))
    args = {"edge_i_xt": (x, t), "edge_i_ty": (t, y), "smoothed_entropy_nmc1": (t, keys), "hsic_normalized": (x, t)}
    rows = []
    for name, (fn, what) in estimators(math.sqrt(0.1)).items():
        if a.quick and name in QUICK_SKIP:
            continue
        r = time_call(fn, args[name], batch, a.repeats)
        target = TARGET_MS.get(name)
        rows.append(dict(name=name, what=what, n=n, d=d, batch=batch, target_ms=target,
                         met=None if target is None else r["ms_per_item"] <= target, **r))
    print(f"{'estimator':<24} {'N':>5} {'d':>3} {'batch':>5} {'ms/item':>8} {'median':>8} {'cpu ms':>7} "
          f"{'target':>7} {'compile s':>9}")
    for r in rows:
        tgt = "-" if r["target_ms"] is None else f"{r['target_ms']:.0f}"
        print(f"{r['name']:<24} {r['n']:>5} {r['d']:>3} {r['batch']:>5} {r['ms_per_item']:>8.2f} "
              f"{r['ms_per_item_median']:>8.2f} {r['cpu_ms_per_item']:>7.2f} {tgt:>7} {r['first_call_seconds']:>9.1f}")
    print(f"{jax.device_count()} XLA device(s); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    result = dict(estimators=rows, backend=jax.default_backend(), cpu_count=os.cpu_count(), devices=jax.device_count(),
                  load_average=list(os.getloadavg()), machine=platform.machine(), jax_version=jax.__version__,
                  quick=a.quick)
    suffix = ("_quick" if a.quick else "") + (f"_{jax.device_count()}dev" if jax.device_count() > 1 else "")
    io.atomic_write_json(Path(a.out) / f"estimators_ii{suffix}.json", result)
    return result


if __name__ == "__main__":
    main()
