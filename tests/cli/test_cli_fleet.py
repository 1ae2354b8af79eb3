"""Team-wide environments end to end: profiles from the fake NVML driver, ``--machine`` on
plan/write, a committed file keeping its targets, companion file names, ``lock --check``
on every machine the file was planned for."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from support.cli import run_cli, run_cli_json, run_main

from conda_torch_plugin.cli import main
from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.condalock.lockfile import read_lockfile
from conda_torch_plugin.envfile.targets import planned_without_gpu
from conda_torch_plugin.install import check_machine
from conda_torch_plugin.machine.model import Machine
from conda_torch_plugin.recipes import load_recipes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TARGETS = ["--cuda", "12.4", "--gpu-arch", "8.6", "--pytorch", "2.5.1"]
THREE = ["--platform", "linux-64", "--platform", "win-64", "--platform", "osx-arm64"]


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA_ARCH", raising=False)


def profile(
    folder: Path, name: str, driver: str | None, *ccs: str, cuda: str | None = None
) -> None:
    gpus = [
        {"index": i, "name": f"GPU {cc}", "uuid": None, "compute_capability": cc, "memory_mib": 1}
        for i, cc in enumerate(ccs)
    ]
    data = {
        "schema": 1,
        "hostname": name,
        "platform": "linux-64",
        "driver_version": driver,
        "cuda_version": cuda,
        "gpus": gpus,
    }
    (folder / f"{name}.json").write_text(json.dumps(data))


def test_profiles_from_detect_save_plan_a_mixed_volta_blackwell_team(
    fake_nvml_env: Callable[..., dict[str, str]], tmp_path: Path
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    team = {
        "v100-node": ("550.54.15", "12.4", (("Tesla V100-SXM2-32GB", "7.0", 32768),)),
        "ws-3": ("570.86.10", "12.8", (("NVIDIA GeForce RTX 5090", "12.0", 32607),)),
        "login1": ("550.54.15", "12.4", ()),  # a driver but no GPU: like a CPU node
    }
    for host, (driver, cuda, gpus) in team.items():
        env = fake_nvml_env(driver=driver, cuda=cuda, gpus=gpus)
        result = run_cli("detect", "--save", str(machines), "--hostname", host, env=env)
        assert result.returncode == 0, result.stderr
    saved = json.loads((machines / "ws-3.json").read_text())
    assert saved["schema"] == 1 and saved["cuda_arch"] == "12.0"
    assert saved["platform"] == "linux-64" and saved["hostname"] == "ws-3"

    report = run_cli_json("plan", "--machine", str(machines), "--json")
    assert report["source"] == "conda-forge"
    assert "ws-3: NVIDIA GeForce RTX 5090 (sm_120) needs conda-forge." in report["reasons"]
    by_name = {m["machine"]: m for m in report["machines"]}
    assert set(by_name) == {"v100-node", "ws-3", "login1"}
    assert all(m["ok"] for m in by_name.values())
    assert by_name["v100-node"]["own_plan"]["source"] == "pytorch"


def test_cuda_arch_override(fake_nvml_env: Callable[..., dict[str, str]]) -> None:
    env = fake_nvml_env(extra={"CONDA_OVERRIDE_CUDA_ARCH": "7.5"})
    assert run_cli_json("detect", "--json", env=env)["cuda_arch"] == "7.5"
    env = fake_nvml_env(extra={"CONDA_OVERRIDE_CUDA_ARCH": "sm75"})
    bad = run_cli("detect", env=env)
    assert bad.returncode == 2 and "CONDA_OVERRIDE_CUDA_ARCH='sm75' is not" in bad.stderr
    text = run_cli("detect", env=fake_nvml_env()).stdout
    assert "cuda_arch: 9.0 (the lowest compute capability)" in text


def test_plan_text_lists_each_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile(tmp_path, "node07", "470.82.01", "8.0")
    profile(tmp_path, "gpu02", "550.54.15", "8.6", cuda="12.4")
    status, out, _ = run_main(capsys, "plan", "--machine", str(tmp_path))
    assert status == 0
    assert "node07: driver 470.82.01 (CUDA 11.4) limits the build to CUDA 11.8" in out
    assert "Machines (2):" in out and "runs-minor-compat" in out


def test_no_shared_environment_is_an_error_with_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile(tmp_path, "node-k80", "470.82.01", "3.7")
    profile(tmp_path, "ws-3", "570.86.10", "12.0", cuda="12.8")
    status, out, err = run_main(
        capsys, "write", "--machine", str(tmp_path), "-f", str(tmp_path / "env.yml")
    )
    assert status != 0 and out == ""
    assert "No single environment serves all 2 machines" in err
    assert not (tmp_path / "env.yml").exists()


def test_a_plain_write_keeps_the_files_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_main(capsys, "write", *TARGETS, *THREE)[0] == 0
    before = (tmp_path / "environment.yml").read_text()
    vp_before = (tmp_path / "virtual-packages.yml").read_text()
    assert "# torch-env targets: " in before
    # No flags: on this machine (no GPU, whatever it is) the file stays planned as it was.
    status, out, err = run_main(capsys, "write")
    assert status == 0
    assert (tmp_path / "environment.yml").read_text() == before
    assert (tmp_path / "virtual-packages.yml").read_text() == vp_before
    assert "already up to date" in out
    assert "re-planned environment.yml for its targets (recorded in it)" in err


def test_an_older_file_without_recorded_targets_keeps_its_platforms_and_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_main(capsys, "write", *TARGETS, *THREE)[0] == 0
    env = tmp_path / "environment.yml"
    lines = [line for line in env.read_text().splitlines() if "torch-env targets" not in line]
    env.write_text("\n".join(lines) + "\n")
    status, _, err = run_main(capsys, "write", "--pytorch", "2.5.1")
    assert status == 0
    text = env.read_text()
    assert "  - osx-arm64" in text and "pytorch-cuda=12.4  # [linux64]" in text
    assert "cpuonly" not in text
    assert "inferred from the file" in err


def test_an_older_file_without_virtual_packages_keeps_its_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "environment.yml").write_text(
        "name: research\nchannels: [pytorch, nvidia, conda-forge]\n"
        "platforms: [linux-64, win-64]\n"
        "dependencies:\n  - pytorch=2.5.1\n  - pytorch-cuda=12.1\n  - numpy\n"
    )
    status, _, err = run_main(capsys, "write", "--pytorch", "2.5.1")
    assert status == 0
    text = (tmp_path / "environment.yml").read_text()
    assert "pytorch-cuda=12.1" in text and "cpuonly" not in text and "  - numpy" in text
    assert "linux-64, win-64, CUDA 12.1" in err


def test_changing_targets_needs_flags_and_prints_the_changed_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_main(capsys, "write", *TARGETS, *THREE)[0] == 0
    status, _, err = run_main(capsys, "write", "--cpu", "--platform", "linux-64")
    assert status == 0
    assert (
        "environment.yml changes what it is planned for: platforms linux-64, win-64, "
        "osx-arm64 -> linux-64; CUDA 12.4 -> CPU"
    ) in err
    assert "  - pytorch-cuda=12.4  # [linux64]" in err and "  + cpuonly" in err


def test_two_environments_in_one_folder_have_their_own_companions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_main(capsys, "write", *TARGETS, "--platform", "linux-64")[0] == 0
    status, out, _ = run_main(capsys, "write", "-f", "cpu.yml", "--cpu", "--platform", "linux-64")
    assert status == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cpu.virtual-packages.yml",
        "cpu.yml",
        "environment.yml",
        "virtual-packages.yml",
    ]
    assert "__cuda:" in (tmp_path / "virtual-packages.yml").read_text()
    assert "__cuda:" not in (tmp_path / "cpu.virtual-packages.yml").read_text()
    assert "Next: conda torch-env lock -f cpu.yml" in out


def test_lock_check_verifies_every_planned_machine(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    channel_tree,
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    profile(machines, "gpu01", "550.54.15", "8.6", cuda="12.4")
    profile(machines, "login1", None)
    monkeypatch.chdir(tmp_path)
    assert (
        run_main(capsys, "write", "-f", "gpu.yml", "--machine", "machines", "--pytorch", "2.5.1")[0]
        == 0
    )
    status, _, err = run_main(
        capsys, "lock", "-f", "gpu.yml", "--channel-alias", channel_tree.alias
    )
    assert status == 0, err
    assert (tmp_path / "gpu.conda-lock.yml").is_file()
    assert not (tmp_path / "conda-lock.yml").exists()

    status, out, _ = run_main(capsys, "lock", "-f", "gpu.yml", "--check")
    assert status == 0
    assert "Every machine it was planned for can run it (2)." in out
    # The install check accepts the login node: the file was planned for it.
    assert planned_without_gpu(tmp_path / "gpu.conda-lock.yml", "linux-64") == ["login1"]

    # A node with an old driver joins the team: the lock is still up to date with
    # gpu.yml, but cannot run there.
    profile(machines, "node07", "470.82.01", "8.0")
    status, _, err = run_main(capsys, "lock", "-f", "gpu.yml", "--check")
    assert status == 1
    assert "1 machine the environment was planned for cannot run the lock" in err
    assert "node07 (linux-64): driver 470.82.01 (CUDA 11.4) cannot run this CUDA 12.4" in err
    assert "conda torch-env write -f gpu.yml" in err

    # Install's own check names the file in its fixes (-f gpu.yml), as every "lock" hint must.
    lock = read_lockfile(tmp_path / "gpu.conda-lock.yml")
    node07 = Machine("470.82.01", "11.4", "profile", (), platform="linux-64", hostname="node07")
    check = check_machine(lock, "linux-64", node07, load_recipes(), env_file="gpu.yml")
    assert not check.ok
    assert "conda torch-env write -f gpu.yml --cuda 11.4 && conda torch-env lock -f gpu.yml" in (
        check.errors[0].fix or ""
    )

    status, out, _ = run_main(capsys, "lock", "-f", "gpu.yml", "--check", "--json")
    report = json.loads(out)
    assert report["machines_ok"] is False
    assert {m["machine"]: m["ok"] for m in report["machines"]} == {
        "gpu01": True,
        "login1": True,
        "node07": False,
    }


@pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
def test_install_on_a_gpu_less_member_needs_no_force(
    fake_nvml_env: Callable[..., dict[str, str]], package_channels: Path, tmp_path: Path
) -> None:
    machines = tmp_path / "machines"
    machines.mkdir()
    profile(machines, "gpu01", "550.54.15", "8.6", cuda="12.4")
    team = tmp_path / "team.yml"
    args = ["-f", str(team), "--machine", str(machines), "--pytorch", "2.5.1"]
    assert main(["write", *args]) == 0
    lock = ["lock", "-f", str(team), "--channel-alias", package_channels.as_uri()]
    assert main(lock) == 0
    lockfile = tmp_path / "team.conda-lock.yml"
    no_driver = fake_nvml_env(
        gpus=(), extra={"FAKE_NVML_INIT_ERROR": "9", "CONDA_TORCH_ENV_CACHE_DIR": str(tmp_path)}
    )
    install = ["install", "-p", str(tmp_path / "env"), "--lockfile", str(lockfile), "--dry-run"]

    # Planned for GPU machines only: a machine without a driver is refused.
    refused = run_cli(*install, env=no_driver, cwd=tmp_path)
    assert refused.returncode == 1 and "use --force" in refused.stderr
    assert "conda torch-env write -f team.yml --cpu && conda torch-env lock -f team.yml" in (
        refused.stderr
    )

    # The team has a login node: the same machine is accepted, with a note.
    profile(machines, "login1", None)
    assert main(["write", "-f", str(team)]) == 0  # the recorded targets: the same machines
    assert main(lock) == 0
    accepted = run_cli(*install, env=no_driver, cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stderr
    assert (
        "note: the environment was planned for machines without an NVIDIA GPU too (login1)"
        in accepted.stderr
    )
    assert "use --force" not in accepted.stderr


@pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
def test_create_keeps_a_committed_files_targets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    package_channels: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONDA_TORCH_ENV_CACHE_DIR", str(tmp_path / "cache"))
    assert run_main(capsys, "write", *TARGETS, "--platform", "linux-64")[0] == 0
    committed = (tmp_path / "environment.yml").read_text()
    # No flags, on a machine without a GPU: still the file's CUDA 12.4 build, not cpuonly.
    alias = ["--channel-alias", package_channels.as_uri()]
    status, out, _ = run_main(capsys, "create", "-p", "env", "--dry-run", "--json", *alias)
    assert status == 0
    report = json.loads(out)
    assert report["environment_yml"] == committed
    assert "pytorch-cuda=12.4" in report["environment_yml"]
    assert report["plan"]["cuda"] == "12.4"


@pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
def test_create_for_a_team_on_its_login_node(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    package_channels: Path,
) -> None:
    import conda_torch_plugin.machine.detect as detect_module

    login = Machine(None, None, "none", (), platform="linux-64", hostname="login1")
    monkeypatch.setattr(detect_module, "detect", lambda **_: login)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONDA_TORCH_ENV_CACHE_DIR", str(tmp_path / "cache"))
    machines = tmp_path / "machines"
    machines.mkdir()
    profile(machines, "gpu01", "550.54.15", "8.6", cuda="12.4")
    profile(machines, "login1", None)
    argv = ["create", "-p", "env", "-f", "team.yml", "--machine", "machines", "--pytorch", "2.5.1"]
    alias = ["--channel-alias", package_channels.as_uri()]
    status, _, err = run_main(capsys, *argv, "--yes", *alias)
    assert status == 0, err
    assert {"team.yml", "team.virtual-packages.yml", "team.conda-lock.yml"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert not (tmp_path / "conda-lock.yml").exists()
    assert "runs on the CPU only on this machine" in err  # a warning, not a refusal
    assert (
        tmp_path / "env" / "conda-meta" / "pytorch-2.5.1-py3.12_cuda12.4_cudnn9.1.0_0.json"
    ).is_file()


def test_a_missing_lock_names_the_environment_file_to_lock(tmp_path: Path) -> None:
    from conda_torch_plugin.condalock.lockfile import read_lockfile as read
    from conda_torch_plugin.errors import LockError

    with pytest.raises(LockError) as caught:
        read(tmp_path / "gpu.conda-lock.yml")
    assert list(caught.value.hints) == ["create it with `conda torch-env lock -f gpu.yml`"]
    with pytest.raises(LockError) as caught:
        read(tmp_path / "conda-lock.yml")
    assert list(caught.value.hints) == ["create it with `conda torch-env lock`"]
