"""Where ``-n NAME`` / ``-p PREFIX`` put an environment.

- ``-p PREFIX``: that folder (``~`` expanded, made absolute).
- ``-n NAME`` inside conda: ``NAME`` in the first writable folder of conda's
  ``envs_dirs`` (the caller passes them, read through ``_conda.settings``), so
  ``conda activate NAME`` and ``conda env list`` find it.
- ``-n NAME`` without conda: ``$CONDA_TORCH_ENV_ENVS_DIR/NAME`` when that variable
  is set, else ``~/.conda/envs/NAME`` (a folder conda also searches by default).

Names are validated as conda validates them: no path separators, spaces, ``:``
or ``#``, and not ``base`` (conda's own environment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ENVS_DIR_VARIABLE = "CONDA_TORCH_ENV_ENVS_DIR"
DEFAULT_ENVS_DIR = "~/.conda/envs"
_FORBIDDEN = ("/", "\\", " ", ":", "#")
RESERVED_NAMES = ("base", "root")


@dataclass(frozen=True)
class Target:
    """A resolved environment location."""

    prefix: Path
    name: str | None  # set for -n NAME
    via: str  # "prefix" | "conda-envs-dirs" | "env-var" | "default"

    @property
    def activate_argument(self) -> str:
        """What to pass to ``conda activate``: the name where conda finds it, else the path."""
        if self.name and self.via == "conda-envs-dirs":
            return self.name
        return str(self.prefix)

    def to_dict(self) -> dict[str, object]:
        return {"prefix": str(self.prefix), "name": self.name, "via": self.via}


def validate_name(name: str) -> str:
    if not name or name in (".", ".."):
        raise UsageError("the environment name is empty", hints=["pass -n NAME or -p PREFIX"])
    bad = [c for c in _FORBIDDEN if c in name]
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise UsageError(
            f"environment name {name!r} contains {shown}",
            hints=[
                "a name may not contain '/', '\\', spaces, ':' or '#'; use -p PREFIX for a path"
            ],
        )
    if name.lower() in RESERVED_NAMES:
        raise UsageError(
            f"{name!r} is conda's own base environment and cannot be created or replaced",
            hints=["choose another name, e.g. -n torch"],
        )
    return name


def default_envs_dir(environ: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The envs folder used without conda, and how it was chosen ("env-var" | "default")."""
    environ = os.environ if environ is None else environ
    configured = environ.get(ENVS_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser().resolve(), "env-var"
    return Path(DEFAULT_ENVS_DIR).expanduser().resolve(), "default"


def first_writable(dirs: Sequence[str | Path]) -> Path | None:
    """The first folder that exists and is writable, or does not exist yet but could be made."""
    for entry in dirs:
        path = Path(entry).expanduser()
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
            return path.resolve()
    return None


def resolve_target(
    *,
    name: str | None,
    prefix: str | None,
    conda_envs_dirs: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Target:
    """Turn ``-n``/``-p`` into a prefix; ``conda_envs_dirs`` empty means "not inside conda"."""
    if prefix:
        return Target(Path(prefix).expanduser().resolve(), None, "prefix")
    if not name:
        raise UsageError("say where the environment goes", hints=["pass -n NAME or -p PREFIX"])
    validate_name(name)
    if conda_envs_dirs:
        folder = first_writable(conda_envs_dirs)
        if folder is None:
            raise UsageError(
                "none of conda's envs_dirs is writable: " + ", ".join(conda_envs_dirs),
                hints=["pass -p PREFIX, or add a writable folder to conda's envs_dirs"],
            )
        return Target(folder / name, name, "conda-envs-dirs")
    folder, via = default_envs_dir(environ)
    return Target(folder / name, name, via)
