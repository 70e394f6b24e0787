"""Models: the only module that imports flax.

``mlp(...)`` and ``cnn(...)`` return a ``Model`` of pure functions:
``init(key) -> params``, ``apply(params, x) -> (logits, acts)`` with one activation array per layer
(the softmax output last), and ``noisy_apply(params, x, key, sigma) -> (logits, t_acts, s_acts)``
where ``T_l = S_l + Z_l``, ``Z_l ~ N(0, sigma^2 I)``, and ``S_l`` is layer l's activation computed
from the noisy ``T_{l-1}`` (Goldfeld et al.). Params are plain nested dicts ``{"Dense_0":
{"kernel", "bias"}, ...}``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "softsign": jax.nn.soft_sign,
    "softplus": jax.nn.softplus,
    "linear": lambda z: z,
    "hard_tanh": jax.nn.hard_tanh,
}


def _truncated(std_of: Callable[[int, int], float]):
    """Keras-style TruncatedNormal: N(0, std^2) truncated at +-2 std (std of the untruncated law)."""

    def init(key, shape, dtype=jnp.float32):
        fan_in = 1
        for n in shape[:-1]:
            fan_in *= n
        return std_of(fan_in, shape[-1]) * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)

    return init


INITS: dict[str, Callable] = {
    "idnns": _truncated(lambda fan_in, fan_out: 1.0 / fan_in**0.5),
    "saxe": _truncated(lambda fan_in, fan_out: 1.0 / fan_out**0.5),
    "glorot": nn.initializers.glorot_uniform(),
}


class Model(NamedTuple):
    init: Callable
    apply: Callable
    noisy_apply: Callable
    n_layers: int


def _check(activation: str, init: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {sorted(INITS)}, got {init!r}")


class _MLP(nn.Module):
    widths: Sequence[int]  # hidden widths then the number of classes
    activation: str
    init_name: str

    @nn.compact
    def __call__(self, x, noise_key=None, sigma=0.0):
        act = ACTIVATIONS[self.activation]
        t_acts, s_acts = [], []
        for i, w in enumerate(self.widths):
            z = nn.Dense(w, kernel_init=INITS[self.init_name], bias_init=nn.initializers.zeros)(x)
            last = i == len(self.widths) - 1
            s = jax.nn.softmax(z) if last else act(z)
            x = _add_noise(s, noise_key, i, sigma)
            s_acts.append(s)
            t_acts.append(x)
        return z, tuple(t_acts), tuple(s_acts)


class _CNN(nn.Module):
    filters: Sequence[int]
    n_classes: int
    activation: str
    init_name: str

    @nn.compact
    def __call__(self, x, noise_key=None, sigma=0.0):
        act = ACTIVATIONS[self.activation]
        t_acts, s_acts = [], []
        for i, f in enumerate(self.filters):
            s = act(nn.Conv(f, (3, 3), strides=(2, 2) if i else (1, 1), kernel_init=INITS[self.init_name])(x))
            x = _add_noise(s, noise_key, i, sigma)
            s_acts.append(s)
            t_acts.append(x)
        z = nn.Dense(self.n_classes, kernel_init=INITS[self.init_name])(jnp.mean(x, axis=(-3, -2)))
        s = jax.nn.softmax(z)
        s_acts.append(s)
        t_acts.append(_add_noise(s, noise_key, len(self.filters), sigma))
        return z, tuple(t_acts), tuple(s_acts)


def _add_noise(s, key, layer: int, sigma):
    if key is None:
        return s
    return s + sigma * jax.random.normal(jax.random.fold_in(key, layer), s.shape, s.dtype)


def _model(module: nn.Module, input_shape: tuple[int, ...], n_layers: int) -> Model:
    def init(key):
        return module.init(key, jnp.zeros((1,) + tuple(input_shape), jnp.float32))["params"]

    def apply(params, x):
        logits, acts, _ = module.apply({"params": params}, x)
        return logits, acts

    def noisy_apply(params, x, key, sigma):
        return module.apply({"params": params}, x, key, sigma)

    return Model(init, apply, noisy_apply, n_layers)


def mlp(widths: Sequence[int], *, activation: str = "tanh", init: str = "idnns") -> Model:
    """Fully connected net ``widths = (d_in, h_1, ..., h_k, n_classes)``; softmax output layer."""
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ValueError(f"widths must list >= 2 positive sizes (input, ..., classes), got {widths}")
    _check(activation, init)
    return _model(_MLP(widths[1:], activation, init), (widths[0],), len(widths) - 1)


def cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    *,
    filters: Sequence[int] = (8, 16, 32, 32),
    n_classes: int = 10,
    activation: str = "relu",
    init: str = "glorot",
) -> Model:
    """Small CNN: 3x3 conv blocks (stride 2 after the first), global average pooling, dense softmax
    head. Activations per layer: each conv block (N x H x W x C), then the softmax output."""
    filters = tuple(int(f) for f in filters)
    if not filters or any(f < 1 for f in filters):
        raise ValueError(f"filters must be a non-empty list of positive sizes, got {filters}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    _check(activation, init)
    return _model(_CNN(filters, n_classes, activation, init), tuple(input_shape), len(filters) + 1)


def from_flax(module: nn.Module, input_shape: Sequence[int]) -> Model:
    """A user's flax module as a ``Model``: ``module(x)`` must return ``(logits, acts)`` with ``acts``
    a tuple of per-layer activations (N x ... each). It trains with ``ibjax.train`` and evaluates with
    every deterministic-network estimator; noisy training needs ``noisy_apply``, so it has none."""
    shape = (1,) + tuple(int(s) for s in input_shape)

    def init(key):
        return module.init(key, jnp.zeros(shape, jnp.float32))["params"]

    def apply(params, x):
        logits, acts = module.apply({"params": params}, x)
        return logits, tuple(acts)

    n_layers = len(jax.eval_shape(lambda k: apply(init(k), jnp.zeros(shape, jnp.float32)), jax.random.key(0))[1])
    return Model(init, apply, None, n_layers)


def from_config(model_cfg: dict) -> Model:
    """Rebuild a model from the ``model`` section of a run's config.json."""
    kind = model_cfg.get("kind", "mlp")
    if kind == "mlp":
        return mlp(model_cfg["widths"], activation=model_cfg["activation"], init=model_cfg["init"])
    if kind == "cnn":
        return cnn(
            model_cfg["input_shape"],
            filters=model_cfg["filters"],
            n_classes=model_cfg["n_classes"],
            activation=model_cfg["activation"],
            init=model_cfg["init"],
        )
    raise ValueError(f"model kind must be 'mlp' or 'cnn', got {kind!r}")


def kernels(params) -> list:
    """The weight matrices (every leaf named "kernel", conv kernels reshaped to fan_in x fan_out), in
    layer order ("Dense_2" before "Dense_10"); works for any nested flax parameter dict."""
    import re

    def natural(path):
        return [(p, int(n) if n else -1) for part in path for p, n in [re.match(r"(.*?)(\d*)$", str(part)).groups()]]

    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = [getattr(k, "key", getattr(k, "name", k)) for k in path]
        if names and names[-1] == "kernel":
            found.append((natural(names[:-1]), leaf.reshape(-1, leaf.shape[-1])))
    return [k for _, k in sorted(found, key=lambda t: t[0])]
