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


def test_fake_quant_is_tensorflows_nudged_grid_with_half_up_rounding():
    f32 = np.float32
    scale = (f32(1) - f32(-1)) / f32(255)  # float32, as TensorFlow's kernel computes it
    zero = np.floor(f32(1) / scale + f32(0.5))  # the zero point: 127 (1/scale = 127.49999 in float32)
    lo, hi = quantize.nudged(-1.0, 1.0, bits=8)
    np.testing.assert_allclose([lo, hi], [-zero * scale, (255 - zero) * scale], rtol=1e-6)
    x = jnp.array([-2.0, -1.0, 0.0, 0.3, 1.0, 2.0])
    q = np.asarray(quantize.fake_quant(x, bits=8, lo=-1.0, hi=1.0))
    np.testing.assert_allclose(q[[0, 1, 4, 5]], [lo, lo, hi, hi], rtol=1e-6)  # clipped to the nudged range
    assert q[2] == 0.0  # zero is a level
    np.testing.assert_allclose(q[3], lo + np.floor((0.3 - lo) / scale + 0.5) * scale, rtol=1e-6)
    # a range above 0 is shifted down to start at 0 (width kept): [0.2, 0.9] -> [0, 0.7], levels k * 0.7 / 3
    q2 = quantize.fake_quant(jnp.array([0.1, 0.2, 0.5, 0.9]), bits=2, lo=0.2, hi=0.9)
    np.testing.assert_allclose(q2, [0.0, 0.7 / 3, 1.4 / 3, 0.7], atol=1e-6)
    half = quantize.fake_quant(jnp.array([0.5, 2.5]), bits=2, lo=0.0, hi=3.0)  # levels 0, 1, 2, 3
    np.testing.assert_array_equal(half, [1.0, 3.0])  # halves round up (std::round), not to even
    g = jax.grad(lambda v: jnp.sum(quantize.fake_quant(v, bits=4, lo=-1.0, hi=1.0)))(x)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0, 1.0, 1.0, 0.0])  # -1 lies below the nudged range
    w = jax.random.normal(jax.random.key(0), (30, 20))
    wq = np.asarray(quantize.minmax_weights(w, bits=4))
    assert len(np.unique(wq)) <= 16 and 0.0 in wq
    np.testing.assert_allclose([wq.min(), wq.max()], quantize.nudged(w.min(), w.max(), bits=4), rtol=1e-5)


def test_moving_average_range_step_mask_and_empty_batch():
    old = jnp.array([-6.0, 6.0])
    x = jnp.array([[0.5, 2.0], [1.0, 0.0], [9.0, 9.0]])
    live = jnp.array([True, True, False])[:, None]  # the third sample is padding
    new = quantize.ema_range(old, x, live)
    np.testing.assert_allclose(new, [-6.0 + 0.001 * 6.0, 6.0 - 0.001 * (6.0 - 2.0)], rtol=1e-6)  # batch [0, 2]
    np.testing.assert_allclose(quantize.ema_range(old, x), [-5.994, 6.003], rtol=1e-6)  # all live: max 9
    np.testing.assert_array_equal(quantize.ema_range(old, x, jnp.zeros((3, 1), bool)), old)  # nothing live


def test_minmax_mlp_is_lorenzens_rule_and_trains_its_ranges():
    from ibjax.data import Split
    from ibjax.train import hyper, make_train, uses

    x = jnp.asarray(((np.arange(4096)[:, None] >> np.arange(12)) & 1).astype(np.float32))
    tanh = models.mlp((12, 10, 7, 2), activation="tanh", quant_bits=4, quant_range="minmax")
    v = tanh.init(jax.random.key(0))
    assert list(v["batch_stats"]) == ["range_2"] and "clip_0" not in v["params"]  # only the output's logits
    _, acts = tanh.apply(v, x)
    a0 = np.tanh(np.asarray(x @ v["params"]["Dense_0"]["kernel"]))  # the first layer in float
    lo, hi = quantize.nudged(a0.min(), a0.max(), bits=4)  # quantized on the evaluated batch's range
    np.testing.assert_allclose([acts[0].min(), acts[0].max()], [lo, hi], rtol=1e-5)
    assert len(np.unique(np.asarray(acts[0]))) <= 16
    _, sub = tanh.apply(v, x[:64])  # another batch, another range
    assert not np.allclose(float(sub[0].max()), float(acts[0].max()))
    relu = models.mlp((12, 10, 7, 2), activation="relu", quant_bits=4, quant_range="minmax")
    vr = relu.init(jax.random.key(0))
    assert sorted(vr["batch_stats"]) == ["range_0", "range_1", "range_2"]
    np.testing.assert_array_equal(vr["batch_stats"]["range_0"], quantize.EMA_INIT)
    cfg = RunConfig(MLPConfig((12, 10, 7, 2), activation="relu", quant_bits=4, quant_range="minmax"))
    cfg = cfg.replace(**{"train.n_epochs": 3, "train.schedule": "all"})
    y = np.asarray(x[:, 0] > x[:, 1], np.int32)
    split = Split(np.asarray(x), y, np.asarray(x), y)
    out = jax.jit(make_train(cfg.model.build(), cfg.train, split, u=uses([cfg])).train)(jax.random.key(1), hyper(cfg))
    kept = out["params"]["batch_stats"]["range_0"]  # E x 2: 13 steps per epoch move it off (-6, 6)
    assert kept.shape == (3, 2) and float(kept[-1, 0]) > -6.0 and float(kept[-1, 1]) < 6.0
    assert np.all(np.diff(np.asarray(kept[:, 0])) > 0)  # the min decays towards 0 (ReLU's batch min)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert models.from_config(cfg.to_dict()["model"]).train_apply is not None
    with pytest.raises(ValueError, match="quant_range must be one of"):
        MLPConfig(quant_bits=4, quant_range="ema")
    with pytest.raises(ValueError, match="does not combine with quant_range='minmax'"):
        MLPConfig(quant_bits=4, quant_weights=True, quant_range="minmax")
