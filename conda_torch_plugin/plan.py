"""Choose a PyTorch release and build for a machine, and explain the choice.

The policy (README "How the plan is chosen"):
1. A CUDA build is compatible when its CUDA version <= the driver's maximum CUDA
   version; failing that, one of the same major whose minor-version-compatibility
   driver minimum is met, with a warning.
2. A build runs on a GPU when its arch list has a cubin of the same major and a
   minor <= the GPU's, or PTX for an arch <= the GPU's. Every GPU must be covered.
3. Newest release satisfying the request, then its highest compatible CUDA
   variant; Python defaults to the newest that release supports.
4. Source ``auto`` prefers the pytorch+nvidia channels, else conda-forge.
5. No NVIDIA GPU: a CPU build. A GPU no build can serve: an error.

TODO(plan helper): implement make_plan / request_for_machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlanRequest:
    """What to plan for. ``platforms[0]`` is the primary platform (usually this machine's)."""

    platforms: tuple[str, ...]
    cuda: str | None  # the driver's maximum CUDA version; None = no usable driver
    driver: str | None = None
    gpu_archs: tuple[str, ...] = ()  # compute capabilities to cover, "8.6"
    gpu_names: tuple[str, ...] = ()  # same order as gpu_archs, for messages
    cpu: bool = False
    pytorch: str | None = None  # "2.2", "2.5.1", ">=2.3"
    python: str | None = None  # "3.11"
    source: str = "auto"  # "auto" | "pytorch" | "conda-forge"
    base_channel: str = "conda-forge"  # or "defaults"
    notes: tuple[str, ...] = ()  # from detection, carried into the explanation


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
    compute: str  # "cuda" | "cpu" | "mps"
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
    compute: str  # of the primary platform
    cuda: str | None  # of the primary platform
    specs: tuple[str, ...]  # of the primary platform
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    platforms: tuple[PlatformPlan, ...]

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
        }
