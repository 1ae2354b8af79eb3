"""lock() and check() end to end against generated (and real) file:// channels."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.cli import run_cli
from support.lock_projects import CUDA_124, PYTORCH_CHANNELS, THREE, TORCH_251, make_project
from support.repodata import (
    pytorch_channel_records,
    virtual_packages_for,
    write_channel,
    write_virtual_packages,
)

from conda_torch_plugin.condalock.lockfile import read_lockfile
from conda_torch_plugin.errors import EnvFileError, LockError, UsageError
from conda_torch_plugin.flavour import lock_flavour, torch_flavour
from conda_torch_plugin.lock import check, lock, regenerate_command

CPU = [*TORCH_251, "cpuonly  # [linux]", "cpuonly  # [win]"]
CONDA_FORGE_129 = [
    "python=3.12",
    "pytorch=2.13.0=cuda*  # [linux]",
    "pytorch=2.13.0  # [osx]",
    "cuda-version=12.9  # [linux]",
    "torchvision=0.28.0",
    "torchaudio=2.11.0",
]
CONDA_LOCK = Path(sys.executable).parent / "conda-lock"
if not CONDA_LOCK.is_file():  # an interpreter outside the venv that has conda-lock installed
    CONDA_LOCK = Path(shutil.which("conda-lock") or CONDA_LOCK)


def do_lock(env, tree, **kwargs):
    kwargs.setdefault("command", "conda torch-env lock")
    return lock(env, channel_alias=tree.alias, **kwargs)


def assert_torch_agrees(packages, platform, compute, cuda=None):
    """pytorch, torchvision and torchaudio are all there, all of the expected flavour."""
    by_name = {p.name: p for p in packages}
    for name in ("pytorch", "torchvision", "torchaudio"):
        p = by_name[name]
        flavour = torch_flavour(p.name, p.version, p.build, platform=platform)
        assert (flavour.compute, flavour.cuda) == (compute, cuda), (platform, name, p.build)


# -- what gets locked --------------------------------------------------------------------------


def test_pytorch_channel_cuda_plan(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    result = do_lock(env, channel_tree)
    assert result.lockfile == tmp_path / "conda-lock.yml" and result.written
    locked = read_lockfile(result.lockfile)
    assert locked.platforms == tuple(THREE)
    for platform in ("linux-64", "win-64"):
        packages = locked.packages_for(platform)
        assert_torch_agrees(packages, platform, "cuda", "12.4")
        by_name = {p.name: p for p in packages}
        assert by_name["pytorch"].build == "py3.12_cuda12.4_cudnn9.1.0_0"
        assert by_name["pytorch-mutex"].build == "cuda"
        assert by_name["pytorch-cuda"].version == "12.4"
        assert lock_flavour(packages).label == "CUDA 12.4"
    osx = locked.packages_for("osx-arm64")
    assert_torch_agrees(osx, "osx-arm64", "mps")
    assert {p.name for p in osx}.isdisjoint({"pytorch-cuda", "pytorch-mutex", "cuda-version"})
    summary = {s.platform: s for s in result.platforms}
    assert summary["linux-64"].torch["pytorch"] == "2.5.1 py3.12_cuda12.4_cudnn9.1.0_0"
    assert summary["win-64"].flavour == "CUDA 12.4" and summary["osx-arm64"].flavour == "CPU/MPS"
    assert summary["linux-64"].packages == len(locked.packages_for("linux-64"))
    assert result.solve_seconds > 0 and result.content_hash == locked.content_hash


def test_cpu_plan(tmp_path, channel_tree):
    env = make_project(tmp_path, CPU, cuda=None)
    locked = read_lockfile(do_lock(env, channel_tree).lockfile)
    for platform in ("linux-64", "win-64"):
        packages = locked.packages_for(platform)
        assert_torch_agrees(packages, platform, "cpu")
        names = {p.name: p for p in packages}
        assert names["pytorch-mutex"].build == "cpu" and "cpuonly" in names
        assert "pytorch-cuda" not in names and "cuda-version" not in names
    assert_torch_agrees(locked.packages_for("osx-arm64"), "osx-arm64", "mps")


def test_conda_forge_cuda_129_plan(tmp_path, channel_tree):
    env = make_project(
        tmp_path,
        CONDA_FORGE_129,
        channels=["conda-forge"],
        cuda="12.9",
        platforms=["linux-64", "osx-arm64"],
    )
    locked = read_lockfile(do_lock(env, channel_tree).lockfile)
    linux = locked.packages_for("linux-64")
    assert_torch_agrees(linux, "linux-64", "cuda", "12.9")
    by_name = {p.name: p for p in linux}
    assert by_name["pytorch"].build.startswith("cuda129_mkl_py312_")
    assert by_name["libtorch"].build.startswith("cuda129_")
    assert by_name["cuda-version"].version == "12.9"
    assert all("/conda-forge/" in p.url for p in linux)
    assert_torch_agrees(locked.packages_for("osx-arm64"), "osx-arm64", "mps")


def test_real_pytorch_channel_records(tmp_path, real_channel_tree):
    deps = [
        "python=3.11",
        "pytorch=2.1.0",
        "torchvision=0.16.0",
        "torchaudio=2.1.0",
        "pytorch-cuda=12.1",
    ]
    env = make_project(tmp_path, deps, cuda="12.2", platforms=["linux-64"])
    locked = read_lockfile(do_lock(env, real_channel_tree).lockfile)
    packages = locked.packages_for("linux-64")
    assert_torch_agrees(packages, "linux-64", "cuda", "12.1")
    by_name = {p.name: p for p in packages}
    assert by_name["pytorch"].build == "py3.11_cuda12.1_cudnn8.9.2_0"
    assert by_name["torchtriton"].version == "2.1.0"
    real = json.loads((real_channel_tree.root / "pytorch/linux-64/repodata.json").read_text())
    entry = real["packages"][by_name["pytorch"].filename]
    assert (by_name["pytorch"].md5, by_name["pytorch"].sha256) == (entry["md5"], entry["sha256"])


def test_platform_argument_overrides_the_file(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    result = do_lock(env, channel_tree, platforms=["win-64"])
    assert read_lockfile(result.lockfile).platforms == ("win-64",)


def test_no_platforms_anywhere_means_the_three_defaults(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124, platforms=None)
    assert read_lockfile(do_lock(env, channel_tree).lockfile).platforms == tuple(THREE)


# -- reproducible, and readable by conda-lock --------------------------------------------------


def test_byte_identical_from_two_working_directories(tmp_path, channel_tree):
    project = tmp_path / "project"
    env = make_project(project, CUDA_124)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    first = run_cli("lock", "--channel-alias", channel_tree.alias, "--explicit", cwd=project)
    assert first.returncode == 0, first.stderr
    lock_bytes = (project / "conda-lock.yml").read_bytes()
    explicit_bytes = (project / "conda-linux-64.lock").read_bytes()
    for path in project.glob("conda-*.lock*"):
        path.unlink()
    (project / "conda-lock.yml").unlink(missing_ok=True)
    rel = os.path.relpath(env, elsewhere)
    second = run_cli(
        "lock", "-f", rel, "--channel-alias", channel_tree.alias, "--explicit", cwd=elsewhere
    )
    assert second.returncode == 0, second.stderr
    assert (project / "conda-lock.yml").read_bytes() == lock_bytes
    assert (project / "conda-linux-64.lock").read_bytes() == explicit_bytes
    assert not list(elsewhere.iterdir())
    text = lock_bytes.decode()
    assert "#     conda torch-env lock --channel-alias" in text
    assert str(tmp_path) not in text.split("version: 1")[0].replace(channel_tree.alias, "")


def test_second_identical_lock_is_not_rewritten(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    do_lock(env, channel_tree)
    before = (tmp_path / "conda-lock.yml").stat()
    again = do_lock(env, channel_tree)
    assert not again.written
    assert (tmp_path / "conda-lock.yml").stat().st_mtime_ns == before.st_mtime_ns


def test_parsed_by_conda_lock_and_rendered_by_its_cli(tmp_path, channel_tree):
    from conda_lock.lockfile import parse_conda_lock_file

    env = make_project(tmp_path, CUDA_124)
    result = do_lock(env, channel_tree, explicit=True)
    parsed = parse_conda_lock_file(result.lockfile)
    ours = read_lockfile(result.lockfile)
    assert sorted(parsed.metadata.platforms) == sorted(THREE)
    assert parsed.metadata.content_hash == ours.content_hash
    for platform in THREE:
        theirs = {p.name: p for p in parsed.package if p.platform == platform}
        mine = {p.name: p for p in ours.packages_for(platform)}
        assert theirs.keys() == mine.keys()
        assert theirs["pytorch"].hash.sha256 == mine["pytorch"].sha256
        assert theirs["pytorch"].build == mine["pytorch"].build
    out = tmp_path / "rendered"
    out.mkdir()
    done = subprocess.run(
        [str(CONDA_LOCK), "render", "--kind", "explicit", str(result.lockfile)],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    for platform in THREE:
        rendered = (out / f"conda-{platform}.lock").read_text()
        ours_explicit = (tmp_path / f"conda-{platform}.lock").read_text()
        assert "@EXPLICIT" in rendered
        # Same package lines in the same order; only the first comment line differs.
        assert rendered.splitlines()[1:] == ours_explicit.splitlines()[1:]
    assert [p.name for p in result.explicit_files] == [f"conda-{p}.lock" for p in THREE]


def test_content_hash_equals_conda_locks(tmp_path, channel_tree):
    from conda_lock.content_hash import compute_content_hashes
    from conda_lock.lookup import DEFAULT_MAPPING_URL
    from conda_lock.src_parser import make_lock_spec
    from conda_lock.virtual_package import virtual_package_repo_from_specification

    env = make_project(tmp_path, CUDA_124)
    result = do_lock(env, channel_tree)
    spec = make_lock_spec(
        src_files=[env], mapping_url=DEFAULT_MAPPING_URL, platform_overrides=THREE
    )
    repo = virtual_package_repo_from_specification(tmp_path / "virtual-packages.yml")
    assert compute_content_hashes(spec, repo) == read_lockfile(result.lockfile).content_hash


# -- check -------------------------------------------------------------------------------------


def test_check_up_to_date_and_missing(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    missing = check(env)
    assert missing.missing and not missing.up_to_date and "does not exist" in missing.message
    do_lock(env, channel_tree)
    fresh = check(env)
    assert fresh.up_to_date, fresh.message
    assert fresh.to_dict()["up_to_date"] is True


def test_check_after_editing_environment(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    do_lock(env, channel_tree)
    env.write_text(
        env.read_text().replace("pytorch-cuda=12.4  # [linux]", "pytorch-cuda=12.1  # [linux]")
    )
    stale = check(env)
    assert not stale.up_to_date
    assert stale.stale == ("linux-64",) and not stale.added and not stale.removed
    assert "stale for linux-64" in stale.message
    assert any("'pytorch-cuda=12.1'" in d and "pytorch-cuda 12.4" in d for d in stale.details)


def test_check_after_editing_virtual_packages(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    do_lock(env, channel_tree)
    vps = virtual_packages_for("12.4")
    vps["win-64"]["__cuda"] = "12.1"
    write_virtual_packages(tmp_path / "virtual-packages.yml", vps)
    stale = check(env)
    assert stale.stale == ("win-64",)
    assert any("win-64" in d and "__cuda=12.1" in d and "CUDA 12.4" in d for d in stale.details)


def test_check_names_added_and_removed_platforms(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    do_lock(env, channel_tree, platforms=["linux-64", "win-64"])
    result = check(env, platforms=["linux-64", "osx-arm64"])
    assert result.added == ("osx-arm64",) and result.removed == ("win-64",)
    assert "missing osx-arm64" in result.message and "has win-64" in result.message


# -- refusing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deps", "channels", "cuda", "match"),
    [
        (
            TORCH_251,
            PYTORCH_CHANNELS,
            "12.4",
            "pytorch from the pytorch channel on linux-64 without",
        ),
        (
            ["python=3.12", "pytorch=2.13.0=cuda*"],
            ["conda-forge"],
            "12.9",
            "CUDA build of pytorch .* without cuda-version",
        ),
        (
            ["python=3.12", "pytorch=2.13.0"],
            ["conda-forge"],
            "13.0",
            "assumes __cuda=13.0 on linux-64, so pytorch resolves to a CUDA build",
        ),
    ],
    ids=["pytorch-channel-no-pytorch-cuda", "conda-forge-cuda-glob", "conda-forge-implicit"],
)
def test_unpinned_cuda_variant_is_refused(tmp_path, channel_tree, deps, channels, cuda, match):
    env = make_project(tmp_path, deps, channels=channels, cuda=cuda, platforms=["linux-64"])
    with pytest.raises(LockError, match=match) as info:
        do_lock(env, channel_tree)
    assert any("conda torch-env write" in h for h in info.value.hints)
    assert not (tmp_path / "conda-lock.yml").exists()


def test_broken_channel_metadata_trips_the_invariant(tmp_path):
    # A torchvision CPU build that forgot its pytorch-mutex and outranks the CUDA one:
    # the solver takes it, the lock must not.
    records = []
    for fn, entry in pytorch_channel_records():
        if entry["name"] == "torchvision" and entry["build"] == "py312_cpu":
            entry = {
                **entry,
                "build_number": 5,
                "depends": [d for d in entry["depends"] if not d.startswith("pytorch-mutex")],
                "constrains": [],
            }
        records.append((fn, entry))
    root = tmp_path / "channels"
    from support.repodata import conda_forge_records, nvidia_channel_records

    write_channel(root, "pytorch", records, ("linux-64", "win-64", "osx-arm64", "noarch"))
    write_channel(root, "nvidia", nvidia_channel_records(), ("linux-64", "win-64", "noarch"))
    write_channel(
        root, "conda-forge", conda_forge_records(), ("linux-64", "win-64", "osx-arm64", "noarch")
    )
    env = make_project(tmp_path / "p", [*TORCH_251, "pytorch-cuda=12.4"], platforms=["linux-64"])
    with pytest.raises(LockError, match="pins a CUDA variant but holds a CPU build: torchvision"):
        lock(env, channel_alias=root.as_uri(), command="x")
    assert not (tmp_path / "p" / "conda-lock.yml").exists()


def test_pip_requirement_the_conda_side_provides_is_not_locked_twice(
    tmp_path, channel_tree, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # uv's cache
    env = make_project(tmp_path, [*CPU, "requests", {"pip": ["requests"]}.__repr__()], cuda=None)
    env.write_text(
        env.read_text().replace(
            "  - {'pip': ['requests']}",
            "  - pip\n  - pip:\n    - --no-index\n    - requests==2.32.3",
        )
    )
    locked = read_lockfile(do_lock(env, channel_tree).lockfile)
    assert "requests" in {p.name for p in locked.packages}
    assert [p for p in locked.packages if p.manager == "pip"] == []


def _unsatisfiable(folder: Path) -> None:
    write_virtual_packages(folder / "virtual-packages.yml", virtual_packages_for("11.8"))


def _missing_channel(folder: Path) -> None:
    env = folder / "environment.yml"
    env.write_text(env.read_text().replace("  - nvidia\n", "  - nvidia-typo\n"))


def _malformed_environment(folder: Path) -> None:
    env = folder / "environment.yml"
    env.write_text(env.read_text().replace("  - python=3.12\n", "  - python=3.12\n   bad: [\n"))


def _malformed_virtual_packages(folder: Path) -> None:
    (folder / "virtual-packages.yml").write_text("subdirs:\n  linux-64:\n    packages: [1, 2\n")


def _unknown_platform(folder: Path) -> None:
    env = folder / "environment.yml"
    env.write_text(env.read_text().replace("  - osx-arm64\n", "  - osx-arm65\n"))


@pytest.mark.parametrize(
    ("breakage", "error", "match"),
    [
        (_unsatisfiable, LockError, r"cannot be solved for linux-64: .*pytorch-cuda 12\.4"),
        (_missing_channel, LockError, r"channel 'nvidia-typo' \(file://.*/nvidia-typo\) does not"),
        (_malformed_environment, EnvFileError, r"environment\.yml.*line 1[0-9]"),
        (_malformed_virtual_packages, EnvFileError, r"virtual-packages\.yml.*line [34]"),
        (_unknown_platform, EnvFileError, "osx-arm65"),
    ],
    ids=[
        "unsatisfiable",
        "missing-channel",
        "bad-environment",
        "bad-virtual-packages",
        "unknown-platform",
    ],
)
def test_bad_input_leaves_every_file_untouched(tmp_path, channel_tree, breakage, error, match):
    env = make_project(tmp_path, CUDA_124)
    do_lock(env, channel_tree, explicit=True)
    outputs = {p: p.read_bytes() for p in tmp_path.glob("conda-*")}
    assert len(outputs) == 4
    breakage(tmp_path)
    with pytest.raises(error, match=match):
        do_lock(env, channel_tree, explicit=True)
    assert {p: p.read_bytes() for p in tmp_path.glob("conda-*")} == outputs
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(p.name for p in outputs), "environment.yml", "virtual-packages.yml"]
    )


def test_unknown_platform_argument(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    with pytest.raises(UsageError, match="unknown platform 'linux-65'"):
        do_lock(env, channel_tree, platforms=["linux-65"])


def test_missing_environment_file(tmp_path):
    with pytest.raises(EnvFileError, match="not found"):
        lock(tmp_path / "environment.yml", command="x")


def test_named_virtual_package_spec_must_exist(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124)
    with pytest.raises(EnvFileError, match="virtual package spec .*nope.yml not found"):
        do_lock(env, channel_tree, virtual_package_spec=tmp_path / "nope.yml")


# -- credentials -------------------------------------------------------------------------------


class _AuthChannelServer(http.server.SimpleHTTPRequestHandler):
    """Serves the channel tree under /t/TOKEN/, only with the right basic-auth header."""

    token = "tk-SECRET-123"
    authorization = "Basic Ym9iOmh1bnRlcjI="  # bob:hunter2

    def log_message(self, *args):
        pass

    def do_GET(self):
        prefix = f"/t/{self.token}"
        if self.headers.get("Authorization") != self.authorization or not self.path.startswith(
            prefix
        ):
            self.send_error(401)
            return
        self.path = self.path[len(prefix) :]
        super().do_GET()


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # rattler drops connections it no longer needs (e.g. after a 401): not a test failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def auth_server(channel_tree):
    handler = functools.partial(_AuthChannelServer, directory=str(channel_tree.root))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_credentials_never_reach_the_lock(tmp_path, auth_server, monkeypatch):
    monkeypatch.setenv("RATTLER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # py-rattler's default cache
    env = make_project(tmp_path / "p", CUDA_124, platforms=["linux-64"])
    alias = f"http://bob:hunter2@{auth_server}/t/{_AuthChannelServer.token}"
    command = regenerate_command(env, channel_alias=alias, explicit=True)
    result = lock(env, channel_alias=alias, explicit=True, command=command)
    texts = [result.lockfile.read_text(), *(p.read_text() for p in result.explicit_files)]
    for text in texts:
        assert "hunter2" not in text and "bob" not in text and "tk-SECRET" not in text
        assert f"http://{auth_server}/pytorch/linux-64/pytorch-2.5.1-" in text
    locked = read_lockfile(result.lockfile)
    assert locked.channels[0] == f"http://{auth_server}/pytorch"
    assert all(p.url.startswith(f"http://{auth_server}/") for p in locked.packages)
    # py-rattler's repodata cache names each channel URL in plain text
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert [
        str(p) for p in cached if b"hunter2" in p.read_bytes() or b"tk-SECRET" in p.read_bytes()
    ] == []


def test_channel_errors_do_not_print_credentials(tmp_path, auth_server, monkeypatch):
    monkeypatch.setenv("RATTLER_CACHE_DIR", str(tmp_path / "cache"))
    env = make_project(tmp_path / "p", CUDA_124, platforms=["linux-64"])
    alias = f"http://bob:wrong-pw@{auth_server}/t/{_AuthChannelServer.token}"
    with pytest.raises(LockError) as info:
        lock(env, channel_alias=alias, command="x")
    text = info.value.message + " ".join(info.value.hints)
    assert "wrong-pw" not in text and "tk-SECRET" not in text
    assert f"http://{auth_server}/" in text and "cannot be read" in text


# -- --solver conda-lock -----------------------------------------------------------------------


def test_conda_lock_solver_without_conda_fails_at_once(tmp_path, monkeypatch):
    env = make_project(tmp_path, CUDA_124)
    (tmp_path / "conda-lock.yml").write_text("old\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    with pytest.raises(LockError, match="needs a conda, mamba or micromamba") as info:
        lock(env, solver="conda-lock", command="x")
    assert any("download" in h for h in info.value.hints)
    assert (tmp_path / "conda-lock.yml").read_text() == "old\n"


@pytest.mark.skipif(sys.platform == "win32", reason="the fake conda is a shell script")
def test_conda_lock_failure_leaves_the_lock_untouched(tmp_path, monkeypatch):
    env = make_project(tmp_path / "p", CUDA_124)
    lockfile = tmp_path / "p" / "conda-lock.yml"
    lockfile.write_text("old\n")
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "conda"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CONDA_EXE", raising=False)
    with pytest.raises(LockError, match="conda-lock failed with exit status 1") as info:
        lock(env, solver="conda-lock", command="x")
    assert "CalledProcessError" in info.value.message  # conda-lock's own last words
    assert calls.read_text().split() == ["--version"]  # conda-lock ran our conda, nothing else
    assert lockfile.read_text() == "old\n"
    assert sorted(p.name for p in lockfile.parent.iterdir()) == [
        "conda-lock.yml",
        "environment.yml",
        "virtual-packages.yml",
    ]


@pytest.mark.parametrize(
    ("channels", "platform", "specs", "vps"),
    [
        (PYTORCH_CHANNELS, "linux-64", ["pytorch=2.5.1", "cpuonly"], {}),
        (PYTORCH_CHANNELS, "win-64", ["pytorch=2.5.1=*cuda12.4*"], {"__cuda": "12.4"}),
        (PYTORCH_CHANNELS, "osx-arm64", ["pytorch=2.5.1", "torchvision"], {}),
        (["conda-forge"], "linux-64", ["pytorch=2.13.0=cpu*"], {"__cuda": "12.9"}),
        (["conda-forge"], "linux-64", ["pytorch-cpu=2.13.0"], {"__cuda": "12.9"}),
        (["conda-forge"], "linux-64", ["pytorch", "cuda-version=13.0"], {"__cuda": "13.0"}),
        (["conda-forge"], "linux-64", ["pytorch"], {}),
        (["conda-forge"], "linux-64", ["numpy"], {"__cuda": "12.9"}),
    ],
    ids=[
        "cpuonly",
        "build-pin",
        "osx",
        "cf-cpu-build",
        "cf-pytorch-cpu",
        "cf-cuda-version",
        "cf-no-cuda",
        "no-torch",
    ],
)
def test_pinned_or_cpu_requests_pass_the_guard(channels, platform, specs, vps):
    from conda_torch_plugin.lock.variant_guard import check_variant_pinned

    check_variant_pinned(channels, platform, specs, vps)  # raises if refused


def test_guard_sees_a_channel_prefixed_pytorch():
    from conda_torch_plugin.lock.variant_guard import check_variant_pinned

    with pytest.raises(LockError, match="without pinning its variant"):
        check_variant_pinned(["conda-forge"], "linux-64", ["pytorch::pytorch=2.5.1"], {})


def test_lock_in_another_folder_records_relative_paths(tmp_path, channel_tree):
    env = make_project(tmp_path, CUDA_124, platforms=["linux-64"])
    target = tmp_path / "locks" / "torch.yml"
    command = regenerate_command(env, lockfile=target, channel_alias=channel_tree.alias)
    assert command == (
        f"conda torch-env lock -f ../environment.yml --lockfile torch.yml "
        f"--channel-alias {channel_tree.alias}"
    )
    do_lock(env, channel_tree, lockfile=target, command=command)
    assert read_lockfile(target).sources == ("../environment.yml",)
    assert f"#     {command}\n" in target.read_text()
    assert check(env, lockfile=target).up_to_date


def test_a_conda_lock_traceback_becomes_its_last_line():
    from conda_torch_plugin.lock.conda_lock_solver import _conda_lock_failure

    output = """Traceback (most recent call last):
  File "/venv/bin/conda-lock", line 8, in <module>
    sys.exit(main())
  File "/venv/lib/python3.11/site-packages/requests/adapters.py", line 700, in send
    raise ConnectionError(e, request=request)
requests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.anaconda.org', port=443): \
Max retries exceeded with url: /download/anaconda/conda-standalone
"""
    error = _conda_lock_failure(1, output)
    assert "Traceback" not in error.message and "File " not in error.message
    assert error.message.startswith("conda-lock failed with exit status 1: ")
    assert "Max retries exceeded" in error.message
    assert "works offline" in error.hints[0]
