"""Adaptive epoch selection: evaluate the information plane at fewer epochs, in batched rounds.

The caller supplies ``evaluate_batch(epochs_B) -> (i_xt_BxL, i_ty_BxL)``, one (expensive, jitted)
call for a whole batch of epochs. Both strategies here gather every epoch a round needs into one
such call, and never evaluate an epoch twice (results are cached across rounds).

Positions are indices into ``epochs_E`` (the kept checkpoints, sorted, not necessarily
contiguous); "adjacent" means adjacent positions. The distance between two evaluated epochs is

    max(max_l |i_xt_a - i_xt_b| / h_x, max_l |i_ty_a - i_ty_b| / h_y)

with ``h_x = H(X)`` and ``h_y = H(Y)`` in the same units as the estimates (bits: log2 N for N
distinct inputs), so ``delta`` is a fraction of the largest possible mutual information.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

EvaluateBatch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
DEFAULT_INITIAL = 9
PREDICTORS = ("last", "double")


class SkipResult(NamedTuple):
    epochs: np.ndarray  # K, sorted kept epochs (values from epochs_E)
    i_xt: np.ndarray  # KxL
    i_ty: np.ndarray  # KxL
    n_evaluated: int  # every distinct epoch passed to evaluate_batch, kept or discarded
    n_total: int  # E = len(epochs_E)
    n_rounds: int  # number of evaluate_batch calls


# ---------------------------------------------------------------------------------------------
# checks


def _check_pos_float(name: str, x) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    if not math.isfinite(float(x)) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return float(x)


def _check_int(name: str, x, *, min_value: int) -> int:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or x < min_value:
        raise ValueError(f"{name} must be an integer >= {min_value}, got {x!r}")
    return int(x)


def _check_epochs(epochs_E) -> np.ndarray:
    a = np.asarray(epochs_E)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"epochs_E must be a non-empty 1-D array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"epochs_E must hold integers, got dtype {a.dtype}")
    if np.any(np.diff(a) <= 0):
        raise ValueError(f"epochs_E must be strictly increasing, got {a.tolist()[:20]}")
    return a


def _check_curve(name: str, x, shape: tuple[int, ...] | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (epochs x layers) array, got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains {int((~np.isfinite(a)).sum())} NaN/inf value(s)")
    return a


def _check_common(epochs_E, delta, h_x, h_y) -> tuple[np.ndarray, float, float, float]:
    return (
        _check_epochs(epochs_E),
        _check_pos_float("delta", delta),
        _check_pos_float("h_x", h_x),
        _check_pos_float("h_y", h_y),
    )


# ---------------------------------------------------------------------------------------------
# distances and the evaluation cache


def consecutive_distances(i_xt_KxL, i_ty_KxL, *, h_x: float, h_y: float) -> np.ndarray:
    """Normalised distance between rows k and k+1, shape K-1."""
    d_x = np.max(np.abs(np.diff(i_xt_KxL, axis=0)), axis=1, initial=0.0) / h_x
    d_y = np.max(np.abs(np.diff(i_ty_KxL, axis=0)), axis=1, initial=0.0) / h_y
    return np.maximum(d_x, d_y)


class _Cache:
    """Evaluates positions of ``epochs_E`` through ``evaluate_batch``, once each, checking results."""

    def __init__(self, evaluate_batch: EvaluateBatch, epochs_E: np.ndarray):
        if not callable(evaluate_batch):
            raise ValueError(f"evaluate_batch must be callable, got {type(evaluate_batch).__name__}")
        self.fn, self.epochs_E = evaluate_batch, epochs_E
        self.i_xt: dict[int, np.ndarray] = {}
        self.i_ty: dict[int, np.ndarray] = {}
        self.n_layers: int | None = None
        self.n_calls = 0

    def fetch(self, positions) -> None:
        """Evaluate, in one call, every position not yet cached (no call if none)."""
        new_B = np.array(sorted({int(p) for p in positions} - self.i_xt.keys()), dtype=int)
        if new_B.size == 0:
            return
        out = self.fn(self.epochs_E[new_B])
        self.n_calls += 1
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError(f"evaluate_batch must return a pair (i_xt_BxL, i_ty_BxL), got {type(out).__name__}")
        i_xt_BxL = _check_curve("evaluate_batch's i_xt", out[0])
        shape = (new_B.size, self.n_layers if self.n_layers is not None else i_xt_BxL.shape[1])
        if i_xt_BxL.shape != shape:  # rows: one per epoch asked for; columns: same L every call
            raise ValueError(
                f"evaluate_batch's i_xt must have shape {shape} for {new_B.size} epochs, got {i_xt_BxL.shape}"
            )
        i_ty_BxL = _check_curve("evaluate_batch's i_ty", out[1], shape)
        self.n_layers = shape[1]
        for p, x, y in zip(new_B.tolist(), i_xt_BxL, i_ty_BxL):
            self.i_xt[p], self.i_ty[p] = x, y

    def values(self, positions) -> tuple[np.ndarray, np.ndarray]:
        return (np.stack([self.i_xt[int(p)] for p in positions]), np.stack([self.i_ty[int(p)] for p in positions]))

    def result(self, positions) -> SkipResult:
        positions = np.asarray(positions, dtype=int)
        i_xt, i_ty = self.values(positions)
        return SkipResult(self.epochs_E[positions], i_xt, i_ty, len(self.i_xt), len(self.epochs_E), self.n_calls)


# ---------------------------------------------------------------------------------------------
# strategies


def delta_skip_exact(
    evaluate_batch: EvaluateBatch, epochs_E, *, delta: float, h_x: float, h_y: float, initial: int | None = None
) -> SkipResult:
    """Bisect until consecutive kept epochs are within ``delta`` or adjacent in ``epochs_E``.

    Round 1 evaluates ``initial`` (None -> 9) evenly spaced positions, endpoints included; each
    later round evaluates, in one call, the midpoint of every non-adjacent pair with distance
    > delta. Calls <= 1 + ceil(log2(ceil((E-1) / (initial-1)))).
    """
    epochs_E, delta, h_x, h_y = _check_common(epochs_E, delta, h_x, h_y)
    initial = _check_int("initial", DEFAULT_INITIAL if initial is None else initial, min_value=2)
    cache = _Cache(evaluate_batch, epochs_E)
    pos_K = np.unique(np.round(np.linspace(0, len(epochs_E) - 1, initial)).astype(int))
    cache.fetch(pos_K)
    while True:
        d_K1 = consecutive_distances(*cache.values(pos_K), h_x=h_x, h_y=h_y)
        bad = (d_K1 > delta) & (np.diff(pos_K) > 1)
        if not bad.any():
            return cache.result(pos_K)
        mids = (pos_K[:-1][bad] + pos_K[1:][bad]) // 2
        cache.fetch(mids)
        pos_K = np.union1d(pos_K, mids)


def every_nth(evaluate_batch: EvaluateBatch, epochs_E, *, n: int) -> SkipResult:
    """The fixed baseline: every ``n``-th position of ``epochs_E`` and the last one, in one call."""
    epochs_E = _check_epochs(epochs_E)
    n = _check_int("n", n, min_value=1)
    cache = _Cache(evaluate_batch, epochs_E)
    pos_K = np.union1d(np.arange(0, len(epochs_E), n), [len(epochs_E) - 1])
    cache.fetch(pos_K)
    return cache.result(pos_K)


def _speculate(cur: int, skip: int, last: int, n: int, double: bool) -> list[int]:
    """Next ``n`` positions if every step's decision is ``double`` (cur+s, cur+3s, cur+7s, ...)
    or every step keeps the skip (cur+s, cur+2s, cur+3s, ...); clipped at ``last``."""
    chain = []
    for _ in range(n):
        cur = min(cur + skip, last)
        chain.append(cur)
        if cur == last:
            break
        skip *= 2 if double else 1
    return chain


def delta_skip_approx(
    evaluate_batch: EvaluateBatch,
    epochs_E,
    *,
    delta: float,
    h_x: float,
    h_y: float,
    round_size: int = 8,
    predict: str = "last",
) -> SkipResult:
    """The thesis's doubling walk, batched by speculation; same epochs as the sequential walk.

    Sequentially: from position 0 with skip 1, step to min(cur + skip, last); double the skip when
    that step's distance is < delta, else keep it; never go back. Each round evaluates, in one
    call, the ``round_size`` positions the walk would reach if every decision matched a
    prediction, accepts them up to and including the first mispredicted step, and keeps the rest
    only in the cache (they still count in ``n_evaluated``). ``predict="double"`` always predicts
    doubling; ``"last"`` predicts the previous step's decision (doubling at the start), which
    needs far fewer rounds once distances sit above delta. No gap guarantee: the skip never shrinks.
    """
    epochs_E, delta, h_x, h_y = _check_common(epochs_E, delta, h_x, h_y)
    round_size = _check_int("round_size", round_size, min_value=1)
    if predict not in PREDICTORS:
        raise ValueError(f"predict must be one of {PREDICTORS}, got {predict!r}")
    cache = _Cache(evaluate_batch, epochs_E)
    last = len(epochs_E) - 1
    cur, skip, guess, visited = 0, 1, True, [0]
    while cur < last:
        chain = _speculate(cur, skip, last, round_size, guess)
        cache.fetch([cur, *chain])
        for nxt in chain:
            double = consecutive_distances(*cache.values([cur, nxt]), h_x=h_x, h_y=h_y)[0] < delta
            visited.append(nxt)
            cur, skip = nxt, (skip * 2 if double else skip)
            if double != guess:
                guess = double if predict == "last" else True
                break
    cache.fetch(visited)  # only does anything when E == 1
    return cache.result(visited)


# ---------------------------------------------------------------------------------------------
# filling in the skipped epochs


def interpolate(result: SkipResult, epochs_E) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation in epoch onto ``epochs_E`` (constant beyond the ends, as np.interp)."""
    epochs_E = _check_epochs(epochs_E)
    ep_K = _check_epochs(result.epochs)
    i_xt_KxL = _check_curve("result.i_xt", result.i_xt)
    i_xt_KxL = _check_curve("result.i_xt", i_xt_KxL, (len(ep_K), i_xt_KxL.shape[1]))
    i_ty_KxL = _check_curve("result.i_ty", result.i_ty, i_xt_KxL.shape)
    if len(ep_K) == 1:
        return np.repeat(i_xt_KxL, len(epochs_E), axis=0), np.repeat(i_ty_KxL, len(epochs_E), axis=0)
    lo_E = np.clip(np.searchsorted(ep_K, epochs_E, side="right") - 1, 0, len(ep_K) - 2)
    w_Ex1 = np.clip((epochs_E - ep_K[lo_E]) / (ep_K[lo_E + 1] - ep_K[lo_E]), 0.0, 1.0)[:, None]
    return _lerp(i_xt_KxL, lo_E, w_Ex1), _lerp(i_ty_KxL, lo_E, w_Ex1)


