"""Can this machine run the environment: the driver's CUDA, and every GPU against the arch list.

Only for an environment of this machine's platform. The rules (Table 2/3
driver minimums, cubin/PTX coverage) are compat's; this module turns their
answers into findings with a fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin.compat import (
    FULL,
    MINOR_COMPAT,
    check_cuda,
    current_platform,
    describe_archs,
    how_runs,
    parse_cc,
)
from conda_torch_plugin.doctor._report import Finding

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from conda_torch_plugin.compat import CudaCheck
    from conda_torch_plugin.detect import Detection
    from conda_torch_plugin.doctor._prefix import InstalledRecord
    from conda_torch_plugin.flavour import Flavour
    from conda_torch_plugin.recipes import Recipes


def check_machine(
    torch: InstalledRecord,
    flavour: Flavour,
    platform: str,
    detection: Detection | None,
    recipes: Recipes,
    prefix: Path,
) -> list[Finding]:
    if detection is None:
        return [Finding("info", "this machine was not checked (no detection)", check="driver")]
    if flavour.compute != "cuda":
        if detection.gpus:
            return [
                Finding(
                    "info",
                    f"a {flavour.label} build: the {len(detection.gpus)} NVIDIA GPU(s) here "
                    "stay unused",
                    f"for a CUDA build: conda torch-env create -p {prefix}",
                    check="gpu",
                )
            ]
        return []
    if platform != current_platform():
        return [
            Finding(
                "info",
                f"a {platform} environment on a {current_platform()} machine: driver and GPUs "
                "not checked",
                check="driver",
            )
        ]
    findings, cuda = _check_driver(flavour, platform, detection, recipes, prefix)
    return findings + _check_gpus(torch, flavour, platform, detection, recipes, prefix, cuda)


def _check_driver(
    flavour: Flavour,
    platform: str,
    detection: Detection,
    recipes: Recipes,
    prefix: Path,
) -> tuple[list[Finding], CudaCheck | None]:
    """The driver's CUDA against what the environment needs (build and runtime libraries)."""
    required = flavour.required_cuda
    if required is None:
        return [
            Finding(
                "warning",
                "cannot tell which CUDA version this pytorch build needs; driver not checked",
                check="driver",
            )
        ], None
    notes = "\n".join(detection.notes) or None
    if detection.cuda_version is None:
        # Not "broken": torch imports and runs on the CPU. A GPU behind a broken
        # driver shows up in the notes, which say what to do.
        return [
            Finding(
                "warning",
                f"no NVIDIA driver found here: this {flavour.label} build runs on the CPU only "
                "on this machine",
                "run it on a machine with an NVIDIA GPU and driver, or for a CPU build: "
                f"conda torch-env create -p {prefix} --cpu",
                check="driver",
                detail=notes,
            )
        ], None
    result = check_cuda(
        required, detection.cuda_version, detection.driver_version, platform, recipes
    )
    driver = f"driver {detection.driver_version or '(version unknown)'}"
    overridden = " (CONDA_OVERRIDE_CUDA / --cuda)" if detection.source == "override" else ""
    upgrade = recipes.min_driver(required, platform)
    upgrade_fix = (
        f"upgrade the NVIDIA driver to {upgrade} or newer"
        if upgrade
        else f"upgrade the NVIDIA driver to one for CUDA {required}"
    )
    if result.mode == FULL:
        return [
            Finding(
                "ok",
                f"{driver} supports CUDA {detection.cuda_version}{overridden}: enough for "
                f"CUDA {required}",
                check="driver",
            )
        ], result
    if result.mode == MINOR_COMPAT:
        return [
            Finding(
                "warning",
                result.warning or result.reason,
                f"{upgrade_fix} for full support",
                check="driver",
            )
        ], result
    return [
        Finding(
            "error",
            f"{driver} (CUDA {detection.cuda_version}{overridden}) cannot run this CUDA "
            f"{required} environment: it {result.reason}",
            f"{upgrade_fix}, or recreate for this driver: conda torch-env create -p {prefix}",
            check="driver",
            detail=notes,
        )
    ], result


def _check_gpus(
    torch: InstalledRecord,
    flavour: Flavour,
    platform: str,
    detection: Detection,
    recipes: Recipes,
    prefix: Path,
    cuda: CudaCheck | None,
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
            )
        ]
    if not detection.gpus or flavour.cuda is None:
        return []
    archs = recipes.arch_list(flavour.channel_style, torch.version, flavour.cuda, platform)
    if archs is None:
        return [
            Finding(
                "info",
                f"no arch list is known for pytorch {torch.version} {flavour.label} "
                f"({flavour.channel_style}, {platform}): GPU coverage not checked",
                f"check it at runtime: conda torch-env doctor -p {prefix} --run",
                check="gpu",
            )
        ]
    # Under minor-version compatibility the driver cannot JIT newer PTX.
    jit = cuda.jit if cuda is not None else True
    findings = []
    for gpu in detection.gpus:
        label = f"GPU {gpu.index} {gpu.name}"
        if gpu.compute_capability is None:
            findings.append(
                Finding("info", f"{label}: compute capability unknown, not checked", check="gpu")
            )
            continue
        how = how_runs(archs.sass, archs.ptx, gpu.compute_capability, jit=jit)
        if how:
            findings.append(
                Finding(
                    "ok",
                    f"{label} (compute capability {gpu.compute_capability}) runs it: {how}",
                    check="gpu",
                )
            )
            continue
        findings.append(
            Finding(
                "error",
                f"{label} (compute capability {gpu.compute_capability}) is not covered by "
                f"pytorch {torch.version} {flavour.label}, which has {describe_archs(archs)}: "
                "CUDA calls fail with 'no kernel image is available'",
                uncovered_fix(flavour, (*archs.sass, *archs.ptx), gpu.compute_capability, prefix),
                check="gpu",
            )
        )
    return findings


def uncovered_fix(flavour: Flavour | None, archs: Iterable[str], cc: str, prefix: Path) -> str:
    """Newer GPU than a pytorch-channel build knows: conda-forge; otherwise let plan choose."""
    newest = max((parse_cc(a)[:2] for a in archs), default=(0, 0))
    if flavour and flavour.channel_style == "pytorch" and parse_cc(cc)[:2] > newest:
        # The pytorch channel stopped at 2.5.1; newer GPUs need conda-forge's builds.
        return f"conda torch-env create -p {prefix} --source conda-forge"
    return f"conda torch-env create -p {prefix} (plans a build that covers compute capability {cc})"
