"""Install one platform of a lock into a prefix, after checking this machine can run it.

``check_machine`` is pure: the lock's torch flavour against the detected driver
and GPUs (driver CUDA vs the locked CUDA, minor-version compatibility, arch
coverage) and the platform against the lock's platforms.

``prepare_install`` + ``install_from_lock`` install with py-rattler's installer:

1. **Fetch and verify.** Every archive is read (``file://``) or downloaded
   (``http(s)://``, in parallel, into ``CACHE/archives/``) and its sha256 (and
   md5) checked against the lock *before anything is linked*. A mismatch
   refuses the whole install, naming the package with the expected and actual
   hash; a bad download is deleted, never cached.
2. **Link into a staging folder.** rattler links the verified archives (its
   extracted-package cache lives in ``CACHE/pkgs/``) into a sibling of the
   prefix, ``.NAME.staging-XXXX``, with ``alternative_target_prefix`` set to
   the final prefix so prefix placeholders and conda-meta name the real place.
   For an existing environment the staging folder starts as a copy of it and
   rattler turns that copy into the new environment (an update transaction).
3. **Swap.** A new prefix (absent, or an empty folder) is one ``rename`` of
   the staging folder. An existing prefix is renamed aside
   (``.NAME.old-XXXX``), the staging folder renamed into place, and the old
   one deleted; if the second rename fails, the first is undone.

So the prefix is either the complete new environment or exactly as it was: a
failure before the swap only deletes the staging folder. The price is disk
space: updating an environment copies it once. An existing folder is only
touched when it is empty or holds ``conda-meta/`` (a conda environment).

``conda-meta/*.json`` records are rattler's (read by conda's ``PrefixData``),
with ``url``/``channel``/``md5`` set from the lock and the URL actually used;
``conda-meta/history`` gets a conda-style entry for the transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from conda_torch_plugin.errors import IncompatibleMachine, InstallError
from conda_torch_plugin.flavour import Flavour, lock_flavour

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from conda_torch_plugin.detect import Detection
    from conda_torch_plugin.lockfile import LockedPackage, LockFile
    from conda_torch_plugin.recipes import Recipes

CACHE_VARIABLE = "CONDA_TORCH_ENV_CACHE_DIR"
DOWNLOAD_WORKERS = 6
_CHUNK = 1 << 20


# --- machine check -----------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    severity: str  # "ok" | "note" | "warning" | "error"
    code: str  # stable identifier, e.g. "driver-too-old"
    message: str
    hint: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class MachineCheck:
    platform: str
    flavour: Flavour
    pytorch: str | None  # the locked pytorch version
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def raise_if_incompatible(self) -> None:
        if self.ok:
            return
        raise IncompatibleMachine(
            "this machine cannot run what the lock holds for "
            f"{self.platform} ({self.flavour.label} build): "
            + "; ".join(f.message for f in self.errors),
            hints=[*(f.hint for f in self.errors if f.hint), "use --force to install anyway"],
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "ok": self.ok,
            "flavour": self.flavour.to_dict(),
            "pytorch": self.pytorch,
            "findings": [f.to_dict() for f in self.findings],
        }


def check_machine(
    lock: LockFile, platform: str, detection: Detection, recipes: Recipes | None
) -> MachineCheck:
    """Can this machine (``detection``) run the lock's ``platform``? Pure; never raises."""
    packages = lock.packages_for(platform)
    if not packages:
        finding = Finding(
            "error",
            "platform-not-locked",
            f"the lock holds no packages for {platform} (it holds: "
            f"{', '.join(lock.platforms) or 'none'})",
            f"lock this platform too: conda torch-env lock --platform {platform}",
        )
        return MachineCheck(platform, Flavour("unknown", None, "unknown"), None, (finding,))
    flavour = lock_flavour(packages)
    torch = _torch_package(packages)
    pytorch = torch.version if torch else None
    findings: list[Finding] = []
    if flavour.compute == "unknown":
        if torch is None:
            findings.append(Finding("note", "no-pytorch", "the lock holds no PyTorch package"))
        else:
            findings.append(
                Finding(
                    "warning",
                    "unknown-build",
                    f"cannot tell which flavour pytorch {torch.version} {torch.build} is; "
                    "driver and GPU checks skipped",
                )
            )
    elif flavour.compute in ("cpu", "mps"):
        findings += _check_cpu_lock(flavour, detection)
    elif recipes is None:
        findings.append(
            Finding("note", "no-recipes", "no compatibility data: driver and GPU checks skipped")
        )
    else:
        driver_findings, jit = _check_driver(flavour, platform, detection, recipes)
        findings += driver_findings
        findings += _check_gpus(flavour, pytorch, platform, detection, recipes, jit=jit)
    return MachineCheck(platform, flavour, pytorch, tuple(findings))


