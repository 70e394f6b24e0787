"""Models: the only module that imports flax.

``mlp(...)``, ``cnn(...)`` and ``resnet(...)`` return a ``Model`` of pure functions:
``init(key) -> params``, ``apply(params, x) -> (logits, acts)`` with one activation array per layer
(the softmax output last), and ``noisy_apply(params, x, key, sigma) -> (logits, t_acts, s_acts)``
where ``T_l = S_l + Z_l``, ``Z_l ~ N(0, sigma^2 I)``, and ``S_l`` is layer l's activation computed
from the noisy ``T_{l-1}`` (Goldfeld et al.). Params are plain nested dicts ``{"Dense_0":
{"kernel", "bias"}, ...}``. A batch-norm model (``cnn(..., batch_norm=True)``, ``resnet``) has
variables ``{"params": ..., "batch_stats": ...}`` instead: ``apply`` takes them whole and uses the
running averages, ``train_apply`` (what ``ibjax.train`` calls) the batch statistics.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from ibjax import quantize

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


# Initializers (threefry bits, erf_inv) compile about 4x faster under LLVM -O1 than under XLA's default
# -O2 and give the same bits (tests/test_models.py); what they compute is negligible, so every init
# program (a model's own, the trainer's) is compiled so.
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def jit_init(fn: Callable) -> Callable:
    """``jax.jit(fn)``, compiled with ``INIT_COMPILER_OPTIONS`` where it is called at the top level
    (JAX allows compiler options there only; inside another transformation it is an ordinary jit)."""
    fast, plain = jax.jit(fn, compiler_options=INIT_COMPILER_OPTIONS), jax.jit(fn)

    @functools.wraps(fn)
    def init(*args):
        traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(args))
        return (plain if traced else fast)(*args)

    init.fast, init.plain = fast, plain
    return init


class Model(NamedTuple):
    init: Callable
    apply: Callable
    noisy_apply: Callable
    n_layers: int
    # batch-norm models: (params, batch_stats, x, mask_N) -> (logits, new batch_stats) with batch statistics
    # (mask_N: the samples that count); their variables are {"params", "batch_stats"}. None: stateless.
    train_apply: Callable | None = None
    layer_names: tuple = ()  # captured T's: their paths ("Layer_0", ..., "output"); () otherwise


def _check(activation: str, init: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {sorted(INITS)}, got {init!r}")


class _QuantDense(nn.Module):
    """``nn.Dense`` with its kernel quantized in the forward pass (same parameter names and init):
    symmetric on max |w| (``quantize.weights``), or on [min(w, 0), max(w, 0)] (``minmax``)."""

    features: int
    kernel_init: Callable
    bits: int
    minmax: bool = False

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        q = quantize.minmax_weights if self.minmax else quantize.weights
        y = x @ q(kernel, bits=self.bits)
        return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


class _MLP(nn.Module):
    widths: Sequence[int]  # hidden widths then the number of classes
    activation: str
    init_name: str
    quant_bits: int = 0  # 0: float; else every layer's activation on 2**quant_bits levels (ibjax.quantize)
    quant_weights: bool = False
    quant_range: str = "fixed"  # or "minmax": Lorenzen et al.'s batch / moving-average ranges

    def _minmax_ema(self, last):
        """Lorenzen's rule: the output layer and unbounded (ReLU) layers on a moving-average range."""
        return self.quant_range == "minmax" and (last or quantize.activation_range(self.activation) is None)

    def _dense(self, i, w, last):
        if self.quant_bits and self._minmax_ema(last):  # tfmot's default config: kernel quantized too
            return _QuantDense(w, INITS[self.init_name], self.quant_bits, True, name=f"Dense_{i}")
        if self.quant_weights:
            return _QuantDense(w, INITS[self.init_name], self.quant_bits, name=f"Dense_{i}")
        return nn.Dense(w, kernel_init=INITS[self.init_name], bias_init=nn.initializers.zeros, name=f"Dense_{i}")

    def _ema(self, i, v, train, mask):
        """``v`` quantized on layer i's moving-average range (updated from the live samples in training)."""
        rng = self.variable("batch_stats", f"range_{i}", lambda: jnp.asarray(quantize.EMA_INIT, jnp.float32))
        if train and not self.is_initializing():
            rng.value = quantize.ema_range(rng.value, v, mask)
        return quantize.fake_quant(v, bits=self.quant_bits, lo=rng.value[0], hi=rng.value[1])

    def _activate(self, i, z, last, train=False, mask=None):
        """(activation, logits the loss sees) of layer i."""
        if self.quant_bits and self.quant_range == "minmax":
            if last:  # tfmot pre-quantizes a softmax: the logits on their range, then the softmax
                zq = self._ema(i, z, train, mask)
                return jax.nn.softmax(zq), zq
            if self._minmax_ema(last):
                return self._ema(i, ACTIVATIONS[self.activation](z), train, mask), z
            a = ACTIVATIONS[self.activation](z)
            lo, hi = quantize.batch_range(a, mask if train else None)
            return quantize.fake_quant(a, bits=self.quant_bits, lo=lo, hi=hi), z
        if last:  # the softmax output: quantized on [0, 1] in the activations only (the loss uses the logits)
            s = jax.nn.softmax(z)
            return (quantize.uniform(s, bits=self.quant_bits, lo=0.0, hi=1.0) if self.quant_bits else s), z
        if not self.quant_bits:
            return ACTIVATIONS[self.activation](z), z
        fixed = quantize.activation_range(self.activation)
        if fixed is None:  # ReLU: PACT clip alpha learned per layer
            alpha = self.param(f"clip_{i}", nn.initializers.constant(quantize.CLIP_INIT), (), jnp.float32)
            return quantize.relu(z, alpha, bits=self.quant_bits), z
        return quantize.uniform(ACTIVATIONS[self.activation](z), bits=self.quant_bits, lo=fixed[0], hi=fixed[1]), z

    @nn.compact
    def __call__(self, x, noise_key=None, sigma=0.0, train=False, mask=None):
        t_acts, s_acts = [], []
        for i, w in enumerate(self.widths):
            last = i == len(self.widths) - 1
            s, z = self._activate(i, self._dense(i, w, last)(x), last, train, mask)
            x = _add_noise(s, noise_key, i, sigma)
            s_acts.append(s)
            t_acts.append(x)
        return z, tuple(t_acts), tuple(s_acts)


