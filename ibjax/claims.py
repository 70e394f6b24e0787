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
``positive`` decides the sign of any per-seed quantity; ``network`` decides a network from its T
(one compresses: it compresses; all clearly do not: it does not); ``every`` joins one claim measured
several ways (estimators, settings); ``vote`` lets independent ones (estimator families) vote once each.
Every summary names the rule (``RULE``).
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


def seed_compresses(values_SxE, *, rule: Rule = RULE) -> np.ndarray:
    """Per seed (one curve, no interval): whether its own peak-to-final drop exceeds the rule's
    threshold max(min_drop_bits, min_drop_frac * peak). For per-seed quantities such as the epoch a
    seed starts compressing; a claim over seeds is decided by ``decide``."""
    v = np.asarray(values_SxE, np.float64)
    if v.ndim != 2 or v.shape[1] < 2 or not np.isfinite(v).all():
        raise ValueError(f"values_SxE must be finite seeds x epochs with >= 2 epochs, got shape {v.shape}")
    peak = v.max(axis=1)
    return peak - v[:, -1] > np.maximum(rule.min_drop_bits, rule.min_drop_frac * np.abs(peak))


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


def layers(values_SxExL, epochs_E=None, *, cap: float | None = None, rule: Rule = RULE) -> list[Stat]:
    """The compression statistic of each T (the last axis) of a seeds x epochs x T array."""
    v = np.asarray(values_SxExL, np.float64)
    if v.ndim != 3:
        raise ValueError(f"values_SxExL must be seeds x epochs x T, got shape {v.shape}")
    return [compression(v[:, :, l], epochs_E, cap=cap, rule=rule) for l in range(v.shape[2])]


def network(stats, *, want: str = "compresses", rule: Rule = RULE, names=None) -> Verdict:
    """A network (several T) compresses when one of its T clearly does, does not when every T clearly
    does not; else undecided, naming the undecided T and why. The effect is the largest mean drop."""
    stats = list(stats)
    if not stats:
        raise ValueError("stats must name at least one T")
    if want not in OUTCOMES[:2]:
        raise ValueError(f"want must be one of {OUTCOMES[:2]}, got {want!r}")
    names = list(names) if names is not None else [f"T{l + 1}" for l in range(len(stats))]
    vs = [decide(s, rule=rule) for s in stats]
    top = max(range(len(vs)), key=lambda l: vs[l].effect)
    if any(v.outcome == OUTCOMES[0] for v in vs):
        outcome, reason = OUTCOMES[0], ""
        top = max((l for l in range(len(vs)) if vs[l].outcome == OUTCOMES[0]), key=lambda l: vs[l].effect)
    elif all(v.outcome == OUTCOMES[1] for v in vs):
        outcome, reason = OUTCOMES[1], ""
    else:
        outcome = "undecided"
        reason = "; ".join(f"{n}: {v.reason}" for n, v in zip(names, vs) if v.outcome == "undecided")
    v = vs[top]
    agrees = None if outcome == "undecided" else outcome == want
    return Verdict(agrees, outcome, v.effect, v.interval, v.threshold, reason)


def every(verdicts: dict) -> Verdict:
    """One claim measured several ways (estimators, settings, layers): it agrees when every way agrees,
    disagrees when one clearly disagrees, else undecided naming the undecided ways. The effect and
    interval are those of the first way that decides the outcome."""
    if not verdicts:
        raise ValueError("verdicts must hold at least one verdict")
    items = list(verdicts.items())
    against = [(k, v) for k, v in items if v.agrees is False]
    if against:
        k, v = against[0]
        return v._replace(outcome=f"{v.outcome} ({k})")
    open_ = [(k, v) for k, v in items if v.agrees is None]
    if open_:
        k, v = open_[0]
        return v._replace(reason="; ".join(f"{k}: {v.reason}" for k, v in open_))
    return items[0][1]


def vote(verdicts: dict) -> Verdict:
    """Independent measurements of one claim (estimator families, estimators) vote once each: it agrees
    when more of them agree than disagree or abstain (undecided), disagrees when more disagree than
    agree or abstain; else undecided (no majority). The effect is the share of all votes that agree."""
    if not verdicts:
        raise ValueError("verdicts must hold at least one verdict")
    yes = [k for k, v in verdicts.items() if v.agrees is True]
    no = [k for k, v in verdicts.items() if v.agrees is False]
    open_ = [k for k, v in verdicts.items() if v.agrees is None]
    share = len(yes) / len(verdicts)
    tally = f"{len(yes)} agree ({', '.join(yes) or 'none'}), {len(no)} disagree ({', '.join(no) or 'none'}), {len(open_)} undecided"
    if len(yes) > len(no) + len(open_):
        return Verdict(True, "holds", share, (share, share), 0.5, "")
    if len(no) > len(yes) + len(open_):
        return Verdict(False, f"fails: {tally}", share, (share, share), 0.5, "")
    why = "; ".join(f"{k}: {verdicts[k].reason}" for k in open_)
    return Verdict(None, "undecided", share, (share, share), 0.5, f"no majority: {tally}" + (f"; {why}" if why else ""))


def holds(ok: bool, *, effect: float = float("nan"), threshold: float = float("nan"), what: str = "") -> Verdict:
    """A yes/no fact of the run that has no interval (a count, a ratio of evaluations): holds or fails."""
    return Verdict(
        bool(ok), "holds" if ok else f"fails{': ' + what if what else ''}", effect, (effect, effect), threshold, ""
    )


def positive(
    values_S, *, threshold: float = 0.0, want: bool = True, rule: Rule = RULE, what: str = "the value"
) -> Verdict:
    """Is the per-seed quantity above ``threshold`` (interval above: holds; below: fails)?"""
    i = interval(values_S, rule)
    return _sign(i, threshold, want, rule, what)


def gains_then_loses(values_SxE, epochs_E=None, *, cap: float | None = None, rule: Rule = RULE) -> Verdict:
    """The two halves of "first gains, then loses" (Shwartz-Ziv & Tishby): peak minus first above the
    rule's minimum change, and a drop that ``decide`` calls compression; each with its interval."""
    v = np.asarray(values_SxE, np.float64)
    return every(
        {
            "first gains": positive(
                v.max(axis=1) - v[:, 0], threshold=rule.min_drop_bits, rule=rule, what="peak - first"
            ),
            "then loses": decide(compression(v, epochs_E, cap=cap, rule=rule), rule=rule),
        }
    )


