"""MNIST and Fashion-MNIST: IDX files, checked and read by aelab (NumPy; torchvision only downloads them).

The IDX format (LeCun et al.): 2 zero bytes, a type byte (0x08 = uint8), the number of dimensions, then one
big-endian int32 per dimension, then the values. The header and the length of every file are checked, so a
truncated or corrupted file gives one clear error instead of a traceback. Compressed ``.gz`` copies (e.g.
Debian's ``dataset-fashion-mnist``) are checked, then unpacked once into aelab's cache in torchvision's layout
(``<root>/FashionMNIST/raw/train-images-idx3-ubyte``), from where later runs read them without unpacking.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from aelab.errors import DataError

IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def read_idx_bytes(path: Path) -> bytes:
    """Return the raw IDX bytes of ``path`` (gunzipped if it ends in .gz) after checking them.

    Raises:
        DataError: unreadable, not IDX, or shorter/longer than its header says.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"IDX file {str(path)!r} is corrupted or truncated ({exc}); re-install or re-download it"
        ) from None
    check_idx(raw, path)
    return raw


def check_idx(raw: bytes, path: Path, size: int | None = None) -> tuple[int, ...]:
    """Check an IDX header and the length (``size``, or the bytes given); return the dimensions.

    Raises:
        DataError: not a uint8 IDX header, or a length the header does not say.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 3:
        raise DataError(f"IDX file {str(path)!r} has no valid uint8 IDX header; expected an MNIST-format file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"IDX file {str(path)!r} is truncated inside its header")
    dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims))
    length = len(raw) if size is None else size
    if length != expected:
        raise DataError(
            f"IDX file {str(path)!r} is truncated or corrupted: {length} bytes, header {dims} says {expected}"
        )
    return dims


def find_idx_files(folder: Path, torchvision_name: str) -> dict[tuple[str, str], Path] | None:
    """The four IDX files in ``folder`` (flat, raw or .gz) or in torchvision's layout; None if incomplete."""
    for base in (folder / torchvision_name / "raw", folder):
        found = {}
        for key, stem in IDX_FILES.items():
            for candidate in (base / stem, base / f"{stem}.gz"):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(IDX_FILES):
            return found
    return None


def stage_idx_files(files: dict[tuple[str, str], Path], cache_root: Path, torchvision_name: str) -> Path:
    """Check the files and make sure torchvision's layout under ``cache_root`` holds them unpacked.

    Returns the root to hand to torchvision. Files already in that layout are used where they are.
    """
    raw_dir = cache_root / torchvision_name / "raw"
    if all(path.parent == raw_dir for path in files.values()) and not any(p.suffix == ".gz" for p in files.values()):
        return cache_root
    staged = {key: raw_dir / IDX_FILES[key] for key in files}
    if all(t.is_file() and t.stat().st_mtime >= files[k].stat().st_mtime for k, t in staged.items()):
        return cache_root  # unpacked before from these sources (read_idx_file checks them when reading)
    contents = {key: read_idx_bytes(path) for key, path in files.items()}  # check all before writing
    raw_dir.mkdir(parents=True, exist_ok=True)
    for key, data in contents.items():
        target = raw_dir / IDX_FILES[key]
        if target.is_file() and target.stat().st_size == len(data):
            continue
        fd, tmp = tempfile.mkstemp(dir=raw_dir, prefix=".staging-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    return cache_root


def read_idx_file(path: Path) -> np.ndarray:
    """The uint8 array in an unpacked IDX file (its header and length checked), read without unpacking anything.

    Raises:
        DataError: not an IDX file, or truncated.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            header = head + f.read(4 * ndim)
    except OSError as exc:
        raise DataError(f"IDX file {str(path)!r} cannot be read ({exc})") from None
    dims = check_idx(header, path, size=path.stat().st_size)
    return np.fromfile(path, dtype=np.uint8, offset=len(header)).reshape(dims)


def load_torchvision_idx(name: str, root: Path, download: bool = False) -> tuple:
    """Read train and test splits from ``root`` in torchvision's layout (``download``: torchvision's MNIST /
    FashionMNIST class fetches them first).

    Returns:
        (train_images, train_labels, test_images, test_labels, class_names); images uint8 (N, 1, 28, 28).

    Raises:
        DataError: a file that is missing, not IDX, or truncated.
    """
    if download:
        from torchvision import datasets

        for train in (True, False):
            getattr(datasets, TORCHVISION_CLASS[name])(root=str(root), train=train, download=True)
    raw = Path(root) / TORCHVISION_CLASS[name] / "raw"
    out = []
    for split in ("train", "test"):
        images = read_idx_file(raw / IDX_FILES[(split, "images")])
        labels = read_idx_file(raw / IDX_FILES[(split, "labels")])
        out += [torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))]
    return (*out, [])
