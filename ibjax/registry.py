"""One registry entry per estimator: the engine, the pipeline and the CLI read everything from here.

An ``Estimator`` carries its adapter function, its options (default, CLI type, check, help, whether
it may be traced so that a sweep over it is one compiled call), its outputs, a memory model and the
value-dependent warnings it reports. ``register(Estimator(...))`` is all it takes to add one: the
engine, ``ibjax.pipeline.evaluate_runs`` and ``python -m ibjax.evaluate`` pick it up.

A deterministic-network adapter is ``fn(t_NxD, d, key, x_NxDx, y_N, **settings) -> dict`` of scalars
for one (epoch, layer); ``t`` may carry zero-padded columns (``d`` is the true width; ``pad_exact``
says whether padding leaves the value unchanged). Outputs named ``warn_<what>`` are booleans,
collected per (epoch, layer) and reported, never values. A noisy-network adapter (``noisy=True``)
gets ``fn(sample_s, key, y, **settings)`` instead, ``sample_s(key)`` being one noisy forward pass.
If the adapter has a parameter ``n_classes``, it receives the number of label classes (static).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class Context(NamedTuple):
    """What option checks may depend on: sample count, classes, and the run's config (a dict)."""

    n: int
    n_classes: int
    run_config: dict | None = None


@dataclass(frozen=True)
class Option:
    default: Any
    help: str
    type: type = float  # how the CLI parses one value
    check: Callable[[str, Any, Context], None] | None = None  # raises ValueError
    traced: bool = False  # may be an array axis (a sweep is one compiled call)
    nargs: int | None = None


@dataclass(frozen=True)
class Estimator:
    name: str
    fn: Callable
    options: dict
    outputs: tuple
    memory: Callable[[dict, int, list], int]  # bytes per epoch of the estimator's working set
    help: str = ""
    units: str = "bits"
    pad_exact: bool = True
    noisy: bool = False
    label_conditional: bool = False  # I(X;T) computable as I(T; input id) (as-if-random windows)
    negative_tol: float | None = 1e-4  # values below -tol are an error (None: not checked)
    finalize: Callable[[dict, Context], dict] | None = None  # cross-option checks, run-dependent defaults
    warnings: dict = field(default_factory=dict)  # "warn_x" output -> message
    shard: bool = True  # False: items run on one device (XLA:CPU's batched eigvalsh hangs when sharded)

    @property
    def wants_classes(self) -> bool:
        return "n_classes" in inspect.signature(self.fn).parameters


REGISTRY: dict[str, Estimator] = {}


def register(est: Estimator, *, replace: bool = False) -> Estimator:
    if est.name in REGISTRY and not replace:
        raise ValueError(f"estimator {est.name!r} is already registered (pass replace=True)")
    missing = [o for o in ("i_xt", "i_ty") if o not in est.outputs]
    if missing:
        raise ValueError(f"estimator {est.name!r} must output i_xt and i_ty, missing {missing}")
    REGISTRY[est.name] = est
    return est


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def builtin() -> dict:
    """The registry with the built-in estimators (``ibjax.adapters`` registers them when the package is
    imported: this module imports nothing of ibjax, the table imports this module)."""
    return REGISTRY


def get(name: str) -> Estimator:
    if name not in builtin():
        raise ValueError(f"estimator must be one of {sorted(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def resolve(name: str, options: dict | None, ctx: Context) -> dict:
    """Defaults filled in; unknown or out-of-range options refused with a ValueError naming them."""
    est = get(name)
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(est.options))
    if unknown:
        raise ValueError(f"option(s) {unknown} do not exist for estimator {name!r}; valid: {sorted(est.options)}")
    s = {k: o.default for k, o in est.options.items()}
    s.update(options)
    if est.finalize is not None:
        s = est.finalize(dict(s), ctx, set(options))
    for k, o in est.options.items():
        if o.check is not None and s[k] is not None:
            o.check(k, s[k], ctx)
    return s


def split_sweep(name: str, sweep: dict | None) -> tuple[dict, dict]:
    """``sweep`` -> (traced part, static part); each value a non-empty list of option values."""
    est = get(name)
    traced, static = {}, {}
    for k, values in (sweep or {}).items():
        if k not in est.options:
            raise ValueError(f"sweep option {k!r} does not exist for estimator {name!r}; valid: {sorted(est.options)}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"sweep values for {k!r} must be a non-empty list, got {values!r}")
        (traced if est.options[k].traced else static)[k] = list(values)
    return traced, static


def parse_options(name: str, text: str) -> dict:
    """``"noise_var=1e-3;bound=upper"`` -> typed options of estimator ``name`` (CLI and --set)."""
    est = get(name)
    out = {}
    for item in filter(None, (t.strip() for t in str(text).split(";"))):
        key, sep, value = item.partition("=")
        if not sep or key not in est.options:
            raise ValueError(f"options {text!r}: {item!r} is not NAME=VALUE with NAME one of {sorted(est.options)}")
        opt = est.options[key]
        try:
            parts = [opt.type(v) for v in value.split(",")]
        except ValueError:
            raise ValueError(f"options {text!r}: {key} must be of type {opt.type.__name__}") from None
        out[key] = tuple(parts) if opt.nargs else parts[0]
    return out


# ---------------------------------------------------------------- option checks


def positive(name: str, v, ctx=None) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"estimator option {name} must be a finite number > 0, got {v!r}")


def integer_at_least(minimum: int):
    def check(name: str, v, ctx=None) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or v < minimum:
            raise ValueError(f"estimator option {name} must be an integer >= {minimum}, got {v!r}")

    return check


def one_of(*choices):
    def check(name: str, v, ctx=None) -> None:
        if v not in choices:
            raise ValueError(f"estimator option {name} must be one of {list(choices)}, got {v!r}")

    return check
