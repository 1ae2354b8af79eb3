"""`python -m conda_torch_plugin doctor` in a subprocess, on machines made of the fake NVML driver.

The environments are the conda-meta prefixes of ``support.prefixes``; the machine
is whatever the fake ``libnvidia-ml.so.1`` says, read through the real pynvml. Every
run gets an empty user site-packages (``PYTHONUSERBASE``), so a torch in the
developer's ~/.local cannot change a verdict.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from support.cli import run_cli, run_cli_json
from support.prefixes import (
    conda_forge_env,
    fake_torch,
    make_prefix,
    on_linux_64,
    pip_dist_info,
    posix_only,
    pytorch_channel_env,
)

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from pathlib import Path

H100 = ("NVIDIA H100 80GB HBM3", "9.0", 81559)
A6000 = ("NVIDIA RTX A6000", "8.6", 49140)
RTX5090 = ("NVIDIA GeForce RTX 5090", "12.0", 32607)


def run_doctor(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("doctor", *args, env=env, cwd=cwd)


def doctor_json(env: dict[str, str], *args: str, status: int) -> dict[str, Any]:
    return run_cli_json("doctor", "--json", *args, env=env, status=status)


@pytest.fixture
def machine(fake_nvml_env: Callable[..., dict[str, str]], tmp_path: Path):
    """``machine(**fake_nvml_args)``: the fake driver's env, with an empty user site-packages."""

    def make(**kwargs: Any) -> dict[str, str]:
        extra = kwargs.pop("extra", {})
        env = fake_nvml_env(**kwargs)
        env.pop("PYTHONNOUSERSITE", None)  # the doctor would skip the user site-packages
        return {**env, "PYTHONUSERBASE": str(tmp_path / "user-base"), **extra}

    return make


