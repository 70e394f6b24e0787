"""The built-in estimators as registry entries (see ``ibjax.registry`` for the adapter contract)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ibjax import noisy
from ibjax.estimators import binning, edge, hsic, kde, knn
from ibjax.registry import Context, Estimator, Option, integer_at_least, one_of, positive, register


def _block(n: int) -> int:
    return min(n, 256)


# ---------------------------------------------------------------- binning


def _binning(t, d, key, x, y, *, n_bins, bin_size, value_range):
    i_xt, i_ty = binning.info_plane(t, y, n_bins=n_bins, bin_size=bin_size, value_range=tuple(value_range))
    lo, hi = value_range
    live = (jnp.arange(t.shape[-1]) < d)[None, :]
    outside = jnp.any(live & ((t < lo) | (t > hi))) if n_bins is not None else jnp.bool_(False)
    return {"i_xt": i_xt, "i_ty": i_ty, "warn_outside_range": outside}


def _binning_finalize(s, ctx, given):
    if "bin_size" in given and "n_bins" not in given:
        s["n_bins"] = None
    if (s["n_bins"] is None) == (s["bin_size"] is None):
        raise ValueError("estimator binning takes exactly one of n_bins and bin_size")
    lo, hi = (float(v) for v in s["value_range"])
    if not lo < hi:
        raise ValueError(f"estimator option value_range must be (low, high) with low < high, got {s['value_range']!r}")
    s["value_range"] = (lo, hi)
    return s


register(Estimator(
    "binning", _binning,
    {"n_bins": Option(30, "bins on --value-range (IDNNs)", int, integer_at_least(2)),
     "bin_size": Option(None, "Saxe's floor(t / bin_size) grid instead of --n-bins", float, positive, traced=True),
     "value_range": Option((-1.0, 1.0), "two numbers, the range of --n-bins", float, nargs=2)},
    ("i_xt", "i_ty"), lambda s, n, widths: 6 * n * max(widths),
    help="plug-in entropy of binned activations, exact symbol counts", negative_tol=1e-5,
    label_conditional=True, finalize=_binning_finalize,
    warnings={"warn_outside_range": "activations outside value_range were clipped into the edge bins "
                                    "(the IDNNs convention that hid ReLU information; use --bin-size)"}))


# ---------------------------------------------------------------- KDE


def _kde(t, d, key, x, y, *, noise_var, n_classes):
    """Both Kolchinsky-Tracey bounds; the d-dependent terms cancel in I, so padding is exact."""
    i_xt, i_ty = kde.info_plane(t, y, noise_var, bound="both", n_classes=n_classes)  # (upper, lower)
    return {"i_xt": i_xt[..., 0], "i_ty": i_ty[..., 0], "i_xt_lower": i_xt[..., 1], "i_ty_lower": i_ty[..., 1]}


register(Estimator(
    "kde", _kde, {"noise_var": Option(0.1, "noise variance of the Gaussian kernels", float, positive, traced=True)},
    ("i_xt", "i_ty", "i_xt_lower", "i_ty_lower"), lambda s, n, widths: 3 * _block(n) * n,
    help="Kolchinsky-Tracey pairwise-distance upper (i_xt, i_ty) and lower (*_lower) bounds",
    label_conditional=True))


# ---------------------------------------------------------------- kNN (KSG)


def label_mi(t, y, *, k, metric, n_classes):
    """KSG I(T;Y) for integer labels: Y as one-hot codes scaled beyond T's diameter, so every joint
    k-NN ball stays inside one class and KSG reduces to Ross's (2014) discrete-continuous estimator."""
    scale = 2.0 * jnp.sqrt(t.shape[-1]) * (jnp.max(t) - jnp.min(t)) + 1.0
    return knn.mi(t, scale * jax.nn.one_hot(y, n_classes), k=k, metric=metric)


def _knn(t, d, key, x, y, *, k, metric, n_classes):
    return {"i_xt": knn.mi(x, t, k=k, metric=metric), "i_ty": label_mi(t, y, k=k, metric=metric, n_classes=n_classes)}


