"""I(X;T_l) and I(T_l;Y) for every (epoch, layer) in batched, jitted calls.

Layers of different widths are zero-padded to the widest and stacked (pad-and-mask): zero columns
change no distance, bin symbol or kernel, and adapters get the true width ``d``. Estimators for which
padding is not exact (EDGE's per-dimension bandwidths) get one compiled call per layer width instead.
Epochs are processed in chunks sized to ``memory_gb``; each chunk is one jitted call vmapped over
epochs x layers, with the epoch axis sharded over every visible device (``jax.sharding``). Randomness
is per (epoch, layer): ``fold_in(fold_in(key, epoch), layer)``, so results do not depend on chunking.
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ibjax import io
from ibjax.adapters import ESTIMATORS


def layer_activations(apply_fn: Callable, params_E, x):
    """Activations of every layer for every stacked epoch: a tuple of (E, N, d_l) arrays."""
    acts = jax.vmap(lambda p: apply_fn(p, x)[1])(params_E)
    return tuple(a.reshape(a.shape[0], a.shape[1], -1) for a in acts)


def pad_layers(acts):
    """Zero-pad a tuple of (E, N, d_l) arrays to E x L x N x D_max; also return the widths d_L."""
    widths = np.array([a.shape[-1] for a in acts])
    d_max = int(widths.max())
    return jnp.stack([jnp.pad(a, ((0, 0), (0, 0), (0, d_max - a.shape[-1]))) for a in acts], axis=1), widths


def _keys_ExL(key, epochs_E, n_layers: int):
    per_epoch = jax.vmap(lambda e: jax.random.fold_in(key, e))(epochs_E)
    return jax.vmap(lambda k: jax.vmap(lambda l: jax.random.fold_in(k, l))(jnp.arange(n_layers)))(per_epoch)


@partial(jax.jit, static_argnames=("apply_fn", "name", "settings"))
def evaluate_chunk(params_E, epochs_E, x, y, key, *, apply_fn, name: str, settings: tuple):
    """One chunk: dict of E x L arrays for estimator ``name`` with ``settings`` (sorted item tuple)."""
    spec, st = ESTIMATORS[name], dict(settings)
    x_flat = x.reshape(x.shape[0], -1)
    if spec.noisy:
        def one(p, e):
            sample = lambda k: apply_fn.noisy(p, x, k, st["sigma"])
            return spec.fn(sample, jax.random.fold_in(key, e), y, **st)
        return jax.vmap(one)(params_E, epochs_E)
    acts = layer_activations(apply_fn, params_E, x)
    keys = _keys_ExL(key, epochs_E, len(acts))
    if spec.pad_exact:
        t, widths = pad_layers(acts)
        f = lambda t1, d, k: spec.fn(t1, d, k, x_flat, y, **st)
        return jax.vmap(jax.vmap(f, in_axes=(0, 0, 0)), in_axes=(0, None, 0))(t, jnp.asarray(widths), keys)
    per_layer = [jax.vmap(lambda t1, k, d=a.shape[-1]: spec.fn(t1, d, k, x_flat, y, **st))(a, keys[:, l])
                 for l, a in enumerate(acts)]  # structural: one compiled call per layer width
    return {k: jnp.stack([o[k] for o in per_layer], axis=1) for k in per_layer[0]}


class ApplyFns(tuple):
    """``(apply, noisy_apply)`` as one hashable static argument; ``.noisy`` gives the S layers."""

    def __new__(cls, apply, noisy_apply=None):
        return super().__new__(cls, (apply, noisy_apply))

    def __call__(self, params, x):
        return self[0](params, x)

    def noisy(self, params, x, key, sigma):
        return self[1](params, x, key, sigma)[2]


def work_bytes(name: str, settings: dict, n: int, widths) -> int:
    """Rough peak bytes per epoch: activations (raw + padded) plus the estimator's working set."""
    n_layers, d_max = len(widths), max(widths)
    acts = 4 * n * (sum(widths) + 2 * n_layers * d_max)
    block = min(n, 256)
    est = {"binning": 6 * n * d_max, "kde": 3 * block * n, "knn": 4 * block * n, "hsic": 4 * block * n,
           "edge": 64 * n * d_max * settings.get("L", 10), "smoothed": 4 * block * n}[name]
    extra = settings.get("n_c", 1) * 4 * n * sum(widths) if name == "smoothed" else 0
    return acts + 4 * n_layers * est + extra


def _mesh():
    return Mesh(np.array(jax.devices()), ("epochs",))


def shard_epochs(tree, mesh=None):
    """Place a pytree's leading (epoch) axis across all devices; replicated if it does not divide."""
    mesh = mesh or _mesh()
    spec = NamedSharding(mesh, PartitionSpec("epochs"))
    return jax.tree.map(lambda a: jax.device_put(a, spec), tree)


