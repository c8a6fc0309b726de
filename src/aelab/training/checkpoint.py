"""Checkpoints: written atomically (temp file + ``os.replace``), read with ``weights_only=True`` (tensors and plain
containers only: a checkpoint never runs code when it is loaded)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from aelab.errors import AelabError
from aelab.io import atomic_write


def save_checkpoint(state: dict, path: Path) -> None:
    """Write ``state`` to ``path`` so a reader sees either the old file or the new one, never half."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        AelabError: the file is missing, holds Python objects (which aelab never loads), or is not a readable
            checkpoint (truncated, corrupt); the message says to delete it to restart the run from scratch.
    """
    path = Path(path)
    if not path.is_file():
        raise AelabError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise AelabError(
            f"checkpoint {str(path)!r} is not an aelab checkpoint: it holds Python objects, which aelab "
            "never loads; delete it to restart the run from scratch"
        ) from None
    except Exception as exc:  # truncated or corrupt files raise many types
        raise AelabError(
            f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}); it is truncated or not a "
            "checkpoint: delete it to restart the run from scratch"
        ) from None
    if not isinstance(state, dict):
        raise AelabError(
            f"checkpoint {str(path)!r} is not an aelab checkpoint (it holds a {type(state).__name__}); "
            "delete it to restart the run from scratch"
        )
    return state
