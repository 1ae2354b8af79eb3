"""What the doctor returns: findings (one verdict each, with a fix) and the report holding them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import TorchEnvError

if TYPE_CHECKING:
    from pathlib import Path

    from conda_torch_plugin.flavour import Flavour

SEVERITIES = ("ok", "info", "warning", "error")


class NotAnEnvironment(TorchEnvError):
    """The prefix is missing or holds no ``conda-meta/``: nothing to diagnose."""


@dataclass(frozen=True)
class Finding:
    """One verdict. ``fix`` is a one-line remedy (None when there is nothing to fix)."""

    severity: str  # "ok" | "info" | "warning" | "error"
    message: str
    fix: str | None = None
    check: str = ""  # what was checked: "pytorch", "torchvision", "driver", "gpu", "pip", "run"...
    detail: str | None = None  # extra lines (a stderr tail), shown indented

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "detail": self.detail,
        }


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
