"""Row-blocked evaluation of O(N^2) quantities: never materialise an N x N (x D) array at once."""

from __future__ import annotations

import jax
import jax.numpy as jnp


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
    d_BxN = (
        jnp.sum(a_BxD * a_BxD, axis=-1)[:, None]
        + jnp.sum(b_NxD * b_NxD, axis=-1)[None, :]
        - 2.0 * a_BxD @ b_NxD.T
    )
    return jnp.maximum(d_BxN, 0.0)
