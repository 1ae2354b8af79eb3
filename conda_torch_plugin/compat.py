"""Pure compatibility rules shared by plan, install and doctor.

Two questions, answered from the data in ``recipes/`` and nothing else:

* Does a build of CUDA X.Y run with this driver? Fully when X.Y <= the
  driver's maximum CUDA version; otherwise, within the same CUDA major, through
  NVIDIA's minor-version compatibility when the driver meets that major's
  minimum (a limited feature set, so a warning), else not at all.
* Does a build's GPU code run on a GPU of compute capability X.Y?
  A cubin runs on a GPU of the same major and the same or a higher minor
  ("sm_86 does not run on 8.0, sm_8x does not run on 9.0", Blackwell
  compatibility guide, S22); an arch-specific cubin (``9.0a``) runs on exactly
  that capability. PTX is compiled by the driver for a newer GPU, but only
  counts here when it is the newest code the build carries (see ``how_runs``).

Versions are compared numerically field by field, so ``"12.10" > "12.9"`` and
``"580" < "580.65.06"``. Nothing here reads the machine except
``current_platform``, which only looks at ``sys.platform`` and the CPU name.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class ArchCode(Protocol):
    """The GPU code of a build (``recipes.ArchCode``): cubins and PTX per capability."""

    @property
    def sass(self) -> tuple[str, ...]: ...

    @property
    def ptx(self) -> tuple[str, ...]: ...


class DriverTable(Protocol):
    """NVIDIA's driver minimums (``recipes.Recipes``): Table 3 and Table 2."""

    def min_driver(self, cuda: str, platform: str) -> str | None: ...

    def minor_compat_driver(self, cuda_major: int, platform: str) -> str | None: ...


FULL = "full"
MINOR_COMPAT = "minor-compat"
UNSUPPORTED = "unsupported"

_PLATFORM_OS = {
    "linux-64": "linux",
    "linux-aarch64": "linux",
    "linux-ppc64le": "linux",
    "win-64": "windows",
    "osx-64": "osx",
    "osx-arm64": "osx",
}
_OS_LABEL = {"linux": "Linux", "windows": "Windows"}
_CC = re.compile(r"^(\d+)\.(\d+)(a?)$")


# -- versions -------------------------------------------------------------------


def version_tuple(version: str) -> tuple[int, ...]:
    """``"550.54.15"`` -> ``(550, 54, 15)``. Raises ValueError on anything else."""
    return tuple(int(part) for part in version.strip().split("."))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1; missing fields count as 0 (``"580" == "580.0"``)."""
    ta, tb = version_tuple(a), version_tuple(b)
    width = max(len(ta), len(tb))
    ta, tb = ta + (0,) * (width - len(ta)), tb + (0,) * (width - len(tb))
    return (ta > tb) - (ta < tb)


def cuda_major(cuda: str) -> int:
    return version_tuple(cuda)[0]


def driver_at_least(driver: str, minimum: str) -> bool:
    return compare_versions(driver, minimum) >= 0


# -- platforms ------------------------------------------------------------------


def driver_os(platform: str) -> str | None:
    """The column of NVIDIA's driver tables for a conda platform: "linux", "windows" or None."""
    os_name = _PLATFORM_OS.get(platform)
    return os_name if os_name in _OS_LABEL else None


def os_label(platform: str) -> str:
    return _OS_LABEL.get(driver_os(platform) or "", platform)


def is_osx(platform: str) -> bool:
    return platform.startswith("osx-")


def current_platform(system: str | None = None, machine: str | None = None) -> str | None:
    """This machine's conda platform (``linux-64``, ``win-64``, ``osx-arm64``, ...), or None."""
    import platform as _platform  # here, not at the top: the CLI parser imports this module

    system = sys.platform if system is None else system
    machine = (_platform.machine() if machine is None else machine).lower()
    arch = {
        "x86_64": "64",
        "amd64": "64",
        "aarch64": "aarch64",
        "arm64": "arm64",
        "ppc64le": "ppc64le",
    }.get(machine)
    if system.startswith("linux"):
        arch = "aarch64" if arch == "arm64" else arch
        return f"linux-{arch}" if arch in ("64", "aarch64", "ppc64le") else None
    if system in ("win32", "cygwin"):
        return "win-64" if arch == "64" else None
    if system == "darwin":
        return {"64": "osx-64", "arm64": "osx-arm64", "aarch64": "osx-arm64"}.get(arch or "")
    return None


# -- GPU architectures ----------------------------------------------------------


def parse_cc(cc: str) -> tuple[int, int, bool]:
    """``"8.6"`` -> ``(8, 6, False)``; ``"9.0a"`` -> ``(9, 0, True)`` (arch-specific)."""
    match = _CC.match(cc.strip())
    if not match:
        raise ValueError(f"{cc!r} is not a compute capability like 8.6")
    return int(match[1]), int(match[2]), bool(match[3])


