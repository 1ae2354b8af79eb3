"""The project's errors: one root class, each error a full sentence plus hints.

Every condition a user can cause (no driver, a malformed file, an unsatisfiable
request) is raised as a ``TorchEnvError`` and rendered by the CLI as a message on
stderr with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

    from conda_torch_plugin.findings import Finding

# Why no plan fits: the kind of failure, for scripts (``--json``) and callers.
PlanFailure = Literal[
    "no-release",  # nothing matches --pytorch
    "no-platform",  # no build for the platform
    "no-python",  # no build for the Python asked for
    "gpu",  # a GPU no build covers
    "cuda",  # the driver is too old for every build
    "mixed",  # no build both runs with the driver and covers the GPUs
    "cuda-unknown",  # GPUs given without the driver's CUDA version
    "secondary-platform",  # another platform of the request has no build of the release
    "fleet",  # no single environment runs on every machine of a fleet
]


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

    def details(self) -> dict[str, object]:
        """The typed fields of a subclass, for ``--json`` (empty here)."""
        return {}

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "error": type(self).__name__,
            "message": self.message,
            "hints": list(self.hints),
        }
        details = self.details()
        if details:
            data["details"] = details
        return data


class UsageError(TorchEnvError):
    """Bad command-line input (conda's ArgumentError also exits 2)."""

    exit_code = 2


class ProfileError(UsageError):
    """A machine profile (``--machine``) that cannot be read; the message names file and line."""


class Declined(TorchEnvError):
    """The user answered no to a confirmation: nothing was done, which is not a failure.

    Printed as a plain line and exit status 0, as conda does ("Exiting.").
    """

    exit_code = 0


class RecipeError(TorchEnvError):
    """A recipes/ data file is missing, malformed or fails its schema."""

    def __init__(
        self,
        message: str,
        *,
        hints: Iterable[str] = (),
        file: str | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__(message, hints=hints)
        self.file = file  # "conda-forge.json"
        self.where = where  # "releases[3] (pytorch 2.9.1)"

    def details(self) -> dict[str, object]:
        return {"file": self.file, "where": self.where} if self.file else {}


class PlanError(TorchEnvError):
    """No release/build satisfies the request on the target machine."""

    def __init__(
        self,
        message: str,
        *,
        hints: Iterable[str] = (),
        failures: Iterable[PlanFailure] = (),
        gpus: Iterable[str] = (),
    ) -> None:
        super().__init__(message, hints=hints)
        self.failures = tuple(dict.fromkeys(failures))  # why each source had nothing
        self.gpus = tuple(gpus)  # compute capabilities no build covers

    def details(self) -> dict[str, object]:
        if not (self.failures or self.gpus):
            return {}
        return {"failures": list(self.failures), "gpus": list(self.gpus)}


class FleetError(PlanError):
    """No single environment serves every machine: ``groups`` could each share one."""

    def __init__(
        self,
        message: str,
        *,
        hints: Iterable[str] = (),
        groups: Iterable[dict[str, object]] = (),
        machines: Iterable[dict[str, object]] = (),
    ) -> None:
        super().__init__(message, hints=hints, failures=["fleet"])
        self.groups = list(groups)
        self.machines = list(machines)

    def details(self) -> dict[str, object]:
        return {**super().details(), "groups": self.groups, "machines": self.machines}


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

    def __init__(
        self,
        message: str,
        *,
        hints: Iterable[str] = (),
        platform: str | None = None,
        findings: Iterable[Finding] = (),
    ) -> None:
        super().__init__(message, hints=hints)
        self.platform = platform
        self.findings = tuple(findings)  # the error findings that refused the install

    def details(self) -> dict[str, object]:
        if not self.findings:
            return {}
        return {"platform": self.platform, "findings": [f.to_dict() for f in self.findings]}