BN_MOMENTUM = 0.9  # running averages forget fast enough for short (full-batch) runs of a few dozen steps


def _bn(train: bool, mask):
    return lambda x: nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM)(x, mask=mask)


class _CNN(nn.Module):
    filters: Sequence[int]
    n_classes: int
    activation: str
    init_name: str
    strides: Sequence[int]
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, noise_key=None, sigma=0.0, train=False, mask=None):
        act = ACTIVATIONS[self.activation]
        t_acts, s_acts = [], []
        for i, (f, st) in enumerate(zip(self.filters, self.strides)):
            s = act(nn.Conv(f, (3, 3), strides=(st, st), kernel_init=INITS[self.init_name])(x))
            s = _bn(train, mask)(s) if self.batch_norm else s  # conv -> activation -> batch norm
            x = _add_noise(s, noise_key, i, sigma)
            s_acts.append(s)
            t_acts.append(x)
        z = nn.Dense(self.n_classes, kernel_init=INITS[self.init_name])(jnp.mean(x, axis=(-3, -2)))
        s = jax.nn.softmax(z)
        s_acts.append(s)
        t_acts.append(_add_noise(s, noise_key, len(self.filters), sigma))
        return z, tuple(t_acts), tuple(s_acts)


class _ResBlock(nn.Module):
    features: int
    stride: int
    activation: str
    init_name: str

    @nn.compact
    def __call__(self, x, train, mask):
        act, init = ACTIVATIONS[self.activation], INITS[self.init_name]
        st = (self.stride, self.stride)
        h = act(_bn(train, mask)(nn.Conv(self.features, (3, 3), strides=st, kernel_init=init)(x)))
        h = _bn(train, mask)(nn.Conv(self.features, (3, 3), kernel_init=init)(h))
        if self.stride != 1 or x.shape[-1] != self.features:  # 1x1 projection on the skip path
            x = _bn(train, mask)(nn.Conv(self.features, (1, 1), strides=st, kernel_init=init)(x))
        return act(h + x)


class _ResNet(nn.Module):
    filters: Sequence[int]  # stem, then one residual block each
    n_classes: int
    activation: str
    init_name: str

    @nn.compact
    def __call__(self, x, noise_key=None, sigma=0.0, train=False, mask=None):
        act, init = ACTIVATIONS[self.activation], INITS[self.init_name]
        s_acts = [act(_bn(train, mask)(nn.Conv(self.filters[0], (3, 3), strides=(2, 2), kernel_init=init)(x)))]
        t_acts = [_add_noise(s_acts[0], noise_key, 0, sigma)]
        for i, f in enumerate(self.filters[1:]):
            stride = 1 if f == self.filters[i] else 2
            s_acts.append(_ResBlock(f, stride, self.activation, self.init_name)(t_acts[-1], train, mask))
            t_acts.append(_add_noise(s_acts[-1], noise_key, i + 1, sigma))
        s_acts.append(nn.max_pool(t_acts[-1], (2, 2), strides=(2, 2)))
        t_acts.append(_add_noise(s_acts[-1], noise_key, len(self.filters), sigma))
        z = nn.Dense(self.n_classes, kernel_init=init)(t_acts[-1].reshape(x.shape[0], -1))
        s_acts.append(jax.nn.softmax(z))
        t_acts.append(_add_noise(s_acts[-1], noise_key, len(self.filters) + 1, sigma))
        return z, tuple(t_acts), tuple(s_acts)


