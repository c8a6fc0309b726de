"""A folder of the user's own PNG/JPEG images.

Layout: images directly in the folder (one class), or one sub-folder per class (sub-folder names become
class names, in sorted order). Hidden files are skipped; a file that is not a PNG/JPEG is an error; an image
that cannot be read (corrupt, a broken link) is skipped and named in the dataset's notes. Each image is read
as :mod:`aelab.data.images` says (transparency onto the background, grey or RGB, resized).

A folder is decoded once, by a few threads and with a progress bar, into a uint8 ``.npy`` in aelab's data cache
(``$AELAB_DATA/images/``), keyed by its file list, sizes and modification times and the reading options; later
runs read that file, in memory or memory-mapped (:mod:`aelab.data.mapped`) when it is large.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aelab.data.images import GREY_MODES, IMAGE_SUFFIXES, ReadReport, open_image, to_array
from aelab.errors import DataError
from aelab.io import atomic_write, atomic_write_text, cache_dir


def _files(folder: Path) -> list[Path]:
    if not folder.exists() and not folder.is_symlink():
        raise DataError(f"image folder {str(folder)!r} does not exist; give --data-dir a folder of PNG/JPEG images")
    if not folder.is_dir():
        raise DataError(
            f"--data-dir {str(folder)!r} is a file, and dataset 'folder' reads a folder of PNG/JPEG "
            "images (directly, or one sub-folder per class); give the folder that holds it"
        )
    files = sorted(
        p
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink())
        and not p.is_dir()
        and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    )
    if not files:
        raise DataError(
            f"image folder {str(folder)!r} is empty; it needs PNG/JPEG images (directly, or one sub-folder per class)"
        )
    for p in files:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(
                f"image folder {str(folder)!r}: {str(p.relative_to(folder))!r} is not an image; "
                f"allowed: {', '.join(IMAGE_SUFFIXES)} files"
            )
    return files


FORMAT = 1
"""Version of the cache layout; a new one makes every cached folder decode again."""
CHUNK = 512
"""Files decoded per round of the thread pool."""


@dataclass
class CachedFolder:
    """A folder decoded into aelab's data cache.

    Attributes:
        path: the uint8 ``.npy`` ``(rows or more, C, H, W)``; its first ``rows`` images are the folder's.
        rows: how many images could be read.
        labels: int64 ``(rows,)`` class indices.
        class_names: sub-folder names in sorted order (``(root)`` first for files directly in the folder; ``all``
            without sub-folders).
        notes: what reading skipped or squashed, one line (or none).
    """

    path: Path
    rows: int
    labels: torch.Tensor
    class_names: list[str]
    notes: list[str]
    unreadable: list[tuple[str, str]]
    """(file, why) of each file that could not be read, skipped."""


def cache_key(folder: Path, files: list[Path], resize, grayscale: bool, background: str | None) -> str:
    """What a decoded folder depends on: its file list, sizes and modification times, and how files are read."""
    listing = [(str(p.relative_to(folder)), *_stat(p)) for p in files]
    text = json.dumps([FORMAT, str(folder), listing, resize, grayscale, background])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _stat(p: Path) -> tuple[int, int]:
    try:
        st = p.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:  # a broken link
        return -1, -1


def load_image_folder(
    folder: Path,
    resize: tuple[int, int] | None = None,
    grayscale: bool = False,
    background: str | None = None,
    unreadable: str = "skip",
) -> CachedFolder:
    """Every image under ``folder``, decoded once (with a progress bar) into a uint8 ``.npy`` under
    ``$AELAB_DATA/images/``; later calls on the same files and options read that file.

    Args:
        folder: directory of images, or of class sub-directories of images.
        resize: (height, width) to resize to (bilinear); required if the images differ in size.
        grayscale: convert to one channel; otherwise one channel if every image is grey, else RGB.
        background: the colour transparent pixels are composited onto (None: white).
        unreadable: ``skip`` a file that cannot be read (named in the notes) or make it an ``error``.

    Raises:
        DataError: a missing folder, a file instead of a folder, an empty folder, a non-image file, no readable
            image, mixed sizes without resize, or (``unreadable="error"``) a file that cannot be read.

    A build that is cut (Ctrl-C, a crash) leaves only a ``.partial`` file, which is never read and is replaced by
    the next build: the cache is trusted only once its ``.json`` record is written, last.
    """
    files = _files(folder)
    key = cache_key(folder, files, resize, grayscale, background)
    record = cache_dir() / "images" / f"{key}.json"
    if record.is_file():
        meta = json.loads(record.read_text())
        path = record.with_suffix(".npy")
        if path.is_file() and path.stat().st_size == meta["bytes"]:
            labels = torch.from_numpy(np.load(record.with_suffix(".labels.npy")))
            skipped = [(name, why) for name, why in meta["unreadable"]]
            if unreadable == "error" and skipped:
                _refuse(folder, skipped)
            return CachedFolder(path, meta["rows"], labels, meta["class_names"], meta["notes"], skipped)
    return _build(folder, files, record, resize, grayscale, background, unreadable == "error")


def _refuse(folder: Path, skipped: list[tuple[str, str]]) -> None:
    name, why = skipped[0]
    more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
    raise DataError(
        f"image folder {str(folder)!r}: cannot read {name!r} ({why}){more}; remove or replace it, or let "
        "data.unreadable=skip train without it"
    )


def _classes(folder: Path, files: list[Path]) -> list[str]:
    """Class names: the sub-folders in sorted order, ``(root)`` first for files directly in the folder, or
    ``all`` without sub-folders."""
    names = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    if any(len(p.relative_to(folder).parts) == 1 for p in files):
        names = ["(root)"] + names if names else ["all"]
    return names


def _layout(folder: Path, files: list[Path], pool, report: ReadReport, resize, grayscale: bool, strict: bool):
    """From the files' headers alone: the readable files, the mode (L or RGB) and (H, W) of the cache.

    Raises:
        DataError: no readable file, mixed sizes without resize, or (``strict``) an unreadable file.
    """
    readable = []
    for p, header in zip(files, pool.map(_header, files, chunksize=CHUNK)):
        if isinstance(header, str):
            report.unreadable.append((str(p.relative_to(folder)), header))
        else:
            readable.append((p, header))
    if strict and report.unreadable:
        _refuse(folder, report.unreadable)
    if not readable:
        raise DataError(
            f"image folder {str(folder)!r}: none of its {len(files)} images can be read ({report.summary()})"
        )
    sizes = {size for _, (size, _) in readable}
    if resize is None and len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
        raise DataError(
            f"image folder {str(folder)!r} holds images of different sizes ({shown}, ...); give --resize HEIGHT WIDTH"
        )
    mode = "L" if grayscale or all(m in GREY_MODES for _, (_, m) in readable) else "RGB"
    w, h = next(iter(sizes)) if resize is None else (resize[1], resize[0])
    return [p for p, _ in readable], mode, (h, w)


def _build(
    folder: Path, files: list[Path], record: Path, resize, grayscale: bool, background, strict: bool
) -> CachedFolder:
    from concurrent.futures import ThreadPoolExecutor

    from rich.console import Console
    from rich.progress import Progress

    class_names = _classes(folder, files)
    label_of = {name: i for i, name in enumerate(class_names)}
    report = ReadReport()
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # PIL decodes with the GIL released
        readable, mode, (h, w) = _layout(folder, files, pool, report, resize, grayscale, strict)
        partial = record.with_suffix(".npy.partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(readable), len(mode), h, w))
        labels: list[int] = []
        try:
            with Progress(console=Console(stderr=True), transient=True, disable=len(readable) < 2000) as bar:
                task = bar.add_task(f"decoding {len(readable)} images into aelab's data cache", total=len(readable))
                for start in range(0, len(readable), CHUNK):
                    chunk = readable[start : start + CHUNK]
                    decode = partial_decode(folder, mode, resize, background, report)
                    for p, array in zip(chunk, pool.map(decode, chunk)):
                        if strict and report.unreadable:
                            _refuse(folder, report.unreadable)
                        if array is not None:
                            out[len(labels)] = array
                            parts = p.relative_to(folder).parts
                            labels.append(label_of[parts[0]] if len(parts) > 1 else 0)
                    bar.advance(task, len(chunk))
            out.flush()
            del out
            if not labels:
                raise DataError(
                    f"image folder {str(folder)!r}: none of its {len(files)} images can be read ({report.summary()})"
                )
            return _finish(record, partial, labels, class_names, report)
        finally:
            partial.unlink(missing_ok=True)


def _finish(record: Path, partial: Path, labels: list[int], class_names: list[str], report: ReadReport):
    """Move a complete build into place; its ``.json`` record, written last, is what makes it trusted."""
    report.unreadable.sort()
    report.squashed.sort()
    summary = report.summary()
    path = record.with_suffix(".npy")
    label_array = np.asarray(labels, dtype=np.int64)
    atomic_write(record.with_suffix(".labels.npy"), lambda f: np.save(f, label_array))
    os.replace(partial, path)
    notes = [summary] if summary else []
    meta = {"rows": len(labels), "bytes": path.stat().st_size, "class_names": class_names, "notes": notes}
    atomic_write_text(record, json.dumps({**meta, "unreadable": report.unreadable}))
    return CachedFolder(path, len(labels), torch.from_numpy(label_array), class_names, notes, report.unreadable)


def _header(path: Path) -> tuple[tuple[int, int], str] | str:
    """(size, mode) from the file's header, or why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return "a broken link" if path.is_symlink() and not path.exists() else str(exc) or type(exc).__name__


def partial_decode(folder: Path, mode: str, resize, background, report: ReadReport):
    """A function: file -> uint8 ``(C, H, W)``, or None (noted in ``report``) when it cannot be decoded."""

    def decode(p: Path) -> np.ndarray | None:
        name = str(p.relative_to(folder))
        try:
            return to_array(open_image(p), mode, resize, background, report, name)
        except DataError as exc:
            report.unreadable.append((name, str(exc).rsplit(" (", 1)[-1].rstrip(")")))
            return None

    return decode