def sm_name(cc: str) -> str:
    """``"8.6"`` -> ``"sm_86"``, ``"12.0"`` -> ``"sm_120"``, ``"9.0a"`` -> ``"sm_90a"``."""
    major, minor, specific = parse_cc(cc)
    return f"sm_{major}{minor}{'a' if specific else ''}"


# Jetson (Tegra) GPUs: cubin binary compatibility "is supported only for the desktop. It
# is not supported for Tegra" (CUDA C++ Programming Guide, Binary Compatibility), so an
# sm_86 cubin does not run on an Orin (8.7): it needs its own cubin or PTX
# (conda-forge/pytorch-cpu-feedstock#527).
TEGRA = frozenset({(5, 3), (6, 2), (7, 2), (8, 7)})


def how_runs(sass: Iterable[str], ptx: Iterable[str], cc: str, *, jit: bool = True) -> str | None:
    """How a build with this GPU code runs on a GPU of capability ``cc``, or None.

    A cubin of the same major and a minor <= the GPU's runs natively (``9.0a``
    only on 9.0). PTX is JIT-compiled by the driver for a GPU at or above its
    arch, but we count it only when it is the newest code in the build: the
    ``3.7+PTX`` of the CUDA 11 lists is Kepler code sitting below cubins up to
    sm_86/sm_90, and compiling all of libtorch from compute_37 for a Hopper or
    Blackwell GPU is not a path PyTorch supports (its own check only accepts an
    sm_ of the GPU's major). ``jit=False`` (minor-version compatibility) counts
    cubins only: a driver older than the toolkit cannot compile that toolkit's PTX.
    """
    major, minor, _ = parse_cc(cc)
    exact_only = (major, minor) in TEGRA
    native = []
    for arch in sass:
        a_major, a_minor, specific = parse_cc(arch)
        if a_major == major and (a_minor == minor if specific or exact_only else a_minor <= minor):
            native.append((a_minor, not specific, arch))  # prefer sm_90 over sm_90a
    if native:
        a_minor, _, arch = max(native)
        exact = "" if a_minor == minor else f" (same major, runs on {major}.{minor})"
        return f"{sm_name(arch)} cubin{exact}"
    if not jit:
        return None
    newest_sass = max((parse_cc(a)[:2] for a in sass), default=(0, 0))
    usable = [
        parse_cc(p)[:2]
        for p in ptx
        if parse_cc(p)[:2] <= (major, minor) and parse_cc(p)[:2] >= newest_sass
    ]
    if usable:
        p_major, p_minor = max(usable)
        return f"compute_{p_major}{p_minor} PTX, JIT-compiled by the driver"
    return None


def runs_on(arch_list: ArchCode, cc: str, *, jit: bool = True) -> bool:
    return how_runs(arch_list.sass, arch_list.ptx, cc, jit=jit) is not None


def uncovered(
    arch_list: ArchCode, gpu_archs: Iterable[str], *, jit: bool = True
) -> tuple[str, ...]:
    """The capabilities in ``gpu_archs`` that the build cannot run on (in order, no repeats)."""
    missing: list[str] = []
    for cc in gpu_archs:
        if cc not in missing and not runs_on(arch_list, cc, jit=jit):
            missing.append(cc)
    return tuple(missing)


def describe_archs(arch_list: ArchCode) -> str:
    """``"sm_50 ... sm_90"`` style summary: every cubin, then ``+PTX compute_XY``."""
    parts = [sm_name(a) for a in arch_list.sass]
    parts += [f"compute_{''.join(p.split('.'))} PTX" for p in arch_list.ptx]
    return ", ".join(parts) if parts else "no GPU code"


# -- driver vs build CUDA -------------------------------------------------------


@dataclass(frozen=True)
class CudaCheck:
    """Whether a CUDA ``build`` runs with a driver: ``mode`` full, minor-compat or unsupported."""

    build: str
    mode: str
    reason: str
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.mode != UNSUPPORTED

    @property
    def jit(self) -> bool:
        """Whether PTX in the build can be JIT-compiled (not under minor-version compatibility)."""
        return self.mode == FULL


