"""Lock an environment for several platforms into one conda-lock.yml, or check a lock.

The steps of :func:`lock`, each of which can refuse before anything is written:

1. read environment.yml (selectors applied per platform) and, beside it or named,
   virtual-packages.yml (conda-lock's defaults, less ``__cuda``, where absent);
2. refuse a request for a CUDA torch build whose CUDA variant is not pinned: without
   the pin the solver's choice among variants depends on the order of records in
   repodata.json;
3. solve each platform with py-rattler (:mod:`conda_torch_plugin.solve`);
4. assert the invariants on what was solved: a CUDA plan holds no CPU build of
   pytorch/torchvision/torchaudio, and the three agree in flavour;
5. build the lock (content hashes computed the way conda-lock computes them) and
   write it, then the ``--explicit`` files, atomically.

Defaults follow conda-lock: the lock is ``conda-lock.yml`` beside the environment
file and a ``virtual-packages.yml`` (or ``.yaml``) beside it is read without being
named. ``--solver conda-lock`` runs the ``conda-lock`` command instead (only where a
conda, mamba or micromamba executable exists: without one conda-lock tries to
download an installer for over a minute); the package never imports conda_lock.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import EnvFileError, LockError, UsageError
from conda_torch_plugin.variant_guard import (
    check_invariants,
    check_variant_pinned,
    unsatisfied_specs,
)

if TYPE_CHECKING:
    from conda_torch_plugin.lockfile import LockedPackage, LockFile

Progress = Callable[[str], None]

DEFAULT_LOCKFILE = "conda-lock.yml"
VIRTUAL_PACKAGE_FILES = ("virtual-packages.yml", "virtual-packages.yaml")
SOLVERS = ("rattler", "conda-lock")
SUMMARY_PACKAGES = ("pytorch", "torchvision", "torchaudio", "pytorch-cuda", "cuda-version")
CONDA_EXECUTABLES = ("conda", "mamba", "micromamba")


@dataclass(frozen=True)
class PlatformSummary:
    platform: str
    packages: int
    flavour: str  # "CUDA 12.4", "CPU", "CPU/MPS", "unknown"
    torch: dict[str, str]  # {"pytorch": "2.5.1 py3.12_cuda12.4_cudnn9.1.0_0", ...}

    def to_dict(self) -> dict[str, object]:
        return {"packages": self.packages, "flavour": self.flavour, **self.torch}


@dataclass(frozen=True)
class LockResult:
    lockfile: Path
    platforms: tuple[PlatformSummary, ...]
    content_hash: dict[str, str]
    written: bool  # False when the file already held exactly these bytes
    explicit_files: tuple[Path, ...]
    solver: str
    solve_seconds: float | None  # time inside the bare rattler solve calls (None: conda-lock)
    seconds: float  # the whole lock() call

    def to_dict(self) -> dict[str, object]:
        return {
            "lockfile": str(self.lockfile),
            "platforms": {p.platform: p.to_dict() for p in self.platforms},
            "content_hash": dict(self.content_hash),
            "written": self.written,
            "explicit_files": [str(p) for p in self.explicit_files],
            "solver": self.solver,
            "solve_seconds": None if self.solve_seconds is None else round(self.solve_seconds, 4),
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class CheckResult:
    lockfile: Path
    platforms: tuple[str, ...]  # what the environment asks for
    stale: tuple[str, ...]  # in both, content hash differs
    added: tuple[str, ...]  # asked for, not in the lock
    removed: tuple[str, ...]  # in the lock, no longer asked for
    details: tuple[str, ...] = ()  # what changed, where it can be told
    missing: bool = False  # no lock file at all

    @property
    def up_to_date(self) -> bool:
        return not (self.missing or self.stale or self.added or self.removed)

    @property
    def message(self) -> str:
        if self.missing:
            return f"{self.lockfile} does not exist"
        if self.up_to_date:
            return f"{self.lockfile} is up to date for {', '.join(self.platforms)}"
        parts = []
        if self.stale:
            parts.append(
                f"stale for {', '.join(self.stale)} (the inputs changed since it was made)"
            )
        if self.added:
            parts.append(f"missing {', '.join(self.added)} (asked for, not in the lock)")
        if self.removed:
            parts.append(f"has {', '.join(self.removed)}, which the environment no longer asks for")
        return f"{self.lockfile} is out of date: " + "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "lockfile": str(self.lockfile),
            "up_to_date": self.up_to_date,
            "platforms": list(self.platforms),
            "stale": list(self.stale),
            "added": list(self.added),
            "removed": list(self.removed),
            "details": list(self.details),
            "missing": self.missing,
            "message": self.message,
        }


@dataclass(frozen=True)
class LockInputs:
    """Everything read before solving: environment, virtual packages, paths."""

    env_path: Path
    lockfile: Path
    spec: Any  # envspec.LockSpec
    platforms: tuple[str, ...]
    vp_path: Path | None
    vp_spec: Any | None  # envspec.VirtualPackageSpec
    virtual_packages: dict[str, dict[str, str]] = field(default_factory=dict)


def default_lockfile(env_path: str | os.PathLike[str]) -> Path:
    return Path(env_path).parent / DEFAULT_LOCKFILE


def find_virtual_package_spec(env_path: str | os.PathLike[str]) -> Path | None:
    """virtual-packages.yml (or .yaml) beside the environment file, if there is one."""
    folder = Path(env_path).parent
    for name in VIRTUAL_PACKAGE_FILES:
        if (folder / name).exists():  # a FIFO or folder there is refused when read
            return folder / name
    return None


def read_inputs(
    env_path: str | os.PathLike[str],
    *,
    platforms: Sequence[str] | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    virtual_package_spec: str | os.PathLike[str] | None = None,
) -> LockInputs:
    from conda_torch_plugin.envspec import read_environment, read_virtual_packages
    from conda_torch_plugin.inputs import check_regular_file
    from conda_torch_plugin.solve import check_platforms, virtual_packages_for

    env = Path(env_path)
    check_regular_file(
        env,
        what="environment file",
        error=EnvFileError,
        missing=f"environment file {env} not found",
        missing_hints=["pass it with -f, or create one with `conda torch-env write`"],
    )
    wanted = check_platforms(platforms) if platforms else None
    spec = read_environment(env, platforms=wanted)
    # The platforms asked for, else the file's `platforms:`, else DEFAULT_PLATFORMS.
    chosen = check_platforms(spec.lock_platforms)
    if virtual_package_spec is not None:
        vp_path: Path | None = Path(virtual_package_spec)
        check_regular_file(
            vp_path,
            what="virtual package spec",
            error=EnvFileError,
            missing=f"virtual package spec {vp_path} not found",
            missing_hints=[
                "write one with `conda torch-env write`, or leave out --virtual-package-spec"
            ],
        )
    else:
        vp_path = find_virtual_package_spec(env)
    vp_spec = read_virtual_packages(vp_path) if vp_path is not None else None
    vps = {p: virtual_packages_for(p, vp_spec) for p in chosen}
    return LockInputs(
        env_path=env,
        lockfile=Path(lockfile) if lockfile is not None else default_lockfile(env),
        spec=spec,
        platforms=chosen,
        vp_path=vp_path,
        vp_spec=vp_spec,
        virtual_packages=vps,
    )


def regenerate_command(
    env_path: str | os.PathLike[str],
    *,
    lockfile: str | os.PathLike[str] | None = None,
    platforms: Sequence[str] | None = None,
    virtual_package_spec: str | os.PathLike[str] | None = None,
    channel_alias: str | None = None,
    explicit: bool = False,
    solver: str = "rattler",
) -> str:
    """The command written into the lock header: run in the lock's folder, it remakes the lock.

    Paths are relative to the lock's folder, so the header (and the file) is the same
    whichever working directory the lock was made from; credentials are stripped.
    """
    from conda_torch_plugin.channels import strip_credentials

    env = Path(env_path)
    lock = Path(lockfile) if lockfile is not None else default_lockfile(env)
    base = lock.resolve().parent
    words = ["conda", "torch-env", "lock"]
    if env.resolve() != (base / "environment.yml"):
        words += ["-f", _relative(env, base)]
    if lock.name != DEFAULT_LOCKFILE:
        words += ["--lockfile", lock.name]
    for platform in platforms or ():
        words += ["--platform", platform]
    if virtual_package_spec is not None:
        vp = Path(virtual_package_spec)
        if vp.resolve() != env.resolve().parent / vp.name or vp.name not in VIRTUAL_PACKAGE_FILES:
            words += ["--virtual-package-spec", _relative(vp, base)]
    if channel_alias:
        words += ["--channel-alias", strip_credentials(channel_alias)]
    if solver != "rattler":
        words += ["--solver", solver]
    if explicit:
        words.append("--explicit")
    import shlex

    return shlex.join(words)


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base)).as_posix()


def lock(
    env_path: str | os.PathLike[str],
    *,
    platforms: Sequence[str] | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    virtual_package_spec: str | os.PathLike[str] | None = None,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
    explicit: bool = False,
    solver: str = "rattler",
    progress: Progress | None = None,
    command: str,
) -> LockResult:
    """Solve the environment for each platform and write the lock; nothing is written on failure."""
    started = time.perf_counter()
    if solver not in SOLVERS:
        raise UsageError(f"unknown solver {solver!r}", hints=[f"use one of: {', '.join(SOLVERS)}"])
    if solver == "conda-lock":
        # Before reading anything: without conda this must fail at once.
        conda_exe = find_conda_executable()
    inputs = read_inputs(
        env_path,
        platforms=platforms,
        lockfile=lockfile,
        virtual_package_spec=virtual_package_spec,
    )
    if solver == "conda-lock":
        return _lock_with_conda_lock(
            inputs,
            conda_exe,
            channel_alias=channel_alias,
            explicit=explicit,
            progress=progress,
            started=started,
        )
    return _lock_with_rattler(
        inputs,
        channel_alias=channel_alias,
        custom_channels=custom_channels,
        explicit=explicit,
        progress=progress,
        command=command,
        started=started,
    )


def _lock_with_rattler(
    inputs: LockInputs,
    *,
    channel_alias: str | None,
    custom_channels: Mapping[str, str] | None,
    explicit: bool,
    progress: Progress | None,
    command: str,
    started: float,
) -> LockResult:
    from conda_torch_plugin.channels import resolve_channels
    from conda_torch_plugin.content_hash import content_hashes
    from conda_torch_plugin.lockfile import LockFile, locked_package_from_record
    from conda_torch_plugin.solve import solve_platforms

    spec = inputs.spec
    source = inputs.env_path.name
    pip = sorted({req for p in inputs.platforms for req in spec.pip.get(p, ())})
    if pip:
        raise LockError(
            f"{source} has a pip: section ({', '.join(pip)}), which this version cannot lock yet",
            hints=[
                "replace them with conda packages, or move them out of the file and install "
                "them with the environment's pip after `conda torch-env install`",
                "or use --solver conda-lock (needs conda, mamba or micromamba on PATH, and "
                "network access)",
            ],
        )
    specs = {p: tuple(spec.dependencies.get(p, ())) for p in inputs.platforms}
    for platform in inputs.platforms:
        check_variant_pinned(
            spec.channels,
            platform,
            specs[platform],
            inputs.virtual_packages[platform],
            source=source,
        )
    channels = resolve_channels(spec.channels, channel_alias, custom_channels)
    hashes = content_hashes(spec, inputs.vp_spec, inputs.platforms)
    solution = solve_platforms(
        channels,
        specs,
        inputs.virtual_packages,
        channel_alias=channel_alias,
        custom_channels=custom_channels,
        progress=progress,
        source=source,
    )
    packages: list[LockedPackage] = []
    for platform in inputs.platforms:
        solved = solution.platforms[platform]
        check_invariants(platform, specs[platform], solved.records, solved.virtual_packages)
        packages.extend(locked_package_from_record(r, platform) for r in solved.records)
    lock_model = LockFile(
        platforms=inputs.platforms,
        channels=tuple(c.public_url for c in channels),
        content_hash={p: hashes[p] for p in inputs.platforms},
        sources=(_relative(inputs.env_path, inputs.lockfile.resolve().parent),),
        packages=tuple(packages),
    )
    if progress is not None:
        progress(f"Writing {inputs.lockfile}")
    written, explicit_files = _write_outputs(lock_model, inputs.lockfile, command, explicit)
    return LockResult(
        lockfile=inputs.lockfile,
        platforms=tuple(_summary(lock_model, p) for p in inputs.platforms),
        content_hash=dict(lock_model.content_hash),
        written=written,
        explicit_files=explicit_files,
        solver="rattler",
        solve_seconds=solution.solve_seconds,
        seconds=time.perf_counter() - started,
    )


def _write_outputs(
    lock_model: LockFile, path: Path, command: str, explicit: bool
) -> tuple[bool, tuple[Path, ...]]:
    """Write the lock and, with ``explicit``, one conda-<platform>.lock per platform.

    Every text is rendered before the first write, so a failure while rendering
    leaves all files as they were; each write is atomic. A file that already holds
    the same text is not rewritten. Returns (lock written?, explicit files).
    """
    from conda_torch_plugin.explicit import render_explicit
    from conda_torch_plugin.lockfile import render_lockfile

    text = render_lockfile(lock_model, command=command)
    rendered = {
        explicit_path(path, platform): render_explicit(lock_model, platform)
        for platform in (lock_model.platforms if explicit else ())
    }
    written = _write_if_changed(path, text)
    for target, explicit_text in rendered.items():
        _write_if_changed(target, explicit_text)
    return written, tuple(rendered)


def _write_if_changed(path: Path, text: str) -> bool:
    from conda_torch_plugin.atomic import atomic_write_text

    if _read_text(path) == text:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as error:
        raise LockError(f"cannot write {path}: {error.strerror or error}") from None
    return True


def _read_text(path: Path) -> str | None:
    """The lock file's current text; None when there is none to compare (a FIFO is not read)."""
    from conda_torch_plugin.inputs import LOCK_FILE, read_text

    try:
        return read_text(path, limits=LOCK_FILE, error=LockError)
    except LockError:
        return None


