"""k-nearest-neighbour estimators: Kozachenko-Leonenko entropy and KSG mutual information.

Distances are exact differences (no |a|^2 + |b|^2 - 2ab expansion), so repeated rows are at
distance exactly 0. ``metric="chebyshev"`` is the max-norm everywhere (NPEET / scikit-learn);
``"euclidean"`` is the Euclidean norm within x and within y and, for KSG, the max of the two in the
joint space (the bmi convention). Work runs in row blocks (``map_row_blocks``): a block of B rows
against all N, never N x N. The k-th neighbour distance comes from k rounds of masked minimum,
each also counting the ties at its minimum, so tied distances count with their multiplicity
(XLA:CPU sort and top_k are much slower). A point with fewer than k other distinct points gets an
infinite distance.

Ties (discrete inputs, ReLU zeros, saturated tanh, binary codes):

* ``mi``, ``ties="cell"`` (default): let rho_i be point i's k-th neighbour distance in the joint
  space, counted with multiplicity. Where rho_i > 0 and exactly k points lie within it (always, for
  continuous data) the term is plain KSG-1. Otherwise the k-NN ball is not defined by k: rho_i = 0
  (at least k exact copies: Gao, Kannan, Oh & Viswanath 2017, "Estimating mutual information for
  discrete-continuous mixtures", whose k_i is the number of copies) or rho_i is tied (more than k
  points within it: a lattice, e.g. binary inputs, where every pair of distinct 12-bit vectors is
  at max-norm distance exactly 1 and KSG-1 counts nobody strictly inside, so I(X;X) came out 15.0
  bits > H(X) = 12 and I(X; constant) = psi(3) - psi(1) = 2.16 bits). Such a point is a cell of
  the empirical distribution: the copies (rho_i = 0) or the open ball below the tie, with n_z, n_x,
  n_y its other points in the joint space and in each marginal, and its term is the plug-in
  log(N (n_z + 1) / ((n_x + 1)(n_y + 1))). On data that is all cells the estimate is the plug-in
  (empirical) MI of the cells: I(X;X) = H of the sample's distinct rows, I(X; constant) = 0
  exactly, and data processing holds along deterministic chains of such variables. Gao et al. use
  psi(k_i) for the joint count at rho_i = 0; that needs k_i >= 1, which the open ball below a tie
  need not have (12-bit data: n_z = 0), so cells use log throughout (the two differ by O(1 / k_i)).
  Where X is on a lattice of spacing s with one sample per value, the estimate resolves the other
  variable at scale s, not finer: nothing finer is seen by neighbour counts (a deterministic tanh
  layer of the 12-bit task gets its entropy at resolution 1, not the 12 bits of its distinct rows).
  A copy is a neighbour at distance 0 in both marginals, i.e. evidence of dependence, so
  duplicating rows of continuous data raises the estimate (tested: 30% duplicated rows of a
  Gaussian pair, +0.27 nats at k=3, +0.05 at k=10); the original's 1e-10 jitter behaves the same.
* ``ties="ksg"``: the previous rule: KSG-1 with Gao's k_i = the copies at rho_i = 0 and strict
  counts at a tied rho_i > 0, as Gao et al.'s reference code counts there (15.0 and 2.16 bits above).
* ``entropy``: a law with atoms has differential entropy -inf; here neighbours at distance 0 are
  skipped (the k-th neighbour is the k-th nearest *distinct* point), which keeps the estimate finite
  and leaves it unchanged when there are no repeats.

No jitter is added, so results are deterministic. ``k`` may be traced (a sweep over k is one
vmapped call); it sets the number of rounds of a while loop.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import digamma, gammaln

from ibjax import _checks
from ibjax.estimators._blocks import map_leading, map_row_blocks

METRICS = ("chebyshev", "euclidean")
TIES = ("cell", "ksg")
_UNROLL_DIMS = 32
_CHUNK_DIMS = 16


def _accumulate(acc_BxN, a_BxC, bT_CxN, metric):
    """Fold C coordinates into ``acc``: running max of |a - b| or running sum of (a - b)^2."""
    for c in range(a_BxC.shape[1]):
        diff_BxN = a_BxC[:, c : c + 1] - bT_CxN[c][None, :]
        acc_BxN = jnp.maximum(acc_BxN, jnp.abs(diff_BxN)) if metric == "chebyshev" else acc_BxN + jnp.square(diff_BxN)
    return acc_BxN


def pairwise(a_BxD, bT_DxN, *, metric):
    """B x N max-norm distances, or squared Euclidean distances, by exact differences."""
    n_dims = a_BxD.shape[1]
    acc_BxN = jnp.zeros((a_BxD.shape[0], bT_DxN.shape[1]), a_BxD.dtype)
    if n_dims <= _UNROLL_DIMS:
        return _accumulate(acc_BxN, a_BxD, bT_DxN, metric)
    pad = -n_dims % _CHUNK_DIMS  # zero columns change neither norm
    a_KxBxC = jnp.pad(a_BxD, ((0, 0), (0, pad))).reshape(a_BxD.shape[0], -1, _CHUNK_DIMS).transpose(1, 0, 2)
    bT_KxCxN = jnp.pad(bT_DxN, ((0, pad), (0, 0))).reshape(-1, _CHUNK_DIMS, bT_DxN.shape[1])

    def step(acc, ab):
        return _accumulate(acc, ab[0], ab[1], metric), None

    return lax.scan(step, acc_BxN, (a_KxBxC, bT_KxCxN))[0]


def kth_smallest(dx_BxN, dy_BxN, k, *, floor):
    """k-th smallest of max(dx, dy) per row over entries > ``floor``, counting ties.

    Returns (kth_B, n_min_B): ``n_min_B`` is how many entries equal the first minimum (the number
    of exact copies when that minimum is 0). The blocks are loop constants, so XLA materialises them
    once (instead of re-deriving them inside every reduction) and a vmapped loop does not copy them.
    """
    b = dx_BxN.shape[0]

    def body(r, s):
        prev_B, cum_B, kth_B, n_min_B = s
        dz_BxN = jnp.maximum(dx_BxN, dy_BxN)
        m_B = jnp.min(jnp.where(dz_BxN > prev_B[:, None], dz_BxN, jnp.inf), axis=1)
        c_B = jnp.sum((dz_BxN == m_B[:, None]).astype(jnp.float32), axis=1).astype(jnp.int32)
        kth_B = jnp.where((cum_B < k) & (cum_B + c_B >= k), m_B, kth_B)
        n_min_B = jnp.where(r == 0, c_B, n_min_B)
        return m_B, cum_B + c_B, kth_B, n_min_B

    init = (
        jnp.full(b, floor, dx_BxN.dtype),
        jnp.zeros(b, jnp.int32),
        jnp.full(b, jnp.inf, dx_BxN.dtype),
        jnp.zeros(b, jnp.int32),
    )
    _, _, kth_B, n_min_B = lax.fori_loop(0, k, body, init)  # k rounds: each finds >= 1 new value
    return kth_B, n_min_B


def _self_masked(idx_B, d_BxN):
    """Set each row's distance to itself to +inf."""
    return jnp.where(idx_B[:, None] == jnp.arange(d_BxN.shape[1])[None, :], jnp.inf, d_BxN)


