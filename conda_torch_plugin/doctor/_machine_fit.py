"""Can this machine run the environment: the driver's CUDA, and every GPU against the arch list.

The rules and their findings are ``machine.check``'s, shared with install;
this module decides whether this machine can be checked at all (a detection,
an environment of this machine's platform) and names the doctor's remedies:
recreate the environment. A CUDA environment on a machine without a driver
is a warning here, not an error: torch still imports and runs on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.doctor._report import Finding
from conda_torch_plugin.machine.check import (
    floor_findings,
    machine_findings,
    needs_conda_forge,
    system_floors,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from conda_torch_plugin.doctor._prefix import InstalledRecord
    from conda_torch_plugin.flavour import Flavour
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.recipes import Recipes


def prefix_floor_findings(
    records: Iterable[InstalledRecord], platform: str, detection: Machine | None
) -> list[Finding]:
    """The installed packages' own ``__glibc >=X`` / ``__osx >=X`` against this machine.

    An environment made elsewhere (another node, a copied folder, an unpack of a
    conda-pack archive) can hold builds for a newer C library or macOS than this
    machine's; torch then fails to import with a loader error. Named here first.
    """
    if detection is None or platform != current_platform():
        return []
    floors = system_floors(d for record in records for d in record.depends)
    return floor_findings(floors, detection)


def prefix_machine_findings(
    torch: InstalledRecord,
    flavour: Flavour,
    platform: str,
    detection: Machine | None,
    recipes: Recipes,
    prefix: Path,
) -> list[Finding]:
    if detection is None:
        return [Finding("info", "this machine was not checked (no detection)", check="driver")]
    if flavour.compute == "cuda" and platform != current_platform():
        return [
            Finding(
                "info",
                f"a {platform} environment on a {current_platform()} machine: driver and GPUs "
                "not checked",
                check="driver",
            )
        ]
    return machine_findings(
        flavour,
        torch.version,
        platform,
        detection,
        recipes,
        remedies=PrefixRemedies(prefix),
        no_driver="warning",
    )


@dataclass(frozen=True)
class PrefixRemedies:
    """The doctor's way out: recreate the environment at ``prefix`` for this machine."""

    prefix: Path

    def cuda_build(self) -> str:
        return f"conda torch-env create -p {self.prefix}"

    def cpu_build(self) -> str:
        return f"conda torch-env create -p {self.prefix} --cpu"

    def for_driver(self, driver_cuda: str) -> str:
        return f"recreate for this driver: conda torch-env create -p {self.prefix}"

    def for_gpu(self, cc: str, *, conda_forge: bool) -> str:
        if conda_forge:
            return f"conda torch-env create -p {self.prefix} --source conda-forge"
        return (
            f"conda torch-env create -p {self.prefix} "
            f"(plans a build that covers compute capability {cc})"
        )

    def runtime_check(self) -> str | None:
        return f"check it at runtime: conda torch-env doctor -p {self.prefix} --run"


def uncovered_fix(flavour: Flavour | None, archs: Iterable[str], cc: str, prefix: Path) -> str:
    """The fix for a GPU the build does not cover (conda-forge for one newer than the channel)."""
    return PrefixRemedies(prefix).for_gpu(cc, conda_forge=needs_conda_forge(flavour, archs, cc))
