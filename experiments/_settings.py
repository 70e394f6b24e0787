"""Typed settings: an experiment's ``Config`` declares what each field accepts, and the harness checks it.

    @dataclass(frozen=True)
    class Config(harness.Settings):
        run: RunConfig = harness.setting(factory=_run, within={"model.kind": harness.one_of("mlp")})
        seeds: int = harness.setting(5, harness.integer(least=1))
        estimator: str = harness.setting("binning", harness.estimator())
        options: str = harness.setting("n_bins=30", harness.options("estimator"))
        epochs: str = harness.setting("all", harness.epochs("run.train"))

Every construction of a ``Settings`` dataclass (the defaults, ``--quick``, ``--set``, ``dataclasses.replace``
in a script) checks every declared field, so nothing is trained on a setting that would fail later. A
failure is one ``ValueError`` naming the field, its value and what is valid: ``seeds must be an integer >= 1,
got 0``; a library check the setting is handed to keeps its own words after the field's name (``epochs:
epochs 'log:x' ...``). Nested library configs (``RunConfig``, ``TrainConfig``, ...) check themselves; ``within``
narrows their fields for one study (``{"model.widths": ...}``). A check is a function ``(value, cfg)`` that
raises ``Invalid("must be ..., got ...")`` or lets a library ``ValueError`` through.
"""

from __future__ import annotations

import dataclasses
import math


class Invalid(ValueError):
    """A setting's value is not valid: the text continues ``<field> ...`` (``must be ..., got ...``)."""


def setting(default=dataclasses.MISSING, *checks, factory=None, within: dict | None = None):
    """A dataclass field with its ``checks``; ``within``: dotted field of the nested config -> check(s)."""
    meta = {"checks": checks, "within": within or {}}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Settings:
    """Base of an experiment's frozen config dataclass: checked on every construction (``validate``)."""

    def __post_init__(self):
        validate(self)


def validate(cfg) -> None:
    """Every declared check of ``cfg``'s fields, in field order; the first failure is raised."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        for check in f.metadata.get("checks", ()):
            _apply(check, f.name, value, cfg)
        for path, checks in f.metadata.get("within", {}).items():
            for check in checks if isinstance(checks, tuple) else (checks,):
                _apply(check, f"{f.name}.{path}", lookup(value, path), cfg)


def _apply(check, name: str, value, cfg) -> None:
    try:
        check(value, cfg)
    except Invalid as e:
        raise ValueError(f"{name} {e}") from None
    except (ValueError, TypeError) as e:  # the library's own check: its words after the field's name
        raise ValueError(f"{name}: {e}") from None


def lookup(obj, path: str):
    """``obj.a.b`` for ``path`` "a.b"."""
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _ref(bound, cfg):
    """A bound given as a number, another field's dotted name, or a function of the config."""
    if isinstance(bound, str):
        return lookup(cfg, bound), f"{bound} = {lookup(cfg, bound)}"
    value = bound(cfg) if callable(bound) else bound
    return value, f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------------------------- checks


def integer(*, least=None, most=None, zero: bool = False):
    """An integer >= ``least`` and <= ``most`` (each a number or another field's name); ``zero``: 0 also
    allowed (a switch-off value below ``least``)."""

    def check(v, cfg):
        lo, lo_text = _ref(least, cfg) if least is not None else (None, "")
        hi, hi_text = _ref(most, cfg) if most is not None else (None, "")
        if zero and isinstance(v, int) and not isinstance(v, bool) and v == 0:
            return
        ok = isinstance(v, int) and not isinstance(v, bool)
        ok = ok and (lo is None or v >= lo) and (hi is None or v <= hi)
        if not ok:
            bounds = (
                f"in [{lo_text}, {hi_text}]"
                if lo is not None and hi is not None
                else f">= {lo_text}"
                if lo is not None
                else f"<= {hi_text}"
            )
            raise Invalid(f"must be {'0 or ' if zero else ''}an integer {bounds}, got {v!r}")

    return check


def number(*, least=None, above=None, below=None, most=None, what: str = "a number"):
    """A finite number in the stated interval (each bound a number or another field's name)."""

    def check(v, cfg):
        lo = [(b, "[" if b is least else "(") for b in (least, above) if b is not None]
        hi = [(b, "]" if b is most else ")") for b in (most, below) if b is not None]
        ok, ends = _is_number(v), []
        for bound, mark in lo + hi:
            b, text = _ref(bound, cfg)
            ends.append((mark, text))
            if ok:
                ok = {"[": v >= b, "(": v > b, "]": v <= b, ")": v < b}[mark]
        if not ok:
            if len(ends) == 2:
                (m0, t0), (m1, t1) = ends
                where = f"in {m0}{t0}, {t1}{m1}"
            else:
                (m, t) = ends[0]
                where = {"[": ">= ", "(": "> ", "]": "<= ", ")": "< "}[m] + t
            raise Invalid(f"must be {what} {where}, got {v!r}")

    return check


