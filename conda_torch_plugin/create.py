"""The ``create`` workflow: plan -> write -> lock, previewed or for real, with nothing
left behind when a step fails.

The CLI (``cli/create.py``) parses the flags, detects the machine, asks before
anything changes and renders what these functions return; installing is
``install``'s. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockFile
    from conda_torch_plugin.envfile.targets import Targets
    from conda_torch_plugin.lock.model import Progress
    from conda_torch_plugin.network import NetworkSettings
    from conda_torch_plugin.plan import Plan


@dataclass(frozen=True)
class Preview:
    """The three files as they would be written, and the lock they hold."""

    environment_yml: str
    virtual_packages_yml: str
    lockfile_yml: str
    lock: LockFile

    def texts(self) -> dict[str, str]:
        return {
            "environment_yml": self.environment_yml,
            "virtual_packages_yml": self.virtual_packages_yml,
            "lockfile_yml": self.lockfile_yml,
        }


def check_installable(plan: Plan, platform: str) -> None:
    """``create`` installs for this machine: its platform must be among the planned ones."""
    planned = [p.platform for p in plan.platforms]
    if platform not in planned:
        raise UsageError(
            f"create installs for this machine ({platform}), which is not among the planned "
            f"platforms ({', '.join(planned)})",
            hints=[
                f"add --platform {platform}, or use `conda torch-env write` and "
                "`conda torch-env lock` to lock for other machines only"
            ],
        )


def created_files(env_path: Path, lock_path: Path) -> tuple[Path, ...]:
    """The files ``create`` writes: environment.yml, virtual-packages.yml and the lock."""
    from conda_torch_plugin.condalock import virtual_packages_for_env

    return (env_path, virtual_packages_for_env(env_path), lock_path)


def preview(
    plan: Plan,
    env_path: Path,
    *,
    name: str | None,
    env_command: str,
    lock_command: str,
    channel_alias: str | None,
    custom_channels: Mapping[str, str] | None,
    targets: Targets | None = None,
    network: NetworkSettings | None = None,
) -> Preview:
    """Render the files and solve them in a private temporary folder; the user's files stay."""
    from conda_torch_plugin.condalock import ENVIRONMENT_FILENAME
    from conda_torch_plugin.condalock.lockfile import read_lockfile
    from conda_torch_plugin.envfile import VIRTUAL_PACKAGES_FILENAME, write_environment
    from conda_torch_plugin.lock import DEFAULT_LOCKFILE, lock

    rendered = write_environment(
        plan, env_path, name=name, command=env_command, dry_run=True, targets=targets
    )
    with tempfile.TemporaryDirectory(prefix="conda-torch-env-create-") as folder:
        tmp = Path(folder)
        tmp_env = tmp / ENVIRONMENT_FILENAME
        tmp_lock = tmp / DEFAULT_LOCKFILE
        tmp_env.write_text(rendered.environment_yml, encoding="utf-8")
        (tmp / VIRTUAL_PACKAGES_FILENAME).write_text(
            rendered.virtual_packages_yml, encoding="utf-8"
        )
        lock(
            tmp_env,
            lockfile=tmp_lock,
            channel_alias=channel_alias,
            custom_channels=dict(custom_channels) if custom_channels else None,
            command=lock_command,
            network=network,
        )
        lock_text = tmp_lock.read_text(encoding="utf-8")
        lock_model = read_lockfile(tmp_lock)
    return Preview(rendered.environment_yml, rendered.virtual_packages_yml, lock_text, lock_model)


def write_and_lock(
    plan: Plan,
    env_path: Path,
    lock_path: Path,
    *,
    name: str | None,
    env_command: str,
    lock_command: str,
    channel_alias: str | None,
    custom_channels: Mapping[str, str] | None,
    progress: Progress | None = None,
    targets: Targets | None = None,
    network: NetworkSettings | None = None,
) -> LockFile:
    """Write environment.yml and virtual-packages.yml, lock them, and return the lock."""
    from conda_torch_plugin.condalock.lockfile import read_lockfile
    from conda_torch_plugin.envfile import write_environment
    from conda_torch_plugin.lock import lock

    if progress is not None:
        progress(f"Writing {env_path}")
    write_environment(plan, env_path, name=name, command=env_command, targets=targets)
    if progress is not None:
        progress(f"Locking into {lock_path}")
    locked = lock(
        env_path,
        lockfile=lock_path,
        channel_alias=channel_alias,
        custom_channels=dict(custom_channels) if custom_channels else None,
        progress=progress,
        command=lock_command,
        network=network,
    )
    return read_lockfile(locked.lockfile)


@contextlib.contextmanager
def restored_on_failure(paths: Sequence[Path]) -> Iterator[None]:
    """On any failure inside, put ``paths`` back as they were: a failed create leaves nothing new.

    A file that did not exist is removed; one that did gets its old bytes back.
    """
    from conda_torch_plugin.atomic import atomic_write_bytes

    before = {path: path.read_bytes() if path.is_file() else None for path in paths}
    try:
        yield
    except BaseException:
        for path, content in before.items():
            with contextlib.suppress(OSError):
                if content is None:
                    path.unlink(missing_ok=True)
                elif not path.is_file() or path.read_bytes() != content:
                    atomic_write_bytes(path, content)
        raise