def _torch_package(packages: Sequence[LockedPackage]) -> LockedPackage | None:
    by_name = {p.name: p for p in packages}
    return next(
        (by_name[n] for n in ("pytorch", "libtorch", "pytorch-gpu", "pytorch-cpu") if n in by_name),
        None,
    )


def _check_cpu_lock(flavour: Flavour, detection: Detection) -> list[Finding]:
    if detection.gpus:
        count = len(detection.gpus)
        return [
            Finding(
                "note",
                "cpu-build-on-gpu-machine",
                f"the lock holds a {flavour.label} build; it runs here but will not use the "
                f"{count} NVIDIA GPU{'s' if count > 1 else ''}",
                "for a CUDA build, re-plan for this machine: conda torch-env write && "
                "conda torch-env lock",
            )
        ]
    return [Finding("ok", "cpu-build", f"the lock holds a {flavour.label} build")]


def _check_driver(
    flavour: Flavour, platform: str, detection: Detection, recipes: Recipes
) -> tuple[list[Finding], bool]:
    """Findings, and whether PTX may be JIT-compiled (not under minor-version compatibility)."""
    from conda_torch_plugin import compat

    required = flavour.required_cuda
    if required is None:
        return [
            Finding(
                "warning",
                "cuda-version-unknown",
                "the lock holds a CUDA build whose CUDA version is unknown; driver not checked",
            )
        ], True
    minimum = _safe(lambda: recipes.min_driver(required, platform))
    upgrade = (
        f"install an NVIDIA driver >= {minimum} (CUDA {required})"
        if minimum
        else f"install an NVIDIA driver for CUDA {required}"
    )
    if detection.cuda_version is None:
        why = f" ({'; '.join(detection.notes)})" if detection.notes else ""
        return [
            Finding(
                "error",
                "no-driver",
                f"the lock holds a CUDA {required} build but no NVIDIA driver was found{why}",
                f"{upgrade}, or lock a CPU build: conda torch-env write --cpu && "
                "conda torch-env lock",
            )
        ], False
    check = compat.check_cuda(
        required, detection.cuda_version, detection.driver_version, platform, recipes
    )
    if check.mode == compat.FULL:
        driver = f"driver {detection.driver_version}" if detection.driver_version else "the driver"
        return [
            Finding(
                "ok",
                "driver-supports-cuda",
                f"{driver} supports the locked CUDA {required} build ({check.reason})",
            )
        ], True
    if check.mode == compat.MINOR_COMPAT:
        return [
            Finding(
                "warning",
                "minor-version-compatibility",
                check.warning or check.reason,
                f"{upgrade} for full support",
            )
        ], False
    return [
        Finding(
            "error",
            "driver-too-old",
            f"the locked CUDA {required} build {check.reason}",
            f"{upgrade}, or re-plan for this driver: conda torch-env write --cuda "
            f"{detection.cuda_version} && conda torch-env lock",
        )
    ], False


