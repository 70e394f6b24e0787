import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import models


def test_mlp_shapes_and_softmax_last_layer():
    m = models.mlp([12, 10, 7, 5, 4, 3, 2])
    p = m.init(jax.random.key(0))
    assert sorted(p) == [f"Dense_{i}" for i in range(6)]
    logits, acts = jax.jit(m.apply)(p, jnp.ones((5, 12)))
    assert logits.shape == (5, 2) and [a.shape[1] for a in acts] == [10, 7, 5, 4, 3, 2]
    np.testing.assert_allclose(acts[-1], jax.nn.softmax(logits), rtol=1e-6)
    np.testing.assert_allclose(acts[0], jnp.tanh(jnp.ones((5, 12)) @ p["Dense_0"]["kernel"]), rtol=1e-6)
    assert all(np.all(np.asarray(p[k]["bias"]) == 0) for k in p)


@pytest.mark.parametrize("init,fan", [("idnns", "in"), ("saxe", "out")])
def test_truncated_normal_inits(init, fan):
    m = models.mlp([400, 100, 2], init=init)
    w = np.asarray(m.init(jax.random.key(1))["Dense_0"]["kernel"])
    std = 1 / np.sqrt(400 if fan == "in" else 100)
    assert np.abs(w).max() <= 2 * std + 1e-6  # truncated at 2 std
    assert w.std() == pytest.approx(0.8796 * std, rel=0.03)  # std of N(0,1) truncated to [-2, 2]


@pytest.mark.parametrize("act", sorted(models.ACTIVATIONS))
def test_every_activation_runs(act):
    m = models.mlp([3, 4, 2], activation=act)
    _, acts = m.apply(m.init(jax.random.key(0)), jnp.linspace(-2, 2, 12).reshape(4, 3))
    assert np.all(np.isfinite(acts[0]))


def test_noisy_apply_feeds_noise_forward():
    m = models.mlp([2, 3, 3, 2])
    p = m.init(jax.random.key(0))
    x = jnp.ones((4, 2))
    logits0, t0, s0 = m.noisy_apply(p, x, jax.random.key(1), 0.0)
    np.testing.assert_allclose(logits0, m.apply(p, x)[0], rtol=1e-6)
    _, t, s = m.noisy_apply(p, x, jax.random.key(1), 0.5)
    np.testing.assert_allclose(s[0], m.apply(p, x)[1][0], rtol=1e-6)  # S_1 is deterministic given x
    np.testing.assert_allclose(s[1], jnp.tanh(t[0] @ p["Dense_1"]["kernel"]), rtol=1e-5)  # S_2 from noisy T_1
    z = np.asarray(t[0] - s[0])
    assert 0.2 < z.std() < 0.8


def test_cnn_layers():
    m = models.cnn((28, 28, 1), filters=(8, 16, 32, 32))
    logits, acts = m.apply(m.init(jax.random.key(0)), jnp.zeros((2, 28, 28, 1)))
    assert logits.shape == (2, 10) and [a.shape[-1] for a in acts] == [8, 16, 32, 32, 10]
    assert m.n_layers == 5


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="activation"):
        models.mlp([2, 2], activation="swish")
    with pytest.raises(ValueError, match="init"):
        models.mlp([2, 2], init="he")
    with pytest.raises(ValueError, match="widths"):
        models.mlp([])
    with pytest.raises(ValueError, match="filters"):
        models.cnn(filters=())


def test_init_compiled_fast_gives_the_default_compile_s_bits():
    """Every init program is compiled with INIT_COMPILER_OPTIONS (LLVM -O1, about 4x faster to
    compile): its params must be bit for bit those of the default compile, for each initializer and
    for quantized and batch-norm (convolutional) models."""
    keys = jax.vmap(jax.random.key)(np.arange(3, dtype=np.uint32))
    built = [models.mlp((12, 10, 7, 2), init=init) for init in sorted(models.INITS)]
    built += [models.mlp((12, 6, 2), quant_bits=4), models.resnet((8, 8, 1), filters=(2, 4), n_classes=2)]
    for m in built:
        fast, plain = m.init.fast.lower(keys[0]).compile(), m.init.plain.lower(keys[0]).compile()
        for k in keys:
            a, b = jax.tree.leaves(fast(k)), jax.tree.leaves(plain(k))
            assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    batched = jax.vmap(built[0].init)(keys)  # traced: the plain program, nested; same params
    assert all(
        np.array_equal(x[1], y) for x, y in zip(jax.tree.leaves(batched), jax.tree.leaves(built[0].init(keys[1])))
    )
