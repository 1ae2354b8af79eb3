"""The plan's types: what is asked (``PlanRequest``) and what is chosen (``Plan``).

The types live below the code that builds them (``plan.search``,
``plan.assemble``) so that imports point one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Compute = Literal["cuda", "cpu", "mps"]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: the platforms and the user's wishes. The machine is a separate input.

    ``platforms[0]`` is the primary platform (usually the machine's): it decides the release.
    """

    platforms: tuple[str, ...]
    cpu: bool = False
    pytorch: str | None = None  # "2.2", "2.5.1", ">=2.3"
    python: str | None = None  # "3.11"
    source: str = "auto"  # "auto" or a source name (see ``sources``)
    base_channel: str = "conda-forge"  # or "defaults"


@dataclass(frozen=True)
class Rejection:
    candidate: str  # "pytorch 2.5.1 cuda 12.4 (pytorch channel)"
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"candidate": self.candidate, "reason": self.reason}


@dataclass(frozen=True)
class PlatformPlan:
    """The variant chosen for one platform of the environment."""

    platform: str
    compute: Compute
    cuda: str | None
    specs: tuple[str, ...]  # dependency lines for this platform
    virtual_packages: dict[str, str] = field(default_factory=dict)  # {"__cuda": "12.4", ...}

    def to_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "compute": self.compute,
            "cuda": self.cuda,
            "specs": list(self.specs),
            "virtual_packages": dict(self.virtual_packages),
        }


@dataclass(frozen=True)
class Plan:
    source: str  # "pytorch" | "conda-forge"
    channels: tuple[str, ...]  # priority order
    pytorch: str
    torchvision: str | None
    torchaudio: str | None
    python: str
    compute: Compute  # of the primary platform
    cuda: str | None  # of the primary platform
    specs: tuple[str, ...]  # of the primary platform
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    platforms: tuple[PlatformPlan, ...]
    sources: tuple[str, ...] = ()  # recipe source keys behind the choice ("S2", "S8", ...)
    # A newer release another source has for the same machine, with the flag that takes it.
    newer: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "channels": list(self.channels),
            "pytorch": self.pytorch,
            "torchvision": self.torchvision,
            "torchaudio": self.torchaudio,
            "python": self.python,
            "compute": self.compute,
            "cuda": self.cuda,
            "specs": list(self.specs),
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "rejected": [r.to_dict() for r in self.rejected],
            "platforms": [p.to_dict() for p in self.platforms],
            "sources": list(self.sources),
            "newer": self.newer,
        }
