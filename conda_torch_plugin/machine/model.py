"""The machine as a value: its NVIDIA driver, GPUs and conda platform.

``detect`` returns a :class:`Machine`; the plan, the install check and the
doctor take one. Nothing here probes anything, so a machine can as well come
from flags (``--cuda``, ``--gpu-arch``, ``--driver``) or describe another
computer, and a plan for several machines is a call with several of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

# Where the driver facts came from: a probe, an override, flags that describe the machine,
# or a profile file (``detect --json``, nvidia-smi's CSV or XML) describing another one.
MachineSource = Literal["nvml", "nvidia-smi", "proc", "override", "none", "flags", "profile"]

# The version of ``detect --json``'s layout (a machine profile); readers refuse newer ones.
PROFILE_SCHEMA = 1


@dataclass(frozen=True)
class Gpu:
    """One GPU; ``name`` is None when the GPU was given as a bare compute capability."""

    index: int
    name: str | None
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
class Machine:
    """What a plan or a check needs to know about one computer.

    ``cuda_version`` is the driver's maximum CUDA version ("12.4"); None means no
    usable driver. ``platform`` is the conda platform (None: not one PyTorch is
    built for, or not known); ``glibc`` and ``osx`` the C library and macOS
    versions where known.
    """

    driver_version: str | None
    cuda_version: str | None
    source: MachineSource
    gpus: tuple[Gpu, ...] = ()
    notes: tuple[str, ...] = ()
    platform: str | None = None
    glibc: str | None = None
    osx: str | None = None
    hostname: str | None = None
    cuda_arch_override: str | None = None  # CONDA_OVERRIDE_CUDA_ARCH

    @property
    def name(self) -> str:
        """How reasons and verdicts call this machine."""
        return self.hostname or "this machine"

    @property
    def cuda_arch(self) -> str | None:
        """CEP 46's ``__cuda_arch``: the lowest compute capability across the GPUs.

        None without ``__cuda`` (no driver CUDA version); ``CONDA_OVERRIDE_CUDA_ARCH`` wins.
        """
        if self.cuda_version is None:
            return None
        if self.cuda_arch_override:
            return self.cuda_arch_override
        known = [g.compute_capability for g in self.gpus if g.compute_capability]
        return min(known, key=_cc_key) if known else None

    @property
    def has_nvidia(self) -> bool:
        """An NVIDIA driver or GPU is known here (a login node or CI runner has neither)."""
        return bool(self.driver_version or self.cuda_version or self.gpus)

    def to_dict(self) -> dict[str, object]:
        """The machine profile: what ``detect --json`` prints and ``--machine`` reads."""
        return {
            "schema": PROFILE_SCHEMA,
            "hostname": self.hostname,
            "platform": self.platform,
            "glibc": self.glibc,
            "osx": self.osx,
            "driver_version": self.driver_version,
            "cuda_version": self.cuda_version,
            "cuda_arch": self.cuda_arch,
            "source": self.source,
            "gpus": [gpu.to_dict() for gpu in self.gpus],
            "notes": list(self.notes),
        }

    def without_gpus(self) -> Machine:
        """The same computer seen without its NVIDIA driver and GPUs (a CPU-only plan)."""
        return replace(self, driver_version=None, cuda_version=None, gpus=())


def _cc_key(cc: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in cc.split("."))
    except ValueError:
        return (1 << 30,)


def gpus_from_capabilities(capabilities: tuple[str, ...]) -> tuple[Gpu, ...]:
    """GPUs given only by compute capability (``--gpu-arch 8.6``)."""
    return tuple(Gpu(i, None, None, cc, None) for i, cc in enumerate(capabilities))


def with_flags(
    detected: Machine | None,
    *,
    platform: str | None,
    cuda: str | None = None,
    driver: str | None = None,
    gpu_archs: tuple[str, ...] = (),
) -> Machine:
    """The machine to plan for: what was detected, with the flags winning.

    ``gpu_archs`` replaces the detected GPUs, ``driver`` the detected driver
    version and ``cuda`` the driver's CUDA version. ``detected`` is None when
    nothing was probed (the flags describe the machine completely, or a CPU
    build was asked for). An empty ``CONDA_OVERRIDE_CUDA`` means "no CUDA", as
    conda reads it: the driver and GPUs the machine has are then not used.
    """
    flag_gpus = gpus_from_capabilities(gpu_archs)
    if detected is None:
        return Machine(driver, cuda, "flags", flag_gpus, platform=platform)
    if detected.source == "override" and detected.cuda_version is None and cuda is None:
        note = "CONDA_OVERRIDE_CUDA is empty: planning as if there were no NVIDIA driver"
        return replace(
            detected,
            driver_version=driver,
            cuda_version=None,
            gpus=flag_gpus,
            notes=(*detected.notes, note),
            platform=platform,
        )
    gpus, notes = flag_gpus, detected.notes
    if not gpu_archs:
        gpus = tuple(g for g in detected.gpus if g.compute_capability)
        notes += tuple(
            f"GPU {g.index} ({g.name}): compute capability unknown, not checked"
            for g in detected.gpus
            if not g.compute_capability
        )
    return replace(
        detected,
        driver_version=driver or detected.driver_version,
        cuda_version=cuda or detected.cuda_version,
        gpus=gpus,
        notes=notes,
        platform=platform,
    )
