"""conda match specs and channel names, read as conda's ``MatchSpec`` reads them.

:func:`parse_match_spec` ports ``_parse_spec_str`` (conda's ``models/match_spec.py``),
:func:`normalize_version_spec` the ``VersionSpec`` string normalisation and
``VersionOrder`` checks (``models/version.py``), and the ``channel::`` prefix is
resolved with conda's channel model at its default settings (``models/channel.py``),
all as vendored by conda-lock 4.0.3. :func:`dependency_version_spec` turns a
record's ``depends`` into the ``{name: version}`` mapping conda-lock stores.

Errors are ``ValueError`` where conda raises; callers turn them into messages that
name the file and line. conda is never imported.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Iterable

# conda's KNOWN_SUBDIRS (base/constants.py): the subdirs a channel URL may end in.
KNOWN_SUBDIRS = (
    "noarch",
    "emscripten-wasm32",
    "wasi-wasm32",
    "freebsd-64",
    "linux-32",
    "linux-64",
    "linux-aarch64",
    "linux-armv6l",
    "linux-armv7l",
    "linux-ppc64",
    "linux-ppc64le",
    "linux-riscv64",
    "linux-s390x",
    "osx-64",
    "osx-arm64",
    "win-32",
    "win-64",
    "win-arm64",
    "zos-z",
)


@dataclass(frozen=True)
class MatchSpecFields:
    name: str
    version: str | None  # conda's normalised VersionSpec string
    build: str | None
    channel: str | None  # canonical channel name
    subdir: str | None


_BRACKET_ITEM = re.compile(r'([a-zA-Z0-9_-]+?)=(["\']?)([^\'"]*?)(\2)(?:[, ]|$)')
_FIELD_NAMES = frozenset(
    {
        "channel",
        "subdir",
        "name",
        "version",
        "build",
        "build_number",
        "track_features",
        "features",
        "url",
        "md5",
        "sha256",
        "license",
        "license_family",
        "fn",
    }
)


def parse_match_spec(spec: str) -> MatchSpecFields:
    """Parse a conda match spec as conda's ``MatchSpec`` does; ValueError where conda fails."""
    if not spec or not spec.strip():
        raise ValueError("empty spec")
    if spec.endswith("@"):
        raise ValueError("feature specs (name@) are not supported")
    if "#" in spec:
        spec = spec[: spec.index("#")]
    spec = spec.split(" if ", 1)[0]
    if spec.endswith((".conda", ".tar.bz2")):
        raise ValueError("package files and URLs are not supported as specs")

    brackets: dict[str, str] = {}
    m = re.match(r".*(?:(\[.*\]))", spec)
    if m:
        brackets_str = m.group(1)
        spec = spec.replace(brackets_str, "")
        for item in _BRACKET_ITEM.finditer(brackets_str[1:-1]):
            key, _, value, _ = item.groups()
            if not key or not value:
                raise ValueError("key-value mismatch in brackets")
            brackets[key] = value
    m = re.match(r".*(?:(\(.*\)))", spec)
    if m:
        spec = spec.replace(m.group(1), "")

    parts = spec.rsplit(":", 2)
    channel_str = parts[0] if len(parts) == 3 else None
    spec = parts[-1]
    channel, subdir = _parse_channel(channel_str)
    if "channel" in brackets:
        b_channel, b_subdir = _parse_channel(brackets.pop("channel"))
        channel = b_channel or channel
        subdir = b_subdir or subdir
    if "subdir" in brackets:
        subdir = brackets.pop("subdir")

    m = re.match(r"([^ =<>!~]+)?([><!=~ ].+)?", spec)
    name, rest = m.groups() if m else (None, None)
    if name is None:
        raise ValueError(f"no package name found in {spec!r}")
    rest = rest and rest.strip()
    version: str | None = None
    build: str | None = None
    if rest:
        if "[" in rest:
            raise ValueError("multiple brackets sections not allowed")
        version, build = _parse_version_plus_build(rest)
        if version in ("==", "="):
            pass
        elif version[0] == "=":
            test = version[1:]
            if version[:2] == "==" and build is None:
                version = version[2:]
            elif not any(c in test for c in "=,|"):
                version = test + "*" if build is None and test[-1] != "*" else test

    brackets.pop("name", None)  # conda keeps the name outside the brackets
    unknown = set(brackets) - _FIELD_NAMES
    if unknown:
        raise ValueError(f"cannot match on field(s): {', '.join(sorted(unknown))}")
    version = brackets.get("version", version)
    build = brackets.get("build", build)
    if version is not None:
        version = normalize_version_spec(version)
    if build is not None:
        _check_glob(build)
    if channel is not None:
        if "*" in channel or (channel.startswith("^") and channel.endswith("$")):
            raise ValueError("a channel pattern is not supported, name the channel")
        channel = _canonical_channel_name(channel)
    lower = name.lower()
    return MatchSpecFields(
        name="*" if "*" in lower else lower,
        version=version,
        build=build,
        channel=channel,
        subdir=subdir,
    )


