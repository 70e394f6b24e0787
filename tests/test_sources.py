"""Evaluating training that ibjax did not do: orbax / msgpack / safetensors directories written by a
plain flax + optax loop, captured intermediates (linen, NNX), saved activations, tables, TensorBoard.

Every checkpoint is written here, in tmp_path, from a 12-6-4-2 tanh MLP trained 5 epochs on var_u."""

import json
import shutil

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx, serialization

from ibjax import checkpoints, data, evaluate, export, external, models, pipeline, runs, sources
from ibjax.config import DataConfig, MLPConfig, RunConfig

WIDTHS, EPOCHS = (12, 6, 4, 2), 5
quiet = {"progress": False, "log": lambda *_: None}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A plain flax + optax loop (not ibjax's trainer): params of every epoch, saved in every format."""
    import orbax.checkpoint as ocp
    from safetensors.numpy import save_file

    root = tmp_path_factory.mktemp("ckpt")
    ds, model = data.var_u(), models.mlp(WIDTHS)
    opt = optax.adam(0.02)
    params = model.init(jax.random.key(0))
    state = {"params": params, "opt_state": opt.init(params), "step": 0}

    @jax.jit
    def step(p, o, x, y):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x)[0], y).mean()

        g = jax.grad(loss)(p)
        u, o = opt.update(g, o, p)
        return optax.apply_updates(p, u), o

    kept = []
    with ocp.CheckpointManager(root / "orbax") as mngr:
        for epoch in range(EPOCHS):  # the user's own loop: save, then train the epoch
            mngr.save(epoch, args=ocp.args.StandardSave(state))
            (root / "msgpack").mkdir(exist_ok=True)
            (root / "msgpack" / f"ckpt_{epoch}.msgpack").write_bytes(serialization.to_bytes(state))
            (root / "st").mkdir(exist_ok=True)
            save_file(
                {
                    f"params.{k.replace('/', '.')}": np.asarray(v)
                    for k, v in checkpoints.flatten(state["params"]).items()
                },
                str(root / "st" / f"epoch{epoch:03d}.safetensors"),
            )
            kept.append(jax.tree.map(np.asarray, state["params"]))
            p, o = state["params"], state["opt_state"]
            for i in range(0, len(ds.y), 1024):
                p, o = step(p, o, ds.x[i : i + 1024], ds.y[i : i + 1024])
            state = {"params": p, "opt_state": o, "step": epoch + 1}
        mngr.wait_until_finished()
    stacked = jax.tree.map(lambda *a: np.stack(a), *kept)
    cfg = runs.run_config(RunConfig(MLPConfig(WIDTHS), DataConfig(name="var_u")), 0, 1, 1000)
    checkpoints.write_run(root / "run", cfg, np.arange(EPOCHS), stacked, {"train_loss": np.linspace(1, 0, EPOCHS)})
    return {"root": root, "params": stacked, "ds": ds, "model": model}


FORMAT_DIRS = {"orbax": "orbax", "msgpack": "msgpack", "safetensors": "st"}


@pytest.mark.parametrize("fmt", FORMAT_DIRS)
def test_each_format_loads_the_params_and_evaluates_to_the_run_directory_plane(trained, fmt, tmp_path):
    src = sources.open_dir(trained["root"] / FORMAT_DIRS[fmt])
    assert src.format == fmt and src.epochs.tolist() == list(range(EPOCHS))
    got = checkpoints.flatten(src.load())
    for k, v in checkpoints.flatten(trained["params"]).items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    ds = trained["ds"]
    for est, opts in (("binning", {"n_bins": 30}),) + ((("kde", {"noise_var": 0.1}),) if fmt == "orbax" else ()):
        ref = pipeline.evaluate_runs([trained["root"] / "run"], est, opts, **quiet)
        plane = external.evaluate_dir(
            trained["root"] / FORMAT_DIRS[fmt], trained["model"], ds.x, ds.y, est, opts, out=tmp_path / est, **quiet
        )
        for k in ref.values:  # the same params through the same engine: equal values
            np.testing.assert_array_equal(plane.values[k], ref.values[k], err_msg=f"{fmt} {est} {k}")
        assert plane.epochs.tolist() == ref.epochs.tolist() and plane.measured["checkpoints"] == fmt


