"""The shared pipeline: train_or_reuse -> evaluate_runs -> InfoPlane, and the faults it must not hide."""

import dataclasses
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ibjax import checkpoints, evaluate, pipeline, registry
from ibjax.config import DataConfig, MLPConfig, RunConfig, TrainConfig
from ibjax.registry import Estimator, Option
from ibjax.result import InfoPlane

QUIET = dict(progress=False, log=lambda *_: None)
CFG = RunConfig(
    MLPConfig((12, 8, 5, 2)),
    DataConfig(name="var_u"),
    TrainConfig(n_epochs=30, schedule="every:10", learning_rate=0.01),
)


@pytest.fixture(scope="module")
def three_seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return pipeline.train_or_reuse(CFG, [0, 1, 2], root, log=lambda *_: None)


def test_each_seed_keeps_its_own_numbers(three_seeds):
    """Regression: seeds x epochs flattened into one axis used to write the last seed into every row."""
    plane = pipeline.evaluate_runs(three_seeds, "binning", **QUIET)
    assert plane.shape == (1, 3, 3, 3)
    for s, d in enumerate(three_seeds):
        alone = pipeline.evaluate_runs([d], "binning", **QUIET)
        np.testing.assert_allclose(plane.i_xt[s], alone.i_xt[0], atol=1e-6)
        np.testing.assert_allclose(plane.i_ty[s], alone.i_ty[0], atol=1e-6)
    assert not np.allclose(plane.i_xt[0], plane.i_xt[2])  # different networks, different planes


def test_result_file_is_reused_only_for_the_same_settings(three_seeds, tmp_path):
    said = []
    log = said.append
    first = pipeline.evaluate_runs(three_seeds[:1], "binning", {"n_bins": 30}, out=tmp_path, progress=False, log=log)
    again = pipeline.evaluate_runs(three_seeds[:1], "binning", {"n_bins": 30}, out=tmp_path, progress=False, log=log)
    assert said[-1].startswith("reusing") and again.key == first.key
    other = pipeline.evaluate_runs(three_seeds[:1], "binning", {"n_bins": 10}, out=tmp_path, progress=False, log=log)
    assert "recomputing" in said[-1] and "n_bins 30 -> 10" in said[-1]
    assert not np.allclose(other.i_xt, first.i_xt)
    fewer = pipeline.evaluate_runs(
        three_seeds[:1], "binning", {"n_bins": 10}, epochs="list:0,20", out=tmp_path, progress=False, log=log
    )
    assert "epochs (3 -> 2)" in said[-1] and fewer.epochs.tolist() == [0, 20]
    loaded = InfoPlane.load(pipeline.result_path(tmp_path, "binning"))
    np.testing.assert_array_equal(loaded.i_xt, fewer.i_xt)
    assert loaded.settings["n_bins"] == 10 and loaded.run_ids == fewer.run_ids


def test_params_replaced_under_the_same_run_id_are_recomputed(three_seeds, tmp_path):
    """A result key holds a sha256 of the params' contents: a run retrained elsewhere (another CPU,
    another library version) keeps its run id but not its numbers, and must not reuse the saved plane."""
    said = []
    first = pipeline.evaluate_runs(three_seeds[:1], "binning", out=tmp_path / "out", progress=False, log=said.append)
    ours, other = checkpoints.load_run(three_seeds[0]), checkpoints.load_run(three_seeds[1])
    moved = tmp_path / "retrained" / "seed_0"
    checkpoints.write_run(moved, ours.config, ours.epochs, other.params, ours.metrics)
    assert checkpoints.read_config(moved)["run_id"] == ours.config["run_id"]
    again = pipeline.evaluate_runs([moved], "binning", out=tmp_path / "out", progress=False, log=said.append)
    assert said[-1].startswith("recomputing") and "differ from the saved plane's" in said[-1], said[-1]
    assert ours.config["run_id"] in said[-1] and again.key != first.key
    assert again.measured["params_digests"] != first.measured["params_digests"]
    assert not np.allclose(again.i_xt, first.i_xt)  # the other seed's numbers, not the saved plane's
    same = pipeline.evaluate_runs([moved], "binning", out=tmp_path / "out", progress=False, log=said.append)
    assert said[-1].startswith("reusing") and same.key == again.key


