"""Vector data: rows of float features ``(N, D)`` from a ``.npy``, a ``.npz`` (``x`` and optional ``y``) or a
``.csv`` (a header row; an optional label column, ``label`` by default; every other column a number).

A ``.npy`` of uint8 ``(N, C, H, W)`` or ``(N, H, W)`` is an image set instead (see :func:`is_image_array`).

Rows are held like images of shape ``(1, 1, D)`` (float32), so every MLP model, the trainer and the
evaluation take them unchanged; they are standardized with the training split's mean and standard deviation
(see :func:`standardize`), which the trained model keeps in its ``config.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aelab.errors import DataError

SUFFIXES = (".npy", ".npz", ".csv")


def _labels(raw, path: Path) -> tuple[np.ndarray, list[str]]:
    raw = np.asarray(raw)
    if raw.ndim != 1:
        raise DataError(f"{str(path)!r}: labels must be one value per row, got shape {raw.shape}")
    classes, index = np.unique(raw.astype(str) if raw.dtype.kind in "OUS" else raw, return_inverse=True)
    return index.astype(np.int64), [str(c) for c in classes]


def _read_csv(path: Path, label_column: str) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    import csv

    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        raise DataError(f"{str(path)!r}: a CSV needs a header row and at least one data row")
    header, body = rows[0], rows[1:]
    label_at = header.index(label_column) if label_column in header else None
    columns = [i for i in range(len(header)) if i != label_at]
    x = np.empty((len(body), len(columns)), dtype=np.float32)
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{str(path)!r}: row {r + 2} has {len(row)} fields but the header has {len(header)}")
        for j, c in enumerate(columns):
            try:
                x[r, j] = float(row[c])
            except ValueError:
                raise DataError(
                    f"{str(path)!r}: column {header[c]!r}, row {r + 2} holds {row[c]!r}, not a number; "
                    f"feature columns must be numbers (the label column is {label_column!r})"
                ) from None
    if label_at is None:
        return x, None, []
    y, classes = _labels([row[label_at] for row in body], path)
    return x, y, classes


def load_array(path: Path | str, label_column: str = "label") -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Read a feature file.

    Returns:
        (features float32 ``(N, 1, 1, D)``, labels int64 ``(N,)`` (0 without labels), class names).

    Raises:
        DataError: missing file, another suffix, not rank 2, NaN or infinite values, text in a feature
            column, or labels that do not match the rows.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"dataset 'array': {str(path)!r} is not a feature file; allowed: {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"dataset 'array': {str(path)!r} does not exist; give --data-dir FILE.npy|.npz|.csv")
    y: np.ndarray | None = None
    classes: list[str] = []
    try:
        if path.suffix.lower() == ".csv":
            x, y, classes = _read_csv(path, label_column)
        elif path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "x" not in data:
                    raise DataError(
                        f"{str(path)!r} has no array 'x' (it has {', '.join(data.files) or 'none'}); "
                        "save features as x= and optional labels as y="
                    )
                x = data["x"]
                if "y" in data:
                    y, classes = _labels(data["y"], path)
        else:
            x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {str(path)!r} ({type(exc).__name__}: {exc})") from None
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(
            f"{str(path)!r} holds an array of shape {x.shape} (rank {x.ndim}); features must be rank 2: "
            "(rows, features)"
        )
    if x.dtype.kind not in "fiub":
        raise DataError(f"{str(path)!r} holds {x.dtype} values; features must be numbers")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"{str(path)!r} has {int(bad.sum())} NaN or infinite values (first at row {r}, feature {c}); "
            "remove or impute them"
        )
    if y is not None and len(y) != len(x):
        raise DataError(f"{str(path)!r} has {len(x)} rows but {len(y)} labels")
    labels = torch.from_numpy(y) if y is not None else torch.zeros(len(x), dtype=torch.long)
    return torch.from_numpy(x).view(len(x), 1, 1, -1).contiguous(), labels, classes or ["all"]


def is_image_array(path: Path) -> bool:
    """True for a ``.npy`` of uint8 images ``(N, C, H, W)`` or ``(N, H, W)``: read as images (0..255, not
    standardized; memory-mapped when large), not as feature rows."""
    if Path(path).suffix.lower() != ".npy" or not Path(path).is_file():
        return False
    from aelab.data.mapped import npy_header

    shape, _, dtype, _ = npy_header(Path(path))
    return dtype == np.uint8 and len(shape) in (3, 4)


def standardize(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` per feature, for features float ``(N, 1, 1, D)`` and ``mean``/``std`` ``(D,)``."""
    return (features - mean) / std


def standardization(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and standard deviation ``(D,)`` of the training features (a constant feature gets std 1)."""
    flat = train.flatten(1).double()
    std = flat.std(0, unbiased=False)
    return flat.mean(0).float(), torch.where(std > 1e-12, std, torch.ones_like(std)).float()
