"""Information plane of a noisy network by sample propagation (Goldfeld et al. 2019).

Every layer is T_l = S_l + Z_l with Z_l ~ N(0, sigma^2 I), S_l computed from the noisy T_{l-1}. The
network enters only through ``sample_s(key) -> (S_1, ..., S_L)``, one noisy forward pass of all N
inputs (each S_l is N x d_l); e.g. ``lambda k: models.noisy_apply(params, x, k, sigma)[2]``.

* h(T_l): smoothed entropy of the N samples S_l of one pass (X uniform over the N inputs).
* h(T_l | X): for the first layer S_1 is a function of x, so h(T_1 | X = x) = h(Z) exactly; for
  deeper layers, ``n_c`` further passes give n_c samples of S_l per input, and h(T_l | X = x) is the
  smoothed entropy of that n_c-centre mixture, averaged over inputs.
* I(T_l; Y) = h(T_l) - sum_y p(y) h(T_l | Y = y) from the same draws as h(T_l) (class mixtures by
  masks, p(y) = class counts / N), with the paired-difference standard error.

I(X;T_l)'s standard error combines the independent Monte Carlo errors of h(T_l) and h(T_l | X) in
quadrature. Everything is a jax function of arrays: vmap over epochs by vmapping a ``sample_s`` built
from stacked parameters. Layers are zero-padded to the widest and run under one ``lax.map`` body
(padding columns get no noise and do not count in the dimension, so the estimate's law is that of
the unpadded layer): one compile whatever the depth.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ibjax import _checks
from ibjax.estimators import smoothed
from ibjax.estimators._blocks import default_block_size

_COND_ELEMENTS = 2**22  # queries x centres per lax.map step of the per-input conditional entropies


class NoisyPlane(NamedTuple):
    i_xt: jax.Array  # L
    i_ty: jax.Array  # L
    i_xt_se: jax.Array  # L
    i_ty_se: jax.Array  # L


def info_plane(
    sample_s: Callable,
    y,
    sigma,
    key,
    *,
    n_c: int = 32,
    n_mc: int = 1,
    n_mc_cond: int | None = None,
    first_layer_exact: bool = True,
    base=2,
    block_size: int | None = None,
) -> NoisyPlane:
    """I(X;T_l), I(T_l;Y) and their standard errors for every layer of ``sample_s``'s passes.

    ``n_mc`` noise draws per centre for h(T_l) and I(T_l;Y); ``n_mc_cond`` (default ``n_mc``) per
    centre of each input's conditional mixture (these are averaged over N inputs, so 1 is usually
    plenty). ``first_layer_exact``: the first S is a deterministic function of the input (true for
    ``noisy_apply``), so its conditional entropy is the closed form h(Z).
    """
    y_N = _checks.check_labels("y", y)
    if y_N.ndim != 1:
        raise ValueError(f"y must have rank 1, got shape {tuple(y_N.shape)}")
    _checks.check_positive("sigma", sigma)
    n_c = _checks.check_int("n_c", n_c, min_value=1)
    n_mc = _checks.check_int("n_mc", n_mc, min_value=1)
    n_mc_cond = n_mc if n_mc_cond is None else _checks.check_int("n_mc_cond", n_mc_cond, min_value=1)
    scale = _checks.log_base(base)
    if block_size is not None:
        block_size = _checks.check_int("block_size", block_size, min_value=1)
    if not callable(sample_s):
        raise ValueError(f"sample_s must be a callable key -> tuple of N x d_l arrays, got {type(sample_s).__name__}")
    k_pass, k_h, k_cond, k_hc = jax.random.split(key, 4)
    shapes = jax.eval_shape(sample_s, k_pass)
    if not isinstance(shapes, (tuple, list)) or not shapes:
        raise ValueError(f"sample_s must return a non-empty tuple of per-layer arrays, got {type(shapes).__name__}")
    need_cond = len(shapes) > 1 or not first_layer_exact
    if need_cond:  # the pass and the n_c conditional passes as one vmapped call (one compile of the network)
        passes = jax.vmap(sample_s)(jnp.concatenate([k_pass[None], jax.random.split(k_cond, n_c)]))
        s_layers = _layers(tuple(p[0] for p in passes), y_N.shape[0])
    else:
        s_layers = _layers(sample_s(k_pass), y_N.shape[0])
    y_N = jnp.asarray(y_N, jnp.int32)
    s_LxNxD, mask_LxD = _pad(s_layers)
    xs = {"s": s_LxNxD, "mask": mask_LxD, "l": jnp.arange(len(s_layers))}
    if need_cond:
        xs["cond"] = _pad([_flat(p[1:], lead=1) for p in passes])[0]  # L x n_c x N x D
    bs = block_size or default_block_size(y_N.shape[0] * n_mc)
    n_var = min(smoothed.N_VAR, y_N.shape[0])

    def layer(a):  # one compiled body for every layer (zero-padded to the widest, no noise in padding)
        h, h_se, i_ty, i_ty_se = smoothed.entropy_with_labels_nats(
            a["s"], y_N, sigma, jax.random.fold_in(k_h, a["l"]), n_mc=n_mc, block_size=bs, n_var=n_var, mask_D=a["mask"]
        )
        hz = smoothed.gaussian_entropy_nats(jnp.sum(a["mask"]), sigma)
        if not need_cond:
            return h - hz, i_ty, h_se, i_ty_se
        hc, hc_se = conditional_entropy_nats(
            a["cond"], sigma, jax.random.fold_in(k_hc, a["l"]), n_mc=n_mc_cond, mask_D=a["mask"]
        )
        exact = first_layer_exact & (a["l"] == 0)
        hc, hc_se = jnp.where(exact, hz, hc), jnp.where(exact, 0.0, hc_se)
        return h - hc, i_ty, jnp.sqrt(h_se**2 + hc_se**2), i_ty_se

    i_xt, i_ty, i_xt_se, i_ty_se = (v / scale for v in jax.lax.map(layer, xs))
    return NoisyPlane(i_xt, i_ty, i_xt_se, i_ty_se)


def _pad(ts):
    """(..., N, d_l) arrays -> (L, ..., N, D_max) zero-padded, and the L x D_max mask of real columns."""
    d_max = max(t.shape[-1] for t in ts)
    pad = lambda t: jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, d_max - t.shape[-1])])
    mask = jnp.asarray([[1.0] * t.shape[-1] + [0.0] * (d_max - t.shape[-1]) for t in ts], jnp.float32)
    return jnp.stack([pad(t) for t in ts]), mask


def _layers(s_layers, n: int):
    if not isinstance(s_layers, (tuple, list)) or not s_layers:
        raise ValueError(f"sample_s must return a non-empty tuple of per-layer arrays, got {type(s_layers).__name__}")
    out = []
    for l, s in enumerate(s_layers):
        s = _flat(s)
        if s.shape[0] != n:
            raise ValueError(f"sample_s layer {l} has {s.shape[0]} samples but y has {n}")
        _checks.check_finite(f"sample_s layer {l}", s)
        out.append(s)
    return tuple(out)


def _flat(s, *, lead: int = 0):
    """Per-sample activations as one feature axis: (lead axes, N, d1, d2, ...) -> (lead axes, N, d)."""
    s = jnp.asarray(s)
    if s.ndim < lead + 2:
        raise ValueError(f"sample_s must return arrays with a sample axis and features, got shape {s.shape}")
    return s.reshape(s.shape[: lead + 1] + (-1,))


@partial(jax.jit, static_argnames=("n_mc",))
def conditional_entropy_nats(s_CxNxD, sigma, key, *, n_mc: int = 1, mask_D=None):
    """(mean over inputs x of h(P_{n_c, x} * N(0, sigma^2 I)), stderr) in nats, where input x's
    centres are s_CxNxD[:, x]; inputs run in lax.map batches of bounded memory. ``mask_D``: 0 on
    zero-padding columns (see ``smoothed.entropy_nats``)."""
    n_c, n, d = s_CxNxD.shape
    s_NxCxD = jnp.swapaxes(s_CxNxD, 0, 1)
    n_var = max(1, min(n_c, n_c // 8)) if n_mc == 1 else 0
    n_q = n_c * n_mc + n_var
    per_input = lambda args: smoothed.entropy_nats(
        args[0], sigma, args[1], n_mc=n_mc, block_size=n_q, n_var=n_var, mask_D=mask_D
    )
    batch = max(1, min(n, _COND_ELEMENTS // (n_q * n_c)))
    h_N, se_N = jax.lax.map(per_input, (s_NxCxD, jax.random.split(key, n)), batch_size=batch)
    return jnp.mean(h_N), jnp.sqrt(jnp.sum(se_N**2)) / n