def rises(values_SxExL, *, cap: float, rule: Rule = RULE, names=None) -> dict:
    """Per T that starts below ``cap`` (H(Y) for I(T;Y): a T at its cap from the first epoch cannot rise):
    name -> whether its peak minus first value is above the rule's minimum change."""
    v = np.asarray(values_SxExL, np.float64)
    names = list(names) if names is not None else [f"T{l + 1}" for l in range(v.shape[2])]
    room = v[:, 0].mean(axis=0) < cap - rule.tolerance(cap)
    return {
        names[l]: positive(
            v[:, :, l].max(axis=1) - v[:, 0, l], threshold=rule.min_drop_bits, rule=rule, what=f"{names[l]}'s rise"
        )
        for l in np.flatnonzero(room)
    }


def after_fitting(i_xt_SxE, i_ty_SxE, *, share: float = 0.5, rule: Rule = RULE) -> Verdict:
    """Compression follows fitting: at the epoch of its I(X;T) peak, a T has done more than ``share`` of
    its I(T;Y) gain (peak minus first), per seed, the interval over seeds above ``share``; undecided
    without a gain above the rule's minimum change."""
    x, y = np.asarray(i_xt_SxE, np.float64), np.asarray(i_ty_SxE, np.float64)
    at, gain = x.argmax(axis=1), y.max(axis=1) - y[:, 0]
    if gain.mean() <= rule.min_drop_bits:
        return undecided(f"no I(T;Y) gain to share out (peak minus first {gain.mean():.3f} bits)")
    done = (y[np.arange(len(at)), at] - y[:, 0]) / np.maximum(gain, 1e-12)
    return positive(done, threshold=share, rule=rule, what="share of the I(T;Y) gain done at the I(X;T) peak")


def undecided(reason: str) -> Verdict:
    """A verdict the run cannot give, with the reason."""
    return Verdict(None, "undecided", float("nan"), (float("nan"), float("nan")), float("nan"), reason)


def trained_as_long(v: Verdict, epochs: int, paper_epochs: int, paper: str) -> Verdict:
    """``v``, unless it refutes the claim on a run trained for fewer epochs than the paper's runs (the paper's
    effect may come later): then undecided, naming both lengths (effect and interval kept)."""
    if v.agrees is not False or epochs >= paper_epochs:
        return v
    why = f"trained {epochs} epochs, {paper} {paper_epochs}: '{v.outcome}' within {epochs} epochs does not refute it"
    return v._replace(agrees=None, outcome="undecided", reason=why)


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


# --- tables of per-seed statistics, and claims made of parts -----------------------------------------


def mean_se(values_S) -> dict:
    """Mean and standard error over seeds (se 0 for one seed), rounded for JSON."""
    v = np.asarray(values_S, float)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return {"mean": round(float(v.mean()), 4), "se": round(se, 4), "n_seeds": int(len(v))}


def finite_mean_se(values_S, digits: int = 0) -> dict:
    """``mean_se`` over the seeds with a finite value, ``n_null`` seeds without, and every seed's value
    ("per_seed": None where not finite; integers for digits=0, else rounded to ``digits``)."""
    v = np.asarray(values_S, float)
    ok = v[np.isfinite(v)]
    stat = mean_se(ok) if ok.size else {"mean": None, "se": None, "n_seeds": 0}
    each = [None if not np.isfinite(x) else int(x) if digits == 0 else round(float(x), digits) for x in v]
    return {**stat, "n_null": int(v.size - ok.size), "per_seed": each}


