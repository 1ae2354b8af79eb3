"""Read environment.yml and virtual-packages.yml into what a lock is computed from.

:func:`read_environment` turns an environment file into a :class:`LockSpec`: for
each lock platform, the conda match specs and pip requirements that apply after
conda-lock's platform selectors (``# [linux]``) are applied, in file order. It also
keeps each spec parsed the way conda-lock parses it (conda's ``MatchSpec``, pip's
requirement syntax), because :mod:`conda_torch_plugin.content_hash` must hash
exactly what conda-lock hashes. :func:`read_virtual_packages` reads conda-lock's
``--virtual-package-spec`` file.

The rules follow conda-lock 4.0.3 (``src_parser/environment_yaml.py``,
``src_parser/selectors.py``, ``virtual_package.py``) and the conda it vendors
(``models/match_spec.py``, ``models/version.py``, ``models/channel.py``); the
tests compare the results with conda-lock's own functions. conda-lock itself is
never imported here: it costs 0.4 s.

Where conda-lock silently drops or misreads input (a selector it does not know, a
bracketed key conda rejects, a dependency that is neither a string nor a ``pip:``
section) this module raises :class:`EnvFileError` naming the line instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urldefrag, urlsplit

from conda_torch_plugin.errors import EnvFileError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

# The platforms conda-lock's selector table knows (selectors.py); any other
# platform makes conda-lock fail with a KeyError on the first selector it meets.
KNOWN_PLATFORMS = ("linux-64", "linux-aarch64", "linux-ppc64le", "osx-64", "osx-arm64", "win-64")
DEFAULT_PLATFORMS = ("linux-64", "win-64", "osx-arm64")

_SELECTORS: dict[str, frozenset[str]] = {
    "linux-64": frozenset({"linux64", "unix", "linux"}),
    "linux-aarch64": frozenset({"aarch64", "unix", "linux"}),
    "linux-ppc64le": frozenset({"ppc64le", "unix", "linux"}),
    "osx-64": frozenset({"osx64", "osx", "unix"}),
    "osx-arm64": frozenset({"arm64", "osx", "unix"}),
    "win-64": frozenset({"win", "win64"}),
}
_ALL_SELECTORS = frozenset().union(*_SELECTORS.values())
# conda-lock's (adapted from conda-build) selector pattern, verbatim.
_SELECTOR_LINE = re.compile(r"(.+?)\s*(#.*)\[([^\[\]]+)\](?(2)[^\(\)]*)$")

# Keys conda's environment.yml and conda-lock's extensions define.
KNOWN_KEYS = (
    "name",
    "channels",
    "dependencies",
    "platforms",
    "prefix",
    "variables",
    "category",
    "pip-repositories",
    "allow-pypi-requests",
)

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


# --------------------------------------------------------------------------------------
# The data


@dataclass(frozen=True)
class CondaDependency:
    """A conda match spec, with the fields conda-lock keeps of it (``VersionedDependency``)."""

    spec: str  # as written in the file
    name: str  # lower case, as conda's MatchSpec.name
    version: str  # conda's normalised version spec ("3.10.*"), "" when there is none
    build: str | None = None
    channel: str | None = None  # canonical name of the ``channel::`` prefix
    category: str = "main"
    line: int | None = None  # 1-based line in the environment file

    def to_conda_lock(self) -> dict[str, Any]:
        """conda-lock's ``VersionedDependency.model_dump()`` for this spec."""
        return {
            "name": self.name,
            "manager": "conda",
            "category": self.category,
            "extras": [],
            "markers": None,
            "version": self.version,
            "build": self.build,
            "conda_channel": self.channel,
            "hash": None,
        }


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


@dataclass(frozen=True)
class LockSpec:
    """What an environment file asks for, per lock platform.

    ``dependencies`` and ``pip`` are what a solver needs; ``locked_dependencies``
    is the list conda-lock builds from the same file (its order, with its
    de-duplication left to :mod:`content_hash`), which the content hash is
    computed from.
    """

    path: Path
    name: str | None
    channels: tuple[str, ...]  # as written, "nodefaults" removed
    platforms: tuple[str, ...]  # the file's ``platforms:`` key, may be empty
    dependencies: dict[str, tuple[str, ...]]  # per lock platform, conda match specs
    pip: dict[str, tuple[str, ...]]  # per lock platform, pip requirements
    pip_repositories: tuple[str, ...] = ()
    category: str = "main"
    locked_dependencies: dict[str, tuple[CondaDependency | PipDependency, ...]] = field(
        default_factory=dict, repr=False
    )
    skipped: tuple[str, ...] = ()  # pip requirements conda-lock skips (editable installs)

    @property
    def lock_platforms(self) -> tuple[str, ...]:
        """The platforms this specification was read for (the keys of ``dependencies``)."""
        return tuple(self.dependencies)


