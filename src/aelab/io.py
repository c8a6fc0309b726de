"""Files: atomic writes (a reader sees the old file or the new one, never half of one) and aelab's cache folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def cache_dir() -> Path:
    """aelab's cache (data copies, baselines, reference classifiers): ``$AELAB_DATA`` or ``~/.cache/aelab``."""
    return Path(os.environ.get("AELAB_DATA") or Path.home() / ".cache" / "aelab")


def file_mode() -> int:
    """The mode a new file gets from the user's umask (0o644 under umask 022), as ``open()`` would give it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a temp file beside ``path``, fsync it, give it the user's file mode, then
    ``os.replace`` it onto ``path``. Nothing is left behind when ``write`` raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())  # mkstemp makes 0600 files; a written file gets the umask like any other
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
