import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax.estimators import hsic

jax.config.update("jax_numpy_rank_promotion", "raise")


def _numpy_hsic(x, y, sx, sy):
    """(1/N^2) tr(K H L H) with explicit K, L, H (float64)."""
    n = len(x)
    k = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * sx**2))
    l = np.exp(-((y[:, None] - y[None]) ** 2).sum(-1) / (2 * sy**2))
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h) / n**2


def _numpy_median_sigma(a):
    d2 = ((a[:, None] - a[None]) ** 2).sum(-1)
    return np.sqrt(np.median(d2[np.triu_indices(len(a), 1)]))


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = x[:, :2] @ rng.normal(size=(2, 2)) + rng.normal(size=(60, 2))
    return x, y


def test_matches_direct_numpy_evaluation(small):
    x, y = small
    sx, sy = _numpy_median_sigma(x), _numpy_median_sigma(y)
    np.testing.assert_allclose(hsic.median_bandwidth(jnp.asarray(x, jnp.float32)), sx, rtol=1e-6)
    direct = _numpy_hsic(x, y, sx, sy)
    assert abs(float(hsic.hsic(x, y, block_size=7)) - direct) < 1e-6  # 7 does not divide 60: padded blocks
    assert abs(float(hsic.hsic(x, y, sigma_x=0.7, sigma_y=2.0)) - _numpy_hsic(x, y, 0.7, 2.0)) < 1e-6
    normalized = direct / np.sqrt(_numpy_hsic(x, x, sx, sx) * _numpy_hsic(y, y, sy, sy))
    assert float(hsic.hsic(x, y, normalized=True)) == pytest.approx(normalized, rel=1e-5)


def test_independent_inputs_fall_below_permutation_null():
    rng = np.random.default_rng(1)
    x, y = jnp.asarray(rng.normal(size=(200, 2))), jnp.asarray(rng.uniform(size=(200,)))
    perms = jax.vmap(lambda k: jax.random.permutation(k, 200))(jax.random.split(jax.random.key(0), 200))
    null = jax.jit(jax.vmap(lambda p: hsic.hsic(x, y[p])))(perms)
    observed = float(hsic.hsic(x, y))
    assert observed < float(jnp.quantile(null, 0.95))
    assert observed < 0.01  # tiny on the normalised scale too: ~1/N
    assert float(hsic.hsic(x, y, normalized=True)) < 0.05


def test_increases_with_correlation_and_detects_dependence():
    rng = np.random.default_rng(2)
    x, z = rng.normal(size=(400,)), rng.normal(size=(400,))
    values = [float(hsic.hsic(x, r * x + np.sqrt(1 - r * r) * z, normalized=True)) for r in (0.0, 0.3, 0.6, 0.9)]
    assert values == sorted(values) and values[0] < 0.02 and values[-1] > 0.3
    assert float(hsic.hsic(x, x, normalized=True)) == pytest.approx(1.0, rel=1e-5)


def test_vmaps_and_large_n_median_uses_strided_subset():
    xs = jax.random.normal(jax.random.key(3), (4, 2048, 3))
    out = jax.jit(jax.vmap(lambda a: hsic.hsic(a, a[:, :1] ** 2)))(xs)
    assert out.shape == (4,) and np.all(np.asarray(out) > 0)
    a = np.asarray(xs[0])
    np.testing.assert_allclose(hsic.median_bandwidth(jnp.asarray(a)), _numpy_median_sigma(a[::2]), rtol=1e-5)


def test_ties_fall_back_to_mean_distance():
    a = np.zeros((10, 1))
    a[0] = 1.0  # 9 of 10 points equal: median pairwise distance is 0
    assert float(hsic.median_bandwidth(jnp.asarray(a))) == pytest.approx(np.sqrt(9 / 45), rel=1e-6)
    assert float(hsic.median_bandwidth(jnp.zeros((5, 2)))) == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma_x=0.0), "sigma_x"),
        (dict(sigma_y=-1.0), "sigma_y"),
        (dict(y=np.zeros(9)), "x and y"),
        (dict(x=np.full(10, np.nan)), "x"),
        (dict(y=np.zeros((10, 2, 2))), "y"),
        (dict(block_size=0), "block_size"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(x=np.zeros(10), y=np.zeros(10))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        hsic.hsic(args.pop("x"), args.pop("y"), **args)
