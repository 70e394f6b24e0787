"""Hilbert-Schmidt independence criterion (Gretton et al. 2005), biased estimator, Gaussian kernels.

HSIC(x, y) = (1/N^2) tr(K H L H), H = I - (1/N) 1 1^T, K_ij = exp(-|x_i - x_j|^2 / (2 sigma_x^2)) and
likewise L. Expanding the centring, tr(KHLH) = sum(K * L) - (2/N) k.l + (1^T K 1)(1^T L 1) / N^2 with
k, l the row sums, so one pass over row blocks (``block_size`` x N of K and L at a time) gives
everything; the N x N matrices never exist whole.

Median heuristic (the default bandwidth): sigma = sqrt(median over pairs i < j of |a_i - a_j|^2),
the pairs taken among all rows when N <= 1024, else among the 1024 rows i * floor(N / 1024); if that
median is 0 (many ties; below 1e-5 x the mean), the mean over the same pairs, and 1 if the points are
all equal.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ibjax import _checks
from ibjax.estimators._blocks import default_block_size, map_row_blocks, sq_dists

MEDIAN_ROWS = 1024


def hsic(x, y, *, sigma_x=None, sigma_y=None, normalized: bool = False, block_size: int | None = None):
    """Biased HSIC of samples x (N x d_x or N) and y (N x d_y or N); ``normalized`` divides by
    sqrt(HSIC(x, x) HSIC(y, y)) (a value in [0, 1])."""
    x_NxD = jnp.asarray(_checks.samples_2d("x", x), jnp.float32)
    y_NxE = jnp.asarray(_checks.samples_2d("y", y), jnp.float32)
    _checks.check_same_n("x", x_NxD, "y", y_NxE)
    for name, s in (("sigma_x", sigma_x), ("sigma_y", sigma_y)):
        if s is not None:
            _checks.check_positive(name, s)
    if normalized:
        for name, a in (("x", x_NxD), ("y", y_NxE)):
            _check_not_constant(name, a)
    n = x_NxD.shape[0]
    block_size = _checks.check_int(
        "block_size", default_block_size(n) if block_size is None else block_size, min_value=1
    )
    sx = median_bandwidth(x_NxD) if sigma_x is None else sigma_x
    sy = median_bandwidth(y_NxE) if sigma_y is None else sigma_y
    return _hsic(x_NxD, y_NxE, sx, sy, normalized=bool(normalized), block_size=min(block_size, n))


def _check_not_constant(name, a_NxD) -> None:
    """Normalised HSIC divides by HSIC(a, a), which is 0 when every row of a concrete ``a`` is equal."""
    if _checks.is_traced(a_NxD):
        return
    a = np.asarray(a_NxD)
    if np.all(a == a[:1]):
        raise ValueError(
            f"{name} is constant (all {a.shape[0]} rows equal), so normalized HSIC is 0 / 0; for labels "
            f"(one-hot {name}): HSIC with the labels needs at least 2 classes (got 1)"
        )


@jax.jit
def median_bandwidth(a_NxD):
    """The median heuristic above (traceable)."""
    n = a_NxD.shape[0]
    rows = np.arange(n) if n <= MEDIAN_ROWS else np.arange(MEDIAN_ROWS) * (n // MEDIAN_ROWS)
    sub_MxD = a_NxD[rows] - jnp.mean(a_NxD[rows], axis=0, keepdims=True)
    i, j = np.triu_indices(len(rows), k=1)
    d2_P = sq_dists(sub_MxD, sub_MxD)[i, j]
    if d2_P.size == 0:
        return jnp.ones(())
    med, mean = _median_nonnegative(d2_P), jnp.mean(d2_P)
    # "0" allows for the rounding of the |a|^2 + |b|^2 - 2ab expansion (relative ~1e-7)
    return jnp.sqrt(jnp.where(med > 1e-5 * mean, med, jnp.where(mean > 0, mean, 1.0)))


def _median_nonnegative(v_P):
    """np.median of values >= 0, sorting their float32 bits as uint32 (same order for v >= 0; XLA:CPU
    sorts uint32 ~8x faster than float32)."""
    u_P = jnp.sort(jax.lax.bitcast_convert_type(v_P.astype(jnp.float32), jnp.uint32))
    mid = jax.lax.bitcast_convert_type(u_P[np.array([(v_P.size - 1) // 2, v_P.size // 2])], jnp.float32)
    return jnp.mean(mid)


@partial(jax.jit, static_argnames=("normalized", "block_size"))
def _hsic(x_NxD, y_NxE, sigma_x, sigma_y, *, normalized: bool, block_size: int):
    n = x_NxD.shape[0]
    x_NxD = x_NxD - jnp.mean(x_NxD, axis=0, keepdims=True)
    y_NxE = y_NxE - jnp.mean(y_NxE, axis=0, keepdims=True)

    def block(idx_B):
        k_BxN = jnp.exp(-sq_dists(x_NxD[idx_B], x_NxD) / (2.0 * sigma_x**2))
        l_BxN = jnp.exp(-sq_dists(y_NxE[idx_B], y_NxE) / (2.0 * sigma_y**2))
        sums = (jnp.sum(k_BxN, 1), jnp.sum(l_BxN, 1), jnp.sum(k_BxN * l_BxN, 1))
        return sums + ((jnp.sum(k_BxN * k_BxN, 1), jnp.sum(l_BxN * l_BxN, 1)) if normalized else ())

    rk_N, rl_N, kl_N, *self_sums = map_row_blocks(block, n, block_size=block_size)

    def centred(prod_N, ra_N, rb_N):
        return (jnp.sum(prod_N) - 2.0 / n * jnp.dot(ra_N, rb_N) + jnp.sum(ra_N) * jnp.sum(rb_N) / n**2) / n**2

    h_xy = centred(kl_N, rk_N, rl_N)
    if not normalized:
        return h_xy
    kk_N, ll_N = self_sums
    return h_xy / jnp.sqrt(centred(kk_N, rk_N, rk_N) * centred(ll_N, rl_N, rl_N))
