"""One path from configs to results, shared by the CLI and every experiment.

    dirs = pipeline.train_or_reuse(RunConfig(...), seeds=range(5), out_root="runs/x", sweep={...})
    plane = pipeline.evaluate_runs(dirs, "kde", {"noise_var": 1e-3}, sweep={"noise_var": [1e-3, 1e-2]},
                                   epochs="log:50", view="layers", out="results/x")

``evaluate_runs`` loads the run directories (same model, data and kept epochs), evaluates every
(settings, run, epoch, T) with one estimator in batched calls and returns an ``InfoPlane``. A result
is keyed by everything that produced it (run ids, epochs, estimator, every setting, view, PRNG seed,
data, the params' contents (a sha256 per run), library versions): a saved result with the same key is reused, any other is recomputed and the
reason printed. ``evaluate_arrays`` does the same for params already in memory. A run given twice
(a repeated path, a symlink beside its target, a copy with the same run id) is refused, not counted
as two seeds; while a plane is written, ``out`` is locked (``io.dir_lock``) against other processes.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ibjax import checkpoints, claims, ib, infoplane, io, models, registry, runs, schedules, skipping, views
from ibjax import data as data_mod
from ibjax.adapters import EDGE_STUDY
from ibjax.config import RunConfig
from ibjax.dynamics import gradient_snr, moving_median  # noqa: F401 - the studies' door: gradient SNR phases of runs' metrics
from ibjax.estimators import edge, mixture
from ibjax.linear import teacher_student  # noqa: F401 - the studies' door: deep linear students, exact MI
from ibjax.result import DamagedFile, InfoPlane
from ibjax.runs import data_present, load_data, train_or_reuse, versions  # noqa: F401 - part of the pipeline's API
from ibjax.timing import best_of, phased, tally

EPOCH_SPECS = "all | every:N | log:K (of the kept epochs) | list:E1,E2,..."
SAMPLES = "all | train | held-out | train:N | held-out:N (the first N of them) | an array of dataset indices"


def split_of(cfg: RunConfig, data_path=None) -> data_mod.Split:
    """The train / held-out split the run's training used (``cfg.data``: split, split_seed, train_frac)."""
    return runs.split_data(load_data(cfg, data_path), cfg)


