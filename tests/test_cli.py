"""The CLI: bad input gives one 'error:' line, exit code 2, and writes nothing."""

import gc
import json
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from aelab.cli import app
from conftest import error_line, write_cifar_dataset, write_idx_dataset

runner = CliRunner()


def run(args, tmp_path):
    return runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs"), "--no-progress"])


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--dataset", "imagenet"],
            "error: --dataset: data.name: got 'imagenet'; allowed: fashion-mnist, mnist, cifar10, digits, folder",
        ),
        (
            ["--models", "linear-3,resnet"],
            "error: --models: got 'resnet'; allowed: linear-3, linear-10, conv-64, conv-16",
        ),
        (["--lr", "0"], "error: --lr: training.lr: Input should be greater than 0 (got 0.0)"),
        (["--lr", "-1e-3"], "error: --lr: training.lr: Input should be greater than 0"),
        (["--epochs", "0"], "error: --epochs: training.epochs: Input should be greater than or equal to 1 (got 0)"),
        (["--batch-size", "0"], "error: --batch-size: training.batch_size: Input should be greater than or equal to 1"),
        (["--optimizer", "rmsprop"], "error: --optimizer: training.optimizer: got 'rmsprop'; allowed: 'adam', 'adamw'"),
        (["--ema", "1"], "error: --ema: training.ema_decay: Input should be less than 1 (got 1.0)"),
        (["--workers", "0"], "error: --workers: Input should be greater than or equal to 1 (got 0)"),
        (
            ["--denoise", "gaussian:-1"],
            "error: --denoise: training.corruption: gaussian std: got -1.0; allowed: std >= 0",
        ),
        (["--set", "training.epochs=0"], "error: --set: training.epochs: Input should be greater than or equal to 1"),
        (
            ["--set", "model.spec.activation=gelu"],
            "error: options: model 1 (linear-3): model: give exactly one of 'preset' or 'spec', got both: preset "
            "'linear-3' has a fixed architecture; to change it, give a whole spec with its type and no preset ('aelab "
            "models linear-3' prints it written out; YAML: model: {spec: {type: mlp, ...}}",
        ),
    ],
)
def test_bad_options_name_the_flag_typed(args, expected, tmp_path):
    result = run(["compare", *args], tmp_path)
    assert result.exit_code == 2
    assert error_line(result).startswith(expected)
    assert not (tmp_path / "runs").exists()


def test_unknown_config_key(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("training:\n  epochs: 1\n  learning_rate: 0.1\n")
    result = run(["compare", "--config", str(cfg)], tmp_path)
    assert result.exit_code == 2
    assert "unknown key 'training.learning_rate'; allowed keys here: epochs, batch_size" in error_line(result)
    assert not (tmp_path / "runs").exists()


def test_folder_errors(tmp_path):
    result = run(["train", "--dataset", "folder", "--data-dir", str(tmp_path / "missing")], tmp_path)
    assert result.exit_code == 2 and "does not exist" in error_line(result)
    (tmp_path / "empty").mkdir()
    result = run(["train", "--dataset", "folder", "--data-dir", str(tmp_path / "empty")], tmp_path)
    assert result.exit_code == 2 and "is empty" in error_line(result)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("L", (28, 28)).save(mixed / "a.png")
    (mixed / "readme.md").write_text("x")
    result = run(["train", "--dataset", "folder", "--data-dir", str(mixed)], tmp_path)
    assert result.exit_code == 2 and "'readme.md' is not an image" in error_line(result)
    assert not (tmp_path / "runs").exists()


def test_truncated_idx(tmp_path):
    folder = write_idx_dataset(tmp_path / "idx", gz=False)
    p = folder / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:1000])
    result = run(["compare", "--dataset", "mnist", "--data-dir", str(folder)], tmp_path)
    assert result.exit_code == 2 and "is truncated or corrupted" in error_line(result)
    assert not (tmp_path / "runs").exists()


def test_model_that_does_not_fit_is_refused_before_training(tmp_path):
    root = write_cifar_dataset(tmp_path / "c")
    result = run(["compare", "--dataset", "cifar10", "--data-dir", str(root)], tmp_path)
    assert result.exit_code == 2
    assert "model 'linear-3' expects images of 1x28x28 but the data has 3x32x32" in error_line(result)
    assert not (tmp_path / "runs").exists()


