"""A user's own images end to end: transparency composited onto a background, unreadable files named, the
preprocessing stored with the model and its ONNX files, runs analysed from any directory, and the rough edges a
newcomer found (markup in paths, YAML errors, file modes, failed runs and their exit code)."""

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import DataConfig
from aelab.data import load_dataset
from conftest import error_line, write_idx_dataset

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _icons(root: Path, size: int = 12) -> Path:
    """Two classes of 12x12 PNGs in every mode a theme has (RGBA, LA, palette with a transparent colour, grey,
    RGB), one broken link, one corrupt file and one 2x30 strip. Transparent pixels hide random colours."""
    rng = np.random.default_rng(0)
    for cls in ("apps", "places"):
        folder = root / cls
        folder.mkdir(parents=True)
        for i in range(4):
            rgba = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
            rgba[:, : size // 2, 3] = 0  # left half fully transparent over random colours
            rgba[:, size // 2 :, 3] = 255
            Image.fromarray(rgba, "RGBA").save(folder / f"rgba{i}.png")
            la = np.stack([rgba[..., 0], rgba[..., 3]], -1)
            Image.fromarray(la, "LA").save(folder / f"la{i}.png")
            pal = Image.fromarray(rng.integers(1, 8, (size, size), dtype=np.uint8), "P")
            pal.putpalette(list(rng.integers(0, 256, 768, dtype=np.uint8)))
            pal.info["transparency"] = 3  # index 3 is transparent
            pal.save(folder / f"palette{i}.png", transparency=3)
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(folder / f"grey{i}.png")
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(folder / f"rgb{i}.png")
    (root / "apps" / "broken.png").symlink_to(root / "apps" / "nowhere.png")
    (root / "apps" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(rng.integers(0, 256, (30, 2, 3), dtype=np.uint8), "RGB").save(root / "places" / "strip.png")
    return root


def test_transparency_is_composited_onto_the_background_and_skipped_files_are_named(tmp_path):
    root = _icons(tmp_path / "icons")
    ds = load_dataset(DataConfig(name="folder", data_dir=root, resize=(12, 12), val_fraction=0, test_fraction=0.1))
    assert ds.shape == (3, 12, 12) and len(ds.train) + len(ds.test) == 2 * 20 + 1  # the strip is resized
    [note] = ds.notes
    assert "skipped 2 file(s) that cannot be read: apps/broken.png (a broken link), apps/corrupt.png (" in note
    assert "1 image(s) squashed by the resize (aspect ratio changed by more than 1.5x): places/strip.png" in note
    white = load_dataset(DataConfig(name="folder", data_dir=root / "apps", val_fraction=0, test_fraction=0.5))
    black = load_dataset(
        DataConfig(name="folder", data_dir=root / "apps", val_fraction=0, test_fraction=0.5, background="black")
    )
    for ds, value in ((white, 255), (black, 0)):
        images = torch.cat([ds.train.images, ds.test.images])
        # RGBA and LA files: their transparent left half is the background, whatever colour was stored under it
        left = images[..., : 12 // 2]
        uniform = [(left[i] == value).all() for i in range(len(images))]
        assert sum(bool(u) for u in uniform) == 8  # 4 RGBA + 4 LA images of class apps
    # the palette's transparent index shows the background too
    pal = load_dataset(DataConfig(name="folder", data_dir=_palette_only(tmp_path), val_fraction=0, test_fraction=0.5))
    assert (torch.cat([pal.train.images, pal.test.images]) == 255).all()


def _palette_only(tmp_path: Path) -> Path:
    folder = tmp_path / "pal"
    folder.mkdir()
    for i in range(3):
        img = Image.new("P", (6, 6), 3)
        img.putpalette([10, 20, 30] * 256)
        img.save(folder / f"{i}.png", transparency=3)
    return folder


def test_own_images_train_with_resize_and_say_what_was_skipped(tmp_path):
    root = _icons(tmp_path / "icons")
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            str(root),
            "--resize",
            "12",
            "12",
            "--model",
            "res-16",
            "--epochs",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "i",
            "--no-analysis",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "note: skipped 2 file(s) that cannot be read: apps/broken.png" in r.output
    [run] = [p for p in (tmp_path / "runs" / "i").iterdir() if p.is_dir()]
    prep = json.loads((run / "model" / "config.json").read_text())["preprocessing"]
    assert prep["mode"] == "RGB" and (prep["height"], prep["width"]) == (12, 12) and prep["background"] == "#ffffff"


@pytest.mark.slow
def test_exported_encoder_with_the_documented_preprocessing_gives_the_codes_of_aelab_encode(tmp_path):
    import onnxruntime  # noqa: F401  (the snippet needs it)

    root = _icons(tmp_path / "icons")
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            str(root),
            "--resize",
            "12",
            "12",
            "--model",
            "res-16",
            "--epochs",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "i",
            "--no-analysis",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    [run] = [p for p in (tmp_path / "runs" / "i").iterdir() if p.is_dir()]
    assert runner.invoke(app, ["export", str(run), "--format", "onnx", "-o", str(tmp_path / "export")]).exit_code == 0
    files = sorted((root / "apps").glob("*[0-9].png"))
    r = runner.invoke(
        app, ["encode", str(run), *map(str, files), "--bits", "32", "-o", str(tmp_path / "c.npz"), "--resize"]
    )
    assert r.exit_code == 0, r.output
    expected = np.load(tmp_path / "c.npz")["codes"]
    snippet = _block(DOCS / "guide" / "applying.md", "<!-- onnx-snippet -->")
    got = []
    for f in files:
        scope: dict = {}
        code = snippet.replace('"export/encoder.onnx"', repr(str(tmp_path / "export" / "encoder.onnx")))
        exec(code.replace('"icon.png"', repr(str(f))), scope)
        got.append(scope["code"][0])
    assert np.abs(np.stack(got) - expected).max() <= 1e-5


def _block(path: Path, marker: str) -> str:
    """The fenced code block after ``marker`` in a Markdown file."""
    text = path.read_text()
    after = text[text.index(marker) :]
    return re.search(r"```(?:python|bash)\n(.*?)```", after, re.S).group(1)


# ---------------------------------------------------------------------------------------------------- the bugs
@pytest.mark.parametrize("name", ["scans[/old]", "scans[old]", "x[bold]y]"])
def test_user_text_is_printed_verbatim(tmp_path, name):
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            str(tmp_path / name),
            "--model",
            "conv-64",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert r.exit_code == 2 and str(tmp_path / name) in error_line(r)
    assert "'aelab[onnx]'" in runner.invoke(app, ["export", "--help"], terminal_width=300).output


def test_a_name_with_markup_is_printed_as_it_is(tmp_path):
    idx = write_idx_dataset(tmp_path / "idx", n_train=80, n_test=20)
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            str(idx),
            "--epochs",
            "1",
            "--set",
            "model.name=[bold]m[/bold]",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--no-analysis",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "[bold]m[/bold]: test MSE" in r.output


def test_a_relative_data_dir_is_stored_absolute_and_runs_are_analysed_from_anywhere(tmp_path, monkeypatch):
    _icons(tmp_path / "work" / "icons")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            "icons",
            "--resize",
            "12",
            "12",
            "--model",
            "res-16",
            "--epochs",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "i",
            "--no-analysis",
        ],
    )
    assert r.exit_code == 0, r.output
    [run] = [p for p in (tmp_path / "runs" / "i").iterdir() if p.is_dir()]
    assert f"data_dir: {tmp_path / 'work' / 'icons'}" in (run / "run.yaml").read_text()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert runner.invoke(app, ["failures", str(run)]).exit_code == 0
    (tmp_path / "work" / "icons").rename(tmp_path / "moved")  # the data moved: say where it is now
    from aelab.data import registry

    registry._LOADED.clear()  # a new command is a new process: nothing loaded yet
    r = runner.invoke(app, ["failures", str(run)])
    assert r.exit_code == 2 and "does not exist" in error_line(r) and "--data-dir" in error_line(r)
    r = runner.invoke(app, ["failures", str(run), "--data-dir", "../moved"])
    assert r.exit_code == 0, r.output


def test_yaml_errors_keep_their_place(tmp_path):
    (tmp_path / "t.yaml").write_text("model:\n\tname: x\n")
    r = runner.invoke(app, ["run", str(tmp_path / "t.yaml"), "--runs-dir", str(tmp_path / "runs")])
    line = error_line(r)
    assert r.exit_code == 2 and "line 2, column 1: found character '\\t' that cannot start any token" in line
    assert "(while scanning for the next token)" in line


def test_a_file_where_a_folder_is_expected_is_named(tmp_path):
    Image.new("L", (4, 4)).save(tmp_path / "one.png")
    r = runner.invoke(app, ["train", "--dataset", "folder", "--data-dir", str(tmp_path / "one.png")])
    assert r.exit_code == 2 and "is a file, and dataset 'folder' reads a folder of PNG/JPEG images" in error_line(r)


def test_written_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        idx = write_idx_dataset(tmp_path / "idx", n_train=80, n_test=20)
        r = runner.invoke(
            app,
            [
                "train",
                "--dataset",
                "mnist",
                "--data-dir",
                str(idx),
                "--epochs",
                "1",
                "--model",
                "conv-64",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--name",
                "m",
            ],
        )
        assert r.exit_code == 0, r.output
        [run] = [p for p in (tmp_path / "runs" / "m").iterdir() if p.is_dir()]
        r = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "export")])
        assert r.exit_code == 0, r.output
        files = [
            p
            for p in [*(tmp_path / "runs").rglob("*"), *(tmp_path / "export").rglob("*")]
            if p.is_file() and p.name != "aelab.sqlite" and not p.name.startswith("aelab.sqlite")
        ]
        names = {p.name for p in files}
        assert {"report.html", "metrics.json", "run.yaml", "config.json", "model.safetensors", "checkpoint.pt"} <= names
        assert {
            p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files if stat.S_IMODE(p.stat().st_mode) != 0o644
        } == {}
    finally:
        os.umask(old)


