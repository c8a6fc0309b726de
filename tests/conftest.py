"""Shared fixtures: files in the real dataset formats, written small, and an isolated data cache."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # README's test command runs the tests on pytest-xdist workers, one per core, a module's tests on one worker
    # (--dist loadfile: a module-scoped fixture is made once; every Ray test is in tests/test_ray.py): each worker
    # (and the aelab processes it starts) gets its share of the cores as torch threads, set before anything
    # imports torch, so the workers do not oversubscribe the machine.
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With AELAB_REQUIRE_ALL=1 (set by .ci/run), a skipped test marked ``requires(...)`` (Chromium, Ray, the real
    Fashion-MNIST) is a failure: in CI those are installed, so a skip means something is broken."""
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("requires")
    if report.skipped and marker is not None and os.environ.get("AELAB_REQUIRE_ALL") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped, but CI requires {marker.args[0]}: {report.longrepr}"


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """aelab's data cache in a temp folder for the whole session (set before any module-scoped fixture runs),
    so no test ever writes into the user's ~/.cache/aelab."""
    cache = tmp_path_factory.mktemp("aelab-session-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AELAB_DATA", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def isolated_cache(session_cache, tmp_path_factory, monkeypatch):
    """A fresh, empty data cache for each test."""
    cache = tmp_path_factory.mktemp("aelab-cache")
    monkeypatch.setenv("AELAB_DATA", str(cache))
    return cache


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file (uint8) holding ``array``: 0, 0, 0x08, ndim, big-endian dims, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_images(n: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Structured images (a bright square whose position depends on the label) plus labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 30, (n, size, size)).astype(np.uint8)
    for i, y in enumerate(labels):
        r, c = 2 + (y // 5) * 12, 2 + (y % 5) * 5
        images[i, r : r + 10, c : c + 5] = 200 + y * 5
    return images, labels.astype(np.uint8)


def write_idx_dataset(folder: Path, n_train: int = 120, n_test: int = 40, gz: bool = True) -> Path:
    """The four MNIST-format files, flat in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    tr_x, tr_y = make_images(n_train, 0)
    te_x, te_y = make_images(n_test, 1)
    for stem, arr in [
        ("train-images-idx3-ubyte", tr_x),
        ("train-labels-idx1-ubyte", tr_y),
        ("t10k-images-idx3-ubyte", te_x),
        ("t10k-labels-idx1-ubyte", te_y),
    ]:
        data = idx_bytes(arr)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return folder


def write_cifar_dataset(root: Path, per_batch: int = 6, n_test: int = 8) -> Path:
    """cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta in CIFAR-10's pickle format.

    Pixel (r, c) of channel ch of image i holds (i * 7 + ch * 50 + r + c) % 256, so layout can be checked.
    """
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)

    def batch(n, offset):
        imgs = np.zeros((n, 3, 32, 32), dtype=np.uint8)
        for i in range(n):
            for ch in range(3):
                imgs[i, ch] = ((offset + i) * 7 + ch * 50 + np.add.outer(np.arange(32), np.arange(32))) % 256
        return {
            "data": imgs.reshape(n, 3072),
            "labels": [(offset + i) % 10 for i in range(n)],
            "batch_label": "test",
            "filenames": [f"img{offset + i}.png" for i in range(n)],
        }

    for b in range(5):
        with open(base / f"data_batch_{b + 1}", "wb") as f:
            pickle.dump(batch(per_batch, b * per_batch), f)
    with open(base / "test_batch", "wb") as f:
        pickle.dump(batch(n_test, 1000), f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump(
            {
                "label_names": [
                    "airplane",
                    "automobile",
                    "bird",
                    "cat",
                    "deer",
                    "dog",
                    "frog",
                    "horse",
                    "ship",
                    "truck",
                ],
                "num_cases_per_batch": per_batch,
            },
            f,
        )
    return root


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    return write_idx_dataset(tmp_path / "idx")


@pytest.fixture
def cifar_root(tmp_path) -> Path:
    return write_cifar_dataset(tmp_path / "cifar")


def has_real_fashion_mnist() -> bool:
    return all((FASHION_DIR / f).is_file() for f in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"])


def error_line(result) -> str:
    """The one 'error: ...' line a CLI result printed on stderr (asserting there is exactly one)."""
    text = result.stderr.strip()
    assert text.startswith("error:"), text
    assert len(text.splitlines()) == 1, text
    return text
