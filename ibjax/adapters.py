"""The built-in estimators as registry entries (see ``ibjax.registry`` for the adapter contract)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ibjax import noisy
from ibjax.estimators import binning, edge, hsic, kde, knn
from ibjax.registry import Context, Estimator, Option, integer_at_least, one_of, positive, register


def _block(n: int) -> int:
    return min(n, 256)


# ---------------------------------------------------------------- binning


def _binning(t, d, key, x, y, *, n_bins, bin_size, value_range, range_mode, spacing, edges):
    i_xt, i_ty = binning.info_plane(
        t,
        y,
        n_bins=n_bins,
        bin_size=bin_size,
        value_range=tuple(value_range),
        range_mode=range_mode,
        spacing=spacing,
        edges=edges,
        n_live=d,
    )
    lo, hi = value_range
    live = (jnp.arange(t.shape[-1]) < d)[None, :]
    fixed = n_bins is not None and range_mode == "fixed"
    outside = jnp.any(live & ((t < lo) | (t > hi))) if fixed else jnp.bool_(False)
    return {"i_xt": i_xt, "i_ty": i_ty, "warn_outside_range": outside}


def _binning_finalize(s, ctx, given):
    if ("bin_size" in given or "edges" in given) and "n_bins" not in given:
        s["n_bins"] = None
    if s["edges"] is not None and s["n_bins"] is None and s["bin_size"] is None:
        s["n_bins"] = len(s["edges"])
    if (s["n_bins"] is None) == (s["bin_size"] is None):
        raise ValueError("estimator binning takes exactly one of n_bins and bin_size")
    lo, hi = (float(v) for v in s["value_range"])
    if not lo < hi:
        raise ValueError(f"estimator option value_range must be (low, high) with low < high, got {s['value_range']!r}")
    s["value_range"] = (lo, hi)
    s["n_bins"], (s["range_mode"], s["spacing"], s["edges"]) = binning.check_mode(
        s["n_bins"], s["bin_size"], s["range_mode"], s["spacing"], s["edges"]
    )
    return s


register(
    Estimator(
        "binning",
        _binning,
        {
            "n_bins": Option(30, "bins on --value-range (IDNNs)", int, integer_at_least(2)),
            "bin_size": Option(
                None, "Saxe's floor(t / bin_size) grid instead of --n-bins", float, positive, traced=True
            ),
            "value_range": Option((-1.0, 1.0), "two numbers, the range of --n-bins", float, nargs=2),
            "range_mode": Option(
                "fixed",
                "range of --n-bins: fixed (--value-range), layer, neuron, or global "
                "(needs --edges from binning.global_edges over all layers and epochs)",
                str,
                one_of(*binning.RANGE_MODES),
            ),
            "spacing": Option(
                "uniform",
                "uniform (linspace) or quantile (equal-mass) bins; quantile needs a data-derived range_mode",
                str,
                one_of(*binning.SPACINGS),
            ),
            "edges": Option(None, "explicit bin edges for range_mode global (binning.global_edges)", float, nargs="+"),
        },
        ("i_xt", "i_ty"),
        lambda s, n, widths: 6 * n * max(widths),
        help="plug-in entropy of binned activations, exact symbol counts",
        negative_tol=1e-5,
        label_conditional=True,
        finalize=_binning_finalize,
        warnings={
            "warn_outside_range": "activations outside value_range were clipped into the edge bins "
            "(the IDNNs convention that hid ReLU information; use --bin-size)"
        },
    )
)


# ---------------------------------------------------------------- KDE


def _kde(t, d, key, x, y, *, noise_var, n_classes):
    """Both Kolchinsky-Tracey bounds; the d-dependent terms cancel in I, so padding is exact."""
    i_xt, i_ty = kde.info_plane(t, y, noise_var, bound="both", n_classes=n_classes)  # (upper, lower)
    return {"i_xt": i_xt[..., 0], "i_ty": i_ty[..., 0], "i_xt_lower": i_xt[..., 1], "i_ty_lower": i_ty[..., 1]}


register(
    Estimator(
        "kde",
        _kde,
        {"noise_var": Option(0.1, "noise variance of the Gaussian kernels", float, positive, traced=True)},
        ("i_xt", "i_ty", "i_xt_lower", "i_ty_lower"),
        lambda s, n, widths: 3 * _block(n) * n,
        help="Kolchinsky-Tracey pairwise-distance upper (i_xt, i_ty) and lower (*_lower) bounds",
        label_conditional=True,
    )
)


def mean_sq_distance(t_NxD):
    """The mean of ||t_i - t_j||^2 over all N^2 ordered pairs, in closed form: 2 x the total variance
    (zero-padded columns add nothing). The scale of ``kde_relative``'s kernels."""
    return 2.0 * jnp.sum(jnp.var(t_NxD, axis=-2), axis=-1)


