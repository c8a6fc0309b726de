import gzip

import pytest
import torch
from PIL import Image

from aelab.config import DataConfig
from aelab.data import load_dataset
from aelab.errors import DataError
from conftest import FASHION_DIR, has_real_fashion_mnist, make_images, write_idx_dataset


def test_idx_gz_files_read_by_torchvision(idx_dir, isolated_cache):
    ds = load_dataset(DataConfig(name="mnist", data_dir=idx_dir, val_fraction=0.25), seed=0)
    assert ds.shape == (1, 28, 28)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 30, 40)
    assert ds.train.images.dtype == torch.uint8 and ds.train.labels.dtype == torch.int64
    expected_x, expected_y = make_images(40, 1)
    assert torch.equal(ds.test.images[:, 0], torch.from_numpy(expected_x))
    assert torch.equal(ds.test.labels, torch.from_numpy(expected_y).long())
    # staged, unpacked, in torchvision's layout in the cache
    assert (isolated_cache / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_uncompressed_idx_files(tmp_path):
    folder = write_idx_dataset(tmp_path / "raw", gz=False)
    ds = load_dataset(DataConfig(name="fashion-mnist", data_dir=folder, val_fraction=0.0))
    assert len(ds.train) == 120 and len(ds.val) == 0
    assert ds.class_names[0] == "T-shirt/top"


def test_validation_split_depends_on_seed_only(idx_dir):
    a = load_dataset(DataConfig(name="mnist", data_dir=idx_dir), seed=1)
    b = load_dataset(DataConfig(name="mnist", data_dir=idx_dir), seed=1)
    c = load_dataset(DataConfig(name="mnist", data_dir=idx_dir), seed=2)
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)
    assert len(a.val) == 6  # round(120 * 0.05)


def test_truncated_idx_is_refused_and_nothing_staged(tmp_path, isolated_cache):
    folder = write_idx_dataset(tmp_path / "t", gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", data_dir=folder))
    assert "truncated or corrupted" in str(exc.value) and "train-images-idx3-ubyte" in str(exc.value)
    assert not (isolated_cache / "MNIST").exists()


def test_corrupted_gzip_and_bad_header(tmp_path):
    folder = write_idx_dataset(tmp_path / "g")
    gz = folder / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:20])
    with pytest.raises(DataError, match="corrupted or truncated"):
        load_dataset(DataConfig(name="mnist", data_dir=folder))
    folder2 = write_idx_dataset(tmp_path / "h")
    (folder2 / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"PK\x03\x04 not idx at all"))
    with pytest.raises(DataError, match="no valid uint8 IDX header"):
        load_dataset(DataConfig(name="mnist", data_dir=folder2))


def test_not_found_says_what_was_tried(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", data_dir=empty, download=False))
    msg = str(exc.value)
    assert "dataset 'mnist' not found; tried" in msg and str(empty) in msg and "--data-dir" in msg


def test_cifar10_pickle_batches(cifar_root):
    ds = load_dataset(DataConfig(name="cifar10", data_dir=cifar_root, val_fraction=0.0))
    assert ds.shape == (3, 32, 32)
    assert (len(ds.train), len(ds.test)) == (30, 8)
    # pixel (ch, r, c) of test image i = ((1000 + i) * 7 + ch * 50 + r + c) % 256
    img = ds.test.images[2]
    for ch, r, c in [(0, 0, 0), (1, 5, 3), (2, 31, 30)]:
        assert int(img[ch, r, c]) == ((1002) * 7 + ch * 50 + r + c) % 256
    assert ds.test.labels.tolist()[:3] == [0, 1, 2]
    assert ds.class_names[1] == "automobile"


def test_cifar10_corrupted_batch(cifar_root):
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupted or not in the CIFAR-10 python format"):
        load_dataset(DataConfig(name="cifar10", data_dir=cifar_root))


def test_digits_always_available():
    ds = load_dataset(DataConfig(name="digits"), seed=0)
    assert ds.shape == (1, 8, 8)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    assert len(ds.test) == round(1797 * 0.2)
    assert int(ds.train.images.max()) == 255  # 16 -> 255


def _png(path, value, size=(10, 12), mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(path)


def test_image_folder_with_classes(tmp_path):
    root = tmp_path / "imgs"
    for i in range(6):
        _png(root / "cats" / f"{i}.png", 10 * i)
        _png(root / "dogs" / f"{i}.jpg", 100 + i)
    ds = load_dataset(DataConfig(name="folder", data_dir=root, val_fraction=0.0, test_fraction=0.25))
    assert ds.shape == (1, 12, 10)
    assert ds.class_names == ["cats", "dogs"]
    assert len(ds.train) + len(ds.test) == 12 and len(ds.test) == 3
    all_labels = torch.cat([ds.train.labels, ds.test.labels])
    assert sorted(all_labels.tolist()) == [0] * 6 + [1] * 6


def test_image_folder_resize_and_grayscale(tmp_path):
    root = tmp_path / "imgs"
    _png(root / "a.png", 200, size=(20, 10), mode="RGB")
    _png(root / "b.png", 50, size=(8, 8), mode="RGB")
    _png(root / "c.png", 50, size=(8, 8), mode="RGB")
    with pytest.raises(DataError, match="different sizes"):
        load_dataset(DataConfig(name="folder", data_dir=root))
    ds = load_dataset(DataConfig(name="folder", data_dir=root, resize=(16, 16), val_fraction=0.0))
    assert ds.shape == (3, 16, 16)
    ds = load_dataset(DataConfig(name="folder", data_dir=root, resize=(16, 16), grayscale=True, val_fraction=0.0))
    assert ds.shape == (1, 16, 16)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataConfig(name="folder", data_dir=tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_dataset(DataConfig(name="folder", data_dir=tmp_path / "empty"))
    root = tmp_path / "mixed"
    _png(root / "a.png", 1)
    (root / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="'notes.txt' is not an image; allowed: .png, .jpg, .jpeg"):
        load_dataset(DataConfig(name="folder", data_dir=root))
    bad = tmp_path / "bad"  # an unreadable image is skipped and named; none readable is an error
    (bad / "b.png").parent.mkdir()
    (bad / "b.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="none of its 1 images can be read .*b.png"):
        load_dataset(DataConfig(name="folder", data_dir=bad))
    for i in range(4):
        _png(bad / f"ok{i}.png", 10 * i)
    ds = load_dataset(DataConfig(name="folder", data_dir=bad))
    assert len(ds.train) + len(ds.val) + len(ds.test) == 4
    assert len(ds.notes) == 1 and "skipped 1 file(s) that cannot be read: b.png (" in ds.notes[0]


@pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)")
def test_real_fashion_mnist_from_debian_package():
    ds = load_dataset(DataConfig(name="fashion-mnist"), seed=0)
    assert (len(ds.train) + len(ds.val), len(ds.test)) == (60000, 10000)
    assert ds.shape == (1, 28, 28)
    assert torch.bincount(ds.test.labels).tolist() == [1000] * 10
    assert str(FASHION_DIR) in ds.source
    assert 0.25 < float(ds.test.images.float().mean() / 255) < 0.3  # Fashion-MNIST's mean pixel is ~0.286