def _lerp(v_KxL: np.ndarray, lo_E: np.ndarray, w_Ex1: np.ndarray) -> np.ndarray:
    return (1.0 - w_Ex1) * v_KxL[lo_E] + w_Ex1 * v_KxL[lo_E + 1]


def max_interp_error(result: SkipResult, epochs_E, full_i_xt, full_i_ty, *, h_x: float, h_y: float) -> dict:
    """Worst error of ``interpolate`` against the full ExL curves, absolute and normalised.

    Keys: ``i_xt_abs``, ``i_ty_abs`` (units of the inputs, bits from the engine), ``i_xt_norm``
    (/ h_x), ``i_ty_norm`` (/ h_y) and ``norm`` (their max, the same units as ``delta``).
    """
    h_x, h_y = _check_pos_float("h_x", h_x), _check_pos_float("h_y", h_y)
    i_xt_ExL, i_ty_ExL = interpolate(result, epochs_E)
    full_i_xt = _check_curve("full_i_xt", full_i_xt, i_xt_ExL.shape)
    full_i_ty = _check_curve("full_i_ty", full_i_ty, i_ty_ExL.shape)
    err_x, err_y = float(np.max(np.abs(i_xt_ExL - full_i_xt))), float(np.max(np.abs(i_ty_ExL - full_i_ty)))
    return {
        "i_xt_abs": err_x,
        "i_ty_abs": err_y,
        "i_xt_norm": err_x / h_x,
        "i_ty_norm": err_y / h_y,
        "norm": max(err_x / h_x, err_y / h_y),
    }