def _add_noise(s, key, layer: int, sigma):
    if key is None:
        return s
    return s + sigma * jax.random.normal(jax.random.fold_in(key, layer), s.shape, s.dtype)


def _model(module: nn.Module, input_shape: tuple[int, ...], n_layers: int, *, stateful: bool = False) -> Model:
    """``stateful``: batch norm; variables ``{"params", "batch_stats"}``, ``apply`` uses the running
    averages, ``train_apply`` the batch statistics (and returns the updated running averages)."""
    wrap = (lambda v: v) if stateful else (lambda p: {"params": p})

    def init(key):
        v = module.init(key, jnp.zeros((1,) + tuple(input_shape), jnp.float32))
        return {"params": v["params"], "batch_stats": v["batch_stats"]} if stateful else v["params"]

    def apply(params, x):
        logits, acts, _ = module.apply(wrap(params), x)
        return logits, acts

    def noisy_apply(params, x, key, sigma):
        return module.apply(wrap(params), x, key, sigma)

    def train_apply(params, batch_stats, x, mask_N):
        mask = mask_N.reshape((-1,) + (1,) * (x.ndim - 1))
        (logits, _, _), new = module.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=True, mask=mask, mutable=["batch_stats"]
        )
        return logits, new["batch_stats"]

    # init is one program: called eagerly (a user's script, a test) flax would otherwise dispatch and
    # compile each initializer and each op of the forward pass on its own
    return Model(jit_init(init), apply, noisy_apply, n_layers, train_apply if stateful else None)


def mlp(
    widths: Sequence[int],
    *,
    activation: str = "tanh",
    init: str = "idnns",
    quant_bits: int = 0,
    quant_weights: bool = False,
    quant_range: str = "fixed",
) -> Model:
    """Fully connected net ``widths = (d_in, h_1, ..., h_k, n_classes)``; softmax output layer.

    ``quant_bits`` in (2, 4, 8): quantization-aware net (Lorenzen et al. 2022): every hidden
    activation is rounded to ``2**quant_bits`` levels in the forward pass with a straight-through
    gradient (tanh/sigmoid/softsign/hard_tanh on their fixed range; ReLU on [0, alpha_l] with a
    learned clip ``params["clip_l"]``, PACT), and the softmax output reported in ``acts`` is rounded
    on [0, 1] (the logits, hence the loss, are not). ``quant_weights``: kernels quantized too.
    ``quant_range="minmax"``: the ranges of Lorenzen et al.'s code instead (``ibjax.quantize``): tanh
    on the batch [min, max], ReLU layers and the output logits on a moving-average range kept in
    ``batch_stats`` (variables ``{"params", "batch_stats"}`` as for batch norm), their kernels on
    their [min, max]; the loss then sees the quantized logits. ``acts`` then hold the quantized values, from which ``quantize.codes`` gives the integer codes."""
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ValueError(f"widths must list >= 2 positive sizes (input, ..., classes), got {widths}")
    _check(activation, init)
    quant_bits = quantize.check_bits(quant_bits, name="quant_bits", allow_zero=True)
    if quant_bits:
        quantize.activation_range(activation)
    if not isinstance(quant_weights, bool) or (quant_weights and not quant_bits):
        raise ValueError(
            f"quant_weights must be True or False, and True needs quant_bits > 0; got "
            f"quant_weights={quant_weights!r} with quant_bits={quant_bits}"
        )
    quantize.check_range_rule(quant_range)
    minmax = bool(quant_bits) and quant_range == "minmax"
    if minmax and quant_weights:
        raise ValueError(
            "quant_weights=True does not combine with quant_range='minmax', which quantizes the kernels of "
            "the moving-average layers (ReLU, output) and not those of tanh layers, as Lorenzen et al. did"
        )
    module = _MLP(widths[1:], activation, init, quant_bits, quant_weights, quant_range)
    return _model(module, (widths[0],), len(widths) - 1, stateful=minmax)


