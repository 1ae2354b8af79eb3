"""`python -m conda_torch_plugin detect` in a subprocess, on machines made of the fake NVML driver.

Each test builds an environment with ``fake_nvml_env`` (LD_LIBRARY_PATH points at
the compiled fake ``libnvidia-ml.so.1``) so the real pynvml bindings do the
talking, exactly as on a GPU machine.
"""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.cli import run_cli, run_cli_json

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

H100 = ("NVIDIA H100 80GB HBM3", "9.0", 81559)
A6000 = ("NVIDIA RTX A6000", "8.6", 49140)
V100 = ("Tesla V100-SXM2-32GB", "7.0", 32768)
# With NVML unusable and no nvidia-smi, the last probe reads the real /proc file:
# on a machine with an NVIDIA kernel module that is what a correct detect reports.
FALLBACK_SOURCE = "proc" if Path("/proc/driver/nvidia/version").exists() else "none"


def run_detect(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("detect", *args, env=env, cwd=cwd)


def detect_json(env: dict[str, str], *args: str, cwd: Path | None = None) -> dict[str, Any]:
    return run_cli_json("detect", "--json", *args, env=env, cwd=cwd)


def uuid(index: int) -> str:
    return f"GPU-00000000-fa4e-4000-8000-{index:012x}"


def test_one_gpu(fake_nvml_env: Callable[..., dict[str, str]], tmp_path: Path) -> None:
    # From an unrelated folder: the subprocess must find the package on its own.
    report = detect_json(fake_nvml_env(), cwd=tmp_path)
    host = {k: report.pop(k) for k in ("hostname", "platform", "glibc", "osx")}
    assert host["platform"] == "linux-64"
    assert report == {
        "schema": 1,
        "cuda_arch": "9.0",
        "driver_version": "550.54.15",
        "cuda_version": "12.4",
        "source": "nvml",
        "gpus": [
            {
                "index": 0,
                "name": "NVIDIA H100 80GB HBM3",
                "uuid": uuid(0),
                "compute_capability": "9.0",
                "memory_mib": 81559,
            }
        ],
        "notes": [],
    }


def test_several_gpus(fake_nvml_env: Callable[..., dict[str, str]]) -> None:
    report = detect_json(fake_nvml_env(driver="535.183.01", gpus=(H100, A6000, V100)))
    assert report["driver_version"] == "535.183.01"
    assert [
        (g["index"], g["name"], g["compute_capability"], g["memory_mib"], g["uuid"])
        for g in report["gpus"]
    ] == [
        (0, H100[0], "9.0", 81559, uuid(0)),
        (1, A6000[0], "8.6", 49140, uuid(1)),
        (2, V100[0], "7.0", 32768, uuid(2)),
    ]


@pytest.mark.parametrize(
    ("cuda", "expected"),
    [("11.8", "11.8"), ("12.4", "12.4"), ("13.0", "13.0"), (12090, "12.9"), (12010, "12.1")],
    ids=["11.8", "12.4", "13.0", "raw-12090", "raw-12010"],
)
def test_cuda_encodings(
    fake_nvml_env: Callable[..., dict[str, str]], cuda: str | int, expected: str
) -> None:
    assert detect_json(fake_nvml_env(cuda=cuda))["cuda_version"] == expected


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        (9, "kernel module is not loaded"),
        (18, "reboot after a driver upgrade"),
        (4, "insufficient permissions"),
        (12, "install the NVIDIA driver, or plan for another machine with --cuda/--gpu-arch"),
    ],
    ids=["driver-not-loaded", "lib-rm-version-mismatch", "no-permission", "library-not-found"],
)
def test_init_errors(fake_nvml_env: Callable[..., dict[str, str]], code: int, phrase: str) -> None:
    report = detect_json(fake_nvml_env(init_error=code))
    assert report["source"] == FALLBACK_SOURCE
    assert report["gpus"] == []
    assert report["cuda_version"] is None
    assert report["notes"][0].startswith("NVML: ")
    assert phrase in report["notes"][0]
    assert "nvidia-smi: not found on PATH" in report["notes"]


