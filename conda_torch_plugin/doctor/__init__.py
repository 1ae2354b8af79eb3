"""Check an installed environment: is its PyTorch consistent, and can this machine run it?

``diagnose`` reads the prefix's ``conda-meta/*.json`` records (never imports
torch in this process) and returns findings, each with a severity and a
one-line fix. One module per question:

- ``_markers``: the pytorch build's flavour (CUDA X.Y / CPU / MPS) and its
  markers (``pytorch-mutex``/``pytorch-cuda``/``cpuonly`` on the pytorch
  channel, ``pytorch-gpu``/``pytorch-cpu``/``cuda-version`` on conda-forge),
  and the recipes' guards (``mkl<2024.1``);
- ``_companions``: torchvision/torchaudio: same flavour, same CUDA, the
  versions the recipes pair, the same channel;
- ``_machine_fit``: the driver's CUDA against the build's (minor-version
  compatibility is a warning) and every GPU against the build's arch list,
  with the rules ``machine.check`` shares with install;
- ``_pip``: a pip-installed torch that shadows conda's (site-packages metadata
  no conda record owns, or the user site-packages, which Python searches first);
- ``_probe`` and ``_runtime`` (``run_python``): the environment's own python
  imports torch in a subprocess and reports what it sees, which is then judged.

``_prefix`` reads the records; ``_report`` holds the result types.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.doctor._companions import check_companions
from conda_torch_plugin.doctor._machine_fit import prefix_floor_findings, prefix_machine_findings
from conda_torch_plugin.doctor._markers import check_guards, check_pytorch
from conda_torch_plugin.doctor._pip import check_pip_shadowing
from conda_torch_plugin.doctor._prefix import InstalledRecord, environment_flavour, read_records
from conda_torch_plugin.doctor._probe import DEFAULT_TIMEOUT_S, run_probe
from conda_torch_plugin.doctor._report import SEVERITIES, DoctorReport, Finding, NotAnEnvironment
from conda_torch_plugin.doctor._runtime import runtime_findings
from conda_torch_plugin.flavour import COMPANION_NAMES

if TYPE_CHECKING:
    from collections.abc import Callable

    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.recipes import Recipes

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "SEVERITIES",
    "DoctorReport",
    "Finding",
    "InstalledRecord",
    "NotAnEnvironment",
    "diagnose",
    "read_records",
]

# What the report lists under "packages", when installed.
_REPORTED = ("pytorch", *COMPANION_NAMES, "pytorch-cuda", "cuda-version", "python")


def diagnose(
    prefix: Path,
    *,
    detection: Machine | None,
    recipes: Recipes,
    run_python: bool = False,
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    user_base: Path | None = None,
) -> DoctorReport:
    """Diagnose the environment at ``prefix``.

    ``detection`` describes this machine (None: skip the machine checks).
    ``user_base`` is Python's user base (``~/.local``); None means the one the
    environment's python would use (``PYTHONUSERBASE``, else the default).
    Raises NotAnEnvironment when ``prefix`` is not a conda environment.
    """
    prefix = Path(prefix)
    records, findings = read_records(prefix)
    torch = records.get("pytorch")
    platform = (torch.subdir if torch else None) or current_platform() or "unknown"
    flavour = environment_flavour(records, platform)
    packages = {
        name: f"{records[name].version} {records[name].build}"
        for name in _REPORTED
        if name in records
    }

    if torch is None:
        findings.append(
            Finding(
                "error",
                f"conda installed no pytorch in {prefix}",
                f"install one: conda torch-env install -p {prefix} (from a lock) "
                f"or conda torch-env create -p {prefix}",
                check="pytorch",
            )
        )
    elif flavour is not None:
        findings += check_pytorch(torch, flavour, records, prefix)
        findings += check_guards(flavour, platform, records, recipes, prefix)
        if flavour.compute != "unknown":  # nothing to compare the rest against
            findings += check_companions(torch, flavour, records, recipes, prefix)
            findings += prefix_machine_findings(
                torch, flavour, platform, detection, recipes, prefix
            )
    findings += prefix_floor_findings(records.values(), platform, detection)
    findings += check_pip_shadowing(prefix, records, user_base)

    runtime = None
    if run_python:
        runtime, failure = run_probe(prefix, runner=runner, timeout_s=timeout_s)
        if runtime is not None:
            findings += runtime_findings(runtime, prefix, torch, flavour, detection)
        elif failure is not None:
            findings.append(failure)
    return DoctorReport(
        prefix=prefix,
        flavour=flavour,
        findings=tuple(findings),
        platform=platform,
        packages=packages,
        runtime=runtime,
    )
