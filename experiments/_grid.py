"""A grid of estimator settings evaluated on the same run directories, and how to read compression off it.

Shared by experiments that compare estimators on one set of networks (``quantized``, ``robustness``).
A grid is a list of ``Setting(label, estimator, options, sweep)``; settings that differ only in a
traced option are one entry with a ``sweep`` (one call, a leading settings axis), which ``evaluate``
splits back into one single-setting ``InfoPlane`` per label.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ibjax import claims, pipeline


class Setting(NamedTuple):
    label: str  # with a sweep: a format string with {} for the swept value, e.g. "KDE var {:g}"
    estimator: str
    options: dict
    sweep: dict | None = None  # {option: values} of ONE traced option


def evaluate(dirs, grid, out, *, epochs="all", recompute: bool = False, log=print) -> dict:
    """label -> single-setting InfoPlane (S x E x L arrays via ``.i_xt``) for every setting of ``grid``
    (``recompute``: the study's ``--force``, no saved plane reused)."""
    planes = {}
    for s in grid:
        where = out / slug(s.label) if out is not None else None  # one result file per setting
        plane = pipeline.evaluate_runs(
            dirs,
            s.estimator,
            dict(s.options),
            epochs=epochs,
            sweep=s.sweep,
            out=where,
            nan_policy="mark",
            recompute=recompute,
            log=log,
        )  # NaN where an estimator is undefined
        if not s.sweep:
            planes[s.label] = plane
            continue
        ((name, values),) = s.sweep.items()
        for g, v in enumerate(values):
            planes[s.label.format(v)] = plane.setting(g)
    return planes


def dpi_check(plane) -> dict:
    """claims.dpi on every layer of a deterministic network (the output layer included): an estimate
    with I(X;T_l) clearly below I(X;T_l+1) measures its own bias there."""
    i_xt = np.asarray(plane.i_xt, float)
    if not np.isfinite(i_xt).all():
        return {"violations": None, "reason": "non-finite values"}
    return claims.dpi(i_xt)


def binary_inputs(run_cfg) -> bool:
    """Whether the run's inputs are all 0 or 1 (where KSG's Chebyshev neighbourhoods degenerate)."""
    return bool(np.isin(pipeline.load_data(run_cfg).x, (0, 1)).all())


def unusable(plane, dpi: dict, binary_x: bool) -> str:
    """Why a setting's plane cannot vote on compression ("" when it can): it breaks the data-processing
    inequality (its numbers measure the estimator's bias), or it is KSG on binary inputs, where every two
    distinct inputs are at Chebyshev distance 1, so each point's X-neighbourhood at the joint k-NN radius
    holds all N inputs and the estimate no longer follows I(X;T) (the DPI check need not catch it)."""
    if dpi.get("violations"):
        return (
            f"undecided: violates the data-processing inequality at {dpi['violations']} of {dpi['cells']} "
            f"(epoch, layer) cells (I(X;T_l+1) up to {dpi['worst excess [bits]']:.2f} bits above I(X;T_l))"
        )
    if plane.estimator == "knn" and binary_x:
        return (
            "undecided: KSG on binary inputs (every pair of distinct inputs at Chebyshev distance 1: the "
            "X-neighbourhood of each point holds all N inputs)"
        )
    return ""


def slug(label: str) -> str:
    """A file-name-safe form of a setting's label."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label.replace("{:g}", "sweep")).strip("_")


def outcomes(plane) -> list[str]:
    """Per T (the output layer included): the verdict module's compression outcome ("compresses", "does
    not compress", "undecided") at the plane's cap log2 N; "undefined" where an estimate is NaN."""
    i_xt = np.asarray(plane.i_xt, float)
    if not np.isfinite(i_xt).all():
        return ["undefined"] * i_xt.shape[2]
    return [claims.decide(st).outcome for st in claims.layers(i_xt, plane.epochs, cap=claims.cap_xt(plane))]


def agreement(outcomes_L: list[str], reference_L: list[str]) -> list[bool | None]:
    """Per T: True / False where the outcome and the reference are both decided, else None."""
    decided = ("compresses", "does not compress")
    return [a == b if a in decided and b in decided else None for a, b in zip(outcomes_L, reference_L)]


def agreement_figure(rows: list[str], cols: list[str], panels: dict, *, title: str):
    """Heatmaps (one per panel key) of rows x cols: green where the estimator agrees with the reference on
    the presence of compression, red where not, grey where either is undecided; each cell annotated with
    its mean absolute error."""
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

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
