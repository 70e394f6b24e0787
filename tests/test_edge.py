import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from ibjax.estimators import edge

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="module")
def gauss(data_dir):
    return np.load(data_dir / "reference" / "gauss_rho0.5_n2000.npy")


@pytest.fixture(scope="module")
def var_u_inputs(data_dir):
    return scipy.io.loadmat(data_dir / "var_u.mat")["F"].astype(np.float32)


def test_gaussian_pair_matches_original_defaults(gauss, reference):
    """EDGE 4.4.1 defaults (floor hashing in 1-D); the original's bandwidth uses 500 random points,
    ours 512 evenly spaced ranks: 3% covers that (its spread over seeds is ~1.5%)."""
    i = float(edge.mi(gauss[:, 0], gauss[:, 1]))
    assert i == pytest.approx(reference["edge"]["gauss_rho0.5_defaults"], rel=0.03)


def test_identity_on_all_12_bit_patterns_gives_12_bits(var_u_inputs):
    """x = y = the 4096 distinct 12-bit inputs (p-stable hashing, d > 6): I(X;X) = 12 bits."""
    assert var_u_inputs.shape == (4096, 12) and len(np.unique(var_u_inputs, axis=0)) == 4096
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 12 bits is far from U = 20: no warning
        i = float(edge.mi(var_u_inputs, var_u_inputs, U=20.0))
    assert i == pytest.approx(12.0, rel=0.05)


