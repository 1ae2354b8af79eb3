"""conda-forge: PyTorch built by the pytorch-cpu feedstock, CUDA libraries from conda-forge.

Variants are selected with a build-string glob (``pytorch=V=cuda*`` / ``=cpu*``)
and ``cuda-version=X.Y``; the companions ``pytorch-gpu`` / ``pytorch-cpu`` may be
installed beside. Build strings: ``cuda129_mkl_py312_h1234567_302``,
``cpu_generic_py312_h..._0``, companions ``cuda129_py312h..._0``, old
``cuda112py39h..._0``. Recipes: ``recipes/conda-forge.json``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from conda_torch_plugin import compat
from conda_torch_plugin.errors import LockError
from conda_torch_plugin.findings import Finding
from conda_torch_plugin.sources.base import (
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

_CUDA = re.compile(r"^cuda(\d{2,3})(?:_|py)")
_CPU = re.compile(r"^cpu(?:_|py)")


class CondaForge(PyTorchSource):
    name: ClassVar[str] = "conda-forge"
    recipe_file: ClassVar[str] = "conda-forge.json"
    adjective: ClassVar[str] = "conda-forge"
    where: ClassVar[str] = "conda-forge"
    subject: ClassVar[str] = "conda-forge"
    channel_names: ClassVar[tuple[str, ...]] = ("conda-forge",)

    def channels(self, base_channel: str) -> tuple[str, ...]:
        return ("conda-forge",)

    def channels_reason(self, base_channel: str) -> str:
        return (
            "Channels: conda-forge only. Its pytorch takes its CUDA libraries from conda-forge, "
            "picked with cuda-version; mixing in the pytorch or nvidia channels breaks it."
        )

    def auto_reason(self, newest: str, what: str) -> str:
        return f"Source auto: {what}."

    def no_release_message(self, versions: Sequence[str], spec: str) -> str:
        return (
            f"conda-forge has no release matching --pytorch {spec} in the recipes "
            f"({versions[-1]} to {versions[0]})"
        )

    def torch_specs(
        self, version: str, platform: str, compute: str, cuda: str | None
    ) -> tuple[list[str], list[str]]:
        if compute == "cuda":
            return [f"pytorch={version}=cuda*", f"cuda-version={cuda}"], []
        if compute == "cpu" and not compat.is_osx(platform):
            return [f"pytorch={version}=cpu*"], []
        return [f"pytorch={version}"], []

    def check_variant_pinned(
        self,
        specs: Mapping[str, RequestedSpec],
        platform: str,
        virtual_packages: Mapping[str, str],
        *,
        source: str,
    ) -> None:
        """A CUDA build (``pytorch=*=cuda*``, ``pytorch-gpu``, or plain ``pytorch`` where
        ``__cuda`` is assumed) needs ``cuda-version=X.Y``."""
        by_name = specs
        torch_build = by_name["pytorch"].build if "pytorch" in by_name else None
        if "pytorch-cpu" in by_name or (torch_build or "").startswith("cpu"):
            return
        if "cuda-version" in by_name:
            return
        if "pytorch-gpu" in by_name or (torch_build or "").startswith("cuda"):
            wanted = by_name.get("pytorch-gpu") or by_name["pytorch"]
            raise LockError(
                f"{source} asks for a CUDA build of pytorch ({wanted.text}) on {platform} "
                "without cuda-version: which CUDA variant (e.g. cuda129 or cuda130) gets locked "
                "would depend on the order of records in the channel",
                hints=["add cuda-version=X.Y (e.g. cuda-version=12.9)", WRITE_HINT],
            )
        cuda = virtual_packages.get("__cuda")
        if cuda and platform.startswith(("linux-", "win-")):
            raise LockError(
                f"the lock assumes __cuda={cuda} on {platform}, so pytorch resolves to a CUDA "
                f"build, but {source} pins no CUDA variant (cuda-version)",
                hints=[
                    "add cuda-version=X.Y for a CUDA build, or pin a CPU build "
                    "(pytorch=VERSION=cpu*), or remove __cuda from virtual-packages.yml",
                    WRITE_HINT,
                ],
            )

    def marker_flavour(self, name: str, version: str, build: str) -> Flavour | None:
        if name == "cuda-version":
            return Flavour("cuda", major_minor(version), self.name)
        return None

    def build_flavour(self, build: str) -> Flavour | None:
        if m := _CUDA.match(build):
            return Flavour("cuda", digits_to_version(m[1]), self.name)
        if _CPU.match(build):
            return Flavour("cpu", None, self.name)
        return None

    def depends_flavour(self, depends: Mapping[str, str]) -> Flavour | None:
        if "__cuda" in depends or "cuda-version" in depends:
            return Flavour("cuda", dep_version(depends.get("cuda-version", "")), self.name)
        return None

    def doctor_markers(
        self,
        torch: InstalledRecord,
        flavour: Flavour,
        records: Mapping[str, InstalledRecord],
        prefix: Path,
    ) -> list[Finding]:
        """``pytorch-gpu`` / ``pytorch-cpu`` and ``cuda-version`` must agree with the build."""
        findings: list[Finding] = []
        reinstall = f"conda install -p {prefix} -c conda-forge"
        wrong, right = ("pytorch-cpu", "pytorch-gpu")
        if flavour.compute != "cuda":
            wrong, right = right, wrong
        if wrong in records:
            findings.append(
                Finding(
                    "error",
                    f"{wrong} is installed but pytorch is a {flavour.label} build",
                    f"conda remove -p {prefix} {wrong}",
                    check=wrong,
                )
            )
        if right in records and records[right].version != torch.version:
            findings.append(
                Finding(
                    "error",
                    f"{right} {records[right].version} does not match pytorch {torch.version}",
                    f"{reinstall} {right}={torch.version}",
                    check=right,
                )
            )
        if flavour.compute != "cuda":
            return findings
        cuda_version = records.get("cuda-version")
        if cuda_version is None:
            findings.append(
                Finding(
                    "warning",
                    "cuda-version is not installed: nothing pins the CUDA libraries to the "
                    f"{flavour.label} build of pytorch",
                    f"{reinstall} cuda-version={flavour.cuda}",
                    check="cuda-version",
                )
            )
            return findings
        runtime = major_minor(cuda_version.version)
        fits = runtime is not None and flavour.cuda is not None
        if not fits or not _same_major_not_older(str(runtime), str(flavour.cuda)):
            findings.append(
                Finding(
                    "error",
                    f"cuda-version {cuda_version.version} does not fit the {flavour.label} "
                    "build of pytorch",
                    f"{reinstall} cuda-version={flavour.cuda}",
                    check="cuda-version",
                )
            )
        else:
            findings.append(
                Finding("ok", f"cuda-version {cuda_version.version} agrees", check="cuda-version")
            )
        return findings

    def companion_fix(self, name: str, version: str, flavour: Flavour, prefix: Path) -> str:
        digits = (flavour.cuda or "").replace(".", "")
        build = f"cuda{digits}*" if flavour.compute == "cuda" else "cpu*"
        return f"conda install -p {prefix} -c conda-forge '{name}={version}={build}'"


def _same_major_not_older(runtime: str, build: str) -> bool:
    """conda-forge builds accept a newer cuda-version of the same major (the driver must
    then support that newer one; the machine check uses it)."""
    same_major = compat.cuda_major(runtime) == compat.cuda_major(build)
    return same_major and compat.compare_versions(runtime, build) >= 0