def positive_finite(values_S, *, threshold: float = 0.0, what: str = "the value") -> Verdict:
    """``positive`` over the seeds with a finite value (a seed without an event has none);
    undecided when no seed has one."""
    v = np.asarray(values_S, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return undecided(f"{what}: no seed has a value")._replace(threshold=threshold)
    return positive(v, threshold=threshold, what=what)


def layer_table(columns: dict, *, names=None, digits: int = 0) -> dict:
    """A table of per-T statistics: for each T (the last axis of every S x L array in ``columns``, column
    name -> values_SxL), its name ("layer l" unless ``names``) -> column -> ``finite_mean_se`` over seeds."""
    arrays = {k: np.asarray(v, float) for k, v in columns.items()}
    n_l = next(iter(arrays.values())).shape[-1]
    names = list(names) if names is not None else [f"layer {l + 1}" for l in range(n_l)]
    return {names[l]: {k: finite_mean_se(v[..., l], digits) for k, v in arrays.items()} for l in range(n_l)}


def joint(*parts: Verdict) -> Verdict:
    """One claim made of several conditions that must all hold: agrees when every part agrees, disagrees when
    one disagrees, else undecided; outcome "holds" / "fails" / "undecided", the effect, interval and threshold
    of the first part and every part's reason joined."""
    agrees = [v.agrees for v in parts]
    agrees = False if False in agrees else None if None in agrees else True
    outcome = "holds" if agrees else "undecided" if agrees is None else "fails"
    reason = "; ".join(v.reason for v in parts if v.reason)
    return parts[0]._replace(agrees=agrees, outcome=outcome, reason=reason)


def peak_drop(values_SxExL) -> tuple:
    """Per seed and T the peak-to-final drop (peak over epochs minus the last epoch) and the peak: each S x L
    (a leading settings axis is kept: G x S x E x L gives G x S x L)."""
    v = np.asarray(values_SxExL)
    return v.max(axis=-2) - v[..., -1, :], v.max(axis=-2)


def layer_means(values_SxL, names=None) -> dict:
    """Each T's ``mean_se`` over seeds: name ("layer l" unless ``names``) -> {mean, se, n_seeds}."""
    names = names or [f"layer {l + 1}" for l in range(np.shape(values_SxL)[1])]
    return {n: mean_se(np.asarray(values_SxL)[:, l]) for l, n in enumerate(names)}


def setting_table(settings_G, values_GxSxL, names=None) -> dict:
    """A per-T statistic against an estimator setting: {"values": the G settings, T name ("layer l" unless
    ``names``): [its ``mean_se`` over seeds at each setting]}."""
    v = np.asarray(values_GxSxL)
    names = names or [f"layer {l + 1}" for l in range(v.shape[2])]
    return {"values": [float(s) for s in settings_G], **{n: [mean_se(g[:, l]) for g in v] for l, n in enumerate(names)}}


def depends_strongly(plane, option: str, layer: int, *, factor: float = 2.0, rule: Rule = RULE):
    """T ``layer``'s compression depends strongly on the swept estimator ``option`` of ``plane`` (G x S x E x L):
    at the setting with the largest mean peak-to-final I(X;T) drop the T compresses (``decide``, capped by
    ``cap_xt``), and that drop exceeds ``factor`` x the drop at the smallest-drop setting, paired over seeds
    (``positive``); undecided with one setting or without compression there."""
    settings_G, v = plane.sweep[option], np.asarray(plane.values["i_xt"])[..., layer]
    d_GxS = v.max(axis=-1) - v[..., -1]
    lo, hi = int(np.argmin(d_GxS.mean(axis=1))), int(np.argmax(d_GxS.mean(axis=1)))
    if len(settings_G) < 2:
        return undecided("one setting: nothing to compare")
    top = decide(compression(v[hi], plane.epochs, cap=cap_xt(plane), rule=rule), rule=rule)
    if top.outcome != "compresses":
        why = f"at the largest-drop setting {settings_G[hi]:g}: {top.reason or 'the layer does not compress at any setting'}"
        return top._replace(agrees=None, outcome="undecided", reason=why)
    what = f"drop at {settings_G[hi]:g} - {factor:g} x drop at {settings_G[lo]:g}"
    return positive(d_GxS[hi] - factor * d_GxS[lo], rule=rule, what=what)


def epochs_to_threshold(loss_E, threshold: float):
    """Epochs trained when the per-epoch loss first is <= threshold (index + 1), None if never."""
    hit = np.flatnonzero(np.asarray(loss_E, float) <= threshold)
    return int(hit[0]) + 1 if hit.size else None


def mean_se_all(values_S) -> dict:
    """``mean_se`` over seeds with every seed's value ("per_seed") and how many have one ("n_reached"; None: a
    seed without, such as a threshold never reached); mean and se None unless every seed has a value."""
    n_reached = sum(v is not None for v in values_S)
    out = mean_se(values_S) if n_reached == len(values_S) else {"mean": None, "se": None, "n_seeds": len(values_S)}
    return {**out, "n_reached": n_reached, "per_seed": list(values_S)}


def shown_cell(cell: dict, what: str):
    """A ``mean_se_all`` cell as a claim's measured shows it: mean, se and n_seeds, or when not every seed has a
    value the sentence "WHAT in K of N seeds" (K: the seeds without)."""
    if cell["mean"] is not None:
        return {k: cell[k] for k in ("mean", "se", "n_seeds")}
    return f"{what} in {cell['n_seeds'] - cell['n_reached']} of {cell['n_seeds']} seeds"


def trend(x_X, cells, sign: int):
    """Whether mean(cell) moves with x in direction ``sign`` beyond the spread: True when the last minus
    the first available mean has its whole interval (``combined``: Welch, the rule's level) on that side
    of 0 and the rank correlation has that sign, False when the same holds in the opposite direction, None
    (no power) otherwise or when fewer than two cells have a mean."""
    pts = [(x, c) for x, c in zip(x_X, cells) if c["mean"] is not None]
    if len(pts) < 2:
        return None
    means = np.array([c["mean"] for _, c in pts])
    ranks = lambda a: np.argsort(np.argsort(a)).astype(float)
    r = np.nan_to_num(np.corrcoef(ranks(np.array([x for x, _ in pts])), ranks(means))[0, 1])
    iv = lambda c: Interval(c["mean"], c["se"], np.nan, np.nan, c["n_seeds"])
    d = combined(iv(pts[-1][1]), iv(pts[0][1]))  # last - first
    lo, hi = (d.lo, d.hi) if sign > 0 else (-d.hi, -d.lo)
    if lo > 0 and sign * r > 0:
        return True
    if hi < 0 and sign * r < 0:
        return False
    return None


def trend_verdict(x_X, cells, sign: int):
    """A claim's verdict by ``trend`` (holds / fails: significant the other way / undecided with the reason);
    the effect is the last minus the first available mean."""
    v = trend(x_X, cells, sign)
    means = [c["mean"] for c in cells if c["mean"] is not None]
    effect = means[-1] - means[0] if len(means) >= 2 else np.nan
    if v is not None:
        return Verdict(v, "holds" if v else "fails: significant the other way", effect, (np.nan, np.nan), 0.0, "")
    why = f"fewer than two of the {len(cells)} settings have a value" if len(means) < 2 else "no power"
    if len(means) >= 2:
        why += ": the last-minus-first difference's interval contains 0, or the ranks disagree"
    return Verdict(None, "undecided", effect, (np.nan, np.nan), 0.0, why)


def tolerance_margin(est_SxE, se_SxE, exact_SxE, *, tol: float, n_se: float = 3.0) -> np.ndarray:
    """Per (seed, epoch): how far an estimate lies inside the tolerance max(tol, n_se SE) of the exact value
    (> 0: within it; the min over epochs is a seed's worst epoch)."""
    return np.maximum(tol, n_se * np.asarray(se_SxE)) - np.abs(np.asarray(est_SxE) - np.asarray(exact_SxE))


def against_exact(est_SxE, se_SxE, exact_SxE, *, tol: float, n_se: float = 3.0, units: str = "bits"):
    """An estimator against a known exact value: (verdict, measured). Holds when every epoch of every seed lies
    within max(tol, n_se SE): the interval over seeds of the worst epoch's margin above 0."""
    margin_SxE, err = tolerance_margin(est_SxE, se_SxE, exact_SxE, tol=tol, n_se=n_se), np.abs(est_SxE - exact_SxE)
    measured = {
        f"worst margin inside the tolerance [{units}]": mean_se(margin_SxE.min(1)),
        f"max |estimate - exact| [{units}]": mean_se(err.max(1)),
        "max |estimate - exact| / SE": mean_se((err / se_SxE).max(1)),
        f"mean estimator SE [{units}]": mean_se(np.mean(se_SxE, 1)),
        "fraction of (seed, epoch) within tolerance": round(float((margin_SxE > 0).mean()), 4),
    }
    return positive(margin_SxE.min(1), what="the worst epoch's margin"), measured


def falls_to(values_SxE, epochs_E, target: float, *, tol: float, cap: float | None = None, name: str = ""):
    """Rises, then falls toward ``target``: the drop from the peak is compression (``decide``) and the last value
    lies within ``tol`` of ``target`` (``name``: how reasons call it), the interval over seeds of
    tol - |final - target| above 0; both must hold (``joint``)."""
    v = np.asarray(values_SxE, np.float64)
    return joint(
        decide(compression(v, epochs_E, cap=cap), want="compresses"),
        positive(tol - np.abs(v[:, -1] - target), what=f"{tol:g} - |final - {name or f'{target:g}'}|"),
    )


def group_table(groups: dict, epochs_E, names, *, cap: float | None = None, se_final: dict | None = None):
    """Per group of runs {group: values S x E x T} and T: ({group: {T: Stat}}, the table {group: {T: summary}}),
    with ``se_final`` {group: S x T estimator standard errors}: each summary's "estimator_se_final" (RMS over seeds)."""
    stats = {g: dict(zip(names, layers(v, epochs_E, cap=cap))) for g, v in groups.items()}
    rms = lambda v: {"estimator_se_final": round(float(np.sqrt(np.mean(v**2))), 4)}
    return stats, {
        g: {n: st.summary() | (rms(se_final[g][:, l]) if se_final else {}) for l, (n, st) in enumerate(per.items())}
        for g, per in stats.items()
    }


def cap_of(plane) -> float:
    """A plane's I(X;T) ceiling: 1 for normalised HSIC (units "HSIC"), else log2 N (``cap_xt``)."""
    return 1.0 if plane.measured.get("units") == "HSIC" else cap_xt(plane)


def layer_stats(plane) -> dict:
    """{T name: compression Stat of its I(X;T)} of a plane (seeds x epochs per T), capped by ``cap_of``."""
    units = plane.measured.get("units", "bits")
    return {
        name: compression(plane.i_xt[:, :, l], plane.epochs, cap=cap_of(plane), units=units)
        for l, name in enumerate(plane.layer_names)
    }


def at_ceiling(plane, rule: Rule = RULE) -> dict:
    """Per T: does the seed-mean I(X;T) sit within the rule's ceiling tolerance of ``cap_of`` at every epoch?
    {T name: {"at_cap_every_epoch", "lowest_mean", "cap"}}."""
    c, low = cap_of(plane), plane.mean("i_xt").min(axis=0)  # the lowest epoch of each T's seed-mean curve
    return {
        name: {
            "at_cap_every_epoch": bool(low[l] >= c - rule.tolerance(c)),
            "lowest_mean": round(float(low[l]), 4),
            "cap": round(c, 4),
        }
        for l, name in enumerate(plane.layer_names)
    }


def every_layer(vs: list) -> Verdict:
    """A claim about every layer (``vs``: one verdict per layer, in order): ``joint``, its effect and interval
    those of the weakest layer and its reason naming each undecided "layer l" and why."""
    worst = min(vs, key=lambda v: v.effect)
    reason = "; ".join(f"layer {i + 1}: {v.reason}" for i, v in enumerate(vs) if v.agrees is None)
    return joint(*vs)._replace(effect=worst.effect, interval=worst.interval, threshold=worst.threshold, reason=reason)


def same_outcomes(pairs: dict) -> tuple:
    """Do two measurements agree on each T's compression outcome? ``pairs``: name -> (Stat, Stat). Holds when every
    T decided by both gets one outcome from both, fails when one differs (effect: the share that agree), undecided
    when no T is decided by both. Returns (Verdict, {name: "outcome | outcome"})."""
    outcomes = {k: (decide(a).outcome, decide(b).outcome) for k, (a, b) in pairs.items()}
    same = [e == h for e, h in outcomes.values() if "undecided" not in (e, h)]
    v = undecided("no layer decided by both estimators")
    if same:
        v = Verdict(all(same), "holds" if all(same) else "fails", float(np.mean(same)), v.interval, v.threshold, "")
    return v, {k: f"{e} | {h}" for k, (e, h) in outcomes.items()}


def curve_corr(a_SxExL, b_SxExL):
    """Per seed and T, the Pearson correlation over epochs of two curves (S x L; 0 where one is flat)."""
    a = np.asarray(a_SxExL, float) - np.mean(a_SxExL, axis=1, keepdims=True)
    b = np.asarray(b_SxExL, float) - np.mean(b_SxExL, axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), 0.0)