def _check_gpus(
    flavour: Flavour,
    pytorch: str | None,
    platform: str,
    detection: Detection,
    recipes: Recipes,
    *,
    jit: bool,
) -> list[Finding]:
    from conda_torch_plugin import compat

    if detection.cuda_version is not None and not detection.gpus:
        return [
            Finding(
                "warning",
                "no-gpu",
                "the NVIDIA driver reports no GPU: the CUDA build will run on the CPU only",
            )
        ]
    if not detection.gpus:
        return []
    arch = None
    cuda, style = flavour.cuda, flavour.channel_style
    if pytorch and cuda and style != "unknown":
        arch = _safe(lambda: recipes.arch_list(style, pytorch, cuda, platform))
    if arch is None:
        return [
            Finding(
                "note",
                "arch-list-unknown",
                f"no arch list is known for pytorch {pytorch} {flavour.label} "
                f"({flavour.channel_style} channel) on {platform}; GPU coverage not checked",
            )
        ]
    findings = []
    for gpu in detection.gpus:
        who = f"GPU {gpu.index} ({gpu.name}"
        if gpu.compute_capability is None:
            findings.append(
                Finding(
                    "note",
                    "gpu-arch-unknown",
                    f"{who}): compute capability unknown; coverage not checked",
                )
            )
            continue
        try:
            how = compat.how_runs(arch.sass, arch.ptx, gpu.compute_capability, jit=jit)
        except ValueError:  # a capability detection could not parse: say so, do not crash
            how = None
        if how:
            findings.append(
                Finding(
                    "ok",
                    "gpu-covered",
                    f"{who}, compute capability {gpu.compute_capability}): {how}",
                )
            )
        else:
            findings.append(
                Finding(
                    "error",
                    "gpu-not-covered",
                    f"{who}, compute capability {gpu.compute_capability}) is not covered by the "
                    f"locked build (it has {compat.describe_archs(arch)})",
                    f"re-plan for it: conda torch-env write --gpu-arch {gpu.compute_capability} && "
                    "conda torch-env lock",
                )
            )
    return findings


def _safe(call: Callable[[], Any]) -> Any:
    """Recipes lookups are advisory here: a missing row must not crash the check."""
    try:
        return call()
    except (LookupError, ValueError, NotImplementedError):
        return None


# --- install -----------------------------------------------------------------------------


class InstallProgress(Protocol):
    """What the CLI passes as ``progress``: step messages and per-package counters."""

    def step(self, message: str) -> None: ...

    def advance(self, phase: str, name: str, done: int, total: int) -> None: ...


@dataclass(frozen=True)
class PlannedPackage:
    name: str
    version: str
    build: str
    url: str  # where it is fetched from (after --channel-alias)
    locked_url: str  # as written in the lock
    sha256: str
    md5: str
    size: int | None  # bytes, None when unknown before download
    cached: bool  # already local (file:// or a verified archive in the cache)

    @property
    def local(self) -> bool:
        """Read in place from a local (``file://``) channel: nothing to download."""
        return _local_path(self.url) is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "url": self.url,
            "size": self.size,
            "cached": self.cached,
            "local": self.local,
        }


@dataclass(frozen=True)
class InstallPlan:
    platform: str
    prefix: Path
    mode: str  # "create" (absent or empty folder) | "update" (an existing environment)
    cache_dir: Path
    packages: tuple[PlannedPackage, ...]

    @property
    def total_bytes(self) -> int | None:
        sizes = [p.size for p in self.packages]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    @property
    def download_bytes(self) -> int | None:
        sizes = [p.size for p in self.packages if not p.cached]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    @property
    def download_count(self) -> int:
        return sum(1 for p in self.packages if not p.cached)

    def to_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "prefix": str(self.prefix),
            "mode": self.mode,
            "cache_dir": str(self.cache_dir),
            "count": len(self.packages),
            "total_bytes": self.total_bytes,
            "download_bytes": self.download_bytes,
            "download_count": self.download_count,
            "packages": [p.to_dict() for p in self.packages],
        }


