"""Channel names to URLs: ``--channel-alias``, conda's ``custom_channels``, local folders.

An environment.yml names channels the way conda does (``pytorch``,
``conda-forge/label/pytorch_rc``, a full URL, a local path). Resolution follows
conda's rules, without importing conda:

- a URL (``https://...``, ``file:///...``) is used as is;
- an absolute or ``./`` path, or ``~``, becomes a ``file://`` URL;
- a name listed in ``custom_channels`` (conda's setting: name -> channel URL) goes there;
- any other name goes to ``ALIAS/NAME``, where ALIAS is ``--channel-alias`` (a mirror,
  or a ``file://`` folder holding ``pytorch/``, ``nvidia/``, ``conda-forge/``), else
  conda's ``channel_alias`` when running inside conda, else ``https://conda.anaconda.org``;
- ``defaults`` is Anaconda's ``pkgs/main`` and ``pkgs/r`` (conda's ``default_channels``),
  and ``nodefaults`` (conda's "ignore defaults" marker) resolves to nothing.

The resolved URL may carry credentials (``user:password@`` or ``/t/TOKEN/``); they
are used to read the channel and stripped (``public_url``) from anything written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from conda_torch_plugin.condalock.lockfile import strip_credentials
from conda_torch_plugin.errors import LockError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org"
DEFAULT_CHANNELS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")
NO_DEFAULTS = "nodefaults"

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_TOKEN = re.compile(r"/t/[^/]+/")


@dataclass(frozen=True)
class ChannelSource:
    """One channel as the environment names it and the URL it is read from."""

    name: str  # as written in environment.yml ("pytorch")
    url: str  # what is read, credentials included, no trailing slash

    @property
    def public_url(self) -> str:
        """The URL with user:password and ``/t/TOKEN/`` removed: safe to write and print."""
        return strip_credentials(self.url)

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")

    def local_path(self) -> Path | None:
        """The folder of a ``file://`` channel, else None."""
        if not self.is_local:
            return None
        from urllib.parse import unquote

        return Path(unquote(urlsplit(self.url).path))


def redact(text: str, channels: Iterable[ChannelSource]) -> str:
    """Replace each credential-bearing channel URL in ``text`` (a message) by its public form."""
    for channel in channels:
        if channel.url != channel.public_url:
            text = text.replace(channel.url, channel.public_url)
            # rattler masks passwords itself ("user:********@"), and prints base URLs with a slash.
            text = _mask_variants(text, channel)
    return text


def _mask_variants(text: str, channel: ChannelSource) -> str:
    parts = urlsplit(channel.url)
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        text = text.replace(f"{userinfo}@", "")
        user = userinfo.split(":", 1)[0]
        text = text.replace(f"{user}:********@", "")
    token = _TOKEN.search(parts.path)
    if token:
        text = text.replace(token.group(0), "/").replace("/t/********/", "/")
    return text


def normalize_alias(alias: str) -> str:
    """A channel alias as a URL without trailing slash; a local folder becomes ``file://``."""
    alias = alias.strip()
    if not alias:
        raise UsageError(
            "--channel-alias is empty",
            hints=["give a URL such as https://conda.anaconda.org or file:///srv/channels"],
        )
    if _URL.match(alias):
        return alias.rstrip("/")
    path = Path(alias).expanduser()
    if not path.is_absolute():
        path = path.resolve()
    return path.as_uri().rstrip("/")


def resolve_channel(
    name: str,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
) -> tuple[ChannelSource, ...]:
    """The channel(s) a name stands for (``defaults`` is two, ``nodefaults`` none)."""
    name = name.strip()
    if not name:
        raise LockError("an empty channel name in the environment's channels")
    if name == NO_DEFAULTS:
        return ()
    if name == "defaults":
        return tuple(ChannelSource("defaults", url) for url in DEFAULT_CHANNELS)
    if _URL.match(name):
        return (ChannelSource(name, name.rstrip("/")),)
    if name.startswith(("/", "./", "../", "~")) or re.match(r"^[A-Za-z]:[\\/]", name):
        path = Path(name).expanduser().resolve()
        return (ChannelSource(name, path.as_uri()),)
    # custom_channels maps a channel name to that channel's URL (conda's Channel.base_url);
    # the longest matching name wins, the rest of the name ("/label/x") is appended.
    custom = dict(custom_channels or {})
    for key in sorted(custom, key=len, reverse=True):
        if name == key or name.startswith(f"{key}/"):
            return (ChannelSource(name, custom[key].rstrip("/") + name[len(key) :]),)
    alias = normalize_alias(channel_alias) if channel_alias else DEFAULT_CHANNEL_ALIAS
    return (ChannelSource(name, f"{alias}/{name}"),)


def resolve_channels(
    names: Sequence[str],
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
) -> tuple[ChannelSource, ...]:
    """Every channel of an environment, in priority order, without duplicates."""
    out: list[ChannelSource] = []
    seen: set[str] = set()
    for name in names:
        for channel in resolve_channel(name, channel_alias, custom_channels):
            if channel.url not in seen:
                seen.add(channel.url)
                out.append(channel)
    if not out:
        raise LockError(
            "the environment names no channel to solve from",
            hints=["add a channels: list to environment.yml, e.g. channels: [conda-forge]"],
        )
    return tuple(out)


def check_local_channels(channels: Iterable[ChannelSource], platforms: Iterable[str]) -> None:
    """Fail early, and clearly, for a ``file://`` channel that does not exist.

    rattler treats a missing platform subdir as empty and only fails on a missing
    ``noarch/``; a folder with neither is no channel at all.
    """
    wanted = tuple(platforms)
    for channel in channels:
        folder = channel.local_path()
        if folder is None:
            continue
        has_noarch = (folder / "noarch" / "repodata.json").is_file()
        has_platform = any((folder / p / "repodata.json").is_file() for p in wanted)
        if has_noarch:
            continue
        if not folder.is_dir():
            what = f"the folder {folder} does not exist"
        elif has_platform:
            what = "it has no noarch/repodata.json (every conda channel needs one, even empty)"
        else:
            what = f"{folder} holds no noarch/repodata.json and no {'/'.join(wanted)} repodata"
        raise LockError(
            f"channel {channel.name!r} ({channel.public_url}) does not exist: {what}",
            hints=_channel_hints(channel),
        )


def _channel_hints(channel: ChannelSource) -> list[str]:
    hints = []
    if channel.name != channel.url and not _URL.match(channel.name):
        hints.append(
            f"the name {channel.name!r} was resolved to {channel.public_url}; "
            "check --channel-alias (it should be the folder or URL that holds the channel folders)"
        )
    hints.append("check the channels: list of the environment file")
    if channel.is_local:
        hints.append(
            "a local channel needs SUBDIR/repodata.json files (rattler index or conda index)"
        )
    return hints


def channel_hints(channel: ChannelSource) -> list[str]:
    """What to do about a channel that cannot be read (for error messages elsewhere)."""
    return _channel_hints(channel)
