"""pip requirements and PEP 508 markers, read as conda-lock reads them.

:func:`parse_pip_requirement` follows conda-lock 4.0.3's ``parse_python_requirement``
for ``manager="pip"`` (``src_parser/pyproject_toml.py``): a version requirement,
a URL or a git repository, as the :class:`PipDependency` it builds.
:func:`marker_applies` evaluates a requirement's markers for a lock platform the way
conda-lock does before Python's version is known.

Errors are ``ValueError``; callers turn them into messages that name the file and
line. Neither pip nor ``packaging`` is imported.
"""

from __future__ import annotations

import re
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


_PIP_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PIP_REQUIREMENT = re.compile(
    rf"^\s*(?P<name>{_PIP_NAME})\s*(?:\[(?P<extras>[^\]]*)\])?\s*"
    r"(?:@\s*(?P<url>\S+)|(?P<spec>[^@]*?))\s*$"
)
_PIP_SPECIFIER = re.compile(r"^\s*(~=|===|==|!=|<=|>=|<|>)\s*([^\s,;<>=!~][^\s,;]*)\s*$")


def parse_pip_requirement(
    requirement: str, *, category: str = "main", line: int | None = None
) -> PipDependency:
    """Parse a pip requirement as conda-lock does for ``manager="pip"``; ValueError if malformed."""
    spec = requirement
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
    m = _PIP_REQUIREMENT.match(requirement)
    if m is None:
        raise ValueError("expected NAME[EXTRAS] [VERSION SPECIFIERS] or NAME @ URL")
    name = re.sub(r"[-_.]+", "-", m.group("name")).lower()
    extras = tuple(sorted({e.strip() for e in (m.group("extras") or "").split(",") if e.strip()}))
    url = m.group("url")
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
        raise ValueError("local paths are not supported (the lock would depend on this machine)")
    raw = (m.group("spec") or "").strip()
    if raw.startswith("(") and raw.endswith(")"):
        raw = raw[1:-1]
    specifiers: set[str] = set()
    for piece in raw.split(",") if raw.strip() else []:
        sm = _PIP_SPECIFIER.match(piece)
        if sm is None:
            raise ValueError(f"invalid version specifier {piece.strip()!r}")
        specifiers.add(sm.group(1) + sm.group(2))
    # str(SpecifierSet) sorts; the poetry encoding passes PEP 440 operators through;
    # conda-lock replaces "===" and sorts again.
    version = ",".join(sorted(",".join(sorted(specifiers)).replace("===", "==").split(",")))
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
_MARKER_TOKEN = re.compile(
    r"""\s*(?:(?P<paren>[()])|(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)|(?P<bool>and\b|or\b)"""
    r"""|(?P<str>'[^']*'|"[^"]*")|(?P<var>[A-Za-z_][A-Za-z0-9_.]*))"""
)


def marker_applies(markers: str | None, platform: str) -> bool:
    """Whether ``markers`` hold on the lock ``platform``; ValueError if they are malformed."""
    if markers is None:
        return True
    env = _MARKER_ENV[platform.split("-")[0]]
    return bool(_parse_marker(markers)(env))


def _parse_marker(text: str) -> Any:
    """Compile a marker expression into ``f(env) -> bool``; ValueError if malformed."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _MARKER_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"unexpected text at {text[pos:].strip()!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    index = 0

    def peek() -> tuple[str, str] | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal index
        if index >= len(tokens):
            raise ValueError("unexpected end of marker")
        index += 1
        return tokens[index - 1]

    def expr() -> Any:
        left = conj()
        while peek() == ("bool", "or"):
            take()
            right = conj()
            left = (lambda a, b: lambda env: a(env) or b(env))(left, right)
        return left

    def conj() -> Any:
        left = atom()
        while peek() == ("bool", "and"):
            take()
            right = atom()
            left = (lambda a, b: lambda env: a(env) and b(env))(left, right)
        return left

    def value() -> tuple[str, str]:
        kind, text_ = take()
        if kind == "str":
            return "str", text_[1:-1]
        if kind == "var":
            return "var", text_
        raise ValueError(f"expected a name or a quoted string, got {text_!r}")

    def atom() -> Any:
        if peek() == ("paren", "("):
            take()
            inner = expr()
            if take() != ("paren", ")"):
                raise ValueError("missing ')'")
            return inner
        left = value()
        kind, op = take()
        if kind != "op":
            raise ValueError(f"expected a comparison, got {op!r}")
        right = value()
        op = " ".join(op.split())
        return _comparison(left, op, right)

    result = expr()
    if index != len(tokens):
        raise ValueError(f"unexpected {tokens[index][1]!r}")
    return result


def _comparison(left: tuple[str, str], op: str, right: tuple[str, str]) -> Any:
    def evaluate(env: Mapping[str, str]) -> bool:
        names = [v for k, v in (left, right) if k == "var"]
        if any(n not in env for n in names):
            return True  # unknown to conda-lock at this stage
        a = env[left[1]] if left[0] == "var" else left[1]
        b = env[right[1]] if right[0] == "var" else right[1]
        if op == "==" or op == "===":
            return a == b
        if op == "!=":
            return a != b
        if op == "in":
            return a in b
        if op == "not in":
            return a not in b
        raise ValueError(f"comparison {op!r} on {', '.join(names)} is not supported")

    return evaluate
