"""Plug-in entropy of discretised activations ("binning"), in the IDNNs and Saxe/ibsgd conventions.

Each row of ``t_NxD`` becomes a symbol of D integer bin codes:

* ``n_bins`` (Shwartz-Ziv & Tishby, IDNNs): edges ``linspace(lo, hi, n_bins)`` in float32 and a value
  maps to the left edge of its bin, i.e. ``np.digitize(t, edges) - 1``. Values below ``lo`` are
  clipped into the first bin and values ``>= hi`` land on the last edge (IDNNs wraps values below
  ``lo`` round to the last edge; we clip instead).
* ``bin_size`` (Saxe et al., ibsgd): ``floor(t / bin_size)``, an unbounded grid, coded exactly at any bin
  size: where a bin is narrower than half the float spacing each float is its own bin and is coded by its
  rank in bit order (``codes_bin_size``). Clipping the codes to +-2**30 instead collided them: a tanh layer
  of 4096 distinct rows at bin_size=1e-12 measured 6.09 bits where 12 are right. ``bin_size`` must be at
  least the smallest normal float of the activations' dtype (1.18e-38 in float32).

Range modes and spacings (Lorenzen et al. ICLR 2022 compared them), for ``n_bins`` only:

* ``range_mode``: ``"fixed"`` (default: ``value_range``), ``"layer"`` (min..max of the layer's
  values, per (epoch, layer)), ``"neuron"`` (min..max per unit), ``"global"`` (one set of edges for
  all layers and epochs: pass ``edges=global_edges(acts, n_bins=..., spacing=...)``, computed by the
  caller from every layer and epoch, since one (epoch, layer) call cannot see the others);
* ``spacing``: ``"uniform"`` (linspace edges, IDNNs left-edge codes as above) or ``"quantile"``
  (``n_bins`` equal-mass bins: edges at the k / n_bins quantiles of the values in the range's scope;
  a value's code is the number of inner edges <= it). Quantile spacing needs a data-derived range
  (layer, neuron, global).

Values outside a fixed range are clipped into the edge bins; ``entropy``/``info_plane`` warn when
they see it (the registry adapter reports it per (epoch, layer)): it is how early ReLU planes came
out at 4.35 instead of 11.63 bits.

Symbols are counted exactly: the codes of each row are packed, column by column, into as many
32-bit words as their data-dependent bit widths need, and rows are sorted lexicographically by
stable single-key sorts over those words (least significant first). Equal rows are then adjacent
and their runs are counted; no hashing, so no collision can change a count.

"X" is the set of N distinct inputs, so I(X;T) = H(T); I(T;Y) = H(T) + H(Y) - H(T,Y), which equals
H(T) - sum_y p(y) H(T|y), computed pointwise as H(Y) - H(Y|T) from one sort by (T, Y). Everything
is jittable and takes leading batch axes: ``t`` of shape (..., N, D), ``y`` of shape (..., N);
``bin_size`` may be traced or an array broadcasting against the leading axes (a sweep is one call).
``n_bins`` and ``value_range`` are static: they fix the edge table.
"""

from __future__ import annotations

import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ibjax import _checks
from ibjax.estimators._blocks import map_leading

_UNROLL_EDGES = 64
RANGE_MODES = ("fixed", "layer", "neuron", "global")
SPACINGS = ("uniform", "quantile")


def bin_edges(n_bins: int, value_range=(-1.0, 1.0)) -> np.ndarray:
    """IDNNs bin edges: ``linspace(lo, hi, n_bins)`` computed in float64, stored as float32."""
    return np.linspace(float(value_range[0]), float(value_range[1]), int(n_bins)).astype(np.float32)


