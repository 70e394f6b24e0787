"""Plug-in entropy of discretised activations ("binning"), in the IDNNs and Saxe/ibsgd conventions.

Each row of ``t_NxD`` becomes a symbol of D integer bin codes:

* ``n_bins`` (Shwartz-Ziv & Tishby, IDNNs): edges ``linspace(lo, hi, n_bins)`` in float32 and a value
  maps to the left edge of its bin, i.e. ``np.digitize(t, edges) - 1``. Values below ``lo`` are
  clipped into the first bin and values ``>= hi`` land on the last edge (IDNNs wraps values below
  ``lo`` round to the last edge; we clip instead).
* ``bin_size`` (Saxe et al., ibsgd): ``floor(t / bin_size)``, an unbounded grid (codes are clipped
  to +-2**30 before the integer cast).

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

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ibjax import _checks
from ibjax.estimators._blocks import map_leading

_CODE_LIMIT = 2**30
_UNROLL_EDGES = 64


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
    """``floor(t / bin_size)`` as int32 (clipped to +-2**30)."""
    q = jnp.floor(t / jnp.asarray(bin_size, t.dtype))
    return jnp.clip(q, -_CODE_LIMIT, _CODE_LIMIT).astype(jnp.int32)


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


def _codes(t_NxD, bin_size, n_bins, value_range):
    t_NxD = t_NxD.astype(jnp.promote_types(t_NxD.dtype, jnp.float32))
    if n_bins is not None:
        return codes_n_bins(t_NxD, n_bins=n_bins, value_range=value_range)
    return codes_bin_size(t_NxD, bin_size)


def _entropy_NxD(t_NxD, bin_size, *, n_bins, value_range):
    codes_NxD = _codes(t_NxD, bin_size, n_bins, value_range)
    return _entropy_sorted(codes_NxD[lexsort_rows(codes_NxD)])


def _info_plane_NxD(t_NxD, y_N, bin_size, *, n_bins, value_range):
    codes_NxD = _codes(t_NxD, bin_size, n_bins, value_range)
    codes_NxC = jnp.concatenate([codes_NxD, y_N.astype(jnp.int32)[:, None]], axis=1)
    sorted_NxC = codes_NxC[lexsort_rows(codes_NxC)]  # T-runs are contiguous inside (T, Y)-order
    c_t_N = _run_lengths(_run_starts(sorted_NxC[:, :-1]))
    c_ty_N = _run_lengths(_run_starts(sorted_NxC))
    h_t = _mean(jnp.log(c_t_N.shape[0] / c_t_N))
    # I(T;Y) = H(Y) - H(Y|T), summed pointwise: no cancellation between two ~log N entropies.
    return h_t, label_entropy(y_N) + _mean(jnp.log(c_ty_N / c_t_N))


@partial(jax.jit, static_argnames=("n_bins", "value_range"))
def _entropy(t, bin_size, *, n_bins, value_range):
    f = partial(_entropy_NxD, n_bins=n_bins, value_range=value_range)
    return map_leading(f, (2, 0), t, bin_size)


@partial(jax.jit, static_argnames=("n_bins", "value_range"))
def _info_plane(t, y, bin_size, *, n_bins, value_range):
    f = partial(_info_plane_NxD, n_bins=n_bins, value_range=value_range)
    return map_leading(f, (2, 1, 0), t, y, bin_size)


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


def entropy(t, *, n_bins=None, bin_size=None, value_range=(-1.0, 1.0), base=2):
    """Plug-in entropy H(T) of the binned rows of ``t`` (..., N, D); bits unless ``base``."""
    t = _checks.check_samples("t", t)
    scale = _checks.log_base(base)
    n_bins, bin_size, value_range = _check_binning(n_bins, bin_size, value_range)
    return _entropy(t, bin_size, n_bins=n_bins, value_range=value_range) / scale


def info_plane(t, y, *, n_bins=None, bin_size=None, value_range=(-1.0, 1.0), base=2):
    """(I(X;T), I(T;Y)) from binned ``t`` (..., N, D) and integer labels ``y`` (..., N)."""
    t = _checks.check_samples("t", t)
    y = _checks.check_labels("y", y, t.shape[-2])
    scale = _checks.log_base(base)
    n_bins, bin_size, value_range = _check_binning(n_bins, bin_size, value_range)
    i_xt, i_ty = _info_plane(t, y, bin_size, n_bins=n_bins, value_range=value_range)
    return i_xt / scale, i_ty / scale
