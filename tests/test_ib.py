"""The IB curve against cases with known curves, a float64 numpy reference, and the consistency gap."""

import numpy as np
import pytest
from scipy.optimize import brentq

from ibjax import data, ib


def _h(q):
    q = np.clip(q, 1e-300, 1)
    return float(-(q * np.log2(q)).sum())


def _hb(q):
    return _h(np.array([q, 1 - q]))


def _bsc_curve(r, p):
    """Closed-form IB curve of the doubly symmetric binary source (Mrs. Gerber's lemma):
    I(T;Y) = 1 - h(p * h^-1(1 - r)), where a * b = a (1 - b) + b (1 - a)."""
    v = 1 - r
    q = 0.0 if v <= 1e-12 else 0.5 if v >= 1 - 1e-12 else brentq(lambda q: _hb(q) - v, 1e-15, 0.5, xtol=1e-15)
    return 1 - _hb(p * (1 - q) + q * (1 - p))


def test_binary_symmetric_channel_matches_its_closed_form():
    p = 0.1
    c = ib.curve([0.5, 0.5], [[1 - p, p], [p, 1 - p]], np.geomspace(1.0, 12.0, 24), n_clusters=2, n_iter=2000)
    assert c.caveat == "" and c.h_y == pytest.approx(1.0)
    assert c.i_xy == pytest.approx(1 - _hb(p), abs=1e-6)
    # below the critical beta 1 / (1 - 2p)^2 = 1.5625 the solution is trivial, above it on the curve
    assert np.all(c.i_xt_B[c.beta_B < 1.5] < 1e-4)
    on = c.i_xt_B > 0.05
    assert on.sum() >= 15
    err = [abs(ty - _bsc_curve(xt, p)) for xt, ty in zip(c.i_xt_B[on], c.i_ty_B[on])]
    assert max(err) < 1e-4, max(err)
    assert abs(c.at(0.6) - _bsc_curve(0.6, p)) < 2e-3  # the envelope interpolates between found points
    assert abs(c.xt_needed(_bsc_curve(0.6, p)) - 0.6) < 1e-2 and c.xt_needed(0.6) == np.inf  # above I(X;Y)
    assert abs(c.excess(0.9, _bsc_curve(0.6, p)) - 0.3) < 1e-2


def test_deterministic_labels_give_the_corner_and_the_caveat():
    p_yx = np.eye(2)[np.array([0, 1, 1, 0, 1, 0, 0, 1])]
    c = ib.curve(np.full(8, 1 / 8), p_yx, np.geomspace(0.5, 50, 16), n_clusters=4)
    assert ib.deterministic(p_yx) and c.caveat.startswith("Y is a deterministic function of X")
    assert c.h_y == pytest.approx(1.0) and c.i_xy == pytest.approx(1.0, abs=1e-6)
    assert np.all(c.i_ty_B <= np.minimum(c.i_xt_B, c.h_y) + 1e-5)
    top = c.beta_B > 2
    np.testing.assert_allclose(c.i_xt_B[top], 1.0, atol=1e-3)  # T = Y: the corner's end
    np.testing.assert_allclose(c.i_ty_B[top], 1.0, atol=1e-3)
    for r in (0.0, 0.3, 0.7, 1.0, 2.5):
        assert c.at(r) == pytest.approx(min(r, 1.0), abs=1e-3)


def _numpy_ib(log_enc, p_x, p_yx, beta, n_iter):
    """Float64 reference of the iterative IB algorithm (same equations, written independently)."""
    enc = np.exp(log_enc.astype(np.float64))
    for _ in range(n_iter):
        p_t = p_x @ enc
        p_y_t = (enc * p_x[:, None]).T @ p_yx / p_t[:, None]
        kl = np.array(
            [[np.sum(p_yx[x] * np.log(p_yx[x] / p_y_t[t])) for t in range(enc.shape[1])] for x in range(len(p_x))]
        )
        logits = np.log(p_t)[None] - beta * kl
        enc = np.exp(logits - logits.max(1, keepdims=True))
        enc /= enc.sum(1, keepdims=True)
    p_t = p_x @ enc
    p_ty = (enc * p_x[:, None]).T @ p_yx
    p_y = p_x @ p_yx
    i_xt = np.sum(p_x[:, None] * enc * np.log(enc / p_t[None]))
    i_ty = np.sum(p_ty * np.log(p_ty / (p_t[:, None] * p_y[None])))
    return i_xt / np.log(2), i_ty / np.log(2)


def test_small_random_joint_matches_a_float64_reference():
    import jax.numpy as jnp

    rng = np.random.default_rng(3)
    p_x = rng.dirichlet(np.ones(6))
    p_yx = rng.dirichlet(np.ones(3), size=6)
    log_enc = np.log(rng.dirichlet(np.ones(4), size=6))
    for beta in (2.0, 5.0, 20.0):
        le = ib.iterate(
            jnp.asarray(log_enc, jnp.float32),
            jnp.asarray(p_x, jnp.float32),
            jnp.asarray(p_yx, jnp.float32),
            beta,
            n_iter=300,
        )
        got = ib.informations(jnp.exp(le), jnp.asarray(p_x, jnp.float32), jnp.asarray(p_yx, jnp.float32))
        want = _numpy_ib(log_enc, p_x, p_yx, beta, 300)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, atol=1e-5)


