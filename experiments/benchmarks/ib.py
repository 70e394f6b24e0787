"""The IB curve of the 4096-input 12-bit tasks in one call: first call (compile included) and warm.

    python -m experiments.benchmarks.ib            # 64 betas x 4 restarts + the annealed path, 500 iterations
    python -m experiments.benchmarks.ib --unmerged # also every input kept (4096 x 16 clusters): the slow way

``ibjax.ib.curve`` on ``stochastic_12bit``'s true p(x, y) (37 distinct p(y|x): merged rows) and on
var_u (2 rows). The issue's target: >= 64 betas of the 4096-input task under 30 s on 2 CPU cores.
Writes results/benchmarks/ib.json atomically.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from ibjax import data, ib, io
from ibjax.runs import versions


def _time(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - t, 2)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks.ib",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--betas", type=int, default=64)
    p.add_argument("--n-iter", type=int, default=500)
    p.add_argument("--unmerged", action="store_true")
    p.add_argument("--out", default="results/benchmarks")
    a = p.parse_args(argv)
    betas = np.geomspace(1, 2000, a.betas)
    px = np.full(4096, 1 / 4096)
    p1 = data.stochastic_12bit().meta["p_y1_given_x"]
    tasks = {
        "stochastic_12bit": np.stack([1 - p1, p1], 1),
        "generated_12bit (deterministic)": np.eye(2)[data.generated_12bit().y],
    }
    rows = []
    for name, pyx in tasks.items():
        cases = [("merged", {})] + (
            [("unmerged, 16 clusters", {"merge": False, "n_clusters": 16})] if a.unmerged else []
        )
        for case, kw in cases:
            c, cold = _time(ib.curve, px, pyx, betas, n_iter=a.n_iter, **kw)
            c, warm = _time(ib.curve, px, pyx, betas, n_iter=a.n_iter, **kw)
            rows.append(
                {
                    "task": name,
                    "case": case,
                    "betas": a.betas,
                    "n_iter": a.n_iter,
                    "first_call_s": cold,
                    "warm_s": warm,
                    "max_i_ty_bits": round(float(c.i_ty_B.max()), 4),
                    "i_xy_bits": round(c.i_xy, 4),
                }
            )
            print(
                f"{name}, {case}: {a.betas} betas in {cold} s (first call), {warm} s warm; "
                f"max I(T;Y) {c.i_ty_B.max():.4f} of I(X;Y) {c.i_xy:.4f}"
            )
    out = {"cases": rows, "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(), "versions": versions()}
    io.atomic_write_json(Path(a.out) / "ib.json", out)
    return out


if __name__ == "__main__":
    main()
