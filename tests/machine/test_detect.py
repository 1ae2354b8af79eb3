"""detect(): the parsers, CUDA overrides, and each probe in-process.

NVML goes through the real pynvml bindings talking to the compiled fake
``libnvidia-ml.so.1`` (``nvml_library=``); nvidia-smi is a recording runner
standing in for the subprocess; /proc is a temporary file.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from conda_torch_plugin.errors import UsageError
from conda_torch_plugin.machine.detect import (
    cuda_from_nvml_int,
    detect,
    parse_cuda_override,
    parse_nvidia_smi_csv,
    parse_nvidia_smi_cuda,
    parse_proc_version,
)
from conda_torch_plugin.machine.model import Gpu

if TYPE_CHECKING:
    from pathlib import Path

H100 = "NVIDIA H100 80GB HBM3"
PROPRIETARY = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
)
OPEN_MODULE = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Fri Aug 16 21:21:48 UTC 2024\n"
    "GCC version:  gcc version 13.2.0 (Ubuntu 13.2.0-23ubuntu4)\n"
)
ARM64 = (
    "NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.104.05  Sat Aug 19 01:13:08 UTC 2023\n"
)
SMI_HEADER = (
    "+------------------------------------------------------------------------------+\n"
    "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |\n"
)


# --- pure parsers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12040, "12.4"), (13000, "13.0"), (11080, "11.8"), (12090, "12.9"), (10010, "10.1")],
    ids=["12.4", "13.0", "11.8", "12.9", "10.1"],
)
def test_cuda_from_nvml_int(value: int, expected: str) -> None:
    assert cuda_from_nvml_int(value) == expected


def test_cuda_from_nvml_int_rejects_zero() -> None:
    with pytest.raises(ValueError, match="not a CUDA version"):
        cuda_from_nvml_int(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PROPRIETARY, "550.54.15"),
        (OPEN_MODULE, "560.35.03"),
        (ARM64, "535.104.05"),
        (
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.57.02  Tue Jul 13 2021\n",
            "470.57.02",
        ),
        ("GCC version: gcc version 12.2.0\n", None),
        ("", None),
    ],
    ids=["proprietary", "open-module", "aarch64", "470", "no-nvrm-line", "empty"],
)
def test_parse_proc_version(text: str, expected: str | None) -> None:
    assert parse_proc_version(text) == expected


@pytest.mark.parametrize(
    ("text", "gpus", "driver"),
    [
        (
            "0, NVIDIA GeForce RTX 4090, GPU-aaaa, 8.9, 24564, 550.54.15\n",
            [Gpu(0, "NVIDIA GeForce RTX 4090", "GPU-aaaa", "8.9", 24564)],
            "550.54.15",
        ),
        (
            "0, NVIDIA H100 80GB HBM3, GPU-a, 9.0, 81559, 550.54.15\n"
            "1, NVIDIA RTX A6000, GPU-b, 8.6, 49140, 550.54.15\n",
            [
                Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-a", "9.0", 81559),
                Gpu(1, "NVIDIA RTX A6000", "GPU-b", "8.6", 49140),
            ],
            "550.54.15",
        ),
        (  # WSL: CRLF, stray spaces, a blank line
            "\r\n0 ,  NVIDIA GeForce RTX 3080 Laptop GPU ,GPU-c,8.6 , 8192 ,  546.33 \r\n",
            [Gpu(0, "NVIDIA GeForce RTX 3080 Laptop GPU", "GPU-c", "8.6", 8192)],
            "546.33",
        ),
        (
            "0, Tesla K80, [N/A], [N/A], 11441 MiB, 470.82.01\n",
            [Gpu(0, "Tesla K80", None, None, 11441)],
            "470.82.01",
        ),
        (
            "0, Quadro RTX 8000, with comma, GPU-d, 7.5, 48601, 535.183.01\n",
            [Gpu(0, "Quadro RTX 8000, with comma", "GPU-d", "7.5", 48601)],
            "535.183.01",
        ),
        ("", [], None),
        ("No devices were found\n", [], None),
    ],
    ids=["one", "two", "wsl-spacing", "n/a-and-units", "comma-in-name", "empty", "no-devices"],
)
def test_parse_nvidia_smi_csv(text: str, gpus: list[Gpu], driver: str | None) -> None:
    assert parse_nvidia_smi_csv(text) == (gpus, driver)


def test_parse_nvidia_smi_csv_without_compute_cap() -> None:
    fields = ("index", "name", "uuid", "memory.total", "driver_version")
    text = "0, Tesla V100-SXM2-16GB, GPU-e, 16160, 418.87.01\n"
    assert parse_nvidia_smi_csv(text, fields=fields) == (
        [Gpu(0, "Tesla V100-SXM2-16GB", "GPU-e", None, 16160)],
        "418.87.01",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SMI_HEADER, "12.4"),
        ("| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0  |", "13.0"),
        ("CUDA Version : 11.8", "11.8"),
        ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", None),
    ],
    ids=["12.4", "13.0", "odd-spacing", "failed"],
)
def test_parse_nvidia_smi_cuda(text: str, expected: str | None) -> None:
    assert parse_nvidia_smi_cuda(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.4", "12.4"),
        ("12", "12.0"),
        (" 11.8 ", "11.8"),
        ("12.4.1", "12.4"),
        ("", None),
        ("  ", None),
    ],
    ids=["x.y", "major-only", "spaces", "x.y.z", "empty", "blank"],
)
def test_parse_cuda_override(value: str, expected: str | None) -> None:
    assert parse_cuda_override(value, "CONDA_OVERRIDE_CUDA") == expected


@pytest.mark.parametrize("value", ["abc", "12.x", "v12.4", "12,4"], ids=str)
def test_parse_cuda_override_rejects(value: str) -> None:
    with pytest.raises(UsageError, match="not a CUDA version like 12.4") as caught:
        parse_cuda_override(value, "CONDA_OVERRIDE_CUDA")
    assert caught.value.exit_code == 2
    assert repr(value) in caught.value.message


# --- fakes at the boundary ------------------------------------------------------


@dataclass
class Answer:
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""


@dataclass
class FakeRunner:
    """Stands in for subprocess.run: answers by argv prefix and records the calls."""

    answers: dict[str, Answer | BaseException] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: list[str], **kwargs: Any) -> Answer:
        self.calls.append(list(argv))
        key = " ".join(argv[1:2]).split("=")[0] or argv[0]
        answer = self.answers.get(key, FileNotFoundError(argv[0]))
        if isinstance(answer, BaseException):
            raise answer
        return answer


NO_SMI = FakeRunner()


@pytest.fixture
def fake_nvml(fake_nvml_library: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Configure the fake library in this process (it reads FAKE_NVML_* at init)."""

    def configure(**variables: str) -> str:
        for name in (
            "FAKE_NVML_DRIVER",
            "FAKE_NVML_CUDA",
            "FAKE_NVML_GPUS",
            "FAKE_NVML_INIT_ERROR",
            "FAKE_NVML_FAIL",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in variables.items():
            monkeypatch.setenv(f"FAKE_NVML_{name.upper()}", value)
        return str(fake_nvml_library)

    return configure


def missing_proc(tmp_path: Path) -> str:
    return str(tmp_path / "no-such-proc-version")


# --- NVML through the real bindings ---------------------------------------------


def test_nvml_two_gpus(fake_nvml: Any, tmp_path: Path) -> None:
    library = fake_nvml(
        driver="560.35.03", cuda="12060", gpus=f"{H100},9.0,81559;NVIDIA GeForce RTX 4090,8.9,24564"
    )
    found = detect(
        environ={}, run=NO_SMI, proc_version_path=missing_proc(tmp_path), nvml_library=library
    )
    assert found.source == "nvml"
    assert (found.driver_version, found.cuda_version) == ("560.35.03", "12.6")
    assert [(g.index, g.name, g.compute_capability, g.memory_mib) for g in found.gpus] == [
        (0, H100, "9.0", 81559),
        (1, "NVIDIA GeForce RTX 4090", "8.9", 24564),
    ]
    assert [g.uuid for g in found.gpus] == [
        "GPU-00000000-fa4e-4000-8000-000000000000",
        "GPU-00000000-fa4e-4000-8000-000000000001",
    ]
    assert found.notes == ()


def test_nvml_leaves_pynvml_as_it_was(fake_nvml: Any, tmp_path: Path) -> None:
    import pynvml

    before = pynvml.nvmlLib
    detect(
        environ={}, run=NO_SMI, proc_version_path=missing_proc(tmp_path), nvml_library=fake_nvml()
    )
    assert pynvml.nvmlLib is before


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        (9, "kernel module is not loaded"),
        (18, "reboot after a driver upgrade"),
        (4, "insufficient permissions"),
        (1, "not initialized"),
        (13, "too old"),
        (15, "GPU is lost"),
        (999, "unknown NVML error"),
        (12, "no NVIDIA driver library (libnvidia-ml.so.1 / nvml.dll) found"),
    ],
    ids=[
        "driver-not-loaded",
        "version-mismatch",
        "no-permission",
        "uninitialized",
        "function-not-found",
        "gpu-lost",
        "unknown",
        "library-not-found",
    ],
)
def test_nvml_init_errors_become_notes(
    fake_nvml: Any, tmp_path: Path, code: int, phrase: str
) -> None:
    library = fake_nvml(init_error=str(code))
    found = detect(
        environ={}, run=NO_SMI, proc_version_path=missing_proc(tmp_path), nvml_library=library
    )
    assert (found.source, found.driver_version, found.cuda_version, found.gpus) == (
        "none",
        None,
        None,
        (),
    )
    assert found.notes[0].startswith("NVML: ")
    assert phrase in found.notes[0]