def codes_n_bins(t, *, n_bins: int, value_range=(-1.0, 1.0)):
    """Index of the left edge of each value's bin, ``digitize(t, edges) - 1`` clipped to [0, n_bins - 1]."""
    edges = bin_edges(n_bins, value_range)
    if n_bins <= _UNROLL_EDGES:  # count edges <= t: one fused elementwise chain, no gathers
        return sum(((t >= e).astype(jnp.int32) for e in edges[1:]), jnp.zeros(t.shape, jnp.int32))
    edges_K = jnp.asarray(edges)
    guess = jnp.floor((t - edges[0]) * ((n_bins - 1) / (float(edges[-1]) - float(edges[0]))))
    i0 = jnp.clip(guess, 0, n_bins - 1).astype(jnp.int32)
    # The float guess can be one off near an edge: correct against the exact float32 edges.
    i1 = i0 - (t < edges_K[i0]).astype(jnp.int32)
    i2 = i1 + ((i1 + 1 <= n_bins - 1) & (t >= edges_K[jnp.minimum(i1 + 1, n_bins - 1)])).astype(jnp.int32)
    return jnp.clip(i2, 0, n_bins - 1)


def codes_bin_size(t, bin_size):
    """Exact codes of ``floor(t / bin_size)``: int32 (..., N, D), or (..., N, 2 D) words of int64 for float64.

    Below ``m = L * bin_size``, L = 2**(nmant + 2) (2**25 in float32), the code is ``floor(t / bin_size)``,
    an exact integer in [-L, L]. At ``|t| >= m`` a bin is narrower than half the float spacing, so each float
    is its own bin: the code is ``sign(t) * (L + 1 + bits(|t|) - bits(m))``, the float's rank in bit order,
    which fits the integer type at every bin size >= the dtype's smallest normal (smaller traced bin sizes
    act as it; the public functions reject them). No two bins share a code.
    """
    info = jnp.finfo(t.dtype)
    int_dtype = jnp.int32 if t.dtype.itemsize == 4 else jnp.int64
    limit = 2 ** (info.nmant + 2)
    b = jnp.maximum(jnp.asarray(bin_size, t.dtype), info.tiny)  # XLA flushes subnormals to zero
    m = b * limit
    grid = jnp.clip(jnp.floor(t / b), -limit, limit).astype(int_dtype)
    rank = lax.bitcast_convert_type(jnp.abs(t), int_dtype) - lax.bitcast_convert_type(m, int_dtype)
    codes = jnp.where(jnp.abs(t) >= m, jnp.sign(t).astype(int_dtype) * (rank + (limit + 1)), grid)
    if int_dtype == jnp.int32:
        return codes
    return lax.bitcast_convert_type(codes, jnp.int32).reshape(*codes.shape[:-1], -1)  # (hi, lo) word pairs


def _shifted_piece(u_N, shift):
    """The bits of ``u_N`` that land in a word when u's lowest bit sits ``shift`` bits above it."""
    s = jnp.clip(jnp.abs(shift), 0, 31).astype(jnp.uint32)
    piece = jnp.where(shift >= 0, jnp.left_shift(u_N, s), jnp.right_shift(u_N, s))
    return jnp.where(jnp.abs(shift) < 32, piece, jnp.uint32(0))


