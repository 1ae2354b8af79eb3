"""`conda-torch-env create` end to end, in process, against the tiny real file:// channels.

``--cuda`` and ``--gpu-arch`` describe the machine completely, so nothing is
detected: the same results on a machine with or without a GPU.
"""

from __future__ import annotations

import json

import pytest
from support.cli import run_main
from support.servers import basic_auth_handler, serve
from support.trees import snapshot

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.condalock.lockfile import read_lockfile
from conda_torch_plugin.doctor import diagnose
from conda_torch_plugin.machine.model import Gpu, Machine
from conda_torch_plugin.recipes import load_recipes

# The test channels hold linux-64 packages only; create/install target this machine's platform.
pytestmark = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
SM86 = ("--cuda", "12.4", "--gpu-arch", "8.6", "--platform", "linux-64")
USER_ENV = """\
# my project's environment: comments and extra packages must survive
name: research
channels:
  - conda-forge
dependencies:
  - python=3.12
  - filelock  # the project needs it
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONDA_TORCH_ENV_CACHE_DIR", str(tmp_path.parent / f"{tmp_path.name}-cache"))
    return tmp_path


@pytest.fixture
def create(package_channels, capsys):
    """create(*argv) -> (status, stdout, stderr): ``create ARGV`` in process, from the test
    channels (``--channel-alias``)."""

    def run(*argv: str) -> tuple[int, str, str]:
        return run_main(capsys, "create", *argv, "--channel-alias", package_channels.as_uri())

    return run


def test_create_end_to_end(workdir, create):
    prefix = workdir / "env"
    status, out, _ = create("-p", str(prefix), *SM86, "--yes", "--json")
    assert status == 0
    report = json.loads(out)
    assert (report["plan"]["pytorch"], report["plan"]["cuda"]) == ("2.5.1", "12.4")
    assert report["activate"] == f"conda activate {prefix}"
    for name in ("environment.yml", "virtual-packages.yml", "conda-lock.yml"):
        assert (workdir / name).is_file(), name
    lock = read_lockfile(workdir / "conda-lock.yml")
    assert lock.platforms == ("linux-64",)
    installed = {p.stem for p in (prefix / "conda-meta").glob("*.json")}
    assert installed == {f"{p.name}-{p.version}-{p.build}" for p in lock.packages_for("linux-64")}
    assert "pytorch-2.5.1-py3.12_cuda12.4_cudnn9.1.0_0" in installed
    assert 'cuda = "12.4"' in (prefix / "lib/python3.12/site-packages/torch/version.py").read_text()
    # The doctor finds nothing broken on the machine the environment was created for.
    machine = Machine(
        "550.54.15", "12.4", "nvml", (Gpu(0, "NVIDIA RTX A6000", None, "8.6", 49140),)
    )
    # An empty user base: a torch in the developer's own ~/.local cannot change the verdict.
    no_user_site = workdir / "no-user-site"
    no_user_site.mkdir()
    verdict = diagnose(prefix, detection=machine, recipes=load_recipes(), user_base=no_user_site)
    assert verdict.ok, [f.to_dict() for f in verdict.findings if f.severity == "error"]
    assert verdict.flavour is not None and verdict.flavour.cuda == "12.4"


def test_create_cpu(workdir, create):
    prefix = workdir / "cpu-env"
    status, out, _ = create("-p", str(prefix), "--cpu", "--platform", "linux-64", "--yes")
    assert status == 0
    assert "cuda = None" in (prefix / "lib/python3.12/site-packages/torch/version.py").read_text()
    assert (prefix / "conda-meta" / "pytorch-mutex-1.0-cpu.json").is_file()
    assert f"conda activate {prefix}" in out


def test_dry_run_writes_nothing(workdir, create):
    (workdir / "environment.yml").write_text(USER_ENV)
    before = snapshot(workdir)
    status, out, _ = create("-p", str(workdir / "env"), *SM86, "--dry-run", "--json")
    report = json.loads(out)
    assert status == 0
    assert snapshot(workdir) == before
    assert report["dry_run"] is True
    assert "pytorch-cuda=12.4" in report["environment_yml"]
    assert (
        "# the project needs it" in report["environment_yml"]
    )  # the user's file, updated in memory
    assert "version: 1" in report["lockfile_yml"]
    assert report["install"]["count"] == 19 and report["install"]["total_bytes"] > 0
    assert report["check"]["ok"]


def test_dry_run_text_shows_the_packages_and_sizes(workdir, create):
    status, out, _ = create("-p", str(workdir / "env"), *SM86, "--dry-run")
    assert status == 0
    assert "Plan: pytorch 2.5.1 (CUDA 12.4 build)" in out
    assert "19 packages" in out and "KB in total" in out
    assert "pytorch-cuda" in out and "Nothing was changed." in out
    assert list(workdir.iterdir()) == []


def test_without_yes_and_without_a_terminal_nothing_happens(workdir, create):
    status, _, err = create("-p", str(workdir / "env"), *SM86)
    assert status == 2
    assert "--yes" in err
    assert list(workdir.iterdir()) == []


def test_this_platform_must_be_planned(workdir, create):
    status, _, err = create("-p", str(workdir / "env"), "--cpu", "--platform", "osx-arm64", "--yes")
    assert status == 2
    assert "add --platform linux-64" in err
    assert list(workdir.iterdir()) == []


def test_create_by_name(workdir, create, monkeypatch):
    envs = workdir / "envs"
    monkeypatch.setenv("CONDA_TORCH_ENV_ENVS_DIR", str(envs))
    status, _, err = create("-n", "torch", *SM86, "--yes")
    assert status == 0, err
    assert (envs / "torch" / "conda-meta" / "history").is_file()
    assert "name: torch" in (workdir / "environment.yml").read_text()


def test_a_folder_that_is_not_an_environment_is_refused_before_anything_is_written(workdir, create):
    (workdir / "project").mkdir()
    (workdir / "project" / "notes.txt").write_text("mine\n")
    before = snapshot(workdir)
    status, _, err = create("-p", str(workdir / "project"), *SM86, "--yes")
    assert status == 1
    assert "not a conda environment" in err
    assert snapshot(workdir) == before


class Terminal:
    """A stand-in for a terminal on stdin: answers one line."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "proceeds"),
    [("\n", True), ("y\n", True), ("yes\n", True), ("n\n", False), ("nope\n", False)],
    ids=["enter", "y", "yes", "n", "other"],
)
def test_confirmation_on_a_terminal(answer, proceeds, capsys):
    from conda_torch_plugin.cli.install import confirm
    from conda_torch_plugin.errors import Declined

    if proceeds:
        confirm("Proceed", yes=False, stdin=Terminal(answer))
    else:
        with pytest.raises(Declined, match="Exiting.") as declined:
            confirm("Proceed", yes=False, stdin=Terminal(answer))
        assert declined.value.exit_code == 0
    assert "Proceed ([y]/n)? " in capsys.readouterr().err


