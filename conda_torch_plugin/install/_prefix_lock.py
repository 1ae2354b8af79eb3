"""One install at a time per prefix: an exclusive lock on a file beside the prefix.

The lock file is ``PARENT/.NAME.torch-env.lock``. It lives beside the prefix,
not inside it, because the prefix folder itself is replaced by the swap, and it
is never deleted (deleting a lock file lets a third run lock a new file while a
second still waits on the old one). It holds the pid of the run that owns the
lock, for the waiting message.

The lock is ``fcntl.flock`` on POSIX and ``msvcrt.locking`` on Windows. The
kernel releases it when its owner exits, however it exits (SIGKILL included),
so a lock is never stale: whoever holds it is a live run, and every staging
folder, old prefix or journal found while holding it belongs to a run that is
gone (see ``_journal``).

A second install into the same prefix waits, saying so through ``on_wait``,
for up to ``$CONDA_TORCH_ENV_LOCK_TIMEOUT`` seconds (default 600: the
transaction of a large environment, a copy plus linking, takes minutes), then
fails with an ``InstallError``. When it gets the lock it looks at the prefix
afresh, so two installs started together both end with a consistent
environment: the later one updates what the earlier one created.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import InstallError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from pathlib import Path

LOCK_TIMEOUT_VARIABLE = "CONDA_TORCH_ENV_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 600.0
_POLL_SECONDS = 0.1


def lock_path(prefix: Path) -> Path:
    """``PARENT/.NAME.torch-env.lock``: beside the prefix, so it survives the swap."""
    return prefix.parent / f".{prefix.name}.torch-env.lock"


def lock_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds to wait for another install: ``$CONDA_TORCH_ENV_LOCK_TIMEOUT``, else 600."""
    environ = os.environ if environ is None else environ
    raw = environ.get(LOCK_TIMEOUT_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise InstallError(
            f"{LOCK_TIMEOUT_VARIABLE}={raw!r} is not a number of seconds",
            hints=[
                f"set it to a number such as 600, or unset it (default {DEFAULT_LOCK_TIMEOUT:g})"
            ],
        )
    return value


@contextlib.contextmanager
def prefix_lock(
    prefix: Path,
    *,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the exclusive lock of ``prefix`` for the ``with`` block (waiting up to ``timeout``)."""
    timeout = lock_timeout() if timeout is None else timeout
    path = lock_path(prefix)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise InstallError(
            f"could not create the lock file {path}: {error.strerror or error}",
            hints=[f"check that {prefix.parent} is a writable folder"],
        ) from error
    try:
        _acquire(fd, path, prefix, timeout, on_wait)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _acquire(
    fd: int, path: Path, prefix: Path, timeout: float, on_wait: Callable[[str], None] | None
) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while not _try_lock(fd, path):
        if not told:
            told = True
            if on_wait is not None:
                owner = _owner(fd)
                on_wait(
                    f"waiting for another conda torch-env install into {prefix}"
                    + (f" (pid {owner})" if owner else "")
                )
        if time.monotonic() >= deadline:
            owner = _owner(fd)
            raise InstallError(
                f"another conda torch-env install into {prefix}"
                + (f" (pid {owner})" if owner else "")
                + f" is still running after {timeout:g} s of waiting",
                hints=[
                    "wait for it to finish and run the command again",
                    f"or wait longer: set {LOCK_TIMEOUT_VARIABLE} to a number of seconds",
                ],
            )
        time.sleep(_POLL_SECONDS)


def _owner(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int, path: Path) -> bool:
        # Locks one byte past the pid; Windows locks are mandatory, so the pid stays readable.
        os.lseek(fd, 64, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int, path: Path) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as error:
            # A filesystem without flock support (some network mounts): say so, do not guess.
            raise InstallError(
                f"could not lock {path}: {error.strerror or error}",
                hints=["install into a prefix on a local filesystem"],
            ) from error
        return True
