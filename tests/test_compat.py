"""The compatibility rules: GPU code vs compute capability, build CUDA vs driver."""

from __future__ import annotations

import pytest

from conda_torch_plugin import compat
from conda_torch_plugin.recipes import ArchList, load_recipes

PYTORCH_CU11 = ArchList(("3.7", "5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6"), ("3.7",), "S8")
PYTORCH_CU12_90A = ArchList(
    ("5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "9.0", "9.0a"), (), "S8"
)
CF_CU126 = ArchList(
    ("5.0", "6.0", "6.1", "7.0", "7.5", "8.0", "8.6", "8.9", "9.0"), ("9.0",), "S25"
)
CF_CU129 = ArchList(
    ("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0", "10.0", "12.0"), ("12.0",), "S25"
)
CF_CU130 = ArchList(("7.5", "8.0", "8.6", "9.0", "10.0", "11.0", "12.0"), ("12.0",), "S25")
ONLY_90A = ArchList(("9.0a",), (), "test")


@pytest.mark.parametrize(
    ("archs", "cc", "jit", "expected"),
    [
        (PYTORCH_CU11, "8.6", True, "sm_86 cubin"),
        (PYTORCH_CU11, "8.9", True, "sm_86 cubin (same major, runs on 8.9)"),
        (PYTORCH_CU11, "3.7", True, "sm_37 cubin"),
        (PYTORCH_CU11, "5.2", True, "sm_50 cubin (same major, runs on 5.2)"),
        # compute_37 PTX sits below cubins up to sm_86: not a path to Hopper.
        (PYTORCH_CU11, "9.0", True, None),
        (PYTORCH_CU11, "12.0", True, None),
        # A cubin never runs on a lower minor or another major (S22).
        (PYTORCH_CU11, "3.5", True, None),
        (PYTORCH_CU12_90A, "9.0", True, "sm_90 cubin"),
        (PYTORCH_CU12_90A, "12.0", True, None),
        (PYTORCH_CU12_90A, "6.1", True, "sm_61 cubin"),
        # 9.0a is arch-specific: exactly 9.0.
        (ONLY_90A, "9.0", True, "sm_90a cubin"),
        (ONLY_90A, "9.1", True, None),
        # conda-forge 12.6: 9.0+PTX is the newest code, JIT-compiled for Blackwell.
        (CF_CU126, "12.0", True, "compute_90 PTX, JIT-compiled by the driver"),
        (CF_CU126, "10.0", True, "compute_90 PTX, JIT-compiled by the driver"),
        (CF_CU126, "12.0", False, None),
        (CF_CU129, "12.0", True, "sm_120 cubin"),
        (CF_CU129, "12.1", True, "sm_120 cubin (same major, runs on 12.1)"),
        (CF_CU129, "10.3", True, "sm_100 cubin (same major, runs on 10.3)"),
        # GTX 1080: the 6.0 cubin runs on 6.1 (same major, lower minor).
        (CF_CU129, "6.1", True, "sm_60 cubin (same major, runs on 6.1)"),
        (CF_CU130, "6.1", True, None),
        (CF_CU130, "7.0", True, None),
        (CF_CU130, "8.9", False, "sm_86 cubin (same major, runs on 8.9)"),
    ],
    ids=[
        "cu11-86",
        "cu11-89-via-86",
        "cu11-k80",
        "cu11-maxwell52",
        "cu11-hopper-no",
        "cu11-blackwell-no",
        "cu11-k40-no",
        "cu12-90",
        "cu12-5090-no",
        "cu12-1080",
        "90a-on-90",
        "90a-not-91",
        "cf126-5090-ptx",
        "cf126-b200-ptx",
        "cf126-5090-no-jit",
        "cf129-5090",
        "cf129-gb10",
        "cf129-b300",
        "cf129-1080",
        "cf130-1080-no",
        "cf130-v100-no",
        "cf130-ada-cubin-no-jit",
    ],
)
def test_how_runs(archs: ArchList, cc: str, jit: bool, expected: str | None) -> None:
    assert compat.how_runs(archs.sass, archs.ptx, cc, jit=jit) == expected
    assert archs.runs_on(cc, jit=jit) is (expected is not None)


def test_covers_needs_every_gpu() -> None:
    assert not compat.uncovered(CF_CU129, ["8.6", "12.0", "6.1"])
    assert compat.uncovered(CF_CU130, ["8.6", "6.1"])
    assert compat.uncovered(CF_CU130, ["6.1", "8.6", "6.1", "7.0"]) == ("6.1", "7.0")


@pytest.mark.parametrize(
    ("build", "driver_cuda", "driver", "platform", "mode", "in_text"),
    [
        ("12.4", "12.4", None, "linux-64", compat.FULL, "12.4 <= the driver's CUDA 12.4"),
        ("11.8", "13.0", None, "linux-64", compat.FULL, "11.8 <= the driver's CUDA 13.0"),
        ("11.8", "11.4", "470.82.01", "linux-64", compat.MINOR_COMPAT, "470.82.01 >= 450.80.02"),
        ("11.8", "11.0", "450.51.06", "linux-64", compat.UNSUPPORTED, "below 450.80.02"),
        ("11.8", "11.4", "452.39", "win-64", compat.MINOR_COMPAT, "452.39 >= 452.39"),
        ("11.8", "11.4", "451.82", "win-64", compat.UNSUPPORTED, "below 452.39"),
        ("12.9", "12.8", "570.86.10", "linux-64", compat.MINOR_COMPAT, ">= 525.60.13"),
        ("12.9", "12.8", "572.16", "win-64", compat.MINOR_COMPAT, ">= 528.33"),
        # Only --cuda known: a driver for CUDA 12.4 is >= 550.54.14 (Table 3), which meets
        # the 12.x minimum, so the unknown driver version does not matter.
        ("12.9", "12.4", None, "linux-64", compat.MINOR_COMPAT, "is >= 550.54.14 >= 525.60.13"),
        # A driver for CUDA 11.0 may be 450.51.05, below the 11.x minimum: the warning asks.
        ("11.8", "11.0", None, "linux-64", compat.MINOR_COMPAT, "needs driver >= 450.80.02"),
        ("13.0", "12.9", "575.51.03", "linux-64", compat.UNSUPPORTED, "different major"),
        ("13.2", "13.0", "580.65.06", "linux-64", compat.MINOR_COMPAT, ">= 580"),
        ("12.1", "11.8", None, "linux-64", compat.UNSUPPORTED, "driver >= 530.30.02 on Linux"),
        ("12.1", None, None, "linux-64", compat.UNSUPPORTED, "no NVIDIA driver"),
    ],
    ids=[
        "equal",
        "older-major",
        "11x-minor-compat",
        "11x-driver-too-old",
        "win-11x-minor",
        "win-11x-too-old",
        "12x-minor",
        "win-12x-minor",
        "12x-driver-unknown-implied",
        "11x-driver-unknown",
        "13-on-12",
        "13x-minor",
        "12-on-11-names-driver",
        "no-driver",
    ],
)
def test_check_cuda(
    build: str, driver_cuda: str | None, driver: str | None, platform: str, mode: str, in_text: str
) -> None:
    check = compat.check_cuda(build, driver_cuda, driver, platform, load_recipes())
    assert check.mode == mode
    assert check.ok is (mode != compat.UNSUPPORTED)
    assert in_text in check.reason + (check.warning or "")
    assert (check.warning is not None) is (mode == compat.MINOR_COMPAT)
    assert check.jit is (mode == compat.FULL)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("12.10", "12.9", 1),
        ("580", "580.65.06", -1),
        ("580.0", "580", 0),
        ("525.60.13", "525.60.13", 0),
    ],
    ids=["numeric-minor", "short-driver", "padding", "equal"],
)
def test_compare_versions(a: str, b: str, expected: int) -> None:
    assert compat.compare_versions(a, b) == expected