def if_compresses(v: Verdict, stat: Stat, *, what: str = "the layer", rule: Rule = RULE) -> Verdict:
    """A claim about a compression phase (its onset, its length, what it loses) decides only where there is one:
    ``v`` when ``stat`` compresses (``decide``), else undecided because WHAT "does not clearly compress"."""
    d = decide(stat, rule=rule)
    if d.outcome == "compresses":
        return v
    return v._replace(
        agrees=None, outcome="undecided", reason=f"{what} does not clearly compress: {d.reason or d.outcome}"
    )


def onset_shares(values_SxE, epochs_E, loss_SxE, n_epochs: int) -> dict:
    """Where a compression phase starts, per seed: its "onset" (the epoch of peak ``values_SxE``), the share of
    the ``n_epochs`` trained after it ("after") and the share of the loss decrease (epoch 0 to the end of
    ``loss_SxE``, recorded once per epoch) done by it ("done"), with the loss there ("loss_at", and "at": the
    loss's epoch index used)."""
    onset = np.asarray(epochs_E)[np.asarray(values_SxE).argmax(axis=1)]
    loss = np.asarray(loss_SxE)
    at = np.minimum(onset, loss.shape[1] - 1)
    loss_at = loss[np.arange(len(loss)), at]
    return {
        "onset": onset,
        "after": 1 - onset / n_epochs,
        "done": (loss[:, 0] - loss_at) / (loss[:, 0] - loss[:, -1]),
        "loss_at": loss_at,
        "at": at,
    }


def lost_after_peak(peaked_SxE, lost_SxE):
    """Per seed, how much ``lost_SxE`` falls after the peak of ``peaked_SxE`` (e.g. the I(T;Y) lost within a
    layer's compression phase): its highest value from that epoch on minus its final value."""
    k_S = np.asarray(peaked_SxE).argmax(axis=1)
    lost = np.asarray(lost_SxE)
    during = np.where(np.arange(lost.shape[1])[None] >= k_S[:, None], lost, -np.inf)
    return during.max(axis=1) - lost[:, -1]


def dpi_check(plane) -> dict:
    """``dpi`` on every layer of a deterministic network's plane (the output layer included): an estimate with
    I(X;T_l) clearly below I(X;T_l+1) measures its own bias there; {"violations": None, "reason"} when an
    estimate is not finite."""
    i_xt = np.asarray(plane.i_xt, float)
    if not np.isfinite(i_xt).all():
        return {"violations": None, "reason": "non-finite values"}
    return dpi(i_xt)


def unusable(plane, dpi_result: dict, binary_x: bool) -> str:
    """Why a setting's plane cannot vote on compression ("" when it can): it breaks the data-processing
    inequality (``dpi_check``: its numbers measure the estimator's bias), or it is KSG on binary inputs, where
    every two distinct inputs are at Chebyshev distance 1, so each point's X-neighbourhood at the joint k-NN
    radius holds all N inputs and the estimate no longer follows I(X;T) (the DPI check need not catch it)."""
    if dpi_result.get("violations"):
        return (
            f"undecided: violates the data-processing inequality at {dpi_result['violations']} of "
            f"{dpi_result['cells']} (epoch, layer) cells (I(X;T_l+1) up to "
            f"{dpi_result['worst excess [bits]']:.2f} bits above I(X;T_l))"
        )
    if plane.estimator == "knn" and binary_x:
        return (
            "undecided: KSG on binary inputs (every pair of distinct inputs at Chebyshev distance 1: the "
            "X-neighbourhood of each point holds all N inputs)"
        )
    return ""


def outcomes(plane) -> list[str]:
    """Per T (the output layer included): the compression outcome ("compresses", "does not compress",
    "undecided") at the plane's cap log2 N; "undefined" where an estimate is NaN."""
    i_xt = np.asarray(plane.i_xt, float)
    if not np.isfinite(i_xt).all():
        return ["undefined"] * i_xt.shape[2]
    return [decide(st).outcome for st in layers(i_xt, plane.epochs, cap=cap_xt(plane))]


