"""The ``--installer conda`` backend: ``conda create -p PREFIX --file EXPLICIT --yes``.

conda's own cache, hooks and md5 checks. conda replaces an existing prefix
itself, so the staging guarantee of the built-in installer does not apply here;
conda verifies each package's md5 (and sha256 where the explicit file carries
one). The conda executable is found by the caller (the CLI, through
``_conda.settings``): this module never imports conda.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import InstallError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from conda_torch_plugin.condalock.lockfile import LockFile

EXPLICIT_PLACEHOLDER = "EXPLICIT"


@dataclass(frozen=True)
class CondaInstall:
    """What ``conda create`` is asked to do: its command line and the explicit file it reads."""

    command: tuple[str, ...]  # with EXPLICIT_PLACEHOLDER where the file's path goes
    explicit: str


def no_conda_error() -> InstallError:
    return InstallError(
        "--installer conda needs a conda executable, and none was found "
        "($CONDA_EXE is unset and there is no conda on PATH)",
        hints=[
            "run it as `conda torch-env install ...` from a conda installation, "
            "or use the built-in installer (--installer rattler)"
        ],
    )


def prepare_conda_install(
    lock: LockFile,
    platform: str,
    prefix: Path,
    conda_exe: str | None,
    *,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
) -> CondaInstall:
    """The command and explicit file for ``platform`` of ``lock``; nothing runs yet."""
    from conda_torch_plugin.condalock.explicit import render_explicit
    from conda_torch_plugin.install._fetch import rewrite_lock

    pip = sorted(p.name for p in lock.packages_for(platform) if p.manager == "pip")
    if pip:
        raise InstallError(
            f"the lock holds pip packages for {platform} ({', '.join(pip)}), which "
            "--installer conda does not install (conda skips them)",
            hints=["leave out --installer conda: the default installer installs them with uv"],
        )
    if conda_exe is None:
        raise no_conda_error()
    text = render_explicit(rewrite_lock(lock, channel_alias, dict(custom_channels or {})), platform)
    command = (conda_exe, "create", "-p", str(prefix), "--file", EXPLICIT_PLACEHOLDER, "--yes")
    return CondaInstall(command, text)


def run_conda_install(install: CondaInstall, *, json_output: bool = False) -> None:
    """Run it; InstallError when conda fails. conda prints its own progress (with
    ``json_output`` its JSON goes to a pipe and is discarded: the caller reports)."""
    fd, name = tempfile.mkstemp(prefix="conda-torch-env-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(install.explicit)
        command = [name if part == EXPLICIT_PLACEHOLDER else part for part in install.command]
        if json_output:
            command.append("--json")
        completed = subprocess.run(
            command, check=False, stdout=subprocess.PIPE if json_output else None
        )
    finally:
        os.unlink(name)
    if completed.returncode != 0:
        raise InstallError(
            f"conda create failed (exit status {completed.returncode})",
            hints=["see conda's message above"],
        )
