"""Quantization-aware forward passes: grids, straight-through gradients, PACT clip, the quantized MLP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import models, quantize
from ibjax.config import MLPConfig, RunConfig


def test_uniform_grid_and_straight_through_gradient():
    x = jnp.linspace(-1.5, 1.5, 300)  # no point on the range's ends (where the clip splits its gradient)
    q = quantize.uniform(x, bits=2, lo=-1.0, hi=1.0)
    np.testing.assert_allclose(np.unique(np.asarray(q)), [-1.0, -1 / 3, 1 / 3, 1.0], atol=1e-7)  # 4 levels
    np.testing.assert_allclose(quantize.uniform(jnp.float32(0.2), bits=2, lo=-1.0, hi=1.0), 1 / 3, atol=1e-7)
    g = jax.grad(lambda v: jnp.sum(quantize.uniform(v, bits=2, lo=-1.0, hi=1.0)))(x)
    np.testing.assert_array_equal(np.asarray(g), (np.abs(np.asarray(x)) <= 1.0).astype(np.float32))  # clip only
    codes = quantize.codes(quantize.uniform(x, bits=8, lo=-1.0, hi=1.0), bits=8, lo=-1.0, hi=1.0)
    assert int(codes.min()) == 0 and int(codes.max()) == 255
    q8 = quantize.uniform(x, bits=8, lo=-1.0, hi=1.0)
    np.testing.assert_allclose(np.asarray(q8), -1 + np.asarray(codes) * 2 / 255, atol=1e-6)  # codes are exact
    traced = jax.jit(lambda b: quantize.uniform(x, bits=b, lo=-1.0, hi=1.0))  # bits may be traced
    code4 = lambda q: np.asarray(quantize.codes(q, bits=4, lo=-1.0, hi=1.0))  # the same codes (values within an ulp)
    np.testing.assert_array_equal(code4(traced(4)), code4(quantize.uniform(x, bits=4, lo=-1.0, hi=1.0)))


def test_pact_relu_clip_gradient_and_weights():
    z = jnp.array([-1.0, 0.3, 0.9, 2.5, 3.0])
    q = quantize.relu(z, jnp.float32(2.0), bits=2)  # levels 0, 2/3, 4/3, 2
    np.testing.assert_allclose(q, [0.0, 0.0, 2 / 3, 2.0, 2.0], atol=1e-6)
    d_alpha = jax.grad(lambda a: jnp.sum(quantize.relu(z, a, bits=2)))(jnp.float32(2.0))
    assert float(d_alpha) == 2.0  # PACT: one per value at or above the clip
    w = jax.random.normal(jax.random.key(0), (50, 20))
    wq = quantize.weights(w, bits=2)  # ternary
    np.testing.assert_allclose(np.unique(np.abs(np.asarray(wq))), [0.0, float(jnp.max(jnp.abs(w)))], rtol=1e-6)
    assert len(np.unique(np.asarray(quantize.weights(w, bits=4)))) <= 15
    np.testing.assert_array_equal(jax.grad(lambda v: jnp.sum(quantize.weights(v, bits=2) * 3.0))(w), 3.0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_quantized_mlp_acts_take_at_most_2_to_the_b_values(activation):
    m = models.mlp((12, 10, 7, 2), activation=activation, quant_bits=2, quant_weights=True)
    params = m.init(jax.random.key(0))
    assert ("clip_0" in params) == (activation == "relu")
    x = jnp.asarray(((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float32))
    logits, acts = m.apply(params, x)
    for a, (lo, hi) in zip(acts, quantize.layer_ranges(params, activation, m.n_layers)):
        assert len(np.unique(np.asarray(a))) <= 4
        k = quantize.codes(a, bits=2, lo=lo, hi=hi)
        np.testing.assert_allclose(lo + np.asarray(k) * (hi - lo) / 3, a, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jnp.sum(jax.nn.softmax(logits), -1)), 1.0, atol=1e-6)  # logits unquantized
    float_net = models.mlp((12, 10, 7, 2), activation=activation)
    same = float_net.init(jax.random.key(0))  # same parameter names and init values (+ the clips)
    np.testing.assert_array_equal(same["Dense_0"]["kernel"], params["Dense_0"]["kernel"])


def test_config_and_bad_input():
    cfg = RunConfig(MLPConfig(activation="relu", quant_bits=8, quant_weights=True))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert models.from_config(cfg.to_dict()["model"]).n_layers == 6
    for bad in (3, 16, True, 2.0):
        with pytest.raises(ValueError, match=r"quant_bits must be one of \[0, 2, 4, 8\]"):
            MLPConfig(quant_bits=bad)
    with pytest.raises(ValueError, match="cannot be quantized"):
        MLPConfig(activation="softplus", quant_bits=4)
    with pytest.raises(ValueError, match="quant_weights"):
        MLPConfig(quant_weights=True)
    for lo, hi in ((1.0, 1.0), (1.0, -1.0), (0.0, float("nan"))):
        with pytest.raises(ValueError, match="value_range must be finite with lo < hi"):
            quantize.check_range(lo, hi)
    with pytest.raises(ValueError, match=r"bits must be one of \[2, 4, 8\]"):
        quantize.check_bits(0, name="bits")
