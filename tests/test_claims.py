"""The verdict module on hand-computed cases and on saturated committed planes."""

import dataclasses

import numpy as np
import pytest
from scipy import stats

from ibjax import claims


def _curve(peak_S, final_S, n_epochs=6):
    """Seeds x epochs: rises linearly from 0.5 * peak to ``peak`` at epoch 2, then linearly to ``final``."""
    peak_S, final_S = np.asarray(peak_S, float), np.asarray(final_S, float)
    up = np.linspace(0.5, 1.0, 3)[None] * peak_S[:, None]
    down = peak_S[:, None] + np.linspace(0, 1, n_epochs - 2)[None, 1:] * (final_S - peak_S)[:, None]
    return np.concatenate([up, down], axis=1)


def test_interval_is_student_t_by_hand():
    v = np.array([1.0, 2.0, 4.0])
    i = claims.interval(v)
    se = np.std(v, ddof=1) / np.sqrt(3)
    assert i.mean == pytest.approx(7 / 3) and i.se == pytest.approx(se)
    assert i.hi - i.mean == pytest.approx(stats.t.ppf(0.975, 2) * se)  # 4.303 * se


def test_clear_drop_compresses():
    v = _curve([5.0, 5.1, 4.9], [3.0, 3.1, 2.9])
    stat = claims.compression(v, cap=12.0)
    assert stat.drop.mean == pytest.approx(2.0) and stat.frac.mean == pytest.approx(0.4, abs=0.01)
    assert stat.peak_epoch == 2 and stat.gain.mean == pytest.approx(2.5)
    vd = claims.decide(stat)
    assert (vd.outcome, vd.agrees, vd.reason) == ("compresses", True, "")
    assert claims.decide(stat, want="does not compress").agrees is False


def test_flat_layer_does_not_compress():
    v = np.full((4, 6), 3.0) + np.array([0.0, 0.01, -0.01, 0.005])[:, None]
    vd = claims.decide(claims.compression(v, cap=12.0), want="does not compress")
    assert (vd.outcome, vd.agrees) == ("does not compress", True)
    assert vd.threshold == pytest.approx(0.05 * 3.00125)


def test_straddling_interval_is_undecided_no_power():
    # drops 0.1, 0.5, 0.3 from a peak of 5: mean 0.3, threshold 0.25, 95% interval about [-0.2, 0.8]
    v = _curve([5.0, 5.0, 5.0], [4.9, 4.5, 4.7])
    vd = claims.decide(claims.compression(v, cap=12.0))
    assert vd.outcome == "undecided" and vd.agrees is None
    assert vd.reason.startswith("no power") and "0.250" in vd.reason
    one = claims.decide(claims.compression(v[:1], cap=12.0))
    assert one.agrees is None and "one seed" in one.reason


def test_saturated_layer_is_undecided_with_the_cap():
    v = np.full((3, 5), 12.0) - np.array([0.0, 0.001, 0.002])[:, None]
    vd = claims.decide(claims.compression(v, cap=12.0), want="does not compress")
    assert vd.agrees is None and vd.outcome == "undecided"
    assert vd.reason.startswith("saturated at its cap 12.00 bits")


def test_clear_drop_from_the_cap_still_compresses():
    v = _curve([12.0, 12.0, 12.0], [8.0, 8.2, 7.9])
    assert claims.decide(claims.compression(v, cap=12.0)).outcome == "compresses"


def test_ceiling_guard_fires_on_committed_cnn_and_edge_planes(data_dir):
    z = np.load(data_dir / "claims" / "ceiling_planes.npz")
    for name in ("cnn_binning", "edge_tanh"):
        i_xt, n = z[f"{name}_i_xt_SxExL"], int(z[f"{name.split('_')[0]}_n"])
        epochs = z[f"{name.split('_')[0]}_epochs_E"]
        vd = claims.decide(claims.compression(i_xt[:, :, 0], epochs, cap=np.log2(n)), want="compresses")
        assert vd.agrees is None and vd.reason.startswith(f"saturated at its cap {np.log2(n):.2f}"), (name, vd)


