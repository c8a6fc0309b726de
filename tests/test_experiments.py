"""Experiments: files -> runs, the one run store, executors, the experiment report, resume after kill -9."""

import json
import re
import subprocess
import sys
import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import ExperimentConfig, parse_config
from aelab.errors import AelabError, ConfigError
from aelab.experiments.jobs import load_experiment, run_experiment
from aelab.experiments.resolve import resolve

runner = CliRunner()
SMALL = {"spec": {"type": "mlp", "hidden": [16], "code_size": 4}}
QUIET = {"log": lambda m: None, "analyses": False}


def write_exp(tmp_path, data: dict, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_grid_crossed_with_runs_and_models_and_stable_ids():
    exp = ExperimentConfig(
        name="e",
        data={"name": "digits"},
        model=SMALL,
        runs=[{}, {"training": {"optimizer": "sgd"}}],
        grid={"training.lr": [1e-3, 3e-4], "seed": [0, 1]},
    )
    runs = resolve(exp)
    assert len(runs) == 2 * 2 * 2
    assert len({r.id for r in runs}) == 8
    assert [r.id for r in resolve(exp)] == [r.id for r in runs]  # stable
    assert {(r.config.training.optimizer, r.config.training.lr, r.config.seed) for r in runs} == {
        (o, lr, s) for o in ("adam", "sgd") for lr in (1e-3, 3e-4) for s in (0, 1)
    }
    assert runs[0].config.data.name == "digits"
    grid_models = resolve(ExperimentConfig(name="m", grid={"model": ["linear-3", "conv-64"]}))
    assert [r.config.model.preset for r in grid_models] == ["linear-3", "conv-64"]
    both = resolve(ExperimentConfig(models=["linear-3", "conv-64"], runs=[{}, {"seed": 1}]), {"training.epochs": 2})
    assert [(r.config.model.preset, r.config.seed, r.config.training.epochs) for r in both] == [
        ("linear-3", 0, 2),
        ("linear-3", 1, 2),
        ("conv-64", 0, 2),
        ("conv-64", 1, 2),
    ]


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"name": "e", "grid": {"training.lr": []}}, "grid key 'training.lr' has an empty list"),
        (
            {"name": "e", "grid": {"training.lrr": [1]}},
            "grid key 'training.lrr' is not a config field; allowed at training: epochs, batch_size",
        ),
        ({"name": "e", "grid": {"optimizer": ["sgd"]}}, "allowed at the top level: name, seed, data, model, training"),
        ({"name": "e", "runs": [{}, {"training": {"epochs": 0}}]}, "e.yaml: run 2: training.epochs: Input should be"),
        ({"name": "e", "runs": [{}, {}]}, "is the same run as"),
        (
            {
                "name": "e",
                "models": ["linear-3", "conv-64"],
                "set": {"training.epochs": 2, "training.warmup_epochs": 3},
            },
            "e.yaml: model 1 (linear-3): training: warmup_epochs: got 3 but the training lasts 2 epochs",
        ),
        ({"name": "e", "models": ["linear-3", "linear-3"], "runs": [{}]}, "is the same run as"),
        ({"name": "e", "epochs": 3}, "unknown key 'epochs'"),
        ({"name": "e", "set": {"training.lrr": 1}}, "key 'training.lrr' is not a config field"),
    ],
)
def test_bad_experiments(data, expected, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        resolve(parse_config(ExperimentConfig, data, source="e.yaml"), source="e.yaml")


def tiny_experiment(tmp_path, name="tiny", runs=None, epochs=2, batch_size=64):
    return write_exp(
        tmp_path,
        {
            "name": name,
            "data": {"name": "digits"},
            "training": {"epochs": epochs, "batch_size": batch_size},
            "model": SMALL,
            "runs": runs or [{}, {"seed": 1}],
        },
        f"{name}.yaml",
    )


DIVERGES = {
    "model": {"spec": {"type": "mlp", "hidden": [16], "code_size": 4, "output_activation": "identity"}},
    "training": {"optimizer": "sgd", "lr": 1.0e6},
}


def test_failures_are_recorded_finished_runs_skipped_and_the_report_has_every_run(tmp_path):
    path = tiny_experiment(tmp_path, runs=[{}, {"seed": 1}, DIVERGES])
    result = run_experiment(path, runs_dir=tmp_path / "runs", **QUIET)
    records = result.records
    assert [r["status"] for r in records] == ["done", "done", "failed"]
    assert "diverged at epoch 1" in records[2]["error"]
    m = records[0]["metrics"]
    assert m["test_images"] == 359 and m["epochs"] == 2 and 0 < m["test_mse"] < 1
    assert m["parameters"] == 64 * 16 + 16 + 16 * 4 + 4 + 4 * 16 + 16 + 16 * 64 + 64
    for d in result.run_dirs[:2]:
        assert (d / "metrics.json").is_file() and d.parent == tmp_path / "runs" / "tiny"
    # one report over the runs: one table with every finished run, the baselines, and the failure
    html = (tmp_path / "runs" / "tiny" / "report.html").read_text()
    table = html[html.index("<table id='metrics'>") : html.index("</table>")]
    # header, 2 runs, then PCA (4 components) and the mean image for each seed's split of digits
    assert table.count("<tr") == 1 + 2 + 2 * 2
    assert "PCA (4 components), digits seed 1" in table and "mean image (baseline), digits seed 0" in table
    assert "diverged at epoch 1" in html and html.count("Inside ") == 0  # no analyses asked for
    metrics = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())
    assert [r["model"] for r in metrics["runs"]] == [records[0]["name"], records[1]["name"]]

    again = run_experiment(path, runs_dir=tmp_path / "runs", **QUIET)
    assert [r["attempts"] for r in again.records] == [1, 1, 1]  # nothing re-run, failed not retried
    assert [r["metrics"] for r in again.records[:2]] == [r["metrics"] for r in records[:2]]
    retried = run_experiment(path, runs_dir=tmp_path / "runs", retry_failed=True, **QUIET)
    assert [r["attempts"] for r in retried.records] == [1, 1, 2] and retried.records[2]["status"] == "failed"
    assert load_experiment("tiny", tmp_path / "runs") == retried.records


