"""The transaction: link verified archives into a staging folder, then swap it into place.

1. **Link into a staging folder.** rattler links the verified archives (its
   extracted-package cache lives in ``CACHE/pkgs/``) into a sibling of the
   prefix, ``.NAME.staging-XXXX``, with ``alternative_target_prefix`` set to
   the final prefix so prefix placeholders and conda-meta name the real place.
   For an existing environment the staging folder starts as a copy of it and
   rattler turns that copy into the new environment (an update transaction).
2. **Swap.** A new prefix (absent, or an empty folder) is one ``rename`` of
   the staging folder. An existing prefix is renamed aside
   (``.NAME.old-XXXX``), the staging folder renamed into place, and the old
   one deleted; if the second rename fails, the first is undone.

So the prefix is either the complete new environment or exactly as it was: a
failure before the swap only deletes the staging folder. The price is disk
space: updating an environment copies it once.

``conda-meta/*.json`` records are rattler's (read by conda's ``PrefixData``),
with ``url``/``channel``/``md5`` set from the lock and the URL actually used;
``conda-meta/history`` gets a conda-style entry for the transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import InstallError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conda_torch_plugin.install.model import InstallPlan, InstallProgress, PlannedPackage


def transaction(
    plan: InstallPlan,
    local: Mapping[str, Path],
    progress: InstallProgress | None,
    command: str | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    prefix = plan.prefix
    prefix.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.staging-", dir=prefix.parent))
    try:
        before: set[str] = set()
        had_cachedir_tag = False
        if plan.mode == "update":
            if progress is not None:
                progress.step(f"Copying {prefix} to a staging folder")
            shutil.copytree(prefix, staging, symlinks=True, dirs_exist_ok=True)
            before = _meta_dists(staging)
            had_cachedir_tag = (staging / "CACHEDIR.TAG").exists()
        if progress is not None:
            progress.step(f"Linking {len(plan.packages)} packages")
        asyncio.run(_link(plan, local, staging, progress))
        # rattler tags the prefix as a cache folder (backup tools skip those); conda
        # environments are not caches, so the tag goes unless it was there before.
        if not had_cachedir_tag:
            with contextlib.suppress(FileNotFoundError):
                (staging / "CACHEDIR.TAG").unlink()
        _fix_meta_urls(staging, plan)
        after = _meta_dists(staging)
        installed = tuple(sorted(after - before))
        removed = tuple(sorted(before - after))
        _append_history(staging, plan, installed, removed, command)
        _swap(staging, prefix, plan.mode)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return installed, removed


async def _link(
    plan: InstallPlan, local: Mapping[str, Path], staging: Path, progress: InstallProgress | None
) -> None:
    from rattler import RepoDataRecord, install
    from rattler.platform import Subdir

    from conda_torch_plugin.install import _archive_check as check

    if plan.mode == "update":
        check.check_records(staging, plan.prefix)

    async def record(pkg: PlannedPackage) -> Any:
        path = local[pkg.name]
        try:
            rec = await RepoDataRecord.from_package_archive(path)
        except BaseException as error:  # pyo3's PanicException is a BaseException
            if not _rattler_error(error):
                raise
            raise InstallError(
                f"package {_dist(pkg)} ({path}) cannot be read: {error}",
                hints=["nothing was linked and the environment was left as it was"],
            ) from error
        # from_package_archive fills sha256/size from the archive; md5 and channel
        # come from the lock. The URL stays the verified local file until the
        # records are written (see _fix_meta_urls), so rattler reads that file.
        rec.url = path.as_uri()
        rec.channel = channel_of(pkg.url)
        if pkg.md5:
            rec.md5 = bytes.fromhex(pkg.md5)
        return rec

    checked = await check.check_archives(
        staging, plan.prefix, [(_dist(p), local[p.name]) for p in plan.packages]
    )
    records = await asyncio.gather(*(record(p) for p in plan.packages))
    try:
        await install(
            list(records),
            target_prefix=staging,
            cache_dir=plan.cache_dir / "pkgs",
            platform=Subdir(plan.platform),
            execute_link_scripts=False,
            show_progress=False,
            reporter=_reporter(progress, len(records)),
            alternative_target_prefix=plan.prefix,
        )
    except BaseException as error:  # rattler raises its own types, and PanicException
        if not _rattler_error(error):
            raise
        raise InstallError(
            f"linking into {plan.prefix} failed: {error}",
            hints=[
                "the environment was left as it was; run the command again, "
                "or report the error if it repeats"
            ],
        ) from error
    check.check_linked(staging, plan.prefix, checked, plan.cache_dir / "pkgs")


def _dist(pkg: PlannedPackage) -> str:
    return f"{pkg.name}-{pkg.version}-{pkg.build}"


def _rattler_error(error: BaseException) -> bool:
    """An ordinary exception, or a panic inside rattler (pyo3's ``PanicException``, which
    derives from ``BaseException`` so ``except Exception`` misses it); not Ctrl-C or exit."""
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


def _reporter(progress: InstallProgress | None, total: int) -> Any:
    if progress is None:
        return None
    from rattler import InstallerReporter

    sink = progress

    class Reporter(InstallerReporter):
        def __init__(self) -> None:
            super().__init__()
            self.names: dict[int, str] = {}
            self.done = 0

        def on_link_start(self, operation: int, package_name: str) -> int:
            self.names[operation] = package_name
            return operation

        def on_link_complete(self, index: int) -> None:
            self.done += 1
            sink.advance("link", self.names.get(index, ""), self.done, total)

    return Reporter()  # type: ignore[abstract]  # rattler's stubs mark empty hooks abstract


def channel_of(url: str) -> str:
    """ ".../pytorch/linux-64/x.tar.bz2" -> ".../pytorch/" (the channel, as conda records it)."""
    return url.rsplit("/", 2)[0] + "/"


def _meta_dists(prefix: Path) -> set[str]:
    meta = prefix / "conda-meta"
    return {p.stem for p in meta.glob("*.json")} if meta.is_dir() else set()


def _fix_meta_urls(staging: Path, plan: InstallPlan) -> None:
    """conda-meta names the URL a package came from (credentials stripped), not the cache
    file rattler read. A record path that would leave ``conda-meta/`` is refused."""
    import json

    from conda_torch_plugin.atomic import atomic_write_text
    from conda_torch_plugin.condalock.lockfile import strip_credentials

    meta = staging / "conda-meta"
    for pkg in plan.packages:
        path = meta / f"{pkg.name}-{pkg.version}-{pkg.build}.json"
        resolved = path.resolve()
        if resolved.parent != meta.resolve() or resolved.name != path.name:
            raise InstallError(
                f"package {pkg.name!r} {pkg.version!r} {pkg.build!r}: its conda-meta record "
                f"would be written outside {plan.prefix / 'conda-meta'}; nothing was installed",
                hints=["the lock file is damaged or crafted: regenerate it (conda torch-env lock)"],
            )
        if not path.is_file():
            continue
        url = strip_credentials(pkg.url)
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("url") == url and data.get("channel") == channel_of(url):
            continue
        data["url"] = url
        data["channel"] = channel_of(url)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _append_history(
    staging: Path,
    plan: InstallPlan,
    installed: Sequence[str],
    removed: Sequence[str],
    command: str | None,
) -> None:
    """A conda-style history entry (conda's ``History`` parses ``==> date <==`` blocks)."""
    from conda_torch_plugin import __version__
    from conda_torch_plugin.condalock.lockfile import redact_credentials, strip_credentials

    urls = {f"{p.name}-{p.version}-{p.build}": strip_credentials(p.url) for p in plan.packages}
    lines = [
        f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==",
        f"# cmd: {redact_credentials(command or 'conda-torch-env install')}",
        f"# conda-torch-env version: {__version__}",
    ]
    lines += [f"-{dist}" for dist in removed]
    lines += [
        f"+{channel_of(urls[d]).rstrip('/')}::{d}" if d in urls else f"+{d}" for d in installed
    ]
    history = staging / "conda-meta" / "history"
    history.parent.mkdir(parents=True, exist_ok=True)
    with open(history, "a", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n")


def _swap(staging: Path, prefix: Path, mode: str) -> None:
    if mode == "create":
        # rename(2) replaces an empty folder on POSIX (and fails if it gained files meanwhile);
        # Windows' rename does not replace folders, so the empty one goes first there.
        try:
            if os.name == "nt" and prefix.is_dir():
                prefix.rmdir()
            os.rename(staging, prefix)
        except OSError as error:
            raise InstallError(
                f"could not move the new environment into {prefix}: {error}",
                hints=["the folder was left as it was"],
            ) from error
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.old-", dir=prefix.parent))
    os.rmdir(backup)
    os.rename(prefix, backup)
    try:
        os.rename(staging, prefix)
    except BaseException:
        os.rename(backup, prefix)
        raise
    shutil.rmtree(backup, ignore_errors=True)
