"""What the environment's python reported under ``--run``, judged against conda's records.

Which torch it imported (from where, which version), its ``torch.version.cuda``,
whether CUDA is available on a machine with GPUs, every device against the
arch list torch itself reports, and the one GPU operation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.compat import how_runs
from conda_torch_plugin.doctor._machine_fit import uncovered_fix
from conda_torch_plugin.doctor._prefix import public_version, python_path, reinstall_command
from conda_torch_plugin.doctor._report import Finding
from conda_torch_plugin.flavour import major_minor
from conda_torch_plugin.sources import find

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conda_torch_plugin.doctor._prefix import InstalledRecord
    from conda_torch_plugin.flavour import Flavour
    from conda_torch_plugin.machine.model import Machine

_ARCH = re.compile(r"^(sm|compute)_(\d+)(\d)(a?)$")


def runtime_findings(
    runtime: Mapping[str, Any],
    prefix: Path,
    torch: InstalledRecord | None,
    flavour: Flavour | None,
    detection: Machine | None,
) -> list[Finding]:
    findings = _runtime_origin(runtime, prefix, torch, flavour)
    compute = flavour.compute if flavour else "unknown"
    has_gpus = bool(detection and detection.gpus)
    op = runtime.get("gpu_op")
    if runtime.get("cuda_available"):
        archs = [str(a) for a in runtime.get("arch_list") or ()]
        findings.append(
            Finding(
                "ok",
                f"torch.cuda.is_available() is True; arch list {' '.join(archs) or '(empty)'}",
                check="run",
            )
        )
        findings += _runtime_devices(runtime, archs, flavour, prefix)
    elif compute == "cuda" and has_gpus:
        error = runtime.get("cuda_error")
        findings.append(
            Finding(
                "error",
                "torch.cuda.is_available() is False although this machine has "
                f"{len(detection.gpus) if detection else 0} NVIDIA GPU(s)"
                + (f": {error}" if error else ""),
                "check the driver (conda torch-env detect) and CUDA_VISIBLE_DEVICES",
                check="run",
            )
        )
    elif op is None:
        why = {
            "cuda": "no NVIDIA GPU is usable here",
            "cpu": "a CPU build",
            "mps": "MPS is not available here",
        }.get(compute, "no GPU is usable here")
        findings.append(Finding("info", f"GPU operation skipped: {why}", check="run"))
    if op is not None:
        findings.append(_gpu_op_finding(op, flavour, prefix))
    return findings


def _runtime_origin(
    runtime: Mapping[str, Any],
    prefix: Path,
    torch: InstalledRecord | None,
    flavour: Flavour | None,
) -> list[Finding]:
    """Which torch the environment's python imported, and its CUDA version."""
    version = str(runtime.get("torch_version") or "?")
    where = runtime.get("torch_file")
    uninstall = f"{python_path(prefix)} -m pip uninstall torch"
    if where and not _is_inside(Path(where), prefix):
        return [
            Finding(
                "error",
                f"python imports torch {version} from {where}, outside the environment",
                "remove that copy (pip uninstall --user torch), or clear PYTHONPATH",
                check="run",
            )
        ]
    if torch is not None and public_version(version) != torch.version:
        return [
            Finding(
                "error",
                f"python imports torch {version}, not conda's pytorch {torch.version}",
                f"{uninstall}, then {reinstall_command(prefix, torch)}",
                check="run",
            )
        ]
    found: list[Finding] = [
        Finding("ok", f"python imports torch {version} from the environment", check="run")
    ]
    cuda = runtime.get("cuda_version")
    if flavour is None or flavour.compute == "unknown":
        return found
    if flavour.compute == "cuda":
        good = bool(cuda) and flavour.cuda in (None, major_minor(str(cuda)))
    else:
        good = not cuda
    if good:
        found.append(Finding("ok", f"torch.version.cuda is {cuda}", check="run"))
    else:
        what = "a CPU build" if not cuda else f"built for CUDA {cuda}"
        found.append(
            Finding(
                "error",
                f"torch.version.cuda is {cuda}: the imported torch is {what}, but conda's "
                f"pytorch is a {flavour.label} build",
                reinstall_command(prefix, torch)
                if torch is not None
                else f"conda torch-env install -p {prefix}",
                check="run",
            )
        )
    return found


def _runtime_devices(
    runtime: Mapping[str, Any], archs: list[str], flavour: Flavour | None, prefix: Path
) -> list[Finding]:
    """Each device torch sees against the arch list torch itself reports."""
    sass, ptx = _split_arch_list(archs)
    findings = []
    for device in runtime.get("devices") or ():
        cc = str(device.get("compute_capability"))
        label = f"cuda:{device.get('index')} {device.get('name')} (compute capability {cc})"
        try:
            how = how_runs(sass, ptx, cc)
        except ValueError:
            how = None
        if how:
            findings.append(Finding("ok", f"{label} runs it: {how}", check="run"))
        elif sass or ptx:
            findings.append(
                Finding(
                    "error",
                    f"{label} is not covered by torch.cuda.get_arch_list()",
                    uncovered_fix(flavour, (*sass, *ptx), cc, prefix),
                    check="run",
                )
            )
    return findings


def _split_arch_list(archs: list[str]) -> tuple[list[str], list[str]]:
    """``["sm_86", "sm_90a", "compute_90"]`` -> (["8.6", "9.0a"], ["9.0"])."""
    sass, ptx = [], []
    for arch in archs:
        match = _ARCH.match(arch)
        if not match:
            continue
        cc = f"{int(match[2])}.{match[3]}"
        if match[1] == "sm":
            sass.append(cc + match[4])
        else:
            ptx.append(cc)
    return sass, ptx


def _gpu_op_finding(op: Mapping[str, Any], flavour: Flavour | None, prefix: Path) -> Finding:
    device = op.get("device", "cuda")
    if op.get("ok"):
        return Finding(
            "ok",
            f"GPU operation on {device}: (ones(2,2) @ ones(2,2)).sum() = {op.get('value')}",
            check="gpu-op",
        )
    error = op.get("error") or f"got {op.get('value')!r} instead of 8"
    fix = f"conda torch-env doctor -p {prefix} (without --run) says which check fails"
    if "no kernel image" in str(error):
        fix = f"conda torch-env create -p {prefix} (plans a build that covers this GPU)"
        built_by = find(flavour.channel_style) if flavour else None
        if built_by is not None and built_by.successor:
            fix = f"conda torch-env create -p {prefix} --source {built_by.successor}"
    return Finding("error", f"GPU operation on {device} failed: {error}", fix, check="gpu-op")


def _is_inside(path: Path, prefix: Path) -> bool:
    try:
        path.resolve().relative_to(prefix.resolve())
    except (ValueError, OSError):
        return False
    return True
