"""ibjax.plotting: figures from synthetic InfoPlanes; the numbers drawn are the numbers passed."""

import os
import subprocess
import sys
import textwrap

import matplotlib.image
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from ibjax import plotting
from ibjax.result import InfoPlane


def make_plane(S=3, E=5, L=3, G=1, epochs=None, se=False, seed=0):
    """Monotone-ish synthetic planes, G x S x E x L."""
    rng = np.random.default_rng(seed)
    xt = np.cumsum(rng.random((G, S, E, L)), axis=2)
    values = {"i_xt": xt, "i_ty": 1.0 - np.exp(-xt / 3)}
    if se:
        values |= {"i_xt_se": 0.05 + 0.01 * rng.random((G, S, E, L)), "i_ty_se": 0.01 * rng.random((G, S, E, L))}
    return InfoPlane(
        epochs=np.arange(E) if epochs is None else np.asarray(epochs),
        values=values,
        estimator="binning",
        settings={},
        sweep={"n_bins": [10, 30]} if G == 2 else {},
        layer_names=tuple(f"layer {l + 1}" for l in range(L)),
        measured={"units": "bits"},
    )


def bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def assert_band_between(band, x_E, lo_E, hi_E):
    """Every vertex lies on the lower or the upper curve at its x, and both curves are reached at every x.
    Tolerance: float64 round-off only."""
    v = band.get_paths()[0].vertices
    for x, y in v:
        i = np.flatnonzero(np.isclose(x_E, x))
        assert i.size == 1 and (
            np.isclose(y, lo_E[i[0]], rtol=0, atol=1e-12) or np.isclose(y, hi_E[i[0]], rtol=0, atol=1e-12)
        ), (x, y)
    for x, lo, hi in zip(x_E, lo_E, hi_E):
        ys = v[np.isclose(v[:, 0], x), 1]
        assert np.isclose(ys, lo, atol=1e-12).any() and np.isclose(ys, hi, atol=1e-12).any()


def test_import_keeps_backend_and_never_loads_pyplot(tmp_path):
    script = textwrap.dedent(f"""
        import sys, numpy as np, matplotlib
        before = matplotlib.get_backend()
        from ibjax import plotting
        from ibjax.result import InfoPlane
        after_import = matplotlib.get_backend()
        v = np.arange(24.0).reshape(1, 2, 4, 3)
        p = InfoPlane(epochs=np.arange(4), values={{"i_xt": v, "i_ty": v / 30}}, estimator="x", settings={{}})
        plotting.save(plotting.info_plane(p), {str(tmp_path / "p.png")!r})
        plotting.animate(p, {str(tmp_path / "p.gif")!r}, dpi=20)
        print(before, after_import, matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
    """)
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["svg", "svg", "svg", "False"]


WIDE, TALL = "wide", "tall"


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: plotting.info_plane(make_plane()), WIDE),
        (lambda: plotting.mi_vs_epoch(make_plane()), WIDE),
        (lambda: plotting.loss_curves({"train_loss": np.full((2, 4), 0.5), "test_acc": np.linspace(0, 1, 4)}), WIDE),
        (lambda: plotting.panel_grid({("a", "x"): make_plane(), ("b", "x"): make_plane(S=1)}), TALL),
        (lambda: plotting.panel_grid({("a", "x"): make_plane(), ("a", "y"): make_plane()}, kind="mi_ty"), WIDE),
    ],
)
def test_save_writes_a_decodable_png_and_no_temp_files(tmp_path, build, shape):
    fig = build()
    assert isinstance(fig, Figure)
    path = plotting.save(fig, tmp_path / "fig.png", dpi=50)
    assert path == tmp_path / "fig.png" and path.stat().st_size > 0
    assert sorted(os.listdir(tmp_path)) == ["fig.png"]  # the temporary file was renamed, none left
    img = matplotlib.image.imread(path)
    h, w = img.shape[:2]
    assert (w > h) if shape == WIDE else (h > w)
    assert img[..., :3].std() > 0.05  # something was drawn


