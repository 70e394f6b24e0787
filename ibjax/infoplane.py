"""The batched engine: estimator outputs for every (settings, run, epoch, T) in jitted chunks.

An *item* is one (run, epoch) pair (or, for a window view, one run's window of epochs), so the runs
of a multi-seed evaluation are one batch axis and each keeps its own numbers; the cache is keyed
by (run id, epoch) under a directory keyed by everything else that produced the numbers.

In a chunk, the view gives each item's T's; T's of different widths are zero-padded to the widest
and vmapped (pad-and-mask) when the estimator says padding is exact, else one compiled call per
width. Traced estimator options swept over a grid are a leading vmapped axis. Chunks are sized to
``memory_gb`` and the item axis is sharded over every visible device. Randomness is per
(run, epoch, T): ``fold_in(fold_in(fold_in(key, run tag), epoch), t)``, so results depend neither on
chunking nor on which other runs are evaluated alongside.

Checks: inputs must be finite and labels integer (remapped to 0..C-1, so cost follows the number of
classes); every T is checked finite per item (``nan_policy="raise"`` names the run, epoch and T;
``"mark"`` records NaN there); a non-finite estimate or one below ``-negative_tol`` is an error;
``warn_*`` outputs are collected per (setting, item, T).
"""

from __future__ import annotations

import hashlib
import warnings as _warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ibjax import io, registry, views
from ibjax.views import View

NAN_POLICIES = ("raise", "mark")


class ApplyFns(tuple):
    """``(apply, noisy_apply)`` as one hashable static argument; ``.noisy`` gives the S layers."""

    def __new__(cls, apply, noisy_apply=None):
        return super().__new__(cls, (apply, noisy_apply))

    def __call__(self, params, x):
        return self[0](params, x)

    def noisy(self, params, x, key, sigma):
        if self[1] is None:
            raise ValueError("this estimator needs the model's noisy_apply(params, x, key, sigma); the model has none")
        return self[1](params, x, key, sigma)[2]


def as_apply_fns(model) -> ApplyFns:
    """``ApplyFns`` from a ``models.Model`` (its ``noisy_apply`` picked up: the noisy estimator needs no
    more), an ``ApplyFns``, or a plain ``apply(params, x) -> (logits, acts)`` (deterministic only)."""
    if isinstance(model, ApplyFns):
        return model
    if callable(getattr(model, "apply", None)):
        return ApplyFns(model.apply, getattr(model, "noisy_apply", None))
    if callable(model):
        return ApplyFns(model)
    raise ValueError(
        f"apply_fn must be a models.Model, an ApplyFns or a callable apply(params, x), got {type(model).__name__}"
    )


class Items(NamedTuple):
    """What was computed: ``values`` name -> G x I x L, the finite mask G x I x L, warnings."""

    values: dict
    finite: np.ndarray
    flags: dict  # "warn_x" -> G x I x L bool


def run_tag(run_id: str) -> int:
    """A 28-bit integer from a run id (for fold_in)."""
    return int(hashlib.sha256(str(run_id).encode()).hexdigest()[:7], 16)


def pad_layers(ts):
    """Zero-pad a tuple of (..., N, d_l) arrays to (..., L, N, D_max); also return the widths d_L."""
    widths = np.array([t.shape[-1] for t in ts])
    d_max = int(widths.max())
    pad = lambda t: jnp.pad(t, [(0, 0)] * (t.ndim - 1) + [(0, d_max - t.shape[-1])])
    return jnp.stack([pad(t) for t in ts], axis=-3), widths


def _kw(est, st: dict, n_classes: int) -> dict:
    return {**st, "n_classes": n_classes} if est.wants_classes else st


def _estimate_t(est, view, t, d, k, x_flat, y, st, n_classes):
    """One T's outputs; a window view measures I(X;T) as I(T; input id) on the pooled samples."""
    if view.window == 1:
        return est.fn(t, d, k, x_flat, y, **_kw(est, st, n_classes))
    ids, y_pool, n_ids = views.window_labels(view, y, n_classes)
    by_id = est.fn(t, d, k, None, ids, **_kw(est, st, n_ids))
    out = est.fn(t, d, k, None, y_pool, **_kw(est, st, n_classes))
    return {**out, **{"i_xt" + name[4:]: v for name, v in by_id.items() if name.startswith("i_ty")}}