@on_linux_64
def test_healthy_cuda_environment(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    env = machine(gpus=(H100,), driver="550.54.15", cuda="12.4")

    result = run_doctor(env, "-p", str(prefix))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Environment   {prefix}"
    assert lines[1] == "PyTorch       2.5.1, CUDA 12.4 (pytorch build, linux-64)"
    assert lines[2] == "This machine  driver 550.54.15, CUDA 12.4, NVIDIA H100 80GB HBM3 (9.0)"
    assert "[ok]    driver 550.54.15 supports CUDA 12.4: enough for CUDA 12.4" in lines
    assert (
        "[ok]    GPU 0 NVIDIA H100 80GB HBM3 (compute capability 9.0) runs it: sm_90 cubin" in lines
    )
    assert not any(line.startswith(("[error]", "[warn]")) for line in lines)
    assert lines[-1].startswith("Healthy: ")

    report = doctor_json(env, "-p", str(prefix), status=0)
    assert report["ok"] is True
    assert report["flavour"]["label"] == "CUDA 12.4"
    assert report["machine"]["gpus"][0]["compute_capability"] == "9.0"
    assert {f["severity"] for f in report["findings"]} == {"ok"}


def test_cpu_environment(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(None))
    report = doctor_json(machine(gpus=()), "-p", str(prefix), status=0)

    assert report["flavour"]["compute"] == "cpu"
    assert report["ok"] is True
    assert {f["severity"] for f in report["findings"]} == {"ok"}


def test_cpu_torchvision_next_to_cuda_pytorch(machine, tmp_path: Path) -> None:
    prefix = make_prefix(
        tmp_path / "env", pytorch_channel_env("12.4", torchvision=("0.20.1", "py312_cpu"))
    )
    result = run_doctor(machine(gpus=(H100,)), "-p", str(prefix))

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    index = lines.index(
        "[error] torchvision 0.20.1 is a CPU build (py312_cpu) next to a CUDA 12.4 build of pytorch"
    )
    assert lines[index + 1] == (
        f"        fix: conda install -p {prefix} -c pytorch -c nvidia 'torchvision=0.20.1=*_cu124'"
    )
    assert lines[-1] == "Broken: 1 error(s), 8 ok. Fix the errors above."


def test_torchaudio_of_another_cuda(machine, tmp_path: Path) -> None:
    prefix = make_prefix(
        tmp_path / "env", pytorch_channel_env("12.4", torchaudio=("2.5.1", "py312_cu118"))
    )
    report = doctor_json(machine(gpus=(H100,)), "-p", str(prefix), status=1)

    (error,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert error["check"] == "torchaudio"
    assert "built for CUDA 11.8" in error["message"]


@on_linux_64
@pytest.mark.parametrize(
    ("driver", "cuda", "status", "severity"),
    [("470.82.01", "11.4", 1, "error"), ("535.104.05", "12.2", 0, "warning")],
    ids=["driver-too-old", "minor-version-compat"],
)
def test_driver_against_the_build(machine, tmp_path: Path, driver, cuda, status, severity) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    report = doctor_json(machine(gpus=(A6000,), driver=driver, cuda=cuda), "-p", str(prefix),
                         status=status)  # fmt: skip

    (finding,) = [f for f in report["findings"] if f["check"] == "driver"]
    assert finding["severity"] == severity
    assert "550.54.14" in finding["fix"]


@on_linux_64
def test_blackwell_gpu_needs_conda_forge(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    env = machine(gpus=(RTX5090,), driver="575.51.03", cuda="12.9")
    report = doctor_json(env, "-p", str(prefix), status=1)

    (gpu,) = [f for f in report["findings"] if f["check"] == "gpu"]
    assert gpu["severity"] == "error"
    assert "compute capability 12.0" in gpu["message"]
    assert gpu["fix"] == f"conda torch-env create -p {prefix} --source conda-forge"

    # ... and the conda-forge environment that fix leads to is healthy on it.
    fixed = make_prefix(tmp_path / "cf", conda_forge_env("12.9"))
    report = doctor_json(env, "-p", str(fixed), status=0)
    assert not [f for f in report["findings"] if f["severity"] != "ok"]


def test_pip_torch_shadowing(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    pip_dist_info(prefix, "2.6.0+cu126")
    result = run_doctor(machine(gpus=(H100,)), "-p", str(prefix))

    assert result.returncode == 1
    assert (
        "[error] torch 2.6.0+cu126 installed by pip "
        "(lib/python3.12/site-packages/torch-2.6.0+cu126.dist-info) shadows conda's pytorch 2.5.1"
        in result.stdout
    )


def test_user_site_torch_found_through_pythonuserbase(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    (tmp_path / "user-base" / "lib" / "python3.12" / "site-packages" / "torch").mkdir(parents=True)
    report = doctor_json(machine(gpus=(H100,)), "-p", str(prefix), status=1)

    (pip,) = [f for f in report["findings"] if f["check"] == "pip"]
    assert "user site-packages" in pip["message"]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_not_a_conda_environment(machine, tmp_path: Path, as_json: bool) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    result = run_doctor(machine(), "-p", str(folder), *(["--json"] if as_json else []))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: {folder} is not a conda environment: it has no conda-meta/ folder" in (
        result.stderr
    )
    if as_json:
        assert json.loads(result.stdout)["error"] == "NotAnEnvironment"
    # create refuses a folder that is neither empty nor an environment: never suggest it.
    assert f"create -p {folder}" not in result.stderr


def test_name_resolves_in_the_default_envs_folder(machine, tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    make_prefix(envs / "torch", pytorch_channel_env(None))
    env = machine(gpus=(), extra={"CONDA_TORCH_ENV_ENVS_DIR": str(envs)})

    report = doctor_json(env, "-n", "torch", status=0)
    assert report["prefix"] == str((envs / "torch").resolve())


def test_unknown_name(machine, tmp_path: Path) -> None:
    env = machine(extra={"CONDA_TORCH_ENV_ENVS_DIR": str(tmp_path / "envs")})
    result = run_doctor(env, "-n", "nope")

    assert result.returncode == 1
    assert f"error: no environment named 'nope' (looked in {tmp_path / 'envs'})" in result.stderr


def test_prefix_or_name_is_required(machine) -> None:
    result = run_doctor(machine())
    assert result.returncode == 2
    assert "one of the arguments -n/--name -p/--prefix is required" in result.stderr


@posix_only
@on_linux_64
def test_run_on_a_gpu(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix)
    result = run_doctor(machine(gpus=(H100,)), "-p", str(prefix), "--run")

    assert result.returncode == 0, result.stdout
    assert "[ok]    GPU operation on cuda: (ones(2,2) @ ones(2,2)).sum() = 8.0" in result.stdout


@posix_only
def test_run_without_a_gpu_is_skipped(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env(None))
    fake_torch(prefix, cuda=None, available=False, devices=[])
    report = doctor_json(machine(gpus=()), "-p", str(prefix), "--run", status=0)

    assert report["runtime"]["cuda_available"] is False
    assert report["runtime"]["gpu_op"] is None
    assert {"severity": "info", "message": "GPU operation skipped: a CPU build"}.items() <= (
        report["findings"][-1].items()
    )


@posix_only
def test_run_import_failure(machine, tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env", pytorch_channel_env("12.4"))
    fake_torch(prefix, import_error="libtorch_cuda.so: cannot open shared object file")
    result = run_doctor(machine(gpus=(H100,)), "-p", str(prefix), "--run")

    assert result.returncode == 1
    assert (
        "[error] --run: `import torch` failed: ImportError: "
        "libtorch_cuda.so: cannot open shared object file" in result.stdout
    )
    assert "        | Traceback (most recent call last):" in result.stdout


# -- environments installed by the installer from real packages ---------------------------


@pytest.fixture(scope="module")
def installed(package_channels, tmp_path_factory):
    """``installed(kind)``: a prefix installed by rattler from a lock of the test channels."""
    from support.packages import solved_lock

    from conda_torch_plugin.install import install_from_lock

    specs = {
        "cuda": ("pytorch=2.5.1", "torchvision", "torchaudio", "pytorch-cuda=12.4", "python=3.12"),
        "cpu": ("pytorch=2.5.1", "torchvision", "torchaudio", "cpuonly", "python=3.12"),
    }
    root = tmp_path_factory.mktemp("installed")
    made: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in made:
            cuda = "12.4" if kind == "cuda" else None
            lock = solved_lock(package_channels, specs[kind], cuda=cuda)
            made[kind] = root / kind
            install_from_lock(lock, "linux-64", made[kind], cache_dir=root / "cache",
                              command="test")  # fmt: skip
        return made[kind]

    return get


@on_linux_64
@pytest.mark.parametrize(
    ("kind", "gpus", "driver", "cuda", "status", "bad"),
    [
        ("cuda", (H100,), "550.54.15", "12.4", 0, []),
        ("cuda", (A6000,), "470.82.01", "11.4", 1, ["driver"]),
        ("cuda", (RTX5090,), "575.51.03", "12.9", 1, ["gpu"]),
        ("cpu", (), "550.54.15", "12.4", 0, []),
    ],
    ids=["cuda-on-h100", "cuda-on-old-driver", "cuda-on-blackwell", "cpu-without-gpu"],
)
def test_verdict_on_installed_environments(
    installed, machine, kind, gpus, driver, cuda, status, bad
) -> None:
    prefix = installed(kind)
    report = doctor_json(machine(gpus=gpus, driver=driver, cuda=cuda), "-p", str(prefix),
                         status=status)  # fmt: skip

    assert report["flavour"]["compute"] == kind
    assert report["packages"]["pytorch"].startswith("2.5.1 ")
    assert [f["check"] for f in report["findings"] if f["severity"] == "error"] == bad
    assert not [f for f in report["findings"] if f["severity"] == "warning"]
    torchvision = next(f for f in report["findings"] if f["check"] == "torchvision")
    assert torchvision["severity"] == "ok"