@dataclass(frozen=True)
class VirtualPackage:
    name: str  # "__cuda"
    version: str  # "12.4"
    build_string: str = ""  # "x86_64" for "__archspec: 1 x86_64"

    @property
    def spec(self) -> str:
        """The value as virtual-packages.yml writes it: ``"VERSION"`` or ``"VERSION BUILD"``."""
        return f"{self.version} {self.build_string}" if self.build_string else self.version


@dataclass(frozen=True)
class VirtualPackageSpec:
    """conda-lock's virtual-packages.yml: the virtual packages assumed per platform."""

    subdirs: dict[str, tuple[VirtualPackage, ...]]
    path: Path | None = None  # None: conda-lock's built-in default
    # conda-lock's default set also carries a stray ``__osx 10.15`` for osx-64, which
    # no solver sees but its content hash does (virtual_package.py).
    hash_extra_osx_10_15: bool = False

    def for_platform(self, platform: str) -> dict[str, str]:
        """``{"__cuda": "12.4", "__archspec": "1 x86_64", ...}`` for ``platform`` ({} if absent)."""
        return {p.name: p.spec for p in self.subdirs.get(platform, ())}

    def packages_for(self, platform: str) -> tuple[VirtualPackage, ...]:
        return self.subdirs.get(platform, ())


# --------------------------------------------------------------------------------------
# environment.yml


def read_environment(path: Path, platforms: Sequence[str] | None = None) -> LockSpec:
    """Read ``path`` for the lock ``platforms`` (default: the file's, else DEFAULT_PLATFORMS).

    Raises :class:`EnvFileError` naming the file and line for anything conda-lock
    would reject or silently misread.
    """
    path = Path(path)
    text = _read_text(path, what="environment file")
    lines = text.splitlines()
    _check_selectors(path, lines)
    every_line = list(range(len(lines)))
    top = _load_yaml(path, text, every_line)
    if not isinstance(top, dict):
        raise EnvFileError(
            f"{path}: the top level must be a mapping with a `dependencies` list",
            hints=[
                "see https://docs.conda.io/projects/conda/en/latest/user-guide/tasks/"
                "manage-environments.html#create-env-file-manually"
            ],
        )
    unknown = [k for k in top if k not in KNOWN_KEYS]
    if unknown:
        key = unknown[0]
        raise EnvFileError(
            f"{_where(path, _line(every_line, _key_line(top, key)))}unsupported key {key!r}",
            hints=[f"the keys an environment file may have: {', '.join(KNOWN_KEYS)}"],
        )
    if "dependencies" not in top:
        raise EnvFileError(
            f"{path}: there is no `dependencies` list",
            hints=["add one, e.g.\ndependencies:\n  - python=3.12\n  - pytorch"],
        )
    name = top.get("name")
    channels = tuple(c for c in _str_list(path, top, "channels", every_line) if c != "nodefaults")
    file_platforms = _str_list(path, top, "platforms", every_line)
    _check_platforms(path, file_platforms, _line(every_line, _key_line(top, "platforms")))
    lock_platforms = tuple(dict.fromkeys(platforms or file_platforms or DEFAULT_PLATFORMS))
    if platforms:
        _check_platforms(None, lock_platforms, None)
    category = top.get("category") or "main"
    if not isinstance(category, str):
        line = _line(every_line, _key_line(top, "category"))
        raise EnvFileError(f"{_where(path, line)}`category` must be a string")
    pip_repositories = tuple(_str_list(path, top, "pip-repositories", every_line))

    dependencies: dict[str, tuple[str, ...]] = {}
    pip: dict[str, tuple[str, ...]] = {}
    locked: dict[str, tuple[CondaDependency | PipDependency, ...]] = {}
    skipped: dict[str, None] = {}
    parsed_by_kept_lines: dict[tuple[int, ...], _PlatformDeps] = {}
    for platform in lock_platforms:
        kept = _kept_lines(lines, platform)
        deps = parsed_by_kept_lines.get(kept)
        if deps is None:
            deps = _platform_dependencies(path, lines, kept, category, platform)
            parsed_by_kept_lines[kept] = deps
        pip_specs = tuple(
            p.spec for p in deps.pip if _marker_applies(path, p.markers, platform, p.line)
        )
        dependencies[platform] = deps.conda_for_solver()
        pip[platform] = pip_specs
        locked[platform] = deps.for_conda_lock(platform, path)
        skipped.update(dict.fromkeys(deps.skipped))
    return LockSpec(
        path=path,
        name=None if name is None else str(name),
        channels=channels,
        platforms=tuple(file_platforms),
        dependencies=dependencies,
        pip=pip,
        pip_repositories=pip_repositories,
        category=category,
        locked_dependencies=locked,
        skipped=tuple(skipped),
    )


