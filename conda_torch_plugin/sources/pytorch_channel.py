"""The ``pytorch`` + ``nvidia`` channels: PyTorch's own conda channel, frozen at 2.5.1.

Variants are selected with ``pytorch-cuda=X.Y`` (CUDA) or ``cpuonly`` (CPU), both of
which pin ``pytorch-mutex``; macOS builds carry no mutex. Build strings:
``py3.12_cuda12.4_cudnn9.1.0_0``, ``py3.10_cpu_0``, macOS ``py3.12_0``;
torchvision/torchaudio ``py312_cu124``, ``py312_cpu``; older ``py36_cu92``.
Recipes: ``recipes/pytorch-channel.json``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from conda_torch_plugin import compat
from conda_torch_plugin.errors import LockError
from conda_torch_plugin.findings import Finding
from conda_torch_plugin.sources.base import (
    UNKNOWN,
    WRITE_HINT,
    Flavour,
    PyTorchSource,
    dep_version,
    digits_to_version,
    major_minor,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from conda_torch_plugin.doctor._prefix import InstalledRecord
    from conda_torch_plugin.sources.base import RequestedSpec

_CUDA = re.compile(r"^py\d+\.\d+_cuda(\d+)\.(\d+)(?:\.\d+)*_cudnn[\d.]+_\d+$")
_CPU = re.compile(r"^py\d+\.\d+_cpu_\d+$")
_PLAIN = re.compile(r"^py\d+\.\d+_\d+$")  # macOS builds carry no compute marker
_COMPANION_CUDA = re.compile(r"^py\d+_cu(\d+)$")
_COMPANION_CPU = re.compile(r"^py\d+_cpu$")


class PytorchChannel(PyTorchSource):
    name: ClassVar[str] = "pytorch"
    recipe_file: ClassVar[str] = "pytorch-channel.json"
    adjective: ClassVar[str] = "pytorch-channel"
    where: ClassVar[str] = "pytorch channel"
    subject: ClassVar[str] = "the pytorch channel"
    channel_names: ClassVar[tuple[str, ...]] = ("pytorch", "nvidia")
    successor: ClassVar[str | None] = "conda-forge"
    # Nothing was published after 2.5.1 (S15); its rows were checked against its repodata.
    reads_repodata: ClassVar[bool] = False

    def channels(self, base_channel: str) -> tuple[str, ...]:
        return ("pytorch", "nvidia", base_channel)

    def channels_reason(self, base_channel: str) -> str:
        text = (
            f"Channels: pytorch and nvidia for the torch family and its CUDA libraries, then "
            f"{base_channel} for everything else (python, mkl, numpy, ...)."
        )
        if base_channel == "defaults":
            text += " The defaults channel carries Anaconda's terms of service for organisations."
        return text

    def auto_reason(self, newest: str, what: str) -> str:
        return (
            "The pytorch channel (with nvidia for the CUDA libraries) can serve this request, so "
            f"it is used (source auto); it carries PyTorch up to {newest}, the last release "
            "published there."
        )

    def no_release_message(self, versions: Sequence[str], spec: str) -> str:
        return (
            f"the pytorch channel has no release matching --pytorch {spec}: it carries "
            f"{versions[-1]} to {versions[0]}, the last release published there"
        )

    def torch_specs(
        self, version: str, platform: str, compute: str, cuda: str | None
    ) -> tuple[list[str], list[str]]:
        if compute == "cuda":
            return [f"pytorch={version}"], [f"pytorch-cuda={cuda}"]
        if compat.is_osx(platform):
            return [f"pytorch={version}"], []  # macOS builds have no pytorch-mutex to select
        return [f"pytorch={version}"], ["cpuonly"]

    def check_variant_pinned(
        self,
        specs: Mapping[str, RequestedSpec],
        platform: str,
        virtual_packages: Mapping[str, str],
        *,
        source: str,
    ) -> None:
        """``pytorch-cuda=X.Y`` or ``cpuonly`` (or a build string naming it) on linux and win:
        without it the ``pytorch-mutex`` build number picks whichever variant comes first."""
        by_name = specs
        torch_build = by_name["pytorch"].build if "pytorch" in by_name else None
        if not platform.startswith(("linux-", "win-")):
            return  # macOS builds have no CUDA variants
        if "pytorch-cuda" in by_name or "cpuonly" in by_name:
            return
        if torch_build and (re.search(r"cuda\d", torch_build) or "cpu" in torch_build):
            return
        raise LockError(
            f"{source} asks for pytorch from the pytorch channel on {platform} without pinning "
            "its variant: the solver would pick a CUDA build of whichever CUDA version comes "
            "first in the channel",
            hints=[
                "add pytorch-cuda=X.Y (e.g. pytorch-cuda=12.4) for a CUDA build, or cpuonly for "
                "a CPU build",
                WRITE_HINT,
            ],
        )

    def marker_flavour(self, name: str, version: str, build: str) -> Flavour | None:
        if name == "pytorch-mutex":
            return Flavour(build, None, self.name) if build in ("cuda", "cpu") else UNKNOWN  # type: ignore[arg-type]
        if name == "cpuonly":
            return Flavour("cpu", None, self.name)
        if name == "pytorch-cuda":
            return Flavour("cuda", major_minor(version), self.name)
        return None

    def build_flavour(self, build: str) -> Flavour | None:
        if m := _CUDA.match(build):
            return Flavour("cuda", f"{int(m[1])}.{int(m[2])}", self.name)
        if _CPU.match(build) or _PLAIN.match(build) or _COMPANION_CPU.match(build):
            return Flavour("cpu", None, self.name)
        if m := _COMPANION_CUDA.match(build):
            return Flavour("cuda", digits_to_version(m[1]), self.name)
        return None

    def depends_flavour(self, depends: Mapping[str, str]) -> Flavour | None:
        if "pytorch-cuda" in depends:
            return Flavour("cuda", dep_version(depends["pytorch-cuda"]), self.name)
        mutex = depends.get("pytorch-mutex", "")
        if mutex.endswith(" cuda"):
            return Flavour("cuda", None, self.name)
        if mutex.endswith(" cpu"):
            return Flavour("cpu", None, self.name)
        return None

    def doctor_markers(
        self,
        torch: InstalledRecord,
        flavour: Flavour,
        records: Mapping[str, InstalledRecord],
        prefix: Path,
    ) -> list[Finding]:
        """``pytorch-mutex``, ``cpuonly`` and ``pytorch-cuda`` must agree with the build."""
        findings: list[Finding] = []
        reinstall = f"conda install -p {prefix} -c pytorch -c nvidia"
        mutex = records.get("pytorch-mutex")
        macos = (torch.subdir or "").startswith("osx")
        wanted_mutex = "cuda" if flavour.compute == "cuda" else "cpu"
        if mutex is None:
            if not macos:  # the pytorch channel's macOS builds have no mutex
                findings.append(
                    Finding(
                        "warning",
                        "pytorch-mutex is missing: nothing stops conda from mixing CPU and CUDA "
                        "builds of torchvision/torchaudio into this environment",
                        f"{reinstall} pytorch-mutex=1.0={wanted_mutex}",
                        check="pytorch-mutex",
                    )
                )
        elif mutex.build != wanted_mutex:
            findings.append(
                Finding(
                    "error",
                    f"pytorch-mutex is {mutex.build!r} but pytorch is a {flavour.label} build",
                    f"{reinstall} pytorch-mutex=1.0={wanted_mutex}",
                    check="pytorch-mutex",
                )
            )
        else:
            findings.append(
                Finding("ok", f"pytorch-mutex 1.0 {mutex.build} agrees", check="pytorch-mutex")
            )

        cpuonly = records.get("cpuonly")
        if flavour.compute == "cuda":
            if cpuonly is not None:
                findings.append(
                    Finding(
                        "error",
                        f"cpuonly is installed next to a {flavour.label} build of pytorch",
                        f"conda remove -p {prefix} cpuonly",
                        check="cpuonly",
                    )
                )
            findings += _cuda_runtime_marker(flavour, records, reinstall)
        elif "pytorch-cuda" in records:
            findings.append(
                Finding(
                    "warning",
                    f"pytorch-cuda {records['pytorch-cuda'].version} is installed next to a "
                    f"{flavour.label} build of pytorch: CUDA libraries that nothing uses",
                    f"conda remove -p {prefix} pytorch-cuda",
                    check="pytorch-cuda",
                )
            )
        return findings

    def companion_fix(self, name: str, version: str, flavour: Flavour, prefix: Path) -> str:
        digits = (flavour.cuda or "").replace(".", "")
        build = f"*_cu{digits}" if flavour.compute == "cuda" else "*_cpu"
        channels = "-c pytorch -c nvidia" if flavour.compute == "cuda" else "-c pytorch"
        if flavour.compute == "mps":  # macOS builds of the pytorch channel carry no marker
            build = "*"
        return f"conda install -p {prefix} {channels} '{name}={version}={build}'"


def _cuda_runtime_marker(
    flavour: Flavour, records: Mapping[str, InstalledRecord], reinstall: str
) -> list[Finding]:
    """pytorch-cuda (or 1.12's cudatoolkit) must carry the build's CUDA X.Y."""
    marker = records.get("pytorch-cuda") or records.get("cudatoolkit")
    if marker is None:
        return [
            Finding(
                "error",
                f"pytorch is a {flavour.label} build but neither pytorch-cuda nor cudatoolkit "
                "is installed: the CUDA runtime libraries are missing",
                f"{reinstall} pytorch-cuda={flavour.cuda}",
                check="pytorch-cuda",
            )
        ]
    if major_minor(marker.version) != flavour.cuda:
        return [
            Finding(
                "error",
                f"{marker.name} {marker.version} does not match the {flavour.label} build of "
                "pytorch",
                f"{reinstall} {marker.name}={flavour.cuda}",
                check="pytorch-cuda",
            )
        ]
    return [Finding("ok", f"{marker.name} {marker.version} agrees", check="pytorch-cuda")]