def lexsort_rows(codes_NxC):
    """Permutation sorting integer rows lexicographically (column 0 most significant), exactly.

    The rows' codes (shifted to start at 0) are concatenated bitwise with data-dependent widths and
    cut into words of ``32 - idx_bits`` bits; an LSD pass then sorts by each word, least significant
    first, with the current position packed into the low ``idx_bits`` bits of a single uint32 key,
    which makes every pass stable and lets XLA use its fast single-key sort.
    """
    n, n_cols = codes_NxC.shape
    idx_bits = max(1, (n - 1).bit_length())
    word_bits = 32 - idx_bits
    lo_1xC = jnp.min(codes_NxC, axis=0, keepdims=True).astype(jnp.uint32)
    range_C = jnp.max(codes_NxC, axis=0).astype(jnp.uint32) - lo_1xC[0]  # uint32: no overflow
    width_C = 32 - lax.clz(range_C).astype(jnp.int32)
    # Constant columns (width 0) go last, order otherwise kept: a word then overlaps at most
    # word_bits + 1 consecutive columns, so building one costs O(word_bits N), not O(C N).
    cols_C = jnp.argsort(width_C == 0, stable=True)
    width_C = width_C[cols_C]
    u_CxN = (codes_NxC.astype(jnp.uint32) - lo_1xC).T[cols_C]  # column-major: words reduce along N
    offset_C = jnp.cumsum(width_C[::-1])[::-1] - width_C  # bits to the right of each column
    n_words = jnp.maximum(1, -(-jnp.sum(width_C) // word_bits))
    pos_N = jnp.arange(n, dtype=jnp.uint32)
    span = min(n_cols, word_bits + 1)

    def word(k):
        first = jnp.sum(offset_C >= (k + 1) * word_bits)  # columns wholly above word k
        u_SxN = lax.dynamic_slice_in_dim(u_CxN, first, span)
        shift_Sx1 = lax.dynamic_slice_in_dim(offset_C - word_bits * k, first, span)[:, None]
        return jnp.sum(_shifted_piece(u_SxN, shift_Sx1), axis=0, dtype=jnp.uint32) & jnp.uint32((1 << word_bits) - 1)

    def step(k, perm_N):
        key_N = jnp.sort(jnp.left_shift(word(k)[perm_N], jnp.uint32(idx_bits)) | pos_N)
        return perm_N[(key_N & jnp.uint32((1 << idx_bits) - 1)).astype(jnp.int32)]

    return lax.fori_loop(0, n_words, step, jnp.arange(n, dtype=jnp.int32))


def _run_lengths(new_N):
    """Length of the run each element belongs to; ``new_N`` flags the first element of each run."""
    n = new_N.shape[0]
    idx_N = jnp.arange(n)
    start_N = lax.cummax(jnp.where(new_N, idx_N, 0))
    ends_here_N = jnp.concatenate([new_N[1:], jnp.array([True])])
    end_N = lax.cummin(jnp.where(ends_here_N, idx_N + 1, n), reverse=True)
    return (end_N - start_N).astype(jnp.float32)


def _mean(x_N):
    """Mean by pairwise summation (float32 error O(log N) ulp rather than O(N))."""
    n = x_N.shape[0]
    x = jnp.pad(x_N, (0, (1 << max(0, (n - 1).bit_length())) - n))
    while x.shape[0] > 1:
        x = x[0::2] + x[1::2]
    return x[0] / n


def _run_starts(sorted_NxC):
    diff_N = jnp.any(sorted_NxC[1:] != sorted_NxC[:-1], axis=1)
    return jnp.concatenate([jnp.array([True]), diff_N])


def _entropy_sorted(sorted_NxC):
    """Plug-in entropy (nats) of rows already sorted so that equal rows are adjacent."""
    n = sorted_NxC.shape[0]
    return _mean(jnp.log(n / _run_lengths(_run_starts(sorted_NxC))))


def label_entropy(y_N):
    """Plug-in entropy H(Y) of integer labels, in nats."""
    return _entropy_sorted(jnp.sort(y_N)[:, None])


def _masked_quantiles(v_M, count, probs_K):
    """Linear-interpolation quantiles of the first ``count`` of the sorted values ``v_M`` (the rest +inf)."""
    pos_K = jnp.asarray(probs_K, v_M.dtype) * (count - 1).astype(v_M.dtype)
    lo_K = jnp.floor(pos_K).astype(jnp.int32)
    hi_K = jnp.minimum(lo_K + 1, count - 1)
    frac_K = pos_K - lo_K.astype(v_M.dtype)
    return v_M[lo_K] + frac_K * (v_M[hi_K] - v_M[lo_K])


def _scope_edges(v_M, count, *, n_bins, spacing):
    """Edges (n_bins,) of one scope's values ``v_M`` sorted ascending, the first ``count`` live."""
    if spacing == "quantile":
        return _masked_quantiles(v_M, count, np.arange(n_bins) / n_bins)
    lo, hi = v_M[0], v_M[count - 1]
    return lo + (hi - lo) * jnp.asarray(np.linspace(0.0, 1.0, n_bins), v_M.dtype)


def codes_adaptive(t_NxD, live_D, *, n_bins, range_mode, spacing):
    """Codes 0..n_bins-1 with edges from the data: per layer (all live values) or per neuron; a
    value's code is the number of ``edges[1:]`` at or below it. Padded columns get code 0."""
    n, d = t_NxD.shape
    if range_mode == "layer":
        v_M = jnp.sort(jnp.where(live_D[None, :], t_NxD, jnp.inf).ravel())
        edges_K = _scope_edges(v_M, n * jnp.sum(live_D), n_bins=n_bins, spacing=spacing)
        codes_NxD = jnp.searchsorted(edges_K[1:], t_NxD, side="right").astype(jnp.int32)
    else:  # neuron: one set of edges per column
        v_DxN = jnp.sort(t_NxD.T, axis=1)
        edges_DxK = jax.vmap(lambda v: _scope_edges(v, jnp.int32(n), n_bins=n_bins, spacing=spacing))(v_DxN)
        codes_DxN = jax.vmap(lambda e, v: jnp.searchsorted(e[1:], v, side="right"))(edges_DxK, t_NxD.T)
        codes_NxD = codes_DxN.T.astype(jnp.int32)
    return jnp.where(live_D[None, :], codes_NxD, 0)


def codes_edges(t, edges):
    """Codes against explicit edges (a static tuple of n_bins values): the number of ``edges[1:]`` <= t."""
    return jnp.searchsorted(jnp.asarray(np.asarray(edges[1:], np.float32)), t, side="right").astype(jnp.int32)


def _codes(t_NxD, bin_size, d, n_bins, value_range, mode=("fixed", "uniform", None)):
    t_NxD = t_NxD.astype(jnp.promote_types(t_NxD.dtype, jnp.float32))
    range_mode, spacing, edges = mode
    if n_bins is None:
        return codes_bin_size(t_NxD, bin_size)
    if range_mode == "fixed":
        return codes_n_bins(t_NxD, n_bins=n_bins, value_range=value_range)
    if range_mode == "global":
        return codes_edges(t_NxD, edges)
    live_D = jnp.arange(t_NxD.shape[1]) < d
    return codes_adaptive(t_NxD, live_D, n_bins=n_bins, range_mode=range_mode, spacing=spacing)


def _entropy_NxD(t_NxD, bin_size, d, *, n_bins, value_range, mode):
    codes_NxD = _codes(t_NxD, bin_size, d, n_bins, value_range, mode)
    return _entropy_sorted(codes_NxD[lexsort_rows(codes_NxD)])


def _info_plane_NxD(t_NxD, y_N, bin_size, d, *, n_bins, value_range, mode):
    codes_NxD = _codes(t_NxD, bin_size, d, n_bins, value_range, mode)
    codes_NxC = jnp.concatenate([codes_NxD, y_N.astype(jnp.int32)[:, None]], axis=1)
    sorted_NxC = codes_NxC[lexsort_rows(codes_NxC)]  # T-runs are contiguous inside (T, Y)-order
    c_t_N = _run_lengths(_run_starts(sorted_NxC[:, :-1]))
    c_ty_N = _run_lengths(_run_starts(sorted_NxC))
    h_t = _mean(jnp.log(c_t_N.shape[0] / c_t_N))
    # I(T;Y) = H(Y) - H(Y|T), summed pointwise: no cancellation between two ~log N entropies.
    return h_t, label_entropy(y_N) + _mean(jnp.log(c_ty_N / c_t_N))


_STATIC = ("n_bins", "value_range", "mode")


@partial(jax.jit, static_argnames=_STATIC)
def _entropy(t, bin_size, d, *, n_bins, value_range, mode=("fixed", "uniform", None)):
    f = partial(_entropy_NxD, n_bins=n_bins, value_range=value_range, mode=mode)
    return map_leading(f, (2, 0, 0), t, bin_size, d)


@partial(jax.jit, static_argnames=_STATIC)
def _info_plane(t, y, bin_size, d, *, n_bins, value_range, mode=("fixed", "uniform", None)):
    f = partial(_info_plane_NxD, n_bins=n_bins, value_range=value_range, mode=mode)
    return map_leading(f, (2, 1, 0, 0), t, y, bin_size, d)


def _check_binning(n_bins, bin_size, value_range):
    """Validate the binning settings; return (n_bins, bin_size, value_range) ready for the core."""
    if (n_bins is None) == (bin_size is None):
        raise ValueError(f"give exactly one of n_bins or bin_size, got n_bins={n_bins!r}, bin_size={bin_size!r}")
    try:
        lo, hi = (float(v) for v in value_range)
    except Exception as e:
        raise ValueError(f"value_range must be a pair (lo, hi) of numbers, got {value_range!r}") from e
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"value_range must be finite with lo < hi, got {value_range!r}")
    if n_bins is not None:
        return _checks.check_int("n_bins", n_bins, min_value=2), 1.0, (lo, hi)
    _checks.check_positive("bin_size", bin_size)
    return None, bin_size, (lo, hi)


def check_edges(edges) -> tuple:
    """Explicit bin edges: >= 2 finite, non-decreasing numbers (ties allowed: quantile edges), as a tuple."""
    try:
        e = np.asarray(edges, np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"edges must be a sequence of numbers, got {edges!r}") from None
    if e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) < 0) or e[0] == e[-1]:
        raise ValueError(
            f"edges must be >= 2 finite, non-decreasing numbers spanning a non-empty range "
            f"(see binning.global_edges), got {edges!r}"
        )
    return tuple(float(v) for v in e.astype(np.float32))