def _real_nvml_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_real_nvml_present(), reason="a real NVIDIA driver library is installed here")
def test_no_library_at_all(fake_nvml_env: Callable[..., dict[str, str]], tmp_path: Path) -> None:
    env = fake_nvml_env()
    env["LD_LIBRARY_PATH"] = str(tmp_path)  # nothing there
    report = detect_json(env)
    assert report["source"] == FALLBACK_SOURCE
    assert report["notes"][0] == (
        "NVML: no NVIDIA driver library (libnvidia-ml.so.1 / nvml.dll) found: install the NVIDIA "
        "driver, or plan for another machine with --cuda/--gpu-arch"
    )


def test_zero_gpus(fake_nvml_env: Callable[..., dict[str, str]]) -> None:
    report = detect_json(fake_nvml_env(gpus=()))
    assert (report["source"], report["driver_version"], report["cuda_version"], report["gpus"]) == (
        "nvml",
        "550.54.15",
        "12.4",
        [],
    )
    assert any("sees no NVIDIA GPU" in note for note in report["notes"])


def test_nvml_is_always_shut_down(fake_nvml_env: Callable[..., dict[str, str]]) -> None:
    env = fake_nvml_env(
        gpus=(H100, A6000),
        extra={"FAKE_NVML_TRACE": "1", "FAKE_NVML_FAIL": "nvmlDeviceGetCudaComputeCapability=999"},
    )
    result = run_detect(env, "--json")
    assert result.returncode == 0
    calls = [
        line.split(": ", 1)[1]
        for line in result.stderr.splitlines()
        if line.startswith("fake_nvml: ")
    ]
    assert calls[0] == "nvmlInitWithFlags"
    assert calls[-1] == "nvmlShutdown"
    report = json.loads(result.stdout)
    assert [g["compute_capability"] for g in report["gpus"]] == [None, None]
    assert sum("compute capability" in note for note in report["notes"]) == 2


@pytest.mark.parametrize(
    ("override", "expected", "phrase"),
    [
        ("11.8", "11.8", "CONDA_OVERRIDE_CUDA='11.8' sets the maximum CUDA version to 11.8"),
        ("12", "12.0", "sets the maximum CUDA version to 12.0"),
        ("", None, "CONDA_OVERRIDE_CUDA is empty: planning as if there were no CUDA driver"),
    ],
    ids=["version", "major-only", "empty"],
)
def test_conda_override_cuda(
    fake_nvml_env: Callable[..., dict[str, str]], override: str, expected: str | None, phrase: str
) -> None:
    report = detect_json(fake_nvml_env(extra={"CONDA_OVERRIDE_CUDA": override}))
    assert (report["source"], report["cuda_version"]) == ("override", expected)
    assert report["driver_version"] == "550.54.15"
    assert [g["name"] for g in report["gpus"]] == [H100[0]]
    assert any(phrase in note for note in report["notes"])
    assert any("the driver itself reports CUDA 12.4" in note for note in report["notes"])


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_invalid_conda_override_cuda(
    fake_nvml_env: Callable[..., dict[str, str]], as_json: bool
) -> None:
    env = fake_nvml_env(extra={"CONDA_OVERRIDE_CUDA": "twelve"})
    result = run_detect(env, *(["--json"] if as_json else []))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: CONDA_OVERRIDE_CUDA='twelve' is not a CUDA version like 12.4" in result.stderr
    if as_json:
        assert json.loads(result.stdout)["error"] == "UsageError"


@pytest.mark.parametrize(
    ("env_value", "flag", "expected"),
    [
        (None, "11.8", "11.8"),
        ("12.1", "11.8", "11.8"),
        ("", "12.1", "12.1"),
        ("garbage", "12.1", "12.1"),
        ("12.1", "", None),
    ],
    ids=["flag-only", "over-env", "over-empty-env", "over-invalid-env", "empty-flag"],
)
def test_cuda_flag_wins(
    fake_nvml_env: Callable[..., dict[str, str]],
    env_value: str | None,
    flag: str,
    expected: str | None,
) -> None:
    extra = {} if env_value is None else {"CONDA_OVERRIDE_CUDA": env_value}
    report = detect_json(fake_nvml_env(cuda="12.4", extra=extra), "--cuda", flag)
    assert (report["source"], report["cuda_version"]) == ("override", expected)
    if env_value is not None:
        assert any(note.startswith(f"--cuda {flag!r} wins over") for note in report["notes"])


