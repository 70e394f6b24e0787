"""The information-bottleneck curve of a discrete joint p(x, y), and how far a layer is from it.

The iterative IB algorithm (Tishby, Pereira & Bialek 1999) alternates, for a trade-off ``beta``,

    p(t) = sum_x p(x) p(t|x),   p(y|t) = sum_x p(x) p(t|x) p(y|x) / p(t),
    p(t|x) ∝ p(t) exp(-beta KL[p(y|x) || p(y|t)]),

from a random encoder; ``curve`` runs it for a grid of beta x random restarts in one jitted,
vmapped call and keeps, per beta, the restart with the lowest Lagrangian I(X;T) - beta I(T;Y). The
IB curve is the upper concave envelope of the points found (``Curve.at``: I(T;Y) at a given
I(X;T), flat at I(X;Y) beyond the last point). Inputs with the same p(y|x) are merged first (the
IB solution never separates them, and I(X;T) is unchanged), so the 12-bit tasks run on their few
distinct label distributions; ``merge=False`` keeps every input.

Caveat (Kolchinsky, Tracey & Van Kuyk 2019): when Y is a deterministic function of X the curve is
the trivial corner I(T;Y) = min(I(X;T), H(Y)), and the IB Lagrangian finds only its two ends;
``deterministic`` detects this and ``Curve.caveat`` says it.

``consistency_gap`` measures how far an encoder is from satisfying the IB self-consistent equations:
E_x KL[p(t|x) || q_beta(t|x)], q_beta(t|x) ∝ p(t) exp(-beta KL[p(y|x) || p(y|t)]) built from the
encoder's own p(t) and p(y|t), minimised over a beta grid: zero at an IB fixed point, large for a
random encoder. ``hard_plane`` gives a deterministic layer's exact (I(X;T), I(T;Y)) under the true
p(y|x) from the symbol each input maps to. All values in bits.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp, xlogy

LN2 = float(np.log(2.0))
_TINY = 1e-30

CAVEAT = (
    "Y is a deterministic function of X: the IB curve is the trivial corner I(T;Y) = min(I(X;T), H(Y)) "
    "(Kolchinsky, Tracey & Van Kuyk 2019), so a distance to it says only how much of H(Y) a layer keeps"
)


def _check_joint(p_x, p_yx):
    p_x, p_yx = np.asarray(p_x, np.float64), np.asarray(p_yx, np.float64)
    if p_x.ndim != 1 or p_yx.ndim != 2 or p_yx.shape[0] != p_x.shape[0]:
        raise ValueError(f"p_x must be X and p_yx X x Y, got shapes {p_x.shape} and {p_yx.shape}")
    if not (np.isfinite(p_x).all() and np.isfinite(p_yx).all()) or (p_x < 0).any() or (p_yx < 0).any():
        raise ValueError("p_x and p_yx must be finite and non-negative")
    if abs(p_x.sum() - 1) > 1e-6 or np.abs(p_yx.sum(1) - 1).max() > 1e-6:
        raise ValueError(
            f"p_x must sum to 1 (got {p_x.sum():.6g}) and every row of p_yx too "
            f"(worst {p_yx.sum(1)[np.abs(p_yx.sum(1) - 1).argmax()]:.6g})"
        )
    return p_x, p_yx


def deterministic(p_yx, tol: float = 1e-9) -> bool:
    """Is Y a function of X (every row of p(y|x) a point mass)?"""
    return bool((np.asarray(p_yx).max(axis=1) >= 1 - tol).all())


def merge_rows(p_x, p_yx, decimals: int = 9):
    """Inputs with equal p(y|x) merged: (p_x', p_yx', index of each input's merged row)."""
    p_x, p_yx = _check_joint(p_x, p_yx)
    rows, inverse = np.unique(np.round(p_yx, decimals), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    return (
        np.bincount(inverse, weights=p_x, minlength=len(rows)),
        p_yx[np.unique(inverse, return_index=True)[1]],
        inverse,
    )


def _stats(enc_XxT, p_x, p_yx):
    p_t = p_x @ enc_XxT
    p_ty = enc_XxT.T @ (p_x[:, None] * p_yx)
    p_y_t = p_ty / jnp.maximum(p_t, _TINY)[:, None]
    return p_t, p_ty, p_y_t


def _kl_XxT(p_yx, p_y_t):
    """KL[p(y|x) || p(y|t)] in nats for every (x, t)."""
    neg_h_X = jnp.sum(xlogy(p_yx, p_yx), axis=1)
    return neg_h_X[:, None] - p_yx @ jnp.log(jnp.maximum(p_y_t, _TINY)).T


def informations(enc_XxT, p_x, p_yx):
    """(I(X;T), I(T;Y)) in bits of an encoder p(t|x)."""
    p_t, p_ty, _ = _stats(enc_XxT, p_x, p_yx)
    p_y = p_x @ p_yx
    i_xt = jnp.sum(p_x[:, None] * xlogy(enc_XxT, enc_XxT / jnp.maximum(p_t, _TINY)[None]))
    i_ty = jnp.sum(xlogy(p_ty, p_ty / jnp.maximum(p_t[:, None] * p_y[None], _TINY)))
    return jnp.maximum(i_xt, 0.0) / LN2, jnp.maximum(i_ty, 0.0) / LN2


def ib_step(log_enc_XxT, p_x, p_yx, beta):
    """One iteration of the self-consistent equations, in the log domain."""
    p_t, _, p_y_t = _stats(jnp.exp(log_enc_XxT), p_x, p_yx)
    logits = jnp.log(jnp.maximum(p_t, _TINY))[None] - beta * _kl_XxT(p_yx, p_y_t)
    return logits - logsumexp(logits, axis=1, keepdims=True)


@partial(jax.jit, static_argnames=("n_iter",))
def iterate(log_enc_XxT, p_x, p_yx, beta, *, n_iter: int = 500):
    """``n_iter`` IB iterations from ``log_enc_XxT`` at trade-off ``beta``: the final log encoder."""
    return jax.lax.fori_loop(0, n_iter, lambda _, le: ib_step(le, p_x, p_yx, beta), log_enc_XxT)


class Curve(NamedTuple):
    beta_B: np.ndarray
    i_xt_B: np.ndarray  # bits, best restart per beta
    i_ty_B: np.ndarray
    lagrangian_B: np.ndarray  # I(X;T) - beta I(T;Y), bits
    encoder_BxXxT: np.ndarray  # best encoder per beta, over the inputs given (merged rows expanded back)
    hull_xt: np.ndarray  # upper concave envelope of (0, 0), the points and (H(X), I(X;Y))
    hull_ty: np.ndarray
    i_xy: float
    h_y: float
    caveat: str  # "" unless Y is deterministic

    def at(self, i_xt) -> np.ndarray:
        """The IB curve's I(T;Y) at ``i_xt`` bits (flat at I(X;Y) beyond the envelope's last point)."""
        return np.interp(np.asarray(i_xt, np.float64), self.hull_xt, self.hull_ty)

    def distance(self, i_xt, i_ty) -> np.ndarray:
        """How far below the curve a point is, in I(T;Y) at equal I(X;T) (bits; >= 0 up to estimation error)."""
        return self.at(i_xt) - np.asarray(i_ty, np.float64)

    def xt_needed(self, i_ty) -> np.ndarray:
        """The least I(X;T) at which the curve reaches ``i_ty`` bits (inf more than ``tol`` above its top,
        float32 rounding of an exact plane up to ``tol`` counted as the top)."""
        tol = 1e-4
        k = int(np.argmax(self.hull_ty)) + 1  # the rising part: strictly increasing up to the top
        ty = np.asarray(i_ty, np.float64)
        top = self.hull_ty[k - 1]
        return np.where(ty <= top + tol, np.interp(np.minimum(ty, top), self.hull_ty[:k], self.hull_xt[:k]), np.inf)

    def excess(self, i_xt, i_ty) -> np.ndarray:
        """How far right of the curve a point is: I(X;T) beyond what the curve needs for its I(T;Y) (bits)."""
        return np.asarray(i_xt, np.float64) - self.xt_needed(i_ty)


def upper_hull(x, y):
    """Upper concave envelope of points (x, y), as increasing x with its y (monotone chain)."""
    order = np.lexsort((-np.asarray(y), np.asarray(x)))
    hull = []
    for px, py in zip(np.asarray(x, np.float64)[order], np.asarray(y, np.float64)[order]):
        while (
            len(hull) >= 2
            and ((hull[-1][0] - hull[-2][0]) * (py - hull[-2][1]) - (hull[-1][1] - hull[-2][1]) * (px - hull[-2][0]))
            >= 0
        ):
            hull.pop()
        if not hull or px > hull[-1][0]:
            hull.append((px, py))
    h = np.asarray(hull)
    return h[:, 0], np.maximum.accumulate(h[:, 1])


def entropy_bits(p) -> float:
    p = np.asarray(p, np.float64).ravel()
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def curve(
    p_x,
    p_yx,
    betas,
    *,
    n_clusters: int | None = None,
    n_restarts: int = 4,
    n_iter: int = 500,
    key=None,
    merge: bool = True,
) -> Curve:
    """The IB curve of p(x) p(y|x) over ``betas`` (one jitted call: betas x restarts vmapped)."""
    p_x0, p_yx0 = _check_joint(p_x, p_yx)
    betas = np.asarray(betas, np.float64).ravel()
    if betas.size < 1 or not (np.isfinite(betas).all() and (betas > 0).all()):
        raise ValueError(f"betas must be positive and finite, got {betas[:8].tolist()}")
    if n_restarts < 1 or n_iter < 1:
        raise ValueError(f"n_restarts and n_iter must be >= 1, got {n_restarts}, {n_iter}")
    if merge:
        p_xm, p_yxm, inverse = merge_rows(p_x0, p_yx0)
    else:
        p_xm, p_yxm, inverse = p_x0, p_yx0, np.arange(len(p_x0))
    n_t = int(n_clusters or min(len(p_xm) + 1, 64))
    if n_t < 2:
        raise ValueError(f"n_clusters must be >= 2, got {n_t}")
    key = jax.random.key(0) if key is None else key
    k_init, k_anneal = jax.random.split(key)
    px, pyx = jnp.asarray(p_xm, jnp.float32), jnp.asarray(p_yxm, jnp.float32)
    init = jax.random.normal(k_init, (n_restarts, len(p_xm), n_t))
    init = init - logsumexp(init, axis=2, keepdims=True)
    order = np.argsort(betas)
    out = _solve(
        init, px, pyx, jnp.asarray(betas, jnp.float32), jnp.asarray(betas[order], jnp.float32), k_anneal, n_iter=n_iter
    )
    i_xt, i_ty, log_enc = (
        np.concatenate([np.asarray(r), np.asarray(a)[np.argsort(order)][:, None]], axis=1)
        for r, a in zip(out[:3], out[3:])
    )  # B x (R + 1): the restarts and the annealed path
    i_xt, i_ty = i_xt.astype(np.float64), i_ty.astype(np.float64)
    lag = i_xt - betas[:, None] * i_ty
    best = lag.argmin(axis=1)
    rows = np.arange(len(betas))
    enc = np.exp(np.asarray(log_enc)[rows, best])[:, inverse]
    h_x, h_y = entropy_bits(p_x0), entropy_bits(p_x0 @ p_yx0)
    i_xy = float(np.sum(xlogy(p_x0[:, None] * p_yx0, p_yx0 / np.maximum(p_x0 @ p_yx0, _TINY)[None])) / LN2)
    # achievable ends: T constant; T = the merged input (its distinct p(y|x)); T = X
    hx, hy = upper_hull(np.r_[0.0, i_xt.ravel(), entropy_bits(p_xm), h_x], np.r_[0.0, i_ty.ravel(), i_xy, i_xy])
    return Curve(
        betas,
        i_xt[rows, best],
        i_ty[rows, best],
        lag[rows, best],
        enc,
        hx,
        hy,
        i_xy,
        h_y,
        CAVEAT if deterministic(p_yx0) else "",
    )


@partial(jax.jit, static_argnames=("n_iter",))
def _solve(init_RxXxT, p_x, p_yx, betas_B, sorted_B, key, *, n_iter):
    """Random restarts for every beta (vmapped), and one annealed path over the sorted betas (each
    beta starts from the last one's encoder, slightly perturbed so that clusters can split)."""

    def one(le, beta):
        le = iterate(le, p_x, p_yx, beta, n_iter=n_iter)
        return (*informations(jnp.exp(le), p_x, p_yx), le)

    over_restarts = jax.vmap(one, in_axes=(0, None))
    restarts = jax.vmap(over_restarts, in_axes=(None, 0))(init_RxXxT, betas_B)

    def anneal(le, inp):
        beta, k = inp
        le = le + 1e-2 * jax.random.normal(k, le.shape)
        i_xt, i_ty, le = one(le - logsumexp(le, axis=1, keepdims=True), beta)
        return le, (i_xt, i_ty, le)

    start = 1e-2 * jax.random.normal(key, init_RxXxT.shape[1:])
    _, path = jax.lax.scan(anneal, start, (sorted_B, jax.random.split(key, sorted_B.shape[0])))
    return (*restarts, *path)


@jax.jit
def consistency_gap(enc_XxT, p_x, p_yx, betas_B):
    """E_x KL[p(t|x) || q_beta(t|x)] in bits for each beta (see the module docstring)."""
    p_t, _, p_y_t = _stats(enc_XxT, p_x, p_yx)
    kl_XxT = _kl_XxT(p_yx, p_y_t)
    log_pt = jnp.log(jnp.maximum(p_t, _TINY))

    def gap(beta):
        log_q = log_pt[None] - beta * kl_XxT
        log_q = log_q - logsumexp(log_q, axis=1, keepdims=True)
        own = jnp.where(enc_XxT > 0, jnp.log(jnp.maximum(enc_XxT, _TINY)) - log_q, 0.0)
        return jnp.sum(p_x[:, None] * enc_XxT * own) / LN2

    return jax.lax.map(gap, betas_B)


def symbol_ids(codes_NxD):
    """Dense id of each row's symbol (equal integer rows, equal id; ids 0..n_symbols-1 by sorted order)."""
    from ibjax.estimators.binning import lexsort_rows

    perm = lexsort_rows(codes_NxD)
    srt = codes_NxD[perm]
    new = jnp.concatenate([jnp.array([True]), jnp.any(srt[1:] != srt[:-1], axis=1)])
    return jnp.zeros(codes_NxD.shape[0], jnp.int32).at[perm].set(jnp.cumsum(new) - 1)


def hard_plane(ids_N, p_x, p_yx):
    """(I(X;T), I(T;Y)) in bits of the deterministic encoder x -> symbol ``ids_N[x]`` under the true p(y|x)."""
    n = ids_N.shape[0]
    p_t = jax.ops.segment_sum(p_x, ids_N, num_segments=n)
    p_ty = jax.ops.segment_sum(p_x[:, None] * p_yx, ids_N, num_segments=n)
    p_y = p_x @ p_yx
    i_xt = -jnp.sum(xlogy(p_t, p_t))
    i_ty = jnp.sum(xlogy(p_ty, p_ty / jnp.maximum(p_t[:, None] * p_y[None], _TINY)))
    return jnp.maximum(i_xt, 0.0) / LN2, jnp.maximum(i_ty, 0.0) / LN2


def hard_consistency_gap(ids_N, p_x, p_yx, level_N, rows_LxY, betas_B):
    """``consistency_gap`` of a deterministic encoder given by symbol ids, without an N x N matrix:
    q_beta depends on x only through p(y|x), so the normaliser is computed once per distinct row
    (``merge_rows``: ``rows_LxY`` and each input's row ``level_N``)."""
    n = ids_N.shape[0]
    p_t = jax.ops.segment_sum(p_x, ids_N, num_segments=n)
    p_y_t = jax.ops.segment_sum(p_x[:, None] * p_yx, ids_N, num_segments=n) / jnp.maximum(p_t, _TINY)[:, None]
    kl_LxT = jnp.maximum(_kl_XxT(rows_LxY, p_y_t), 0.0)
    kl_own_N = kl_LxT[level_N, ids_N]  # the very numbers in the normaliser: float32 error cancels at large beta
    log_pt = jnp.where(p_t > 0, jnp.log(jnp.maximum(p_t, _TINY)), -jnp.inf)

    def gap(beta):
        log_z_L = logsumexp(log_pt[None] - beta * kl_LxT, axis=1)
        return jnp.sum(p_x * (-log_pt[ids_N] + beta * kl_own_N + log_z_L[level_N])) / LN2

    return jax.lax.map(gap, betas_B)


def layer_ids(apply_fn, params, x_NxD, *, n_bins: int = 30, value_range=(-1.0, 1.0)):
    """Symbol id of every input in every layer (L x N), the layers binned as ``binning`` does with
    ``n_bins`` on ``value_range`` (zero-padded to the widest: a zero column is one constant code)."""
    from ibjax.estimators.binning import codes_n_bins
    from ibjax.infoplane import pad_layers

    t_LxNxD, _ = pad_layers(apply_fn(params, x_NxD)[1])
    return jax.vmap(symbol_ids)(codes_n_bins(t_LxNxD, n_bins=n_bins, value_range=value_range))


def layer_planes(apply_fn, params_I, x_NxD, p_yx, *, n_bins: int = 30, value_range=(-1.0, 1.0)):
    """Exact binned planes under the true p(y|x): (I(X;T), I(T;Y)) in bits, I x L, for every item of
    ``params_I`` (a leading axis I) and every layer of ``apply_fn(params, x) -> (logits, acts)``, each
    input weighing 1/N. With one-hot p(y|x) this is the binning estimator's plane on the same inputs."""
    n = x_NxD.shape[0]
    p_x = jnp.full(n, 1.0 / n, jnp.float32)
    p_yx = jnp.asarray(p_yx, jnp.float32)
    if p_yx.shape[0] != n:
        raise ValueError(f"p_yx has {p_yx.shape[0]} rows, x_NxD {n} inputs")

    def planes(params_I, x, p_x, p_yx):  # data as arguments, not constants: one program for every task
        def one(params):
            ids_LxN = layer_ids(apply_fn, params, x, n_bins=n_bins, value_range=value_range)
            return jax.vmap(lambda ids: hard_plane(ids, p_x, p_yx))(ids_LxN)

        return jax.lax.map(one, params_I)

    return jax.tree.map(np.asarray, jax.jit(planes)(params_I, jnp.asarray(x_NxD), p_x, p_yx))


@jax.jit
def min_hard_gaps(ids_SxLxN, p_x, p_yx, level_N, rows_LxY, betas_B):
    """``hard_consistency_gap`` minimised over ``betas_B`` for every encoder of ``ids_SxLxN`` (S x L)."""
    gap = lambda ids: hard_consistency_gap(ids, p_x, p_yx, level_N, rows_LxY, betas_B).min()
    return jax.vmap(jax.vmap(gap))(ids_SxLxN)


def p_y_given_x(meta: dict, y_N) -> np.ndarray:
    """p(y|x) of a binary task, N x 2: the dataset's true ``meta["p_y1_given_x"]`` when it has one (a task whose
    labels were drawn), else one-hot of its labels ``y_N`` (deterministic labels)."""
    p1 = np.asarray(meta.get("p_y1_given_x", np.asarray(y_N, np.float64)), np.float64)
    return np.stack([1 - p1, p1], axis=1)


def bound_analysis(
    apply_fn, params_RxE, x_NxD, p_yx, *, n_final: int, n_bins: int = 30, betas: int = 64, n_iter: int = 500
) -> dict:
    """Every layer of R runs x E kept epochs (``params_RxE``: stacked params) against the IB bound of the uniform
    p(x) and ``p_yx`` (N x Y): the exact binned plane under the true p(y|x) ("i_xt", "i_ty": R x E x L), the IB
    ``curve`` (``betas`` values geomspace(1, 2000), ``n_iter`` iterations) and, for the first ``n_final`` runs at
    their last epoch, each layer's IB-equation gap min over beta ("gap", n_final x L), the same symbols shuffled
    over the inputs ("gap_random": a random encoder with the layer's H(T)), the IB solutions' own gaps at their
    beta ("gap_ib", every 8th) and the best hard encoder's ("gap_best_hard": T = the inputs' p(y|x) class)."""
    n_r, n_e = jax.tree.leaves(params_RxE)[0].shape[:2]
    flat = jax.tree.map(lambda a: a.reshape((n_r * n_e,) + a.shape[2:]), params_RxE)
    i_xt, i_ty = (v.reshape(n_r, n_e, -1) for v in layer_planes(apply_fn, flat, x_NxD, p_yx, n_bins=n_bins))
    n = len(p_yx)
    p_x, beta_B = np.full(n, 1.0 / n), np.geomspace(1.0, 2000.0, betas)
    ib_curve = curve(p_x, p_yx, beta_B, n_iter=n_iter)
    _, rows, level = merge_rows(p_x, p_yx)
    f32 = lambda a: np.asarray(a, np.float32)
    gap_betas = np.geomspace(1.0, 1e7, 128)  # hard encoders reach their fixed point only as beta grows
    gap = lambda ids: np.asarray(min_hard_gaps(ids, f32(p_x), f32(p_yx), level, f32(rows), f32(gap_betas)))
    final = jax.tree.map(lambda a: a[:n_final, -1], params_RxE)
    one = lambda p, x: layer_ids(apply_fn, p, x, n_bins=n_bins)
    ids = np.asarray(jax.jit(jax.vmap(one, in_axes=(0, None)))(final, x_NxD))  # S x L x N
    shuffled = np.random.default_rng(0).permuted(ids, axis=2)  # the layer's own symbols over other inputs
    own = jax.vmap(lambda e, b: consistency_gap(e, f32(p_x), f32(p_yx), b[None])[0])(
        f32(ib_curve.encoder_BxXxT[::8]), f32(beta_B[::8])
    )
    return {
        "i_xt": i_xt,
        "i_ty": i_ty,
        "curve": ib_curve,
        "gap": gap(ids),
        "gap_random": gap(shuffled),
        "gap_ib": np.asarray(own),
        "gap_best_hard": float(gap(level[None, None].astype(np.int32))[0, 0]),
    }
