"""Training as pure functions: ``make_train(model, cfg, split) -> Trainer``.

A run is a ``lax.scan`` over epochs (an inner scan over minibatches). Parameters at the scheduled
epochs are written into a buffer carried by the scan, so they come back stacked; per-epoch metrics
come back as scan outputs. Settings that never change a shape are traced: ``Hyper`` (learning rate,
momentum, weight decay, orthonormality penalty, Parseval retraction step, training noise, training-subset
fraction), so ``vmap(vmap(train, (None, 0)), (0, None))(keys, hypers)`` trains a settings x seeds grid in
one call.

Parseval retraction (Cisse et al. 2017, "Parseval networks"): after every optimizer step each kernel K
(fan_in x fan_out) becomes (1 + beta) K - beta K K^T K, one gradient step of (beta / 4) ||K^T K - I||_F^2
that moves every singular value s to (1 + beta) s - beta s^3, towards 1 (orthonormal columns when
fan_out <= fan_in). Unlike the orthonormality *penalty* (a loss term), it does not enter the gradient.

An epoch is one pass over the training split, or ``cfg.epoch_steps`` minibatch steps (then each epoch
draws a fresh permutation and takes its first batches: iterations as the unit of the schedule, as in
studies that measure at iterations). With ``epoch_steps`` the full-split metrics (loss and accuracy on the
training and test splits) are computed at the last epoch only (NaN elsewhere): a forward pass over the
whole split costs more than the step itself (an MNIST MLP: 10,000 images against a batch of 128); the
running loss and accuracy of the epoch's batches are kept at every epoch.

``Trainer.segment(state, key, hp, start, length=n)`` runs epochs ``start .. start+n-1`` (with ``stop=``,
those before ``stop`` only: the rest leave the state as it is, so one compiled length serves a shorter
last segment); every epoch's randomness is ``fold_in(key, epoch)``, so a run cut into segments (saved and resumed between them, see
``ibjax.runs``) gives the same numbers as the same segments run without a stop.

Batch norm (a model with ``train_apply``): its running statistics are part of the scan's carried state
(``TrainState.model_state``); each step normalises with the batch's statistics (padding and masked
samples excluded) and updates the running averages; metrics, kept epochs and checkpoints use the
running averages, and the kept "params" are the whole variables ``{"params", "batch_stats"}``, so
``model.apply`` of a loaded checkpoint reproduces the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ibjax import models, schedules
from ibjax.config import RunConfig, TrainConfig
from ibjax.data import Split


class Hyper(NamedTuple):
    """Traced training settings (float32 scalars; leading axes under vmap)."""

    learning_rate: jax.Array
    momentum: jax.Array
    weight_decay: jax.Array
    ortho_penalty: jax.Array
    noise_sigma: jax.Array
    train_subset: jax.Array
    parseval_beta: jax.Array = np.float32(0.0)


class Uses(NamedTuple):
    """Which optional terms are compiled in (static); a term compiled in with value 0 is exact."""

    noise: bool = False
    weight_decay: bool = False
    ortho: bool = False
    subset: bool = False
    parseval: bool = False


class TrainState(NamedTuple):
    params: dict  # the trained parameters
    opt_state: tuple
    buf: dict  # the model's variables at the kept epochs, stacked
    model_state: dict = {}  # batch-norm running statistics ({} for a stateless model)


def split_variables(model: models.Model, variables) -> tuple[dict, dict]:
    """(trainable params, model state) of a model's variables."""
    if model.train_apply is None:
        return variables, {}
    return variables["params"], variables["batch_stats"]


def merge_variables(model: models.Model, params, model_state):
    """What ``model.apply`` takes: the params, or ``{"params", "batch_stats"}`` for batch norm."""
    return params if model.train_apply is None else {"params": params, "batch_stats": model_state}


def hyper(cfgs: RunConfig | Sequence[RunConfig]) -> Hyper:
    """Hyper of one config (scalars) or of a list (a leading grid axis)."""
    many = isinstance(cfgs, (list, tuple))
    cs = list(cfgs) if many else [cfgs]
    col = lambda f: np.asarray([f(c) for c in cs], np.float32)
    h = Hyper(
        col(lambda c: c.train.learning_rate),
        col(lambda c: c.train.momentum),
        col(lambda c: c.train.weight_decay),
        col(lambda c: c.train.ortho_penalty),
        col(lambda c: c.train.noise_sigma),
        col(lambda c: c.data.train_subset),
        col(lambda c: c.train.parseval_beta),
    )
    return h if many else Hyper(*(v[0] for v in h))


