"""Figures of an ``InfoPlane``: the information plane coloured by epoch, MI against epoch, loss
curves, grids of panels and an animated plane. matplotlib only.

Figures are built from ``matplotlib.figure.Figure`` directly, never through pyplot: importing or
using this module does not pick, switch or start a backend, and nothing is left open to close.

    fig = plotting.info_plane(plane)           # a Figure
    plotting.save(fig, "out/infoplane.png")    # atomic write
    plotting.animate(plane, "out/infoplane.gif")

Spread over seeds (S > 1) is always a standard deviation over runs (ddof = 1, ``plane.spread``);
a single run with estimator standard errors (``i_xt_se``) is shaded ± 2 SE instead.
"""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter
from PIL import Image
from tqdm.auto import tqdm

from ibjax import io

MARKERS = "os^Dvp*hX<>8"
MAX_FRAMES = 120  # animate() subsamples longer runs to this many frames
KINDS = ("plane", "mi_xt", "mi_ty")
_MI = {"i_xt": "I(X;T)", "i_ty": "I(T;Y)"}


# --- small helpers -----------------------------------------------------------------------------


def _one_setting(plane, g: int):
    """The G = 1 plane of settings-grid point g, checked."""
    n_g = plane.shape[0]
    if not 0 <= g < n_g:
        raise ValueError(f"g={g} is outside the settings grid: valid 0 .. {n_g - 1}")
    return plane if n_g == 1 else plane.setting(g)


def _names(plane) -> list[str]:
    n_l = plane.shape[3]
    names = list(plane.layer_names)
    return names if len(names) == n_l else [f"layer {l + 1}" for l in range(n_l)]


def _epoch_norm(lo: float, hi: float, log_color: bool):
    """Colour norm and shift (colour value = epoch + shift; a log scale needs values > 0)."""
    if not log_color:
        return Normalize(lo, hi if hi > lo else lo + 1), 0.0
    shift = 0.0 if lo > 0 else 1.0 - lo
    vmin = lo + shift
    return LogNorm(vmin, hi + shift if hi > lo else vmin * 10), shift


def _colorbar(fig, ax, norm, cmap: str, shift: float):
    """Colour bar labelled "epoch"; a shifted log scale is ticked at the epochs, not epoch + shift."""
    cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax)
    cb.set_label("epoch")
    if shift:
        lo, hi = norm.vmin - shift, norm.vmax - shift
        ticks = [lo] + [10.0**k for k in range(int(np.log10(max(hi, 1.0))) + 1) if 10.0**k > lo]
        cb.set_ticks([t + shift for t in ticks], labels=[f"{t:g}" for t in ticks])
        cb.ax.minorticks_off()
    return cb


def _epoch_xscale(ax, epochs_E):
    """Log epoch axis; symlog (linear below 1) when epoch 0 is on it."""
    if np.min(epochs_E) > 0:
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ax.set_xlabel("epoch")


def _crosses(x_ExL, y_ExL, sx_ExL, sy_ExL):
    """Segments of ± s crosses at every point: (2 E L) x 2 x 2, and the epoch index of each."""
    h = np.stack([np.stack([x_ExL - sx_ExL, y_ExL], -1), np.stack([x_ExL + sx_ExL, y_ExL], -1)], -2)
    v = np.stack([np.stack([x_ExL, y_ExL - sy_ExL], -1), np.stack([x_ExL, y_ExL + sy_ExL], -1)], -2)
    e_idx = np.broadcast_to(np.arange(x_ExL.shape[0])[:, None], x_ExL.shape).ravel()
    return np.concatenate([h.reshape(-1, 2, 2), v.reshape(-1, 2, 2)]), np.concatenate([e_idx, e_idx])


# --- information plane -------------------------------------------------------------------------


def _draw_plane(ax, p, norm, shift: float, cmap: str, *, legend: bool = True):
    """Mean over seeds: a thin line per epoch through the layers, a marker per layer, colour = epoch;
    with S > 1, translucent ± 1 std crosses (gid "spread")."""
    xt, ty = p.mean("i_xt"), p.mean("i_ty")
    cval = np.asarray(p.epochs, float) + shift
    if p.shape[1] > 1:
        segs, e_idx = _crosses(xt, ty, p.spread("i_xt"), p.spread("i_ty"))
        err = LineCollection(segs, cmap=cmap, norm=norm, linewidths=0.6, alpha=0.3, gid="spread")
        err.set_array(cval[e_idx])
        ax.add_collection(err)
    lines = LineCollection(np.stack([xt, ty], -1), cmap=cmap, norm=norm, linewidths=0.4, alpha=0.5)
    lines.set_array(cval)
    ax.add_collection(lines)
    for l, name in enumerate(_names(p)):  # plotting edge: a handful of layers
        ax.scatter(
            xt[:, l],
            ty[:, l],
            c=cval,
            cmap=cmap,
            norm=norm,
            s=14,
            marker=MARKERS[l % len(MARKERS)],
            edgecolors="none",
            label=name,
        )
    ax.autoscale_view()
    ax.set_xlabel(f"I(X;T) [{p.units}]")
    ax.set_ylabel(f"I(T;Y) [{p.units}]")
    if legend:
        leg = ax.legend(loc="lower right", fontsize=7)
        for h in leg.legend_handles:
            h.set_color("0.3")