@pytest.mark.parametrize("flag", ["12", "twelve", "12.4.1"], ids=str)
def test_bad_cuda_flag(fake_nvml_env: Callable[..., dict[str, str]], flag: str) -> None:
    result = run_detect(fake_nvml_env(), "--cuda", flag)
    assert result.returncode == 2
    assert "is not a version like 12.4" in result.stderr
    assert "Traceback" not in result.stderr


def detect_json_through_nvidia_smi(
    fake_nvml_env: Callable[..., dict[str, str]], folder: Path
) -> dict[str, Any]:
    """``detect --json`` with NVML unable to load and the fake nvidia-smi in ``folder`` on PATH."""
    # Init error 12 is what pynvml raises when libnvidia-ml.so.1 cannot be loaded;
    # unlike removing the library it also holds on a machine with a real driver.
    env = fake_nvml_env(init_error=12)
    env["PATH"] = f"{folder}:{env['PATH']}"
    report = detect_json(env)
    assert report["source"] == "nvidia-smi"
    return report


def test_nvidia_smi_fallback(
    fake_nvml_env: Callable[..., dict[str, str]], fake_nvidia_smi: Callable[..., Path]
) -> None:
    folder = fake_nvidia_smi(
        "0, NVIDIA GeForce RTX 4090, GPU-1111, 8.9, 24564, 550.54.15\n"
        "1, NVIDIA GeForce RTX 3090, GPU-2222, 8.6, 24576, 550.54.15\n",
        cuda="12.4",
    )
    report = detect_json_through_nvidia_smi(fake_nvml_env, folder)
    assert (report["driver_version"], report["cuda_version"]) == ("550.54.15", "12.4")
    assert [(g["name"], g["compute_capability"], g["uuid"]) for g in report["gpus"]] == [
        ("NVIDIA GeForce RTX 4090", "8.9", "GPU-1111"),
        ("NVIDIA GeForce RTX 3090", "8.6", "GPU-2222"),
    ]
    assert "no NVIDIA driver library" in report["notes"][0]
    calls = (folder / "calls.log").read_text().splitlines()
    assert calls[0].startswith("--query-gpu=index,name,uuid,compute_cap,memory.total")
    assert calls[1] == ""  # plain nvidia-smi for the CUDA version


def test_old_nvidia_smi(
    fake_nvml_env: Callable[..., dict[str, str]], fake_nvidia_smi: Callable[..., Path]
) -> None:
    folder = fake_nvidia_smi(
        "", compute_cap=False, cuda="11.4", old_csv="0, Tesla T4, GPU-3333, 15109, 470.82.01\n"
    )
    report = detect_json_through_nvidia_smi(fake_nvml_env, folder)
    assert (report["driver_version"], report["cuda_version"]) == ("470.82.01", "11.4")
    assert report["gpus"] == [
        {
            "index": 0,
            "name": "Tesla T4",
            "uuid": "GPU-3333",
            "compute_capability": None,
            "memory_mib": 15109,
        }
    ]
    assert any("too old to report compute capabilities" in n for n in report["notes"])


def test_text_report(fake_nvml_env: Callable[..., dict[str, str]]) -> None:
    result = run_detect(fake_nvml_env(gpus=(H100, A6000), extra={"CONDA_OVERRIDE_CUDA": "12.1"}))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["GPU", "name", "compute", "capability", "memory", "UUID"]
    assert lines[2].split() == [
        "0",
        "NVIDIA",
        "H100",
        "80GB",
        "HBM3",
        "9.0",
        "81559",
        "MiB",
        uuid(0),
    ]
    assert lines[3].split() == ["1", "NVIDIA", "RTX", "A6000", "8.6", "49140", "MiB", uuid(1)]
    assert "driver:    550.54.15" in lines
    assert "max CUDA:  12.1 (overridden, see the notes)" in lines
    assert any(line.startswith("  - CONDA_OVERRIDE_CUDA='12.1' sets") for line in lines)


def test_text_report_without_gpu(fake_nvml_env: Callable[..., dict[str, str]]) -> None:
    result = run_detect(fake_nvml_env(init_error=9))
    assert result.returncode == 0
    assert result.stdout.startswith("No NVIDIA GPU detected.\n")
    assert "kernel module is not loaded" in result.stdout
    assert "Traceback" not in result.stderr
