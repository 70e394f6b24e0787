"""Train a (settings grid x seeds) group in one vmapped call, resumably, into one run directory each.

``train_or_reuse(cfg, seeds, out_root, sweep=...)`` returns the run directories in grid-major order.
A directory that finished writing with identical settings is reused; others are (re)trained. The
group is trained in segments of ``save_every`` epochs and its whole scan state is saved atomically
after each (``OUT_ROOT/.train-<hash>.npz``), so a killed run resumes at the last saved segment and
finishes bit-identical to an uninterrupted one. While a group trains it holds the lock of each of its
run directories (``checkpoints.run_lock``): a second process training any of them is refused, naming
the first, rather than mixing its results or its saved state with theirs. A run's id covers
everything that changes its numbers: the settings, the seed, the number of runs vmapped together and
the number of devices they were sharded over (XLA's batched kernels round differently) and the
segment length.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from ibjax import checkpoints, io, models
from ibjax import data as data_mod
from ibjax.config import RunConfig, expand_sweep
from ibjax.timing import phased, tally
from ibjax.train import hyper, make_train, merge_variables, uses

DEFAULT_SAVE_EVERY = 1000
PROGRESS_EVERY = 100  # epochs per compiled training segment: the progress bar's step
_LOADERS = {
    "var_u": data_mod.var_u,
    "generated_12bit": lambda path=None: data_mod.generated_12bit(),
    "szt_12bit": data_mod.szt_12bit,
    "single_neuron": lambda path=None: data_mod.single_neuron(),
    "stochastic_12bit": lambda path=None: data_mod.stochastic_12bit(),
}
IMAGE_DATASETS = {  # data.name -> (loader, split); fashion_mnist is its 10k test split, as mnist_test is MNIST's
    "mnist_test": (data_mod.mnist, "test"),
    "mnist_train": (data_mod.mnist, "train"),
    "fashion_mnist": (data_mod.fashion_mnist, "test"),
    "fashion_mnist_test": (data_mod.fashion_mnist, "test"),
    "fashion_mnist_train": (data_mod.fashion_mnist, "train"),
}


def versions() -> dict:
    import flax
    import jaxlib
    import optax

    import ibjax

    return {
        "ibjax": ibjax.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }


def use_cpu_cores(n: int | None = None) -> int:
    """Ask JAX for one CPU device per core (default ``os.cpu_count()``), so that vmapped runs and
    evaluation items are sharded over the cores: XLA:CPU otherwise runs these small kernels on one.
    Only possible before JAX's first computation (command-line entry points call it first); a no-op
    after that, or when ``XLA_FLAGS`` / ``JAX_NUM_CPU_DEVICES`` already set the count. Returns the
    number of devices that will be used."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "") or os.environ.get(
        "JAX_NUM_CPU_DEVICES"
    ):
        return jax.device_count()
    try:
        jax.config.update("jax_num_cpu_devices", int(n or os.cpu_count() or 1))
    except RuntimeError:  # JAX already started: keep its devices
        pass
    return jax.device_count()


@phased("load")
def load_data(cfg: RunConfig, path=None) -> data_mod.Dataset:
    """The dataset named by ``cfg.data.name`` (MNIST images unflattened for a CNN)."""
    name = cfg.data.name
    if name in _LOADERS:
        return _LOADERS[name](path)
    if name.startswith("audio:"):  # a folder of clips per class, as log-mel spectrograms (default settings)
        from ibjax import audio

        return audio.audio_folder(name.split(":", 1)[1], flat=cfg.model.kind == "mlp")
    if name in IMAGE_DATASETS:
        loader, split = IMAGE_DATASETS[name]
        return loader(split, path=path, flat=cfg.model.kind == "mlp")
    raise ValueError(f"data.name must be one of {sorted(_LOADERS) + sorted(IMAGE_DATASETS)} or audio:DIR, got {name!r}")


def split_data(ds: data_mod.Dataset, cfg: RunConfig) -> data_mod.Split:
    """``ds`` split as ``cfg.data`` says (split, split_seed, train_frac): the split training uses."""
    return data_mod.split(ds, cfg.data.split, seed=cfg.data.split_seed, train_frac=cfg.data.train_frac)


def data_present(name: str, path=None) -> bool:
    """Whether an image dataset named like ``data.name`` (``IMAGE_DATASETS``) is on disk (never downloads)."""
    if name not in IMAGE_DATASETS:
        raise ValueError(f"name must be one of {sorted(IMAGE_DATASETS)}, got {name!r}")
    loader, split = IMAGE_DATASETS[name]
    return data_mod.idx_present("mnist" if loader is data_mod.mnist else "fashion_mnist", split, path)


