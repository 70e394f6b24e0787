"""Kolchinsky-Tracey pairwise-distance bounds on the entropy of a Gaussian mixture (KDE bounds).

The mixture is (1/N) sum_i N(t_i, noise_var I) in d dimensions. With D_ij = |t_i - t_j|^2 and
L_i(v) = ln sum_j exp(-D_ij / (2 v)) (the self term makes every sum >= 1):

* upper (KL) bound:            H = d/2 ln(2 pi e v) + ln N - mean_i L_i(v)
* lower (Bhattacharyya) bound: H = d/2 ln(2 pi e v) + ln N - mean_i L_i(4 v)
* H(T|X) = d/2 ln(2 pi e v), so I(X;T) = ln N - mean_i L_i(v_b), with v_b = v or 4 v
* I(T;Y) = H(T) - sum_c p_c H(T|y=c) = H(Y) - mean_i (L_i(v_b) - L_i^same(v_b)), where L^same sums
  only over j with y_j = y_i; no loop over classes (class sums are one matmul with one-hot labels).

O(N^2) work runs over pairs of row blocks, each unordered pair once (the kernel is symmetric):
never an N x N array. Rows are permuted so that every block holds one class (each class padded to
whole blocks with far-away dummy rows, whose kernel is exactly 0), so same-class sums need no
masks. With ``bound="both"`` one exp per pair serves both bounds (exp(-D/(2v)) = exp(-D/(8v))^4)
and results get a trailing axis of length 2 ordered (upper, lower). ``noise_var`` may be traced or
an array broadcasting against the leading axes of ``t``, so a sweep over variances is one call.
The number of classes is static (``n_classes``, default max(y) + 1 from concrete labels). Float32.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ibjax import _checks
from ibjax.estimators._blocks import map_leading, sq_dists

BOUNDS = ("upper", "lower", "both")


def _class_layout(y_N, n_classes, block):
    """Place each class in its own run of whole blocks: row positions, block classes, class counts."""
    n = y_N.shape[0]
    counts_C = jnp.sum(jax.nn.one_hot(y_N, n_classes, dtype=jnp.int32), axis=0)
    padded_C = -(-counts_C // block) * block
    start_C = jnp.cumsum(padded_C) - padded_C
    order_N = jnp.argsort(y_N, stable=True)
    rank_N = jnp.zeros(n, jnp.int32).at[order_N].set(jnp.arange(n, dtype=jnp.int32))
    pos_N = start_C[y_N] + rank_N - (jnp.cumsum(counts_C) - counts_C)[y_N]
    n_blocks = -(-(n + n_classes * (block - 1)) // block)
    class_K = jnp.searchsorted(jnp.cumsum(padded_C), jnp.arange(n_blocks) * block, side="right")
    return pos_N, class_K, counts_C


def _pair_sums(t_KxBxD, class_K, noise_var, *, bound):
    """Row sums of exp(-D / (2 v_b)) over all columns and over same-class columns, (K*B, 2S).

    Visits each unordered pair of blocks once (the kernel is symmetric): a block's row sums go to
    its rows and its column sums to the other block's rows. Blocks are single-class, so the
    same-class sums are the all-column sums weighted by [class_I == class_J].
    """
    n_blocks, block, _ = t_KxBxD.shape
    blk_i, blk_j = (jnp.asarray(a) for a in np.triu_indices(n_blocks))
    eye_BxB = jnp.eye(block, dtype=bool)

    def visit(acc_KxBx2S, ij):
        i, j = ij
        d_BxB = jnp.where((i == j) & eye_BxB, 0.0, sq_dists(t_KxBxD[i], t_KxBxD[j]))
        ks = _kernels(d_BxB, noise_var, bound)
        rows_BxS = jnp.stack([k.sum(axis=1) for k in ks], axis=-1)
        cols_BxS = jnp.stack([k.sum(axis=0) for k in ks], axis=-1) * (i != j)
        same = (class_K[i] == class_K[j]).astype(rows_BxS.dtype)
        acc_KxBx2S = acc_KxBx2S.at[i].add(jnp.concatenate([rows_BxS, same * rows_BxS], axis=-1))
        acc_KxBx2S = acc_KxBx2S.at[j].add(jnp.concatenate([cols_BxS, same * cols_BxS], axis=-1))
        return acc_KxBx2S, None

    n_s = 2 if bound == "both" else 1
    acc, _ = lax.scan(visit, jnp.zeros((n_blocks, block, 2 * n_s), t_KxBxD.dtype), (blk_i, blk_j))
    return acc.reshape(n_blocks * block, 2 * n_s)


def _kernels(d_BxN, noise_var, bound):
    """Kernel blocks exp(-D / (2 v_b)) for the requested bound(s), as a tuple."""
    if bound == "upper":
        return (jnp.exp(d_BxN * (-0.5 / noise_var)),)
    # One exp per pair (the barrier keeps XLA from re-deriving it inside each consumer).
    k_lower = lax.optimization_barrier(jnp.exp(d_BxN * (-0.125 / noise_var)))
    if bound == "lower":
        return (k_lower,)
    return jnp.square(jnp.square(k_lower)), k_lower


def _log_sums(t_NxD, y_N, noise_var, *, n_classes, bound, block):
    """Per-row L_i over all j and L_i^same over same-label j, each (S, N), and class counts."""
    n, dim = t_NxD.shape
    t_NxD = t_NxD.astype(jnp.promote_types(t_NxD.dtype, jnp.float32))
    t_NxD = t_NxD - jnp.mean(t_NxD, axis=0, keepdims=True)  # smaller norms: less cancellation
    pos_N, class_K, counts_C = _class_layout(y_N, n_classes, block)
    # Padding rows sit far away (kernel exactly 0 in float32 at either variance).
    far = jnp.max(jnp.abs(t_NxD)) + jnp.sqrt(1000.0 * noise_var) + 1.0
    t_PxD = jnp.full((class_K.shape[0] * block, dim), far, t_NxD.dtype).at[pos_N].set(t_NxD)
    sums_Nx2S = _pair_sums(t_PxD.reshape(-1, block, dim), class_K, noise_var, bound=bound)[pos_N]
    log_all_NxS, log_same_NxS = jnp.split(jnp.log(sums_Nx2S), 2, axis=-1)
    return log_all_NxS.T, log_same_NxS.T, counts_C


def _squeeze(x_S, bound):
    return x_S if bound == "both" else x_S[0]


def _i_xt_nats(log_all_SxN):
    n = log_all_SxN.shape[-1]
    return math.log(n) - jnp.mean(log_all_SxN, axis=-1)


def _entropy_NxD(t_NxD, noise_var, dim, *, bound, block):
    y_N = jnp.zeros(t_NxD.shape[0], jnp.int32)
    log_all_SxN, _, _ = _log_sums(t_NxD, y_N, noise_var, n_classes=1, bound=bound, block=block)
    h_cond = 0.5 * dim * (jnp.log(2 * jnp.pi * noise_var) + 1.0)
    return _squeeze(h_cond + _i_xt_nats(log_all_SxN), bound)


def _info_plane_NxD(t_NxD, y_N, noise_var, *, n_classes, bound, block):
    log_all_SxN, log_same_SxN, counts_C = _log_sums(
        t_NxD, y_N.astype(jnp.int32), noise_var, n_classes=n_classes, bound=bound, block=block
    )
    p_C = counts_C / y_N.shape[0]
    h_y = -jnp.sum(jnp.where(counts_C > 0, p_C * jnp.log(jnp.where(counts_C > 0, p_C, 1.0)), 0.0))
    i_ty = h_y - jnp.mean(log_all_SxN - log_same_SxN, axis=-1)
    return _squeeze(_i_xt_nats(log_all_SxN), bound), _squeeze(i_ty, bound)


@partial(jax.jit, static_argnames=("bound", "block"))
def _entropy(t, noise_var, dim, *, bound, block):
    f = partial(_entropy_NxD, bound=bound, block=block)
    return map_leading(f, (2, 0, 0), t, noise_var, dim)


@partial(jax.jit, static_argnames=("n_classes", "bound", "block"))
def _info_plane(t, y, noise_var, *, n_classes, bound, block):
    f = partial(_info_plane_NxD, n_classes=n_classes, bound=bound, block=block)
    return map_leading(f, (2, 1, 0), t, y, noise_var)


def default_block(n: int, n_classes: int = 1) -> int:
    """Pair-block size: a power of two in [16, 128], small enough that padding each class to whole
    blocks adds at most ~1/4 to N."""
    return int(np.clip(2 ** int(np.log2(max(1, n // (4 * n_classes)))), 16, 128))


def _check_settings(t, noise_var, bound, block_size, n_classes=1):
    """Validate shared settings; return the block size."""
    _checks.check_positive("noise_var", noise_var)
    _checks.check_choice("bound", bound, BOUNDS)
    if block_size is None:
        return default_block(t.shape[-2], n_classes)
    return _checks.check_int("block_size", block_size, min_value=1)


def _check_n_classes(y, n_classes):
    """Static class count: given, or max(y) + 1 from concrete labels."""
    y_max = None if _checks.is_traced(y) else int(np.max(np.asarray(y)))
    if n_classes is None:
        if y_max is None:
            raise ValueError("n_classes must be given when y is traced (under jit/vmap of y)")
        return y_max + 1
    n_classes = _checks.check_int("n_classes", n_classes, min_value=1)
    if y_max is not None and y_max >= n_classes:
        raise ValueError(f"y holds class ids up to {y_max}; n_classes={n_classes} must exceed them")
    return n_classes


def entropy(t, noise_var, *, bound="upper", base=2, dim=None, block_size=None):
    """Bound on H of the mixture of N(t_i, noise_var I) over the rows of ``t`` (..., N, D).

    ``dim`` is the true dimension when ``t`` carries zero-padded columns (default D).
    """
    t = _checks.check_samples("t", t)
    scale = _checks.log_base(base)
    block = _check_settings(t, noise_var, bound, block_size)
    dim = t.shape[-1] if dim is None else dim
    _checks.check_positive("dim", dim)
    return _entropy(t, noise_var, dim, bound=bound, block=block) / scale


def info_plane(t, y, noise_var, *, bound="upper", base=2, n_classes=None, block_size=None):
    """(I(X;T), I(T;Y)) bounds for T = t + N(0, noise_var I), ``t`` (..., N, D), labels ``y`` (..., N).

    ``n_classes`` (static) defaults to max(y) + 1 and must be given when ``y`` is traced.
    """
    t = _checks.check_samples("t", t)
    y = _checks.check_labels("y", y, t.shape[-2])
    scale = _checks.log_base(base)
    n_classes = _check_n_classes(y, n_classes)
    block = _check_settings(t, noise_var, bound, block_size, n_classes)
    i_xt, i_ty = _info_plane(t, y, noise_var, n_classes=n_classes, bound=bound, block=block)
    return i_xt / scale, i_ty / scale
