"""The machine-compatibility rules that install and the doctor share, on the real recipes.

The callers' own tests (test_install.py, test_doctor.py) check the findings in
context; these pin what the two callers choose: the severity of "no driver",
and the fix lines, while the verdicts stay the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conda_torch_plugin.doctor._machine_fit import PrefixRemedies
from conda_torch_plugin.flavour import Flavour
from conda_torch_plugin.install import LockRemedies
from conda_torch_plugin.machine.check import machine_findings, needs_conda_forge
from conda_torch_plugin.machine.model import Gpu, Machine
from conda_torch_plugin.recipes import load_recipes

PLATFORM = "linux-64"
PREFIX = Path("/envs/torch")
PT_CUDA_124 = Flavour("cuda", "12.4", "pytorch", "12.4")  # pytorch 2.5.1: sm_50 ... sm_90a
CF_CUDA_126 = Flavour("cuda", "12.6", "conda-forge", "12.6")  # 2.7.0: ... sm_90 + compute_90 PTX
NO_DRIVER = Machine(None, None, "none", (), ("NVML: libnvidia-ml.so.1 not found",))


@pytest.fixture(scope="module")
def recipes():
    return load_recipes()


def gpu(name: str, cc: str, index: int = 0) -> Gpu:
    return Gpu(index=index, name=name, uuid=None, compute_capability=cc, memory_mib=None)


@pytest.mark.parametrize("severity", ["error", "warning"], ids=["install", "doctor"])
def test_no_driver_severity_is_the_callers(recipes, severity) -> None:
    (finding,) = machine_findings(
        PT_CUDA_124, "2.5.1", PLATFORM, NO_DRIVER, recipes, remedies=LockRemedies(),
        no_driver=severity,
    )  # fmt: skip
    assert (finding.code, finding.severity) == ("no-driver", severity)
    assert finding.detail == "NVML: libnvidia-ml.so.1 not found"
    assert "550.54.14" in (finding.fix or "")


@pytest.mark.parametrize(
    ("driver", "cuda", "expected"),
    [
        ("570.86.10", "12.8", [("driver-supports-cuda", "ok"), ("gpu-covered", "ok")]),
        (
            "535.104.05",
            "12.2",
            [("minor-version-compatibility", "warning"), ("gpu-not-covered", "error")],
        ),
    ],
    ids=["full-support-jits-ptx", "minor-compat-cannot-jit"],
)
def test_ptx_counts_only_with_full_driver_support(recipes, driver, cuda, expected) -> None:
    """A B200 (10.0) runs a build whose newest code is compute_90 PTX only if the driver JITs it."""
    detection = Machine(driver, cuda, "nvml", (gpu("NVIDIA B200", "10.0"),))
    findings = machine_findings(
        CF_CUDA_126, "2.7.0", PLATFORM, detection, recipes, remedies=PrefixRemedies(PREFIX)
    )
    assert [(f.code, f.severity) for f in findings] == expected


def test_same_verdicts_with_each_callers_fixes(recipes) -> None:
    detection = Machine("570.86.10", "12.8", "nvml", (gpu("NVIDIA GeForce RTX 5090", "12.0"),))
    install, doctor = (
        machine_findings(PT_CUDA_124, "2.5.1", PLATFORM, detection, recipes, remedies=remedies)
        for remedies in (LockRemedies(), PrefixRemedies(PREFIX))
    )
    assert [(f.code, f.severity, f.message) for f in install] == [
        (f.code, f.severity, f.message) for f in doctor
    ]
    assert install[-1].code == "gpu-not-covered"
    # The pytorch channel stopped at 2.5.1: only conda-forge's builds cover Blackwell.
    assert install[-1].fix == (
        "re-plan for it: conda torch-env write --gpu-arch 12.0 --source conda-forge && "
        "conda torch-env lock"
    )
    assert doctor[-1].fix == f"conda torch-env create -p {PREFIX} --source conda-forge"


@pytest.mark.parametrize(
    ("flavour", "cc", "expected"),
    [
        (PT_CUDA_124, "12.0", True),
        (PT_CUDA_124, "3.5", False),  # older than the build: a newer pytorch-channel plan may do
        (CF_CUDA_126, "12.0", False),  # conda-forge already
        (PT_CUDA_124, "not-a-capability", False),
    ],
    ids=["newer-gpu", "older-gpu", "conda-forge-build", "unparsable"],
)
def test_needs_conda_forge(recipes, flavour, cc, expected) -> None:
    archs = recipes.arch_list("pytorch", "2.5.1", "12.4", PLATFORM)
    assert needs_conda_forge(flavour, (*archs.sass, *archs.ptx), cc) is expected
