"""The installer core: real archives in file:// (and loopback http://) channels, real rattler."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from support.packages import archive_path, copy_channels, corrupt_archive, solved_lock
from support.servers import basic_auth_handler, serve, token_handler, truncating_handler
from support.trees import snapshot

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.errors import IncompatibleMachine, InstallError
from conda_torch_plugin.install import (
    channel_name,
    check_machine,
    install_from_lock,
    prepare_install,
    rewrite_url,
)
from conda_torch_plugin.machine.model import Gpu, Machine
from conda_torch_plugin.recipes import load_recipes

# The test channels hold linux-64 packages only; create/install target this machine's platform.
pytestmark = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
PLATFORM = "linux-64"
TORCH_CUDA = "pytorch-2.5.1-py3.12_cuda12.4_cudnn9.1.0_0"


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".staging-" in p.name or ".old-" in p.name)


@pytest.fixture(scope="module")
def cuda_lock(package_channels):
    return solved_lock(package_channels)


@pytest.fixture(scope="module")
def cpu_lock(package_channels):
    return solved_lock(
        package_channels, ("pytorch=2.5.1", "torchvision", "torchaudio", "cpuonly", "python=3.12")
    )


def test_install_new_prefix(cuda_lock, tmp_path):
    prefix = tmp_path / "envs" / "torch"
    result = install_from_lock(
        cuda_lock,
        PLATFORM,
        prefix,
        cache_dir=tmp_path / "cache",
        command="conda-torch-env install -p X",
    )
    site = prefix / "lib/python3.12/site-packages"
    assert 'cuda = "12.4"' in (site / "torch/version.py").read_text()
    assert (site / "filelock/__init__.py").is_file()  # noarch python mapped into site-packages
    assert (prefix / "lib/libcublas.so.12").is_file()
    # The prefix placeholder names the final prefix, not the staging folder it was built in.
    assert (prefix / "bin/python3.12-config").read_text().strip().endswith(f"echo {prefix}")
    assert not (prefix / "CACHEDIR.TAG").exists()
    assert leftovers(prefix.parent) == []

    records = {p.stem: json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json")}
    assert len(records) == len(cuda_lock.packages) == len(result.installed)
    locked = {f"{p.name}-{p.version}-{p.build}": p for p in cuda_lock.packages}
    assert set(records) == set(locked)
    for dist, record in records.items():
        pkg = locked[dist]
        assert (record["name"], record["version"], record["build"]) == (
            pkg.name,
            pkg.version,
            pkg.build,
        )
        assert (record["url"], record["md5"], record["sha256"]) == (pkg.url, pkg.md5, pkg.sha256)
        assert record["channel"] == pkg.url.rsplit("/", 2)[0] + "/"
    history = (prefix / "conda-meta/history").read_text()
    assert history.startswith("==> ") and "# cmd: conda-torch-env install -p X" in history
    assert f"::{TORCH_CUDA}" in history


def test_conda_reads_the_records(cuda_lock, tmp_path):
    """conda's own PrefixData (the one vendored in conda-lock) lists what was installed."""
    prefix_data = pytest.importorskip("conda_lock._vendor.conda.core.prefix_data")
    prefix = tmp_path / "env"
    install_from_lock(cuda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    listed = {
        (r.name, r.version, r.build) for r in prefix_data.PrefixData(str(prefix)).iter_records()
    }
    assert listed == {(p.name, p.version, p.build) for p in cuda_lock.packages}


def test_update_switches_cuda_to_cpu_and_keeps_history(cuda_lock, cpu_lock, tmp_path):
    prefix, cache = tmp_path / "env", tmp_path / "cache"
    install_from_lock(cuda_lock, PLATFORM, prefix, cache_dir=cache)
    result = install_from_lock(cpu_lock, PLATFORM, prefix, cache_dir=cache)
    assert result.plan.mode == "update"
    assert TORCH_CUDA in result.removed and "pytorch-2.5.1-py3.12_cpu_0" in result.installed
    meta = {p.stem for p in (prefix / "conda-meta").glob("*.json")}
    assert meta == {f"{p.name}-{p.version}-{p.build}" for p in cpu_lock.packages}
    assert "cuda = None" in (prefix / "lib/python3.12/site-packages/torch/version.py").read_text()
    assert not (prefix / "lib/libcublas.so.12").exists()
    assert (prefix / "conda-meta/history").read_text().count("==> ") == 2
    assert leftovers(tmp_path) == []


def test_corrupted_archive_is_refused_and_nothing_is_created(package_channels, tmp_path):
    channels = copy_channels(package_channels, tmp_path / "channels")
    lock = solved_lock(channels)
    archive = archive_path(channels, f"{TORCH_CUDA}.tar.bz2")
    corrupt_archive(archive)
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    expected = next(p.sha256 for p in lock.packages if p.name == "pytorch")
    prefix = tmp_path / "env"
    with pytest.raises(InstallError) as raised:
        install_from_lock(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    message = raised.value.message
    assert TORCH_CUDA in message and expected in message and actual in message
    assert not prefix.exists()
    assert leftovers(tmp_path) == []


def test_edited_lock_hash_is_refused_and_existing_env_is_untouched(cuda_lock, cpu_lock, tmp_path):
    prefix, cache = tmp_path / "env", tmp_path / "cache"
    install_from_lock(cpu_lock, PLATFORM, prefix, cache_dir=cache)
    before = snapshot(prefix)
    edited = replace(
        cuda_lock,
        packages=tuple(
            replace(p, sha256="0" * 64) if p.name == "libcublas" else p for p in cuda_lock.packages
        ),
    )
    with pytest.raises(
        InstallError, match=r"libcublas-12\.4\.5\.8-0 .*expected sha256 0{64}, got [0-9a-f]{64}"
    ):
        install_from_lock(edited, PLATFORM, prefix, cache_dir=cache)
    assert snapshot(prefix) == before
    assert leftovers(tmp_path) == []


def test_failure_while_linking_leaves_existing_env_as_it_was(cpu_lock, cuda_lock, tmp_path):
    """A failure after verification (here: a cache path that cannot be created) rolls back too."""
    prefix = tmp_path / "env"
    install_from_lock(cpu_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    before = snapshot(prefix)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the package cache folder should be\n")
    with pytest.raises(InstallError, match="linking into"):
        install_from_lock(cuda_lock, PLATFORM, prefix, cache_dir=blocked)
    assert snapshot(prefix) == before
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: None, "create"),
        (lambda p: p.mkdir(), "create"),
        (lambda p: (p / "conda-meta").mkdir(parents=True), "update"),
    ],
    ids=["absent", "empty-folder", "conda-env"],
)
def test_prepare_install_modes(cuda_lock, tmp_path, setup, expected):
    prefix = tmp_path / "env"
    setup(prefix)
    plan = prepare_install(cuda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert plan.mode == expected
    assert plan.total_bytes == sum(archive_size(p.url) for p in cuda_lock.packages)
    assert plan.download_count == 0  # file:// archives are read in place


def archive_size(url: str) -> int:
    return Path(url.removeprefix("file://")).stat().st_size


def test_folder_that_is_not_an_environment_is_refused(cuda_lock, tmp_path):
    prefix = tmp_path / "project"
    prefix.mkdir()
    (prefix / "notes.txt").write_text("mine\n")
    with pytest.raises(InstallError, match="not a conda environment"):
        install_from_lock(cuda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in prefix.iterdir()) == ["notes.txt"]


def test_dry_run_changes_nothing(cuda_lock, tmp_path):
    result = install_from_lock(
        cuda_lock, PLATFORM, tmp_path / "env", cache_dir=tmp_path / "cache", dry_run=True
    )
    assert result.dry_run and len(result.plan.packages) == len(cuda_lock.packages)
    assert list(tmp_path.iterdir()) == []


def test_platform_missing_from_lock(cuda_lock, tmp_path):
    with pytest.raises(InstallError, match="no packages for win-64 .*linux-64"):
        prepare_install(cuda_lock, "win-64", tmp_path / "env")


# --- mirrors -------------------------------------------------------------------------------


def test_channel_alias_serves_a_public_lock_from_a_local_mirror(
    cuda_lock, package_channels, tmp_path
):
    """A lock written against conda.anaconda.org installs from --channel-alias file:///ROOT."""
    public = "https://conda.anaconda.org"
    root_url = package_channels.as_uri()
    lock = replace(
        cuda_lock,
        channels=tuple(c.replace(root_url, public) for c in cuda_lock.channels),
        packages=tuple(replace(p, url=p.url.replace(root_url, public)) for p in cuda_lock.packages),
    )
    prefix = tmp_path / "env"
    result = install_from_lock(
        lock, PLATFORM, prefix, cache_dir=tmp_path / "cache", channel_alias=root_url
    )
    assert all(p.url.startswith(root_url + "/") for p in result.plan.packages)
    record = json.loads((prefix / "conda-meta" / f"{TORCH_CUDA}.json").read_text())
    assert record["url"] == f"{root_url}/pytorch/linux-64/{TORCH_CUDA}.tar.bz2"


@pytest.mark.parametrize(
    ("url", "alias", "custom", "expected"),
    [
        (
            "https://conda.anaconda.org/pytorch/linux-64/a.tar.bz2",
            "https://m.example/c",
            {},
            "https://m.example/c/pytorch/linux-64/a.tar.bz2",
        ),
        (
            "https://conda.anaconda.org/nvidia/label/cuda-12.4.0/linux-64/b.conda",
            "file:///srv/ch",
            {},
            "file:///srv/ch/nvidia/label/cuda-12.4.0/linux-64/b.conda",
        ),
        (
            "https://conda.anaconda.org/pytorch/noarch/c.tar.bz2",
            None,
            {"pytorch": "https://internal.example/pt"},
            "https://internal.example/pt/noarch/c.tar.bz2",
        ),
        (
            "https://other.example/x/linux-64/d.conda",
            "https://m.example",
            {},
            "https://other.example/x/linux-64/d.conda",
        ),
    ],
    ids=["alias", "label", "custom-channel", "not-a-lock-channel"],
)
def test_rewrite_url(url, alias, custom, expected):
    channels = (
        "https://conda.anaconda.org/pytorch",
        "https://conda.anaconda.org/nvidia/label/cuda-12.4.0",
    )
    assert rewrite_url(url, channels, alias, custom) == expected


def test_channel_name_keeps_labels():
    assert channel_name("https://conda.anaconda.org/conda-forge") == "conda-forge"
    assert (
        channel_name("https://conda.anaconda.org/nvidia/label/cuda-12.4.0/")
        == "nvidia/label/cuda-12.4.0"
    )


@pytest.fixture
def http_channels(package_channels):
    """The channel tree served over loopback HTTP (no network leaves the machine)."""
    handler = functools.partial(_QuietHandler, directory=str(package_channels))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_http_downloads_are_verified_cached_and_recorded(
    cuda_lock, package_channels, http_channels, tmp_path
):
    cache = tmp_path / "cache"
    plan = prepare_install(
        cuda_lock, PLATFORM, tmp_path / "env", cache_dir=cache, channel_alias=http_channels
    )
    assert plan.download_count == len(cuda_lock.packages)
    assert (
        plan.download_bytes
        == plan.total_bytes
        == sum(archive_size(p.url) for p in cuda_lock.packages)
    )
    install_from_lock(cuda_lock, PLATFORM, tmp_path / "env", plan=plan)
    record = json.loads((tmp_path / "env/conda-meta" / f"{TORCH_CUDA}.json").read_text())
    assert record["url"] == f"{http_channels}/pytorch/linux-64/{TORCH_CUDA}.tar.bz2"
    assert record["channel"] == f"{http_channels}/pytorch/"
    again = prepare_install(
        cuda_lock, PLATFORM, tmp_path / "env2", cache_dir=cache, channel_alias=http_channels
    )
    assert again.download_count == 0


# --- machine check -------------------------------------------------------------------------


def _gpu(name: str, cc: str | None, index: int = 0) -> Gpu:
    return Gpu(index=index, name=name, uuid=None, compute_capability=cc, memory_mib=None)


H100 = _gpu("NVIDIA H100 80GB HBM3", "9.0")


@pytest.mark.parametrize(
    ("detection", "ok", "codes"),
    [
        (
            Machine("550.54.15", "12.4", "nvml", (H100,)),
            True,
            ["driver-supports-cuda", "gpu-covered"],
        ),
        (
            Machine("535.104.05", "12.2", "nvml", (_gpu("NVIDIA RTX A6000", "8.6"),)),
            True,
            ["minor-version-compatibility", "gpu-covered"],
        ),
        (Machine("470.57.02", "11.4", "nvml", (H100,)), False, ["driver-too-old", "gpu-covered"]),
        (Machine(None, None, "none", (), ("NVML: library not found",)), False, ["no-driver"]),
        (
            Machine("550.54.15", "12.4", "nvml", (_gpu("Tesla K40m", "3.5"),)),
            False,
            ["driver-supports-cuda", "gpu-not-covered"],
        ),
        (
            Machine("570.86.10", "12.8", "nvml", (_gpu("NVIDIA GeForce RTX 5090", "12.0"),)),
            False,
            ["driver-supports-cuda", "gpu-not-covered"],
        ),
        (Machine("550.54.15", "12.4", "nvml", ()), True, ["driver-supports-cuda", "no-gpu"]),
    ],
    ids=["h100", "minor-compat", "old-driver", "no-driver", "kepler", "blackwell", "no-gpu"],
)
def test_check_machine_cuda_lock(cuda_lock, detection, ok, codes):
    check = check_machine(cuda_lock, PLATFORM, detection, load_recipes())
    assert check.flavour.label == "CUDA 12.4"
    assert check.ok is ok
    assert [f.code for f in check.findings] == codes
    if not ok:
        with pytest.raises(IncompatibleMachine) as raised:
            check.raise_if_incompatible()
        assert "use --force to install anyway" in raised.value.hints


def test_refusal_says_why_and_what_to_do(cuda_lock):
    no_driver = Machine(None, None, "none", (), ("NVML: library not found",))
    check = check_machine(cuda_lock, PLATFORM, no_driver, load_recipes())
    with pytest.raises(IncompatibleMachine) as raised:
        check.raise_if_incompatible()
    assert "no NVIDIA driver was found" in raised.value.message
    assert "(NVML: library not found)" in raised.value.message  # the detection note: why
    assert "conda torch-env write --cpu && conda torch-env lock" in raised.value.hints[0]
    # The refusal carries the findings behind it as typed fields, for --json and callers.
    assert raised.value.platform == PLATFORM
    assert [f.severity for f in raised.value.findings] == ["error"] * len(raised.value.findings)
    assert raised.value.findings and raised.value.to_dict()["details"]["findings"]


def test_check_machine_blackwell_fix_names_conda_forge(cuda_lock):
    rtx5090 = _gpu("NVIDIA GeForce RTX 5090", "12.0")
    check = check_machine(
        cuda_lock, PLATFORM, Machine("570.86.10", "12.8", "nvml", (rtx5090,)), load_recipes()
    )
    (error,) = check.errors
    assert "write --gpu-arch 12.0 --source conda-forge" in (error.fix or "")


def test_check_machine_cpu_lock_on_gpu_machine_is_info(cpu_lock):
    check = check_machine(
        cpu_lock, PLATFORM, Machine("550.54.15", "12.4", "nvml", (H100,)), load_recipes()
    )
    assert check.ok and [f.severity for f in check.findings] == ["info"]
    assert "will not use the 1 NVIDIA GPU" in check.findings[0].message


def test_check_machine_platform_not_in_lock(cuda_lock):
    check = check_machine(
        cuda_lock, "win-64", Machine("550.54.15", "12.4", "nvml", (H100,)), load_recipes()
    )
    assert not check.ok and check.findings[0].code == "platform-not-locked"


class RecordingProgress:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.events: list[tuple[str, str, int, int]] = []

    def step(self, message: str) -> None:
        self.steps.append(message)

    def advance(self, phase: str, name: str, done: int, total: int) -> None:
        self.events.append((phase, name, done, total))


def test_progress_reports_fetch_and_link_per_package(cuda_lock, tmp_path):
    progress = RecordingProgress()
    install_from_lock(
        cuda_lock, PLATFORM, tmp_path / "env", cache_dir=tmp_path / "cache", progress=progress
    )
    count = len(cuda_lock.packages)
    for phase in ("fetch", "link"):
        events = [e for e in progress.events if e[0] == phase]
        assert [e[2] for e in events] == list(range(1, count + 1)), phase
        assert {e[3] for e in events} == {count}
    assert {e[1] for e in progress.events if e[0] == "link"} == {p.name for p in cuda_lock.packages}


def test_the_running_environment_is_refused(cuda_lock, tmp_path):
    import sys

    with pytest.raises(InstallError, match="the environment this command runs from"):
        prepare_install(cuda_lock, PLATFORM, Path(sys.prefix), cache_dir=tmp_path / "cache")


# --- credentials and broken downloads (loopback servers) -------------------------------------

SECRET = "s3cret-PW"
TOKEN = "tk-SECRET-77"


def files_holding(root: Path, secret: str) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and secret.encode() in p.read_bytes()
    )


