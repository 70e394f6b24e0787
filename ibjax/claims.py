"""One verdict rule for the studies' claims: compression statistics, a decision, and the reason.

A layer *compresses* when its I(X;T) falls from its peak to the last evaluated epoch by more than a
stated threshold, clearly (the whole confidence interval over seeds above it); it *does not* when
the whole interval lies below it; anything else is *undecided*, with the reason:

* ``saturated``: the estimate sits within ``ceiling_tol`` of its cap (log2 N for I(X;T) on N
  distinct inputs, H(Y) for I(T;Y), an estimator's own bound), where no drop can show. A clear drop
  from the cap is still a drop (the true peak can only be higher); "does not compress" at the cap
  is never a finding;
* ``no power``: the interval straddles the threshold, or there is one seed (no interval).

    stat = claims.compression(plane.i_xt[:, :, layer], plane.epochs, cap=claims.cap_xt(plane))
    v = claims.decide(stat, want="compresses")           # Verdict(agrees=True | False | None, ...)
    claims.entry("the last hidden layer compresses", "Shwartz-Ziv & Tishby 2017", v, measured=stat.summary())

``compare`` decides a difference of two conditions on the same statistic with the combined error;
``positive`` decides the sign of any per-seed quantity. Every summary names the rule (``RULE``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class Rule:
    """Thresholds of the verdict rule (one default set; override by ``dataclasses.replace``)."""

    name: str = "ibjax-verdict/1"
    min_drop_bits: float = 0.1  # a drop must exceed max(min_drop_bits, min_drop_frac * peak)
    min_drop_frac: float = 0.05
    level: float = 0.95  # two-sided confidence level of the interval over seeds (Student t)
    ceiling_tol_bits: float = 0.05  # "at the cap": within max(ceiling_tol_bits, ceiling_tol_frac * cap)
    ceiling_tol_frac: float = 0.01

    def __post_init__(self):
        for f in ("min_drop_bits", "min_drop_frac", "ceiling_tol_bits", "ceiling_tol_frac"):
            if not getattr(self, f) >= 0:
                raise ValueError(f"Rule.{f} must be >= 0, got {getattr(self, f)}")
        if not 0 < self.level < 1:
            raise ValueError(f"Rule.level must be in (0, 1), got {self.level}")

    def threshold(self, peak: float) -> float:
        return max(self.min_drop_bits, self.min_drop_frac * abs(peak))

    def tolerance(self, cap: float) -> float:
        return max(self.ceiling_tol_bits, self.ceiling_tol_frac * abs(cap))

    def describe(self) -> dict:
        return dataclasses.asdict(self)


RULE = Rule()
OUTCOMES = ("compresses", "does not compress", "undecided")


class Interval(NamedTuple):
    mean: float
    se: float
    lo: float
    hi: float
    n: int


def interval(values_S, rule: Rule = RULE) -> Interval:
    """Mean over seeds with its standard error and Student-t interval (infinite for one seed)."""
    from scipy import stats

    v = np.asarray(values_S, np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"values_S must be finite and non-empty, got {v.tolist()[:8]}")
    m = float(v.mean())
    if v.size < 2:
        return Interval(m, float("nan"), -np.inf, np.inf, 1)
    se = float(v.std(ddof=1) / np.sqrt(v.size))
    h = float(stats.t.ppf(0.5 + rule.level / 2, v.size - 1)) * se
    return Interval(m, se, m - h, m + h, int(v.size))


def combined(a: Interval, b: Interval, rule: Rule = RULE) -> Interval:
    """a - b with the combined standard error (Welch's degrees of freedom)."""
    from scipy import stats

    if a.n < 2 or b.n < 2:
        return Interval(a.mean - b.mean, float("nan"), -np.inf, np.inf, min(a.n, b.n))
    va, vb = a.se**2, b.se**2
    se = float(np.sqrt(va + vb))
    dof = (va + vb) ** 2 / max(va**2 / (a.n - 1) + vb**2 / (b.n - 1), 1e-300)
    h = float(stats.t.ppf(0.5 + rule.level / 2, dof)) * se if se > 0 else 0.0
    d = a.mean - b.mean
    return Interval(d, se, d - h, d + h, a.n + b.n)


@dataclass(frozen=True)
class Stat:
    """Compression statistic of one T over seeds: peak-to-final drop (bits and fraction of the peak)."""

    drop: Interval  # peak - final, bits
    frac: Interval  # (peak - final) / peak
    gain: Interval  # peak - first: the fitting half ("first gains")
    peak: float  # mean over seeds of each seed's peak
    final: float
    peak_epoch: float  # median over seeds of the epoch of the peak
    top: float  # highest value of the seed-mean curve (what the ceiling guard looks at)
    cap: float | None
    units: str = "bits"

    def summary(self, digits: int = 4) -> dict:
        r = lambda x: None if x is None or not np.isfinite(x) else round(float(x), digits)
        iv = lambda i: {"mean": r(i.mean), "se": r(i.se), "ci": [r(i.lo), r(i.hi)], "n_seeds": i.n}
        return {
            f"peak-to-final drop [{self.units}]": iv(self.drop),
            "drop / peak": iv(self.frac),
            f"peak minus first [{self.units}]": iv(self.gain),
            "peak": r(self.peak),
            "final": r(self.final),
            "peak epoch (median)": r(self.peak_epoch),
            "cap": r(self.cap),
        }


def compression(values_SxE, epochs_E=None, *, cap: float | None = None, rule: Rule = RULE, units: str = "bits") -> Stat:
    """The compression statistic of one T from its values over seeds x epochs."""
    v = np.asarray(values_SxE, np.float64)
    if v.ndim != 2 or v.shape[1] < 2:
        raise ValueError(f"values_SxE must be seeds x epochs with >= 2 epochs, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"values_SxE holds {int((~np.isfinite(v)).sum())} non-finite value(s): no verdict on NaN")
    epochs_E = np.arange(v.shape[1]) if epochs_E is None else np.asarray(epochs_E)
    if len(epochs_E) != v.shape[1]:
        raise ValueError(f"epochs_E has {len(epochs_E)} entries, values_SxE {v.shape[1]} epochs")
    peak_S, final_S, first_S = v.max(axis=1), v[:, -1], v[:, 0]
    frac_S = np.where(peak_S > 0, (peak_S - final_S) / np.where(peak_S > 0, peak_S, 1.0), 0.0)
    return Stat(
        interval(peak_S - final_S, rule),
        interval(frac_S, rule),
        interval(peak_S - first_S, rule),
        float(peak_S.mean()),
        float(final_S.mean()),
        float(np.median(epochs_E[v.argmax(axis=1)])),
        float(v.mean(axis=0).max()),
        None if cap is None else float(cap),
        units,
    )


class Verdict(NamedTuple):
    agrees: bool | None  # with the claim as stated (``want``); None: undecided
    outcome: str  # one of OUTCOMES (or "holds" / "fails" / "undecided" for positive / compare)
    effect: float
    interval: tuple
    threshold: float
    reason: str  # why undecided ("" when decided)


def _ceiling_reason(stat: Stat, rule: Rule) -> str:
    if stat.cap is not None and stat.top >= stat.cap - rule.tolerance(stat.cap):
        return f"saturated at its cap {stat.cap:.2f} {stat.units} (highest mean {stat.top:.2f})"
    return ""


def decide(stat: Stat, *, want: str = "compresses", rule: Rule = RULE) -> Verdict:
    """Compresses / does not compress / undecided, and whether that agrees with ``want``."""
    if want not in OUTCOMES[:2]:
        raise ValueError(f"want must be one of {OUTCOMES[:2]}, got {want!r}")
    thr, d = rule.threshold(stat.peak), stat.drop
    outcome, reason = _classify(
        d,
        thr,
        OUTCOMES[0],
        OUTCOMES[1],
        f"the drop's {rule.level:.0%} interval [{d.lo:.3f}, {d.hi:.3f}] straddles the threshold {thr:.3f}",
    )
    saturated = _ceiling_reason(stat, rule)
    if saturated and outcome != "compresses":
        outcome, reason = "undecided", saturated
    agrees = None if outcome == "undecided" else outcome == want
    return Verdict(agrees, outcome, d.mean, (d.lo, d.hi), thr, reason)


def positive(
    values_S, *, threshold: float = 0.0, want: bool = True, rule: Rule = RULE, what: str = "the value"
) -> Verdict:
    """Is the per-seed quantity above ``threshold`` (interval above: holds; below: fails)?"""
    i = interval(values_S, rule)
    return _sign(i, threshold, want, rule, what)


def compare(
    a: Interval, b: Interval, *, margin: float = 0.0, want: bool = True, rule: Rule = RULE, what: str = "a - b"
) -> Verdict:
    """Is a - b above ``margin`` (two conditions' statistics with their combined error)?"""
    return _sign(combined(a, b, rule), margin, want, rule, what)


def _classify(i: Interval, threshold: float, above: str, below: str, straddles: str) -> tuple[str, str]:
    """``above`` / ``below`` when the whole interval is on one side of ``threshold``, else undecided."""
    if i.lo > threshold:
        return above, ""
    if i.hi < threshold:
        return below, ""
    return "undecided", "no power: one seed, no interval" if i.n < 2 else f"no power: {straddles}"


def _sign(i: Interval, threshold: float, want: bool, rule: Rule, what: str) -> Verdict:
    outcome, reason = _classify(
        i,
        threshold,
        "holds",
        "fails",
        f"{what}'s {rule.level:.0%} interval [{i.lo:.3g}, {i.hi:.3g}] contains {threshold:g}",
    )
    agrees = None if outcome == "undecided" else (outcome == "holds") == want
    return Verdict(agrees, outcome, i.mean, (i.lo, i.hi), threshold, reason)


def dpi(values_SxExL, *, rule: Rule = RULE) -> dict:
    """The data-processing inequality on a deterministic network: I(X;T_l) >= I(X;T_{l+1}) at every
    epoch. A cell (epoch, l) *violates* it when the whole interval over seeds of I(X;T_l) - I(X;T_{l+1})
    lies below -min_drop_bits (with one seed: the difference itself); an estimate that violates it
    measures its own bias, not information. Returns the count, the cells checked, the worst excess
    [bits] and up to 10 (epoch position, l) pairs (l counted from 1: T_l then T_{l+1})."""
    v = np.asarray(values_SxExL, np.float64)
    if v.ndim != 3 or v.shape[2] < 2:
        raise ValueError(f"values_SxExL must be seeds x epochs x layers with >= 2 layers, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"values_SxExL holds {int((~np.isfinite(v)).sum())} non-finite value(s): no DPI check on NaN")
    d = v[:, :, :-1] - v[:, :, 1:]  # S x E x (L - 1): >= 0 where the DPI holds
    mean = d.mean(axis=0)
    if v.shape[0] < 2:
        hi = mean
    else:
        from scipy import stats

        se = d.std(axis=0, ddof=1) / np.sqrt(v.shape[0])
        hi = mean + float(stats.t.ppf(0.5 + rule.level / 2, v.shape[0] - 1)) * se
    bad = hi < -rule.min_drop_bits
    where = [[int(e), int(l) + 1] for e, l in zip(*np.nonzero(bad))]
    return {
        "violations": int(bad.sum()),
        "cells": int(bad.size),
        "worst excess [bits]": round(float(max(0.0, -mean.min())), 4),
        "where (epoch position, layer l: I(X;T_l) < I(X;T_l+1))": where[:10],
        "rule": f"violated where the {rule.level:.0%} interval of I(X;T_l) - I(X;T_l+1) lies below "
        f"-{rule.min_drop_bits:g} bits ({rule.name})",
    }


def cap_xt(plane) -> float:
    """log2 of the number of samples the plane was measured on (the cap of I(X;T) on distinct inputs)."""
    n = plane.measured.get("n_samples")
    if not n:
        raise ValueError("the plane does not record n_samples: pass cap= explicitly")
    return float(np.log2(n))


def cap_ty(y_N) -> float:
    """H(Y) in bits: the cap of I(T;Y)."""
    _, counts = np.unique(np.asarray(y_N), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def entry(claim: str, source: str, verdict: Verdict, measured: dict | None = None, rule: Rule = RULE) -> dict:
    """A summary.json claim: the paper's claim, ours, and the verdict with effect, interval and reason."""
    r = lambda x: None if not np.isfinite(x) else round(float(x), 4)
    out = {
        "claim": claim,
        "source": source,
        "measured": measured or {},
        "agrees": verdict.agrees,
        "outcome": verdict.outcome,
        "effect": r(verdict.effect),
        "interval": [r(x) for x in verdict.interval],
        "threshold": r(verdict.threshold),
        "rule": rule.name,
    }
    if verdict.agrees is None:
        out["reason"] = verdict.reason
    return out
