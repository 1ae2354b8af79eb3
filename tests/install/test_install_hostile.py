"""Hostile packages and hostile conda-meta records never reach outside the prefix.

Real archives (``support.hostile``) in both formats, installed by the real
installer and rattler: a user's file where a ``..`` path, an absolute path or a
symlink points must be left as it was, the prefix untouched and no staging
folder left behind; the error names the package, the archive and the path.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from support.cli import run_cli
from support.hostile import (
    PAYLOAD,
    STEM,
    Member,
    hostile_archive,
    index_json,
    paths_json,
    single_package_lock,
)
from support.packages import solved_lock
from support.trees import snapshot

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.condalock.lockfile import write_lockfile
from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.install import install_from_lock
from conda_torch_plugin.install._archive_check import path_problem

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
PLATFORM = "linux-64"
FORMATS = pytest.mark.parametrize("fmt", [".tar.bz2", ".conda"])
USER_TEXT = "a user's file that no install may touch\n"


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".staging-" in p.name or ".old-" in p.name)


def user_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(USER_TEXT)
    return path


def refused(archive: Path, prefix: Path, cache: Path) -> str:
    with pytest.raises(InstallError) as raised:
        install_from_lock(single_package_lock(archive), PLATFORM, prefix, cache_dir=cache)
    message = raised.value.message
    assert STEM in message and str(archive) in message
    return message


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("lib/python3.12/site-packages/torch/__init__.py", None),
        ("share/a..b/x", None),
        ("", "is empty"),
        (7, "is not a string (int)"),
        ("lib/\x00.so", "contains a NUL character"),
        ("/etc/passwd", "is absolute"),
        ("C:/Windows/x.dll", "is absolute"),
        ("c:x", "is absolute"),
        ("\\\\server\\share\\x", "is absolute"),
        ("../x", "has a '..' component"),
        ("lib/../../x", "has a '..' component"),
        ("lib\\..\\..\\x", "has a '..' component"),
        ("lib/..", "has a '..' component"),
    ],
)
def test_path_problem(path, problem):
    assert path_problem(path) == problem


# --- paths.json ---------------------------------------------------------------------------

# From the staging folder (a sibling of the prefix) DEPTH levels up, and back down into the
# package's own folder in rattler's cache (CACHE/pkgs/evil-1.0-0, CACHE = ROOT/c/cache), so
# the source file rattler copies exists and the target lands beside the prefix's ancestors.
ESCAPES = {
    1: ("../evil-1.0-0/lib/ok.txt", "p1/p2/evil-1.0-0/lib/ok.txt"),
    2: ("../../pkgs/evil-1.0-0/lib/ok.txt", "p1/pkgs/evil-1.0-0/lib/ok.txt"),
    3: ("../../../cache/pkgs/evil-1.0-0/lib/ok.txt", "cache/pkgs/evil-1.0-0/lib/ok.txt"),
}


@FORMATS
@pytest.mark.parametrize("depth", sorted(ESCAPES), ids=lambda d: f"depth{d}")
def test_dotdot_path_in_paths_json_is_refused(tmp_path, fmt, depth):
    escape, victim_rel = ESCAPES[depth]
    victim = user_file(tmp_path / victim_rel)
    archive = hostile_archive(
        tmp_path / "channel/noarch",
        fmt,
        [Member("lib/ok.txt")],
        paths=paths_json("lib/ok.txt", escape),
    )
    prefix = tmp_path / "p1/p2/env"
    message = refused(archive, prefix, tmp_path / "c/cache")
    assert f"'..' component: {escape}" in message
    assert victim.read_text() == USER_TEXT
    assert not prefix.exists()
    assert leftovers(prefix.parent) == []


@FORMATS
def test_absolute_path_in_paths_json_is_refused(tmp_path, fmt):
    """rattler 0.28 aborts the process on this one (a panic in a worker thread)."""
    victim = user_file(tmp_path / "home/.bashrc")
    archive = hostile_archive(
        tmp_path / "channel/noarch", fmt, [Member("lib/ok.txt")], paths=paths_json(str(victim))
    )
    prefix = tmp_path / "envs/env"
    message = refused(archive, prefix, tmp_path / "cache")
    assert f"is absolute: {victim}" in message
    assert victim.read_text() == USER_TEXT
    assert not prefix.exists() and leftovers(prefix.parent) == []


@FORMATS
def test_absolute_tar_member_is_refused(tmp_path, fmt):
    victim = user_file(tmp_path / "home/.profile")
    archive = hostile_archive(
        tmp_path / "channel/noarch",
        fmt,
        [Member("lib/ok.txt"), Member(str(victim))],
        paths=paths_json("lib/ok.txt"),
    )
    prefix = tmp_path / "envs/env"
    message = refused(archive, prefix, tmp_path / "cache")
    assert str(victim).lstrip("/") in message
    assert victim.read_text() == USER_TEXT
    assert not prefix.exists() and leftovers(prefix.parent) == []


@FORMATS
@pytest.mark.parametrize("target", ["absolute", "relative"])
def test_symlink_member_leaving_the_prefix_is_refused(tmp_path, fmt, target):
    victim = user_file(tmp_path / "home/.ssh/config")
    prefix = tmp_path / "envs/env"
    link = str(victim) if target == "absolute" else "../../../home/.ssh/config"
    archive = hostile_archive(
        tmp_path / "channel/noarch",
        fmt,
        [Member("lib/link", link=link), Member("lib/ok.txt")],
        paths=with_softlink("lib/link"),
    )
    message = refused(archive, prefix, tmp_path / "cache")
    assert "lib/link" in message and link in message
    assert victim.read_text() == USER_TEXT
    assert not prefix.exists() and leftovers(prefix.parent) == []


def with_softlink(softlink: str) -> bytes:
    """paths.json listing lib/ok.txt, and ``softlink`` as a symlink (as a real package does)."""
    data = json.loads(paths_json("lib/ok.txt"))
    data["paths"].append({"_path": softlink, "path_type": "softlink", "size_in_bytes": 0})
    return json.dumps(data).encode()


@FORMATS
def test_symlink_inside_the_package_is_installed(tmp_path, fmt):
    """The checks refuse what leaves the prefix, not symlinks as such."""
    archive = hostile_archive(
        tmp_path / "channel/noarch",
        fmt,
        [Member("lib/link", link="ok.txt"), Member("lib/ok.txt")],
        paths=with_softlink("lib/link"),
    )
    prefix = tmp_path / "envs/env"
    install_from_lock(single_package_lock(archive), PLATFORM, prefix, cache_dir=tmp_path / "c")
    assert os.readlink(prefix / "lib/link") == "ok.txt"
    assert (prefix / "lib/link").read_bytes() == PAYLOAD


@FORMATS
@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"index": b"{not json"}, "malformed info/index.json (not JSON"),
        ({"index": b"[1, 2]"}, "malformed info/index.json (not a JSON object)"),
        ({"index": index_json().replace(b'"1.0"', b"[1]")}, "'version' is not a non-empty"),
        ({"paths": b"\xff\xfe"}, "malformed info/paths.json (not JSON"),
        ({"paths": b'{"paths": "lib/ok.txt"}'}, "malformed info/paths.json (no 'paths' list)"),
        ({"paths": b'{"paths": [{"_path": 7}]}'}, "malformed info/paths.json entry"),
        ({"paths": None, "files": b"lib/ok.txt\n/etc/passwd\n"}, "is absolute: /etc/passwd"),
    ],
    ids=[
        "index-not-json",
        "index-not-object",
        "index-version-list",
        "paths-not-utf8",
        "paths-not-list",
        "paths-entry-type",
        "files-absolute",
    ],
)
def test_malformed_metadata_is_refused(tmp_path, fmt, parts, expected):
    parts = {"paths": paths_json("lib/ok.txt"), **parts}
    archive = hostile_archive(tmp_path / "channel/noarch", fmt, [Member("lib/ok.txt")], **parts)
    prefix = tmp_path / "envs/env"
    message = refused(archive, prefix, tmp_path / "cache")
    assert expected in message
    assert not prefix.exists() and leftovers(prefix.parent) == []


def test_existing_symlink_in_the_prefix_does_not_lead_a_path_outside(tmp_path):
    """An update writes through nothing: lib/ in the old environment links outside it."""
    good = hostile_archive(
        tmp_path / "good/noarch",
        ".conda",
        [Member("share/ok.txt")],
        paths=paths_json("share/ok.txt"),
    )
    prefix, cache = tmp_path / "envs/env", tmp_path / "cache"
    install_from_lock(single_package_lock(good), PLATFORM, prefix, cache_dir=cache)
    outside = tmp_path / "outside"
    victim = user_file(outside / "ok.txt")
    (prefix / "lib").symlink_to(outside)
    before = snapshot(prefix)
    archive = hostile_archive(
        tmp_path / "channel/noarch",
        ".conda",
        [Member("lib/ok.txt")],
        paths=paths_json("lib/ok.txt"),
    )
    message = refused(archive, prefix, cache)
    assert f"resolves outside {prefix}: lib/ok.txt" in message
    assert victim.read_text() == USER_TEXT
    assert snapshot(prefix) == before and leftovers(prefix.parent) == []


# --- the CLI: a rattler abort becomes a clear error -----------------------------------------


@pytest.mark.parametrize("case", ["absolute-path", "absolute-member", "bad-index"])
def test_cli_reports_what_made_rattler_abort(fake_nvml_env, tmp_path, case):
    """rattler 0.28 aborted (exit 134), crashed or raised on these (a traceback); now:
    exit 1 and a sentence."""
    victim = user_file(tmp_path / "home/.bashrc")
    payload, paths, index = [Member("lib/ok.txt")], paths_json("lib/ok.txt"), None
    if case == "absolute-path":
        paths = paths_json(str(victim))
    elif case == "absolute-member":
        payload.append(Member(str(victim)))
    else:
        index = b'{"name": "evil", "version": '
    archive = hostile_archive(
        tmp_path / "channel/noarch", ".tar.bz2", payload, paths=paths, index=index
    )
    lockfile = tmp_path / "conda-lock.yml"
    write_lockfile(single_package_lock(archive), lockfile, command="test")
    prefix = tmp_path / "envs/env"
    env = fake_nvml_env(extra={"CONDA_TORCH_ENV_CACHE_DIR": str(tmp_path / "cache")})
    result = run_cli(
        "install", "-p", str(prefix), "--lockfile", str(lockfile), "--yes", "--force", env=env
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr
    assert STEM in result.stderr and str(archive) in result.stderr
    assert victim.read_text() == USER_TEXT
    assert not prefix.exists() and leftovers(prefix.parent) == []


# --- conda-meta records of an existing prefix ---------------------------------------------


@pytest.fixture
def evil_env(tmp_path):
    """A prefix holding the (well-formed) evil package, and the cache it was installed with."""
    archive = hostile_archive(
        tmp_path / "channel/noarch",
        ".conda",
        [Member("lib/ok.txt")],
        paths=paths_json("lib/ok.txt"),
    )
    prefix, cache = tmp_path / "envs/env", tmp_path / "cache"
    install_from_lock(single_package_lock(archive), PLATFORM, prefix, cache_dir=cache)
    return prefix, cache, prefix / "conda-meta" / f"{STEM}.json"


@pytest.mark.parametrize("field", ["files", "paths_data"])
@pytest.mark.parametrize(
    ("path", "problem"),
    [("../outside.txt", "'..' component"), ("{outside}", "is absolute")],
    ids=["dotdot", "absolute"],
)
def test_update_never_deletes_what_a_record_names_outside(
    evil_env, package_channels, tmp_path, field, path, problem
):
    prefix, cache, record_file = evil_env
    victim = user_file(prefix.parent / "outside.txt")
    path = path.format(outside=victim)
    record = json.loads(record_file.read_text())
    if field == "files":
        record["files"].append(path)
    else:
        record["paths_data"]["paths"].append({"_path": path, "path_type": "hardlink"})
    record_file.write_text(json.dumps(record))
    before = snapshot(prefix)
    lock = solved_lock(package_channels, ("python=3.12",), cuda=None)  # evil is removed
    with pytest.raises(InstallError) as raised:
        install_from_lock(lock, PLATFORM, prefix, cache_dir=cache)
    message = raised.value.message
    assert str(record_file) in message and f"{problem}: {path}" in message
    assert victim.read_text() == USER_TEXT
    assert snapshot(prefix) == before and leftovers(prefix.parent) == []


def test_update_never_deletes_through_a_symlinked_folder(evil_env, package_channels, tmp_path):
    """lib/ of the old environment was replaced by a symlink to a user's folder: removing the
    package would delete lib/ok.txt there."""
    prefix, cache, _ = evil_env
    outside = tmp_path / "outside"
    victim = user_file(outside / "ok.txt")
    (prefix / "lib/ok.txt").unlink()
    (prefix / "lib").rmdir()
    (prefix / "lib").symlink_to(outside)
    before = snapshot(prefix)
    lock = solved_lock(package_channels, ("python=3.12",), cuda=None)
    with pytest.raises(InstallError, match=f"resolves outside {prefix}: lib/ok.txt"):
        install_from_lock(lock, PLATFORM, prefix, cache_dir=cache)
    assert victim.read_text() == USER_TEXT
    assert snapshot(prefix) == before and leftovers(prefix.parent) == []


def test_update_removes_a_symlink_that_points_outside_but_not_its_target(
    evil_env, package_channels, tmp_path
):
    prefix, cache, record_file = evil_env
    victim = user_file(tmp_path / "outside.txt")
    (prefix / "lib/link").symlink_to(victim)
    record = json.loads(record_file.read_text())
    record["files"].append("lib/link")
    record["paths_data"]["paths"].append({"_path": "lib/link", "path_type": "softlink"})
    record_file.write_text(json.dumps(record))
    lock = solved_lock(package_channels, ("python=3.12",), cuda=None)
    result = install_from_lock(lock, PLATFORM, prefix, cache_dir=cache)
    assert f"{STEM}" in result.removed
    assert not (prefix / "lib/link").is_symlink()
    assert victim.read_text() == USER_TEXT


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"name": "evil", "files": [', "is not valid JSON"),
        (b'{"name": "evil", "files": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
        (b"[]", "is not a JSON object"),
        (b'{"name": "evil", "files": "lib/ok.txt"}', "'files' value that is not a list"),
        (b'{"name": "evil", "files": [3]}', "is not a string (int)"),
        (b'{"name": "evil", "paths_data": {"paths": [{}]}}', "malformed 'paths_data' entry"),
    ],
    ids=["not-json", "too-deep", "not-object", "files-string", "files-int", "paths-data-entry"],
)
def test_update_refuses_a_malformed_record(evil_env, package_channels, content, expected):
    prefix, cache, record_file = evil_env
    record_file.write_bytes(content)
    before = snapshot(prefix)
    lock = solved_lock(package_channels, ("python=3.12",), cuda=None)
    with pytest.raises(InstallError) as raised:
        install_from_lock(lock, PLATFORM, prefix, cache_dir=cache)
    assert str(record_file) in raised.value.message and expected in raised.value.message
    assert snapshot(prefix) == before and leftovers(prefix.parent) == []


# --- a panic inside rattler ---------------------------------------------------------------


class PanicException(BaseException):
    """Stands in for pyo3's ``pyo3_runtime.PanicException``, which rattler does not export:
    same name, same base class (not ``Exception``)."""


@pytest.mark.parametrize("stage", ["from_package_archive", "install"])
def test_a_panic_in_rattler_is_an_install_error(monkeypatch, tmp_path, stage):
    import rattler

    archive = hostile_archive(
        tmp_path / "channel/noarch",
        ".conda",
        [Member("lib/ok.txt")],
        paths=paths_json("lib/ok.txt"),
    )

    async def panic(*args, **kwargs):
        raise PanicException("called `Option::unwrap()` on a `None` value")

    if stage == "install":
        monkeypatch.setattr(rattler, "install", panic)
    else:
        monkeypatch.setattr(rattler.RepoDataRecord, "from_package_archive", panic)
    prefix = tmp_path / "envs/env"
    with pytest.raises(InstallError, match=r"called `Option::unwrap\(\)`"):
        install_from_lock(single_package_lock(archive), PLATFORM, prefix, cache_dir=tmp_path / "c")
    assert not prefix.exists() and leftovers(prefix.parent) == []


def test_ctrl_c_while_linking_is_not_turned_into_an_install_error(monkeypatch, tmp_path):
    import rattler

    archive = hostile_archive(
        tmp_path / "channel/noarch",
        ".conda",
        [Member("lib/ok.txt")],
        paths=paths_json("lib/ok.txt"),
    )

    async def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rattler, "install", interrupted)
    prefix = tmp_path / "envs/env"
    with pytest.raises(KeyboardInterrupt):
        install_from_lock(single_package_lock(archive), PLATFORM, prefix, cache_dir=tmp_path / "c")
    assert not prefix.exists() and leftovers(prefix.parent) == []
