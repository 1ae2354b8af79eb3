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

Older spellings are recognised too: ``py3.7_cuda10.2.89_cudnn7.6.5_0``,
``py36_cu92`` and conda-forge's ``cuda112py39h..._0``. Anything else is
``compute="unknown"``; callers report that rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conda_torch_plugin.condalock.lockfile import LockedPackage

TORCH_NAMES = ("pytorch", "libtorch", "pytorch-gpu", "pytorch-cpu")
COMPANION_NAMES = ("torchvision", "torchaudio")

# pytorch channel, pytorch itself.
_PT_CUDA = re.compile(r"^py\d+\.\d+_cuda(\d+)\.(\d+)(?:\.\d+)*_cudnn[\d.]+_\d+$")
_PT_CPU = re.compile(r"^py\d+\.\d+_cpu_\d+$")
_PT_PLAIN = re.compile(r"^py\d+\.\d+_\d+$")  # macOS builds carry no compute marker
# pytorch channel, torchvision/torchaudio.
_PT_COMPANION_CUDA = re.compile(r"^py\d+_cu(\d+)$")
_PT_COMPANION_CPU = re.compile(r"^py\d+_cpu$")
# conda-forge: "cuda129_mkl_py312_h.._302", "cuda129_py312h.._1", old "cuda112py39h.._0".
_CF_CUDA = re.compile(r"^cuda(\d{2,3})(?:_|py)")
_CF_CPU = re.compile(r"^cpu(?:_|py)")
# anaconda defaults: "gpu_cuda121py312h..", "cpu_py311h.."; compute only, channel unknown.
_DEFAULTS_CUDA = re.compile(r"^gpu_cuda(\d{2,3})")

# Depends / lock-member versions that carry the CUDA version.
_DEP_VERSION = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True)
class Flavour:
    """The compute flavour of a torch build.

    ``cuda`` is the CUDA version the build was compiled for ("12.4"); ``runtime_cuda``,
    filled by ``lock_flavour`` only, is the CUDA toolkit version the environment's
    runtime libraries pin (``pytorch-cuda`` / ``cuda-version``), which the driver
    must also support and which can be newer than the build's on conda-forge.
    """

    compute: str  # "cuda" | "cpu" | "mps" | "unknown"
    cuda: str | None
    channel_style: str  # "pytorch" | "conda-forge" | "unknown"
    runtime_cuda: str | None = None

    @property
    def label(self) -> str:
        if self.compute == "cuda":
            return f"CUDA {self.cuda}" if self.cuda else "CUDA"
        return {"cpu": "CPU", "mps": "CPU/MPS"}.get(self.compute, "unknown")

    @property
    def required_cuda(self) -> str | None:
        """The highest CUDA version the driver must support for this environment."""
        versions = [v for v in (self.cuda, self.runtime_cuda) if v]
        if self.compute != "cuda" or not versions:
            return None
        return max(versions, key=version_key)

    def to_dict(self) -> dict[str, object]:
        return {
            "compute": self.compute,
            "cuda": self.cuda,
            "channel_style": self.channel_style,
            "runtime_cuda": self.runtime_cuda,
            "label": self.label,
        }


UNKNOWN = Flavour("unknown", None, "unknown")


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
    if name == "pytorch-mutex":
        if build in ("cuda", "cpu"):
            return Flavour(build, None, "pytorch")
        return UNKNOWN
    if name == "cpuonly":
        return Flavour("cpu", None, "pytorch")
    if name == "pytorch-cuda":
        return Flavour("cuda", major_minor(version), "pytorch")
    if name == "cuda-version":
        return Flavour("cuda", major_minor(version), "conda-forge")

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
    if m := _PT_CUDA.match(build):
        return Flavour("cuda", f"{int(m[1])}.{int(m[2])}", "pytorch")
    if _PT_CPU.match(build) or _PT_PLAIN.match(build) or _PT_COMPANION_CPU.match(build):
        return Flavour("cpu", None, "pytorch")
    if m := _PT_COMPANION_CUDA.match(build):
        return Flavour("cuda", _digits_to_version(m[1]), "pytorch")
    if m := _CF_CUDA.match(build):
        return Flavour("cuda", _digits_to_version(m[1]), "conda-forge")
    if _CF_CPU.match(build):
        return Flavour("cpu", None, "conda-forge")
    if m := _DEFAULTS_CUDA.match(build):
        return Flavour("cuda", _digits_to_version(m[1]), "unknown")
    return None


def _from_depends(depends: Sequence[str]) -> Flavour | None:
    """Fallback for unfamiliar build strings: the markers a build depends on."""
    names = {_dep_name(d): d for d in depends}
    if "pytorch-cuda" in names:
        return Flavour("cuda", _dep_version(names["pytorch-cuda"]), "pytorch")
    mutex = names.get("pytorch-mutex", "")
    if mutex.endswith(" cuda"):
        return Flavour("cuda", None, "pytorch")
    if mutex.endswith(" cpu"):
        return Flavour("cpu", None, "pytorch")
    if "__cuda" in names or "cuda-version" in names:
        return Flavour("cuda", _dep_version(names.get("cuda-version", "")), "conda-forge")
    return None


def _dep_name(dep: str) -> str:
    return dep.split()[0].lower() if dep.split() else ""


def _dep_version(dep: str) -> str | None:
    spec = dep.split(maxsplit=1)[1] if len(dep.split()) > 1 else ""
    m = _DEP_VERSION.search(spec)
    return f"{int(m[1])}.{int(m[2])}" if m else None


def major_minor(version: str) -> str | None:
    """'12.4.127' -> '12.4'; '3.12.7' -> '3.12'; None without a leading X.Y."""
    m = _DEP_VERSION.match(version)
    return f"{int(m[1])}.{int(m[2])}" if m else None


def _digits_to_version(digits: str) -> str:
    """ "124" -> "12.4", "92" -> "9.2", "130" -> "13.0": the last digit is the minor."""
    return f"{int(digits[:-1])}.{digits[-1]}"


def _is_apple_silicon(platform: str | None) -> bool:
    return platform == "osx-arm64"


def _channel_style_from_url(url: str) -> str:
    for style in ("pytorch", "conda-forge"):
        if f"/{style}/" in url:
            return style
    return "unknown"


def version_key(version: str) -> tuple[int, ...]:
    """'12.10' -> (12, 10): every run of digits, so versions compare numerically."""
    return tuple(int(part) for part in re.findall(r"\d+", version))