def test_train_on_tiny_idx_writes_run_folder(tmp_path):
    folder = write_idx_dataset(tmp_path / "idx", n_train=200, n_test=30)
    result = run(
        [
            "train",
            "--model",
            "conv-pool",
            "--dataset",
            "mnist",
            "--data-dir",
            str(folder),
            "--epochs",
            "2",
            "--log-interval",
            "1",
            "--name",
            "t1",
        ],
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    exp = tmp_path / "runs" / "t1"
    metrics = json.loads((exp / "metrics.json").read_text())
    assert [m["model"] for m in metrics["runs"]] == ["conv-pool"]
    assert metrics["runs"][0]["parameters"] == 1077 and metrics["runs"][0]["test_images"] == 30
    # conv-pool's 196-value code is more than PCA can fit on 190 training images: no PCA row, no error
    assert [r["model"] for r in metrics["baselines"]] == ["mean image (baseline)"]
    [run_dir] = [p for p in exp.iterdir() if p.is_dir()]
    assert run_dir.name.startswith("conv-pool-") and len(run_dir.name) == len("conv-pool-") + 12
    for f in [
        "experiment.yaml",
        "runs.json",
        "loss_curves.png",
        "reconstructions_epoch_001.png",
        "reconstructions_epoch_002.png",
        "report.html",
    ]:
        assert (exp / f).is_file(), f
    for f in [
        "run.yaml",
        "checkpoint.pt",
        "history.pt",
        "metrics.json",
        "model/config.json",
        "model/model.safetensors",
    ]:
        assert (run_dir / f).is_file(), f
    # the same name with other settings: a new run beside the first, which is never overwritten
    first = (run_dir / "metrics.json").read_text()
    again = run(
        [
            "train",
            "--model",
            "conv-pool",
            "--dataset",
            "mnist",
            "--data-dir",
            str(folder),
            "--epochs",
            "1",
            "--name",
            "t1",
        ],
        tmp_path,
    )
    assert again.exit_code == 0, again.output
    assert (run_dir / "metrics.json").read_text() == first
    assert len([p for p in exp.iterdir() if p.is_dir()]) == 2
    assert [m["epochs"] for m in json.loads((exp / "metrics.json").read_text())["runs"]] == [1]
    html = (exp / "report.html").read_text()  # only the current runs' figures, not the 2-epoch run's
    assert 'alt="reconstructions_epoch_001.png"' in html and "reconstructions_epoch_002.png" not in html
    listing = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path / "runs")])
    assert listing.exit_code == 0 and listing.output.count("conv-pool") == 2 and "2 runs" in listing.output


