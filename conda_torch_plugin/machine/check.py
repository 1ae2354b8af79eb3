"""Can this machine run a torch build: the driver's CUDA, and every GPU against the arch list.

One set of rules for ``install`` (before it installs a lock) and the doctor
(for an installed environment). The rules are compat's (driver minimums,
minor-version compatibility, cubin/PTX coverage); this module turns their
answers into findings. Two things depend on who asks, and are parameters:

- what a fix tells the user to run (``Remedies``): install re-plans the lock
  (``conda torch-env write ... && conda torch-env lock``), the doctor
  recreates the environment (``conda torch-env create -p PREFIX``);
- how bad a CUDA build on a machine without a driver is (``no_driver``): an
  error for install, which will not install a CUDA build that cannot use a
  GPU here unless forced, a warning for the doctor, because the installed
  torch still imports and runs on the CPU.

Whether to check at all (no detection, another platform's environment, a
build of unknown flavour) is the caller's decision, said in its own terms.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, TypeVar

from conda_torch_plugin.compat import (
    FULL,
    MINOR_COMPAT,
    check_cuda,
    describe_archs,
    how_runs,
    parse_cc,
    version_tuple,
)
from conda_torch_plugin.findings import Finding, Severity
from conda_torch_plugin.sources import find

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from conda_torch_plugin.flavour import Flavour
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.recipes import ArchList, Recipes

T = TypeVar("T")


class Remedies(Protocol):
    """The ways out a fix names; each returns one line for the user to run or do."""

    def cuda_build(self) -> str:
        """Get a CUDA build for this machine (a CPU build leaves its GPUs unused)."""
        ...

    def cpu_build(self) -> str:
        """Get a CPU build instead (a CUDA build on a machine without a driver)."""
        ...

    def for_driver(self, driver_cuda: str) -> str:
        """Get a build this driver runs, as a phrase ("re-plan for this driver: ...")."""
        ...

    def for_gpu(self, cc: str, *, conda_forge: bool) -> str:
        """Get a build that covers compute capability ``cc`` (only conda-forge's when told)."""
        ...

    def runtime_check(self) -> str | None:
        """Check GPU coverage at runtime when no arch list is known (None: no such way)."""
        ...


def machine_findings(
    flavour: Flavour,
    pytorch: str | None,
    platform: str,
    detection: Machine,
    recipes: Recipes | None,
    *,
    remedies: Remedies,
    no_driver: Severity = "error",
) -> list[Finding]:
    """Findings for a ``flavour`` build of ``pytorch`` on ``platform``, on this machine.

    ``flavour.channel_style`` selects the arch list in the recipes. ``no_driver``
    is the severity of "a CUDA build, and no NVIDIA driver here". Never raises on
    a missing recipes row: what cannot be checked is said as a finding.
    """
    if flavour.compute in ("cpu", "mps"):
        return _cpu_build(flavour, detection, remedies)
    if flavour.compute != "cuda":
        return []
    if recipes is None:
        return [
            Finding(
                "info",
                "no compatibility data: driver and GPU checks skipped",
                check="driver",
                code="no-recipes",
            )
        ]
    findings, jit = _check_driver(flavour, platform, detection, recipes, remedies, no_driver)
    return findings + _check_gpus(flavour, pytorch, platform, detection, recipes, remedies, jit)


def with_driver_cuda(machine: Machine, recipes: Recipes) -> Machine:
    """The machine with its driver's CUDA filled in from the driver version where missing."""
    if machine.cuda_version or not machine.driver_version or not machine.platform:
        return machine
    if machine.platform not in ("linux-64", "linux-aarch64", "win-64"):
        return machine
    try:
        cuda = recipes.max_cuda_for_driver(machine.driver_version, machine.platform)
    except (LookupError, ValueError):
        cuda = None
    if cuda is None:
        return machine
    note = f"driver {machine.driver_version} supports CUDA up to {cuda} (NVIDIA's driver table)"
    return replace(machine, cuda_version=cuda, notes=(*machine.notes, note))


def glibc_findings(needed: str | None, machine: Machine) -> list[Finding]:
    """A build's ``__glibc`` against the machine's C library (Linux, where both are known)."""
    if not (machine.platform or "").startswith("linux"):
        return []
    fix = "upgrade the operating system, or plan an environment for this machine on its own"
    return _older_than(needed, machine.glibc, "glibc", fix)


def osx_findings(needed: str | None, machine: Machine) -> list[Finding]:
    """A build's ``__osx`` against the machine's macOS (macOS, where both are known)."""
    if not (machine.platform or "").startswith("osx-"):
        return []
    fix = (
        "upgrade macOS, or plan an environment for this machine on its own "
        "(an older release may still support it)"
    )
    return _older_than(needed, machine.osx, "osx", fix)


def floor_findings(floors: Mapping[str, str], machine: Machine) -> list[Finding]:
    """``glibc_findings`` and ``osx_findings`` for ``floors`` (``{"__glibc": "2.28", ...}``)."""
    return glibc_findings(floors.get("__glibc"), machine) + osx_findings(
        floors.get("__osx"), machine
    )


def system_floors(
    dependencies: Iterable[str], *, assumed: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The newest ``__glibc`` / ``__osx`` that ``dependencies`` (``"__glibc >=2.17,<3.0.a0"``,
    as conda records and locks write them) and ``assumed`` (a lock's virtual packages) need.

    conda-forge's builds carry such a dependency (the C library or macOS they were built
    against); a version that is not plain dotted numbers is not compared.
    """
    needed: dict[str, str] = {}

    def keep(name: str, version: str) -> None:
        try:
            if name not in needed or version_tuple(version) > version_tuple(needed[name]):
                needed[name] = version
        except ValueError:
            pass

    for name, version in (assumed or {}).items():
        if name in _FLOOR_PACKAGES and version:
            keep(name, version)
    for dependency in dependencies:
        name, _, spec = dependency.strip().partition(" ")
        bound = _LOWER_BOUND.search(spec) if name in _FLOOR_PACKAGES else None
        if bound:
            keep(name, bound.group(1))
    return needed


_FLOOR_PACKAGES = ("__glibc", "__osx")
# A lower bound in a dependency on a virtual package: ">=2.17,<3.0.a0".
_LOWER_BOUND = re.compile(r">=\s*([0-9]+(?:\.[0-9]+)*)")
_SYSTEM_NAMES = {"glibc": "glibc", "osx": "macOS"}


def _older_than(needed: str | None, have: str | None, check: str, fix: str) -> list[Finding]:
    """An error when the system version ``have`` is below ``needed`` (both known, both dotted)."""
    if not needed or not have:
        return []
    try:
        if version_tuple(have) >= version_tuple(needed):
            return []
    except ValueError:
        return []
    return [
        Finding(
            "error",
            f"{_SYSTEM_NAMES[check]} {have} is older than the {needed} this build needs",
            fix,
            check=check,
            code=f"{check}-too-old",
        )
    ]


def needs_conda_forge(flavour: Flavour | None, archs: Iterable[str], cc: str) -> bool:
    """A GPU newer than every arch of a build from a source that stopped publishing (the
    pytorch channel): no build there will ever cover it, only its successor can serve it.
    """
    built_by = find(flavour.channel_style) if flavour else None
    if built_by is None or built_by.successor is None:
        return False
    try:
        newest = max((parse_cc(a)[:2] for a in archs), default=(0, 0))
        return parse_cc(cc)[:2] > newest
    except ValueError:
        return False


def _cpu_build(flavour: Flavour, detection: Machine, remedies: Remedies) -> list[Finding]:
    if not detection.gpus:
        return []
    count = len(detection.gpus)
    return [
        Finding(
            "info",
            f"a {flavour.label} build: it runs here but will not use the {count} NVIDIA "
            f"GPU{'s' if count > 1 else ''}",
            f"for a CUDA build: {remedies.cuda_build()}",
            check="gpu",
            code="cpu-build-on-gpu-machine",
        )
    ]


def _check_driver(
    flavour: Flavour,
    platform: str,
    detection: Machine,
    recipes: Recipes,
    remedies: Remedies,
    no_driver: Severity,
) -> tuple[list[Finding], bool]:
    """Findings, and whether PTX may be JIT-compiled (only with full driver support)."""
    required = flavour.required_cuda
    if required is None:
        return [
            Finding(
                "warning",
                "cannot tell which CUDA version this pytorch build needs; driver not checked",
                check="driver",
                code="cuda-version-unknown",
            )
        ], True
    minimum = _safe(lambda: recipes.min_driver(required, platform))
    notes = "\n".join(detection.notes) or None
    if detection.cuda_version is None:
        install = (
            f"install an NVIDIA driver >= {minimum} (CUDA {required})"
            if minimum
            else f"install an NVIDIA driver for CUDA {required}"
        )
        return [
            Finding(
                no_driver,
                f"no NVIDIA driver was found: this {flavour.label} build runs on the CPU only "
                "on this machine",
                f"{install} or run it on a machine with one, or for a CPU build: "
                f"{remedies.cpu_build()}",
                check="driver",
                detail=notes,
                code="no-driver",
            )
        ], False
    result = check_cuda(
        required, detection.cuda_version, detection.driver_version, platform, recipes
    )
    driver = f"driver {detection.driver_version or '(version unknown)'}"
    overridden = " (CONDA_OVERRIDE_CUDA / --cuda)" if detection.source == "override" else ""
    upgrade = (
        f"upgrade the NVIDIA driver to {minimum} or newer"
        if minimum
        else f"upgrade the NVIDIA driver to one for CUDA {required}"
    )
    if result.mode == FULL:
        return [
            Finding(
                "ok",
                f"{driver} supports CUDA {detection.cuda_version}{overridden}: enough for "
                f"CUDA {required}",
                check="driver",
                code="driver-supports-cuda",
            )
        ], result.jit
    if result.mode == MINOR_COMPAT:
        return [
            Finding(
                "warning",
                result.warning or result.reason,
                f"{upgrade} for full support",
                check="driver",
                code="minor-version-compatibility",
            )
        ], result.jit
    return [
        Finding(
            "error",
            f"{driver} (CUDA {detection.cuda_version}{overridden}) cannot run this CUDA "
            f"{required} environment: it {result.reason}",
            f"{upgrade}, or {remedies.for_driver(detection.cuda_version)}",
            check="driver",
            detail=notes,
            code="driver-too-old",
        )
    ], result.jit


def _check_gpus(
    flavour: Flavour,
    pytorch: str | None,
    platform: str,
    detection: Machine,
    recipes: Recipes,
    remedies: Remedies,
    jit: bool,
) -> list[Finding]:
    """Every GPU's compute capability against the build's arch list (from the recipes)."""
    if detection.cuda_version is not None and not detection.gpus:
        return [
            Finding(
                "warning",
                f"the NVIDIA driver reports no GPU: this {flavour.label} build runs on the CPU "
                "only here",
                "check that the GPU is visible here (nvidia-smi; a container needs --gpus)",
                check="gpu",
                code="no-gpu",
            )
        ]
    if not detection.gpus:
        return []
    archs = _arch_list(flavour, pytorch, platform, recipes)
    if archs is None:
        return [
            Finding(
                "info",
                f"no arch list is known for pytorch {pytorch} {flavour.label} "
                f"({flavour.channel_style}, {platform}): GPU coverage not checked",
                remedies.runtime_check(),
                check="gpu",
                code="arch-list-unknown",
            )
        ]
    findings = []
    for gpu in detection.gpus:
        label = f"GPU {gpu.index} {gpu.name}"
        cc = gpu.compute_capability
        if cc is None:
            findings.append(
                Finding(
                    "info",
                    f"{label}: compute capability unknown, not checked",
                    check="gpu",
                    code="gpu-arch-unknown",
                )
            )
            continue
        try:
            # Under minor-version compatibility the driver cannot JIT newer PTX.
            how = how_runs(archs.sass, archs.ptx, cc, jit=jit)
        except ValueError:  # a capability detection could not parse: not covered, no crash
            how = None
        if how:
            findings.append(
                Finding(
                    "ok",
                    f"{label} (compute capability {cc}) runs it: {how}",
                    check="gpu",
                    code="gpu-covered",
                )
            )
            continue
        conda_forge = needs_conda_forge(flavour, (*archs.sass, *archs.ptx), cc)
        findings.append(
            Finding(
                "error",
                f"{label} (compute capability {cc}) is not covered by pytorch {pytorch} "
                f"{flavour.label}, which has {describe_archs(archs)}: CUDA calls fail with "
                "'no kernel image is available'",
                remedies.for_gpu(cc, conda_forge=conda_forge),
                check="gpu",
                code="gpu-not-covered",
            )
        )
    return findings


def _arch_list(
    flavour: Flavour, pytorch: str | None, platform: str, recipes: Recipes
) -> ArchList | None:
    cuda, style = flavour.cuda, flavour.channel_style
    if not pytorch or cuda is None or style == "unknown":
        return None
    return _safe(lambda: recipes.arch_list(style, pytorch, cuda, platform))


def _safe(call: Callable[[], T]) -> T | None:
    """Recipes lookups are advisory here: a missing or odd row must not crash the check."""
    try:
        return call()
    except (LookupError, ValueError, NotImplementedError):
        return None