@dataclass
class _PlatformDeps:
    conda: list[CondaDependency]
    pip: list[PipDependency]  # before marker evaluation
    # conda-lock handles each ``- pip:`` mapping in turn after all string specs:
    # its requirements, then an implicit ``pip`` conda spec.
    pip_sections: list[list[PipDependency]]
    skipped: list[str]

    def conda_for_solver(self) -> tuple[str, ...]:
        specs = [d.spec for d in self.conda]
        if self.pip_sections and not any(d.name == "pip" for d in self.conda):
            specs.append("pip")
        return tuple(specs)

    def for_conda_lock(
        self, platform: str, path: Path
    ) -> tuple[CondaDependency | PipDependency, ...]:
        out: list[CondaDependency | PipDependency] = list(self.conda)
        for section in self.pip_sections:
            out += [p for p in section if _marker_applies(path, p.markers, platform, p.line)]
            # parse_python_requirement("pip", manager="conda"): category "main", version "*".
            out.append(CondaDependency(spec="pip", name="pip", version="*", category="main"))
        return tuple(out)


def _platform_dependencies(
    path: Path, lines: list[str], kept: tuple[int, ...], category: str, platform: str
) -> _PlatformDeps:
    data = _load_yaml(path, "\n".join(lines[i] for i in kept), list(kept))
    if not isinstance(data, dict):
        raise EnvFileError(f"{path}: the top level must be a mapping")
    raw = data.get("dependencies")
    line_of_key = _line(kept, _key_line(data, "dependencies"))
    if raw is None:
        raise EnvFileError(
            f"{_where(path, line_of_key)}`dependencies` is empty"
            + (f" for {platform} (after its selectors)" if len(kept) < len(lines) else ""),
        )
    if not isinstance(raw, list):
        raise EnvFileError(f"{_where(path, line_of_key)}`dependencies` must be a list")
    result = _PlatformDeps(conda=[], pip=[], pip_sections=[], skipped=[])
    mappings: list[tuple[Any, int | None]] = []
    for index, item in enumerate(raw):
        line = _line(kept, _item_line(raw, index))
        if isinstance(item, str):
            result.conda.append(_conda_dependency(path, item, category, line))
        elif isinstance(item, dict):
            mappings.append((item, line))
        else:
            raise EnvFileError(
                f"{_where(path, line)}dependency {item!r} is not a string",
                hints=['write it in quotes, e.g. - "python=3.12"'],
            )
    for mapping, line in mappings:
        other = [k for k in mapping if k != "pip"]
        if other:
            raise EnvFileError(
                f"{_where(path, line)}unsupported dependency section {other[0]!r}",
                hints=["the only section a dependency list may hold is `pip:`"],
            )
        section = mapping.get("pip")
        if section is None:  # absent, or emptied by selectors
            continue
        if not isinstance(section, list):
            raise EnvFileError(f"{_where(path, line)}the `pip:` section must be a list")
        parsed: list[PipDependency] = []
        for index, item in enumerate(section):
            item_line = _line(kept, _item_line(section, index))
            if not isinstance(item, str):
                raise EnvFileError(
                    f"{_where(path, item_line)}pip requirement {item!r} is not a string"
                )
            if re.match(r"^-e .*$", item):
                result.skipped.append(item)  # conda-lock skips editable installs too
                continue
            try:
                parsed.append(parse_pip_requirement(item, category=category, line=item_line))
            except ValueError as e:
                raise EnvFileError(
                    f"{_where(path, item_line)}bad pip requirement {item!r}: {e}"
                ) from None
        result.pip += parsed
        result.pip_sections.append(parsed)
    return result


def _conda_dependency(path: Path, spec: str, category: str, line: int | None) -> CondaDependency:
    try:
        parsed = parse_match_spec(spec)
    except ValueError as e:
        raise EnvFileError(
            f"{_where(path, line)}bad package spec {spec!r}: {e}",
            hints=[
                "conda match specs look like: python=3.12, mkl<2024.1, pytorch::pytorch=2.5.1, "
                "pytorch=2.5.1=*cuda*"
            ],
        ) from None
    return CondaDependency(
        spec=spec,
        name=parsed.name,
        version=parsed.version or "",
        build=parsed.build,
        channel=parsed.channel,
        category=category,
        line=line,
    )


