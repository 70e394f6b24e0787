import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import data, models
from ibjax.train import TrainConfig, make_train, penalty


@pytest.fixture(scope="module")
def split(shared_dir):
    return data.split(data.var_u(shared_dir / "data" / "var_u.mat"), "random", seed=0)


def small(**kw):
    base = dict(widths=(12, 6, 4, 2), n_epochs=6, schedule="all", batch_size=512)
    return TrainConfig(**{**base, **kw})


def test_deterministic_given_key(split):
    train = jax.jit(make_train(small(), split))
    a, b = train(jax.random.key(3)), train(jax.random.key(3))
    jax.tree.map(np.testing.assert_array_equal, a["params"], b["params"])
    c = train(jax.random.key(4))
    assert not np.allclose(a["params"]["Dense_0"]["kernel"], c["params"]["Dense_0"]["kernel"])


def test_vmap_over_8_seeds_equals_separate_calls(split):
    train = make_train(small(), split)
    keys = jax.vmap(jax.random.key)(jnp.arange(8))
    batched = jax.jit(jax.vmap(train))(keys)
    single = jax.jit(train)
    for s in range(8):
        one = single(keys[s])
        jax.tree.map(lambda b, o: np.testing.assert_allclose(b[s], o, rtol=1e-5, atol=1e-6), batched["params"], one["params"])


def test_checkpoint_before_vs_after(split):
    m = models.mlp((12, 6, 4, 2))
    key = jax.random.key(0)
    before = make_train(small(checkpoint_at="before"), split)(key)
    after = make_train(small(checkpoint_at="after"), split)(key)
    init = m.init(jax.random.split(key)[0])
    np.testing.assert_array_equal(before["params"]["Dense_0"]["kernel"][0], init["Dense_0"]["kernel"])
    np.testing.assert_allclose(before["params"]["Dense_0"]["kernel"][1:], after["params"]["Dense_0"]["kernel"][:-1], rtol=1e-6)
    np.testing.assert_allclose(after["params"]["Dense_0"]["kernel"][-1], after["final_params"]["Dense_0"]["kernel"], rtol=1e-6)


def test_metrics_and_schedule(split):
    out = make_train(small(n_epochs=10, schedule="every:4"), split)(jax.random.key(0))
    np.testing.assert_array_equal(out["epochs"], [0, 4, 8])
    assert out["params"]["Dense_0"]["kernel"].shape == (3, 12, 6)
    m = out["metrics"]
    assert m["train_loss"].shape == (10,) and m["grad_mean_norm"].shape == (10, 3)
    assert float(m["train_loss"][-1]) < float(m["train_loss"][0])
    assert np.all(m["grad_std_norm"] > 0) and np.all((m["test_acc"] >= 0) & (m["test_acc"] <= 1))


def test_saxe_recipe_reproduces_published_loss(split, reference):
    """Keras running-mean training loss of the Saxe recipe within a factor 2 of the published log."""
    ref = reference["training_log_saxe_tanh"]
    cfg = TrainConfig(init="saxe", n_epochs=1000, schedule="every:1000")
    loss = np.asarray(jax.jit(make_train(cfg, split))(jax.random.key(0))["metrics"]["train_loss_running"])
    for e in (50, 500, 1000):
        assert 0.5 < loss[e - 1] / ref[f"epoch_{e}"] < 2.0, (e, loss[e - 1], ref[f"epoch_{e}"])


def test_full_batch_momentum_noise_and_ortho(split):
    cfg = small(batch_size=0, optimizer="momentum", learning_rate=0.05, noise_sigma=0.1, ortho_penalty=0.1, n_epochs=30)
    out = make_train(cfg, split)(jax.random.key(0))
    first = {k: v[0] for k, v in out["params"]["Dense_0"].items()}
    pen0 = penalty({"Dense_0": first}, weight_decay=0.0, ortho_penalty=1.0)
    pen1 = penalty({"Dense_0": out["final_params"]["Dense_0"]}, weight_decay=0.0, ortho_penalty=1.0)
    assert float(pen1) < float(pen0)  # the orthonormality penalty pulls W^T W towards I
    np.testing.assert_allclose(penalty({"D_0": {"kernel": jnp.eye(3)}}, weight_decay=0.0, ortho_penalty=1.0), 0.0)
    np.testing.assert_allclose(penalty({"D_0": {"kernel": 2 * jnp.eye(3)}}, weight_decay=0.5, ortho_penalty=1.0), 0.5 * 12 + 27)


def test_bad_config_is_named(split):
    with pytest.raises(ValueError, match="activation"):
        TrainConfig(activation="gelu")
    with pytest.raises(ValueError, match="init"):
        TrainConfig(init="zeros")
    with pytest.raises(ValueError, match="widths"):
        TrainConfig(widths=())
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="batch_size"):
        make_train(small(batch_size=10**6), split)
    with pytest.raises(ValueError, match="unknown setting"):
        TrainConfig.from_dict({"lr": 1.0})
