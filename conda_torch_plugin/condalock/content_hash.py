"""The per-platform input hash of a lock, computed exactly as conda-lock computes it.

``metadata.content_hash`` in conda-lock.yml is conda-lock's
``compute_content_hashes(lock_spec, virtual_package_repo)`` (conda-lock 4.0.3,
``content_hash.py``): per platform, the sha256 of::

    json.dumps({"channels": [Channel.model_dump_json(), ...],
                "specs": [dependency.model_dump(), ...],   # sorted by (manager, name)
                "pip_repositories": [...],                  # only when there are some
                "virtual_package_hash": {"noarch": {...}, PLATFORM: {...}}},
               sort_keys=True)

where the virtual packages are the fake repodata conda-lock writes for them, with
the build number its version 2 put into build strings. Writing the same hash lets
``conda-lock lock --check-input-hash`` see our lock as up to date, and lets
``lock --check`` tell a stale lock from a current one. The tests compare this
module with conda-lock's own function; conda-lock itself is not imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse, urlunparse

from conda_torch_plugin.condalock.envspec import (
    CondaDependency,
    LockSpec,
    PipDependency,
    VirtualPackageSpec,
    default_virtual_packages,
)
from conda_torch_plugin.errors import LockError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

# FakeRepoData.all_subdirs: conda-lock writes (empty) repodata for these subdirs
# whatever the virtual-package file names.
_FAKE_REPODATA_SUBDIRS = frozenset(
    {"noarch", "linux-aarch64", "linux-ppc64le", "linux-64", "osx-64", "osx-arm64", "win-64"}
)
_DEFAULT_TIME = 1577854800000  # virtual_package.DEFAULT_TIME


def content_hashes(
    spec: LockSpec,
    virtual_packages: VirtualPackageSpec | None,
    platforms: Sequence[str],
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """``{platform: sha256 hex}`` as conda-lock computes it for the same inputs.

    ``virtual_packages`` None means conda-lock's built-in default set (what it uses
    when no virtual-packages file is given). ``environ`` (default ``os.environ``)
    matters only for channel URLs with credentials: conda-lock replaces a token or
    password that equals an environment variable's value by ``${VAR}`` before
    hashing.
    """
    vps = virtual_packages if virtual_packages is not None else default_virtual_packages()
    env = os.environ if environ is None else environ
    channels = [_channel_json(c, env) for c in spec.channels]
    repodata = _fake_repodata(vps)
    result: dict[str, str] = {}
    for platform in platforms:
        if platform not in spec.locked_dependencies:
            raise LockError(
                f"{spec.path} was not read for platform {platform}",
                hints=[f"it was read for: {', '.join(spec.locked_dependencies)}"],
            )
        content: dict[str, Any] = {
            "channels": channels,
            "specs": [_without_new_nulls(d) for d in _conda_lock_specs(spec, platform)],
        }
        if spec.pip_repositories:
            content["pip_repositories"] = [
                json.dumps({"url": url}, separators=(",", ":"), ensure_ascii=False)
                for url in spec.pip_repositories
            ]
        options = spec.pip_options.get(platform, ())
        if options:
            # conda-lock cannot read a pip section with index options at all; ours
            # hashes them (credentials stripped) so that changing one makes the lock stale.
            content["pip_options"] = [_strip_option_credentials(o) for o in options]
        content["virtual_package_hash"] = {
            "noarch": repodata.get("noarch", {}),
            platform: repodata.get(platform, {}),
        }
        text = json.dumps(content, sort_keys=True)
        result[platform] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return result


def _strip_option_credentials(option: str) -> str:
    from conda_torch_plugin.condalock.lockfile import strip_credentials

    return " ".join(strip_credentials(word) for word in option.split(" "))


def _conda_lock_specs(spec: LockSpec, platform: str) -> list[dict[str, Any]]:
    # aggregate_lock_specs keeps one dependency per (manager, name): the last one,
    # at the place of the first; _content_for_platform then sorts by (manager, name).
    unique: dict[tuple[str, str], CondaDependency | PipDependency] = {}
    for dep in spec.locked_dependencies[platform]:
        manager = "pip" if isinstance(dep, PipDependency) else "conda"
        unique[(manager, dep.name)] = dep
    ordered = sorted(unique.items(), key=lambda item: item[0])
    return [dep.to_conda_lock() for _, dep in ordered]


def _without_new_nulls(spec: dict[str, Any]) -> dict[str, Any]:
    # _remove_new_nulls: fields added in conda-lock 3 are dropped when null, so
    # that hashes of version 2 still match.
    return {k: v for k, v in spec.items() if not (k in ("markers", "subdirectory") and v is None)}


def _fake_repodata(vps: VirtualPackageSpec) -> dict[str, dict[str, Any]]:
    """FakeRepoData.all_repodata after _reinsert_spurious_build_number."""
    packages_by_subdir: dict[str, dict[str, dict[str, Any]]] = {}
    for subdir, packages in vps.subdirs.items():
        entries = packages_by_subdir.setdefault(subdir, {})
        for p in packages:
            # Version 2 of conda-lock wrote "<build_string>_<build_number>" as the build;
            # version 3 reinserts that so hashes stay the same.
            build = f"{p.build_string}_0" if p.build_string else "0"
            entries[f"{p.name}-{p.version}-{build}.tar.bz2"] = {
                "name": p.name,
                "version": p.version,
                "build_string": p.build_string,
                "build_number": 0,
                "noarch": "",
                "depends": [],
                "timestamp": _DEFAULT_TIME,
                "package_type": "virtual_system",
                "build": build,
                "subdir": subdir,
            }
    if vps.hash_extra_osx_10_15:
        packages_by_subdir.setdefault("osx-64", {})["__osx-10.15-0.tar.bz2"] = {
            "name": "__osx",
            "version": "10.15",
            "build_string": "",
            "build_number": 0,
            "noarch": "",
            "depends": [],
            "timestamp": _DEFAULT_TIME,
            "package_type": "virtual_system",
            "build": "0",
            "subdir": "osx-64",
        }
    return {
        subdir: {"info": {"subdir": subdir}, "packages": packages_by_subdir.get(subdir, {})}
        for subdir in sorted(_FAKE_REPODATA_SUBDIRS | set(packages_by_subdir))
    }


# conda-lock's Channel.from_string (models/channel.py): in a channel URL, a token or
# user/password equal to some environment variable's value is replaced by ${VAR}.
_TOKEN = re.compile(r"(.*)(/t/\$?\{?[a-zA-Z0-9-_]*\}?)(/.*)")


def _channel_json(value: str, environ: Mapping[str, str]) -> str:
    """``Channel.from_string(value).model_dump_json()``."""
    url, used = _env_var_url(value, environ) if "://" in value else (value, ())
    return json.dumps(
        {"url": url, "used_env_vars": list(used)}, separators=(",", ":"), ensure_ascii=False
    )


def _env_var_url(url: str, environ: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    res = urlparse(url)

    def netloc(
        username: str | None, password: str | None, host: str | None, port: int | None
    ) -> str:
        host_info = f"{host}:{port}" if port else str(host)
        if not username:
            return host_info
        user_info = f"{username}:{password}" if password else username
        return f"{user_info}@{host_info}"

    replaced = res
    used: set[str] = set()
    if res.username:
        var = _detect_env_var(res.username, ["USERNAME", "USER"], environ)
        if var:
            used.add(var)
            replaced = replaced._replace(
                netloc=netloc(f"${{{var}}}", replaced.password, replaced.hostname, replaced.port)
            )
    if res.password:
        var = _detect_env_var(res.password, ["PASSWORD", "PASS", "TOKEN", "KEY"], environ)
        if var:
            used.add(var)
            replaced = replaced._replace(
                netloc=netloc(replaced.username, f"${{{var}}}", replaced.hostname, replaced.port)
            )
    match = _TOKEN.search(res.path)
    token = match.groups()[1][3:] if match else None
    if token:
        var = _detect_env_var(token, ["TOKEN", "CRED", "PASSWORD", "PASS", "KEY"], environ)
        if var:
            used.add(var)
            replaced = replaced._replace(path=_TOKEN.sub(rf"\1/t/${{{var}}}\3", replaced.path))
    return urlunparse(replaced), tuple(sorted(used))


def _detect_env_var(value: str, suffixes: list[str], environ: Mapping[str, str]) -> str | None:
    if value.startswith("$"):
        return value.lstrip("$").strip("{}")
    for suffix in [*suffixes, ""]:
        candidates = {v: k for k, v in environ.items() if k.upper().endswith(suffix)}
        if key := candidates.get(value):
            return key
        if key := candidates.get(unquote(value)):
            return key
    return None