def agreement(outcomes_L: list[str], reference_L: list[str]) -> list[bool | None]:
    """Per T: True / False where the outcome and the reference are both decided, else None."""
    decided = ("compresses", "does not compress")
    return [a == b if a in decided and b in decided else None for a, b in zip(outcomes_L, reference_L)]


def cap_seen(plane) -> float:
    """The cap of a plane's I(X;T): log2 of the samples its estimator sees (``cap_xt``, or log2 of the
    estimator's ``subset`` when it measures on one, as Renyi's does)."""
    n = plane.measured["n_samples"]
    return float(np.log2(min(n, plane.settings.get("subset") or n)))


def hidden_drops(plane, *, cap: float | None = None, rule: Rule = RULE) -> dict:
    """Per hidden layer of a per-layer plane: the mean peak-to-final I(X;T) drop ("drop"), the peak, whether it
    compresses ("compresses", ``decide``) and whether its estimate is finite; and the network's verdicts for
    both claims ("network": {"compresses", "does not compress"}, ``network``). ``cap``: default ``cap_seen``.
    An undefined (NaN) estimate decides nothing."""
    i_xt = np.asarray(plane.hidden().i_xt, float)  # S x E x hidden layers
    n_h = i_xt.shape[2]
    if not np.isfinite(i_xt).all():
        nan, none = np.full(n_h, np.nan), undecided("undefined (NaN) estimates")
        return {
            "drop": nan,
            "peak": nan,
            "compresses": np.zeros(n_h, bool),
            "finite": np.zeros(n_h, bool),
            "network": {"compresses": none, "does not compress": none},
        }
    stats = layers(i_xt, plane.epochs, cap=cap_seen(plane) if cap is None else cap, rule=rule)
    return {
        "drop": np.array([st.drop.mean for st in stats]),
        "peak": np.array([st.peak for st in stats]),
        "compresses": np.array([decide(st, rule=rule).outcome == "compresses" for st in stats]),
        "finite": np.ones(n_h, bool),
        "network": {w: network(stats, want=w, rule=rule) for w in ("compresses", "does not compress")},
    }


def family_votes(drops: dict, families: dict, want: str, *, excluded=()) -> dict:
    """Each estimator family votes once (``vote``) on ``want``: ``drops`` setting label -> ``hidden_drops``,
    ``families`` label -> family name (labels not in it, e.g. an exact plane, and ``excluded`` do not vote);
    the settings of one family vote within it. Family -> its Verdict."""
    by = {}
    for lab, st in drops.items():
        if lab not in excluded and lab in families:
            by.setdefault(families[lab], {})[lab] = st["network"][want]
    return {fam: vote(vs) for fam, vs in by.items()}


# Epoch skipping (the student thesis's delta-skip): claims that can fail on their own inputs


def share_at_most(n: int, total: int, limit: float) -> Verdict:
    """ "Far fewer": at most ``limit`` of ``total`` used (273 of 274 fails at any limit below 0.996)."""
    r = n / total
    return holds(r <= limit, effect=r, threshold=limit, what=f"{n} of {total} evaluated")


def saves_time(time_fraction: float, evaluated_fraction: float, *, share: float = 0.5, time_range=None) -> Verdict:
    """Skipping saves at least ``share`` of the time its skipped epochs would cost:
    1 - time / full >= share (1 - evaluated / kept). Skipping half the epochs for 5% of the time fails.
    ``time_range`` (lowest, highest time fraction over the timing's repeats): a need inside the saving's range
    is undecided (load, not the method, decides it)."""
    need, saved = share * (1 - evaluated_fraction), 1 - time_fraction
    lo, hi = (saved, saved) if time_range is None else (1 - max(time_range), 1 - min(time_range))
    if lo < need <= hi:
        why = f"no power: the saving over the timing's repeats spans {lo:.0%} to {hi:.0%}, the need {need:.0%}"
        return undecided(why)._replace(effect=saved, interval=(lo, hi), threshold=need)
    what = f"saved {saved:.0%} of the time, need {need:.0%}"
    return holds(saved >= need, effect=saved, threshold=need, what=what)._replace(interval=(lo, hi))


def within_bounds(errors, bounds) -> Verdict:
    """Every error at most its bound (the exact delta-skip's guarantee: an unevaluated epoch lies between
    evaluated ones whose values differ by at most delta, so the interpolation is within delta where the curve
    is monotone between them). Fails when one error exceeds its bound; the effect is the worst error / bound."""
    worst = max(e / b for e, b in zip(errors, bounds))
    return holds(worst <= 1 + 1e-9, effect=worst, threshold=1.0, what=f"worst error {worst:.2f} x its bound")


def drop_survives(full_ExS, kept_KxS, *, tol: float, cap: float | None = None, rule: Rule = RULE) -> tuple:
    """A layer compresses over all epochs (``decide`` on E x S values) and its peak-to-final drop measured on the
    kept epochs alone (K x S) is within ``tol`` of the full one in every seed. (Verdict, Stat, full drops,
    kept drops)."""
    full, kept = np.asarray(full_ExS, np.float64), np.asarray(kept_KxS, np.float64)
    stat = compression(full.T, cap=cap, rule=rule)
    drop_full, drop_kept = full.max(axis=0) - full[-1], kept.max(axis=0) - kept[-1]
    gap = float(np.abs(drop_kept - drop_full).max())
    moved = holds(gap <= tol + 1e-6, effect=gap, threshold=tol, what="drop moved by skipping")
    return every({"compresses": decide(stat, rule=rule), "survives": moved}), stat, drop_full, drop_kept


# Studies of several networks x estimators (cnn): each estimator decides over the networks, then votes once


def saturated(values, cap: float, rule: Rule = RULE) -> bool:
    """Every value within the rule's ceiling tolerance of ``cap``: the estimate cannot order or drop."""
    v = np.asarray(values, float)
    return bool(np.isfinite(v).all() and (v >= cap - rule.tolerance(cap)).all())


def by_estimator(found: dict, measured: dict) -> Verdict:
    """``found``: {estimator: {network: Verdict}}. Each estimator decides over its networks (``every``), then the
    estimators vote once each (``vote``); their outcomes are recorded in ``measured["estimator verdicts"]``."""
    per = {est: every(v) for est, v in found.items()}
    measured["estimator verdicts"] = {e: v.outcome if v.agrees is not None else "undecided" for e, v in per.items()}
    return vote(per)


