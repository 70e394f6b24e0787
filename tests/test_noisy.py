"""Noisy-network information plane against numerical quadrature of the exact mutual information.

T = tanh(w X + b) + Z with X uniform on {-3, -1, 1, 3} is a 4-component 1-D Gaussian mixture, so
I(X;T) = h(T) - h(Z) and I(T;Y) = h(T) - sum_y p(y) h(T | y) follow from 1-D integrals on a fine grid
(trapezoid, 40,001 points over +-12 sigma beyond the centres: error << 1e-6 bits).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import noisy

jax.config.update("jax_numpy_rank_promotion", "raise")

X4 = np.array([-3.0, -1.0, 1.0, 3.0])
Y4 = (X4 == 3).astype(np.int32)


def _phi(u, s):
    return np.exp(-0.5 * (u / s) ** 2) / (s * math.sqrt(2 * math.pi))


def _h(pdf, lo, hi, n=40_001):
    t = np.linspace(lo, hi, n)
    p = pdf(t)
    return np.trapezoid(-p * np.log(np.maximum(p, 1e-300)), t)


def _exact_bits(cond_pdf, lo, hi):
    """(I(X;T), I(T;Y)) in bits from p(t | x_k) for the four inputs (T x 4 densities)."""
    h = _h(lambda t: cond_pdf(t).mean(1), lo, hi)
    h_x = np.mean([_h(lambda t, k=k: cond_pdf(t)[:, k], lo, hi) for k in range(4)])
    h_y0 = _h(lambda t: cond_pdf(t)[:, :3].mean(1), lo, hi)
    h_y1 = _h(lambda t: cond_pdf(t)[:, 3], lo, hi)
    return (h - h_x) / math.log(2), (h - 0.75 * h_y0 - 0.25 * h_y1) / math.log(2)


def exact_single(w, b, sigma):
    m = np.tanh(w * X4 + b)
    return _exact_bits(lambda t: _phi(t[:, None] - m[None, :], sigma), m.min() - 12 * sigma, m.max() + 12 * sigma)


def exact_two_layer(w1, b1, w2, b2, sigma):
    """T2 = tanh(w2 (tanh(w1 X + b1) + Z1) + b2) + Z2: p(t2 | x) by 200-node Gauss-Hermite over Z1."""
    u, wt = np.polynomial.hermite_e.hermegauss(200)
    wt = wt / wt.sum()
    s2_4xU = np.tanh(w2 * (np.tanh(w1 * X4 + b1)[:, None] + sigma * u[None, :]) + b2)
    cond = lambda t: np.einsum("tku,u->tk", _phi(t[:, None, None] - s2_4xU[None], sigma), wt)
    return _exact_bits(cond, -1 - 12 * sigma, 1 + 12 * sigma)


@pytest.mark.parametrize(
    "w, b, sigma",
    [(1.0, 0.0, 0.1), (0.5, 0.2, 0.3), (2.0, 1.0, 0.05), (4.0, -8.0, 0.1)],  # the last: saturated, ~H(0.25)
)
def test_single_neuron_matches_quadrature(w, b, sigma):
    x = jnp.asarray(X4)
    plane = noisy.info_plane(lambda k: (jnp.tanh(w * x + b)[:, None],), Y4, sigma, jax.random.key(0), n_mc=8192)
    i_xt, i_ty = exact_single(w, b, sigma)
    assert plane.i_xt.shape == plane.i_ty.shape == plane.i_xt_se.shape == (1,)
    assert abs(float(plane.i_xt[0]) - i_xt) < 0.02 and float(plane.i_xt_se[0]) < 0.01
    assert abs(float(plane.i_ty[0]) - i_ty) < 0.02
    if w == 4.0:
        assert abs(i_xt - 0.8113) < 1e-3  # saturated: three inputs merge, I = H(1/4)


def _two_layer_sampler(x, w1, b1, w2, b2, sigma):
    def sample_s(key):
        s1 = jnp.tanh(w1 * x + b1)[:, None]
        return s1, jnp.tanh(w2 * (s1 + sigma * jax.random.normal(key, s1.shape)) + b2)

    return sample_s


def test_two_layers_deeper_conditional_term_matches_quadrature():
    """Layer 2's h(T|X) comes from n_c noisy passes per input; 1024 inputs = 256 copies of each value
    (I(index; T) = I(value; T)). Tolerance 0.02 bits + 3 stderr: the n_c-centre conditional mixtures
    bias I up by ~0.005 bits at n_c = 256."""
    w1, b1, w2, b2, sigma = 1.0, 0.0, 2.0, 0.0, 0.2
    x = jnp.asarray(np.repeat(X4, 256))
    y = np.repeat(Y4, 256)
    plane = noisy.info_plane(
        _two_layer_sampler(x, w1, b1, w2, b2, sigma), y, sigma, jax.random.key(1), n_c=256, n_mc=8, n_mc_cond=1
    )
    i_xt2, i_ty2 = exact_two_layer(w1, b1, w2, b2, sigma)
    i_xt1, i_ty1 = exact_single(w1, b1, sigma)
    se_xt, se_ty = np.asarray(plane.i_xt_se), np.asarray(plane.i_ty_se)
    assert abs(float(plane.i_xt[0]) - i_xt1) < 0.02 + 3 * se_xt[0]
    assert abs(float(plane.i_xt[1]) - i_xt2) < 0.02 + 3 * se_xt[1]
    assert abs(float(plane.i_ty[1]) - i_ty2) < 0.02 + 3 * se_ty[1]
    assert float(plane.i_xt[1]) < float(plane.i_xt[0])  # data processing through the noisy layer
    assert np.all(se_xt > 0) and np.all(se_xt < 0.02)


def test_vmaps_over_epochs():
    x = jnp.asarray(np.repeat(X4, 8))
    y = np.repeat(Y4, 8)

    def plane(w, key):
        return noisy.info_plane(_two_layer_sampler(x, w, 0.0, 1.0, 0.0, 0.3), y, 0.3, key, n_c=8)

    out = jax.jit(jax.vmap(plane))(jnp.array([0.5, 2.0]), jax.random.split(jax.random.key(2), 2))
    assert out.i_xt.shape == out.i_ty_se.shape == (2, 2)
    assert np.all(np.isfinite(np.asarray(out.i_xt))) and np.all(np.asarray(out.i_xt_se) > 0)
    for e, w in enumerate((0.5, 2.0)):
        assert abs(float(out.i_xt[e, 0]) - exact_single(w, 0.0, 0.3)[0]) < 4 * float(out.i_xt_se[e, 0])


def test_first_layer_estimated_when_not_flagged_exact():
    """S_1 is deterministic, so the n_c centres of each input coincide and the estimated conditional
    term is a Monte Carlo estimate of the closed form h(Z)."""
    x = jnp.asarray(X4)
    sample_s = lambda k: (jnp.tanh(x)[:, None],)
    loose = noisy.info_plane(sample_s, Y4, 0.3, jax.random.key(3), n_c=4, n_mc=2048, first_layer_exact=False)
    exact = noisy.info_plane(sample_s, Y4, 0.3, jax.random.key(3), n_c=4, n_mc=2048)
    assert float(loose.i_xt_se[0]) > float(exact.i_xt_se[0])
    assert abs(float(loose.i_xt[0]) - float(exact.i_xt[0])) < 4 * float(loose.i_xt_se[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sigma=0.0), "sigma"),
        (dict(n_c=0), "n_c"),
        (dict(n_mc=0), "n_mc"),
        (dict(n_mc_cond=0), "n_mc_cond"),
        (dict(y=np.zeros(3, np.int32)), "y"),
        (dict(y=np.array([0.5, 1, 0, 1])), "y"),
        (dict(base=-2), "base"),
        (dict(sample_s=None), "sample_s"),
        (dict(block_size=0), "block_size"),
    ],
)
def test_bad_input_raises(kwargs, match):
    x = jnp.asarray(X4)
    args = dict(sample_s=lambda k: (jnp.tanh(x)[:, None],), y=Y4, sigma=0.1, key=jax.random.key(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        noisy.info_plane(args.pop("sample_s"), args.pop("y"), args.pop("sigma"), args.pop("key"), **args)


def test_nan_activations_raise():
    with pytest.raises(ValueError, match="sample_s"):
        noisy.info_plane(lambda k: (jnp.full((4, 1), jnp.nan),), Y4, 0.1, jax.random.key(0))
