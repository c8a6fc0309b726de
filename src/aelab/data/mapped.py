"""Images on disk, memory-mapped: a uint8 ``.npy`` of ``(N, C, H, W)`` (or ``(N, H, W)``) read a batch of rows at a
time, so an image set larger than memory trains without being loaded.

The pages a read touches are handed back to the kernel (``madvise(MADV_DONTNEED)``) after every
:data:`RELEASE_BYTES` read: they stay in the page cache, shared and reclaimable, but stop counting in the
process's resident memory, which stays flat however many epochs go through the file.
"""

from __future__ import annotations

import math
import mmap
import threading
from pathlib import Path

import numpy as np
import torch

from aelab.errors import DataError

RELEASE_BYTES = 64 << 20
"""Bytes read between two hand-backs of the mapped pages."""


def npy_header(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, offset of the data)`` from a ``.npy`` file's header.

    Raises:
        DataError: the file is not a ``.npy`` file.
    """
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            return tuple(shape), bool(fortran), np.dtype(dtype), f.tell()
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {str(path)!r} as a .npy file ({exc})") from None


class MappedImages:
    """A uint8 ``.npy`` of images, memory-mapped (copy-on-write: nothing is ever written back).

    Args:
        path: the file: uint8, C order, shape ``(N, C, H, W)`` or ``(N, H, W)`` (one channel).
        rows: use only the first ``rows`` images (a cache allocated for more files than could be read).

    Attributes:
        tensor: uint8 ``(N, C, H, W)`` over the mapped file (reading it touches the disk's pages).

    Raises:
        DataError: not such a file.
    """

    def __init__(self, path: Path | str, rows: int | None = None) -> None:
        self.path = Path(path)
        shape, fortran, dtype, offset = npy_header(self.path)
        if dtype != np.uint8 or fortran or len(shape) not in (3, 4):
            raise DataError(
                f"{str(self.path)!r} holds {dtype} {shape}{' (Fortran order)' if fortran else ''}; images must be "
                "uint8 (N, C, H, W) or (N, H, W) in C order"
            )
        with self.path.open("rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        array = np.frombuffer(self._map, dtype=np.uint8, count=math.prod(shape), offset=offset)
        full = torch.from_numpy(array).view(shape[0], -1, shape[-2], shape[-1])
        self.tensor = full if rows is None else full[:rows]
        self._lock = threading.Lock()
        self._since_release = 0

    def __len__(self) -> int:
        return self.tensor.shape[0]

    @property
    def shape(self) -> torch.Size:
        return self.tensor.shape

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8

    def dim(self) -> int:
        return 4

    def read(self, rows: torch.Tensor) -> torch.Tensor:
        """uint8 ``(len(rows), C, H, W)``: the images at ``rows`` (int64, best ascending), copied into memory.
        Safe to call from several threads."""
        with self._lock:
            out = self.tensor.index_select(0, rows)
            self._since_release += out.numel()
            if self._since_release >= RELEASE_BYTES:
                self._release()
        return out

    def release(self) -> None:
        """Hand the mapped pages read so far back to the kernel (they leave this process's resident memory)."""
        with self._lock:
            self._release()

    def _release(self) -> None:
        self._map.madvise(mmap.MADV_DONTNEED)
        self._since_release = 0

    def fingerprint(self) -> str:
        """Identifies the file's content for caches: path, size and modification time."""
        st = self.path.stat()
        return f"{self.path}|{st.st_size}|{st.st_mtime_ns}|{len(self)}"


def open_images(path: Path, rows: int | None = None, map_above_gb: float = 2.0) -> torch.Tensor | MappedImages:
    """The images of a uint8 ``.npy``: read into memory when they take at most ``map_above_gb`` GB, else
    memory-mapped (:class:`MappedImages`).

    Args:
        path: uint8 ``(N, C, H, W)`` or ``(N, H, W)``, C order.
        rows: use only the first ``rows`` images.

    Raises:
        DataError: not such a file.
    """
    mapped = MappedImages(path, rows)
    if mapped.tensor.numel() > map_above_gb * 1e9:
        return mapped
    images = torch.empty_like(mapped.tensor)
    rows_per_part = max(1, RELEASE_BYTES // max(1, mapped.tensor[0].numel()))
    for part, source in zip(images.split(rows_per_part), mapped.tensor.split(rows_per_part)):
        part.copy_(source)  # front to back, handing the pages back as it goes
        mapped.release()
    return images
