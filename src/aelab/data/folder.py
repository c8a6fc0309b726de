"""A folder of the user's own PNG/JPEG images.

Layout: images directly in the folder (one class), or one sub-folder per class (sub-folder names become
class names, in sorted order). Hidden files are skipped; any other file is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aelab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_image_folder(folder: Path, resize: tuple[int, int] | None = None, grayscale: bool = False):
    """Read every image under ``folder``.

    Args:
        folder: directory of images, or of class sub-directories of images.
        resize: (height, width) to resize to (bilinear); required if the images differ in size.
        grayscale: convert to one channel; otherwise one channel if every image is grayscale, else RGB.

    Returns:
        (images uint8 (N, C, H, W), labels int64 (N,), class_names)

    Raises:
        DataError: missing or empty folder, a non-image file, an unreadable image, or mixed sizes without resize.
    """
    from PIL import Image, UnidentifiedImageError

    if not folder.is_dir():
        raise DataError(f"image folder {str(folder)!r} does not exist; give --data-dir a folder of PNG/JPEG images")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts))
    if not files:
        raise DataError(f"image folder {str(folder)!r} is empty; it needs PNG/JPEG images "
                        "(directly, or one sub-folder per class)")
    for p in files:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"image folder {str(folder)!r}: {str(p.relative_to(folder))!r} is not an image; "
                            f"allowed: {', '.join(IMAGE_SUFFIXES)} files")
    class_names = sorted({p.relative_to(folder).parts[0] for p in files if len(p.relative_to(folder).parts) > 1})
    if any(len(p.relative_to(folder).parts) == 1 for p in files):
        class_names = ["(root)"] + class_names if class_names else ["all"]
    label_of = {name: i for i, name in enumerate(class_names)}

    pictures, labels = [], []
    for p in files:
        try:
            with Image.open(p) as im:
                im.load()
                pictures.append(im.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"image folder {str(folder)!r}: cannot read {str(p.relative_to(folder))!r} "
                            f"as an image ({exc})") from None
        parts = p.relative_to(folder).parts
        labels.append(label_of[parts[0]] if len(parts) > 1 else 0)

    mode = "L" if grayscale or all(im.mode in ("L", "1", "I;16", "I") for im in pictures) else "RGB"
    sizes = {im.size for im in pictures}
    if resize is None and len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
        raise DataError(f"image folder {str(folder)!r} holds images of different sizes ({shown}, ...); "
                        "give --resize HEIGHT WIDTH")
    arrays = []
    for im in pictures:
        im = im.convert(mode)
        if resize is not None and im.size != (resize[1], resize[0]):
            im = im.resize((resize[1], resize[0]), Image.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    stack = np.stack(arrays)
    images = torch.from_numpy(stack[:, None] if stack.ndim == 3 else stack.transpose(0, 3, 1, 2)).contiguous()
    return images, torch.tensor(labels, dtype=torch.long), class_names
