"""Uniform quantization with straight-through gradients, for quantization-aware training.

As in Lorenzen et al. (ICLR 2022, "Information Bottleneck: Exact Analysis of (Quantized) Neural
Networks"), a layer's activations are rounded to ``2**bits`` equally spaced levels on a range
``[lo, hi]``: ``q = lo + k * (hi - lo) / (2**bits - 1)`` with the integer code ``k`` in
``0 .. 2**bits - 1``. Activations with a fixed range (tanh, hard_tanh, softsign on [-1, 1], sigmoid
and the softmax output on [0, 1]) use it; ReLU has no upper bound, so its range is ``[0, alpha]``
with ``alpha`` a learned parameter per layer (PACT, Choi et al. 2018): values above ``alpha`` are
clipped, and the gradient reaches ``alpha`` through the clip.

Gradients are straight-through: the forward pass rounds, the backward pass sees the clip only
(``d q / d x = 1`` inside the range, 0 outside). Weights can be quantized too (``weights``): a
symmetric per-tensor grid of ``2**bits - 1`` levels scaled by ``max |w|``.

A second range rule, ``quant_range="minmax"`` of ``models.mlp``, is the one of Lorenzen et al.'s
code (ExactIBAnalysisInQNNs, TensorFlow Model Optimization quantizers): a tanh layer is rounded on
its *batch* [min, max] (in training each minibatch, in evaluation the whole evaluated input set);
every other layer (ReLU hidden layers and the output logits, before the softmax) on a moving-average
range: the exponential average (decay ``EMA_DECAY``, from ``EMA_INIT``) of the batch [min(., 0),
max(., 0)], updated in each training step and frozen in evaluation; the kernels of those layers on
their own [min(w, 0), max(w, 0)]. Every range is then nudged as ``tf.quantization.fake_quant_*``
does, so that 0 is one of the levels (``fake_quant``). The gradient is straight-through; the ranges
are not differentiated (TensorFlow routes the gradient of clipped values to the range variables,
which for a batch range reaches the one extreme activation: left out).

``bits`` may be a Python int or a traced array (the level count is computed, no shape depends on
it); the model fixes it at build time (``MLPConfig.quant_bits``), see ``ibjax.models``. Codes are
exact: ``codes(q, lo=, hi=, bits=)`` recovers ``k`` from a quantized value, and the exact estimator
(``ibjax.estimators.exact``) counts the distinct values of a layer directly.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

SUPPORTED_BITS = (2, 4, 8)
FIXED_RANGES = {"tanh": (-1.0, 1.0), "hard_tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
LEARNED_RANGE = ("relu",)  # range [0, alpha], alpha learned per layer (PACT)
OUTPUT_RANGE = (0.0, 1.0)  # the softmax output layer
CLIP_INIT = 2.0  # initial ReLU clip alpha: about 3 standard deviations of a unit-scale pre-activation
CLIP_MIN = 1e-3  # alpha is used as max(alpha, CLIP_MIN) so the grid never collapses


def check_bits(bits, *, name: str = "quant_bits", allow_zero: bool = False) -> int:
    """``bits`` as an int in ``SUPPORTED_BITS`` (or 0 = float when ``allow_zero``), else ValueError."""
    valid = ((0,) if allow_zero else ()) + SUPPORTED_BITS
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in valid:
        raise ValueError(f"{name} must be one of {list(valid)}{' (0 = float)' if allow_zero else ''}, got {bits!r}")
    return int(bits)


def check_range(lo, hi, *, name: str = "value_range") -> tuple[float, float]:
    """A finite, non-empty range ``lo < hi`` as floats, else ValueError."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be two numbers (lo, hi), got {(lo, hi)!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with lo < hi (non-empty, not inverted), got {(lo, hi)!r}")
    return lo, hi


def activation_range(activation: str) -> tuple[float, float] | None:
    """The fixed range of a bounded activation; None for ReLU (learned); ValueError for unbounded ones."""
    if activation in FIXED_RANGES:
        return FIXED_RANGES[activation]
    if activation in LEARNED_RANGE:
        return None
    raise ValueError(
        f"activation {activation!r} cannot be quantized (unbounded, no learned range); quantized "
        f"activations: {sorted(FIXED_RANGES) + list(LEARNED_RANGE)}"
    )


EMA_DECAY = 0.999  # tfmot MovingAverageQuantizer's ema_decay
EMA_INIT = (-6.0, 6.0)  # tfmot's initial min/max variables
RANGES = ("fixed", "minmax")  # models.mlp(quant_range=): fixed grids + PACT, or Lorenzen's min/max ranges


def check_range_rule(rule, *, name: str = "quant_range") -> str:
    if rule not in RANGES:
        raise ValueError(
            f"{name} must be one of {list(RANGES)} ('fixed': tanh on [-1, 1], ReLU on a learned clip; "
            f"'minmax': Lorenzen et al.'s batch and moving-average [min, max]), got {rule!r}"
        )
    return rule


def _straight_through(q, y):
    """Forward value exactly ``q`` (``y - y`` is 0 in floating point; ``y + (q - y)`` is not always ``q``,
    which under XLA fusion put a 17th value in a 16-level layer), gradient that of ``y``."""
    return lax.stop_gradient(q) + (y - lax.stop_gradient(y))