def cnn(
    input_shape: Sequence[int] = (28, 28, 1),
    *,
    filters: Sequence[int] = (8, 16, 32, 32),
    n_classes: int = 10,
    activation: str = "relu",
    init: str = "glorot",
    strides: Sequence[int] = (),
    batch_norm: bool = False,
) -> Model:
    """Small CNN: 3x3 conv blocks (``strides``; default 1 for the first, then 2), each conv ->
    activation [-> batch norm], global average pooling, dense softmax head. Activations per layer:
    each conv block (N x H x W x C), then the softmax output."""
    filters = tuple(int(f) for f in filters)
    if not filters or any(f < 1 for f in filters):
        raise ValueError(f"filters must be a non-empty list of positive sizes, got {filters}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    strides = tuple(int(s) for s in strides) or (1,) + (2,) * (len(filters) - 1)
    if len(strides) != len(filters) or any(s < 1 for s in strides):
        raise ValueError(f"strides must list one integer >= 1 per conv block ({len(filters)}), got {strides}")
    _check(activation, init)
    return _model(
        _CNN(filters, n_classes, activation, init, strides, bool(batch_norm)),
        tuple(input_shape),
        len(filters) + 1,
        stateful=bool(batch_norm),
    )


def resnet(
    input_shape: Sequence[int] = (28, 28, 1),
    *,
    filters: Sequence[int] = (8, 8, 16),
    n_classes: int = 10,
    activation: str = "relu",
    init: str = "glorot",
) -> Model:
    """Mini ResNet with batch norm: a stride-2 3x3 conv stem (``filters[0]``), one residual block per
    further entry (two 3x3 convs; stride 2 and a 1x1 projection where the width changes), 2x2 max
    pooling, dense softmax head. Activations: stem, each block, the max pool, the softmax output."""
    filters = tuple(int(f) for f in filters)
    if len(filters) < 2 or any(f < 1 for f in filters):
        raise ValueError(f"filters must list >= 2 positive sizes (stem, blocks...), got {filters}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    _check(activation, init)
    return _model(_ResNet(filters, n_classes, activation, init), tuple(input_shape), len(filters) + 2, stateful=True)


def from_flax(
    module, input_shape: Sequence[int] | None = None, *, layers=None, sow: str | None = None, output_layer: bool = True
) -> Model:
    """A user's flax module as a ``Model``. A linen module returning ``(logits, acts)`` (``acts`` a tuple
    of per-layer activations, N x ... each) is used as it is; it trains with ``ibjax.train``.

    A module returning logits only has its T's captured: ``layers`` None or ``"all"``: the output of
    every submodule call (linen ``capture_intermediates``; nested ones included), a regex: those whose
    '/'-joined path (``"Layer_0"``, ``"blocks/0"``) it matches whole, a list of paths: those, in that
    order; ``sow="acts"``: every value sown into that collection. ``output_layer`` appends the softmax
    of the logits as the last T. A flax NNX module (``nnx.Module``, no ``input_shape``) works the same
    way through ``nnx.split`` / ``nnx.capture``; its params are the pure dict of its ``nnx.Param``
    variables. Linen T's come in call order, NNX T's in path order. No ``noisy_apply``: deterministic
    estimators only."""
    from ibjax import capture

    if capture.is_nnx(module):
        init, apply, n_layers = capture.from_nnx(module, input_shape, layers, sow, output_layer)
        return Model(init, apply, None, n_layers)
    if input_shape is None:
        raise ValueError("input_shape is required for a linen module (one sample's shape, e.g. (12,))")
    shape = (1,) + tuple(int(s) for s in input_shape)
    x0 = jnp.zeros(shape, jnp.float32)

    def init(key):
        return module.init(key, x0)["params"]

    out = jax.eval_shape(lambda k: module.apply({"params": init(k)}, x0), jax.random.key(0))
    if layers is None and sow is None and isinstance(out, (tuple, list)) and len(out) == 2:

        def apply(params, x):
            logits, acts = module.apply({"params": params}, x)
            return logits, tuple(acts)

        names = ()
    else:
        apply, names = capture.linen(module, init, x0, layers, sow, output_layer)
    n_layers = len(jax.eval_shape(lambda k: apply(init(k), x0), jax.random.key(0))[1])
    return Model(init, apply, None, n_layers, None, names)


def from_config(model_cfg: dict) -> Model:
    """Rebuild a model from the ``model`` section of a run's config.json."""
    kind = model_cfg.get("kind", "mlp")
    if kind == "mlp":
        return mlp(
            model_cfg["widths"],
            activation=model_cfg["activation"],
            init=model_cfg["init"],
            quant_bits=model_cfg.get("quant_bits", 0),
            quant_weights=model_cfg.get("quant_weights", False),
            quant_range=model_cfg.get("quant_range", "fixed"),
        )
    if kind == "cnn":
        return cnn(
            model_cfg["input_shape"],
            filters=model_cfg["filters"],
            n_classes=model_cfg["n_classes"],
            activation=model_cfg["activation"],
            init=model_cfg["init"],
            strides=model_cfg.get("strides", ()),
            batch_norm=model_cfg.get("batch_norm", False),
        )
    if kind == "resnet":
        return resnet(
            model_cfg["input_shape"],
            filters=model_cfg["filters"],
            n_classes=model_cfg["n_classes"],
            activation=model_cfg["activation"],
            init=model_cfg["init"],
        )
    raise ValueError(f"model kind must be 'mlp', 'cnn' or 'resnet', got {kind!r}")


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