def check_mode(n_bins, bin_size, range_mode, spacing, edges):
    """(n_bins, mode) for the core; ValueError naming the option for any invalid combination."""
    _checks.check_choice("range_mode", range_mode, RANGE_MODES)
    _checks.check_choice("spacing", spacing, SPACINGS)
    if bin_size is not None and (range_mode, spacing, edges) != ("fixed", "uniform", None):
        raise ValueError(
            f"bin_size is Saxe's unbounded grid: range_mode, spacing and edges apply to n_bins only, "
            f"got range_mode={range_mode!r}, spacing={spacing!r}, edges={edges!r}"
        )
    if range_mode == "fixed" and spacing == "quantile":
        raise ValueError(
            "spacing='quantile' takes its edges from the data: use range_mode 'layer', 'neuron' or "
            "'global', not 'fixed'"
        )
    if (range_mode == "global") != (edges is not None):
        raise ValueError(
            f"range_mode='global' needs edges computed over all layers and epochs "
            f"(edges=binning.global_edges(acts, n_bins=..., spacing=...)), and edges need "
            f"range_mode='global'; got range_mode={range_mode!r}, edges={edges!r}"
        )
    if edges is not None:
        edges = check_edges(edges)
        if n_bins is not None and n_bins != len(edges):
            raise ValueError(f"n_bins={n_bins} disagrees with the {len(edges)} edges given; pass one of them")
        n_bins = len(edges)
    return n_bins, (range_mode, spacing, edges)


