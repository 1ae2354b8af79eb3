"""Where the plan's candidates come from: the channels, else a bundled snapshot.

``from_channels`` reads, for each source the request may use whose channel still
publishes (``PyTorchSource.reads_repodata``), the torch-family records of that
channel (``sources.records.query``: the gateway, its cache, ``--offline``) and
cuts the recipes down to what the channel holds (``sources.availability``). When
the channel cannot be read and nothing is cached it plans from the snapshot
shipped in the wheel and says so, with the snapshot's date. The frozen pytorch
channel (nothing published after 2.5.1) is planned from its recipes, which were
checked against its repodata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conda_torch_plugin.channels import redact, resolve_channel
from conda_torch_plugin.recipes import load_recipes
from conda_torch_plugin.sources import SOURCES
from conda_torch_plugin.sources.availability import restrict
from conda_torch_plugin.sources.records import ChannelRecords, ChannelUnavailable, bundled, query

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from conda_torch_plugin.channels import ChannelSource
    from conda_torch_plugin.recipes import Recipes
    from conda_torch_plugin.sources.records import Record


@dataclass(frozen=True)
class Candidates:
    recipes: Recipes  # cut down to what the channels hold
    notes: tuple[str, ...]  # where they came from, for the plan's reasons


def from_channels(
    platforms: Sequence[str],
    *,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
    offline: bool = False,
    recipes: Recipes | None = None,
    read: Callable[..., tuple[Record, ...]] | None = None,
) -> Candidates:
    """The recipes restricted to what each publishing source's channel holds for
    ``platforms``. Never raises for an unreadable channel: it falls back and says so."""
    recipes = recipes if recipes is not None else load_recipes()
    read = read or query
    notes: list[str] = []
    for name, src in SOURCES.items():
        if not src.reads_repodata:
            continue
        (channel,) = resolve_channel(src.channel_names[0], channel_alias, custom_channels)
        held: ChannelRecords | None
        try:
            records = _read(read, channel, platforms, offline)
            held = ChannelRecords(name, records, redact(channel.url, [channel]))
            notes.append(f"Candidates from {src.subject}'s repodata ({held.origin}).")
        except ChannelUnavailable as error:
            held = bundled(name)
            why = "--offline and nothing cached" if offline else redact(error.message, [channel])
            if held is None:
                notes.append(
                    f"{src.subject}'s repodata could not be read ({why}): planned from the "
                    "recipes alone."
                )
                continue
            notes.append(
                f"{src.subject}'s repodata could not be read ({why}): planned from the "
                f"snapshot of its torch-family records bundled with this version, taken "
                f"{held.taken} ({held.origin}); newer releases may exist."
            )
        restricted = restrict(recipes, held, platforms)
        recipes = restricted.recipes
        notes += [n[0].upper() + n[1:] + "." for n in restricted.notes]
    return Candidates(recipes, tuple(notes))


def _read(
    read: Callable[..., tuple[Record, ...]],
    channel: ChannelSource,
    platforms: Sequence[str],
    offline: bool,
) -> tuple[Record, ...]:
    """py-rattler's repodata cache records channel URLs in plain text: a channel read with
    credentials gets a private cache, removed afterwards (as ``lock`` does)."""
    if channel.url == channel.public_url:
        return read(channel.url, platforms, offline=offline)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="conda-torch-env-repodata-") as cache:
        return read(channel.url, platforms, offline=offline, cache_dir=Path(cache))
