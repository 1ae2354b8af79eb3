"""What the doctor returns: the report holding its findings (``findings.Finding``, shared
with install's machine check), and the error for a prefix that is no environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import TorchEnvError
from conda_torch_plugin.findings import SEVERITIES, Finding

if TYPE_CHECKING:
    from pathlib import Path

    from conda_torch_plugin.flavour import Flavour

# Finding and SEVERITIES are re-exported: every doctor check imports them from here.
__all__ = ["SEVERITIES", "DoctorReport", "Finding", "NotAnEnvironment"]


class NotAnEnvironment(TorchEnvError):
    """The prefix is missing or holds no ``conda-meta/``: nothing to diagnose."""


@dataclass(frozen=True)
class DoctorReport:
    prefix: Path
    flavour: Flavour | None  # None when conda installed no pytorch here
    findings: tuple[Finding, ...]
    platform: str | None = None  # the environment's subdir, from the pytorch record
    packages: dict[str, str] = field(default_factory=dict)  # name -> "version build"
    runtime: dict[str, Any] | None = None  # what the environment's python reported (--run)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def to_dict(self) -> dict[str, object]:
        return {
            "prefix": str(self.prefix),
            "ok": self.ok,
            "platform": self.platform,
            "flavour": self.flavour.to_dict() if self.flavour else None,
            "packages": dict(self.packages),
            "findings": [f.to_dict() for f in self.findings],
            "runtime": self.runtime,
        }
