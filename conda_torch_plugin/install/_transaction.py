"""The transaction: link verified archives into a staging folder, then swap it into place.

It runs under the prefix lock (``_prefix_lock``), after ``_journal.recover``
has finished or rolled back whatever a dead run left, so one install at a
time changes a prefix.

1. **Link into a staging folder.** rattler links the verified archives (its
   extracted-package cache is ``plan.package_cache``, which ``_fetch`` has
   already filled) into a sibling of the prefix, ``.NAME.staging-PID-XXXX``,
   with ``alternative_target_prefix`` set to the final prefix so prefix
   placeholders and conda-meta name the real place. For an existing environment
   the staging folder starts as a copy of it and rattler turns that copy into
   the new environment (an update transaction). A new prefix gets the mode
   ``mkdir`` would give it (0755 under umask 022); root updating another user's
   environment gives the new tree that user's ownership.
2. **Swap.** A new prefix (absent, or an empty folder) is one ``rename`` of
   the staging folder. An existing prefix is renamed aside
   (``.NAME.old-PID-XXXX``), the staging folder renamed into place, and the
   old one deleted; if the second rename fails, the first is undone. A journal
   written before the renames lets the next run resolve a kill between them,
   and SIGINT/SIGTERM wait until both renames are done and the old environment
   and the journal are gone (``interrupts.deferred``).

So the prefix is either the complete new environment or exactly as it was: a
failure before the swap only deletes the staging folder (again if rattler
writes into it after failing). A kill that skips that cleanup leaves the
staging folder to the next run, which removes it. The price is disk space:
updating an environment copies it once, and a full disk stops that copy at its
first failed file with an error saying so.

``conda-meta/*.json`` records are rattler's (read by conda's ``PrefixData``),
with ``url``/``channel``/``md5`` set from the lock and the URL actually used;
``conda-meta/history`` gets a conda-style entry for the transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin import interrupts
from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.install._journal import (
    backup_path,
    begin_swap,
    end_swap,
    remove_tree,
    staging_stem,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from conda_torch_plugin.install.model import InstallPlan, InstallProgress, PlannedPackage


def transaction(
    plan: InstallPlan,
    local: Mapping[str, Path],
    progress: InstallProgress | None,
    command: str | None,
    *,
    after_link: Callable[[Path], None] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Build the new environment in a staging folder and swap it into place.

    ``after_link(staging)`` runs once the conda packages are linked, before the
    swap (the lock's pip entries): its failure leaves the prefix as it was.

    Call with the prefix lock held (``_prefix_lock``) and ``plan.mode`` decided
    under it. On any failure, an interrupt included, the staging folder is
    removed and the prefix is as it was.
    """
    prefix = plan.prefix
    staging: Path | None = None
    try:
        # Interrupts wait while it is made: one that lands inside mkdtemp, or before
        # ``staging`` names the folder, would leave it behind the handlers below.
        with interrupts.deferred():
            staging = _make_staging(prefix)
        before: set[str] = set()
        had_cachedir_tag = False
        if plan.mode == "update":
            if progress is not None:
                progress.step(f"Copying {prefix} to a staging folder")
            _copy_prefix(prefix, staging)
            before = _meta_dists(staging)
            had_cachedir_tag = (staging / "CACHEDIR.TAG").exists()
        if progress is not None:
            progress.step(f"Linking {len(plan.packages)} packages")
        interrupts.run(_link(plan, local, staging, progress))
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
        if after_link is not None:
            after_link(staging)
        _keep_owner(prefix, staging)
        _swap(staging, prefix, plan.mode)
    except OSError as error:
        if staging is None:
            raise _os_error(error, prefix, "could not create a staging folder beside") from error
        remove_tree(staging)
        raise _os_error(error, prefix, "could not install into") from error
    except BaseException:
        if staging is not None:
            remove_tree(staging)
        raise
    return installed, removed


def _make_staging(prefix: Path) -> Path:
    """A staging folder beside the prefix, with the mode (and owner) the prefix will have.

    ``mkdtemp`` makes a 0700 folder; the new prefix gets what ``mkdir`` gives
    under the current umask (0755 under umask 022), or the mode of the empty
    folder it replaces. An update copies the old prefix's mode with the copy.
    """
    staging = Path(tempfile.mkdtemp(prefix=staging_stem(prefix), dir=prefix.parent))
    try:
        try:
            existing = prefix.stat()
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(staging, 0o777 & ~umask)
        else:
            os.chmod(staging, stat.S_IMODE(existing.st_mode))
    except BaseException:
        remove_tree(staging)
        raise
    return staging