class Anything:
    """A Python object: what a checkpoint must never make aelab load."""


def _cut_after_first_epoch(tmp_path, idx, epochs=3):
    """Run ``train --model linear-3 --epochs N --name v`` and cut it after its first checkpoint (the runner's
    process 'dies': the store's claim is released as a killed runner's would be)."""
    from aelab.experiments.folders import store_path
    from aelab.experiments.jobs import run_experiment
    from aelab.experiments.store import RunStore

    def cut(epoch, history):
        raise KeyboardInterrupt

    from aelab.config import ExperimentConfig

    exp = ExperimentConfig(
        name="v", models=["linear-3"], data={"name": "mnist", "data_dir": str(idx)}, training={"epochs": epochs}
    )
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, runs_dir=tmp_path / "runs", on_epoch=cut, analyses=False, log=lambda m: None)
    with RunStore(store_path(tmp_path / "runs")) as store:
        store._db.execute("UPDATE runs SET status='pending', pid=NULL")
    [run] = [p for p in (tmp_path / "runs" / "v").iterdir() if p.is_dir()]
    return run


def _train_again(tmp_path, idx):
    """The same ``train`` command again, as a user runs it after the cut."""
    argv = ["train", "--model", "linear-3", "--epochs", "3", "--name", "v", "--dataset", "mnist"]
    return runner.invoke(app, [*argv, "--data-dir", str(idx), "--runs-dir", str(tmp_path / "runs"), "--no-analysis"])


