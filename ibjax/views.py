"""Views: what counts as "a T" of the information plane, as a function of (params, inputs).

A view maps ``(apply, params, x)`` to a tuple of ``N x d`` arrays, one per T. The engine is generic
over views; ``window > 1`` pools the T's of that many consecutive kept epochs into one sample set
(the thesis's "as-if-random" view: late-training weights treated as draws of a random network).

    layers         every layer's activations (default)
    filters        every channel of every convolutional layer as its own T (per-filter information)
    pooled         each convolutional layer before and after 2 x 2 max pooling
    window:W       layers, with W consecutive kept epochs pooled (needs a label-conditional estimator)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

VIEWS = ("layers", "filters", "pooled", "window:W")


class View(NamedTuple):
    name: str
    fn: Callable  # (apply, params, x) -> tuple of N x d arrays
    coords: Callable  # activation shapes (without N) -> list of T coordinates (dicts, see ``name_of``)
    window: int = 1

    @property
    def spec(self) -> str:
        return f"window:{self.window}" if self.window > 1 else self.name

    def names(self, shapes) -> list[str]:
        return [name_of(c) for c in self.coords(shapes)]


def name_of(coord: dict) -> str:
    """A T's display name from its coordinates: ``{"layer": 2}`` -> "layer 2", ``{"layer": 2,
    "filter": 5}`` -> "layer 2 filter 5", ``{"layer": 1, "pool": "after"}`` -> "layer 1 after pool"."""
    name = f"layer {coord['layer']}"
    if "filter" in coord:
        name += f" filter {coord['filter']}"
    if "pool" in coord:
        name += f" {coord['pool']} pool"
    return name


def _flat(a):
    return a.reshape(a.shape[0], -1)


def _layers(apply, params, x):
    return tuple(_flat(a) for a in apply(params, x)[1])


def _filters(apply, params, x):
    return tuple(_flat(a[..., c]) for a in apply(params, x)[1] if a.ndim == 4 for c in range(a.shape[-1]))


def max_pool(a_NxHxWxC, size: int = 2):
    n, h, w, c = a_NxHxWxC.shape
    a = a_NxHxWxC[:, : h - h % size, : w - w % size]
    return a.reshape(n, h // size, size, w // size, size, c).max(axis=(2, 4))


def _pooled(apply, params, x):
    return tuple(_flat(t) for a in apply(params, x)[1] if a.ndim == 4 for t in (a, max_pool(a)))


def _conv(shapes) -> list[int]:
    return [i for i, s in enumerate(shapes) if len(s) == 3]


def _need_conv(name: str):
    def coords(shapes):
        if not _conv(shapes):
            raise ValueError(
                f"view {name!r} applies to convolutional layers (activations N x H x W x C); "
                f"this model's layers have shapes {[tuple(s) for s in shapes]} (an MLP?)"
            )
        if name == "filters":
            return [{"layer": i + 1, "filter": c + 1} for i in _conv(shapes) for c in range(shapes[i][-1])]
        return [{"layer": i + 1, "pool": w} for i in _conv(shapes) for w in ("before", "after")]

    return coords


def _layer_coords(shapes):
    return [{"layer": i + 1} for i in range(len(shapes))]


def get(spec: str | View) -> View:
    """``"layers"``, ``"filters"``, ``"pooled"`` or ``"window:W"`` (W >= 1)."""
    if isinstance(spec, View):
        return spec
    if spec == "layers":
        return View("layers", _layers, _layer_coords)
    if spec in ("filters", "pooled"):
        return View(spec, _filters if spec == "filters" else _pooled, _need_conv(spec))
    kind, _, arg = str(spec).partition(":")
    if kind == "window":
        try:
            w = int(arg)
        except ValueError:
            w = 0
        if w < 1:
            raise ValueError(f"view {spec!r}: window:W needs an integer W >= 1")
        return View("window", _layers, _layer_coords, w)
    raise ValueError(f"view must be one of {list(VIEWS)}, got {spec!r}")


def t_coords(view: View, apply, params1, x) -> list[dict]:
    """Coordinates of the view's T's (checks that the view applies to this model): ``{"layer": l}``,
    plus ``"filter": c`` (filters view) or ``"pool": "before" | "after"`` (pooled view); 1-based."""
    shapes = [a.shape[1:] for a in jax.eval_shape(lambda p: apply(p, x)[1], params1)]
    return view.coords(shapes)


def t_names(view: View, apply, params1, x) -> list[str]:
    """Names of the view's T's (checks that the view applies to this model)."""
    return [name_of(c) for c in t_coords(view, apply, params1, x)]


def item_ts(view: View, apply, params, x):
    """The T's of one item: one epoch's params, or a window's (leading W axis) pooled over epochs."""
    if view.window == 1:
        return view.fn(apply, params, x)
    ts = jax.vmap(lambda p: view.fn(apply, p, x))(params)
    return tuple(t.reshape(-1, t.shape[-1]) for t in ts)


def window_labels(view: View, y_N, n_classes: int):
    """(X as input ids, Y) for a window view's pooled samples: ids 0..N-1 and labels, tiled W times."""
    n = y_N.shape[0]
    return jnp.tile(jnp.arange(n, dtype=jnp.int32), view.window), jnp.tile(y_N, view.window), n
