"""kNN MI on tied data (module docstring of knn): 12-bit binary inputs, discrete closed forms, a
discrete-continuous mixture against quadrature, data processing along a deterministic chain, and
the blocked implementation against a brute-force numpy one."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import digamma

from ibjax.estimators import knn

jax.config.update("jax_numpy_rank_promotion", "raise")

BITS_NxD = np.array(list(itertools.product([0, 1], repeat=12)), np.float32)  # the 4096 12-bit inputs


def _h2(p):
    return -p * np.log2(p) - (1 - p) * np.log2(1 - p)


def _brute_mi(x, y, k):
    """The ``ties="cell"`` rule written out in numpy, N x N (small N only), in nats."""
    n = len(x)
    dx = np.abs(x[:, None] - x[None]).max(-1)
    dy = np.abs(y[:, None] - y[None]).max(-1)
    np.fill_diagonal(dx, np.inf)
    dz = np.maximum(dx, dy)
    terms = []
    for i in range(n):
        rho = np.sort(dz[i])[k - 1]
        below = (lambda d: d <= 0) if rho == 0 else (lambda d: d < rho)
        n_z, n_x, n_y = below(dz[i]).sum(), below(dx[i]).sum(), below(dy[i]).sum() - 1
        if rho == 0 or (dz[i] <= rho).sum() > k:
            terms.append(np.log(n) + np.log(n_z + 1) - np.log(n_x + 1) - np.log(n_y + 1))
        else:
            terms.append(digamma(k) + digamma(n) - digamma(n_x + 1) - digamma(n_y + 1))
    return np.mean(terms)


# 1. The 12-bit task: every pair of distinct inputs is at max-norm distance exactly 1.


def test_12_bits_self_information_is_12_and_constant_is_0():
    # Every point's k-th distance is tied (4095 points at 1), so each point is its own cell and the
    # estimate is the sample's plug-in H(X) = log2 4096 = 12 bits; with a constant, n_y = N - 1 in
    # every term and I = 0. Tolerance 1e-5 bits: float32 rounding of log N, no estimator error.
    const = np.zeros((4096, 1), np.float32)
    np.testing.assert_allclose(knn.mi(BITS_NxD, BITS_NxD), 12.0, atol=1e-5)
    assert abs(float(knn.mi(BITS_NxD, const))) < 1e-6
    assert abs(float(knn.mi(const, BITS_NxD))) < 1e-6
    # the previous rule, kept as ties="ksg", measured the ties: 15.0 bits > H(X) and psi(3) - psi(1)
    old = [float(knn.mi(BITS_NxD, t, ties="ksg")) for t in (BITS_NxD, const)]
    np.testing.assert_allclose(old, [14.9966, (digamma(3) - digamma(1)) / np.log(2)], atol=1e-3)


def test_data_processing_along_a_deterministic_binary_chain():
    # X -> T1 = 6 bits of X -> T2 = XOR of pairs of T1 (3 bits) -> T3 = XOR of T2 (1 bit) -> constant.
    # True I(X;T) = H(T) = 12, 6, 3, 1, 0 bits, and every point is a cell, so the values are exact
    # (1e-5: float32). Zero columns pad the layers to one width (they change no max-norm distance),
    # so the chain is one batched call.
    t1 = BITS_NxD[:, :6]
    t2 = np.abs(t1[:, 0::2] - t1[:, 1::2])
    t3 = (t2.sum(1, keepdims=True) % 2).astype(np.float32)
    layers = [BITS_NxD, t1, t2, t3, np.zeros((4096, 1), np.float32)]
    t_LxNx12 = np.stack([np.pad(t, ((0, 0), (0, 12 - t.shape[1]))) for t in layers])
    got = np.asarray(knn.mi(BITS_NxD, t_LxNx12))
    np.testing.assert_allclose(got, [12.0, 6.0, 3.0, 1.0, 0.0], atol=1e-5)
    assert np.all(np.diff(got) <= 1e-5)


def test_tanh_chain_on_12_bits_decreases_with_depth():
    # Deterministic tanh layers of the 12-bit inputs (gain 3, fixed seed): every row distinct, so
    # the true I(X;T) is 12 bits at each layer; kNN sees T at the inputs' spacing 1 and measures
    # 4.233, 3.325, 2.818 bits, decreasing with depth (ties="ksg": 6.40, 5.49, 4.98, KSG-1 counting
    # nobody strictly inside the tied distance 1 in x).
    rng = np.random.default_rng(0)
    h, acts = BITS_NxD, []
    for width in (10, 7, 5):
        h = np.tanh(h @ (3.0 * rng.normal(size=(h.shape[1], width)) / np.sqrt(h.shape[1]))).astype(np.float32)
        acts.append(np.pad(h, ((0, 0), (0, 10 - width))))
    got = np.asarray(knn.mi(BITS_NxD, np.stack(acts)))
    np.testing.assert_allclose(got, [4.2334, 3.3247, 2.8180], atol=1e-3)


# 2. Discrete closed forms (atoms with many copies: Gao's rho = 0 cells).


def test_uniform_on_4_symbols_mod_2_is_1_bit():
    # X uniform on {0, 1, 2, 3} (500 each), Y = X mod 2: I = H(Y) = 1 bit; balanced counts make
    # the plug-in exact (1e-5: float32).
    x = np.repeat(np.arange(4), 500)
    np.testing.assert_allclose(knn.mi(x[:, None], (x % 2)[:, None]), 1.0, atol=1e-5)


def test_first_bit_through_a_binary_symmetric_channel():
    # X = 3 uniform bits, Y = X_1 XOR Bernoulli(0.1): I = 1 - h(0.1) = 0.531 bits; measured 0.540 at
    # N = 4000. Tolerance 0.03 bits: about 3 standard deviations of the plug-in at this N.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (4000, 3))
    y = x[:, :1] ^ (rng.random((4000, 1)) < 0.1)
    assert abs(float(knn.mi(x, y)) - (1 - _h2(0.1))) < 0.03


# 3. Continuous and mixed data.


def test_gaussian_pair_closed_form_and_no_ties_means_plain_ksg():
    # No ties: the cell rule never applies and the value equals the previous rule's (KSG-1).
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 1))
    y = (0.6 * x + 0.8 * rng.normal(size=x.shape)).astype(np.float32)
    x = x.astype(np.float32)
    got = float(knn.mi(x, y))
    assert abs(got - (-0.5 * np.log2(1 - 0.36))) < 0.03 / np.log(2)  # the 0.03 nats of test_knn
    assert got == pytest.approx(float(knn.mi(x, y, ties="ksg")), abs=1e-6)


def _mixture_truth_bits(s):
    """I(X;Y) for X uniform on {0,1,2,3}, Y = X + N(0, s^2): H(X) - H(X|Y) by quadrature."""
    y_G = np.linspace(-10 * s, 3 + 10 * s, 200_001)
    lik_4xG = np.exp(-0.5 * ((y_G[None] - np.arange(4)[:, None]) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    p_G = lik_4xG.mean(0)
    post_4xG = 0.25 * lik_4xG / p_G
    h_post_G = -np.sum(post_4xG * np.log2(np.maximum(post_4xG, 1e-300)), axis=0)
    return 2.0 - np.sum(p_G * h_post_G) * (y_G[1] - y_G[0])


@pytest.mark.parametrize(("s", "measured"), [(0.5, 1.2566), (1.0, 0.6183)])
def test_discrete_plus_gaussian_noise_against_quadrature(s, measured):
    # Truth 1.2194 bits (s = 0.5) and 0.5765 (s = 1); measured at N = 4000 (seed 0) 1.2566 and
    # 0.6183, and over seeds 0-2 within +0.02 to +0.04: KSG's known upward bias on discrete-continuous
    # mixtures (Ross 2014). Tolerance 0.06 bits.
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (4000, 1)).astype(np.float32)
    y = (x + s * rng.normal(size=x.shape)).astype(np.float32)
    got = float(knn.mi(x, y))
    assert abs(got - _mixture_truth_bits(s)) < 0.06
    assert got == pytest.approx(measured, abs=1e-3)


# 4. The blocked, batched implementation against brute force.


@pytest.mark.parametrize("k", [1, 3, 5])
def test_blocked_matches_brute_force_on_tied_data(k):
    # Rounded Gaussians: atoms with copies (rho = 0), tied lattice distances and untied points;
    # 20 rows appear 6 times: of 300 rows 123-133 have rho = 0, 101-157 are tied, 20-66 untied.
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(size=(200, 2)) * 2) / 2
    y = np.round((x[:, :1] + rng.normal(size=(200, 1))) * 8) / 8  # binary fractions: exact in float32
    x, y = np.concatenate([x] + [x[:20]] * 5), np.concatenate([y] + [y[:20]] * 5)
    x, y = x.astype(np.float32), y.astype(np.float32)
    want = _brute_mi(x.astype(np.float64), y.astype(np.float64), k) / np.log(2)
    np.testing.assert_allclose(knn.mi(x, y, k=k, block_size=7), want, atol=1e-5)
    np.testing.assert_allclose(jax.vmap(lambda kk: knn.mi(x, y, k=kk))(jnp.array([k])), [want], atol=1e-5)


def test_bad_ties_option_names_the_argument():
    x = np.arange(10, dtype=np.float32)[:, None]
    with pytest.raises(ValueError, match="ties"):
        knn.mi(x, x, ties="jitter")
    with pytest.raises(ValueError, match="ties"):
        knn.mi_with_error(x, x, jax.random.key(0), k=1, ties="")
