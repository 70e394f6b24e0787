"""Matrix-based Rényi alpha-entropy (Giraldo, Rao & Príncipe 2014; Yu, Wickstrøm, Jenssen & Príncipe).

For N samples and a positive-definite kernel, A = K / tr(K) (trace 1, here K_ii = 1 so A = K / N) and

    S_alpha(A) = log2(tr(A^alpha)) / (1 - alpha) = log2(sum_i lambda_i^alpha) / (1 - alpha),

lambda the eigenvalues of A (``jnp.linalg.eigvalsh``, batched under vmap over epochs x layers;
eigenvalues below 0 from rounding are clipped). alpha = 1 is the von Neumann limit -sum lambda log2
lambda. Joint entropy: the Hadamard product normalised, A_XY = A_X o A_Y / tr(A_X o A_Y); mutual
information I(X;Y) = S(A_X) + S(A_Y) - S(A_XY). 0 <= S <= log2 N, and S(A_XY) >= max(S(A_X), S(A_Y))
(Giraldo et al., Prop. 4.1), so 0 <= I <= min(S(A_X), S(A_Y)).

Kernels. Samples: Gaussian exp(-|a_i - a_j|^2 / (2 sigma^2)) on whole rows; a feature map (N, H, W,
C) is flattened, which is the tensor kernel of Wickstrøm et al. (distances over all entries). Labels
(integer ids): the delta kernel [y_i == y_j], the sigma -> 0 limit of a Gaussian on one-hot codes;
its S is the Rényi entropy of the class frequencies and I(Y;Y) = S(Y) exactly. With a Gaussian
kernel I(X;X) = 2 S(A_X) - S(A_X o A_X) is *not* S(A_X) (A_X o A_X is the kernel of width sigma /
sqrt 2); it tends to S(A_X) = log2 N as sigma -> 0.

Width rules (``width``), times ``gamma``:
* ``"silverman"``: sigma = (4 / (d + 2))^(1 / (d + 4)) N^(-1 / (d + 4)) sqrt(sum_j var_j), Silverman's
  multivariate rule with the spread scaled to the dimension (sqrt of the summed column variances is
  the RMS distance to the mean; for d = 1 it is Silverman's 1.06 std N^(-1/5)). Zero-padded columns
  (``d`` the true width) change nothing.
* ``"knn"``: the mean over points of the distance to the k-th nearest other point (Wickstrøm et al.
  2019 use the k nearest neighbours with k = 10).
A width of 0 (all rows equal) is read as 1. The estimates depend strongly on the width: for two
independent 3-d Gaussians (N = 400), I = 2.97 bits at 1 x Silverman, 0.48 at 2x, 0.04 at 4x (a
dependent pair: 1.79, 0.90, 0.37): narrow kernels push every S towards log2 N, and I with them.

Cost: three N x N eigenvalue problems per (epoch, layer) (S(T), S(X, T), S(T, Y)); on 2 CPU cores
eigvalsh takes ~0.05 s at N = 512, ~0.25 s at N = 1024, ~4 s at 2048, ~25 s at 4096. Beyond a few
thousand samples ``info_plane_subsets`` averages the estimates over random subsets of ``subset``
rows (as the original studies did per minibatch, where N was the batch size) and reports the
standard error over subsets. Subset estimates are biased towards log2(subset) for wide kernels and
differ from the full-N value; compare values at equal subset size only.

Scale: the estimates are scale-free while float32 holds the squared distances; the public functions
warn when concrete samples' RMS spread lies outside ``SAFE_SPREAD`` = [1e-15, 1e15] (measured: at
1e+-20 the mutual information collapses to 0 bits or I(X;T) reads 6.60 instead of 4.12).
"""

from __future__ import annotations

import math
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ibjax import _checks
from ibjax.estimators import knn
from ibjax.estimators._blocks import sq_dists

WIDTHS = ("silverman", "knn")


# ---------------------------------------------------------------- Gram matrices and entropies


def flat(a):
    """(N, ...) samples -> (N, D) float32 rows (the tensor kernel flattens feature maps)."""
    a = jnp.asarray(a)
    return a.reshape(a.shape[0], -1).astype(jnp.promote_types(a.dtype, jnp.float32))


def sq_distances(a_NxD):
    """Squared Euclidean distances N x N (centred expansion, zero diagonal)."""
    a_NxD = a_NxD - jnp.mean(a_NxD, axis=0, keepdims=True)
    d2_NxN = sq_dists(a_NxD, a_NxD)
    return jnp.where(jnp.eye(a_NxD.shape[0], dtype=bool), 0.0, d2_NxN)