def test_config_file_plus_flags_and_set(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        "data: {name: digits}\nmodels: [{spec: {type: mlp, hidden: [8], code_size: 4}, name: a},\n"
        "         {spec: {type: mlp, hidden: [8], code_size: 2}, name: b}]\n"
        "training: {epochs: 5, batch_size: 32, lr: 0.01}\n"
    )
    result = run(
        [
            "compare",
            "--config",
            str(cfg),
            "--epochs",
            "1",
            "--set",
            "training.lr=0.002",
            "--set",
            "data.val_fraction=0.1",
            "--no-analysis",
            "--name",
            "c",
        ],
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    from aelab.experiments.jobs import load_experiment

    records = load_experiment("c", tmp_path / "runs")
    assert [r["name"] for r in records] == ["a", "b"]
    for r in records:
        t = r["config"]["training"]
        assert (t["epochs"], t["batch_size"], t["lr"]) == (1, 32, 0.002)  # flag, file, --set
        assert r["config"]["data"]["val_fraction"] == 0.1 and r["metrics"]["epochs"] == 1
    bad = run(["compare", "--config", str(cfg), "--set", "training.lrr=1"], tmp_path)
    assert bad.exit_code == 2 and "key 'training.lrr' is not a config field" in error_line(bad)
    bad = run(["compare", "--config", str(cfg), "--set", "training.lr=-1"], tmp_path)
    assert bad.exit_code == 2 and "training.lr: Input should be greater than 0" in error_line(bad)


def test_resume_needs_existing_run(tmp_path):
    (tmp_path / "runs").mkdir()
    from aelab.experiments.store import RunStore

    RunStore(tmp_path / "runs" / "aelab.sqlite").close()
    result = run(["compare", "--resume", "--name", "nope", "--dataset", "digits", "--models", "linear-3"], tmp_path)
    assert result.exit_code == 2 and "no experiment 'nope'" in error_line(result)


def test_models_command_answers_from_the_shipped_table_without_building(tmp_path, monkeypatch):
    """A first call reads the table shipped with the package: no model is built and nothing is cached."""
    import aelab.models

    monkeypatch.setenv("AELAB_DATA", str(tmp_path))
    monkeypatch.setattr(aelab.models, "build_model", lambda *a, **k: pytest.fail("a preset was built"))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name, params in [("linear-3", "219,891"), ("conv-64", "210,369"), ("conv-pool", "1,077")]:
        assert name in result.output and params in result.output
    assert not list(tmp_path.iterdir())


def test_the_shipped_preset_table_is_what_building_the_presets_gives():
    from aelab.cli.inspect import SHIPPED_TABLE, built_preset_rows, shipped_key
    from aelab.config import PRESETS

    shipped = json.loads(SHIPPED_TABLE.read_text())
    hint = 'python -c "from aelab.cli.inspect import write_shipped_table; write_shipped_table()"'
    assert shipped["key"] == shipped_key(), f"the presets changed: write the table again with {hint}"
    assert shipped["rows"] == built_preset_rows(), f"a builder changed: write the table again with {hint}"
    assert [row[0] for row in shipped["rows"]] == list(PRESETS)


def test_models_command_builds_and_caches_when_the_shipped_table_is_stale(tmp_path, monkeypatch):
    """Presets edited in place (a key that does not match): every preset is built once, then read from the cache."""
    import aelab.cli.inspect as inspect

    stale = tmp_path / "presets.json"
    stale.write_text(json.dumps({"key": "0" * 16, "rows": [["stale"] * 8]}))
    monkeypatch.setattr(inspect, "SHIPPED_TABLE", stale)
    monkeypatch.setenv("AELAB_DATA", str(tmp_path / "cache"))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "stale" not in result.output and "219,891" in result.output
    (cached,) = (tmp_path / "cache" / "presets").glob("*.json")
    rows = json.loads(cached.read_text())
    assert ["linear-3", "219,891"] == rows[0][0:3:2]
    again = runner.invoke(app, ["models"])
    assert again.exit_code == 0 and again.output == result.output


def test_models_name_writes_the_preset_out_and_its_flags_train_that_model(tmp_path):
    """``aelab models res-v2-3``: the row, the YAML to vary (``Preset.written_out``) and a flags line that trains
    the same spec and recipe."""
    import shlex

    import yaml

    from aelab.config import PRESETS

    result = runner.invoke(app, ["models", "res-v2-3"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "parameters: 2,213,044" in out and "recipe: aelab lr=0.0015" in out
    block = out[out.index("\nmodel:\n") + 1 : out.index("\n\nThe same as flags")]
    assert yaml.safe_load(block) == PRESETS["res-v2-3"].written_out()
    line = out.strip().splitlines()[-1]
    assert line.startswith("aelab train --set model.preset=null --set 'model.spec={type: res, channels: [16, 32], ")
    folder = write_idx_dataset(tmp_path / "idx", n_train=100, n_test=20)
    data = ["--dataset", "mnist", "--data-dir", str(folder), "--epochs", "1", "--name", "w", "--no-analysis"]
    trained = run(["train", *shlex.split(line)[2:], *data], tmp_path)
    assert trained.exit_code == 0, trained.output
    [stored] = (tmp_path / "runs" / "w").glob("*/run.yaml")
    config = yaml.safe_load(stored.read_text())
    assert "preset" not in config["model"]
    assert {k: config["model"]["spec"][k] for k in ("blocks", "code_size", "hidden")} == {
        "blocks": 0,
        "code_size": 3,
        "hidden": [512, 512, 64],
    }
    assert (config["training"]["recipe"], config["training"]["lr"], config["training"]["batch_size"]) == (
        "aelab",
        0.0015,
        128,
    )
    wrong = runner.invoke(app, ["models", "res-v2-9"])
    assert wrong.exit_code == 2
    assert error_line(wrong).startswith("error: model: got 'res-v2-9'; allowed: linear-3, linear-10, ")


def test_python_m_aelab_help():
    out = subprocess.run([sys.executable, "-m", "aelab", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for cmd in ("compare", "train", "run", "runs", "models", "interpolate", "probe", "report"):
        assert cmd in out.stdout


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["compare", "--epoch", "3"],
            "error: No such option: --epoch (Possible options: --epochs) (see 'aelab compare --help')",
        ),
        (["compare", "--epochs", "abc"], "error: Invalid value for '--epochs': "),
        (["nosuch"], "error: No such command 'nosuch' (see 'aelab --help')"),
        (["score"], "error: Missing argument 'path' (see 'aelab score --help')"),
    ],
)
def test_a_command_line_typer_cannot_parse_is_one_error_line(argv, expected, monkeypatch, capsys, tmp_path):
    from aelab.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["aelab", *argv])
    try:
        with pytest.raises(SystemExit) as leaving:
            main()
    finally:
        gc.unfreeze()
    err = capsys.readouterr().err.strip()
    assert leaving.value.code == 2 and len(err.splitlines()) == 1 and err.startswith(expected), err
    assert list(tmp_path.iterdir()) == []


def test_aelab_alone_prints_the_help_and_exits_2(monkeypatch, capsys):
    from aelab.cli import main

    monkeypatch.setattr(sys, "argv", ["aelab"])
    try:
        with pytest.raises(SystemExit) as leaving:
            main()
    finally:
        gc.unfreeze()
    out = capsys.readouterr()
    assert leaving.value.code == 2 and "Usage: aelab [OPTIONS] COMMAND" in out.out and "error:" not in out.err


def test_libraries_are_imported_with_the_collector_paused_and_the_process_freezes_its_objects_on_exit(monkeypatch):
    import gc
    from types import SimpleNamespace

    from aelab.cli import common, main

    def importer(seen: list):
        return SimpleNamespace(import_module=lambda name: seen.append((name, gc.isenabled())))

    gc.unfreeze()
    try:
        for enabled in (True, False):
            gc.enable() if enabled else gc.disable()
            seen: list = []
            monkeypatch.setattr(common, "importlib", importer(seen))
            common.import_quietly("heavy_a", "json", "heavy_b")  # json is imported already: left alone
            assert seen == [("heavy_a", False), ("heavy_b", False)]
            assert gc.isenabled() is enabled and gc.get_freeze_count() > 0
            gc.unfreeze()
            common.import_quietly("json", "sys")  # nothing to import: nothing paused, nothing frozen
            assert seen == [("heavy_a", False), ("heavy_b", False)] and gc.get_freeze_count() == 0
        gc.enable()
        monkeypatch.setattr(common, "importlib", SimpleNamespace(import_module=lambda name: 1 / 0))
        with pytest.raises(ZeroDivisionError):
            common.import_quietly("heavy_a")
        assert gc.isenabled() and gc.get_freeze_count() > 0  # restored, and frozen, after a failed import too
        gc.unfreeze()
        monkeypatch.setattr(sys, "argv", ["aelab", "--help"])
        with pytest.raises(SystemExit) as leaving:
            main()
        assert leaving.value.code == 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


def test_models_help_names_each_commands_own_default():
    """--models says the default the command uses: compare's two tutorial presets, anomaly's denoising conv-16."""
    compare = " ".join(runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).output.split())
    anomaly = " ".join(runner.invoke(app, ["anomaly", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "Comma-separated presets (default: linear-3,conv-64)." in compare
    assert "Comma-separated presets (default: conv-16); each trained to denoise (gaussian:0.1)" in anomaly


def test_help_texts_come_from_the_schema():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    out = " ".join(result.output.split())
    assert "--batch-size" in out and "Images per optimizer step. (default: 64)" in out
    assert "--momentum" in out and "--eval-batch-size" in out and "--snapshot-size" in out and "--download" in out
    assert "--dataset" in out and "--denoise" in out and "--layerwise" in out and "--set" in out


def test_help_shows_field_docstrings_without_rest_markup():
    """The schema's docstrings write names as ``reST literals``; the terminal help shows the names alone."""
    out = " ".join(runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "``" not in out
    assert "(images under data_dir)" in out


def test_table_columns_split_the_comparison_from_the_side_tables():
    from aelab.models.table import columns

    rows = [
        {"model": "conv-16", "test_mse": 0.01, "normal": "Shirt", "roc_auc": 0.84, "frechet_distance": 9.0},
        {"model": "pca", "kind": "pca", "test_mse": 0.02},
    ]
    keys = {table: [m.key for m in columns(rows, table)] for table in ("main", "anomaly", "generative", None)}
    assert keys["anomaly"] == ["model", "normal", "roc_auc"]
    assert keys["generative"] == ["model", "frechet_distance"]
    assert "roc_auc" not in keys["main"] and "frechet_distance" not in keys["main"] and "test_mse" in keys["main"]
    assert set(keys["anomaly"] + keys["generative"]) <= set(keys[None])  # the report's one table has them all
    assert columns(rows[1:], "anomaly") == columns(rows[1:], "anomaly")[:1]  # no one-class row: the model only
