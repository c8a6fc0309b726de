"""Find a dataset, read it once into memory, and split it.

Where the torchvision datasets (fashion-mnist, mnist, cifar10) are looked for, in order:

1. ``data_dir`` given by the user (flat files or torchvision's layout);
2. aelab's cache: ``$AELAB_DATA`` or ``~/.cache/aelab``;
3. system copies: Debian's ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist``;
4. torchvision's download into the cache, when ``download`` is on and a network is there.

When none works, one :class:`DataError` says what was tried and how to get the data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from aelab.config import DataConfig
from aelab.data.array import is_image_array, load_array, standardization, standardize
from aelab.data.cifar import CLASS_NAMES as CIFAR10_CLASSES
from aelab.data.cifar import find_cifar_root, load_cifar10
from aelab.data.dataset import TEST_BINARIZATION_SEED, ImageDataset, ImageSplit, binarized_split, split_by_seed
from aelab.data.idx import TORCHVISION_CLASS, find_idx_files, load_torchvision_idx, stage_idx_files
from aelab.data.image_folder import load_image_folder
from aelab.data.mapped import MappedImages, open_images
from aelab.errors import DataError
from aelab.io import cache_dir

SYSTEM_DIRS = {"fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")], "mnist": [], "cifar10": []}
CLASS_NAMES = {
    "fashion-mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "mnist": [str(d) for d in range(10)],
    "cifar10": CIFAR10_CLASSES,
    "digits": [str(d) for d in range(10)],
}
HOW_TO_GET = {
    "fashion-mnist": "install Debian's package (apt-get install dataset-fashion-mnist) or pass --data-dir "
    "with the four IDX files",
    "mnist": "pass --data-dir with the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...)",
    "cifar10": "pass --data-dir with cifar-10-batches-py/ from the CIFAR-10 python archive",
}


def _load_torchvision(config: DataConfig):
    name = config.name
    candidates = ([config.data_dir] if config.data_dir else []) + [cache_dir()] + SYSTEM_DIRS[name]
    tried = []
    for folder in candidates:
        folder = Path(folder).expanduser()
        if name == "cifar10":
            root = find_cifar_root(folder)
            if root is not None:
                return (*load_cifar10(root), str(root))
        else:
            files = find_idx_files(folder, TORCHVISION_CLASS[name])
            if files is not None:
                root = stage_idx_files(files, cache_dir() if folder != cache_dir() else folder, TORCHVISION_CLASS[name])
                return (*load_torchvision_idx(name, root), str(folder))
        tried.append(str(folder))
    if config.download:
        target = cache_dir() / ("cifar-10-batches-py" if name == "cifar10" else TORCHVISION_CLASS[name])
        existed = target.exists()
        try:
            cache_dir().mkdir(parents=True, exist_ok=True)
            if name == "cifar10":
                return (*load_cifar10(cache_dir(), download=True), "torchvision download")
            return (*load_torchvision_idx(name, cache_dir(), download=True), "torchvision download")
        except DataError:
            raise
        except Exception as exc:  # network errors come in many types
            tried.append(f"torchvision download ({type(exc).__name__})")
            if not existed and target.is_dir() and not any(p.is_file() for p in target.rglob("*")):
                shutil.rmtree(target, ignore_errors=True)  # leave no empty folders behind
    else:
        tried.append("no download (download: false)")
    raise DataError(f"dataset {name!r} not found; tried {'; '.join(tried)}. To get it: {HOW_TO_GET[name]}")


def _load_digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images).mul(255.0 / 16.0).round().clamp(0, 255).to(torch.uint8)
    return images.unsqueeze(1).contiguous(), torch.from_numpy(digits.target).long()


def _load_unsplit(config: DataConfig) -> tuple[torch.Tensor | MappedImages, torch.Tensor, list[str], str, list[str]]:
    """A dataset without an official test split (digits, array, folder): (images, in memory or memory-mapped,
    labels, class names, source, notes on what reading it skipped).

    Raises:
        DataError: no --data-dir where one is needed, fewer than 3 images, or what reading the files refuses.
    """
    notes: list[str] = []
    images: torch.Tensor | MappedImages
    if config.name == "digits":
        images, labels = _load_digits()
        classes, source = CLASS_NAMES["digits"], "scikit-learn load_digits"
    elif config.data_dir is None:
        what = "a .npy, .npz or .csv file of feature rows" if config.name == "array" else "a folder of PNG/JPEG images"
        raise DataError(f"dataset {config.name!r} needs --data-dir: {what}")
    elif config.name == "array" and is_image_array(config.data_dir):
        images = open_images(config.data_dir, map_above_gb=config.memory_map_above_gb)
        labels, classes, source = torch.zeros(len(images), dtype=torch.long), ["all"], str(config.data_dir)
    elif config.name == "array":
        images, labels, classes = load_array(config.data_dir, config.label_column)
        source = str(config.data_dir)
    else:
        cached = load_image_folder(
            Path(config.data_dir), config.resize, config.grayscale, config.background, config.unreadable
        )
        images = open_images(cached.path, cached.rows, config.memory_map_above_gb)
        labels, classes, source, notes = cached.labels, cached.class_names, str(config.data_dir), cached.notes
    if len(images) < 3:
        raise DataError(
            f"dataset {config.name!r} has {len(images)} images; at least 3 are needed (train, validation, test)"
        )
    return images, labels, classes, source, notes


def load_dataset(config: DataConfig | None = None, seed: int = 0) -> ImageDataset:
    """Load a dataset into memory and split it into train / validation / test.

    Args:
        config: which dataset and how to split it (see :class:`aelab.config.DataConfig`).
        seed: chooses the validation images (and the test images for digits/folder).

    Returns:
        An :class:`ImageDataset` whose splits hold uint8 ``(N, C, H, W)`` images and int64 labels.

    Raises:
        DataError: the data cannot be found or read (one line: what was tried, how to get it).

    ``array`` (vector data) rows come as float32 ``(N, 1, 1, D)``, standardized with the mean and std of the
    training split (after the validation split); ``dataset.standardization`` holds them.
    """
    config = config or DataConfig()
    notes: list[str] = []
    if config.name in ("fashion-mnist", "mnist", "cifar10"):
        train_x, train_y, test_x, test_y, classes, source = _load_torchvision(config)
        train, test = ImageSplit(train_x, train_y), ImageSplit(test_x, test_y)
    else:
        images, labels, classes, source, notes = _load_unsplit(config)
        train, test = split_by_seed(ImageSplit(images, labels), config.test_fraction, seed)
    if config.train_limit is not None:
        train = train.head(config.train_limit)
    if config.test_limit is not None:
        test = test.head(config.test_limit)
    train, val = split_by_seed(train, config.val_fraction, seed)
    if len(train) == 0:
        raise DataError(f"dataset {config.name!r}: no training images left after the validation split")
    scaling = None
    if train.dtype == torch.float32:  # vector rows: standardize with the training split's statistics only
        scaling = standardization(train.images)
        train, val, test = (ImageSplit(standardize(s.images, *scaling), s.labels) for s in (train, val, test))
    if config.binarize is not None:
        if scaling is not None:
            raise DataError(f"data.binarize: {config.name!r} holds vector rows; allowed: images, or binarize: null")
        val = binarized_split(val, TEST_BINARIZATION_SEED + 1)
        test = binarized_split(test, TEST_BINARIZATION_SEED)
    dataset = ImageDataset(
        config.name,
        train,
        val,
        test,
        list(CLASS_NAMES.get(config.name, classes)),
        source,
        standardization=scaling,
        notes=notes,
        binarize=config.binarize,
    )
    return dataset if config.normal_classes is None else only_classes(dataset, config.normal_classes)


def only_classes(dataset: ImageDataset, classes: list[int]) -> ImageDataset:
    """One-class training: ``dataset`` with train and validation restricted to ``classes`` (the test split keeps
    every class, so the others are the anomalies).

    Raises:
        DataError: a class index the dataset does not have, or no training image of these classes.
    """
    names = dataset.class_names
    bad = [c for c in classes if c >= len(names)]
    if bad:
        raise DataError(
            f"--normal-class: dataset {dataset.name!r} has no class {bad[0]}; allowed: "
            f"0..{len(names) - 1} ({', '.join(f'{i}={n}' for i, n in enumerate(names))})"
        )
    keep = torch.tensor(classes, dtype=torch.long)

    def restrict(split: ImageSplit) -> ImageSplit:
        return split.take(torch.isin(split.labels, keep).nonzero().squeeze(1))

    train = restrict(dataset.train)
    if len(train) == 0:
        raise DataError(
            f"--normal-class {','.join(map(str, classes))}: dataset {dataset.name!r} has no training "
            "images of these classes"
        )
    return ImageDataset(
        dataset.name,
        train,
        restrict(dataset.val),
        dataset.test,
        dataset.class_names,
        dataset.source,
        list(classes),
        dataset.standardization,
        dataset.notes,
        dataset.binarize,
    )


_LOADED: dict[str, ImageDataset] = {}


def cached_dataset(config: DataConfig, seed: int = 0) -> ImageDataset:
    """:func:`load_dataset`, kept in memory for this process (the two most recent (config, seed) pairs), so the
    runs of an experiment on the same data load it once."""
    every_class = config.model_copy(update={"normal_classes": None})  # one-class runs share one load
    key = every_class.split_key(seed)
    if key not in _LOADED:
        if len(_LOADED) >= 2:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_dataset(every_class, seed=seed)
    return _LOADED[key] if config.normal_classes is None else only_classes(_LOADED[key], config.normal_classes)
