"""pip requirements and PEP 508 markers, read as conda-lock reads them.

:func:`parse_pip_requirement` follows conda-lock 4.0.3's ``parse_python_requirement``
for ``manager="pip"`` (``src_parser/pyproject_toml.py``): a version requirement,
a URL or a git repository, as the :class:`PipDependency` it builds.
:func:`marker_applies` evaluates a requirement's markers for a lock platform the way
conda-lock does before Python's version is known.

Requirements and markers are parsed with ``packaging`` (which conda-lock's own
parser builds on), imported inside the functions: a file without a ``pip:``
section never loads it. Errors are ``ValueError``; callers turn them into
messages that name the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urldefrag

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class PipDependency:
    """A pip requirement, with the fields conda-lock keeps of it."""

    spec: str  # as written in the file
    name: str  # PEP 503 normalised
    kind: Literal["version", "url", "vcs"] = "version"
    version: str = "*"  # conda-style: "<2,>=1" (sorted), "*" when unconstrained
    extras: tuple[str, ...] = ()
    markers: str | None = None
    hash: str | None = None  # from ``--hash=...``
    url: str | None = None  # "url": the URL without fragment; "vcs": the repository
    hashes: tuple[str, ...] = ()  # "url": from the URL fragment
    rev: str | None = None  # "vcs"
    subdirectory: str | None = None  # "vcs"
    category: str = "main"
    line: int | None = None

    def to_conda_lock(self) -> dict[str, Any]:
        """conda-lock's ``model_dump()`` of the dependency it builds for this requirement."""
        base: dict[str, Any] = {
            "name": self.name,
            "manager": "pip",
            "category": self.category,
            "extras": sorted(self.extras),
            "markers": self.markers,
        }
        if self.kind == "vcs":
            # conda-lock builds VCSDependency without the extras.
            base["extras"] = []
            return {
                **base,
                "source": self.url,
                "vcs": "git",
                "rev": self.rev,
                "subdirectory": self.subdirectory,
            }
        if self.kind == "url":
            return {**base, "url": self.url, "hashes": list(self.hashes)}
        return {
            **base,
            "version": self.version,
            "build": None,
            "conda_channel": None,
            "hash": self.hash,
        }


def parse_pip_requirement(
    requirement: str, *, category: str = "main", line: int | None = None
) -> PipDependency:
    """Parse a pip requirement as conda-lock does for ``manager="pip"``; ValueError if malformed."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    spec = requirement
    if (
        requirement.startswith((".", "/", "~", "file:"))
        or requirement.endswith((".whl", ".tar.gz", ".zip"))
        and "://" not in requirement
    ):
        raise ValueError(_LOCAL_PATH)
    markers: str | None = None
    if ";" in requirement:
        requirement, markers = (s.strip() for s in requirement.rsplit(";", 1))
        _parse_marker(markers)  # validate
    if requirement.startswith(("git+", "https://", "ssh://")):
        repo = requirement.split("/")[-1].split("@")[0]
        repo = repo[:-4] if repo.endswith(".git") else repo
        requirement = f"{repo} @ {requirement}"
    pip_hash: str | None = None
    if " --hash=" in requirement:
        pieces = requirement.split(" --hash=")
        if len(pieces) != 2:
            raise ValueError("more than one --hash")
        requirement, pip_hash = pieces
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as error:
        raise ValueError(str(error).splitlines()[0]) from None
    if parsed.marker is not None:
        raise ValueError("markers go after ';'")
    name = canonicalize_name(parsed.name)
    extras = tuple(sorted(parsed.extras))
    url = parsed.url
    if url is not None:
        if url.startswith("git+"):
            source, rev, subdirectory = _unpack_git_url(url)
            return PipDependency(
                spec=spec,
                name=name,
                kind="vcs",
                extras=extras,
                markers=markers,
                url=source,
                rev=rev,
                subdirectory=subdirectory,
                category=category,
                line=line,
            )
        if url.startswith(("https://", "ssh://")):
            base, fragment = urldefrag(url)
            return PipDependency(
                spec=spec,
                name=name,
                kind="url",
                extras=extras,
                markers=markers,
                url=base,
                hashes=(fragment.replace("=", ":"),),
                category=category,
                line=line,
            )
        raise ValueError(_LOCAL_PATH)
    # str(SpecifierSet) sorts; conda-lock replaces "===" and sorts again.
    specifiers = str(parsed.specifier)
    version = ",".join(sorted(specifiers.replace("===", "==").split(","))) if specifiers else ""
    return PipDependency(
        spec=spec,
        name=name,
        kind="version",
        version=version or "*",
        extras=extras,
        markers=markers,
        hash=pip_hash,
        category=category,
        line=line,
    )


_LOCAL_PATH = (
    "local paths are not supported (a shareable lock cannot depend on this machine's files): "
    "build a wheel and serve it from an index or a --find-links folder"
)


def _unpack_git_url(url: str) -> tuple[str, str | None, str | None]:
    if url.endswith(".git"):
        url = url[:-4]
    if url.startswith("git+"):
        url = url[4:]
    rev = subdir = None
    if "@" in url:
        pieces = url.split("@")
        if len(pieces) == 2:
            url, rev = pieces
        elif len(pieces) == 3:
            url, rev = f"{pieces[0]}@{pieces[1]}", pieces[2]
        else:
            raise ValueError("too many '@' in the URL")
    if rev and "#subdirectory=" in rev:
        rev, subdir = rev.split("#subdirectory=")
    return url, rev, subdir


# PEP 508 markers, evaluated as conda-lock does before Python's version is known:
# only these names are known; a clause on any other name counts as true.
_MARKER_ENV = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    "osx": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"},
    "win": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
}


def marker_applies(markers: str | None, platform: str) -> bool:
    """Whether ``markers`` hold on the lock ``platform``; ValueError if they are malformed."""
    if markers is None:
        return True
    env = _MARKER_ENV[platform.split("-")[0]]
    return _evaluate(_parse_marker(markers)._markers, env)


def _parse_marker(text: str) -> Any:
    """``packaging.markers.Marker`` for ``text``; ValueError if malformed."""
    from packaging.markers import InvalidMarker, Marker

    try:
        return Marker(text)
    except InvalidMarker as error:
        raise ValueError(str(error).splitlines()[0]) from None


def _evaluate(markers: list[Any], env: Mapping[str, str]) -> bool:
    """packaging's marker tree, "and" binding tighter than "or", unknown names true."""
    groups: list[list[bool]] = [[]]
    for item in markers:
        if isinstance(item, list):
            groups[-1].append(_evaluate(item, env))
        elif isinstance(item, tuple):
            groups[-1].append(_comparison(*item, env=env))
        elif item == "or":
            groups.append([])
    return any(all(group) for group in groups)


def _comparison(left: Any, op: Any, right: Any, *, env: Mapping[str, str]) -> bool:
    from packaging.markers import Variable

    names = [side.value for side in (left, right) if isinstance(side, Variable)]
    if any(n not in env for n in names):
        return True  # unknown to conda-lock at this stage
    a = env[left.value] if isinstance(left, Variable) else left.value
    b = env[right.value] if isinstance(right, Variable) else right.value
    operator = op.value
    if operator in ("==", "==="):
        return bool(a == b)
    if operator == "!=":
        return bool(a != b)
    if operator == "in":
        return bool(a in b)
    if operator == "not in":
        return bool(a not in b)
    raise ValueError(f"comparison {operator!r} on {', '.join(names)} is not supported")
