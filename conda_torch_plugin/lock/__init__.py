"""Lock an environment for several platforms into one conda-lock.yml, or check a lock.

The steps of :func:`lock`, each of which can refuse before anything is written:

1. read environment.yml (selectors applied per platform) and, beside it or named,
   virtual-packages.yml (conda-lock's defaults, less ``__cuda``, where absent);
2. refuse a request for a CUDA torch build whose CUDA variant is not pinned: without
   the pin the solver's choice among variants depends on the order of records in
   repodata.json;
3. solve each platform with py-rattler (:mod:`conda_torch_plugin.lock.rattler`);
4. assert the invariants on what was solved: a CUDA plan holds no CPU build of
   pytorch/torchvision/torchaudio, and the three agree in flavour;
   then resolve each platform's ``pip:`` section with uv for the Python the conda
   solve locked, the conda side's Python packages held at their versions
   (:mod:`conda_torch_plugin.lock.pip_uv`);
5. build the lock (content hashes computed the way conda-lock computes them) and
   write it, then the ``--explicit`` files, atomically.

Defaults follow conda-lock: the lock is ``conda-lock.yml`` beside the environment
file and a ``virtual-packages.yml`` (or ``.yaml``) beside it is read without being
named. ``--solver conda-lock`` runs the ``conda-lock`` command instead (only where a
conda, mamba or micromamba executable exists: without one conda-lock tries to
download an installer for over a minute); the package never imports conda_lock.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.condalock import DEFAULT_LOCKFILE as DEFAULT_LOCKFILE
from conda_torch_plugin.errors import EnvFileError, LockError, UsageError
from conda_torch_plugin.lock.model import (
    CheckResult,
    LockInputs,
    LockResult,
    PlatformSummary,
    Progress,
    SolverBackend,
    relative_posix,
)
from conda_torch_plugin.lock.variant_guard import unsatisfied_specs

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockFile
    from conda_torch_plugin.network import NetworkSettings

__all__ = ["CheckResult", "LockInputs", "LockResult", "PlatformSummary", "check", "lock"]

VIRTUAL_PACKAGE_FILES = ("virtual-packages.yml", "virtual-packages.yaml")
SUMMARY_PACKAGES = ("pytorch", "torchvision", "torchaudio", "pytorch-cuda", "cuda-version")


def _rattler() -> SolverBackend:
    from conda_torch_plugin.lock.rattler import RattlerBackend

    return RattlerBackend()


def _conda_lock() -> SolverBackend:
    from conda_torch_plugin.lock.conda_lock_solver import CondaLockBackend

    return CondaLockBackend()


# --solver NAME -> its backend (each imported only when chosen).
BACKENDS: dict[str, Callable[[], SolverBackend]] = {"rattler": _rattler, "conda-lock": _conda_lock}
SOLVERS = tuple(BACKENDS)


def solver_backend(name: str) -> SolverBackend:
    """The backend for ``--solver name`` (UsageError naming the known ones)."""
    if name not in BACKENDS:
        raise UsageError(f"unknown solver {name!r}", hints=[f"use one of: {', '.join(SOLVERS)}"])
    return BACKENDS[name]()


def default_lockfile(env_path: str | os.PathLike[str]) -> Path:
    """conda-lock.yml beside environment.yml; ``STEM.conda-lock.yml`` beside ``STEM.yml``."""
    from conda_torch_plugin.condalock import lockfile_for

    return lockfile_for(env_path)


def find_virtual_package_spec(env_path: str | os.PathLike[str]) -> Path | None:
    """The environment file's virtual-packages.yml (or .yaml), if there is one:
    ``virtual-packages.yml`` beside environment.yml, ``STEM.virtual-packages.yml`` beside
    ``STEM.yml``."""
    for path in _virtual_package_files(env_path):
        if path.exists():  # a FIFO or folder there is refused when read
            return path
    return None


def _virtual_package_files(env_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    from conda_torch_plugin.condalock import virtual_packages_for_env

    yml = virtual_packages_for_env(env_path)
    return yml, yml.with_name(yml.name[: -len(".yml")] + ".yaml")


def read_inputs(
    env_path: str | os.PathLike[str],
    *,
    platforms: Sequence[str] | None = None,
    lockfile: str | os.PathLike[str] | None = None,
    virtual_package_spec: str | os.PathLike[str] | None = None,
) -> LockInputs:
    from conda_torch_plugin.condalock.envspec import read_environment, read_virtual_packages
    from conda_torch_plugin.inputs import check_regular_file
    from conda_torch_plugin.lock.rattler import check_platforms, solve_virtual_packages

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
        given = Path(virtual_package_spec)
        check_regular_file(
            given,
            what="virtual package spec",
            error=EnvFileError,
            missing=f"virtual package spec {given} not found",
            missing_hints=[
                "write one with `conda torch-env write`, or leave out --virtual-package-spec"
            ],
        )
        vp_path: Path | None = given
    else:
        vp_path = find_virtual_package_spec(env)
    vp_spec = read_virtual_packages(vp_path) if vp_path is not None else None
    vps = {p: solve_virtual_packages(p, vp_spec) for p in chosen}
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
        words += ["-f", relative_posix(env, base)]
    if lock.name != default_lockfile(env).name:
        words += ["--lockfile", lock.name]
    for platform in platforms or ():
        words += ["--platform", platform]
    if virtual_package_spec is not None:
        vp = Path(virtual_package_spec)
        defaults = {p.resolve() for p in _virtual_package_files(env)}
        if vp.resolve() not in defaults:
            words += ["--virtual-package-spec", relative_posix(vp, base)]
    if channel_alias:
        words += ["--channel-alias", strip_credentials(channel_alias)]
    if solver != "rattler":
        words += ["--solver", solver]
    if explicit:
        words.append("--explicit")
    import shlex

    return shlex.join(words)


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
    network: NetworkSettings | None = None,
) -> LockResult:
    """Solve the environment for each platform and write the lock; nothing is written on failure.

    ``network``: the settings the repodata fetches honour (else the environment's).
    """
    started = time.perf_counter()
    backend = solver_backend(solver)
    backend.prepare()
    inputs = read_inputs(
        env_path,
        platforms=platforms,
        lockfile=lockfile,
        virtual_package_spec=virtual_package_spec,
    )
    if network is not None:
        inputs = dataclasses.replace(inputs, network=network)
    locked = backend.solve(
        inputs,
        channel_alias=channel_alias,
        custom_channels=custom_channels,
        progress=progress,
        command=command,
    )
    if progress is not None:
        progress(f"Writing {inputs.lockfile}")
    written, explicit_files = _write_outputs(locked.model, locked.text, inputs.lockfile, explicit)
    return LockResult(
        lockfile=inputs.lockfile,
        platforms=tuple(_summary(locked.model, p) for p in locked.model.platforms),
        content_hash=dict(locked.model.content_hash),
        written=written,
        explicit_files=explicit_files,
        solver=backend.name,
        solve_seconds=locked.solve_seconds,
        seconds=time.perf_counter() - started,
    )


def _write_outputs(
    lock_model: LockFile, text: str, path: Path, explicit: bool
) -> tuple[bool, tuple[Path, ...]]:
    """Write the lock and, with ``explicit``, one conda-<platform>.lock per platform.

    Every text is rendered before the first write, so a failure while rendering
    leaves all files as they were; each write is atomic. A file that already holds
    the same text is not rewritten. Returns (lock written?, explicit files).
    """
    from conda_torch_plugin.condalock.explicit import render_explicit

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
    from conda_torch_plugin.condalock.content_hash import content_hashes
    from conda_torch_plugin.condalock.lockfile import read_lockfile

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