def test_a_run_shared_by_two_experiments_is_trained_once(tmp_path):
    a = run_experiment(tiny_experiment(tmp_path, "a", runs=[{}, {"seed": 1}]), runs_dir=tmp_path / "r", **QUIET)
    b = run_experiment(
        tiny_experiment(tmp_path, "b", runs=[{"seed": 1}, {"seed": 2}]), runs_dir=tmp_path / "r", **QUIET
    )
    assert b.records[0]["id"] == a.records[1]["id"] and b.records[0]["attempts"] == 1
    assert b.run_dirs[0] == a.run_dirs[1]  # the folder it was trained in
    assert sorted(b.records[0]["experiments"]) == ["a", "b"]


def test_before_training_is_called_once_before_the_first_run_trains_and_not_when_all_are_finished(tmp_path):
    runs = tmp_path / "runs"
    calls: list[int] = []  # the run folders with metrics when it was called
    hook = {"before_training": lambda: calls.append(len(list(runs.rglob("metrics.json"))))}
    path = tiny_experiment(tmp_path, runs=[{}, {"seed": 1}])
    first = run_experiment(path, runs_dir=runs, **QUIET, **hook)
    assert calls == [0] and [r["status"] for r in first.records] == ["done", "done"]
    run_experiment(path, runs_dir=runs, **QUIET, **hook)  # every run finished: nothing trains
    assert calls == [0]


def test_misfit_models_are_refused_before_anything_is_written(tmp_path):
    path = tiny_experiment(tmp_path, runs=[{}, {"model": "linear-3"}])
    with pytest.raises(AelabError, match="expects images of 1x28x28 but the data has 1x8x8"):
        run_experiment(path, runs_dir=tmp_path / "runs", **QUIET)
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_two_runners_on_one_store_never_run_the_same_run_twice(tmp_path):
    path = tiny_experiment(tmp_path, "both", runs=[{"seed": s} for s in range(4)], epochs=3)
    cmd = [
        sys.executable,
        "-m",
        "aelab",
        "run",
        str(path),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--executor",
        "local",
        "--workers",
        "1",
        "--no-analysis",
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    records = load_experiment("both", tmp_path / "runs")
    assert [r["status"] for r in records] == ["done"] * 4
    assert [r["attempts"] for r in records] == [1] * 4


KILLER = """
import os, signal, sys
import aelab
from aelab.config import ExperimentConfig, parse_config, read_yaml_mapping

calls = []
def kill_in_second_run(epoch, history):  # run 1 has 6 epochs; die right after epoch 3 of run 2 is saved
    calls.append(epoch)
    if len(calls) == 6 + 3:
        os.kill(os.getpid(), signal.SIGKILL)

config = parse_config(ExperimentConfig, read_yaml_mapping(sys.argv[1]))
aelab.compare(config, {"training.epochs": 6}, runs_dir=sys.argv[2], on_epoch=kill_in_second_run, analyses=False,
              progress=False)
"""


@pytest.mark.slow
def test_kill_9_then_the_same_compare_resumes_and_matches_an_uncut_run(tmp_path):
    cfg = tmp_path / "two.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"name": "digits"},
                "training": {"batch_size": 16},
                "models": [{**SMALL, "name": "a"}, {**SMALL, "name": "b", "tied": True}],
            }
        )
    )
    root = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLER), str(cfg), str(root)], timeout=300)
    assert proc.returncode == -9
    [name] = [p.name for p in root.iterdir() if p.is_dir()]
    assert name.startswith("compare-")
    before = load_experiment(name, root)
    assert [r["status"] for r in before] == ["done", "running"]
    first = (root / before[0]["folder"] / "metrics.json").read_text()

    args = ["compare", "--config", str(cfg), "--epochs", "6", "--runs-dir", str(root), "--no-analysis", "--no-progress"]
    result = runner.invoke(app, args)  # the same command again
    assert result.exit_code == 0, result.output
    after = load_experiment(name, root)
    assert [r["status"] for r in after] == ["done", "done"] and [r["attempts"] for r in after] == [1, 2]
    assert (root / after[0]["folder"] / "metrics.json").read_text() == first  # finished run untouched
    assert after[1]["metrics"]["resumed_from"] == 3

    uncut = run_experiment(
        ExperimentConfig(
            name="uncut",
            data={"name": "digits"},
            training={"batch_size": 16},
            models=[{**SMALL, "name": "b", "tied": True}],
        ),
        {"training.epochs": 6},
        runs_dir=tmp_path / "uncut",
        **QUIET,
    ).records[0]
    assert uncut["id"] == after[1]["id"]  # same config -> same id
    for key in ("test_mse", "test_psnr", "final_train_loss"):
        assert uncut["metrics"][key] == after[1]["metrics"][key]