def silverman_width(a_NxD, d=None):
    """Silverman's rule with the dimension-scaled spread (module docstring); ``d`` the true width."""
    n = a_NxD.shape[0]
    d = a_NxD.shape[1] if d is None else d
    spread = jnp.sqrt(jnp.sum(jnp.var(a_NxD, axis=0)))
    return (4.0 / (d + 2.0)) ** (1.0 / (d + 4.0)) * n ** (-1.0 / (d + 4.0)) * spread


def knn_width(d2_NxN, k: int):
    """Mean distance to the k-th nearest other point (ties counted), from squared distances."""
    off_NxN = jnp.where(jnp.eye(d2_NxN.shape[0], dtype=bool), jnp.inf, d2_NxN)
    kth_N, _ = knn.kth_smallest(off_NxN, off_NxN, k, floor=-1.0)
    return jnp.mean(jnp.sqrt(kth_N))


def gaussian_gram(d2_NxN, sigma):
    """Trace-normalised Gaussian Gram matrix A = K / N from squared distances."""
    return jnp.exp(-d2_NxN / (2.0 * sigma**2)) / d2_NxN.shape[0]


def label_gram(y_N):
    """Trace-normalised delta kernel of integer labels: A_ij = [y_i == y_j] / N."""
    return (y_N[:, None] == y_N[None, :]).astype(jnp.float32) / y_N.shape[0]


def hadamard(a_NxN, b_NxN):
    """Joint Gram matrix: A o B / tr(A o B)."""
    ab_NxN = a_NxN * b_NxN
    return ab_NxN / jnp.trace(ab_NxN)


def spectrum_entropy(lam_N, alpha):
    """S_alpha in bits from eigenvalues; alpha = 1 is the von Neumann entropy.

    The float32 solver returns the zero (and tiny) eigenvalues as +-rounding noise. For alpha >= 1
    the terms sign(lambda) |lambda|^alpha are nearly linear in lambda there, so the noise cancels in
    the sum (clipping negatives at 0 would bias it: 3e-5 relative on a 3-class delta Gram). For
    alpha < 1, |lambda|^alpha magnifies the noise, so eigenvalues below 4 eps max|lambda| count as 0;
    alpha < 1 is accurate to ~1e-3 bits only (vs ~1e-5 relative for alpha >= 1)."""
    tol = jnp.where(alpha < 1.0, 4.0 * jnp.finfo(lam_N.dtype).eps * jnp.max(jnp.abs(lam_N)), 0.0)
    lam_N = jnp.where(jnp.abs(lam_N) > tol, lam_N, 0.0)
    lam_N = lam_N / jnp.sum(lam_N)
    abs_N = jnp.where(lam_N != 0, jnp.abs(lam_N), 1.0)
    near_one = jnp.abs(alpha - 1.0) < 1e-6
    safe_alpha = jnp.where(near_one, 2.0, alpha)
    power = jnp.sum(jnp.where(lam_N != 0, jnp.sign(lam_N) * abs_N**safe_alpha, 0.0))
    von_neumann = -jnp.sum(lam_N * jnp.log2(abs_N))
    return jnp.where(near_one, von_neumann, jnp.log2(power) / (1.0 - safe_alpha))


def matrix_entropy(a_NxN, alpha):
    """S_alpha(A) in bits of a trace-normalised Gram matrix (batched over leading axes)."""
    lam = jnp.linalg.eigvalsh(a_NxN)
    return jnp.vectorize(lambda l: spectrum_entropy(l, alpha), signature="(n)->()")(lam)


def sample_gram(a_NxD, *, width: str, gamma, k: int, d=None, sigma=None):
    """Gaussian Gram of samples with a fixed ``sigma`` or the ``width`` rule times ``gamma``."""
    d2_NxN = sq_distances(a_NxD)
    if sigma is None:
        sigma = gamma * (silverman_width(a_NxD, d) if width == "silverman" else knn_width(d2_NxN, k))
        sigma = jnp.where(sigma > 0, sigma, 1.0)
    return gaussian_gram(d2_NxN, sigma)


# ---------------------------------------------------------------- information plane


def _info_plane_bits(t_NxD, x_NxD, y_N, alpha, gamma, d, *, width, k):
    """(I(X;T), I(T;Y)) in bits; S(X) and S(Y) depend only on the shared x and y (computed once
    under a vmap over layers and epochs)."""
    a_t = sample_gram(t_NxD, width=width, gamma=gamma, k=k, d=d)
    a_x = sample_gram(x_NxD, width=width, gamma=gamma, k=k)
    a_y = label_gram(y_N)
    s_t, s_xt, s_ty = matrix_entropy(jnp.stack([a_t, hadamard(a_x, a_t), hadamard(a_t, a_y)]), alpha)
    s_x, s_y = matrix_entropy(a_x, alpha), matrix_entropy(a_y, alpha)
    return s_x + s_t - s_xt, s_t + s_y - s_ty