def _kde_relative(t, d, key, x, y, *, scale, n_classes):
    """Kolchinsky-Tracey bounds with the kernel variance ``scale`` x the T's mean squared pairwise
    distance, so the estimate does not change when a layer's activations are multiplied by a constant
    and layers of different widths and scales are measured at the same relative resolution."""
    spread = mean_sq_distance(t)
    var = jnp.maximum(scale * spread, 1e-30)  # a constant T: every kernel on one point, I = 0
    return {
        **_kde(t, d, key, x, y, noise_var=var, n_classes=n_classes),
        "kernel_var": var,
        "warn_constant": spread == 0,
    }


register(
    Estimator(
        "kde_relative",
        _kde_relative,
        {
            "scale": Option(
                0.01,
                "kernel variance as a fraction of the T's mean squared pairwise distance (2 x its total variance)",
                float,
                positive,
                traced=True,
            )
        },
        ("i_xt", "i_ty", "i_xt_lower", "i_ty_lower", "kernel_var"),
        lambda s, n, widths: 3 * _block(n) * n,
        help="Kolchinsky-Tracey bounds, kernel variance relative to each (epoch, T)'s spread (recorded as kernel_var)",
        label_conditional=True,
        warnings={"warn_constant": "a T was constant over the samples (every pairwise distance 0): I = 0 there"},
    )
)


# ---------------------------------------------------------------- kNN (KSG)


def label_mi(t, y, *, k, metric, n_classes, ties="cell"):
    """KSG I(T;Y) for integer labels: Y as one-hot codes scaled beyond T's diameter, so every joint
    k-NN ball stays inside one class and KSG reduces to Ross's (2014) discrete-continuous estimator."""
    scale = 2.0 * jnp.sqrt(t.shape[-1]) * (jnp.max(t) - jnp.min(t)) + 1.0
    return knn.mi(t, scale * jax.nn.one_hot(y, n_classes), k=k, metric=metric, ties=ties)


def _knn(t, d, key, x, y, *, k, metric, ties, n_classes):
    i_ty = label_mi(t, y, k=k, metric=metric, n_classes=n_classes, ties=ties)
    return {"i_xt": knn.mi(x, t, k=k, metric=metric, ties=ties), "i_ty": i_ty}


def _check_k(name, v, ctx: Context):
    integer_at_least(1)(name, v)
    if v >= ctx.n:
        raise ValueError(f"estimator option k must be < the {ctx.n} samples, got {v}")


register(
    Estimator(
        "knn",
        _knn,
        {
            "k": Option(3, "neighbours for KSG", int, _check_k),
            "metric": Option("chebyshev", "chebyshev or euclidean", str, one_of("chebyshev", "euclidean")),
            "ties": Option(
                "cell",
                "cell: a point whose k-th neighbour distance is 0 or tied counts as a cell of the sample (plug-in); "
                "ksg: the earlier rule, which reads ties as information",
                str,
                one_of("cell", "ksg"),
            ),
        },
        ("i_xt", "i_ty"),
        lambda s, n, widths: 8 * _block(n) * n,
        help="KSG-1 I(X;T) with ties as cells of the empirical distribution (ibjax.estimators.knn); I(T;Y) by "
        "Ross's discrete-continuous rule",
        negative_tol=0.25,
    )
)


# ---------------------------------------------------------------- EDGE


def _edge_columns(n: int, width: int) -> int:
    """Columns EDGE hashes: a layer wider than floor(log2(N / 10)) is projected down to that many."""
    return max(1, min(width, int(math.log2(max(n / 10, 2)))))


def _edge_keys(a, b, key, n_keys, **kwargs):
    if n_keys == 1:
        i = edge.mi(a, b, key=key, **kwargs)
        return i, jnp.zeros_like(i)
    return edge.mi_keys(a, b, key=key, n_keys=n_keys, **kwargs)