def test_info_plane_points_are_the_mean_and_crosses_span_one_std():
    p = make_plane(S=3, E=5, L=3)
    ax = plotting.info_plane(p).axes[0]
    xt, ty, sx, sy = p.mean("i_xt"), p.mean("i_ty"), p.spread("i_xt"), p.spread("i_ty")
    np.testing.assert_allclose(sx, p.values["i_xt"][0].std(0, ddof=1))
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    for l, sc in enumerate(scatters):
        np.testing.assert_allclose(sc.get_offsets(), np.c_[xt[:, l], ty[:, l]])
    (spread,) = [c for c in ax.collections if c.get_gid() == "spread"]
    segs = np.asarray(spread.get_segments())  # E L horizontal arms, then E L vertical ones
    h, v = segs[:15].reshape(5, 3, 2, 2), segs[15:].reshape(5, 3, 2, 2)
    np.testing.assert_allclose(h[..., 0, 0], xt - sx)
    np.testing.assert_allclose(h[..., 1, 0], xt + sx)
    np.testing.assert_allclose(h[..., :, 1], np.stack([ty, ty], -1))
    np.testing.assert_allclose(v[..., 0, 1], ty - sy)
    np.testing.assert_allclose(v[..., 1, 1], ty + sy)
    assert ax.get_xlabel() == "I(X;T) [bits]" and ax.get_ylabel() == "I(T;Y) [bits]"
    assert "3 runs" in ax.get_title()


def test_info_plane_single_seed_has_no_spread_and_colour_is_epoch_on_a_log_scale():
    fig = plotting.info_plane(make_plane(S=1, E=100, L=2))
    ax, cax = fig.axes
    assert not [c for c in ax.collections if c.get_gid() == "spread"]
    sc = [c for c in ax.collections if isinstance(c, PathCollection)][0]
    assert isinstance(sc.norm, LogNorm) and (sc.norm.vmin, sc.norm.vmax) == (1.0, 100.0)  # epoch 0 .. 99, + 1
    np.testing.assert_array_equal(sc.get_array(), np.arange(100) + 1.0)
    assert cax.get_ylabel() == "epoch"
    assert [t.get_text() for t in cax.get_yticklabels()] == ["0", "1", "10"]  # epochs, not epoch + 1
    lin = plotting.info_plane(make_plane(S=1, epochs=[2, 4, 8, 16, 32]), log_color=False).axes[0]
    norm = [c for c in lin.collections if isinstance(c, PathCollection)][0].norm
    assert type(norm) is Normalize and (norm.vmin, norm.vmax) == (2.0, 32.0)


def test_info_plane_picks_the_settings_grid_point_and_checks_g():
    p = make_plane(S=2, G=2)
    ax = plotting.info_plane(p, g=1).axes[0]
    sc = [c for c in ax.collections if isinstance(c, PathCollection)][0]
    np.testing.assert_allclose(sc.get_offsets()[:, 0], p.values["i_xt"][1].mean(0)[:, 0])
    with pytest.raises(ValueError, match="g=2"):
        plotting.info_plane(p, g=2)


def test_mi_vs_epoch_band_spans_mean_plus_minus_std_over_seeds():
    p = make_plane(S=3, E=6, L=2, epochs=[0, 1, 2, 4, 8, 16])
    fig = plotting.mi_vs_epoch(p)
    for ax, name in zip(fig.axes, ("i_xt", "i_ty")):
        v = p.values[name][0]
        mean, sd = v.mean(0), v.std(0, ddof=1)
        assert len(ax.lines) == 2 and len(bands(ax)) == 2
        for l in range(2):
            np.testing.assert_allclose(ax.lines[l].get_ydata(), mean[:, l])
            assert_band_between(bands(ax)[l], p.epochs, mean[:, l] - sd[:, l], mean[:, l] + sd[:, l])
    assert "± 1 std over 3 seeds" in fig.get_suptitle()
    assert fig.axes[0].get_xscale() == "symlog" and fig.axes[0].get_ylabel() == "I(X;T) [bits]"


def test_mi_vs_epoch_single_seed_draws_no_band_unless_it_has_standard_errors():
    fig = plotting.mi_vs_epoch(make_plane(S=1, epochs=[1, 2, 4, 8, 16]))
    assert all(not bands(ax) for ax in fig.axes) and "shaded" not in fig.get_suptitle()
    assert fig.axes[0].get_xscale() == "log"
    p = make_plane(S=1, se=True)
    fig = plotting.mi_vs_epoch(p)
    mean, se = p.i_xt[0], p.i_xt_se[0]
    for l, band in enumerate(bands(fig.axes[0])):
        assert_band_between(band, p.epochs, mean[:, l] - 2 * se[:, l], mean[:, l] + 2 * se[:, l])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "shaded: ± 2 SE of the estimate (1 run)" in legend and "2 SE" in fig.get_suptitle()


