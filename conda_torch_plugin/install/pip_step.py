"""Install a lock's ``manager: pip`` entries into the staging folder, before the swap.

The transaction (``_transaction``) builds the new environment in a staging
folder beside the prefix and renames it into place. The pip entries go into
that staging folder after the conda packages are linked and before the swap, so
a failed pip step leaves the prefix exactly as it was, like any other failure
of the transaction.

Each entry is installed with uv from its locked URL only, ``--no-deps
--require-hashes --no-index``: nothing is resolved, nothing else is fetched, and
a wheel whose sha256 differs from the lock's is refused. uv installs into the
environment's site-packages (``--target``, for the Python version and platform
the lock holds); console scripts are then moved into the environment's ``bin/``
with their ``#!`` line naming the prefix's Python, and ``RECORD`` updated to
match, as pip would have written them. A version being replaced is uninstalled
first from its ``RECORD``, as pip would (uv's ``--target`` leaves its scripts).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import InstallError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockedPackage
    from conda_torch_plugin.install.model import Change, InstallProgress
    from conda_torch_plugin.network import NetworkSettings

_TIMEOUT_S = 600


def pip_entries(packages: Iterable[LockedPackage]) -> tuple[LockedPackage, ...]:
    return tuple(sorted((p for p in packages if p.manager == "pip"), key=lambda p: p.name))


def python_version(packages: Iterable[LockedPackage]) -> str | None:
    """``3.12`` for the lock's conda python, None when it holds none."""
    for pkg in packages:
        if pkg.manager == "conda" and pkg.name == "python":
            return ".".join(pkg.version.split(".")[:2])
    return None


def site_packages(root: Path, platform: str, python: str) -> Path:
    if platform.startswith("win-"):
        return root / "Lib" / "site-packages"
    return root / "lib" / f"python{python}" / "site-packages"


def installed_pip(prefix: Path, platform: str, python: str | None) -> dict[str, str]:
    """name -> version of each ``*.dist-info`` folder in the environment's site-packages."""
    if python is None:
        return {}
    found: dict[str, str] = {}
    folder = site_packages(prefix, platform, python)
    if not folder.is_dir():
        return found
    for info in folder.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found[re.sub(r"[-_.]+", "-", name).lower()] = version
    return found


def pip_changes(
    entries: Sequence[LockedPackage], installed: Mapping[str, str]
) -> tuple[Change, ...]:
    """The pip entries not installed at their locked version (additions or replacements)."""
    from conda_torch_plugin.install.model import Change

    changes = []
    for entry in entries:
        old = installed.get(entry.name)
        label = f"{entry.version} (pip)"
        if old is None:
            changes.append(Change(entry.name, "add", None, label))
        elif old != entry.version:
            changes.append(Change(entry.name, "change", f"{old} (pip)", label))
    return tuple(changes)