def _edge(t, d, key, x, y, *, U, L, n_keys, variant, U_ty, gamma_x, gamma_t_xt, gamma_t_ty, gamma_y, epsilon_ty):
    """Mean and standard error over n_keys p-stable projection keys (one vmapped call each); I(X;T) and
    I(T;Y) each with its own cap, gamma pair and (I(T;Y)) manual bandwidth."""
    k1, k2 = jax.random.split(key)
    i_xt, i_xt_se = _edge_keys(x, t, k1, n_keys, U=U, L=L, gamma=(gamma_x, gamma_t_xt), version=variant)
    eps = None if epsilon_ty is None else (epsilon_ty, epsilon_ty)
    i_ty, i_ty_se = _edge_keys(
        t, y.astype(jnp.float32), k2, n_keys, U=U_ty, L=L, gamma=(gamma_t_ty, gamma_y), epsilon=eps, version=variant
    )
    d_t = t.shape[-1]
    return {
        "i_xt": i_xt,
        "i_ty": i_ty,
        "i_xt_se": i_xt_se,
        "i_ty_se": i_ty_se,
        "warn_near_cap": (i_xt >= 0.95 * U) | (i_ty >= 0.95 * U_ty),
        "warn_scale": edge.scale_outside(t, edge.auto_hashing(variant, x.shape[-1], d_t))
        | edge.scale_outside(t, edge.auto_hashing(variant, d_t, 1), knn_bandwidth=epsilon_ty is None),
    }


# Noshad et al.'s information-plane study (information_plane/main.py): EDGE 4.2.0, I(X;T) = EDGE(X, T, U=20,
# gamma=[0.2, g_l]), I(T;Y) = EDGE(Y, T, U=10, gamma=[1e-4, g'_l], epsilon=[0.2, 0.2]); g_l = 0.8, 1.0, 1.2, 1.8
# and g'_l = 0.4, 0.5, 0.6, 0.8 for hidden layers 1-4 (per layer: pass gamma_t_xt / gamma_t_ty per T)
EDGE_STUDY = {"U": 20.0, "U_ty": 10.0, "gamma_x": 0.2, "gamma_y": 1e-4, "epsilon_ty": 0.2}
EDGE_STUDY_GAMMA_T = {"gamma_t_xt": (0.8, 1.0, 1.2, 1.8), "gamma_t_ty": (0.4, 0.5, 0.6, 0.8)}


def _edge_finalize(s, ctx, given):
    """variant 4.2.0: the study's settings for every option not given; U_ty defaults to U."""
    if s["variant"] == "4.2.0":
        s.update({k: v for k, v in EDGE_STUDY.items() if k not in given})
    if s["U_ty"] is None:
        s["U_ty"] = s["U"]
    return s


register(
    Estimator(
        "edge",
        _edge,
        {
            "U": Option(10.0, "cap on the pointwise terms (of I(X;T), and of I(T;Y) unless --U-ty)", float, positive),
            "L": Option(10, "ensemble size", int, integer_at_least(1)),
            "n_keys": Option(
                32, "p-stable projection keys averaged (standard error in *_se; 1: one key)", int, integer_at_least(1)
            ),
            "variant": Option(
                "4.4.1",
                "EDGE release: 4.4.1 (defaults) or 4.2.0 (Noshad et al.'s information-plane study; "
                "its U 20 / U_ty 10, gamma_x 0.2, gamma_y 1e-4, epsilon_ty 0.2 unless given)",
                str,
                one_of(*edge.VERSIONS),
            ),
            "U_ty": Option(None, "cap on the pointwise terms of I(T;Y) (default: U)", float, positive),
            "gamma_x": Option(1.0, "smoothness gamma of X in I(X;T)", float, positive),
            "gamma_t_xt": Option(1.0, "smoothness gamma of T in I(X;T)", float, positive),
            "gamma_t_ty": Option(1.0, "smoothness gamma of T in I(T;Y)", float, positive),
            "gamma_y": Option(1.0, "smoothness gamma of the labels in I(T;Y)", float, positive),
            "epsilon_ty": Option(None, "manual bandwidth of both sides of I(T;Y) (default: k-NN)", float, positive),
        },
        ("i_xt", "i_ty", "i_xt_se", "i_ty_se"),
        lambda s, n, widths: (
            8 * n * max(widths) + 64 * n * _edge_columns(n, max(widths)) * s.get("L", 10) * s.get("n_keys", 1)
        ),
        help="EDGE hash dependence-graph estimator (4.4.1, or 4.2.0 as Noshad et al.'s study ran it), mean over "
        "projection keys (standard errors in *_se)",
        pad_exact=False,
        negative_tol=1e-4,
        finalize=_edge_finalize,
        warnings={
            "warn_near_cap": "EDGE estimate within 5% of its cap U (or U_ty): the pointwise terms are clipped, "
            "raise --U / --U-ty",
            "warn_scale": "the layer's median column std is outside the range where EDGE's absolute constants "
            "hold (edge.SAFE_STD): the estimate can be far from its scale-free value; standardise the layer",
        },
    )
)


