"""Load the compatibility data in ``recipes/`` (shipped inside the wheel).

Data, not code: releases, CUDA variants, arch lists, driver minimums and guards
are JSON files validated on load; every row names its source keys, and every
key must be defined in ``sources.json``. A file that fails validation raises
``RecipeError`` naming the file and the row.

Files are told apart by their ``schema`` field:

* ``sources/1``: ``{"sources": {KEY: citation}}``.
* ``cuda-drivers/1``: ``toolkit`` rows ``{cuda, row, linux, windows, source}``
  (Table 3, GA row of each CUDA minor; ``null`` = N/A) and ``minor_compat`` rows
  ``{major, linux, windows, source}`` (Table 2), and ``minor_compat_source``: the
  source keys of the minor-version compatibility rule itself.
* ``releases/1`` (one file per channel): ``channel``, named ``arch_lists``
  (``{sass, ptx, source}``), ``releases`` (``{pytorch, torchvision, torchaudio,
  [torchaudio_platforms], python, cpu_platforms, cuda: [{cuda, archs: {platform:
  arch list name, or [{from_build, list}] where the list changed within the
  release}, [runtime: {platform: X.Y}], source}], source}``) and ``guards`` (``{spec, platforms,
  reason, source}``: extra specs a channel needs), and ``platform_floors``: the
  oldest C library and macOS the channel's builds need, which a lock assumes as
  ``__glibc`` / ``__osx`` (``{glibc: [{[cuda_from], glibc, source}], osx:
  [{platform, [release_from], osx, source}]}``; the glibc row without ``cuda_from`` is
  the floor of CPU builds and of CUDA builds below every ``cuda_from``; for each macOS
  platform the file's releases build for, one osx row without ``release_from`` (the
  floor of releases below every ``release_from``) and any number with a distinct
  ``release_from``: the PyTorch release from which that floor applies). Optional
  ``note`` on any row.

The files are found with importlib.resources inside the installed package
(``conda_torch_plugin/recipe_data/``, put there by hatch's force-include), falling
back to the repository's top-level ``recipes/`` in a source checkout.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin import compat
from conda_torch_plugin.errors import RecipeError
from conda_torch_plugin.sources import NAMES

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from importlib.abc import Traversable

PLATFORMS = ("linux-64", "linux-aarch64", "linux-ppc64le", "win-64", "osx-64", "osx-arm64")
CHANNELS = NAMES  # one releases file per source (sources/)
# pypi-names/1 (conda name -> PyPI name) is read by lock.pip_uv, only when a pip: section is locked.
SCHEMAS = ("sources/1", "cuda-drivers/1", "releases/1", "pypi-names/1")


@dataclass(frozen=True)
class ArchList:
    """GPU code in one build: cubins (SASS) per compute capability, and PTX."""

    sass: tuple[str, ...]  # ("5.0", "6.0", ..., "9.0"); "9.0a" = arch-specific
    ptx: tuple[str, ...]  # ("9.0",) where +PTX
    source: str  # source keys, comma-separated: "S8, S9"
    name: str = ""  # the arch_lists key in the recipe file
    note: str | None = None

    def runs_on(self, compute_capability: str, *, jit: bool = True) -> bool:
        """Cubin of the same major and minor <= the GPU's, or PTX (see compat.how_runs)."""
        return compat.runs_on(self, compute_capability, jit=jit)

    def how_runs(self, compute_capability: str, *, jit: bool = True) -> str | None:
        return compat.how_runs(self.sass, self.ptx, compute_capability, jit=jit)

    def describe(self) -> str:
        return compat.describe_archs(self)


@dataclass(frozen=True)
class CudaVariant:
    cuda: str  # "12.4"
    platforms: tuple[str, ...]  # platforms this variant is published for
    archs: dict[str, ArchList]  # per platform: the list of the newest build
    source: tuple[str, ...] = ()
    note: str | None = None
    # Where the list changed within the release: per platform, (first build, list)
    # oldest first. The build is the feedstock's build number (``number:`` in
    # meta.yaml), not the record's build_number, which adds a variant offset.
    arch_builds: dict[str, tuple[tuple[int, ArchList], ...]] = field(default_factory=dict)
    # Where the environment must pin a newer cuda-version than the build's CUDA (the
    # companions were built with a newer one): platform -> X.Y.
    runtime: dict[str, str] = field(default_factory=dict)

    def pin(self, platform: str) -> str:
        """The cuda-version an environment of this variant pins on ``platform``."""
        return self.runtime.get(platform, self.cuda)

    def archs_at(self, platform: str, build: int) -> ArchList | None:
        """The arch list of build ``build`` on ``platform`` (None: no such platform)."""
        steps = self.arch_builds.get(platform)
        if not steps:
            return self.archs.get(platform)
        chosen = None
        for first, archs in steps:
            if build >= first:
                chosen = archs
        return chosen