def _copy_prefix(prefix: Path, staging: Path) -> None:
    """Copy the environment into the staging folder; a full disk stops the copy at once."""
    try:
        shutil.copytree(
            prefix, staging, symlinks=True, dirs_exist_ok=True, copy_function=_copy_file
        )
    except _DiskFull as full:
        raise _disk_full(prefix, full.error) from full.error
    except shutil.Error as error:
        # copytree collects (source, destination, reason) for every file it could not copy.
        failures = [e for e in error.args[0] if isinstance(e, tuple) and len(e) == 3]
        if any(_DISK_FULL_TEXT in str(reason) for _, _, reason in failures):
            raise _disk_full(prefix, None) from error
        first = f"{failures[0][0]}: {failures[0][2]}" if failures else str(error)
        raise InstallError(
            f"could not copy {prefix} to a staging folder for the update "
            f"({len(failures)} files failed; the first: {first})",
            hints=[
                "the environment was left as it was",
                "check that every file in the environment is readable, then run the command again",
            ],
        ) from error


class _DiskFull(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DISK_FULL_TEXT = f"[Errno {errno.ENOSPC}]"


def _copy_file(src: str, dst: str, *, follow_symlinks: bool = True) -> object:
    # copytree records an OSError and goes on with the next file; on a full disk every
    # further file fails too, so this one is raised as something copytree does not catch.
    try:
        return shutil.copy2(src, dst, follow_symlinks=follow_symlinks)
    except OSError as error:
        if error.errno in _DISK_FULL_ERRNOS:
            raise _DiskFull(error) from error
        raise


def _disk_full(prefix: Path, error: OSError | None) -> InstallError:
    size = _tree_size(prefix)
    need = f" (about {size / 2**20:,.0f} MiB)" if size else ""
    return InstallError(
        f"the disk is full: there is no room beside {prefix} for the copy an update needs"
        + (f" ({error.strerror})" if error is not None and error.strerror else ""),
        hints=[
            "the environment was left as it was",
            f"free space on the filesystem of {prefix.parent}: an update needs room for a "
            f"second copy of the environment{need}, then run the command again",
        ],
    )


def _tree_size(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _os_error(error: OSError, prefix: Path, doing: str) -> InstallError:
    """A filesystem failure of the transaction as an error a user can act on."""
    if error.errno in _DISK_FULL_ERRNOS:
        return InstallError(
            f"the disk is full: {doing} {prefix} failed ({error.strerror})",
            hints=["the environment was left as it was", f"free space on {prefix.parent}"],
        )
    where = f": {error.filename}" if error.filename else ""
    return InstallError(
        f"{doing} {prefix}: {error.strerror or error}{where}",
        hints=["the environment was left as it was"],
    )


def _keep_owner(prefix: Path, staging: Path) -> None:
    """Root updating another user's environment leaves it that user's (files and folder).

    conda, run with sudo on a user's environment, leaves files owned by root that
    the user can no longer change or remove; here the environment keeps the owner
    (and group) of the folder it replaces, new files included.
    """
    if os.name == "nt" or os.geteuid() != 0:
        return
    try:
        owner = prefix.stat()
    except OSError:
        return  # a new prefix: owned by whoever creates it, as with mkdir
    if (owner.st_uid, owner.st_gid) == (0, 0):
        return
    uid, gid = owner.st_uid, owner.st_gid
    os.lchown(staging, uid, gid)
    for folder, dirs, files in os.walk(staging):
        for name in (*dirs, *files):
            os.lchown(os.path.join(folder, name), uid, gid)


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
            cache_dir=plan.package_cache,
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
    check.check_linked(staging, plan.prefix, checked, plan.package_cache)


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
                hints=[f"the lock file is damaged or crafted: regenerate it ({plan.relock})"],
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
    """Rename the staging folder into place (see ``_journal`` for a kill at any instant)."""
    with interrupts.deferred():
        if mode == "create":
            # rename(2) replaces an empty folder on POSIX (and fails if it gained files
            # meanwhile); Windows' rename does not replace folders, so the empty one goes first.
            try:
                if os.name == "nt" and prefix.is_dir():
                    prefix.rmdir()
                os.rename(staging, prefix)
            except OSError as error:
                raise _rename_error(error, prefix) from error
            return
        backup = backup_path(prefix)
        begin_swap(prefix, staging, backup)
        try:
            os.rename(prefix, backup)
        except OSError as error:
            end_swap(prefix)
            raise _rename_error(error, prefix) from error
        try:
            os.rename(staging, prefix)
        except BaseException as error:
            os.rename(backup, prefix)
            end_swap(prefix)
            if isinstance(error, OSError):
                raise _rename_error(error, prefix) from error
            raise
        # The new environment is in place: an interrupt now would only leave the old
        # one and the journal for the next run to clear, so it waits for that too.
        shutil.rmtree(backup, ignore_errors=True)
        end_swap(prefix)


def _rename_error(error: OSError, prefix: Path) -> InstallError:
    if error.errno in (errno.EBUSY, errno.EXDEV) or os.path.ismount(prefix):
        return InstallError(
            f"could not move the new environment into {prefix}: it is a mount point "
            f"({error.strerror}), and the environment is replaced by renaming folders",
            hints=[
                "the folder was left as it was",
                f"install into a folder inside it instead, e.g. -p {prefix / 'env'}",
            ],
        )
    return InstallError(
        f"could not move the new environment into {prefix}: {error.strerror or error}",
        hints=["the folder was left as it was"],
    )
