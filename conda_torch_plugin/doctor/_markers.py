"""The pytorch build and the packages that pin its flavour and its safe neighbours.

On the pytorch channel those are ``pytorch-mutex``, ``cpuonly`` and
``pytorch-cuda`` (``cudatoolkit`` for 1.12); on conda-forge ``pytorch-gpu`` /
``pytorch-cpu`` and ``cuda-version``. The recipes' guards (``mkl<2024.1`` on
the pytorch channel) are checked here too: pins a build needs next to it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from conda_torch_plugin.compat import VersionSpec, compare_versions, cuda_major
from conda_torch_plugin.doctor._report import Finding
from conda_torch_plugin.flavour import major_minor

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from conda_torch_plugin.doctor._prefix import InstalledRecord
    from conda_torch_plugin.flavour import Flavour
    from conda_torch_plugin.recipes import Recipes

# A guard's spec: "mkl<2024.1" -> name, operator, version.
_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|==|<|>)\s*([0-9][0-9.]*)\s*$")


def check_pytorch(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    prefix: Path,
) -> list[Finding]:
    where = f"the {torch.channel} channel" if torch.channel else "an unknown channel"
    if flavour.compute == "unknown":
        return [
            Finding(
                "warning",
                f"pytorch {torch.version} from {where}: cannot tell its flavour from build "
                f"{torch.build!r}; the flavour checks were skipped",
                f"recreate the environment with a known build: conda torch-env create -p {prefix}",
                check="pytorch",
            )
        ]
    findings = [
        Finding(
            "ok",
            f"pytorch {torch.version} is a {flavour.label} build from {where} ({torch.build})",
            check="pytorch",
        )
    ]
    if flavour.channel_style == "pytorch":
        findings += _pytorch_channel_markers(torch, flavour, records, prefix)
    elif flavour.channel_style == "conda-forge":
        findings += _conda_forge_markers(torch, flavour, records, prefix)
    return findings


def _pytorch_channel_markers(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    prefix: Path,
) -> list[Finding]:
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


def _conda_forge_markers(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    prefix: Path,
) -> list[Finding]:
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
    if runtime is None or flavour.cuda is None or not _same_major_not_older(runtime, flavour.cuda):
        findings.append(
            Finding(
                "error",
                f"cuda-version {cuda_version.version} does not fit the {flavour.label} build of "
                "pytorch",
                f"{reinstall} cuda-version={flavour.cuda}",
                check="cuda-version",
            )
        )
    else:
        findings.append(
            Finding("ok", f"cuda-version {cuda_version.version} agrees", check="cuda-version")
        )
    return findings


def _same_major_not_older(runtime: str, build: str) -> bool:
    """conda-forge builds accept a newer cuda-version of the same major (the driver must
    then support that newer one; the machine check uses it)."""
    return cuda_major(runtime) == cuda_major(build) and compare_versions(runtime, build) >= 0


def check_guards(
    flavour: Flavour,
    platform: str,
    records: Mapping[str, InstalledRecord],
    recipes: Recipes,
    prefix: Path,
) -> list[Finding]:
    """The extra pins the recipes know a channel needs (e.g. mkl<2024.1 on the pytorch channel)."""
    findings = []
    for guard in recipes.guards_for(flavour.channel_style, platform):
        match = _SPEC.match(guard.spec)
        record = records.get(match[1].lower()) if match else None
        if match is None or record is None:
            continue
        try:
            holds = VersionSpec.parse(match[2] + match[3]).matches(record.version)
        except ValueError:  # a version we cannot compare: say nothing rather than guess
            continue
        if holds:
            findings.append(
                Finding(
                    "ok", f"{record.name} {record.version} satisfies {guard.spec}", check="guard"
                )
            )
            continue
        findings.append(
            Finding(
                "error",
                f"{record.name} {record.version} breaks this pytorch: {guard.reason}",
                f"conda install -p {prefix} '{guard.spec}'",
                check="guard",
            )
        )
    return findings