def test_positive_and_compare():
    assert claims.positive([0.5, 0.6, 0.55]).agrees is True
    assert claims.positive([-0.5, -0.6, -0.55]).agrees is False
    assert claims.positive([-0.5, 0.6, 0.1]).agrees is None
    a, b = claims.interval([1.0, 1.1, 0.9]), claims.interval([0.2, 0.3, 0.1])
    c = claims.compare(a, b)
    assert c.agrees is True and c.effect == pytest.approx(0.8)
    assert c.interval[0] == pytest.approx(0.8 - stats.t.ppf(0.975, 4) * np.sqrt(2 * 0.01 / 3))  # Welch dof = 4
    assert claims.compare(b, a).agrees is False


def test_entry_renders_reason_and_rule():
    v = np.full((3, 5), 12.0)
    e = claims.entry("c", "s", claims.decide(claims.compression(v, cap=12.0)), measured={"x": 1})
    assert e["agrees"] is None and e["reason"].startswith("saturated") and e["rule"] == claims.RULE.name
    assert {"claim", "source", "measured", "agrees", "effect", "interval", "threshold"} <= set(e)


def test_rule_override_and_bad_input():
    strict = dataclasses.replace(claims.RULE, min_drop_frac=0.5)
    v = _curve([5.0, 5.1, 4.9], [3.0, 3.1, 2.9])
    assert claims.decide(claims.compression(v), rule=strict).outcome == "does not compress"
    with pytest.raises(ValueError, match="min_drop_bits"):
        claims.Rule(min_drop_bits=-1)
    with pytest.raises(ValueError, match="non-finite"):
        claims.compression(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="seeds x epochs"):
        claims.compression(np.ones(5))
    with pytest.raises(ValueError, match="want"):
        claims.decide(claims.compression(v), want="maybe")


def test_dpi_counts_only_clear_violations():
    rng = np.random.default_rng(0)
    base = np.array([12.0, 9.0, 5.0])  # I(X;T_1) >= I(X;T_2) >= I(X;T_3)
    ok = base[None, None, :] + 0.01 * rng.normal(size=(5, 4, 3))
    r = claims.dpi(ok)
    assert (r["violations"], r["cells"], r["worst excess [bits]"]) == (0, 8, 0.0)
    bad = ok.copy()
    bad[:, 2, 2] = 9.5  # at epoch position 2, T_3 exceeds T_2 by 0.5 bits in every seed
    r = claims.dpi(bad)
    assert r["violations"] == 1 and r["where (epoch position, layer l: I(X;T_l) < I(X;T_l+1))"] == [[2, 2]]
    assert r["worst excess [bits]"] == pytest.approx(0.5, abs=0.02)
    noisy = ok.copy()
    noisy[:, 1, 1] = 5.0 + np.array([0.4, -0.4, 0.4, -0.4, 0.3])  # mean excess 0.06 < 0.1: within error
    assert claims.dpi(noisy)["violations"] == 0
    assert claims.dpi(bad[:1])["violations"] == 1  # one seed: the difference itself
    with pytest.raises(ValueError, match="non-finite"):
        claims.dpi(np.full((2, 2, 2), np.nan))
    with pytest.raises(ValueError, match=">= 2 layers"):
        claims.dpi(np.zeros((2, 3, 1)))


def _three_layers():
    """Seeds x epochs x 3 T: T1 clearly compresses (5 -> 3 bits), T2 is flat, T3 straddles."""
    clear = _curve([5.0, 5.1, 4.9], [3.0, 3.1, 2.9])
    flat = np.full((3, 6), 3.0) + np.array([0.0, 0.01, -0.01])[:, None]
    loose = _curve([4.0, 4.0, 4.0], [3.0, 4.0, 4.4])  # drops 1, 0, -0.4: the interval straddles 0.2
    return np.stack([clear, flat, loose], axis=2)


def test_network_compresses_when_one_t_does_and_not_when_all_clearly_do_not():
    v = _three_layers()
    stats = claims.layers(v, cap=12.0)
    net = claims.network(stats)
    assert (net.outcome, net.agrees) == ("compresses", True) and net.effect == pytest.approx(2.0)
    assert claims.network(stats, want="does not compress").agrees is False
    # without the compressing T: T3 straddles, so "does not compress" is undecided naming T2's partner
    rest = claims.network(stats[1:], want="does not compress", names=["T2", "T3"])
    assert rest.agrees is None and rest.reason.startswith("T3: no power") and "T2" not in rest.reason
    assert claims.network([stats[1]], want="does not compress").agrees is True


