"""Read environment.yml and virtual-packages.yml into what a lock is computed from.

:func:`read_environment` turns an environment file into a :class:`LockSpec`: for
each lock platform, the conda match specs and pip requirements that apply after
conda-lock's platform selectors (``# [linux]``) are applied, in file order. It also
keeps each spec parsed the way conda-lock parses it (conda's ``MatchSpec``, pip's
requirement syntax), because :mod:`conda_torch_plugin.condalock.content_hash` must hash
exactly what conda-lock hashes. :func:`read_virtual_packages` reads conda-lock's
``--virtual-package-spec`` file.

The rules follow conda-lock 4.0.3 (``src_parser/environment_yaml.py``,
``src_parser/selectors.py``, ``virtual_package.py``); match specs are read by
:mod:`conda_torch_plugin.condalock.matchspec` (conda's ``MatchSpec``), pip requirements and
markers by :mod:`conda_torch_plugin.condalock._pipspec`, and both are re-exported here. The
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
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.condalock._pipspec import (
    PipDependency,
    marker_applies,
    parse_pip_requirement,
)
from conda_torch_plugin.condalock._yaml_reader import fast_load_lines
from conda_torch_plugin.condalock.matchspec import (
    KNOWN_SUBDIRS,
    MatchSpecFields,
    dependency_version_spec,
    normalize_version_spec,
    parse_match_spec,
)
from conda_torch_plugin.errors import EnvFileError
from conda_torch_plugin.inputs import (
    ENVIRONMENT_FILE,
    VIRTUAL_PACKAGES_FILE,
    InputLimits,
    check_yaml,
    read_text,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

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
    # per lock platform, the pip section's index options (``--index-url URL``, ``--no-index``),
    # normalised to ``OPTION`` or ``OPTION VALUE``, in file order
    pip_options: dict[str, tuple[str, ...]] = field(default_factory=dict)

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
    text = read_text(path, limits=ENVIRONMENT_FILE, error=EnvFileError)
    lines = text.splitlines()
    _check_selectors(path, lines)
    every_line = list(range(len(lines)))
    top = _load_yaml(path, text, every_line, ENVIRONMENT_FILE)
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
    pip_options: dict[str, tuple[str, ...]] = {}
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
        pip_options[platform] = tuple(deps.options)
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
        pip_options=pip_options,
    )


@dataclass
class _PlatformDeps:
    conda: list[CondaDependency]
    pip: list[PipDependency]  # before marker evaluation
    # conda-lock handles each ``- pip:`` mapping in turn after all string specs:
    # its requirements, then an implicit ``pip`` conda spec.
    pip_sections: list[list[PipDependency]]
    skipped: list[str]
    options: list[str] = field(default_factory=list)  # index options of the pip sections

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
    data = _load_yaml(path, "\n".join(lines[i] for i in kept), list(kept), ENVIRONMENT_FILE)
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
            if item.startswith("-"):
                result.options.append(_pip_option(path, item, item_line))
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


# pip's index options, as a requirements file writes them; the short forms are normalised.
PIP_INDEX_OPTIONS = {
    "--index-url": "--index-url",
    "-i": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "--find-links": "--find-links",
    "-f": "--find-links",
    "--no-index": "--no-index",
}


def _pip_option(path: Path, item: str, line: int | None) -> str:
    """``--index-url URL`` (or ``--index-url=URL``, ``-i URL``) as ``--index-url URL``."""
    words = item.replace("=", " ", 1).split() if item.startswith("--") else item.split()
    option = PIP_INDEX_OPTIONS.get(words[0])
    takes_value = option is not None and option != "--no-index"
    if option is None or len(words) != (2 if takes_value else 1):
        raise EnvFileError(
            f"{_where(path, line)}unsupported pip option {item!r}",
            hints=[
                "a pip: section may hold requirements and the index options "
                "--index-url URL, --extra-index-url URL, --find-links URL and --no-index"
            ],
        )
    return " ".join([option, *words[1:]])


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


def _marker_applies(path: Path, markers: str | None, platform: str, line: int | None) -> bool:
    try:
        return marker_applies(markers, platform)
    except ValueError as e:
        raise EnvFileError(f"{_where(path, line)}bad marker {markers!r}: {e}") from None


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
    text = read_text(path, limits=VIRTUAL_PACKAGES_FILE, error=EnvFileError)
    data = _load_yaml(path, text, list(range(len(text.splitlines()))), VIRTUAL_PACKAGES_FILE)
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


def _load_yaml(path: Path, text: str, line_map: list[int], limits: InputLimits) -> Any:
    """Parse ``text`` (round-trip, for line numbers).

    ``line_map[i]`` is the index in the file of the text's line i. The common
    layout is read without ruamel (:func:`~._yaml_reader.fast_load_lines`
    gives what ruamel gives, or None), saving its import and parse: about 10 ms.
    Anything else is checked first (no anchors or aliases, standard tags, within
    ``limits``: :func:`~conda_torch_plugin.inputs.check_yaml`), then read by ruamel.
    """
    fast = fast_load_lines(text, max_nodes=limits.max_nodes, max_depth=limits.max_depth)
    if fast is not None:
        return fast
    check_yaml(
        text,
        source=str(path),
        limits=limits,
        error=EnvFileError,
        line_of=lambda index: _line(line_map, index),
    )
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


__all__ = [
    "DEFAULT_PLATFORMS",
    "KNOWN_KEYS",
    "KNOWN_PLATFORMS",
    "KNOWN_SUBDIRS",
    "CondaDependency",
    "LockSpec",
    "MatchSpecFields",
    "PipDependency",
    "VirtualPackage",
    "VirtualPackageSpec",
    "default_virtual_packages",
    "dependency_version_spec",
    "normalize_version_spec",
    "parse_match_spec",
    "parse_pip_requirement",
    "read_environment",
    "read_virtual_packages",
]
