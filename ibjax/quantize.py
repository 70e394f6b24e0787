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


def _steps(bits):
    return (2.0 ** jnp.asarray(bits, jnp.float32)) - 1.0


def uniform(x, *, bits, lo, hi):
    """``x`` clipped to [lo, hi] and rounded to the nearest of ``2**bits`` levels; gradient straight
    through inside the range, through the clip to ``lo``/``hi`` (so a learned ``hi`` gets one)."""
    y = jnp.clip(x, lo, hi)
    n = _steps(bits)
    step = (hi - lo) / n
    q = lo + jnp.round((y - lo) / step) * step
    return y + lax.stop_gradient(q - y)


def relu(z, alpha, *, bits):
    """PACT: ``clip(z, 0, alpha)`` quantized to ``2**bits`` levels on [0, alpha]."""
    return uniform(z, bits=bits, lo=0.0, hi=jnp.maximum(alpha, CLIP_MIN))


def weights(w, *, bits):
    """Symmetric per-tensor weight quantization: ``2**bits - 1`` levels on [-max|w|, max|w|]
    (b = 2: ternary); straight-through gradient, the scale is not differentiated."""
    half = 2.0 ** (jnp.asarray(bits, jnp.float32) - 1.0) - 1.0
    scale = lax.stop_gradient(jnp.maximum(jnp.max(jnp.abs(w)), 1e-12)) / half
    return w + lax.stop_gradient(jnp.round(w / scale) * scale - w)


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
