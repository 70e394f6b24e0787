"""I(X;T_l) and I(T_l;Y) for every (epoch, layer) in batched, jitted calls.

Layers of different widths are zero-padded to the widest and stacked (pad-and-mask): zero columns
change no distance and no bin symbol, and estimators whose value depends on the dimension get the
true width ``d_l`` as an argument. One compiled call then covers a chunk of epochs x all layers.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Plane(NamedTuple):
    epochs: np.ndarray  # E
    i_xt: np.ndarray  # E x L
    i_ty: np.ndarray  # E x L
    i_xt_se: np.ndarray | None = None
    i_ty_se: np.ndarray | None = None


def layer_activations(apply_fn: Callable, params_E, x_NxD):
    """Activations of every layer for every stacked epoch: a tuple of (E, N, d_l) arrays
    (image activations are flattened per sample)."""
    acts = jax.vmap(lambda p: apply_fn(p, x_NxD)[1])(params_E)
    return tuple(a.reshape(a.shape[0], a.shape[1], -1) for a in acts)


def pad_layers(acts) -> tuple[jax.Array, np.ndarray]:
    """Zero-pad a tuple of (E, N, d_l) arrays to E x L x N x D_max; also return the widths d_L."""
    widths = np.array([a.shape[-1] for a in acts])
    d_max = int(widths.max())
    t = jnp.stack([jnp.pad(a, ((0, 0), (0, 0), (0, d_max - a.shape[-1]))) for a in acts], axis=1)
    return t, widths


def epochs_per_chunk(n_epochs: int, bytes_per_epoch: int, memory_gb: float) -> int:
    """How many epochs fit in ``memory_gb``; ValueError when not even one does."""
    budget = memory_gb * 2**30
    if bytes_per_epoch > budget:
        raise ValueError(
            f"memory_gb={memory_gb} is too small for one epoch (needs about {bytes_per_epoch / 2**30:.3f} GB)"
        )
    return int(max(1, min(n_epochs, budget // bytes_per_epoch)))


@partial(jax.jit, static_argnames=("apply_fn", "estimator_fn"))
def _plane_chunk(params_E, x_NxD, y_N, *, apply_fn, estimator_fn):
    t_ExLxNxD, widths = pad_layers(layer_activations(apply_fn, params_E, x_NxD))
    per_layer = jax.vmap(lambda t, d: estimator_fn(t, y_N, d), in_axes=(0, 0))
    return jax.vmap(per_layer, in_axes=(0, None))(t_ExLxNxD, jnp.asarray(widths))


def plane_from_params(apply_fn: Callable, params_E, x_NxD, y_N, estimator_fn: Callable, *,
                      epochs=None, memory_gb: float = 2.0, bytes_per_epoch: int | None = None,
                      progress: Callable | None = None) -> Plane:
    """Evaluate ``estimator_fn(t_NxD, y_N, d) -> (i_xt, i_ty)`` for every stacked epoch and layer.

    Epochs are processed in chunks that fit ``memory_gb`` (a Python loop over chunks, each chunk one
    jitted call vmapped over epochs x layers). ``estimator_fn`` must be hashable (a module-level
    function or a ``functools.partial`` of one) so compiled chunks are reused.
    """
    n_epochs = jax.tree.leaves(params_E)[0].shape[0]
    x_NxD, y_N = jnp.asarray(x_NxD), jnp.asarray(y_N)
    if bytes_per_epoch is None:
        widths = [a.shape[-1] for a in jax.eval_shape(lambda p: layer_activations(apply_fn, p, x_NxD),
                                                      jax.tree.map(lambda a: a[:1], params_E))]
        bytes_per_epoch = 4 * x_NxD.shape[0] * (sum(widths) + len(widths) * max(widths)) * 3
    chunk = epochs_per_chunk(n_epochs, bytes_per_epoch, memory_gb)
    starts = range(0, n_epochs, chunk)
    outs = []
    for s in (progress(starts) if progress else starts):
        p = jax.tree.map(lambda a: jnp.asarray(a[s:s + chunk]), params_E)
        outs.append(jax.tree.map(np.asarray, _plane_chunk(p, x_NxD, y_N, apply_fn=apply_fn, estimator_fn=estimator_fn)))
    i_xt, i_ty = (np.concatenate([o[k] for o in outs]) for k in (0, 1))
    epochs = np.arange(n_epochs) if epochs is None else np.asarray(epochs)
    return Plane(epochs, i_xt, i_ty)
