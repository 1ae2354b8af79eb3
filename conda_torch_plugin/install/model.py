"""The install's types: what will be installed (``InstallPlan`` of ``PlannedPackage``),
what an update changes (``Change``), what was done (``InstallResult``), and the
progress callbacks the CLI passes in (``InstallProgress``).

They live below the stages that use them (``_workflow``, ``_fetch``,
``_transaction``) so that imports point one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from conda_torch_plugin.findings import Finding
    from conda_torch_plugin.network import NetworkSettings

InstallMode = Literal["create", "update"]
ChangeKind = Literal["add", "remove", "change"]


class InstallProgress(Protocol):
    """What the CLI passes as ``progress``: step messages and per-package counters."""

    def step(self, message: str) -> None: ...

    def advance(self, phase: str, name: str, done: int, total: int) -> None: ...


@dataclass(frozen=True)
class PlannedPackage:
    name: str
    version: str
    build: str
    url: str  # where it is fetched from (after --channel-alias)
    sha256: str
    md5: str
    size: int | None  # bytes, None when unknown before download
    cached: bool  # already local (file:// or a verified archive in the cache)

    @property
    def local(self) -> bool:
        """Read in place from a local (``file://``) channel: nothing to download."""
        from conda_torch_plugin.install._fetch import local_path

        return local_path(self.url) is not None

    def to_dict(self) -> dict[str, object]:
        from conda_torch_plugin.condalock.lockfile import redact_credentials

        return {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "url": redact_credentials(self.url),
            "size": self.size,
            "cached": self.cached,
            "local": self.local,
        }


@dataclass(frozen=True)
class Change:
    """One package that an update adds, removes or replaces (``old``/``new``: "version build")."""

    name: str
    kind: ChangeKind
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class InstallPlan:
    platform: str
    prefix: Path
    mode: str  # "create" (absent or empty folder) | "update" (an existing environment)
    cache_dir: Path
    packages: tuple[PlannedPackage, ...]
    # What an update changes in the prefix, by name; every package for a new prefix.
    changes: tuple[Change, ...] = ()
    # conda's package cache (its first writable pkgs_dirs) inside conda; None: CACHE/pkgs.
    pkgs_dir: Path | None = None
    network: NetworkSettings | None = None  # None: the environment's (network.from_environ)
    relock: str = "conda torch-env lock"  # the command that remakes this lock (with its -f)
    # What the plan found and worked around (a malformed record of pip packages, ignored).
    findings: tuple[Finding, ...] = ()

    @property
    def package_cache(self) -> Path:
        """Where archives (``FILE``) and extracted packages (``NAME-VERSION-BUILD/``) live,
        laid out as conda's ``pkgs_dirs`` so conda and this tool share one cache."""
        return Path(self.pkgs_dir) if self.pkgs_dir else Path(self.cache_dir) / "pkgs"

    @property
    def nothing_to_do(self) -> bool:
        """An existing environment that already holds exactly the locked packages."""
        return self.mode == "update" and not self.changes

    @property
    def total_bytes(self) -> int | None:
        sizes = [p.size for p in self.packages]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    @property
    def download_bytes(self) -> int | None:
        sizes = [p.size for p in self.packages if not p.cached]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    @property
    def download_count(self) -> int:
        return sum(1 for p in self.packages if not p.cached)

    def to_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "prefix": str(self.prefix),
            "mode": self.mode,
            "cache_dir": str(self.cache_dir),
            "package_cache": str(self.package_cache),
            "count": len(self.packages),
            "total_bytes": self.total_bytes,
            "download_bytes": self.download_bytes,
            "download_count": self.download_count,
            "packages": [p.to_dict() for p in self.packages],
            "changes": [c.to_dict() for c in self.changes],
            "nothing_to_do": self.nothing_to_do,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class InstallResult:
    plan: InstallPlan
    dry_run: bool
    installed: tuple[str, ...] = ()  # "name-version-build" linked by this transaction
    removed: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def prefix(self) -> Path:
        return self.plan.prefix

    def to_dict(self) -> dict[str, object]:
        return {
            **self.plan.to_dict(),
            "dry_run": self.dry_run,
            "installed": list(self.installed),
            "removed": list(self.removed),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }
