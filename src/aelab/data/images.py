"""Reading image files: one way for training folders and for the images the apply commands take.

An image becomes uint8 ``(C, H, W)`` in three steps, the same everywhere (and recorded with a trained model
as its preprocessing, see :func:`preprocessing`):

1. transparency (RGBA, LA, a palette or a grey/RGB image with a transparent colour) is composited onto a
   background colour (white unless told), so what shows under transparent pixels is that colour, not whatever
   the file stored there;
2. conversion to one channel (``L``) or three (``RGB``);
3. with a target size, a bilinear resize to ``(H, W)`` (the aspect ratio is not kept).

Files that cannot be read (corrupt, truncated, broken links) are skipped and named in one summary line
(:class:`ReadReport`), as are images whose aspect ratio a resize squashes strongly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aelab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("L", "1", "I;16", "I", "LA")
SQUASH = 1.5
"""An image is counted as squashed when the resize changes its aspect ratio by more than this factor."""
DEFAULT_BACKGROUND = "white"


@dataclass
class ReadReport:
    """What reading a set of image files skipped or distorted."""

    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(file, why) of every file that could not be read."""
    squashed: list[str] = field(default_factory=list)
    """Files whose aspect ratio the resize changed by more than :data:`SQUASH`."""

    def summary(self, shown: int = 5) -> str | None:
        """One line: how many files were skipped (named, the first ``shown``) and how many squashed; None if
        nothing was."""
        parts = []
        if self.unreadable:
            names = ", ".join(f"{f} ({why})" for f, why in self.unreadable[:shown])
            more = f" and {len(self.unreadable) - shown} more" if len(self.unreadable) > shown else ""
            parts.append(f"skipped {len(self.unreadable)} file(s) that cannot be read: {names}{more}")
        if self.squashed:
            names = ", ".join(self.squashed[:shown])
            more = f" and {len(self.squashed) - shown} more" if len(self.squashed) > shown else ""
            parts.append(
                f"{len(self.squashed)} image(s) squashed by the resize (aspect ratio changed by more than "
                f"{SQUASH:g}x): {names}{more}"
            )
        return "; ".join(parts) or None


def rgb(colour: str | None) -> tuple[int, int, int]:
    """A colour name or #RRGGBB (None: white) as an (R, G, B) tuple."""
    from PIL import ImageColor

    value = ImageColor.getrgb(colour or DEFAULT_BACKGROUND)
    return value[0], value[1], value[2]


def open_image(path: Path) -> Any:
    """The image in ``path``, fully read (a PIL image).

    Raises:
        DataError: the file cannot be read as an image (missing, a broken link, corrupt, truncated).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        why = "a broken link" if path.is_symlink() and not path.exists() else str(exc) or type(exc).__name__
        raise DataError(f"cannot read {str(path)!r} as an image ({why})") from None


def has_transparency(image: Any) -> bool:
    """True for images with an alpha channel or a transparent colour."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def flatten(image: Any, mode: str, background: str | None = None) -> Any:
    """``image`` composited onto ``background`` (when it has transparency) and converted to ``mode`` (L or RGB)."""
    from PIL import Image

    if has_transparency(image):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*rgb(background), 255))
        image = Image.alpha_composite(canvas, rgba)
    return image.convert(mode) if image.mode != mode else image


def to_array(
    image: Any,
    mode: str,
    size: tuple[int, int] | None = None,
    background: str | None = None,
    report: ReadReport | None = None,
    name: str = "",
) -> np.ndarray:
    """uint8 ``(C, H, W)`` of ``image``: flattened onto ``background``, converted to ``mode``, resized (bilinear)
    to ``size`` = (height, width) when given (a strong change of aspect ratio is noted in ``report``)."""
    from PIL import Image

    image = flatten(image, mode, background)
    if size is not None and image.size != (size[1], size[0]):
        if report is not None and _squashed(image.size, size):
            report.squashed.append(name)
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    arr = np.asarray(image, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _squashed(size_wh: tuple[int, int], target_hw: tuple[int, int]) -> bool:
    w, h = size_wh
    change = (w / h) / (target_hw[1] / target_hw[0])
    return change > SQUASH or change < 1 / SQUASH


def preprocessing(shape: tuple[int, int, int], resize: bool, background: str | None = None) -> dict:
    """How a model's inputs are made from an image file, as kept in its ``config.json`` and ONNX metadata: what
    :func:`to_array` and :func:`aelab.data.to_unit_float` do, in order."""
    c, h, w = shape
    return {
        "channels": c,
        "mode": "L" if c == 1 else "RGB",
        "height": h,
        "width": w,
        "resize": "bilinear (PIL Image.BILINEAR), aspect ratio not kept" if resize else "none (images are HxW)",
        "background": "#{:02x}{:02x}{:02x}".format(*rgb(background)),
        "transparency": "alpha-composited onto the background",
        "scale": "x / 255 (uint8 0..255 -> float32 in [0, 1])",
        "layout": "NCHW float32, channels R, G, B",
    }
