"""Through conda's own CLI: only where conda is importable (it is not in CI here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

conda = pytest.importorskip(
    "conda", reason="conda is not importable here; these tests need a real conda"
)


def _conda(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conda", *args], capture_output=True, text=True, check=False
    )


def test_conda_lists_the_subcommand() -> None:
    result = _conda("torch-env", "--help")
    assert result.returncode == 0, result.stderr
    for verb in ("detect", "plan", "write", "lock", "create", "install", "doctor"):
        assert verb in result.stdout


def test_conda_runs_a_plan() -> None:
    result = _conda("torch-env", "plan", "--cpu", "--platform", "linux-64", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["compute"] == "cpu"
    assert "cpuonly" in plan["specs"]


def test_conda_create_dry_run_changes_nothing(tmp_path, package_channels) -> None:
    prefix = tmp_path / "env"
    result = _conda(
        "torch-env",
        "create",
        "-p",
        str(prefix),
        "--cuda",
        "12.4",
        "--gpu-arch",
        "8.6",
        "--platform",
        "linux-64",
        "--channel-alias",
        package_channels.as_uri(),
        "--dry-run",
        "-f",
        str(tmp_path / "environment.yml"),
    )
    assert result.returncode == 0, result.stderr
    assert not prefix.exists()
    assert list(tmp_path.iterdir()) == []