def _count_below(d_BxN, eps_B):
    return jnp.sum((d_BxN < eps_B[:, None]).astype(jnp.float32), axis=1)


def _ksg_block(idx_B, x_NxDx, y_NxDy, xT_DxN, yT_DxN, k, n, metric, ties):
    """Per-row term: KSG-1 psi(k) + psi(N) - psi(n_x + 1) - psi(n_y + 1), or at a tied or zero k-th
    distance the cell term (``ties="cell"``, module docstring) or Gao's k_i at zero (``"ksg"``)."""
    dx_BxN = _self_masked(idx_B, pairwise(x_NxDx[idx_B], xT_DxN, metric=metric))
    dy_BxN = pairwise(y_NxDy[idx_B], yT_DxN, metric=metric)
    rho_B, n_copies_B = kth_smallest(dx_BxN, dy_BxN, k, floor=-1.0)
    repeated_B = rho_B == 0
    # With rho = 0 count neighbours at distance 0: "< tiny" is "== 0" for distances >= 0.
    eps_B = jnp.where(repeated_B, jnp.finfo(rho_B.dtype).tiny, rho_B)
    n_x_B = _count_below(dx_BxN, eps_B)  # self is at +inf
    n_y_B = _count_below(dy_BxN, eps_B) - 1.0  # self is at 0
    psi_n = digamma(jnp.asarray(n, jnp.float32))
    if ties == "ksg":
        k_B = jnp.where(repeated_B, n_copies_B, k).astype(jnp.float32)
        return digamma(k_B) + psi_n - digamma(n_x_B + 1.0) - digamma(n_y_B + 1.0)
    dz_BxN = jnp.maximum(dx_BxN, dy_BxN)
    n_z_B = _count_below(dz_BxN, eps_B)  # the copies (rho = 0) or the open ball below a tie
    tied_B = jnp.sum((dz_BxN <= rho_B[:, None]).astype(jnp.float32), axis=1) > k
    ksg_B = digamma(jnp.asarray(k, jnp.float32)) + psi_n - digamma(n_x_B + 1.0) - digamma(n_y_B + 1.0)
    cell_B = math.log(n) + jnp.log(n_z_B + 1.0) - jnp.log(n_x_B + 1.0) - jnp.log(n_y_B + 1.0)
    return jnp.where(repeated_B | tied_B, cell_B, ksg_B)


