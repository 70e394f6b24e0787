import math

import numpy as np
import pytest

from ibjax import skipping

H_X, H_Y = 12.0, 1.0  # log2(4096) inputs, binary labels


# ---------------------------------------------------------------------------------------------
# synthetic curves: epochs_B -> (i_xt_BxL, i_ty_BxL), L = 3


def smooth(e_B):
    """Saturating exponentials, monotone in every layer."""
    e_Bx1 = np.asarray(e_B, dtype=np.float64)[:, None]
    tau_L, top_L = np.array([100.0, 200.0, 400.0]), np.array([12.0, 8.0, 4.0])
    return top_L * (1 - np.exp(-e_Bx1 / tau_L)), 1 - np.exp(-e_Bx1 / (2 * tau_L))


def step(e_B, at=537):
    """A 3-bit jump in I(X;T) of layer 0 between epochs at-1 and at; flat otherwise."""
    e_Bx1 = np.asarray(e_B, dtype=np.float64)[:, None]
    jump_Bx1 = np.where(e_Bx1 >= at, 3.0, 0.0)
    return np.concatenate([jump_Bx1 + 5, np.full_like(e_Bx1, 2.0), np.full_like(e_Bx1, 1.0)], 1), np.full(
        (len(e_Bx1), 3), 0.5
    )


def constant(e_B):
    n = len(e_B)
    return np.full((n, 3), 4.0), np.full((n, 3), 0.3)


def linear(e_B):
    e_Bx1 = np.asarray(e_B, dtype=np.float64)[:, None]
    return e_Bx1 * np.array([0.01, 0.005, 0.002]), e_Bx1 * np.array([1e-4, 2e-4, 3e-4])


def wiggly(e_B):
    """Oscillating, so the approximate walk both doubles and keeps its skip many times."""
    e_Bx1 = np.asarray(e_B, dtype=np.float64)[:, None]
    return 6 + 3 * np.sin(e_Bx1 / np.array([40.0, 90.0, 150.0])), 0.5 + 0.4 * np.sin(
        e_Bx1 / np.array([60.0, 70.0, 80.0])
    )


class Counting:
    """evaluate_batch that records every batch it is given."""

    def __init__(self, curve):
        self.curve, self.batches = curve, []

    def __call__(self, epochs_B):
        self.batches.append(np.asarray(epochs_B).copy())
        return self.curve(epochs_B)

    @property
    def n_epochs(self):
        return sum(len(b) for b in self.batches)


def dist(curve, a, b):
    (xa, ya), (xb, yb) = curve([a]), curve([b])
    return max(np.max(np.abs(xa - xb)) / H_X, np.max(np.abs(ya - yb)) / H_Y)


CONTIGUOUS = np.arange(2000)
LOGSPACED = np.unique(np.logspace(0, np.log2(3000), 400, base=2).astype(int)) - 1


# ---------------------------------------------------------------------------------------------
# exact


@pytest.mark.parametrize("curve", [smooth, step, wiggly, linear])
@pytest.mark.parametrize("epochs_E", [CONTIGUOUS, LOGSPACED], ids=["contiguous", "logspaced"])
@pytest.mark.parametrize("delta", [0.02, 0.1])
def test_exact_guarantee_and_rounds(curve, epochs_E, delta):
    ev = Counting(curve)
    r = skipping.delta_skip_exact(ev, epochs_E, delta=delta, h_x=H_X, h_y=H_Y)
    pos_K = np.searchsorted(epochs_E, r.epochs)
    np.testing.assert_array_equal(epochs_E[pos_K], r.epochs)  # kept epochs come from epochs_E
    assert r.epochs[0] == epochs_E[0] and r.epochs[-1] == epochs_E[-1]
    for k in range(len(pos_K) - 1):  # every consecutive pair: within delta or adjacent
        assert dist(curve, r.epochs[k], r.epochs[k + 1]) <= delta or pos_K[k + 1] - pos_K[k] == 1
    x, y = curve(r.epochs)
    np.testing.assert_array_equal(r.i_xt, x)
    np.testing.assert_array_equal(r.i_ty, y)
    # one call per round, each epoch once, logarithmically many rounds
    assert r.n_rounds == len(ev.batches) <= math.ceil(math.log2(len(epochs_E))) + 2
    assert r.n_evaluated == ev.n_epochs == len(np.unique(np.concatenate(ev.batches))) == len(r.epochs)
    assert r.n_total == len(epochs_E)