def test_kde_noise_variances_in_one_call_equal_separate_calls(three_seeds):
    grid = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    swept = pipeline.evaluate_runs(three_seeds[:1], "kde", sweep={"noise_var": grid}, **QUIET)
    assert swept.shape[0] == 5 and swept.sweep == {"noise_var": grid}
    for g, v in enumerate(grid):
        one = pipeline.evaluate_runs(three_seeds[:1], "kde", {"noise_var": v}, **QUIET)
        for k in one.values:
            # float32 sums of 4096 kernel terms reduced in another order (the sweep's vmapped axis, the
            # chunking): a few 1e-6 bits apart, measured up to 2.4e-5 on jax 0.11
            np.testing.assert_allclose(swept.values[k][g], one.values[k][0], rtol=1e-5, atol=1e-4)
    i_xt_last = swept.values["i_xt"][:, 0, -1, 0]
    # more noise, less information; at 1e-4 and 1e-3 all 4096 inputs stay apart: H(X) = 12 bits
    assert np.all(np.diff(i_xt_last) <= 1e-6) and i_xt_last[0] == pytest.approx(12.0, abs=1e-5) and i_xt_last[-1] < 2


def test_static_option_sweep_is_one_compile_per_value(three_seeds, tmp_path):
    swept = pipeline.evaluate_runs(three_seeds[:1], "binning", sweep={"n_bins": [10, 30]}, out=tmp_path, **QUIET)
    for g, n in enumerate((10, 30)):
        one = pipeline.evaluate_runs(three_seeds[:1], "binning", {"n_bins": n}, **QUIET)
        np.testing.assert_array_equal(swept.setting(g).i_xt, one.i_xt)


def toy_fn(t, d, key, x, y, *, scale):
    """Toy estimator: mean absolute activation (times scale) as "I(X;T)", the class-1 fraction as "I(T;Y)"."""
    return {"i_xt": scale * jnp.sum(jnp.abs(t)) / (t.shape[0] * d), "i_ty": jnp.mean(y.astype(jnp.float32))}


@pytest.fixture
def toy():
    registry.register(
        Estimator(
            "toy",
            toy_fn,
            {"scale": Option(1.0, "a factor", float, registry.positive, traced=True)},
            ("i_xt", "i_ty"),
            lambda s, n, widths: 4 * n,
            help="test-only toy",
            units="toy",
        )
    )
    yield
    registry.unregister("toy")


def test_registered_toy_estimator_runs_through_pipeline_and_cli(toy, three_seeds, tmp_path, capsys):
    run = checkpoints.load_run(three_seeds[0])
    model = CFG.model.build()
    ds = pipeline.load_data(CFG)
    plane = pipeline.evaluate_runs(three_seeds[:1], "toy", {"scale": 2.0}, **QUIET)
    for i in range(len(run.epochs)):
        acts = model.apply(jax.tree.map(lambda a: a[i], run.params), ds.x)[1]
        np.testing.assert_allclose(plane.i_xt[0, i], [2 * np.mean(np.abs(np.asarray(a))) for a in acts], rtol=1e-5)
    np.testing.assert_allclose(plane.i_ty, np.mean(ds.y == 1), rtol=1e-6)
    out = evaluate.main(
        [str(three_seeds[0]), "--estimator", "toy", "--scale", "3", "--sweep", "scale=1,3", "--out", str(tmp_path)]
    )
    assert out.shape == (2, 1, 3, 3) and out.units == "toy"
    np.testing.assert_allclose(out.values["i_xt"][1], 1.5 * plane.i_xt, rtol=1e-5)
    assert "wrote" in capsys.readouterr().out


def test_smoothed_defaults_to_the_runs_training_noise(three_seeds, tmp_path):
    noisy_cfg = CFG.replace(**{"train.noise_sigma": 0.2, "train.n_epochs": 4, "train.schedule": "every:2"})
    dirs = pipeline.train_or_reuse(noisy_cfg, [0], tmp_path / "noisy", log=lambda *_: None)
    plane = pipeline.evaluate_runs(dirs, "smoothed", {"n_c": 2}, **QUIET)
    assert plane.settings["sigma"] == 0.2 and plane.measured["network"] == "noisy"
    explicit = pipeline.evaluate_runs(dirs, "smoothed", {"n_c": 2, "sigma": 0.2}, **QUIET)
    np.testing.assert_array_equal(plane.i_xt, explicit.i_xt)
    assert CFG.train.noise_sigma == 0  # the module's runs were trained without noise
    with pytest.raises(ValueError, match="trained without noise.*pass --sigma"):
        pipeline.evaluate_runs(three_seeds[:1], "smoothed", **QUIET)


# ---------------------------------------------------------------- faults that used to pass silently


