"""Nested run configs: only applicable fields, clear errors, old run configs still read."""

import pytest

from ibjax import checkpoints
from ibjax.config import CNNConfig, DataConfig, MLPConfig, RunConfig, TrainConfig, expand_sweep


def test_round_trip_and_sections_hold_only_their_fields():
    cfg = RunConfig(CNNConfig(filters=(4, 8)), DataConfig(name="mnist_test"), TrainConfig(n_epochs=5, schedule="all"))
    d = cfg.to_dict()
    assert RunConfig.from_dict(d) == cfg
    assert "widths" not in d["model"] and "filters" not in RunConfig().to_dict()["model"]
    assert set(d) == {"model", "data", "train"}


def test_run_id_hashes_only_what_applies():
    """An MLP run's id does not depend on CNN settings (there are none in its config)."""
    mlp = RunConfig().to_dict()
    assert checkpoints.run_id(mlp) == checkpoints.run_id(RunConfig.from_dict(mlp).to_dict())
    assert checkpoints.run_id(mlp) != checkpoints.run_id(RunConfig().replace(**{"train.learning_rate": 1e-3}).to_dict())
    cnn_a = RunConfig(CNNConfig(filters=(4, 8))).to_dict()
    cnn_b = RunConfig(CNNConfig(filters=(4, 16))).to_dict()
    assert checkpoints.run_id(cnn_a) != checkpoints.run_id(cnn_b)


def test_unknown_or_missing_fields_are_named():
    d = RunConfig().to_dict()
    d["train"]["lr"] = 0.1
    with pytest.raises(ValueError, match=r"section 'train' has unknown field\(s\) \['lr'\]; valid: .*learning_rate"):
        RunConfig.from_dict(d)
    d = RunConfig().to_dict()
    d["model"]["kind"] = "rnn"
    with pytest.raises(ValueError, match="model.kind must be one of"):
        RunConfig.from_dict(d)
    d = RunConfig().to_dict()
    d["model"]["filters"] = [8]
    with pytest.raises(ValueError, match=r"section 'model' has unknown field\(s\) \['filters'\]"):
        RunConfig.from_dict(d)
    with pytest.raises(ValueError, match="unknown setting 'train.lr'"):
        RunConfig().replace(**{"train.lr": 1.0})


def test_reads_the_flat_config_of_ibjax_0_1():
    old = {
        "train": {
            "widths": [12, 10, 7, 5, 4, 3, 2],
            "activation": "relu",
            "init": "saxe",
            "kind": "mlp",
            "filters": [8, 16, 32, 32],
            "input_shape": [],
            "optimizer": "adam",
            "learning_rate": 4e-4,
            "momentum": 0.9,
            "batch_size": 256,
            "n_epochs": 8000,
            "schedule": "log:400",
            "checkpoint_at": "before",
            "weight_decay": 0.0,
            "ortho_penalty": 0.0,
            "noise_sigma": 0.0,
        },
        "model": {"kind": "mlp", "widths": [12, 10, 7, 5, 4, 3, 2], "activation": "relu", "init": "saxe"},
        "data": {
            "name": "var_u",
            "source": "/x/var_u.mat",
            "split": "random",
            "split_seed": 0,
            "train_frac": 0.8,
            "n": 4096,
            "n_classes": 2,
        },
        "seed": 0,
    }
    cfg = RunConfig.from_dict(old)
    assert cfg.model == MLPConfig(activation="relu", init="saxe") and cfg.train == TrainConfig()
    assert cfg.data == DataConfig(name="var_u")


def test_expand_sweep_checks_names_and_types():
    grid = expand_sweep(RunConfig(), {"train.learning_rate": [1e-3, 1e-2], "data.train_subset": [0.05, 0.45, 1.0]})
    assert [(g.train.learning_rate, g.data.train_subset) for g in grid] == [
        (1e-3, 0.05),
        (1e-3, 0.45),
        (1e-3, 1.0),
        (1e-2, 0.05),
        (1e-2, 0.45),
        (1e-2, 1.0),
    ]
    with pytest.raises(ValueError, match="cannot be an array axis"):
        expand_sweep(RunConfig(), {"model.activation": ["relu"]})
    with pytest.raises(ValueError, match="must be a number"):
        expand_sweep(RunConfig(), {"train.learning_rate": [True]})
    with pytest.raises(ValueError, match="data.train_subset must be in"):
        expand_sweep(RunConfig(), {"data.train_subset": [0.0]})
