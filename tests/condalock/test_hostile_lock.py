"""A lock file is hostile input: every field is checked before it becomes a path or a URL.

The reader refuses what conda would never write (hashes that are not hex, names
with ``/``, URLs whose file is not the package's archive, platforms the lock does
not declare); the installer refuses, on its own, any cache or conda-meta path
that would leave its folder, for a lock built in code without the reader.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from support.cli import run_cli
from support.packages import solved_lock

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.condalock import lockfile
from conda_torch_plugin.condalock.lockfile import (
    LockedPackage,
    LockFile,
    read_lockfile,
    write_lockfile,
)
from conda_torch_plugin.errors import InstallError, LockError
from conda_torch_plugin.install import install_from_lock, prepare_install

if TYPE_CHECKING:
    from pathlib import Path

PLATFORM = "linux-64"
COMMAND = "conda torch-env lock"
CHANNEL = "https://conda.anaconda.org/conda-forge"
linux_only = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)


def locked(
    name: str = "zlib", version: str = "1.3.1", build: str = "h4ab18f5_1", **kw
) -> LockedPackage:
    filename = f"{name}-{version}-{build}.conda"
    fields = {
        "name": name,
        "version": version,
        "build": build,
        "platform": PLATFORM,
        "url": f"{CHANNEL}/{PLATFORM}/{filename}",
        "md5": hashlib.md5(filename.encode()).hexdigest(),
        "sha256": hashlib.sha256(filename.encode()).hexdigest(),
        **kw,
    }
    return LockedPackage(**fields)


def lock_of(*packages: LockedPackage, platforms: tuple[str, ...] = (PLATFORM,)) -> LockFile:
    return LockFile(platforms, (CHANNEL,), {p: "0" * 64 for p in platforms}, ("env.yml",), packages)


def written(tmp_path: Path, *packages: LockedPackage, **kw) -> Path:
    path = tmp_path / "conda-lock.yml"
    write_lockfile(
        lock_of(locked("python", "3.12.7", "h2628c8c_0"), *packages, **kw), path, command=COMMAND
    )
    return path


def lock_error(path: Path) -> str:
    with pytest.raises(LockError) as info:
        read_lockfile(path)
    return str(info.value) + "\n" + "\n".join(info.value.hints)


# --- the reader --------------------------------------------------------------------------

TRAVERSAL_URL = f"{CHANNEL}/{PLATFORM}/.bashrc"
BAD_FIELDS = {
    "sha256-path": ({"sha256": "../../.."}, ["hash.sha256", "'../../..'", "64 hexadecimal"]),
    "sha256-short": ({"sha256": "ab" * 16}, ["hash.sha256", "64 hexadecimal"]),
    "md5-not-hex": ({"md5": "z" * 32}, ["hash.md5", "32 hexadecimal"]),
    "md5-long": ({"md5": "a" * 40}, ["hash.md5", "32 hexadecimal"]),
    "name-path": ({"name": "../../victim"}, ["name '../../victim'", "not a valid package name"]),
    "name-dot": ({"name": ".hidden"}, ["not a valid package name"]),
    "version-slash": ({"version": "1/../../2"}, ["version '1/../../2'", "not a valid version"]),
    "version-space": ({"version": "1 0"}, ["not a valid version"]),
    "version-dots": ({"version": ".."}, ["not a valid version"]),
    "build-backslash": ({"build": "0\\..\\x"}, ["not a valid build string"]),
    "build-slash": ({"build": "0/x"}, ["not a valid build string"]),
    "scheme": ({"url": "ftp://mirror.example/zlib-1.3.1-h4ab18f5_1.conda"}, ["ftp://", "https"]),
    "no-scheme": ({"url": "zlib-1.3.1-h4ab18f5_1.conda"}, ["is not an https"]),
    "dotfile": ({"url": TRAVERSAL_URL}, ["/.bashrc", "zlib-1.3.1-h4ab18f5_1.conda"]),
    "other-archive": (
        {"url": f"{CHANNEL}/{PLATFORM}/openssl-3.3.2-hb9d3cd8_0.conda"},
        ["does not end in the package's archive"],
    ),
    "query": (
        {"url": f"{CHANNEL}/{PLATFORM}/zlib-1.3.1-h4ab18f5_1.conda?x=/../../a"},
        ["does not end in the package's archive"],
    ),
}


@pytest.mark.parametrize(("fields", "needles"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_bad_fields_are_refused_naming_file_package_and_problem(
    tmp_path: Path, fields: dict[str, str], needles: list[str]
) -> None:
    path = written(tmp_path, replace(locked(), **fields))
    message = lock_error(path)
    assert str(path) in message
    assert "zlib" in message or "victim" in message or "hidden" in message
    assert "line " in message  # the entry's line
    assert "regenerate it with `conda torch-env lock`" in message
    for needle in needles:
        assert needle in message


def test_token_in_a_refused_url_is_not_echoed(tmp_path: Path) -> None:
    url = "https://mirror.example/t/tk-SECRET-9/conda-forge/linux-64/.bashrc"
    path = written(tmp_path, replace(locked(), url=url))
    # the writer strips the token; put it back as a hand-edited file would have it
    text = path.read_text().replace("https://mirror.example/conda-forge", url.rsplit("/", 2)[0])
    path.write_text(text)
    message = lock_error(path)
    assert "tk-SECRET-9" not in message
    assert "https://mirror.example/t/***/conda-forge/linux-64/.bashrc" in message


def test_platform_not_declared_is_refused(tmp_path: Path) -> None:
    path = written(tmp_path, replace(locked(), platform="win-64"))
    message = lock_error(path)
    assert "zlib" in message and "'win-64'" in message and "metadata.platforms" in message


def test_declared_platform_without_entries_is_fine(tmp_path: Path) -> None:
    path = written(tmp_path, locked(), platforms=(PLATFORM, "osx-arm64"))
    lock = read_lockfile(path)
    assert lock.platforms == (PLATFORM, "osx-arm64") and not lock.packages_for("osx-arm64")


def test_upper_case_hashes_are_accepted_and_lower_cased(tmp_path: Path) -> None:
    pkg = locked()
    path = written(tmp_path, replace(pkg, md5=pkg.md5.upper(), sha256=pkg.sha256.upper()))
    back = next(p for p in read_lockfile(path).packages if p.name == "zlib")
    assert (back.md5, back.sha256) == (pkg.md5, pkg.sha256)


def test_tar_bz2_archives_and_percent_encoded_names_are_accepted(tmp_path: Path) -> None:
    plus = locked(
        "libfoo", "1.0+cu118", "0", url=f"{CHANNEL}/{PLATFORM}/libfoo-1.0%2Bcu118-0.tar.bz2"
    )
    path = written(tmp_path, plus)
    assert any(p.name == "libfoo" for p in read_lockfile(path).packages)


NON_SCALARS = {
    "version-list": ("version: 1\n", "version: [1]\n", ["`version` must be a number, not a list"]),
    "name-list": ("- name: zlib\n", "- name: [zlib]\n", ["name must be a string, not a list"]),
    "md5-mapping": ("    md5: ", "    md5: {a: 1}\n    x: ", ["hash.md5 must be a string"]),
}


@pytest.mark.parametrize(("old", "new", "needles"), NON_SCALARS.values(), ids=NON_SCALARS.keys())
def test_non_scalar_fields_are_a_clear_error(
    tmp_path: Path, old: str, new: str, needles: list[str]
) -> None:
    path = written(tmp_path, locked())
    text = path.read_text()
    index = text.index(old, text.index("- name: zlib") if "md5" in old else 0)
    path.write_text(text[:index] + new + text[index + len(old) :])
    message = lock_error(path)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_a_non_hex_md5_is_refused_by_the_cli_without_a_traceback(tmp_path: Path) -> None:
    path = written(tmp_path, replace(locked(), md5="not-hex-" * 4))
    result = run_cli("install", "-p", str(tmp_path / "env"), "--lockfile", str(path), "--yes")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert (
        "hash.md5 'not-hex-not-hex-not-hex-not-hex-' is not 32 hexadecimal digits" in result.stderr
    )


# --- a crafted lock cannot delete or write outside its folders -------------------------


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(home, cache, victim): a cache with an archives/ folder and ~/.bashrc beside it."""
    home = tmp_path / "home"
    cache = home / ".cache" / "conda-torch-env"
    (cache / "archives").mkdir(parents=True)
    victim = home / ".bashrc"
    victim.write_text("export IMPORTANT=1\n")
    return home, cache, victim


