"""Figures: the information plane coloured by epoch, MI against epoch, loss curves. matplotlib only."""

from __future__ import annotations

import io as _io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

from ibjax import io  # noqa: E402

MARKERS = "os^Dvp*hX<>8"


def _epoch_norm(epochs_E, log_color: bool):
    lo, hi = float(np.min(epochs_E)), float(np.max(epochs_E))
    if log_color:
        return LogNorm(vmin=max(lo, 0) + 1, vmax=hi + 1), np.asarray(epochs_E, float) + 1
    return Normalize(vmin=lo, vmax=max(hi, lo + 1)), np.asarray(epochs_E, float)


def info_plane(epochs_E, i_xt_ExL, i_ty_ExL, *, ax=None, log_color: bool = True, cmap: str = "viridis",
               title: str | None = None, layer_names=None, units: str = "bits"):
    """x = I(X;T), y = I(T;Y): a thin line per kept epoch through the layers, a marker per layer,
    colour = epoch (log scale by default; the colourbar shows epoch + 1 on a log scale)."""
    i_xt_ExL, i_ty_ExL = np.asarray(i_xt_ExL), np.asarray(i_ty_ExL)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.8))
    norm, cval = _epoch_norm(epochs_E, log_color)
    segs = np.stack([i_xt_ExL, i_ty_ExL], axis=-1)  # E x L x 2
    lc = LineCollection(segs, cmap=cmap, norm=norm, linewidths=0.4, alpha=0.5)
    lc.set_array(cval)
    ax.add_collection(lc)
    n_layers = i_xt_ExL.shape[1]
    names = layer_names or [f"layer {l + 1}" for l in range(n_layers)]
    for l in range(n_layers):  # plotting edge: a handful of layers
        sc = ax.scatter(i_xt_ExL[:, l], i_ty_ExL[:, l], c=cval, cmap=cmap, norm=norm, s=14,
                        marker=MARKERS[l % len(MARKERS)], edgecolors="none", label=names[l])
    ax.autoscale()
    ax.set_xlabel(f"I(X;T) [{units}]")
    ax.set_ylabel(f"I(T;Y) [{units}]")
    leg = ax.legend(loc="lower right", fontsize=7, markerscale=1.0)
    for h in leg.legend_handles:
        h.set_color("0.3")
    cb = ax.figure.colorbar(sc, ax=ax)
    cb.set_label("epoch + 1" if log_color else "epoch")
    if title:
        ax.set_title(title)
    return ax


def mi_vs_epoch(epochs_E, i_xt_ExL, i_ty_ExL, *, units: str = "bits", logx: bool = True):
    """Two panels: I(X;T_l) and I(T_l;Y) against epoch, one line per layer."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.asarray(epochs_E) + (1 if logx else 0)
    for ax, v, name in zip(axes, (i_xt_ExL, i_ty_ExL), ("I(X;T)", "I(T;Y)")):
        ax.plot(x, np.asarray(v))
        ax.set_xscale("log" if logx else "linear")
        ax.set_xlabel("epoch + 1" if logx else "epoch")
        ax.set_ylabel(f"{name} [{units}]")
    axes[1].legend([f"layer {l + 1}" for l in range(np.asarray(i_xt_ExL).shape[1])], fontsize=7)
    fig.tight_layout()
    return fig


def loss_curves(metrics: dict, *, logx: bool = True):
    """Train and test loss (and accuracy) against epoch; ``metrics`` arrays may carry a seed axis first."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, style in (("train_loss", "-"), ("test_loss", "--")):
        v = np.asarray(metrics[key])
        v = v.reshape(-1, v.shape[-1]).mean(0)
        a1.plot(np.arange(1, len(v) + 1), v, style, label=key)
    for key, style in (("train_acc", "-"), ("test_acc", "--")):
        v = np.asarray(metrics[key])
        v = v.reshape(-1, v.shape[-1]).mean(0)
        a2.plot(np.arange(1, len(v) + 1), v, style, label=key)
    for ax, lab in ((a1, "cross-entropy [nats]"), (a2, "accuracy")):
        ax.set_xscale("log" if logx else "linear")
        ax.set_xlabel("epoch")
        ax.set_ylabel(lab)
        ax.legend(fontsize=8)
    a1.set_yscale("log")
    fig.tight_layout()
    return fig


def save(fig, path: str | Path, *, dpi: int = 130) -> Path:
    """Save atomically (render to memory, then rename into place) and close the figure."""
    buf = _io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    io.atomic_write_bytes(path, buf.getvalue())
    return Path(path)