@pytest.mark.parametrize("n", [4096, 65536])
def test_identity_on_iid_random_bits(n):
    """n iid draws of 12 fair bits, U = 20: the estimate is the sample's plug-in entropy, which is
    within 5% of 12 bits once the sample holds almost every pattern (n = 65,536: 11.95 bits). At
    n = 4096 only ~2,600 patterns occur (plug-in ~11.18, the original EDGE gives the same)."""
    b = np.random.default_rng(n).integers(0, 2, (n, 12)).astype(np.float32)
    _, counts = np.unique(b, axis=0, return_counts=True)
    p = counts / counts.sum()
    plugin = float(-(p * np.log2(p)).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # far from U = 20: no warning
        i = float(edge.mi(b, b, U=20.0))
    assert i == pytest.approx(plugin, rel=0.01)
    if n == 65536:
        assert i == pytest.approx(12.0, rel=0.05)


@pytest.mark.parametrize("d", [1, 2])
def test_independent_inputs_give_almost_nothing(d):
    """Floor hashing (d <= 6). With d >= 3 the original EDGE defaults are biased far upwards on
    independent continuous data (e.g. ~9 bits at d = 10, in the original as here)."""
    rng = np.random.default_rng(d)
    i = float(edge.mi(rng.normal(size=(4096, d)), rng.uniform(size=(4096, d))))
    assert 0.0 <= i < 0.05


@pytest.mark.parametrize("kind", ["gaussian_layer", "random_bits"])
def test_layer_independent_of_labels_gives_almost_nothing(kind):
    """The I(T;Y) use: a 10-d layer (p-stable hashing) or 12 random bits, labels drawn independently."""
    rng = np.random.default_rng(7)
    t = rng.normal(size=(4096, 10)) if kind == "gaussian_layer" else rng.integers(0, 2, (4096, 12)).astype(float)
    i = float(edge.mi(t, rng.integers(0, 2, 4096).astype(np.float32)))
    assert 0.0 <= i < 0.05


def test_increases_with_dependence():
    rng = np.random.default_rng(3)
    x, z = rng.normal(size=(2000,)), rng.normal(size=(2000,))
    i_R = [float(edge.mi(x, r * x + math.sqrt(1 - r * r) * z)) for r in (0.2, 0.6, 0.9)]
    assert i_R[0] < i_R[1] < i_R[2]


def test_warns_near_u(var_u_inputs):
    with pytest.warns(UserWarning, match="within 5% of U"):
        i = float(edge.mi(var_u_inputs, var_u_inputs, U=10.0))
    assert i <= 10.0


def test_vmaps_over_epochs_and_layers_and_matches_single_calls(gauss):
    x_N = jnp.asarray(gauss[:512, 0])
    noise_ExLxN = jax.random.normal(jax.random.key(0), (2, 3, 512))
    scale_L = jnp.array([0.1, 1.0, 3.0])
    y_ExLxN = x_N[None, None, :] + scale_L[None, :, None] * noise_ExLxN
    mi_ExL = jax.jit(jax.vmap(jax.vmap(lambda y: edge.mi(x_N, y))))(y_ExLxN)
    assert mi_ExL.shape == (2, 3)
    np.testing.assert_allclose(mi_ExL[1, 2], edge.mi(x_N, y_ExLxN[1, 2]), rtol=1e-5)
    assert np.all(np.diff(np.asarray(mi_ExL), axis=1) < 0)  # more noise, less information


def test_base_mean_ensemble_and_manual_epsilon(gauss):
    x, y = gauss[:, 0], gauss[:, 1]
    bits = float(edge.mi(x, y))
    assert float(edge.mi(x, y, base=math.e)) == pytest.approx(bits * math.log(2), rel=1e-6)
    assert float(edge.mi(x, y, ensemble="mean")) == pytest.approx(bits, rel=0.1)
    assert 0.0 < float(edge.mi(x, y, epsilon=(0.05, 0.05))) < 2.0


def test_knn_distance_matches_brute_force():
    v = np.random.default_rng(4).normal(size=300).astype(np.float32)
    v[::7] = v[0]  # ties
    k = 17
    brute = np.mean([np.sort(np.abs(v - q))[k - 1] for q in v])
    np.testing.assert_allclose(edge.knn_distance_1d(jnp.asarray(v), k, n_query=300), brute, rtol=1e-5)


@pytest.mark.parametrize("scale", [1, 10**6])  # small grid: exact radix code; huge grid: hash
def test_cell_codes_group_rows_like_numpy_unique(scale):
    c = np.random.default_rng(5).integers(-3, 4, (2000, 5)) * scale
    code = np.asarray(edge.cell_code(jnp.asarray(c, jnp.int32)))
    _, group = np.unique(c, axis=0, return_inverse=True)
    n_pairs = len(np.unique(np.stack([group.ravel(), code.astype(np.int64)], axis=1), axis=0))
    assert len(np.unique(group)) == len(np.unique(code)) == n_pairs  # the same partition of the rows


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(U=0.0), "U"),
        (dict(U=-1.0), "U"),
        (dict(y=np.zeros(99)), "x and y"),
        (dict(x=np.full(100, np.nan)), "x"),
        (dict(x=np.zeros((100, 2, 2))), "x"),
        (dict(x=np.zeros((0,)), y=np.zeros((0,))), "x"),
        (dict(L=0), "L"),
        (dict(gamma=(1.0, 0.0)), "gamma"),
        (dict(epsilon=(-1.0, 1.0)), "epsilon"),
        (dict(ensemble="optimal_weights"), "ensemble"),
        (dict(hashing="tsne"), "hashing"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(x=np.zeros(100), y=np.zeros(100))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        edge.mi(args.pop("x"), args.pop("y"), **args)


def test_key_average_spread_shrinks_as_one_over_sqrt_k():
    """mi_keys over K = 4 projection keys, for 20 base keys: each mean is the mean of the 4 single-key
    values, and the spread of the 20 means is the single-key spread / sqrt(4) (measured ratio 2.0;
    with 20 draws a standard deviation is uncertain by ~16%, so 1.5..2.8 is accepted), as is the
    mean reported standard error (measured 2.4)."""
    rng = np.random.default_rng(21)
    t = rng.normal(size=(1024, 10)).astype(np.float32)
    y = ((t[:, 0] + rng.normal(size=1024)) > 0).astype(np.float32)  # a 10-d layer, dependent labels
    base_B = jax.random.split(jax.random.key(5), 20)
    mean_B, se_B = jax.jit(jax.vmap(lambda b: edge.mi_keys(t, y, key=b, n_keys=4)))(base_B)
    single_BxK = jax.jit(jax.vmap(jax.vmap(lambda k: edge.mi(t, y, key=k))))(
        jax.vmap(lambda b: jax.random.split(b, 4))(base_B)
    )
    np.testing.assert_allclose(mean_B, np.mean(single_BxK, axis=1), rtol=1e-5)
    sd_single = np.std(np.asarray(single_BxK)[:, 0], ddof=1)
    assert 1.5 < sd_single / np.std(np.asarray(mean_B), ddof=1) < 2.8
    assert 1.5 < sd_single / np.mean(np.asarray(se_B)) < 2.8
    with pytest.raises(ValueError, match="n_keys"):
        edge.mi_keys(t, y, key=base_B[0], n_keys=1)


# ---------------------------------------------------------------- EDGE 4.2.0 against the unmodified original


@pytest.fixture(scope="module")
def edge420(data_dir):
    """tests/data/edge420: the original's values over 20 projection seeds and the inputs they were made on."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("edge420_inputs", data_dir / "edge420" / "make_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, mod.inputs(), json.loads((data_dir / "edge420" / "values.json").read_text())


def _ours_over_keys(inputs, case, version, n=20):
    a, b, kw = case
    eps = kw.get("epsilon")
    f = lambda k: edge.mi(
        inputs[a],
        inputs[b],
        U=kw["U"],
        L=kw["L_ensemble"],
        gamma=tuple(kw["gamma"]),
        epsilon=None if eps is None else tuple(eps),
        version=version,
        key=k,
    )
    return np.asarray(jax.jit(jax.vmap(f))(jax.random.split(jax.random.key(42), n)), np.float64)


@pytest.mark.parametrize("name", ["xt_layer1", "xt_layer2", "ty_layer1", "ty_layer2"])
def test_v420_equals_the_original_in_distribution_over_20_keys(edge420, name):
    """The study's two calls (I(X;T): U 20, gamma [0.2, g]; I(T;Y) = EDGE(Y, T): U 10, gamma [1e-4, g],
    epsilon 0.2) on 1000 MNIST images through a random 784-1024-20 tanh net: the mean over 20 keys is within
    3 standard errors of the original's mean over 20 seeds (measured: 0.1-1.0), and the spreads agree within
    a factor 2 (measured ratios 0.74-1.05). Values 3.2-9.5 bits, below the 9.97-bit ceiling log2 1000."""
    mod, inputs, ref = edge420
    ours, orig = _ours_over_keys(inputs, mod.CASES[name], "4.2.0"), np.asarray(ref["values"][name])
    se = np.sqrt(ours.var(ddof=1) / len(ours) + orig.var(ddof=1) / len(orig))
    assert abs(ours.mean() - orig.mean()) < 3 * se, (ours.mean(), orig.mean(), se)
    assert 0.5 < ours.std(ddof=1) / orig.std(ddof=1) < 2.0
    assert orig.mean() < np.log2(ref["n"]) - 0.3  # the original is off the ceiling too


def test_v441_constants_would_fail_the_v420_reference(edge420):
    """The test has power: 4.4.1's bandwidth (0.4 factors, c = 18 d' / (1 + ln d)) puts I(X;T) of the
    20-unit layer at the ceiling log2 1000 = 9.97 bits, 2 bits and > 20 standard errors above the original 4.2.0."""
    mod, inputs, ref = edge420
    v441 = _ours_over_keys(inputs, mod.CASES["xt_layer2"], "4.4.1", n=4)
    assert v441.mean() > np.mean(ref["values"]["xt_layer2"]) + 1.5 and v441.mean() > np.log2(1000) - 0.05


def test_v420_constants_and_choices():
    """4.2.0: bandwidth gamma * 3 d' * epsilon (no 0.4), p-stable hashing in 1-D too; a bad version is named."""
    a = jnp.ones((50, 4))
    np.testing.assert_allclose(edge._bandwidth(a, 4, 0.5, 0.2, "4.2.0"), np.full(4, 0.2 * 3 * 4 * 0.5), rtol=1e-6)
    np.testing.assert_allclose(
        edge._bandwidth(a, 4, 0.5, 0.2, "4.4.1"), np.full(4, 0.2 * 15 * 4 / (1 + math.log(4)) * 0.4 * 0.5), rtol=1e-6
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=500), rng.normal(size=500)
    auto = float(edge.mi(x, y, version="4.2.0", key=jax.random.key(3)))
    assert auto == float(edge.mi(x, y, version="4.2.0", hashing="p-stable", key=jax.random.key(3)))
    assert auto != float(edge.mi(x, y, version="4.2.0", hashing="floor"))
    with pytest.raises(ValueError, match="version"):
        edge.mi(x, y, version="4.3")


def test_registry_variant_420_fills_in_the_study_settings():
    from ibjax import registry

    ctx = registry.Context(100, 10)
    s = registry.resolve("edge", {"variant": "4.2.0", "gamma_t_xt": 1.2}, ctx)
    assert (s["U"], s["U_ty"], s["gamma_x"], s["gamma_y"], s["epsilon_ty"], s["gamma_t_xt"]) == (
        20.0,
        10.0,
        0.2,
        1e-4,
        0.2,
        1.2,
    )
    assert registry.resolve("edge", {"variant": "4.2.0", "U": 30.0}, ctx)["U"] == 30.0  # given: kept
    d = registry.resolve("edge", {"U": 15.0}, ctx)  # 4.4.1: as before, one U for both terms, k-NN bandwidths
    assert (d["U_ty"], d["gamma_x"], d["epsilon_ty"]) == (15.0, 1.0, None)
    with pytest.raises(ValueError, match=r"estimator option variant must be one of \['4.4.1', '4.2.0'\], got '4.3'"):
        registry.resolve("edge", {"variant": "4.3"}, ctx)