def test_password_protected_mirror_installs_and_no_record_holds_the_password(
    cuda_lock, package_channels, tmp_path
):
    with serve(package_channels, basic_auth_handler("alice", SECRET)) as url:
        alias = url.replace("http://", f"http://alice:{SECRET}@")
        plan = prepare_install(
            cuda_lock, PLATFORM, tmp_path / "env", cache_dir=tmp_path / "c", channel_alias=alias
        )
        assert plan.total_bytes == sum(archive_size(p.url) for p in cuda_lock.packages)  # HEAD
        assert SECRET not in json.dumps(plan.to_dict())
        assert "http://***@127.0.0.1" in json.dumps(plan.to_dict())
        install_from_lock(
            cuda_lock, PLATFORM, tmp_path / "env", plan=plan, command=f"x --channel-alias {alias}"
        )
    prefix = tmp_path / "env"
    assert files_holding(prefix / "conda-meta", SECRET) == []
    assert files_holding(tmp_path / "c", SECRET) == []
    record = json.loads((prefix / "conda-meta" / f"{TORCH_CUDA}.json").read_text())
    assert record["url"] == f"{url}/pytorch/linux-64/{TORCH_CUDA}.tar.bz2"
    history = (prefix / "conda-meta" / "history").read_text()
    assert "# cmd: x --channel-alias http://***@127.0.0.1:" in history
    assert f"+{url}/pytorch::{TORCH_CUDA}" in history