def _float(a):
    """Integer (or half-precision) samples are measured in float32."""
    return a.astype(jnp.promote_types(a.dtype, jnp.float32))


def _mi_NxD(x_NxDx, y_NxDy, k, *, metric, ties, block_size):
    n = x_NxDx.shape[0]
    x_NxDx, y_NxDy = _float(x_NxDx), _float(y_NxDy)
    xT_DxN, yT_DxN = x_NxDx.T, y_NxDy.T

    def block(idx_B):
        return _ksg_block(idx_B, x_NxDx, y_NxDy, xT_DxN, yT_DxN, k, n, metric, ties)

    return jnp.mean(map_row_blocks(block, n, block_size=block_size))


def _log_unit_ball(dim, metric):
    """ln volume of the unit ball: max-norm 2^d, Euclidean pi^(d/2) / Gamma(d/2 + 1)."""
    if metric == "chebyshev":
        return dim * math.log(2.0)
    return 0.5 * dim * math.log(math.pi) - gammaln(0.5 * dim + 1.0)


def _entropy_NxD(t_NxD, k, dim, *, metric, block_size):
    n = t_NxD.shape[0]
    t_NxD = _float(t_NxD)
    tT_DxN = t_NxD.T

    def block(idx_B):
        d_BxN = _self_masked(idx_B, pairwise(t_NxD[idx_B], tT_DxN, metric=metric))
        return kth_smallest(d_BxN, d_BxN, k, floor=0.0)[0]  # floor 0: skip exact repeats

    eps_N = map_row_blocks(block, n, block_size=block_size)
    log_eps_N = jnp.log(eps_N) if metric == "chebyshev" else 0.5 * jnp.log(eps_N)
    return (
        digamma(jnp.float32(n))
        - digamma(jnp.asarray(k, jnp.float32))
        + _log_unit_ball(dim, metric)
        + dim * jnp.mean(log_eps_N)
    )


@partial(jax.jit, static_argnames=("metric", "ties", "block_size"))
def _mi(x, y, k, *, metric, ties, block_size):
    f = partial(_mi_NxD, metric=metric, ties=ties, block_size=block_size)
    return map_leading(f, (2, 2, 0), x, y, k)


@partial(jax.jit, static_argnames=("metric", "block_size"))
def _entropy(t, k, dim, *, metric, block_size):
    f = partial(_entropy_NxD, metric=metric, block_size=block_size)
    return map_leading(f, (2, 0, 0), t, k, dim)


