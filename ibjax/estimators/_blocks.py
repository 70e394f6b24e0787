"""Row-blocked evaluation of O(N^2) quantities: never materialise an N x N (x D) array at once."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def default_block_size(n: int, *, cap: int = 256) -> int:
    """Row-block size: at most ``cap`` rows, at most ``n``."""
    return max(1, min(int(n), cap))


def map_row_blocks(f, n: int, *, block_size: int):
    """Evaluate ``f(idx_B) -> pytree with leading axis B`` over rows 0..n-1 in blocks.

    Rows are padded up to a multiple of ``block_size``; padded indices are clamped to n-1 and their
    outputs dropped, so ``f`` never sees an out-of-range index. Blocks run sequentially under
    ``lax.map`` so peak memory is one block's working set.
    """
    n_blocks = -(-n // block_size)
    idx_KxB = jnp.minimum(jnp.arange(n_blocks * block_size).reshape(n_blocks, block_size), n - 1)
    out = jax.lax.map(f, idx_KxB)
    return jax.tree.map(lambda a: a.reshape((n_blocks * block_size,) + a.shape[2:])[:n], out)


def sq_dists(a_BxD, b_NxD):
    """Squared Euclidean distances, B x N, by the |a|^2 + |b|^2 - 2 a.b expansion (clipped at 0)."""
    d_BxN = jnp.sum(a_BxD * a_BxD, axis=-1)[:, None] + jnp.sum(b_NxD * b_NxD, axis=-1)[None, :] - 2.0 * a_BxD @ b_NxD.T
    return jnp.maximum(d_BxN, 0.0)


def map_leading(f, core_ndims, *args):
    """Apply ``f`` over the leading (batch) axes of ``args``; ``core_ndims[i]`` is arg i's own rank.

    Batch axes broadcast explicitly (safe under ``jax_numpy_rank_promotion="raise"``); an argument
    without batch axes is shared through ``vmap(in_axes=None)`` rather than copied, so work that
    depends only on it (e.g. label statistics) runs once.
    """
    args = [jnp.asarray(a) for a in args]
    batch_shapes = [a.shape[: a.ndim - c] for a, c in zip(args, core_ndims)]
    shape = tuple(np.broadcast_shapes(*batch_shapes))
    if not shape:
        return f(*args)
    flat, in_axes = [], []
    for a, c, b in zip(args, core_ndims, batch_shapes):
        core = a.shape[a.ndim - c :]
        flat.append(a if not b else jnp.broadcast_to(a, shape + core).reshape((-1,) + core))
        in_axes.append(0 if b else None)
    out = jax.vmap(f, in_axes=in_axes)(*flat)
    return jax.tree.map(lambda o: o.reshape(shape + o.shape[1:]), out)