def test_resume_says_which_runs_resume_and_from_which_epoch(tmp_path):
    idx = write_idx_dataset(tmp_path / "idx", n_train=80, n_test=20)
    _cut_after_first_epoch(tmp_path, idx)
    r = _train_again(tmp_path, idx)
    assert r.exit_code == 0, r.output
    assert "linear-3: resumes after epoch 1 of 3" in r.output


def test_a_command_whose_runs_failed_exits_1_and_says_what_to_do(tmp_path):
    idx = write_idx_dataset(tmp_path / "idx", n_train=80, n_test=20)
    run = _cut_after_first_epoch(tmp_path, idx)

    torch.save({"model": Anything()}, run / "checkpoint.pt")  # a torch file that holds a Python object
    r = _train_again(tmp_path, idx)
    assert r.exit_code == 1, r.output
    flat = " ".join(r.output.split())
    assert (
        "is not an aelab checkpoint: it holds Python objects, which aelab never loads; delete it to restart the "
        "run from scratch" in flat
    )
    help_text = " ".join(runner.invoke(app, ["--help"]).output.split())
    assert "Exit codes: 0 done; 1 some runs failed" in help_text


def test_failed_analyses_are_listed_in_the_report(tmp_path, monkeypatch):
    import aelab.evaluation.latent as latent

    def broken(*args, **kwargs):
        raise RuntimeError("heatmap broke")

    monkeypatch.setattr(latent, "code_heatmap", broken)
    idx = write_idx_dataset(tmp_path / "idx", n_train=80, n_test=20)
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            str(idx),
            "--epochs",
            "1",
            "--model",
            "conv-pool",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "a",
        ],
    )
    assert r.exit_code == 0, r.output
    html = (tmp_path / "runs" / "a" / "report.html").read_text()
    assert "Analyses that failed:" in html and "analysis heatmap failed: RuntimeError: heatmap broke" in html
    assert "Analyses that do not apply to this run:" in html and "manifold: its code does not have exactly 2" in html


def test_unreasonable_settings_are_warned_about_before_training(tmp_path):
    idx = write_idx_dataset(tmp_path / "idx", n_train=40, n_test=20)
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "mnist",
            "--data-dir",
            str(idx),
            "--epochs",
            "1",
            "--batch-size",
            "500",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--no-analysis",
        ],
    )
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "note: the batch size 500 is larger than the 38 training images" in flat
    assert "note: the validation split has only 2 images" in flat


def test_a_class_with_two_images_no_longer_breaks_the_default_analyses(tmp_path):
    root = tmp_path / "few"
    rng = np.random.default_rng(0)
    for cls, n in (("many", 30), ("two", 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(root / cls / f"{i}.png")
    cfg = tmp_path / "spec.yaml"
    cfg.write_text("model: {spec: {type: mlp, hidden: [16], code_size: 4}}\n")
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            str(root),
            "--config",
            str(cfg),
            "--epochs",
            "1",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "f",
        ],
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "runs" / "f" / "metrics.json").read_text())
    assert "analysis_errors" not in metrics["runs"][0], metrics["runs"][0].get("analysis_errors")