def test_every_and_vote_by_hand():
    yes, no = claims.holds(True, effect=1.0), claims.holds(False, effect=0.0, what="x")
    open_ = claims.undecided("saturated at its cap 8.64 bits")
    assert claims.every({"a": yes, "b": yes}).agrees is True
    assert claims.every({"a": yes, "b": no}).agrees is False and claims.every({"a": yes, "b": no}).outcome.endswith(
        "(b)"
    )
    e = claims.every({"a": yes, "b": open_})
    assert e.agrees is None and e.reason == "b: saturated at its cap 8.64 bits"
    # a vote: two families for, one against; no majority is undecided; undecided votes abstain
    assert claims.vote({"kNN": yes, "KDE": yes, "binning": no}).agrees is True
    tie = claims.vote({"kNN": yes, "binning": no, "EDGE": open_})
    assert tie.agrees is None and tie.reason.startswith("no majority: 1 agree (kNN)")
    assert "EDGE: saturated" in tie.reason
    assert claims.vote({"kNN": no, "KDE": no, "binning": yes}).agrees is False
    # an abstention counts against both sides: one clear vote among undecided ones decides nothing
    assert claims.vote({"a": no, "b": open_, "c": open_}).agrees is None
    assert claims.vote({"a": yes, "b": yes, "c": open_}).agrees is True


def test_seed_compresses_is_the_rule_threshold_per_seed():
    v = np.array([[1.0, 4.0, 3.7], [1.0, 4.0, 3.85], [1.0, 1.0, 0.95]])  # drops 0.3, 0.15, 0.05
    # thresholds max(0.1, 0.05 x peak): 0.2, 0.2, 0.1
    assert claims.seed_compresses(v).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="values_SxE"):
        claims.seed_compresses(np.array([[1.0, np.nan]]))


def test_rises_leaves_out_what_starts_at_its_cap_and_after_fitting_by_hand():
    y = np.stack([np.full((3, 4), 1.0), np.array([[0.2, 0.5, 0.8, 0.9]] * 3) + np.array([[0], [0.01], [-0.01]])], 2)
    r = claims.rises(y, cap=1.0)
    assert list(r) == ["T2"] and r["T2"].agrees is True and r["T2"].effect == pytest.approx(0.7)
    x = np.array([[1.0, 2.0, 5.0, 4.0]] * 3) + np.array([[0], [0.01], [-0.01]])  # peaks at epoch 2
    a = claims.after_fitting(x, y[:, :, 1])  # (0.8 - 0.2) / 0.7 of the gain done at the peak
    assert a.agrees is True and a.effect == pytest.approx(0.6 / 0.7, abs=0.01)
    early = claims.after_fitting(np.array([[1.0, 5.0, 4.0, 3.0]] * 3) + np.array([[0], [0.01], [-0.01]]), y[:, :, 1])
    assert early.agrees is False  # peak at epoch 1: 3/7 of the gain done
    assert claims.after_fitting(x, np.full((3, 4), 0.5)).agrees is None  # no gain to share out
    g = claims.gains_then_loses(x, cap=12.0)
    assert g.agrees is True and claims.gains_then_loses(np.array([[5.0, 5.0, 3.0, 3.0]] * 3), cap=12.0).agrees is False


def test_a_refutation_on_a_shorter_training_than_the_papers_is_undecided():
    flat = np.tile(np.array([5.0, 5.0, 5.0])[None], (6, 1)) + np.linspace(-0.01, 0.01, 6)[:, None]
    no = claims.decide(claims.compression(flat, cap=12.0), want="compresses")
    assert no.agrees is False
    v = claims.trained_as_long(no, 30, 8000, "the paper's runs")
    assert v.agrees is None and v.outcome == "undecided" and v.effect == no.effect
    assert (
        v.reason == "trained 30 epochs, the paper's runs 8000: 'does not compress' within 30 epochs does not refute it"
    )
    assert claims.trained_as_long(no, 8000, 8000, "the paper's runs") is no  # as long as the paper: the "no" stands
    yes = claims.decide(claims.compression(np.tile(np.array([5.0, 9.0, 6.0])[None], (6, 1)) + flat - 5.0, cap=12.0))
    assert claims.trained_as_long(yes, 30, 8000, "x") is yes  # agreement is never downgraded