def test_chunked_loading_gives_the_same_plane(trained, tmp_path):
    ds, d = trained["ds"], trained["root"] / "orbax"
    whole = external.evaluate_dir(d, trained["model"], ds.x, ds.y, "binning", **quiet)
    per_epoch = sources.open_dir(d).nbytes_per_epoch
    lines = []
    chunked = external.evaluate_dir(
        d,
        trained["model"],
        ds.x,
        ds.y,
        "binning",
        params_gb=2.5 * per_epoch / 2**30,
        out=tmp_path,
        progress=False,
        log=lines.append,
    )
    assert any("loaded in 3 chunks" in line for line in lines)
    np.testing.assert_array_equal(chunked.values["i_xt"], whole.values["i_xt"])
    assert len(list((tmp_path / ".chunks").iterdir())) == 3 and (tmp_path / "infoplane_binning.npz").is_file()


def _one_line_error(exc, match, fn):
    with pytest.raises(exc, match=match) as e:
        fn()
    assert len(str(e.value).splitlines()) == 1, str(e.value)
    return str(e.value)


def test_truncated_missing_uncommitted_and_mixed_steps_are_named(trained, tmp_path):
    d = tmp_path / "orbax"
    shutil.copytree(trained["root"] / "orbax", d)
    for f in (d / "2" / "default" / "d").iterdir():
        f.write_bytes(f.read_bytes()[:40])
    msg = _one_line_error(
        ValueError, r"orbax/2: corrupt, truncated or partly missing orbax step 2", lambda: sources.open_dir(d).load()
    )
    assert "re-save it" in msg
    shutil.rmtree(d / "2")
    shutil.rmtree(d / "3" / "default")
    _one_line_error(
        FileNotFoundError, r"orbax/3: orbax step 3 has no item 'default'", lambda: sources.open_dir(d).load()
    )
    shutil.rmtree(d / "3")
    (d / "7.orbax-checkpoint-tmp").mkdir()
    _one_line_error(
        FileNotFoundError,
        r"orbax steps \[7\] were never committed .*allow_partial=True .* the 3 committed steps",
        lambda: sources.open_dir(d),
    )
    src = sources.open_dir(d, allow_partial=True)
    assert src.epochs.tolist() == [0, 1, 4] and src.missing == (7,)
    m = tmp_path / "msgpack"
    shutil.copytree(trained["root"] / "msgpack", m)
    other = serialization.to_bytes({"params": models.mlp((12, 5, 2)).init(jax.random.key(1))})
    (m / "ckpt_3.msgpack").write_bytes(other)
    _one_line_error(
        ValueError,
        r"ckpt_3.msgpack: holds other params than ckpt_0.msgpack .*mixes runs",
        lambda: sources.open_dir(m).load(),
    )
    (m / "ckpt_3.msgpack").write_bytes((trained["root"] / "msgpack" / "ckpt_3.msgpack").read_bytes()[:100])
    _one_line_error(
        ValueError, r"ckpt_3.msgpack: corrupt or truncated msgpack file", lambda: sources.open_dir(m).load()
    )
    _one_line_error(ValueError, r"pattern='x' must have exactly one group", lambda: sources.open_dir(m, pattern="x"))
    _one_line_error(ValueError, r"params_key='nope' names no subtree", lambda: sources.open_dir(m, params_key="nope"))


def test_experiment_directory_is_named_and_evaluated(trained, tmp_path, capsys):
    exp = tmp_path / "results" / "exp"
    (exp / "runs").mkdir(parents=True)
    (exp / "config.json").write_text(json.dumps({"seeds": 1}))
    _one_line_error(ValueError, r"experiment's output directory without run directories", lambda: sources.open_dir(exp))
    with pytest.raises(SystemExit):  # not "config.json was edited after the run was written"
        evaluate.main([str(exp), "--estimator", "binning"])
    err = capsys.readouterr().err
    assert "experiment's output directory without run directories" in err and len(err.strip().splitlines()) == 1
    shutil.copytree(trained["root"] / "run", exp / "runs" / "seed_0")
    _one_line_error(
        ValueError,
        r"is an experiment's output directory, not a run directory; its 1 run directories: "
        r".*runs/seed_0",
        lambda: sources.open_dir(exp),
    )
    plane = evaluate.main([str(exp), "--estimator", "binning", "--out", str(tmp_path / "ev")])
    ref = pipeline.evaluate_runs([exp / "runs" / "seed_0"], "binning", **quiet)
    np.testing.assert_array_equal(plane.values["i_xt"], ref.values["i_xt"])
    assert "evaluating its 1 run directories" in capsys.readouterr().out


