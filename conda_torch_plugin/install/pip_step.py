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

What the step installed is recorded in ``conda-meta/torch-env-pip`` (``{"version": 1,
"packages": {NAME: VERSION}}``, JSON), part of the new environment. The next install
uninstalls the recorded packages its lock no longer holds, so the pip side matches the
lock as the conda side does; a pip package the record does not name (installed by
other means) is never touched. The file has no ``.json`` suffix because conda and
rattler read every ``conda-meta/*.json`` as a package record and refuse the
environment when one is not. A malformed record is ignored (``read_pip_record`` says
why): it never removes anything.
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

from conda_torch_plugin.errors import InstallError, TorchEnvError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockedPackage
    from conda_torch_plugin.install.model import Change, InstallProgress
    from conda_torch_plugin.network import NetworkSettings

_TIMEOUT_S = 600
PIP_RECORD = Path("conda-meta") / "torch-env-pip"  # relative to the environment
_RECORD_FORMAT = 1
# A normalized distribution name (PEP 503) and a version as wheels spell them: nothing
# that could be a path separator, so a name only ever matches a dist-info folder.
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]*")


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
        name, version = _dist_info(info)
        found[name] = version
    return found


def _dist_info(info: Path) -> tuple[str, str]:
    """(normalized name, version) of a ``NAME-VERSION.dist-info`` folder."""
    name, _, version = info.name[: -len(".dist-info")].partition("-")
    return _normalize(name), version


def pip_changes(
    entries: Sequence[LockedPackage],
    installed: Mapping[str, str],
    recorded: Mapping[str, str] | None = None,
) -> tuple[Change, ...]:
    """The pip entries not installed at their locked version (additions or replacements),
    and the installed packages an earlier install ``recorded`` that the lock dropped."""
    from conda_torch_plugin.install.model import Change

    changes = []
    for entry in entries:
        old = installed.get(entry.name)
        label = f"{entry.version} (pip)"
        if old is None:
            changes.append(Change(entry.name, "add", None, label))
        elif old != entry.version:
            changes.append(Change(entry.name, "change", f"{old} (pip)", label))
    changes += [
        Change(name, "remove", f"{installed[name]} (pip)", None)
        for name in dropped(entries, recorded or {})
        if name in installed
    ]
    return tuple(sorted(changes, key=lambda c: c.name))


def dropped(entries: Sequence[LockedPackage], recorded: Mapping[str, str]) -> list[str]:
    """The ``recorded`` pip packages that ``entries`` (the new lock's) no longer hold."""
    wanted = {_normalize(e.name) for e in entries}
    return sorted(name for name in recorded if name not in wanted)


def read_pip_record(root: Path) -> tuple[dict[str, str], str | None]:
    """The pip packages an earlier install put into the environment at ``root``.

    (name -> version, None) from its ``conda-meta/torch-env-pip``; ({}, None) when
    there is none; ({}, why) when it is malformed (not a regular file, not JSON,
    another format version, wrong types, a name that is not a distribution name).
    """
    from conda_torch_plugin.inputs import PIP_RECORD as LIMITS
    from conda_torch_plugin.inputs import read_json

    path = root / PIP_RECORD
    if not path.exists() and not path.is_symlink():
        return {}, None
    try:
        data = read_json(path, limits=LIMITS, error=TorchEnvError)
    except TorchEnvError as error:
        return {}, error.message
    what = f"{LIMITS.what} {path}"
    if not isinstance(data, dict) or data.get("version") != _RECORD_FORMAT:
        return {}, f"{what} is not a JSON object of format version {_RECORD_FORMAT}"
    packages = data.get("packages")
    if not isinstance(packages, dict):
        return {}, f"{what}: 'packages' is not an object"
    for name, version in packages.items():
        if not _NAME.fullmatch(name) or not (
            isinstance(version, str) and _VERSION.fullmatch(version)
        ):
            return {}, f"{what} names {name!r} {version!r}, not a pip package name and version"
    return dict(packages), None


def write_pip_record(root: Path, entries: Sequence[LockedPackage]) -> None:
    """Record ``entries`` in ``root``'s ``conda-meta/torch-env-pip``; none: remove the record."""
    path = root / PIP_RECORD
    # Whatever is there (a symlink included) is replaced, never written through.
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if not entries:
        return
    import json

    packages = {_normalize(e.name): e.version for e in entries}
    data = {"version": _RECORD_FORMAT, "packages": dict(sorted(packages.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as stream:
        stream.write(json.dumps(data, indent=2) + "\n")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


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

    First the pip packages that ``staging``'s record names and ``entries`` no longer
    hold are uninstalled (a malformed record is ignored: ``prepare_install`` warned);
    then ``entries`` are installed and recorded (none: the record goes).

    uv downloads with ``network``'s proxies, CA bundle, ``.netrc``, offline mode and
    timeouts (``network.subprocess_environment``).
    """
    if python is None:
        if entries:
            raise InstallError(
                f"the lock holds pip packages for {platform} but no python to install them into",
                hints=["add python to the environment's conda dependencies and lock again"],
            )
        write_pip_record(staging, ())  # no python, no site-packages for a record to name
        return
    recorded, _ = read_pip_record(staging)
    stale = dropped(entries, recorded)
    if stale:
        if progress is not None:
            progress.step(f"Removing {len(stale)} pip packages the lock no longer holds")
        remove_installed(site_packages(staging, platform, python), staging, set(stale))
    if entries:
        _install_with_uv(entries, platform, python, staging, prefix, progress, network)
    write_pip_record(staging, entries)


def _install_with_uv(
    entries: Sequence[LockedPackage],
    platform: str,
    python: str,
    staging: Path,
    prefix: Path,
    progress: InstallProgress | None,
    network: NetworkSettings | None,
) -> None:
    from conda_torch_plugin.condalock.lockfile import redact_credentials
    from conda_torch_plugin.network import from_environ, subprocess_environment
    from conda_torch_plugin.uvtool import find_uv, uv_platform

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
    """Uninstall the pip packages ``names`` from ``staging`` (the versions being replaced,
    or the packages the lock dropped).

    Every file its ``RECORD`` lists goes (scripts in ``bin/`` included, which uv's
    ``--target`` would not remove, and a module's bytecode), but only inside
    ``staging``; then its dist-info, and the folders inside ``target`` left empty.
    """
    if not target.is_dir():
        return
    root = staging.resolve()
    wanted = {_normalize(n) for n in names}
    for info in target.glob("*.dist-info"):
        if _dist_info(info)[0] not in wanted:
            continue
        record = info / "RECORD"
        rows = (
            list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
            if record.is_file()
            else []
        )
        folders = set()
        for row in rows:
            if not row or not row[0]:
                continue
            path = (target / row[0]).resolve()
            if path.is_relative_to(root) and path != root and path.is_file():
                path.unlink()
                folders.add(path.parent)
                if path.suffix == ".py":  # its bytecode, as pip removes it
                    for cached in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
                        if cached.resolve().is_relative_to(root) and cached.is_file():
                            cached.unlink()
                    folders.add(path.parent / "__pycache__")
        shutil.rmtree(info, ignore_errors=True)
        _remove_empty(folders, target.resolve())


def _remove_empty(folders: set[Path], target: Path) -> None:
    """Remove the folders an uninstall emptied (and their emptied parents) inside ``target``."""
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        while folder != target and folder.is_relative_to(target):
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                break
            folder = folder.parent


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