@dataclass(frozen=True)
class InstallResult:
    plan: InstallPlan
    dry_run: bool
    installed: tuple[str, ...] = ()  # "name-version-build" linked by this transaction
    removed: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def prefix(self) -> Path:
        return self.plan.prefix

    def to_dict(self) -> dict[str, object]:
        return {
            **self.plan.to_dict(),
            "dry_run": self.dry_run,
            "installed": list(self.installed),
            "removed": list(self.removed),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


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


def prepare_install(
    lock: LockFile,
    platform: str,
    prefix: Path,
    *,
    cache_dir: Path | None = None,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
) -> InstallPlan:
    """What would be installed, from where, and how much must be downloaded. Changes nothing."""
    packages = lock.packages_for(platform)
    if not packages:
        raise InstallError(
            f"the lock holds no packages for {platform} (it holds: "
            f"{', '.join(lock.platforms) or 'none'})",
            hints=[f"lock this platform too: conda torch-env lock --platform {platform}"],
        )
    pip = [p.name for p in packages if p.manager != "conda"]
    if pip:
        raise InstallError(
            f"the lock holds pip packages for {platform} ({', '.join(sorted(pip))}), "
            "which this installer does not install",
            hints=["install them afterwards with the environment's pip"],
        )
    prefix = Path(prefix).expanduser().absolute()
    mode = prefix_mode(prefix)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    planned = []
    for pkg in packages:
        url = rewrite_url(pkg.url, lock.channels, channel_alias, custom_channels or {})
        planned.append(
            PlannedPackage(
                name=pkg.name,
                version=pkg.version,
                build=pkg.build,
                url=url,
                locked_url=pkg.url,
                sha256=pkg.sha256.lower(),
                md5=pkg.md5.lower(),
                size=None,
                cached=False,
            )
        )
    planned = _with_sizes(planned, cache)
    planned.sort(key=lambda p: p.name)
    return InstallPlan(platform, prefix, mode, cache, tuple(planned))


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
) -> InstallResult:
    """Install ``platform``'s packages of ``lock`` into ``prefix`` (see the module docstring).

    Pass the ``plan`` from ``prepare_install`` to avoid computing it twice.
    ``command`` is written into ``conda-meta/history``.
    """
    if plan is None:
        plan = prepare_install(
            lock,
            platform,
            prefix,
            cache_dir=cache_dir,
            channel_alias=channel_alias,
            custom_channels=custom_channels,
        )
    if dry_run:
        return InstallResult(plan, dry_run=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    local = fetch_and_verify(plan, progress)
    timings["fetch_verify"] = time.perf_counter() - start
    start = time.perf_counter()
    installed, removed = _transaction(plan, local, progress, command)
    timings["link"] = time.perf_counter() - start
    return InstallResult(plan, False, installed, removed, timings)


# --- URLs and sizes ----------------------------------------------------------------------


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


def _local_path(url: str) -> Path | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme == "":
        return Path(url)
    return None


def _cache_archive(cache: Path, pkg: PlannedPackage) -> Path:
    # Keyed by the locked sha256 so two archives with one file name never collide.
    return cache / "archives" / pkg.sha256[:16] / pkg.url.rsplit("/", 1)[-1]


def _with_sizes(planned: list[PlannedPackage], cache: Path) -> list[PlannedPackage]:
    """Sizes from the archives on disk, else from a HEAD request (in parallel)."""
    result: list[PlannedPackage | None] = [None] * len(planned)
    remote: list[int] = []
    for i, pkg in enumerate(planned):
        path = _local_path(pkg.url)
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
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=30) as response:
            length = response.headers.get("Content-Length")
            return int(length) if length else None
    except (OSError, ValueError):
        return None


# --- fetch and verify --------------------------------------------------------------------


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
        except OSError as error:
            return _Fetched(pkg, failure=f"{pkg.url}: {error}")

    local: dict[str, Path] = {}
    mismatches: list[str] = []
    failures: list[str] = []
    with ThreadPoolExecutor(DOWNLOAD_WORKERS) as pool:
        for done, fetched in enumerate(pool.map(one, plan.packages), start=1):
            if progress is not None:
                progress.advance("fetch", fetched.package.name, done, total)
            if fetched.path is not None:
                local[fetched.package.name] = fetched.path
            elif fetched.mismatch:
                mismatches.append(fetched.mismatch)
            else:
                failures.append(fetched.failure or fetched.package.url)
    if mismatches:
        count = len(mismatches)
        raise InstallError(
            f"{count} package{'s' if count > 1 else ''} did not match the lock; nothing was "
            "installed: " + "; ".join(mismatches),
            hints=[
                "if the channel rebuilt the package, re-lock (conda torch-env lock); "
                "otherwise the download or the mirror is corrupt: try again or use another mirror"
            ],
        )
    if failures:
        raise InstallError(
            "could not fetch " + "; ".join(failures),
            hints=["check the network or the --channel-alias mirror, then run the command again"],
        )
    return local