def test_tensorboard_logs(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = tiny_experiment(tmp_path, "tb", runs=[{}], epochs=3)
    result = run_experiment(path, runs_dir=tmp_path / "runs", tensorboard=True, **QUIET)
    acc = EventAccumulator(str(result.run_dirs[0] / "tensorboard"))
    acc.Reload()
    assert {"loss/train", "loss/validation"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss/train")] == [1, 2, 3]
    assert acc.Tags()["images"]


def test_cli_run_runs_and_show(tmp_path):
    path = tiny_experiment(tmp_path, "cli", runs=[{}, {"seed": 3}])
    result = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "r"), "--no-analysis"])
    assert result.exit_code == 0, result.output
    assert result.output.count(": done") == 2
    listing = runner.invoke(app, ["runs", "cli", "--runs-dir", str(tmp_path / "r")])
    rid = load_experiment("cli", tmp_path / "r")[0]["id"]
    assert listing.exit_code == 0 and rid in listing.output and "2 runs of cli" in listing.output
    show = runner.invoke(app, ["runs", "show", rid[:6], "--runs-dir", str(tmp_path / "r")])
    assert show.exit_code == 0 and "test_mse" in show.output and f"-{rid}" in show.output


def test_every_example_runs_with_aelab_run(tmp_path):
    """Every file in examples/ is an experiment file: it runs with 'aelab run' (on small limits)."""
    from pathlib import Path

    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        data = yaml.safe_load(path.read_text())
        dataset = (data.get("data") or {}).get("name", "fashion-mnist")
        limits = [] if dataset == "digits" else ["--dataset", "mnist", "--data-dir", str(tmp_path / "idx")]
        if limits and not (tmp_path / "idx").exists():
            from conftest import write_idx_dataset

            write_idx_dataset(tmp_path / "idx", n_train=120, n_test=40)
        extra = []
        model = data.get("model") if isinstance(data.get("model"), dict) else {}
        if (model.get("quantizer") or {}).get("prior"):  # a second stage: its VQ-VAE is trained first
            first = ["compare", "--models", "vqvae-conv", "--epochs", "1", "--name", "vq", "--no-analysis"]
            r = runner.invoke(app, [*first, "--runs-dir", str(tmp_path / "r"), "--no-progress", *limits])
            assert r.exit_code == 0, r.output
            (vq,) = [p for p in (tmp_path / "r" / "vq").iterdir() if p.is_dir()]
            extra = ["--set", f"model.quantizer.prior.vqvae={vq}"]
        result = runner.invoke(
            app,
            [
                "run",
                str(path),
                "--epochs",
                "1",
                "--runs-dir",
                str(tmp_path / "r"),
                "--no-analysis",
                "--no-progress",
                *limits,
                *extra,
            ],
        )
        assert result.exit_code == 0, (path.name, result.output, result.stderr)
        records = load_experiment(path.stem if "name" not in data else data["name"], tmp_path / "r")
        assert records and all(r["status"] == "done" for r in records), (path.name, records)


@pytest.mark.parametrize(
    "exp, extra, expected",
    [
        ({"name": "x", "trainng": {}}, [], "unknown key 'trainng'"),
        ({"name": "x", "grid": {"training.lr": []}}, [], "has an empty list"),
        ({"name": "x", "grid": {"data.size": [1]}}, [], "grid key 'data.size' is not a config field"),
        ({"name": "x"}, ["--executor", "dask"], "executor: got 'dask'; allowed: 'inline', 'local' or 'ray'"),
    ],
)
def test_cli_bad_input(tmp_path, exp, extra, expected):
    path = write_exp(tmp_path, exp)
    result = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "r"), *extra])
    assert result.exit_code == 2
    text = result.stderr.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1 and expected in text, text
    assert not (tmp_path / "r").exists()
