"""Atomic file replacement: a reader sees the old file or the new one, never half of either.

Every file this project writes (environment.yml, virtual-packages.yml, lock files)
goes through :func:`atomic_write_text`, so an interrupted or failed command leaves
the previous file exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The text is written as is (no newline translation), flushed and fsynced
    before the rename. An existing target keeps its permission bits; a new one
    gets the usual ``0o666 & ~umask``. A symlink is followed, so the link stays
    a link and its target is the file that is replaced. Returns the path
    actually written. Raises ``OSError`` with the target untouched on failure.
    """
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """:func:`atomic_write_text` for bytes: the same guarantees, the bytes written as given."""
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    # Same folder, so os.replace is a rename within one filesystem (atomic on POSIX,
    # and replaces an existing file on Windows too).
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp_name, mode if mode is not None else _default_mode())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return target


def _default_mode() -> int:
    # mkstemp creates 0o600; a new file should look like one made by open().
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
