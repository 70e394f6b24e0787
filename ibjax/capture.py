"""T's of a flax module that returns logits only: captured submodule outputs or a sown collection,
for linen (``capture_intermediates``) and NNX (``nnx.split`` / ``nnx.capture``) modules.

Used by ``models.from_flax``; every function here returns plain ``apply(params, x) -> (logits, acts)``
functions, so the engine sees a model like any other. ``layers``: None or ``"all"`` (every submodule
call, nested ones included), a regex matched whole against the '/'-joined path (``"Layer_\\d+"``,
``"blocks/\\d+"``), or a list of paths (those, in that order).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp


def is_nnx(module) -> bool:
    from flax import nnx

    return isinstance(module, nnx.Module)


def _name(path) -> str:
    return path if isinstance(path, str) else "/".join(map(str, path))


def path_filter(layers):
    """(path -> selected?, explicit order or None)."""
    if layers is None or layers == "all":
        return (lambda path: bool(path)), None
    if isinstance(layers, str):
        try:
            rx = re.compile(layers)
        except re.error as e:
            raise ValueError(f"layers={layers!r} is not a regular expression ({e})") from None
        return (lambda path: bool(path) and rx.fullmatch(_name(path)) is not None), None
    order = [str(p).strip("/") for p in layers]
    return (lambda path: _name(path) in order), order


def walk(tree, prefix=()):
    """(path, value) of a nested collection, in its own (insertion) order."""
    for k, v in tree.items():
        if hasattr(v, "items"):
            yield from walk(v, prefix + (k,))
        else:
            yield prefix + (k,), v


def select(found, keep, order, what: str) -> list:
    """[(path, values)] -> [(name, array)]: every array sown or returned is one T, in ``order`` if given."""
    picked = [(p, v) for p, v in found if keep(p)]
    if order is not None:
        by = {_name(p): v for p, v in picked}
        absent = [o for o in order if o not in by]
        if absent:
            raise ValueError(f"layers {absent} are not among the {what}: {[_name(p) for p, _ in found]}")
        picked = [(o, by[o]) for o in order]
    ts = []
    for p, v in picked:
        leaves = jax.tree.leaves(v)
        ts += [(_name(p) + (f"[{i}]" if len(leaves) > 1 else ""), a) for i, a in enumerate(leaves)]
    if not ts:
        raise ValueError(f"no T's selected: layers matched none of the {what} {[_name(p) for p, _ in found]}")
    return ts


def _with_output(logits, ts, output_layer: bool):
    return logits, tuple(a for _, a in ts) + ((jax.nn.softmax(logits),) if output_layer else ())


def linen(module, init, x0, layers, sow, output_layer: bool):
    """(apply, T names) of a linen module returning logits only."""
    keep, order = path_filter(layers)
    coll = sow or "intermediates"
    capture = False if sow else (lambda mdl, method: method == "__call__" and keep(tuple(mdl.path)))
    keep_found = (lambda p: True) if sow else keep
    what = f"{coll!r} entries" if sow else "submodule calls"

    def entries(params, x):
        logits, state = module.apply({"params": params}, x, capture_intermediates=capture, mutable=[coll])
        found = list(walk(state.get(coll, {})))
        return logits, found if sow else [(p[:-1], v) for p, v in found if p[-1] == "__call__" and len(p) > 1]

    def apply(params, x):
        logits, found = entries(params, x)
        return _with_output(logits, select(found, keep_found, order, what), output_layer)

    names = []

    def trace(k):  # paths are not JAX values: collect them on the side while tracing
        names.extend(n for n, _ in select(entries(init(k), x0)[1], keep_found, order, what))
        return 0

    jax.eval_shape(trace, jax.random.key(0))
    return apply, tuple(names) + (("output",) if output_layer else ())


def from_nnx(module, input_shape, layers, sow, output_layer: bool):
    """``(init, apply, n_layers)`` of an NNX module for ``models.from_flax``: params are the pure dict of its
    ``nnx.Param`` variables; ``init`` returns them (the module was built with its own rngs)."""
    from flax import nnx

    graphdef, state = nnx.split(module)
    template, own = nnx.to_pure_dict(state), nnx.to_pure_dict(nnx.state(module, nnx.Param))
    keep, order = path_filter(layers)
    kind = nnx.Intermediate if sow in (None, True, "intermediates") else sow
    captured = layers is not None or sow is not None

    def entries(params, x):
        st = jax.tree.map(lambda v: v, state)  # a fresh State: the module's own is never touched
        nnx.replace_by_pure_dict(st, fill(template, params, own))
        model = nnx.merge(graphdef, st)
        if sow:
            out, caught = nnx.capture(model, kind)(x)
        else:
            out, caught = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
        found = [(tuple(p), v.get_value() if hasattr(v, "get_value") else v) for p, v in nnx.to_flat_state(caught)]
        return out, found if sow else [(p[:-1], v) for p, v in found if p[-1] == "__call__" and len(p) > 1]

    def apply(params, x):
        out, found = entries(params, x)
        if not captured and isinstance(out, (tuple, list)) and len(out) == 2:
            return out[0], tuple(out[1])  # the module returns (logits, acts) itself
        return _with_output(
            out, select(found, (lambda p: True) if sow else keep, order, "NNX intermediates"), output_layer
        )

    n_layers = 0
    if input_shape is not None:
        x0 = jnp.zeros((1,) + tuple(int(s) for s in input_shape), jnp.float32)
        n_layers = len(jax.eval_shape(apply, own, x0)[1])
    return (lambda key: own), apply, n_layers


def _get(tree, k):
    if not hasattr(tree, "get"):
        return None
    v = tree.get(k, tree.get(str(k)))
    return v["value"] if hasattr(v, "keys") and set(v.keys()) == {"value"} else v  # State saved with .value


def fill(template: dict, params, own: dict, path=()) -> dict:
    """The module's whole pure state, every ``nnx.Param`` from ``params`` (int or str keys, as a
    checkpoint stores them); other variables (batch statistics) from ``params`` when there, else the module's."""
    out = {}
    for k, v in template.items():
        got, mine = _get(params, k), _get(own, k)
        if hasattr(v, "items"):
            out[k] = fill(v, got if got is not None else {}, mine if mine is not None else {}, path + (k,))
        elif got is not None:
            out[k] = got
        elif mine is not None:
            raise ValueError(
                f"params have no {_name(path + (k,))} (an nnx.Param of the module); at "
                f"{_name(path) or 'the top'} they hold {sorted(map(str, params.keys())) if hasattr(params, 'keys') else params!r}"
            )
        else:
            out[k] = v
    return out