def install_pip_entries(
    entries: Sequence[LockedPackage],
    platform: str,
    python: str | None,
    staging: Path,
    prefix: Path,
    progress: InstallProgress | None = None,
    network: NetworkSettings | None = None,
) -> None:
    """Install ``entries`` into ``staging`` (which becomes ``prefix``); InstallError on failure.

    uv downloads with ``network``'s proxies, CA bundle, ``.netrc``, offline mode and
    timeouts (``network.subprocess_environment``).
    """
    if not entries:
        return
    from conda_torch_plugin.condalock.lockfile import redact_credentials
    from conda_torch_plugin.network import from_environ, subprocess_environment
    from conda_torch_plugin.uvtool import find_uv, uv_platform

    if python is None:
        raise InstallError(
            f"the lock holds pip packages for {platform} but no python to install them into",
            hints=["add python to the environment's conda dependencies and lock again"],
        )
    binary = find_uv(InstallError)
    target = site_packages(staging, platform, python)
    remove_installed(target, staging, {e.name for e in entries})
    if progress is not None:
        progress.step(f"Installing {len(entries)} pip packages with uv")
    with tempfile.TemporaryDirectory(prefix="torch-env-pip-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text(
            "".join(f"{e.name} @ {e.url} --hash=sha256:{e.sha256}\n" for e in entries),
            encoding="utf-8",
        )
        argv = [
            binary,
            "pip",
            "install",
            "--target",
            str(target),
            "--python",
            sys.executable,  # only run to start uv; tags come from the two options below
            "--python-version",
            python,
            "--python-platform",
            # the lock chose each wheel for its platform; any glibc level accepts it here
            uv_platform(platform, {"__glibc": "2.40"}, InstallError),
            "--no-deps",
            "--require-hashes",
            "--no-index",
            "--no-config",
            "--no-python-downloads",
            "--no-build",
            "--link-mode",
            "copy",
            "--quiet",
            "--cache-dir",
            str(Path(scratch) / "cache"),
            "-r",
            str(requirements),
        ]
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_S,
                env=subprocess_environment(network or from_environ()),
            )
        except subprocess.TimeoutExpired:
            raise InstallError(
                f"uv did not install the pip packages within {_TIMEOUT_S} s"
            ) from None
        except OSError as error:
            raise InstallError(f"cannot run uv: {error}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        cause = " ".join(line.removeprefix("cause:").strip() for line in lines)
        raise InstallError(
            f"installing the pip packages failed, so {prefix} was left as it was: "
            f"{redact_credentials(cause)}",
            hints=[
                "a hash mismatch means the wheel at the locked URL changed: review it, "
                "then lock again",
                "a private index needs its credentials in uv's environment (UV_INDEX_*, .netrc)",
            ],
        )
    with_scripts_in_place(target, staging, prefix, platform, python)


def remove_installed(target: Path, staging: Path, names: set[str]) -> None:
    """Uninstall the pip packages ``names`` from ``staging`` (the versions being replaced).

    Every file its ``RECORD`` lists goes (scripts in ``bin/`` included, which uv's
    ``--target`` would not remove), but only inside ``staging``; then its dist-info.
    """
    if not target.is_dir():
        return
    root = staging.resolve()
    for info in target.glob("*.dist-info"):
        name = info.name[: -len(".dist-info")].partition("-")[0]
        if re.sub(r"[-_.]+", "-", name).lower() not in names:
            continue
        record = info / "RECORD"
        rows = (
            list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
            if record.is_file()
            else []
        )
        for row in rows:
            if not row or not row[0]:
                continue
            path = (target / row[0]).resolve()
            if path.is_relative_to(root) and path != root and path.is_file():
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)


def with_scripts_in_place(
    target: Path, staging: Path, prefix: Path, platform: str, python: str
) -> None:
    """Move ``--target``'s ``bin/`` into the environment's, fix ``#!`` lines and RECORD."""
    (target / ".lock").unlink(missing_ok=True)
    scripts = target / ("Scripts" if platform.startswith("win-") else "bin")
    if not scripts.is_dir():
        return
    bin_dir = staging / scripts.name
    bin_dir.mkdir(exist_ok=True)
    interpreter = (
        f"{prefix}\\python.exe" if platform.startswith("win-") else f"{prefix}/bin/python{python}"
    )
    moved: dict[str, tuple[str, int]] = {}  # "bin/NAME" -> (RECORD hash, size)
    for script in sorted(scripts.iterdir()):
        destination = bin_dir / script.name
        if destination.exists() or destination.is_symlink():
            raise InstallError(
                f"the pip package's script {script.name} would overwrite "
                f"{prefix / scripts.name / script.name}, which a conda package installed",
                hints=["remove one of the two packages from the environment file"],
            )
        data = script.read_bytes()
        if data.startswith(b"#!"):
            first, _, rest = data.partition(b"\n")
            if b"python" in first:
                data = f"#!{interpreter}".encode() + b"\n" + rest
        destination.write_bytes(data)
        destination.chmod(0o755)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        moved[f"{scripts.name}/{script.name}"] = (f"sha256={digest}", len(data))
    shutil.rmtree(scripts)
    up = os.path.relpath(staging, target).replace(os.sep, "/")
    for record in target.glob("*.dist-info/RECORD"):
        rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
        for row in rows:
            if row and row[0] in moved:
                digest, size = moved[row[0]]
                row[:3] = [f"{up}/{row[0]}", digest, str(size)]
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        record.write_text(out.getvalue(), encoding="utf-8")