@partial(jax.jit, static_argnames=("width", "k"))
def info_plane_bits(t_NxD, x_NxD, y_N, alpha, gamma, d, *, width: str, k: int):
    return _info_plane_bits(t_NxD, x_NxD, y_N, alpha, gamma, d, width=width, k=k)


def subset_indices(key, n: int, subset: int, n_subsets: int):
    """n_subsets x subset row indices, each row a uniformly random subset without repeats."""
    keys = jax.random.split(key, n_subsets)
    return jax.vmap(lambda kk: jax.random.permutation(kk, n)[:subset])(keys)


@partial(jax.jit, static_argnames=("width", "k", "subset", "n_subsets"))
def info_plane_subsets_bits(
    t_NxD, x_NxD, y_N, key, alpha, gamma, d, *, width: str, k: int, subset: int, n_subsets: int
):
    """(i_xt, i_xt_se, i_ty, i_ty_se) in bits: mean and standard error over random row subsets."""
    idx_SxM = subset_indices(key, t_NxD.shape[0], subset, n_subsets)
    one = lambda idx: _info_plane_bits(t_NxD[idx], x_NxD[idx], y_N[idx], alpha, gamma, d, width=width, k=k)
    i_xt_S, i_ty_S = jax.lax.map(one, idx_SxM)  # one subset's N x N problems at a time

    def mean_se(v_S):
        se = jnp.std(v_S, ddof=1) / math.sqrt(n_subsets) if n_subsets > 1 else jnp.zeros(())
        return jnp.mean(v_S), se

    return (*mean_se(i_xt_S), *mean_se(i_ty_S))


# ---------------------------------------------------------------- public, checked functions


def _check_settings(alpha, gamma, width, k, n, base):
    _checks.check_positive("alpha", alpha)
    _checks.check_positive("gamma", gamma)
    _checks.check_choice("width", width, WIDTHS)
    k = _checks.check_int("k", k, min_value=1)
    if k >= n:
        raise ValueError(f"k must be < the number of samples N = {n}, got {k}")
    return k, _checks.log_base(base)


# RMS spread sqrt(sum_j var_j) within which float32 keeps the squared distances and variances in range:
# estimates measured unchanged (< 0.01%) for data rescaled by 1e-17 .. 1e17 (spread ~1 at scale 1; N = 256,
# 400; Silverman and k-NN widths); at 1e-18 up to -1.3%, beyond 1e-19 0 bits (distances underflow), at 1e18
# Silverman gives 0 bits (the variance's sum of N squares overflows), at 1e19 I(X;T) 6.60 instead of 4.12.
SAFE_SPREAD = (1e-15, 1e15)


def _warn_scale(name, a_NxD) -> None:
    """Warn when concrete samples' RMS spread lies outside ``SAFE_SPREAD`` (0, all rows equal, is fine)."""
    if _checks.is_traced(a_NxD):
        return
    spread = float(np.sqrt(np.sum(np.var(np.asarray(a_NxD, np.float64), axis=0))))
    lo, hi = SAFE_SPREAD
    if spread > 0 and not lo <= spread <= hi:
        warnings.warn(
            f"Rényi: the RMS spread sqrt(sum of column variances) of {name} is {spread:.3g}, outside "
            f"[{lo:g}, {hi:g}], where float32 squared distances and variances stay in range and the estimate "
            f"is scale-free; standardise {name} (e.g. divide by its spread) before calling",
            stacklevel=4,
        )


def _samples(name, a):
    a = _checks.as_array(name, a, min_ndim=2)
    _checks.check_finite(name, a)
    a = flat(a)
    _warn_scale(name, a)
    return a


def _labels(y, n):
    return jnp.asarray(_checks.check_labels("y", y, n=n), jnp.int32)


@partial(jax.jit, static_argnames=("width", "k"))
def _entropy_bits(t_NxD, alpha, gamma, sigma, *, width, k):
    return matrix_entropy(sample_gram(t_NxD, width=width, gamma=gamma, k=k, sigma=sigma), alpha)