def test_wrong_password_is_an_error_that_does_not_show_it(cuda_lock, package_channels, tmp_path):
    with serve(package_channels, basic_auth_handler("alice", "right")) as url:
        alias = url.replace("http://", f"http://alice:{SECRET}@")
        with pytest.raises(InstallError) as info:
            install_from_lock(
                cuda_lock, PLATFORM, tmp_path / "env", cache_dir=tmp_path / "c", channel_alias=alias
            )
    message = str(info.value) + " ".join(info.value.hints)
    assert SECRET not in message and "alice" not in message
    assert "401" in message and f"http://***@{url[7:]}/" in message
    assert not (tmp_path / "env").exists()


def test_token_mirror_installs_and_no_record_holds_the_token(cuda_lock, package_channels, tmp_path):
    with serve(package_channels, token_handler(TOKEN)) as url:
        install_from_lock(
            cuda_lock,
            PLATFORM,
            tmp_path / "env",
            cache_dir=tmp_path / "c",
            channel_alias=f"{url}/t/{TOKEN}",
            command=f"x --channel-alias {url}/t/{TOKEN}",
        )
        with pytest.raises(InstallError) as info:
            install_from_lock(
                cuda_lock,
                PLATFORM,
                tmp_path / "env2",
                cache_dir=tmp_path / "c2",
                channel_alias=f"{url}/t/tk-WRONG-{TOKEN}",
            )
    assert files_holding(tmp_path / "env" / "conda-meta", TOKEN) == []
    record = json.loads((tmp_path / "env" / "conda-meta" / f"{TORCH_CUDA}.json").read_text())
    assert record["url"] == f"{url}/pytorch/linux-64/{TORCH_CUDA}.tar.bz2"
    assert f"{url}/t/***/" in str(info.value)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_connection_closed_mid_body_is_an_incomplete_download(
    cuda_lock, package_channels, tmp_path, chunked
):
    cache = tmp_path / "c"
    handler = truncating_handler(f"{TORCH_CUDA}.tar.bz2", chunked=chunked)
    with serve(package_channels, handler) as url, pytest.raises(InstallError) as info:
        install_from_lock(cuda_lock, PLATFORM, tmp_path / "env", cache_dir=cache, channel_alias=url)
    message = str(info.value)
    assert f"{TORCH_CUDA} ({url}/pytorch/linux-64/{TORCH_CUDA}.tar.bz2): incomplete download" in (
        message
    )
    assert "sha256" not in message and "did not match" not in message
    assert any("try again" in h for h in info.value.hints)
    assert not any("re-lock" in h for h in info.value.hints)
    assert not list(cache.glob(f"pkgs/*{TORCH_CUDA}*"))  # no partial file kept
    assert not (tmp_path / "env").exists()