def explicit_path(lockfile: Path, platform: str) -> Path:
    """Where ``--explicit`` writes a platform's file (conda-lock's default template)."""
    return lockfile.parent / f"conda-{platform}.lock"


def _summary(lock_model: LockFile, platform: str) -> PlatformSummary:
    from conda_torch_plugin.flavour import lock_flavour

    packages = lock_model.packages_for(platform)
    by_name = {p.name: p for p in packages}
    torch = {
        n: f"{by_name[n].version} {by_name[n].build}" for n in SUMMARY_PACKAGES if n in by_name
    }
    return PlatformSummary(
        platform=platform,
        packages=len(packages),
        flavour=lock_flavour(packages).label,
        torch=torch,
    )


def check(
    env_path: str | os.PathLike[str],
    *,
    platforms: Sequence[str] | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    virtual_package_spec: str | os.PathLike[str] | None = None,
) -> CheckResult:
    """Compare the lock's content hashes and platforms with the environment and virtual packages."""
    from conda_torch_plugin.content_hash import content_hashes
    from conda_torch_plugin.lockfile import read_lockfile

    inputs = read_inputs(
        env_path, platforms=platforms, lockfile=lockfile, virtual_package_spec=virtual_package_spec
    )
    if not inputs.lockfile.exists():  # a FIFO or folder there is refused by read_lockfile
        return CheckResult(
            lockfile=inputs.lockfile,
            platforms=inputs.platforms,
            stale=(),
            added=inputs.platforms,
            removed=(),
            missing=True,
        )
    existing = read_lockfile(inputs.lockfile)
    hashes = content_hashes(inputs.spec, inputs.vp_spec, inputs.platforms)
    locked = tuple(existing.platforms)
    stale = tuple(
        p for p in inputs.platforms if p in locked and existing.content_hash.get(p) != hashes[p]
    )
    added = tuple(p for p in inputs.platforms if p not in locked)
    removed = tuple(p for p in locked if p not in inputs.platforms)
    details: list[str] = []
    for platform in stale:
        details.extend(_what_changed(inputs, existing, platform))
    return CheckResult(
        lockfile=inputs.lockfile,
        platforms=inputs.platforms,
        stale=stale,
        added=added,
        removed=removed,
        details=tuple(details),
    )