def uses(cfgs: Sequence[RunConfig]) -> Uses:
    return Uses(
        any(c.train.noise_sigma > 0 for c in cfgs),
        any(c.train.weight_decay > 0 for c in cfgs),
        any(c.train.ortho_penalty > 0 for c in cfgs),
        any(c.data.train_subset < 1 for c in cfgs),
        any(c.train.parseval_beta > 0 for c in cfgs),
    )


def make_optimizer(name: str, hp: Hyper) -> optax.GradientTransformation:
    """The optimizer on all parameters flattened into one vector (fewer, larger ops on XLA:CPU)."""
    if name == "adam":
        return optax.flatten(optax.adam(hp.learning_rate))
    return optax.flatten(optax.sgd(hp.learning_rate, momentum=hp.momentum if name == "momentum" else None))


def penalty(params, hp: Hyper, u: Uses):
    """Weight decay and the orthonormality penalty sum_l ||W_l^T W_l - I||_F^2 over all kernels."""
    total = jnp.float32(0.0)
    for w in models.kernels(params):  # structural: layers have different shapes
        if u.weight_decay:
            total += hp.weight_decay * jnp.sum(w * w)
        if u.ortho:
            dev = gram(w) - jnp.eye(w.shape[1], dtype=w.dtype)
            total += hp.ortho_penalty * jnp.sum(dev * dev)
    return total


_SMALL = 1 << 16  # below this many products, a matrix product as a broadcast and a sum: XLA:CPU runs batched
# (vmapped) tiny dots one by one, 4x slower per epoch for the 12-10-7-5-4-3-2 net with these terms


def _matmul(a_IxJ, b_JxK):
    if a_IxJ.shape[0] * a_IxJ.shape[1] * b_JxK.shape[1] <= _SMALL:
        return jnp.sum(a_IxJ[:, :, None] * b_JxK[None, :, :], axis=1)
    return a_IxJ @ b_JxK


def gram(k_IxO):
    """K^T K."""
    return _matmul(k_IxO.T, k_IxO)


def parseval_step(k_IxO, beta):
    """(1 + beta) K - beta K K^T K, the product taken in the cheaper order."""
    if k_IxO.shape[1] <= k_IxO.shape[0]:
        kkk = _matmul(k_IxO, gram(k_IxO))
    else:
        kkk = _matmul(_matmul(k_IxO, k_IxO.T), k_IxO)
    return (1.0 + beta) * k_IxO - beta * kkk


def retract(params, beta):
    """Every leaf named "kernel" (conv kernels as fan_in x fan_out) after one Parseval retraction step."""

    def one(path, leaf):
        if getattr(path[-1], "key", getattr(path[-1], "name", None)) != "kernel":
            return leaf
        return parseval_step(leaf.reshape(-1, leaf.shape[-1]), beta).reshape(leaf.shape)

    return jax.tree_util.tree_map_with_path(one, params)


def orthonormality_error(params) -> jax.Array:
    """Per kernel, ||K^T K - I||_F (K fan_in x fan_out, in layer order): 0 for orthonormal columns."""
    return jnp.stack([jnp.linalg.norm(k.T @ k - jnp.eye(k.shape[1], dtype=k.dtype)) for k in models.kernels(params)])


def cross_entropy(logits_NxC, y_N, w_N=None):
    """(weighted) mean cross-entropy in nats and accuracy."""
    ce_N = optax.softmax_cross_entropy_with_integer_labels(logits_NxC, y_N)
    hit_N = (jnp.argmax(logits_NxC, -1) == y_N).astype(jnp.float32)
    if w_N is None:
        return jnp.mean(ce_N), jnp.mean(hit_N)
    total = jnp.maximum(jnp.sum(w_N), 1e-30)
    return jnp.sum(w_N * ce_N) / total, jnp.sum(w_N * hit_N) / total


_INDEX_BITS = 16  # sample index packed below 16 random bits: one value sort instead of an argsort


