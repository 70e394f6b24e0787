"""Matrix-based Rényi entropy: a direct numpy implementation, closed forms, properties, batching,
the subset path, the registry entry and the shuffled-label baseline."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import baseline, pipeline
from ibjax.estimators import renyi

jax.config.update("jax_numpy_rank_promotion", "raise")
N = 120


def _np_entropy(a, alpha):
    lam = np.clip(np.linalg.eigvalsh(a), 0.0, None)
    lam = lam / lam.sum()
    lam = lam[lam > 0]
    return -np.sum(lam * np.log2(lam)) if alpha == 1.0 else np.log2(np.sum(lam**alpha)) / (1.0 - alpha)


def _np_gram(a, sigma):
    d2 = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2)) / len(a)


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3))
    t = np.tanh(x @ rng.normal(size=(3, 4))) + 0.1 * rng.normal(size=(N, 4))
    y = (x[:, 0] + 0.5 * rng.normal(size=N) > 0).astype(np.int32) + (x[:, 1] > 1).astype(np.int32)
    return x.astype(np.float32), t.astype(np.float32), y


# float32 eigenvalues: entropies within 1e-5 relative at alpha >= 1 (measured 7e-6). I(T;Y) = 0.64
# bits is a difference of ~4-bit entropies, so its absolute error is that of the entropies: 1e-4
# bits (measured 4e-5). alpha < 1 magnifies the solver's rounding of small eigenvalues (thresholded
# at 4 eps lambda_max): 2e-3 bits (measured up to 1.3e-3).
@pytest.mark.parametrize(
    "alpha, rtol, atol", [(1.01, 1e-5, 1e-4), (2.0, 1e-5, 1e-4), (1.0, 1e-5, 1e-4), (0.5, 0.0, 2e-3)]
)
def test_matches_numpy(layer, alpha, rtol, atol):
    x, t, y = (np.asarray(a, np.float64) for a in layer)
    a_x, a_t = _np_gram(x, 0.9), _np_gram(t, 0.5)
    joint = a_x * a_t / np.trace(a_x * a_t)
    s_x, s_t = _np_entropy(a_x, alpha), _np_entropy(a_t, alpha)
    expected = s_x + s_t - _np_entropy(joint, alpha)
    assert float(renyi.entropy(t, alpha=alpha, sigma=0.5)) == pytest.approx(
        s_t, rel=rtol, abs=atol if rtol == 0 else None
    )
    assert float(renyi.mi(x, t, alpha=alpha, sigma_x=0.9, sigma_y=0.5)) == pytest.approx(
        expected, rel=rtol, abs=atol if rtol == 0 else None
    )
    # Silverman's rule for d = 4 by hand, and the labels' delta kernel
    sigma = (4 / 6) ** (1 / 8) * N ** (-1 / 8) * math.sqrt(t.var(0).sum())
    a_y = (y[:, None] == y[None, :]) / len(y)
    i_ty = s_t_rule = _np_entropy(_np_gram(t, sigma), alpha)
    i_ty += _np_entropy(a_y, alpha) - _np_entropy(len(y) * _np_gram(t, sigma) * a_y, alpha)
    assert float(renyi.entropy(t, alpha=alpha)) == pytest.approx(s_t_rule, rel=rtol, abs=atol if rtol == 0 else None)
    assert float(renyi.info_plane(t, x, y, alpha=alpha)[1]) == pytest.approx(i_ty, abs=atol)


def test_labels_closed_form_and_i_yy_equals_s_y():
    """Delta kernel: S_alpha(Y) is the Rényi entropy of the class frequencies (here 1/2, 1/4, 1/4),
    and A_Y o A_Y normalised is A_Y, so I(Y;Y) = S(Y) exactly."""
    y = np.repeat([0, 1, 2], [200, 100, 100])
    p = np.array([0.5, 0.25, 0.25])
    for alpha in (1.01, 2.0):
        assert float(renyi.label_entropy(y, alpha=alpha)) == pytest.approx(
            np.log2(np.sum(p**alpha)) / (1 - alpha), rel=1e-5
        )
    a_y = renyi.label_gram(jnp.asarray(y))
    np.testing.assert_allclose(renyi.hadamard(a_y, a_y), a_y, rtol=1e-6)
    assert float(renyi.matrix_entropy(a_y, 1.0)) == pytest.approx(1.5, rel=1e-5)


def test_properties(layer):
    x, t, _ = layer
    n = len(t)
    # range: 0 <= S <= log2 N; tiny width -> A = I / N -> log2 N (and I(X;X) = S(X)); huge width -> 0
    s = float(renyi.entropy(t))
    assert 0.0 < s < math.log2(n)
    assert float(renyi.entropy(t, sigma=1e-3)) == pytest.approx(math.log2(n), rel=1e-5)
    assert float(renyi.mi(t, t, sigma_x=1e-3, sigma_y=1e-3)) == pytest.approx(math.log2(n), rel=1e-5)
    assert abs(float(renyi.entropy(t, sigma=1e4))) < 1e-3
    # symmetry and permutation invariance (same widths on both sides)
    i_xt = float(renyi.mi(x, t))
    assert float(renyi.mi(t, x)) == pytest.approx(i_xt, rel=1e-5)
    perm = np.random.default_rng(1).permutation(n)
    assert float(renyi.mi(x[perm], t[perm])) == pytest.approx(i_xt, rel=1e-5)
    # I <= S(T); I(X;X) with a Gaussian kernel is below S(X) (module docstring)
    assert 0.0 < i_xt < s
    assert float(renyi.mi(x, x)) < float(renyi.entropy(x))
    # independence: about 0 once the kernels are wide against the sample spacing (N = 120, 3-d vs
    # 4-d Gaussians, 4 x Silverman: 0.065 bits, vs 0.19 for a dependent pair). At 1 x Silverman the
    # same independent pair gives 3.3 bits: narrow kernels push every S towards log2 N, and I with them.
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(N, 3)).astype(np.float32), rng.normal(size=(N, 4)).astype(np.float32)
    assert 0.0 <= float(renyi.mi(a, b, gamma=4.0)) < 0.1
    assert float(renyi.mi(a, np.concatenate([a[:, :1] + 0.3 * b[:, :1], b[:, 1:]], 1), gamma=4.0)) > 0.15
    # knn width: the mean distance to the k-th neighbour, by hand
    d = np.sqrt(((t[:, None] - t[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    kth = np.sort(d, axis=1)[:, 4].mean()
    assert float(renyi.entropy(t, width="knn", k=5)) == pytest.approx(float(renyi.entropy(t, sigma=kth)), rel=1e-4)


def test_vmap_padding_tensor_kernel_and_subsets(layer):
    x, t, y = layer
    t2 = np.stack([t, 2 * t])  # two "epochs" of a 4-wide layer, padded to 6 columns with d = 4
    padded = np.concatenate([t2, np.zeros((2, N, 2), np.float32)], axis=-1)
    got = jax.vmap(lambda tt: renyi.info_plane_bits(tt, x, y, 1.01, 1.0, 4, width="silverman", k=10))(padded)
    for e in range(2):
        np.testing.assert_allclose([g[e] for g in got], renyi.info_plane(t2[e], x, y), atol=5e-5)
    # a feature map (N, 2, 2, 1) is measured on its flattened entries (the tensor kernel)
    np.testing.assert_allclose(renyi.entropy(t.reshape(N, 2, 2, 1)), renyi.entropy(t), rtol=1e-6)
    # subsets of all rows are permutations: the full value, standard error ~0
    full = renyi.info_plane(t, x, y)
    i_xt, i_xt_se, i_ty, i_ty_se = renyi.info_plane_subsets(t, x, y, jax.random.key(0), subset=N, n_subsets=3)
    np.testing.assert_allclose([i_xt, i_ty], full, atol=5e-5)
    assert float(i_xt_se) < 1e-4 and float(i_ty_se) < 1e-4
    # real subsets: mean and standard error of the per-subset values
    key = jax.random.key(3)
    idx = np.asarray(renyi.subset_indices(key, N, 60, 4))
    assert all(len(set(r)) == 60 for r in idx)
    each = np.array([renyi.info_plane(t[r], x[r], y[r]) for r in idx])
    got = renyi.info_plane_subsets(t, x, y, key, subset=60, n_subsets=4)
    np.testing.assert_allclose(got[0::2], each.mean(0), atol=5e-5)
    np.testing.assert_allclose(got[1::2], each.std(0, ddof=1) / 2, rtol=1e-2, atol=5e-5)


def test_registry_entry_sweeps_alpha_in_one_call_and_shuffled_labels_floor():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(128, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    w_SxExDxH = rng.normal(size=(1, 2, 5, 3)).astype(np.float32)
    apply = lambda p, xx: (None, (jnp.tanh(xx @ p["w"]),))
    plane = pipeline.evaluate_arrays(
        apply,
        {"w": w_SxExDxH},
        [0, 1],
        x,
        y,
        "renyi",
        {"subset": 0},
        sweep={"alpha": [1.01, 2.0]},
        progress=False,
        log=lambda *_: None,
    )
    for g, alpha in enumerate((1.01, 2.0)):
        for e in range(2):
            t = np.tanh(x @ w_SxExDxH[0, e])
            want = renyi.info_plane(t, x, y, alpha=alpha)
            np.testing.assert_allclose(
                [plane.values["i_xt"][g, 0, e, 0], plane.values["i_ty"][g, 0, e, 0]], want, atol=5e-5
            )
    assert np.all(plane.values["i_xt_se"] == 0)
    # shuffled labels: the I(T;Y) floor matches direct calls; at N = 128 it is a third of the real
    # I(T;Y) (measured 0.145 vs 0.453 bits), the bias this baseline exists to show
    t = np.tanh(x @ w_SxExDxH[0, 1])
    mean, se = baseline.registry_floor(
        "renyi", jnp.asarray(t), jnp.asarray(x), y, jax.random.key(0), n_perm=4, options={"subset": 0}
    )
    perm_key, _ = jax.random.split(jax.random.key(0))
    y_P = np.asarray(baseline.permuted_labels(jnp.asarray(y), perm_key, 4))
    direct = np.array([renyi.info_plane(t, x, yp)[1] for yp in y_P])
    assert float(mean) == pytest.approx(direct.mean(), rel=1e-4)
    assert float(se) == pytest.approx(direct.std(ddof=1) / 2, rel=1e-3)
    assert 0.05 < float(mean) < 0.5 * float(plane.values["i_ty"][0, 0, 1, 0])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda t: renyi.entropy(t, alpha=0.0), "alpha"),
        (lambda t: renyi.entropy(t, width="median"), "width"),
        (lambda t: renyi.entropy(t, k=N), "k"),
        (lambda t: renyi.entropy(t, sigma=-1.0), "sigma"),
        (lambda t: renyi.entropy(t[:, 0]), "t"),
        (lambda t: renyi.mi(t, t[:10]), "x and y"),
        (lambda t: renyi.info_plane(t, t, np.full(N, 0.5)), "y"),
        (lambda t: renyi.info_plane_subsets(t, t, np.zeros(N, int), jax.random.key(0), subset=N + 1), "subset"),
        (lambda t: renyi.entropy(np.full((5, 2), np.nan)), "t"),
    ],
)
def test_bad_input_raises(layer, call, match):
    with pytest.raises(ValueError, match=match):
        call(layer[1])
