"""Planning candidates from what a channel really holds.

``restrict`` takes the recipes (what repodata cannot say: arch lists, driver
minimums, guards) and a channel's torch-family records (``records.Record``), and
returns the recipes cut down to what the channel holds:

- a release is a candidate only when the channel has pytorch of that version;
- its Python versions are those of its builds (``python >=3.12,<3.13.0a0`` or
  ``py312`` in the build string) on the platforms asked for;
- a CUDA variant stays on a platform only where a build of that CUDA exists
  there, and its arch list is the one of the newest such build (the recipes key
  lists by the feedstock's build number where they changed within a release);
- a CPU build stays on a platform only where one exists;
- where the channel has ``cuda-version`` and ``python`` records at all, a CUDA
  variant needs its ``cuda-version`` pin there and a Python version needs a
  ``python`` build on the platform;
- torchvision and torchaudio are the newest versions with a build whose
  ``depends`` accept that pytorch (and, where a torchvision build pins a newer
  ``cuda-version`` than the pytorch build, that pin is kept); none -> left out,
  and the plan warns.

What the channel holds that the recipes cannot describe (a release or CUDA
variant with no arch list) is reported, never planned. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from conda_torch_plugin import compat
from conda_torch_plugin.sources import source as source_named

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conda_torch_plugin.recipes import CudaVariant, Recipes, Release
    from conda_torch_plugin.sources.base import PyTorchSource
    from conda_torch_plugin.sources.records import ChannelRecords, Record

_MIN = re.compile(r">=\s*(\d+\.\d+)")
# conda-forge offsets a variant's build number by hundreds (CUDA +200, mkl +100) so the
# solver prefers it; the feedstock's own build number is the remainder.
_VARIANT_OFFSET = 100


@dataclass(frozen=True)
class Restricted:
    recipes: Recipes
    notes: tuple[str, ...]  # what the channel holds that cannot be planned, and drops


def feedstock_build(record: Record) -> int:
    return record.build_number % _VARIANT_OFFSET


def accepts(spec: str | None, version: str) -> bool:
    """Does the version part of a dependency (``>=2.10,<2.11``, ``2.10.*``, "") accept
    ``version``? A missing dependency (None) accepts anything."""
    if spec is None or spec in ("", "*"):
        return True
    from rattler import Version, VersionSpec

    try:
        return bool(VersionSpec(spec).matches(Version(version)))
    except Exception:  # rattler raises its own exception types for odd specs
        return False


def restrict(recipes: Recipes, held: ChannelRecords, platforms: Sequence[str]) -> Restricted:
    """``recipes`` with ``held.source``'s releases cut down to what ``held`` holds."""
    flavour = source_named(held.source)
    wanted = set(platforms)
    by_name: dict[str, list[Record]] = {}
    for r in held.records:
        if r.subdir in wanted or r.subdir == "noarch":
            by_name.setdefault(r.name, []).append(r)
    torch = by_name.get("pytorch", [])
    notes: list[str] = []
    kept: list[Release] = []
    runtimes = _Runtimes.of(by_name, platforms)
    for release in recipes.releases_for(held.source):
        builds = [r for r in torch if r.version == release.pytorch and runtimes.python_ok(r)]
        if not builds:
            continue
        narrowed = _narrow(release, builds, by_name, flavour, platforms, runtimes)
        if narrowed is not None:
            kept.append(narrowed)
    known = {r.pytorch for r in recipes.releases_for(held.source)}
    unknown = sorted({r.version for r in torch} - known, key=compat.version_tuple, reverse=True)
    if unknown:
        notes.append(
            f"{flavour.subject} also holds pytorch {', '.join(unknown)}, which the recipes do "
            "not describe (no arch lists): not planned; `python -m "
            "conda_torch_plugin.sources.refresh` derives them"
        )
    others = tuple(r for r in recipes.releases if r.channel != held.source)
    return Restricted(replace(recipes, releases=others + tuple(kept)), tuple(notes))