def samples_of(cfg: RunConfig, samples="all", data_path=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(x, y, what was measured) of the samples an information plane is estimated on (``SAMPLES``). "train"
    is the split's whole training part, in order: ``data.train_subset`` limits what training uses, not this."""
    ds = load_data(cfg, data_path)
    about = {"data": ds.name, "data_source": data_mod.portable_source(ds.source)}
    if isinstance(samples, str) and samples == "all":
        return ds.x, ds.y, {**about, "samples": "all", "n_samples": int(len(ds.y))}
    if not isinstance(samples, str):
        idx = np.asarray(samples)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(
                f"samples must be {SAMPLES}; an index array must be 1-d integers, got {idx.dtype} {idx.shape}"
            )
        if idx.min() < 0 or idx.max() >= len(ds.y) or np.unique(idx).size != idx.size:
            raise ValueError(f"samples: indices must be distinct and in [0, {len(ds.y)}), got {idx[:10].tolist()}")
        return ds.x[idx], ds.y[idx], {**about, "samples": f"{idx.size} given indices", "n_samples": int(idx.size)}
    part, _, n = samples.partition(":")
    if part not in ("train", "held-out") or (n and not n.isdigit()) or n == "0":
        raise ValueError(f"samples must be {SAMPLES}, got {samples!r}")
    sp = runs.split_data(ds, cfg)
    x, y = (sp.x_train, sp.y_train) if part == "train" else (sp.x_test, sp.y_test)
    if n and int(n) > len(y):
        raise ValueError(f"samples {samples!r}: the run's split has only {len(y)} {part} samples")
    k = int(n) if n else len(y)
    text = f"first {k} {part} samples" if n else f"all {k} {part} samples"
    return x[:k], y[:k], {**about, "samples": text, "n_samples": int(k)}


def load_metrics(run_dirs) -> dict[str, np.ndarray]:
    """Every metric of the runs, stacked over runs (S x epochs x ...; the runs must share their shapes)."""
    metrics = [checkpoints.load_metrics(d) for d in run_dirs]
    if not metrics:
        raise ValueError("run_dirs is empty")
    return {k: np.stack([m[k] for m in metrics]) for k in metrics[0]}


def train_and_evaluate(
    nets: dict, seeds, out, estimator: str = "binning", options=None, *, epochs: str = "all", force: bool = False
) -> dict:
    """Per named network (``nets``: name -> RunConfig): train or reuse its ``seeds`` under OUT/runs/NAME,
    evaluate its information plane with ``estimator`` into OUT/NAME and load its metrics. ``options``: the
    estimator's options for every network, or a callable name -> options. ``force``: retrain and recompute.
    Returns name -> {"dirs", "plane", "metrics"}."""
    out, rows = Path(out), {}
    for name, cfg in nets.items():
        dirs = train_or_reuse(cfg, seeds, out / "runs" / name, force=force)
        opts = options(name) if callable(options) else options
        plane = evaluate_runs(dirs, estimator, opts, epochs=epochs, out=out / name, recompute=force)
        rows[name] = {"dirs": dirs, "plane": plane, "metrics": load_metrics(dirs)}
    return rows


def train_and_evaluate_each(
    nets: dict, seeds, evaluations, out, *, plane_dir: str = "{net}", train_sweep=None, force: bool = False
) -> dict:
    """Per named network (``nets``: name -> RunConfig): train or reuse its ``seeds`` (x ``train_sweep``, one
    vmapped call) under OUT/runs/NAME, then evaluate it once per entry of ``evaluations`` (key -> the keywords
    of ``evaluate_runs``: estimator, options, sweep, epochs, ...; or a callable name -> such a dict) into
    OUT/``plane_dir`` (formatted with ``net`` and ``key``). ``force``: retrain and recompute. Returns name ->
    {"dirs", "metrics", "planes" (key -> InfoPlane), "files" (key -> its file, relative to OUT),
    "train_seconds", "evaluate_seconds"}."""
    out, rows = Path(out), {}
    for name, cfg in nets.items():
        t0 = time.perf_counter()
        row = {"dirs": train_or_reuse(cfg, seeds, out / "runs" / name, sweep=train_sweep, force=force)}
        t1, row["planes"], row["files"] = time.perf_counter(), {}, {}
        for key, kw in (evaluations(name) if callable(evaluations) else evaluations).items():
            where = out / plane_dir.format(net=name, key=key)
            row["planes"][key] = evaluate_runs(row["dirs"], **kw, out=where, recompute=force)
            path = result_path(where, kw.get("estimator", "binning"), kw.get("view", "layers"))
            row["files"][key] = str(path.relative_to(out))
        row["train_seconds"], row["evaluate_seconds"] = round(t1 - t0, 1), round(time.perf_counter() - t1, 1)
        rows[name] = {**row, "metrics": load_metrics(row["dirs"])}
    return rows


def split_grid(row: dict, n_points: int) -> list:
    """A ``train_and_evaluate_each`` row of a network trained over a ``train_sweep`` of ``n_points`` grid points
    (runs in grid-major order: point, then seed) as one (planes {key: the plane of that point's runs}, metrics
    {name: S x ...}) per grid point."""
    if n_points < 1 or len(row["dirs"]) % n_points:
        raise ValueError(f"n_points={n_points} does not divide the row's {len(row['dirs'])} runs")
    n_s, out = len(row["dirs"]) // n_points, []
    for i in range(n_points):
        idx = list(range(i * n_s, (i + 1) * n_s))
        out.append(({k: p.runs(idx) for k, p in row["planes"].items()}, {k: v[idx] for k, v in row["metrics"].items()}))
    return out


def sweep_point(plane, option: str | None = None, value=None, *, bound: str = "") -> tuple:
    """(g, plane) of the settings-grid point whose ``option`` is nearest ``value`` (g 0 when the plane has no
    sweep of ``option``), as a G = 1 plane; ``bound`` "_lower" (or another suffix): the plane of the
    ``i_xt_lower`` / ``i_ty_lower`` outputs as its i_xt / i_ty (the KDE lower bounds)."""
    g = int(np.argmin(np.abs(np.asarray(plane.sweep[option]) - value))) if option in plane.sweep else 0
    p = plane.setting(g) if plane.shape[0] > 1 else plane
    if bound:
        p = dataclasses.replace(p, values={k: p.values[k + bound] for k in ("i_xt", "i_ty")})
    return g, p


def sweep_panels(rows: dict, picks: dict, values: dict) -> tuple:
    """The G = 1 panels of ``train_and_evaluate_each``'s rows: ``picks`` panel -> (evaluation key, swept option
    or None, bound), each at the grid point nearest ``values[option]`` (``sweep_point``); a network without that
    evaluation has no such panel. Returns ({(name, panel): plane}, {name: {panel: {"file", "g", "value"}}}),
    "value" naming the output shown as I(X;T)."""
    planes, files = {}, {}
    for name, row in rows.items():
        for panel, (key, option, bound) in picks.items():
            if key in row["planes"]:
                g, planes[name, panel] = sweep_point(row["planes"][key], option, values.get(option), bound=bound)
                files.setdefault(name, {})[panel] = {"file": row["files"][key], "g": g, "value": "i_xt" + bound}
    return planes, files


def train_sizes(cfg: RunConfig, subsets) -> list[int]:
    """The training samples of each ``data.train_subset`` in ``subsets``, as training computes them (float32
    fraction x the size of the run split's training part)."""
    n = len(split_of(cfg).y_train)
    return [int(np.round(np.float32(u) * np.float32(n))) for u in subsets]


def select_epochs(spec: str, kept: np.ndarray) -> np.ndarray:
    """Positions of the kept epochs to evaluate."""
    kind, _, arg = str(spec).partition(":")
    if kind == "all" and not arg:
        return np.arange(len(kept))
    if kind == "list":
        want = np.array([_int(spec, v) for v in arg.split(",")])
        missing = np.setdiff1d(want, kept)
        if missing.size:
            raise ValueError(
                f"epochs {spec!r}: epochs {missing[:10].tolist()} are not present in the run; "
                f"kept epochs run {kept.min()}..{kept.max()} ({len(kept)} kept)"
            )
        return np.searchsorted(kept, np.unique(want))
    if kind in ("every", "log"):
        return (schedules.every if kind == "every" else schedules.log_spaced)(len(kept), _int(spec, arg))
    raise ValueError(f"epochs must be {EPOCH_SPECS}, got {spec!r}")


def _int(spec, arg):
    try:
        return int(arg)
    except ValueError:
        raise ValueError(f"epochs {spec!r}: {arg!r} is not an integer") from None


@phased("load")
def load_runs(run_dirs, *, allow_partial: bool = False) -> list[checkpoints.Run]:
    """Load run directories that share a model, a dataset and kept epochs."""
    if not run_dirs:
        raise ValueError("run_dirs must name at least one run directory")
    _refuse_duplicates(run_dirs, [os.path.realpath(d) for d in run_dirs], "the same directory")
    runs = [checkpoints.load_run(d, allow_partial=allow_partial) for d in run_dirs]
    _refuse_duplicates(run_dirs, [f"run_id {r.config.get('run_id')}" for r in runs], "the same run")
    first = runs[0]
    for d, r in zip(run_dirs, runs):
        if r.config.get("model") != first.config.get("model") or r.config.get("data", {}).get(
            "name"
        ) != first.config.get("data", {}).get("name"):
            raise ValueError(f"run_dir {d} has a different model or dataset than {run_dirs[0]}")
        if not np.array_equal(r.epochs, first.epochs):
            raise ValueError(
                f"run_dir {d} kept different epochs than {run_dirs[0]} "
                f"({len(r.epochs)} vs {len(first.epochs)}); evaluate them separately"
            )
    return runs


def _refuse_duplicates(run_dirs, identities: list[str], what: str) -> None:
    """A run given twice (a path repeated, a symlink beside its target, a copy) would count as two
    seeds with no spread between them."""
    seen = {}
    for d, ident in zip(run_dirs, identities):
        if ident in seen:
            raise ValueError(
                f"run_dirs {str(seen[ident])!r} and {str(d)!r} are {what} ({ident}): it would count as two "
                "seeds with no spread between them; pass each run once"
            )
        seen[ident] = d


def result_key(**parts) -> str:
    body = json.dumps({**parts, "versions": versions()}, sort_keys=True, default=_plain)
    return hashlib.sha256(body.encode()).hexdigest()[:20]


def params_digests(params_SxE) -> list[str]:
    """One sha256 per run of the params' contents (every leaf's name, dtype, shape and bytes over the
    evaluated epochs): a result key holds these, so params retrained elsewhere under the same run id
    (another CPU, another library version) are recomputed, never matched to an older plane."""
    flat = {jax.tree_util.keystr(p): np.asarray(a) for p, a in jax.tree_util.tree_flatten_with_path(params_SxE)[0]}
    n_runs = next(iter(flat.values())).shape[0]  # (one host copy per leaf; a digest per run, as the files carry)
    return [checkpoints.digest({k: a[s] for k, a in flat.items()})[:16] for s in range(n_runs)]


def _plain(o):
    return o.tolist() if hasattr(o, "tolist") else str(o)


def result_path(out: str | Path, estimator: str, view: str = "layers") -> Path:
    tag = "" if view == "layers" else "_" + str(view).replace(":", "")
    return Path(out) / f"infoplane_{estimator}{tag}.npz"


class Grid(NamedTuple):
    """An estimator-settings grid: static points (one compile each) x traced values (one vmapped axis)."""

    static_points: list  # [{option: value}] (one {} without static sweeps)
    traced: dict  # option -> values along the vmapped axis
    points: list  # every grid point in result order (static-major)


def make_grid(estimator: str, options: dict, sweep: dict | None, ctx) -> Grid:
    traced, static = registry.split_sweep(estimator, sweep)
    traced_points = list(itertools.product(*traced.values()))
    static_points = [dict(zip(static, c)) for c in itertools.product(*static.values())]
    points = [{**sp, **dict(zip(traced, tp))} for sp in static_points for tp in traced_points]
    for p in points:  # every grid point passes the option checks
        registry.resolve(estimator, {**options, **p}, ctx)
    return Grid(static_points, {k: [tp[i] for tp in traced_points] for i, k in enumerate(traced)}, points)


_RECOMPUTE = contextvars.ContextVar("ibjax_recompute", default=False)


@contextlib.contextmanager
def recomputing(on: bool = True):
    """Inside this block every ``evaluate_runs`` / ``evaluate_arrays`` recomputes (``recompute=True``)
    instead of reusing a saved plane or cached chunks: what an experiment's ``--force`` means, so a
    forced rerun never shows a plane from code or runs older than itself."""
    token = _RECOMPUTE.set(bool(on))
    try:
        yield
    finally:
        _RECOMPUTE.reset(token)


def evaluate_runs(
    run_dirs,
    estimator: str = "binning",
    options: dict | None = None,
    *,
    epochs: str = "all",
    view: str = "layers",
    sweep: dict | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    memory_gb: float | None = None,
    nan_policy: str = "raise",
    model=None,
    data_path=None,
    allow_partial: bool = False,
    recompute: bool = False,
    progress: bool = True,
    log: Callable = print,
    loaded: list | None = None,
    samples="all",
) -> InfoPlane:
    """The information plane of ``run_dirs`` (S runs) as an ``InfoPlane`` (G x S x E x L), estimated on
    ``samples`` (``SAMPLES``: all inputs, or the run split's training / held-out ones, or the first N of
    them, or given indices). ``options``: a dict, or the CLI's text ``"name=value;..."``. ``loaded``:
    ``load_runs(run_dirs)`` already in memory (repeated calls on the same runs)."""
    run_dirs = [Path(d) for d in run_dirs]
    runs = loaded if loaded is not None else load_runs(run_dirs, allow_partial=allow_partial)
    cfg = RunConfig.from_dict(runs[0].config)
    model = model or cfg.model.build()
    x, y, measured = samples_of(cfg, samples, data_path)
    positions = select_epochs(epochs, runs[0].epochs)
    params = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in runs])  # S x E_kept x ...
    params = jax.tree.map(lambda a: a[:, positions], params)
    return evaluate_arrays(
        model,
        params,
        runs[0].epochs[positions],
        x,
        y,
        estimator,
        options,
        run_ids=[r.config["run_id"] for r in runs],
        run_dirs=run_dirs,
        view=view,
        sweep=sweep,
        seed=seed,
        out=out,
        memory_gb=memory_gb,
        nan_policy=nan_policy,
        run_config=runs[0].config,
        recompute=recompute,
        progress=progress,
        log=log,
        measured=measured,
    )


