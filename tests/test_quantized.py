import json

import numpy as np

from experiments import quantized
from ibjax.result import InfoPlane


def test_quantized_quick_exact_plane_bounds_every_binning(tmp_path):
    out = tmp_path / "q"
    summary = quantized.main(["--quick", "--out", str(out)])
    exact = InfoPlane.load(out / "planes" / "relu_4bit" / "infoplane_exact.npz")
    assert exact.i_xt.shape == (2, 5, 6)
    # 4096 distinct inputs: I(X;T) = H(T) <= 12 bits, the first quantized layer (10 units x 16 levels)
    # keeps most inputs apart; I(T;Y) <= H(Y) = 1 bit
    assert np.all(exact.i_xt <= 12 + 1e-6) and np.all(exact.i_ty <= 1 + 1e-6) and np.all(exact.i_xt >= 0)
    # binning is a function of the quantized T, so H(Bin(T)) <= H(T) and I(Bin(T);Y) <= I(T;Y), in every mode
    for label in ("bin30_fixed", "bin30_layer", "bin30_neuron", "bin30_layer-quantile"):
        est = InfoPlane.load(out / "planes" / "relu_4bit" / label / "infoplane_binning.npz")
        assert np.all(est.i_xt <= exact.i_xt + 1e-4), label
        assert np.all(est.i_ty <= exact.i_ty + 1e-4), label
    errors = summary["errors"]["relu 4-bit"]
    got = np.abs(
        InfoPlane.load(out / "planes" / "relu_4bit" / "bin30_neuron" / "infoplane_binning.npz").i_xt - exact.i_xt
    ).mean(axis=(0, 1))
    np.testing.assert_allclose(errors["bin30 neuron"]["mae_i_xt"], got, atol=1e-4)
    saved = json.loads((out / "summary.json").read_text())
    assert {c["claim"][:20] for c in saved["claims"]} and all(
        {"claim", "source", "measured", "agrees"} <= set(c) for c in saved["claims"]
    )
    assert (out / "planes.png").stat().st_size > 0 and (out / "agreement.png").stat().st_size > 0
    table = (out / "error_table.md").read_text()
    assert "| bin30 fixed |" in table and "| agrees | DPI violations |" in table
    from ibjax import claims as verdicts

    neuron = InfoPlane.load(out / "planes" / "relu_4bit" / "bin30_neuron" / "infoplane_binning.npz")
    assert errors["bin30 neuron"]["dpi"] == verdicts.dpi(neuron.i_xt)
