"""Typed settings (experiments/_settings.py): each check on hand-made values, a toy config through
the harness's command line, and every study declaring its checks instead of writing them."""

import ast
import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from experiments import _harness as harness
from ibjax.config import RunConfig, TrainConfig

STUDIES = (
    "as_if_random cnn depth_and_data edge_mnist goldfeld ib_bound linear_teacher quantized robustness saxe "
    "skipping snr tishby"
).split()


def _run():
    return RunConfig(train=TrainConfig(n_epochs=100, schedule="log:20"))


@dataclass(frozen=True)
class Toy(harness.Settings):
    run: RunConfig = harness.setting(factory=_run, within={"train.batch_size": harness.integer(least=1)})
    seeds: int = harness.setting(3, harness.integer(least=1))
    shown: int = harness.setting(2, harness.integer(least=1, most="seeds"))
    off: int = harness.setting(0, harness.integer(least=20, zero=True))
    rate: float = harness.setting(0.5, harness.number(above=0, below=1))
    mode: str = harness.setting("a", harness.one_of("a", "b"))
    modes: tuple = harness.setting(("a",), harness.distinct("a", "b"))
    sizes: tuple = harness.setting((1, 2), harness.each(harness.integer(least=1)), harness.length(2, "low, high"))
    pick: int = harness.setting(1, harness.member_of("sizes"))
    act: str = harness.setting("relu", harness.activation(differs_from="run.model.activation"))
    estimator: str = harness.setting("binning", harness.estimator())
    options: str = harness.setting("n_bins=30", harness.options("estimator"))
    bin_size: float = harness.setting(0.1, harness.option("binning", "bin_size"))
    epochs: str = harness.setting("log:5", harness.epochs())
    even: int = harness.setting(2, harness.where(lambda v, cfg: v % 2 == 0, "even"))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"seeds": 0}, "seeds must be an integer >= 1, got 0"),
        ({"seeds": True}, "seeds must be an integer >= 1, got True"),
        ({"seeds": 2.0}, "seeds must be an integer >= 1, got 2.0"),
        ({"shown": 4}, "shown must be an integer in [1, seeds = 3], got 4"),
        ({"off": 5}, "off must be 0 or an integer >= 20, got 5"),
        ({"rate": 1.0}, "rate must be a number in (0, 1), got 1.0"),
        ({"rate": float("nan")}, "rate must be a number in (0, 1), got nan"),
        ({"mode": "c"}, "mode must be one of ('a', 'b'), got 'c'"),
        ({"modes": ("a", "a")}, "modes must be at least 1 distinct value(s) of ('a', 'b'), got ('a', 'a')"),
        ({"modes": ()}, "modes must be at least 1 distinct value(s)"),
        ({"sizes": (1, 0)}, "sizes item 2 of (1, 0): must be an integer >= 1, got 0"),
        ({"sizes": (1, 2, 3), "pick": 3}, "sizes must list 2 value(s) (low, high), got (1, 2, 3)"),
        ({"pick": 5}, "pick must be one of sizes (1, 2), got 5"),
        ({"act": "gelu"}, "act must be one of ['hard_tanh', 'linear', 'relu'"),
        ({"act": "tanh"}, "act must differ from run.model.activation ('tanh')"),
        ({"estimator": "nope"}, "estimator must be one of ['binning'"),
        ({"options": "n_bins=1"}, "options: estimator option n_bins must be an integer >= 2, got 1"),
        ({"options": "bins=3"}, "options: options 'bins=3': 'bins=3' is not NAME=VALUE"),
        ({"bin_size": -1.0}, "bin_size: estimator option bin_size must be a finite number > 0, got -1.0"),
        ({"epochs": "log:x"}, "epochs: epochs 'log:x'"),
        ({"even": 3}, "even must be even, got 3"),
        ({"run": _run().replace(**{"train.batch_size": 0})}, "run.train.batch_size must be an integer >= 1, got 0"),
    ],
)
def test_each_check_names_the_field_the_value_and_what_is_valid(change, message):
    with pytest.raises(ValueError) as e:
        dataclasses.replace(Toy(), **change)
    assert message in str(e.value), str(e.value)


def test_valid_values_pass_and_zero_switches_off():
    cfg = dataclasses.replace(Toy(), off=0, shown=3, rate=0.99, modes=("b", "a"), pick=2, act="linear")
    assert cfg.off == 0 and cfg.modes == ("b", "a")
    harness.validate(cfg)  # idempotent


def test_the_command_line_is_checked_before_the_study_runs(capsys):
    """--set goes through the same checks (after --quick), so a study's run never sees a bad setting."""
    a = harness.parse_args("toy", Toy(), {"seeds": 2}, ["--quick", "--set", "shown=3"])
    with pytest.raises(ValueError, match=r"shown must be an integer in \[1, seeds = 2\], got 3"):
        harness.build_config(Toy(), {"seeds": 2}, a)
    a = harness.parse_args("toy", Toy(), {"seeds": 2}, ["--set", "shown=3"])
    assert harness.build_config(Toy(), {"seeds": 2}, a)[0].shown == 3


def _module(name):
    return importlib.import_module(f"experiments.{name}")


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_declares_its_settings_and_writes_no_validation(name):
    """Each study's Config is a harness.Settings whose defaults and --quick pass; the module defines no
    check/validate function and no __post_init__, and raises no ValueError of its own about settings."""
    mod = _module(name)
    assert issubclass(mod.Config, harness.Settings)
    harness.apply_settings(mod.Config(), mod.QUICK)
    tree = ast.parse(Path(mod.__file__).read_text())
    defs = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert not defs & {"check", "validate", "__post_init__"}, defs & {"check", "validate", "__post_init__"}
    raised = [
        ast.unparse(n.exc)
        for n in ast.walk(tree)
        if isinstance(n, ast.Raise) and n.exc is not None and "ValueError" in ast.unparse(n.exc)
    ]
    assert not [r for r in raised if "must be" in r], raised
    declared = [f for f in dataclasses.fields(mod.Config) if f.metadata.get("checks") or f.metadata.get("within")]
    assert len(declared) >= 3, [f.name for f in declared]


def test_values_of_is_a_list_of_distinct_checked_values():
    @dataclass(frozen=True)
    class Sweep(harness.Settings):
        noise: tuple = harness.values_of((1e-3, 1e-2), harness.option("kde", "noise_var"))
        ks: tuple = harness.values_of((3,), harness.integer(least=1), least=0)

    assert Sweep().noise == (1e-3, 1e-2) and Sweep(ks=()).ks == ()
    with pytest.raises(ValueError, match="noise must be at least 1 distinct"):
        Sweep(noise=(1e-3, 1e-3))
    with pytest.raises(ValueError, match="noise item 2 of"):
        Sweep(noise=(1e-3, -1.0))
    with pytest.raises(ValueError, match="ks item 1 of"):
        Sweep(ks=(0,))
