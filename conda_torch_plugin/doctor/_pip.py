"""A pip-installed torch that shadows conda's.

Two ways it happens: ``*.dist-info`` / ``*.egg-info`` folders in the
environment's site-packages that no conda record owns (or a conda-owned one
whose name now says another version: pip overwrote it), and a torch in the
user site-packages, which Python searches before the environment's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.doctor._prefix import public_version, python_path, reinstall_command
from conda_torch_plugin.doctor._report import Finding
from conda_torch_plugin.errors import TorchEnvError
from conda_torch_plugin.flavour import major_minor
from conda_torch_plugin.inputs import InputLimits, read_text

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conda_torch_plugin.doctor._prefix import InstalledRecord

# conda package name -> the Python distribution name pip uses for it.
DISTRIBUTIONS = {"pytorch": "torch", "torchvision": "torchvision", "torchaudio": "torchaudio"}
_INSTALLER_FILE = InputLimits("INSTALLER file", 4096, 0)
_CONDA_NAMES = {dist: name for name, dist in DISTRIBUTIONS.items()}
_DIST_DIR = re.compile(
    r"^(?P<name>torch|torchvision|torchaudio)-(?P<version>[^-]+?)(?:-py\d[^-]*)?"
    r"\.(?:dist|egg)-info$",
    re.IGNORECASE,
)


def check_pip_shadowing(
    prefix: Path, records: Mapping[str, InstalledRecord], user_base: Path | None
) -> list[Finding]:
    owned = {f.replace("\\", "/") for r in records.values() for f in r.files}
    conda_records = {
        DISTRIBUTIONS[name]: records[name] for name in DISTRIBUTIONS if name in records
    }
    conda_versions = {dist: record.version for dist, record in conda_records.items()}
    findings: list[Finding] = []
    for site in _site_packages(prefix):
        for meta in sorted(site.iterdir()):
            match = _DIST_DIR.match(meta.name)
            if not match or not meta.is_dir():
                continue
            dist, version = match["name"].lower(), match["version"]
            rel = meta.relative_to(prefix).as_posix()
            is_owned = rel in owned or any(f.startswith(rel + "/") for f in owned)
            findings += _metadata_finding(
                prefix, meta, dist, version, is_owned, conda_records.get(dist)
            )
    findings += _check_user_site(records, user_base, conda_versions)
    if not any(f.check == "pip" for f in findings):
        findings.append(Finding("ok", "no pip-installed torch shadows conda's", check="pip"))
    return findings


def _site_packages(prefix: Path) -> list[Path]:
    found = sorted(prefix.glob("lib/python3*/site-packages"))
    windows = prefix / "Lib" / "site-packages"
    if windows.is_dir() and windows not in found:
        found.append(windows)
    return [p for p in found if p.is_dir()]


def _metadata_finding(
    prefix: Path,
    meta: Path,
    dist: str,
    version: str,
    is_owned: bool,
    conda_record: InstalledRecord | None,
) -> list[Finding]:
    conda_name = _CONDA_NAMES[dist]
    conda_version = conda_record.version if conda_record else None
    installer = _installer(meta)
    rel = meta.relative_to(prefix).as_posix()
    uninstall = f"{python_path(prefix)} -m pip uninstall {dist}"
    reinstall = reinstall_command(prefix, conda_record) if conda_record else ""
    if is_owned:
        if conda_version is None or public_version(version) == public_version(conda_version):
            return []
        return [
            Finding(
                "error",
                f"{rel} says {dist} {version} but conda installed {conda_name} "
                f"{conda_version}: another installer overwrote conda's files",
                reinstall,
                check="pip",
            )
        ]
    by = f" by {installer}" if installer else ""
    if conda_version is None:
        return [
            Finding(
                "warning",
                f"{dist} {version} was installed{by}, not by conda ({rel}): the doctor cannot "
                "check its flavour",
                f"{uninstall}, then conda torch-env install -p {prefix}",
                check="pip",
            )
        ]
    same = public_version(version) == public_version(conda_version)
    return [
        Finding(
            "warning" if same else "error",
            f"{dist} {version} installed{by} ({rel}) shadows conda's {conda_name} "
            f"{conda_version}" + ("" if same else ": `import torch` may load either"),
            f"{uninstall}, then {reinstall}",
            check="pip",
        )
    ]


def _check_user_site(
    records: Mapping[str, InstalledRecord],
    user_base: Path | None,
    conda_versions: Mapping[str, str],
) -> list[Finding]:
    """Python puts the user site-packages before the environment's: a torch there wins."""
    python = records.get("python")
    if python is None or (user_base is None and os.environ.get("PYTHONNOUSERSITE")):
        return []
    xy = major_minor(python.version)
    if xy is None:
        return []
    base = user_base if user_base is not None else _default_user_base()
    if base is None:
        return []
    if (python.subdir or "").startswith("win"):
        site = base / f"Python{xy.replace('.', '')}" / "site-packages"
    else:
        site = base / "lib" / f"python{xy}" / "site-packages"
    findings = []
    for dist in DISTRIBUTIONS.values():
        if not (site / dist).is_dir():
            continue
        conda_name = _CONDA_NAMES[dist]
        findings.append(
            Finding(
                "error",
                f"{site / dist} (user site-packages) is imported before the environment's "
                + (f"{conda_name} {conda_versions[dist]}" if dist in conda_versions else dist),
                f"delete {site / dist} (and the {dist}-*.dist-info next to it), "
                "or set PYTHONNOUSERSITE=1",
                check="pip",
            )
        )
    return findings


def _default_user_base() -> Path | None:
    """The user base the environment's python would use (not this process's site module)."""
    if env := os.environ.get("PYTHONUSERBASE"):
        return Path(env)
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) / "Python" if appdata else None
    home = os.environ.get("HOME")
    return Path(home) / ".local" if home else None


def _installer(meta: Path) -> str | None:
    try:  # a FIFO or device in its place is not read
        text = read_text(meta / "INSTALLER", limits=_INSTALLER_FILE, error=TorchEnvError)
    except TorchEnvError:
        return None
    return text.strip() or None