def evaluate_arrays(
    apply_fn,
    params_SxE,
    epochs_E,
    x,
    y,
    estimator: str = "binning",
    options: dict | None = None,
    *,
    run_ids=None,
    run_dirs=(),
    view: str = "layers",
    sweep: dict | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    memory_gb: float | None = None,
    nan_policy: str = "raise",
    run_config: dict | None = None,
    recompute: bool = False,
    progress: bool = True,
    log: Callable = print,
    measured: dict | None = None,
) -> InfoPlane:
    """Like ``evaluate_runs`` for params in memory: every leaf S x E x ... (S runs, E epochs).

    ``apply_fn``: a ``models.Model`` (its ``noisy_apply`` is used by noisy-network estimators such as
    ``smoothed``; ``evaluate_runs`` passes the run's model this way), an ``infoplane.ApplyFns``, or a
    plain ``apply(params, x) -> (logits, acts)`` for deterministic-network estimators."""
    est, v = registry.get(estimator), views.get(view)
    recompute = recompute or _RECOMPUTE.get()
    apply_fn = infoplane.as_apply_fns(apply_fn)
    if est.noisy and apply_fn[1] is None:
        raise ValueError(
            f"estimator {estimator!r} needs the model's noisy_apply(params, x, key, sigma): pass the "
            "models.Model itself as apply_fn (its noisy_apply is picked up), or "
            "infoplane.ApplyFns(apply, noisy_apply); got an apply function alone"
        )
    x, y_idx, classes = infoplane.check_inputs(x, y)
    epochs_E = np.asarray(epochs_E, np.int64)
    n_runs, n_epochs = jax.tree.leaves(params_SxE)[0].shape[:2]
    if n_epochs != len(epochs_E):
        raise ValueError(f"params hold {n_epochs} epochs but epochs_E lists {len(epochs_E)}")
    run_ids = [f"run{s}" for s in range(n_runs)] if run_ids is None else [str(r) for r in run_ids]
    if len(run_ids) != n_runs:
        raise ValueError(f"run_ids lists {len(run_ids)} runs but params hold {n_runs}")
    ctx = registry.Context(len(y_idx), len(classes), run_config)
    options = registry.parse_options(estimator, options) if isinstance(options, str) else dict(options or {})
    settings = registry.resolve(estimator, options, ctx)
    grid = make_grid(estimator, options, sweep, ctx)
    _check_request(est, v, n_epochs, memory_gb, nan_policy)
    coords = views.t_coords(v, apply_fn, jax.tree.map(lambda a: a[0, 0], params_SxE), x)
    names = [views.name_of(c) for c in coords]
    digests = params_digests(params_SxE)
    key = result_key(
        run_ids=run_ids,
        params=digests,
        epochs=epochs_E,
        estimator=estimator,
        settings=settings,
        sweep=sweep or {},
        view=v.spec,
        seed=seed,
        nan_policy=nan_policy,
        data=(measured or {}).get("data"),
        n=len(y_idx),
        x=hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:12],
    )
    path = None if out is None else result_path(out, estimator, v.spec)
    with _writing(out, f"evaluating {estimator} ({v.spec})"):  # no other process writes out meanwhile
        if path is not None and path.is_file() and recompute:
            log(f"recomputing {path} (recompute requested: no saved plane or chunk is reused)")
        elif path is not None and path.is_file():
            old = _try_load(path, log)
            if old is not None and old.key == key:
                log(f"reusing {path} (same runs, epochs, estimator, settings and view)")
                tally("planes reused")
                return old
            if path.is_file():  # (a damaged file was set aside and named above)
                log(
                    f"recomputing {path}: settings changed"
                    + (
                        ""
                        if old is None
                        else _what_changed(old, estimator, settings, v.spec, epochs_E, run_ids, digests)
                    )
                )
        tally("planes computed")
        params_I, positions = _items(params_SxE, v.window)
        out_epochs = epochs_E[positions]
        n_e = len(out_epochs)
        runs_I, epochs_I = [r for r in run_ids for _ in range(n_e)], np.tile(out_epochs, n_runs)
        cache = None if out is None else Path(out) / ".cache" / key
        if cache is not None and recompute and cache.is_dir():
            for f in cache.rglob("chunk_*.npz"):
                f.unlink()
        bar = (
            (lambda it: tqdm(it, desc=f"{estimator} {v.spec}", unit="chunk", leave=False, disable=None))
            if progress
            else None
        )
        parts = [
            infoplane.evaluate_items(
                apply_fn,
                params_I,
                runs_I,
                epochs_I,
                x,
                y_idx,
                estimator=estimator,
                static={k: val for k, val in {**settings, **sp}.items() if k not in grid.traced},
                traced=grid.traced,
                view=v,
                key=jax.random.key(seed),
                memory_gb=memory_gb,
                cache_dir=None if cache is None else cache / _point_tag(sp),
                progress=bar,
            )
            for sp in grid.static_points
        ]  # structural: a shape-changing option is one compile per value
        items = infoplane.Items(*(_concat([getattr(p, f) for p in parts]) for f in infoplane.Items._fields))
        describe = lambda i, g: (
            f"run {run_dirs[i // n_e] if run_dirs else run_ids[i // n_e]} epoch {int(epochs_I[i])}"
            + (f" setting {grid.points[g]}" if sweep else "")
        )
        items = infoplane.check_values(items, est, nan_policy=nan_policy, describe=describe, t_names=names)
        shape = (len(grid.points), n_runs, n_e, len(names))
        warn = _collect_warnings(est, items, shape, out_epochs, log)
        if (~items.finite).any():
            warn["non-finite activations, recorded as NaN"] = [
                [int(g), int(i // n_e), int(out_epochs[i % n_e]), int(l)] for g, i, l in zip(*np.nonzero(~items.finite))
            ]
            log(
                f"warning: {int((~items.finite).sum())} (epoch, T) value(s) from non-finite activations recorded as NaN"
            )
        plane = InfoPlane(
            out_epochs,
            {k: v_.reshape(shape) for k, v_ in items.values.items()},
            estimator,
            settings,
            {k: [p[k] for p in grid.points] for k in (sweep or {})},
            tuple(run_ids),
            tuple(str(d) for d in run_dirs),
            tuple(names),
            {
                "network": "noisy" if est.noisy else "deterministic",
                "view": v.spec,
                "units": est.units,
                "nan_policy": nan_policy,
                "seed": seed,
                **(measured or {}),
                "t_coords": coords,
                "params_digests": digests,
            },
            warn,
            key,
            versions(),
        )
        if path is not None and jax.process_index() == 0:  # several processes (jax.distributed): one writer
            plane.save(path)
        return plane


def _writing(out, what: str):
    """The lock of ``out`` while a plane and its cache are written there (``io.dir_lock``; shared with an
    enclosing experiment's lock of the same directory). With several processes only process 0 writes."""
    if out is None or jax.process_index() != 0:
        return contextlib.nullcontext()
    return io.dir_lock(out, what=what)


def _check_request(est, v, n_epochs: int, memory_gb, nan_policy: str) -> None:
    io.memory_budget_gb(memory_gb)  # a budget that is not > 0 is refused before any work
    if nan_policy not in infoplane.NAN_POLICIES:
        raise ValueError(f"nan_policy must be one of {infoplane.NAN_POLICIES}, got {nan_policy!r}")
    if est.noisy and v.spec != "layers":
        raise ValueError(f"view {v.spec!r} does not apply to the noisy-network estimator {est.name!r} (layers only)")
    if v.window > 1 and not est.label_conditional:
        raise ValueError(
            f"view {v.spec!r} needs a label-conditional estimator "
            f"({sorted(n for n, e in registry.builtin().items() if e.label_conditional)}), got {est.name!r}"
        )
    if v.window > n_epochs:
        raise ValueError(f"view {v.spec!r}: the window is longer than the {n_epochs} selected epochs")


def _items(params_SxE, window: int):
    """Item params (S*E x ..., or S*E' x W x ... for a window view) and the epoch position each is reported at."""
    n_runs, n_epochs = jax.tree.leaves(params_SxE)[0].shape[:2]
    if window == 1:
        return jax.tree.map(lambda a: a.reshape((n_runs * n_epochs,) + a.shape[2:]), params_SxE), np.arange(n_epochs)
    win = np.arange(n_epochs - window + 1)[:, None] + np.arange(window)
    return jax.tree.map(lambda a: a[:, win].reshape((n_runs * len(win), window) + a.shape[2:]), params_SxE), win[:, 0]


def _concat(parts):
    """Concatenate per-static-point engine outputs (arrays or dicts of arrays) along the settings axis."""
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def _point_tag(static_point: dict) -> str:
    """Cache subdirectory of one static-option grid point (each is its own compiled evaluation)."""
    return (
        "static-" + hashlib.sha256(json.dumps(static_point, sort_keys=True, default=_plain).encode()).hexdigest()[:10]
    )


def _try_load(path: Path, log=print) -> InfoPlane | None:
    """The saved plane, or None; a damaged one is set aside (``NAME.damaged``, never deleted) and named."""
    try:
        return InfoPlane.load(path)
    except DamagedFile as e:
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        log(f"saved plane {path} is damaged ({e.__cause__ or e}); set aside as {aside.name}, recomputing it")
        return None
    except (ValueError, FileNotFoundError):
        return None


def _what_changed(old: InfoPlane, estimator, settings, view, epochs, run_ids, digests) -> str:
    diffs = []
    if old.estimator != estimator:
        diffs.append(f"estimator {old.estimator} -> {estimator}")
    for k in sorted(set(old.settings) | set(settings)):
        if old.settings.get(k) != settings.get(k):
            diffs.append(f"{k} {old.settings.get(k)} -> {settings.get(k)}")
    if old.measured.get("view") != view:
        diffs.append(f"view {old.measured.get('view')} -> {view}")
    if not np.array_equal(old.epochs, epochs):
        diffs.append(f"epochs ({len(old.epochs)} -> {len(epochs)})")
    if list(old.run_ids) != list(run_ids):
        diffs.append("runs")
    elif "params_digests" in old.measured and list(old.measured["params_digests"]) != list(digests):
        changed = [r for r, a, b in zip(run_ids, old.measured["params_digests"], digests) if a != b]
        diffs.append(
            f"params of run(s) {', '.join(changed[:3])} differ from the saved plane's (same run id, new contents)"
        )
    elif old.versions != versions():
        diffs.append(
            "library versions "
            + ", ".join(f"{k} {old.versions.get(k)} -> {v}" for k, v in versions().items() if old.versions.get(k) != v)
        )
    return f" ({'; '.join(diffs)})" if diffs else " (sweep, seed, data or version)"


def _collect_warnings(est, items, shape, out_epochs, log) -> dict:
    found = {}
    n_e = len(out_epochs)
    for flag, message in est.warnings.items():
        hit = items.flags[flag]
        if hit.any():
            where = [[int(g), int(i // n_e), int(out_epochs[i % n_e]), int(l)] for g, i, l in zip(*np.nonzero(hit))]
            found[message] = where
            log(
                f"warning: {message} at {len(where)} of {hit.size} (setting, run, epoch, T) values, e.g. "
                f"run {where[0][1]} epoch {where[0][2]} T {where[0][3] + 1}; recorded in the result's warnings"
            )
    return found


def evaluate_activations(
    acts_per_layer,
    y,
    estimator: str = "binning",
    options: dict | None = None,
    *,
    x=None,
    epochs=None,
    layer_names=None,
    run_id: str = "activations",
    nan_policy: str = "raise",
    **kw,
) -> InfoPlane:
    """The information plane of saved activations, through the same engine as ``evaluate_arrays``:
    ``acts_per_layer`` a list (or dict name -> array) of E x N x ... arrays, one per layer (widths may
    differ), or one L x E x N x D array; ``y`` the N labels; ``x`` the N inputs (needed by estimators
    that measure I(X;T) against X itself: knn, edge, hsic, renyi; the others take X as the set of N
    distinct inputs). ``epochs``: the E epoch numbers (default 0..E-1). Other keywords: as
    ``evaluate_arrays`` (sweep, view, out, memory_gb, seed, ...)."""
    if isinstance(acts_per_layer, dict):
        layer_names = layer_names or [str(k) for k in acts_per_layer]
        acts_per_layer = list(acts_per_layer.values())
    acts = [
        np.asarray(a) for a in (acts_per_layer if isinstance(acts_per_layer, (list, tuple)) else list(acts_per_layer))
    ]
    if not acts or any(a.ndim < 3 for a in acts):
        raise ValueError(
            f"acts_per_layer must hold one E x N x ... array per layer (epochs x samples x features), "
            f"got shapes {[a.shape for a in acts]}"
        )
    names = [str(n) for n in layer_names] if layer_names is not None else [f"layer {i + 1}" for i in range(len(acts))]
    if len(names) != len(acts):
        raise ValueError(f"layer_names lists {len(names)} names for {len(acts)} layers")
    _check_acts(acts, names, nan_policy)
    n_epochs, n = acts[0].shape[:2]
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must hold one label per sample: shape ({n},) for {n} samples, got {y.shape}")
    est = registry.get(estimator)
    if x is None and not est.label_conditional:
        raise ValueError(
            f"estimator {estimator!r} measures I(X;T) against the inputs: pass x (N x ... inputs, CLI: "
            f"--data); without x use one of {sorted(n for n, e in registry.builtin().items() if e.label_conditional)}"
        )
    x = np.arange(n, dtype=np.float32)[:, None] if x is None else np.asarray(x)  # X = the N distinct inputs
    if x.shape[0] != n:
        raise ValueError(f"x must hold the {n} samples of the activations, got shape {x.shape}")
    epochs_E = np.arange(n_epochs) if epochs is None else np.asarray(epochs, np.int64)
    if epochs_E.shape != (n_epochs,):
        raise ValueError(f"epochs must list the {n_epochs} epochs of the activations, got shape {epochs_E.shape}")
    params = {f"t{i:04d}": a[None] for i, a in enumerate(acts)}  # 1 run x E epochs: the engine's item params
    keys = sorted(params)

    def apply(p, _x):
        return p[keys[-1]], tuple(p[k] for k in keys)

    plane = evaluate_arrays(
        apply,
        params,
        epochs_E,
        x,
        y,
        estimator,
        options,
        run_ids=[run_id],
        nan_policy=nan_policy,
        measured={"samples": "all", "n_samples": int(n), "data": "activations"},
        **kw,
    )
    same = plane.measured.get("view") == "layers"
    return dataclasses.replace(plane, layer_names=tuple(names)) if same else plane


def _check_acts(acts, names, nan_policy: str) -> None:
    for a, name in zip(acts[1:], names[1:]):
        if a.shape[:2] != acts[0].shape[:2]:
            raise ValueError(
                f"acts_per_layer[{name!r}] has {a.shape[0]} epochs x {a.shape[1]} samples, "
                f"{names[0]!r} has {acts[0].shape[0]} x {acts[0].shape[1]}; every layer needs the same epochs and samples"
            )
    for a, name in zip(acts, names):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ValueError(f"acts_per_layer[{name!r}] must hold real numbers, got dtype {a.dtype}")
        bad = ~np.isfinite(a).reshape(a.shape[0], -1).all(axis=1)
        if bad.any() and nan_policy == "raise":
            raise ValueError(
                f"acts_per_layer[{name!r}] holds NaN/inf at epoch position(s) {np.nonzero(bad)[0][:10].tolist()}; "
                "pass nan_policy='mark' (CLI: --nan mark) to record NaN there"
            )


# Saved runs layer by layer: their params loaded once, one layer's activations, its own estimator settings


def load_params(run_dirs, epochs: str = "all") -> tuple:
    """(params S x E x ..., kept epochs E, run ids, the first run's config dict) of saved runs at the selected
    kept epochs (``EPOCH_SPECS``): what ``evaluate_arrays`` takes, loaded once for several calls."""
    runs = load_runs(run_dirs)
    positions = select_epochs(epochs, runs[0].epochs)
    params = jax.tree.map(lambda *a: np.stack(a)[:, positions], *[r.params for r in runs])
    return params, runs[0].epochs[positions], [r.config["run_id"] for r in runs], runs[0].config


def evaluate_samples(
    run_dirs, x, y, estimator: str = "binning", options=None, *, epochs: str = "all", measured=None, **kw
):
    """``evaluate_runs`` on given samples: ``x``, ``y`` the N inputs and labels (e.g. the first N training images),
    ``measured`` what they are ({"data", "samples", "n_samples", ...}, kept in the plane). Other keywords: as
    ``evaluate_arrays`` (view, seed, out, memory_gb, recompute, ...)."""
    params, kept, run_ids, config = load_params(run_dirs, epochs)
    model = RunConfig.from_dict(config).model.build()
    return evaluate_arrays(
        model,
        params,
        kept,
        x,
        y,
        estimator,
        options,
        run_ids=run_ids,
        run_dirs=run_dirs,
        run_config=config,
        measured=measured,
        **kw,
    )


def layer_t(l: int, apply, params, x):
    """The view function of hidden layer ``l`` (0-based) alone: a 1-tuple of its N x d activations."""
    return (apply(params, x)[1][l].reshape(x.shape[0], -1),)


def layer_view(l: int):
    """A view whose only T is hidden layer ``l`` (0-based), named "layer <l + 1>": one call per layer's settings."""
    return views.View(f"layer{l + 1}", partial(layer_t, l), lambda shapes: [{"layer": l + 1}])


def given_t(apply, acts, x):
    """The view function of ``given_view``: the activations passed in place of the params."""
    return (acts,)


def given_apply(acts, x):
    """An apply function whose 'params' are one item's activations (N x d): (no logits, (acts,))."""
    return None, (acts,)


def given_view(l: int):
    """A view whose only T is an activation array passed in place of the params (with ``given_apply``), named
    hidden layer ``l`` (0-based): evaluates activations computed once, under the key of a per-layer view."""
    return views.View(f"layer{l + 1}", given_t, lambda shapes: [{"layer": l + 1}])


def deeper_activations(model, params_SxE, x, n_hidden: int) -> list:
    """Hidden layers 2..n_hidden of every (run, epoch), S x E x N x d each, from one forward pass per item
    (lax.map over the items: a wide first layer's N x d activations are never stacked)."""
    s, e = jax.tree.leaves(params_SxE)[0].shape[:2]
    flat = jax.tree.map(lambda a: a.reshape((s * e,) + a.shape[2:]), params_SxE)
    f = jax.jit(lambda ps, x: jax.lax.map(lambda p: tuple(model.apply(p, x)[1][1:n_hidden]), ps))
    return [np.asarray(a).reshape((s, e) + a.shape[1:]) for a in f(flat, jax.numpy.asarray(x))]


def evaluate_layers(
    run_dirs, x, y, estimator: str, options=None, *, layer_options: dict, epochs: str = "all", measured=None, **kw
):
    """The hidden layers of saved runs on the samples (x, y), each with its own estimator options:
    ``layer_options`` option -> one value per hidden layer (1..H), over the shared ``options``. One evaluation
    per layer, saved as ``result_path(out, estimator, "layer<l>")``: layer 1 through the network, the deeper
    layers from their activations, computed once for all (a call per layer through the network would repeat the
    first layer's product). Returns one plane of the H layers, its settings listing the per-layer values. Other
    keywords: as ``evaluate_arrays`` (seed, out, memory_gb, recompute, ...)."""
    params, kept, run_ids, config = load_params(run_dirs, epochs)
    n_hidden = len(next(iter(layer_options.values())))
    model = RunConfig.from_dict(config).model.build()
    deeper = deeper_activations(model, params, x, n_hidden)
    parts = [
        evaluate_arrays(
            model if l == 0 else given_apply,
            params if l == 0 else deeper[l - 1],
            kept,
            x,
            y,
            estimator,
            {**(options or {}), **{k: v[l] for k, v in layer_options.items()}},
            run_ids=run_ids,
            run_dirs=run_dirs,
            run_config=config,
            measured=measured,
            view=layer_view(0) if l == 0 else given_view(l),
            **kw,
        )
        for l in range(n_hidden)
    ]  # structural: each layer has its own estimator settings
    return dataclasses.replace(
        parts[0],
        values={k: np.concatenate([p.values[k] for p in parts], axis=-1) for k in parts[0].values},
        layer_names=tuple(p.layer_names[0] for p in parts),
        settings={**parts[0].settings, **{k: [p.settings[k] for p in parts] for k in layer_options}},
    )


def edge_normalisation(run_dir, x, *, gamma_t: float, layer: int = 0, epochs: str = "all", counts=None, seed: int = 0):
    """EDGE 4.2.0's I(X;T) [bits] of hidden layer ``layer`` (0-based) of one saved run at its first and last
    evaluated epoch, with and without the one-step normalisation (gamma <- gamma 2^(-sqrt(2 I) + 0.5 / I)), with
    Noshad et al.'s U and gamma_x and T's ``gamma_t``, on the first n of the samples ``x`` for each n in ``counts``
    (default: all and a fifth), beside log2 n: {"steps": [first, last], "N=n": {"log2_N", "normalised",
    "first_pass"}}. Where the first pass reads a few bits the normalisation narrows the buckets so much that
    nearly every sample has a cell of its own."""
    params, kept, _, config = load_params([run_dir], epochs)
    ends = jax.tree.map(lambda a: a[0, np.array([0, len(kept) - 1])], params)
    model, key, xj = RunConfig.from_dict(config).model.build(), jax.random.key(seed), jax.numpy.asarray(x)
    gamma = (EDGE_STUDY["gamma_x"], gamma_t)

    def i_xt(n, normalize, p):
        t = model.apply(p, xj[:n])[1][layer].reshape(n, -1)
        return edge.mi(xj[:n], t, U=EDGE_STUDY["U"], gamma=gamma, version="4.2.0", key=key, normalize_epsilon=normalize)

    out = {"steps": [int(kept[0]), int(kept[-1])]}
    for n in counts or (len(x), len(x) // 5):  # structural: one shape per count, each mapped over both epochs
        runs = {
            name: jax.lax.map(partial(i_xt, n, norm), ends)
            for name, norm in (("normalised", True), ("first_pass", False))
        }
        out[f"N={n}"] = {"log2_N": round(float(np.log2(n)), 4)} | {
            k: [round(float(v), 4) for v in r] for k, r in runs.items()
        }
    return out


def first_layers(model, n: int = 1):
    """``model`` with only its first ``n`` T measured (every layer still computes; n = 1: the first hidden layer,
    not the readout). Pass it as ``evaluate_runs(..., model=)``. A prefix keeps the noisy estimators' layer
    order: T_1 stays the first layer, whose h(T|X) is h(Z) exactly."""
    if not 1 <= n <= model.n_layers:
        raise ValueError(f"n must be in [1, {model.n_layers}] (the model's T), got {n}")

    def apply(params, x):
        logits, acts = model.apply(params, x)
        return logits, acts[:n]

    def noisy_apply(params, x, key, sigma):
        logits, t_acts, s_acts = model.noisy_apply(params, x, key, sigma)
        return logits, t_acts[:n], s_acts[:n]

    return model._replace(apply=apply, noisy_apply=noisy_apply, n_layers=n, layer_names=model.layer_names[:n])


def layer_activations(run_dirs, layer: int = 0, *, samples="all", loaded=None) -> tuple[np.ndarray, np.ndarray]:
    """The deterministic activations of T ``layer`` of saved runs at every kept epoch on ``samples``
    (``SAMPLES``): (kept epochs E, S x E x N x ... float64). ``loaded``: ``load_runs(run_dirs)`` in memory."""
    runs = loaded if loaded is not None else load_runs(run_dirs)
    cfg = RunConfig.from_dict(runs[0].config)
    model, x = cfg.model.build(), jnp.asarray(samples_of(cfg, samples)[0])
    params = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in runs])  # S x E x ...
    acts = jax.vmap(jax.vmap(lambda p: model.apply(p, x)[1][layer]))(params)
    return runs[0].epochs, np.asarray(acts, np.float64)


def exact_noisy_i_xt(means, sigma: float, *, vector: bool = False) -> np.ndarray:
    """Exact I(X;T) [bits] of T = m_X + N(0, sigma^2 I), X uniform over K symbols: h(mixture) - h(Z) by
    Gauss-Hermite quadrature. ``means``: ... x K (a 1-D T; ``vector``: ... x K x D); float64 over the ... axes."""
    m = jnp.asarray(means, jnp.float32)
    f = lambda m_K: mixture.mutual_information(m_K, sigma)
    for _ in range(m.ndim - 1 - vector):
        f = jax.vmap(f)
    return np.asarray(f(m), np.float64)


def kernel_orthonormality(run_dirs, *, loaded=None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """||K^T K - I||_F of every kernel (fan_in x fan_out, in layer order) of saved runs at every kept epoch, 0 for
    orthonormal columns: (kept epochs E, R x E x kernels, names "kernel k (fan_in x fan_out)")."""
    runs = loaded if loaded is not None else load_runs(run_dirs)
    n_e = len(runs[0].epochs)
    ks_R = [[k.reshape(n_e, -1, k.shape[-1]) for k in models.kernels(r.params)] for r in runs]  # E x in x out each
    err_R = [
        np.stack([np.linalg.norm(np.einsum("eio,eip->eop", k, k) - np.eye(k.shape[-1]), axis=(1, 2)) for k in ks], 1)
        for ks in ks_R
    ]
    return (
        runs[0].epochs,
        np.stack(err_R),
        [f"kernel {j + 1} ({k.shape[1]}x{k.shape[2]})" for j, k in enumerate(ks_R[0])],
    )


def ib_bound_planes(run_dirs, *, n_final: int, n_bins: int = 30, betas: int = 64, n_iter: int = 500) -> dict:
    """Saved runs of a binary task against its IB bound (``ib.bound_analysis`` on the runs' dataset and its true
    p(y|x), ``ib.p_y_given_x``): the exact binned plane of every run as an InfoPlane ("plane"; estimator
    "binning (true p(y|x))"), the runs' "metrics", "data" (the dataset's name), "p_yx" and the analysis' curve
    and gaps (the gaps of the first ``n_final`` runs)."""
    loaded = load_runs(run_dirs)
    cfg = RunConfig.from_dict(loaded[0].config)
    ds = load_data(cfg)
    p_yx = ib.p_y_given_x(ds.meta, ds.y)
    params = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in loaded])  # R x E x ...
    r = ib.bound_analysis(
        cfg.model.build().apply, params, ds.x, p_yx, n_final=n_final, n_bins=n_bins, betas=betas, n_iter=n_iter
    )
    names = tuple(f"layer {l + 1}" for l in range(r["i_xt"].shape[2]))
    plane = InfoPlane(
        loaded[0].epochs,
        {"i_xt": r.pop("i_xt")[None], "i_ty": r.pop("i_ty")[None]},
        "binning (true p(y|x))",
        {"n_bins": n_bins},
        layer_names=names,
        measured={"data": ds.name, "n_samples": len(ds.y)},
    )
    return {"plane": plane, "metrics": load_metrics(run_dirs), "data": ds.name, "p_yx": p_yx, **r}


# A grid of estimator settings on the same runs (studies comparing estimators: robustness, quantized)


class EstimatorSetting(NamedTuple):
    """One entry of an estimator grid: ``label`` (with a ``sweep``: a format string with {} for the swept value,
    e.g. "KDE var {:g}"), the estimator, its options, and optionally {option: values} of ONE traced option."""

    label: str
    estimator: str
    options: dict
    sweep: dict | None = None


def setting_slug(label: str) -> str:
    """A file-name-safe form of a grid setting's label."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label.replace("{:g}", "sweep")).strip("_")


def evaluate_grid(dirs, grid, out, *, epochs="all", recompute: bool = False, log=print) -> dict:
    """label -> single-setting InfoPlane for every ``EstimatorSetting`` of ``grid`` on the same runs: one
    ``evaluate_runs`` call per entry (a swept entry is one call, split back into one plane per value), each
    saved under OUT/<its slug>; NaN where an estimator is undefined (nan_policy "mark"). ``recompute``: the
    study's ``--force``, no saved plane reused."""
    planes = {}
    for s in grid:
        where = out / setting_slug(s.label) if out is not None else None
        plane = evaluate_runs(
            dirs,
            s.estimator,
            dict(s.options),
            epochs=epochs,
            sweep=s.sweep,
            out=where,
            nan_policy="mark",
            recompute=recompute,
            log=log,
        )
        if not s.sweep:
            planes[s.label] = plane
            continue
        ((_, values),) = s.sweep.items()
        for g, v in enumerate(values):
            planes[s.label.format(v)] = plane.setting(g)
    return planes


def binary_inputs(run_cfg) -> bool:
    """Whether the run's inputs are all 0 or 1 (where KSG's Chebyshev neighbourhoods degenerate)."""
    return bool(np.isin(load_data(run_cfg).x, (0, 1)).all())


def smoothed_vs_exact(run_dirs, sigma: float, *, n_mc: int = 2048, out=None, recompute: bool = False) -> dict:
    """The first layer of noisy networks with a 1-D T on K input symbols (e.g. a single noisy neuron): its
    sample-propagation I(X;T) through the engine ("smoothed", ``n_mc`` draws per symbol; the readout is not
    measured, ``first_layers``) beside the exact value by quadrature (``exact_noisy_i_xt``) of the deterministic
    symbol positions. {"plane", "est", "se" (S x E), "exact" (S x E), "symbols" (S x E x K), "x" (the K inputs)}."""
    cfg = RunConfig.from_dict(load_runs(run_dirs[:1])[0].config)
    model = first_layers(cfg.model.build())
    plane = evaluate_runs(
        run_dirs, "smoothed", {"sigma": sigma, "n_mc": n_mc}, model=model, out=out, recompute=recompute
    )
    symbols = layer_activations(run_dirs)[1][..., 0]
    est, se = plane.i_xt[:, :, 0], plane.values["i_xt_se"][0][:, :, 0]
    exact = exact_noisy_i_xt(symbols, sigma)
    return {"plane": plane, "est": est, "se": se, "exact": exact, "symbols": symbols, "x": samples_of(cfg)[0][:, 0]}


# Epoch skipping against the full evaluation (the skipping study; ibjax.skipping holds the strategies)


def _skip_evaluator(model, params_SxE, epochs_E, x, y, estimator: str, options, granule: int, **plane_info):
    """``evaluate(pos_B) -> InfoPlane`` of those kept-epoch positions; each call padded (last position repeated)
    to a ``skipping.bucket`` size, so that calls of nearby sizes share a compiled program."""

    def evaluate(pos_B):
        pos_B = np.asarray(pos_B, int)
        full = np.concatenate([pos_B, np.repeat(pos_B[-1:], skipping.bucket(len(pos_B), granule) - len(pos_B))])
        plane = evaluate_arrays(
            model,
            jax.tree.map(lambda a: a[:, full], params_SxE),
            epochs_E[full],
            x,
            y,
            estimator,
            options,
            progress=False,
            log=lambda *_: None,
            **plane_info,
        )
        b = len(pos_B)  # the padding's values are dropped; the key named them, so it is cleared
        return dataclasses.replace(
            plane, epochs=plane.epochs[:b], values={k: v[:, :, :b] for k, v in plane.values.items()}, key=""
        )

    return evaluate


def compare_skipping(
    run_dirs, estimator: str, options, grid, *, granule: int = 8, repeats: int = 3, round_size: int = 8, log=print
) -> dict:
    """Every (kind, param) of ``grid`` (``skipping.strategy``) on the kept epochs of ``run_dirs``, against one
    full evaluation of them: one evaluation is one epoch of every run in one batched call, and a delta holds
    for each run (distances normalised by H(X) = log2 N and H(Y)). Timings are ``timing.best_of(repeats)``; a
    row's time_fraction_range spans fastest / slowest full to slowest / fastest full (how far load moved it).
    {"rows" (``skipping.measure`` plus seconds), "results" {(kind, param): SkipResult}, "full" (i_xt, i_ty:
    E x S x L), "epochs", "plane" (the full evaluation), "h" (h_x, h_y), "full_seconds", "full_cpu_seconds",
    "full_seconds_cold", "table" (markdown), "summary" (the same for a summary.json, rows without epoch lists)}."""
    loaded = load_runs(run_dirs)
    rc = RunConfig.from_dict(loaded[0].config)
    x, y, measured = samples_of(rc)
    params_SxE = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in loaded])
    epochs_E = loaded[0].epochs
    evaluate = _skip_evaluator(
        rc.model.build(),
        params_SxE,
        epochs_E,
        x,
        y,
        estimator,
        options,
        granule,
        run_ids=[r.config["run_id"] for r in loaded],
        run_dirs=run_dirs,
        measured=measured,
    )
    h_x, h_y = float(np.log2(len(y))), claims.cap_ty(y)
    full, full_cold, full_warm, full_cpu, full_slow = best_of(lambda: evaluate(np.arange(len(epochs_E))), repeats)
    full_ExSxL = tuple(np.asarray(v, np.float64).transpose(1, 0, 2) for v in (full.i_xt, full.i_ty))
    log(
        f"skipping: full evaluation of {len(epochs_E)} epochs x {len(loaded)} run(s): {full_warm:.2f} s warm "
        f"({full_cold:.2f} s with compilation)"
    )

    def batch(epochs_B):  # the strategies' evaluate_batch: epochs_B -> (i_xt_Bx(S*L), i_ty_Bx(S*L))
        plane = evaluate(np.searchsorted(epochs_E, epochs_B))
        flat = lambda v_SxBxL: np.asarray(v_SxBxL, np.float64).transpose(1, 0, 2).reshape(len(epochs_B), -1)
        return flat(plane.i_xt), flat(plane.i_ty)

    rows, results = [], {}
    for kind, param in grid:  # a strategy is sequential rounds of batched calls; one strategy at a time
        walk = skipping.strategy(kind, param, h_x=h_x, h_y=h_y, round_size=round_size)
        res, cold, warm, cpu, slow = best_of(lambda: walk(batch, epochs_E), repeats)
        row = {
            "strategy": kind,
            "param": param,
            "seconds": round(warm, 3),
            "seconds_cold": round(cold, 3),
            "cpu_seconds": round(cpu, 3),
            "time_fraction": round(warm / full_warm, 4),
            "time_fraction_range": [round(warm / full_slow, 4), round(slow / full_warm, 4)],
            "cpu_fraction": round(cpu / full_cpu, 4),
            **skipping.measure(res, epochs_E, full_ExSxL, h_x, h_y),
        }
        rows.append(row)
        results[(kind, param)] = res
        log(
            f"skipping: {kind} {param}: {row['n_evaluated']}/{row['n_total']} epochs in {row['n_rounds']} call(s), "
            f"max error {row['max_error_norm']:.4f}, {warm:.2f} s"
        )
    light = lambda row: {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items() if k != "epochs_kept"}
    times = {"full_seconds": round(full_warm, 3), "full_cpu_seconds": round(full_cpu, 3)}
    times["full_seconds_cold"] = round(full_cold, 3)
    return {
        "rows": rows,
        "results": results,
        "full": full_ExSxL,
        "epochs": epochs_E,
        "plane": full,
        "h": (h_x, h_y),
        **times,
        "table": skipping.table_markdown(rows, full_warm, full_cpu, len(epochs_E)),
        "summary": {
            "dataset": measured["data"],
            "run_dirs": [str(d) for d in run_dirs],
            "h_x_bits": h_x,
            "h_y_bits": h_y,
            "n_kept_epochs": int(len(epochs_E)),
            **times,
            "table": [light(row) for row in rows],
        },
    }