def dpi_off_cap(planes: dict, cap: float, estimators=("binning", "kde", "kde_relative")) -> tuple:
    """The data-processing inequality between consecutive hidden layers (``dpi``) of every network's per-layer
    plane ({network name: {estimator: plane}}), decided on each of ``estimators`` whose estimates are off ``cap``
    (log2 N); a saturated one is reported and does not decide. (measured, Verdict)."""
    measured, found = {}, {}
    for name, d in planes.items():
        for est in [e for e in estimators if e in d]:
            v = d[est].hidden().i_xt  # S x E x hidden
            if v.shape[2] < 2:
                continue
            if saturated(v, cap):
                measured[f"{name}, {est}"] = f"saturated: every hidden layer at log2 N = {cap:.2f} bits at every epoch"
                continue
            r = dpi(v)
            measured[f"{name}, {est}: DPI violations (epoch, layer)"] = f"{r['violations']} of {r['cells']}"
            found[f"{name} {est}"] = holds(r["violations"] == 0, effect=r["worst excess [bits]"], what="violated")
    measured["ceiling log2(N) [bits]"] = round(cap, 4)
    if not found:
        return measured, undecided(f"saturated: no estimator's hidden layers are off log2 N = {cap:.2f} bits")
    return measured, every(found)


def pooling_reduces(pooled: dict, cap: float, *, by_construction=("binning",)) -> tuple:
    """After <= before pooling ({network name: {estimator: pooled-view plane}}), decided per estimator over the
    networks, on the estimators for which an increase is possible: not binning, since floor(max t / b) =
    max floor(t / b) cannot rise (reported only). (measured, Verdict)."""
    measured, found = {}, {}
    for k, d in pooled.items():
        for est, p in d.items():
            (after, _), (before, _) = p.select(pool="after"), p.select(pool="before")
            diff = p.i_xt[:, :, after] - p.i_xt[:, :, before]  # after - before, layer by layer
            name = f"{k}, {est}"
            share = (diff <= 1e-6).mean(axis=(1, 2))
            measured[f"{name}: share of (epoch, layer) with after <= before"] = mean_se(share)
            measured[f"{name}: mean after - before [bits]"] = mean_se(diff.mean(axis=(1, 2)))
            if est in by_construction:
                continue
            found.setdefault(est, {})[name] = (
                undecided(f"saturated at log2 N = {cap:.2f} bits before and after")
                if saturated(p.i_xt, cap)
                else positive(-diff.mean(axis=(1, 2)), what="before - after")
            )
    if not found:
        return measured, undecided("only binning, which cannot increase under pooling by construction")
    return measured, by_estimator(found, measured)


def filters_decrease(filters: dict, cap: float, estimators=("kde", "kde_relative", "knn")) -> tuple:
    """The first convolutional layer's mean per-filter I(X;T) above the last one's at the last evaluated epoch
    ({network name: {estimator: per-filter plane}}), per estimator over the networks. (measured, Verdict)."""
    measured, found = {}, {}
    for k, d in filters.items():
        for est in [e for e in estimators if e in d]:
            a, conv = d[est].per_filter("i_xt")
            per_layer = np.nanmean(a[:, -1], axis=2)  # S x L: mean over filters, last evaluated epoch
            for j, l in enumerate(conv):
                measured[f"{k}, {est}: layer {l} mean per-filter I(X;T) [bits]"] = mean_se(per_layer[:, j])
            found.setdefault(est, {})[f"{k} {est}"] = (
                undecided(f"saturated at log2 N = {cap:.2f} bits")
                if saturated(per_layer, cap)
                else positive(per_layer[:, 0] - per_layer[:, -1], what="first - last layer")
            )
    return measured, by_estimator(found, measured) if found else undecided("no kde or knn per-filter planes")


def kernel_variance_ranges(planes: dict, estimator: str = "kde_relative") -> dict:
    """A relative-variance KDE's kernel variance per layer, [min, max] over seeds and epochs, of every network
    ({network name: {estimator: plane}}) that has it."""
    out = {}
    for k, d in planes.items():
        if estimator in d:
            v, names = d[estimator].values["kernel_var"][0], d[estimator].layer_names
            out[k] = {n: [float(v[..., l].min()), float(v[..., l].max())] for l, n in enumerate(names)}
    return out


# Estimators against an exact plane (quantized networks: I(X;T) = H(T) by counting codes)


def vs_exact(exact, planes: dict, *, binary_x: bool = False) -> dict:
    """Per estimator setting ({label: plane} on the same runs as ``exact``): mean absolute error per layer (bits;
    over seeds and epochs) of I(X;T) and I(T;Y) against the exact plane, per layer whether it agrees with the
    exact plane's compression outcome (``agreement``), its ``dpi_check`` and why it cannot vote ("undecided",
    ``unusable``; "" when it can). Also "exact outcome" and "exact drop" (mean, se per layer)."""
    ref = outcomes(exact)
    drop = exact.i_xt.max(axis=1) - exact.i_xt[:, -1]  # S x L
    out = {"exact outcome": ref, "exact drop": [mean_se(d) for d in drop.T]}
    for label, p in planes.items():
        est = np.asarray(p.i_xt, float)
        mae = lambda a, b: np.round(np.abs(np.asarray(a, float) - b).mean(axis=(0, 1)), 4).tolist()
        check = dpi_check(p)
        out[label] = {
            "mae_i_xt": mae(est, exact.i_xt),
            "mae_i_ty": mae(p.i_ty, exact.i_ty),
            "agrees": agreement(outcomes(p), ref),
            "finite": bool(np.isfinite(est).all()),
            "dpi": check,
            "undecided": unusable(p, check, binary_x),
        }
    return out


def settings_of(errors: dict) -> list[str]:
    """The estimator settings' labels of a ``vs_exact`` result."""
    return [lab for lab, v in errors.items() if isinstance(v, dict) and "mae_i_xt" in v]


def exact_error_table(errors: dict) -> str:
    """Markdown of ``vs_exact`` results ({network: result}): per network, setting x layer MAE of I(X;T) in bits
    (* marks disagreement with the exact plane on compression, ? a layer either cannot decide)."""
    lines = []
    for name, e in errors.items():
        layers = [f"T{l + 1}" for l in range(len(e["exact outcome"]))]
        shrinks = ", ".join(l for l, c in zip(layers, e["exact outcome"]) if c == "compresses") or "no layer"
        lines += [f"**{name}** (exact plane compresses in: {shrinks})", ""]
        lines += [
            "| setting | " + " | ".join(layers) + " | agrees | DPI violations |",
            "|---" * (len(layers) + 3) + "|",
        ]
        for label in settings_of(e):
            v = e[label]
            cells = [f"{m:.2f}" + {True: "", False: "*", None: "?"}[a] for m, a in zip(v["mae_i_xt"], v["agrees"])]
            d = v.get("dpi", {})
            dpi_cell = "-" if d.get("violations") is None else f"{d['violations']}/{d['cells']}"
            n_dec = sum(a is not None for a in v["agrees"])
            agrees = f"{sum(a is True for a in v['agrees'])}/{n_dec}" if not v.get("undecided") else "undecided†"
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {agrees} | {dpi_cell} |")
        why = sorted({v["undecided"] for v in e.values() if isinstance(v, dict) and v.get("undecided")})
        lines += ["", *(f"† {w}" for w in why)] if why else []
        lines.append("")
    return "\n".join(lines)