# ---------------------------------------------------------------- HSIC


def _hsic(t, d, key, x, y, *, normalized, n_classes):
    y_1hot = jax.nn.one_hot(y, max(n_classes, 2))
    return {"i_xt": hsic.hsic(x, t, normalized=normalized), "i_ty": hsic.hsic(t, y_1hot, normalized=normalized)}


def _hsic_finalize(s, ctx: Context, given):
    if ctx.n_classes < 2:
        raise ValueError(
            f"y holds {ctx.n_classes} class: HSIC with the labels needs at least 2 classes (got {ctx.n_classes})"
        )
    return {**s, "normalized": bool(s["normalized"])}


register(
    Estimator(
        "hsic",
        _hsic,
        {"normalized": Option(True, "1: normalised HSIC in [0, 1]; 0: raw", int)},
        ("i_xt", "i_ty"),
        lambda s, n, widths: 4 * _block(n) * n,
        help="Hilbert-Schmidt independence criterion (a dependence, not bits)",
        units="HSIC",
        finalize=_hsic_finalize,
    )
)


# ---------------------------------------------------------------- Goldfeld smoothed entropy (noisy networks)


def _smoothed(sample_s, key, y, *, sigma, n_c, n_mc, n_mc_cond):
    p = noisy.info_plane(sample_s, y, sigma, key, n_c=n_c, n_mc=n_mc, n_mc_cond=n_mc_cond)
    return {"i_xt": p.i_xt, "i_ty": p.i_ty, "i_xt_se": p.i_xt_se, "i_ty_se": p.i_ty_se}


def _smoothed_finalize(s, ctx: Context, given):
    if s["sigma"] is None:
        run_sigma = ((ctx.run_config or {}).get("train") or {}).get("noise_sigma", 0.0)
        if not run_sigma:
            raise ValueError(
                "estimator smoothed needs sigma: the run was trained without noise "
                "(train.noise_sigma = 0); pass --sigma (option sigma) to smooth a deterministic network"
            )
        s["sigma"] = float(run_sigma)
    return s


register(
    Estimator(
        "smoothed",
        _smoothed,
        {
            "sigma": Option(
                None, "noise std of T = S + Z (default: the run's train.noise_sigma)", float, positive, traced=True
            ),
            "n_c": Option(16, "noisy passes per input for the conditional terms", int, integer_at_least(1)),
            "n_mc": Option(1, "noise draws per centre for h(T) and I(T;Y)", int, integer_at_least(1)),
            "n_mc_cond": Option(
                None,
                "noise draws per centre of each input's conditional mixture (default: n_mc)",
                int,
                integer_at_least(1),
            ),
        },
        ("i_xt", "i_ty", "i_xt_se", "i_ty_se"),
        lambda s, n, widths: (
            4 * _block(n * s.get("n_mc", 1)) * n
            + (s.get("n_c", 1) + 1) * 4 * n * s.get("n_mc", 1) * sum(widths) // max(len(widths), 1)
        ),
        help="Goldfeld et al. sample propagation on the noisy network (standard errors in *_se)",
        noisy=True,
        negative_tol=None,
        finalize=_smoothed_finalize,
    )
)


# ---------------------------------------------------------------- matrix-based Rényi entropy

from ibjax.estimators import renyi  # noqa: E402


def _renyi(t, d, key, x, y, *, alpha, gamma, width, k, subset, n_subsets, subset_seed):
    """Exact on all N rows when subset is 0 (standard errors 0), else the mean over random subsets
    drawn from a fixed key (``subset_seed``): every epoch and layer sees the same subsets (paired)."""
    if subset == 0 or subset >= t.shape[0]:
        i_xt, i_ty = renyi.info_plane_bits(t, x, y, alpha, gamma, d, width=width, k=k)
        return {"i_xt": i_xt, "i_ty": i_ty, "i_xt_se": jnp.zeros_like(i_xt), "i_ty_se": jnp.zeros_like(i_ty)}
    i_xt, i_xt_se, i_ty, i_ty_se = renyi.info_plane_subsets_bits(
        t, x, y, jax.random.key(subset_seed), alpha, gamma, d, width=width, k=k, subset=subset, n_subsets=n_subsets
    )
    return {"i_xt": i_xt, "i_ty": i_ty, "i_xt_se": i_xt_se, "i_ty_se": i_ty_se}