def info_plane(
    plane, *, ax=None, g: int = 0, title: str | None = None, log_color: bool = True, cmap: str = "viridis"
) -> Figure:
    """x = I(X;T), y = I(T;Y), mean over seeds: a thin line per epoch through the layers, a marker per
    layer, colour = epoch (log colour scale by default). With more than one seed each point carries a
    translucent cross of ± 1 std over seeds (ddof = 1) in I(X;T) and I(T;Y), in the point's colour.
    Draws on ``ax`` when given (returns its figure), else on a new Figure."""
    p = _one_setting(plane, g)
    if ax is None:
        ax = Figure(figsize=(6.4, 4.8), layout="constrained").subplots()
    norm, shift = _epoch_norm(float(np.min(p.epochs)), float(np.max(p.epochs)), log_color)
    _draw_plane(ax, p, norm, shift, cmap)
    _colorbar(ax.figure, ax, norm, cmap, shift)
    n_s = p.shape[1]
    if title is None:
        title = f"{p.estimator}: mean of {n_s} run{'s' * (n_s > 1)}" + ("; crosses ± 1 std" if n_s > 1 else "")
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


# --- MI against epoch --------------------------------------------------------------------------


def _band(p, name: str):
    """(lower, upper, note) of the shaded band around the mean, or None without one."""
    mean, n_s = p.mean(name), p.shape[1]
    if n_s > 1:
        sd = p.spread(name)
        return mean - sd, mean + sd, f"± 1 std over {n_s} seeds"
    if f"{name}_se" in p.values:
        se = p.values[f"{name}_se"][0, 0]
        return mean - 2 * se, mean + 2 * se, "± 2 SE of the estimate (1 run)"
    return None


def _draw_mi(ax, p, name: str, *, legend: bool = True) -> str | None:
    """One line per T against epoch, shaded band from ``_band``; returns the band's note."""
    x, mean, band = np.asarray(p.epochs, float), p.mean(name), _band(p, name)
    for l, layer in enumerate(_names(p)):
        (line,) = ax.plot(x, mean[:, l], lw=1.2, label=layer)
        if band is not None:
            ax.fill_between(x, band[0][:, l], band[1][:, l], color=line.get_color(), alpha=0.2, lw=0)
    _epoch_xscale(ax, x)
    ax.set_ylabel(f"{_MI[name]} [{p.units}]")
    if legend:
        extra = [Patch(color="0.5", alpha=0.35, label=f"shaded: {band[2]}")] if band else []
        ax.legend(handles=ax.get_legend_handles_labels()[0] + extra, fontsize=7)
    return band[2] if band else None


def mi_vs_epoch(plane, *, g: int = 0, title: str | None = None) -> Figure:
    """Two panels, I(X;T) and I(T;Y) against epoch (log x), one line per T (mean over seeds). Shaded:
    mean ± 1 std over seeds when S > 1; with one seed and ``*_se`` values, ± 2 standard errors."""
    p = _one_setting(plane, g)
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    notes = [_draw_mi(ax, p, name) for ax, name in zip(fig.subplots(1, 2), _MI)]
    note = next((n for n in notes if n), None)
    fig.suptitle(title if title is not None else f"{p.estimator}" + (f"; shaded: {note}" if note else ""), fontsize=10)
    return fig


# --- training curves ---------------------------------------------------------------------------


def loss_curves(metrics: dict, *, epochs=None) -> Figure:
    """Keys with "loss" (left, log y) and "acc" (right) against epoch (log x): mean over seeds, and
    with a leading seed axis (S x E) a min-max band over seeds (never below 0 on the log axis).
    ``epochs`` defaults to 1 .. E (metrics are recorded after each epoch)."""
    groups = {lab: [k for k in metrics if word in k] for lab, word in (("loss", "loss"), ("accuracy", "acc"))}
    groups = {lab: keys for lab, keys in groups.items() if keys}
    if not groups:
        raise ValueError(f"metrics: no key containing 'loss' or 'acc', got {sorted(metrics)}")
    fig = Figure(figsize=(5 * len(groups), 3.8), layout="constrained")
    n_s = 1
    for ax, (lab, keys) in zip(fig.subplots(1, len(groups), squeeze=False)[0], groups.items()):
        for key in keys:
            v_SxE = np.asarray(metrics[key], float)
            if v_SxE.ndim not in (1, 2):
                raise ValueError(f"metrics[{key!r}]: expected E or S x E, got shape {v_SxE.shape}")
            v_SxE = v_SxE.reshape(-1, v_SxE.shape[-1])
            x = np.arange(1, v_SxE.shape[1] + 1) if epochs is None else np.asarray(epochs, float)
            if len(x) != v_SxE.shape[1]:
                raise ValueError(f"epochs: {len(x)} values but metrics[{key!r}] has {v_SxE.shape[1]} epochs")
            (line,) = ax.plot(x, v_SxE.mean(0), "--" if "test" in key else "-", label=key)
            if v_SxE.shape[0] > 1:
                ax.fill_between(x, v_SxE.min(0), v_SxE.max(0), color=line.get_color(), alpha=0.2, lw=0)
            n_s = max(n_s, v_SxE.shape[0])
        _epoch_xscale(ax, x)
        ax.set_ylabel(lab)
        if lab == "loss" and all(np.all(np.asarray(metrics[k]) > 0) for k in keys):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.suptitle(f"mean over {n_s} seeds, shaded min-max" if n_s > 1 else "1 run", fontsize=10)
    return fig


# --- grids of panels ---------------------------------------------------------------------------


def mean_band(ax, x_X, values_SxX, *, spread: str = "min-max", color=None, alpha: float = 0.15, **line_kw):
    """The mean over seeds (axis 0) of ``values_SxX`` against ``x_X`` on ``ax``, shaded over seeds in the
    line's colour: "min-max", "std" (± 1 std, ddof 1) or "2se" (± 2 standard errors); no band for one seed.
    ``line_kw`` goes to ``ax.plot`` (lw 1.0 unless given). Returns the line."""
    if spread not in ("min-max", "std", "2se"):
        raise ValueError(f"spread={spread!r}: valid 'min-max', 'std', '2se'")
    v = np.asarray(values_SxX)
    mean = np.mean(v, 0)
    line = ax.plot(x_X, mean, color=color, **{"lw": 1.0, **line_kw})[0]
    if len(v) > 1:
        half = np.std(v, 0, ddof=1) * (2 / np.sqrt(len(v)) if spread == "2se" else 1.0)
        lo, hi = (np.min(v, 0), np.max(v, 0)) if spread == "min-max" else (mean - half, mean + half)
        ax.fill_between(x_X, lo, hi, color=line.get_color(), alpha=alpha, lw=0)
    return line