def interp_errors(result: SkipResult, epochs_E, full_i_xt, full_i_ty, *, h_x: float, h_y: float) -> dict:
    """``max_interp_error`` plus the mean absolute errors over every (epoch, T): ``i_xt_mean_abs``,
    ``i_ty_mean_abs`` and ``mean_norm`` (the larger of the two, each divided by h_x / h_y)."""
    worst = max_interp_error(result, epochs_E, full_i_xt, full_i_ty, h_x=h_x, h_y=h_y)
    i_xt_ExL, i_ty_ExL = interpolate(result, epochs_E)
    mean_x = float(np.mean(np.abs(i_xt_ExL - np.asarray(full_i_xt, np.float64))))
    mean_y = float(np.mean(np.abs(i_ty_ExL - np.asarray(full_i_ty, np.float64))))
    return {**worst, "i_xt_mean_abs": mean_x, "i_ty_mean_abs": mean_y, "mean_norm": max(mean_x / h_x, mean_y / h_y)}


def assemble(planes, epochs_K):
    """One ``InfoPlane`` of ``epochs_K`` from the planes of a strategy's rounds (each epoch from the last
    round that evaluated it; warnings of those epochs kept). Its key is cleared: no single evaluation
    produced it, so a saved copy is never mistaken for one."""
    where = {}
    for p in planes:
        for j, e in enumerate(np.asarray(p.epochs).tolist()):
            where[int(e)] = (p, j)
    missing = [int(e) for e in epochs_K if int(e) not in where]
    if missing:
        raise ValueError(f"epochs_K: {missing[:10]} were evaluated in no round")
    parts = [where[int(e)] for e in epochs_K]
    base = parts[0][0]
    values = {k: np.stack([p.values[k][:, :, j] for p, j in parts], axis=2) for k in base.values}
    keep = {int(e) for e in epochs_K}
    warnings = {}
    for p in {id(p): p for p, _ in parts}.values():
        for message, hits in p.warnings.items():
            new = [h for h in hits if h[2] in keep and h not in warnings.get(message, [])]
            if new:
                warnings.setdefault(message, []).extend(new)
    return dataclasses.replace(base, epochs=np.asarray(epochs_K), values=values, warnings=warnings, key="")


