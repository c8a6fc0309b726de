"""Datasets held in memory as uint8 tensors ``(N, C, H, W)`` with int64 labels ``(N,)``.

Conversion to float in [0, 1] happens per batch on the training device (see :mod:`aelab.training`).
"""

from aelab.data.dataset import ImageDataset, ImageSplit, to_uint8, to_unit_float
from aelab.data.images import preprocessing
from aelab.data.registry import CLASS_NAMES, cache_dir, cached_dataset, load_dataset

__all__ = [
    "ImageDataset",
    "ImageSplit",
    "to_uint8",
    "to_unit_float",
    "preprocessing",
    "load_dataset",
    "cached_dataset",
    "cache_dir",
    "CLASS_NAMES",
]