def _params_with_nan(three_seeds, epoch_pos=1):
    run = checkpoints.load_run(three_seeds[0])
    params = jax.tree.map(lambda a: np.array(a)[None], run.params)
    params["Dense_1"]["kernel"][0, epoch_pos, 0, 0] = np.nan
    return run, params


@pytest.mark.parametrize("name", ["binning", "kde"])
def test_nan_weights_are_reported_by_epoch_and_layer_or_marked(three_seeds, name):
    run, params = _params_with_nan(three_seeds)
    model, ds = CFG.model.build(), pipeline.load_data(CFG)
    args = (model.apply, params, run.epochs, ds.x, ds.y, name)
    with pytest.raises(ValueError, match=r"non-finite activations.*epoch 10 layer 2.*nan_policy='mark'"):
        pipeline.evaluate_arrays(*args, **QUIET)
    marked = pipeline.evaluate_arrays(*args, nan_policy="mark", **QUIET)
    bad = np.isnan(marked.i_xt[0])
    assert bad[1, 1] and bad[1, 2] and not bad[1, 0] and not bad[0].any() and not bad[2].any()
    assert "non-finite activations, recorded as NaN" in marked.warnings


def test_bad_inputs_and_labels_are_refused(three_seeds):
    run = checkpoints.load_run(three_seeds[0])
    params = jax.tree.map(lambda a: a[None], run.params)
    model, ds = CFG.model.build(), pipeline.load_data(CFG)
    x_nan = ds.x.copy()
    x_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        pipeline.evaluate_arrays(model.apply, params, run.epochs, x_nan, ds.y, "binning", **QUIET)
    with pytest.raises(ValueError, match="integer class ids.*0.5"):
        pipeline.evaluate_arrays(model.apply, params, run.epochs, ds.x, ds.y + 0.5, "binning", **QUIET)
    with pytest.raises(ValueError, match="params hold 3 epochs but epochs_E lists 2"):
        pipeline.evaluate_arrays(model.apply, params, run.epochs[:2], ds.x, ds.y, "binning", **QUIET)


def test_label_ids_are_remapped_so_cost_follows_the_number_of_classes(three_seeds):
    run = checkpoints.load_run(three_seeds[0])
    params = jax.tree.map(lambda a: a[None], run.params)
    model, ds = CFG.model.build(), pipeline.load_data(CFG)
    plain = pipeline.evaluate_arrays(model.apply, params, run.epochs, ds.x, ds.y, "kde", **QUIET)
    far = pipeline.evaluate_arrays(model.apply, params, run.epochs, ds.x, ds.y * 20000, "kde", **QUIET)
    np.testing.assert_array_equal(far.i_ty, plain.i_ty)  # same partition of the samples, same numbers


def test_negative_mutual_information_is_an_error(toy, three_seeds):
    negative = lambda t, d, key, x, y, *, scale: {"i_xt": -scale + 0 * t[0, 0], "i_ty": 0 * t[0, 0]}
    registry.register(
        Estimator("toy", negative, {"scale": Option(1.0, "", float)}, ("i_xt", "i_ty"), lambda s, n, w: 4 * n),
        replace=True,
    )
    with pytest.raises(ValueError, match="toy returned i_xt = -1 < 0 .*cannot be negative"):
        pipeline.evaluate_runs(three_seeds[:1], "toy", **QUIET)


def test_edge_cap_warning_survives_the_batch_engine(three_seeds, tmp_path):
    said = []
    plane = pipeline.evaluate_runs(
        three_seeds[:1], "edge", {"U": 1.0, "n_keys": 2}, epochs="list:0", out=tmp_path, progress=False, log=said.append
    )
    msg = registry.get("edge").warnings["warn_near_cap"]
    assert msg in plane.warnings and len(plane.warnings[msg]) > 0
    assert any(s.startswith("warning: EDGE estimate within 5% of its cap") for s in said)
    assert msg in InfoPlane.load(pipeline.result_path(tmp_path, "edge")).warnings


def test_binning_outside_range_warning(three_seeds):
    plane = pipeline.evaluate_runs(three_seeds[:1], "binning", {"n_bins": 30, "value_range": (-0.5, 0.5)}, **QUIET)
    assert registry.get("binning").warnings["warn_outside_range"] in plane.warnings
    inside = pipeline.evaluate_runs(three_seeds[:1], "binning", {"n_bins": 30}, **QUIET)
    assert not inside.warnings  # tanh and softmax stay inside [-1, 1]


