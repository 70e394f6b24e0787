"""EDGE: ensemble dependency-graph mutual information (Noshad, Zeng & Hero 2019), vectorised.

Semantics follow the authors' public EDGE 4.4.1 (``EDGE(X, Y, U=10, gamma=[1, 1], epsilon=[0, 0],
epsilon_vector='range', eps_range_factor=0.1, normalize_epsilon=True, ensemble_estimation='median',
L_ensemble=10, hashing='p-stable', stochastic=False)``):

* hashing: if both inputs have <= 6 columns, floor hashing of the raw coordinates; otherwise p-stable
  projections XW, YV with d' = min(d, floor(log2(N / 10))) columns, W_ij ~ N(0, 1 / (std(X_i)^2 d)).
* bandwidth per projected column: mean distance to the k-th nearest neighbour (itself included),
  k = floor(0.43 N^(2/3 + 0.17 d'/(d'+1)) exp(-1 / max(10^4, d'^4))), plus 1e-4, times
  c = 18 d' / max(1 + ln d, 1) and 0.4 gamma. (The original averages over a random sample of 500
  points; here over 512 points at evenly spaced ranks, deterministic: measured within 0.2% of the
  mean over all points, whereas the original's 500-point random sample is up to 6% off.) A manual
  ``epsilon`` replaces the k-NN distance and uses c = 15 d' / max(1 + ln d, 1).
* ensemble j = 0..L-1: bandwidth eps * T_j, T = linspace(1, 1 + eps_range_factor, L) ('range') or 1
  ('fixed'); shift b_j = (j / L) * eps * T_j; bucket = floor((XW + b_j) / (eps T_j)).
* per cell: N_ij * clip(log2(N_ij N / (N_i M_j)), 0.001, U), summed and divided by N; the L values
  combined by median or mean.
* one-step normalisation: gamma <- 0.4 gamma 2^(-sqrt(2 I) + 0.5 / I), then everything once more.

``version='4.2.0'`` is the EDGE_4_2_0.py of the authors' information-plane study (information_plane/
main.py in their repository): p-stable hashing whatever the dimension ('auto' never picks floor), the
bandwidth factor c = 3 d' for the k-NN and the manual bandwidth alike, no 0.4 factors, and the
normalisation gamma <- gamma 2^(-sqrt(2 I) + 0.5 / I). Everything else (projections, k, buckets,
shifts, clipping, ensemble) is shared; tests/test_edge.py checks it against the unmodified original
in distribution over projection keys (tests/data/edge420/).

Projection keys: with p-stable hashing one key is one random projection, and the estimate varies
with it: over 40 keys at N = 4096 (var_u inputs, a tanh layer of width 10), I(T;Y) ~ 0.19 bits has
a 27% relative spread, I(X;T) ~ 9.7 bits 1.5% (width 7: 25% and 4%). ``mi_keys`` averages K keys in
one vmapped call and reports the standard error, which shrinks as 1 / sqrt(K) (tests/test_edge.py);
the registry entry's default K = 32 brings a low I(T;Y) to ~5% standard error, at 32x the cost.

Buckets without dictionaries or loops over samples: each row's integer bucket coordinates become one
uint32 (the exact mixed-radix code, or a 32-bit hash for very large grids, see ``cell_code``), rows
get dense cell ids by sort + searchsorted, and joint cells are runs of the sorted joint ids (uint32
sorts are XLA:CPU's fast path; multi-operand sorts are ~10x slower). U and the clipping are in bits,
as in the original; the result is converted to ``base`` at the end. ``hashing='auto'`` is the
original's rule; 'floor' / 'p-stable' force one (the original forces floor when both d <= 6).

What to expect (N = 4096; tests/test_edge.py): independent inputs give < 0.05 bits for continuous
x, y with d <= 2 and for a 10-d layer against independent labels (the I(T;Y) use); I(X;X) on
discrete X is the sample's plug-in entropy (12 bits for the 4096 distinct 12-bit patterns; 11.18 for
4096 iid draws of 12 random bits, which hold only ~2,600 patterns; 11.95 for 65,536 draws). Known
behaviour of the original defaults, reproduced here: on independent continuous x and y both with
d >= 3 the estimate is far from 0 (p-stable buckets become nearly singletons: ~9 bits at d = 10;
the original gives 8.8).

Scale: the original's absolute constants (1e-4 added to the k-NN bandwidth, the 1e-4 std floor of
the projections) and float32 make EDGE scale-free only within a range of column spreads; ``mi`` and
``mi_keys`` warn when concrete x or y have a median column std outside ``SAFE_STD`` (floor hashing
[0.15, 1e30], p-stable [1e-3, 1e15], measured: a bijective layer scaled by 1e-6 gives 0.001 bits
instead of 9.8). Traced inputs are not checked.
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ibjax import _checks

_ENSEMBLES = ("median", "mean")
_HASHINGS = ("auto", "floor", "p-stable")
_VECTORS = ("range", "fixed")
VERSIONS = ("4.4.1", "4.2.0")


def mi(
    x,
    y,
    *,
    U=10.0,
    gamma=(1.0, 1.0),
    L: int = 10,
    epsilon=None,
    epsilon_vector: str = "range",
    eps_range_factor=0.1,
    normalize_epsilon: bool = True,
    ensemble: str = "median",
    hashing: str = "auto",
    version: str = "4.4.1",
    key=None,
    base=2,
):
    """EDGE estimate of I(x; y) for samples x (N x d_x or N) and y (N x d_y or N); bits by default.

    ``hashing='auto'`` is the original's rule (4.4.1: floor if both d <= 6, else p-stable; 4.2.0: always
    p-stable); ``version`` picks the bandwidth and normalisation constants of EDGE 4.4.1 or 4.2.0 (module
    docstring); ``key`` draws the p-stable projections (default: a fixed key, so results are reproducible
    like the original's seed).
    """
    x_NxD = _checks.samples_2d("x", x)
    y_NxD = _checks.samples_2d("y", y)
    _checks.check_same_n("x", x_NxD, "y", y_NxD)
    _checks.check_positive("U", U)
    L = _checks.check_int("L", L, min_value=1)
    gamma = _pair("gamma", gamma)
    eps = None if epsilon is None else _pair("epsilon", epsilon)
    _checks.check_positive("eps_range_factor", eps_range_factor, allow_zero=True)
    _checks.check_choice("epsilon_vector", epsilon_vector, _VECTORS)
    _checks.check_choice("ensemble", ensemble, _ENSEMBLES)
    _checks.check_choice("hashing", hashing, _HASHINGS)
    _checks.check_choice("version", version, VERSIONS)
    scale = _checks.log_base(base)
    if hashing == "auto":
        hashing = auto_hashing(version, x_NxD.shape[1], y_NxD.shape[1])
    for name, a in (("x", x_NxD), ("y", y_NxD)):
        _warn_scale(name, a, hashing, knn_bandwidth=eps is None)
    key = jax.random.key(0) if key is None else key
    i_bits = _mi_bits(
        x_NxD,
        y_NxD,
        U,
        gamma,
        eps,
        key,
        eps_range_factor,
        L=L,
        range_vector=epsilon_vector == "range",
        normalize=bool(normalize_epsilon),
        ensemble=ensemble,
        hashing=hashing,
        version=version,
    )
    _warn_near_u(i_bits, U)
    return i_bits * (math.log(2.0) / scale)


def mi_keys(x, y, *, key, n_keys: int = 8, **kwargs):
    """(mean, standard error) of ``mi`` over ``n_keys`` p-stable projection keys split from ``key``,
    in one vmapped call. The keys only matter for p-stable hashing (floor hashing is deterministic:
    every key gives the same value, standard error 0). Other keyword arguments as for ``mi``."""
    n_keys = _checks.check_int("n_keys", n_keys, min_value=2)
    keys = jax.random.split(key, n_keys)
    i_K = jax.vmap(lambda k: mi(x, y, key=k, **kwargs))(keys)
    return jnp.mean(i_K), jnp.std(i_K, ddof=1) / math.sqrt(n_keys)


def _pair(name, v):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(v) != 2:
        raise ValueError(f"{name} must be a number or a pair (for x, for y), got {v!r}")
    _checks.check_positive(name, v)
    return v


# Median column std (non-constant columns) within which the absolute constants leave the estimate within
# 1% of its scale-free value, measured on bijective and dependent pairs rescaled by 1e-10 .. 1e36 (N = 1024,
# 4096, 16384). Floor hashing adds 1e-4 to the k-NN bandwidth: -1.0% at std 0.13, -4.8% at 0.11, -41% at
# 0.007 (2-d Gaussian, 3-d tanh, 5-d tanh layers); no change up to 1e36. p-stable projections standardise
# each column unless its std < 1e-4 (no change at std 6.5e-4, 0.001 bits at 6.5e-5) and overflow float32
# in the std's sum of N squares (no change at std 6.5e16, 0.001 bits at 6.5e17, N = 4096).
SAFE_STD = {"floor": (0.15, 1e30), "p-stable": (1e-3, 1e15)}


def auto_hashing(version: str, d_x: int, d_y: int) -> str:
    """The hashing ``hashing="auto"`` picks: floor for 4.4.1 on <= 6 dimensions, else p-stable."""
    return "floor" if version == "4.4.1" and max(d_x, d_y) <= 6 else "p-stable"


def scale_outside(a_NxD, hashing: str, *, knn_bandwidth: bool = True):
    """Traced: whether the median column std of ``a_NxD`` (non-constant columns) lies outside
    ``SAFE_STD`` for ``hashing``; the engine records it as a per-(epoch, T) warning flag."""
    std_D = jnp.std(jnp.asarray(a_NxD, jnp.float32), axis=0)
    med = jnp.nanmedian(jnp.where(std_D > 0, std_D, jnp.nan))
    lo, hi = SAFE_STD[hashing]
    lo = lo if knn_bandwidth or hashing == "p-stable" else 0.0
    return jnp.isfinite(med) & ((med < lo) | (med > hi))


def _warn_scale(name, a_NxD, hashing, *, knn_bandwidth: bool) -> None:
    """Warn when concrete samples' median column std lies outside ``SAFE_STD`` for the hashing used."""
    if _checks.is_traced(a_NxD):
        return
    std_D = np.std(np.asarray(a_NxD, np.float64), axis=0)
    std_D = std_D[std_D > 0]
    if std_D.size == 0:
        return
    med = float(np.median(std_D))
    lo, hi = SAFE_STD[hashing]
    lo = lo if knn_bandwidth or hashing == "p-stable" else 0.0  # a manual floor epsilon has no absolute part
    if not lo <= med <= hi:
        warnings.warn(
            f"EDGE ({hashing} hashing): the median column std of {name} is {med:.3g}, outside [{lo:g}, {hi:g}], "
            "the range where the estimator's absolute constants (1e-4 added to the k-NN bandwidth, the 1e-4 std "
            "floor of the projections, float32 range) keep the estimate within 1% of its scale-free value; "
            f"standardise {name} (per column: (a - mean) / std) before calling EDGE",
            stacklevel=3,
        )


def _warn_near_u(i_bits, U) -> None:
    if _checks.is_traced(i_bits) or _checks.is_traced(U):
        return
    if np.any(np.asarray(i_bits) >= 0.95 * np.asarray(U)):
        warnings.warn(
            f"EDGE estimate {float(np.max(i_bits)):.4g} bits is within 5% of U={U}: "
            "the pointwise terms are clipped at U, raise U",
            stacklevel=3,
        )


def knn_k(n: int, d: int) -> int:
    """The original's neighbour count for bandwidth selection (N samples, d projected columns)."""
    k = math.floor(0.43 * n ** (2 / 3 + 0.17 * d / (d + 1)) * math.exp(-1.0 / max(10000, d**4)))
    return min(max(k, 1), n)


def knn_distance_1d(v_N, k: int, *, n_query: int = 512):
    """Mean distance to the k-th nearest neighbour (self included) of ``n_query`` points at evenly
    spaced ranks (all points when N <= n_query), in 1-D.

    For the sorted v, the k nearest points of v_i are a window v_a .. v_{a+k-1}; the window radius
    max(v_i - v_a, v_{a+k-1} - v_i) is unimodal in a, minimal where v_a + v_{a+k-1} crosses 2 v_i.
    """
    v_N = _from_sortable(jnp.sort(_sortable(v_N)))
    n = v_N.shape[0]
    q_Q = v_N if n <= n_query else v_N[(np.arange(n_query) * n + n // 2) // n_query]
    w_A = v_N[: n - k + 1] + v_N[k - 1 :]  # nondecreasing in a
    a_Q = jnp.searchsorted(_sortable(w_A), _sortable(2.0 * q_Q), side="left", method="scan")

    def radius(a_Q):
        a_Q = jnp.clip(a_Q, 0, n - k)
        return jnp.maximum(q_Q - v_N[a_Q], v_N[a_Q + k - 1] - q_Q)

    return jnp.mean(jnp.minimum(radius(a_Q), radius(a_Q - 1)))


def _sortable(f):
    """float32 -> uint32 with the same order (uint32 sorts and searches are XLA:CPU's fast path)."""
    b = jax.lax.bitcast_convert_type(f.astype(jnp.float32), jnp.uint32)
    return jnp.where(b >> 31 == 1, ~b, b | jnp.uint32(0x80000000))


def _from_sortable(u):
    return jax.lax.bitcast_convert_type(jnp.where(u >> 31 == 1, u & jnp.uint32(0x7FFFFFFF), ~u), jnp.float32)


def _fmix(h):
    """MurmurHash3's 32-bit finaliser: a bijection of uint32 that mixes every bit into every bit."""
    for shift, mult in ((16, 0x85EBCA6B), (13, 0xC2B2AE35)):
        h = (h ^ (h >> shift)) * jnp.uint32(mult)
    return h ^ (h >> 16)


def _row_hash(c_NxD):
    """32-bit hash of each row of int32 words: fmix(sum_d fmix(c_d * k_d + d)), all columns at once."""
    k_D = jnp.asarray(2 * np.arange(c_NxD.shape[1], dtype=np.uint32) * 0x9E3779B1 + 0x27D4EB2F, jnp.uint32)
    words = c_NxD.astype(jnp.uint32) * k_D[None, :] + jnp.arange(c_NxD.shape[1], dtype=jnp.uint32)[None, :]
    return _fmix(jnp.sum(_fmix(words), axis=1, dtype=jnp.uint32))


def cell_code(c_NxD):
    """One uint32 per row of integer bucket coordinates: the exact mixed-radix code when the bucket
    grid has < 2^31.9 cells, else a 32-bit hash of the row (distinct cells then collide with
    probability ~ cells^2 / 2^33, merging two cells' counts)."""
    rel_NxD = (c_NxD - jnp.min(c_NxD, axis=0, keepdims=True)).astype(jnp.uint32)
    if c_NxD.shape[1] == 1:
        return rel_NxD[:, 0]
    r_D = jnp.max(rel_NxD, axis=0) + jnp.uint32(1)
    stride_D = jnp.concatenate([jnp.ones((1,), jnp.uint32), jnp.cumprod(r_D[:-1], dtype=jnp.uint32)])
    radix_N = jnp.sum(rel_NxD * stride_D[None, :], axis=1, dtype=jnp.uint32)
    fits = jnp.sum(jnp.log2(r_D.astype(jnp.float32))) < 31.9
    return jnp.where(fits, radix_N, _row_hash(c_NxD))


def _dense_ids(code_N):
    """Per row, the index of its code's first occurrence in sorted order (equal codes, equal ids)."""
    return jnp.searchsorted(jnp.sort(code_N), code_N, side="left", method="scan_unrolled").astype(jnp.int32)


def _run_lengths(new_N):
    """Per element of a sorted array with run starts ``new_N``, the length of its run."""
    seg_N = jnp.cumsum(new_N.astype(jnp.int32)) - 1
    return jax.ops.segment_sum(jnp.ones_like(seg_N), seg_N, num_segments=new_N.shape[0])[seg_N]


def _buckets(a_NxD, eps_D, shift):
    c = jnp.floor((a_NxD + shift * eps_D[None, :]) / eps_D[None, :])
    return jnp.clip(c, -(2.0**30), 2.0**30).astype(jnp.int32)


def _hash_mi(xw_NxD, yv_NxE, eps_x_D, eps_y_E, shift, U):
    """One base estimator (bits): mean over rows of clip(log2(N N_ij / (N_i M_j)), 0.001, U).

    Rows get dense x and y cell ids; sorting the joint id makes every joint cell a run of equal
    values, whose length is N_ij, and whose ids index the x and y cell sizes."""
    n = xw_NxD.shape[0]
    id_x = _dense_ids(cell_code(_buckets(xw_NxD, eps_x_D, shift)))
    id_y = _dense_ids(cell_code(_buckets(yv_NxE, eps_y_E, shift)))
    if n <= 65535:
        joint = jnp.sort(id_x.astype(jnp.uint32) * jnp.uint32(n) + id_y.astype(jnp.uint32))
        sx, sy = (joint // jnp.uint32(n)).astype(jnp.int32), (joint % jnp.uint32(n)).astype(jnp.int32)
    else:
        sx, sy = jax.lax.sort((id_x, id_y), num_keys=2)
    new = jnp.concatenate([jnp.ones((1,), bool), (sx[1:] != sx[:-1]) | (sy[1:] != sy[:-1])])
    ones = jnp.ones((n,), jnp.int32)
    n_i = jax.ops.segment_sum(ones, id_x, num_segments=n)[sx].astype(jnp.float32)
    m_j = jax.ops.segment_sum(ones, id_y, num_segments=n)[sy].astype(jnp.float32)
    n_ij = _run_lengths(new).astype(jnp.float32)
    return jnp.mean(jnp.clip(jnp.log2(n_ij * n / (n_i * m_j)), 0.001, U))  # = sum_cells N_ij clip(.) / N


def _ensemble(xw, yv, eps_x, eps_y, U, t_L, shift_L, ensemble):
    # The L members run one after another (lax.map, not vmap): under the usual vmap over epochs x
    # layers each step's arrays then stay in cache (N = 4096, batch 64: 8.4 instead of 11.6 ms per
    # item on 2 CPU cores); a lone unbatched call is slower this way (15 instead of 10 ms).
    i_L = jax.lax.map(lambda tb: _hash_mi(xw, yv, eps_x * tb[0], eps_y * tb[0], tb[1], U), (t_L, shift_L))
    return jnp.median(i_L) if ensemble == "median" else jnp.mean(i_L)


@partial(jax.jit, static_argnames=("L", "range_vector", "normalize", "ensemble", "hashing", "version"))
def _mi_bits(
    x_NxD,
    y_NxE,
    U,
    gamma,
    eps,
    key,
    eps_range_factor,
    *,
    L,
    range_vector,
    normalize,
    ensemble,
    hashing,
    version="4.4.1",
):
    x_NxD, y_NxE = jnp.asarray(x_NxD, jnp.float32), jnp.asarray(y_NxE, jnp.float32)
    n, d_x, d_y = x_NxD.shape[0], x_NxD.shape[1], y_NxE.shape[1]
    if hashing == "p-stable":
        d_shrink = max(1, math.floor(math.log2(n / 10))) if n > 10 else 1
        x_NxD, y_NxE = _project(x_NxD, y_NxE, key, min(d_x, d_shrink), min(d_y, d_shrink))
    eps_x, eps_y = (
        _bandwidth(a, d, g, e, version)
        for a, d, g, e in (
            (x_NxD, d_x, gamma[0], None if eps is None else eps[0]),
            (y_NxE, d_y, gamma[1], None if eps is None else eps[1]),
        )
    )
    t_L = jnp.linspace(1.0, 1.0 + eps_range_factor, L) if range_vector else jnp.ones((L,))
    shift_L = jnp.arange(L, dtype=jnp.float32) / L

    i = _ensemble(x_NxD, y_NxE, eps_x, eps_y, U, t_L, shift_L, ensemble)
    if normalize:  # the one-step gamma normalisation (unrolled: pass 1 stays unbatched in a shared x)
        factor = (0.4 if version == "4.4.1" else 1.0) * 2.0 ** (-jnp.sqrt(2.0 * i) + 0.5 / i)
        i = _ensemble(x_NxD, y_NxE, eps_x * factor, eps_y * factor, U, t_L, shift_L, ensemble)
    return i


def _project(x_NxD, y_NxE, key, dx_out: int, dy_out: int):
    """p-stable projections XW, YV: W_ij ~ N(0, 1 / (std(X_i)^2 d)) (std < 1e-4 read as 1); one draw."""
    d_x, d_y = x_NxD.shape[1], y_NxE.shape[1]
    z = jax.random.normal(key, (d_x * dx_out + d_y * dy_out,), jnp.float32)

    def scaled(a_NxD, z_DxK):
        std_D = jnp.std(a_NxD, axis=0)
        std_D = jnp.where(std_D < 1e-4, 1.0, std_D)
        return a_NxD @ (z_DxK / (std_D[:, None] * math.sqrt(a_NxD.shape[1])))

    return (
        scaled(x_NxD, z[: d_x * dx_out].reshape(d_x, dx_out)),
        scaled(y_NxE, z[d_x * dx_out :].reshape(d_y, dy_out)),
    )


def _bandwidth(a_NxD, d_raw: int, gamma, eps_manual, version: str = "4.4.1"):
    """Per-column base bandwidth gamma * c * (k-NN distance or manual epsilon): 4.4.1 c = 0.4 * 18 d' /
    max(1 + ln d, 1) (15 for a manual epsilon), 4.2.0 c = 3 d' for both."""
    n, d = a_NxD.shape
    if eps_manual is None:
        k = knn_k(n, d)
        base_D = jax.vmap(lambda v: knn_distance_1d(v, k))(a_NxD.T) + 1e-4
    else:
        base_D = jnp.full((d,), eps_manual, jnp.float32)
    if version == "4.2.0":
        return base_D * (3.0 * d * gamma)
    c = (18.0 if eps_manual is None else 15.0) * d / max(1.0 + math.log(d_raw), 1.0)
    return base_D * (c * 0.4 * gamma)