def default_block_size(n: int, batch: int = 1) -> int:
    """Rows per block: about 2**19 distances per block over the whole batch (2 MB, cache-sized),
    a power of two in [8, 512]."""
    return int(np.clip(2 ** round(math.log2(max(1, 2**19 // (n * batch)))), 8, 512))


def _check_k(k, n):
    """k: whole number(s) in [1, N - 1]; traced k is the caller's responsibility."""
    if _checks.is_traced(k):
        return k
    a = np.asarray(k)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"k must be an integer (or integer array), got {k!r}")
    if a.size == 0 or a.min() < 1 or a.max() >= n:
        raise ValueError(f"k must satisfy 1 <= k < N = {n} (the number of samples), got {k!r}")
    return jnp.asarray(k, jnp.int32)


def _check_common(metric, base, block_size, n, *batch_shapes):
    _checks.check_choice("metric", metric, METRICS)
    scale = _checks.log_base(base)
    if block_size is None:
        return scale, default_block_size(n, math.prod(np.broadcast_shapes(*batch_shapes)))
    return scale, _checks.check_int("block_size", block_size, min_value=1)


def entropy(t, *, k=3, metric="chebyshev", base=2, dim=None, block_size=None):
    """Kozachenko-Leonenko differential entropy of the rows of ``t`` (..., N, D); bits unless ``base``.

    H = psi(N) - psi(k) + ln c_d + d <ln eps_i>, eps_i the k-th neighbour distance (a radius) and
    c_d the unit-ball volume of ``metric``. ``dim`` is the true dimension when ``t`` carries
    zero-padded columns (default D).
    """
    t = _checks.check_samples("t", t)
    k = _check_k(k, t.shape[-2])
    scale, block_size = _check_common(metric, base, block_size, t.shape[-2], t.shape[:-2], np.shape(k))
    dim = t.shape[-1] if dim is None else dim
    _checks.check_positive("dim", dim)
    return _entropy(t, k, dim, metric=metric, block_size=block_size) / scale


def mi(x, y, *, k=3, metric="chebyshev", base=2, ties="cell", block_size=None):
    """KSG estimator 1 of I(X;Y) from paired rows ``x`` (..., N, Dx), ``y`` (..., N, Dy), tie-aware.

    psi(k) + psi(N) - <psi(n_x + 1) + psi(n_y + 1)>, neighbours counted strictly inside the k-th
    joint distance, where that distance is positive and untied; bits unless ``base``. A point whose
    k-th distance is 0 or tied is a cell of the empirical distribution (``ties="cell"``), or KSG-1
    with k_i = its copies at 0 and strict counts at a tie (``"ksg"``, the previous rule): module
    docstring.
    """
    x = _checks.check_samples("x", x)
    y = _checks.check_samples("y", y)
    _checks.check_same_n("x", x, "y", y)
    k = _check_k(k, x.shape[-2])
    scale, block_size = _check_common(metric, base, block_size, x.shape[-2], x.shape[:-2], y.shape[:-2], np.shape(k))
    _checks.check_choice("ties", ties, TIES)
    return _mi(x, y, k, metric=metric, ties=ties, block_size=block_size) / scale


def mi_with_error(
    x, y, key, *, k=3, metric="chebyshev", base=2, ties="cell", splits=(2, 4), n_perm: int = 4, block_size=None
):
    """(I, standard error): KSG ``mi`` on all rows and its sampling error by subsampling (Holmes &
    Nemenman 2019, "Estimation of mutual information for real-valued data with error bars and
    controlled bias").

    The rows are shuffled (``n_perm`` random permutations from ``key``) and cut into m disjoint
    parts for each m in ``splits`` (default halves and quarters). The estimator's variance scales as
    1 / N, so the variance across the m parts of size N / m, divided by m, estimates the variance at
    N; the m - 1 degrees of freedom of every split and permutation are pooled. Repeated rows need no
    jitter: ``mi`` handles ties (``ties``, module docstring). All parts of all splits and
    permutations are one batched ``mi`` call per split. x (N, Dx), y (N, Dy); k must be < N / max(splits).
    """
    x = _checks.check_samples("x", x)
    y = _checks.check_samples("y", y)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"x and y must have rank 2 (N x D), got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    _checks.check_same_n("x", x, "y", y)
    n = x.shape[0]
    n_perm = _checks.check_int("n_perm", n_perm, min_value=1)
    splits = tuple(splits)
    if not splits or any(
        isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2 or n // m <= k for m in splits
    ):
        raise ValueError(
            f"splits must be whole numbers m >= 2 with N / m = {n} / m > k = {k} rows per part, got {splits!r}"
        )
    full = mi(x, y, k=k, metric=metric, base=base, ties=ties, block_size=block_size)
    perm_PxN = jax.vmap(lambda kk: jax.random.permutation(kk, n))(jax.random.split(key, n_perm))
    var_sum, dof = 0.0, 0
    for m in splits:  # static structure: one batched call per split size
        rows_PxMxS = perm_PxN[:, : (n // m) * m].reshape(n_perm, m, n // m)
        i_PxM = mi(jnp.asarray(x)[rows_PxMxS], jnp.asarray(y)[rows_PxMxS], k=k, metric=metric, base=base, ties=ties)
        var_sum = var_sum + jnp.sum(jnp.var(i_PxM, axis=1, ddof=1) * (m - 1)) / m
        dof += n_perm * (m - 1)
    return full, jnp.sqrt(var_sum / dof)