def test_views_that_do_not_apply_are_named(three_seeds):
    with pytest.raises(ValueError, match="view 'filters' applies to convolutional layers"):
        pipeline.evaluate_runs(three_seeds[:1], "binning", view="filters", **QUIET)
    with pytest.raises(ValueError, match="view must be one of"):
        pipeline.evaluate_runs(three_seeds[:1], "binning", view="channels", **QUIET)


def test_per_filter_and_pooled_views_of_a_cnn(tmp_path):
    """A CNN on 8 x 8 crops of 12-bit-like images: per-filter T's are each channel, pooled T's halve H and W."""
    from ibjax import models
    from ibjax.config import CNNConfig

    m = models.cnn((8, 8, 1), filters=(2, 3), n_classes=2)
    p = m.init(jax.random.key(0))
    x = np.asarray(jax.random.uniform(jax.random.key(1), (64, 8, 8, 1)))
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int32)
    params = jax.tree.map(lambda a: a[None, None], p)
    per_filter = pipeline.evaluate_arrays(m.apply, params, [0], x, y, "binning", view="filters", **QUIET)
    assert per_filter.layer_names == (
        "layer 1 filter 1",
        "layer 1 filter 2",
        "layer 2 filter 1",
        "layer 2 filter 2",
        "layer 2 filter 3",
    )
    acts = m.apply(p, x)[1]
    from ibjax.estimators import binning

    want = binning.info_plane(np.asarray(acts[1][..., 2]).reshape(64, -1), y, n_bins=30)
    np.testing.assert_allclose([per_filter.i_xt[0, 0, 4], per_filter.i_ty[0, 0, 4]], want, atol=1e-6)
    pooled = pipeline.evaluate_arrays(m.apply, params, [0], x, y, "binning", view="pooled", **QUIET)
    assert pooled.layer_names[:2] == ("layer 1 before pool", "layer 1 after pool")
    # structured coordinates, saved and loaded with the plane: no name is parsed back
    assert per_filter.t_coords[4] == {"layer": 2, "filter": 3}
    where, picked = per_filter.select(layer=2)
    assert where.tolist() == [2, 3, 4] and [c["filter"] for c in picked] == [1, 2, 3]
    before, _ = pooled.select(pool="before")
    after, coords = pooled.select(pool="after")
    assert before.tolist() == [0, 2] and after.tolist() == [1, 3] and [c["layer"] for c in coords] == [1, 2]
    # pooling is a function of the map: it can only merge symbols
    assert np.all(pooled.i_xt[0, 0, after] <= pooled.i_xt[0, 0, before] + 1e-6)
    pooled.save(tmp_path / "pooled.npz")
    assert InfoPlane.load(tmp_path / "pooled.npz").t_coords == pooled.t_coords
    old = dataclasses.replace(per_filter, measured={k: v for k, v in per_filter.measured.items() if k != "t_coords"})
    old.save(tmp_path / "old.npz")  # a file written before the engine recorded coordinates
    assert InfoPlane.load(tmp_path / "old.npz").t_coords == per_filter.t_coords
    with pytest.raises(ValueError, match=r"hidden\(\) drops the output layer of a per-layer plane"):
        per_filter.hidden()
    layers = pipeline.evaluate_arrays(m.apply, params, [0], x, y, "binning", **QUIET)
    hid = layers.hidden()  # the softmax output dropped, with its name and coordinates
    assert hid.shape == layers.shape[:-1] + (2,) and hid.layer_names == ("layer 1", "layer 2")
    np.testing.assert_array_equal(hid.i_xt, layers.i_xt[..., :-1])
    assert hid.t_coords == ({"layer": 1}, {"layer": 2})
    assert CNNConfig(input_shape=(8, 8, 1), filters=(2, 3), n_classes=2).build().n_layers == 3


