"""Which images a run sees and how they are split: :class:`DataConfig`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, field_validator

from aelab.config.base import Strict, flag

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "digits", "folder", "array")


def class_list(value: object) -> object:
    """``3`` -> ``[3]``, ``"0,3"`` -> ``[0, 3]``; any other value as it is.

    Raises:
        ValueError: a string that is not comma-separated class indices.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        try:
            return [int(p) for p in value.split(",") if p.strip()]
        except ValueError:
            raise ValueError(f"got {value!r}; allowed: class indices, e.g. 0 or 0,3") from None
    return value


class DataConfig(Strict):
    """Which images to train and evaluate on, how to read them, and how to split them."""

    name: str = Field("fashion-mnist", **flag("dataset"))
    """Dataset: one of fashion-mnist, mnist, cifar10, digits, folder (images under ``data_dir``), array (vector
    data: the .npy/.npz/.csv file ``data_dir``, standardized with the training split's mean and std; a .npy of
    uint8 (N, C, H, W) or (N, H, W) is an image set)."""
    data_dir: Optional[Path] = None
    """Where the files are (for array: the file), stored as an absolute path so a run folder can be analysed from
    any directory. Searched first; then $AELAB_DATA or ~/.cache/aelab; then system copies."""
    label_column: str = "label"
    """array from a CSV: the column holding class labels (no labels if the header has no such column)."""
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    """Share of the training split held out for validation, chosen by the run's seed."""
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    """Share held out as test set for datasets without an official test split (digits, folder, array)."""
    train_limit: Optional[int] = Field(None, ge=1)
    """Use only the first N training images (before the validation split); None = all."""
    test_limit: Optional[int] = Field(None, ge=1)
    """Use only the first N test images; None = all."""
    resize: Optional[tuple[int, int]] = None
    """(height, width) to resize folder images to (bilinear); required when they differ in size."""
    grayscale: bool = False
    """Convert folder images to one channel."""
    background: Optional[str] = None
    """Folder images with transparency (RGBA, LA, palette with a transparent colour) are composited onto this
    colour: a name or #RRGGBB (None = white)."""
    download: bool = True
    """Let torchvision download the dataset when no local copy is found and a network is there."""
    normal_classes: Optional[list[Annotated[int, Field(ge=0)]]] = Field(None, **flag("normal-class"))
    """One-class training (anomaly detection): train and validate only on these class indices (CLI: 0 or
    0,3); the test split keeps every class, and the run reports ROC-AUC of normal vs the other classes."""

    binarize: Optional[Literal["dynamic"]] = None
    """dynamic: pixels are Bernoulli probabilities and every image is a fresh 0/1 sample of them: each training
    image anew every epoch (seeded by the run's seed and the epoch), the validation and test images once with a
    fixed seed (the literature's dynamically binarized MNIST / Fashion-MNIST, e.g. Burda et al. 2016). Images
    only; None = grey levels as they are."""

    unreadable: Literal["skip", "error"] = "skip"
    """A folder's file that cannot be read (corrupt, truncated, a broken link): skip it and name it in a note, or
    refuse the folder with one error naming it. Not part of a run's id."""
    memory_map_above_gb: float = Field(2.0, ge=0.0)
    """Image sets whose uint8 pixels take more than this many GB (1e9 bytes) are read from a memory-mapped file
    (aelab's decoded cache of a folder, or the .npy itself), a batch of rows at a time, instead of into memory:
    the same images and results, with the memory of a few batches. 0: always mapped. Not part of a run's id."""

    def split_key(self, seed: int) -> str:
        """Identifies the images and splits a run sees: this config (less how it is read) and the seed that draws
        the splits."""
        exclude = {"memory_map_above_gb"} | ({"binarize"} if self.binarize is None else set())
        return f"{self.model_dump_json(exclude=exclude)}|{seed}"

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASET_NAMES:
            raise ValueError(f"got {v!r}; allowed: {', '.join(DATASET_NAMES)}")
        return v

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Optional[Path]) -> Optional[Path]:
        return None if v is None else Path(os.path.abspath(Path(v).expanduser()))

    @field_validator("normal_classes", mode="before")
    @classmethod
    def _class_list(cls, v):
        return class_list(v)

    @field_validator("normal_classes")
    @classmethod
    def _some_classes(cls, v):
        if v is not None and not v:
            raise ValueError("got an empty list; allowed: one or more class indices, e.g. 0 or 0,3")
        return sorted(set(v)) if v is not None else v

    @field_validator("resize")
    @classmethod
    def _positive_size(cls, v):
        if v is not None and (v[0] < 1 or v[1] < 1):
            raise ValueError(f"got {v}; allowed: two positive integers (height, width)")
        return v

    @field_validator("background")
    @classmethod
    def _colour(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        from PIL import ImageColor

        try:
            ImageColor.getrgb(v)
        except ValueError:
            raise ValueError(f"got {v!r}; allowed: a colour name (white, black, gray, ...) or #RRGGBB") from None
        return v
