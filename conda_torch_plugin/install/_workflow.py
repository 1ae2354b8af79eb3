"""What an install will do (``prepare_install``), and doing it (``install_from_lock``).

``prepare_install`` changes nothing: it refuses a prefix that is neither
absent, empty nor a conda environment (or is the environment this command runs
from), decides between creating and updating, and lists every package with the
URL it will come from and its size. ``install_from_lock`` then fetches,
verifies and extracts every archive into the package cache (``_fetch``,
overlapping downloads and extraction) and only then links them in one
transaction (``_transaction``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.findings import Finding
from conda_torch_plugin.install._fetch import (
    fetch_and_verify,
    rewrite_url,
    with_sizes,
)
from conda_torch_plugin.install._journal import recover
from conda_torch_plugin.install._prefix_lock import prefix_lock
from conda_torch_plugin.install._transaction import transaction
from conda_torch_plugin.install.model import (
    Change,
    InstallPlan,
    InstallProgress,
    InstallResult,
    PlannedPackage,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockedPackage, LockFile
    from conda_torch_plugin.network import NetworkSettings

CACHE_VARIABLE = "CONDA_TORCH_ENV_CACHE_DIR"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$CONDA_TORCH_ENV_CACHE_DIR``, else ``$XDG_CACHE_HOME/conda-torch-env`` (~/.cache/...)."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_VARIABLE):
        return Path(environ[CACHE_VARIABLE]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "conda-torch-env"


def prefix_mode(prefix: Path) -> str:
    """ "create" or "update"; refuses a folder that is neither empty nor a conda environment."""
    running = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    if prefix.resolve() in running:
        # Turning the environment this command runs from into the lock's environment
        # would remove the tool (and, for base, conda) from under itself.
        raise InstallError(
            f"{prefix} is the environment this command runs from",
            hints=["install into another environment: -n NAME or -p PREFIX"],
        )
    _refuse_odd_prefix(prefix)
    if not prefix.exists():
        return "create"
    if not prefix.is_dir():
        raise InstallError(
            f"{prefix} exists and is not a folder", hints=["choose another -p PREFIX or -n NAME"]
        )
    if (prefix / "conda-meta").is_dir():
        return "update"
    if not any(prefix.iterdir()):
        return "create"
    raise InstallError(
        f"{prefix} exists, is not empty and is not a conda environment (no conda-meta/)",
        hints=["choose another -p PREFIX or -n NAME, or remove that folder first"],
    )


def _refuse_odd_prefix(prefix: Path) -> None:
    """A prefix under a file, or a mount point, cannot be built beside and renamed into place."""
    for parent in prefix.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise InstallError(
                    f"{prefix} cannot be created: {parent} is a file, not a folder",
                    hints=["choose another -p PREFIX or -n NAME"],
                )
            break
    if prefix.is_dir() and os.path.ismount(prefix):
        raise InstallError(
            f"{prefix} is a mount point: the environment is built beside the prefix and "
            "renamed into place, which a mount point does not allow",
            hints=[f"install into a folder inside it instead, e.g. -p {prefix / 'env'}"],
        )


def prepare_install(
    lock: LockFile,
    platform: str,
    prefix: Path,
    *,
    cache_dir: Path | None = None,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
    pkgs_dir: Path | None = None,
    network: NetworkSettings | None = None,
) -> InstallPlan:
    """What would be installed, from where, and how much must be downloaded. Changes nothing.

    ``pkgs_dir`` is conda's package cache when run inside conda (else
    ``CACHE/pkgs``); ``network`` the settings every download honours (else the
    environment's, ``network.from_environ``).
    """
    packages = lock.packages_for(platform)
    if not packages:
        raise InstallError(
            f"the lock holds no packages for {platform} (it holds: "
            f"{', '.join(lock.platforms) or 'none'})",
            hints=[f"lock this platform too: {lock.relock_command} --platform {platform}"],
        )
    prefix = Path(prefix).expanduser().absolute()
    mode = prefix_mode(prefix)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    planned = []
    for pkg in (p for p in packages if p.manager == "conda"):
        url = rewrite_url(pkg.url, lock.channels, channel_alias, custom_channels or {})
        planned.append(
            PlannedPackage(
                name=pkg.name,
                version=pkg.version,
                build=pkg.build,
                url=url,
                sha256=pkg.sha256.lower(),
                md5=pkg.md5.lower(),
                size=None,
                cached=False,
            )
        )
    changes = changes_between(installed_packages(prefix) if mode == "update" else {}, planned)
    pip, findings = _pip_changes(packages, platform, prefix, mode)
    changes += pip
    plan = InstallPlan(
        platform, prefix, mode, cache, (), changes, pkgs_dir, network, lock.relock_command
    )
    if changes:  # sizes only for a change
        planned = with_sizes(planned, plan.package_cache, network, plan.relock)
    planned.sort(key=lambda p: p.name)
    return replace(plan, packages=tuple(planned), findings=findings)


def _pip_changes(
    packages: Sequence[LockedPackage], platform: str, prefix: Path, mode: str
) -> tuple[tuple[Change, ...], tuple[Finding, ...]]:
    """The pip side of the plan, and a warning when the prefix's record of pip packages is
    malformed (it is then ignored: nothing it names is removed)."""
    from conda_torch_plugin.install.pip_step import (
        installed_pip,
        pip_changes,
        pip_entries,
        python_version,
        read_pip_record,
    )

    entries = pip_entries(packages)
    if mode != "update":
        return pip_changes(entries, {}), ()
    recorded, problem = read_pip_record(prefix)
    python = python_version(packages)
    changes = pip_changes(entries, installed_pip(prefix, platform, python), recorded)
    if problem is None:
        return changes, ()
    warning = Finding(
        "warning",
        f"{problem}; it is ignored, so no pip package an earlier install put there is removed",
        fix="remove the pip packages the lock no longer holds yourself (pip uninstall NAME)",
        check="pip",
        code="pip-record-unreadable",
    )
    return changes, (warning,)


def _pip_step(
    lock: LockFile, platform: str, plan: InstallPlan, progress: InstallProgress | None
) -> Callable[[Path], None] | None:
    """What the transaction runs in the staging folder before the swap: the pip entries,
    and in an existing environment the pip packages its earlier lock had and this one not."""
    from conda_torch_plugin.install.pip_step import install_pip_entries, pip_entries, python_version

    packages = lock.packages_for(platform)
    entries = pip_entries(packages)
    if not entries and plan.mode != "update":
        return None
    python = python_version(packages)
    return lambda staging: install_pip_entries(
        entries, platform, python, staging, plan.prefix, progress, plan.network
    )


def installed_packages(prefix: Path) -> dict[str, tuple[str, str]]:
    """name -> ("version build", sha256 or "") of each readable ``conda-meta/*.json`` record."""
    from conda_torch_plugin.errors import TorchEnvError
    from conda_torch_plugin.inputs import PACKAGE_RECORD, read_json

    found: dict[str, tuple[str, str]] = {}
    for path in sorted((prefix / "conda-meta").glob("*.json")):
        try:  # a FIFO or device in its place is not read
            record = read_json(path, limits=PACKAGE_RECORD, error=TorchEnvError)
            label = f"{record['version']} {record['build']}"
            found[str(record["name"])] = (label, str(record.get("sha256") or "").lower())
        except (TorchEnvError, OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable record is the transaction's business, not the summary's
    return found


def changes_between(
    installed: Mapping[str, tuple[str, str]], planned: list[PlannedPackage]
) -> tuple[Change, ...]:
    """What turns ``installed`` into ``planned``: additions, replacements, removals.

    A package whose record names the same version and build but another sha256
    than the lock is a change too: the lock's archive is not the one installed.
    """
    changes = []
    for pkg in planned:
        label = f"{pkg.version} {pkg.build}"
        old = installed.get(pkg.name)
        if old is None:
            changes.append(Change(pkg.name, "add", None, label))
        elif old[0] != label or (old[1] and pkg.sha256 and old[1] != pkg.sha256):
            changes.append(Change(pkg.name, "change", old[0], label))
    wanted = {p.name for p in planned}
    changes += [
        Change(name, "remove", old[0], None)
        for name, old in installed.items()
        if name not in wanted
    ]
    return tuple(sorted(changes, key=lambda c: c.name))


def install_from_lock(
    lock: LockFile,
    platform: str,
    prefix: Path,
    *,
    cache_dir: Path | None = None,
    progress: InstallProgress | None = None,
    dry_run: bool = False,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
    plan: InstallPlan | None = None,
    command: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    pkgs_dir: Path | None = None,
    network: NetworkSettings | None = None,
) -> InstallResult:
    """Install ``platform``'s packages of ``lock`` into ``prefix`` (see the module docstring).

    Pass the ``plan`` from ``prepare_install`` to avoid computing it twice.
    ``command`` is written into ``conda-meta/history``. ``on_wait`` hears, once,
    that another install into the same prefix holds its lock (see
    ``_prefix_lock``); the transaction runs under that lock, after recovering
    from a run that died (``_journal``), and decides create/update afresh.
    """
    if plan is None:
        plan = prepare_install(
            lock,
            platform,
            prefix,
            cache_dir=cache_dir,
            channel_alias=channel_alias,
            custom_channels=custom_channels,
            pkgs_dir=pkgs_dir,
            network=network,
        )
    if dry_run:
        return InstallResult(plan, dry_run=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    # Nothing is fetched for an environment that already matches; the lock below still
    # recovers from a dead run first and looks again.
    local = {} if plan.nothing_to_do else fetch_and_verify(plan, progress)
    timings["fetch_verify"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        plan.prefix.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InstallError(
            f"could not create {plan.prefix.parent}: {error.strerror or error}",
            hints=["choose another -p PREFIX or -n NAME"],
        ) from error
    with prefix_lock(plan.prefix, on_wait=on_wait):
        _recover(plan.prefix, progress)
        mode = prefix_mode(plan.prefix)
        if mode != plan.mode or plan.nothing_to_do:
            # Another install created or replaced it meanwhile, or a recovery changed it.
            installed_now = installed_packages(plan.prefix) if mode == "update" else {}
            changes = changes_between(installed_now, list(plan.packages))
            pip, findings = _pip_changes(lock.packages_for(platform), platform, plan.prefix, mode)
            plan = replace(plan, mode=mode, changes=changes + pip, findings=findings)
        if plan.nothing_to_do:
            return InstallResult(plan, False, timings=timings)
        if not local:
            local = fetch_and_verify(plan, progress)
        installed, removed = transaction(
            plan, local, progress, command, after_link=_pip_step(lock, platform, plan, progress)
        )
    timings["link"] = time.perf_counter() - start
    return InstallResult(plan, False, installed, removed, timings)


def recover_prefix(
    prefix: Path,
    *,
    progress: InstallProgress | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> bool:
    """Under the prefix's lock, finish or roll back a dead install and remove its leftovers.

    For a caller that will not run a transaction (an environment that already
    matches its lock) but must not leave a dead run's folders behind. True when
    something was done, so the caller looks at the prefix again.
    """
    if not prefix.parent.is_dir():
        return False
    with prefix_lock(prefix, on_wait=on_wait):
        return bool(_recover(prefix, progress))


def _recover(prefix: Path, progress: InstallProgress | None) -> list[str]:
    try:
        done = recover(prefix)
    except OSError as error:
        raise InstallError(
            f"could not clean up after an interrupted install into {prefix}: "
            f"{error.strerror or error}",
            hints=["check the permissions of the folders beside the prefix"],
        ) from error
    if progress is not None:
        for step in done:
            progress.step(step[:1].upper() + step[1:])
    return done
