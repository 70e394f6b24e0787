"""Orbax ``CheckpointManager`` directories for ``ibjax.sources``: one step directory per epoch
(``5/``, ``ckpt_5/``), each holding one or more items with their ``_METADATA``.

The params leaves named in an item's ``_METADATA`` are read with tensorstore directly, all steps of a
batch in flight at once (orbax's own restore costs about 13 ms a step; this, about 2 ms); leaves of
other types fall back to orbax's ``PyTreeCheckpointer().restore``. Uncommitted steps
(``5.orbax-checkpoint-tmp*``, an interrupted save) are refused unless ``allow_partial``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ibjax.source_base import EXTRA, Source, _check_shapes, _files_id, _one_line, select_params

_STEP = re.compile(r"(?:.*_)?(\d+)")
_TMP_STEP = re.compile(r"(?:.*_)?(\d+)\.orbax-checkpoint-tmp.*")
_FAST_TYPES = ("jax.Array", "np.ndarray")


def has_steps(path: Path, names) -> bool:
    return any(_STEP.fullmatch(n) and _is_step(path / n) or _TMP_STEP.fullmatch(n) for n in names)


def open_steps(path: Path, params_key: str | None, allow_partial: bool) -> Source:
    """A ``sources.Source`` of an orbax directory."""
    steps, tmp = {}, []
    for n in os.listdir(path):
        if (m := _TMP_STEP.fullmatch(n)) and (path / n).is_dir():
            tmp.append((int(m.group(1)), n))
        elif (m := _STEP.fullmatch(n)) and _is_step(path / n):
            if int(m.group(1)) in steps:
                raise ValueError(
                    f"{path}: {steps[int(m.group(1))].name} and {n} both hold step {int(m.group(1))}; "
                    "the directory mixes runs"
                )
            steps[int(m.group(1))] = path / n
    uncommitted = sorted(s for s, _ in tmp if s not in steps)
    if uncommitted and not allow_partial:
        names = ", ".join(n for s, n in sorted(tmp) if s in uncommitted)
        raise FileNotFoundError(
            f"{path}: orbax steps {uncommitted} were never committed ({names}: an interrupted "
            f"save); pass allow_partial=True (CLI: --allow-partial) to evaluate the {len(steps)} committed steps"
        )
    if not steps:
        raise FileNotFoundError(f"{path}: no committed orbax step directories")
    epochs = np.array(sorted(steps), np.int64)
    item, prefix, meta = _orbax_item(steps[int(epochs[0])], params_key)
    names = sorted(n for n in meta["leaves"] if n == prefix or not prefix or n.startswith(prefix + "/"))
    fast = meta["fast"] and all(meta["leaves"][n] in _FAST_TYPES for n in names)
    read_many = _orbax_fast if fast else _orbax_slow
    first = read_many(steps, epochs[:1], item, prefix, names, meta)[0]
    shapes = {k: (v.shape, v.dtype) for k, v in first.items()}
    files = [steps[int(e)] / item / "_METADATA" for e in epochs]

    def read(eps):
        return [
            _check_shapes(f"{steps[int(e)]} (orbax step {int(e)})", flat, shapes, f"step {int(epochs[0])}")
            for e, flat in zip(eps, read_many(steps, eps, item, prefix, names, meta))
        ]

    return Source(
        path,
        "orbax",
        epochs,
        shapes,
        _files_id("orbax", [f for f in files if f.exists()]),
        read,
        missing=tuple(uncommitted),
    )


def _is_step(p: Path) -> bool:
    """An orbax step directory: its _CHECKPOINT_METADATA, or an item with _METADATA."""
    return p.is_dir() and (
        (p / "_CHECKPOINT_METADATA").is_file() or any((c / "_METADATA").is_file() for c in p.iterdir())
    )


def _orbax_item(step_dir: Path, params_key: str | None):
    """(item name, params prefix within it, parsed _METADATA) of an orbax step directory."""
    items = sorted(n for n in os.listdir(step_dir) if (step_dir / n / "_METADATA").is_file())
    if not items:
        raise FileNotFoundError(f"{step_dir}: orbax step has no saved item (no */_METADATA); the step is incomplete")
    head, _, rest = (params_key or "").strip("/").partition("/")
    if head in items:
        item, key = head, rest or None
    elif len(items) == 1:
        item, key = items[0], params_key
    else:
        found = [i for i in items if select_params(_orbax_meta(step_dir / i)["leaves"], None, i)]
        if len(found) != 1:
            raise ValueError(
                f"{step_dir}: orbax items {items}; pass params_key='ITEM/...' (CLI: --params-key) to choose"
            )
        item, key = found[0], None
    meta = _orbax_meta(step_dir / item)
    return item, select_params(meta["leaves"], key, f"{step_dir / item}"), meta


def _orbax_meta(item_dir: Path) -> dict:
    """Leaf name ('/'-joined keys) -> value type, and the storage flags, from an item's _METADATA."""
    try:
        raw = json.loads((item_dir / "_METADATA").read_text())
        leaves = {
            "/".join(str(k["key"]) for k in v["key_metadata"]): v["value_metadata"]["value_type"]
            for v in raw["tree_metadata"].values()
        }
        return {
            "leaves": leaves,
            "ocdbt": bool(raw.get("use_ocdbt", True)),
            "zarr3": bool(raw.get("use_zarr3", False)),
            "fast": True,
        }
    except FileNotFoundError:
        raise FileNotFoundError(f"{item_dir}: missing orbax _METADATA; the step is incomplete") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{item_dir}/_METADATA: corrupt or unreadable orbax metadata ({_one_line(e)})") from e


