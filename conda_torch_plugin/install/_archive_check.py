"""Every path a package or a conda-meta record names must stay inside the prefix.

A package comes from a mirror and a prefix's records from whoever wrote them
last: neither is trusted. rattler links each path of a package's
``info/paths.json`` (joined to the prefix) and, when it removes a package,
deletes each path of its ``conda-meta`` record, so a ``..`` component or an
absolute path there writes or deletes outside the prefix, and some malformed
ones make rattler abort the whole process. So:

- ``check_archives`` reads the info part of a verified archive, never its
  payload (a PyTorch payload is gigabytes; its bzip2 stream is as slow to read
  as to extract): ``info/index.json`` and ``info/paths.json`` (``info/files``
  for packages that predate it) must be well-formed JSON of the right types,
  and every path relative, free of ``..``, NUL, backslashes and drive letters,
  and not led outside the staging folder by a symlink already there (an update
  starts from a copy of the prefix).
- ``check_records`` does the same for every ``conda-meta/*.json`` record of a
  prefix an update starts from (``files`` and ``paths_data.paths[*]._path``),
  and refuses a record that is not a JSON object of the right types: rattler
  would otherwise delete what it names or stop half-way.
- ``check_linked``, after rattler extracted the payloads (into its cache) and
  linked them into the staging folder, and before the swap, walks each
  extracted package (file names and symlink targets only, no reading): a
  member its paths do not list (an absolute tar member, which rattler extracts
  without its ``/``), a symlink leaving the package, or a linked symlink
  leaving the prefix refuses the install. The prefix is still untouched then,
  and rattler itself refuses ``..`` members and writing through symlinks while
  extracting.

Each refusal is an ``InstallError`` naming the package and archive (or the
record file) and the offending path.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.inputs import PACKAGE_RECORD, read_json

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

_DRIVE = re.compile(r"^[A-Za-z]:")
_REFUSED_HINTS = (
    "nothing was linked and the environment was left as it was",
    "the archive is not a well-formed conda package: check the mirror it came from, "
    "or report it to the channel that published it",
)


def path_problem(path: object) -> str | None:
    """Why ``path`` (from a package or a record) may not be joined to a prefix, or None."""
    if not isinstance(path, str):
        return f"is not a string ({type(path).__name__})"
    if not path:
        return "is empty"
    if "\x00" in path:
        return "contains a NUL character"
    # A backslash is a separator to Windows (and to a record written there): "..\\x" and
    # "\\\\server\\share" are the same tricks as "../x" and "/x".
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        return "is absolute"
    if ".." in re.split(r"[/\\]", path):
        return "has a '..' component"
    return None


def _show(path: object) -> str:
    return repr(path) if not isinstance(path, str) or not path.isprintable() else path


@dataclass(frozen=True)
class ArchiveInfo:
    """What the info part of one archive says it installs."""

    paths: tuple[str, ...]
    softlinks: tuple[str, ...]


# --- archives -------------------------------------------------------------------------


async def check_archives(
    staging: Path, final: Path, archives: Sequence[tuple[str, Path]]
) -> list[tuple[str, Path, ArchiveInfo]]:
    """``check_archive`` for each (dist, archive), then each path against the folder rattler
    will link into (``staging``, to become ``final``): an existing symlink there may not
    lead a path outside it. Returns (dist, archive, info) for ``check_linked``."""
    import asyncio

    infos = await asyncio.gather(*(check_archive(archive, dist) for dist, archive in archives))
    checked = [(dist, archive, info) for (dist, archive), info in zip(archives, infos, strict=True)]
    for dist, archive, info in checked:
        check_inside(
            staging,
            final,
            info.paths,
            lambda what, dist=dist, archive=archive: InstallError(
                f"package {dist} ({archive}) lists a path that {what}", hints=_REFUSED_HINTS
            ),
        )
    return checked


async def check_archive(archive: Path, dist: str) -> ArchiveInfo:
    """Refuse ``archive`` (``dist`` = name-version-build) unless its info part is well-formed
    and every path in it stays inside a prefix; see the module docstring."""
    from rattler.package_streaming import PackageArchive

    def refuse(what: str) -> InstallError:
        return InstallError(f"package {dist} ({archive}) {what}", hints=_REFUSED_HINTS)

    try:
        package = await PackageArchive.from_path(archive)
        info = await package.read_files(["info/index.json", "info/paths.json"])
        if info.get("info/paths.json") is None:
            info.update(await package.read_files(["info/files"]))
        if archive.name.endswith(".conda"):  # its own small tar; .tar.bz2 has one for all
            async for entry in package.stream("info"):
                problem = _member_problem(entry.name, entry.link_target)
                if problem:
                    raise refuse(f"has an info member {problem}")
    except InstallError:
        raise
    except Exception as error:  # rattler's own error types: an unreadable archive
        raise refuse(f"cannot be read: {_first_line(error)}") from error

    _check_index(info.get("info/index.json"), refuse)
    raw_paths = info.get("info/paths.json")
    raw_files = info.get("info/files")
    softlinks: list[str] = []
    if raw_paths is not None:
        paths, softlinks = _paths_json(raw_paths, refuse)
    elif raw_files is not None:
        paths = _files_list(raw_files, refuse)
    else:
        raise refuse("has neither info/paths.json nor info/files")
    for path in paths:
        problem = path_problem(path)
        if problem:
            raise refuse(f"lists a path that {problem}: {_show(path)}")
    linked = set(softlinks)
    for path in paths:
        parent = posixpath.dirname(path)
        while parent:
            if parent in linked:
                raise refuse(f"lists {_show(path)} beneath its own symlink {parent}")
            parent = posixpath.dirname(parent)
    return ArchiveInfo(tuple(paths), tuple(softlinks))


def _member_problem(name: str, link_target: str | None) -> str | None:
    problem = path_problem(name)
    if problem:
        return f"whose name {problem}: {_show(name)}"
    if link_target is not None:
        if path_problem(link_target) == "is absolute":
            return f"{name} that links to an absolute path: {_show(link_target)}"
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), link_target))
        if joined == ".." or joined.startswith("../") or "\x00" in link_target:
            return f"{name} that links outside the prefix: {_show(link_target)}"
    return None


def _decode(raw: bytes, member: str, refuse: Any) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise refuse(f"has a malformed {member} (not JSON: {error})") from None
    except RecursionError:
        raise refuse(f"has a malformed {member} (nested too deeply)") from None


def _check_index(raw: bytes | None, refuse: Any) -> None:
    if raw is None:
        raise refuse("has no info/index.json")
    index = _decode(raw, "info/index.json", refuse)
    if not isinstance(index, dict):
        raise refuse("has a malformed info/index.json (not a JSON object)")
    for key in ("name", "version", "build"):
        if not isinstance(index.get(key), str) or not index[key]:
            raise refuse(f"has a malformed info/index.json ({key!r} is not a non-empty string)")
    for key in ("depends", "constrains"):
        value = index.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise refuse(f"has a malformed info/index.json ({key!r} is not a list of strings)")
    if not isinstance(index.get("build_number", 0), int):
        raise refuse("has a malformed info/index.json ('build_number' is not an integer)")


def _paths_json(raw: bytes, refuse: Any) -> tuple[list[str], list[str]]:
    data = _decode(raw, "info/paths.json", refuse)
    entries = data.get("paths") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise refuse("has a malformed info/paths.json (no 'paths' list)")
    paths: list[str] = []
    softlinks: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("_path"), str):
            raise refuse(f"has a malformed info/paths.json entry: {_show(entry)[:200]}")
        paths.append(entry["_path"])
        if entry.get("path_type") == "softlink":
            softlinks.append(entry["_path"])
    return paths, softlinks


def _files_list(raw: bytes, refuse: Any) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise refuse(f"has a malformed info/files (not UTF-8: {error})") from None
    return [line for line in text.splitlines() if line.strip()]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- paths on disk ----------------------------------------------------------------------


def check_inside(
    root: Path, final: Path, paths: Iterable[str], refuse: Any, *, follow_last: bool = True
) -> None:
    """Each of ``paths`` under ``root``, resolved through any symlink already there, stays
    inside ``root`` (``final``, the prefix ``root`` will become, is what messages name).

    ``follow_last=False`` resolves only the folder a path is in: deleting a symlink
    removes the link, wherever it points."""
    real_root = os.path.realpath(root)
    parents: dict[str, bool] = {}
    for path in paths:
        parent = posixpath.dirname(path)
        inside = parents.get(parent)
        if inside is None:
            inside = _within(real_root, os.path.realpath(os.path.join(root, parent)))
            parents[parent] = inside
        full = os.path.join(root, path)
        if inside and follow_last and os.path.islink(full):
            inside = _within(real_root, os.path.realpath(full))
        if not inside:
            raise refuse(f"resolves outside {final}: {_show(path)}")


def _within(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_linked(
    staging: Path,
    final: Path,
    linked: Iterable[tuple[str, Path, ArchiveInfo]],
    extracted: Path,
) -> None:
    """After rattler extracted each package into ``extracted/DIST`` and linked it into
    ``staging``: nothing was extracted that its paths do not list (an absolute tar member
    ends up there, stripped of its ``/``), no extracted symlink leaves its package, and
    every symlink linked into ``staging`` stays inside the prefix it will become (``final``)."""
    for dist, archive, info in linked:

        def refuse(what: str, dist: str = dist, archive: Path = archive) -> InstallError:
            return InstallError(
                f"package {dist} ({archive}) {what}",
                hints=(
                    "the environment was left as it was",
                    "the archive is not a well-formed conda package: check the mirror it "
                    "came from, or report it to the channel that published it",
                ),
            )

        listed = set(info.paths)
        if not (extracted / dist / "info").is_dir():
            raise refuse(f"was not found extracted in {extracted / dist}")
        for name, target in _extracted(extracted / dist):
            if name not in listed and not name.startswith("info/"):
                raise refuse(f"has a member its paths do not list: {_show(name)}")
            problem = _member_problem(name, target)
            if problem:
                raise refuse(f"has a member {problem}")
        for path in info.softlinks:
            full = staging / path
            if full.is_symlink():
                problem = _member_problem(path, os.readlink(full))
                if problem:
                    raise refuse(f"links {problem}")
        check_inside(
            staging, final, info.softlinks, lambda what, r=refuse: r(f"links a path that {what}")
        )


def _extracted(folder: Path) -> Iterator[tuple[str, str | None]]:
    """(relative path, symlink target or None) of every file and symlink under ``folder``."""
    for root, dirs, files in os.walk(folder):
        base = os.path.relpath(root, folder).replace(os.sep, "/")
        for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(root, d)))]:
            full = os.path.join(root, name)
            rel = name if base == "." else f"{base}/{name}"
            yield rel, os.readlink(full) if os.path.islink(full) else None


# --- conda-meta records ---------------------------------------------------------------


def check_records(prefix: Path, final: Path) -> None:
    """Refuse to update ``prefix`` (a copy of ``final``) while any of its conda-meta records
    is malformed or names a path outside the prefix: rattler deletes those paths when it
    removes or replaces the package."""
    meta = prefix / "conda-meta"
    if not meta.is_dir():
        return
    for record in sorted(meta.glob("*.json")):
        shown = final / "conda-meta" / record.name

        def refuse(what: str, shown: Path = shown) -> InstallError:
            return InstallError(
                f"the record {shown} {what}",
                hints=(
                    "nothing was changed: the environment was left as it was",
                    "the record was not written by conda or was edited; restore it, or "
                    "create the environment afresh in a new prefix",
                ),
            )

        try:
            data = read_json(record, limits=PACKAGE_RECORD, error=InstallError)
        except InstallError as error:  # not a regular file, too large, not JSON, too deep
            raise refuse(f"cannot be read: {error.message}") from None
        if not isinstance(data, dict):
            raise refuse("is not a JSON object")
        paths = list(_record_paths(data, refuse))
        for path in paths:
            problem = path_problem(path)
            if problem:
                raise refuse(f"lists a path that {problem}: {_show(path)}")
        check_inside(
            prefix,
            final,
            paths,
            lambda what, r=refuse: r(f"lists a path that {what}"),
            follow_last=False,
        )


def _record_paths(data: dict[str, Any], refuse: Any) -> Iterator[str]:
    files = data.get("files", [])
    if not isinstance(files, list):
        raise refuse("has a 'files' value that is not a list")
    yield from files
    paths_data = data.get("paths_data")
    if paths_data is None:
        return
    entries = paths_data.get("paths") if isinstance(paths_data, dict) else None
    if not isinstance(entries, list):
        raise refuse("has a 'paths_data' value without a 'paths' list")
    for entry in entries:
        if not isinstance(entry, dict) or "_path" not in entry:
            raise refuse(f"has a malformed 'paths_data' entry: {_show(entry)[:200]}")
        yield entry["_path"]