def _narrow(
    release: Release,
    builds: list[Record],
    by_name: dict[str, list[Record]],
    flavour: PyTorchSource,
    platforms: Sequence[str],
    runtimes: _Runtimes,
) -> Release | None:
    python = sorted(
        {p for p in (r.python for r in builds) if p is not None}, key=compat.version_tuple
    )
    cpu_platforms = tuple(
        p
        for p in release.cpu_platforms
        if any(
            r.subdir == p and (compat.is_osx(p) or _kind(flavour, r.build) == ("cpu", None))
            for r in builds
        )
    )
    variants: list[CudaVariant] = []
    for variant in release.cuda_variants:
        archs = {}
        for platform, listed in variant.archs.items():
            cuda_builds = [
                r
                for r in builds
                if r.subdir == platform
                and _kind(flavour, r.build) == ("cuda", variant.cuda)
                and runtimes.cuda_ok(variant.pin(platform))
            ]
            if not cuda_builds:
                continue
            newest = max(feedstock_build(r) for r in cuda_builds)
            archs[platform] = variant.archs_at(platform, newest) or listed
        # Platforms not asked for keep their rows: the channel was not read for them.
        for platform, listed in variant.archs.items():
            if platform not in platforms:
                archs[platform] = listed
        if archs:
            ordered = tuple(p for p in variant.platforms if p in archs)
            variants.append(replace(variant, platforms=ordered, archs=archs))
    cpu_platforms += tuple(p for p in release.cpu_platforms if p not in platforms)
    if not python or not (variants or cpu_platforms):
        return None
    torchvision = _companion("torchvision", release.pytorch, python, by_name)
    torchaudio = _companion("torchaudio", release.pytorch, python, by_name)
    audio_platforms = tuple(
        p
        for p in dict.fromkeys([*release.torchaudio_platforms, *platforms])
        if torchaudio is not None
        and (
            p not in platforms
            or any(
                r.subdir == p
                and r.version == torchaudio
                and accepts(r.depend("pytorch"), release.pytorch)
                for r in by_name.get("torchaudio", [])
            )
        )
    )
    return replace(
        release,
        python=tuple(python),
        cpu_platforms=tuple(dict.fromkeys(cpu_platforms)),
        cuda_variants=tuple(_pinned(v, by_name, torchvision, release.pytorch) for v in variants),
        torchvision=torchvision,
        torchaudio=torchaudio,
        torchaudio_platforms=audio_platforms if torchaudio else (),
    )


def _companion(
    name: str, pytorch: str, pythons: Sequence[str], by_name: dict[str, list[Record]]
) -> str | None:
    """The newest ``name`` with a build whose ``depends`` accept pytorch ``pytorch`` and one
    of the Pythons that pytorch is built for."""
    fitting = {
        r.version
        for r in by_name.get(name, [])
        if r.depend("pytorch") is not None
        and accepts(r.depend("pytorch"), pytorch)
        and (r.python is None or r.python in pythons)
    }
    return max(fitting, key=compat.version_tuple) if fitting else None


def _pinned(
    variant: CudaVariant, by_name: dict[str, list[Record]], torchvision: str | None, pytorch: str
) -> CudaVariant:
    """Keep (or add) a newer cuda-version pin where every torchvision CUDA build of that
    CUDA major on a platform needs one (win-64: torchvision built with 12.9 next to a
    12.8 pytorch)."""
    if torchvision is None:
        return variant
    runtime = dict(variant.runtime)
    for platform in variant.platforms:
        minimums = [
            m[1]
            for r in by_name.get("torchvision", [])
            if r.subdir == platform
            and r.version == torchvision
            and accepts(r.depend("pytorch"), pytorch)
            and (m := _MIN.search(r.depend("cuda-version") or ""))
            and compat.cuda_major(m[1]) == compat.cuda_major(variant.cuda)
        ]
        if not minimums:
            continue
        lowest = min(minimums, key=compat.version_tuple)
        if compat.compare_versions(lowest, variant.cuda) > 0:
            runtime[platform] = lowest
        else:
            runtime.pop(platform, None)
    return replace(variant, runtime=runtime)


@dataclass(frozen=True)
class _Runtimes:
    """The cuda-version and python versions the channel holds (None: it holds none, so
    nothing is checked)."""

    cuda: frozenset[str] | None
    python: dict[str, frozenset[str]] | None  # per platform

    @classmethod
    def of(cls, by_name: dict[str, list[Record]], platforms: Sequence[str]) -> _Runtimes:
        cudas = frozenset(
            v for r in by_name.get("cuda-version", []) if (v := _xy(r.version)) is not None
        )
        pythons: dict[str, set[str]] = {p: set() for p in platforms}
        for r in by_name.get("python", []):
            if r.subdir in pythons and (v := _xy(r.version)) is not None:
                pythons[r.subdir].add(v)
        return cls(
            cudas or None,
            {p: frozenset(v) for p, v in pythons.items()} if any(pythons.values()) else None,
        )

    def cuda_ok(self, cuda: str) -> bool:
        return self.cuda is None or cuda in self.cuda

    def python_ok(self, record: Record) -> bool:
        if self.python is None or record.python is None or record.subdir not in self.python:
            return True
        return record.python in self.python[record.subdir]


def _xy(version: str) -> str | None:
    parts = version.split(".")
    return f"{parts[0]}.{parts[1]}" if len(parts) >= 2 and parts[1].isdigit() else None


def _kind(flavour: PyTorchSource, build: str) -> tuple[str | None, str | None]:
    """("cuda", "12.9"), ("cpu", None), or (None, None) for a build string the source
    does not recognise."""
    found = flavour.build_flavour(build)
    return (found.compute, found.cuda) if found else (None, None)
