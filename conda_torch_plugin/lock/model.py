"""The lock workflow's types: what is read before solving, what a solver backend
returns, and the results ``lock`` and ``check`` hand to the CLI."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from conda_torch_plugin.condalock.envspec import LockSpec, VirtualPackageSpec
    from conda_torch_plugin.condalock.lockfile import LockFile
    from conda_torch_plugin.network import NetworkSettings

Progress = Callable[[str], None]
SolverName = Literal["rattler", "conda-lock"]


@dataclass(frozen=True)
class PlatformSummary:
    platform: str
    packages: int
    flavour: str  # "CUDA 12.4", "CPU", "CPU/MPS", "unknown"
    torch: dict[str, str]  # {"pytorch": "2.5.1 py3.12_cuda12.4_cudnn9.1.0_0", ...}

    def to_dict(self) -> dict[str, object]:
        return {"packages": self.packages, "flavour": self.flavour, **self.torch}


@dataclass(frozen=True)
class LockResult:
    lockfile: Path
    platforms: tuple[PlatformSummary, ...]
    content_hash: dict[str, str]
    written: bool  # False when the file already held exactly these bytes
    explicit_files: tuple[Path, ...]
    solver: SolverName
    solve_seconds: float | None  # time inside the bare rattler solve calls (None: conda-lock)
    seconds: float  # the whole lock() call

    def to_dict(self) -> dict[str, object]:
        return {
            "lockfile": str(self.lockfile),
            "platforms": {p.platform: p.to_dict() for p in self.platforms},
            "content_hash": dict(self.content_hash),
            "written": self.written,
            "explicit_files": [str(p) for p in self.explicit_files],
            "solver": self.solver,
            "solve_seconds": None if self.solve_seconds is None else round(self.solve_seconds, 4),
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class CheckResult:
    lockfile: Path
    platforms: tuple[str, ...]  # what the environment asks for
    stale: tuple[str, ...]  # in both, content hash differs
    added: tuple[str, ...]  # asked for, not in the lock
    removed: tuple[str, ...]  # in the lock, no longer asked for
    details: tuple[str, ...] = ()  # what changed, where it can be told
    missing: bool = False  # no lock file at all

    @property
    def up_to_date(self) -> bool:
        return not (self.missing or self.stale or self.added or self.removed)

    @property
    def message(self) -> str:
        if self.missing:
            return f"{self.lockfile} does not exist"
        if self.up_to_date:
            return f"{self.lockfile} is up to date for {', '.join(self.platforms)}"
        parts = []
        if self.stale:
            parts.append(
                f"stale for {', '.join(self.stale)} (the inputs changed since it was made)"
            )
        if self.added:
            parts.append(f"missing {', '.join(self.added)} (asked for, not in the lock)")
        if self.removed:
            parts.append(f"has {', '.join(self.removed)}, which the environment no longer asks for")
        return f"{self.lockfile} is out of date: " + "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "lockfile": str(self.lockfile),
            "up_to_date": self.up_to_date,
            "platforms": list(self.platforms),
            "stale": list(self.stale),
            "added": list(self.added),
            "removed": list(self.removed),
            "details": list(self.details),
            "missing": self.missing,
            "message": self.message,
        }


@dataclass(frozen=True)
class LockInputs:
    """Everything read before solving: environment, virtual packages, paths."""

    env_path: Path
    lockfile: Path
    spec: LockSpec
    platforms: tuple[str, ...]
    vp_path: Path | None
    vp_spec: VirtualPackageSpec | None
    virtual_packages: dict[str, dict[str, str]] = field(default_factory=dict)
    network: NetworkSettings | None = None  # None: the environment's (network.from_environ)


@dataclass(frozen=True)
class Locked:
    """What a solver backend produced: the lock, its text, and the time spent solving."""

    model: LockFile
    text: str  # the conda-lock.yml to write
    solve_seconds: float | None  # inside the bare solve calls (None: not measured)


class SolverBackend(Protocol):
    """One way of solving ``LockInputs`` into a lock (``lock.rattler``, ``lock.conda_lock_solver``).

    ``prepare`` runs before any file is read, so a backend that cannot run here
    refuses at once; ``solve`` returns the lock without writing anything.
    """

    name: SolverName

    def prepare(self) -> None: ...

    def solve(
        self,
        inputs: LockInputs,
        *,
        channel_alias: str | None,
        custom_channels: Mapping[str, str] | None,
        progress: Progress | None,
        command: str,
    ) -> Locked: ...


def relative_posix(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base)).as_posix()
