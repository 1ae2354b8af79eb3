"""The project's errors: one root class, each error a full sentence plus hints.

Every condition a user can cause (no driver, a malformed file, an unsatisfiable
request) is raised as a ``TorchEnvError`` and rendered by the CLI as a message on
stderr with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class TorchEnvError(Exception):
    """Base class. ``message`` says what is wrong, ``hints`` what to do about it."""

    exit_code = 1

    def __init__(
        self, message: str, *, hints: Iterable[str] = (), exit_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hints = tuple(hints)
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": self.message, "hints": list(self.hints)}


class UsageError(TorchEnvError):
    """Bad command-line input (conda's ArgumentError also exits 2)."""

    exit_code = 2


class Declined(TorchEnvError):
    """The user answered no to a confirmation: nothing was done, which is not a failure.

    Printed as a plain line and exit status 0, as conda does ("Exiting.").
    """

    exit_code = 0


class RecipeError(TorchEnvError):
    """A recipes/ data file is missing, malformed or fails its schema."""


class PlanError(TorchEnvError):
    """No release/build satisfies the request on the target machine."""


class EnvFileError(TorchEnvError):
    """An environment.yml or virtual-packages.yml cannot be read or written."""


class LockError(TorchEnvError):
    """Locking failed: unsatisfiable specs, unreadable channel, bad lock file."""


class LockOutOfDate(LockError):
    """``lock --check`` found the lock file stale."""


class InstallError(TorchEnvError):
    """Installing into a prefix failed; the prefix is left as it was."""


class IncompatibleMachine(InstallError):
    """The lock holds builds this machine cannot run (``--force`` overrides)."""
