"""An installed prefix as the doctor reads it: its ``conda-meta/*.json`` records and flavour.

Nothing here imports torch or runs the environment's python: the records
(and the paths they list) are the whole picture. Also the few spellings every
check shares: where the environment's python is, and versions stripped of
pip's local label.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.doctor._report import Finding, NotAnEnvironment
from conda_torch_plugin.errors import TorchEnvError
from conda_torch_plugin.flavour import Flavour, major_minor, torch_flavour
from conda_torch_plugin.inputs import PACKAGE_RECORD, read_json
from conda_torch_plugin.recipes import PLATFORMS
from conda_torch_plugin.sources import SOURCES

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

_SUBDIRS = frozenset((*PLATFORMS, "noarch"))


@dataclass(frozen=True)
class InstalledRecord:
    """The fields of a ``conda-meta/*.json`` record the doctor reads."""

    name: str
    version: str
    build: str
    channel: str | None  # channel name ("pytorch", "conda-forge"), from the channel URL
    subdir: str | None
    depends: tuple[str, ...]
    files: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({self.build})"


def read_records(prefix: Path) -> tuple[dict[str, InstalledRecord], list[Finding]]:
    """The installed records by name, and a warning for every record that cannot be read."""
    meta = prefix / "conda-meta"
    if not prefix.is_dir():
        raise NotAnEnvironment(
            f"{prefix} does not exist",
            hints=["give the folder of an existing environment (-p PREFIX) or its name (-n NAME)"],
        )
    if not meta.is_dir():
        raise NotAnEnvironment(
            f"{prefix} is not a conda environment: it has no conda-meta/ folder",
            hints=[
                "give the folder of a conda environment, e.g. one that `conda env list` shows",
                "or create a new one: conda torch-env create -n NAME (or -p NEW_FOLDER)",
            ],
        )
    records: dict[str, InstalledRecord] = {}
    problems: list[Finding] = []
    for path in sorted(meta.glob("*.json")):
        try:
            raw = read_json(path, limits=PACKAGE_RECORD, error=TorchEnvError)
            record = _record_from_json(raw)
        except (TorchEnvError, OSError, ValueError, KeyError, TypeError) as error:
            problems.append(
                Finding(
                    "warning",
                    f"conda-meta/{path.name} cannot be read ({error}); its package was not checked",
                    "reinstall that package, or recreate the environment: "
                    f"conda torch-env install -p {prefix}",
                    check="conda-meta",
                )
            )
            continue
        records[record.name] = record
    return records, problems


def _record_from_json(raw: Mapping[str, Any]) -> InstalledRecord:
    return InstalledRecord(
        name=str(raw["name"]).lower(),
        version=str(raw["version"]),
        build=str(raw.get("build", raw.get("build_string", ""))),
        channel=_channel_name(raw.get("channel") or raw.get("url") or ""),
        subdir=raw.get("subdir"),
        depends=tuple(str(d) for d in raw.get("depends") or ()),
        files=tuple(str(f) for f in raw.get("files") or ()),
    )


def _channel_name(channel: str) -> str | None:
    """'https://conda.anaconda.org/pytorch/linux-64/x.tar.bz2' -> 'pytorch'; '' -> None."""
    parts = [p for p in re.split(r"[/\\]", channel) if p]
    if parts and parts[-1].endswith((".conda", ".tar.bz2")):
        parts.pop()
    if parts and parts[-1] in _SUBDIRS:
        parts.pop()
    if not parts or parts[-1].endswith(":"):
        return None
    return parts[-1]


def record_flavour(record: InstalledRecord, platform: str | None) -> Flavour:
    return torch_flavour(
        record.name, record.version, record.build, record.depends, platform=platform
    )


def environment_flavour(
    records: Mapping[str, InstalledRecord], platform: str | None
) -> Flavour | None:
    """The pytorch build's flavour, with ``runtime_cuda`` from pytorch-cuda / cuda-version."""
    torch = records.get("pytorch")
    if torch is None:
        return None
    flavour = record_flavour(torch, platform)
    if flavour.channel_style == "unknown" and torch.channel in SOURCES:
        flavour = Flavour(flavour.compute, flavour.cuda, torch.channel)
    if flavour.compute != "cuda":
        return flavour
    runtime = None
    for marker in ("pytorch-cuda", "cuda-version"):
        if marker in records:
            runtime = major_minor(records[marker].version)
            break
    return Flavour("cuda", flavour.cuda or runtime, flavour.channel_style, runtime)


def python_path(prefix: Path) -> Path:
    """The environment's python (bin/python, or python.exe on Windows)."""
    for candidate in (prefix / "bin" / "python", prefix / "python.exe"):
        if candidate.exists():
            return candidate
    return prefix / ("python.exe" if os.name == "nt" else "bin/python")


def public_version(version: str) -> str:
    """'2.6.0+cu126' -> '2.6.0' (pip's local version label)."""
    return version.split("+", 1)[0]


def reinstall_command(prefix: Path, record: InstalledRecord) -> str:
    """conda's command that puts back exactly this build, from the channel it came from.

    An update from the lock would see the same record installed and change nothing,
    so the files another installer overwrote are replaced by a forced reinstall of
    the very build (channel::name=version=build) the record names.
    """
    channel = f"{record.channel}::" if record.channel else ""
    spec = f"{channel}{record.name}={record.version}={record.build}"
    return f"conda install -p {shlex.quote(str(prefix))} --force-reinstall {shlex.quote(spec)}"