def test_exact_each_round_holds_all_its_midpoints():
    """Replay: round k+1's batch is exactly the midpoints of round k's violating pairs."""
    ev = Counting(wiggly)
    skipping.delta_skip_exact(ev, CONTIGUOUS, delta=0.03, h_x=H_X, h_y=H_Y)
    seen = np.array([], dtype=int)
    for k, batch in enumerate(ev.batches):
        if k:
            bad = [(a + b) // 2 for a, b in zip(seen[:-1], seen[1:]) if b - a > 1 and dist(wiggly, a, b) > 0.03]
            assert sorted(bad) == batch.tolist()
        seen = np.union1d(seen, batch)
    assert len(ev.batches) > 3


def test_exact_skips_on_smooth_and_constant():
    r = skipping.delta_skip_exact(smooth, CONTIGUOUS, delta=0.05, h_x=H_X, h_y=H_Y)
    assert r.n_evaluated < len(CONTIGUOUS) / 10
    r = skipping.delta_skip_exact(constant, CONTIGUOUS, delta=1e-6, h_x=H_X, h_y=H_Y, initial=2)
    assert r.epochs.tolist() == [0, 1999] and r.n_rounds == 1


def test_exact_bisects_down_to_the_jump():
    ev = Counting(step)
    r = skipping.delta_skip_exact(ev, CONTIGUOUS, delta=0.1, h_x=H_X, h_y=H_Y)
    k = np.searchsorted(r.epochs, 537)
    assert r.epochs[k] == 537 and r.epochs[k - 1] == 536
    assert r.n_evaluated < 40  # flat elsewhere: only the bisection path around the jump


def test_exact_single_epoch():
    r = skipping.delta_skip_exact(smooth, [7], delta=0.1, h_x=H_X, h_y=H_Y)
    assert r.epochs.tolist() == [7] and r.i_xt.shape == (1, 3) and r.n_rounds == 1


# ---------------------------------------------------------------------------------------------
# approx


def sequential_walk(curve, epochs_E, delta):
    """The thesis's algorithm, one epoch at a time."""
    last, cur, skip, visited = len(epochs_E) - 1, 0, 1, [0]
    while cur < last:
        nxt = min(cur + skip, last)
        if dist(curve, epochs_E[cur], epochs_E[nxt]) < delta:
            skip *= 2
        visited.append(nxt)
        cur = nxt
    return epochs_E[visited]


@pytest.mark.parametrize("curve", [smooth, step, wiggly, constant])
@pytest.mark.parametrize("epochs_E", [CONTIGUOUS, LOGSPACED], ids=["contiguous", "logspaced"])
@pytest.mark.parametrize("delta", [0.005, 0.05])
@pytest.mark.parametrize("round_size", [1, 3, 8])
@pytest.mark.parametrize("predict", ["last", "double"])
def test_approx_matches_sequential(curve, epochs_E, delta, round_size, predict):
    ev = Counting(curve)
    r = skipping.delta_skip_approx(ev, epochs_E, delta=delta, h_x=H_X, h_y=H_Y, round_size=round_size, predict=predict)
    np.testing.assert_array_equal(r.epochs, sequential_walk(curve, epochs_E, delta))
    assert np.all(np.diff(r.epochs) > 0) and r.epochs[0] == epochs_E[0] and r.epochs[-1] == epochs_E[-1]
    x, y = curve(r.epochs)
    np.testing.assert_array_equal(r.i_xt, x)
    np.testing.assert_array_equal(r.i_ty, y)
    everything = np.concatenate(ev.batches)
    assert len(everything) == len(np.unique(everything)) == r.n_evaluated >= len(r.epochs)
    assert r.n_rounds == len(ev.batches) and r.n_total == len(epochs_E)
    assert all(len(b) <= round_size + 1 for b in ev.batches)  # +1: position 0 joins round 1
    if round_size == 1:
        assert r.n_evaluated == len(r.epochs)  # nothing speculative to throw away


@pytest.mark.parametrize("curve", [smooth, wiggly])
def test_approx_batches_and_speculates(curve):
    steps = len(sequential_walk(curve, CONTIGUOUS, 0.005)) - 1
    last, double = (
        skipping.delta_skip_approx(curve, CONTIGUOUS, delta=0.005, h_x=H_X, h_y=H_Y, predict=p)
        for p in ("last", "double")
    )
    # smooth: 233 steps, 39 rounds predicting the last decision, 198 always predicting doubling
    assert last.n_rounds < steps / 4 and last.n_rounds < double.n_rounds / 3
    assert last.n_evaluated > len(last.epochs)  # some speculation was discarded, and is reported


def test_approx_single_epoch():
    r = skipping.delta_skip_approx(smooth, [3], delta=0.1, h_x=H_X, h_y=H_Y)
    assert r.epochs.tolist() == [3] and r.n_evaluated == 1


# ---------------------------------------------------------------------------------------------
# interpolation


def test_interpolate_matches_np_interp():
    r = skipping.delta_skip_exact(wiggly, LOGSPACED, delta=0.05, h_x=H_X, h_y=H_Y)
    x_ExL, y_ExL = skipping.interpolate(r, LOGSPACED)
    for l in range(3):
        np.testing.assert_allclose(x_ExL[:, l], np.interp(LOGSPACED, r.epochs, r.i_xt[:, l]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(y_ExL[:, l], np.interp(LOGSPACED, r.epochs, r.i_ty[:, l]), rtol=0, atol=1e-12)


def test_linear_curve_interpolates_exactly():
    r = skipping.delta_skip_exact(linear, CONTIGUOUS, delta=0.2, h_x=H_X, h_y=H_Y)
    err = skipping.max_interp_error(r, CONTIGUOUS, *linear(CONTIGUOUS), h_x=H_X, h_y=H_Y)
    assert r.n_evaluated < 20
    assert err["norm"] < 1e-12  # float rounding only


@pytest.mark.parametrize("delta", [0.005, 0.02, 0.1])
def test_exact_interp_error_within_delta_on_monotone_curve(delta):
    """Between kept epochs a < b every layer curve is monotone, so both the truth and the chord
    stay in [min(I_a, I_b), max(I_a, I_b)]: the error is <= |I_a - I_b| <= delta * h. Adjacent
    pairs have nothing between them. Hence max normalised error <= delta (+ float rounding)."""
    r = skipping.delta_skip_exact(smooth, CONTIGUOUS, delta=delta, h_x=H_X, h_y=H_Y)
    err = skipping.max_interp_error(r, CONTIGUOUS, *smooth(CONTIGUOUS), h_x=H_X, h_y=H_Y)
    assert err["norm"] == max(err["i_xt_norm"], err["i_ty_norm"]) <= delta + 1e-12
    assert err["i_xt_abs"] == pytest.approx(err["i_xt_norm"] * H_X)
    assert 0 < err["norm"]


def test_interpolate_single_point_is_constant():
    r = skipping.delta_skip_exact(smooth, [5], delta=0.1, h_x=H_X, h_y=H_Y)
    x_ExL, _ = skipping.interpolate(r, np.arange(4))
    np.testing.assert_array_equal(x_ExL, np.repeat(r.i_xt, 4, axis=0))


# ---------------------------------------------------------------------------------------------
# errors

GOOD = dict(delta=0.1, h_x=H_X, h_y=H_Y)


@pytest.mark.parametrize("strategy", [skipping.delta_skip_exact, skipping.delta_skip_approx])
@pytest.mark.parametrize(
    "name,value",
    [
        ("delta", 0),
        ("delta", -0.1),
        ("delta", float("nan")),
        ("delta", float("inf")),
        ("delta", "0.1"),
        ("delta", True),
        ("h_x", 0.0),
        ("h_x", float("nan")),
        ("h_y", -1.0),
    ],
)
def test_bad_settings(strategy, name, value):
    with pytest.raises(ValueError, match=name):
        strategy(smooth, CONTIGUOUS, **{**GOOD, name: value})


@pytest.mark.parametrize("epochs_E", [[], [[0, 1], [2, 3]], [0, 0, 1], [3, 2], [0.0, 1.0]])
@pytest.mark.parametrize("strategy", [skipping.delta_skip_exact, skipping.delta_skip_approx])
def test_bad_epochs(strategy, epochs_E):
    with pytest.raises(ValueError, match="epochs_E"):
        strategy(smooth, epochs_E, **GOOD)


def test_bad_counts():
    with pytest.raises(ValueError, match="round_size"):
        skipping.delta_skip_approx(smooth, CONTIGUOUS, **GOOD, round_size=0)
    with pytest.raises(ValueError, match="round_size"):
        skipping.delta_skip_approx(smooth, CONTIGUOUS, **GOOD, round_size=2.0)
    with pytest.raises(ValueError, match="predict"):
        skipping.delta_skip_approx(smooth, CONTIGUOUS, **GOOD, predict="always")
    with pytest.raises(ValueError, match="initial"):
        skipping.delta_skip_exact(smooth, CONTIGUOUS, **GOOD, initial=1)


def _nan_late(e_B):
    x, y = smooth(e_B)
    return np.where(np.asarray(e_B)[:, None] > 1500, np.nan, x), y


_calls = {"n": 0}


def _layers_change(e_B):
    _calls["n"] += 1
    x, y = smooth(e_B)
    return (x, y) if _calls["n"] == 1 else (x[:, :2], y[:, :2])


@pytest.mark.parametrize("strategy", [skipping.delta_skip_exact, skipping.delta_skip_approx])
@pytest.mark.parametrize(
    "bad,match",
    [
        (_nan_late, "i_xt.*NaN"),
        (lambda e: (smooth(e)[0], np.full((len(e), 3), np.inf)), "i_ty.*NaN/inf"),
        (lambda e: (smooth(e)[0][:-1], smooth(e)[1][:-1]), "i_xt.*shape"),
        (lambda e: (smooth(e)[0][:, 0], smooth(e)[1][:, 0]), "i_xt.*2-D"),
        (lambda e: (smooth(e)[0], smooth(e)[1][:, :2]), "i_ty.*shape"),
        (lambda e: smooth(e)[0], "pair"),
        (_layers_change, "i_xt.*shape"),
        ("not callable", "evaluate_batch"),
    ],
)
def test_bad_evaluate_batch(strategy, bad, match):
    _calls["n"] = 0
    with pytest.raises(ValueError, match=match) as info:
        strategy(bad, CONTIGUOUS, delta=0.001, h_x=H_X, h_y=H_Y)
    assert "evaluate_batch" in str(info.value)


def test_bad_full_curves():
    r = skipping.delta_skip_exact(smooth, CONTIGUOUS, **GOOD)
    x, y = smooth(CONTIGUOUS)
    with pytest.raises(ValueError, match="full_i_xt"):
        skipping.max_interp_error(r, CONTIGUOUS, x[:-1], y, h_x=H_X, h_y=H_Y)
    with pytest.raises(ValueError, match="full_i_ty"):
        skipping.max_interp_error(r, CONTIGUOUS, x, np.where(y > 0.5, np.nan, y), h_x=H_X, h_y=H_Y)
    with pytest.raises(ValueError, match="h_y"):
        skipping.max_interp_error(r, CONTIGUOUS, x, y, h_x=H_X, h_y=0)


def test_assemble_takes_each_epoch_from_the_rounds_and_keeps_its_warnings():
    from ibjax.result import InfoPlane

    def plane(epochs, base, warn):
        v = np.asarray(epochs, float)[None, None, :, None] + base  # G x S x E x L = 1 x 1 x E x 1
        return InfoPlane(np.asarray(epochs), {"i_xt": v, "i_ty": v / 10}, "binning", {}, warnings=warn, key="k")

    r1 = plane([0, 4, 8], 0.0, {"capped": [[0, 0, 4, 0], [0, 0, 8, 0]]})
    r2 = plane([2, 6], 100.0, {"capped": [[0, 0, 6, 0]], "other": [[0, 0, 2, 0]]})
    got = skipping.assemble([r1, r2], np.array([0, 2, 4, 8]))
    np.testing.assert_array_equal(got.epochs, [0, 2, 4, 8])
    np.testing.assert_array_equal(got.i_xt[0, :, 0], [0.0, 102.0, 4.0, 8.0])
    np.testing.assert_array_equal(got.i_ty[0, :, 0], [0.0, 10.2, 0.4, 0.8])
    assert got.warnings == {"capped": [[0, 0, 4, 0], [0, 0, 8, 0]], "other": [[0, 0, 2, 0]]}  # epoch 6 not kept
    assert got.key == ""
    with pytest.raises(ValueError, match=r"\[5\] were evaluated in no round"):
        skipping.assemble([r1, r2], np.array([0, 5]))
