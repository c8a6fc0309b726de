import pytest

from aelab.config import CompareConfig, RunConfig, TrainingConfig, dump_yaml, load_yaml, parse_config
from aelab.errors import ConfigError


def test_defaults_are_the_tutorial_settings():
    cfg = CompareConfig()
    assert [m.preset for m in cfg.models] == ["linear-3", "conv-64"]
    t = cfg.training
    assert (t.epochs, t.batch_size, t.optimizer, t.lr, t.loss, t.log_interval) == (50, 64, "adam", 1e-3, "mse", 10)
    assert cfg.data.name == "fashion-mnist"


def test_unknown_key_names_key_and_allowed_keys():
    with pytest.raises(ConfigError) as exc:
        parse_config(CompareConfig, {"training": {"lrr": 0.1}})
    msg = str(exc.value)
    assert "unknown key 'training.lrr'" in msg and "lr" in msg and "batch_size" in msg
    assert "\n" not in msg


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="unknown key 'epochs'; allowed keys here: name, seed, data, models"):
        parse_config(CompareConfig, {"epochs": 3})


@pytest.mark.parametrize("data, expected", [
    ({"training": {"lr": 0}}, "training.lr: Input should be greater than 0 (got 0)"),
    ({"training": {"epochs": 0}}, "training.epochs: Input should be greater than or equal to 1 (got 0)"),
    ({"training": {"batch_size": -2}}, "training.batch_size: Input should be greater than or equal to 1"),
    ({"training": {"optimizer": "adamw"}}, "training.optimizer: got 'adamw'; allowed: 'adam' or 'sgd'"),
    ({"data": {"name": "imagenet"}}, "data.name: got 'imagenet'; allowed: fashion-mnist, mnist, cifar10, digits"),
    ({"models": [{"preset": "resnet"}]}, "preset: got 'resnet'; allowed: linear-3, linear-10, conv-64"),
    ({"models": []}, "models: List should have at least 1 item"),
])
def test_bad_values_one_line(data, expected):
    with pytest.raises(ConfigError) as exc:
        parse_config(CompareConfig, data)
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_yaml_round_trip(tmp_path):
    cfg = parse_config(RunConfig, {"seed": 3, "model": {"spec": {"type": "conv", "layers": [{"channels": 4}]}},
                                   "training": {"epochs": 2, "optimizer": "sgd"}})
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