def test_missing_library_falls_back_to_proc(tmp_path: Path) -> None:
    proc = tmp_path / "version"
    proc.write_text(OPEN_MODULE)
    runner = FakeRunner()
    found = detect(
        environ={},
        run=runner,
        proc_version_path=str(proc),
        nvml_library=str(tmp_path / "libnvidia-ml.so.1"),
    )
    assert (found.source, found.driver_version, found.cuda_version, found.gpus) == (
        "proc",
        "560.35.03",
        None,
        (),
    )
    assert "no NVIDIA driver library" in found.notes[0]
    assert "install the NVIDIA driver" in found.notes[0]
    assert "nvidia-smi: not found on PATH" in found.notes
    assert any("maximum CUDA version is unknown" in note for note in found.notes)
    assert runner.calls[0][0] == "nvidia-smi"


def test_partial_nvml_failures_keep_the_rest(fake_nvml: Any, tmp_path: Path) -> None:
    library = fake_nvml(fail="nvmlSystemGetCudaDriverVersion=13,nvmlDeviceGetUUID=4")
    found = detect(
        environ={}, run=NO_SMI, proc_version_path=missing_proc(tmp_path), nvml_library=library
    )
    assert found.source == "nvml"
    assert found.cuda_version is None
    assert found.gpus == (Gpu(0, H100, None, "9.0", 81559),)
    assert any(
        "could not read the maximum CUDA version" in n and "too old" in n for n in found.notes
    )
    assert any("GPU 0's UUID" in n and "permissions" in n for n in found.notes)


