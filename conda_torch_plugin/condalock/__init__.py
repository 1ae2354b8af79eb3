"""conda-lock's formats, read and written as conda-lock reads and writes them: environment.yml
and virtual-packages.yml (``envspec``), match specs (``matchspec``), the content hash,
conda-lock.yml (``lockfile``) and ``@EXPLICIT`` files (``explicit``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

# conda-lock's default names: the environment file, and the lock beside it.
ENVIRONMENT_FILENAME = "environment.yml"
DEFAULT_LOCKFILE = "conda-lock.yml"
VIRTUAL_PACKAGES_FILENAME = "virtual-packages.yml"
# Environment files whose companions keep the plain names above.
_PLAIN_ENVIRONMENTS = ("environment.yml", "environment.yaml")


def _companion(env_path: str | os.PathLike[str], plain: str) -> Path:
    """``plain`` beside ``environment.yml``; ``STEM.plain`` beside any other file
    (``gpu.yml`` -> ``gpu.conda-lock.yml``), so two environments in one folder never share it."""
    path = Path(env_path)
    if path.name in _PLAIN_ENVIRONMENTS:
        return path.parent / plain
    stem = path.name.rsplit(".", 1)[0] if path.suffix in (".yml", ".yaml") else path.name
    return path.parent / f"{stem}.{plain}"


def lockfile_for(env_path: str | os.PathLike[str]) -> Path:
    """The lock beside an environment file: conda-lock.yml, or ``STEM.conda-lock.yml``."""
    return _companion(env_path, DEFAULT_LOCKFILE)


def virtual_packages_for_env(env_path: str | os.PathLike[str]) -> Path:
    """virtual-packages.yml beside environment.yml, ``STEM.virtual-packages.yml`` otherwise."""
    return _companion(env_path, VIRTUAL_PACKAGES_FILENAME)


def environment_for_lockfile(lockfile: str | os.PathLike[str]) -> Path:
    """The environment file a lock was made from, by name (the inverse of ``lockfile_for``)."""
    path = Path(lockfile)
    suffix = "." + DEFAULT_LOCKFILE
    if path.name.endswith(suffix) and len(path.name) > len(suffix):
        return path.parent / (path.name[: -len(suffix)] + ".yml")
    return path.parent / ENVIRONMENT_FILENAME


def lock_command_for(lockfile: str | os.PathLike[str]) -> str:
    """The command that remakes ``lockfile``, with the ``-f`` its environment file needs."""
    return lock_command_for_source(environment_for_lockfile(lockfile).name)


def lock_command_for_source(source: str | None) -> str:
    """The lock command for the environment file ``source`` names (a lock's ``sources``);
    ``-f`` is left out for the default environment.yml, which it finds by itself."""
    import shlex

    name = Path(source).name if source else ENVIRONMENT_FILENAME
    return "conda torch-env lock" + (
        "" if name == ENVIRONMENT_FILENAME else f" -f {shlex.quote(name)}"
    )