def cache_key(name: str, settings: dict, run_id: str, seed: int, n: int) -> str:
    body = json.dumps([name, sorted(settings.items()), run_id, seed, n], default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _load_cache(cache_dir: Path | None) -> dict[int, dict]:
    done: dict[int, dict] = {}
    if cache_dir is None or not cache_dir.is_dir():
        return done
    for f in sorted(cache_dir.glob("chunk_*.npz")):
        with np.load(f) as z:
            for i, e in enumerate(z["epochs"]):
                done[int(e)] = {k: z[k][i] for k in z.files if k != "epochs"}
    return done


def evaluate_params(apply_fn, params_E, epochs_E, x, y, *, estimator: str, settings: dict, key=None,
                    memory_gb: float = 2.0, cache_dir: str | Path | None = None, progress=None,
                    on_chunk: Callable | None = None) -> dict[str, np.ndarray]:
    """Estimator values for every epoch in ``epochs_E`` (params stacked on axis 0): dict of E x L.

    With ``cache_dir``, each finished chunk is saved there atomically and epochs already saved are
    not recomputed (an interrupted evaluation resumes where it stopped).
    """
    apply_fn = apply_fn if isinstance(apply_fn, ApplyFns) else ApplyFns(apply_fn)
    key = jax.random.key(0) if key is None else key
    epochs_E = np.asarray(epochs_E, dtype=np.int64)
    x, y = jnp.asarray(x), jnp.asarray(y, jnp.int32)
    p1 = jax.tree.map(lambda a: a[:1], params_E)
    widths = [a.shape[-1] for a in jax.eval_shape(lambda p: layer_activations(apply_fn, p, x), p1)]
    per_epoch = work_bytes(estimator, settings, x.shape[0], widths)
    if per_epoch > memory_gb * 2**30:
        raise ValueError(f"memory_gb={memory_gb} is too small for one epoch (needs about {per_epoch / 2**30:.3f} GB)")
    n_dev = jax.device_count()
    chunk = max(1, int(memory_gb * 2**30 // per_epoch))
    chunk = max(n_dev, chunk // n_dev * n_dev)
    cache_dir = None if cache_dir is None else Path(cache_dir)
    done = _load_cache(cache_dir)
    todo = np.array([i for i, e in enumerate(epochs_E) if int(e) not in done], dtype=np.int64)
    n_chunks = -(-len(todo) // chunk)
    chunk = -(-len(todo) // max(n_chunks, 1))
    chunk = -(-chunk // n_dev) * n_dev  # balanced chunks, whole shards per device
    starts = range(0, len(todo), max(chunk, 1))
    settings_t = tuple(sorted(settings.items()))
    for s in (progress(starts) if progress else starts):
        idx = todo[s:s + chunk]
        pad = np.concatenate([idx, np.repeat(idx[-1:], chunk - len(idx))])  # every chunk one shape: one compile
        p = shard_epochs(jax.tree.map(lambda a: np.asarray(a)[pad], params_E))
        e = shard_epochs(jnp.asarray(epochs_E[pad], jnp.int32))
        out = evaluate_chunk(p, e, x, y, key, apply_fn=apply_fn, name=estimator, settings=settings_t)
        out = {k: np.asarray(v)[: len(idx)] for k, v in out.items()}
        _check_finite(out, epochs_E[idx])
        if cache_dir is not None:
            io.atomic_save_npz(cache_dir / f"chunk_{epochs_E[idx[0]]:06d}_{epochs_E[idx[-1]]:06d}.npz",
                               {"epochs": epochs_E[idx], **out})
        for i, j in enumerate(idx):
            done[int(epochs_E[j])] = {k: v[i] for k, v in out.items()}
        if on_chunk is not None:
            on_chunk(epochs_E[idx])
    names = ESTIMATORS[estimator].outputs
    return {k: np.stack([np.asarray(done[int(e)][k]) for e in epochs_E]) for k in names}


def _check_finite(out: dict, epochs) -> None:
    for k, v in out.items():
        bad = ~np.isfinite(v)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise ValueError(f"estimator produced non-finite {k} at epochs {np.asarray(epochs)[rows][:10].tolist()}; "
                             "check the activations (NaN weights?) and the estimator settings")


@partial(jax.jit, static_argnames=("apply_fn", "window", "name", "settings"))
def as_if_random(params_E, x, y, *, apply_fn, window: int, name: str, settings: tuple):
    """Thesis's "as-if-random" view: the weights of ``window`` consecutive kept epochs are samples of
    a random network. Activations of a window are pooled (inputs repeated ``window`` times) and
    I(X;T) = I(T; input id), I(T;Y) are estimated on the pool, for every window start (sliding by 1).
    Works with the label-conditional estimators (binning, kde). Returns dict of W' x L arrays."""
    if name not in ("binning", "kde"):
        raise ValueError(f"as-if-random supports estimators 'binning' and 'kde', got {name!r}")
    spec, st = ESTIMATORS[name], dict(settings)
    t, widths = pad_layers(layer_activations(apply_fn, params_E, x))  # E x L x N x D
    n_epochs, n = t.shape[0], t.shape[2]
    n_win = n_epochs - window + 1
    starts = jnp.arange(n_win)
    ids = jnp.tile(jnp.arange(n, dtype=jnp.int32), window)
    y_pool = jnp.tile(y, window)

    st_ids = {**st, "n_classes": n} if "n_classes" in st else st  # input ids as the labels

    def one(start, l):
        pool = jax.lax.dynamic_slice_in_dim(t[:, l], start, window).reshape(window * n, -1)
        i_x = spec.fn(pool, widths.max(), None, None, ids, **st_ids)["i_ty"]
        i_y = spec.fn(pool, widths.max(), None, None, y_pool, **st)["i_ty"]
        return {"i_xt": i_x, "i_ty": i_y}

    f = jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))
    return f(starts, jnp.arange(t.shape[1]))
