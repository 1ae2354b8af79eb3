"""The install transaction under concurrency, kills, signals and odd filesystems.

Real subprocesses of the ``conda-torch-env`` console script install locks made
by the real ``write`` and ``lock`` commands from the tiny real channels of
tests/support/packages.py. After every run the prefix is checked against its own
``conda-meta`` records: the files on disk are exactly the files the records
list, and the records are exactly one lock's packages (whole-old or whole-new).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.trees import snapshot

from conda_torch_plugin.cli import main
from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.condalock.lockfile import read_lockfile
from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.install import install_from_lock, prepare_install

pytestmark = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
PLATFORM = "linux-64"
CONSOLE = Path(sys.executable).with_name("conda-torch-env")


def make_lock(folder: Path, channel_root: Path, *plan_flags: str) -> Path:
    """environment.yml + conda-lock.yml through the real write and lock commands."""
    folder.mkdir(parents=True, exist_ok=True)
    env_file = folder / "environment.yml"
    assert main(["write", "-f", str(env_file), "--platform", PLATFORM, *plan_flags]) == 0
    assert main(["lock", "-f", str(env_file), "--channel-alias", channel_root.as_uri()]) == 0
    return folder / "conda-lock.yml"


def dists(lockfile: Path) -> frozenset[str]:
    lock = read_lockfile(lockfile)
    return frozenset(f"{p.name}-{p.version}-{p.build}" for p in lock.packages_for(PLATFORM))


@pytest.fixture(scope="module")
def locks(package_channels, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("safety-locks")
    return {
        "cuda": make_lock(root / "cuda", package_channels, "--cuda", "12.4", "--gpu-arch", "8.6"),
        "cpu": make_lock(root / "cpu", package_channels, "--cpu"),
    }


@pytest.fixture
def env(fake_nvml_env, tmp_path) -> dict[str, str]:
    """A machine (fake H100, driver 550) that can run both locks; a cache private to the test."""
    return fake_nvml_env(extra={"CONDA_TORCH_ENV_CACHE_DIR": str(tmp_path / "cache")})


def start(prefix: Path, lockfile: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CONSOLE), "install", "-p", str(prefix), "--lockfile", str(lockfile), "--yes"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def install(prefix: Path, lockfile: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    process = start(prefix, lockfile, env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def environment(prefix: Path) -> frozenset[str]:
    """The dists conda-meta records, after checking the files on disk are exactly theirs."""
    records = [json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json")]
    listed = {f for record in records for f in record["files"]}
    on_disk = {
        str(p.relative_to(prefix))
        for p in prefix.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.relative_to(prefix).parts[0] != "conda-meta"
    }
    assert on_disk == listed, (sorted(on_disk - listed)[:5], sorted(listed - on_disk)[:5])
    return frozenset(f"{r['name']}-{r['version']}-{r['build']}" for r in records)


def leftovers(prefix: Path) -> list[str]:
    """Staging and old folders and the swap journal (the lock file is meant to stay)."""
    return sorted(
        p.name
        for p in prefix.parent.iterdir()
        if p.name.startswith((f".{prefix.name}.staging-", f".{prefix.name}.old-"))
        or p.name == f".{prefix.name}.torch-env-txn.json"
    )


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.parametrize("existing", [False, True], ids=["new-prefix", "existing-env"])
def test_two_installs_into_one_prefix_end_consistent(locks, env, tmp_path, existing):
    """Pairs of installs started a moment apart (these tiny environments install in a
    fraction of a second, so the pairs start closer than real ones would collide)."""
    for pair, delay in enumerate((0.0, 0.05, 0.1, 0.2, 0.3, 0.5)):
        prefix = tmp_path / f"env{pair}"
        if existing:
            install(prefix, locks["cuda"], env)
        first = start(prefix, locks["cpu"], env)
        time.sleep(delay)
        second = start(prefix, locks["cuda"], env)
        for process in (first, second):
            _out, err = process.communicate(timeout=120)
            assert process.returncode == 0 and "Traceback" not in err, (delay, err)
        # The later install waited for the earlier one, then updated what it left.
        assert environment(prefix) in (dists(locks["cpu"]), dists(locks["cuda"])), delay
        assert leftovers(prefix) == [], delay


def test_a_held_lock_makes_install_wait_then_fail_clearly(locks, env, tmp_path):
    prefix = tmp_path / "env"
    install(prefix, locks["cpu"], env)
    before = snapshot(prefix)
    with open(tmp_path / ".env.torch-env.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.truncate(0)
        held.write(f"{os.getpid()}\n")
        held.flush()
        process = start(prefix, locks["cuda"], {**env, "CONDA_TORCH_ENV_LOCK_TIMEOUT": "1"})
        _out, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    assert f"waiting for another conda torch-env install into {prefix} (pid {os.getpid()})" in err
    assert "is still running after 1 s of waiting" in err and "Traceback" not in err
    assert snapshot(prefix) == before
    assert leftovers(prefix) == []


# --- kills and signals ---------------------------------------------------------------------


def state_after_kill(prefix: Path, known: set[frozenset[str]]) -> str:
    """'absent', 'whole' or 'recoverable' (killed between the renames: the journal names a
    whole old environment, which the next run restores). Anything else fails."""
    if prefix.exists():
        assert environment(prefix) in known
        return "whole"
    journal = prefix.parent / f".{prefix.name}.torch-env-txn.json"
    if not journal.exists():
        return "absent"
    backup = prefix.parent / json.loads(journal.read_text())["backup"]
    assert environment(backup) in known
    return "recoverable"


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_whole_or_recoverable_and_no_leftovers(
    locks, env, tmp_path
):
    prefix = tmp_path / "env"
    known = {dists(locks["cuda"]), dists(locks["cpu"])}
    started = time.monotonic()
    install(prefix, locks["cpu"], env)
    duration = time.monotonic() - started  # also warms the package cache
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    for run in range(30):
        process = start(prefix, locks["cuda" if run % 2 == 0 else "cpu"], env)
        time.sleep(rng.uniform(0.1, duration * 1.1))
        process.kill()
        process.communicate(timeout=60)
        outcome = state_after_kill(prefix, known)
        seen[outcome] = seen.get(outcome, 0) + 1
        if leftovers(prefix):
            seen["left"] = seen.get("left", 0) + 1
        if outcome == "absent":  # killed while creating: start over from an environment
            install(prefix, locks["cpu"], env)
    install(prefix, locks["cuda"], env)
    assert environment(prefix) == dists(locks["cuda"]), f"seed {seed}, {seen}"
    assert leftovers(prefix) == [], f"seed {seed}, {seen}"


@pytest.mark.slow
def test_ctrl_c_or_sigterm_at_random_points_leaves_a_whole_prefix_and_a_clean_message(
    locks, env, tmp_path
):
    """Unlike SIGKILL, an interrupt is ours to handle: wherever it lands after start-up,
    the prefix is one whole environment, nothing is left beside it, and stderr has our
    "Interrupted." without a traceback (asyncio's loop set-up and the old environment's
    removal were once such places)."""
    prefix = tmp_path / "env"
    known = {dists(locks["cuda"]), dists(locks["cpu"])}
    install(prefix, locks["cuda"], env)
    started = time.monotonic()
    install(prefix, locks["cpu"], env)
    duration = time.monotonic() - started
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    seen: dict[int, int] = {}
    for run in range(30):
        lockfile = locks["cuda" if run % 2 == 0 else "cpu"]
        command = [str(CONSOLE), "install", "-p", str(prefix), "--lockfile", str(lockfile)]
        process = subprocess.Popen(
            [*command, "--yes", "-v"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # From its first progress line on, the command is ours: an interrupt earlier, in
        # the interpreter's start-up and imports, is Python's to report.
        assert process.stderr is not None
        first_line = process.stderr.readline()
        time.sleep(rng.uniform(0, duration))
        sent = signal.SIGINT if run % 3 == 0 else signal.SIGTERM
        process.send_signal(sent)
        _out, rest = process.communicate(timeout=60)
        err = first_line + rest
        seen[process.returncode] = seen.get(process.returncode, 0) + 1
        context = f"seed {seed}, run {run}, {sent.name}: {err}"
        assert process.returncode in (0, 128 + sent), context
        for noise in ("Traceback", "Exception ignored", "never awaited"):
            assert noise not in err, context
        if process.returncode:
            assert "Interrupted." in err, context
        assert environment(prefix) in known, context
        assert leftovers(prefix) == [], context
    assert sum(n for status, n in seen.items() if status) > 0, f"seed {seed}: never interrupted"


def test_sigterm_mid_install_leaves_the_prefix_as_it_was(locks, env, tmp_path):
    prefix = tmp_path / "env"
    install(prefix, locks["cuda"], env)
    before = snapshot(prefix)
    # The staging folder lives a fraction of a second; on a busy machine the install may
    # finish before the signal lands. Such a try proves nothing: put the environment back
    # and try again (bounded).
    for _ in range(10):
        process = start(prefix, locks["cpu"], env)
        deadline = time.monotonic() + 60
        while process.poll() is None and not any(
            p.name.startswith(".env.staging-") for p in tmp_path.iterdir()
        ):
            assert time.monotonic() < deadline, "no staging folder seen"
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
        if process.returncode == 0:  # it finished first
            install(prefix, locks["cuda"], env)
            before = snapshot(prefix)
            continue
        assert process.returncode == 143, err  # 128 + SIGTERM, as a shell reports it
        assert "Interrupted." in err and "Traceback" not in err
        assert leftovers(prefix) == []
        if snapshot(prefix) != before:
            # The signal landed during the swap's renames, which finish first: whole-new.
            assert environment(prefix) == dists(locks["cpu"])
            install(prefix, locks["cuda"], env)
            before = snapshot(prefix)
            continue
        return
    pytest.fail("every install finished before SIGTERM reached it")


def test_a_swap_killed_between_its_renames_is_rolled_back_by_the_next_run(locks, env, tmp_path):
    """The state SIGKILL leaves between the two renames, made by hand: no prefix, the old
    environment aside, the finished staging folder and the journal."""
    prefix = tmp_path / "env"
    install(prefix, locks["cuda"], env)
    pid = dead_pid()
    staging = tmp_path / f".env.staging-{pid}-abcd1234"
    shutil.copytree(prefix, staging, symlinks=True)
    backup = tmp_path / f".env.old-{pid}-abcd1234"
    journal = {"version": 1, "pid": pid, "prefix": "env", "step": "swap"}
    journal |= {"staging": staging.name, "backup": backup.name}
    (tmp_path / ".env.torch-env-txn.json").write_text(json.dumps(journal))
    prefix.rename(backup)

    install(prefix, locks["cpu"], env)
    assert environment(prefix) == dists(locks["cpu"])
    history = (prefix / "conda-meta/history").read_text()
    assert history.count("==> ") == 2  # the restored environment was updated, not replaced
    assert leftovers(prefix) == []


def test_folders_of_a_live_run_are_kept(locks, env, tmp_path):
    prefix = tmp_path / "env"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as live:
        try:
            mine = tmp_path / f".env.staging-{live.pid}-abcd1234"
            mine.mkdir()
            dead = tmp_path / f".env.old-{dead_pid()}-abcd1234"
            dead.mkdir()
            install(prefix, locks["cpu"], env)
            assert mine.is_dir() and not dead.exists()
        finally:
            live.kill()


# --- permissions ---------------------------------------------------------------------------


@contextlib.contextmanager
def umask(value: int):
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o755), (0o002, 0o775)], ids=["022", "002"])
def test_a_new_prefix_gets_the_mode_mkdir_would_give(locks, tmp_path, mask, mode):
    prefix = tmp_path / "env"
    with umask(mask):
        install_from_lock(
            read_lockfile(locks["cpu"]), PLATFORM, prefix, cache_dir=tmp_path / "cache"
        )
    assert prefix.stat().st_mode & 0o777 == mode


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_root_updating_a_users_environment_keeps_its_owner(locks, tmp_path):
    prefix, cache = tmp_path / "env", tmp_path / "cache"
    install_from_lock(read_lockfile(locks["cuda"]), PLATFORM, prefix, cache_dir=cache)
    user = (12345, 12346)
    for path in [prefix, *prefix.rglob("*")]:
        os.lchown(path, *user)
    install_from_lock(read_lockfile(locks["cpu"]), PLATFORM, prefix, cache_dir=cache)
    owners = {(p.lstat().st_uid, p.lstat().st_gid) for p in [prefix, *prefix.rglob("*")]}
    assert owners == {user}


# --- odd prefixes --------------------------------------------------------------------------


def test_a_prefix_below_a_file_is_a_clear_error(locks, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    with pytest.raises(InstallError, match=r"file/sub cannot be created: .*file is a file"):
        install_from_lock(
            read_lockfile(locks["cpu"]), PLATFORM, blocker / "sub", cache_dir=tmp_path / "cache"
        )
    assert blocker.read_text() == "not a folder\n"


@contextlib.contextmanager
def mounted(target: Path, *options: str):
    """A tmpfs (or bind) mount at ``target`` for the block; skips where mounting is refused."""
    target.mkdir(exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting needs root")
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.parametrize("existing", [False, True], ids=["empty-tmpfs", "bind-mounted-env"])
def test_a_mount_point_prefix_is_refused_with_a_way_out(locks, tmp_path, existing):
    prefix, cache = tmp_path / "env", tmp_path / "cache"
    if existing:
        install_from_lock(read_lockfile(locks["cpu"]), PLATFORM, prefix, cache_dir=cache)
        options: tuple[str, ...] = ("--bind", str(prefix))
    else:
        options = ("-t", "tmpfs", "-o", "size=1m", "tmpfs")
    with mounted(prefix, *options):
        before = snapshot(prefix)
        with pytest.raises(InstallError, match="is a mount point") as raised:
            install_from_lock(read_lockfile(locks["cuda"]), PLATFORM, prefix, cache_dir=cache)
        assert any(f"-p {prefix / 'env'}" in hint for hint in raised.value.hints)
        assert snapshot(prefix) == before
    assert leftovers(prefix) == []


def test_a_full_disk_during_the_update_copy_is_a_clear_error(locks, tmp_path):
    cache = tmp_path / "cache"
    with mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=4m", "tmpfs") as disk:
        prefix = disk / "env"
        install_from_lock(read_lockfile(locks["cpu"]), PLATFORM, prefix, cache_dir=cache)
        before = snapshot(prefix)
        # Fill the disk but for a little, so the copy of the environment runs out of space.
        with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        os.truncate(disk / "filler", os.path.getsize(disk / "filler") - 16 * 4096)
        with pytest.raises(InstallError, match="the disk is full") as raised:
            install_from_lock(read_lockfile(locks["cuda"]), PLATFORM, prefix, cache_dir=cache)
        assert "the environment was left as it was" in raised.value.hints
        assert snapshot(prefix) == before
        assert leftovers(prefix) == []


def test_a_full_disk_stops_the_update_copy_at_the_first_file(locks, tmp_path, monkeypatch):
    """Where no disk can be mounted: ENOSPC from the system's file copy, as a full disk fails."""
    prefix, cache = tmp_path / "env", tmp_path / "cache"
    install_from_lock(read_lockfile(locks["cpu"]), PLATFORM, prefix, cache_dir=cache)
    before = snapshot(prefix)
    calls = []

    def full_disk_copy(src, dst, *, follow_symlinks=True):
        calls.append(src)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)

    monkeypatch.setattr(shutil, "copy2", full_disk_copy)
    with pytest.raises(InstallError, match="the disk is full"):
        install_from_lock(read_lockfile(locks["cuda"]), PLATFORM, prefix, cache_dir=cache)
    assert len(calls) == 1  # not once per file of the environment
    assert snapshot(prefix) == before
    assert leftovers(prefix) == []


