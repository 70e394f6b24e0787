"""KSG speed against the upstream NPEET algorithm at N = 5000 and N = 60,000 (d = 5), + error bars.

    python -m experiments.benchmarks.knn            # N = 5000 and 60,000, X, Y in R^5
    python -m experiments.benchmarks.knn --quick    # N = 500 and 2000 (CI)

ibjax's ``knn.mi`` (KSG-1, k = 3, max-norm, brute force in row blocks) against the reference: NPEET's
``mi(x, y, k=3)``. ``pip install npeet`` finds no distribution, so the reference is NPEET's algorithm
re-typed over scikit-learn's KDTree (NPEET builds the same trees: KDTree, chebyshev; query k + 1
neighbours; count marginal neighbours within r - 1e-15; 1e-10 jitter), named as such in the output;
without scikit-learn, scipy's cKDTree (p = inf) is the stand-in; without either, the reference
column is skipped with a message. scikit-learn is not a dependency of ibjax: install it into the venv
for this benchmark only. Data: X ~ N(0, I_5), Y = tanh(X A) + 0.3 noise (as
experiments.benchmarks.estimators). One timed call after a compile call for ibjax (best of
``--repeats``); the reference is timed the same way. Also: ``knn.mi_with_error`` (halves and quarters,
4 permutations) at the smaller N. Writes results/benchmarks/knn.json (knn_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import numpy as np
from scipy.special import digamma

from experiments.benchmarks import machine
from experiments.benchmarks.estimators import gaussian_pairs
from ibjax import io
from ibjax.estimators import knn


def _reference():
    """(name, tree builder, radius counter) of the available NPEET stand-in, or None."""
    try:
        from sklearn.neighbors import KDTree

        def build(p):
            return KDTree(p, metric="chebyshev")

        return (
            "npeet_algorithm_sklearn_kdtree",
            build,
            lambda t, p, k: t.query(p, k=k + 1)[0][:, k],
            lambda t, p, r: t.query_radius(p, r, count_only=True),
        )
    except ImportError:
        pass
    try:
        from scipy.spatial import cKDTree

        return (
            "ksg_scipy_ckdtree",
            cKDTree,
            lambda t, p, k: t.query(p, k=k + 1, p=np.inf)[0][:, k],
            lambda t, p, r: np.array([len(v) for v in t.query_ball_point(p, r, p=np.inf)]),
        )
    except ImportError:
        return None


def reference_mi(x, y, ref, k: int = 3, seed: int = 0):
    """NPEET's mi(x, y, k) in bits, over the reference's trees (see module docstring)."""
    _, build, query, count = ref
    rng = np.random.default_rng(seed)
    x = x + 1e-10 * rng.random(x.shape)
    y = y + 1e-10 * rng.random(y.shape)
    joint = np.hstack([x, y])
    r = query(build(joint), joint, k) - 1e-15
    avg = lambda pts: np.mean(digamma(count(build(pts), pts, r)))
    return float((-avg(x) - avg(y) + digamma(k) + digamma(len(x))) / np.log(2))


def _best(fn, repeats: int):
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return out, min(times)


def row(n: int, d: int, repeats: int, ref) -> dict:
    x, y = (np.asarray(a, np.float64) for a in gaussian_pairs(n, d, None))
    xj, yj = jax.numpy.asarray(x, np.float32), jax.numpy.asarray(y, np.float32)
    t0 = time.perf_counter()
    jax.block_until_ready(knn.mi(xj, yj))
    first = time.perf_counter() - t0
    ours, sec = _best(lambda: knn.mi(xj, yj), repeats)
    r = dict(n=n, d=d, ibjax_seconds=sec, ibjax_first_call_seconds=first, ibjax_bits=float(ours))
    if ref is None:
        return {**r, "reference": None}
    val, ref_sec = _best(lambda: reference_mi(x, y, ref), max(1, repeats if n <= 10_000 else 1))
    return {
        **r,
        "reference": ref[0],
        "reference_seconds": ref_sec,
        "reference_bits": val,
        "speedup": ref_sec / sec,
        "abs_diff_bits": abs(val - float(ours)),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 500 and 2000 (CI)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="results/benchmarks")
    a = p.parse_args(argv)
    ref = _reference()
    if ref is None:
        print("no reference: neither scikit-learn nor scipy.spatial importable; reference column skipped")
    sizes = (500, 2000) if a.quick else (5000, 60_000)
    rows = []
    for n in sizes:
        print(f"KSG N={n} d=5 ...", flush=True)
        rows.append(row(n, 5, a.repeats, ref))
        r = rows[-1]
        print(
            f"  ibjax {r['ibjax_seconds']:.3f} s ({r['ibjax_bits']:.4f} bits)"
            + (
                ""
                if ref is None
                else f"; {r['reference']} {r['reference_seconds']:.3f} s "
                f"({r['reference_bits']:.4f} bits); speedup {r['speedup']:.2f}x"
            ),
            flush=True,
        )
    x, y = gaussian_pairs(sizes[0], 5, None)
    f = jax.jit(lambda x, y, k: knn.mi_with_error(x, y, k))
    jax.block_until_ready(f(x, y, jax.random.key(0)))
    (i, se), sec = _best(lambda: f(x, y, jax.random.key(0)), a.repeats)
    bars = dict(n=sizes[0], d=5, seconds=sec, bits=float(i), stderr_bits=float(se), splits=[2, 4], n_perm=4)
    print(f"mi_with_error N={sizes[0]}: {float(i):.4f} +- {float(se):.4f} bits in {sec:.3f} s")
    result = dict(ksg=rows, error_bars=bars, **machine(), quick=a.quick, npeet_installable=False)
    io.atomic_write_json(Path(a.out) / ("knn_quick.json" if a.quick else "knn.json"), result)
    return result


if __name__ == "__main__":
    main()