def batch_indices(key, n: int, batch_size: int, n_active=None):
    """A fresh permutation of the first ``n_active`` (default all ``n``) samples, split into
    ``ceil(n / B)`` batches: weights ``w`` are 0 on padding and on masked samples.

    Each sample gets a random 16-bit key with its index packed below it, and the packed uint32
    values are sorted (a plain value sort: 5x faster than an argsort on XLA:CPU, where the shuffle
    was the largest single cost of an epoch). Equal random keys, about n^2 / 2^17 pairs per epoch,
    keep index order; such a pair is adjacent in the permutation, so it lands in one batch unless it
    straddles a batch boundary. Masked samples sort last, so the first ``n_active`` positions equal
    the permutation of a split holding only those samples. Above 2^16 samples: a stable argsort.
    """
    n_batches = -(-n // batch_size)
    bits = jax.random.bits(key, (n,), jnp.uint32)
    top = jnp.asarray(np.iinfo(np.uint32).max, jnp.uint32)
    if n_active is not None:
        bits = jnp.where(jnp.arange(n) < n_active, bits, top)
    if n <= 2**_INDEX_BITS:
        high = bits & jnp.asarray(~np.uint32(2**_INDEX_BITS - 1), jnp.uint32)
        perm = (jnp.sort(high | jnp.arange(n, dtype=jnp.uint32)) & jnp.uint32(2**_INDEX_BITS - 1)).astype(jnp.int32)
    else:
        perm = jnp.argsort(bits, stable=True)
    idx = jnp.concatenate([perm, perm[: n_batches * batch_size - n]]).reshape(n_batches, batch_size)
    limit = n if n_active is None else n_active
    w = (jnp.arange(n_batches * batch_size) < limit).astype(jnp.float32).reshape(n_batches, batch_size)
    return idx, w


class Trainer(NamedTuple):
    init: Callable  # (key, hp) -> TrainState
    segment: Callable  # (state, key, hp, start, stop=None, *, length) -> (TrainState, metrics over length epochs)
    train: Callable  # (key, hp) -> dict: the whole run in one scan
    kept: np.ndarray  # the scheduled epochs


class Setup(NamedTuple):
    """What a run's steps close over (static for jit): the model, its settings, the split as device arrays and
    the derived sizes and tables. Built once by ``make_train``; every step below is a module-level function of it."""

    model: models.Model
    cfg: TrainConfig
    u: Uses
    x_tr: jax.Array
    y_tr: jax.Array
    x_te: jax.Array
    y_te: jax.Array
    n_train: int
    bs: int  # the minibatch size (the whole split for full-batch GD)
    steps: int  # cfg.epoch_steps (0: one pass per epoch)
    kept: np.ndarray  # the scheduled epochs
    slot_E: np.ndarray  # per epoch: its position among the kept epochs, -1 if not kept
    measure_E: np.ndarray  # with epoch_steps: the epochs with full-split metrics (the last)
    same_split: bool  # split "all": one pass serves the train and test metrics


def setup(model: models.Model, cfg: TrainConfig, data: Split, *, u: Uses = Uses()) -> Setup:
    """The ``Setup`` of a run, with the checks that need the split (batch size, epoch steps, noise)."""
    kept = schedules.from_spec(cfg.schedule, cfg.n_epochs)
    slot_E = np.full(cfg.n_epochs, -1, np.int32)
    slot_E[kept] = np.arange(len(kept))
    x_tr, y_tr = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_te, y_te = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    n_train = x_tr.shape[0]
    bs = cfg.batch_size or n_train
    if bs > n_train:
        raise ValueError(f"train.batch_size must be <= the {n_train} training samples, got {bs}")
    steps = cfg.epoch_steps
    if steps > -(-n_train // bs):
        raise ValueError(
            f"train.epoch_steps must be <= the {-(-n_train // bs)} batches of one pass over the "
            f"{n_train} training samples (batch {bs}), got {steps}"
        )
    if u.noise and model.noisy_apply is None:
        raise ValueError("train.noise_sigma > 0 needs a model with noisy_apply(params, x, key, sigma)")
    if u.noise and model.train_apply is not None:
        raise ValueError("train.noise_sigma > 0 is not supported for batch-norm models (model.batch_norm or resnet)")
    measure_E = np.arange(cfg.n_epochs) == cfg.n_epochs - 1
    same_split = data.x_test is data.x_train and data.y_test is data.y_train
    return Setup(model, cfg, u, x_tr, y_tr, x_te, y_te, n_train, bs, steps, kept, slot_E, measure_E, same_split)


def n_active(st: Setup, hp: Hyper):
    """The number of live training samples (the ``train_subset`` share), or None when every sample is live."""
    return jnp.round(hp.train_subset * st.n_train).astype(jnp.int32) if st.u.subset else None


def loss_fn(st: Setup, params, ms, x, y, w, key, hp: Hyper):
    """(weighted cross-entropy + penalty, (cross-entropy, accuracy, new batch-norm state)) of one minibatch."""
    model = st.model
    if model.train_apply is not None:  # batch statistics of the live samples; running averages updated
        logits, ms = model.train_apply(params, ms, x, w > 0)
    elif st.u.noise:
        logits = model.noisy_apply(params, x, key, hp.noise_sigma)[0]
    else:
        logits = model.apply(params, x)[0]
    ce, acc = cross_entropy(logits, y, w)
    return ce + penalty(params, hp, st.u), (ce, acc, ms)


def batch_step(st: Setup, carry, batch, hp: Hyper):
    """One optimizer step on one minibatch (an all-masked batch changes nothing), accumulating the per-kernel
    gradient sums and squares of the epoch: the scan body over an epoch's batches."""
    params, opt_state, ms, g1, g2 = carry
    idx_B, w_B, key = batch
    opt = make_optimizer(st.cfg.optimizer, hp)
    grad_fn = jax.value_and_grad(lambda *a: loss_fn(st, *a), has_aux=True)
    (_, (ce, acc, new_ms)), grads = grad_fn(params, ms, st.x_tr[idx_B], st.y_tr[idx_B], w_B, key, hp)
    updates, new_state = opt.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    if st.u.parseval:
        new_params = retract(new_params, hp.parseval_beta)
    live = jnp.sum(w_B) > 0  # an all-masked batch changes nothing (Adam would still move)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(live, a, b), new, old)
    gk = [jnp.where(live, g, 0.0) for g in models.kernels(grads)]
    g1 = [a + g for a, g in zip(g1, gk)]
    g2 = [a + g * g for a, g in zip(g2, gk)]
    carry = (keep(new_params, params), keep(new_state, opt_state), keep(new_ms, ms), g1, g2)
    return carry, (ce * jnp.sum(w_B), acc * jnp.sum(w_B), live)


def split_metrics(st: Setup, params, ms, n_act):
    """Loss and accuracy on the (live) training split and on the test split, with the running averages."""
    full = merge_variables(st.model, params, ms)
    w_N = None if n_act is None else (jnp.arange(st.n_train) < n_act).astype(jnp.float32)
    tr_loss, tr_acc = cross_entropy(st.model.apply(full, st.x_tr)[0], st.y_tr, w_N)
    if st.same_split and w_N is None:
        return tr_loss, tr_acc, tr_loss, tr_acc
    te_loss, te_acc = cross_entropy(st.model.apply(full, st.x_te)[0], st.y_te)
    return tr_loss, tr_acc, te_loss, te_acc


def store(buf, params, slot):
    """``params`` written into the kept-epoch buffer at ``slot`` (nothing when slot < 0)."""
    return jax.lax.cond(
        slot >= 0, lambda b: jax.tree.map(lambda bk, p: bk.at[slot].set(p), b, params), lambda b: b, buf
    )


def epoch_step(st: Setup, state: TrainState, epoch, key, hp: Hyper):
    """One epoch: its permutation and batches from ``fold_in(key, epoch)``, a scan of ``batch_step``, the kept
    checkpoint (before or after the epoch's steps) and the epoch's metrics."""
    cfg, steps, n_train = st.cfg, st.steps, st.n_train
    params, opt_state, buf, ms = state
    slot = jnp.asarray(st.slot_E)[epoch]
    if cfg.checkpoint_at == "before":
        buf = store(buf, merge_variables(st.model, params, ms), slot)
    k_perm, k_noise = jax.random.split(jax.random.fold_in(key, epoch))
    n_act = n_active(st, hp)
    idx, w = batch_indices(k_perm, n_train, st.bs, n_act)
    if steps:
        idx, w = idx[:steps], w[:steps]
    keys = jax.random.split(k_noise, idx.shape[0])
    zeros = [jnp.zeros_like(k) for k in models.kernels(params)]
    (params, opt_state, ms, g1, g2), (ce_sum, acc_sum, live) = jax.lax.scan(
        lambda c, b: batch_step(st, c, b, hp), (params, opt_state, ms, zeros, zeros), (idx, w, keys)
    )
    if cfg.checkpoint_at == "after":
        buf = store(buf, merge_variables(st.model, params, ms), slot)
    nb = jnp.sum(live)
    g_mean = [a / nb for a in g1]
    g_var = [jnp.maximum(b / nb - m * m, 0.0) for b, m in zip(g2, g_mean)]
    n_used = (n_train if n_act is None else n_act) if not steps else jnp.sum(w)
    if steps:  # the predicate is per epoch, never batched under vmap: a real branch, not a select
        nan = lambda p: (jnp.full((), jnp.nan, jnp.float32),) * 4
        tr_loss, tr_acc, te_loss, te_acc = jax.lax.cond(
            jnp.asarray(st.measure_E)[epoch], lambda p: split_metrics(st, p, ms, n_act), nan, params
        )
    else:
        tr_loss, tr_acc, te_loss, te_acc = split_metrics(st, params, ms, n_act)
    undefined = jnp.where(nb > 1, 1.0, jnp.nan)  # one batch per epoch: the minibatch std is undefined
    metrics = dict(
        train_loss=tr_loss,
        train_acc=tr_acc,
        test_loss=te_loss,
        test_acc=te_acc,
        train_loss_running=jnp.sum(ce_sum) / n_used,
        train_acc_running=jnp.sum(acc_sum) / n_used,
        grad_mean_norm=jnp.stack([jnp.linalg.norm(m) for m in g_mean]),
        grad_std_norm=jnp.stack([jnp.sqrt(jnp.sum(v)) for v in g_var]) * undefined,
        weight_norm=jnp.stack([jnp.linalg.norm(k) for k in models.kernels(params)]),
    )
    return TrainState(params, opt_state, buf, ms), metrics


def init_state(st: Setup, key, hp: Hyper) -> TrainState:
    """The initial parameters (from ``split(key)[0]``), optimizer state and an empty kept-epoch buffer."""
    variables = st.model.init(jax.random.split(key)[0])
    params, ms = split_variables(st.model, variables)
    buf = jax.tree.map(lambda p: jnp.zeros((len(st.kept),) + p.shape, p.dtype), variables)
    return TrainState(params, make_optimizer(st.cfg.optimizer, hp).init(params), buf, ms)


def segment(st: Setup, state: TrainState, key, hp: Hyper, start, stop=None, *, length: int):
    """Epochs ``start .. start + length - 1`` (with ``stop``: those before it; the rest change nothing)."""
    k_train = jax.random.split(key)[1]
    if stop is None:
        return jax.lax.scan(lambda s, e: epoch_step(st, s, e, k_train, hp), state, start + jnp.arange(length))

    def masked(s, e):  # epochs from ``stop`` on change nothing: one program serves a shorter last segment
        blank = jax.eval_shape(lambda: epoch_step(st, s, e, k_train, hp)[1])
        skip = lambda s: (s, jax.tree.map(lambda a: jnp.full(a.shape, jnp.nan, a.dtype), blank))
        return jax.lax.cond(e < stop, lambda s: epoch_step(st, s, e, k_train, hp), skip, s)

    return jax.lax.scan(masked, state, start + jnp.arange(length))


def train(st: Setup, key, hp: Hyper) -> dict:
    """The whole run in one scan: the kept epochs' variables, the epochs, per-epoch metrics, the final variables."""
    state, metrics = segment(st, init_state(st, key, hp), key, hp, 0, length=st.cfg.n_epochs)
    return {
        "params": state.buf,
        "epochs": jnp.asarray(st.kept),
        "metrics": metrics,
        "final_params": merge_variables(st.model, state.params, state.model_state),
    }


def make_train(model: models.Model, cfg: TrainConfig, data: Split, *, u: Uses = Uses()) -> Trainer:
    """Pure training functions for ``model`` (any ``init(key)`` / ``apply(params, x) -> (logits, acts)``): the
    module-level steps bound to the run's ``Setup``."""
    st = setup(model, cfg, data, u=u)
    return Trainer(partial(init_state, st), partial(segment, st), partial(train, st), st.kept)