@partial(jax.jit, static_argnames=("width", "k"))
def _mi_bits(x_NxD, y_NxE, alpha, gamma, sigma_x, sigma_y, *, width, k):
    a_x = sample_gram(x_NxD, width=width, gamma=gamma, k=k, sigma=sigma_x)
    a_y = sample_gram(y_NxE, width=width, gamma=gamma, k=k, sigma=sigma_y)
    s = matrix_entropy(jnp.stack([a_x, a_y, hadamard(a_x, a_y)]), alpha)
    return s[0] + s[1] - s[2]


def entropy(t, *, alpha=1.01, sigma=None, width="silverman", gamma=1.0, k=10, base=2):
    """S_alpha of samples ``t`` (N, ...) under a Gaussian kernel (``sigma`` or the width rule)."""
    t_NxD = _samples("t", t)
    k, scale = _check_settings(alpha, gamma, width, k, t_NxD.shape[0], base)
    if sigma is not None:
        _checks.check_positive("sigma", sigma)
    return _entropy_bits(t_NxD, alpha, gamma, sigma, width=width, k=k) * (math.log(2.0) / scale)


def label_entropy(y, *, alpha=1.01, base=2):
    """S_alpha of integer labels under the delta kernel: the Rényi entropy of the class frequencies."""
    y_N = _labels(y, None)
    if y_N.ndim != 1:
        raise ValueError(f"y must have rank 1, got shape {tuple(y_N.shape)}")
    _checks.check_positive("alpha", alpha)
    return jax.jit(matrix_entropy)(label_gram(y_N), alpha) * (math.log(2.0) / _checks.log_base(base))


def mi(x, y, *, alpha=1.01, sigma_x=None, sigma_y=None, width="silverman", gamma=1.0, k=10, base=2):
    """I(x; y) = S(A_x) + S(A_y) - S(A_x o A_y) for samples x (N, ...) and y (N, ...), Gaussian kernels."""
    x_NxD, y_NxE = _samples("x", x), _samples("y", y)
    _checks.check_same_n("x", x_NxD, "y", y_NxE)
    k, scale = _check_settings(alpha, gamma, width, k, x_NxD.shape[0], base)
    for name, s in (("sigma_x", sigma_x), ("sigma_y", sigma_y)):
        if s is not None:
            _checks.check_positive(name, s)
    return _mi_bits(x_NxD, y_NxE, alpha, gamma, sigma_x, sigma_y, width=width, k=k) * (math.log(2.0) / scale)


def info_plane(t, x, y, *, alpha=1.01, width="silverman", gamma=1.0, k=10, d=None, base=2):
    """(I(X;T), I(T;Y)) for one layer ``t`` (N, ...), inputs ``x`` (N, ...), integer labels ``y`` (N,).

    Vmap over epochs and layers for a batch (the eigenvalue problems batch); ``d`` is the true width
    when ``t`` carries zero-padded columns."""
    t_NxD, x_NxD = _samples("t", t), _samples("x", x)
    _checks.check_same_n("t", t_NxD, "x", x_NxD)
    y_N = _labels(y, t_NxD.shape[0])
    k, scale = _check_settings(alpha, gamma, width, k, t_NxD.shape[0], base)
    d = t_NxD.shape[1] if d is None else d
    i_xt, i_ty = info_plane_bits(t_NxD, x_NxD, y_N, alpha, gamma, d, width=width, k=k)
    return i_xt * (math.log(2.0) / scale), i_ty * (math.log(2.0) / scale)


def info_plane_subsets(
    t, x, y, key, *, subset: int, n_subsets: int = 4, alpha=1.01, width="silverman", gamma=1.0, k=10, d=None, base=2
):
    """(i_xt, i_xt_se, i_ty, i_ty_se): ``info_plane`` averaged over ``n_subsets`` random subsets of
    ``subset`` rows drawn with ``key``, with the standard error over subsets (0 when n_subsets = 1)."""
    t_NxD, x_NxD = _samples("t", t), _samples("x", x)
    _checks.check_same_n("t", t_NxD, "x", x_NxD)
    y_N = _labels(y, t_NxD.shape[0])
    subset = _checks.check_int("subset", subset, min_value=2, max_value=t_NxD.shape[0])
    n_subsets = _checks.check_int("n_subsets", n_subsets, min_value=1)
    k, scale = _check_settings(alpha, gamma, width, k, subset, base)
    d = t_NxD.shape[1] if d is None else d
    out = info_plane_subsets_bits(
        t_NxD, x_NxD, y_N, key, alpha, gamma, d, width=width, k=k, subset=subset, n_subsets=n_subsets
    )
    return tuple(v * (math.log(2.0) / scale) for v in out)
