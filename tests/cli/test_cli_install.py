"""`conda-torch-env install` end to end, in a subprocess on machines made of the fake NVML driver.

The lock is made by the real `write` and `lock` commands against the tiny real
channels of tests/support/packages.py (served as file:// channels).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from support.cli import run_cli
from support.packages import archive_path, copy_channels, corrupt_archive
from support.servers import basic_auth_handler, serve
from support.trees import snapshot

from conda_torch_plugin.cli import main
from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.condalock.lockfile import read_lockfile

if TYPE_CHECKING:
    from pathlib import Path

# The test channels hold linux-64 packages only; create/install target this machine's platform.
pytestmark = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
H100 = ("NVIDIA H100 80GB HBM3", "9.0", 81559)
A6000 = ("NVIDIA RTX A6000", "8.6", 49140)
K40 = ("Tesla K40m", "3.5", 11441)
TORCH_CUDA = "pytorch-2.5.1-py3.12_cuda12.4_cudnn9.1.0_0"


def make_lock(folder: Path, channel_root: Path, *plan_flags: str) -> Path:
    """environment.yml + conda-lock.yml through the real write and lock commands."""
    folder.mkdir(parents=True, exist_ok=True)
    env_file = folder / "environment.yml"
    flags = plan_flags or ("--cuda", "12.4", "--gpu-arch", "8.6")
    assert main(["write", "-f", str(env_file), "--platform", "linux-64", *flags]) == 0
    assert main(["lock", "-f", str(env_file), "--channel-alias", channel_root.as_uri()]) == 0
    return folder / "conda-lock.yml"


@pytest.fixture(scope="module")
def cuda_lockfile(package_channels, tmp_path_factory) -> Path:
    return make_lock(tmp_path_factory.mktemp("cuda-lock"), package_channels)


@pytest.fixture
def run(fake_nvml_env, tmp_path):
    """run(*args, gpus=..., driver=..., cuda=..., extra=...) -> CompletedProcess.

    stdin is not a terminal, as in CI.
    """

    def run_install(*args: str, gpus=(H100,), driver="550.54.15", cuda="12.4", extra=None):
        env = fake_nvml_env(
            driver=driver,
            cuda=cuda,
            gpus=gpus,
            extra={"CONDA_TORCH_ENV_CACHE_DIR": str(tmp_path / "cache"), **(extra or {})},
        )
        return run_cli("install", *args, env=env, cwd=tmp_path)

    return run_install


def test_install_on_a_machine_that_can_run_it(run, cuda_lockfile, tmp_path):
    prefix = tmp_path / "env"
    result = run("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    lock = read_lockfile(cuda_lockfile)
    assert report["check"]["ok"] and report["check"]["flavour"]["label"] == "CUDA 12.4"
    assert report["install"]["count"] == len(lock.packages_for("linux-64"))
    assert report["activate"] == f"conda activate {prefix}"
    version = (prefix / "lib/python3.12/site-packages/torch/version.py").read_text()
    assert 'cuda = "12.4"' in version
    for pkg in lock.packages_for("linux-64"):
        record = json.loads(
            (prefix / "conda-meta" / f"{pkg.name}-{pkg.version}-{pkg.build}.json").read_text()
        )
        assert (record["url"], record["md5"], record["sha256"]) == (pkg.url, pkg.md5, pkg.sha256)
    assert (prefix / "conda-meta/history").read_text().count("==> ") == 1


@pytest.mark.parametrize(
    ("machine", "reason"),
    [
        (
            {"driver": "470.57.02", "cuda": "11.4", "gpus": (H100,)},
            "this driver supports CUDA 11.4",
        ),
        (
            {"driver": "550.54.15", "cuda": "12.4", "gpus": (K40,)},
            "compute capability 3.5) is not covered",
        ),
        (
            {
                "driver": "550.54.15",
                "cuda": "12.4",
                "gpus": (),
                "extra": {"FAKE_NVML_INIT_ERROR": "9"},
            },
            "no NVIDIA driver was found",
        ),
    ],
    ids=["old-driver", "gpu-not-covered", "driver-not-loaded"],
)
def test_incompatible_machine_is_refused_and_force_installs(
    run, cuda_lockfile, tmp_path, machine, reason
):
    prefix = tmp_path / "env"
    refused = run("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--yes", **machine)
    assert refused.returncode == 1, refused.stderr
    assert reason in refused.stderr and "use --force to install anyway" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not prefix.exists()
    forced = run("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--yes", "--force", **machine)
    assert forced.returncode == 0, forced.stderr
    assert reason in forced.stderr  # still said, as a warning
    assert (prefix / "conda-meta" / f"{TORCH_CUDA}.json").is_file()


def test_minor_version_compatibility_installs_with_a_warning(run, cuda_lockfile, tmp_path):
    prefix = tmp_path / "env"
    result = run(
        "-p",
        str(prefix),
        "--lockfile",
        str(cuda_lockfile),
        "--yes",
        driver="535.104.05",
        cuda="12.2",
        gpus=(A6000,),
    )
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "minor-version compatibility" in result.stderr
    assert f"conda activate {prefix}" in result.stdout


def test_no_terminal_needs_yes(run, cuda_lockfile, tmp_path):
    result = run("-p", str(tmp_path / "env"), "--lockfile", str(cuda_lockfile))
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert not (tmp_path / "env").exists()


def test_a_missing_lock_is_reported_before_the_terminal_check(run, tmp_path):
    result = run("-p", str(tmp_path / "env"), "--lockfile", str(tmp_path / "missing.yml"))
    assert result.returncode == 1
    assert "missing.yml does not exist" in result.stderr
    assert "--yes" not in result.stderr


def test_answering_no_on_a_terminal_exits_0(fake_nvml_env, cuda_lockfile, tmp_path):
    import pty
    import subprocess
    import sys

    env = fake_nvml_env(
        driver="550.54.15",
        cuda="12.4",
        gpus=(H100,),
        extra={"CONDA_TORCH_ENV_CACHE_DIR": str(tmp_path / "cache")},
    )
    prefix = tmp_path / "env"
    controller, terminal = pty.openpty()
    os.write(controller, b"n\n")  # typed ahead; the terminal keeps the line until it is read
    try:
        done = subprocess.run(
            [sys.executable, "-m", "conda_torch_plugin", "install", "-p", str(prefix),
             "--lockfile", str(cuda_lockfile)],
            stdin=terminal, capture_output=True, text=True, env=env, cwd=tmp_path,
            timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0, done.stderr
    assert "Proceed ([y]/n)? " in done.stderr
    assert "Exiting." in done.stderr and "error" not in done.stderr
    assert not prefix.exists()


def test_dry_run_changes_nothing(run, cuda_lockfile, tmp_path):
    result = run(
        "-p", str(tmp_path / "env"), "--lockfile", str(cuda_lockfile), "--dry-run", "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] and report["install"]["count"] == 19
    assert report["install"]["total_bytes"] > 0
    assert not (tmp_path / "env").exists() and not (tmp_path / "cache").exists()


def test_platform_missing_from_the_lock(run, cuda_lockfile, tmp_path):
    result = run(
        "-p",
        str(tmp_path / "env"),
        "--lockfile",
        str(cuda_lockfile),
        "--yes",
        "--platform",
        "win-64",
    )
    assert result.returncode == 1
    assert "no packages for win-64" in result.stderr and "--platform win-64" in result.stderr


def test_edited_hash_is_refused_and_the_environment_stays(run, cuda_lockfile, tmp_path):
    prefix = tmp_path / "env"
    assert run("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--yes").returncode == 0
    before = snapshot(prefix)
    lock = read_lockfile(cuda_lockfile)
    cublas = next(p for p in lock.packages if p.name == "libcublas")
    edited = tmp_path / "edited" / "conda-lock.yml"
    edited.parent.mkdir()
    edited.write_text(cuda_lockfile.read_text().replace(cublas.sha256, "f" * 64))
    result = run("-p", str(prefix), "--lockfile", str(edited), "--yes")
    assert result.returncode == 1
    assert f"expected sha256 {'f' * 64}, got {cublas.sha256}" in result.stderr
    assert "libcublas" in result.stderr
    assert snapshot(prefix) == before


def test_corrupted_archive_is_refused(run, package_channels, tmp_path):
    channels = copy_channels(package_channels, tmp_path / "channels")
    lockfile = make_lock(tmp_path / "lock", channels)
    corrupt_archive(archive_path(channels, f"{TORCH_CUDA}.tar.bz2"))
    result = run("-p", str(tmp_path / "env"), "--lockfile", str(lockfile), "--yes")
    assert result.returncode == 1
    assert TORCH_CUDA in result.stderr and "expected sha256" in result.stderr
    assert not (tmp_path / "env").exists()


def test_channel_alias_installs_a_public_lock_from_a_mirror(
    run, cuda_lockfile, package_channels, tmp_path
):
    public = tmp_path / "public" / "conda-lock.yml"
    public.parent.mkdir()
    public.write_text(
        cuda_lockfile.read_text().replace(package_channels.as_uri(), "https://conda.anaconda.org")
    )
    prefix = tmp_path / "env"
    result = run(
        "-p",
        str(prefix),
        "--lockfile",
        str(public),
        "--yes",
        "--channel-alias",
        package_channels.as_uri(),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((prefix / "conda-meta" / f"{TORCH_CUDA}.json").read_text())
    assert record["url"] == f"{package_channels.as_uri()}/pytorch/linux-64/{TORCH_CUDA}.tar.bz2"


def test_name_goes_to_the_envs_dir_variable(run, cuda_lockfile, tmp_path):
    envs = tmp_path / "my-envs"
    result = run(
        "-n",
        "torch",
        "--lockfile",
        str(cuda_lockfile),
        "--yes",
        extra={"CONDA_TORCH_ENV_ENVS_DIR": str(envs)},
    )
    assert result.returncode == 0, result.stderr
    assert (envs / "torch" / "conda-meta" / f"{TORCH_CUDA}.json").is_file()
    assert f"conda activate {envs.resolve() / 'torch'}" in result.stdout


def test_installer_conda_without_conda_is_a_clear_error(run, cuda_lockfile, tmp_path):
    result = run(
        "-p",
        str(tmp_path / "env"),
        "--lockfile",
        str(cuda_lockfile),
        "--yes",
        "--installer",
        "conda",
        extra={"CONDA_EXE": "", "PATH": "/nonexistent"},
    )
    assert result.returncode == 1
    assert "needs a conda executable" in result.stderr and "Traceback" not in result.stderr


def test_installer_conda_runs_conda_create_with_an_explicit_file(run, cuda_lockfile, tmp_path):
    """A stand-in conda executable (the system boundary) records what it was asked to do."""
    log = tmp_path / "conda-calls.txt"
    fake = tmp_path / "bin" / "conda"
    fake.parent.mkdir()
    fake.write_text(
        f'#!/bin/sh\necho "$@" > {log}\nwhile [ "$1" != "--file" ]; do shift; done\n'
        f'cat "$2" >> {log}\necho "To activate this environment, use"\n'
    )
    fake.chmod(0o755)
    prefix = tmp_path / "env"
    result = run(
        "-p",
        str(prefix),
        "--lockfile",
        str(cuda_lockfile),
        "--yes",
        "--installer",
        "conda",
        extra={"CONDA_EXE": str(fake)},
    )
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith(f"create -p {prefix} --file ") and calls[0].endswith(" --yes")
    assert "@EXPLICIT" in calls
    lock = read_lockfile(cuda_lockfile)
    assert {f"{p.url}#{p.md5}" for p in lock.packages_for("linux-64")} <= set(calls)
    # conda prints how to activate the environment; it is not repeated.
    assert result.stdout.count("To activate this environment") == 1


def test_help_documents_the_default_envs_folder():
    result = run_cli("install", "--help", env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0
    assert "CONDA_TORCH_ENV_ENVS_DIR" in result.stdout and "~/.conda/envs" in result.stdout


def test_password_in_the_channel_alias_is_shown_and_stored_nowhere(
    run, cuda_lockfile, package_channels, tmp_path
):
    secret = "pa55-SECRET"
    prefix = tmp_path / "env"
    with serve(package_channels, basic_auth_handler("bob", secret)) as url:
        alias = url.replace("http://", f"http://bob:{secret}@")
        args = ("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--channel-alias", alias)
        dry = run(*args, "--dry-run", "--json")
        plain = run(*args, "--dry-run")
        done = run(*args, "--yes")
        wrong = run(
            "-p",
            str(tmp_path / "env2"),  # a new prefix: the first one already matches the lock
            *args[2:-1],
            alias.replace(secret, f"{secret}-old"),
            "--yes",
            extra={"CONDA_TORCH_ENV_CACHE_DIR": str(tmp_path / "empty-cache")},
        )
    assert dry.returncode == plain.returncode == done.returncode == 0, done.stderr
    assert wrong.returncode == 1 and "401" in wrong.stderr
    for result in (dry, plain, done, wrong):
        assert secret not in result.stdout + result.stderr
    assert "http://***@127.0.0.1:" in dry.stdout
    stored = [p for p in (prefix / "conda-meta").iterdir() if secret.encode() in p.read_bytes()]
    assert stored == []
    history = (prefix / "conda-meta" / "history").read_text()
    assert "--channel-alias http://***@127.0.0.1:" in history


def test_an_environment_that_matches_the_lock_needs_nothing(run, cuda_lockfile, tmp_path):
    prefix = tmp_path / "env"
    assert run("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--yes").returncode == 0
    before = snapshot(prefix)
    # No --yes and no terminal: nothing needs confirming when nothing changes.
    again = run("-p", str(prefix), "--lockfile", str(cuda_lockfile))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"Nothing to do: {prefix} already holds the ")
    assert "Proceed" not in again.stderr
    assert snapshot(prefix) == before
    report = json.loads(run("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--json").stdout)
    assert report["install"]["nothing_to_do"] is True and report["install"]["changes"] == []


def test_an_update_shows_what_changes_before_asking(run, cuda_lockfile, package_channels, tmp_path):
    prefix = tmp_path / "env"
    assert run("-p", str(prefix), "--lockfile", str(cuda_lockfile), "--yes").returncode == 0
    cpu_lock = make_lock(tmp_path / "cpu", package_channels, "--cpu")
    shown = run("-p", str(prefix), "--lockfile", str(cpu_lock), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith(f"Will update {prefix} (linux-64, CPU build): ")
    assert "The following packages will be removed:" in out and "pytorch-cuda" in out
    assert "The following packages will be changed:" in out
    assert "py3.12_cuda12.4_cudnn9.1.0_0 -> 2.5.1 py3.12_cpu_0" in out
    report = json.loads(
        run("-p", str(prefix), "--lockfile", str(cpu_lock), "--dry-run", "--json").stdout
    )
    kinds = {c["name"]: c["kind"] for c in report["install"]["changes"]}
    assert kinds["pytorch"] == "change" and kinds["pytorch-cuda"] == "remove"
    assert kinds.get("cpuonly") == "add"


def test_a_lock_older_than_its_environment_file_is_warned_about(run, package_channels, tmp_path):
    lockfile = make_lock(tmp_path / "project", package_channels)
    env_file = lockfile.parent / "environment.yml"
    env_file.write_text(
        env_file.read_text().replace("  - pytorch=2.5.1", "  - pytorch=2.5.1\n  - numpy")
    )
    result = run("-p", str(tmp_path / "env"), "--lockfile", str(lockfile), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"warning: {lockfile} is out of date with {env_file}" in result.stderr
    assert f"conda torch-env lock -f {env_file}" in result.stderr


def test_a_down_mirror_is_one_short_error_not_every_url(run, cuda_lockfile, tmp_path):
    from support.servers import refusing_port

    with refusing_port() as port:
        result = run(
            "-p", str(tmp_path / "env"), "--lockfile", str(cuda_lockfile), "--yes",
            "--channel-alias", f"http://127.0.0.1:{port}",
        )  # fmt: skip
        assert result.returncode == 1
        error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
        count = len(read_lockfile(cuda_lockfile).packages_for("linux-64"))
        assert error.startswith(f"error: could not fetch {count} packages from 127.0.0.1 (")
        assert f"and {count - 3} more; first: http://127.0.0.1:{port}/" in error
        assert "Connection refused" in error
        assert len(error) < 400 and error.count("http://") == 1  # one example URL, not 19
        assert not (tmp_path / "env").exists()


def test_a_lock_cannot_point_the_staleness_check_outside_its_folder(run, cuda_lockfile, tmp_path):
    outside = tmp_path / "outside.yml"
    outside.write_text("dependencies:\n  - numpy\n")  # would make any lock look stale
    project = tmp_path / "project" / "sub"
    project.mkdir(parents=True)
    lockfile = project / "conda-lock.yml"
    lockfile.write_text(
        cuda_lockfile.read_text().replace("- environment.yml", "- ../../outside.yml")
    )
    result = run("-p", str(tmp_path / "env"), "--lockfile", str(lockfile), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "out of date" not in result.stderr


def test_every_relock_hint_names_the_environment_file(run, package_channels, tmp_path):
    """A lock made from gpu.yml is remade with `-f gpu.yml`: the hints say so."""
    folder = tmp_path / "project"
    folder.mkdir()
    env_file = folder / "gpu.yml"
    assert main(["write", "-f", str(env_file), "--platform", "linux-64", "--cuda", "12.4",
                 "--gpu-arch", "8.6"]) == 0  # fmt: skip
    assert main(["lock", "-f", str(env_file), "--channel-alias", package_channels.as_uri()]) == 0
    lockfile = folder / "gpu.conda-lock.yml"
    # A platform the lock does not hold.
    missing = run("-p", str(tmp_path / "env"), "--lockfile", str(lockfile), "--dry-run",
                  "--platform", "win-64")  # fmt: skip
    assert missing.returncode == 1
    assert "conda torch-env lock -f gpu.yml --platform win-64" in missing.stderr
    # A package whose archive no longer matches the lock.
    lock = read_lockfile(lockfile)
    cublas = next(p for p in lock.packages if p.name == "libcublas")
    edited = lockfile.read_text().replace(cublas.sha256, "f" * 64)
    lockfile.write_text(edited)
    mismatch = run("-p", str(tmp_path / "env"), "--lockfile", str(lockfile), "--yes")
    assert mismatch.returncode == 1
    assert "re-lock (conda torch-env lock -f gpu.yml)" in mismatch.stderr
    # A damaged lock.
    lockfile.write_text(edited.replace(f"sha256: {'f' * 64}", "sha256: nothex"))
    damaged = run("-p", str(tmp_path / "env"), "--lockfile", str(lockfile), "--dry-run")
    assert damaged.returncode == 1
    assert "conda torch-env lock -f gpu.yml" in damaged.stderr
