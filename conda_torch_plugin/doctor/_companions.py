"""torchvision and torchaudio against pytorch: same flavour, same CUDA, paired release, channel.

A companion of another flavour or channel loads but fails on first use
(missing ``libtorch_cuda`` symbols, "operator does not exist"); the recipes
say which companion release each pytorch release pairs with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin.doctor._prefix import record_flavour
from conda_torch_plugin.doctor._report import Finding
from conda_torch_plugin.flavour import COMPANION_NAMES
from conda_torch_plugin.sources import NAMES, find, source

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from conda_torch_plugin.doctor._prefix import InstalledRecord
    from conda_torch_plugin.findings import Severity
    from conda_torch_plugin.flavour import Flavour
    from conda_torch_plugin.recipes import Recipes, Release


def check_companions(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    recipes: Recipes,
    prefix: Path,
) -> list[Finding]:
    findings: list[Finding] = []
    # Recipes only know the pytorch and conda-forge channels: an "unknown" style pairs nothing.
    release = recipes.release(flavour.channel_style, torch.version)
    for name in COMPANION_NAMES:
        record = records.get(name)
        if record is None:
            findings.append(Finding("info", f"{name} is not installed", check=name))
            continue
        findings += _check_companion(record, torch, flavour, release, prefix)
    return findings


def _check_companion(
    record: InstalledRecord,
    torch: InstalledRecord,
    flavour: Flavour,
    release: Release | None,
    prefix: Path,
) -> list[Finding]:
    name = record.name
    own = record_flavour(record, torch.subdir)
    expected_version = getattr(release, name, None) if release is not None else None
    version = expected_version or record.version
    fix = _companion_fix(name, version, flavour, prefix)
    problems: list[Finding] = []

    if _channels_differ(record, own, torch, flavour):
        problems.append(
            Finding(
                "error",
                f"{name} comes from {_origin(record, own)} but pytorch from "
                f"{_origin(torch, flavour)}: mixed channels give mismatched binaries "
                "(e.g. missing libtorch_cuda symbols)",
                fix,
                check="channels",
            )
        )
    if own.compute == "unknown":
        problems.append(
            Finding(
                "warning",
                f"{name} {record.version}: cannot tell its flavour from build {record.build!r}",
                fix,
                check=name,
            )
        )
    elif own.compute != flavour.compute:
        problems.append(
            Finding(
                "error",
                f"{name} {record.version} is a {own.label} build ({record.build}) next to a "
                f"{flavour.label} build of pytorch",
                fix,
                check=name,
            )
        )
    elif own.compute == "cuda" and own.cuda and flavour.cuda and own.cuda != flavour.cuda:
        problems.append(
            Finding(
                "error",
                f"{name} {record.version} is built for CUDA {own.cuda} ({record.build}) but "
                f"pytorch for CUDA {flavour.cuda}",
                fix,
                check=name,
            )
        )
    if expected_version and record.version != expected_version:
        problems.append(
            Finding(
                "error",
                f"{name} {record.version} is not the release paired with pytorch "
                f"{torch.version} (that is {name} {expected_version})",
                fix,
                check=name,
            )
        )
    if problems:
        return problems
    paired = "" if expected_version else " (no recipe pairs versions for this pytorch)"
    severity: Severity = "ok" if expected_version else "info"
    return [
        Finding(
            severity,
            f"{name} {record.version} agrees with pytorch ({own.label}){paired}",
            check=name,
        )
    ]


def _channels_differ(
    record: InstalledRecord, own: Flavour, torch: InstalledRecord, flavour: Flavour
) -> bool:
    if record.channel and torch.channel:
        return record.channel != torch.channel
    known = {own.channel_style, flavour.channel_style} - {"unknown"}
    return len(known) > 1


def _origin(record: InstalledRecord, flavour: Flavour) -> str:
    if record.channel:
        return f"the {record.channel} channel"
    if flavour.channel_style != "unknown":
        return f"a {flavour.channel_style}-style build"
    return "an unknown channel"


def _companion_fix(name: str, version: str, flavour: Flavour, prefix: Path) -> str:
    """A conda command installing the companion build that matches pytorch's flavour."""
    # A build of no known source gets the pytorch channel's command, as it always has.
    return (find(flavour.channel_style) or source(NAMES[0])).companion_fix(
        name, version, flavour, prefix
    )
