"""Load the compatibility data in ``recipes/`` (shipped inside the wheel).

Data, not code: releases, CUDA variants, arch lists and driver minimums are JSON
files validated against a schema on load; every row names its source key.

TODO(recipes helper): implement; the public API below is what plan, install and
doctor use.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchList:
    """GPU code in one build: cubins (SASS) per compute capability, and PTX."""

    sass: tuple[str, ...]  # ("5.0", "6.0", ..., "9.0")
    ptx: tuple[str, ...]  # ("9.0",) where +PTX
    source: str

    def runs_on(self, compute_capability: str) -> bool:
        """Cubin of the same major and minor <= the GPU's, or PTX for an arch <= the GPU's."""
        raise NotImplementedError


@dataclass(frozen=True)
class CudaVariant:
    cuda: str  # "12.4"
    platforms: tuple[str, ...]  # platforms this variant is published for
    archs: dict[str, ArchList]  # per platform


@dataclass(frozen=True)
class Release:
    channel: str  # "pytorch" | "conda-forge"
    pytorch: str
    torchvision: str | None
    torchaudio: str | None
    torchaudio_platforms: tuple[str, ...]  # where torchaudio exists (conda-forge: not win-64)
    python: tuple[str, ...]  # ("3.9", ..., "3.12"), oldest first
    cpu_platforms: tuple[str, ...]  # platforms with a CPU (osx: CPU/MPS) build
    cuda_variants: tuple[CudaVariant, ...]  # oldest CUDA first
    source: tuple[str, ...]


@dataclass(frozen=True)
class Recipes:
    releases: tuple[Release, ...]  # newest first within each channel
    sources: dict[str, str]  # source key -> citation

    def releases_for(self, channel: str) -> tuple[Release, ...]:
        raise NotImplementedError

    def min_driver(self, cuda: str, platform: str) -> str | None:
        """Minimum driver for full support of CUDA ``cuda`` (Table 3), or None if unknown."""
        raise NotImplementedError

    def minor_compat_driver(self, cuda_major: int, platform: str) -> str | None:
        """Minimum driver for minor-version compatibility across a CUDA major (Table 2)."""
        raise NotImplementedError

    def arch_list(
        self, channel: str, pytorch: str, cuda: str, platform: str
    ) -> ArchList | None:
        raise NotImplementedError


def load_recipes() -> Recipes:
    raise NotImplementedError