def test_create_from_a_password_protected_mirror(workdir, package_channels, capsys):
    secret = "pa55-SECRET"
    prefix = workdir / "env"
    with serve(package_channels, basic_auth_handler("bob", secret)) as url:
        alias = url.replace("http://", f"http://bob:{secret}@")
        status, out, err = run_main(
            capsys, "create", "-p", str(prefix), *SM86, "--yes", "--channel-alias", alias
        )
    assert status == 0, err
    assert secret not in out + err
    assert (prefix / "conda-meta" / "history").is_file()
    for folder in (workdir, prefix / "conda-meta"):
        assert [p.name for p in folder.iterdir() if p.is_file() and secret in p.read_text()] == []


def test_a_failed_lock_leaves_no_new_files(workdir, capsys, tmp_path):
    # A mirror that holds nothing: the lock fails after the environment file was written.
    empty = tmp_path.parent / f"{tmp_path.name}-empty-mirror"
    empty.mkdir()
    status, _, err = run_main(
        capsys, "create", "-p", str(workdir / "env"), *SM86, "--yes",
        "--channel-alias", empty.as_uri(),
    )  # fmt: skip
    assert status == 1, err
    assert list(workdir.iterdir()) == []


def test_a_failed_lock_keeps_the_previous_files(workdir, create, capsys, tmp_path):
    status, _, err = create("-p", str(workdir / "env"), *SM86, "--yes")
    assert status == 0, err
    before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    empty = tmp_path.parent / f"{tmp_path.name}-empty-mirror"
    empty.mkdir()
    status, _, err = run_main(
        capsys, "create", "-p", str(workdir / "env2"), "--cuda", "12.1", "--gpu-arch", "8.6",
        "--platform", "linux-64", "--yes", "--channel-alias", empty.as_uri(),
    )  # fmt: skip
    assert status == 1, err
    after = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    assert after == before
    assert not (workdir / "env2").exists()


def test_a_target_that_is_not_this_machine_is_said_before_installing(workdir, create, monkeypatch):
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "")  # this machine: no NVIDIA driver
    status, out, err = create("-p", str(workdir / "env"), *SM86, "--yes")
    assert status == 0, err
    note = next(line for line in err.splitlines() if line.startswith("note: planned for"))
    assert note.startswith("note: planned for CUDA 12.4 / sm_86 (from the flags), not for this")
    assert "driver" in note
    # Said before the install ran, not after it.
    assert "Done:" in out


def test_no_note_when_planned_for_this_machine(workdir, create, monkeypatch):
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "")
    status, _, err = create("-p", str(workdir / "env"), "--platform", "linux-64", "--yes")
    assert status == 0, err
    assert "note: planned for" not in err