def _what_changed(inputs: LockInputs, existing: LockFile, platform: str) -> list[str]:
    """Name what changed for a stale platform, where the lock's packages can tell."""
    from conda_torch_plugin.flavour import lock_flavour, version_key

    packages = existing.packages_for(platform)
    found = [
        f"{platform}: {inputs.env_path.name} asks for {spec!r}; the lock holds {held}"
        for spec, held in unsatisfied_specs(inputs.spec.dependencies.get(platform, ()), packages)
    ]
    flavour = lock_flavour(packages)
    required = flavour.required_cuda
    assumed = inputs.virtual_packages.get(platform, {}).get("__cuda")
    vp_name = inputs.vp_path.name if inputs.vp_path else "the default virtual packages"
    if required and (assumed is None or version_key(assumed) < version_key(required)):
        now = f"__cuda={assumed}" if assumed else "no __cuda"
        found.append(
            f"{platform}: {vp_name} now assumes {now}, but the lock holds a CUDA {required} build"
        )
    if not found:
        found.append(
            f"{platform}: the dependencies, channels or virtual packages changed "
            f"({inputs.env_path.name} or {vp_name})"
        )
    return found


def find_conda_executable(environ: Mapping[str, str] | None = None) -> str:
    """conda, mamba or micromamba for ``conda-lock lock``; LockError at once where none exists."""
    environ = os.environ if environ is None else environ
    candidate = environ.get("CONDA_EXE")
    if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    path = environ.get("PATH")
    for name in CONDA_EXECUTABLES:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise LockError(
        "--solver conda-lock needs a conda, mamba or micromamba executable, and none is on PATH",
        hints=[
            "without one, conda-lock tries to download an installer (for over a minute, and "
            "offline it fails)",
            "leave out --solver to lock with the built-in rattler solver, which needs none",
            "or put conda, mamba or micromamba on PATH (or set CONDA_EXE)",
        ],
    )


