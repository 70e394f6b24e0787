"""Evaluate the information plane of run directories.

    python -m ibjax.evaluate RUN_DIR [RUN_DIR ...] --estimator kde --noise-var 0.1
    python -m ibjax.evaluate results/tishby/runs/seed_* --estimator binning --epochs log:50 --out OUT
    python -m ibjax.evaluate RUN_DIR --estimator kde --sweep noise_var=1e-3,1e-2,1e-1
    python -m ibjax.evaluate RUN_DIR --estimator binning --epochs delta:0.02:exact --compare-full
    python -m ibjax.evaluate results/tishby --estimator binning           # an experiment's run directories
    python -m ibjax.evaluate CKPT_DIR --model pkg.module:make_model --data var_u --estimator kde --out OUT
    python -m ibjax.evaluate acts.npz --estimator binning --out OUT --table OUT/plane.csv --tensorboard LOGS

PATH: ibjax run directories; an experiment's output directory (its run directories); one orbax,
flax msgpack or safetensors checkpoint directory (with --model and --data); or saved activations
(one .npz / .h5 file whose arrays are the layers, E x N x ... each, with y; or one .npy per layer
with --labels).

Writes ``infoplane_<estimator>[_<view>].npz`` (an ``ibjax.result.InfoPlane``: G x S x E x L arrays,
settings, run ids, what was measured, warnings) and a figure into the run directory (one run) or
``--out``. Finished chunks are cached under ``OUT/.cache/<result key>/``: an interrupted evaluation
resumes where it stopped; a finished result is reused only when it was made from the same runs,
epochs, estimator, settings, view and seed, otherwise it is recomputed and the reason printed.
Estimator options are generated from ``ibjax.registry``: a registered estimator gets its flags.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from ibjax import checkpoints, claims, export, external, io, pipeline, plotting, registry, skipping, sources, views
from ibjax.config import RunConfig
from ibjax.runs import use_cpu_cores


def option_flags() -> dict:
    """CLI flag -> (option name, [estimators], Option), from the registry."""
    flags: dict = {}
    for name, est in sorted(registry.builtin().items()):
        for opt, spec in est.options.items():
            flag = "--" + opt.replace("_", "-")
            flags.setdefault(flag, (opt, [], spec))[1].append(name)
    return flags


def build_parser(flags: dict) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ibjax.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "run_dirs",
        nargs="+",
        metavar="PATH",
        help="run directories (same model, data and kept epochs), an experiment's output directory, "
        "a checkpoint directory, or activation files (see above)",
    )
    est_help = "; ".join(f"{n}: {e.help}" for n, e in sorted(registry.builtin().items()))
    p.add_argument("--estimator", required=True, choices=sorted(registry.builtin()), help=est_help)
    for flag, (opt, owners, spec) in flags.items():
        p.add_argument(
            flag,
            type=spec.type,
            default=None,
            nargs=spec.nargs,
            dest=f"opt_{opt}",
            help=f"[{', '.join(owners)}] {spec.help} (default {spec.default})"
            + (" sweepable in one call" if spec.traced else ""),
        )
    p.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="OPTION=V1,V2,...",
        help="evaluate a grid of option values in one run (a leading settings axis); repeatable",
    )
    p.add_argument("--epochs", default="all", help=f"{pipeline.EPOCH_SPECS} | delta:D[:exact|approx] (default all)")
    p.add_argument("--view", default="layers", help=f"what a T is: {', '.join(views.VIEWS)} (default layers)")
    p.add_argument(
        "--memory-gb",
        type=float,
        default=None,
        help="memory budget per chunk of epochs (default: $IBJAX_MEMORY_GB, else a quarter of the free memory)",
    )
    p.add_argument("--seed", type=int, default=0, help="PRNG seed for random estimators (default 0)")
    p.add_argument(
        "--nan",
        default="raise",
        choices=("raise", "mark"),
        help="non-finite activations: raise (default) or mark them NaN in the result",
    )
    p.add_argument("--allow-partial", action="store_true", help="evaluate a run directory with missing epochs")
    p.add_argument("--out", default=None, help="output directory (default: the run directory when there is one)")
    p.add_argument(
        "--compare-full",
        action="store_true",
        help="with delta:...: also evaluate every kept epoch and report the max interpolation error",
    )
    p.add_argument("--recompute", action="store_true", help="ignore cached chunks and finished results")
    p.add_argument(
        "--data",
        default=None,
        help="run directories: the dataset path (default: $IBJAX_DATA_DIR, the cache, "
        "else download); checkpoints and activations: NAME[:PATH] (var_u, mnist_test, ...) or an .npz / .h5 "
        "file with arrays x and y",
    )
    g = p.add_argument_group("checkpoints and activations written without ibjax")
    g.add_argument(
        "--model",
        default=None,
        metavar="MODULE:FUNCTION",
        help="a function returning the flax (linen or NNX) module, or (module, input_shape[, layers]), "
        "or a dict with module, input_shape, layers, sow",
    )
    g.add_argument("--format", default=None, choices=sources.FORMATS, help="checkpoint format (default: detected)")
    g.add_argument(
        "--params-key", default=None, help="the params subtree, e.g. state/params (default: the one named params)"
    )
    g.add_argument(
        "--epoch-pattern",
        default=None,
        help=f"msgpack / safetensors: regex with one group, the epoch, matched to file names (default {sources.PATTERNS})",
    )
    g.add_argument(
        "--layers",
        default=None,
        help="a module returning logits only: regex of the submodule paths that are the layers",
    )
    g.add_argument(
        "--labels", default=None, help="activations: .npy file of the N labels (default: y in the file, or --data)"
    )
    r = p.add_argument_group("results out")
    r.add_argument("--table", default=None, help="also write the long-format table (.csv or .parquet)")
    r.add_argument(
        "--tensorboard", default=None, metavar="LOG_DIR", help="also log I(X;T), I(T;Y) per layer by epoch as scalars"
    )
    return p


def estimator_options(a, flags: dict) -> dict:
    """The options given on the command line; an option of another estimator is an error."""
    opts = {}
    for flag, (opt, owners, _) in flags.items():
        v = getattr(a, f"opt_{opt}")
        if v is None:
            continue
        if a.estimator not in owners:
            raise ValueError(
                f"option {flag} belongs to estimator {' or '.join(repr(o) for o in owners)}, not {a.estimator!r}"
            )
        opts[opt] = tuple(v) if isinstance(v, list) else v
    return opts


def parse_sweep(items, estimator: str) -> dict:
    """``["noise_var=1e-3,1e-2"]`` -> ``{"noise_var": [0.001, 0.01]}``, typed by the registry."""
    est = registry.get(estimator)
    sweep = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"--sweep {item!r}: expected OPTION=V1,V2,...")
        if name not in est.options:
            raise ValueError(
                f"--sweep {item!r}: estimator {estimator!r} has no option {name!r}; valid: {sorted(est.options)}"
            )
        typ = est.options[name].type
        try:
            sweep[name] = [typ(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--sweep {item!r}: values of {name} must be of type {typ.__name__}") from None
    return sweep


def main(argv=None):
    use_cpu_cores()  # before any JAX computation: evaluation items shard over the cores
    flags = option_flags()
    a = build_parser(flags).parse_args(argv)
    try:
        return run(a, flags)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as e:  # a full disk, a path too long: one line; every write is atomic, nothing half-written
        print(f"error: {io.os_error_line(e)}", file=sys.stderr)
        raise SystemExit(2) from None


def run(a, flags):
    opts = estimator_options(a, flags)
    sweep = parse_sweep(a.sweep, a.estimator)
    kind, paths = classify_inputs(a.run_dirs, a.format)
    out = Path(a.out) if a.out else None
    if out is None and kind == "runs" and len(a.run_dirs) == 1:  # a run directory, or an experiment's directory
        out = Path(a.run_dirs[0])
    if out is None:
        raise ValueError("several RUN_DIRs need --out" if kind == "runs" else f"evaluating {kind} needs --out")
    io.check_out_dir(out)
    with io.dir_lock(out, what=f"ibjax.evaluate {a.estimator}"):  # the plane and the figures drawn from it together
        return _run_locked(a, opts, sweep, kind, paths, out)


def _run_locked(a, opts, sweep, kind, paths, out):
    t0 = time.perf_counter()
    common = dict(view=a.view, sweep=sweep, seed=a.seed, memory_gb=a.memory_gb, nan_policy=a.nan)
    report, dataset = None, None
    if kind != "runs":
        if a.epochs.startswith("delta"):
            raise ValueError("--epochs delta:... evaluates ibjax run directories only")
        plane, dataset = foreign(a, kind, paths, opts, out, common)
    elif a.epochs.startswith("delta"):
        a.run_dirs = [str(p) for p in paths]
        plane, report = adaptive(a, opts, out, dict(common, data_path=a.data, allow_partial=a.allow_partial))
    else:
        plane = pipeline.evaluate_runs(
            paths,
            a.estimator,
            opts,
            epochs=a.epochs,
            out=out,
            recompute=a.recompute,
            data_path=a.data,
            allow_partial=a.allow_partial,
            **common,
        )
    seconds = time.perf_counter() - t0
    path = pipeline.result_path(out, a.estimator, plane.measured["view"])
    fig_path = path.with_suffix(".png")
    first = plane.setting(0) if plane.shape[0] > 1 else plane
    plotting.save(plotting.info_plane(first, title=f"{a.estimator} {_short(first.settings)}"), fig_path)
    extra = [export.table(plane, a.table)] if a.table else []
    if a.tensorboard:
        metrics = [checkpoints.load_metrics(d) for d in paths] if kind == "runs" else None
        extra += export.tensorboard(plane, a.tensorboard, metrics=metrics)
    g, s, e, l = plane.shape
    print(
        f"{a.estimator}: {s} run(s) x {e} epochs x {l} T's"
        + (f" x {g} settings" if g > 1 else "")
        + f" in {seconds:.1f} s"
    )
    print(
        "last epoch, mean over runs, per T: I(X;T) "
        + " ".join(f"{v:.3f}" for v in np.ravel(first.mean("i_xt")[-1]))
        + " | I(T;Y) "
        + " ".join(f"{v:.3f}" for v in np.ravel(first.mean("i_ty")[-1]))
        + f" [{plane.units}]"
    )
    print(f"dataset: {dataset or plane.measured.get('data')} ({plane.measured.get('data_source', kind)})")
    print(("runs: " if kind == "runs" else f"{kind}: ") + " ".join(str(d) for d in paths))
    print(f"wrote {path} and {fig_path}" + (f" and {report}" if report else "") + "".join(f" and {x}" for x in extra))
    return plane


def classify_inputs(args, fmt) -> tuple[str, list[Path]]:
    """("runs" | "checkpoints" | "activations", paths): experiment directories become their run directories."""
    if all(re.search(r"\.(npz|npy|h5|hdf5)(:.+)?$", a) and not Path(a).is_dir() for a in args):
        return "activations", [Path(a) for a in args]
    runs = []
    for a in map(Path, args):
        if not a.is_dir():
            raise FileNotFoundError(
                f"PATH {str(a)!r} does not exist"
                if not a.exists()
                else f"PATH {str(a)!r} is a file: activations must be .npz, .npy or .h5 files"
            )
        kind = fmt or sources.classify(a)
        if kind == "experiment":
            runs += _one_group(a, sources.find_runs(a))
        elif kind is None:
            sources.detect(a)  # raises, saying what the directory is and what is expected
        elif kind == "ibjax":
            runs.append(a)
        elif len(args) == 1:
            return "checkpoints", [a]
        else:
            raise ValueError(f"PATH {str(a)!r} is a {kind} checkpoint directory: evaluate one at a time")
    return "runs", runs


def _one_group(path: Path, runs: list[Path]) -> list[Path]:
    groups = sorted({r.parent for r in runs})
    if len(groups) > 1:
        raise ValueError(
            f"{path} holds run directories of {len(groups)} settings ({', '.join(str(g) for g in groups[:4])}); "
            f"evaluate one group: python -m ibjax.evaluate {groups[0]}/seed_* --estimator ..."
        )
    print(f"{path}: an experiment's output directory; evaluating its {len(runs)} run directories")
    return runs


def foreign(a, kind: str, paths, opts, out: Path, common: dict):
    """Checkpoints written without ibjax (with --model and --data), or saved activations."""
    x = y = None
    name = None
    if a.data:
        x, y, name, _ = external.load_dataset(a.data)
    if kind == "activations":
        acts, y_file, x_file, epochs, names = external.read_activations(paths, labels=a.labels)
        y = y_file if y_file is not None else y
        if y is None:
            raise ValueError("activations need labels: y in the file, --labels FILE.npy, or --data")
        plane = pipeline.evaluate_activations(
            acts,
            y,
            a.estimator,
            opts,
            x=x_file if x_file is not None else x,
            epochs=epochs,
            layer_names=names,
            out=out,
            recompute=a.recompute,
            **common,
        )
        return plane, name or str(paths[0])
    if a.model is None or a.data is None:
        raise ValueError(
            f"{paths[0]} is a checkpoint directory written without ibjax: pass --model MODULE:FUNCTION and "
            "--data NAME or FILE.npz (a run directory records both)"
        )
    spec = external.load_factory(a.model)
    shape = external.factory_parts(spec)[1]
    x = external.fit_inputs(x, shape)
    model = external.as_model(spec, x.shape[1:], layers=a.layers)
    plane = external.evaluate_dir(
        paths[0],
        model,
        x,
        y,
        a.estimator,
        opts,
        format=a.format,
        params_key=a.params_key,
        pattern=a.epoch_pattern,
        epochs=a.epochs,
        allow_partial=a.allow_partial,
        out=out,
        data_name=name,
        recompute=a.recompute,
        **common,
    )
    return plane, name


def _short(settings: dict) -> str:
    text = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
    return text if len(text) < 60 else ""


def adaptive(a, opts, out: Path, common: dict):
    """A delta-skip strategy over one run's kept epochs, each round one batched evaluation."""
    if len(a.run_dirs) != 1:
        raise ValueError("--epochs delta:... evaluates one RUN_DIR at a time")
    delta, how = parse_delta(a.epochs)
    loaded = pipeline.load_runs(a.run_dirs, allow_partial=a.allow_partial)  # once, not once a round
    run = loaded[0]
    kept = run.epochs
    evaluate = lambda epochs_B: pipeline.evaluate_runs(
        a.run_dirs,
        a.estimator,
        opts,
        epochs="list:" + ",".join(str(int(e)) for e in epochs_B),
        progress=False,
        log=lambda *_: None,
        loaded=loaded,
        **common,
    )
    y = pipeline.load_data(RunConfig.from_dict(run.config), a.data).y  # the samples of evaluate_runs: all
    h_x = float(np.log2(len(y)))
    h_y = claims.cap_ty(y)
    rounds = []  # every round's plane: the kept epochs' values are taken from them, not evaluated again

    def batch(epochs_B):
        rounds.append(evaluate(epochs_B))
        return rounds[-1].i_xt[0], rounds[-1].i_ty[0]

    strategy = skipping.delta_skip_exact if how == "exact" else skipping.delta_skip_approx
    res = strategy(batch, kept, delta=delta, h_x=h_x, h_y=h_y)
    plane = skipping.assemble(rounds, res.epochs)
    plane.save(pipeline.result_path(out, a.estimator, plane.measured["view"]))
    report = dict(
        strategy=how,
        delta=delta,
        n_evaluated=res.n_evaluated,
        n_total=res.n_total,
        n_rounds=res.n_rounds,
        epochs_kept=res.epochs.tolist(),
        h_x=h_x,
        h_y=h_y,
    )
    if a.compare_full:
        full = evaluate(kept)
        report["max_interp_error"] = skipping.max_interp_error(res, kept, full.i_xt[0], full.i_ty[0], h_x=h_x, h_y=h_y)
    path = out / f"skipping_{a.estimator}.json"
    io.atomic_write_json(path, report)
    err = report.get("max_interp_error")
    print(
        f"{how} delta-skip: evaluated {res.n_evaluated} of {res.n_total} epochs in {res.n_rounds} rounds, kept "
        f"{len(res.epochs)}" + ("" if err is None else f"; max interpolation error {err['norm']:.4f} (normalised)")
    )
    return plane, path


def parse_delta(spec: str) -> tuple[float, str]:
    _, _, rest = spec.partition(":")
    d, _, how = rest.partition(":")
    how = how or "exact"
    try:
        delta = float(d)
    except ValueError:
        raise ValueError(f"--epochs {spec!r}: delta {d!r} is not a number") from None
    if not delta > 0 or how not in ("exact", "approx"):
        raise ValueError(f"--epochs {spec!r}: need delta > 0 and exact|approx")
    return delta, how


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
