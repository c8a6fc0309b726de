"""Checkpoints: written atomically (temp file + ``os.replace``), read with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path

import torch

from aelab.errors import AelabError
from aelab.io import atomic_write


def save_checkpoint(state: dict, path: Path) -> None:
    """Write ``state`` to ``path`` so a reader sees either the old file or the new one, never half."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain containers only).

    Raises:
        AelabError: the file is missing or not a readable aelab checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise AelabError(f"checkpoint {str(path)!r} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle errors come in many types
        raise AelabError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: {str(exc)[:120]})") from None
