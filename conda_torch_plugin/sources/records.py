"""What a channel holds of the torch family: its repodata records, read or bundled.

``query`` reads the ``pytorch``, ``torchvision`` and ``torchaudio`` records of one
channel, and its ``cuda-version`` and ``python`` records, for some platforms
through py-rattler's gateway: non-recursive, so only those names are fetched
(sharded repodata where the channel has it), cached in the same cache ``lock``
uses. ``--offline`` reads that cache only.

A bundled snapshot (``recipes/snapshots/NAME.json``, shipped in the wheel with
the date it was taken) stands in when the channel cannot be read and nothing is
cached. ``python -m conda_torch_plugin.sources.refresh`` rebuilds it from a channel.

The gateway is made by one small function, ``make_gateway``, so how the client
reaches the network (proxies, TLS) is decided in one place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin import interrupts
from conda_torch_plugin.errors import TorchEnvError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rattler import Gateway

    from conda_torch_plugin.network import NetworkSettings

TORCH_FAMILY = ("pytorch", "torchvision", "torchaudio")
# Read beside them: which CUDA runtimes and Pythons the channel can install at all.
RUNTIMES = ("cuda-version", "python")
SNAPSHOT_SCHEMA = "channel-snapshot/1"
_PY_BUILD = re.compile(r"(?:^|_)py(\d)(\d+)(?:_|h|$)")


class ChannelUnavailable(TorchEnvError):
    """The channel's repodata could not be read (no network, no cache, a bad mirror)."""


@dataclass(frozen=True)
class Record:
    """One torch-family package in a channel, as repodata describes it."""

    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    depends: tuple[str, ...] = ()

    def depend(self, name: str) -> str | None:
        """The version part of the dependency on ``name`` ("" for a bare name), or None."""
        for dep in self.depends:
            parts = dep.split()
            if parts and parts[0] == name:
                return parts[1] if len(parts) > 1 else ""
        return None

    @property
    def python(self) -> str | None:
        """The Python X.Y this build is for: from ``python >=3.12,<3.13.0a0`` or ``py312``."""
        spec = self.depend("python")
        if spec:
            m = re.match(r"^(?:>=)?(3\.\d+)", spec)
            if m:
                return m[1]
        m = _PY_BUILD.search(self.build)
        return f"{m[1]}.{m[2]}" if m else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "subdir": self.subdir,
            "depends": list(self.depends),
        }


@dataclass(frozen=True)
class ChannelRecords:
    """The torch-family records of one source's channel, and where they came from."""

    source: str  # the source name ("conda-forge")
    records: tuple[Record, ...]
    origin: str  # "https://conda.anaconda.org/conda-forge" or "bundled snapshot"
    taken: str | None = None  # the snapshot's date (bundled only)

    @property
    def bundled(self) -> bool:
        return self.taken is not None


def make_gateway(
    cache_dir: Path | None = None,
    *,
    offline: bool = False,
    network: NetworkSettings | None = None,
) -> Gateway:
    """The repodata client: the cache ``lock`` uses (py-rattler's default), or
    ``$RATTLER_CACHE_DIR`` as rattler's tools read it; offline, that cache and nothing else."""
    import os

    from conda_torch_plugin.network import from_environ, gateway

    if cache_dir is None and os.environ.get("RATTLER_CACHE_DIR"):
        cache_dir = Path(os.environ["RATTLER_CACHE_DIR"])
    # Proxies, TLS and retries as every other network access (``network``): conda's
    # settings inside conda, else the environment's.
    return gateway((network or from_environ()).with_offline(offline), cache_dir)


def query(
    url: str,
    platforms: Sequence[str],
    *,
    offline: bool = False,
    gateway: Gateway | None = None,
    cache_dir: Path | None = None,
    network: NetworkSettings | None = None,
) -> tuple[Record, ...]:
    """The torch-family records of the channel at ``url`` for ``platforms`` (and noarch).

    ``cache_dir``: a repodata cache of the caller's (a channel read with credentials must
    not be recorded in the shared one). Raises ``ChannelUnavailable`` when the channel
    cannot be read.
    """
    from rattler import Channel, Subdir
    from rattler.exceptions import (
        FetchRepoDataError,
        GatewayError,
        InvalidChannelError,
        IoError,
    )

    client = gateway or make_gateway(cache_dir, offline=offline, network=network)
    subdirs = [Subdir(p) for p in dict.fromkeys([*platforms, "noarch"])]
    try:
        result = interrupts.run(
            client.query([Channel(url)], subdirs, [*TORCH_FAMILY, *RUNTIMES], recursive=False)
        )
    except (FetchRepoDataError, GatewayError, InvalidChannelError, IoError) as error:
        raise ChannelUnavailable(f"the channel {url} could not be read: {error}") from error
    records = [_record(r) for per_source in result for r in per_source]
    if not any(r.name == "pytorch" for r in records):
        raise ChannelUnavailable(
            f"the channel {url} holds no pytorch for {', '.join(platforms)}"
            + (" in the repodata cache" if offline else "")
        )
    return tuple(sorted(records, key=_key))


def _record(raw: Any) -> Record:
    return Record(
        name=raw.name.normalized,
        version=str(raw.version),
        build=str(raw.build),
        build_number=int(raw.build_number),
        subdir=str(raw.subdir),
        depends=tuple(str(d) for d in raw.depends),
    )


def _key(r: Record) -> tuple[str, str, str, int, str]:
    return (r.name, r.subdir, r.version, r.build_number, r.build)


# -- snapshots -------------------------------------------------------------------


def snapshot_path(source: str, directory: Path | None = None) -> Path:
    from conda_torch_plugin.recipes import recipes_dir

    base = directory if directory is not None else Path(str(recipes_dir()))
    return base / "snapshots" / f"{source}.json"


def bundled(source: str, directory: Path | None = None) -> ChannelRecords | None:
    """The snapshot shipped for ``source``, or None when there is none."""
    path = snapshot_path(source, directory)
    if not path.is_file():
        return None
    return read_snapshot(path, source)


def read_snapshot(path: Path, source: str) -> ChannelRecords:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SNAPSHOT_SCHEMA or data.get("source") != source:
            raise ValueError(f"not a {SNAPSHOT_SCHEMA} snapshot of {source}")
        records = tuple(
            Record(
                str(r["name"]),
                str(r["version"]),
                str(r["build"]),
                int(r["build_number"]),
                str(r["subdir"]),
                tuple(str(d) for d in r.get("depends", ())),
            )
            for r in data["records"]
        )
        return ChannelRecords(source, records, str(data["origin"]), str(data["taken"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ChannelUnavailable(
            f"the bundled snapshot {path} cannot be read ({error})",
            hints=["reinstall conda-torch-plugin"],
        ) from error


def snapshot_text(source: str, origin: str, taken: str, records: Iterable[Record]) -> str:
    """A snapshot file's text: canonical order, one record per line."""
    rows = sorted(records, key=_key)
    body = ",\n".join("    " + json.dumps(r.to_dict(), sort_keys=True) for r in rows)
    head = json.dumps(
        {"schema": SNAPSHOT_SCHEMA, "source": source, "origin": origin, "taken": taken}
    )[:-1]
    return f'{head}, "records": [\n{body}\n]}}\n'
