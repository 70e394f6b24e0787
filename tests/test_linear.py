"""Closed-form information of linear Gaussian layers against Monte Carlo and KSG; the linear trainer."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from experiments import linear_teacher
from ibjax import linear
from ibjax.estimators import knn


def _mc(a, n_rel, sigma2, n=20000, seed=0):
    """I(X;T) and I(X_rel;T) by Monte Carlo over samples, with scipy's Gaussian densities (bits, se)."""
    rng = np.random.default_rng(seed)
    h, d = a.shape
    x = rng.standard_normal((n, d))
    t = x @ a.T + np.sqrt(sigma2) * rng.standard_normal((n, h))
    p_t = stats.multivariate_normal(np.zeros(h), a @ a.T + sigma2 * np.eye(h))
    a_i = a[:, n_rel:]
    cond_rel = stats.multivariate_normal(np.zeros(h), a_i @ a_i.T + sigma2 * np.eye(h))
    noise = stats.multivariate_normal(np.zeros(h), sigma2 * np.eye(h))
    tot = (noise.logpdf(t - x @ a.T) - p_t.logpdf(t)) / np.log(2)
    rel = (cond_rel.logpdf(t - x[:, :n_rel] @ a[:, :n_rel].T) - p_t.logpdf(t)) / np.log(2)
    return (tot.mean(), tot.std() / np.sqrt(n)), (rel.mean(), rel.std() / np.sqrt(n)), (x, t)


def test_closed_form_matches_monte_carlo_and_ksg():
    a = np.array([[1.0, 0.5, -0.8], [0.2, -1.0, 0.6]])
    total, rel, irr = (float(v) for v in linear.informations(jnp.asarray(a), 1, 0.5))
    assert total == pytest.approx(rel + irr, abs=1e-6)  # chain rule
    (mc_t, se_t), (mc_r, se_r), (x, t) = _mc(a, 1, 0.5)
    assert abs(total - mc_t) < 4 * se_t and abs(rel - mc_r) < 4 * se_r
    i_ksg, se = knn.mi_with_error(
        jnp.asarray(x[:3000], jnp.float32), jnp.asarray(t[:3000], jnp.float32), jax.random.key(0), k=3
    )
    assert abs(float(i_ksg) - total) < max(4 * float(se), 0.05)  # KSG on 5 joint dims: small bias allowed


def test_information_by_hand_and_generalisation_error():
    # one unit, T = 2 x_1 + 0 x_2 + Z, sigma^2 = 1: I = 1/2 log2(1 + 4); all of it relevant
    total, rel, irr = (float(v) for v in linear.informations(jnp.array([[2.0, 0.0]]), 1, 1.0))
    assert total == pytest.approx(0.5 * np.log2(5)) and rel == pytest.approx(total) and irr == pytest.approx(0.0)
    t = linear.Teacher(n_rel=2, n_irr=1, n_out=1, sigma_y=0.3)
    w0 = jnp.array([[1.0, -2.0]])
    ws = [jnp.array([[1.0, 0.0, 0.5]]), jnp.array([[0.5]])]  # end to end [0.5, 0, 0.25]
    want = (0.5 - 1) ** 2 + 2.0**2 + 0.25**2 + 0.09
    assert float(linear.generalisation_error(ws, w0, t)) == pytest.approx(want)
    x, y = linear.sample(jax.random.key(1), w0, t, 200000)
    sampled = float(jnp.mean(jnp.sum((x @ linear.end_to_end(ws)[-1].T - y) ** 2, axis=1)))
    assert sampled == pytest.approx(want, rel=0.02)


def test_one_gradient_step_by_hand():
    su = linear.Setup(
        linear.Teacher(n_rel=2, n_irr=1, n_out=1), hidden=(2,), max_samples=4, learning_rate=0.1, kept_steps=(0, 1)
    )
    out = linear.make_train(su)(jax.random.key(3), 4, 0.5)
    k_teacher, k_data, k_init, _ = jax.random.split(jax.random.key(3), 4)
    w0 = linear.teacher_weights(k_teacher, su.teacher)
    x, y = (np.asarray(v, np.float64) for v in linear.sample(k_data, w0, su.teacher, 4))
    w1, w2 = (np.asarray(w, np.float64) for w in linear.init_student(k_init, (3, 2, 1), 0.5))
    r = x @ (w2 @ w1).T - y  # N x 1; loss = 0.5 mean ||r||^2
    g2, g1 = r.T @ (x @ w1.T) / 4, w2.T @ r.T @ x / 4
    w1, w2 = w1 - 0.1 * g1, w2 - 0.1 * g2
    want = 0.5 * np.linalg.slogdet(np.eye(2) + w1 @ w1.T)[1] / np.log(2)
    assert float(out["i_xt_L"][1, 0]) == pytest.approx(want, rel=1e-5)
    assert float(out["train_error"][1]) == pytest.approx(np.mean(np.sum((x @ (w2 @ w1).T - y) ** 2, 1)), rel=1e-5)


def test_bad_kept_steps():
    with pytest.raises(ValueError, match="kept_steps"):
        linear.make_train(linear.Setup(kept_steps=(5, 3)))


def test_quick_end_to_end(tmp_path):
    out = tmp_path / "lt"
    linear_teacher.main(["--quick", "--out", str(out)])
    saved = json.loads((out / "summary.json").read_text())
    assert len(saved["claims"]) == 4 and all(c["agrees"] is not None or c["reason"] for c in saved["claims"])
    z = np.load(out / "linear.npz")
    assert z["gd_i_xt_L"].shape == (4, 2, len(z["steps_K"]), 2)
    np.testing.assert_allclose(z["gd_i_xt_L"], z["gd_i_rel_L"] + z["gd_i_irr_L"], atol=1e-4)
    assert (out / "dynamics.png").stat().st_size > 0 and (out / "generalisation.png").stat().st_size > 0