def test_dry_run_of_an_odd_prefix_says_so(locks, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    with pytest.raises(InstallError, match="is a file"):
        prepare_install(read_lockfile(locks["cpu"]), PLATFORM, blocker / "sub")


def test_sigterm_handler_is_only_installed_while_a_command_runs(tmp_path, capsys):
    before = signal.getsignal(signal.SIGTERM)
    missing = str(tmp_path / "missing.yml")
    assert main(["install", "-p", str(tmp_path / "env"), "--lockfile", missing, "--yes"]) == 1
    assert signal.getsignal(signal.SIGTERM) is before
    assert "Traceback" not in capsys.readouterr().err


def test_a_bad_lock_timeout_is_a_clear_error(locks, tmp_path, monkeypatch):
    monkeypatch.setenv("CONDA_TORCH_ENV_LOCK_TIMEOUT", "soon")
    with pytest.raises(InstallError, match="CONDA_TORCH_ENV_LOCK_TIMEOUT='soon' is not a number"):
        install_from_lock(
            read_lockfile(locks["cpu"]), PLATFORM, tmp_path / "env", cache_dir=tmp_path / "cache"
        )
    assert not (tmp_path / "env").exists()


def test_nothing_to_do_still_clears_a_dead_runs_leftovers(locks, env, tmp_path):
    """An environment that already matches the lock is not touched, but a killed run's
    staging folder beside it is removed (the run that finds nothing to do recovers too)."""
    prefix = tmp_path / "env"
    install(prefix, locks["cpu"], env)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that is no longer alive
    (prefix.parent / f".{prefix.name}.staging-{dead.pid}-abcd1234" / "lib").mkdir(parents=True)
    before = environment(prefix)
    done = install(prefix, locks["cpu"], env)
    assert "Nothing to do" in done.stdout
    assert environment(prefix) == before
    assert leftovers(prefix) == []