def test_driver_without_gpus(fake_nvml: Any, tmp_path: Path) -> None:
    found = detect(
        environ={},
        run=NO_SMI,
        proc_version_path=missing_proc(tmp_path),
        nvml_library=fake_nvml(gpus=""),
    )
    assert (found.source, found.driver_version, found.cuda_version, found.gpus) == (
        "nvml",
        "550.54.15",
        "12.4",
        (),
    )
    assert any("sees no NVIDIA GPU" in note for note in found.notes)


# --- overrides ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "cuda_override", "expected", "phrase"),
    [
        ({"CONDA_OVERRIDE_CUDA": "11.8"}, None, "11.8", "CONDA_OVERRIDE_CUDA='11.8' sets"),
        ({"CONDA_OVERRIDE_CUDA": "12"}, None, "12.0", "sets the maximum CUDA version to 12.0"),
        (
            {"CONDA_OVERRIDE_CUDA": ""},
            None,
            None,
            "CONDA_OVERRIDE_CUDA is empty: planning as if there were no CUDA driver",
        ),
        ({"CONDA_OVERRIDE_CUDA": "11.8"}, "12.1", "12.1", "--cuda '12.1' wins over"),
        ({"CONDA_OVERRIDE_CUDA": "garbage"}, "12.1", "12.1", "--cuda '12.1' wins over"),
        ({}, "", None, "--cuda is empty"),
    ],
    ids=["env", "env-major", "env-empty", "flag-wins", "flag-wins-over-invalid-env", "flag-empty"],
)
def test_overrides(
    fake_nvml: Any,
    tmp_path: Path,
    environ: dict[str, str],
    cuda_override: str | None,
    expected: str | None,
    phrase: str,
) -> None:
    found = detect(
        environ=environ,
        cuda_override=cuda_override,
        run=NO_SMI,
        proc_version_path=missing_proc(tmp_path),
        nvml_library=fake_nvml(),
    )
    assert (found.source, found.cuda_version) == ("override", expected)
    # The machine itself is still reported.
    assert found.driver_version == "550.54.15"
    assert [gpu.name for gpu in found.gpus] == [H100]
    assert any(phrase in note for note in found.notes)


def test_invalid_override_raises_before_probing(tmp_path: Path) -> None:
    runner = FakeRunner()
    with pytest.raises(UsageError, match="CONDA_OVERRIDE_CUDA='twelve'"):
        detect(
            environ={"CONDA_OVERRIDE_CUDA": "twelve"},
            run=runner,
            proc_version_path=missing_proc(tmp_path),
            nvml_library=str(tmp_path / "none.so"),
        )
    assert runner.calls == []