@dataclass(frozen=True)
class Release:
    channel: str  # "pytorch" | "conda-forge"
    pytorch: str
    torchvision: str | None
    torchaudio: str | None
    torchaudio_platforms: tuple[str, ...]  # where torchaudio exists (conda-forge: not win-64)
    python: tuple[str, ...]  # ("3.9", ..., "3.12"), oldest first
    cpu_platforms: tuple[str, ...]  # platforms with a CPU (osx: CPU/MPS) build
    cuda_variants: tuple[CudaVariant, ...]  # oldest CUDA first
    source: tuple[str, ...]
    note: str | None = None

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every platform with some build of this release."""
        seen = list(self.cpu_platforms)
        for variant in self.cuda_variants:
            seen += [p for p in variant.platforms if p not in seen]
        return tuple(p for p in PLATFORMS if p in seen)

    def variants_for(self, platform: str) -> tuple[CudaVariant, ...]:
        """CUDA variants published for ``platform``, oldest CUDA first."""
        return tuple(v for v in self.cuda_variants if platform in v.platforms)

    def variant(self, cuda: str, platform: str | None = None) -> CudaVariant | None:
        for v in self.cuda_variants:
            if v.cuda == cuda and (platform is None or platform in v.platforms):
                return v
        return None

    def has_torchaudio(self, platform: str) -> bool:
        return self.torchaudio is not None and platform in self.torchaudio_platforms


@dataclass(frozen=True)
class Guard:
    """An extra spec a channel needs on some platforms, and why."""

    channel: str
    spec: str  # "mkl<2024.1"
    platforms: tuple[str, ...]
    reason: str
    source: tuple[str, ...]


@dataclass(frozen=True)
class DriverMinimum:
    """Table 3: the driver a CUDA toolkit X.Y needs (GA row); None = N/A."""

    cuda: str
    row: str
    linux: str | None
    windows: str | None
    source: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class MinorCompat:
    """Table 2: the driver from which every CUDA ``major``.x build runs (limited features)."""

    major: int
    linux: str | None
    windows: str | None
    source: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class GlibcFloor:
    """The glibc a channel's linux builds need: from CUDA ``cuda_from`` on, or (None) the
    floor of CPU builds and of CUDA builds below every other row."""

    glibc: str  # "2.28"
    cuda_from: str | None
    source: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True)
class OsxFloor:
    """The oldest macOS a channel's builds for ``platform`` support: of PyTorch
    ``release_from`` on, or (None) of releases below every other row of the platform."""

    platform: str
    osx: str  # "11.0"
    source: tuple[str, ...]
    note: str | None = None
    release_from: str | None = None  # "2.11.0"


@dataclass(frozen=True)
class PlatformFloors:
    """What a lock of one channel's builds assumes as ``__glibc`` and ``__osx``."""

    channel: str
    glibc_rows: tuple[GlibcFloor, ...]  # the default row first, then by cuda_from
    osx_rows: tuple[OsxFloor, ...]  # per platform: the default row first, then by release_from

    def glibc(self, cuda: str | None) -> str:
        """The ``__glibc`` of a linux build of CUDA ``cuda`` (None: a CPU build)."""
        chosen = self.glibc_rows[0].glibc
        for row in self.glibc_rows[1:]:
            if cuda is not None and compat.compare_versions(cuda, str(row.cuda_from)) >= 0:
                chosen = row.glibc
        return chosen

    def osx(self, platform: str, pytorch: str) -> str | None:
        """The ``__osx`` of a ``platform`` build of PyTorch ``pytorch``: the row with the
        newest ``release_from`` at or below it, else the platform's default; None off macOS."""
        chosen = None
        for row in self.osx_rows:
            if row.platform == platform and (
                row.release_from is None or compat.compare_versions(pytorch, row.release_from) >= 0
            ):
                chosen = row.osx
        return chosen


