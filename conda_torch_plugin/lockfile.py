"""conda-lock's unified ``conda-lock.yml`` (version 1): model, canonical writer, reader.

Written without importing conda_lock (0.4 s of imports); conda-lock's own parser
and ``conda-lock render`` read what we write.

TODO(lock helper): implement read_lockfile / write_lockfile.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    build: str
    platform: str  # the lock platform this entry belongs to ("linux-64"), also for noarch packages
    url: str
    md5: str
    sha256: str
    dependencies: dict[str, str] = field(default_factory=dict)
    manager: str = "conda"
    category: str = "main"
    optional: bool = False

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class LockFile:
    platforms: tuple[str, ...]
    channels: tuple[str, ...]  # channel URLs, credentials stripped
    content_hash: dict[str, str]  # per platform
    sources: tuple[str, ...]  # ("environment.yml",)
    packages: tuple[LockedPackage, ...]

    def packages_for(self, platform: str) -> tuple[LockedPackage, ...]:
        return tuple(p for p in self.packages if p.platform == platform)