class Layer(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x):
        return jnp.tanh(nn.Dense(self.features)(x))


class LogitsOnly(nn.Module):
    @nn.compact
    def __call__(self, x):
        for w in WIDTHS[1:-1]:
            x = Layer(w)(x)
        return nn.Dense(WIDTHS[-1])(x)


class WithActs(nn.Module):
    @nn.compact
    def __call__(self, x):
        acts = []
        for w in WIDTHS[1:-1]:
            x = Layer(w)(x)
            acts.append(x)
        logits = nn.Dense(WIDTHS[-1])(x)
        return logits, (*acts, jax.nn.softmax(logits))


class Sown(nn.Module):
    @nn.compact
    def __call__(self, x):
        for i, w in enumerate(WIDTHS[1:-1]):
            x = Layer(w)(x)
            self.sow("acts", f"h{i}", x)
        return nn.Dense(WIDTHS[-1])(x)


def _epochs_of(params, n=3):
    """n made-up 'epochs' (scaled params) of one run: 1 x n x ... leaves."""
    return jax.tree.map(lambda a: np.stack([a * s for s in np.linspace(0.5, 2.0, n)])[None], params)


def test_captured_intermediates_equal_returned_activations(trained):
    ds = trained["ds"]
    ref_model = models.from_flax(WithActs(), (12,))
    p = _epochs_of(ref_model.init(jax.random.key(3)))
    ref = pipeline.evaluate_arrays(ref_model, p, np.arange(3), ds.x, ds.y, "binning", **quiet)
    for m in (
        models.from_flax(LogitsOnly(), (12,), layers=r"Layer_\d+"),
        models.from_flax(LogitsOnly(), (12,), layers=["Layer_0", "Layer_1"]),
        models.from_flax(Sown(), (12,), sow="acts"),
    ):
        got = pipeline.evaluate_arrays(m, p, np.arange(3), ds.x, ds.y, "binning", **quiet)
        np.testing.assert_array_equal(got.values["i_xt"], ref.values["i_xt"])
        np.testing.assert_array_equal(got.values["i_ty"], ref.values["i_ty"])
    every = models.from_flax(LogitsOnly(), (12,))  # default: every submodule call, in call order
    assert every.layer_names == ("Layer_0/Dense_0", "Layer_0", "Layer_1/Dense_0", "Layer_1", "Dense_0", "output")
    with pytest.raises(ValueError, match=r"layers \['Layer_9'\] are not among the submodule calls"):
        models.from_flax(LogitsOnly(), (12,), layers=["Layer_9"])


class NNXNet(nnx.Module):
    def __init__(self, rngs, returns_acts=False):
        self.blocks = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(WIDTHS[:-2], WIDTHS[1:-1])])
        self.head = nnx.Linear(WIDTHS[-2], WIDTHS[-1], rngs=rngs)
        self.returns_acts = returns_acts

    def __call__(self, x):
        acts = []
        for b in self.blocks:
            acts.append(b(x))
            x = jnp.tanh(acts[-1])
        logits = self.head(x)
        return (logits, (*acts, jax.nn.softmax(logits))) if self.returns_acts else logits


def test_nnx_module_captured_equals_returned(trained, tmp_path):
    ds = trained["ds"]
    ref_model = models.from_flax(NNXNet(nnx.Rngs(0), returns_acts=True), (12,))
    model = models.from_flax(NNXNet(nnx.Rngs(0)), (12,), layers=r"blocks/\d+")
    assert model.n_layers == ref_model.n_layers == 3
    p = _epochs_of(model.init(None))
    ref = pipeline.evaluate_arrays(ref_model, p, np.arange(3), ds.x, ds.y, "binning", **quiet)
    got = pipeline.evaluate_arrays(model, p, np.arange(3), ds.x, ds.y, "binning", **quiet)
    np.testing.assert_array_equal(got.values["i_xt"], ref.values["i_xt"])
    # NNX params through a checkpoint file (str keys, as msgpack stores them) evaluate the same
    d = tmp_path / "nnx"
    d.mkdir()
    for e in range(3):
        (d / f"e{e}.msgpack").write_bytes(serialization.to_bytes({"params": jax.tree.map(lambda a: a[0, e], p)}))
    plane = external.evaluate_dir(d, model, ds.x, ds.y, "binning", **quiet)
    np.testing.assert_array_equal(plane.values["i_xt"], ref.values["i_xt"])