def _check_k(name, v, ctx: Context):
    integer_at_least(1)(name, v)
    if v >= ctx.n:
        raise ValueError(f"estimator option k must be < the {ctx.n} samples, got {v}")


register(Estimator(
    "knn", _knn,
    {"k": Option(3, "neighbours for KSG", int, _check_k),
     "metric": Option("chebyshev", "chebyshev or euclidean", str, one_of("chebyshev", "euclidean"))},
    ("i_xt", "i_ty"), lambda s, n, widths: 4 * _block(n) * n,
    help="KSG-1 I(X;T); I(T;Y) by Ross's discrete-continuous rule", negative_tol=0.25))


# ---------------------------------------------------------------- EDGE


def _edge(t, d, key, x, y, *, U, L):
    k1, k2 = jax.random.split(key)
    i_xt = edge.mi(x, t, U=U, L=L, key=k1)
    i_ty = edge.mi(t, y.astype(jnp.float32), U=U, L=L, key=k2)
    return {"i_xt": i_xt, "i_ty": i_ty, "warn_near_cap": jnp.maximum(i_xt, i_ty) >= 0.95 * U}


register(Estimator(
    "edge", _edge,
    {"U": Option(10.0, "cap on the pointwise terms", float, positive),
     "L": Option(10, "ensemble size", int, integer_at_least(1))},
    ("i_xt", "i_ty"), lambda s, n, widths: 64 * n * max(widths) * s.get("L", 10),
    help="EDGE hash dependence-graph estimator", pad_exact=False, negative_tol=1e-4,
    warnings={"warn_near_cap": "EDGE estimate within 5% of its cap U: the pointwise terms are clipped, raise --U"}))


# ---------------------------------------------------------------- HSIC


def _hsic(t, d, key, x, y, *, normalized, n_classes):
    y_1hot = jax.nn.one_hot(y, max(n_classes, 2))
    return {"i_xt": hsic.hsic(x, t, normalized=normalized), "i_ty": hsic.hsic(t, y_1hot, normalized=normalized)}


register(Estimator(
    "hsic", _hsic, {"normalized": Option(True, "1: normalised HSIC in [0, 1]; 0: raw", int)},
    ("i_xt", "i_ty"), lambda s, n, widths: 4 * _block(n) * n,
    help="Hilbert-Schmidt independence criterion (a dependence, not bits)", units="HSIC",
    finalize=lambda s, ctx, given: {**s, "normalized": bool(s["normalized"])}))


# ---------------------------------------------------------------- Goldfeld smoothed entropy (noisy networks)


def _smoothed(sample_s, key, y, *, sigma, n_c, n_mc):
    p = noisy.info_plane(sample_s, y, sigma, key, n_c=n_c, n_mc=n_mc)
    return {"i_xt": p.i_xt, "i_ty": p.i_ty, "i_xt_se": p.i_xt_se, "i_ty_se": p.i_ty_se}


def _smoothed_finalize(s, ctx: Context, given):
    if s["sigma"] is None:
        run_sigma = ((ctx.run_config or {}).get("train") or {}).get("noise_sigma", 0.0)
        if not run_sigma:
            raise ValueError("estimator smoothed needs sigma: the run was trained without noise "
                             "(train.noise_sigma = 0); pass --sigma (option sigma) to smooth a deterministic network")
        s["sigma"] = float(run_sigma)
    return s


register(Estimator(
    "smoothed", _smoothed,
    {"sigma": Option(None, "noise std of T = S + Z (default: the run's train.noise_sigma)", float, positive),
     "n_c": Option(16, "noisy passes per input for the conditional terms", int, integer_at_least(1)),
     "n_mc": Option(1, "noise draws per centre", int, integer_at_least(1))},
    ("i_xt", "i_ty", "i_xt_se", "i_ty_se"),
    lambda s, n, widths: 4 * _block(n) * n + s.get("n_c", 1) * 4 * n * sum(widths) // max(len(widths), 1),
    help="Goldfeld et al. sample propagation on the noisy network (standard errors in *_se)",
    noisy=True, negative_tol=None, finalize=_smoothed_finalize))