def test_consistency_gap_is_zero_at_the_ib_solution_and_large_for_a_random_encoder():
    rng = np.random.default_rng(0)
    p_x = np.full(8, 1 / 8)
    p_yx = rng.dirichlet(np.ones(2) * 0.7, size=8)
    betas = np.geomspace(1, 30, 24)
    c = ib.curve(p_x, p_yx, betas, n_clusters=8, n_iter=3000, merge=False)
    k = int(np.argmin(np.abs(betas - 8.0)))
    gaps = np.asarray(
        ib.consistency_gap(
            c.encoder_BxXxT[k].astype(np.float32),
            p_x.astype(np.float32),
            p_yx.astype(np.float32),
            betas.astype(np.float32),
        )
    )
    assert gaps[k] < 1e-4 and gaps.argmin() == k  # the fixed point at its own beta
    rand = rng.dirichlet(np.ones(8), size=8)
    g_rand = np.asarray(
        ib.consistency_gap(
            rand.astype(np.float32), p_x.astype(np.float32), p_yx.astype(np.float32), betas.astype(np.float32)
        )
    )
    assert g_rand.min() > 0.05


def test_hard_encoder_plane_and_gap_match_the_dense_forms():
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    n = 16
    p_x = np.full(n, 1 / n)
    p_yx = rng.dirichlet(np.ones(2), size=4)[rng.integers(0, 4, n)]  # 4 distinct label distributions
    codes = rng.integers(0, 3, size=(n, 2))
    ids = np.asarray(ib.symbol_ids(jnp.asarray(codes, jnp.int32)))
    assert len(np.unique(ids)) == len({tuple(c) for c in codes})
    assert all((ids[i] == ids[j]) == (tuple(codes[i]) == tuple(codes[j])) for i in range(n) for j in range(n))
    onehot = np.eye(n)[ids]
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    np.testing.assert_allclose(
        ib.hard_plane(jnp.asarray(ids), f32(p_x), f32(p_yx)),
        ib.informations(f32(onehot), f32(p_x), f32(p_yx)),
        atol=1e-6,
    )
    _, rows, level = ib.merge_rows(p_x, p_yx)
    betas = f32([0.5, 3.0, 30.0])
    np.testing.assert_allclose(
        ib.hard_consistency_gap(jnp.asarray(ids), f32(p_x), f32(p_yx), jnp.asarray(level), f32(rows), betas),
        ib.consistency_gap(f32(onehot), f32(p_x), f32(p_yx), betas),
        atol=1e-5,
    )


def test_upper_hull_is_concave_and_covers_the_points():
    x, y = np.array([0, 1, 2, 3, 1.5]), np.array([0, 0.8, 1.0, 1.0, 0.5])
    hx, hy = ib.upper_hull(x, y)
    np.testing.assert_allclose(hx, [0, 1, 2, 3])
    np.testing.assert_allclose(hy, [0, 0.8, 1.0, 1.0])


def test_bad_joint_is_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        ib.curve([0.5, 0.6], [[1, 0], [0, 1]], [1.0])
    with pytest.raises(ValueError, match="betas"):
        ib.curve([0.5, 0.5], [[1, 0], [0, 1]], [0.0])
    with pytest.raises(ValueError, match="shapes"):
        ib.curve([1.0], [[1, 0], [0, 1]], [1.0])


def test_stochastic_12bit_task_and_its_mutual_information():
    ds = data.stochastic_12bit()
    p1 = ds.meta["p_y1_given_x"]
    assert ds.x.shape == (4096, 12) and ds.meta["gamma"] == 1.0
    h_y = _h(np.array([1 - p1.mean(), p1.mean()]))
    h_yx = np.mean([_hb(q) for q in p1])
    assert ds.meta["i_xy_bits"] == pytest.approx(h_y - h_yx, abs=1e-9)
    assert ds.meta["i_xy_bits"] == pytest.approx(0.563, abs=1e-3) and ds.meta["h_y_bits"] > 0.99
    assert abs(ds.y.mean() - p1.mean()) < 0.02  # labels drawn from p(y|x)
    np.testing.assert_array_equal(ds.y, data.stochastic_12bit().y)  # drawn once: deterministic
    assert len(np.unique(np.round(p1, 9))) == 37
    with pytest.raises(ValueError, match="gamma"):
        data.stochastic_12bit(gamma=0)


def test_curve_of_the_4096_input_task_in_one_call():
    ds = data.stochastic_12bit()
    p1 = ds.meta["p_y1_given_x"]
    c = ib.curve(np.full(4096, 1 / 4096), np.stack([1 - p1, p1], 1), np.geomspace(1, 200, 64), n_iter=300)
    assert c.caveat == "" and c.encoder_BxXxT.shape[:2] == (64, 4096)
    assert c.i_ty_B.max() == pytest.approx(ds.meta["i_xy_bits"], abs=5e-3)
    assert np.all(np.diff(c.hull_ty) >= -1e-12) and np.all(c.i_ty_B <= c.at(c.i_xt_B) + 1e-6)