def test_bring_your_own_flax_model(tmp_path):
    """README's example: a user's flax module trains with the same scan and evaluates with every estimator."""
    import flax.linen as nn

    from ibjax import data, models
    from ibjax.train import hyper, make_train, uses

    class Mine(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.tanh(nn.Dense(6)(x))
            logits = nn.Dense(2)(h)
            return logits, (h, nn.softmax(logits))

    model = models.from_flax(Mine(), input_shape=(12,))
    ds = data.var_u()
    cfg = RunConfig(train=TrainConfig(n_epochs=20, schedule="every:10", learning_rate=0.01))
    out = make_train(model, cfg.train, data.split(ds), u=uses([cfg])).train(jax.random.key(0), hyper(cfg))
    params = jax.tree.map(lambda a: a[None], out["params"])
    x, y = ds.x[:1024], ds.y[:1024]  # a quarter of the inputs: kde and knn are O(N^2)
    for name in ("binning", "kde", "knn"):
        plane = pipeline.evaluate_arrays(model.apply, params, out["epochs"], x, y, name, **QUIET)
        assert plane.shape == (1, 1, 2, 2) and np.all(np.isfinite(plane.i_xt))
    assert out["metrics"]["train_loss"][-1] < out["metrics"]["train_loss"][0]


def test_a_run_given_twice_is_refused_not_counted_as_two_seeds(three_seeds, tmp_path, capsys):
    """Regression: the same run twice (repeated path, symlink beside its target, a copy) was two seeds with spread 0."""
    d = three_seeds[0]
    with pytest.raises(ValueError, match=f"are the same directory \\({d.resolve()}\\).*pass each run once"):
        pipeline.evaluate_runs([d, three_seeds[1], d], "binning", **QUIET)
    link = tmp_path / "link"
    link.symlink_to(d, target_is_directory=True)
    with pytest.raises(ValueError, match=f"run_dirs '{d}' and '{link}' are the same directory"):
        pipeline.evaluate_runs([d, link], "binning", **QUIET)
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)
    rid = checkpoints.read_config(d)["run_id"]
    with pytest.raises(ValueError, match=f"'{copy}' are the same run \\(run_id {rid}\\)"):
        pipeline.load_runs([d, copy])
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(d), str(link), "--estimator", "binning", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "same directory" in err, err


def test_samples_pick_the_runs_split_and_the_plane_says_which(three_seeds):
    """samples=: all inputs, the run split's training or held-out ones, the first N of them, or indices;
    each plane equals evaluate_arrays on exactly those samples, and records them."""
    sp = pipeline.split_of(CFG)
    x, y, about = pipeline.samples_of(CFG, "held-out:50")
    np.testing.assert_array_equal(x, sp.x_test[:50])
    np.testing.assert_array_equal(y, sp.y_test[:50])
    assert about["samples"] == "first 50 held-out samples" and about["n_samples"] == 50
    assert pipeline.samples_of(CFG, "train")[2]["n_samples"] == len(sp.y_train) == 3277
    assert pipeline.samples_of(CFG)[2] == {**about, "samples": "all", "n_samples": 4096}
    idx = np.array([5, 0, 4095])
    np.testing.assert_array_equal(pipeline.samples_of(CFG, idx)[1], pipeline.load_data(CFG).y[idx])
    plane = pipeline.evaluate_runs(three_seeds, "binning", "n_bins=12", samples="held-out:50", **QUIET)
    runs = pipeline.load_runs(three_seeds)
    params = jax.tree.map(lambda *a: np.stack(a), *[r.params for r in runs])
    ids = [r.config["run_id"] for r in runs]
    same = pipeline.evaluate_arrays(
        CFG.model.build(), params, runs[0].epochs, x, y, "binning", {"n_bins": 12}, run_ids=ids, **QUIET
    )
    np.testing.assert_array_equal(plane.i_xt, same.i_xt)
    np.testing.assert_array_equal(plane.i_ty, same.i_ty)
    assert plane.measured["n_samples"] == 50 and plane.measured["samples"] == "first 50 held-out samples"
    assert np.all(plane.i_xt <= np.log2(50) + 1e-5)  # capped by the 50 samples, not 4096
    for bad, message in (
        ("test", "samples must be all | train | held-out"),
        ("held-out:0", "samples must be"),
        ("train:99999", "the run's split has only 3277 train samples"),
        (np.array([1, 1]), "indices must be distinct"),
        (np.array([4096]), r"in \[0, 4096\)"),
    ):
        with pytest.raises(ValueError, match=message):
            pipeline.samples_of(CFG, bad)


def test_load_metrics_stacks_the_runs(three_seeds):
    m = pipeline.load_metrics(three_seeds)
    assert m["train_loss"].shape == (3, CFG.train.n_epochs)
    for s, d in enumerate(three_seeds):
        np.testing.assert_array_equal(m["test_acc"][s], checkpoints.load_metrics(d)["test_acc"])
    with pytest.raises(ValueError, match="run_dirs is empty"):
        pipeline.load_metrics([])


def test_an_image_dataset_absent_from_a_folder_is_reported_not_downloaded(tmp_path):
    assert pipeline.data_present("mnist_train", path=tmp_path) is False
    with pytest.raises(ValueError, match="name must be one of"):
        pipeline.data_present("szt_12bit")