def crafted_traversal() -> LockedPackage:
    return replace(
        locked(), sha256="../../..", url="http://127.0.0.1:9/conda-forge/linux-64/.bashrc"
    )


def test_crafted_lock_file_cannot_delete_a_file(tmp_path: Path, home) -> None:
    _, cache, victim = home
    path = tmp_path / "conda-lock.yml"
    write_lockfile(lock_of(crafted_traversal()), path, command=COMMAND)
    env = {**os.environ, "CONDA_TORCH_ENV_CACHE_DIR": str(cache)}
    result = run_cli(
        "install", "-p", str(tmp_path / "env"), "--lockfile", str(path), "--yes", env=env
    )
    assert victim.exists(), result.stderr
    assert victim.read_text() == "export IMPORTANT=1\n"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "hash.sha256" in result.stderr


def test_cache_path_outside_the_cache_is_refused_for_a_lock_built_in_code(
    tmp_path: Path, home
) -> None:
    _, cache, victim = home
    with pytest.raises(InstallError, match="outside the package cache"):
        prepare_install(lock_of(crafted_traversal()), PLATFORM, tmp_path / "env", cache_dir=cache)
    assert victim.read_text() == "export IMPORTANT=1\n"
    assert not (tmp_path / "env").exists()


@linux_only
def test_record_path_outside_conda_meta_is_refused_for_a_lock_built_in_code(
    package_channels: Path, tmp_path: Path
) -> None:
    lock = solved_lock(package_channels, ("python=3.12",))
    packages = tuple(
        replace(p, name="../../victim", version="1", build="0") if p.name == "python" else p
        for p in lock.packages
    )
    victim = tmp_path / "victim-1-0.json"  # PREFIX/../victim-1-0.json
    victim.write_text('{"keep": true}\n')
    with pytest.raises(InstallError, match="outside"):
        install_from_lock(
            replace(lock, packages=packages), PLATFORM, tmp_path / "env", cache_dir=tmp_path / "c"
        )
    assert victim.read_text() == '{"keep": true}\n'
    assert not (tmp_path / "env").exists()
    assert not [p.name for p in tmp_path.iterdir() if ".staging-" in p.name]


# --- redaction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:secret@host:8080/c/x", "http://***@host:8080/c/x"),
        ("https://tok@host/c", "https://***@host/c"),
        (
            "https://h/t/tk-1a2b/pytorch/linux-64/a.conda",
            "https://h/t/***/pytorch/linux-64/a.conda",
        ),
        ("https://h/t/tk-1a2b", "https://h/t/***"),
        (
            "cmd --channel-alias 'http://u:p@127.0.0.1:5/t/T' -n x: failed",
            "cmd --channel-alias 'http://***@127.0.0.1:5/t/***' -n x: failed",
        ),
        ("file:///srv/t/mirror/x", "file:///srv/t/mirror/x"),
        ("conda-forge", "conda-forge"),
    ],
    ids=["user-password", "user", "token", "token-at-end", "in-text", "file", "name"],
)
def test_redact_credentials(text: str, expected: str) -> None:
    assert lockfile.redact_credentials(text) == expected
