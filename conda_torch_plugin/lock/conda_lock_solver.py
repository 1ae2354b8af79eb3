"""``--solver conda-lock``: hand the same inputs to the ``conda-lock`` command.

Only where a conda, mamba or micromamba executable exists: without one
conda-lock tries to download an installer for over a minute. conda-lock runs
as a command; the package never imports conda_lock.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import LockError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conda_torch_plugin.lock.model import LockInputs, Progress, SolverName

from conda_torch_plugin.lock.model import Locked

CONDA_EXECUTABLES = ("conda", "mamba", "micromamba")


def find_conda_executable(environ: Mapping[str, str] | None = None) -> str:
    """conda, mamba or micromamba for ``conda-lock lock``; LockError at once where none exists."""
    environ = os.environ if environ is None else environ
    candidate = environ.get("CONDA_EXE")
    if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    path = environ.get("PATH")
    for name in CONDA_EXECUTABLES:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise LockError(
        "--solver conda-lock needs a conda, mamba or micromamba executable, and none is on PATH",
        hints=[
            "without one, conda-lock tries to download an installer (for over a minute, and "
            "offline it fails)",
            "leave out --solver to lock with the built-in rattler solver, which needs none",
            "or put conda, mamba or micromamba on PATH (or set CONDA_EXE)",
        ],
    )


def _conda_lock_command() -> list[str]:
    exe = shutil.which("conda-lock")
    if exe:
        return [exe]
    import importlib.util

    if importlib.util.find_spec("conda_lock") is not None:  # finds it without importing it
        return [sys.executable, "-m", "conda_lock"]
    raise LockError(
        "--solver conda-lock needs the conda-lock command, which is not installed",
        hints=["pip install 'conda-torch-plugin[conda-lock]'"],
    )


class CondaLockBackend:
    """``--solver conda-lock``: the same inputs through the ``conda-lock`` command."""

    name: SolverName = "conda-lock"

    def __init__(self) -> None:
        self.conda_exe: str | None = None

    def prepare(self) -> None:
        # Before reading anything: without conda this must fail at once.
        self.conda_exe = find_conda_executable()

    def solve(
        self,
        inputs: LockInputs,
        *,
        channel_alias: str | None,
        custom_channels: Mapping[str, str] | None,
        progress: Progress | None,
        command: str,
    ) -> Locked:
        if self.conda_exe is None:
            self.prepare()
        assert self.conda_exe is not None
        return _run_conda_lock(inputs, self.conda_exe, channel_alias, progress)


def _run_conda_lock(
    inputs: LockInputs, conda_exe: str, channel_alias: str | None, progress: Progress | None
) -> Locked:
    import subprocess
    import tempfile

    from conda_torch_plugin.channels import normalize_alias
    from conda_torch_plugin.condalock.lockfile import read_lockfile

    base = _conda_lock_command()
    target = inputs.lockfile
    target.parent.mkdir(parents=True, exist_ok=True)
    # conda-lock writes in place; let it write a copy so a failure leaves the lock untouched.
    with tempfile.TemporaryDirectory(prefix=".conda-lock-", dir=target.parent) as tmp:
        scratch = Path(tmp) / target.name
        if target.is_file():
            shutil.copy2(target, scratch)
        command = [
            *base,
            "lock",
            "--conda",
            conda_exe,
            "-f",
            str(inputs.env_path.resolve()),
            "--lockfile",
            str(scratch),
            "--kind",
            "lock",
            "--strip-auth",
        ]
        for platform in inputs.platforms:
            command += ["-p", platform]
        if inputs.vp_path is not None:
            command += ["--virtual-package-spec", str(inputs.vp_path.resolve())]
        env = dict(os.environ)
        if channel_alias:
            env["CONDA_CHANNEL_ALIAS"] = normalize_alias(channel_alias)
        if progress is not None:
            progress(f"Running conda-lock for {', '.join(inputs.platforms)}")
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise _conda_lock_failure(done.returncode, done.stderr or done.stdout)
        lock_model = read_lockfile(scratch)
        text = scratch.read_text(encoding="utf-8")
    return Locked(lock_model, text, None)


def _conda_lock_failure(status: int, output: str) -> LockError:
    """conda-lock's failure as one readable error: its final exception line, not its traceback."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    in_traceback = any(line.startswith("Traceback (most recent call last)") for line in lines)
    detail = lines[-1].strip() if in_traceback and lines else "\n".join(lines[-12:])
    hints = ["the lock file was left as it was"]
    if any(word in output for word in ("ConnectionError", "NameResolutionError", "Max retries")):
        hints.insert(
            0,
            "conda-lock needs network access (it downloads its PyPI name mapping, and conda "
            "if none is found); the built-in solver (--solver rattler) works offline",
        )
    return LockError(f"conda-lock failed with exit status {status}: {detail}", hints=hints)