def dependency_version_spec(depends: Iterable[str]) -> dict[str, str]:
    """A record's ``depends`` as conda-lock's conda solver stores them: ``{name: version spec}``.

    Several entries for one name are merged the way conda's ``MatchSpec.merge``
    merges versions; a spec without a version maps to "" (conda_solver.py).
    """
    versions: dict[str, list[str | None]] = {}
    for dep in depends:
        name, version = _name_and_version(dep)
        versions.setdefault(name, []).append(version)
    result: dict[str, str] = {}
    for name, specs in versions.items():
        merged: str | None = None
        for v in sorted(specs, key=lambda s: s or ""):
            if v is None:
                continue
            merged = v if merged is None else normalize_version_spec(",".join(sorted((merged, v))))
        result[name] = merged or ""
    return result


@functools.lru_cache(maxsize=16384)
def _name_and_version(dep: str) -> tuple[str, str | None]:
    # The same few thousand dependency strings recur across the records of a lock
    # (and across its platforms): parse each once. A ValueError is not cached.
    fields = parse_match_spec(dep)
    return fields.name, fields.version


def _parse_version_plus_build(v_plus_b: str) -> tuple[str, str | None]:
    parts = re.search(r"((?:.+?)[^><!,|]?)(?:(?<![=!|,<>~])(?:[ =])([^-=,|<>~]+?))?$", v_plus_b)
    if parts:
        version, build = parts.groups()
        build = build and build.strip()
    else:
        version, build = v_plus_b, None
    return (version and version.replace(" ", "")), build


def _check_glob(value: str) -> None:
    if value.startswith("^") and value.endswith("$"):
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"invalid regular expression {value!r}: {e}") from None


# conda's version.py: VersionSpec string normalisation and VersionOrder validation.
_VSPEC_TOKENS = r"\s*\^[^$]*[$]|\s*[()|,]|[^()|,]+"
_REGEX_SPLIT = re.compile(r".*[()|,^$]")
_VERSION_RELATION = re.compile(r"^(=|==|!=|<=|>=|<|>|~=)(?![=<>!~])(\S+)$")
_VERSION_CHECK = re.compile(r"^[\*\.\+!_0-9a-z]+$")
_VERSION_SPLIT = re.compile("([0-9]+|[*]+|[^0-9*]+)")
_OPERATOR_START = frozenset("=<>!~")