def settings_disagree(errors: dict, prefix: str = "bin", what: str = "binning") -> tuple:
    """ "Choices of one estimator alone give qualitatively different results": over the usable settings whose
    label starts with ``prefix`` and the networks ({network: ``vs_exact`` result}), some agree with the exact
    plane in every decided layer and some disagree in one. Judged only on layers both decide; undecided (no
    power) when a setting is decided in no layer and the decided ones all go one way. (Verdict, n agreeing,
    n disagreeing, n settings x networks)."""
    picked = [
        v["agrees"]
        for e in errors.values()
        for lab, v in e.items()
        if lab in settings_of(e) and lab.startswith(prefix) and not v.get("undecided")
    ]
    n, n_flip = len(picked), sum(any(a is False for a in ag) for ag in picked)
    n_ok = sum(all(a is not False for a in ag) and any(a is True for a in ag) for ag in picked)
    if not n:
        return undecided(f"no usable {what} setting"), n_ok, n_flip, n
    if n_flip and n_ok:
        return holds(True, effect=n_flip / n), n_ok, n_flip, n
    if n_flip + n_ok < n:
        why = f"no power: {n - n_flip - n_ok} of {n} {what} settings are decided in no layer, and the decided ones all go one way"
        return Verdict(None, "undecided", np.nan, (np.nan, np.nan), np.nan, why), n_ok, n_flip, n
    return holds(False, effect=n_flip / n, what=f"every {what} setting gives the same pattern"), n_ok, n_flip, n


def outcomes_differ(planes: dict, rule: Rule = RULE) -> tuple:
    """Does compression of the hidden layers depend on the condition ({condition: plane}, two conditions on
    networks of one shape, e.g. tanh and ReLU)? Per hidden layer, each plane's ``decide``; holds where both are
    decided and differ in some layer, fails where every pair is decided and the same, else undecided (a count
    of compressing layers pooled over conditions would tie). (Verdict, measured)."""
    (a, pa), (b, pb) = planes.items()
    measured, differ, open_pairs = {}, [], []
    n_pairs = pa.i_xt.shape[-1] - 1
    for l in range(n_pairs):  # hidden layers
        v = [decide(compression(p.i_xt[:, :, l], p.epochs, cap=cap_xt(p), rule=rule), rule=rule) for p in (pa, pb)]
        where = f"T{l + 1}"
        measured[f"{where}: {a} / {b}"] = " / ".join(
            f"{x.outcome} (drop {x.effect:.2f} bits{', ' + x.reason if x.reason else ''})" for x in v
        )
        if "undecided" in (v[0].outcome, v[1].outcome):
            open_pairs.append(where)
        elif v[0].outcome != v[1].outcome:
            differ.append(where)
    agrees = True if differ else (None if open_pairs or not n_pairs else False)
    reason = (
        f"no hidden layer where the {a} and {b} verdicts are both decided and differ; undecided at "
        f"{len(open_pairs)} of {n_pairs}: {', '.join(open_pairs)}"
    )
    outcome = "holds" if agrees else ("fails" if agrees is False else "undecided")
    measured["layers where the verdicts differ"] = ", ".join(differ) or "none"
    return Verdict(agrees, outcome, float(len(differ)), (np.nan, np.nan), np.nan, reason), measured


def exact_plane_facts(plane, rule: Rule = RULE) -> dict:
    """What an exact (counted) plane shows at its last epoch: its data and size, the seed-mean I(X;T) and I(T;Y)
    per T, and the T's below log2 N there (a T at log2 N keeps every input apart: its plane is vacuous)."""
    final, cap = plane.i_xt[:, -1].mean(axis=0), cap_xt(plane)
    return {
        "dataset": plane.measured["data"],
        "n_samples": plane.measured.get("n_samples"),
        "items": int(np.prod(plane.shape[1:3])),
        "layers": int(plane.shape[-1]),
        "i_xt_last": np.round(final, 3).tolist(),
        "i_ty_last": np.round(plane.i_ty[:, -1].mean(axis=0), 3).tolist(),
        "layers below log2 N at the last epoch (not vacuous)": [
            f"T{l + 1}" for l in np.flatnonzero(final < cap - rule.tolerance(cap))
        ],
    }


def within_gap(pairs: dict, gap: float, *, what: str = "reference - other", empty: str = "no pair to compare") -> tuple:
    """Is ``other`` within ``gap`` of ``reference`` (per seed, reference - other below gap; e.g. a quantized
    network's accuracy against the float one's)? ``pairs``: {name: (reference_S, other_S)}; every pair must hold
    (``every``); undecided (``empty``) without pairs. (Verdict, {name: reference - other per seed})."""
    diffs = {k: np.asarray(r, float) - np.asarray(o, float) for k, (r, o) in pairs.items()}
    if not diffs:
        return undecided(empty), diffs
    return every({k: positive(gap - d, what=f"{gap:g} - ({k} {what})") for k, d in diffs.items()}), diffs


def cheaper_but_coarser(n_a: int, n_b: int, error_a: float, error_b: float, *, name: str = "a") -> Verdict:
    """Method ``name`` (a) uses fewer evaluations than b (``n_a < n_b``) at a larger worst error
    (``error_a > error_b``): holds when both; the effect is n_a / n_b."""
    ok = n_a < n_b and error_a > error_b
    return holds(ok, effect=n_a / n_b, what=f"{name} is not both cheaper and coarser")


# Depth: how long a layer's compression phase lasts (Shwartz-Ziv & Tishby 2017, Sec. 3.4)


