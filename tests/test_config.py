import pytest

from aelab.config import (
    ExperimentConfig,
    RunConfig,
    RunOptions,
    TrainingConfig,
    check_key,
    dump_yaml,
    load_yaml,
    parse_assignment,
    parse_config,
)
from aelab.errors import ConfigError


def test_defaults_are_the_tutorial_settings():
    cfg = ExperimentConfig(models=["linear-3", "conv-64"])
    assert [m.preset for m in cfg.models] == ["linear-3", "conv-64"]
    t = cfg.training
    assert (t.epochs, t.batch_size, t.optimizer, t.lr, t.loss, t.log_interval) == (50, 64, "adam", 1e-3, "mse", 10)
    assert cfg.data.name == "fashion-mnist"


def test_unknown_key_names_key_and_allowed_keys():
    with pytest.raises(ConfigError) as exc:
        parse_config(ExperimentConfig, {"training": {"lrr": 0.1}})
    msg = str(exc.value)
    assert "unknown key 'training.lrr'" in msg and "lr" in msg and "batch_size" in msg
    assert "\n" not in msg


def test_unknown_top_level_key():
    with pytest.raises(
        ConfigError,
        match="unknown key 'epochs'; allowed keys here: name, seed, data, training, model, models, runs, grid, set",
    ):
        parse_config(ExperimentConfig, {"epochs": 3})


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"training": {"lr": 0}}, "training.lr: Input should be greater than 0 (got 0)"),
        ({"training": {"epochs": 0}}, "training.epochs: Input should be greater than or equal to 1 (got 0)"),
        ({"training": {"batch_size": -2}}, "training.batch_size: Input should be greater than or equal to 1"),
        ({"training": {"optimizer": "adamax"}}, "training.optimizer: got 'adamax'; allowed: 'adam', 'adamw' or 'sgd'"),
        ({"data": {"name": "imagenet"}}, "data.name: got 'imagenet'; allowed: fashion-mnist, mnist, cifar10, digits"),
        ({"models": [{"preset": "resnet"}]}, "preset: got 'resnet'; allowed: linear-3, linear-10, conv-64"),
        ({"models": ["linear-3", "resnet"]}, "models.1: preset: got 'resnet'; allowed: linear-3, linear-10"),
        ({"name": "a b"}, "name: String should match pattern"),
        ({"models": ["conv-64", [1]]}, "models.1: expected a preset name or a mapping of keys to values (got [1])"),
        ({"training": 3}, "training: expected a mapping of keys to values (got 3)"),
        ({"model": {"spec": 5}}, "model.spec: expected a mapping of keys to values (got 5)"),
        ({"model": {"spec": {"code_size": 8}}}, "model.spec: needs the key 'type'; allowed: 'mlp', 'conv', 'res'"),
        ({"model": {"spec": {"type": "rez"}}}, "model.spec.type: got 'rez'; allowed: 'mlp', 'conv', 'res'"),
        (
            {"model": {"preset": "res-v2-3", "spec": {"activation": "gelu"}}},
            "model: give exactly one of 'preset' or 'spec', got both: preset 'res-v2-3' has a fixed architecture; to "
            "change it, give a whole spec with its type and no preset ('aelab models res-v2-3' prints it written out; "
            "YAML: model: {spec: {type: res, ...}}; flags: --set model.preset=null --set 'model.spec={type: res, "
            "...}')",
        ),
    ],
)
def test_bad_values_one_line(data, expected):
    with pytest.raises(ConfigError) as exc:
        parse_config(ExperimentConfig, data)
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_yaml_round_trip(tmp_path):
    cfg = parse_config(
        RunConfig,
        {
            "seed": 3,
            "model": {"spec": {"type": "conv", "layers": [{"channels": 4}]}},
            "training": {"epochs": 2, "optimizer": "sgd"},
        },
    )
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_yaml(path, RunConfig) == cfg


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml", RunConfig)
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad, RunConfig)


def test_assignment_is_validated():
    from pydantic import ValidationError

    t = TrainingConfig()
    with pytest.raises(ValidationError, match="greater than 0"):
        t.lr = -1.0


def test_every_field_has_a_docstring():
    """The docstrings are the CLI's --help texts: none may be missing."""
    from pydantic import BaseModel

    import aelab.config as C

    classes = [
        v
        for v in vars(C).values()
        if isinstance(v, type)
        and issubclass(v, BaseModel)
        and v.__module__.startswith(C.__name__ + ".")
        and v is not C.Strict
    ]
    assert len(classes) >= 14
    missing = [
        f"{cls.__name__}.{name}"
        for cls in classes
        for name, f in cls.model_fields.items()
        if not (f.description or "").strip()
    ]
    assert missing == []


def test_parse_assignment_reads_yaml_values_and_checks_the_key():
    assert parse_assignment("training.lr=0.0003") == ("training.lr", 3e-4)
    assert parse_assignment("training.compile=true") == ("training.compile", True)
    assert parse_assignment("data.train_limit=100") == ("data.train_limit", 100)
    assert parse_assignment("model.sparsity=topk:16") == ("model.sparsity", "topk:16")
    assert parse_assignment("data.resize=[8, 8]") == ("data.resize", [8, 8])
    assert parse_assignment("data.train_limit=null") == ("data.train_limit", None)
    with pytest.raises(ConfigError, match="the form is KEY=VALUE"):
        parse_assignment("training.lr")
    with pytest.raises(ConfigError, match="key 'training.lrr' is not a config field; allowed at training: epochs"):
        parse_assignment("training.lrr=1")
    check_key("model.spec.code_size")  # inside a union of specs


def test_a_value_is_checked_against_its_field_alone():
    from aelab.config import RunOptions, check_value

    with pytest.raises(
        ConfigError, match=r"^--epochs: training\.epochs: Input should be greater than or equal to 1 \(got 0\)$"
    ):
        check_value("training.epochs", 0, "--epochs")
    with pytest.raises(ConfigError, match=r"^--set: model\.sparsity\.k: Input should be greater than or equal to 1"):
        check_value("model.sparsity", "topk:0", "--set")
    with pytest.raises(ConfigError, match=r"^--executor: got 'nope'; allowed: 'inline', 'local' or 'ray'$"):
        check_value("executor", "nope", "--executor", RunOptions)
    check_value("training.warmup_epochs", 60, "--warmup")  # a rule across fields (warm-up < epochs) waits for the run
    check_value("data.normal_classes", "0,3", "--set")  # the field's own parsing of its short form applies
    check_value("model.spec.code_size", -1, "--set")  # a field of several spec kinds: the whole config decides
    check_value("training.epochs", 3, "--epochs")


def test_run_options_are_validated():
    with pytest.raises(ConfigError, match="executor: got 'slurm'; allowed: 'inline', 'local' or 'ray'"):
        parse_config(RunOptions, {"executor": "slurm"})