def _fetch_one(cache: Path, pkg: PlannedPackage) -> _Fetched:
    path = _local_path(pkg.url)
    if path is not None:
        if not path.is_file():
            return _Fetched(pkg, failure=f"{pkg.url}: no such file")
        return _verify(path, pkg, delete_on_mismatch=False)
    target = _cache_archive(cache, pkg)
    if target.is_file():
        cached = _verify(target, pkg, delete_on_mismatch=True)
        if cached.path is not None:
            return cached
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    sha, md5 = hashlib.sha256(), hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(pkg.url, timeout=60) as response:
            while chunk := response.read(_CHUNK):
                sha.update(chunk)
                md5.update(chunk)
                out.write(chunk)
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


def _verify(path: Path, pkg: PlannedPackage, *, delete_on_mismatch: bool) -> _Fetched:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    mismatch = _compare(pkg, sha.hexdigest(), md5.hexdigest())
    if mismatch is None:
        return _Fetched(pkg, path=path)
    if delete_on_mismatch:
        with contextlib.suppress(OSError):
            path.unlink()
    return _Fetched(pkg, mismatch=mismatch)


def _compare(pkg: PlannedPackage, sha256: str, md5: str) -> str | None:
    """None when the archive is the locked one, else what differs (package, expected, actual)."""
    label = f"{pkg.name}-{pkg.version}-{pkg.build} ({pkg.url})"
    if pkg.sha256:
        return (
            None
            if sha256 == pkg.sha256
            else (f"{label}: expected sha256 {pkg.sha256}, got {sha256}")
        )
    if pkg.md5:
        return None if md5 == pkg.md5 else f"{label}: expected md5 {pkg.md5}, got {md5}"
    return f"{label}: the lock records no hash to verify it against"


# --- the transaction ---------------------------------------------------------------------


def _transaction(
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

    async def record(pkg: PlannedPackage) -> Any:
        path = local[pkg.name]
        rec = await RepoDataRecord.from_package_archive(path)
        # from_package_archive fills sha256/size from the archive; md5 and channel
        # come from the lock. The URL stays the verified local file until the
        # records are written (see _fix_meta_urls), so rattler reads that file.
        rec.url = path.as_uri()
        rec.channel = _channel_of(pkg.url)
        if pkg.md5:
            rec.md5 = bytes.fromhex(pkg.md5)
        return rec

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
    except Exception as error:  # rattler raises its own exception types
        raise InstallError(
            f"linking into {plan.prefix} failed: {error}",
            hints=[
                "the environment was left as it was; run the command again, "
                "or report the error if it repeats"
            ],
        ) from error


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

    return Reporter()


def _channel_of(url: str) -> str:
    """ ".../pytorch/linux-64/x.tar.bz2" -> ".../pytorch/" (the channel, as conda records it)."""
    return url.rsplit("/", 2)[0] + "/"


def _meta_dists(prefix: Path) -> set[str]:
    meta = prefix / "conda-meta"
    return {p.stem for p in meta.glob("*.json")} if meta.is_dir() else set()


def _fix_meta_urls(staging: Path, plan: InstallPlan) -> None:
    """conda-meta names the URL a package came from, not the cache file rattler read."""
    import json

    from conda_torch_plugin.atomic import atomic_write_text

    for pkg in plan.packages:
        path = staging / "conda-meta" / f"{pkg.name}-{pkg.version}-{pkg.build}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("url") == pkg.url and data.get("channel") == _channel_of(pkg.url):
            continue
        data["url"] = pkg.url
        data["channel"] = _channel_of(pkg.url)
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

    urls = {f"{p.name}-{p.version}-{p.build}": p.url for p in plan.packages}
    lines = [
        f"==> {time.strftime('%Y-%m-%d %H:%M:%S')} <==",
        f"# cmd: {command or 'conda-torch-env install'}",
        f"# conda-torch-env version: {__version__}",
    ]
    lines += [f"-{dist}" for dist in removed]
    lines += [
        f"+{_channel_of(urls[d]).rstrip('/')}::{d}" if d in urls else f"+{d}" for d in installed
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
