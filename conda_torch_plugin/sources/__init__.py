"""Where PyTorch comes from: one module per source, and the registry of them.

``SOURCES`` lists them in the order ``--source auto`` tries them. Code outside
this package never compares a source name with a string: it looks the source up
here (``source(name)``) and asks it. Adding a source (a wheel index, a ROCm
channel) is one module implementing ``base.PyTorchSource`` plus its recipe
file, and one line below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin.errors import UsageError
from conda_torch_plugin.sources.conda_forge import CondaForge
from conda_torch_plugin.sources.pytorch_channel import PytorchChannel

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conda_torch_plugin.sources.base import PyTorchSource

SOURCES: dict[str, PyTorchSource] = {s.name: s for s in (PytorchChannel(), CondaForge())}
NAMES: tuple[str, ...] = tuple(SOURCES)
AUTO = "auto"
SOURCE_CHOICES: tuple[str, ...] = (AUTO, *NAMES)
# Where everything outside the torch family comes from (the first is the default).
BASE_CHANNELS = ("conda-forge", "defaults")


# A team's default --source: conda's ``torch_env_default_source`` setting (.condarc, through
# the ``conda_settings`` hook), else this environment variable, else auto.
DEFAULT_SOURCE_SETTING = "torch_env_default_source"
DEFAULT_SOURCE_VARIABLE = "CONDA_TORCH_ENV_DEFAULT_SOURCE"


def default_source(setting: str | None, environ: Mapping[str, str]) -> str:
    """The source used when ``--source`` is not given. ``setting`` is conda's setting
    (None outside conda); UsageError for a value that names no source."""
    value, where = setting, f"the conda setting {DEFAULT_SOURCE_SETTING}"
    if not value:
        value, where = environ.get(DEFAULT_SOURCE_VARIABLE, ""), DEFAULT_SOURCE_VARIABLE
    value = value.strip()
    if not value:
        return AUTO
    if value not in SOURCE_CHOICES:
        raise UsageError(
            f"{where} is {value!r}, which is not a source",
            hints=[f"set it to one of {', '.join(SOURCE_CHOICES)}, or pass --source"],
        )
    return value


def source(name: str) -> PyTorchSource:
    """The source called ``name`` (KeyError for an unknown one: callers validate first)."""
    return SOURCES[name]


def find(name: str | None) -> PyTorchSource | None:
    """The source called ``name``, or None (a channel or style that is no source)."""
    return SOURCES.get(name) if name else None


def for_request(name: str) -> tuple[PyTorchSource, ...]:
    """The sources to try, in order, for ``--source name``."""
    return tuple(SOURCES.values()) if name == AUTO else (SOURCES[name],)


# The source whose rules apply to an environment that names none of the sources' channels.
FALLBACK = CondaForge.name


def source_named_in(channel_names: Sequence[str]) -> PyTorchSource:
    """The first source (in the registry's order) among ``channel_names``, else the fallback."""
    return next((s for s in SOURCES.values() if s.name in channel_names), SOURCES[FALLBACK])


def managed_channels() -> frozenset[str]:
    """Every channel some source brings into environment.yml."""
    return frozenset(c for s in SOURCES.values() for c in s.channel_names)