def _kept_lines(lines: list[str], platform: str) -> tuple[int, ...]:
    """Indexes of the lines conda-lock keeps for ``platform`` (selectors.py)."""
    kept = []
    for index, line in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        m = _SELECTOR_LINE.match(line)
        if m and m.group(3) not in _SELECTORS[platform]:
            continue
        kept.append(index)
    return tuple(kept)


def _check_selectors(path: Path, lines: list[str]) -> None:
    for index, line in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        m = _SELECTOR_LINE.match(line)
        if m and m.group(3) not in _ALL_SELECTORS:
            raise EnvFileError(
                f"{_where(path, index + 1)}selector [{m.group(3)}] is not one conda-lock "
                "understands, and conda-lock would drop this line on every platform",
                hints=[
                    "use exactly one of: " + ", ".join(sorted(_ALL_SELECTORS)),
                    "repeat the line once per selector for several platforms",
                    "a comment ending in [...] is read as a selector: reword it",
                ],
            )


def _check_platforms(path: Path | None, platforms: Iterable[str], line: int | None) -> None:
    """Platforms of the file (``path``) or, with ``path`` None, the ones asked for."""
    for platform in platforms:
        if platform not in _SELECTORS:
            raise EnvFileError(
                f"{_where(path, line)}unknown platform {platform!r}"
                + ("" if path is not None else " (asked for as a lock platform)"),
                hints=[f"known platforms: {', '.join(KNOWN_PLATFORMS)}"],
            )


def _str_list(path: Path, data: dict[str, Any], key: str, line_map: list[int]) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    line = _line(line_map, _key_line(data, key))
    if not isinstance(value, list):
        raise EnvFileError(f"{_where(path, line)}`{key}` must be a list")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            item_line = _line(line_map, _item_line(value, index))
            raise EnvFileError(
                f"{_where(path, item_line if item_line is not None else line)}"
                f"`{key}` entry {item!r} is not a string"
            )
    return [str(v) for v in value]


# --------------------------------------------------------------------------------------
# virtual-packages.yml


def read_virtual_packages(path: Path) -> VirtualPackageSpec:
    """Read conda-lock's virtual-packages.yml (``subdirs: {SUBDIR: {packages: {__NAME: "V"}}}``)."""
    path = Path(path)
    text = _read_text(path, what="virtual-packages file")
    data = _load_yaml(path, text, list(range(len(text.splitlines()))))
    return _virtual_package_spec(path, data)


def default_virtual_packages() -> VirtualPackageSpec:
    """What conda-lock assumes without a virtual-packages file (default-virtual-packages.yaml)."""
    spec = _virtual_package_spec(None, _DEFAULT_VIRTUAL_PACKAGES)
    return VirtualPackageSpec(subdirs=spec.subdirs, path=None, hash_extra_osx_10_15=True)


_DEFAULT_VIRTUAL_PACKAGES: dict[str, Any] = {
    "subdirs": {
        "linux-64": {
            "packages": {
                "__unix": "0",
                "__linux": "5.10",
                "__archspec": "1 x86_64",
                "__glibc": "2.28",
                "__cuda": "11.4",
            }
        },
        "linux-aarch64": {
            "packages": {
                "__unix": "0",
                "__linux": "5.10",
                "__archspec": "1 aarch64",
                "__glibc": "2.28",
                "__cuda": "11.4",
            }
        },
        "linux-ppc64le": {
            "packages": {
                "__unix": "0",
                "__linux": "5.10",
                "__archspec": "1 ppc64le",
                "__glibc": "2.28",
                "__cuda": "11.4",
            }
        },
        "osx-64": {"packages": {"__unix": "0", "__archspec": "1 x86_64", "__osx": "11.0"}},
        "osx-arm64": {"packages": {"__unix": "0", "__archspec": "1 arm64", "__osx": "11.0"}},
        "win-64": {"packages": {"__win": "0", "__archspec": "1 x86_64", "__cuda": "11.4"}},
    }
}


