"""`conda-torch-env plan` end to end, with flags that describe the machine (no detection)."""

from __future__ import annotations

import json
import os

import pytest
from support.cli import run_cli, run_main


@pytest.fixture(autouse=True)
def _no_cuda_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_main(capsys, "plan", *argv)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--cuda", "12.4", "--gpu-arch", "8.6"],
            {
                "source": "pytorch",
                "pytorch": "2.5.1",
                "torchvision": "0.20.1",
                "torchaudio": "2.5.1",
                "python": "3.12",
                "compute": "cuda",
                "cuda": "12.4",
            },
        ),
        (
            ["--pytorch", "2.2", "--cuda", "12.1", "--gpu-arch", "8.6"],
            {"pytorch": "2.2.2", "torchvision": "0.17.2", "torchaudio": "2.2.2", "cuda": "12.1"},
        ),
        (
            ["--cpu"],
            {"source": "pytorch", "pytorch": "2.5.1", "compute": "cpu", "cuda": None},
        ),
        (
            ["--cuda", "12.8", "--gpu-arch", "12.0", "--gpu-arch", "8.6"],
            {
                "source": "conda-forge",
                "pytorch": "2.13.0",
                "cuda": "12.9",
                "channels": ["conda-forge"],
            },
        ),
    ],
    ids=["rtx3090", "pin-2.2", "cpu", "rtx5090-and-3090"],
)
def test_plan_json(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: dict[str, object]
) -> None:
    status, out, err = run(capsys, *argv, "--platform", "linux-64", "--json")
    assert status == 0, err
    data = json.loads(out)
    for key, value in expected.items():
        assert data[key] == value
    assert data["specs"][0] == f"python={data['python']}"
    assert data["reasons"] and isinstance(data["rejected"], list)
    assert [p["platform"] for p in data["platforms"]] == ["linux-64"]


def test_plan_text_explains(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys,
        "--cuda",
        "12.4",
        "--gpu-arch",
        "8.6",
        "--platform",
        "linux-64",
        "--platform",
        "win-64",
    )
    assert status == 0
    assert out.startswith("pytorch 2.5.1 (CUDA 12.4) from the pytorch channel")
    assert "channels: pytorch, nvidia, conda-forge" in out
    assert "    - pytorch-cuda=12.4" in out and "    - mkl<2024.1" in out
    assert "win-64 (CUDA 12.4; __cuda=12.4):" in out
    assert "Why:" in out and "GPU 0 (sm_86) runs the sm_86 cubin." in out


def test_plan_text_shows_warnings_and_rejections(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--cuda", "12.8", "--gpu-arch", "12.0", "--platform", "linux-64")
    assert status == 0
    assert "from conda-forge" in out
    assert "Warnings:\n  ! CUDA 12.9 build on a driver whose CUDA is 12.8" in out
    assert "Rejected (" in out and "more (--json lists all)" in out


def test_nothing_fits_exits_non_zero_with_the_reason_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(
        capsys,
        "--cuda",
        "12.8",
        "--gpu-arch",
        "12.0",
        "--source",
        "pytorch",
        "--platform",
        "linux-64",
    )
    assert status == 1
    assert out == ""
    assert err.startswith(
        "error: GPU 0 (compute capability 12.0, sm_120) is not covered by any pytorch-channel build"
    )
    assert "hint: --source conda-forge" in err


def test_nothing_fits_in_json_mode(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--pytorch", "9.9", "--cpu", "--platform", "linux-64", "--json")
    assert status == 1
    assert json.loads(out)["error"] == "PlanError"
    assert "No PyTorch release matches --pytorch 9.9" in err


@pytest.mark.parametrize(
    "argv",
    [["--cuda", "12"], ["--pytorch", "latest", "--cpu"]],
    ids=["cuda-not-xy", "bad-pytorch-spec"],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, _, err = run(capsys, *argv, "--platform", "linux-64")
    assert status == 2
    assert err.startswith("error: ")


def test_console_route_in_a_subprocess() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CONDA_OVERRIDE_CUDA"}
    done = run_cli("plan", "--cpu", "--platform", "osx-arm64", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["compute"], data["specs"]) == (
        "mps",
        ["python=3.12", "pytorch=2.5.1", "torchvision=0.20.1", "torchaudio=2.5.1"],
    )
