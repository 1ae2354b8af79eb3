"""Detect the NVIDIA driver and GPUs: NVML first, then nvidia-smi, then /proc.

Each probe returns ``None`` on failure and never raises; what went wrong becomes
a note in the report. ``CONDA_OVERRIDE_CUDA`` is honoured as conda honours it,
and an explicit ``cuda_override`` (``--cuda``) wins over both.

TODO(detect helper): implement.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    uuid: str | None
    compute_capability: str | None  # "8.9"
    memory_mib: int | None

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "compute_capability": self.compute_capability,
            "memory_mib": self.memory_mib,
        }


@dataclass(frozen=True)
class Detection:
    driver_version: str | None
    cuda_version: str | None  # the driver's maximum CUDA version, "12.4"
    source: str  # "nvml" | "nvidia-smi" | "proc" | "override" | "none"
    gpus: tuple[Gpu, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "driver_version": self.driver_version,
            "cuda_version": self.cuda_version,
            "source": self.source,
            "gpus": [gpu.to_dict() for gpu in self.gpus],
            "notes": list(self.notes),
        }