def _renyi_finalize(s, ctx: Context, given):
    integer_at_least(0)("subset", s["subset"])
    rows = ctx.n if s["subset"] == 0 else min(s["subset"], ctx.n)
    if s["subset"] == 1:
        raise ValueError("estimator option subset must be 0 (all rows) or >= 2, got 1")
    if s["k"] >= rows:
        raise ValueError(f"estimator option k must be < the {rows} rows per estimate, got {s['k']}")
    return s


def _renyi_memory(s, n, widths):
    m = n if s.get("subset", 0) in (0, None) else min(s["subset"], n)
    return 4 * m * (8 * m + max(widths))  # ~8 M x M float32 (distances, Grams, 3 eigen problems)


register(
    Estimator(
        "renyi",
        _renyi,
        {
            "alpha": Option(1.01, "Rényi order alpha (1: von Neumann)", float, positive, traced=True),
            "gamma": Option(1.0, "multiplier of the kernel width rule", float, positive, traced=True),
            "width": Option("silverman", "kernel width rule: silverman or knn", str, one_of(*renyi.WIDTHS)),
            "k": Option(10, "neighbour for --width knn", int, integer_at_least(1)),
            "subset": Option(512, "rows per random subset (0: all N rows, exact; ~25 s per layer at N = 4096)", int),
            "n_subsets": Option(4, "random subsets averaged (standard error in *_se)", int, integer_at_least(1)),
            "subset_seed": Option(
                0, "key of the subset draws (the same subsets for every epoch and layer)", int, integer_at_least(0)
            ),
        },
        ("i_xt", "i_ty", "i_xt_se", "i_ty_se"),
        _renyi_memory,
        help="matrix-based Rényi alpha-entropy (Giraldo et al.; Yu et al.), Gaussian kernels, labels by the delta "
        "kernel; mean over random subsets (standard errors in *_se)",
        negative_tol=1e-3,
        finalize=_renyi_finalize,
        shard=False,
    )
)


# ---------------------------------------------------------------- exact counting (quantized networks)

from ibjax.estimators import exact  # noqa: E402 - kept beside its entry (adapters.py is edited in sections)


def _exact(t, d, key, x, y, *, levels):
    """Codes = each value's rank among the layer's distinct values (padding copies column 0, so it
    adds none); more than ``levels`` distinct values: not quantized, NaN (refused by the engine)."""
    live = (jnp.arange(t.shape[-1]) < d)[None, :]
    codes, n_distinct = exact.dense_codes_NxD(jnp.where(live, t, t[:, :1]))
    _, i_xt, i_ty = exact.plane_NxD(codes, y, None if x is None else exact.input_ids_N(x))
    continuous = n_distinct > levels
    return {
        "i_xt": jnp.where(continuous, jnp.nan, i_xt) / jnp.log(2.0),
        "i_ty": jnp.where(continuous, jnp.nan, i_ty) / jnp.log(2.0),
        "warn_not_quantized": continuous,
    }


def _exact_finalize(s, ctx: Context, given):
    if s["levels"] is None:
        if ctx.run_config is None:
            raise ValueError(
                "estimator exact needs option levels (2**bits of the quantized network) when evaluating "
                "arrays without a run config"
            )
        model = ctx.run_config.get("model") or {}
        bits = model.get("quant_bits", 0)
        if not bits:
            raise ValueError(
                f"estimator exact counts the codes of a quantized network, but this run's model has "
                f"quant_bits={bits} (float activations); train with model.quant_bits in (2, 4, 8), or "
                "use an estimator for continuous activations (binning, kde, ...)"
            )
        s["levels"] = 2 ** int(bits)
        if model.get("quant_range", "fixed") == "minmax":  # the output: softmax of C quantized logits
            s["levels"] = min(s["levels"] ** max(ctx.n_classes, 2), 2**31 - 1)
    return s


register(
    Estimator(
        "exact",
        _exact,
        {
            "levels": Option(
                None,
                "quantization levels per layer (default: 2**model.quant_bits of the run; (2**bits)**classes "
                "for quant_range minmax, whose output is the softmax of quantized logits)",
                int,
                integer_at_least(2),
            )
        },
        ("i_xt", "i_ty"),
        lambda s, n, widths: 16 * n * (max(widths) + 2),
        help="exact plane of a quantized network: distinct codes counted (I(X;T) = H(T) - H(T|X)), no bins, no noise",
        negative_tol=1e-5,
        label_conditional=True,
        finalize=_exact_finalize,
        warnings={
            "warn_not_quantized": "a layer takes more distinct values than levels: not a quantized network "
            "(exact counting refuses continuous activations)"
        },
    )
)
