"""doctor.diagnose on installed environments written the way rattler/conda write them.

The environments come from ``support.prefixes`` (``conda-meta/*.json`` records
and the files they list: the system boundary the doctor reads). The machine is
a ``Machine`` value, as ``detect()`` returns it; the CLI tests
(test_cli_doctor.py) get it from the fake NVML driver instead. ``--run`` uses
the shim python and fake ``torch`` of ``support.prefixes.fake_torch``, so the
doctor's real probe script runs against it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from support.prefixes import (
    CONDA_FORGE,
    PLATFORM,
    conda_forge_env,
    fake_torch,
    make_prefix,
    on_linux_64,
    pip_dist_info,
    posix_only,
    python_record,
    pytorch_channel_env,
    record,
)

from conda_torch_plugin.doctor import NotAnEnvironment, diagnose
from conda_torch_plugin.machine.model import Gpu, Machine
from conda_torch_plugin.recipes import load_recipes

if TYPE_CHECKING:
    from pathlib import Path

    from conda_torch_plugin.doctor import DoctorReport, Finding

H100 = ("NVIDIA H100 80GB HBM3", "9.0")
RTX5090 = ("NVIDIA GeForce RTX 5090", "12.0")
A6000 = ("NVIDIA RTX A6000", "8.6")


def machine(*gpus: tuple[str, str], driver: str = "550.54.15", cuda: str = "12.4") -> Machine:
    return Machine(
        driver_version=driver,
        cuda_version=cuda,
        source="nvml",
        gpus=tuple(Gpu(i, name, f"GPU-{i}", cc, 81559) for i, (name, cc) in enumerate(gpus)),
    )


NO_DRIVER = Machine(None, None, "none", (), ("NVML: libnvidia-ml.so.1 not found",))


@pytest.fixture(scope="module")
def recipes():
    return load_recipes()


def run_doctor(prefix: Path, recipes, detection: Machine | None, **kwargs: Any) -> DoctorReport:
    # user_base is pinned so the developer's own ~/.local cannot change a verdict.
    kwargs.setdefault("user_base", prefix.parent / "no-user-site")
    return diagnose(prefix, detection=detection, recipes=recipes, **kwargs)


def by_check(report: DoctorReport, check: str) -> list[Finding]:
    return [f for f in report.findings if f.check == check]


def errors(report: DoctorReport) -> list[Finding]:
    return [f for f in report.findings if f.severity == "error"]


def severities(report: DoctorReport) -> set[str]:
    return {f.severity for f in report.findings}


# -- healthy environments ----------------------------------------------------------------


@on_linux_64
def test_healthy_cuda_environment_on_a_covering_gpu(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, machine(H100, A6000))

    assert report.ok
    assert severities(report) == {"ok"}, [f for f in report.findings if f.severity != "ok"]
    assert (report.flavour.compute, report.flavour.cuda) == ("cuda", "12.4")
    assert report.flavour.channel_style == "pytorch"
    assert report.platform == PLATFORM
    gpu = by_check(report, "gpu")
    assert [f.severity for f in gpu] == ["ok", "ok"]
    assert "sm_90 cubin" in gpu[0].message
    assert "sm_86 cubin" in gpu[1].message
    assert all(f.fix is None for f in report.findings)
    data = report.to_dict()
    assert data["ok"] is True
    assert data["flavour"]["cuda"] == "12.4"
    assert data["packages"]["pytorch"] == "2.5.1 py3.12_cuda12.4_cudnn9.1.0_0"
    json.dumps(data)  # serialisable as it is


@on_linux_64
@pytest.mark.parametrize(("glibc", "flagged"), [("2.17", True), ("2.28", False), ("2.39", False)])
def test_packages_built_for_a_newer_glibc_than_this_machine(
    tmp_path: Path, recipes, glibc, flagged
) -> None:
    """An environment made on another node: its conda-forge builds need glibc 2.28."""
    records = conda_forge_env("13.0")
    records.append(
        record(
            "libcudnn",
            "9.10.1.4",
            "h0123456_0",
            channel=CONDA_FORGE,
            depends=("__glibc >=2.28,<3.0.a0", "cuda-version >=13,<14.0a0"),
        )
    )
    prefix = make_prefix(tmp_path / "env", records)
    node = replace(
        machine(RTX5090, driver="580.65.06", cuda="13.0"), platform=PLATFORM, glibc=glibc
    )
    report = run_doctor(prefix, recipes, node)
    found = by_check(report, "glibc")
    if flagged:
        (finding,) = found
        assert finding.severity == "error" and not report.ok
        assert f"glibc {glibc} is older than the 2.28 this build needs" in finding.message
    else:
        assert found == []


@on_linux_64
def test_healthy_conda_forge_environment_on_blackwell(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", conda_forge_env("12.9"))
    report = run_doctor(prefix, recipes, machine(RTX5090, driver="575.51.03", cuda="12.9"))

    assert severities(report) == {"ok"}, [f for f in report.findings if f.severity != "ok"]
    assert report.flavour.channel_style == "conda-forge"
    assert "sm_120 cubin" in by_check(report, "gpu")[0].message


def test_cpu_environment_without_a_driver(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(None))
    report = run_doctor(prefix, recipes, NO_DRIVER)

    assert report.ok
    assert severities(report) == {"ok"}
    assert report.flavour.compute == "cpu"
    assert by_check(report, "pytorch-mutex")[0].message == "pytorch-mutex 1.0 cpu agrees"


@on_linux_64
def test_cpu_environment_on_a_gpu_machine_says_the_gpu_is_unused(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(None))
    report = run_doctor(prefix, recipes, machine(H100))

    assert report.ok
    (gpu,) = by_check(report, "gpu")
    assert gpu.severity == "info"
    assert "will not use the 1 NVIDIA GPU" in gpu.message
    assert gpu.fix == f"for a CUDA build: conda torch-env create -p {prefix}"


# -- the torch family disagrees ----------------------------------------------------------


def test_cpu_torchvision_next_to_cuda_pytorch(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(
        tmp_path / "env", pytorch_channel_env("12.4", torchvision=("0.20.1", "py312_cpu"))
    )
    report = run_doctor(prefix, recipes, None)

    assert not report.ok
    (error,) = errors(report)
    assert error.check == "torchvision"
    assert "CPU build (py312_cpu)" in error.message
    assert "CUDA 12.4 build of pytorch" in error.message
    assert error.fix == (
        f"conda install -p {prefix} -c pytorch -c nvidia 'torchvision=0.20.1=*_cu124'"
    )
    assert by_check(report, "torchaudio")[0].severity == "ok"


def test_torchaudio_for_another_cuda(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(
        tmp_path / "env", pytorch_channel_env("12.4", torchaudio=("2.5.1", "py312_cu121"))
    )
    report = run_doctor(prefix, recipes, None)

    (error,) = errors(report)
    assert error.check == "torchaudio"
    assert "built for CUDA 12.1" in error.message and "pytorch for CUDA 12.4" in error.message
    assert error.fix.endswith("'torchaudio=2.5.1=*_cu124'")


def test_torchvision_of_another_release(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(torchvision=("0.19.1", "auto")))
    report = run_doctor(prefix, recipes, None)

    (error,) = errors(report)
    assert error.check == "torchvision"
    assert "not the release paired with pytorch 2.5.1 (that is torchvision 0.20.1)" in error.message
    assert "'torchvision=0.20.1=*_cu124'" in error.fix


def test_companions_missing_are_only_information(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(torchvision=None, torchaudio=None))
    report = run_doctor(prefix, recipes, None)

    assert report.ok
    assert [f.severity for f in by_check(report, "torchvision")] == ["info"]
    assert [f.severity for f in by_check(report, "torchaudio")] == ["info"]


def test_torchvision_from_conda_forge_next_to_pytorch_channel_pytorch(
    tmp_path: Path, recipes
) -> None:
    cf_vision = record("torchvision", "0.20.1", "cuda126_py312_h89abcde_0", channel=CONDA_FORGE)
    prefix = make_prefix(
        tmp_path / "env", pytorch_channel_env(torchvision=None, extra=(cf_vision,))
    )
    report = run_doctor(prefix, recipes, None)

    checks = {f.check: f for f in errors(report)}
    assert "channels" in checks
    assert (
        "the conda-forge channel but pytorch from the pytorch channel" in checks["channels"].message
    )
    # and its CUDA differs too (12.6 vs 12.4)
    assert "built for CUDA 12.6" in checks["torchvision"].message


@pytest.mark.parametrize(
    ("mutex", "severity", "words"),
    [
        ("cpu", "error", "pytorch-mutex is 'cpu' but pytorch is a CUDA 12.4 build"),
        (None, "warning", "pytorch-mutex is missing"),
    ],
    ids=["cpu-mutex-with-cuda-build", "no-mutex"],
)
def test_pytorch_mutex(tmp_path: Path, recipes, mutex, severity, words) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4", mutex=mutex))
    report = run_doctor(prefix, recipes, None)

    (finding,) = by_check(report, "pytorch-mutex")
    assert finding.severity == severity
    assert words in finding.message
    assert finding.fix == f"conda install -p {prefix} -c pytorch -c nvidia pytorch-mutex=1.0=cuda"


def test_cuda_build_without_pytorch_cuda(tmp_path: Path, recipes) -> None:
    records = [r for r in pytorch_channel_env("12.4") if r["name"] != "pytorch-cuda"]
    report = run_doctor(make_prefix(tmp_path / "env", records), recipes, None)

    (error,) = errors(report)
    assert error.check == "pytorch-cuda"
    assert "CUDA runtime libraries are missing" in error.message
    assert error.fix.endswith("pytorch-cuda=12.4")


def test_conda_forge_cpu_marker_next_to_a_cuda_build(tmp_path: Path, recipes) -> None:
    extra = record("pytorch-cpu", "2.10.0", "cpu_mkl_h1_303", channel=CONDA_FORGE)
    prefix = make_prefix(tmp_path / "env", [*conda_forge_env("12.9"), extra])
    report = run_doctor(prefix, recipes, None)

    (error,) = errors(report)
    assert error.check == "pytorch-cpu"
    assert error.fix == f"conda remove -p {prefix} pytorch-cpu"


def test_conda_forge_cuda_version_of_another_major(tmp_path: Path, recipes) -> None:
    records = [
        record("cuda-version", "13.0", "h1_3", channel=CONDA_FORGE)
        if r["name"] == "cuda-version"
        else r
        for r in conda_forge_env("12.9")
    ]
    report = run_doctor(make_prefix(tmp_path / "env", records), recipes, None)

    (error,) = errors(report)
    assert error.check == "cuda-version"
    assert error.fix.endswith("cuda-version=12.9")


@pytest.mark.parametrize(
    ("mkl", "severity"),
    [("2024.1.0", "error"), ("2023.1.0", "ok")],
    ids=["mkl-2024.1-breaks", "mkl-2023.1-fine"],
)
def test_mkl_guard_of_the_pytorch_channel(tmp_path: Path, recipes, mkl, severity) -> None:
    records = [
        record("mkl", mkl, "h1_0", channel=CONDA_FORGE) if r["name"] == "mkl" else r
        for r in pytorch_channel_env("12.4")
    ]
    report = run_doctor(make_prefix(tmp_path / "env", records), recipes, None)

    (guard,) = by_check(report, "guard")
    assert guard.severity == severity
    if severity == "error":
        assert "iJIT_NotifyEvent" in guard.message
        assert guard.fix == f"conda install -p {tmp_path / 'env'} 'mkl<2024.1'"


def test_unrecognised_pytorch_build(tmp_path: Path, recipes) -> None:
    records = [
        record("pytorch", "2.5.1", "h1234567_0") if r["name"] == "pytorch" else r
        for r in pytorch_channel_env("12.4")
    ]
    report = run_doctor(make_prefix(tmp_path / "env", records), recipes, machine(H100))

    assert report.ok
    (torch,) = by_check(report, "pytorch")
    assert torch.severity == "warning"
    assert "cannot tell its flavour from build 'h1234567_0'" in torch.message
    assert not by_check(report, "torchvision") and not by_check(report, "gpu")


def test_no_pytorch_at_all(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", [python_record()])
    report = run_doctor(prefix, recipes, machine(H100))

    assert not report.ok
    assert report.flavour is None
    (error,) = errors(report)
    assert error.message == f"conda installed no pytorch in {prefix}"


def test_unreadable_record_is_a_warning_not_a_crash(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(None))
    (prefix / "conda-meta" / "broken-1.0-0.json").write_text("{not json")
    report = run_doctor(prefix, recipes, None)

    assert report.ok
    (warning,) = by_check(report, "conda-meta")
    assert warning.severity == "warning"
    assert "broken-1.0-0.json cannot be read" in warning.message


# -- this machine ------------------------------------------------------------------------


@on_linux_64
def test_driver_too_old_for_the_build(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, machine(A6000, driver="470.82.01", cuda="11.4"))

    assert not report.ok
    (driver,) = by_check(report, "driver")
    assert driver.severity == "error"
    assert "driver 470.82.01 (CUDA 11.4) cannot run this CUDA 12.4 environment" in driver.message
    assert driver.fix.startswith("upgrade the NVIDIA driver to 550.54.14 or newer")
    assert driver.fix.endswith(f"conda torch-env create -p {prefix}")


@on_linux_64
def test_driver_of_an_older_minor_runs_it_through_minor_version_compatibility(
    tmp_path: Path, recipes
) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, machine(A6000, driver="535.104.05", cuda="12.2"))

    assert report.ok
    (driver,) = by_check(report, "driver")
    assert driver.severity == "warning"
    assert "minor-version compatibility" in driver.message
    assert driver.fix == "upgrade the NVIDIA driver to 550.54.14 or newer for full support"
    assert by_check(report, "gpu")[0].severity == "ok"  # sm_86 cubin, no JIT needed


@on_linux_64
def test_driver_below_the_minor_compat_minimum(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, machine(A6000, driver="520.61.05", cuda="12.0"))

    (driver,) = by_check(report, "driver")
    assert driver.severity == "error"
    assert "525.60.13" in driver.message


@on_linux_64
def test_cuda_environment_on_a_machine_without_a_driver(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, NO_DRIVER)

    assert report.ok  # torch still imports and runs on the CPU
    (driver,) = by_check(report, "driver")
    assert driver.severity == "warning"
    assert "runs on the CPU only" in driver.message
    assert driver.detail == "NVML: libnvidia-ml.so.1 not found"


@on_linux_64
def test_blackwell_gpu_not_covered_by_the_pytorch_channel_build(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, machine(H100, RTX5090, driver="570.124.06", cuda="12.8"))

    assert not report.ok
    h100, rtx = by_check(report, "gpu")
    assert h100.severity == "ok"
    assert rtx.severity == "error"
    assert "GPU 1 NVIDIA GeForce RTX 5090 (compute capability 12.0) is not covered" in rtx.message
    assert "sm_90a" in rtx.message
    assert rtx.fix == f"conda torch-env create -p {prefix} --source conda-forge"


@on_linux_64
def test_cuda_environment_with_a_driver_but_no_gpu(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, machine())

    assert report.ok
    assert [f.severity for f in by_check(report, "driver")] == ["ok"]
    (gpu,) = by_check(report, "gpu")
    assert gpu.severity == "warning"
    assert gpu.message == (
        "the NVIDIA driver reports no GPU: this CUDA 12.4 build runs on the CPU only here"
    )


def test_machine_not_checked_without_a_detection(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, None)

    (driver,) = by_check(report, "driver")
    assert driver.severity == "info"
    assert not by_check(report, "gpu")


# -- pip ---------------------------------------------------------------------------------


def test_conda_owned_metadata_is_not_pip(tmp_path: Path, recipes) -> None:
    for env, records in (("pt", pytorch_channel_env("12.4")), ("cf", conda_forge_env("12.9"))):
        report = run_doctor(make_prefix(tmp_path / env, records), recipes, None)
        assert [(f.severity, f.message) for f in by_check(report, "pip")] == [
            ("ok", "no pip-installed torch shadows conda's")
        ]


@pytest.mark.parametrize(
    ("version", "severity"),
    [("2.6.0+cu126", "error"), ("2.5.1", "warning")],
    ids=["other-version", "same-version"],
)
def test_pip_torch_next_to_conda_pytorch(tmp_path: Path, recipes, version, severity) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    pip_dist_info(prefix, version)
    report = run_doctor(prefix, recipes, None)

    (pip,) = by_check(report, "pip")
    assert pip.severity == severity
    assert f"torch {version} installed by pip" in pip.message
    assert "shadows conda's pytorch 2.5.1" in pip.message
    assert pip.fix.startswith(f"{prefix / 'bin' / 'python'} -m pip uninstall torch, then ")
    # The very build, from the channel it came from: a bare `pytorch=2.5.1` could pick
    # another channel's or a CPU build.
    assert pip.fix.endswith(
        f"conda install -p {prefix} --force-reinstall pytorch::pytorch=2.5.1="
        "py3.12_cuda12.4_cudnn9.1.0_0"
    )


def test_conda_metadata_rewritten_by_pip(tmp_path: Path, recipes) -> None:
    """conda-forge ships torch-X.dist-info; pip overwriting it leaves a conda-owned folder
    whose name says another version."""
    records = conda_forge_env("12.9")
    for rec in records:
        if rec["name"] == "pytorch":
            rec["files"] = [f.replace("2.10.0", "2.11.0") for f in rec["files"]]
    report = run_doctor(make_prefix(tmp_path / "env", records), recipes, None)

    (pip,) = by_check(report, "pip")
    assert pip.severity == "error"
    assert "says torch 2.11.0 but conda installed pytorch 2.10.0" in pip.message


def test_torch_in_the_user_site_packages(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    user_base = tmp_path / "home" / ".local"
    (user_base / "lib" / "python3.12" / "site-packages" / "torch").mkdir(parents=True)
    report = run_doctor(prefix, recipes, None, user_base=user_base)

    (pip,) = by_check(report, "pip")
    assert pip.severity == "error"
    assert "(user site-packages) is imported before the environment's pytorch 2.5.1" in pip.message
    assert "PYTHONNOUSERSITE=1" in pip.fix


# -- not an environment --------------------------------------------------------------------


def test_folder_without_conda_meta(tmp_path: Path, recipes) -> None:
    (tmp_path / "lib").mkdir()
    with pytest.raises(NotAnEnvironment) as raised:
        run_doctor(tmp_path, recipes, None)
    assert str(raised.value) == (
        f"{tmp_path} is not a conda environment: it has no conda-meta/ folder"
    )
    assert raised.value.hints


def test_missing_folder(tmp_path: Path, recipes) -> None:
    with pytest.raises(NotAnEnvironment, match="does not exist"):
        run_doctor(tmp_path / "nope", recipes, None)


# -- --run ---------------------------------------------------------------------------------


@posix_only
def test_run_on_a_gpu(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix)
    report = run_doctor(prefix, recipes, None, run_python=True)

    assert report.ok
    run = [f.message for f in by_check(report, "run")]
    assert run[0] == "python imports torch 2.5.1 from the environment"
    assert run[1] == "torch.version.cuda is 12.4"
    assert run[2].startswith("torch.cuda.is_available() is True; arch list sm_50 sm_60")
    assert run[3] == "cuda:0 NVIDIA H100 80GB HBM3 (compute capability 9.0) runs it: sm_90 cubin"
    (op,) = by_check(report, "gpu-op")
    assert (op.severity, op.message) == (
        "ok", "GPU operation on cuda: (ones(2,2) @ ones(2,2)).sum() = 8.0"
    )  # fmt: skip
    assert report.runtime["devices"] == [
        {"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    ]
    assert report.to_dict()["runtime"]["gpu_op"] == {"device": "cuda", "value": 8.0, "ok": True}


@posix_only
def test_run_without_a_gpu_skips_the_gpu_operation(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix, available=False, devices=[])
    report = run_doctor(prefix, recipes, NO_DRIVER, run_python=True)

    assert report.ok
    assert by_check(report, "gpu-op") == []
    skipped = by_check(report, "run")[-1]
    assert (skipped.severity, skipped.message) == (
        "info", "GPU operation skipped: no NVIDIA GPU is usable here"
    )  # fmt: skip
    assert report.runtime["gpu_op"] is None


@posix_only
def test_run_cpu_build_skips_the_gpu_operation(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(None))
    fake_torch(prefix, cuda=None, available=False, devices=[])
    report = run_doctor(prefix, recipes, NO_DRIVER, run_python=True)

    assert report.ok
    assert by_check(report, "run")[-1].message == "GPU operation skipped: a CPU build"


@posix_only
def test_run_cuda_unavailable_although_gpus_are_there(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix, available=False, devices=[])
    report = run_doctor(prefix, recipes, machine(H100), run_python=True)

    assert not report.ok
    assert any(
        "torch.cuda.is_available() is False although this machine has 1 NVIDIA GPU(s)" in f.message
        for f in errors(report)
    )


@posix_only
def test_run_kernel_image_missing(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(
        prefix,
        devices=[["NVIDIA GeForce RTX 5090", [12, 0]]],
        op_error="CUDA error: no kernel image is available for execution on the device",
    )
    report = run_doctor(prefix, recipes, None, run_python=True)

    failures = {f.check: f for f in errors(report)}
    assert "is not covered by torch.cuda.get_arch_list()" in failures["run"].message
    assert failures["run"].fix == f"conda torch-env create -p {prefix} --source conda-forge"
    assert "no kernel image is available" in failures["gpu-op"].message
    assert failures["gpu-op"].fix == f"conda torch-env create -p {prefix} --source conda-forge"


@posix_only
def test_run_import_failure(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(
        prefix,
        import_error="/env/lib/libtorch_cpu.so: undefined symbol: iJIT_NotifyEvent",
    )
    report = run_doctor(prefix, recipes, None, run_python=True)

    assert not report.ok
    assert report.runtime is None
    (failure,) = by_check(report, "run")
    assert failure.severity == "error"
    assert failure.message == (
        "--run: `import torch` failed: ImportError: "
        "/env/lib/libtorch_cpu.so: undefined symbol: iJIT_NotifyEvent"
    )
    assert failure.fix == f"pin mkl below 2024.1: conda install -p {prefix} 'mkl<2024.1'"
    assert "Traceback" in failure.detail


@posix_only
@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "kill -SEGV $$",
            "--run: python crashed (signal 11) while importing or using torch: no output",
        ),
        (
            "echo 'Illegal instruction' >&2; exit 132",
            "--run: the probe failed (exit status 132): Illegal instruction",
        ),
        ("echo hello", "--run: the probe failed (exit status 0): no output"),
    ],
    ids=["segfault", "exit-status", "no-result"],
)
def test_run_python_that_dies(tmp_path: Path, recipes, script: str, message: str) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    python = prefix / "bin" / "python"
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(0o755)
    report = run_doctor(prefix, recipes, None, run_python=True)

    (failure,) = by_check(report, "run")
    assert (failure.severity, failure.message) == ("error", message)


@posix_only
def test_run_timeout(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix, sleep=30)
    report = run_doctor(prefix, recipes, None, run_python=True, timeout_s=1)

    (failure,) = by_check(report, "run")
    assert failure.severity == "error"
    assert failure.message == "--run: `import torch` and the checks did not finish within 1 s"


@posix_only
def test_run_imports_a_pip_torch(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix, version="2.6.0+cu126", cuda="12.6")
    report = run_doctor(prefix, recipes, None, run_python=True)

    (origin,) = [f for f in by_check(report, "run") if f.severity == "error"]
    assert origin.message == "python imports torch 2.6.0+cu126, not conda's pytorch 2.5.1"


@posix_only
@pytest.mark.parametrize(
    ("cuda", "words"),
    [
        (None, "the imported torch is a CPU build"),
        ("11.8", "the imported torch is built for CUDA 11.8"),
    ],
    ids=["cpu-torch", "other-cuda"],
)
def test_run_torch_version_cuda_disagrees(tmp_path: Path, recipes, cuda, words) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix, cuda=cuda, available=False, devices=[])
    report = run_doctor(prefix, recipes, None, run_python=True)

    (error,) = errors(report)
    assert words in error.message
    assert "conda's pytorch is a CUDA 12.4 build" in error.message


def test_run_without_python(tmp_path: Path, recipes) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = run_doctor(prefix, recipes, None, run_python=True)

    (failure,) = by_check(report, "run")
    assert failure.severity == "error"
    assert "the environment has no python" in failure.message