def _acts(trained):
    m, ds = trained["model"], trained["ds"]
    acts = jax.jit(jax.vmap(lambda p: m.apply(p, ds.x)[1]))(trained["params"])
    return [np.asarray(a) for a in acts]


def test_saved_activations_equal_the_params_path(trained, tmp_path):
    ds = trained["ds"]
    ref = pipeline.evaluate_runs([trained["root"] / "run"], "kde", {"noise_var": 0.1}, **quiet)
    plane = pipeline.evaluate_activations(_acts(trained), ds.y, "kde", {"noise_var": 0.1}, **quiet)
    for k in ref.values:  # activations computed outside the engine's jit: float32 rounding may differ by an ulp
        np.testing.assert_allclose(plane.values[k], ref.values[k], rtol=1e-5, atol=1e-5, err_msg=k)
    assert plane.layer_names == ("layer 1", "layer 2", "layer 3")
    # the CLI reads .npz, .npy and HDF5 files
    acts = _acts(trained)
    plane = pipeline.evaluate_activations(acts, ds.y, "binning", **quiet)  # the file readers: binning (faster)
    np.savez(tmp_path / "acts.npz", h1=acts[0], h2=acts[1], out=acts[2], y=ds.y)
    via_npz = evaluate.main([str(tmp_path / "acts.npz"), "--estimator", "binning", "--out", str(tmp_path / "a")])
    np.testing.assert_array_equal(via_npz.values["i_xt"], plane.values["i_xt"])
    assert via_npz.layer_names == ("h1", "h2", "out")
    import h5py

    with h5py.File(tmp_path / "acts.h5", "w") as f:
        for i, a in enumerate(acts):
            f[f"layer_{i}"] = a
        f["y"] = ds.y
    for i, a in enumerate(acts):
        np.save(tmp_path / f"l{i}.npy", a)
    np.save(tmp_path / "y.npy", ds.y)
    via_h5 = evaluate.main([str(tmp_path / "acts.h5"), "--estimator", "binning", "--out", str(tmp_path / "b")])
    via_npy = evaluate.main(
        [
            *(str(tmp_path / f"l{i}.npy") for i in range(3)),
            "--labels",
            str(tmp_path / "y.npy"),
            "--estimator",
            "binning",
            "--out",
            str(tmp_path / "c"),
        ]
    )
    for other in (via_h5, via_npy):
        np.testing.assert_array_equal(other.values["i_xt"], plane.values["i_xt"])


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda a, y: ([a[0][:3], a[1], a[2]], y),
            r"acts_per_layer\['layer 2'\] has 5 epochs x 4096 samples, 'layer 1' has 3 x 4096; every layer needs the same",
        ),
        (lambda a, y: ([a[0], a[1][:, :100], a[2]], y), r"acts_per_layer\['layer 2'\] has 5 epochs x 100 samples"),
        (
            lambda a, y: ([a[0], np.where(np.arange(5)[:, None, None] == 2, np.nan, a[1]), a[2]], y),
            r"acts_per_layer\['layer 2'\] holds NaN/inf at epoch position\(s\) \[2\]; pass nan_policy='mark'",
        ),
        (
            lambda a, y: (a, y[:-1]),
            r"y must hold one label per sample: shape \(4096,\) for 4096 samples, got \(4095,\)",
        ),
        (lambda a, y: ([a[0][0]], y), r"must hold one E x N x \.\.\. array per layer"),
    ],
)
def test_bad_activations_are_refused(trained, change, message):
    acts, y = change(_acts(trained), trained["ds"].y)
    with pytest.raises(ValueError, match=message):
        pipeline.evaluate_activations(acts, y, "binning", **quiet)


def test_activation_estimators_that_need_x_ask_for_it(trained):
    with pytest.raises(ValueError, match=r"estimator 'knn' measures I\(X;T\) against the inputs: pass x"):
        pipeline.evaluate_activations(_acts(trained), trained["ds"].y, "knn", **quiet)