@pytest.mark.parametrize(
    ("spec", "matching", "not_matching"),
    [
        ("2.2", ["2.2.0", "2.2.2"], ["2.20.0", "2.3.0", "12.2.0"]),
        ("2.5.1", ["2.5.1"], ["2.5.0", "2.5.10"]),
        (">=2.3", ["2.3.0", "2.13.0"], ["2.2.2"]),
        ("<2.4", ["2.3.1", "1.13.1"], ["2.4.0", "2.10.0"]),
        (">=2.3,<2.5", ["2.4.1"], ["2.5.0", "2.2.2"]),
        ("2.2.*", ["2.2.1"], ["2.3.0"]),
        ("==2.7", ["2.7.0"], ["2.7.1"]),
        ("!=2.5.1", ["2.5.0"], ["2.5.1"]),
    ],
    ids=["bare-xy-prefix", "exact", "ge", "lt", "range", "star", "double-equals", "not-equal"],
)
def test_version_spec(spec: str, matching: list[str], not_matching: list[str]) -> None:
    parsed = compat.VersionSpec.parse(spec)
    assert all(parsed.matches(v) for v in matching)
    assert not any(parsed.matches(v) for v in not_matching)


@pytest.mark.parametrize("spec", ["banana", "2.x", ">=", "~=2.3", ">2.*"], ids=str)
def test_version_spec_rejects_garbage(spec: str) -> None:
    with pytest.raises(ValueError, match="not a PyTorch version|goes only with"):
        compat.VersionSpec.parse(spec)


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("linux", "x86_64", "linux-64"),
        ("linux", "aarch64", "linux-aarch64"),
        ("win32", "AMD64", "win-64"),
        ("darwin", "arm64", "osx-arm64"),
        ("darwin", "x86_64", "osx-64"),
        ("linux", "riscv64", None),
    ],
    ids=["linux-64", "linux-aarch64", "win-64", "osx-arm64", "osx-64", "unknown"],
)
def test_current_platform(system: str, machine: str, expected: str | None) -> None:
    assert compat.current_platform(system, machine) == expected
