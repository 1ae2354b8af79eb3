"""One verdict of a check, as ``install``'s machine check and the doctor both report it.

A finding says what was found (``message``), how bad it is (``severity``) and,
when there is something to do, one line that does it (``fix``). ``check`` names
what was looked at ("driver", "gpu", "pytorch", ...) and ``code`` is a stable
identifier for the verdict ("driver-too-old") where scripts may branch on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["ok", "info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("ok", "info", "warning", "error")


@dataclass(frozen=True)
class Finding:
    """One verdict. ``fix`` is a one-line remedy (None when there is nothing to fix)."""

    severity: Severity
    message: str
    fix: str | None = None
    check: str = ""  # what was checked: "pytorch", "torchvision", "driver", "gpu", "pip", "run"...
    detail: str | None = None  # extra lines (a stderr tail, detection notes), shown indented
    code: str | None = None  # stable identifier, e.g. "driver-too-old"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "detail": self.detail,
        }
