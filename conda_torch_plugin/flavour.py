"""Which flavour of PyTorch a package (or a lock) holds: CUDA X.Y, CPU or MPS.

Pure functions over package names, versions, build strings and depends. The
pytorch channel and conda-forge spell the same facts differently:

=====================  =====================================  ==================================
package                pytorch channel (``-c pytorch``)       conda-forge
=====================  =====================================  ==================================
pytorch                ``py3.12_cuda12.4_cudnn9.1.0_0``,      ``cuda129_mkl_py312_h1234567_302``,
                       ``py3.10_cpu_0``, osx ``py3.12_0``     ``cpu_generic_py312_h..._0``
torchvision/audio      ``py312_cu124``, ``py312_cpu``         ``cuda129_py312_h..._0``,
                                                              ``cpu_py312h..._1``
markers                ``pytorch-mutex 1.0 cuda|cpu``,        ``cuda-version X.Y``, ``__cuda``
                       ``pytorch-cuda X.Y``, ``cpuonly``
=====================  =====================================  ==================================

Each source module (``sources/``) knows its own spelling; this module asks them in
turn. Older spellings are recognised too: ``py3.7_cuda10.2.89_cudnn7.6.5_0``,
``py36_cu92`` and conda-forge's ``cuda112py39h..._0``. Anything else is
``compute="unknown"``; callers report that rather than guess.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from conda_torch_plugin.sources import SOURCES
from conda_torch_plugin.sources.base import (
    UNKNOWN,
    Flavour,
    digits_to_version,
    major_minor,
    version_key,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conda_torch_plugin.condalock.lockfile import LockedPackage

TORCH_NAMES = ("pytorch", "libtorch", "pytorch-gpu", "pytorch-cpu")
COMPANION_NAMES = ("torchvision", "torchaudio")

# anaconda defaults: "gpu_cuda121py312h..", "cpu_py311h.."; compute only, channel unknown.
_DEFAULTS_CUDA = re.compile(r"^gpu_cuda(\d{2,3})")

__all__ = ["UNKNOWN", "Flavour", "lock_flavour", "major_minor", "torch_flavour", "version_key"]


def torch_flavour(
    name: str,
    version: str,
    build: str,
    depends: Sequence[str] = (),
    *,
    platform: str | None = None,
) -> Flavour:
    """The flavour of one package of the torch family (pytorch, torchvision, torchaudio, ...).

    ``platform`` ("osx-arm64") only matters for builds without a compute marker:
    the pytorch channel's macOS builds are CPU builds that use MPS on Apple silicon.
    """
    name = name.lower()
    for source in SOURCES.values():
        marked = source.marker_flavour(name, version, build)
        if marked is not None:
            return marked

    flavour = _from_build(build)
    if flavour is None:
        flavour = _from_depends(depends)
    if flavour is None:
        return UNKNOWN
    if flavour.compute == "cpu" and _is_apple_silicon(platform):
        return Flavour("mps", None, flavour.channel_style)
    return flavour


def lock_flavour(packages: Sequence[LockedPackage]) -> Flavour:
    """The flavour of the torch build among ``packages`` (one platform of a lock).

    The build string of pytorch (else libtorch, pytorch-gpu, pytorch-cpu) decides;
    ``pytorch-cuda`` / ``cuda-version`` in the same platform fill ``runtime_cuda``
    (and ``cuda`` when the build string does not carry it).
    """
    by_name = {p.name.lower(): p for p in packages}
    torch = next((by_name[n] for n in TORCH_NAMES if n in by_name), None)
    if torch is None:
        mutex = by_name.get("pytorch-mutex")
        if mutex is None:
            return UNKNOWN
        torch = mutex
    deps = [f"{k} {v}".strip() for k, v in torch.dependencies.items()]
    flavour = torch_flavour(torch.name, torch.version, torch.build, deps, platform=torch.platform)
    channel_style = flavour.channel_style
    if channel_style == "unknown":
        channel_style = _channel_style_from_url(torch.url)

    runtime = None
    for marker in ("pytorch-cuda", "cuda-version"):
        if marker in by_name:
            runtime = major_minor(by_name[marker].version)
            break
    if flavour.compute != "cuda":
        return Flavour(flavour.compute, None, channel_style)
    return Flavour("cuda", flavour.cuda or runtime, channel_style, runtime)


def _from_build(build: str) -> Flavour | None:
    for source in SOURCES.values():
        flavour = source.build_flavour(build)
        if flavour is not None:
            return flavour
    if m := _DEFAULTS_CUDA.match(build):
        return Flavour("cuda", digits_to_version(m[1]), "unknown")
    return None


def _from_depends(depends: Sequence[str]) -> Flavour | None:
    """Fallback for unfamiliar build strings: the markers a build depends on."""
    names = {_dep_name(d): d for d in depends}
    for source in SOURCES.values():
        flavour = source.depends_flavour(names)
        if flavour is not None:
            return flavour
    return None


def _dep_name(dep: str) -> str:
    return dep.split()[0].lower() if dep.split() else ""


def _is_apple_silicon(platform: str | None) -> bool:
    return platform == "osx-arm64"


def _channel_style_from_url(url: str) -> str:
    for style in SOURCES:
        if f"/{style}/" in url:
            return style
    return "unknown"
