"""The estimators as the information-plane engine sees them: one uniform adapter each.

A deterministic-network adapter is ``fn(t_NxD, d, key, x_NxDx, y_N, **settings) -> dict`` of scalars
for one (epoch, layer); ``t`` may carry zero-padded columns (``d`` is the true width). The noisy-network
adapter (``smoothed``) takes one epoch's params instead, since it needs fresh noisy forward passes.
Outputs are I-values in bits, except HSIC (a kernel dependence, not bits).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from ibjax import noisy
from ibjax.estimators import binning, edge, hsic, kde, knn


class Spec(NamedTuple):
    fn: Callable
    defaults: dict
    outputs: tuple
    pad_exact: bool  # zero-padded columns leave the value unchanged (else: one call per layer width)
    noisy: bool = False


def _binning(t, d, key, x, y, *, n_bins, bin_size, value_range):
    i_xt, i_ty = binning.info_plane(t, y, n_bins=n_bins, bin_size=bin_size, value_range=tuple(value_range))
    return {"i_xt": i_xt, "i_ty": i_ty}


def _kde(t, d, key, x, y, *, noise_var, n_classes):
    """Both Kolchinsky-Tracey bounds; the d-dependent terms cancel in I, so padding is exact."""
    i_xt, i_ty = kde.info_plane(t, y, noise_var, bound="both", n_classes=n_classes)  # (upper, lower)
    return {"i_xt": i_xt[..., 0], "i_ty": i_ty[..., 0], "i_xt_lower": i_xt[..., 1], "i_ty_lower": i_ty[..., 1]}


def label_mi(t, y, *, k, metric, n_classes):
    """KSG I(T;Y) for integer labels: Y as one-hot codes scaled beyond T's diameter, so every joint
    k-NN ball stays inside one class and KSG reduces to Ross's (2014) discrete-continuous estimator."""
    scale = 2.0 * jnp.sqrt(t.shape[-1]) * (jnp.max(t) - jnp.min(t)) + 1.0
    return knn.mi(t, scale * jax.nn.one_hot(y, n_classes), k=k, metric=metric)


def _knn(t, d, key, x, y, *, k, metric, n_classes):
    return {"i_xt": knn.mi(x, t, k=k, metric=metric), "i_ty": label_mi(t, y, k=k, metric=metric, n_classes=n_classes)}


def _edge(t, d, key, x, y, *, U, L):
    k1, k2 = jax.random.split(key)
    return {"i_xt": edge.mi(x, t, U=U, L=L, key=k1), "i_ty": edge.mi(t, y.astype(jnp.float32), U=U, L=L, key=k2)}


def _hsic(t, d, key, x, y, *, normalized, n_classes):
    y_1hot = jax.nn.one_hot(y, n_classes)
    return {"i_xt": hsic.hsic(x, t, normalized=normalized), "i_ty": hsic.hsic(t, y_1hot, normalized=normalized)}


def _smoothed(sample_s, key, y, *, sigma, n_c, n_mc):
    p = noisy.info_plane(sample_s, y, sigma, key, n_c=n_c, n_mc=n_mc)
    return {"i_xt": p.i_xt, "i_ty": p.i_ty, "i_xt_se": p.i_xt_se, "i_ty_se": p.i_ty_se}


ESTIMATORS: dict[str, Spec] = {
    "binning": Spec(_binning, dict(n_bins=30, bin_size=None, value_range=(-1.0, 1.0)), ("i_xt", "i_ty"), True),
    "kde": Spec(_kde, dict(noise_var=0.1, n_classes=None), ("i_xt", "i_ty", "i_xt_lower", "i_ty_lower"), True),
    "knn": Spec(_knn, dict(k=3, metric="chebyshev", n_classes=None), ("i_xt", "i_ty"), True),
    "edge": Spec(_edge, dict(U=10.0, L=10), ("i_xt", "i_ty"), False),
    "hsic": Spec(_hsic, dict(normalized=True, n_classes=None), ("i_xt", "i_ty"), True),
    "smoothed": Spec(_smoothed, dict(sigma=0.1, n_c=16, n_mc=1), ("i_xt", "i_ty", "i_xt_se", "i_ty_se"), True, True),
}


def _positive(name, v, *, integer=False, minimum=None):
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (not integer or float(v).is_integer()) and (v >= minimum if minimum is not None else v > 0)
    if not ok:
        what = f"an integer >= {minimum}" if integer else "a finite number > 0"
        raise ValueError(f"estimator option {name} must be {what}, got {v!r}")


def resolve(name: str, options: dict | None, *, n: int, n_classes: int) -> dict:
    """Defaults filled in, unknown or out-of-range options refused with a ValueError naming them."""
    if name not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {sorted(ESTIMATORS)}, got {name!r}")
    spec = ESTIMATORS[name]
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(spec.defaults))
    if unknown:
        raise ValueError(f"option(s) {unknown} do not exist for estimator {name!r}; valid: {sorted(spec.defaults)}")
    s = {**spec.defaults, **options}
    if name == "binning":
        if "bin_size" in options:
            s["n_bins"] = None if "n_bins" not in options else s["n_bins"]
        if (s["n_bins"] is None) == (s["bin_size"] is None):
            raise ValueError("binning takes exactly one of n_bins and bin_size")
        if s["n_bins"] is not None:
            _positive("n_bins", s["n_bins"], integer=True, minimum=2)
        else:
            _positive("bin_size", s["bin_size"])
        s["value_range"] = tuple(float(v) for v in s["value_range"])
    elif name == "kde":
        _positive("noise_var", s["noise_var"])
        s["n_classes"] = n_classes if s["n_classes"] is None else s["n_classes"]
        _positive("n_classes", s["n_classes"], integer=True, minimum=n_classes)
    elif name == "knn":
        _positive("k", s["k"], integer=True, minimum=1)
        if s["k"] >= n:
            raise ValueError(f"estimator option k must be < the {n} samples, got {s['k']}")
        s["n_classes"] = n_classes if s["n_classes"] is None else s["n_classes"]
        if s["metric"] not in ("chebyshev", "euclidean"):
            raise ValueError(f"estimator option metric must be 'chebyshev' or 'euclidean', got {s['metric']!r}")
    elif name == "edge":
        _positive("U", s["U"])
        _positive("L", s["L"], integer=True, minimum=1)
    elif name == "hsic":
        s["normalized"] = bool(s["normalized"])
        s["n_classes"] = n_classes if s["n_classes"] is None else s["n_classes"]
        _positive("n_classes", s["n_classes"], integer=True, minimum=max(2, n_classes))
    elif name == "smoothed":
        _positive("sigma", s["sigma"])
        _positive("n_c", s["n_c"], integer=True, minimum=1)
        _positive("n_mc", s["n_mc"], integer=True, minimum=1)
    return s
