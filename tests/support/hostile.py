"""Hostile packages: real archives whose metadata or tar members point outside the prefix.

``hostile_archive`` writes one ``evil-1.0-0`` package (``.tar.bz2`` or ``.conda``)
from raw parts, so a test can put anything into ``info/paths.json``,
``info/index.json`` or the tar headers: ``..`` paths, absolute paths, symlink
members, text that is not JSON. ``single_package_lock`` turns the archive into
a one-package lock (``file://`` URL, real hashes) that ``install_from_lock``
takes as it is.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from conda_torch_plugin.condalock.lockfile import LockFile

NAME, VERSION, BUILD = "evil", "1.0", "0"
STEM = f"{NAME}-{VERSION}-{BUILD}"
PAYLOAD = b"written by a hostile package\n"


@dataclass(frozen=True)
class Member:
    """One tar member: a file (``data``) or a symlink (``link``)."""

    name: str
    data: bytes = PAYLOAD
    link: str | None = None


def index_json(name: str = NAME) -> bytes:
    data = {
        "build": BUILD,
        "build_number": 0,
        "depends": [],
        "license": "BSD-3-Clause",
        "name": name,
        "noarch": "generic",
        "subdir": "noarch",
        "timestamp": 1730000000000,
        "version": VERSION,
    }
    return json.dumps(data, indent=2, sort_keys=True).encode()


def paths_json(*paths: str, path_type: str = "hardlink") -> bytes:
    entries = [
        {
            "_path": path,
            "path_type": path_type,
            "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
            "size_in_bytes": len(PAYLOAD),
        }
        for path in paths
    ]
    return json.dumps({"paths": entries, "paths_version": 1}, indent=2).encode()


def _tar(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.mtime = 0
            info.mode = 0o644
            if member.link is not None:
                info.type = tarfile.SYMTYPE
                info.linkname = member.link
                tar.addfile(info)
            else:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
    return buffer.getvalue()


def hostile_archive(
    folder: Path,
    fmt: str,
    payload: list[Member],
    *,
    paths: bytes | None = None,
    index: bytes | None = None,
    files: bytes | None = None,
) -> Path:
    """Write ``evil-1.0-0{fmt}`` into ``folder`` with exactly these parts (``None``: omitted,
    except ``index``, which defaults to a valid ``info/index.json``)."""
    info = [Member("info/index.json", index_json() if index is None else index)]
    if paths is not None:
        info.append(Member("info/paths.json", paths))
    if files is not None:
        info.append(Member("info/files", files))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{STEM}{fmt}"
    if fmt == ".tar.bz2":
        target.write_bytes(bz2.compress(_tar([*info, *payload]), 9))
        return target
    import zstandard

    compressor = zstandard.ZstdCompressor(level=3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in (
            ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
            (f"pkg-{STEM}.tar.zst", compressor.compress(_tar(payload))),
            (f"info-{STEM}.tar.zst", compressor.compress(_tar(info))),
        ):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    target.write_bytes(buffer.getvalue())
    return target


def single_package_lock(archive: Path, platform: str = "linux-64") -> LockFile:
    """A lock holding just ``archive`` (read in place from its ``file://`` URL)."""
    from conda_torch_plugin.condalock.lockfile import LockedPackage, LockFile

    data = archive.read_bytes()
    channel = archive.parent.parent
    package = LockedPackage(
        name=NAME,
        version=VERSION,
        build=BUILD,
        platform=platform,
        url=archive.as_uri(),
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return LockFile((platform,), (channel.as_uri(),), {platform: "0" * 64}, ("x",), (package,))