def _steps(bits):
    return (2.0 ** jnp.asarray(bits, jnp.float32)) - 1.0


def uniform(x, *, bits, lo, hi):
    """``x`` clipped to [lo, hi] and rounded to the nearest of ``2**bits`` levels; gradient straight
    through inside the range, through the clip to ``lo``/``hi`` (so a learned ``hi`` gets one)."""
    y = jnp.clip(x, lo, hi)
    n = _steps(bits)
    step = (hi - lo) / n
    q = lo + jnp.round((y - lo) / step) * step
    return _straight_through(q, y)


def _half_up(v):
    return jnp.floor(v + 0.5)  # std::round of a non-negative value, as TensorFlow's kernels round


def _nudge(lo, hi, bits):
    n = _steps(bits)
    scale = jnp.maximum((hi - lo) / n, 1e-12)
    zero = _half_up(jnp.clip(-lo / scale, 0.0, n))
    return -zero * scale, (n - zero) * scale, scale


def nudged(lo, hi, *, bits):
    """TensorFlow's fake-quant range: ``[lo, hi]`` shifted (width kept) so that 0 is a level, the
    zero point ``round(-lo / scale)`` clipped to the codes ``0 .. 2**bits - 1``."""
    return _nudge(lo, hi, bits)[:2]


def fake_quant(x, *, bits, lo, hi):
    """``tf.quantization.fake_quant_with_min_max_vars(x, lo, hi, num_bits=bits)``: the range nudged
    (``nudged``), ``x`` clipped to it and rounded half up to the nearest of ``2**bits`` levels; the
    gradient straight through inside the range, zero outside, none to ``lo`` / ``hi``."""
    lo, hi, scale = _nudge(lax.stop_gradient(lo), lax.stop_gradient(hi), bits)
    y = jnp.clip(x, lo, hi)
    q = _half_up((y - lo) / scale) * scale + lo  # as TensorFlow: the zero level is exactly 0
    return _straight_through(q, y)


def batch_range(x, mask=None):
    """(min, max) of ``x`` over the live samples (``mask``: leading-axis booleans, broadcastable);
    (0, 0) when none is live (so an all-padding batch never makes inf)."""
    if mask is None:
        return jnp.min(x), jnp.max(x)
    live = jnp.broadcast_to(mask, x.shape)
    lo, hi = jnp.min(jnp.where(live, x, jnp.inf)), jnp.max(jnp.where(live, x, -jnp.inf))
    any_live = jnp.any(live)
    return jnp.where(any_live, lo, 0.0), jnp.where(any_live, hi, 0.0)


def ema_range(old, x, mask=None):
    """One moving-average step of a [min, max] range (tfmot MovingAvgQuantize, asymmetric): the batch
    range widened to include 0, ``old - (1 - EMA_DECAY) * (old - batch)``; ``old`` when no sample is
    live. ``old``: array (2,) = (lo, hi)."""
    lo, hi = batch_range(x, mask)
    new = jnp.stack([jnp.minimum(lo, 0.0), jnp.maximum(hi, 0.0)])
    step = old - (1.0 - EMA_DECAY) * (old - new)
    return step if mask is None else jnp.where(jnp.any(mask), step, old)


def minmax_weights(w, *, bits):
    """tfmot LastValueQuantizer (asymmetric, per tensor): the kernel on its [min(w, 0), max(w, 0)]."""
    return fake_quant(w, bits=bits, lo=jnp.minimum(jnp.min(w), 0.0), hi=jnp.maximum(jnp.max(w), 0.0))


def relu(z, alpha, *, bits):
    """PACT: ``clip(z, 0, alpha)`` quantized to ``2**bits`` levels on [0, alpha]."""
    return uniform(z, bits=bits, lo=0.0, hi=jnp.maximum(alpha, CLIP_MIN))


def weights(w, *, bits):
    """Symmetric per-tensor weight quantization: ``2**bits - 1`` levels on [-max|w|, max|w|]
    (b = 2: ternary); straight-through gradient, the scale is not differentiated."""
    half = 2.0 ** (jnp.asarray(bits, jnp.float32) - 1.0) - 1.0
    scale = lax.stop_gradient(jnp.maximum(jnp.max(jnp.abs(w)), 1e-12)) / half
    return _straight_through(jnp.round(w / scale) * scale, w)


def codes(q, *, bits, lo, hi):
    """Integer codes ``k`` (int32) of quantized values ``q = lo + k (hi - lo) / (2**bits - 1)``."""
    return jnp.round((q - lo) / (hi - lo) * _steps(bits)).astype(jnp.int32)


def layer_ranges(params, activation: str, n_layers: int) -> list:
    """The quantization range (lo, hi) of every layer of a quantized MLP (hidden layers, then the
    softmax output); a ReLU layer's ``hi`` is its learned clip (an array: leading axes kept)."""
    fixed = activation_range(activation)
    hidden = [
        fixed if fixed is not None else (0.0, jnp.maximum(params[f"clip_{i}"], CLIP_MIN)) for i in range(n_layers - 1)
    ]
    return hidden + [OUTPUT_RANGE]
