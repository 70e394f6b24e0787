"""experiments.goldfeld --quick end to end, and the padded noisy estimator against exact values."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import goldfeld
from ibjax import noisy
from ibjax.estimators import mixture
from ibjax.result import InfoPlane

X4 = np.array([-3.0, -1.0, 1.0, 3.0], np.float32)


def test_quick_end_to_end(tmp_path):
    out = tmp_path / "goldfeld"
    s = goldfeld.main(["--quick", "--out", str(out), "--set", "mlp.model.widths=12,3,2"])
    for name in ("neuron_mi.png", "neuron_symbols.png", "noisy_mlp.png", "binning_vs_bin_size.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "summary.json").read_text())
    assert saved["claims"] == json.loads(json.dumps(s["claims"])) and len(saved["claims"]) == 4
    # acceptance (2): the engine's estimate within 0.05 bits or 3 SE of the exact value at every kept epoch
    assert saved["claims"][0]["agrees"] is True
    plane = InfoPlane.load(out / "planes" / "neuron" / "infoplane_smoothed.npz")
    assert plane.shape[1:] == (2, 12, 1) and plane.settings["n_mc"] == 1024
    est, se = plane.i_xt[:, :, 0], plane.values["i_xt_se"][0][:, :, 0]
    # the exact curve recomputed from the saved weights: h(mixture of the 4 symbols) - h(Z)
    from ibjax import checkpoints
    runs = [checkpoints.load_run(out / "runs" / "neuron" / f"seed_{k}") for k in range(2)]
    sym = np.stack([np.tanh(r.params["Dense_0"]["kernel"][:, 0, 0, None] * X4 + r.params["Dense_0"]["bias"])
                    for r in runs])
    exact = np.asarray(jax.vmap(jax.vmap(lambda m: mixture.mutual_information(m, 0.1)))(sym))
    err = np.abs(est - exact)
    assert np.all((err < 0.05) | (err < 3 * se)) and np.all(se > 0) and np.all(se < 0.05)
    assert np.all(exact <= 2.0 + 1e-5) and np.all(exact >= 0)  # log2 4 at most; w crossing 0 merges all four
    assert saved["neuron_max_abs_error_bits"] == pytest.approx(err.max(), abs=1e-4)
    # acceptance (3): per-layer peak-to-final change with SEs, with and without the penalty
    change = saved["peak_to_final_change_bits"]
    assert set(change) == {"no penalty", "ortho_penalty=0.01"}
    noisy_plane = InfoPlane.load(out / "planes" / "noisy" / "infoplane_smoothed.npz")
    i_xt = noisy_plane.i_xt  # 2 settings x 2 seeds, E, 2 layers
    assert i_xt.shape[0] == 4 and i_xt.shape[2] == 2
    drop = i_xt.max(1) - i_xt[:, -1]
    for g, name in enumerate(("no penalty", "ortho_penalty=0.01")):
        for l, layer in enumerate(("layer 1", "layer 2")):
            v = change[name][layer]
            assert v["mean"] == pytest.approx(drop[2 * g: 2 * g + 2, l].mean(), abs=1e-4) and v["n_seeds"] == 2
            assert v["se"] == pytest.approx(drop[2 * g: 2 * g + 2, l].std(ddof=1) / np.sqrt(2), abs=1e-4)
    # 3 noisy tanh units of 4096 inputs: 0 < I(X;T_1) < 12 bits; the softmax output at most ~H(Y) + noise
    assert np.all(i_xt[..., 0] > 0.5) and np.all(i_xt < 12.0)
    binned = InfoPlane.load(out / "planes" / "binned" / "infoplane_binning.npz")
    assert binned.sweep["bin_size"] == [0.001, 0.1]
    b = binned.values["i_xt"]  # a finer grid never merges more inputs: I(bin 1e-3) >= I(bin 1e-1)
    assert np.all(b[0] >= b[1] - 1e-6) and np.all(b <= 12.0 + 1e-5)


def test_padded_layers_match_exact_mixture():
    """A 1-wide layer next to a 3-wide one: zero padding must not change the narrow layer's law, so
    its I(X;T) still matches the exact 1-D mixture value (first layer: h(T|X) = h(Z) exactly)."""
    x = jnp.asarray(X4)
    s1 = jnp.tanh(1.5 * x - 0.5)[:, None]
    sample_s = lambda k: (s1, jnp.tanh(s1 + 0.1 * jax.random.normal(k, (4, 3))))
    p = noisy.info_plane(sample_s, (X4 == 3).astype(np.int32), 0.1, jax.random.key(0), n_c=8, n_mc=2048)
    exact = float(mixture.mutual_information(s1[:, 0], 0.1))
    assert abs(float(p.i_xt[0]) - exact) < 3 * float(p.i_xt_se[0]) + 0.01
    assert 0 < float(p.i_xt_se[0]) < 0.02


def test_hidden_only_measures_one_layer():
    from ibjax import models
    m = goldfeld.hidden_only(models.mlp((1, 1, 2)))
    p = m.init(jax.random.key(0))
    logits, acts = m.apply(p, jnp.asarray(X4[:, None]))
    assert len(acts) == 1 and acts[0].shape == (4, 1) and logits.shape == (4, 2)
    assert len(m.noisy_apply(p, jnp.asarray(X4[:, None]), jax.random.key(1), 0.1)[2]) == 1
