"""Evaluate training that ibjax did not do: checkpoint directories of any format with the user's
model, and saved activations from files.

    plane = external.evaluate_dir("ckpts/", models.from_flax(Net(), (12,)), ds.x, ds.y, "kde", out="eval")
    model = external.as_model(external.load_factory("mypkg.nets:make_model"))   # the CLI's --model
    acts, y, x, epochs, names = external.read_activations(["acts.npz"])

``evaluate_dir`` opens the directory (``sources.open_dir``), picks the epochs (``pipeline.EPOCH_SPECS``)
and evaluates them with ``pipeline.evaluate_arrays``; when the stacked params of every selected
epoch would take more than a quarter of ``memory_gb``, they are loaded and evaluated in chunks of
epochs (``params_gb``; each chunk's plane saved under ``OUT/.chunks/`` and reused), then joined.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import numpy as np

from ibjax import io, models, pipeline, sources
from ibjax.config import DataConfig, RunConfig
from ibjax.result import InfoPlane, concat_epochs

_RESERVED = ("y", "labels", "x", "epochs")
ACT_FILES = (".npz", ".npy", ".h5", ".hdf5")


def factory_parts(spec):
    """(module or model, input_shape, layers, sow) of what a ``--model`` factory returns: a module or
    model, ``(module, input_shape[, layers])``, or a dict with those keys (and ``sow``)."""
    if isinstance(spec, dict):
        return spec["module"], spec.get("input_shape"), spec.get("layers"), spec.get("sow")
    if isinstance(spec, tuple) and not isinstance(spec, models.Model):
        module, *rest = spec
        return module, rest[0] if rest else None, rest[1] if len(rest) > 1 else None, None
    return spec, None, None, None


def as_model(model, input_shape=None, *, layers=None, sow=None):
    """A ``models.Model`` from what a user has: a flax linen or NNX module, or a factory's return value
    (see ``factory_parts``); a ``models.Model``, ``ApplyFns`` or apply function is returned as it is."""
    module, shape, f_layers, f_sow = factory_parts(model)
    if not _is_flax_module(module):
        return module
    return models.from_flax(module, shape or input_shape, layers=layers or f_layers, sow=sow or f_sow)


def _is_flax_module(m) -> bool:
    import flax.linen as nn

    from ibjax import capture

    return isinstance(m, nn.Module) or capture.is_nnx(m)


def load_factory(spec: str):
    """``"pkg.module:make_model"`` -> what ``make_model()`` returns (give it to ``as_model``); the
    current directory is importable."""
    mod_name, sep, fn_name = str(spec).partition(":")
    if not sep or not mod_name or not fn_name.isidentifier():
        raise ValueError(f"--model {spec!r}: expected MODULE:FUNCTION, e.g. mypkg.nets:make_model")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"--model {spec!r}: cannot import it ({type(e).__name__}: {e})") from None
    return fn()


def load_dataset(spec: str):
    """(x, y, name, source): a dataset name (var_u, mnist_test, ...) or an .npz / HDF5 file with x and y."""
    p = Path(spec)
    if p.suffix in (".npz", ".h5", ".hdf5"):
        arrays = _read_arrays(p)
        missing = [k for k in ("x", "y") if k not in arrays]
        if missing:
            raise ValueError(f"--data {spec!r}: the file has no {missing} arrays (it holds {sorted(arrays)})")
        return arrays["x"], arrays["y"], p.stem, str(p)
    name, _, path = str(spec).partition(":")
    try:
        ds = pipeline.load_data(RunConfig(data=DataConfig(name=name)), path or None)
    except ValueError as e:
        raise ValueError(f"--data {spec!r}: {e}, or an .npz / .h5 file with arrays x and y") from None
    return ds.x, ds.y, ds.name, ds.source


def fit_inputs(x, input_shape):
    """``x`` reshaped to ``input_shape`` (one sample's) when the sizes agree (flat MNIST for a CNN)."""
    x = np.asarray(x)
    if input_shape is None or tuple(x.shape[1:]) == tuple(input_shape):
        return x
    if int(np.prod(x.shape[1:])) != int(np.prod(input_shape)):
        raise ValueError(
            f"the data's samples have shape {x.shape[1:]}, the model's input_shape is {tuple(input_shape)}"
        )
    return x.reshape((x.shape[0],) + tuple(input_shape))


def evaluate_dir(
    path,
    model,
    x,
    y,
    estimator: str = "binning",
    options: dict | None = None,
    *,
    format=None,
    params_key=None,
    pattern=None,
    epochs: str = "all",
    allow_partial: bool = False,
    out=None,
    memory_gb: float | None = None,
    params_gb: float | None = None,
    data_name: str | None = None,
    log=print,
    **kw,
) -> InfoPlane:
    """The information plane of a checkpoint directory (any ``sources.FORMATS``) under ``model``.
    ``params_gb``: most stacked params held at once (default ``memory_gb / 4``). Other keywords: as
    ``pipeline.evaluate_arrays`` (view, sweep, seed, nan_policy, recompute, ...)."""
    src = sources.open_dir(path, format=format, params_key=params_key, pattern=pattern, allow_partial=allow_partial)
    model = as_model(model, np.shape(x)[1:])
    positions = pipeline.select_epochs(epochs, src.epochs)
    params_gb = io.memory_budget_gb(memory_gb) / 4 if params_gb is None else params_gb
    fit = max(1, int(params_gb * 2**30 // max(1, src.nbytes_per_epoch)))
    measured = {"data": data_name, "samples": "all", "n_samples": int(len(y)), "checkpoints": src.format}
    common = dict(
        run_ids=[src.run_id],
        run_dirs=[src.path],
        memory_gb=memory_gb,
        log=log,
        measured=measured,
        run_config=src.config,
        **kw,
    )
    if src.missing:
        log(f"warning: {src.path}: skipped the uncommitted steps {list(src.missing)}")
    if len(positions) <= fit:
        params = _one_run(src.load(positions))
        return pipeline.evaluate_arrays(
            model, params, src.epochs[positions], x, y, estimator, options, out=out, **common
        )
    chunks = [positions[i : i + fit] for i in range(0, len(positions), fit)]
    log(
        f"{src.path}: {len(positions)} epochs of {src.nbytes_per_epoch / 2**20:.1f} MB params, loaded in "
        f"{len(chunks)} chunks to stay within params_gb={params_gb:.3g}"
    )
    planes = []
    for c in chunks:  # I/O edge: each chunk of epochs is one batched evaluation
        sub = (
            None
            if out is None
            else Path(out) / ".chunks" / f"{src.run_id}_{int(src.epochs[c[0]])}_{int(src.epochs[c[-1]])}"
        )
        planes.append(
            pipeline.evaluate_arrays(
                model, _one_run(src.load(c)), src.epochs[c], x, y, estimator, options, out=sub, **common
            )
        )
    plane = concat_epochs(planes, pipeline.result_key(chunks=[p.key for p in planes]))
    if out is not None:
        plane.save(pipeline.result_path(out, estimator, plane.measured["view"]))
    return plane


def _one_run(params_E: dict) -> dict:
    import jax

    return jax.tree.map(lambda a: a[None], params_E)  # 1 run x E epochs


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _read_arrays(p: Path, group: str | None = None) -> dict:
    """Arrays of an .npz (file order) or HDF5 file (datasets of the root or ``group``, natural name order)."""
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{p}: corrupt or not an npz file ({e})") from None
    try:
        import h5py
    except ImportError:
        raise ValueError(f"reading {p} needs h5py: {sources.EXTRA}") from None
    try:
        with h5py.File(p, "r") as f:
            node = f[group] if group else f
            return {k: node[k][()] for k in sorted(node, key=_natural) if isinstance(node[k], h5py.Dataset)}
    except (OSError, KeyError) as e:
        raise ValueError(f"{p}: cannot read it as HDF5 ({e})") from None


def read_activations(paths, *, labels=None):
    """(acts per layer, y or None, x or None, epochs or None, layer names) from saved activation files:
    one .npz / HDF5 file (``FILE.h5:GROUP`` for a group) whose arrays are the layers (E x N x ... each)
    besides the reserved y / labels, x, epochs; or several .npy files, one layer each. ``labels``: an
    .npy file of the N labels (else ``y`` in the file)."""
    paths = [str(p) for p in paths]
    if all(p.endswith(".npy") for p in paths):
        acts = {Path(p).stem: _load_npy(p) for p in paths}
        extra = {}
    elif len(paths) == 1:
        m = re.fullmatch(r"(.+\.(?:h5|hdf5)):(.+)", paths[0])
        arrays = _read_arrays(Path(m[1]), m[2]) if m else _read_arrays(Path(paths[0]))
        acts = {k: v for k, v in arrays.items() if k not in _RESERVED}
        extra = {k: v for k, v in arrays.items() if k in _RESERVED}
    else:
        raise ValueError(f"activations: give one .npz / .h5 file or one .npy file per layer, got {paths}")
    if not acts:
        raise ValueError(f"activations {paths}: no layer arrays found (only {sorted(extra)})")
    y = _load_npy(labels) if labels else extra.get("y", extra.get("labels"))
    return list(acts.values()), y, extra.get("x"), extra.get("epochs"), list(acts)


def _load_npy(p):
    try:
        return np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: no such file") from None
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{p}: corrupt or not an .npy file ({e})") from None
