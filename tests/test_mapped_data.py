"""Image sets larger than memory: a folder decoded once into a uint8 .npy in the data cache (keyed by its files),
read in memory when small and memory-mapped when large, with the same splits, batches and trained weights either
way; a cut build is never trusted; the pages a mapped read touches leave the process's resident memory."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import DataConfig, MLPSpec, ModelConfig, TrainingConfig
from aelab.data import image_folder, load_dataset
from aelab.data.mapped import MappedImages, open_images
from aelab.errors import DataError
from aelab.evaluation import evaluate, mean_image_mse
from aelab.models import build_model
from aelab.training import train
from conftest import error_line

runner = CliRunner()


def _folder(root: Path, n: int = 40, size: int = 8) -> Path:
    """Two classes of n/2 grey PNGs each, a gradient plus noise."""
    rng = np.random.default_rng(1)
    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(n // 2):
            base = np.linspace(0, 200, size * size).reshape(size, size) * (1 + c) / 2
            pixels = (base + rng.integers(0, 50, (size, size))).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / name / f"{i:03d}.png")
    return root


def _cache_files(cache: Path) -> list[str]:
    folder = cache / "images"
    return sorted(p.name.split(".", 1)[1] for p in folder.iterdir()) if folder.is_dir() else []


def test_a_folder_is_decoded_once_and_again_when_a_file_changes(tmp_path, isolated_cache, monkeypatch):
    root = _folder(tmp_path / "pics")
    first = load_dataset(DataConfig(name="folder", data_dir=root))
    assert _cache_files(isolated_cache) == ["json", "labels.npy", "npy"]
    record = next((isolated_cache / "images").glob("*.json"))
    assert json.loads(record.read_text())["rows"] == 40

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    with monkeypatch.context() as patch:
        patch.setattr(image_folder, "_build", no_decoding)
        again = load_dataset(DataConfig(name="folder", data_dir=root))
    assert torch.equal(first.train.images, again.train.images) and first.class_names == again.class_names == ["a", "b"]
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / "a" / "000.png")  # a new file content and size
    changed = load_dataset(DataConfig(name="folder", data_dir=root, val_fraction=0, test_fraction=0.5))
    assert len(list((isolated_cache / "images").glob("*.json"))) == 2
    every = torch.cat([changed.train.images, changed.test.images])
    assert int((every.flatten(1) == 0).all(1).sum()) == 1  # the new, all-black image is read


def test_a_cut_build_leaves_nothing_that_is_trusted(tmp_path, isolated_cache, monkeypatch):
    root = _folder(tmp_path / "pics", n=40)
    monkeypatch.setattr(image_folder, "CHUNK", 8)
    real = image_folder.partial_decode
    calls = {"n": 0}

    def cut_after_two_chunks(*args):
        decode = real(*args)

        def maybe(p):
            calls["n"] += 1
            if calls["n"] > 16:
                raise KeyboardInterrupt
            return decode(p)

        return maybe

    monkeypatch.setattr(image_folder, "partial_decode", cut_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(DataConfig(name="folder", data_dir=root))
    assert _cache_files(isolated_cache) == []  # no .partial, no record
    monkeypatch.setattr(image_folder, "partial_decode", real)
    assert len(load_dataset(DataConfig(name="folder", data_dir=root, val_fraction=0)).train) == 32


def test_mapped_splits_hold_the_same_images_and_train_to_the_same_weights(tmp_path):
    root = _folder(tmp_path / "pics", n=60)
    in_memory = load_dataset(DataConfig(name="folder", data_dir=root), seed=3)
    mapped = load_dataset(DataConfig(name="folder", data_dir=root, memory_map_above_gb=0), seed=3)
    for a, b in ((in_memory.train, mapped.train), (in_memory.val, mapped.val), (in_memory.test, mapped.test)):
        assert not a.mapped and b.mapped and len(a) == len(b) > 0
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert torch.equal(mapped.train.read(torch.tensor([5, 0, 3])), in_memory.train.images[[5, 0, 3]])
    weights = []
    for dataset in (in_memory, mapped):
        torch.manual_seed(0)
        model = build_model(ModelConfig(spec=MLPSpec(hidden=[16], code_size=4)), dataset.shape)
        train(model, dataset, TrainingConfig(epochs=2, batch_size=8), seed=0, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        assert evaluate(model, dataset.test)["images"] == len(dataset.test)
    assert torch.equal(weights[0], weights[1])  # the same batches in the same order
    assert mean_image_mse(mapped.train, mapped.test) == pytest.approx(
        mean_image_mse(in_memory.train, in_memory.test), rel=1e-6
    )


def test_a_uint8_npy_is_an_image_set_read_in_memory_or_mapped(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 6, 5), dtype=np.uint8)
    np.save(tmp_path / "faces.npy", images)
    for limit in (2.0, 0.0):
        ds = load_dataset(
            DataConfig(name="array", data_dir=tmp_path / "faces.npy", val_fraction=0, memory_map_above_gb=limit)
        )
        assert ds.shape == (1, 6, 5) and not ds.is_vectors and ds.standardization is None
        assert ds.train.mapped == (limit == 0.0)
        together = torch.cat([ds.train.images, ds.test.images])
        assert sorted(map(bytes, together.numpy())) == sorted(map(bytes, images[:, None]))


def test_bad_npy_images_are_refused_in_one_line(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2, 2), np.float64))
    with pytest.raises(DataError, match="holds float64 \\(3, 2, 2\\); images must be uint8"):
        MappedImages(tmp_path / "x.npy")
    (tmp_path / "y.npy").write_bytes(b"not a npy file")
    with pytest.raises(DataError, match="cannot read .* as a .npy file"):
        open_images(tmp_path / "y.npy")


def _rss_file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_pages_read_from_a_mapped_file_leave_resident_memory(tmp_path):
    np.save(tmp_path / "big.npy", np.ones((1024, 1, 256, 256), np.uint8))  # 64 MiB
    mapped = MappedImages(tmp_path / "big.npy")
    before = _rss_file_kb()
    assert int(mapped.read(torch.arange(512)).sum()) == 512 * 256 * 256  # 32 MiB: under RELEASE_BYTES
    touched = _rss_file_kb() - before
    mapped.release()
    left = _rss_file_kb() - before
    assert touched > 30_000 and left < 2_000, (touched, left)
    for start in range(0, 1024, 128):  # 64 MiB in reads of 8 MiB: handed back once RELEASE_BYTES were read
        mapped.read(torch.arange(start, start + 128))
    assert _rss_file_kb() - before < 2_000


def test_a_mapped_folder_trains_from_the_cli(tmp_path):
    root = _folder(tmp_path / "pics")
    args = [
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        str(root),
        "--epochs",
        "1",
        "--no-analysis",
        "--model",
        "res-16",
    ]
    args += ["--runs-dir", str(tmp_path / "runs"), "--set", "data.memory_map_above_gb=0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("metrics.json")]
    assert [r["test_mse"] > 0 for r in records if isinstance(r, dict) and "test_mse" in r] == [True]
    bad = runner.invoke(app, [*args[:-2], "--set", "data.memory_map_above_gb=-1"])
    assert bad.exit_code == 2 and "memory_map_above_gb" in error_line(bad)
    assert os.environ.get("AELAB_DATA")  # the cache went to the test's folder


def _with_bad_files(root: Path) -> Path:
    """The two-class folder plus a corrupt file (no image header) and a truncated PNG (its header reads)."""
    _folder(root)
    (root / "a" / "zz-corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    whole = (root / "b" / "000.png").read_bytes()
    (root / "b" / "zz-truncated.png").write_bytes(whole[: len(whole) // 2])
    return root


def test_unreadable_files_are_skipped_and_named_or_refused_in_one_line(tmp_path):
    root = _with_bad_files(tmp_path / "pics")
    ds = load_dataset(DataConfig(name="folder", data_dir=root, val_fraction=0))
    assert len(ds.train) + len(ds.test) == 40
    [note] = ds.notes
    assert "skipped 2 file(s) that cannot be read: a/zz-corrupt.png (" in note and "b/zz-truncated.png (" in note
    for strict in ("cached", "fresh"):  # refused from the cache's record, and while decoding a fresh folder
        if strict == "fresh":
            (root / "a" / "zz-corrupt.png").unlink()
        with pytest.raises(DataError) as err:
            load_dataset(DataConfig(name="folder", data_dir=root, unreadable="error"))
        first = "a/zz-corrupt.png" if strict == "cached" else "b/zz-truncated.png"
        assert f"cannot read {first!r} (" in str(err.value) and "data.unreadable=skip" in str(err.value)


def test_a_corrupt_image_with_unreadable_error_exits_2_and_records_nothing(tmp_path):
    root = _with_bad_files(tmp_path / "pics")
    args = ["train", "--dataset", "folder", "--data-dir", str(root), "--epochs", "1", "--model", "res-16"]
    result = runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs"), "--unreadable", "error"])
    assert result.exit_code == 2 and "cannot read 'a/zz-corrupt.png'" in error_line(result)
    assert not (tmp_path / "runs").exists()
