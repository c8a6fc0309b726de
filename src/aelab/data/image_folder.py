"""A folder of the user's own PNG/JPEG images.

Layout: images directly in the folder (one class), or one sub-folder per class (sub-folder names become
class names, in sorted order). Hidden files are skipped; a file that is not a PNG/JPEG is an error; an image
that cannot be read (corrupt, a broken link) is skipped and named in the dataset's notes. Each image is read
as :mod:`aelab.data.images` says (transparency onto the background, grey or RGB, resized).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aelab.data.images import IMAGE_SUFFIXES, ReadReport, image_mode, open_image, to_array
from aelab.errors import DataError


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


def load_image_folder(
    folder: Path, resize: tuple[int, int] | None = None, grayscale: bool = False, background: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, list[str], ReadReport]:
    """Read every image under ``folder``.

    Args:
        folder: directory of images, or of class sub-directories of images.
        resize: (height, width) to resize to (bilinear); required if the images differ in size.
        grayscale: convert to one channel; otherwise one channel if every image is grey, else RGB.
        background: the colour transparent pixels are composited onto (None: white).

    Returns:
        (images uint8 (N, C, H, W), labels int64 (N,), class_names, what was skipped or squashed)

    Raises:
        DataError: a missing folder, a file instead of a folder, an empty folder, a non-image file, no readable
            image, or mixed sizes without resize.
    """
    files = _files(folder)
    class_names = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    if any(len(p.relative_to(folder).parts) == 1 for p in files):
        class_names = ["(root)"] + class_names if class_names else ["all"]
    label_of = {name: i for i, name in enumerate(class_names)}
    report, pictures, labels, names = ReadReport(), [], [], []
    for p in files:
        rel = str(p.relative_to(folder))
        try:
            pictures.append(open_image(p))
        except DataError as exc:
            report.unreadable.append((rel, str(exc).rsplit(" (", 1)[-1].rstrip(")")))
            continue
        parts = p.relative_to(folder).parts
        labels.append(label_of[parts[0]] if len(parts) > 1 else 0)
        names.append(rel)
    if not pictures:
        raise DataError(
            f"image folder {str(folder)!r}: none of its {len(files)} images can be read ({report.summary()})"
        )
    sizes = {im.size for im in pictures}
    if resize is None and len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
        raise DataError(
            f"image folder {str(folder)!r} holds images of different sizes ({shown}, ...); give --resize HEIGHT WIDTH"
        )
    mode = image_mode(pictures, grayscale)
    stack = np.stack([to_array(im, mode, resize, background, report, name) for im, name in zip(pictures, names)])
    return torch.from_numpy(stack).contiguous(), torch.tensor(labels, dtype=torch.long), class_names, report
