"""Lock an environment's ``pip:`` section with uv, after the conda solve.

For each platform, ``uv pip compile`` resolves the section's requirements for the
Python version the conda solve locked and the platform's wheel tags
(``--python-platform``, ``--python-version``), wheels only (``--no-build``), with
hashes (``--format pylock.toml``: one URL and sha256 per package). The result
becomes conda-lock's ``manager: pip`` entries.

Python packages the conda side already provides are not resolved again from an
index: each is offered to uv as a metadata-only stub wheel at its locked
version (a private ``--find-links`` folder) and pinned by a constraint, so a pip
requirement that needs another version fails naming both sides, and the stubs
are left out of the result. Conda names become PyPI names through
``recipes/pypi-names.json``.

Indexes: the section's ``--index-url``, ``--extra-index-url``, ``--find-links``
and ``--no-index`` lines, else pip's own configuration (``PIP_INDEX_URL`` and the
other ``PIP_*`` variables, then pip.conf), else uv's default. Credentials never
reach the lock: every URL is stored without them.

uv comes from the ``uv`` package (its binary, found with ``uv.find_uv_bin()``),
run as a subprocess with ``--no-config`` and its own cache
(``~/.cache/conda-torch-env/uv``), so nothing of the user's uv settings changes what is locked.
"""

from __future__ import annotations

import base64
import concurrent.futures
import configparser
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import LockError
from conda_torch_plugin.uvtool import find_uv, uv_platform

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from conda_torch_plugin.condalock.envspec import LockSpec
    from conda_torch_plugin.condalock.lockfile import LockedPackage
    from conda_torch_plugin.lock.model import Progress

_TIMEOUT_S = 600


# --------------------------------------------------------------------------------------
# The data: conda name -> PyPI name


@dataclass(frozen=True)
class PypiNames:
    names: dict[str, str | None]  # conda name -> PyPI name; None: not a Python package
    torch: frozenset[str]  # conda names of the torch family
    torch_wheel_indexes: tuple[str, ...]

    def pypi_name(self, conda_name: str) -> str | None:
        from packaging.utils import canonicalize_name

        if conda_name in self.names:
            mapped = self.names[conda_name]
            return None if mapped is None else str(canonicalize_name(mapped))
        return str(canonicalize_name(conda_name))


