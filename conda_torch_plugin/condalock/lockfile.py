"""conda-lock's unified ``conda-lock.yml`` (version 1): model, canonical writer, reader.

The writer produces what conda-lock's own ``write_conda_lock_file`` writes for the
same content, byte for byte below the header comment (PyYAML's block style and
its quoting rules, field order of conda-lock's v1 model, packages in conda-lock's
order), so ``conda-lock install``, ``conda-lock render`` and conda's
conda-lockfiles plugin read it, and a lock written by either tool diffs cleanly
against the other. The same :class:`LockFile` always gives the same bytes.

Credentials never reach the file: tokens (``/t/<token>/``) and ``user:password@``
are removed from every channel and package URL.

The YAML itself is written by :mod:`conda_torch_plugin.condalock._yaml_writer` and read by
:mod:`conda_torch_plugin.condalock._yaml_reader`, without importing conda_lock (0.4 s of imports)
or PyYAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.condalock import lock_command_for, lock_command_for_source
from conda_torch_plugin.condalock._yaml_reader import fast_load
from conda_torch_plugin.condalock._yaml_writer import emit_yaml
from conda_torch_plugin.errors import LockError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    build: str
    platform: str  # the lock platform this entry belongs to ("linux-64"), also for noarch packages
    url: str
    md5: str
    sha256: str
    dependencies: dict[str, str] = field(default_factory=dict)
    manager: str = "conda"
    category: str = "main"
    optional: bool = False

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class LockFile:
    platforms: tuple[str, ...]
    channels: tuple[str, ...]  # channel URLs, credentials stripped
    content_hash: dict[str, str]  # per platform
    sources: tuple[str, ...]  # ("environment.yml",)
    packages: tuple[LockedPackage, ...]

    @property
    def relock_command(self) -> str:
        """The command that remakes this lock, with the ``-f`` its environment file needs."""
        return lock_command_for_source(self.sources[0] if self.sources else None)

    def packages_for(self, platform: str) -> tuple[LockedPackage, ...]:
        return tuple(p for p in self.packages if p.platform == platform)


SUPPORTED_VERSIONS = (1,)


# --------------------------------------------------------------------------------------
# Credentials

_TOKEN_SEGMENT = re.compile(r"/t/[^/]+(?=/|$)")


def strip_credentials(url: str) -> str:
    """``url`` without an anaconda.org-style token (``/t/<token>``) or ``user:password@``.

    Anything that is not a URL (a channel name such as ``conda-forge``) is returned as is.
    """
    scheme_end = url.find("://")
    if scheme_end < 0 or url[:scheme_end].lower() == "file":
        return url  # a channel name, or a local path (a "t" folder there is just a folder)
    start = scheme_end + 3
    slash = url.find("/", start)
    netloc_end = len(url) if slash < 0 else slash
    netloc = url[start:netloc_end]
    if "@" in netloc:
        netloc = netloc.rsplit("@", 1)[1]
    rest = _TOKEN_SEGMENT.sub("", url[netloc_end:], count=1)
    return url[:start] + netloc + rest


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_credentials(text: str) -> str:
    """``text`` (a URL, or a message or command line holding URLs) with secrets masked.

    ``user:password@`` becomes ``***@`` and ``/t/<token>/`` becomes ``/t/***/``, so
    the URL stays readable (which host, which channel) for messages and output.
    ``file://`` URLs are left alone; use :func:`strip_credentials` for URLs that
    are written down to be used again.
    """
    return _URL_IN_TEXT.sub(lambda m: _redact_url(m.group(0)), text)


def _redact_url(url: str) -> str:
    scheme_end = url.find("://")
    if url[:scheme_end].lower() == "file":
        return url
    start = scheme_end + 3
    slash = url.find("/", start)
    netloc_end = len(url) if slash < 0 else slash
    netloc = url[start:netloc_end]
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    rest = _TOKEN_SEGMENT.sub("/t/***", url[netloc_end:], count=1)
    return url[:start] + netloc + rest


# --------------------------------------------------------------------------------------
# From solver records


def locked_package_from_record(record: Any, platform: str) -> LockedPackage:
    """A :class:`LockedPackage` from a py-rattler ``RepoDataRecord`` solved for ``platform``.

    ``dependencies`` is built as conda-lock's conda solver builds it: one entry per
    dependency name, the version part of its match spec ("" when it has none), the
    build string dropped.
    """
    from conda_torch_plugin.condalock.matchspec import dependency_version_spec

    name = record.name.normalized
    md5, sha256 = record.md5, record.sha256  # each access copies the bytes out of rattler
    if md5 is None or sha256 is None:
        missing = " and ".join(h for h, v in (("md5", md5), ("sha256", sha256)) if v is None)
        raise LockError(
            f"{record.file_name} has no {missing} in its channel's repodata: it cannot be locked",
            hints=["re-index the channel so that every record has md5 and sha256"],
        )
    try:
        dependencies = dependency_version_spec(record.depends)
    except ValueError as e:
        raise LockError(f"{record.file_name}: cannot read its dependencies: {e}") from None
    return LockedPackage(
        name=name,
        version=str(record.version),
        build=str(record.build),
        platform=platform,
        url=strip_credentials(str(record.url)),
        md5=md5.hex(),
        sha256=sha256.hex(),
        dependencies=dependencies,
    )


# --------------------------------------------------------------------------------------
# Writing


def write_lockfile(lock: LockFile, path: Path, *, command: str) -> None:
    """Write ``lock`` to ``path`` atomically; ``command`` is the one that regenerates it."""
    from conda_torch_plugin.atomic import atomic_write_text

    text = render_lockfile(lock, command=command)
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise LockError(f"cannot write {path}: {e.strerror or e}") from None


def render_lockfile(lock: LockFile, *, command: str) -> str:
    """The text :func:`write_lockfile` writes."""
    return _header(command) + emit_yaml(_lock_document(lock))


def _header(command: str) -> str:
    lines = [
        "This lock file was generated by conda torch-env (conda-torch-plugin). DO NOT EDIT!",
        "",
        "It pins every package, with its URL and checksums, for each platform listed below.",
        "It is conda-lock's unified format (version 1): `conda torch-env install`,",
        "`conda-lock install` and conda's conda-lockfiles plugin install it, and",
        "`conda-lock render --kind explicit` renders it for `conda create --file`.",
        "",
        "To regenerate it after changing the environment file, run in this folder:",
        *(f"    {line}" for line in command.splitlines() or [""]),
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def _package_order(p: LockedPackage) -> tuple[Any, ...]:
    # conda-lock's alphasort_inplace sorts by (manager, name, platform); the rest
    # only makes the order total.
    return (p.manager, p.name, p.platform, p.category, p.version, p.build, p.url)


def _lock_document(lock: LockFile) -> dict[str, Any]:
    content_hash = {p: lock.content_hash[p] for p in lock.platforms if p in lock.content_hash}
    content_hash.update(
        {p: h for p, h in sorted(lock.content_hash.items()) if p not in content_hash}
    )
    packages = sorted(
        (p for p in lock.packages if not (p.manager == "conda" and p.name.startswith("__"))),
        key=_package_order,
    )
    return {
        "version": 1,
        "metadata": {
            "content_hash": content_hash,
            "channels": [{"url": strip_credentials(c), "used_env_vars": []} for c in lock.channels],
            "platforms": list(lock.platforms),
            "sources": list(lock.sources),
        },
        "package": [_package_document(p) for p in packages],
    }


def _package_document(p: LockedPackage) -> dict[str, Any]:
    # Field order of conda-lock's v1 LockedDependency; None fields are left out as
    # its dict_for_output(exclude_none=True) leaves them out.
    doc: dict[str, Any] = {
        "name": p.name,
        "version": p.version,
        "manager": p.manager,
        "platform": p.platform,
        "dependencies": dict(sorted(p.dependencies.items())),
        "url": strip_credentials(p.url),
        "hash": {"md5": p.md5, "sha256": p.sha256} if p.md5 else {"sha256": p.sha256},
    }
    if p.build:
        doc["build"] = p.build
    doc["category"] = p.category
    doc["optional"] = p.category != "main"  # conda-lock's rule (LockedDependency.to_v1)
    return doc


# --------------------------------------------------------------------------------------
# Reading


def read_lockfile(path: Path) -> LockFile:
    """Read a conda-lock.yml (ours or conda-lock's); LockError naming what is wrong."""
    from conda_torch_plugin.inputs import LOCK_FILE, read_text

    path = Path(path)
    text = read_text(
        path,
        limits=LOCK_FILE,
        error=LockError,
        missing_hints=[f"create it with `{lock_command_for(path)}`"],
    )
    data = _load(path, text)
    return _LockReader(path, text).lock(data)


def _load(path: Path, text: str) -> Any:
    from conda_torch_plugin.inputs import LOCK_FILE, check_yaml

    fast = fast_load(text, max_nodes=LOCK_FILE.max_nodes, max_depth=LOCK_FILE.max_depth)
    if fast is not None:
        return fast
    # conda-lock never writes anchors: an alias is refused before anything expands it.
    check_yaml(text, source=f"lock file {path}", limits=LOCK_FILE, error=LockError)
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    # Every scalar as a string: the fields are strings whatever they look like
    # ("1.10", "2023c"), so no YAML 1.1 / 1.2 typing difference can bite.
    yaml = YAML(typ="base")
    try:
        return yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise LockError(f"lock file {path}{where}: malformed YAML: {problem}") from None
    except YAMLError as e:
        raise LockError(f"lock file {path}: malformed YAML: {e}") from None


class _LockReader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def relock_hints(self) -> tuple[str, ...]:
        return (
            "the lock file was edited by hand or is damaged: regenerate it with "
            f"`{lock_command_for(self.path)}` and review where the changed file came from",
        )

    def fail(
        self, message: str, package_index: int | None = None, hints: Iterable[str] = ()
    ) -> LockError:
        where = ""
        if package_index is not None:
            line = self._package_line(package_index)
            where = f", line {line}" if line else ""
        return LockError(f"lock file {self.path}{where}: {message}", hints=hints)

    def _package_line(self, index: int) -> int | None:
        # Only on failure: the round-trip loader keeps line numbers but is slow.
        from ruamel.yaml import YAML

        try:
            data = YAML(typ="rt").load(self.text)
            return int(data["package"].lc.item(index)[0]) + 1
        except Exception:  # a best effort for the message only
            return None

    def lock(self, data: Any) -> LockFile:
        if not isinstance(data, dict):
            raise self.fail("expected a mapping with `version`, `metadata` and `package`")
        version = data.get("version")
        if version is None:
            raise self.fail("there is no `version`", hints=["is this a conda-lock.yml file?"])
        if not isinstance(version, str):
            raise self.fail(
                f"`version` must be a number, not a {_kind(version)}",
                hints=[
                    "is this a conda-lock.yml file? regenerate it with "
                    f"`{lock_command_for(self.path)}`"
                ],
            )
        if version not in {str(v) for v in SUPPORTED_VERSIONS}:
            raise self.fail(
                f"unknown lock file version {version}",
                hints=[
                    f"this tool reads version {', '.join(map(str, SUPPORTED_VERSIONS))} "
                    "(conda-lock's unified format); regenerate it with "
                    f"`{lock_command_for(self.path)}`"
                ],
            )
        metadata = self.mapping(data, "metadata", "the lock file")
        content_hash = self.mapping(metadata, "content_hash", "metadata")
        for key, value in content_hash.items():
            if not isinstance(value, str):
                raise self.fail(f"metadata.content_hash.{key} must be a string")
        channels = []
        for index, channel in enumerate(self.sequence(metadata, "channels", "metadata")):
            url = channel.get("url") if isinstance(channel, dict) else channel
            if not isinstance(url, str):
                raise self.fail(f"metadata.channels[{index}] has no url")
            channels.append(url)
        platforms = self.strings(metadata, "platforms", "metadata")
        sources = self.strings(metadata, "sources", "metadata")
        raw_packages = data.get("package")
        if not isinstance(raw_packages, list):
            raise self.fail("there is no `package` list")
        packages = tuple(self.package(index, raw) for index, raw in enumerate(raw_packages))
        for index, pkg in enumerate(packages):
            if pkg.platform not in platforms:
                raise self.fail(
                    f"package {pkg.name} is locked for {_quote(pkg.platform)}, which is not "
                    f"in metadata.platforms ({', '.join(platforms) or 'none'})",
                    index,
                    hints=self.relock_hints(),
                )
        return LockFile(
            platforms=tuple(platforms),
            channels=tuple(channels),
            content_hash=dict(content_hash),
            sources=tuple(sources),
            packages=packages,
        )

    def package(self, index: int, raw: Any) -> LockedPackage:
        if not isinstance(raw, dict):
            raise self.fail(f"package entry {index + 1} is not a mapping", index)
        name = raw.get("name")
        label = name if isinstance(name, str) and name else f"entry {index + 1}"
        if isinstance(raw.get("platform"), str):
            label += f" ({raw['platform']})"

        def required(key: str, mapping: Mapping[str, Any] = raw, prefix: str = "") -> str:
            value = mapping.get(key)
            if value is not None and not isinstance(value, str):
                raise self.fail(
                    f"package {label}: {prefix}{key} must be a string, not a {_kind(value)}",
                    index,
                    hints=self.relock_hints(),
                )
            if not value:
                raise self.fail(
                    f"package {label} has no {prefix}{key}",
                    index,
                    hints=[f"regenerate the lock file with `{lock_command_for(self.path)}`"],
                )
            return value

        manager = required("manager")
        if manager not in ("conda", "pip"):
            raise self.fail(f"package {label}: unknown manager {manager!r} (conda or pip)", index)
        hashes = raw.get("hash")
        if not isinstance(hashes, dict):
            raise self.fail(f"package {label} has no hash", index)
        md5 = required("md5", hashes, "hash.") if manager == "conda" else hashes.get("md5") or ""
        if not isinstance(md5, str):
            raise self.fail(f"package {label}: hash.md5 must be a string", index)
        sha256 = required("sha256", hashes, "hash.")
        dependencies = raw.get("dependencies") or {}
        if not isinstance(dependencies, dict) or not all(
            isinstance(v, str) for v in dependencies.values()
        ):
            raise self.fail(f"package {label}: dependencies must map names to version specs", index)
        optional = raw.get("optional", "false")
        if optional not in ("true", "false", "True", "False"):
            raise self.fail(f"package {label}: optional must be true or false", index)
        build = raw.get("build") or ""
        category = raw.get("category") or "main"
        if not isinstance(build, str) or not isinstance(category, str):
            raise self.fail(f"package {label}: build and category must be strings", index)
        pkg = LockedPackage(
            name=required("name"),
            version=required("version"),
            build=build,
            platform=required("platform"),
            url=required("url"),
            md5=md5.lower(),
            sha256=sha256.lower(),
            dependencies=dict(dependencies),
            manager=manager,
            category=category,
            optional=optional.lower() == "true",
        )
        problem = package_problem(pkg)
        if problem:
            raise self.fail(f"package {label}: {problem}", index, hints=self.relock_hints())
        return pkg

    def mapping(self, data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"{where} has no `{key}` mapping")
        return value

    def sequence(self, data: Mapping[str, Any], key: str, where: str) -> list[Any]:
        value = data.get(key)
        if not isinstance(value, list):
            raise self.fail(f"{where} has no `{key}` list")
        return value

    def strings(self, data: Mapping[str, Any], key: str, where: str) -> list[str]:
        values = self.sequence(data, key, where)
        if not all(isinstance(v, str) for v in values):
            raise self.fail(f"{where}.{key} must be a list of strings")
        return list(values)


def _kind(value: object) -> str:
    kinds: dict[type, str] = {dict: "mapping", list: "list"}
    return kinds.get(type(value), type(value).__name__)


def _quote(value: str) -> str:
    return repr(redact_credentials(value))


# --------------------------------------------------------------------------------------
# Validation: every field of a locked package before it is used (a lock comes from a
# pull request; its names, versions, builds and hashes become paths and URLs).

# conda's rules: a package name is ASCII letters, digits, "_", "." and "-" (py-rattler's
# PackageName) and never starts with "."; a version is what conda's VersionOrder accepts
# ("*", ".", "+", "!", "_", "-", letters, digits); a build string what conda-build accepts
# ("_", ".", "+", letters, digits; no "-", which separates the fields of a file name).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_VERSION = re.compile(r"[A-Za-z0-9_.+!*-]+")
_BUILD = re.compile(r"[A-Za-z0-9_.+]+")
# pip (PEP 440 / PEP 508): only for the checks below, this installer does not install them.
_PIP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_PIP_VERSION = re.compile(r"[A-Za-z0-9._+!-]+")
_HEX = {"md5": re.compile(r"[0-9a-f]{32}"), "sha256": re.compile(r"[0-9a-f]{64}")}
URL_SCHEMES = ("https", "http", "file")
ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")


def package_problem(pkg: LockedPackage) -> str | None:
    """What makes ``pkg`` unsafe or invalid to install, or None.

    The checks behind :func:`read_lockfile`: hex hashes of the right length, a
    name, version and build as conda allows them, a URL of an allowed scheme
    whose file name (for conda packages) is exactly ``NAME-VERSION-BUILD.conda``
    or ``.tar.bz2``.
    """
    conda = pkg.manager == "conda"
    name_re, version_re = (_NAME, _VERSION) if conda else (_PIP_NAME, _PIP_VERSION)
    if not name_re.fullmatch(pkg.name):
        return f"name {_quote(pkg.name)} is not a valid package name"
    if not version_re.fullmatch(pkg.version) or ".." in pkg.version:
        return f"version {_quote(pkg.version)} is not a valid version"
    if conda and not _BUILD.fullmatch(pkg.build):
        return f"build {_quote(pkg.build)} is not a valid build string"
    for kind, value in (("sha256", pkg.sha256), ("md5", pkg.md5)):
        if (value or conda or kind == "sha256") and not _HEX[kind].fullmatch(value.lower()):
            size = 64 if kind == "sha256" else 32
            return f"hash.{kind} {_quote(value)} is not {size} hexadecimal digits"
    scheme = pkg.url.split("://", 1)[0].lower() if "://" in pkg.url else ""
    if scheme not in URL_SCHEMES:
        return (
            f"url {_quote(pkg.url)} is not an {', '.join(URL_SCHEMES[:-1])} "
            f"or {URL_SCHEMES[-1]} URL"
        )
    if conda:
        from urllib.parse import unquote

        filename = pkg.url.rsplit("/", 1)[-1]
        stem = f"{pkg.name}-{pkg.version}-{pkg.build}"
        if unquote(filename) not in {stem + suffix for suffix in ARCHIVE_SUFFIXES}:
            return (
                f"url {_quote(pkg.url)} does not end in the package's archive "
                f"{stem}.conda or {stem}.tar.bz2"
            )
    return None