def check_cuda(
    build: str,
    driver_cuda: str | None,
    driver: str | None,
    platform: str,
    recipes: DriverTable,
) -> CudaCheck:
    """Apply policy rule 1 to one CUDA build on one platform.

    ``driver_cuda`` is the driver's maximum CUDA version (NVML, ``nvidia-smi``,
    ``--cuda``); ``driver`` its version when known. With only ``driver_cuda``
    known, minor-version compatibility is allowed with a warning that names the
    driver it needs.
    """
    if driver_cuda is None:
        return CudaCheck(build, UNSUPPORTED, "no NVIDIA driver (CUDA version unknown)")
    if compare_versions(build, driver_cuda) <= 0:
        return CudaCheck(build, FULL, f"CUDA {build} <= the driver's CUDA {driver_cuda}")
    full_driver = _needs_driver(build, platform, recipes)
    major = cuda_major(build)
    if major != cuda_major(driver_cuda):
        return CudaCheck(
            build,
            UNSUPPORTED,
            f"needs a driver for CUDA {build}{full_driver}; this driver supports CUDA "
            f"{driver_cuda}, a different major",
        )
    minimum = recipes.minor_compat_driver(major, platform)
    if minimum is None:
        return CudaCheck(
            build,
            UNSUPPORTED,
            f"needs a driver for CUDA {build}{full_driver}; this driver supports CUDA "
            f"{driver_cuda} and no minor-version-compatibility minimum is known for "
            f"CUDA {major}.x on {platform}",
        )
    limited = (
        f"CUDA {build} build on a driver whose CUDA is {driver_cuda}: it runs through CUDA "
        f"{major}.x minor-version compatibility, with a limited feature set (no PTX JIT)"
    )
    upgrade = f"; a driver for CUDA {build}{full_driver} supports it fully"
    # A driver whose CUDA is X.Y is at least Table 3's minimum for X.Y: when that already
    # meets the minor-version minimum, the unknown driver version does not matter.
    implied = recipes.min_driver(driver_cuda, platform) if driver is None else None
    if implied and driver_at_least(implied, minimum):
        return CudaCheck(
            build,
            MINOR_COMPAT,
            f"CUDA {build} > {driver_cuda}, allowed by {major}.x minor-version compatibility "
            f"(a driver for CUDA {driver_cuda} is >= {implied} >= {minimum})",
            f"{limited} (a driver for CUDA {driver_cuda} is >= {implied}, the minimum is "
            f"{minimum}){upgrade}",
        )
    if driver is None:
        return CudaCheck(
            build,
            MINOR_COMPAT,
            f"CUDA {build} > {driver_cuda}, allowed by {major}.x minor-version compatibility",
            f"{limited}, which needs driver >= {minimum} ({os_label(platform)}); the driver "
            f"version is unknown (pass --driver to check it){upgrade}",
        )
    if driver_at_least(driver, minimum):
        return CudaCheck(
            build,
            MINOR_COMPAT,
            f"CUDA {build} > {driver_cuda}, allowed by {major}.x minor-version compatibility "
            f"(driver {driver} >= {minimum})",
            f"{limited} (driver {driver} >= {minimum}){upgrade}",
        )
    return CudaCheck(
        build,
        UNSUPPORTED,
        f"needs a driver for CUDA {build}{full_driver}; driver {driver} (CUDA {driver_cuda}) is "
        f"below {minimum}, the minimum for CUDA {major}.x minor-version compatibility",
    )


def _needs_driver(cuda: str, platform: str, recipes: DriverTable) -> str:
    minimum = recipes.min_driver(cuda, platform)
    return f" (driver >= {minimum} on {os_label(platform)})" if minimum else ""


def highest_at_most(versions: Sequence[str], limit: str) -> str | None:
    """The highest of ``versions`` that is <= ``limit`` (None if there is none)."""
    fitting = [v for v in versions if compare_versions(v, limit) <= 0]
    return max(fitting, key=version_tuple) if fitting else None


# -- --pytorch SPEC --------------------------------------------------------------

_CLAUSE = re.compile(r"^(==|=|>=|<=|!=|>|<)?\s*(\d+(?:\.\d+)*)(\.\*)?$")


@dataclass(frozen=True)
class VersionSpec:
    """A ``--pytorch`` request: ``2.2`` (= 2.2.*), ``2.5.1``, ``>=2.3``, ``<2.4``, ``>=2.3,<2.5``.

    A bare or ``=`` version with fewer than three fields is a prefix, as in conda
    (``2.2`` matches 2.2.0 .. 2.2.2); ``==`` is exact; comparisons pad with zeros.
    """

    text: str
    clauses: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def parse(cls, text: str) -> VersionSpec:
        clauses = []
        for raw in text.replace(" ", "").split(","):
            match = _CLAUSE.match(raw)
            if not raw or not match:
                raise ValueError(
                    f"{text!r} is not a PyTorch version or range (examples: 2.2, 2.5.1, '>=2.3', "
                    "'<2.4', '>=2.3,<2.5')"
                )
            op, version, star = match[1] or "", version_tuple(match[2]), bool(match[3])
            if op in ("", "=") and (star or len(version) < 3):
                op = "prefix"
            elif op in ("", "=", "=="):
                op = "=="
            elif star:
                raise ValueError(f"{raw!r}: '.*' goes only with a bare version, like 2.2.*")
            clauses.append((op, version))
        return cls(text, tuple(clauses))

    def matches(self, version: str) -> bool:
        have = version_tuple(version)
        for op, want in self.clauses:
            if op == "prefix":
                if have[: len(want)] != want:
                    return False
                continue
            width = max(len(have), len(want))
            a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
            ok = {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[
                op
            ]
            if not ok:
                return False
        return True
