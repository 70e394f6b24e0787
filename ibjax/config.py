"""Nested, frozen run configuration: ``RunConfig(model, data, train)``.

Each section holds only its own fields: an MLP config has no filters, a CNN config no widths, so the
run id (a hash of ``to_dict()``) changes only with settings that apply. ``SWEEPABLE`` names the
settings that never change an array shape; they are traced arguments of training, so a grid of
them is one vmapped, compiled call (``ibjax.runs.train_or_reuse(..., sweep=...)``).

Old run directories (the flat ``train`` section of ibjax <= 0.1) load through ``from_dict``; an
unknown or missing field is a ``ValueError`` naming it and the fields that are valid.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ibjax import models, schedules

OPTIMIZERS = ("adam", "sgd", "momentum")
SPLITS = ("random", "ordered", "all")
# dotted name -> what it is; every one is a traced scalar of the training function
SWEEPABLE = {
    "train.learning_rate": "optimizer step size",
    "train.momentum": "momentum (optimizer 'momentum' only)",
    "train.weight_decay": "coupled L2 penalty coefficient",
    "train.ortho_penalty": "orthonormality penalty coefficient",
    "train.parseval_beta": "Parseval retraction step after each update (Cisse et al. 2017)",
    "train.noise_sigma": "training noise std of T = S + Z",
    "data.train_subset": "fraction of the training split used (a per-sample mask)",
}


@dataclass(frozen=True)
class MLPConfig:
    widths: tuple = (12, 10, 7, 5, 4, 3, 2)  # input, hidden..., classes
    activation: str = "tanh"
    init: str = "idnns"
    kind: str = "mlp"
    quant_bits: int = 0  # 0: float; 2, 4, 8: quantization-aware (activations on 2**b levels, ibjax.quantize)
    quant_weights: bool = False  # with quant_bits: kernels quantized too
    quant_range: str = "fixed"  # "fixed" grids + PACT, or "minmax": Lorenzen et al.'s batch / moving-average ranges

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) < 3:
            raise ValueError(
                f"model.widths must list the input, at least one hidden layer and the classes "
                f"(e.g. (12, 10, 2)), got {self.widths}"
            )
        try:
            self.build()
        except ValueError as e:
            raise ValueError(f"model: {e}") from None

    def build(self) -> models.Model:
        return _built(self)

    def _make(self) -> models.Model:
        return models.mlp(
            self.widths,
            activation=self.activation,
            init=self.init,
            quant_bits=self.quant_bits,
            quant_weights=self.quant_weights,
            quant_range=self.quant_range,
        )

    @property
    def n_classes(self) -> int:
        return self.widths[-1]


@dataclass(frozen=True)
class CNNConfig:
    input_shape: tuple = (28, 28, 1)
    filters: tuple = (8, 16, 32, 32)
    n_classes: int = 10
    activation: str = "relu"
    init: str = "glorot"
    kind: str = "cnn"
    strides: tuple = ()  # one per conv block; () = 1 for the first, then 2
    batch_norm: bool = False  # conv -> activation -> batch norm (statistics carried by the training scan)

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"model.batch_norm must be true or false, got {self.batch_norm!r}")
        self.build()

    def build(self) -> models.Model:
        return _built(self)

    def _make(self) -> models.Model:
        return models.cnn(
            self.input_shape,
            filters=self.filters,
            n_classes=self.n_classes,
            activation=self.activation,
            init=self.init,
            strides=self.strides,
            batch_norm=self.batch_norm,
        )


@dataclass(frozen=True)
class ResNetConfig:
    input_shape: tuple = (28, 28, 1)
    filters: tuple = (8, 8, 16)  # stem, then one residual block each
    n_classes: int = 10
    activation: str = "relu"
    init: str = "glorot"
    kind: str = "resnet"

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        self.build()

    def build(self) -> models.Model:
        return _built(self)

    def _make(self) -> models.Model:
        return models.resnet(
            self.input_shape, filters=self.filters, n_classes=self.n_classes, activation=self.activation, init=self.init
        )


ModelConfig = MLPConfig | CNNConfig | ResNetConfig


@functools.lru_cache(maxsize=64)
def _built(cfg: ModelConfig) -> models.Model:
    """One Model object per model setting, so that jitted code taking the model's functions as
    static arguments (the evaluation engine) finds its compiled program again on the next call."""
    return cfg._make()


MODEL_KINDS = {"mlp": MLPConfig, "cnn": CNNConfig, "resnet": ResNetConfig}


@dataclass(frozen=True)
class DataConfig:
    name: str = "var_u"  # var_u | generated_12bit | szt_12bit | single_neuron | mnist_test | mnist_train |
    # fashion_mnist (= fashion_mnist_test) | fashion_mnist_train (runs.IMAGE_DATASETS) | audio:DIR (ibjax.audio)
    split: str = "random"
    split_seed: int = 0
    train_frac: float = 0.8  # size of the training split (fixes array shapes)
    train_subset: float = 1.0  # fraction of the training split used: a traced per-sample mask

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ValueError(f"data.split must be one of {SPLITS}, got {self.split!r}")
        if not 0.0 < self.train_frac < 1.0:
            raise ValueError(f"data.train_frac must be in (0, 1), got {self.train_frac}")
        if not 0.0 < self.train_subset <= 1.0:
            raise ValueError(f"data.train_subset must be in (0, 1], got {self.train_subset}")


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"
    learning_rate: float = 4e-4
    momentum: float = 0.9
    batch_size: int = 256  # 0: full-batch gradient descent
    n_epochs: int = 8000
    schedule: str = "log:400"
    checkpoint_at: str = "before"  # params of a kept epoch before or after its updates
    weight_decay: float = 0.0  # coupled L2: + wd * sum ||W||^2
    ortho_penalty: float = 0.0  # + beta * sum_l ||W_l^T W_l - I||_F^2
    noise_sigma: float = 0.0  # noisy training: T_l = S_l + N(0, sigma^2 I)
    parseval_beta: float = 0.0  # after each step every kernel K <- (1 + b) K - b K K^T K (Cisse et al. 2017)
    epoch_steps: int = 0  # minibatch steps per epoch (0: one pass over the training split)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.checkpoint_at not in schedules.WHEN:
            raise ValueError(f"train.checkpoint_at must be one of {schedules.WHEN}, got {self.checkpoint_at!r}")
        _number("train.learning_rate", self.learning_rate, positive=True)
        for name in ("momentum", "weight_decay", "ortho_penalty", "noise_sigma"):
            _number(f"train.{name}", getattr(self, name))
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 0:
            raise ValueError(f"train.batch_size must be an integer >= 0 (0 = full batch), got {self.batch_size!r}")
        _number("train.parseval_beta", self.parseval_beta)
        if self.parseval_beta > 0.5:
            raise ValueError(
                f"train.parseval_beta must be in [0, 0.5] (above 0.5 the retraction's singular-value map "
                f"s -> (1 + b) s - b s^3 is no longer monotone on [0, 1]), got {self.parseval_beta!r}"
            )
        if isinstance(self.epoch_steps, bool) or not isinstance(self.epoch_steps, int) or self.epoch_steps < 0:
            raise ValueError(
                f"train.epoch_steps must be an integer >= 0 (0 = one pass over the training split), "
                f"got {self.epoch_steps!r}"
            )
        if isinstance(self.n_epochs, bool) or not isinstance(self.n_epochs, int) or self.n_epochs < 1:
            raise ValueError(f"train.n_epochs must be an integer >= 1, got {self.n_epochs!r}")
        schedules.from_spec(self.schedule, self.n_epochs)


# settings added after run directories were recorded: absent from to_dict() (and the run id) at this default
LATER_DEFAULTS = {"train.parseval_beta": 0.0, "train.epoch_steps": 0}


@dataclass(frozen=True)
class RunConfig:
    model: Any = field(default_factory=MLPConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if not isinstance(self.model, tuple(MODEL_KINDS.values())):
            raise ValueError(
                f"model must be one of {[c.__name__ for c in MODEL_KINDS.values()]}, got {type(self.model).__name__}"
            )

    def to_dict(self) -> dict:
        """Every setting; fields added after runs were recorded are left out at their default, so the run
        ids (hashes of this dict) of those runs do not change (``LATER_DEFAULTS``)."""
        d = self._full_dict()
        for dotted, default in LATER_DEFAULTS.items():
            section, _, name = dotted.partition(".")
            if d[section].get(name, default) == default:
                d[section].pop(name, None)
        return d

    def _full_dict(self) -> dict:
        return {"model": _plain(self.model), "data": _plain(self.data), "train": _plain(self.train)}

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        d = _upgrade(d)
        kind = d.get("model", {}).get("kind", "mlp")
        if kind not in MODEL_KINDS:
            raise ValueError(f"model.kind must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
        return cls(
            _section("model", MODEL_KINDS[kind], d.get("model", {})),
            _section("data", DataConfig, d.get("data", {})),
            _section("train", TrainConfig, d.get("train", {})),
        )

    def replace(self, **dotted) -> RunConfig:
        """``cfg.replace(**{"train.learning_rate": 1e-3})``: a copy with dotted settings changed."""
        return RunConfig.from_dict(set_dotted(self._full_dict(), dotted))

    def get(self, dotted: str):
        section, _, name = dotted.partition(".")
        return getattr(getattr(self, section), name)


def _number(name: str, v, *, positive: bool = False) -> None:
    ok = (
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 if positive else v >= 0)
    )
    if not ok:
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {v!r}")


def _plain(section) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(section).items()}


def _section(name: str, cls, d: dict):
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - valid)
    if unknown:
        raise ValueError(f"config section {name!r} has unknown field(s) {unknown}; valid: {sorted(valid)}")
    try:
        return cls(**d)
    except TypeError as e:
        raise ValueError(f"config section {name!r}: {e}") from None


_OLD_TRAIN = {"widths", "activation", "init", "kind", "filters", "input_shape"}


def _upgrade(d: dict) -> dict:
    """Read a run config of ibjax <= 0.1 (model fields inside a flat ``train`` section)."""
    train = dict(d.get("train", {}))
    if not _OLD_TRAIN & set(train):
        return d
    for k in _OLD_TRAIN:
        train.pop(k, None)
    data = {k: v for k, v in d.get("data", {}).items() if k in {f.name for f in fields(DataConfig)}}
    model = dict(d.get("model", {}))
    if model.get("kind") in ("cnn", "resnet"):
        model["input_shape"], model["filters"] = tuple(model["input_shape"]), tuple(model["filters"])
    return {"model": model, "data": data, "train": train}


def set_dotted(d: dict, dotted: dict) -> dict:
    """A deep copy of nested dict ``d`` with ``{"section.name": value}`` set; unknown names refused."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for key, value in dotted.items():
        section, _, name = key.partition(".")
        if section not in out or not isinstance(out[section], dict) or name not in out[section]:
            valid = sorted(f"{s}.{n}" for s, sec in out.items() if isinstance(sec, dict) for n in sec)
            raise ValueError(f"unknown setting {key!r}; valid: {valid}")
        out[section][name] = value
    return out


def expand_sweep(cfg: RunConfig, sweep: dict | None) -> list[RunConfig]:
    """The grid of configs for ``sweep = {"train.learning_rate": [1e-3, 1e-2], ...}`` (row-major over
    the sweep's keys in the given order). Only ``SWEEPABLE`` settings can be swept in one call."""
    sweep = dict(sweep or {})
    for k, values in sweep.items():
        if k not in SWEEPABLE:
            raise ValueError(f"sweep setting {k!r} cannot be an array axis; sweepable: {sorted(SWEEPABLE)}")
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"sweep values for {k!r} must be a non-empty list, got {values!r}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"sweep value for {k!r} must be a number, got {v!r} ({type(v).__name__})")
    grid = [cfg]
    for k, values in sweep.items():
        grid = [g.replace(**{k: float(v)}) for g in grid for v in values]
    return grid


def with_model(cfg: RunConfig, **model_fields) -> RunConfig:
    return replace(cfg, model=replace(cfg.model, **model_fields))