def global_edges(acts, *, n_bins: int, spacing: str = "uniform") -> tuple:
    """Edges for ``range_mode='global'`` from every layer and epoch: ``acts`` is an array or a sequence
    of arrays of any shapes (all their values pooled). Uniform: ``linspace(min, max, n_bins)`` as
    ``bin_edges``; quantile: (min, then the k / n_bins quantiles, k = 1..n_bins-1)."""
    n_bins = _checks.check_int("n_bins", n_bins, min_value=2)
    _checks.check_choice("spacing", spacing, SPACINGS)
    parts = [np.asarray(a, np.float64).ravel() for a in (acts if isinstance(acts, (list, tuple)) else [acts])]
    v = np.concatenate(parts) if parts else np.zeros(0)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(
            f"acts must hold finite values, got {v.size} values ({int((~np.isfinite(v)).sum())} non-finite)"
        )
    lo, hi = float(v.min()), float(v.max())
    if not lo < hi:
        raise ValueError(f"acts span an empty range [{lo}, {hi}]: every value is equal, no bins to place")
    if spacing == "uniform":
        return tuple(float(e) for e in bin_edges(n_bins, (lo, hi)))
    return check_edges(np.quantile(v, np.arange(n_bins) / n_bins))


def _warn_outside(t, n_bins, value_range, mode) -> None:
    if n_bins is None or mode[0] != "fixed" or _checks.is_traced(t):
        return
    a = np.asarray(t)
    k = int(np.sum((a < value_range[0]) | (a > value_range[1])))
    if k:
        warnings.warn(
            f"{k} of {a.size} values lie outside value_range={value_range} and are clipped into the edge "
            "bins (the convention under which a ReLU layer measured 4.35 instead of 11.63 bits); use "
            "range_mode='layer' or 'global', or bin_size",
            stacklevel=3,
        )