def phase_length(values_SxE, epochs_E, *, share: float = 0.9, rule: Rule = RULE) -> list:
    """Per seed: the epochs from a layer's I(X;T) peak to the first epoch after it by which ``share`` of its
    peak-to-final drop is done (the length of its compression phase); None in a seed that does not compress
    (``seed_compresses``)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    v, ep = np.asarray(values_SxE, np.float64), np.asarray(epochs_E)
    out = []
    for row, ok in zip(v, seed_compresses(v, rule=rule)):  # S seeds, a few each: numpy on the host
        k = int(row.argmax())
        target = row[k] - share * (row[k] - row[-1])
        out.append(int(ep[k + int(np.flatnonzero(row[k:] <= target + 1e-12)[0])] - ep[k]) if ok else None)
    return out


def depth_cell(plane, loss_SxE, threshold: float, metrics: dict, *, share: float = 0.9) -> dict:
    """One (training size, depth) cell of a depth study over seeds: epochs until the loss is <= ``threshold``,
    the last hidden layer's I(X;T) peak epoch (None where a seed does not compress) and drop, the output's final
    I(T;Y), each hidden layer's compression-phase length (``phase_length``: "phase_T<l>") and the final value of
    every metric in ``metrics`` ({name: S x epochs})."""
    xt = plane.i_xt[:, :, -2]  # S x E: the last hidden layer (the output is the last T)
    onset = [int(plane.epochs[e]) if ok else None for e, ok in zip(xt.argmax(axis=1), seed_compresses(xt))]
    return {
        "epochs_to_threshold": mean_se_all([epochs_to_threshold(v, threshold) for v in loss_SxE]),
        "peak_ixt_epoch": mean_se_all(onset),
        "peak_ixt_drop": mean_se(xt.max(axis=1) - xt[:, -1]),
        "final_i_ty": mean_se(plane.i_ty[:, -1, -1]),
        **{f"final_{k}": mean_se(m[:, -1]) for k, m in metrics.items()},
        **{
            f"phase_T{l + 1}": mean_se_all(phase_length(plane.i_xt[:, :, l], plane.epochs, share=share))
            for l in range(plane.shape[-1] - 1)
        },
    }


def shorter_with_depth(cells: dict, depths, *, share: float = 0.9) -> tuple:
    """ "Deeper networks compress faster", on layers of equal width: ``cells`` {(layer l, depth d): a
    ``mean_se_all`` cell of layer l's compression-phase length in the network of depth d}. Per layer, the trend
    over the depths that have it (``trend_verdict``, shorter with depth); the layers vote once each (``vote``:
    a layer without power abstains). (Verdict, measured)."""
    per, measured = {}, {}
    for l in sorted({l for l, _ in cells}):
        ds = [d for d in sorted(depths) if (l, d) in cells]
        for d in ds:
            measured[f"T{l}, {d} hidden: epochs from peak to {share:.0%} of the drop"] = shown_cell(
                cells[l, d], "no compression"
            )
        if len(ds) >= 2:
            per[f"T{l}"] = trend_verdict(ds, [cells[l, d] for d in ds], -1)
    if not per:
        return undecided("no layer is in two or more of the depths"), measured
    return vote(per), measured


# Late training (as-if-random windows): what each hidden layer does after a share of the training length


def late_index(epochs_E, n_epochs: int, late: float) -> int:
    """Position of the first plotted epoch at or after ``late`` x the training length."""
    return int(min(np.searchsorted(epochs_E, late * n_epochs), len(epochs_E) - 1))


def late_table(plane, n_epochs: int, late: float) -> dict:
    """Per hidden layer ("layer l"): peak, final and late change (final minus the value at ``late`` x the training
    length) of I(X;T), mean and se over seeds, its compression statistic (cap log2 N) and verdict."""
    i_xt = plane.hidden().i_xt
    k = late_index(plane.epochs, n_epochs, late)
    st = {"peak": i_xt.max(axis=1), "late_change": i_xt[:, -1] - i_xt[:, k], "final": i_xt[:, -1]}
    return {
        f"layer {l + 1}": {name: mean_se(v[:, l]) for name, v in st.items()}
        | {"compression": c.summary(), "verdict": decide(c).outcome}
        for l, c in enumerate(layers(i_xt, plane.epochs, cap=cap_xt(plane)))
    }


def network_claim(claim: str, source: str, plane, want: str, rule: Rule = RULE) -> dict:
    """A claim entry that a network's hidden layers compress (``want`` "compresses": one of them does) or do not
    (``network``), with each hidden layer's statistic and the number of layers that compress."""
    stats = layers(plane.hidden().i_xt, plane.epochs, cap=cap_xt(plane), rule=rule)
    measured = {f"layer {l + 1}": c.summary() for l, c in enumerate(stats)}
    measured["hidden layers compressing"] = sum(decide(c, rule=rule).outcome == "compresses" for c in stats)
    return entry(claim, source, network(stats, want=want, rule=rule), measured, rule=rule)


def ib_summary(curve, plane, gaps: dict) -> dict:
    """What a task's saved runs show against its IB curve (``ib.bound_analysis``'s ``curve``, the final layers of
    ``plane``, the IB-equation ``gaps`` {"gap" S x L, "gap_ib", "gap_best_hard"}): I(X;Y), H(Y), the curve, and
    per layer the final distance below the curve, the excess I(X;T) over it at equal I(T;Y) and the gap."""
    xt, ty = plane.i_xt[:, -1], plane.i_ty[:, -1]
    d, x = curve.distance(xt, ty), curve.excess(xt, ty)  # S x L
    return {
        "i_xy_bits": round(curve.i_xy, 4),
        "h_y_bits": round(curve.h_y, 4),
        "caveat": curve.caveat,
        "curve": {"i_xt": np.round(curve.hull_xt, 4).tolist(), "i_ty": np.round(curve.hull_ty, 4).tolist()},
        "ib_solutions_own_gap_bits": np.round(gaps["gap_ib"], 6).tolist(),
        "best_hard_encoder_gap_bits": round(gaps["gap_best_hard"], 6),
        "per_layer": {
            name: {k: mean_se(v[:, l]) for k, v in (("distance_bits", d), ("excess_i_xt_bits", x))}
            | {"gap_bits": mean_se(gaps["gap"][:, l])}
            for l, name in enumerate(plane.layer_names)
        },
    }


def ends_on_curve(curve, xt_S, ty_S, *, margin: float) -> tuple:
    """Does a layer end on its task's IB curve: its final distance below the curve (per seed) within ``margin``
    bits? Undecided where the layer ends on the flat part of the curve (I(X;T) beyond the knee at I(X;Y) -
    margin), where the distance only says that it keeps I(X;Y); the excess I(X;T) over the curve at equal
    I(T;Y) is reported beside. (Verdict, measured)."""
    d = curve.distance(xt_S, ty_S)
    v, knee = positive(margin - d, what="margin minus distance"), float(curve.xt_needed(curve.i_xy - margin))
    if v.agrees and np.mean(xt_S) > knee:
        why = f"the layer ends at I(X;T) = {np.mean(xt_S):.2f} bits, where the curve is flat (within the margin of "
        why += f"I(X;Y) from {knee:.2f} bits on): the distance only says that it keeps I(X;Y); see the excess"
        v = v._replace(agrees=None, outcome="undecided", reason=why)
    measured = {"final distance below the curve [bits]": mean_se(d), "margin [bits]": round(margin, 4)}
    measured["final excess I(X;T) over the curve at equal I(T;Y) [bits]"] = mean_se(curve.excess(xt_S, ty_S))
    return v, measured
