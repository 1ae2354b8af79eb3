"""Fetch, verify and extract: where each archive comes from, and proof it is the locked one.

- **URLs.** ``rewrite_url`` / ``rewrite_lock`` serve a locked URL from a mirror
  (``--channel-alias``, conda's ``custom_channels``): CHANNEL_URL/subdir/fn ->
  ALIAS/NAME/subdir/fn, labels kept.
- **One package cache.** Archives live in ``plan.package_cache`` as ``FILE`` and
  extracted packages as ``NAME-VERSION-BUILD/``, conda's ``pkgs_dirs`` layout:
  inside conda it *is* conda's first writable ``pkgs_dirs``, so an archive conda
  already has is not downloaded again and what is downloaded here is conda's too.
  An archive found there is used only once its hash matched the lock.
- **Sizes.** ``with_sizes`` reads them from the archives on disk (``file://``
  channels, the cache) or asks the server (HEAD, in parallel), so the user sees
  what will be downloaded before anything is.
- **Fetch, verify, extract.** Every archive is read (``file://``) or downloaded
  (``http(s)://``, in parallel, with ``network.NetworkSettings``: proxies, TLS,
  credentials, timeouts, retries) and its sha256 (else md5) computed as it
  arrives. As soon as one matches the lock it is extracted into the package
  cache (the ``.tar.bz2`` stream decoded on all cores) while the others still
  download; the prefix is not touched until every package is verified. A
  mismatch refuses the whole install, naming the package with the expected and
  actual hash; a bad download is deleted, never cached. A download that ends
  early (fewer bytes than its Content-Length, a cut chunked body), a reset
  connection or a 5xx answer is tried again (``max_retries``), then reported
  with the package and its URL. Offline, a package missing from the cache
  refuses the install, naming it.
- **Paths.** A cache path is built from the URL's file name; one that would
  leave the package cache is refused, and only files inside it are ever deleted.
- **Credentials.** See ``network``: ``user:password@``, ``/t/TOKEN/``, ``.netrc``
  and rattler's auth file. Messages and ``--json`` output show URLs through
  ``redact_credentials``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import os
import shutil
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.condalock.lockfile import redact_credentials
from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.network import NetworkSettings, Opener, from_environ

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockFile
    from conda_torch_plugin.install.model import InstallPlan, InstallProgress, PlannedPackage

DEFAULT_RELOCK = "conda torch-env lock"
DOWNLOAD_WORKERS = 6
_CHUNK = 1 << 20


def channel_name(channel_url: str) -> str:
    """ "https://conda.anaconda.org/pytorch" -> "pytorch".

    A label stays part of the name: ".../nvidia/label/cuda-12.4.0" -> "nvidia/label/cuda-12.4.0".
    """
    parts = [p for p in urllib.parse.urlsplit(channel_url).path.split("/") if p]
    if len(parts) >= 3 and parts[-2] == "label":
        return "/".join(parts[-3:])
    return parts[-1] if parts else ""


def rewrite_url(
    url: str,
    channels: Sequence[str],
    channel_alias: str | None,
    custom_channels: Mapping[str, str],
) -> str:
    """Serve a locked URL from a mirror: CHANNEL_URL/subdir/fn -> ALIAS/NAME/subdir/fn.

    ``custom_channels`` ({name: base URL}) win over the alias for their channel.
    URLs outside the lock's channels are left alone.
    """
    if not channel_alias and not custom_channels:
        return url
    for channel in sorted(channels, key=len, reverse=True):
        base = channel.rstrip("/")
        if not url.startswith(base + "/"):
            continue
        name = channel_name(base)
        rest = url[len(base) + 1 :]
        if name in custom_channels:
            return f"{custom_channels[name].rstrip('/')}/{rest}"
        if channel_alias:
            return f"{channel_alias.rstrip('/')}/{name}/{rest}"
        return url
    return url


def rewrite_lock(
    lock: LockFile, channel_alias: str | None, custom_channels: Mapping[str, str] | None = None
) -> LockFile:
    """The lock with every package URL served from the mirror (hashes unchanged)."""
    if not channel_alias and not custom_channels:
        return lock
    packages = tuple(
        replace(p, url=rewrite_url(p.url, lock.channels, channel_alias, custom_channels or {}))
        for p in lock.packages
    )
    return replace(lock, packages=packages)


def local_path(url: str) -> Path | None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not a URL we can read: the download reports it
        return None
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme == "":
        return Path(url)
    return None


def _cache_archive(cache: Path, pkg: PlannedPackage, relock: str = DEFAULT_RELOCK) -> Path:
    """``PKGS/<file name>`` (conda's layout), refused unless it stays in that folder.

    The lock reader validates the file name; this check holds for a lock built any
    other way. An archive found there is used only after it matched the lock.
    """
    path = cache / pkg.url.rsplit("/", 1)[-1]
    if not _inside(path, cache, depth=1) or not _dist_name(path.name):
        raise InstallError(
            f"{_label(pkg)}: its file name would place it outside the package "
            f"cache {cache}; nothing was fetched",
            hints=[f"the lock file is damaged or crafted: regenerate it with {relock}"],
        )
    return path


def _dist_name(file_name: str) -> str | None:
    """ "x-1-0.tar.bz2" -> "x-1-0" (the extracted folder's name, as conda and rattler use)."""
    for suffix in (".tar.bz2", ".conda"):
        if file_name.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return None


def _inside(path: Path, folder: Path, *, depth: int = 1) -> bool:
    """Whether ``path`` is ``depth`` levels below ``folder`` after resolving both."""
    resolved, root = path.resolve(), folder.resolve()
    return len(resolved.parents) > depth and resolved.parents[depth - 1] == root


def with_sizes(
    planned: list[PlannedPackage],
    cache: Path,
    network: NetworkSettings | None = None,
    relock: str = DEFAULT_RELOCK,
) -> list[PlannedPackage]:
    """Sizes from the archives on disk, else from a HEAD request (in parallel; none offline)."""
    result: list[PlannedPackage | None] = [None] * len(planned)
    remote: list[int] = []
    for i, pkg in enumerate(planned):
        path = local_path(pkg.url)
        cached = _cache_archive(cache, pkg, relock)
        if path is not None:
            size = path.stat().st_size if path.is_file() else None
            result[i] = replace(pkg, size=size, cached=True)
        elif cached.is_file():
            result[i] = replace(pkg, size=cached.stat().st_size, cached=True)
        else:
            remote.append(i)
    settings = network or from_environ()
    if remote and not settings.offline:
        opener = Opener(settings)
        with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
            sizes = list(pool.map(lambda i: _head_size(opener, planned[i].url), remote))
    else:
        sizes = [None] * len(remote)
    for i, size in zip(remote, sizes, strict=True):
        result[i] = replace(planned[i], size=size)
    return [r for r in result if r is not None]


def _head_size(opener: Opener, url: str) -> int | None:
    try:
        with opener.open(url, "HEAD") as response:
            length = response.headers.get("Content-Length")
            return int(length) if length else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


class _Incomplete(Exception):
    """The server closed the connection before the whole archive arrived."""


class _Retryable(Exception):
    """A server error worth another try (5xx, 408, 429)."""


@dataclass(frozen=True)
class _Fetched:
    package: PlannedPackage
    path: Path | None = None  # the verified local archive
    mismatch: str | None = None  # the archive differs from the lock
    failure: str | None = None  # the archive could not be read or downloaded


def fetch_and_verify(
    plan: InstallPlan, progress: InstallProgress | None = None, *, extract: bool = True
) -> dict[str, Path]:
    """Local, verified archive per package (name -> path); raises before linking on any mismatch.

    Each package is downloaded, hashed as it arrives and, once it matches the lock,
    extracted into the package cache while the others still download (``extract``;
    False leaves extraction to the transaction). Nothing touches the prefix here.
    """
    settings = plan.network or from_environ()
    cache = plan.package_cache
    if settings.offline:
        _refuse_missing_offline(plan, cache)
    opener = Opener(settings)
    total = len(plan.packages)

    def one(pkg: PlannedPackage) -> _Fetched:
        try:
            fetched = _fetch_one(cache, pkg, opener, early=extract, relock=plan.relock)
        except _Incomplete as error:
            return _Fetched(pkg, failure=f"incomplete download ({error})")
        except (OSError, ValueError, http.client.HTTPException, _Retryable) as error:
            return _Fetched(pkg, failure=_reason(error))
        if extract and fetched.path is not None:
            # A cache that cannot be written is left to the transaction, which says so.
            with contextlib.suppress(OSError):
                extract_into_cache(fetched.path, cache, pkg)
        return fetched

    local: dict[str, Path] = {}
    mismatches: list[str] = []
    failures: list[_Fetched] = []
    with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
        for done, fetched in enumerate(pool.map(one, plan.packages), start=1):
            if progress is not None:
                progress.advance("fetch", fetched.package.name, done, total)
            if fetched.path is not None:
                local[fetched.package.name] = fetched.path
            elif fetched.mismatch:
                mismatches.append(fetched.mismatch)
            else:
                failures.append(fetched)
    if mismatches:
        count = len(mismatches)
        raise InstallError(
            f"{count} package{'s' if count > 1 else ''} did not match the lock; nothing was "
            "installed: " + redact_credentials("; ".join(mismatches)),
            hints=[
                f"if the channel rebuilt the package, re-lock ({plan.relock}); "
                "otherwise the download or the mirror is corrupt: try again or use another mirror"
            ],
        )
    if failures:
        raise _fetch_failure(failures)
    return local


def _refuse_missing_offline(plan: InstallPlan, cache: Path) -> None:
    missing = [
        p
        for p in plan.packages
        if local_path(p.url) is None and not _cache_archive(cache, p, plan.relock).is_file()
    ]
    if not missing:
        return
    shown = ", ".join(f"{p.name}-{p.version}-{p.build}" for p in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    raise InstallError(
        f"offline mode: {len(missing)} package{'s are' if len(missing) > 1 else ' is'} not in "
        f"the package cache {cache}: {shown}{more} (first: {redact_credentials(missing[0].url)}); "
        "nothing was installed",
        hints=[
            "run the command again online (without --offline, or with conda's offline: false) "
            "to download them, or fill the package cache first"
        ],
    )


def _fetch_failure(failures: Sequence[_Fetched]) -> InstallError:
    """One readable error for many failed downloads: a down mirror fails them all alike.

    The packages are grouped by host and reason; each group names its count and
    its first few packages, not every URL.
    """
    groups: dict[tuple[str, str], list[PlannedPackage]] = {}
    for fetched in failures:
        try:
            host = urllib.parse.urlsplit(fetched.package.url).hostname or "local files"
        except ValueError:  # a malformed URL
            host = "an unreadable URL"
        reason = fetched.failure or "unknown error"
        groups.setdefault((host, reason), []).append(fetched.package)
    parts = []
    for (host, reason), packages in groups.items():
        if len(packages) == 1:
            parts.append(f"{_label(packages[0])}: {reason}")
            continue
        shown = ", ".join(p.name for p in packages[:3])
        more = f" and {len(packages) - 3} more" if len(packages) > 3 else ""
        example = redact_credentials(packages[0].url)
        parts.append(
            f"{len(packages)} packages from {host} ({shown}{more}; first: {example}): {reason}"
        )
    return InstallError(
        f"could not fetch {redact_credentials('; '.join(parts))}; nothing was installed",
        hints=["check the network or the --channel-alias mirror, then try again"],
    )


def _fetch_one(
    cache: Path,
    pkg: PlannedPackage,
    opener: Opener,
    *,
    early: bool = False,
    relock: str = DEFAULT_RELOCK,
) -> _Fetched:
    path = local_path(pkg.url)
    if path is not None:
        if not path.is_file():
            return _Fetched(pkg, failure=f"no such file: {path}")
        return _verify(path, pkg, delete_on_mismatch=None)
    target = _cache_archive(cache, pkg, relock)
    if target.is_file():
        cached = _verify(target, pkg, delete_on_mismatch=cache)
        if cached.path is not None:
            return cached
    target.parent.mkdir(parents=True, exist_ok=True)
    retries = max(0, opener.settings.max_retries)
    for attempt in range(retries + 1):
        try:
            return _download(target, pkg, opener, early=early)
        except (_Incomplete, _Retryable, ConnectionError, TimeoutError, http.client.HTTPException):
            if attempt == retries:
                raise
        except urllib.error.URLError as error:
            if isinstance(error, urllib.error.HTTPError) or attempt == retries:
                raise  # an HTTP 4xx answer will not change; a bad proxy or CA neither
            if isinstance(error.reason, ssl.SSLError):
                raise
        time.sleep(min(0.25 * 2**attempt, 4.0))
    raise AssertionError("unreachable")  # pragma: no cover


def _download(target: Path, pkg: PlannedPackage, opener: Opener, *, early: bool) -> _Fetched:
    """Download ``pkg`` into ``target``, hashing as it arrives; a bad download is never kept.

    With ``early``, a ``.tar.bz2`` of known length is also decoded and extracted into a
    private folder while it arrives (``_EarlyExtraction``); that folder is put into the
    package cache only once the archive matched the lock, and deleted otherwise.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    sha, md5 = hashlib.sha256(), hashlib.md5()
    extraction: _EarlyExtraction | None = None
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = opener.open(pkg.url)
            except urllib.error.HTTPError as error:
                if error.code >= 500 or error.code in (408, 429):
                    raise _Retryable(f"HTTP Error {error.code}: {error.reason}") from error
                raise
            with response:
                expected = _content_length(response)
                if early and expected and target.name.endswith(".tar.bz2") and pkg.sha256:
                    extraction = _EarlyExtraction(tmp, expected, target.parent, pkg)
                received = 0
                while chunk := response.read(_CHUNK):
                    received += len(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    out.write(chunk)
                    if extraction is not None:
                        out.flush()
                        extraction.grew(len(chunk))
        if expected is not None and received < expected:
            # http.client ends the body quietly when the server closes early.
            raise _Incomplete(f"the connection closed after {received} of {expected} bytes")
        mismatch = _compare(pkg, sha.hexdigest(), md5.hexdigest())
        if mismatch:
            os.unlink(tmp)  # a bad download is never cached
            if extraction is not None:
                extraction.abort()
            return _Fetched(pkg, mismatch=mismatch)
        os.replace(tmp, target)
    except BaseException:
        if extraction is not None:
            extraction.abort()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if extraction is not None:
        folder = extraction.finish()
        if folder is not None:  # else extract_into_cache extracts it, and reports a bad one
            _place(folder, target.parent, pkg)
    return _Fetched(pkg, path=target)


class _Growing(io.RawIOBase):
    """The ``.part`` file a download is writing, read by another thread: a read waits until
    its bytes have arrived; ``finish`` ends the waiting (with an error: abandoned, and
    every later read finds the end of the file)."""

    def __init__(self, path: str, size: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = size
        self._available = 0
        self._done = False
        self._error: str | None = None
        self._ready = threading.Condition()
        self._pos = 0

    def grew(self, count: int) -> None:
        with self._ready:
            self._available += count
            self._ready.notify_all()

    def finish(self, error: str | None = None) -> None:
        with self._ready:
            self._done = True
            self._error = error
            self._ready.notify_all()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        with self._ready:
            while self._available < self._pos + want and not self._done:
                self._ready.wait()
            if self._error:
                # The end of the file, not an exception: indexed_bzip2 may read from its own
                # threads, where a Python exception would abort the process.
                return 0
        self._file.seek(self._pos)
        count = self._file.readinto(memoryview(buffer)[:want])
        self._pos += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


class _EarlyExtraction:
    """Decode (on all cores) and extract a ``.tar.bz2`` into a private folder of the package
    cache while it downloads; nothing there is used before the archive matched the lock."""

    def __init__(self, part: str, size: int, cache: Path, pkg: PlannedPackage) -> None:
        dist = _dist_name(Path(pkg.url).name) or pkg.name
        self.folder = Path(tempfile.mkdtemp(prefix=f".{dist}.", suffix=".extract", dir=cache))
        self.source = _Growing(part, size)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import tarfile

        try:
            with _bz2_reader(self.source) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                tar.extractall(self.folder, filter="tar")
        except BaseException as error:  # noqa: BLE001 - reported by extracting again, verified
            self.error = error

    def grew(self, count: int) -> None:
        self.source.grew(count)

    def abort(self) -> None:
        self.source.finish("the download was abandoned")
        self.thread.join()
        self.source.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def finish(self) -> Path | None:
        """The extracted folder once the whole verified archive was read, else None."""
        self.source.finish()
        self.thread.join()
        self.source.close()
        if self.error is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            return None
        return self.folder


# --- extraction -------------------------------------------------------------------------

_SHA_MARK = ".torch-env-sha256"  # in info/: the archive an extracted folder came from


def extract_into_cache(archive: Path, cache: Path, pkg: PlannedPackage) -> Path | None:
    """Extract a verified ``archive`` into ``cache/NAME-VERSION-BUILD/`` unless it is there.

    A folder already extracted from this very archive (conda's
    ``info/repodata_record.json`` or our mark names the locked sha256) is kept;
    any other is replaced. Extraction goes to a temporary sibling renamed into
    place, so a half-extracted folder is never left under the final name. The
    ``.tar.bz2`` stream is decoded on all cores (``indexed_bzip2``) when available.
    Tar members are extracted with tarfile's ``tar`` filter (no member written
    outside the folder); ``_archive_check`` then checks every member name.
    """
    dist = _dist_name(archive.name)
    if dist is None or not pkg.sha256:
        return None  # rattler extracts it during the transaction
    cache.mkdir(parents=True, exist_ok=True)
    final = cache / dist
    if not _inside(final, cache, depth=1):
        return None
    if _extracted_from(final, pkg.sha256):
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{dist}.", suffix=".extract", dir=cache))
    try:
        _extract(archive, tmp, pkg)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _place(tmp, cache, pkg)


def _place(tmp: Path, cache: Path, pkg: PlannedPackage) -> Path | None:
    """Move ``tmp``, extracted from the verified archive of ``pkg``, to ``cache/DIST``."""
    dist = _dist_name(pkg.url.rsplit("/", 1)[-1])
    final = cache / dist if dist else None
    try:
        if final is None or not _inside(final, cache, depth=1):
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        (tmp / "info").mkdir(exist_ok=True)
        (tmp / "info" / _SHA_MARK).write_text(pkg.sha256 + "\n", encoding="ascii")
        if _extracted_from(final, pkg.sha256):  # another install extracted it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        if final.exists() or final.is_symlink():  # another archive's content: replaced
            old = Path(tempfile.mkdtemp(prefix=f".{dist}.", suffix=".old", dir=cache))
            os.rename(final, old / final.name)
            shutil.rmtree(old, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                (cache / f"{final.name}.lock").unlink()  # rattler's record of the folder
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _extracted_from(folder: Path, sha256: str) -> bool:
    info = folder / "info"
    with contextlib.suppress(OSError, ValueError):
        if (info / _SHA_MARK).read_text(encoding="ascii").strip() == sha256:
            return True
    with contextlib.suppress(OSError, ValueError, AttributeError):
        import json

        record = json.loads((info / "repodata_record.json").read_text(encoding="utf-8"))
        return str(record.get("sha256") or "").lower() == sha256
    return False


def _extract(archive: Path, dest: Path, pkg: PlannedPackage) -> None:
    import tarfile

    try:
        if archive.name.endswith(".tar.bz2"):
            with _bz2_reader(archive) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                tar.extractall(dest, filter="tar")
        else:
            from rattler.package_streaming import extract

            extract(archive, dest)
    except BaseException as error:  # tarfile's, rattler's (and pyo3's panic) errors
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        raise InstallError(
            f"package {pkg.name}-{pkg.version}-{pkg.build} ({archive}) cannot be extracted: "
            f"{str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}",
            hints=[
                "nothing was linked and the environment was left as it was",
                "the archive is not a well-formed conda package: check the mirror it came from, "
                "or report it to the channel that published it",
            ],
        ) from error


def _bz2_reader(archive: Path | io.RawIOBase) -> Any:
    """A reader of the decompressed stream: all cores with ``indexed_bzip2``, else ``bz2``."""
    try:
        import indexed_bzip2
    except ImportError:
        import bz2

        return bz2.open(archive, "rb")
    source = str(archive) if isinstance(archive, Path) else archive
    return indexed_bzip2.open(source, parallelization=os.cpu_count() or 1)


def _content_length(response: Any) -> int | None:
    try:
        length = int(response.headers.get("Content-Length") or -1)
    except ValueError:
        return None
    return length if length >= 0 else None


def _reason(error: BaseException) -> str:
    if isinstance(error, http.client.IncompleteRead):
        return f"incomplete download (the connection closed after {len(error.partial)} bytes)"
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return str(error.reason)
    return str(error) or type(error).__name__


def _label(pkg: PlannedPackage) -> str:
    return f"{pkg.name}-{pkg.version}-{pkg.build} ({redact_credentials(pkg.url)})"


def _verify(path: Path, pkg: PlannedPackage, *, delete_on_mismatch: Path | None) -> _Fetched:
    """Check ``path`` against the lock; on a mismatch delete it if it lies inside the
    cache folder ``delete_on_mismatch`` (never anything else)."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    mismatch = _compare(pkg, sha.hexdigest(), md5.hexdigest())
    if mismatch is None:
        return _Fetched(pkg, path=path)
    if delete_on_mismatch is not None and _inside(path, delete_on_mismatch, depth=2):
        with contextlib.suppress(OSError):
            path.unlink()
    return _Fetched(pkg, mismatch=mismatch)


def _compare(pkg: PlannedPackage, sha256: str, md5: str) -> str | None:
    """None when the archive is the locked one, else what differs (package, expected, actual)."""
    label = _label(pkg)
    if pkg.sha256:
        return (
            None
            if sha256 == pkg.sha256
            else (f"{label}: expected sha256 {pkg.sha256}, got {sha256}")
        )
    if pkg.md5:
        return None if md5 == pkg.md5 else f"{label}: expected md5 {pkg.md5}, got {md5}"
    return f"{label}: the lock records no hash to verify it against"