def test_invalid_flag_raises(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--cuda 'x'"):
        detect(environ={}, cuda_override="x", run=NO_SMI, proc_version_path=missing_proc(tmp_path))


# --- nvidia-smi fallback (NVML absent) --------------------------------------------


def no_nvml(tmp_path: Path) -> str:
    return str(tmp_path / "absent" / "libnvidia-ml.so.1")


def test_nvidia_smi_fallback(tmp_path: Path) -> None:
    runner = FakeRunner(
        {
            "--query-gpu": Answer(
                stdout="0, NVIDIA A100-SXM4-40GB, GPU-f, 8.0, 40960, 535.183.01\n"
                "1, NVIDIA A100-SXM4-40GB, GPU-g, 8.0, 40960, 535.183.01\n"
            ),
            "nvidia-smi": Answer(stdout=SMI_HEADER.replace("12.4", "12.2")),
        }
    )
    found = detect(
        environ={"PATH": "/bin"},
        run=runner,
        proc_version_path=missing_proc(tmp_path),
        nvml_library=no_nvml(tmp_path),
    )
    assert (found.source, found.driver_version, found.cuda_version) == (
        "nvidia-smi",
        "535.183.01",
        "12.2",
    )
    assert found.gpus == (
        Gpu(0, "NVIDIA A100-SXM4-40GB", "GPU-f", "8.0", 40960),
        Gpu(1, "NVIDIA A100-SXM4-40GB", "GPU-g", "8.0", 40960),
    )
    assert runner.calls == [
        [
            "nvidia-smi",
            "--query-gpu=index,name,uuid,compute_cap,memory.total,driver_version",
            "--format=csv,noheader,nounits",
        ],
        ["nvidia-smi"],
    ]


def test_old_nvidia_smi_without_compute_cap(tmp_path: Path) -> None:
    class OldSmi(FakeRunner):
        def __call__(self, argv: list[str], **kwargs: Any) -> Answer:
            self.calls.append(list(argv))
            query = argv[1] if len(argv) > 1 else None
            if query is not None and "compute_cap" in query:
                return Answer(2, 'Field "compute_cap" is not a valid field to query.\n')
            if query is not None:
                return Answer(stdout="0, Tesla V100-SXM2-16GB, GPU-h, 16160, 470.82.01\n")
            return Answer(stdout=SMI_HEADER.replace("12.4", "11.4"))

    runner = OldSmi()
    found = detect(
        environ={},
        run=runner,
        proc_version_path=missing_proc(tmp_path),
        nvml_library=no_nvml(tmp_path),
    )
    assert (found.source, found.cuda_version) == ("nvidia-smi", "11.4")
    assert found.gpus == (Gpu(0, "Tesla V100-SXM2-16GB", "GPU-h", None, 16160),)
    assert any("too old to report compute capabilities" in note for note in found.notes)
    assert len(runner.calls) == 3


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (
            Answer(
                9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
            ),
            "nvidia-smi failed (exit 9): NVIDIA-SMI has failed",
        ),
        (subprocess.TimeoutExpired(["nvidia-smi"], 15), "did not answer within 15 s"),
        (PermissionError(13, "Permission denied"), "nvidia-smi could not be run"),
        (Answer(0, ""), "nvidia-smi ran but listed no GPU"),
    ],
    ids=["driver-failure", "timeout", "not-executable", "no-rows"],
)
def test_nvidia_smi_failures_fall_through_to_proc(tmp_path: Path, answer: Any, phrase: str) -> None:
    proc = tmp_path / "version"
    proc.write_text(PROPRIETARY)
    found = detect(
        environ={},
        run=FakeRunner({"--query-gpu": answer}),
        proc_version_path=str(proc),
        nvml_library=no_nvml(tmp_path),
    )
    assert (found.source, found.driver_version, found.gpus) == ("proc", "550.54.15", ())
    assert any(phrase in note for note in found.notes), found.notes


def test_nothing_found(tmp_path: Path) -> None:
    found = detect(
        environ={},
        run=NO_SMI,
        proc_version_path=missing_proc(tmp_path),
        nvml_library=no_nvml(tmp_path),
    )
    assert found.to_dict() == {
        "schema": 1,
        "hostname": found.hostname,
        "platform": found.platform,
        "glibc": found.glibc,
        "osx": found.osx,
        "driver_version": None,
        "cuda_version": None,
        "cuda_arch": None,
        "source": "none",
        "gpus": [],
        "notes": list(found.notes),
    }
    assert len(found.notes) == 3
    assert "not present (no NVIDIA kernel module is loaded)" in found.notes[2]


def test_unreadable_proc(tmp_path: Path) -> None:
    found = detect(
        environ={},
        run=NO_SMI,
        proc_version_path=str(tmp_path),  # a folder
        nvml_library=no_nvml(tmp_path),
    )
    assert found.source == "none"
    assert any("cannot be read" in note for note in found.notes)