def run_config(cfg: RunConfig, seed: int, n_vmapped: int, save_every: int) -> dict:
    return {
        **cfg.to_dict(),
        "seed": int(seed),
        "vmapped_runs": int(n_vmapped),
        "devices": jax.device_count(),
        "save_every": int(save_every),
        "versions": versions(),
    }


def sweep_tag(cfg: RunConfig, sweep: dict | None) -> str:
    return ",".join(f"{k.split('.')[-1]}={cfg.get(k):g}" for k in (sweep or {}))


def _check_seeds(seeds) -> list[int]:
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    return [int(s) for s in seeds]


def train_or_reuse(
    cfg: RunConfig,
    seeds,
    out_root,
    *,
    sweep: dict | None = None,
    force: bool = False,
    model: models.Model | None = None,
    data_path=None,
    save_every: int = DEFAULT_SAVE_EVERY,
    log=print,
) -> list[Path]:
    """Run directories ``out_root/[<sweep tag>/]seed_<s>`` for every (grid point, seed)."""
    seeds = _check_seeds(seeds)
    if isinstance(save_every, bool) or not isinstance(save_every, int) or save_every < 1:
        raise ValueError(f"save_every must be an integer >= 1, got {save_every!r}")
    out_root = Path(out_root)
    ds = load_data(cfg, data_path)
    if ds.name != cfg.data.name:  # szt_12bit resolves to what was found: record that
        cfg = cfg.replace(**{"data.name": ds.name})
    grid = expand_sweep(cfg, sweep)
    runs = [(g, s) for g in grid for s in seeds]
    configs = [run_config(g, s, len(runs), save_every) for g, s in runs]
    dirs = [out_root / sweep_tag(g, sweep) / f"seed_{s}" for g, s in runs]
    with contextlib.ExitStack() as held:
        for d in sorted({os.path.realpath(d) for d in dirs}):
            held.enter_context(checkpoints.run_lock(d, what=f"training {len(runs)} run(s) into {out_root}"))
        return _train_or_reuse(cfg, runs, configs, dirs, ds, out_root, force, model, save_every, log)


def _train_or_reuse(cfg, runs, configs, dirs, ds, out_root, force, model, save_every, log) -> list[Path]:
    if not force and all(checkpoints.is_complete(d, c) for d, c in zip(dirs, configs)):
        log(f"reusing {len(dirs)} finished run directories under {out_root} (--force retrains)")
        tally("runs reused", len(dirs))
        return dirs
    log(f"dataset: {ds.name} ({ds.source})")
    split = split_data(ds, cfg)
    if model is None:
        model = cfg.model.build()
    out = train_group(
        model,
        [g for g, _ in runs],
        [s for _, s in runs],
        split,
        state_path=_state_path(out_root, configs),
        save_every=save_every,
        log=log,
    )
    for i, (d, c) in enumerate(zip(dirs, configs)):
        checkpoints.write_run(
            d,
            c,
            out["epochs"],
            jax.tree.map(lambda a: a[i], out["params"]),
            {k: v[i] for k, v in out["metrics"].items()},
        )
    _state_path(out_root, configs).unlink(missing_ok=True)
    tally("runs trained", len(dirs))
    if cfg.train.batch_size == 0 or cfg.train.batch_size >= len(split.y_train):
        log(
            "note: full-batch training, one batch per epoch: the minibatch gradient std (and SNR) is undefined, "
            "recorded as NaN in metrics grad_std_norm"
        )
    return dirs


def _state_path(out_root: Path, configs) -> Path:
    ids = [checkpoints.run_id(c) for c in configs]
    return out_root / f".train-{hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:12]}.npz"


def train_group(
    model,
    cfgs: list[RunConfig],
    seeds: list[int],
    split: data_mod.Split,
    *,
    state_path: Path | None = None,
    save_every: int = DEFAULT_SAVE_EVERY,
    log=print,
) -> dict:
    """Train R = len(cfgs) runs (same shapes; traced settings may differ) in one vmapped call per
    segment; returns host arrays with a leading R axis. Resumes from ``state_path`` when it exists,
    holding its lock (``STATE.lock`` beside it) so that no other process saves its state there."""
    if state_path is None:
        return _train_group(model, cfgs, seeds, split, None, save_every, log)
    state_path = Path(state_path)
    lock = state_path.with_name(state_path.name + ".lock")
    with io.path_lock(lock, target=f"training state {state_path}", what=f"training {len(cfgs)} run(s)"):
        return _train_group(model, cfgs, seeds, split, state_path, save_every, log)