def load_pypi_names() -> PypiNames:
    from conda_torch_plugin.errors import RecipeError
    from conda_torch_plugin.recipes import recipes_dir

    file = "pypi-names.json"
    try:
        data = json.loads(recipes_dir().joinpath(file).read_text(encoding="utf-8"))
        names = data["names"]
        if data.get("schema") != "pypi-names/1" or not data.get("source"):
            raise ValueError("expected schema pypi-names/1 and a source")
        if not all(isinstance(v, (str, type(None))) for v in names.values()):
            raise ValueError("every name maps to a PyPI name or null")
        return PypiNames(
            names=dict(names),
            torch=frozenset(data["torch"]),
            torch_wheel_indexes=tuple(data["torch_wheel_indexes"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RecipeError(f"recipes/{file}: {error}") from None


# --------------------------------------------------------------------------------------
# pip's own configuration


def pip_config_options(
    environ: Mapping[str, str] | None = None, files: Sequence[Path] | None = None
) -> tuple[str, ...]:
    """The index options pip's configuration sets, as requirement-file lines.

    ``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS`` and ``PIP_NO_INDEX``
    win over the files; of the files (``PIP_CONFIG_FILE``, the user's pip.conf, the
    site's), the first that sets an option gives it, from ``[install]`` or ``[global]``.
    """
    env = os.environ if environ is None else environ
    if files is None:
        files = _pip_config_files(env)
    values: dict[str, str] = {}
    for file in files:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(file, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue
        for section in ("install", "global"):
            if parser.has_section(section):
                for key in ("index-url", "extra-index-url", "find-links", "no-index"):
                    if parser.has_option(section, key):
                        values.setdefault(key, parser.get(section, key))
    for key in ("index-url", "extra-index-url", "find-links", "no-index"):
        variable = "PIP_" + key.upper().replace("-", "_")
        if env.get(variable):
            values[key] = env[variable]
    options: list[str] = []
    for key in ("index-url", "extra-index-url", "find-links"):
        options += [f"--{key} {v}" for v in values.get(key, "").split()]
    if values.get("no-index", "").strip().lower() in ("1", "true", "yes", "on"):
        options.append("--no-index")
    return tuple(options)


def _pip_config_files(env: Mapping[str, str]) -> list[Path]:
    if env.get("PIP_CONFIG_FILE"):
        return [Path(env["PIP_CONFIG_FILE"])]
    home = Path(env.get("HOME", "~")).expanduser()
    config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files = [config_home / "pip" / "pip.conf", home / ".pip" / "pip.conf", Path("/etc/pip.conf")]
    if env.get("VIRTUAL_ENV"):
        files.insert(0, Path(env["VIRTUAL_ENV"]) / "pip.conf")
    return files


# --------------------------------------------------------------------------------------
# uv


@dataclass(frozen=True)
class Provided:
    """A Python package the conda side locked, under its PyPI name."""

    pypi_name: str
    version: str
    conda_name: str


def conda_provided(packages: Iterable[LockedPackage], names: PypiNames) -> dict[str, Provided]:
    """PyPI name -> what the conda packages of one platform provide to pip."""
    from packaging.version import InvalidVersion, Version

    provided: dict[str, Provided] = {}
    for pkg in packages:
        if pkg.manager != "conda" or pkg.name.startswith("_"):
            continue
        if pkg.name not in names.names and "python" not in pkg.dependencies:
            continue  # not a Python package
        pypi = names.pypi_name(pkg.name)
        if pypi is None:
            continue
        try:
            Version(pkg.version)
        except InvalidVersion:
            continue  # no PEP 440 version: pip cannot see it either
        provided[pypi] = Provided(pypi, pkg.version, pkg.name)
    return provided


def lock_pip_section(
    spec: LockSpec,
    platforms: Sequence[str],
    conda_packages: Mapping[str, Sequence[LockedPackage]],
    virtual_packages: Mapping[str, Mapping[str, str]],
    *,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[LockedPackage]:
    """The ``manager: pip`` entries of every platform whose pip section is not empty."""
    source = spec.path.name
    if spec.skipped:
        raise LockError(
            f"{source}: the pip: section holds an editable install ({', '.join(spec.skipped)}), "
            "which a shareable lock cannot hold (it points into this machine's files)",
            hints=[
                "build a wheel of it and serve it from an index or a --find-links folder, "
                "or install it into the environment after `conda torch-env install`"
            ],
        )
    wanted = [p for p in platforms if spec.pip.get(p)]
    if not wanted:
        return []
    names = load_pypi_names()
    binary = find_uv(LockError)
    config = pip_config_options(environ)
    out: list[LockedPackage] = []
    with tempfile.TemporaryDirectory(prefix="torch-env-pip-") as scratch:
        jobs = []
        for platform in wanted:  # every check before the first uv run
            options = _anchored(spec.pip_options.get(platform, ()), spec.path.parent) or config
            provided = conda_provided(conda_packages.get(platform, ()), names)
            python_version = _python_version(conda_packages.get(platform, ()), source, platform)
            _refuse_two_torches(spec.pip[platform], options, provided, names, source, platform)
            jobs.append(
                functools.partial(
                    _resolve,
                    binary,
                    Path(scratch) / platform,
                    requirements=spec.pip[platform],
                    options=options,
                    provided=provided,
                    python_version=python_version,
                    target=uv_platform(platform, virtual_packages.get(platform, {}), LockError),
                    platform=platform,
                    category=spec.category,
                    source=source,
                    environ=environ,
                )
            )
        if progress is not None:
            progress(f"Resolving the pip: section for {', '.join(wanted)} with uv")
        # The platforms resolve concurrently (uv is a subprocess; its cache takes concurrent
        # runs); the first failure, in platform order, is the one reported.
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = [pool.submit(job) for job in jobs]
            for future in futures:
                out += future.result()
    return out


def _anchored(options: Sequence[str], folder: Path) -> tuple[str, ...]:
    """A relative ``--find-links`` folder is relative to the environment file, as pip reads it."""
    out = []
    for option in options:
        name, _, value = option.partition(" ")
        if name == "--find-links" and "://" not in value and not Path(value).is_absolute():
            option = f"{name} {(folder / value).resolve()}"
        out.append(option)
    return tuple(out)


def _python_version(packages: Sequence[LockedPackage], source: str, platform: str) -> str:
    for pkg in packages:
        if pkg.name == "python" and pkg.manager == "conda":
            return ".".join(pkg.version.split(".")[:2])
    raise LockError(
        f"{source}: the conda solve for {platform} holds no python, which its pip: section needs",
        hints=["add python to the conda dependencies, e.g. - python=3.12"],
    )


def _refuse_two_torches(
    requirements: Sequence[str],
    options: Sequence[str],
    provided: Mapping[str, Provided],
    names: PypiNames,
    source: str,
    platform: str,
) -> None:
    from conda_torch_plugin.condalock._pipspec import parse_pip_requirement

    conda_torch = {p.pypi_name: p for p in provided.values() if p.conda_name in names.torch}
    if not conda_torch:
        return
    index = next(
        (
            o.split(" ", 1)[1]
            for o in options
            if " " in o and o.split(" ", 1)[1].startswith(names.torch_wheel_indexes)
        ),
        None,
    )
    for requirement in requirements:
        name = parse_pip_requirement(requirement).name
        if name in conda_torch:
            held = conda_torch[name]
            where = f" from the PyTorch wheel index {index}" if index else ""
            raise LockError(
                f"{source}: the pip: section asks for {requirement!r}{where} on {platform}, "
                f"but the conda side already provides {held.conda_name} {held.version}: "
                "two torches in one prefix (pip's files would overwrite conda's, and the "
                "conda packages built against it would break)",
                hints=[
                    f"remove {name} from the pip: section and keep the conda {held.conda_name}",
                    f"or remove {held.conda_name} from the conda dependencies and take the "
                    "whole torch family from pip",
                ],
            )


def _resolve(
    binary: str,
    folder: Path,
    *,
    requirements: Sequence[str],
    options: Sequence[str],
    provided: Mapping[str, Provided],
    python_version: str,
    target: str,
    platform: str,
    category: str,
    source: str,
    environ: Mapping[str, str] | None,
) -> list[LockedPackage]:
    stubs = folder / "conda-provided"
    stubs.mkdir(parents=True)
    for item in provided.values():
        if item.pypi_name != "python":
            _stub_wheel(stubs, item.pypi_name, item.version)
    (folder / "requirements.in").write_text(
        "".join(f"{line}\n" for line in [*options, *requirements]), encoding="utf-8"
    )
    (folder / "constraints.txt").write_text(
        "".join(
            f"{p.pypi_name}=={p.version}\n" for p in provided.values() if p.pypi_name != "python"
        ),
        encoding="utf-8",
    )
    common = [
        binary,
        "pip",
        "compile",
        "requirements.in",
        "--constraints",
        "constraints.txt",
        "--find-links",
        str(stubs),
        "--python-version",
        python_version,
        "--python-platform",
        target,
        "--no-build",
        "--no-config",
        "--no-python-downloads",
        # Only wheels are resolved, so no interpreter runs; naming this one spares uv a
        # search for a Python of the locked version (over a second where there is none).
        "--python",
        sys.executable,
        "--no-header",
        "--quiet",
        "--cache-dir",
        str(_uv_cache(environ)),
    ]
    env = dict(os.environ if environ is None else environ)
    env.pop("UV_CONFIG_FILE", None)
    _run_uv(
        [*common, "--generate-hashes", "--format", "pylock.toml", "-o", "pylock.toml"],
        folder,
        env,
        provided=provided,
        platform=platform,
        source=source,
    )
    edges = _run_uv(
        [*common, "--format", "requirements.txt", "--annotation-style", "split"],
        folder,
        env,
        provided=provided,
        platform=platform,
        source=source,
    )
    return _entries(
        (folder / "pylock.toml").read_text(encoding="utf-8"),
        _via(edges),
        provided=provided,
        platform=platform,
        category=category,
        source=source,
    )


def _uv_cache(environ: Mapping[str, str] | None) -> Path:
    """This user's cache for uv's index pages and wheel metadata (not /tmp: shared)."""
    env = os.environ if environ is None else environ
    base = Path(env.get("XDG_CACHE_HOME") or Path(env.get("HOME", "~")) / ".cache")
    return base.expanduser() / "conda-torch-env" / "uv"


def _run_uv(
    argv: list[str],
    folder: Path,
    env: Mapping[str, str],
    *,
    provided: Mapping[str, Provided],
    platform: str,
    source: str,
) -> str:
    from conda_torch_plugin.condalock.lockfile import redact_credentials

    try:
        done = subprocess.run(
            argv, cwd=folder, env=dict(env), capture_output=True, text=True, timeout=_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise LockError(
            f"uv did not resolve the pip: section for {platform} within {_TIMEOUT_S} s"
        ) from None
    except OSError as error:
        raise LockError(f"cannot run uv: {error}") from None
    if done.returncode == 0:
        return done.stdout
    lines = [
        line.strip()
        for line in done.stderr.splitlines()
        if line.strip() and not line.startswith("warning:")
    ]
    cause = " ".join(line.removeprefix("cause:").strip() for line in lines[1:]) or " ".join(lines)
    cause = redact_credentials(cause.replace(str(folder) + os.sep, ""))
    hints = []
    for item in provided.values():
        if re.search(rf"\b{re.escape(item.pypi_name)}==", cause):
            hints.append(
                f"{item.pypi_name}=={item.version} is the conda package {item.conda_name} "
                f"{item.version} of the conda solve: change the conda pin of {item.conda_name}, "
                "or relax the pip requirement"
            )
    if "--no-build" in cause or "no-build" in cause:
        hints.append(
            "only wheels are locked: a requirement that has only a source distribution "
            "(or a git URL) cannot be locked; build a wheel and serve it from an index"
        )
    hints.append("the resolution was for Python and the platform the conda solve locked")
    raise LockError(
        f"{source}: the pip: section cannot be resolved for {platform}: {cause}", hints=hints
    )


def _via(text: str) -> dict[str, set[str]]:
    """package -> the packages it was pulled in by, from uv's ``# via`` annotations."""
    from packaging.utils import canonicalize_name

    parents: dict[str, set[str]] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("#") and not raw.startswith((" ", "\t")):
            name = re.split(r"[=<>@ \[;]", line, maxsplit=1)[0]
            current = str(canonicalize_name(name))
            parents.setdefault(current, set())
            continue
        body = line.lstrip("#").strip()
        body = body.removeprefix("via").strip()
        if current and body and not body.startswith(("-r ", "-c ")):
            parents[current].add(str(canonicalize_name(body)))
    return parents


def _entries(
    pylock: str,
    parents: Mapping[str, set[str]],
    *,
    provided: Mapping[str, Provided],
    platform: str,
    category: str,
    source: str,
) -> list[LockedPackage]:
    from packaging.utils import canonicalize_name

    from conda_torch_plugin.condalock.lockfile import LockedPackage, strip_credentials

    data = _toml(pylock)
    children: dict[str, set[str]] = {}
    for child, via in parents.items():
        for parent in via:
            children.setdefault(parent, set()).add(child)
    entries = []
    for package in data.get("packages", []):
        name = str(canonicalize_name(package["name"]))
        if name in provided:
            continue
        wheels = package.get("wheels") or []
        if not wheels:
            raise LockError(
                f"{source}: {name} {package.get('version', '')} has no wheel for {platform}; "
                "only wheels are locked",
                hints=["build a wheel of it and serve it from an index or a --find-links folder"],
            )
        wheel = _best_wheel(wheels)
        sha256 = (wheel.get("hashes") or {}).get("sha256")
        if not sha256:
            raise LockError(f"{source}: the index gives no sha256 for {wheel.get('url')}")
        entries.append(
            LockedPackage(
                name=name,
                version=str(package["version"]),
                build="",
                platform=platform,
                url=strip_credentials(str(wheel["url"])),
                md5="",
                sha256=str(sha256).lower(),
                dependencies={c: "*" for c in sorted(children.get(name, ()))},
                manager="pip",
                category=category,
            )
        )
    return entries


def _best_wheel(wheels: list[dict[str, Any]]) -> dict[str, Any]:
    """Of the wheels uv found compatible, a platform wheel before a pure one, then by URL."""

    def key(wheel: dict[str, Any]) -> tuple[bool, str]:
        filename = str(wheel.get("url", "")).rsplit("/", 1)[-1]
        return (filename.endswith("-any.whl"), filename)

    return sorted(wheels, key=key)[0]


def _toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib.loads(text)


def _stub_wheel(folder: Path, name: str, version: str) -> None:
    """A wheel that holds only metadata: ``name`` ``version`` without dependencies."""
    dist = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    files = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: conda-torch-env\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256={_record_hash(text.encode())},{len(text.encode())}"
        for path, text in files.items()
    ]
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


__all__ = [
    "PypiNames",
    "conda_provided",
    "load_pypi_names",
    "lock_pip_section",
    "pip_config_options",
]