@dataclass(frozen=True)
class Recipes:
    releases: tuple[Release, ...]  # newest first within each channel
    sources: dict[str, str]  # source key -> citation
    drivers: tuple[DriverMinimum, ...] = ()  # oldest CUDA first
    minor_compat: tuple[MinorCompat, ...] = ()
    guards: tuple[Guard, ...] = ()
    minor_compat_sources: tuple[str, ...] = ()  # behind the minor-version compatibility rule
    floors: tuple[PlatformFloors, ...] = ()  # one per channel

    def releases_for(self, channel: str) -> tuple[Release, ...]:
        return tuple(r for r in self.releases if r.channel == channel)

    def release(self, channel: str, pytorch: str) -> Release | None:
        for r in self.releases:
            if r.channel == channel and r.pytorch == pytorch:
                return r
        return None

    def min_driver(self, cuda: str, platform: str) -> str | None:
        """Minimum driver for full support of CUDA ``cuda`` (Table 3), or None if unknown."""
        os_name = compat.driver_os(platform)
        key = ".".join(cuda.split(".")[:2])
        for row in self.drivers:
            if row.cuda == key:
                return getattr(row, os_name) if os_name else None
        return None

    def minor_compat_driver(self, cuda_major: int, platform: str) -> str | None:
        """Minimum driver for minor-version compatibility across a CUDA major (Table 2)."""
        os_name = compat.driver_os(platform)
        for row in self.minor_compat:
            if row.major == cuda_major:
                return getattr(row, os_name) if os_name else None
        return None

    def max_cuda_for_driver(self, driver: str, platform: str) -> str | None:
        """The newest CUDA X.Y whose Table 3 minimum ``driver`` meets on ``platform``."""
        os_name = compat.driver_os(platform)
        if os_name is None:
            return None
        best = None
        for row in self.drivers:
            minimum = getattr(row, os_name)
            if minimum and compat.driver_at_least(driver, minimum):
                best = row.cuda
        return best

    def arch_list(self, channel: str, pytorch: str, cuda: str, platform: str) -> ArchList | None:
        release = self.release(channel, pytorch)
        variant = release.variant(cuda, platform) if release else None
        return variant.archs.get(platform) if variant else None

    def guards_for(self, channel: str, platform: str) -> tuple[Guard, ...]:
        return tuple(g for g in self.guards if g.channel == channel and platform in g.platforms)

    def platform_floors(self, channel: str) -> PlatformFloors:
        """The ``__glibc`` / ``__osx`` floors of ``channel``'s builds (its recipe file's)."""
        for floors in self.floors:
            if floors.channel == channel:
                return floors
        raise RecipeError(
            f"no recipe file gives the platform floors of channel {channel!r}",
            hints=["reinstall conda-torch-plugin; its recipes/ folder is incomplete"],
        )


# -- locating and loading --------------------------------------------------------


def recipes_dir() -> Traversable | Path:
    """The folder holding the recipe files: in the package, else the source checkout's."""
    packaged = resources.files("conda_torch_plugin").joinpath("recipe_data")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "recipes"


@functools.cache
def load_recipes() -> Recipes:
    """The shipped recipes, validated once per process."""
    return load_recipes_from(recipes_dir())