@partial(jax.jit, static_argnames=("apply_fn", "name", "static", "view", "n_classes", "mesh"))
def evaluate_chunk(
    params_B,
    tags_B,
    epochs_B,
    x,
    y,
    key,
    traced,
    *,
    apply_fn,
    name: str,
    static: tuple,
    view: View,
    n_classes: int,
    mesh: Mesh | None = None,
    valid_B=None,
):
    """One chunk: (dict of G x B x L outputs, G x B x L finite mask). ``traced``: option -> G values.

    The B items are split over ``mesh``'s devices (default: all of them). A CPU device computes its
    items one at a time (``lax.map``), so an item's activations, and with them every estimate, are the
    same bits whatever the chunk size and the device count: a vmapped batch of items changes the
    matmuls' blocking with the batch shape, and a counting estimator then sees an activation at a bin
    edge land in the neighbouring bin. An accelerator vmaps its items (to keep it busy), so there the
    bits may depend on the chunk size. ``valid_B`` (default: all) marks the items that are not padding;
    a CPU device skips the others (their outputs are zeros)."""
    est = registry.get(name)
    mesh = mesh or _mesh()
    valid_B = jnp.ones(tags_B.shape, bool) if valid_B is None else valid_B

    def item(p, tag, epoch, tr, x, y, key):
        x_flat = x.reshape(x.shape[0], -1)
        k_item = jax.random.fold_in(jax.random.fold_in(key, tag), epoch)
        st = {**dict(static), **tr}
        if est.noisy:
            sample = lambda k: apply_fn.noisy(p, x, k, st["sigma"])
            out = est.fn(sample, k_item, y, **_kw(est, st, n_classes))
            return out, jnp.ones(out["i_xt"].shape, bool)
        ts = views.item_ts(view, apply_fn, p, x)
        finite = jnp.stack([jnp.all(jnp.isfinite(t)) for t in ts])
        ts = tuple(jnp.where(jnp.isfinite(t), t, 0.0) for t in ts)  # flagged; keep NaN out of the kernels
        keys = jax.vmap(lambda l: jax.random.fold_in(k_item, l))(jnp.arange(len(ts)))
        one = lambda t, d, k: _estimate_t(est, view, t, d, k, x_flat, y, st, n_classes)
        if est.pad_exact:
            t_LxNxD, widths = pad_layers(ts)
            return jax.vmap(one)(t_LxNxD, jnp.asarray(widths), keys), finite
        outs = [one(t, t.shape[-1], keys[l]) for l, t in enumerate(ts)]  # structural: one call per width
        return {k: jnp.stack([o[k] for o in outs]) for k in outs[0]}, finite

    def per_item(p, tag, epoch, x, y, key, traced):  # -> G x L outputs of one item
        if not traced:
            return jax.tree.map(lambda a: a[None], item(p, tag, epoch, {}, x, y, key))
        return jax.vmap(lambda tr: item(p, tag, epoch, tr, x, y, key))(traced)

    def local(p_b, tag_b, epoch_b, valid_b, x, y, key, traced):  # this device's items
        one = lambda a: per_item(*a, x, y, key, traced)
        if mesh.devices.flat[0].platform != "cpu":  # an accelerator needs the items batched to be busy
            return jax.vmap(one)((p_b, tag_b, epoch_b))
        zeros = lambda a: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(one, a))
        return jax.lax.map(lambda a: jax.lax.cond(a[1], one, zeros, a[0]), ((p_b, tag_b, epoch_b), valid_b))

    items, rep = PartitionSpec("items"), PartitionSpec()
    out_BxG = jax.shard_map(local, mesh=mesh, in_specs=(items,) * 4 + (rep,) * 4, out_specs=items, check_vma=False)(
        params_B, tags_B, epochs_B, valid_B, x, y, key, traced
    )
    return jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), out_BxG)


def _mesh():
    return Mesh(np.array(jax.devices()), ("items",))


def _one_device_mesh():
    return Mesh(np.array(jax.local_devices()[:1]), ("items",))


def shard_items(tree, mesh=None):
    """Place a pytree's leading (item) axis across all devices. With several processes
    (``jax.distributed``) every process passes the same host arrays and keeps its own shards."""
    spec = NamedSharding(mesh or _mesh(), PartitionSpec("items"))
    return jax.tree.map(lambda a: jax.device_put(a, spec), tree)


def _to_host(a) -> np.ndarray:
    """The whole array on this host; an array spread over several processes is gathered to each."""
    if getattr(a, "is_fully_addressable", True):
        return np.asarray(a)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(a, tiled=True))


def item_bytes(est, settings: dict, n: int, widths, n_settings: int, window: int) -> int:
    """Rough peak bytes per item: activations (raw + padded) plus the estimator's working set."""
    n_t, d_max = len(widths), max(widths)
    acts = 4 * n * window * (sum(widths) + 2 * n_t * d_max)
    return acts + n_settings * n_t * int(est.memory(settings, n * window, list(widths)))


