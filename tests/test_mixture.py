"""Gaussian-mixture entropy by Gauss-Hermite quadrature against closed forms and fine 1-D quadrature.

Tolerances: the rule is float32; closed forms agree to ~1e-6 bits, fine trapezoid quadrature
(400,001 points over +-12 sigma, float64) to ~1e-5 bits (64 nodes), so 1e-4 bits is generous.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax.estimators import mixture

jax.config.update("jax_numpy_rank_promotion", "raise")


def _fine_bits(m, sigma, w=None):
    m = np.asarray(m, float)
    w = np.full(len(m), 1 / len(m)) if w is None else np.asarray(w, float) / np.sum(w)
    t = np.linspace(m.min() - 12 * sigma, m.max() + 12 * sigma, 400_001)
    p = (w[None] * np.exp(-0.5 * ((t[:, None] - m[None]) / sigma) ** 2)).sum(1) / (sigma * math.sqrt(2 * math.pi))
    return np.trapezoid(-p * np.log(np.maximum(p, 1e-300)), t) / math.log(2)


def _h_gauss_bits(d, sigma):
    return 0.5 * d * math.log2(2 * math.pi * math.e * sigma**2)


@pytest.mark.parametrize("d, sigma", [(1, 0.1), (1, 2.0), (2, 0.5), (3, 0.3)])
def test_one_gaussian_closed_form(d, sigma):
    h = mixture.entropy(np.full((1, d), 0.7), sigma)
    assert float(h) == pytest.approx(_h_gauss_bits(d, sigma), abs=1e-5)


@pytest.mark.parametrize("d, k", [(1, 4), (1, 7), (2, 3)])
def test_separated_components_add_log2_k(d, k):
    means = 100.0 * np.arange(k * d, dtype=np.float32).reshape(k, d)  # 1000 sigma apart
    assert float(mixture.entropy(means, 0.1)) == pytest.approx(math.log2(k) + _h_gauss_bits(d, 0.1), abs=1e-5)
    assert float(mixture.mutual_information(means, 0.1)) == pytest.approx(math.log2(k), abs=1e-5)


@pytest.mark.parametrize(
    "means, sigma, w",
    [
        ([0.0, 1.0], 0.3, None),
        ([0.0, 0.5], 1.0, [0.2, 0.8]),
        ([-0.96, -0.76, 0.76, 0.96], 0.1, None),
        ([0.0, 0.05, 0.1, 3.0], 0.01, None),
    ],
)
def test_matches_fine_quadrature_1d(means, sigma, w):
    h = mixture.entropy(np.asarray(means), sigma, None if w is None else np.asarray(w))
    assert float(h) == pytest.approx(_fine_bits(means, sigma, w), abs=1e-4)


def test_saturated_single_neuron_is_h_of_one_quarter():
    """Three of four symbols merged, the fourth far away: I(X;T) = H(1/4, 3/4) = 0.8113 bits."""
    i = mixture.mutual_information(np.array([-1.0, -1.0, -1.0, 1.0]), 0.01)
    assert float(i) == pytest.approx(-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)), abs=1e-5)


def test_2d_matches_product_of_1d_mixtures():
    """Independent coordinates: the mixture of the 4 corner points of a square is a product of two
    1-D two-component mixtures, so its entropy is twice the 1-D one."""
    corners = np.array([[0.0, 0.0], [0.0, 0.4], [0.4, 0.0], [0.4, 0.4]])
    h2 = mixture.entropy(corners, 0.25, n_nodes=48)
    assert float(h2) == pytest.approx(2 * _fine_bits([0.0, 0.4], 0.25), abs=1e-4)


def test_jit_vmap_over_epochs_and_nats():
    means_ExK = jnp.tanh(jnp.array([0.5, 1.0, 4.0])[:, None] * jnp.array([-3.0, -1.0, 1.0, 3.0])[None, :])
    h_E = jax.jit(jax.vmap(lambda m: mixture.entropy(m, 0.1, base=math.e)))(means_ExK)
    for e in range(3):
        assert float(h_E[e]) == pytest.approx(_fine_bits(np.asarray(means_ExK[e]), 0.1) * math.log(2), abs=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(means=np.zeros((2, 2, 2))), "means"),
        (dict(means=np.array([0.0, np.nan])), "means"),
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=-1.0), "sigma"),
        (dict(weights=np.ones(3)), "weights"),
        (dict(weights=np.array([1.0, -0.5])), "weights"),
        (dict(base=1), "base"),
        (dict(n_nodes=0), "n_nodes"),
        (dict(means=np.zeros((2, 5)), n_nodes=10), "n_nodes"),
        (dict(means=np.zeros((0, 1))), "means"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(means=np.array([0.0, 1.0]), sigma=0.1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mixture.entropy(args.pop("means"), args.pop("sigma"), **args)