def load_recipes_from(directory: Traversable | Path) -> Recipes:
    """Read and validate every ``*.json`` in ``directory`` (not cached: tests use it)."""
    if not directory.is_dir():
        raise RecipeError(
            f"the recipes folder {directory} does not exist",
            hints=["reinstall conda-torch-plugin; the wheel ships recipes/ inside the package"],
        )
    files = sorted(
        (f for f in directory.iterdir() if f.name.endswith(".json")), key=lambda f: f.name
    )
    if not files:
        raise RecipeError(f"the recipes folder {directory} holds no .json files")
    loaded: dict[str, list[tuple[str, dict[str, Any]]]] = {s: [] for s in SCHEMAS}
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _error(file.name, "the file", f"is not valid JSON ({error})") from error
        if not isinstance(data, dict) or data.get("schema") not in SCHEMAS:
            raise _error(
                file.name,
                "the file",
                f"has no known 'schema' (expected one of {', '.join(SCHEMAS)})",
            )
        loaded[data["schema"]].append((file.name, data))
    if len(loaded["sources/1"]) != 1:
        raise RecipeError(f"the recipes folder {directory} needs exactly one sources/1 file")
    sources = _read_sources(*loaded["sources/1"][0])
    drivers: list[DriverMinimum] = []
    minor: list[MinorCompat] = []
    rule_sources: tuple[str, ...] = ()
    for name, data in loaded["cuda-drivers/1"]:
        d, m, r = _read_drivers(name, data, sources)
        drivers += d
        minor += m
        rule_sources += r
    releases: list[Release] = []
    guards: list[Guard] = []
    floors: list[PlatformFloors] = []
    seen_channels: set[str] = set()
    for name, data in loaded["releases/1"]:
        channel_releases, channel_guards, channel_floors = _read_releases(name, data, sources)
        channel = channel_releases[0].channel if channel_releases else data.get("channel")
        if channel in seen_channels:
            raise _error(name, "the file", f"repeats channel {channel!r} of another recipe file")
        seen_channels.add(str(channel))
        releases += channel_releases
        guards += channel_guards
        floors.append(channel_floors)
    return Recipes(
        releases=tuple(releases),
        sources=sources,
        drivers=tuple(sorted(drivers, key=lambda r: compat.version_tuple(r.cuda))),
        minor_compat=tuple(sorted(minor, key=lambda r: r.major)),
        guards=tuple(guards),
        minor_compat_sources=rule_sources,
        floors=tuple(floors),
    )


# -- validation ------------------------------------------------------------------

_RELEASE = re.compile(r"^\d+\.\d+\.\d+$")
_XY = re.compile(r"^\d+\.\d+$")
_PYTHON = re.compile(r"^3\.\d+$")
_CC = re.compile(r"^\d+\.\d+a?$")
_DRIVER = re.compile(r"^\d+(\.\d+){0,2}$")
_CUDA_FROM = re.compile(r"^\d+(\.\d+)?$")
_SOURCE_KEY = re.compile(r"^[A-Z][A-Za-z0-9-]*$")


def _error(file: str, where: str, problem: str) -> RecipeError:
    return RecipeError(
        f"recipes/{file}: {where} {problem}",
        hints=[
            "recipes/ is data shipped with the package: fix that row (see its 'about'), "
            "or reinstall conda-torch-plugin"
        ],
        file=file,
        where=where,
    )