def test_phase_timing_helpers_by_hand():
    # peaks at epochs 10 and 20 of 100 trained; loss 1 -> 0 linearly over 100 epochs
    v = np.array([[0.0, 5.0, 4.0, 3.0], [0.0, 1.0, 6.0, 2.0]])
    epochs = np.array([0, 10, 20, 99])
    loss = np.tile(np.linspace(1.0, 0.0, 100), (2, 1))
    sh = claims.onset_shares(v, epochs, loss, 100)
    np.testing.assert_array_equal(sh["onset"], [10, 20])
    np.testing.assert_allclose(sh["after"], [0.9, 0.8])
    np.testing.assert_allclose(sh["done"], [10 / 99, 20 / 99])
    # I(T;Y) after each seed's peak: seed 0 from index 1 on: max(3, 2, 1) - 1 = 2; seed 1 from index 2: max(5, 0) - 0
    ty = np.array([[9.0, 3.0, 2.0, 1.0], [9.0, 9.0, 5.0, 0.0]])
    np.testing.assert_allclose(claims.lost_after_peak(v, ty), [2.0, 5.0])
    yes = claims.positive([1.0, 1.1, 0.9])
    drop = claims.compression(np.array([[0.0, 5.0, 1.0], [0.0, 5.2, 1.1], [0.0, 4.9, 0.9]]), cap=12.0)
    flat = claims.compression(np.array([[0.0, 5.0, 5.0], [0.0, 5.2, 5.2], [0.0, 4.9, 4.9]]), cap=12.0)
    assert claims.if_compresses(yes, drop) is yes
    v2 = claims.if_compresses(yes, flat, what="layer 5")
    assert v2.agrees is None and v2.reason.startswith("layer 5 does not clearly compress")


def _coord_plane(i_xt_SxExT, coords, estimator="kde"):
    from ibjax.result import InfoPlane

    v = np.asarray(i_xt_SxExT, float)[None]
    return InfoPlane(np.arange(v.shape[2]), {"i_xt": v, "i_ty": 0 * v}, estimator, {}, measured={"t_coords": coords})


def test_pooling_claim_fails_where_pooling_raises_the_estimate():
    """The input on which cnn's pooling claim is false: a KDE estimate that rises after pooling in every seed;
    binning alone (which cannot rise by construction) leaves it undecided."""
    coords = [{"layer": 1, "pool": "before"}, {"layer": 1, "pool": "after"}]
    up = _coord_plane(np.array([[[3.0, 3.5]], [[3.1, 3.7]], [[2.9, 3.3]]]), coords)  # 3 seeds x 1 epoch x 2 T
    down = _coord_plane(np.array([[[3.5, 3.0]], [[3.7, 3.1]], [[3.3, 2.9]]]), coords)
    assert claims.pooling_reduces({"net": {"kde": up}}, cap=10.0)[1].agrees is False
    measured, v = claims.pooling_reduces({"net": {"kde": down}}, cap=10.0)
    assert v.agrees is True and measured["net, kde: share of (epoch, layer) with after <= before"]["mean"] == 1.0
    v = claims.pooling_reduces({"net": {"binning": _coord_plane(down.i_xt, coords, "binning")}}, cap=10.0)[1]
    assert v.agrees is None and "by construction" in v.reason
    assert (
        claims.pooling_reduces({"net": {"kde": _coord_plane(np.full((3, 1, 2), 10.0), coords)}}, cap=10.0)[1].agrees
        is None
    )  # both at log2 N: saturated


def test_per_filter_claim_and_array():
    """Per-filter T's (layer, filter) become S x E x L x F_max, NaN-padded; the claim fails when the last layer's
    mean per-filter value is above the first's."""
    coords = [{"layer": 1, "filter": 1}, {"layer": 1, "filter": 2}, {"layer": 2, "filter": 1}]
    rising = _coord_plane(np.array([[[1.0, 2.0, 4.0]], [[1.2, 1.8, 4.1]], [[0.9, 2.1, 3.9]]]), coords)
    a, layers = rising.per_filter()
    assert layers == [1, 2] and a.shape == (3, 1, 2, 2) and np.isnan(a[:, :, 1, 1]).all() and a[0, 0, 1, 0] == 4.0
    measured, v = claims.filters_decrease({"net": {"kde": rising}}, cap=10.0)
    assert v.agrees is False and measured["net, kde: layer 1 mean per-filter I(X;T) [bits]"]["mean"] == 1.5
    swapped = [{"layer": 2, "filter": 1}, {"layer": 2, "filter": 2}, {"layer": 1, "filter": 1}]
    falling = _coord_plane(rising.i_xt, swapped)  # layer 1 at 4 bits, layer 2 at 1.5
    assert claims.filters_decrease({"net": {"kde": falling}}, cap=10.0)[1].agrees is True