def _orbax_fast(steps, eps, item, prefix, names, meta) -> list[dict]:
    """One batch of concurrent tensorstore reads (the arrays orbax wrote, without its per-step restore)."""
    import tensorstore as ts

    ctx, driver = ts.Context(), "zarr3" if meta["zarr3"] else "zarr"

    def spec(step_dir, name):
        param = name.replace("/", ".")
        item_dir = os.path.abspath(step_dir / item)
        kv = (
            {"driver": "ocdbt", "base": f"file://{item_dir}/", "path": param}
            if meta["ocdbt"]
            else {"driver": "file", "path": f"{item_dir}/{param}/"}
        )
        return {"driver": driver, "kvstore": kv}

    todo = [(int(e), n) for e in eps for n in names]
    for e in {e for e, _ in todo}:
        if not (steps[e] / item / "_METADATA").is_file():
            raise FileNotFoundError(
                f"{steps[e]}: orbax step {e} has no item {item!r} (missing {item}/_METADATA); "
                "the step is incomplete or was deleted in part; re-save it or leave it out"
            )
    opened = [ts.open(spec(steps[e], n), open=True, read=True, context=ctx) for e, n in todo]  # all in flight
    reads = [_result(f, steps[e], e).read() for (e, _), f in zip(todo, opened)]
    arrays = {en: np.asarray(_result(r, steps[en[0]], en[0])) for en, r in zip(todo, reads)}
    return [{n[len(prefix) + 1 :] if prefix else n: arrays[(int(e), n)] for n in names} for e in eps]


def _result(future, step_dir: Path, step: int):
    try:
        return future.result()
    except ValueError as e:  # tensorstore: NOT_FOUND, OUT_OF_RANGE, DATA_LOSS, ...
        raise ValueError(
            f"{step_dir}: corrupt, truncated or partly missing orbax step {step} ({_one_line(e)}); "
            "re-save it, or leave it out with epochs="
        ) from None


def _orbax_slow(steps, eps, item, prefix, names, meta) -> list[dict]:
    """orbax's own restore (leaves that are not plain arrays), one step at a time, as numpy."""
    try:
        import orbax.checkpoint as ocp
    except ImportError:
        raise ValueError(f"reading orbax checkpoints needs orbax-checkpoint: {EXTRA}") from None
    ck, out = ocp.PyTreeCheckpointer(), []
    for e in eps:
        try:
            tree = ck.restore(os.path.abspath(steps[int(e)] / item))
        except Exception as exc:  # orbax and tensorstore raise many types on damaged steps
            raise ValueError(f"{steps[int(e)]}: corrupt or truncated orbax step {int(e)} ({_one_line(exc)})") from exc
        flat = {
            "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in p): np.asarray(v)
            for p, v in _leaves_with_path(tree)
        }
        out.append({n[len(prefix) + 1 :] if prefix else n: flat[n] for n in names if n in flat})
    return out


def _leaves_with_path(tree):
    import jax

    return jax.tree_util.tree_flatten_with_path(tree)[0]