# ---------------------------------------------------------------------------------------------
# a strategy grid against the full evaluation (the skipping study's measurements)

STRATEGIES = ("every", "approx", "exact")


def bucket(n: int, granule: int) -> int:
    """``n`` rounded up to a few sizes: multiples of ``granule`` up to 8 granules, then 3 significant bits
    (at most 25% padding): calls of nearby sizes share one compiled shape."""
    m = -(-n // granule)
    step = 1 << max(0, m.bit_length() - 3)
    return -(-m // step) * step * granule


def strategy(kind: str, param, *, h_x: float, h_y: float, round_size: int = 8):
    """``(evaluate_batch, epochs_E) -> SkipResult`` of one strategy: ``every`` (param n), ``approx`` or
    ``exact`` (param delta)."""
    if kind == "every":
        return lambda b, e: every_nth(b, e, n=int(param))
    if kind == "exact":
        return lambda b, e: delta_skip_exact(b, e, delta=param, h_x=h_x, h_y=h_y)
    if kind == "approx":
        return lambda b, e: delta_skip_approx(b, e, delta=param, h_x=h_x, h_y=h_y, round_size=round_size)
    raise ValueError(f"kind must be one of {STRATEGIES}, got {kind!r}")


def measure(res: SkipResult, epochs_E, full_ExSxL: tuple, h_x: float, h_y: float) -> dict:
    """Counts and interpolation errors (overall and per seed) of one strategy's result against the full
    (i_xt, i_ty) curves, each epochs x seeds x T; the result's columns are the seeds' T's side by side."""
    n_e, n_s, n_l = full_ExSxL[0].shape
    flat = tuple(v.reshape(n_e, -1) for v in full_ExSxL)
    err = interp_errors(res, epochs_E, *flat, h_x=h_x, h_y=h_y)
    i_xt, i_ty = (v.reshape(n_e, n_s, n_l) for v in interpolate(res, epochs_E))
    per_seed_S = np.maximum(
        np.abs(i_xt - full_ExSxL[0]).max(axis=(0, 2)) / h_x, np.abs(i_ty - full_ExSxL[1]).max(axis=(0, 2)) / h_y
    )
    pos_K = np.searchsorted(epochs_E, res.epochs)
    gaps = consecutive_distances(res.i_xt, res.i_ty, h_x=h_x, h_y=h_y)[np.diff(pos_K) > 1]
    same = np.allclose(res.i_xt, flat[0][pos_K], atol=1e-5) and np.allclose(res.i_ty, flat[1][pos_K], atol=1e-5)
    return {
        "n_evaluated": res.n_evaluated,
        "n_kept": len(res.epochs),
        "n_total": res.n_total,
        "n_rounds": res.n_rounds,
        "fraction_evaluated": round(res.n_evaluated / res.n_total, 4),
        "max_error_norm": err["norm"],
        "mean_error_norm": err["mean_norm"],
        "max_error_i_xt_bits": err["i_xt_abs"],
        "max_error_i_ty_bits": err["i_ty_abs"],
        "mean_error_i_xt_bits": err["i_xt_mean_abs"],
        "mean_error_i_ty_bits": err["i_ty_mean_abs"],
        "max_error_norm_per_seed": per_seed_S.tolist(),
        "max_skipped_gap_norm": float(gaps.max()) if gaps.size else 0.0,
        "values_match_full": bool(same),
        "epochs_kept": res.epochs.tolist(),
    }


def table_markdown(rows: list, full_seconds: float, full_cpu: float, n_total: int) -> str:
    """The strategies' rows (``measure`` plus seconds, cpu_seconds, time_fraction, cpu_fraction) as markdown."""
    head = (
        "| strategy | setting | evaluated / kept | calls | max error (norm.) | mean error (norm.) | "
        "max error I(X;T) / I(T;Y) [bits] | wall [s] | wall / full | CPU [s] | CPU / full |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| full | all | {n_total} / {n_total} | 1 | 0 | 0 | 0 / 0 | {full_seconds:.2f} | 1 | {full_cpu:.2f} | 1 |\n"
    )
    name = {"every": "every n-th", "approx": "delta-skip approx", "exact": "delta-skip exact"}
    return head + "".join(
        f"| {name[r['strategy']]} | {'n' if r['strategy'] == 'every' else 'delta'} = {r['param']} | "
        f"{r['n_evaluated']} / {r['n_total']} | {r['n_rounds']} | {r['max_error_norm']:.4f} | {r['mean_error_norm']:.5f} | "
        f"{r['max_error_i_xt_bits']:.3f} / {r['max_error_i_ty_bits']:.3f} | {r['seconds']:.2f} | {r['time_fraction']:.2f} | "
        f"{r['cpu_seconds']:.2f} | {r['cpu_fraction']:.2f} |\n"
        for r in rows
    )