def test_malformed_mirror_url_is_a_fetch_error(cuda_lock, tmp_path):
    with pytest.raises(InstallError, match="could not fetch"):
        install_from_lock(
            cuda_lock,
            PLATFORM,
            tmp_path / "env",
            cache_dir=tmp_path / "c",
            channel_alias="http://[::1",
        )
    assert not (tmp_path / "env").exists()


def test_a_mac_older_than_the_locks_macos_floor_cannot_run_it():
    """conda-forge's Mac builds need the macOS they were built for (their ``__osx >=X``)."""
    from conda_torch_plugin.condalock.lockfile import LockedPackage, LockFile
    from conda_torch_plugin.install import check_fleet

    channel = "https://conda.anaconda.org/conda-forge"
    build = "cpu_generic_py312_h0123456_0"
    torch = LockedPackage(
        name="pytorch",
        version="2.12.0",
        build=build,
        platform="osx-arm64",
        url=f"{channel}/osx-arm64/pytorch-2.12.0-{build}.conda",
        md5="0" * 32,
        sha256="0" * 64,
    )
    lock = LockFile(
        ("osx-arm64",), (channel,), {"osx-arm64": "0" * 64}, ("environment.yml",), (torch,)
    )

    def mac(name: str, osx: str) -> Machine:
        return Machine(None, None, "profile", (), platform="osx-arm64", hostname=name, osx=osx)

    results = check_fleet(
        lock,
        [mac("mbp-2020", "11.7"), mac("mbp-2024", "14.5")],
        load_recipes(),
        floors={"osx-arm64": {"__osx": "12.0"}},
    )
    verdicts = {r.machine: r.check for r in results}
    assert verdicts["mbp-2024"].ok
    assert not verdicts["mbp-2020"].ok
    (error,) = verdicts["mbp-2020"].errors
    assert error.code == "osx-too-old"
    assert "macOS 11.7 is older than the 12.0 this build needs" in error.message


@pytest.mark.parametrize(
    ("glibc", "ok"), [("2.17", False), ("2.27", False), ("2.28", True), ("2.39", True)]
)
def test_a_locked_package_needing_a_newer_glibc_fails_the_check(cpu_lock, glibc, ok):
    """conda refuses ``__glibc >=X`` packages while solving; an install from a lock solves
    nothing, so the check reads the packages' own dependency (conda-forge's carry one)."""
    first, *rest = cpu_lock.packages
    needy = replace(first, dependencies={**first.dependencies, "__glibc": ">=2.28,<3.0.a0"})
    lock = replace(cpu_lock, packages=(needy, *rest))
    machine = Machine(None, None, "none", (), platform=PLATFORM, glibc=glibc)
    check = check_machine(lock, PLATFORM, machine, load_recipes())
    assert check.ok is ok
    if not ok:
        (error,) = check.errors
        assert error.code == "glibc-too-old"
        assert f"glibc {glibc} is older than the 2.28 this build needs" in error.message
    # The same lock without that dependency passes on the old machine.
    assert check_machine(cpu_lock, PLATFORM, machine, load_recipes()).ok