def normalize_version_spec(vspec: str | tuple[Any, ...]) -> str:
    """conda's ``VersionSpec(vspec).spec_str``; ValueError for what conda rejects."""
    if isinstance(vspec, str) and _REGEX_SPLIT.match(vspec):
        vspec = _treeify(vspec)
    if isinstance(vspec, tuple):
        children = tuple(normalize_version_spec(s) for s in vspec[1:])
        return _untreeify((vspec[0], *children))
    s = str(vspec).strip()
    if not s:
        raise ValueError("empty version")
    if s[0] == "^" or s[-1] == "$":
        if s[0] != "^" or s[-1] != "$":
            raise ValueError(
                f"invalid version {s!r}: regex specs must start with '^' and end with '$'"
            )
        try:
            re.compile(s)
        except re.error as e:
            raise ValueError(f"invalid version regex {s!r}: {e}") from None
    elif s[0] in _OPERATOR_START:
        m = _VERSION_RELATION.match(s)
        if m is None:
            raise ValueError(f"invalid version {s!r}: invalid operator")
        operator, vo = m.groups()
        if vo[-2:] == ".*":
            if operator == "~=":
                raise ValueError(f"invalid version {s!r}: invalid operator with '.*'")
            vo = vo[:-2]
        _check_version(vo)
    elif s == "*":
        pass
    elif "*" in s.rstrip("*"):
        pass  # a glob; conda turns it into a regex that always compiles
    elif s[-1] == "*":
        if s[-2:] != ".*":
            s = s[:-1] + ".*"
        _check_version(s.rstrip("*").rstrip("."))
    elif "@" not in s:
        _check_version(s)
    return s


def _treeify(spec_str: str) -> str | tuple[Any, ...]:
    tokens = re.findall(_VSPEC_TOKENS, f"({spec_str})")
    output: list[Any] = []
    stack: list[str] = []

    def apply_ops(cstop: str) -> None:
        while stack and stack[-1] not in cstop:
            if len(output) < 2:
                raise ValueError(f"invalid version {spec_str!r}: cannot join single expression")
            c = stack.pop()
            r = output.pop()
            r = r[1:] if r[0] == c else (r,)
            left = output.pop()
            left = left[1:] if left[0] == c else (left,)
            output.append((c, *left, *r))

    for item in tokens:
        item = item.strip()
        if item == "|":
            apply_ops("(")
            stack.append("|")
        elif item == ",":
            apply_ops("|(")
            stack.append(",")
        elif item == "(":
            stack.append("(")
        elif item == ")":
            apply_ops("(")
            if not stack or stack[-1] != "(":
                raise ValueError(f"invalid version {spec_str!r}: expression must start with '('")
            stack.pop()
        else:
            output.append(item)
    if stack:
        raise ValueError(f"invalid version {spec_str!r}: unbalanced parentheses")
    if not output:
        raise ValueError(f"invalid version {spec_str!r}")
    result: str | tuple[Any, ...] = output[0]
    return result


def _untreeify(spec: Any, _inand: bool = False, depth: int = 0) -> str:
    if isinstance(spec, tuple):
        if spec[0] == "|":
            res = "|".join(_untreeify(x, depth=depth + 1) for x in spec[1:])
            if _inand or depth > 0:
                res = f"({res})"
        else:
            res = ",".join(_untreeify(x, _inand=True, depth=depth + 1) for x in spec[1:])
            if depth > 0:
                res = f"({res})"
        return res
    return str(spec)


def _check_version(vstr: str) -> None:
    """conda's VersionOrder validity checks."""
    version = vstr.strip().lower()
    bad = f"invalid version {vstr!r}"
    if version == "":
        raise ValueError(f"{bad}: empty version string")
    invalid = not _VERSION_CHECK.match(version)
    if invalid and "-" in version and "_" not in version:
        version = version.replace("-", "_")
        invalid = not _VERSION_CHECK.match(version)
    if invalid:
        raise ValueError(f"{bad}: invalid character(s)")
    epoch_split = version.split("!")
    if len(epoch_split) == 2:
        if not epoch_split[0].isdigit():
            raise ValueError(f"{bad}: epoch must be an integer")
    elif len(epoch_split) > 2:
        raise ValueError(f"{bad}: duplicated epoch separator '!'")
    local_split = epoch_split[-1].split("+")
    if len(local_split) > 2:
        raise ValueError(f"{bad}: duplicated local version separator '+'")
    if local_split[0] == "":
        raise ValueError(f"{bad}: missing version before local version separator '+'")
    main = local_split[0]
    if main[-1] == "_":
        components = main[:-1].replace("_", ".").split(".")
        components[-1] += "_"
    else:
        components = main.replace("_", ".").split(".")
    if len(local_split) == 2:
        components += local_split[1].replace("_", ".").split(".")
    for component in components:
        if not _VERSION_SPLIT.findall(component):
            raise ValueError(f"{bad}: empty version component")


