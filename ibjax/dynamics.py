"""Training dynamics from the metrics every run records: the gradient signal-to-noise ratio per layer
(the norm of the minibatch gradients' mean over the norm of their std, per epoch) and its phases.

Shwartz-Ziv & Tishby (2017, Sec. 3.3) describe a high-SNR "drift" phase turning into a low-SNR
"diffusion" phase; ``gradient_snr`` finds, per seed and layer, the early peak, the first epoch the
smoothed SNR falls below 1 (the transition) and the steepest decline, and says why when there is none.

    res = dynamics.gradient_snr(metrics["grad_mean_norm"], metrics["grad_std_norm"])  # S x E x L
    res["transition"]  # S x L epochs (NaN: none)

numpy only; the studies reach it as ``pipeline.gradient_snr``.
"""

from __future__ import annotations

import numpy as np

MIN_HALF = 2  # moving_median's window is at least n ± MIN_HALF epochs


def moving_median(x, window: float = 0.1, *, axis: int = 0, at=None, min_half: int = MIN_HALF):
    """Moving median along ``axis`` (consecutive epochs n = 1..E) over n(1 ± window), at least
    n ± min_half, truncated symmetrically at both ends of the run (a monotone curve passes unchanged);
    ``at``: only at these indices."""
    x = np.moveaxis(np.asarray(x, float), axis, 0)
    n_e = x.shape[0]
    i = np.arange(n_e) if at is None else np.asarray(at)
    half = np.minimum(np.minimum(np.maximum(np.floor(window * (i + 1)).astype(int), min_half), i), n_e - 1 - i)
    out = np.stack([np.median(x[k - h : k + h + 1], axis=0) for k, h in zip(i, half)])
    return np.moveaxis(out, 0, axis)


def log_slope(smoothed_E, window: float = 0.1):
    """d log y / d log n at every epoch n = 1..E: the curve's log difference between n(1 - w) and n(1 + w)
    over the log of their ratio."""
    n_e = len(smoothed_E)
    n = np.arange(1, n_e + 1)
    lo = np.maximum(1, np.floor(n * (1 - window)).astype(int))
    hi = np.minimum(n_e, np.ceil(n * (1 + window)).astype(int))
    with np.errstate(divide="ignore", invalid="ignore"):
        ls = np.log(np.asarray(smoothed_E, float))
        return (ls[hi - 1] - ls[lo - 1]) / np.log(hi / lo)


def snr_transition(snr_E, window: float = 0.1, *, smoothed_E=None) -> dict:
    """{epoch, steepest, peak_epoch, peak, reason} of one gradient SNR series over epochs n = 1..E, smoothed by
    ``moving_median``: peak is its maximum over n <= sqrt(E) (the early peak); epoch the first epoch after
    it with the smoothed SNR below 1, searched up to E / (1 + w) (None when the peak is not above 1: no drift
    phase, or it never falls below 1); steepest the epoch of the minimum of ``log_slope`` from the peak to
    E / (1 + w)^2. ``reason`` says why ``epoch`` is None (None when it is not)."""
    snr_E = np.asarray(snr_E, float)
    n_e = len(snr_E)
    sm = moving_median(snr_E, window) if smoothed_E is None else np.asarray(smoothed_E, float)
    early = max(1, int(np.sqrt(n_e)))
    if not np.isfinite(sm[:early]).any():
        return dict(epoch=None, steepest=None, peak_epoch=None, peak=None, reason="the SNR is undefined (NaN) early")
    k_peak = int(np.nanargmax(sm[:early]))
    peak = float(sm[k_peak])
    out = dict(epoch=None, steepest=None, peak_epoch=k_peak + 1, peak=peak, reason=None)
    stop = int(n_e / (1 + window) ** 2)
    if stop > k_peak + 1:
        s = log_slope(sm, window)[k_peak:stop]
        if np.isfinite(s).any():
            out["steepest"] = int(k_peak + np.nanargmin(s) + 1)
    if not peak > 1:
        out["reason"] = "no drift phase: the smoothed SNR is not above 1 early"
        return out
    below = np.nonzero(sm[k_peak : max(k_peak + 1, int(n_e / (1 + window)))] < 1)[0]  # whole windows only
    if not below.size:
        out["reason"] = "the smoothed SNR never falls below 1 (up to E / (1 + w))"
        return out
    out["epoch"] = int(k_peak + below[0] + 1)
    return out


def gradient_snr(mean_SxExL, std_SxExL, window: float = 0.1) -> dict:
    """The gradient SNR = norm of the minibatch gradients' mean / norm of their std per epoch (S x E x L,
    "snr"), its ``moving_median`` ("smoothed"), ``snr_transition``'s epochs, early peaks and peak epochs
    (S x L each: "transition", "steepest", "peak", "peak_epoch"; NaN where None, "reasons" why), the late SNR
    (median over n > E / 10, S x L: "late") and "undefined" (every SNR NaN: full batch, no minibatch std)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = (np.asarray(mean_SxExL) / np.asarray(std_SxExL)).astype(float)  # in the metrics' dtype, as saved
    n_s, n_e, n_l = snr.shape
    undefined = bool(np.isnan(snr).all())
    sm = np.full_like(snr, np.nan) if undefined else moving_median(snr, window, axis=1)
    found = [[snr_transition(snr[s, :, l], window, smoothed_E=sm[s, :, l]) for l in range(n_l)] for s in range(n_s)]
    get = lambda k: np.array([[np.nan if f[k] is None else f[k] for f in row] for row in found], float)
    late = np.full((n_s, n_l), np.nan) if undefined else np.median(snr[:, np.arange(1, n_e + 1) > n_e / 10], axis=1)
    return {
        "snr": snr,
        "smoothed": sm,
        "transition": get("epoch"),
        "steepest": get("steepest"),
        "peak": get("peak"),
        "peak_epoch": get("peak_epoch"),
        "late": late,
        "undefined": undefined,
        "reasons": [[f["reason"] for f in row] for row in found],
    }