def test_dataframe_xarray_and_tensorboard(trained, tmp_path):
    plane = pipeline.evaluate_runs([trained["root"] / "run"], "kde", sweep={"noise_var": [0.01, 0.1]}, **quiet)
    g, s, e, n_t = plane.shape
    df = plane.to_dataframe()
    assert len(df) == g * s * e * n_t and {
        "setting",
        "noise_var",
        "seed",
        "run_id",
        "epoch",
        "layer",
        "i_xt",
        "i_ty",
        "i_xt_lower",
        "i_ty_lower",
    } <= set(df.columns)
    for k, v in plane.values.items():
        np.testing.assert_array_equal(df[k].to_numpy().reshape(v.shape), v)
    row = df[(df.setting == 1) & (df.epoch == 3) & (df.layer == "layer 2")].iloc[0]
    assert row.i_ty == plane.values["i_ty"][1, 0, 3, 1] and row.noise_var == 0.1
    xs = plane.to_xarray()
    assert xs["i_xt"].dims == ("setting", "seed", "epoch", "layer") and xs.attrs["estimator"] == "kde"
    np.testing.assert_array_equal(xs["i_ty"].sel(epoch=4, layer="layer 3").values, plane.values["i_ty"][:, :, 4, 2])
    assert xs["noise_var"].values.tolist() == [0.01, 0.1]
    csv = export.table(plane, tmp_path / "plane.csv")
    import pandas as pd

    np.testing.assert_allclose(pd.read_csv(csv)["i_xt"].to_numpy(), df["i_xt"].to_numpy(), rtol=1e-6)
    one = pipeline.evaluate_runs([trained["root"] / "run"], "binning", **quiet)
    (path,) = export.tensorboard(one, tmp_path / "tb", metrics=checkpoints.load_metrics(trained["root"] / "run"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    want = {f"infoplane/binning/{k}/layer_{i}" for k in ("i_xt", "i_ty") for i in (1, 2, 3)} | {"train/train_loss"}
    assert set(tags) == want
    ev = acc.Scalars("infoplane/binning/i_ty/layer_2")
    assert [x.step for x in ev] == list(range(EPOCHS))
    np.testing.assert_allclose([x.value for x in ev], one.values["i_ty"][0, 0, :, 1], rtol=1e-6)
    assert [x.step for x in acc.Scalars("train/train_loss")] == list(range(EPOCHS))


FACTORY = """
import flax.linen as nn, jax.numpy as jnp
from ibjax import models

def make_model():
    return models.mlp((12, 6, 4, 2))

class Layer(nn.Module):
    features: int
    @nn.compact
    def __call__(self, x):
        return jnp.tanh(nn.Dense(self.features)(x))
"""


def test_cli_evaluates_a_checkpoint_directory_with_a_model_factory(trained, tmp_path, monkeypatch, capsys):
    (tmp_path / "my_nets.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    ref = pipeline.evaluate_runs([trained["root"] / "run"], "binning", **quiet)
    plane = evaluate.main(
        [
            str(trained["root"] / "orbax"),
            "--model",
            "my_nets:make_model",
            "--data",
            "var_u",
            "--estimator",
            "binning",
            "--out",
            str(tmp_path / "o"),
            "--table",
            str(tmp_path / "o" / "t.csv"),
        ]
    )
    np.testing.assert_array_equal(plane.values["i_xt"], ref.values["i_xt"])
    assert (tmp_path / "o" / "t.csv").is_file() and "orbax" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main([str(trained["root"] / "orbax"), "--estimator", "binning", "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert "pass --model MODULE:FUNCTION and --data" in err and len(err.strip().splitlines()) == 1


def test_readme_orbax_example_runs_as_written(tmp_path, monkeypatch):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Evaluate your own training", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    plane, ds = scope["plane"], scope["ds"]
    assert plane.shape == (1, 1, 20, 4) and (tmp_path / "eval" / "infoplane_binning.npz").is_file()
    assert scope["df"].shape[0] == 20 * 4
    last = np.asarray(plane.values["i_ty"])[0, 0, -1, -1]
    assert 0 < last <= 1.0 and np.all(np.asarray(plane.values["i_xt"]) <= np.log2(len(ds.y)) + 1e-6)
