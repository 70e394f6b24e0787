"""Exact information plane of a quantized network: symbols counted, no bins, no noise.

A quantized layer (``ibjax.quantize``, Lorenzen et al. ICLR 2022) takes finitely many values, so
its distribution over the N inputs is known exactly: each row of integer codes ``codes_NxD`` is a
symbol, and

* ``I(X;T) = H(T) - H(T|X)``, with ``H(T|X)`` taken over the distinct inputs (rows of ``x``): zero
  for a deterministic network on distinct inputs, where ``I(X;T) = H(T)``; exact also when inputs
  repeat or when T varies for one input (pooled epochs);
* ``I(T;Y) = H(Y) - H(Y|T)``, summed pointwise from the counts, so two ~log N entropies never cancel.

Counting: rows are sorted lexicographically by exact integer keys (``binning.lexsort_rows``: codes
packed into 32-bit words, stable single-key sorts), equal rows are then adjacent and their run
lengths are the counts; no hashing, no N x N. Counts are integers; the entropies are computed from
them in the default float dtype: float64 under ``jax_enable_x64`` (agreement with a brute-force
count to ~1e-12 bits), else float32 (~1e-6 bits at 12 bits).

Activations given as quantized float values (what ``models.mlp(..., quant_bits=b)`` returns) are
turned into codes by ``dense_codes``: each value's rank among the distinct values of the layer, a
relabelling of the quantizer's codes (entropies do not change). A layer with more distinct values
than ``levels`` is not quantized: ``info_plane_values`` refuses it.

Everything is jittable; public functions take leading batch axes: codes (..., N, D), y (..., N).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ibjax import _checks
from ibjax.estimators import binning
from ibjax.estimators._blocks import map_leading


def _float():
    return jnp.result_type(float)  # float64 under jax_enable_x64, else float32


def _counts(new_N):
    """Run lengths (int32) of sorted rows; ``new_N`` flags the first row of each run."""
    n = new_N.shape[0]
    idx_N = jnp.arange(n, dtype=jnp.int32)
    start_N = jax.lax.cummax(jnp.where(new_N, idx_N, 0))
    ends_here_N = jnp.concatenate([new_N[1:], jnp.array([True])])
    end_N = jax.lax.cummin(jnp.where(ends_here_N, idx_N + 1, n), reverse=True)
    return end_N - start_N


def _mean_log(num_N, den_N):
    """Mean of log(num / den) over samples, pairwise summed, in the default float dtype (nats)."""
    f = _float()
    return binning._mean(jnp.log(num_N.astype(f) / den_N.astype(f)))


def dense_codes_NxD(t_NxD):
    """(codes_NxD int32, n_distinct): each value's rank among the distinct values of the whole array."""
    v_M = t_NxD.ravel()
    if jnp.issubdtype(v_M.dtype, jnp.floating):
        v_M = jnp.where(v_M == 0, jnp.zeros((), v_M.dtype), v_M)  # -0.0 and 0.0 are one value
    order_M = jnp.argsort(v_M)
    sorted_M = v_M[order_M]
    rank_M = jnp.cumsum(jnp.concatenate([jnp.array([0]), (sorted_M[1:] != sorted_M[:-1]).astype(jnp.int32)]))
    codes_M = jnp.zeros(v_M.shape, jnp.int32).at[order_M].set(rank_M.astype(jnp.int32))
    return codes_M.reshape(t_NxD.shape), rank_M[-1].astype(jnp.int32) + 1


def row_ids_N(codes_NxD):
    """Ids 0..K-1 of the distinct rows (in lexicographic order of the rows)."""
    perm_N = binning.lexsort_rows(codes_NxD)
    ids_sorted = jnp.cumsum(binning._run_starts(codes_NxD[perm_N]).astype(jnp.int32)) - 1
    return jnp.zeros(perm_N.shape, jnp.int32).at[perm_N].set(ids_sorted)


def input_ids_N(x_NxD):
    """Ids of the distinct inputs (equal rows of ``x`` share an id)."""
    return row_ids_N(dense_codes_NxD(x_NxD.reshape(x_NxD.shape[0], -1))[0])


def plane_NxD(codes_NxD, y_N, x_ids_N=None):
    """(H(T), I(X;T), I(T;Y)) in nats for one layer's integer codes; X distinct unless ``x_ids_N``."""
    n = codes_NxD.shape[0]
    codes_NxD = codes_NxD.astype(jnp.int32)
    y_N = y_N.astype(jnp.int32)
    with_y = jnp.concatenate([codes_NxD, y_N[:, None]], axis=1)
    s_ty = with_y[binning.lexsort_rows(with_y)]  # T-runs are contiguous inside (T, Y)-order
    c_t, c_ty = _counts(binning._run_starts(s_ty[:, :-1])), _counts(binning._run_starts(s_ty))
    full_N = jnp.full((n,), n, jnp.int32)
    h_t = _mean_log(full_N, c_t)
    c_y = _counts(binning._run_starts(jnp.sort(y_N)[:, None]))
    i_ty = _mean_log(full_N, c_y) + _mean_log(c_ty, c_t)
    if x_ids_N is None:
        return h_t, h_t, i_ty

    def with_repeats(_):
        with_x = jnp.concatenate([codes_NxD, x_ids_N.astype(jnp.int32)[:, None]], axis=1)
        perm_N = binning.lexsort_rows(with_x)
        s_tx = with_x[perm_N]
        c_t2, c_tx = _counts(binning._run_starts(s_tx[:, :-1])), _counts(binning._run_starts(s_tx))
        c_x = jnp.bincount(x_ids_N, length=n)[x_ids_N][perm_N]
        f = _float()
        # pointwise H(T) - H(T|X); the second log is exactly 0 where T is a function of X
        return binning._mean(jnp.log(n / c_t2.astype(f)) - jnp.log(c_x.astype(f) / c_tx.astype(f)))

    # distinct inputs: H(T|X) = 0. The predicate depends on x only, so under vmap over epochs and
    # layers (x shared) it stays a real branch and the second sort runs only when inputs repeat.
    distinct = jnp.max(x_ids_N) == n - 1
    return h_t, jax.lax.cond(distinct, lambda _: h_t, with_repeats, None), i_ty


