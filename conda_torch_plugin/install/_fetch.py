"""Fetch and verify: where each archive comes from, and proof it is the locked one.

- **URLs.** ``rewrite_url`` / ``rewrite_lock`` serve a locked URL from a mirror
  (``--channel-alias``, conda's ``custom_channels``): CHANNEL_URL/subdir/fn ->
  ALIAS/NAME/subdir/fn, labels kept.
- **Sizes.** ``with_sizes`` reads them from the archives on disk (``file://``
  channels, the cache) or asks the server (HEAD, in parallel), so the user sees
  what will be downloaded before anything is.
- **Fetch and verify.** Every archive is read (``file://``) or downloaded
  (``http(s)://``, in parallel, into ``CACHE/archives/``) and its sha256 (else
  md5) checked against the lock *before anything is linked*. A mismatch refuses
  the whole install, naming the package with the expected and actual hash; a bad
  download is deleted, never cached. A download that ends early (fewer bytes than
  its Content-Length, a cut chunked body) is reported as incomplete, not as a
  mismatch.
- **Paths.** A cache path is built from the locked sha256 and URL file name; one
  that would leave ``CACHE/archives/`` is refused, and only files inside it are
  ever deleted.
- **Credentials.** ``user:password@`` in a URL is sent as HTTP Basic auth (urllib
  would take it for the host name); a ``/t/TOKEN/`` path is sent as it is.
  Messages and ``--json`` output show URLs through ``redact_credentials``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.condalock.lockfile import redact_credentials
from conda_torch_plugin.errors import InstallError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockFile
    from conda_torch_plugin.install.model import InstallPlan, InstallProgress, PlannedPackage

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


def _cache_archive(cache: Path, pkg: PlannedPackage) -> Path:
    """``CACHE/archives/<sha256[:16]>/<file name>``, refused unless it stays in that folder.

    Keyed by the locked sha256 so two archives with one file name never collide.
    The lock reader validates both parts; this check holds for a lock built any
    other way, because a file found here that fails verification is deleted.
    """
    root = cache / "archives"
    path = root / pkg.sha256[:16] / pkg.url.rsplit("/", 1)[-1]
    if not _inside(path, root, depth=2):
        raise InstallError(
            f"{_label(pkg)}: its sha256 and file name would place it outside the package "
            f"cache {root}; nothing was fetched",
            hints=["the lock file is damaged or crafted: regenerate it with conda torch-env lock"],
        )
    return path


def _inside(path: Path, folder: Path, *, depth: int = 1) -> bool:
    """Whether ``path`` is ``depth`` levels below ``folder`` after resolving both."""
    resolved, root = path.resolve(), folder.resolve()
    return len(resolved.parents) > depth and resolved.parents[depth - 1] == root


def with_sizes(planned: list[PlannedPackage], cache: Path) -> list[PlannedPackage]:
    """Sizes from the archives on disk, else from a HEAD request (in parallel)."""
    result: list[PlannedPackage | None] = [None] * len(planned)
    remote: list[int] = []
    for i, pkg in enumerate(planned):
        path = local_path(pkg.url)
        cached = _cache_archive(cache, pkg)
        if path is not None:
            size = path.stat().st_size if path.is_file() else None
            result[i] = replace(pkg, size=size, cached=True)
        elif cached.is_file():
            result[i] = replace(pkg, size=cached.stat().st_size, cached=True)
        else:
            remote.append(i)
    if remote:
        with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
            sizes = list(pool.map(lambda i: _head_size(planned[i].url), remote))
        for i, size in zip(remote, sizes, strict=True):
            result[i] = replace(planned[i], size=size)
    return [r for r in result if r is not None]


def _head_size(url: str) -> int | None:
    try:
        with urllib.request.urlopen(_request(url, "HEAD"), timeout=30) as response:
            length = response.headers.get("Content-Length")
            return int(length) if length else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def _request(url: str, method: str = "GET") -> urllib.request.Request:
    """A request for ``url`` with its ``user:password@`` sent as HTTP Basic auth.

    urllib would take ``user:password@host`` for the host name. The header is
    not passed on if the server redirects elsewhere. A ``/t/TOKEN/`` path is sent
    as it is.
    """
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return urllib.request.Request(url, method=method)
    userinfo, host = parts.netloc.rsplit("@", 1)
    request = urllib.request.Request(urllib.parse.urlunsplit(parts._replace(netloc=host)))
    request.method = method
    user, _, password = userinfo.partition(":")
    pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
    token = base64.b64encode(pair.encode("utf-8")).decode("ascii")
    request.add_unredirected_header("Authorization", f"Basic {token}")
    return request


class _Incomplete(Exception):
    """The server closed the connection before the whole archive arrived."""


@dataclass(frozen=True)
class _Fetched:
    package: PlannedPackage
    path: Path | None = None  # the verified local archive
    mismatch: str | None = None  # the archive differs from the lock
    failure: str | None = None  # the archive could not be read or downloaded


def fetch_and_verify(plan: InstallPlan, progress: InstallProgress | None = None) -> dict[str, Path]:
    """Local, verified archive per package (name -> path); raises before linking on any mismatch."""
    total = len(plan.packages)

    def one(pkg: PlannedPackage) -> _Fetched:
        try:
            return _fetch_one(plan.cache_dir, pkg)
        except _Incomplete as error:
            return _Fetched(pkg, failure=f"incomplete download ({error})")
        except (OSError, ValueError, http.client.HTTPException) as error:
            return _Fetched(pkg, failure=_reason(error))

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
                "if the channel rebuilt the package, re-lock (conda torch-env lock); "
                "otherwise the download or the mirror is corrupt: try again or use another mirror"
            ],
        )
    if failures:
        raise _fetch_failure(failures)
    return local


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


def _fetch_one(cache: Path, pkg: PlannedPackage) -> _Fetched:
    path = local_path(pkg.url)
    if path is not None:
        if not path.is_file():
            return _Fetched(pkg, failure=f"no such file: {path}")
        return _verify(path, pkg, delete_on_mismatch=None)
    target = _cache_archive(cache, pkg)
    if target.is_file():
        cached = _verify(target, pkg, delete_on_mismatch=cache / "archives")
        if cached.path is not None:
            return cached
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    sha, md5 = hashlib.sha256(), hashlib.md5()
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(_request(pkg.url), timeout=60) as response,
        ):
            expected = _content_length(response)
            received = 0
            while chunk := response.read(_CHUNK):
                received += len(chunk)
                sha.update(chunk)
                md5.update(chunk)
                out.write(chunk)
        if expected is not None and received < expected:
            # http.client ends the body quietly when the server closes early.
            raise _Incomplete(f"the connection closed after {received} of {expected} bytes")
        mismatch = _compare(pkg, sha.hexdigest(), md5.hexdigest())
        if mismatch:
            os.unlink(tmp)  # a bad download is never cached
            return _Fetched(pkg, mismatch=mismatch)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return _Fetched(pkg, path=target)


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
