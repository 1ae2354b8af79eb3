"""Where PyTorch comes from: one module per source, and the registry of them.

``SOURCES`` lists them in the order ``--source auto`` tries them. Code outside
this package never compares a source name with a string: it looks the source up
here (``source(name)``) and asks it. Adding a source (a wheel index, a ROCm
channel) is one module implementing ``base.PyTorchSource`` plus its recipe
file, and one line below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin.sources.conda_forge import CondaForge
from conda_torch_plugin.sources.pytorch_channel import PytorchChannel

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conda_torch_plugin.sources.base import PyTorchSource

SOURCES: dict[str, PyTorchSource] = {s.name: s for s in (PytorchChannel(), CondaForge())}
NAMES: tuple[str, ...] = tuple(SOURCES)
AUTO = "auto"
SOURCE_CHOICES: tuple[str, ...] = (AUTO, *NAMES)
# Where everything outside the torch family comes from (the first is the default).
BASE_CHANNELS = ("conda-forge", "defaults")


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