def _curve_plane(i_xt_SxExT, n_samples=4096):
    from ibjax.result import InfoPlane

    v = np.asarray(i_xt_SxExT, float)[None]
    return InfoPlane(np.arange(v.shape[2]), {"i_xt": v, "i_ty": 0 * v}, "exact", {}, measured={"n_samples": n_samples})


def test_activation_dependence_holds_fails_and_is_undecided_by_hand():
    """Three seeds, 3 epochs, one hidden layer and an output: a layer that drops 2 bits from its peak in every seed
    compresses, a flat one does not; they differ (holds), two flat ones fail, a noisy one leaves it undecided."""
    drop = np.array([[6.0, 8.0, 6.0], [6.1, 8.1, 6.0], [5.9, 7.9, 6.1]])  # S x E
    flat = np.array([[6.0, 6.0, 6.0], [6.1, 6.1, 6.1], [5.9, 5.9, 5.9]])
    noisy = np.array([[6.0, 9.0, 6.0], [6.0, 6.0, 6.0], [6.0, 6.2, 6.1]])
    plane = lambda hidden: _curve_plane(np.stack([hidden, flat], axis=2))  # T1 hidden, T2 the output
    v, measured = claims.outcomes_differ({"tanh": plane(drop), "ReLU": plane(flat)})
    assert v.agrees is True and measured["layers where the verdicts differ"] == "T1"
    assert measured["T1: tanh / ReLU"].startswith("compresses (drop 1.97 bits")  # (2 + 2.1 + 1.8) / 3
    assert claims.outcomes_differ({"tanh": plane(flat), "ReLU": plane(flat)})[0].agrees is False
    v = claims.outcomes_differ({"tanh": plane(noisy), "ReLU": plane(flat)})[0]
    assert v.agrees is None and "undecided at 1 of 1: T1" in v.reason


def test_settings_disagree_and_within_gap_by_hand():
    agree = {"mae_i_xt": [0.1], "agrees": [True], "undecided": ""}
    flip = {"mae_i_xt": [0.1], "agrees": [False], "undecided": ""}
    open_ = {"mae_i_xt": [0.1], "agrees": [None], "undecided": ""}
    base = {"exact outcome": ["compresses"], "exact drop": []}
    mixed = {"net": base | {"bin30 fixed": agree, "bin30 layer": flip, "KDE": flip}}
    v, n_ok, n_flip, n = claims.settings_disagree(mixed)
    assert (v.agrees, n_ok, n_flip, n) == (True, 1, 1, 2)  # the KDE row is not a binning setting
    v = claims.settings_disagree({"net": base | {"bin30 fixed": agree, "bin30 layer": agree}})[0]
    assert v.agrees is False and "same pattern" in v.outcome
    v = claims.settings_disagree({"net": base | {"bin30 fixed": agree, "bin30 layer": open_}})[0]
    assert v.agrees is None and v.reason.startswith("no power: 1 of 2 binning settings")
    excluded = {"net": base | {"bin30 fixed": flip | {"undecided": "undecided: violates the DPI"}}}
    assert claims.settings_disagree(excluded)[0].agrees is None
    close = {"relu": ([0.95, 0.96, 0.95], [0.94, 0.95, 0.945])}  # 1 point below the float network's accuracy
    far = {"relu": ([0.95, 0.96, 0.95], [0.85, 0.86, 0.86])}
    assert claims.within_gap(close, 0.03)[0].agrees is True and claims.within_gap(far, 0.03)[0].agrees is False
    v, diffs = claims.within_gap({}, 0.03, empty="no 8-bit network")
    assert v.agrees is None and v.reason == "no 8-bit network" and diffs == {}
