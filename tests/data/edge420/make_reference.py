"""Reference values of the unmodified EDGE_4_2_0.py over 20 projection seeds (see README.md here).

    python make_reference.py PATH/TO/EDGE/information_plane   # numpy, scipy, scikit-learn; no jax

numpy-only ``inputs()`` is imported by tests/test_edge.py, so the test regenerates the same inputs.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MNIST = HERE.parent / "mnist" / "first1000"
N_SEEDS = 20
SEED_BASE = 3334  # the original seeds both its projections and its bandwidth sample with 3334
# name -> (x, y, keyword arguments of the study's calls, information_plane/main.py)
CASES = {
    "xt_layer1": ("x", "t1", dict(U=20, L_ensemble=10, gamma=[0.2, 0.8], epsilon_vector="range")),
    "xt_layer2": ("x", "t2", dict(U=20, L_ensemble=10, gamma=[0.2, 1.0], epsilon_vector="range")),
    "ty_layer1": ("y", "t1", dict(U=10, L_ensemble=10, gamma=[0.0001, 0.4], epsilon=[0.2, 0.2], epsilon_vector="range")),
    "ty_layer2": ("y", "t2", dict(U=10, L_ensemble=10, gamma=[0.0001, 0.5], epsilon=[0.2, 0.2], epsilon_vector="range")),
}


def _idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def inputs() -> dict:
    """The 1000 MNIST test images of tests/data/mnist/first1000 (x in [0, 1], 784 columns), their labels y,
    and two layers of a random tanh network 784-1024-20 (numpy default_rng(0), weights N(0, 1/fan_in),
    zero biases, float64): t1 (1024 units) and t2 (20 units), all float32."""
    x = _idx(MNIST / "t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float64) / 255.0
    y = _idx(MNIST / "t10k-labels-idx1-ubyte.gz").astype(np.float64)
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((784, 1024)) / np.sqrt(784)
    w2 = rng.standard_normal((1024, 20)) / np.sqrt(1024)
    t1 = np.tanh(x @ w1)
    t2 = np.tanh(t1 @ w2)
    return {k: v.astype(np.float32) for k, v in {"x": x, "y": y, "t1": t1, "t2": t2}.items()}


def main(edge_dir: str) -> None:
    sys.path.insert(0, str(edge_dir))
    np.asscalar = lambda a: a.item()  # removed in numpy 1.23; the original's 1-D hashing calls it
    import EDGE_4_2_0 as original  # the unmodified file

    seed = np.random.seed
    data = inputs()
    values = {}
    for name, (a, b, kwargs) in CASES.items():
        values[name] = []
        for k in range(N_SEEDS):
            np.random.seed = lambda s=None, k=k: seed(None if s is None else s + k)  # offset the fixed seed
            values[name].append(float(original.EDGE(data[a].astype(np.float64), data[b].astype(np.float64), **kwargs)))
        np.random.seed = seed
        print(name, np.mean(values[name]), np.std(values[name], ddof=1))
    out = {"_about": "EDGE_4_2_0.py (github.com/mrtnoshad/EDGE, information_plane/, commit 45ec280) on inputs(); "
                     "value k: every np.random.seed(s) the original calls made np.random.seed(s + k), k = 0..19 "
                     "(k = 0 is the original as it runs).",
           "n": int(len(data["y"])), "cases": {k: {"x": a, "y": b, "kwargs": kw} for k, (a, b, kw) in CASES.items()},
           "values": values}
    (HERE / "values.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