# conda's channel model, reduced to what ``channel::name`` needs (models/channel.py with
# conda's default settings: channel_alias https://conda.anaconda.org, defaults =
# pkgs/main + pkgs/r on repo.anaconda.com).
_CHANNEL_ALIAS_LOCATION = "conda.anaconda.org"
_DEFAULTS_LOCATION = "repo.anaconda.com"
_DEFAULT_CHANNEL_NAMES = ("pkgs/main", "pkgs/r")
_PLATFORM_IN_URL = re.compile(r"/({})(?:/|$)".format("|".join(KNOWN_SUBDIRS)), re.IGNORECASE)


def _parse_channel(channel_str: str | None) -> tuple[str | None, str | None]:
    """``_parse_channel``: (``Channel(x).name or Channel(x).base_url``, subdir)."""
    if not channel_str:
        return None, None
    if re.match(r"[a-z][a-z0-9]{0,11}://", channel_str):
        return _channel_from_url(channel_str)
    if re.match(r"^(/|\.\.?/|~/)", channel_str):
        return _channel_from_url("file://" + channel_str)
    stripped, platform = _split_platform(channel_str)
    return stripped, platform


def _split_platform(url: str) -> tuple[str, str | None]:
    m = _PLATFORM_IN_URL.search(url)
    platform = m.group(1) if m else None
    cleaned = url.replace("/" + platform, "", 1) if platform is not None else url
    return cleaned.rstrip("/"), platform


def _channel_from_url(url: str) -> tuple[str | None, str | None]:
    token = re.search(r"/t/([a-zA-Z0-9-]*)", url)
    if token is not None:
        url = url.replace("/t/" + token.group(1), "", 1)
    url = url.rstrip("/")
    url, platform = _split_platform(url)
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    path = parts.path.rstrip("/")
    location = host + (f":{port}" if port else "") if host else ""
    test_url = f"{location}{path}" if host else path
    scheme = parts.scheme or "https"
    if not path:
        return f"{scheme}://{location}", platform
    for name in _DEFAULT_CHANNEL_NAMES:
        base = f"{_DEFAULTS_LOCATION}/{name}"
        if _tokenized_startswith(test_url.split("/"), base.split("/")):
            sub = test_url.replace(base, "", 1).strip("/")
            return "/".join(x for x in (name, sub) if x), platform
    if host and _tokenized_startswith(test_url.split("/"), _CHANNEL_ALIAS_LOCATION.split("/")):
        name = test_url.replace(_CHANNEL_ALIAS_LOCATION, "", 1).strip("/")
        return (name or f"{scheme}://{location}"), platform
    if not host:
        location, name = test_url.rsplit("/", 1)
        return (name or f"file://{location}"), platform
    path_parts = path.strip("/").split("/")
    if path_parts and path_parts[0] == "conda":
        path = "/".join(path_parts[1:])
    name = path.strip("/")
    return (name or f"{scheme}://{location}"), platform


def _tokenized_startswith(test: list[str], prefix: list[str]) -> bool:
    return all(t == p for t, p in zip(test, prefix, strict=False))


def _canonical_channel_name(value: str) -> str:
    """``Channel(value).canonical_name`` for a name or base URL returned by _parse_channel."""
    if "://" in value:
        return value.rstrip("/")
    stripped, _ = _split_platform(value)
    if stripped in ("defaults", "local"):
        return stripped
    if stripped in _DEFAULT_CHANNEL_NAMES:
        return "defaults"
    return stripped