def _virtual_package_spec(path: Path | None, data: Any) -> VirtualPackageSpec:
    where = f"{path}: " if path is not None else ""
    example = 'subdirs:\n  linux-64:\n    packages:\n      __glibc: "2.28"\n      __cuda: "12.4"'
    if not isinstance(data, dict) or not isinstance(data.get("subdirs"), dict):
        raise EnvFileError(
            f"{where}expected a `subdirs:` mapping", hints=[f"the format is:\n{example}"]
        )
    subdirs: dict[str, tuple[VirtualPackage, ...]] = {}
    for subdir, body in data["subdirs"].items():
        line = _one_based(_key_line(data["subdirs"], subdir))
        if subdir not in KNOWN_SUBDIRS:
            raise EnvFileError(
                f"{_where(path, line) if path else ''}unknown platform {subdir!r}",
                hints=[f"known platforms: {', '.join(KNOWN_PLATFORMS)}"],
            )
        if not isinstance(body, dict) or not isinstance(body.get("packages"), dict):
            raise EnvFileError(
                f"{_where(path, line) if path else ''}{subdir}: expected a `packages:` mapping",
                hints=[f"the format is:\n{example}"],
            )
        packages = []
        for name, value in body["packages"].items():
            pline = _one_based(_key_line(body["packages"], name))
            prefix = _where(path, pline) if path else ""
            if not isinstance(name, str) or not name.startswith("__"):
                raise EnvFileError(
                    f"{prefix}{name!r} is not a virtual package (their names start with __)"
                )
            if not isinstance(value, str):
                raise EnvFileError(
                    f"{prefix}the version of {name} must be a string, not {value!r}",
                    hints=[f'write it in quotes: {name}: "{value}" (conda-lock rejects a number)'],
                )
            version, _, build = value.partition(" ")
            packages.append(VirtualPackage(name=name, version=version, build_string=build))
        subdirs[subdir] = tuple(packages)
    return VirtualPackageSpec(subdirs=subdirs, path=path)


# --------------------------------------------------------------------------------------
# YAML with line numbers


def _read_text(path: Path, *, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EnvFileError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise EnvFileError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError as e:
        raise EnvFileError(
            f"{what} {path} is not UTF-8 text ({e.reason} at byte {e.start})"
        ) from None
    except OSError as e:
        raise EnvFileError(f"cannot read {what} {path}: {e.strerror or e}") from None


def _load_yaml(path: Path, text: str, line_map: list[int]) -> Any:
    """Parse ``text`` (round-trip, for line numbers).

    ``line_map[i]`` is the index in the file of the text's line i.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        if mark is not None and mark.line >= len(line_map) and e.context_mark is not None:
            mark = e.context_mark  # "found end of file": where the unclosed construct began
        line = column = None
        if mark is not None:
            if mark.line < len(line_map):
                line = _line(line_map, mark.line)
                column = mark.column + 1
            else:
                line = line_map[-1] + 1 if line_map else 1
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise EnvFileError(
            f"{_where(path, line, column)}malformed YAML: {problem}",
            hints=["check the indentation and quoting at that line"],
        ) from None
    except YAMLError as e:
        raise EnvFileError(f"{path}: malformed YAML: {e}") from None


def _line(line_map: Sequence[int], index: int | None) -> int | None:
    """1-based file line of the 0-based line ``index`` of a filtered text."""
    if index is None:
        return None
    return line_map[index] + 1 if index < len(line_map) else None


def _one_based(index: int | None) -> int | None:
    return None if index is None else index + 1


def _key_line(mapping: Any, key: Any) -> int | None:
    try:
        return int(mapping.lc.key(key)[0])
    except (AttributeError, KeyError, TypeError):
        return None


def _item_line(seq: Any, index: int) -> int | None:
    try:
        return int(seq.lc.item(index)[0])
    except (AttributeError, KeyError, TypeError, IndexError):
        return None


def _where(path: Path | None, line: int | None, column: int | None = None) -> str:
    if path is None:
        return ""
    if line is None:
        return f"{path}: "
    if column is None:
        return f"{path}, line {line}: "
    return f"{path}, line {line}, column {column}: "


# --------------------------------------------------------------------------------------
# conda match specs, parsed as conda's MatchSpec parses them (match_spec.py _parse_spec_str)


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
    original = spec
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
    del original
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
        fields = parse_match_spec(dep)
        versions.setdefault(fields.name, []).append(fields.version)
    result: dict[str, str] = {}
    for name, specs in versions.items():
        merged: str | None = None
        for v in sorted(specs, key=lambda s: s or ""):
            if v is None:
                continue
            merged = v if merged is None else normalize_version_spec(",".join(sorted((merged, v))))
        result[name] = merged or ""
    return result


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


# --------------------------------------------------------------------------------------
# pip requirements, as conda-lock's parse_python_requirement reads them


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


def _marker_applies(path: Path, markers: str | None, platform: str, line: int | None) -> bool:
    if markers is None:
        return True
    env = _MARKER_ENV[platform.split("-")[0]]
    try:
        return bool(_parse_marker(markers)(env))
    except ValueError as e:
        raise EnvFileError(f"{_where(path, line)}bad marker {markers!r}: {e}") from None


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