class _Row:
    """One JSON object being validated; errors name the file and the row."""

    def __init__(self, file: str, where: str, data: Any, sources: Mapping[str, str] | None) -> None:
        if not isinstance(data, dict):
            raise _error(file, where, "is not an object")
        self.file, self.where, self.data, self.sources = file, where, data, sources

    def fail(self, problem: str) -> RecipeError:
        return _error(self.file, self.where, problem)

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
        if key not in self.data:
            if required:
                raise self.fail(f"lacks the required key {key!r}")
            return None
        value = self.data[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.fail(f"has {key!r} = {value!r}, which is not {names}")
        return value

    def text(
        self,
        key: str,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        *,
        required: bool = True,
        nullable: bool = False,
    ) -> str | None:
        value = self.get(key, (str, type(None)) if nullable else str, required=required)
        if value is not None and pattern is not None and not pattern.match(value):
            raise self.fail(f"has {key!r} = {value!r}, which is not {what}")
        return value

    def texts(
        self,
        key: str,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        *,
        choices: Iterable[str] = (),
        required: bool = True,
        empty: bool = True,
    ) -> tuple[str, ...]:
        values = self.get(key, list, required=required) or []
        allowed = tuple(choices)
        for value in values:
            if not isinstance(value, str):
                raise self.fail(f"has {key!r} with {value!r}, which is not a string")
            if pattern is not None and not pattern.match(value):
                raise self.fail(f"has {key!r} with {value!r}, which is not {what}")
            if allowed and value not in allowed:
                raise self.fail(
                    f"has {key!r} with {value!r}, which is not one of {', '.join(allowed)}"
                )
        if len(set(values)) != len(values):
            raise self.fail(f"repeats a value in {key!r}")
        if not values and not empty:
            raise self.fail(f"has an empty {key!r}")
        return tuple(values)

    def source(self) -> tuple[str, ...]:
        keys = self.texts("source", _SOURCE_KEY, "a source key like S8", empty=False)
        undefined = [k for k in keys if self.sources is not None and k not in self.sources]
        if undefined:
            raise self.fail(
                f"cites source key(s) {', '.join(undefined)} not defined in sources.json"
            )
        return keys

    def note(self) -> str | None:
        return self.text("note", required=False)


def _read_sources(file: str, data: dict[str, Any]) -> dict[str, str]:
    row = _Row(file, "the file", data, None)
    table = row.get("sources", dict)
    for key, citation in table.items():
        if not _SOURCE_KEY.match(key) or not isinstance(citation, str) or not citation.strip():
            raise _error(file, f"sources[{key!r}]", "needs a key like S8 and a non-empty citation")
    return dict(table)


def _read_drivers(
    file: str, data: dict[str, Any], sources: Mapping[str, str]
) -> tuple[list[DriverMinimum], list[MinorCompat], tuple[str, ...]]:
    top = _Row(file, "the file", data, sources)
    rule = top.get("minor_compat_source", list, required=False)
    rule_sources = (
        _Row(file, "minor_compat_source", {"source": rule}, sources).source() if rule else ()
    )
    drivers: list[DriverMinimum] = []
    for i, raw in enumerate(top.get("toolkit", list)):
        row = _Row(file, f"toolkit[{i}] (CUDA {_peek(raw, 'cuda')})", raw, sources)
        cuda = str(row.text("cuda", _XY, "a CUDA version like 12.4"))
        linux = row.text("linux", _DRIVER, "a driver version like 550.54.14", nullable=True)
        windows = row.text("windows", _DRIVER, "a driver version like 551.61", nullable=True)
        if any(d.cuda == cuda for d in drivers):
            raise row.fail(f"repeats CUDA {cuda}")
        drivers.append(
            DriverMinimum(cuda, str(row.text("row")), linux, windows, row.source(), row.note())
        )
    minor: list[MinorCompat] = []
    for i, raw in enumerate(top.get("minor_compat", list)):
        row = _Row(file, f"minor_compat[{i}] (CUDA {_peek(raw, 'major')}.x)", raw, sources)
        major = row.get("major", int)
        linux = row.text("linux", _DRIVER, "a driver version like 450.80.02", nullable=True)
        windows = row.text("windows", _DRIVER, "a driver version like 452.39", nullable=True)
        if any(m.major == major for m in minor):
            raise row.fail(f"repeats CUDA major {major}")
        minor.append(MinorCompat(major, linux, windows, row.source(), row.note()))
    return drivers, minor, rule_sources


def _read_releases(
    file: str, data: dict[str, Any], sources: Mapping[str, str]
) -> tuple[list[Release], list[Guard], PlatformFloors]:
    top = _Row(file, "the file", data, sources)
    channel = str(top.text("channel"))
    if channel not in CHANNELS:
        raise top.fail(f"names channel {channel!r}, not one of {', '.join(CHANNELS)}")
    arch_lists: dict[str, ArchList] = {}
    for name, raw in top.get("arch_lists", dict).items():
        row = _Row(file, f"arch_lists[{name!r}]", raw, sources)
        sass = row.texts("sass", _CC, "a compute capability like 8.6 or 9.0a")
        ptx = row.texts("ptx", _CC, "a compute capability like 9.0")
        if not sass and not ptx:
            raise row.fail("has neither sass nor ptx")
        arch_lists[name] = ArchList(
            tuple(sorted(sass, key=compat.parse_cc)),
            tuple(sorted(ptx, key=compat.parse_cc)),
            ", ".join(row.source()),
            name,
            row.note(),
        )
    releases: list[Release] = []
    for i, raw in enumerate(top.get("releases", list)):
        release = _read_release(file, i, raw, channel, arch_lists, sources)
        if any(r.pytorch == release.pytorch for r in releases):
            raise _error(file, f"releases[{i}] (pytorch {release.pytorch})", "repeats that release")
        releases.append(release)
    releases.sort(key=lambda r: compat.version_tuple(r.pytorch), reverse=True)
    guards: list[Guard] = []
    for i, raw in enumerate(top.get("guards", list, required=False) or []):
        row = _Row(file, f"guards[{i}] ({_peek(raw, 'spec')})", raw, sources)
        guards.append(
            Guard(
                channel,
                str(row.text("spec")),
                row.texts("platforms", choices=PLATFORMS, empty=False),
                str(row.text("reason")),
                row.source(),
            )
        )
    built_for = {p for r in releases for p in r.platforms}
    floors = _read_floors(file, top.get("platform_floors", dict), channel, built_for, sources)
    return releases, guards, floors


def _read_floors(
    file: str, data: dict[str, Any], channel: str, built_for: set[str], sources: Mapping[str, str]
) -> PlatformFloors:
    """``platform_floors``: one default glibc row, and an osx row per macOS platform built."""
    top = _Row(file, "platform_floors", data, sources)
    glibc: list[GlibcFloor] = []
    for i, raw in enumerate(top.get("glibc", list)):
        row = _Row(file, f"platform_floors glibc[{i}]", raw, sources)
        version = str(row.text("glibc", _XY, "a glibc version like 2.28"))
        cuda_from = row.text("cuda_from", _CUDA_FROM, "a CUDA version like 13.0", required=False)
        if any(g.cuda_from == cuda_from for g in glibc if cuda_from is not None):
            raise row.fail(f"repeats cuda_from {cuda_from}")
        glibc.append(GlibcFloor(version, cuda_from, row.source(), row.note()))
    defaults = [g for g in glibc if g.cuda_from is None]
    if len(defaults) != 1:
        raise top.fail(
            f"needs exactly one glibc row without 'cuda_from' (the floor of CPU builds), "
            f"not {len(defaults)}"
        )
    by_cuda = sorted(
        (g for g in glibc if g.cuda_from is not None),
        key=lambda g: compat.version_tuple(str(g.cuda_from)),
    )
    osx: list[OsxFloor] = []
    macos = tuple(p for p in PLATFORMS if compat.is_osx(p))
    for i, raw in enumerate(top.get("osx", list)):
        row = _Row(file, f"platform_floors osx[{i}]", raw, sources)
        platform = str(row.text("platform"))
        if platform not in macos:
            raise row.fail(f"has platform {platform!r}, not one of {', '.join(macos)}")
        release_from = row.text(
            "release_from", _RELEASE, "a PyTorch version like 2.11.0", required=False
        )
        if release_from is not None and any(
            o.platform == platform and o.release_from == release_from for o in osx
        ):
            raise row.fail(f"repeats release_from {release_from} for {platform}")
        version = str(row.text("osx", _XY, "a macOS version like 11.0"))
        osx.append(OsxFloor(platform, version, row.source(), row.note(), release_from))
    for platform in macos:
        rows = [o for o in osx if o.platform == platform]
        if platform in built_for and not rows:
            raise top.fail(f"has no osx floor for {platform}, which its releases build for")
        defaults_here = sum(o.release_from is None for o in rows)
        if rows and defaults_here != 1:
            raise top.fail(
                f"needs exactly one osx row without 'release_from' for {platform} (the floor "
                f"of its releases below every release_from), not {defaults_here}"
            )
    osx.sort(
        key=lambda o: (
            macos.index(o.platform),
            o.release_from is not None,
            compat.version_tuple(o.release_from or "0"),
        )
    )
    return PlatformFloors(channel, (defaults[0], *by_cuda), tuple(osx))


def _read_release(
    file: str,
    index: int,
    raw: Any,
    channel: str,
    arch_lists: Mapping[str, ArchList],
    sources: Mapping[str, str],
) -> Release:
    row = _Row(file, f"releases[{index}] (pytorch {_peek(raw, 'pytorch')})", raw, sources)
    pytorch = str(row.text("pytorch", _RELEASE, "a version like 2.5.1"))
    torchvision = row.text("torchvision", _RELEASE, "a version like 0.20.1", nullable=True)
    torchaudio = row.text("torchaudio", _RELEASE, "a version like 2.5.1", nullable=True)
    python = row.texts("python", _PYTHON, "a Python version like 3.12", empty=False)
    cpu_platforms = row.texts("cpu_platforms", choices=PLATFORMS)
    variants: list[CudaVariant] = []
    for j, raw_variant in enumerate(row.get("cuda", list)):
        vrow = _Row(
            file, f"{row.where} cuda[{j}] ({_peek(raw_variant, 'cuda')})", raw_variant, sources
        )
        cuda = str(vrow.text("cuda", _XY, "a CUDA version like 12.4"))
        archs: dict[str, ArchList] = {}
        arch_builds: dict[str, tuple[tuple[int, ArchList], ...]] = {}
        for platform, value in vrow.get("archs", dict).items():
            if platform not in PLATFORMS:
                raise vrow.fail(f"has archs for {platform!r}, not one of {', '.join(PLATFORMS)}")
            if compat.is_osx(platform):
                raise vrow.fail(f"has CUDA archs for {platform}, which has no CUDA builds")
            if isinstance(value, list):
                steps = _arch_steps(vrow, platform, value, arch_lists)
                arch_builds[platform] = steps
                archs[platform] = steps[-1][1]
                continue
            if not isinstance(value, str) or value not in arch_lists:
                raise vrow.fail(f"names arch list {value!r}, which arch_lists does not define")
            archs[platform] = arch_lists[value]
        if not archs:
            raise vrow.fail("has no platforms in 'archs'")
        runtime: dict[str, str] = {}
        for platform, pin in (vrow.get("runtime", dict, required=False) or {}).items():
            if platform not in archs or not isinstance(pin, str) or not _XY.match(pin):
                raise vrow.fail(f"has runtime {platform!r}: {pin!r}, not a platform's X.Y")
            if (
                compat.cuda_major(pin) != compat.cuda_major(cuda)
                or compat.compare_versions(pin, cuda) <= 0
            ):
                raise vrow.fail(f"has runtime {pin} for {platform}: not a newer CUDA {cuda}.x")
            runtime[platform] = pin
        if any(v.cuda == cuda for v in variants):
            raise vrow.fail(f"repeats CUDA {cuda}")
        platforms = tuple(p for p in PLATFORMS if p in archs)
        variants.append(
            CudaVariant(cuda, platforms, archs, vrow.source(), vrow.note(), arch_builds, runtime)
        )
    variants.sort(key=lambda v: compat.version_tuple(v.cuda))
    served = set(cpu_platforms).union(*(v.platforms for v in variants))
    if not served:
        raise row.fail("has no platforms: neither cpu_platforms nor CUDA variants")
    if "torchaudio_platforms" in row.data:
        torchaudio_platforms = row.texts("torchaudio_platforms", choices=PLATFORMS)
        if torchaudio is None and torchaudio_platforms:
            raise row.fail("lists torchaudio_platforms but has no torchaudio version")
    else:
        # Without the key, torchaudio is built wherever the release is.
        torchaudio_platforms = tuple(p for p in PLATFORMS if p in served) if torchaudio else ()
    release = Release(
        channel=channel,
        pytorch=pytorch,
        torchvision=torchvision,
        torchaudio=torchaudio,
        torchaudio_platforms=torchaudio_platforms,
        python=tuple(sorted(python, key=compat.version_tuple)),
        cpu_platforms=cpu_platforms,
        cuda_variants=tuple(variants),
        source=row.source(),
        note=row.note(),
    )
    return release


def _arch_steps(
    vrow: _Row, platform: str, value: list[Any], arch_lists: Mapping[str, ArchList]
) -> tuple[tuple[int, ArchList], ...]:
    """``[{from_build, list}, ...]``: the arch list from each build number on, oldest first."""
    steps: list[tuple[int, ArchList]] = []
    for k, raw in enumerate(value):
        step = _Row(vrow.file, f"{vrow.where} archs[{platform!r}][{k}]", raw, None)
        first = step.get("from_build", int)
        name = str(step.text("list"))
        if name not in arch_lists:
            raise step.fail(f"names arch list {name!r}, which arch_lists does not define")
        if first < 0 or (steps and first <= steps[-1][0]):
            raise step.fail("needs from_build values that start at 0 or more and increase")
        steps.append((first, arch_lists[name]))
    if not steps or steps[0][0] != 0:
        raise vrow.fail(f"has archs for {platform} by build that do not start at from_build 0")
    return tuple(steps)


def _peek(raw: Any, key: str) -> str:
    return str(raw.get(key, "?")) if isinstance(raw, dict) else "?"


__all__ = [
    "ArchList",
    "CudaVariant",
    "DriverMinimum",
    "GlibcFloor",
    "Guard",
    "MinorCompat",
    "OsxFloor",
    "PlatformFloors",
    "Recipes",
    "Release",
    "load_recipes",
    "load_recipes_from",
    "recipes_dir",
]
