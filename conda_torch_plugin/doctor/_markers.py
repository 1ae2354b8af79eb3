"""The pytorch build and the packages that pin its flavour and its safe neighbours.

Each source names its own marker packages and checks them
(``PyTorchSource.doctor_markers``: on the pytorch channel ``pytorch-mutex``,
``cpuonly`` and ``pytorch-cuda``; on conda-forge ``pytorch-gpu`` /
``pytorch-cpu`` and ``cuda-version``). The recipes' guards (``mkl<2024.1`` on
the pytorch channel) are checked here too: pins a build needs next to it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from conda_torch_plugin.compat import VersionSpec
from conda_torch_plugin.doctor._report import Finding
from conda_torch_plugin.sources import find

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
    source = find(flavour.channel_style)
    if source is not None:
        findings += source.doctor_markers(torch, flavour, records, prefix)
    return findings


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