def check_bin_size_floor(t, bin_size) -> None:
    """ValueError for a concrete ``bin_size`` below the smallest normal float of ``t``'s (promoted) dtype."""
    if bin_size is None or _checks.is_traced(bin_size):
        return
    dtype = jnp.promote_types(t.dtype, jnp.float32)
    tiny = float(jnp.finfo(dtype).tiny)
    b = np.asarray(bin_size, np.float64)
    if np.any(b < tiny):
        span = "" if _checks.is_traced(t) else f" on activations in [{float(np.min(t)):.4g}, {float(np.max(t)):.4g}]"
        raise ValueError(
            f"bin_size={bin_size!r}{span} is below {tiny:.4g}, the smallest normal {dtype} (XLA flushes smaller "
            f"numbers to zero); bin_size must be >= {tiny:.4g}, which already gives each float of magnitude >= "
            f"{tiny * 2.0 ** (jnp.finfo(dtype).nmant + 2):.3g} its own bin"
        )


def _live(t, n_live):
    d = t.shape[-1] if n_live is None else n_live
    return jnp.asarray(d, jnp.int32)


def entropy(
    t,
    *,
    n_bins=None,
    bin_size=None,
    value_range=(-1.0, 1.0),
    range_mode="fixed",
    spacing="uniform",
    edges=None,
    n_live=None,
    base=2,
):
    """Plug-in entropy H(T) of the binned rows of ``t`` (..., N, D); bits unless ``base``.
    ``n_live``: columns from ``n_live`` on are zero padding (ignored by the data-derived ranges)."""
    t = _checks.check_samples("t", t)
    scale = _checks.log_base(base)
    n_bins, mode = check_mode(n_bins, bin_size, range_mode, spacing, edges)
    n_bins, bin_size, value_range = _check_binning(n_bins, bin_size, value_range)
    check_bin_size_floor(t, None if n_bins is not None else bin_size)
    _warn_outside(t, n_bins, value_range, mode)
    return _entropy(t, bin_size, _live(t, n_live), n_bins=n_bins, value_range=value_range, mode=mode) / scale


def info_plane(
    t,
    y,
    *,
    n_bins=None,
    bin_size=None,
    value_range=(-1.0, 1.0),
    range_mode="fixed",
    spacing="uniform",
    edges=None,
    n_live=None,
    base=2,
):
    """(I(X;T), I(T;Y)) from binned ``t`` (..., N, D) and integer labels ``y`` (..., N); modes as ``entropy``."""
    t = _checks.check_samples("t", t)
    y = _checks.check_labels("y", y, t.shape[-2])
    scale = _checks.log_base(base)
    n_bins, mode = check_mode(n_bins, bin_size, range_mode, spacing, edges)
    n_bins, bin_size, value_range = _check_binning(n_bins, bin_size, value_range)
    check_bin_size_floor(t, None if n_bins is not None else bin_size)
    _warn_outside(t, n_bins, value_range, mode)
    i_xt, i_ty = _info_plane(t, y, bin_size, _live(t, n_live), n_bins=n_bins, value_range=value_range, mode=mode)
    return i_xt / scale, i_ty / scale