# ---------------------------------------------------------------- public API


def check_codes(name: str, codes):
    """Integer codes (..., N, D) as int32; float arrays of whole numbers are accepted when concrete."""
    codes = _checks.as_array(name, codes, min_ndim=2)
    dt = codes.dtype
    if jnp.issubdtype(dt, jnp.integer) or dt == jnp.bool_:
        if not _checks.is_traced(codes) and dt.itemsize > 4:
            a = np.asarray(codes)
            if a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max:
                raise ValueError(f"{name} must fit in int32, got values in [{a.min()}, {a.max()}]")
        return jnp.asarray(codes).astype(jnp.int32)
    if _checks.is_traced(codes) or not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(
            f"{name} must be integer codes (an integer dtype), got dtype {dt}; for quantized float "
            "activations use exact.info_plane_values"
        )
    a = np.asarray(codes)
    bad = ~np.isfinite(a) | (a != np.round(a))
    if bad.any():
        raise ValueError(
            f"{name} must be integer codes, got {int(bad.sum())} non-integer value(s) such as "
            f"{a[bad][:3].tolist()}; continuous activations have no exact count (use binning), "
            "quantized float values go through exact.info_plane_values"
        )
    if np.abs(a).max() > 2**31 - 1:
        raise ValueError(f"{name} must fit in int32, got values up to {np.abs(a).max()}")
    return jnp.asarray(a.astype(np.int32))


def _check_x_ids(x_ids, n: int):
    if x_ids is None:
        return None
    x_ids = _checks.check_labels("x_ids", x_ids, n)
    if not _checks.is_traced(x_ids) and np.asarray(x_ids).max() >= n:
        raise ValueError(
            f"x_ids must be input ids in 0..{n - 1} (see exact.input_ids), got max {np.asarray(x_ids).max()}"
        )
    return jnp.asarray(x_ids).astype(jnp.int32)


@jax.jit
def _entropy(codes):
    return map_leading(lambda c: plane_NxD(c, jnp.zeros(c.shape[0], jnp.int32))[0], (2,), codes)


@jax.jit
def _info_plane(codes, y, x_ids):
    return map_leading(lambda c, yy, xi: plane_NxD(c, yy, xi)[1:], (2, 1, 1), codes, y, x_ids)


@jax.jit
def _info_plane_distinct(codes, y):
    return map_leading(lambda c, yy: plane_NxD(c, yy)[1:], (2, 1), codes, y)


def entropy(codes, *, base=2):
    """Exact plug-in entropy H(T) of the rows of integer ``codes`` (..., N, D); bits unless ``base``."""
    codes = check_codes("codes", codes)
    return _entropy(codes) / _checks.log_base(base)


def info_plane(codes, y, *, x_ids=None, base=2):
    """(I(X;T), I(T;Y)) of integer ``codes`` (..., N, D) and labels ``y`` (..., N). ``x_ids`` (..., N):
    ids of the distinct inputs (``input_ids(x)``) when inputs repeat; None: every row its own input."""
    codes = check_codes("codes", codes)
    y = jnp.asarray(_checks.check_labels("y", y, codes.shape[-2])).astype(jnp.int32)
    x_ids = _check_x_ids(x_ids, codes.shape[-2])
    scale = _checks.log_base(base)
    out = _info_plane_distinct(codes, y) if x_ids is None else _info_plane(codes, y, jnp.broadcast_to(x_ids, y.shape))
    return out[0] / scale, out[1] / scale


@jax.jit
def _dense(t):
    return map_leading(dense_codes_NxD, (2,), t)


def dense_codes(t):
    """(codes int32 (..., N, D), n_distinct (...)): values of each (N, D) layer replaced by their rank."""
    return _dense(_checks.check_samples("t", t))


def input_ids(x):
    """Ids of the distinct rows of ``x`` (N, ...): equal inputs share an id."""
    x = _checks.as_array("x", x, min_ndim=1)
    return jax.jit(input_ids_N)(jnp.asarray(x).reshape(x.shape[0], -1))


def info_plane_values(t, y, *, levels: int, x=None, base=2):
    """(I(X;T), I(T;Y)) of quantized float activations ``t`` (..., N, D): at most ``levels`` distinct
    values per (N, D) layer, else ValueError (continuous activations cannot be counted exactly)."""
    levels = _checks.check_int("levels", levels, min_value=2)
    codes, n_distinct = dense_codes(t)
    worst = int(np.max(np.asarray(n_distinct)))
    if worst > levels:
        raise ValueError(
            f"t is not quantized to levels={levels}: a layer takes {worst} distinct values; "
            "exact counting needs a quantized network (models.mlp(..., quant_bits=b)), "
            "continuous activations need an estimator such as binning"
        )
    return info_plane(codes, y, x_ids=None if x is None else input_ids(x), base=base)
