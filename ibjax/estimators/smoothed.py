"""Smoothed differential entropy h(P_n * N(0, sigma^2 I)) by Monte Carlo (Goldfeld et al. 2019).

P_n is the empirical measure of the rows of ``s_NxD``, so P_n * N(0, sigma^2 I) is the equal-weight
Gaussian mixture with centres s_i: the law of a noisy layer T = S + Z when S is sampled. The
estimate is h = -mean log p(t) over ``n_mc`` noise draws t = s_i + sigma z around *every* centre,
with log p evaluated by a row-blocked log-sum-exp (never an N x N x D array).

Standard error. Drawing the same number of points around every centre is stratified sampling: the
estimate's variance given the centres is (1 / (N^2 n_mc)) sum_i Var_z[-log p(s_i + sigma z)], the
*within*-centre variance only. The naive std(-log p) / sqrt(count) also counts the spread of the
per-centre means and overstates the error (1.5x for a 2-D Gaussian at sigma = 0.5 and n_mc = 1; 4%
on the randnet reference layer, where the centres' means differ little). So the within-centre
variance is estimated directly: from the n_mc draws of every centre when n_mc >= 2; when
n_mc == 1, from one extra draw around each of a random subset of ``n_var`` centres (pair variance
(f - f')^2 / 2), which are used for the error only, never for the mean.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from ibjax import _checks
from ibjax.estimators._blocks import default_block_size, map_row_blocks, sq_dists

N_VAR = 256  # centres that get an extra draw for the standard error when n_mc == 1


def entropy(s, sigma, key, *, n_mc: int = 1, base=2, block_size: int | None = None):
    """(h, stderr) of h(P_n * N(0, sigma^2 I)) for the rows of ``s`` (N x D), in bits by default."""
    s_NxD, n_mc, block_size, scale = _check(s, sigma, n_mc, block_size, base)
    h, se = entropy_nats(s_NxD, sigma, key, n_mc=n_mc, block_size=block_size, n_var=min(N_VAR, s_NxD.shape[0]))
    return h / scale, se / scale


def entropy_with_labels(s, y, sigma, key, *, n_mc: int = 1, base=2, block_size: int | None = None):
    """(h, h_se, i_ty, i_ty_se): h(T) and I(T;Y) = h(T) - sum_c p(c) h(T | Y=c) for T = S + Z.

    Class-conditional laws are the mixtures of the centres with that label (p(c) = class counts / N).
    Both come from the same draws: a point drawn around centre i contributes -log p(t) to h and
    log p_{y_i}(t) - log p(t) to I(T;Y), so I(T;Y)'s error is that of the paired difference.
    """
    s_NxD, n_mc, block_size, scale = _check(s, sigma, n_mc, block_size, base)
    y_N = _checks.check_labels("y", y, n=s_NxD.shape[0])
    if y_N.ndim != 1:
        raise ValueError(f"y must have rank 1, got shape {tuple(y_N.shape)}")
    out = entropy_with_labels_nats(
        s_NxD,
        jnp.asarray(y_N, jnp.int32),
        sigma,
        key,
        n_mc=n_mc,
        block_size=block_size,
        n_var=min(N_VAR, s_NxD.shape[0]),
    )
    return tuple(v / scale for v in out)


def _check(s, sigma, n_mc, block_size, base):
    s_NxD = _checks.check_samples("s", s)
    if s_NxD.ndim != 2:
        raise ValueError(f"s must have rank 2 (N x D; vmap for leading axes), got shape {tuple(s_NxD.shape)}")
    _checks.check_positive("sigma", sigma)
    n_mc = _checks.check_int("n_mc", n_mc, min_value=1)
    if block_size is None:
        block_size = default_block_size(s_NxD.shape[0] * n_mc)
    block_size = _checks.check_int("block_size", block_size, min_value=1)
    return s_NxD, n_mc, block_size, _checks.log_base(base)


def gaussian_entropy_nats(d: int, sigma):
    """h(N(0, sigma^2 I_d)) in nats."""
    return 0.5 * d * (jnp.log(2.0 * jnp.pi * sigma**2) + 1.0)


def mixture_logpdf(t_QxD, s_NxD, sigma, *, block_size: int, y_Q=None, y_N=None, d_eff=None):
    """log density of t under the equal-weight mixture of N(s_i, sigma^2 I), Q-vector (nats).

    With labels, also the log density under the mixture of the centres sharing the query's label.
    Rows of t are processed ``block_size`` at a time (block_size x N distances in memory).
    ``d_eff``: the true dimension when trailing columns are zero padding (no noise there).
    """
    c_1xD = jnp.mean(s_NxD, axis=0, keepdims=True)  # centring shrinks the |a|^2 + |b|^2 - 2ab cancellation
    s_NxD, t_QxD = s_NxD - c_1xD, t_QxD - c_1xD
    n, d = s_NxD.shape
    inv_2var = 0.5 / sigma**2

    def block(idx_B):
        a_BxN = -inv_2var * sq_dists(t_QxD[idx_B], s_NxD)
        lse_B = jax.nn.logsumexp(a_BxN, axis=1)
        if y_Q is None:
            return lse_B
        same_BxN = y_Q[idx_B][:, None] == y_N[None, :]
        lse_y_B = jax.nn.logsumexp(jnp.where(same_BxN, a_BxN, -jnp.inf), axis=1)
        return lse_B, lse_y_B - jnp.log(jnp.sum(same_BxN, axis=1).astype(a_BxN.dtype))

    norm = 0.5 * (d if d_eff is None else d_eff) * jnp.log(2.0 * jnp.pi * sigma**2)
    out = map_row_blocks(block, t_QxD.shape[0], block_size=min(block_size, t_QxD.shape[0]))
    if y_Q is None:
        return out - math.log(n) - norm
    return out[0] - math.log(n) - norm, out[1] - norm


def _queries(s_NxD, sigma, key, n_mc: int, n_var: int, mask_D=None):
    """Noise draws around every centre (rows i*n_mc .. i*n_mc + n_mc - 1 belong to centre i); when
    n_mc == 1, ``n_var`` extra rows around the random centres ``pick_K`` follow. One call to the
    generator (each threefry call adds ~1 s of compile time on CPU). ``mask_D``: 0 on zero-padding
    columns, which get no noise (so padding leaves the estimate's law unchanged)."""
    n, d = s_NxD.shape
    n_extra = n_var if n_mc == 1 else 0
    z = jax.random.normal(key, ((n * n_mc + n_extra) * d + (n if n_extra else 0),), s_NxD.dtype)
    m_D = jnp.ones((d,), s_NxD.dtype) if mask_D is None else jnp.asarray(mask_D, s_NxD.dtype)
    noise_NxMxD = sigma * z[: n * n_mc * d].reshape(n, n_mc, d) * m_D[None, None, :]
    t_QxD = (s_NxD[:, None, :] + noise_NxMxD).reshape(n * n_mc, d)
    if not n_extra:
        return t_QxD, None
    pick_K = jax.lax.top_k(z[-n:], n_var)[1]  # a uniformly random subset of the centres
    extra_KxD = s_NxD[pick_K] + sigma * z[n * d : (n + n_var) * d].reshape(n_var, d) * m_D[None, :]
    return jnp.concatenate([t_QxD, extra_KxD]), pick_K


def stratified_mean(f_Q, n: int, n_mc: int, pick_K):
    """(mean, stderr) of per-draw values laid out as by ``_queries`` (within-centre variance only)."""
    if n_mc > 1:
        f_NxM = f_Q.reshape(n, n_mc)
        var_within = jnp.mean(jnp.var(f_NxM, axis=1, ddof=1))
        return jnp.mean(f_NxM), jnp.sqrt(var_within / (n * n_mc))
    main_N, extra_K = f_Q[:n], f_Q[n:]
    var_within = 0.5 * jnp.mean((main_N[pick_K] - extra_K) ** 2)
    return jnp.mean(main_N), jnp.sqrt(var_within / n)


def _d_eff(mask_D):
    return None if mask_D is None else jnp.sum(jnp.asarray(mask_D, jnp.float32))


@partial(jax.jit, static_argnames=("n_mc", "block_size", "n_var"))
def entropy_nats(s_NxD, sigma, key, *, n_mc: int, block_size: int, n_var: int, mask_D=None):
    """Unchecked core of ``entropy``: (h, stderr) in nats; ``n_var`` centres get the extra draw.
    ``mask_D`` (optional, 1 on real columns, 0 on zero padding): h of the unpadded columns."""
    s_NxD = jnp.asarray(s_NxD, jnp.float32)
    t_QxD, pick_K = _queries(s_NxD, sigma, key, n_mc, n_var, mask_D)
    logp_Q = mixture_logpdf(t_QxD, s_NxD, sigma, block_size=block_size, d_eff=_d_eff(mask_D))
    return stratified_mean(-logp_Q, s_NxD.shape[0], n_mc, pick_K)


@partial(jax.jit, static_argnames=("n_mc", "block_size", "n_var"))
def entropy_with_labels_nats(s_NxD, y_N, sigma, key, *, n_mc: int, block_size: int, n_var: int, mask_D=None):
    """Unchecked core of ``entropy_with_labels`` (nats; y_N int32; ``mask_D`` as in ``entropy_nats``)."""
    s_NxD = jnp.asarray(s_NxD, jnp.float32)
    n = s_NxD.shape[0]
    t_QxD, pick_K = _queries(s_NxD, sigma, key, n_mc, n_var, mask_D)
    y_Q = jnp.repeat(y_N, n_mc) if pick_K is None else jnp.concatenate([y_N, y_N[pick_K]])
    logp_Q, logp_y_Q = mixture_logpdf(
        t_QxD, s_NxD, sigma, block_size=block_size, y_Q=y_Q, y_N=y_N, d_eff=_d_eff(mask_D)
    )
    h, h_se = stratified_mean(-logp_Q, n, n_mc, pick_K)
    i_ty, i_ty_se = stratified_mean(logp_y_Q - logp_Q, n, n_mc, pick_K)
    return h, h_se, i_ty, i_ty_se