def _labels(keys: list, labels, arg: str) -> list[str]:
    if labels is None:
        return [str(k) for k in keys]
    if isinstance(labels, dict):
        return [str(labels.get(k, k)) for k in keys]
    if len(labels) != len(keys):
        raise ValueError(f"{arg}: {len(labels)} labels for {len(keys)} keys {keys}")
    return [str(s) for s in labels]


def _blank(ax):
    """A missing cell: no ticks, spines or face, but its row/column labels stay."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("none")
    for s in ax.spines.values():
        s.set_visible(False)


def panel_grid(
    planes: dict,
    *,
    kind: str = "plane",
    g: int = 0,
    row_labels=None,
    col_labels=None,
    title: str | None = None,
    log_color: bool = True,
    cmap: str = "viridis",
) -> Figure:
    """A grid of panels from planes keyed by (row, col), e.g. activation x estimator, depth or data
    size; rows and columns in order of first appearance, labels from ``row_labels``/``col_labels``
    (a sequence in that order, or a dict key -> label). kind "plane": information planes with one
    colour scale across panels (± 1 std crosses where S > 1); "mi_xt"/"mi_ty": MI against epoch with
    the bands of ``mi_vs_epoch``. Missing cells are blank."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: valid {KINDS}")
    if not planes or not all(isinstance(k, tuple) and len(k) == 2 for k in planes):
        raise ValueError(f"planes: a non-empty dict keyed by (row, col) tuples, got keys {list(planes)}")
    rows, cols = list(dict.fromkeys(r for r, _ in planes)), list(dict.fromkeys(c for _, c in planes))
    rlab, clab = _labels(rows, row_labels, "row_labels"), _labels(cols, col_labels, "col_labels")
    ps = {k: _one_setting(p, g) for k, p in planes.items()}
    fig = Figure(figsize=(3.6 * len(cols) + 0.8 * (kind == "plane"), 3.0 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    if kind == "plane":
        epochs = np.concatenate([np.asarray(p.epochs, float) for p in ps.values()])
        norm, shift = _epoch_norm(epochs.min(), epochs.max(), log_color)
    notes, first = set(), True
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax, p = axes[i, j], ps.get((r, c))
            if p is None:
                _blank(ax)
            elif kind == "plane":
                _draw_plane(ax, p, norm, shift, cmap, legend=first)
                notes.add("crosses ± 1 std over seeds" if p.shape[1] > 1 else None)
            else:
                notes.add(_draw_mi(ax, p, "i_" + kind[3:], legend=first))
            first = first and p is None
            if i == 0:
                ax.set_title(clab[j], fontsize=10)
            ax.set_ylabel(f"{rlab[i]}\n{ax.get_ylabel()}".strip() if j == 0 else "")
            if i < len(rows) - 1 and (rows[i + 1], c) in ps:
                ax.set_xlabel("")
    if kind == "plane":
        _colorbar(fig, axes.ravel().tolist(), norm, cmap, shift)
    notes.discard(None)
    sup = "; ".join([title or ""] + sorted(f"shaded: {n}" if kind != "plane" else n for n in notes)).strip("; ")
    if sup:
        fig.suptitle(sup, fontsize=10)
    return fig


# --- animation ---------------------------------------------------------------------------------


def _frame_indices(n_epochs: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Epoch indices of the frames: all, or ``max_frames`` evenly spaced ones including the last."""
    if n_epochs <= max_frames:
        return np.arange(n_epochs)
    return np.round(np.linspace(0, n_epochs - 1, max_frames)).astype(int)


def _frame_label(epoch) -> str:
    e = float(epoch)
    return f"epoch {int(e)}" if e.is_integer() else f"epoch {e:g}"


def _padded(a) -> tuple[float, float]:
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    pad = 0.05 * (hi - lo) if hi > lo else 0.1
    return lo - pad, hi + pad


def _animation(plane, *, g: int = 0, log_color: bool = True, cmap: str = "viridis"):
    """Figure, ``update(k)`` drawing frame k (returns its artists, the epoch label last) and the
    epoch index of each frame. Frame k: the mean plane at that epoch, opaque, ± 1 std crosses when
    S > 1; every earlier epoch faded behind it."""
    p = _one_setting(plane, g)
    xt, ty, epochs = p.mean("i_xt"), p.mean("i_ty"), np.asarray(p.epochs, float)
    sx, sy = p.spread("i_xt"), p.spread("i_ty")
    norm, shift = _epoch_norm(epochs.min(), epochs.max(), log_color)
    cval, segs = epochs + shift, np.stack([xt, ty], -1)
    fig = Figure(figsize=(5, 4), layout="none")  # a fixed layout: a layout engine would redraw every frame
    ax = fig.subplots(gridspec_kw=dict(left=0.14, right=0.97, bottom=0.12, top=0.96))
    ax.set(
        xlim=_padded([xt - sx, xt + sx]),
        ylim=_padded([ty - sy, ty + sy]),
        xlabel=f"I(X;T) [{p.units}]",
        ylabel=f"I(T;Y) [{p.units}]",
    )
    trail = ax.add_collection(LineCollection(segs[:0], cmap=cmap, norm=norm, linewidths=0.4, alpha=0.25))
    err = ax.add_collection(LineCollection([], colors="0.3", linewidths=0.8, alpha=0.6))
    (current,) = ax.plot([], [], color="0.3", lw=1.0)
    pts = [
        (
            ax.scatter(
                xt[:1, l],
                ty[:1, l],
                c=cval[:1],
                cmap=cmap,
                norm=norm,
                s=10,
                alpha=0.25,
                marker=MARKERS[l % len(MARKERS)],
                edgecolors="none",
            ),
            ax.scatter(
                xt[:1, l],
                ty[:1, l],
                c=cval[:1],
                cmap=cmap,
                norm=norm,
                s=36,
                label=name,
                marker=MARKERS[l % len(MARKERS)],
                edgecolors="k",
                linewidths=0.5,
            ),
        )
        for l, name in enumerate(_names(p))
    ]
    label = ax.text(0.03, 0.96, "", transform=ax.transAxes, va="top", fontsize=11)
    _colorbar(fig, ax, norm, cmap, shift)
    for h in ax.legend(loc="lower right", fontsize=7).legend_handles:
        h.set_color("0.3")
    frames = _frame_indices(len(epochs))

    def update(k: int):
        e = frames[k]
        trail.set_segments(segs[:e])
        trail.set_array(cval[:e])
        current.set_data(xt[e], ty[e])
        if p.shape[1] > 1:
            err.set_segments(_crosses(xt[e : e + 1], ty[e : e + 1], sx[e : e + 1], sy[e : e + 1])[0])
        for l, (old, now) in enumerate(pts):
            old.set_offsets(segs[:e, l])
            old.set_array(cval[:e])
            now.set_offsets(segs[e : e + 1, l])
            now.set_array(cval[e : e + 1])
        label.set_text(_frame_label(epochs[e]))
        return [trail, err, current, *[a for pair in pts for a in pair], label]

    return fig, update, frames


def animate(
    plane,
    path: str | Path,
    *,
    g: int = 0,
    fps: int = 8,
    dpi: int = 80,
    log_color: bool = True,
    cmap: str = "viridis",
    progress: bool = True,
) -> Path:
    """An animated information plane (GIF): one frame per epoch (at most ``MAX_FRAMES``, evenly
    subsampled), the epoch number in each frame, earlier epochs faded behind the current one.
    The axes are rendered once and each frame draws only what moves (blitting), into memory, then the
    GIF is written atomically; ``progress``: a bar over the frames."""
    if fps <= 0:
        raise ValueError(f"fps={fps}: must be positive")
    path = Path(path)
    fig, update, frames = _animation(plane, g=g, log_color=log_color, cmap=cmap)
    fig.set_dpi(dpi)
    moving = update(0)
    for a in moving:  # drawn per frame over one rendered background (axes, ticks, legend, colorbar)
        a.set_animated(True)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    images = []
    bar = tqdm(
        total=len(frames), desc=f"drawing {path.name}", unit="frame", leave=False, disable=None if progress else True
    )
    with bar:
        for k in range(len(frames)):
            canvas.restore_region(background)
            for a in update(k):
                fig.draw_artist(a)
            rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
            # one palette, from the first frame's colours plus the colormap's: no per-frame median cut
            images.append(rgb.quantize(palette=images[0], dither=Image.Dither.NONE) if images else _palette(rgb, cmap))
            bar.update(1)
    buf = _io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=1000 / fps, loop=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.atomic_write_bytes(path, buf.getvalue())  # fsync, ordinary file mode, os.replace
    return path


def _palette(rgb, cmap: str):
    """``rgb`` quantized to a palette of its own colours and the colormap's (for later frames' points)."""
    from matplotlib import colormaps

    ramp = (np.asarray(colormaps[cmap](np.linspace(0, 1, 64)))[:, :3] * 255).astype(np.uint8)
    both = Image.fromarray(np.concatenate([np.asarray(rgb).reshape(-1, 3), np.repeat(ramp, 50, axis=0)])[None])
    return rgb.quantize(palette=both.quantize(256, dither=Image.Dither.NONE), dither=Image.Dither.NONE)


# --- saving ------------------------------------------------------------------------------------


def save(fig, path: str | Path, *, dpi: int = 130) -> Path:
    """Render to memory in the format of the suffix (png without one), then write atomically."""
    path = Path(path)
    buf = _io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi, bbox_inches="tight")
    io.atomic_write_bytes(path, buf.getvalue())
    return path


def stat_vs_setting(ax, settings_G, values_GxSxL, *, mark=None, names=None, log: bool = True):
    """Mean ± se over seeds (axis 1; no bar for one seed) of a per-T statistic against an estimator setting, one
    line per T (``names``, default "layer l"); a dashed vertical line at ``mark``; log x by default."""
    v, x = np.asarray(values_GxSxL, float), np.asarray(settings_G, float)
    se = v.std(axis=1, ddof=1) / np.sqrt(v.shape[1]) if v.shape[1] > 1 else np.zeros(v.shape[::2])
    for l in range(v.shape[2]):
        label = names[l] if names is not None else f"layer {l + 1}"
        ax.errorbar(x, v.mean(axis=1)[:, l], yerr=se[:, l], marker="o", ms=3, capsize=2, lw=1.2, label=label)
    if mark is not None:
        ax.axvline(mark, color="0.5", ls="--", lw=0.8)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    return ax


def setting_grid(cells: dict, *, marks=None, xlabels=None, ylabel: str = "", title: str | None = None):
    """A grid of ``stat_vs_setting`` panels from ``cells`` (row, col) -> (settings_G, values_GxSxL), rows and
    columns in order of first appearance: column c's x label ``xlabels[c]`` and dashed line at ``marks[c]``
    (dicts), each row's y label "ROW\\n``ylabel``", a legend in the first panel, ``title`` above. A Figure."""
    rows, cols = list(dict.fromkeys(r for r, _ in cells)), list(dict.fromkeys(c for _, c in cells))
    fig = Figure(figsize=(5 * len(cols), 3.4 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    for (r, c), (settings_G, values_GxSxL) in cells.items():
        ax = stat_vs_setting(axes[rows.index(r), cols.index(c)], settings_G, values_GxSxL, mark=(marks or {}).get(c))
        ax.set(xlabel=(xlabels or {}).get(c, str(c)), ylabel=f"{r}\n{ylabel}")
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def cells_vs(ax, x_X, groups: dict, *, empty: str = "no cell with a value in every seed") -> bool:
    """Table cells ({mean, se, ...}; a mean of None is a missing point) against x: one errorbar line (mean ± se)
    per group {label: cells, one per x}. Without any mean, the text ``empty`` instead; returns whether one shows."""
    shown = False
    for label, cells in groups.items():
        mean = [np.nan if c["mean"] is None else c["mean"] for c in cells]
        se = [np.nan if c["se"] is None else c["se"] for c in cells]
        shown = shown or not bool(np.isnan(mean).all())
        ax.errorbar(x_X, mean, yerr=se, marker="o", capsize=3, label=label)
    if not shown:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)
    return shown


def curve_panels(panels: dict, *, x_E=None, hline=None, xlabel: str = "", ylabel: str = "", log: bool = True):
    """A Figure of one panel per group (``panels``: title -> {label: values S x E}): the mean over seeds of each
    series against x (default 1 .. E, metrics recorded after each epoch), a dashed line at ``hline``, log x and y
    by default; the y label and a legend in the first panel."""
    fig = Figure(figsize=(4 * len(panels), 3.5), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, series) in zip(axes, panels.items()):
        for label, v_SxE in series.items():
            mean = np.asarray(v_SxE, float).mean(0)
            ax.plot(np.arange(1, len(mean) + 1) if x_E is None else x_E, mean, label=label)
        if hline is not None:
            ax.axhline(hline, color="k", lw=0.8, ls="--")
        ax.set(xscale="log" if log else "linear", yscale="log" if log else "linear", xlabel=xlabel, title=title)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    return fig


def cells_figure(x_X, panels: dict, *, xlabel: str = "", scales=None, title: str | None = None):
    """A Figure of one panel per statistic (``panels``: y label -> {group label: cells, one per x}) drawn by
    ``cells_vs``, x ticks at x; where a panel shows a point, its y scale ``scales[ylabel]`` (a name, or (name,
    keywords of ``set_yscale``)); a legend in the first panel and ``title`` above."""
    fig = Figure(figsize=(5 * len(panels), 4), layout="constrained")
    for ax, (ylabel, groups) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels.items()):
        scale = (scales or {}).get(ylabel)
        if cells_vs(ax, x_X, groups) and scale:
            name, kw = (scale, {}) if isinstance(scale, str) else scale
            ax.set_yscale(name, **kw)
        ax.set(xlabel=xlabel, ylabel=ylabel, xticks=list(x_X))
    fig.axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def bands(ax, curves: dict, *, colors=None, legend: float = 7, **axes_kw):
    """Several groups on one axis: curves {label: (x_E, values S x E)}, each a ``mean_band`` (± 2 SE over
    seeds) in ``colors`` (default C0, C1, ...); log x, then ``ax.set(**axes_kw)`` and a legend of size ``legend``."""
    for c, (lab, (x_E, v_SxE)) in enumerate(curves.items()):
        mean_band(ax, x_E, v_SxE, spread="2se", alpha=0.2, lw=1.2, color=colors[c] if colors else f"C{c}", label=lab)
    ax.set(**{"xscale": "log", **axes_kw})
    ax.legend(fontsize=legend)
    return ax


def group_panels(fig, x_E, groups: dict, names, *, ylabel: str = "") -> list:
    """A row of panels sharing y, one per group {title: values S x E x T}, one ``mean_band`` (± 2 SE over
    seeds) per T named ``names``; log x. Returns the axes."""
    axes = fig.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for ax, (title, v_SxExT) in zip(axes, groups.items()):
        bands(ax, {name: (x_E, v_SxExT[:, :, l]) for l, name in enumerate(names)}, xlabel="epoch + 1", title=title)
    axes[0].set_ylabel(ylabel)
    return list(axes)


def seed_panels(x_E, curves: dict, *, ylabel: str, ylim=None, refs=None, title: str = "") -> Figure:
    """One panel per seed (log x): curves {label: (values S x E, half-width of a shaded band (S x E, a number)
    or None, line style or None)} and horizontal reference lines ``refs`` {label: (y, line style)}."""
    n_s = len(next(iter(curves.values()))[0])
    fig = Figure(figsize=(4.2 * n_s, 3.6), layout="constrained")
    for s, ax in enumerate(fig.subplots(1, n_s, squeeze=False)[0]):
        for label, (v_SxE, half, style) in curves.items():
            (line,) = ax.plot(x_E, v_SxE[s], *([style] if style else []), lw=1.2, label=label)
            if half is not None:
                h = np.broadcast_to(half, np.shape(v_SxE))[s]
                ax.fill_between(x_E, v_SxE[s] - h, v_SxE[s] + h, color=line.get_color(), alpha=0.2, lw=0)
        for label, (y, ls) in (refs or {}).items():
            ax.axhline(y, color="0.6", lw=0.8, ls=ls, label=label)
        ax.set(xscale="log", xlabel="epoch + 1", ylabel=ylabel, title=f"seed {s}", ylim=ylim)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def mi_vs_setting(plane, setting: str, *, ax=None, name: str = "i_xt", layers=None, positions=None) -> Figure:
    """I(X;T) (``name``; mean over seeds) against a swept estimator setting (``plane.sweep[setting]``, log x),
    one colour per T (``layers``: their indices, default all), one line per epoch at ``positions`` (default
    first, a quarter, half, last), light to dark. Draws on ``ax`` when given, else on a new Figure."""
    ax = ax if ax is not None else Figure(figsize=(5, 3.8), layout="constrained").subplots()
    v_GxSxExL, xs = plane.values[name], plane.sweep[setting]
    n_e = v_GxSxExL.shape[2]
    shown = sorted({0, n_e // 4, n_e // 2, n_e - 1}) if positions is None else list(positions)
    for j, e in enumerate(shown):
        for l in range(v_GxSxExL.shape[3]) if layers is None else layers:
            alpha, lab = 0.35 + 0.65 * j / max(len(shown) - 1, 1), plane.layer_names[l] if j == 0 else None
            ax.plot(xs, v_GxSxExL[:, :, e, l].mean(1), color=f"C{l}", alpha=alpha, marker="o", ms=3, label=lab)
    epochs = ", ".join(str(int(plane.epochs[e])) for e in shown)
    ax.set(xscale="log", xlabel=setting.replace("_", " "), title=f"epochs {epochs} (light to dark)")
    ax.set_ylabel(f"{'I(X;T)' if name == 'i_xt' else 'I(T;Y)'} [{plane.measured.get('units', 'bits')}]")
    ax.legend(fontsize=7)
    return ax.figure


def agreement_figure(rows: list[str], cols: list[str], panels: dict, *, title: str):
    """Heatmaps (one per panel key: (agreement rows x cols of True / False / None, mean absolute error rows x
    cols)) of rows x cols: green where the estimator agrees with the reference on the presence of compression,
    red where not, grey where either is undecided; each cell annotated with its mean absolute error."""
    from matplotlib.colors import ListedColormap

    fig = Figure(figsize=(1.0 + 0.7 * len(cols) * len(panels), 0.9 + 0.32 * len(rows)), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    cmap = ListedColormap(["#d9534f", "#bbbbbb", "#5cb85c"])  # disagrees, undecided, agrees
    for ax, (name, (agree_RxC, mae_RxC)) in zip(axes, panels.items()):
        a = np.array([[0.5 if x is None else float(x) for x in row] for row in agree_RxC])
        ax.imshow(a, cmap=cmap, vmin=0, vmax=1, aspect="auto")
        for (r, c), m in np.ndenumerate(np.asarray(mae_RxC)):
            ax.text(c, r, f"{m:.2g}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(cols)), cols, fontsize=8)
        ax.set_yticks(range(len(rows)), rows if ax is axes[0] else [""] * len(rows), fontsize=8)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def compression_heatmap(panels: dict, *, title: str = ""):
    """One heatmap per panel ({panel title: {row label: ``claims.hidden_drops`` of a plane}}, the same rows in
    each): each hidden layer's peak-to-final I(X;T) drop as a fraction of its peak (blue: a rise, red: a drop),
    "C" where the layer compresses by the verdict rule. A Figure."""
    from matplotlib.colors import TwoSlopeNorm

    rows = list(next(iter(panels.values())))
    fig = Figure(figsize=(2.2 + 2.6 * len(panels), 1.2 + 0.3 * len(rows)), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, st) in zip(axes, panels.items()):
        rel = np.array([st[lab]["drop"] / np.maximum(st[lab]["peak"], 1e-9) for lab in rows])
        im = ax.imshow(rel, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -0.25, 1.0), aspect="auto")
        for (r, c), comp in np.ndenumerate(np.array([st[lab]["compresses"] for lab in rows])):
            ax.text(c, r, "C" if comp else "", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(rel.shape[1]), [f"T{l + 1}" for l in range(rel.shape[1])], fontsize=8)
        ax.set_yticks(range(len(rows)), rows if ax is axes[0] else [""] * len(rows), fontsize=7)
        ax.set_title(f"{name}", fontsize=9)
    fig.colorbar(im, ax=axes[-1], label="peak-to-final drop / peak I(X;T)")
    fig.suptitle(title, fontsize=9)
    return fig


def smoothed_vs_exact_figures(r: dict, sigma: float, *, refs=None, what: str = "single noisy tanh neuron") -> tuple:
    """The two figures of ``pipeline.smoothed_vs_exact``'s result ``r`` (one panel per seed, log epoch axis): the
    sample-propagation I(X;T) ± 2 SE beside the exact curve, with reference lines ``refs`` {label: (y, style)};
    and each input symbol's position (± sigma, the noise). (Figure, Figure)."""
    x = r["plane"].epochs + 1.0
    est = {"sample propagation": (r["est"], 2 * r["se"], "C0"), "exact (quadrature)": (r["exact"], None, "k--")}
    title = f"{what}, sigma = {sigma}; shaded ± 2 SE"
    fig1 = seed_panels(x, est, ylabel="I(X;T) [bits]", ylim=(0, 2.1), refs=refs, title=title)
    symbols = {f"x = {v:g}": (r["symbols"][:, :, k], sigma, None) for k, v in enumerate(r["x"])}
    title = "symbol positions (shaded: ± sigma, the noise)"
    return fig1, seed_panels(x, symbols, ylabel="tanh(w x + b)", ylim=(-1.15, 1.15), title=title)


def sweep_vs_reference(plane, setting: str, layer: int, reference: dict, *, title: str = "", name: str = ""):
    """A swept estimator setting against a reference: left, T ``layer``'s I(X;T) over epochs at every value of
    ``plane.sweep[setting]`` (± 2 SE over seeds) beside the ``reference`` curves {label: (x, values S x E)} in
    black; right, ``mi_vs_setting`` of the hidden layers (all T but the last). ``name``: how to call the plane's
    estimate. A Figure."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    v, values = plane.values["i_xt"], plane.sweep[setting]
    curves = {
        f"{name} {setting.replace('_', ' ')} {s:g}": (plane.epochs + 1.0, v[g, :, :, layer])
        for g, s in enumerate(values)
    }
    colors = [f"C{g}" for g in range(len(values))] + ["k"] * len(reference)
    kw = dict(colors=colors, legend=6, xlabel="epoch + 1", ylabel="I(X;T) [bits]")
    bands(ax1, curves | reference, title=plane.layer_names[layer], **kw)
    mi_vs_setting(plane, setting, ax=ax2, layers=range(plane.shape[3] - 1))
    ax2.set_title(f"{title}, {ax2.get_title()}" if title else ax2.get_title(), fontsize=8)
    return fig


def skipping_tradeoff(r: dict) -> Figure:
    """Epoch skipping (``pipeline.compare_skipping``'s result): left, each strategy's max and mean interpolation
    error against the share of kept epochs it evaluated; right, its wall and CPU time beside the full evaluation's."""
    rows = r["rows"]
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax_err, ax_t = fig.subplots(1, 2)
    for kind, marker in zip(("every", "approx", "exact"), "s^o"):
        rs = [row for row in rows if row["strategy"] == kind]
        if not rs:
            continue
        frac = [row["fraction_evaluated"] for row in rs]
        err = [max(row["max_error_norm"], 1e-6) for row in rs]
        (line,) = ax_err.plot(frac, err, marker=marker, label=f"{kind}: max")
        c = line.get_color()
        mean = [max(row["mean_error_norm"], 1e-6) for row in rs]
        ax_err.plot(frac, mean, marker=marker, ls="--", mfc="none", color=c, label=f"{kind}: mean")
        for row in rs:
            label = f"{'n' if kind == 'every' else 'δ'}={row['param']}"
            where = (row["fraction_evaluated"], row["max_error_norm"])
            ax_err.annotate(label, where, fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax_t.plot(frac, [row["seconds"] for row in rs], marker=marker, color=c, label=f"{kind}: wall")
        cpu = [row["cpu_seconds"] for row in rs]
        ax_t.plot(frac, cpu, marker=marker, color=c, ls="--", mfc="none", label=f"{kind}: CPU")
    share = "evaluated epochs / kept epochs"
    ax_err.set(xscale="log", yscale="log", xlabel=share, ylabel="interpolation error (normalised)")
    ax_err.legend(fontsize=7)
    full_s, full_cpu = r["full_seconds"], r["full_cpu_seconds"]
    ax_t.axhline(full_s, color="k", lw=1, ls=":", label=f"full evaluation: wall {full_s:.2f} s")
    ax_t.axhline(full_cpu, color="0.5", lw=1, ls=":", label=f"full evaluation: CPU {full_cpu:.2f} s")
    ax_t.set(xscale="log", yscale="log", xlabel=share, ylabel="time, compiled [s]")
    ax_t.legend(fontsize=7)
    fig.suptitle("epoch skipping against full evaluation (errors: max / mean over epochs, T's and seeds)", fontsize=10)
    return fig


def skipping_curves(r: dict, delta: float) -> Figure:
    """Run 0 of ``pipeline.compare_skipping``'s result: the full curves (thick), and the kept points and
    interpolation of both delta-skips at ``delta``."""
    epochs, full = r["epochs"], r["full"]
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, name, f in zip(fig.subplots(1, 2), ("I(X;T)", "I(T;Y)"), full):
        for l in range(f.shape[2]):
            (line,) = ax.plot(np.maximum(epochs, 0) + 1, f[:, 0, l], lw=2.5, alpha=0.3, label=f"layer {l + 1}")
            for kind, marker in (("exact", "o"), ("approx", "x")):
                res = r["results"][(kind, delta)]
                v = (res.i_xt if name == "I(X;T)" else res.i_ty)[:, l]  # run 0 is columns 0..L-1
                ls = "-" if kind == "exact" else ":"
                ax.plot(res.epochs + 1, v, marker=marker, ms=3, lw=0.7, color=line.get_color(), ls=ls)
        ax.set(xscale="log", xlabel="epoch + 1", ylabel=f"{name} [bits]")
    fig.axes[0].legend(fontsize=7)
    what = f"seed 0: full evaluation (thick), delta-skip exact (o, solid) and approx (x, dotted), delta = {delta}"
    fig.suptitle(what, fontsize=10)
    return fig


def filter_heatmaps(filters: dict, estimators) -> Figure:
    """Per-filter I(X;T) (mean over seeds) against epoch, one row per (network, estimator), one panel per
    convolutional layer; ``filters``: {network name: {estimator: per-filter plane}}."""
    rows = [(k, est) for k in filters for est in estimators]
    fig = Figure(figsize=(3.2 * 4, 2.6 * len(rows)), layout="constrained")
    n_l = max(len(filters[k][e].per_filter()[1]) for k, e in rows)
    axes = fig.subplots(len(rows), n_l, squeeze=False)
    for i, (k, est) in enumerate(rows):
        p = filters[k][est]
        a, conv = p.per_filter()
        for j, ax in enumerate(axes[i]):
            if j >= len(conv):
                ax.set_axis_off()
                continue
            m = a[:, :, j][:, :, ~np.isnan(a[0, 0, j])].mean(axis=0)  # E x F
            im = ax.imshow(m.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
            ax.set_xticks(range(len(p.epochs)), [str(e) for e in p.epochs], fontsize=7)
            ylabel = f"{k}\n{est}: filter" if j == 0 else "filter"
            ax.set(xlabel="epoch", ylabel=ylabel, title=f"layer {conv[j]}")
            fig.colorbar(im, ax=ax, label="I(X;T) [bits]")
    fig.suptitle("per-filter I(X;T) of every convolutional layer (mean over seeds), SGD networks", fontsize=10)
    return fig


def pooling_figure(pooled: dict, estimators) -> Figure:
    """Each convolutional T's I(X;T) before (solid) and after (dashed) 2x2 max pooling, mean over seeds, one
    line pair per epoch; ``pooled``: {network name: {estimator: pooled-view plane}}."""
    fig = Figure(figsize=(4.0 * len(estimators), 3.2 * len(pooled)), layout="constrained")
    axes = fig.subplots(len(pooled), len(estimators), squeeze=False)
    for i, k in enumerate(pooled):
        for j, est in enumerate(estimators):
            p, ax = pooled[k][est], axes[i, j]
            (before, coords), (after, _) = p.select(pool="before"), p.select(pool="after")
            n = len(before)
            for e in range(p.i_xt.shape[1]):
                kw = dict(color=f"C{e}", ms=4)
                ax.plot(
                    np.arange(n) - 0.1, p.i_xt[:, e, before].mean(0), "o-", label=f"before, epoch {p.epochs[e]}", **kw
                )
                ax.plot(
                    np.arange(n) + 0.1, p.i_xt[:, e, after].mean(0), "s--", label=f"after, epoch {p.epochs[e]}", **kw
                )
            ax.set_xticks(range(n), [f"layer {c['layer']}" for c in coords], fontsize=8)
            ax.set(ylabel=f"{k}\nI(X;T) [bits]" if j == 0 else "", title=est if i == 0 else "")
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    fig.suptitle("each convolutional T before (solid) and after (dashed) 2x2 max pooling; mean over seeds", fontsize=10)
    return fig


def exact_agreement(errors: dict) -> Figure:
    """``agreement_figure`` of ``claims.vs_exact`` results ({network: result}): per network, estimator setting x
    layer, whether the setting agrees with the exact plane on compression, annotated with its mean |I(X;T) error|."""
    first = next(iter(errors.values()))
    labels = [lab for lab, v in first.items() if isinstance(v, dict) and "mae_i_xt" in v]
    layers = [f"T{l + 1}" for l in range(len(first["exact outcome"]))]
    panels = {
        n: ([e[lab]["agrees"] for lab in labels], np.array([e[lab]["mae_i_xt"] for lab in labels]))
        for n, e in errors.items()
    }
    title = "agrees with the exact plane on compression (green) / not (red) / undecided (grey); numbers: mean |I(X;T) error| in bits"
    return agreement_figure(labels, layers, panels, title=title)


def overlay_views(planes: dict, columns, views: tuple, *, late_epoch: float | None = None) -> Figure:
    """I(X;T) of each hidden layer against epoch, one panel per column: the second view (solid, e.g. as-if-random
    windows, plotted at each window's first epoch) over the first (dashed, per epoch), means over seeds; ``planes``
    {(column, view): plane}; a dotted line at ``late_epoch``."""
    fig = Figure(figsize=(5.2 * len(columns), 4), layout="constrained")
    for ax, col in zip(fig.subplots(1, len(columns), squeeze=False)[0], columns):
        per, win = planes[(col, views[0])], planes[(col, views[1])]
        for l in range(per.shape[3] - 1):
            (line,) = ax.plot(per.epochs + 1, per.mean("i_xt")[:, l], ls="--", lw=1, alpha=0.8)
            ax.plot(win.epochs + 1, win.mean("i_xt")[:, l], lw=1.6, color=line.get_color(), label=f"layer {l + 1}")
        if late_epoch is not None:
            ax.axvline(late_epoch, color="0.6", lw=0.8, ls=":")
        ax.set(xscale="log", xlabel="epoch + 1 (window: its first epoch)", ylabel="I(X;T) [bits]", title=col)
        ax.legend(fontsize=7)
    n_s = next(iter(planes.values())).shape[1]
    what = f"solid: {views[1]} kept epochs pooled (as-if-random); dashed: {views[0]}; mean over {n_s} seed(s)"
    fig.suptitle(what + ("; dotted: start of late training" if late_epoch is not None else ""), fontsize=10)
    return fig


def ib_bound_figures(tasks: dict, seeds: int) -> tuple:
    """Figures of ``pipeline.ib_bound_planes`` results ({task: result with "full" and "small" planes}): every
    layer's plane over the task's IB curve (black); each layer's final distance below the curve and its
    IB-equation gap beside a random encoder's; the last hidden layer's I(T;Y) with the full and the small
    training set. (planes, distance, small_data) Figures."""
    fig = Figure(figsize=(6.4 * len(tasks), 4.8), layout="constrained")
    for ax, r in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks.values()):
        info_plane(r["full"], ax=ax, title=f"{r['data']}: {seeds} seed(s); black: IB curve")
        ax.plot(r["curve"].hull_xt, r["curve"].hull_ty, "k-", lw=1.5)
        if r["curve"].caveat:
            ax.text(0.02, 0.02, "deterministic Y: the IB curve is the corner", transform=ax.transAxes, fontsize=8)
    fig2 = Figure(figsize=(11, 4), layout="constrained")
    a, b = fig2.subplots(1, 2)
    for k, r in enumerate(tasks.values()):
        p = r["full"]
        d, x = r["curve"].distance(p.i_xt[:, -1], p.i_ty[:, -1]), np.arange(1, p.shape[3] + 1) + 0.2 * (k - 0.5)
        a.errorbar(x, d.mean(0), yerr=d.std(0), fmt="o", capsize=3, label=r["data"])
        b.errorbar(x, r["gap"].mean(0), yerr=r["gap"].std(0), fmt="o", capsize=3, label=f"{r['data']}: layer")
        b.plot(x, r["gap_random"].mean(0), "x", label=f"{r['data']}: random encoder, same symbols")
    a.set(xlabel="layer", ylabel="final distance below the IB curve [bits]")
    b.set(xlabel="layer", ylabel="IB-equation gap, min over beta [bits]", yscale="symlog")
    a.legend(fontsize=8), b.legend(fontsize=7)
    fig3 = Figure(figsize=(6.4, 4), layout="constrained")
    ax = fig3.subplots()
    for r in tasks.values():
        for size in ("full", "small"):
            p = r[size]
            ax.plot(p.epochs, p.mean("i_ty")[:, p.shape[3] - 2], label=f"{r['data']}, {size} training set")
    ax.set(xscale="symlog", xlabel="epoch", ylabel="I(T;Y) of the last hidden layer [bits]")
    ax.legend(fontsize=8)
    return fig, fig2, fig3