def test_loss_curves_mean_line_and_min_max_band_over_seeds():
    loss = np.array([[1.0, 0.5, 0.25], [3.0, 1.5, 0.75]])  # S x E
    acc = np.array([0.2, 0.6, 0.9])  # no seed axis: no band
    fig = plotting.loss_curves({"train_loss": loss, "test_acc": acc})
    a_loss, a_acc = fig.axes
    np.testing.assert_allclose(a_loss.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(a_loss.lines[0].get_ydata(), [2.0, 1.0, 0.5])
    assert_band_between(bands(a_loss)[0], np.array([1.0, 2, 3]), loss.min(0), loss.max(0))
    assert a_loss.get_yscale() == "log" and not bands(a_acc)
    np.testing.assert_allclose(a_acc.lines[0].get_ydata(), acc)
    assert fig.get_suptitle() == "mean over 2 seeds, shaded min-max"
    with pytest.raises(ValueError, match="no key"):
        plotting.loss_curves({"lr": np.ones(3)})
    with pytest.raises(ValueError, match="epochs"):
        plotting.loss_curves({"train_loss": loss}, epochs=[1, 2])


def test_panel_grid_2x2_labels_cells_and_shares_one_colour_scale():
    planes = {
        ("tanh", "binning"): make_plane(E=5),
        ("tanh", "kde"): make_plane(E=40, S=1),
        ("relu", "binning"): make_plane(E=10),
        ("relu", "kde"): make_plane(E=20, S=2),
    }
    fig = plotting.panel_grid(planes, row_labels={"tanh": "tanh net"}, title="act x est")
    grid, cax = fig.axes[:4], fig.axes[4:]
    assert len(fig.axes) == 5 and len(cax) == 1 and cax[0].get_ylabel() == "epoch"
    assert all(ax.collections for ax in grid)
    assert [ax.get_title() for ax in grid[:2]] == ["binning", "kde"]
    assert grid[0].get_ylabel().startswith("tanh net\n") and grid[2].get_ylabel().startswith("relu\n")
    norms = {(c.norm.vmin, c.norm.vmax) for ax in grid for c in ax.collections if c.get_array() is not None}
    assert norms == {(1.0, 40.0)}  # epochs 0 .. 39 over all panels, + 1 on the log scale
    assert fig.get_suptitle().startswith("act x est")


def test_panel_grid_leaves_missing_cells_blank_and_draws_mi_panels():
    p = make_plane(S=3, E=4, L=2)
    fig = plotting.panel_grid({(1, "a"): p, (2, "b"): p}, kind="mi_xt", row_labels=["d=1", "d=2"])
    a1, b1, a2, b2 = fig.axes
    assert len(fig.axes) == 4  # no colour bar for MI panels
    assert not b1.lines and not b1.collections and not a2.lines and not b1.get_xticks().size
    assert len(a1.lines) == 2 and len(bands(b2)) == 2 and a2.get_ylabel() == "d=2"
    np.testing.assert_allclose(b2.lines[1].get_ydata(), p.mean("i_xt")[:, 1])
    assert "± 1 std over 3 seeds" in fig.get_suptitle()
    with pytest.raises(ValueError, match="kind"):
        plotting.panel_grid({(1, "a"): p}, kind="loss")
    with pytest.raises(ValueError, match="row_labels"):
        plotting.panel_grid({(1, "a"): p}, row_labels=["x", "y"])
    with pytest.raises(ValueError, match="tuples"):
        plotting.panel_grid({"a": p})


def test_animate_one_frame_per_epoch_labelled_with_a_faded_trail(tmp_path):
    p = make_plane(S=2, E=6, L=2, epochs=[0, 1, 3, 7, 15, 31])
    fig, update, frames = plotting._animation(p)
    np.testing.assert_array_equal(frames, np.arange(6))
    for k in range(6):
        artists = update(k)
        (label,) = [a for a in artists if isinstance(a, Text)]
        assert label.get_text() == f"epoch {p.epochs[k]}"
        trail = [a for a in artists if isinstance(a, LineCollection)][0]
        assert len(trail.get_segments()) == k  # every earlier epoch, none later
    np.testing.assert_allclose(np.asarray(trail.get_segments())[:, :, 0], p.mean("i_xt")[:5])
    assert plotting._frame_label(12.0) == "epoch 12" and plotting._frame_label(2.5) == "epoch 2.5"
    path = plotting.animate(p, tmp_path / "plane.gif", dpi=30)
    assert sorted(os.listdir(tmp_path)) == ["plane.gif"]
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 6 and im.size == (150, 120)


def test_animate_subsamples_long_runs_to_120_frames(tmp_path):
    idx = plotting._frame_indices(130)
    assert len(idx) == 120 and idx[0] == 0 and idx[-1] == 129 and np.all(np.diff(idx) >= 1)
    np.testing.assert_array_equal(plotting._frame_indices(120), np.arange(120))
    path = plotting.animate(make_plane(S=1, E=130, L=1), tmp_path / "long.gif", dpi=20, fps=25)
    with Image.open(path) as im:
        assert im.n_frames == 120 and im.info["duration"] == 40
    with pytest.raises(ValueError, match="fps"):
        plotting.animate(make_plane(), tmp_path / "x.gif", fps=0)