def one_of(*choices):
    """One of ``choices``."""

    def check(v, cfg):
        if v not in choices:
            raise Invalid(f"must be one of {choices}, got {v!r}")

    return check


def distinct(*choices, least: int = 1):
    """A list of at least ``least`` distinct values (of ``choices`` when given)."""

    def check(v, cfg):
        items = tuple(v)
        ok = len(items) >= least and len(set(items)) == len(items) and (not choices or set(items) <= set(choices))
        if not ok:
            of = f" of {choices}" if choices else ""
            raise Invalid(f"must be at least {least} distinct value(s){of}, got {items!r}")

    return check


def each(*checks):
    """Every item of a list passes ``checks`` (the first failing item is named)."""

    def check(v, cfg):
        for i, item in enumerate(tuple(v)):
            try:
                for c in checks:
                    c(item, cfg)
            except (ValueError, TypeError) as e:  # Invalid or the library's own check
                raise Invalid(f"item {i + 1} of {tuple(v)!r}: {e}") from None

    return check


def length(n, what: str):
    """A list of exactly ``n`` items (a number, a field's name or a function of the config: ``what`` says
    what the count is)."""

    def check(v, cfg):
        want, _ = _ref(n, cfg)
        if len(tuple(v)) != want:
            raise Invalid(f"must list {want} value(s) ({what}), got {tuple(v)!r}")

    return check


def where(holds, text: str):
    """A condition on the value and the config: ``holds(v, cfg)``; ``text`` says what is valid."""

    def check(v, cfg):
        if not holds(v, cfg):
            raise Invalid(f"must be {text}, got {v!r}")

    return check


def member_of(path: str):
    """One of the values of another (list) field."""

    def check(v, cfg):
        if v not in tuple(lookup(cfg, path)):
            raise Invalid(f"must be one of {path} {tuple(lookup(cfg, path))}, got {v!r}")

    return check


def activation(*, differs_from: str | None = None):
    """An activation the models know; ``differs_from``: and not the one that field names."""

    def check(v, cfg):
        from ibjax import models

        if v not in models.ACTIVATIONS:
            raise Invalid(f"must be one of {sorted(models.ACTIVATIONS)}, got {v!r}")
        if differs_from is not None and v == lookup(cfg, differs_from):
            raise Invalid(f"must differ from {differs_from} ({v!r})")

    return check


def activations():
    """A non-empty list of distinct activations the models know."""

    def check(v, cfg):
        from ibjax import models

        distinct(*sorted(models.ACTIVATIONS))(v, cfg)

    return check


def estimator(*, label_conditional: bool = False):
    """A registered estimator's name (``label_conditional``: one that also gives the per-class view)."""

    def check(v, cfg):
        from ibjax import registry

        valid = sorted(n for n, e in registry.builtin().items() if e.label_conditional or not label_conditional)
        if v not in valid:
            raise Invalid(f"must be one of {valid}, got {v!r}")

    return check


def options(estimator_field: str | None = None, *, name: str | None = None, n: int = 4096, n_classes: int = 10):
    """An options text ``"name=value;..."`` valid for the estimator another field names (or ``name``),
    checked through the registry on ``n`` samples of ``n_classes`` classes."""

    def check(v, cfg):
        from ibjax import registry

        est = name or lookup(cfg, estimator_field)
        registry.resolve(est, registry.parse_options(est, v), registry.Context(n, n_classes))

    return check


def option(estimator_name: str, key: str, *, n: int = 4096, n_classes: int = 10):
    """A value valid as option ``key`` of estimator ``estimator_name`` (the registry's own check)."""

    def check(v, cfg):
        from ibjax import registry

        registry.resolve(estimator_name, {key: v}, registry.Context(n, n_classes))

    return check


def epochs(train: str = "run.train"):
    """An epoch selection (``pipeline.EPOCH_SPECS``) valid for the kept epochs of the ``train`` config."""

    def check(v, cfg):
        from ibjax import pipeline, schedules

        t = lookup(cfg, train)
        pipeline.select_epochs(v, schedules.from_spec(t.schedule, t.n_epochs))

    return check


def values_of(default: tuple, *checks, least: int = 1):
    """A setting that is a list of at least ``least`` distinct values, each passing ``checks`` (e.g. ``option(
    "kde", "noise_var")`` for a sweep of one estimator option, ``integer(least=1)`` for counts)."""
    return setting(tuple(default), distinct(least=least), each(*checks))