def _conda_lock_command() -> list[str]:
    exe = shutil.which("conda-lock")
    if exe:
        return [exe]
    import importlib.util

    if importlib.util.find_spec("conda_lock") is not None:  # finds it without importing it
        return [sys.executable, "-m", "conda_lock"]
    raise LockError(
        "--solver conda-lock needs the conda-lock command, which is not installed",
        hints=["pip install 'conda-torch-plugin[conda-lock]'"],
    )


def _lock_with_conda_lock(
    inputs: LockInputs,
    conda_exe: str,
    *,
    channel_alias: str | None,
    explicit: bool,
    progress: Progress | None,
    started: float,
) -> LockResult:
    import subprocess
    import tempfile

    from conda_torch_plugin.channels import normalize_alias
    from conda_torch_plugin.lockfile import read_lockfile

    base = _conda_lock_command()
    target = inputs.lockfile
    target.parent.mkdir(parents=True, exist_ok=True)
    # conda-lock writes in place; let it write a copy so a failure leaves the lock untouched.
    with tempfile.TemporaryDirectory(prefix=".conda-lock-", dir=target.parent) as tmp:
        scratch = Path(tmp) / target.name
        if target.is_file():
            shutil.copy2(target, scratch)
        command = [
            *base,
            "lock",
            "--conda",
            conda_exe,
            "-f",
            str(inputs.env_path.resolve()),
            "--lockfile",
            str(scratch),
            "--kind",
            "lock",
            "--strip-auth",
        ]
        for platform in inputs.platforms:
            command += ["-p", platform]
        if inputs.vp_path is not None:
            command += ["--virtual-package-spec", str(inputs.vp_path.resolve())]
        env = dict(os.environ)
        if channel_alias:
            env["CONDA_CHANNEL_ALIAS"] = normalize_alias(channel_alias)
        if progress is not None:
            progress(f"Running conda-lock for {', '.join(inputs.platforms)}")
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise _conda_lock_failure(done.returncode, done.stderr or done.stdout)
        lock_model = read_lockfile(scratch)
        rendered: dict[Path, str] = {}
        if explicit:
            from conda_torch_plugin.explicit import render_explicit

            rendered = {
                explicit_path(target, p): render_explicit(lock_model, p)
                for p in lock_model.platforms
            }
        before = _read_text(target)
        after = _read_text(scratch)
        os.replace(scratch, target)  # same folder: atomic
        for path, text in rendered.items():
            _write_if_changed(path, text)
    return LockResult(
        lockfile=target,
        platforms=tuple(_summary(lock_model, p) for p in lock_model.platforms),
        content_hash=dict(lock_model.content_hash),
        written=before != after,
        explicit_files=tuple(rendered),
        solver="conda-lock",
        solve_seconds=None,
        seconds=time.perf_counter() - started,
    )


def _conda_lock_failure(status: int, output: str) -> LockError:
    """conda-lock's failure as one readable error: its final exception line, not its traceback."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    in_traceback = any(line.startswith("Traceback (most recent call last)") for line in lines)
    detail = lines[-1].strip() if in_traceback and lines else "\n".join(lines[-12:])
    hints = ["the lock file was left as it was"]
    if any(word in output for word in ("ConnectionError", "NameResolutionError", "Max retries")):
        hints.insert(
            0,
            "conda-lock needs network access (it downloads its PyPI name mapping, and conda "
            "if none is found); the built-in solver (--solver rattler) works offline",
        )
    return LockError(f"conda-lock failed with exit status {status}: {detail}", hints=hints)