def check_inputs(x, y):
    """Finite inputs; integer labels remapped to 0..C-1. Returns (x, y_remapped, classes)."""
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be an array of N >= 1 samples with features, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"x contains {int((~np.isfinite(x)).sum())} NaN/inf value(s); inputs must be finite")
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must hold one label per sample, shape ({x.shape[0]},), got {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            bad = y[~np.isfinite(y) | (y != np.round(y))][:5] if np.issubdtype(y.dtype, np.floating) else y[:5]
            raise ValueError(f"y must hold integer class ids, got values like {bad.tolist()} (dtype {y.dtype})")
    classes, y_idx = np.unique(y, return_inverse=True)
    return x, y_idx.astype(np.int32), classes


def _load_cache(cache_dir: Path | None, names, n_settings: int, n_t: int) -> dict:
    """{(run_id, epoch): (values G x L per name, finite G x L, flags)} from valid chunk files; a corrupt
    chunk is named, removed and recomputed."""
    done: dict = {}
    if cache_dir is None or not cache_dir.is_dir():
        return done
    for f in sorted(cache_dir.glob("chunk_*.npz")):
        try:
            with np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            runs, epochs = arrays.pop("run_ids"), arrays.pop("epochs")
            finite = arrays.pop("finite")
            if set(names) - set(arrays) or any(a.shape != (n_settings, len(epochs), n_t) for a in arrays.values()):
                raise ValueError("unexpected arrays or shapes")
        except Exception as e:  # noqa: BLE001 - any unreadable chunk is recomputed
            _warnings.warn(f"cache chunk {f} is corrupt ({e}); removing it and recomputing its epochs", stacklevel=3)
            f.unlink(missing_ok=True)
            continue
        for i, (r, e) in enumerate(zip(runs, epochs)):
            done[(str(r), int(e))] = ({k: v[:, i] for k, v in arrays.items()}, finite[:, i])
    return done


def evaluate_items(
    apply_fn,
    params_I,
    run_ids_I,
    epochs_I,
    x,
    y,
    *,
    estimator: str,
    static: dict,
    traced: dict,
    view: View,
    key,
    memory_gb: float | None = None,
    cache_dir: str | Path | None = None,
    progress=None,
) -> Items:
    """Outputs for every item (params stacked on axis 0; for a window view, I x W x ...).

    ``static``: option values (compile-time); ``traced``: option -> list of G values (one vmapped
    axis). With ``cache_dir``, each finished chunk is saved atomically and items already there are
    not recomputed (an interrupted evaluation resumes where it stopped).
    """
    est = registry.get(estimator)
    apply_fn = as_apply_fns(apply_fn)
    x, y, classes = check_inputs(x, y)
    n_classes = len(classes)
    epochs_I = np.asarray(epochs_I, np.int64)
    run_ids_I = [str(r) for r in run_ids_I]
    n_items = len(epochs_I)
    if len(run_ids_I) != n_items or jax.tree.leaves(params_I)[0].shape[0] != n_items:
        raise ValueError(
            f"params, run ids and epochs must list the same items: got "
            f"{jax.tree.leaves(params_I)[0].shape[0]}, {len(run_ids_I)} and {n_items}"
        )
    n_settings = len(next(iter(traced.values()))) if traced else 1
    traced_arr = {k: jnp.asarray(v, jnp.float32) for k, v in traced.items()}
    p1 = jax.tree.map(lambda a: a[0], params_I)
    ts1 = jax.eval_shape(lambda p: views.item_ts(view, apply_fn, p, jnp.asarray(x)), p1)
    widths = [t.shape[-1] for t in ts1]
    per_item = item_bytes(est, static, x.shape[0], widths, n_settings, view.window)
    memory_gb = io.memory_budget_gb(memory_gb)
    if per_item > memory_gb * 2**30:
        raise ValueError(f"memory_gb={memory_gb} is too small for one epoch (needs about {per_item / 2**30:.3f} GB)")
    n_t = len(widths)
    outputs = tuple(est.outputs) + tuple(est.warnings)
    cache_dir = None if cache_dir is None else Path(cache_dir)
    done = _load_cache(cache_dir, outputs, n_settings, n_t)
    todo = np.array([i for i in range(n_items) if (run_ids_I[i], int(epochs_I[i])) not in done], np.int64)
    # an estimator that cannot be sharded runs every item on this process's first device
    mesh = _mesh() if est.shard else _one_device_mesh()
    chunk = _chunk_size(len(todo), max(1, int(memory_gb * 2**30 // per_item)), mesh.size)
    tags_I = np.array([run_tag(r) for r in run_ids_I], np.int32)
    static_t = tuple(sorted(static.items()))
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    starts = range(0, len(todo), chunk)
    for s in progress(starts) if progress else starts:
        idx = todo[s : s + chunk]
        pad = np.concatenate([idx, np.repeat(idx[-1:], chunk - len(idx))])  # one shape: one compile
        p, tg, ep, ok = shard_items(
            (
                jax.tree.map(lambda a: np.asarray(a)[pad], params_I),
                tags_I[pad],
                epochs_I[pad].astype(np.int32),
                np.arange(chunk) < len(idx),
            ),
            mesh,
        )
        out, finite = evaluate_chunk(
            p,
            tg,
            ep,
            xj,
            yj,
            key,
            traced_arr,
            apply_fn=apply_fn,
            name=estimator,
            static=static_t,
            view=view,
            n_classes=n_classes,
            mesh=mesh,
            valid_B=ok,
        )
        out = {k: _to_host(v)[:, : len(idx)] for k, v in out.items()}
        finite = _to_host(finite)[:, : len(idx)]
        if cache_dir is not None and jax.process_index() == 0:  # several processes: one writer
            io.atomic_save_npz(
                cache_dir / f"chunk_{s:06d}_{_digest(run_ids_I, epochs_I, idx)}.npz",
                {"run_ids": np.array([run_ids_I[i] for i in idx]), "epochs": epochs_I[idx], "finite": finite, **out},
            )
        for j, i in enumerate(idx):
            done[(run_ids_I[i], int(epochs_I[i]))] = ({k: v[:, j] for k, v in out.items()}, finite[:, j])
    rows = [done[(r, int(e))] for r, e in zip(run_ids_I, epochs_I)]
    values = {k: np.stack([r[0][k] for r in rows], axis=1) for k in est.outputs}
    flags = {k: np.stack([r[0][k] for r in rows], axis=1).astype(bool) for k in est.warnings}
    return Items(values, np.stack([r[1] for r in rows], axis=1), flags)


def _chunk_size(n_todo: int, fit: int, n_dev: int | None = None) -> int:
    """Balanced chunks of at most ``fit`` items, whole shards per device, the shard size rounded up to
    a power of two so that calls with different item counts, such as delta-skip's rounds, reuse a
    few compiled programs. A CPU device skips the padding items; an accelerator computes them (at
    most 2x the items)."""
    n_dev = n_dev or jax.device_count()
    cap = max(1, fit // n_dev)  # items per device
    per = -(-n_todo // max(1, -(-n_todo // (cap * n_dev))))
    return n_dev * min(cap, _bucket(max(1, -(-per // n_dev))))


def _bucket(n: int) -> int:
    """The smallest power of two >= ``n``."""
    return 1 << max(0, int(n) - 1).bit_length()


def _digest(run_ids, epochs, idx) -> str:
    body = ",".join(f"{run_ids[i]}:{epochs[i]}" for i in idx)
    return hashlib.sha256(body.encode()).hexdigest()[:10]


def check_values(items: Items, est, *, nan_policy: str, describe: Callable[[int, int], str], t_names) -> Items:
    """Apply the finite-activation policy, then refuse non-finite or negative estimates."""
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")
    bad = ~items.finite
    values = dict(items.values)
    if bad.any():
        where = [f"{describe(i, 0)} {t_names[l]}" for _, i, l in zip(*np.nonzero(bad))]
        if nan_policy == "raise":
            raise ValueError(
                f"non-finite activations (NaN/inf weights?) at {len(where)} (epoch, T) pair(s): "
                f"{sorted(set(where))[:5]}; pass nan_policy='mark' (CLI: --nan mark) to record NaN there"
            )
        values = {k: np.where(bad, np.nan, v) for k, v in values.items()}
    for k, v in values.items():
        wrong = ~np.isfinite(v) & ~bad
        if wrong.any():
            g, i, l = (int(a[0]) for a in np.nonzero(wrong))
            raise ValueError(
                f"estimator {est.name} returned a non-finite {k} at {describe(i, g)} {t_names[l]} "
                "from finite activations; check the estimator settings"
            )
        if est.negative_tol is not None and k.startswith("i_") and not k.endswith("_se"):
            neg = np.nan_to_num(v, nan=0.0) < -est.negative_tol
            if neg.any():
                g, i, l = (int(a[0]) for a in np.nonzero(neg))
                raise ValueError(
                    f"estimator {est.name} returned {k} = {v[g, i, l]:.4g} < 0 at {describe(i, g)} "
                    f"{t_names[l]} (beyond the tolerance {est.negative_tol}); mutual information "
                    "cannot be negative: this is a bug or a broken input, not a result"
                )
    return Items(values, items.finite, items.flags)