def _train_group(model, cfgs, seeds, split, state_path, save_every, log) -> dict:
    tcfg = cfgs[0].train
    tr = make_train(model, tcfg, split, u=uses(cfgs))
    n_runs, n_dev = len(cfgs), jax.device_count()
    keys, hp = shard_runs((jax.vmap(jax.random.key)(np.asarray(seeds, np.uint32)), hyper(cfgs)))
    init = models.jit_init(jax.vmap(tr.init))
    n = tcfg.n_epochs
    length = min(PROGRESS_EVERY, save_every, n)  # every segment, the last one too (masked from n on): one compile
    seg = jax.jit(jax.vmap(partial(tr.segment, length=length), in_axes=(0, 0, 0, None, None)))

    state, metrics, start = _resume(state_path, jax.eval_shape(init, keys, hp))
    if start:
        log(f"resuming training at epoch {start} from {state_path}")
        state = jax.device_put(state, _run_sharding())
    else:  # placed as every segment's output is, so the first segment's program serves the rest
        state = jax.device_put(init(keys, hp), _run_sharding())
    t0 = time.perf_counter()
    with tqdm(
        total=n, initial=start, desc=f"training {len(cfgs)} run(s)", unit="epoch", leave=False, disable=None
    ) as bar:
        if start < n:
            bar.set_postfix_str("compiling", refresh=True)  # the first segment's compile is the long silence
        next_save = start + save_every
        while start < n:
            done = min(length, n - start)  # the bar moves at least every 100 epochs
            state, m = seg(state, keys, hp, np.int32(start), np.int32(n))
            metrics.append(jax.tree.map(lambda a: np.asarray(a)[:, :done], m))
            start += done
            if state_path is not None and next_save <= start < n:
                _save_state(state_path, state, metrics, start)
                next_save = start + save_every
            bar.set_postfix_str("", refresh=False)
            bar.update(done)
    seconds = time.perf_counter() - t0
    log(f"trained {n_runs} run(s) x {n} epochs in {seconds:.1f} s on {n_dev} device(s) (compile included)")
    merged = {k: np.concatenate([m[k] for m in metrics], axis=1)[:n_runs] for k in metrics[0]}
    host = lambda tree: jax.tree.map(lambda a: np.asarray(a)[:n_runs], tree)
    final = merge_variables(model, state.params, state.model_state)  # with batch norm: {"params", "batch_stats"}
    return {
        "params": host(state.buf),
        "epochs": tr.kept,
        "metrics": merged,
        "final_params": host(final),
        "seconds": seconds,
    }


def _run_sharding():
    return NamedSharding(Mesh(np.array(jax.devices()), ("runs",)), PartitionSpec("runs"))


def shard_runs(tree):
    """Pad a pytree's leading run axis to whole shards (repeating the last run) and place it across
    every device; results are sliced back to the real runs."""
    n = jax.tree.leaves(tree)[0].shape[0]
    pad = np.concatenate([np.arange(n), np.full(-n % jax.device_count(), n - 1)]).astype(np.int64)
    return jax.device_put(jax.tree.map(lambda a: a[pad], tree), _run_sharding())


def _save_state(path: Path, state, metrics: list, next_epoch: int) -> None:
    leaves = jax.tree.leaves(state)
    arrays = {f"leaf_{i:04d}": np.asarray(a) for i, a in enumerate(leaves)}
    merged = {k: np.concatenate([m[k] for m in metrics], axis=1) for k in metrics[0]}
    arrays.update({f"metric_{k}": v for k, v in merged.items()}, next_epoch=np.int64(next_epoch))
    io.atomic_save_npz(path, arrays)


def _resume(path: Path | None, shapes):
    """(state, [metrics so far], next epoch) from a saved state file that fits ``shapes``, else (None, [], 0)."""
    if path is None or not path.is_file():
        return None, [], 0
    try:
        with np.load(path, allow_pickle=False) as z:
            leaves = [z[f"leaf_{i:04d}"] for i in range(len(jax.tree.leaves(shapes)))]
            metrics = {k[len("metric_") :]: z[k] for k in z.files if k.startswith("metric_")}
            start = int(z["next_epoch"])
        for a, s in zip(leaves, jax.tree.leaves(shapes)):
            if a.shape != s.shape or a.dtype != s.dtype:
                raise ValueError(f"leaf shape {a.shape} {a.dtype}, expected {s.shape} {s.dtype}")
    except Exception as e:  # noqa: BLE001 - an unusable state file means: start over
        print(f"warning: ignoring the saved training state {path} ({e}); training from epoch 0", file=sys.stderr)
        return None, [], 0
    state = jax.tree.unflatten(jax.tree.structure(shapes), [jax.numpy.asarray(a) for a in leaves])
    return state, [metrics], start
