"""Solve an environment for each platform with py-rattler, offline-capable.

What the solver sees is spelled out, never guessed from the host:

- the subdirs: the target platform plus ``noarch``;
- the virtual packages: from virtual-packages.yml for that platform, else the
  defaults conda-lock assumes (``__unix``/``__linux``/``__glibc``/``__osx``/``__win``/
  ``__archspec``) *without* ``__cuda``: rattler uses no virtual package at all
  unless it is given one, and does not read ``CONDA_OVERRIDE_CUDA``;
- match specs parsed non-strictly (``MatchSpec`` objects): real pytorch build strings
  contain dots (``py3.12_cuda12.4_cudnn9.1.0_0``) and ``pytorch=2.13.0=cuda*`` must
  work; a ``channel::`` prefix resolves through the same channel alias as the
  channel list.

Channel priority is strict: a name found in a channel is taken from the first
channel that has it and no other, so ``pytorch`` from the pytorch channel is never
mixed with conda-forge's. The platforms are solved concurrently, sharing one
repodata gateway. Errors from rattler become :class:`LockError` naming the
platform, the channel or the unsatisfiable constraint. ``rattler`` and
``asyncio`` are imported inside the functions.

py-rattler's repodata cache records channel URLs in plain text, so when a channel
is read with credentials (``user:password@``, ``/t/TOKEN/``) the solve uses a
private cache folder that is removed afterwards.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from conda_torch_plugin import interrupts
from conda_torch_plugin.channels import (
    ChannelSource,
    channel_hints,
    check_local_channels,
    redact,
    resolve_channel,
)
from conda_torch_plugin.errors import LockError, UsageError
from conda_torch_plugin.lock.model import Locked, relative_posix

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rattler import RepoDataRecord

    from conda_torch_plugin.condalock.envspec import VirtualPackageSpec
    from conda_torch_plugin.condalock.lockfile import LockedPackage
    from conda_torch_plugin.lock.model import LockInputs, Progress, SolverName
    from conda_torch_plugin.network import NetworkSettings


_ARCH = {
    "64": "x86_64",
    "aarch64": "aarch64",
    "arm64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "armv7l": "armv7l",
}
# Explanations longer than this are cut: the top of rattler's tree names the conflict.
MAX_EXPLANATION_LINES = 30


def check_platforms(platforms: Sequence[str]) -> tuple[str, ...]:
    """The platforms, validated (UsageError naming the known ones) and without duplicates."""
    from conda_torch_plugin.condalock.envspec import KNOWN_PLATFORMS

    out: list[str] = []
    for platform in platforms:
        if platform not in KNOWN_PLATFORMS:
            raise UsageError(
                f"unknown platform {platform!r}",
                hints=[f"use one of: {', '.join(KNOWN_PLATFORMS)}"],
            )
        if platform not in out:
            out.append(platform)
    if not out:
        raise UsageError("no platform to lock", hints=["pass --platform linux-64 (repeatable)"])
    return tuple(out)


def default_virtual_packages(platform: str) -> dict[str, str]:
    """conda-lock's default virtual packages for a platform, less ``__cuda``.

    Values are ``"VERSION"`` or ``"VERSION BUILD"`` as in virtual-packages.yml. They
    come from conda-lock's defaults (``envspec.default_virtual_packages``); a
    platform conda-lock does not list gets those of its operating system with its
    own ``__archspec``.
    """
    defaults = _conda_lock_defaults()
    os_name, _, arch = platform.partition("-")
    same_os = [p for p in defaults.subdirs if p.partition("-")[0] == os_name]
    given = defaults.for_platform(platform) or (
        defaults.for_platform(same_os[0]) if same_os else {}
    )
    if not given:
        return {}
    packages = {name: spec for name, spec in given.items() if name != "__cuda"}
    packages["__archspec"] = f"1 {_ARCH.get(arch, arch)}"
    return packages


@functools.cache
def _conda_lock_defaults() -> VirtualPackageSpec:
    from conda_torch_plugin.condalock.envspec import default_virtual_packages as defaults

    return defaults()


def solve_virtual_packages(platform: str, spec: VirtualPackageSpec | None) -> dict[str, str]:
    """The virtual packages to solve ``platform`` with.

    A virtual-packages.yml entry for the platform is used as written (as conda-lock
    does: it replaces the defaults wholesale); a platform it does not list, or no
    file at all, gets :func:`default_virtual_packages`.
    """
    if spec is not None:
        given = dict(spec.for_platform(platform) or {})
        if given:
            return {str(k): str(v) for k, v in given.items()}
    return default_virtual_packages(platform)


@dataclass(frozen=True)
class PlatformSolution:
    platform: str
    records: tuple[RepoDataRecord, ...]  # sorted by package name
    virtual_packages: dict[str, str]
    seconds: float  # time inside rattler's solve() for this platform (they run concurrently)


@dataclass(frozen=True)
class SolveResult:
    channels: tuple[ChannelSource, ...]
    platforms: dict[str, PlatformSolution]
    solve_seconds: float  # wall time while rattler's solve calls ran: the floor for a lock


def solve_platforms(
    channels: Sequence[ChannelSource],
    specs: Mapping[str, Sequence[str]],
    virtual_packages: Mapping[str, Mapping[str, str]],
    *,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    source: str = "environment.yml",
    network: NetworkSettings | None = None,
) -> SolveResult:
    """Solve ``specs[platform]`` for every platform against ``channels`` (priority order).

    ``source`` names the environment file in messages. Raises :class:`LockError`.
    """
    platforms = tuple(specs)
    check_local_channels(channels, platforms)
    parsed = {
        platform: [_match_spec(s, channel_alias, custom_channels, source) for s in platform_specs]
        for platform, platform_specs in specs.items()
    }
    if all(c.url == c.public_url for c in channels):
        return interrupts.run(
            _solve_all(
                tuple(channels), parsed, virtual_packages, progress=progress, network=network
            )
        )
    # py-rattler's repodata cache records each channel's URL in plain text: a channel
    # read with credentials gets a private cache, removed after the solve.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="conda-torch-env-repodata-") as cache:
        return interrupts.run(
            _solve_all(
                tuple(channels),
                parsed,
                virtual_packages,
                progress=progress,
                cache_dir=cache,
                network=network,
            )
        )


async def _solve_all(
    channels: tuple[ChannelSource, ...],
    specs: Mapping[str, list[Any]],
    virtual_packages: Mapping[str, Mapping[str, str]],
    *,
    progress: Progress | None,
    cache_dir: str | None = None,
    network: NetworkSettings | None = None,
) -> SolveResult:
    import asyncio

    from rattler import Channel, solve

    from conda_torch_plugin.network import from_environ
    from conda_torch_plugin.network import gateway as make_gateway

    # One gateway for every platform: noarch repodata is read once. The platforms are
    # solved concurrently (rattler solves off the event loop, without the GIL); each
    # solve is independent, so the result is the same as one after the other.
    gateway = make_gateway(network or from_environ(), Path(cache_dir) if cache_dir else None)
    sources = [Channel(c.url) for c in channels]
    vps = {p: dict(virtual_packages.get(p, {})) for p in specs}
    generic = {
        p: [_virtual_package(name, value) for name, value in sorted(vps[p].items())] for p in specs
    }

    async def one(platform: str) -> tuple[list[Any], float]:
        started = time.perf_counter()
        records = await solve(
            sources,
            specs[platform],
            gateway=gateway,
            platforms=[platform, "noarch"],  # type: ignore[list-item]  # checked by check_platforms
            virtual_packages=generic[platform],
            channel_relations="disabled",  # solve against exactly the listed channels
        )
        seconds = time.perf_counter() - started
        if progress is not None:
            progress(f"Solved {platform}: {len(records)} packages in {seconds:.2f} s")
        return records, seconds

    if progress is not None:
        progress(f"Solving {', '.join(specs)}")
    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(p) for p in specs), return_exceptions=True)
    wall = time.perf_counter() - started
    failed = [(p, o) for p, o in zip(specs, outcomes, strict=True) if isinstance(o, BaseException)]
    if failed:
        platform, error = _most_telling(failed)
        raise _lock_error(error, platform, channels, vps[platform]) from None
    solutions: dict[str, PlatformSolution] = {}
    for platform, outcome in zip(specs, outcomes, strict=True):
        records, seconds = cast("tuple[list[Any], float]", outcome)  # failures raised above
        ordered = tuple(sorted(records, key=lambda r: (r.name.normalized, r.subdir)))
        solutions[platform] = PlatformSolution(platform, ordered, vps[platform], seconds)
    return SolveResult(channels, solutions, wall)


def _most_telling(failed: Sequence[tuple[str, BaseException]]) -> tuple[str, BaseException]:
    """The failed platform whose error says most: the first that is not a coalesced wait.

    The platforms share one gateway, which fetches a subdir (noarch, a channel's
    index) once for all of them; the platforms that waited on a fetch that failed
    only get "a coalesced request failed ... other error", and which platform did
    the fetch depends on timing. The one that did has the cause (refused, offline).
    """
    for platform, error in failed:
        if _COALESCED not in str(error):
            return platform, error
    return failed[0]


_COALESCED = "coalesced request failed"


def _virtual_package(name: str, value: str) -> Any:
    from rattler import GenericVirtualPackage, PackageName, Version
    from rattler.package import BuildString

    version, _, build = str(value).strip().partition(" ")
    try:
        return GenericVirtualPackage(
            PackageName(name), Version(version or "0"), BuildString(build.strip() or "0")
        )
    except Exception as error:  # InvalidVersionError, InvalidPackageNameError
        raise LockError(
            f"virtual package {name}={value!r} is not valid: {_first_line(error)}",
            hints=['write versions like "12.4", or "1 x86_64" for __archspec'],
        ) from None


def _match_spec(
    spec: str,
    channel_alias: str | None,
    custom_channels: Mapping[str, str] | None,
    source: str,
) -> Any:
    from rattler import MatchSpec

    text = spec.strip()
    channel, sep, rest = text.partition("::")
    if sep and "://" not in channel:
        # "pytorch::pytorch=2.5.1" must read the same mirror as the channel list does.
        resolved = resolve_channel(channel, channel_alias, custom_channels)
        if len(resolved) == 1:
            text = f"{resolved[0].url}::{rest}"
    try:
        return MatchSpec(text, strict=False)
    except Exception as error:  # InvalidMatchSpecError
        raise LockError(
            f"{spec!r} in {source} is not a valid package spec: {_first_line(error)}",
            hints=["write specs as NAME, NAME=VERSION or NAME=VERSION=BUILD (e.g. pytorch=2.5.1)"],
        ) from None


def _lock_error(
    error: BaseException,
    platform: str,
    channels: Sequence[ChannelSource],
    virtual_packages: Mapping[str, str],
) -> LockError:
    from rattler.exceptions import (
        FetchRepoDataError,
        GatewayError,
        InvalidChannelError,
        IoError,
        SolverError,
    )

    message = redact(str(error), channels)
    if isinstance(error, SolverError):
        return _unsolvable(message, platform, virtual_packages)
    if isinstance(error, GatewayError) and "no usable repodata cache" in message:
        where = message.rsplit(" for ", 1)[-1].strip() if " for " in message else "a channel"
        return LockError(
            f"offline mode: no cached repodata for {where} ({platform}); nothing was written",
            hints=[
                "run the command once online (without --offline, or with conda's "
                "offline: false) so the repodata is cached"
            ],
        )
    if isinstance(error, (GatewayError, FetchRepoDataError, InvalidChannelError, IoError)):
        return _unreadable(message, platform, channels)
    if type(error).__module__ == "pyo3_runtime":  # a Rust panic: a bug in rattler, not the input
        return LockError(f"rattler failed while solving {platform}: {_first_line(message)}")
    raise error


def _unsolvable(message: str, platform: str, virtual_packages: Mapping[str, str]) -> LockError:
    lines = [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Cannot solve the request because of:"):
        head = lines[0].split(":", 1)[1].strip()
        lines = ([head] if head else []) + lines[1:]
    missing = re.search(r"No candidates were found for (.+?)\.?$", message, re.MULTILINE)
    conflicting = _top_level_conflict(lines)
    if missing:
        summary = f"nothing in the channels provides {missing[1].strip()} for {platform}"
    elif len(conflicting) > 1:
        summary = f"{' and '.join(conflicting)} cannot be installed together"
    else:
        summary = "the specs conflict"
    if len(lines) > MAX_EXPLANATION_LINES:
        cut = len(lines) - MAX_EXPLANATION_LINES
        lines = lines[:MAX_EXPLANATION_LINES] + [f"... ({cut} more lines)"]
    explanation = "\n".join(f"    {line}" for line in lines)
    hints = []
    if "__cuda" in message:
        cuda = virtual_packages.get("__cuda")
        assumed = f"__cuda={cuda}" if cuda else "no __cuda"
        hints.append(
            f"the lock assumes {assumed} on {platform} (virtual-packages.yml); a CUDA build "
            "needs __cuda >= its CUDA version: fix the file, or run `conda torch-env write` again"
        )
    hints.append(
        "check the versions pinned in the environment file; `conda torch-env plan` "
        "shows which release and CUDA variant fit"
    )
    return LockError(
        f"the environment cannot be solved for {platform}: {summary}:\n{explanation}", hints=hints
    )


def _top_level_conflict(lines: Sequence[str]) -> list[str]:
    """The requirements at the top of rattler's explanation tree, e.g. ["pytorch-cuda 12.4.*",
    "__cuda 12.1"] (a virtual package shown with its only option)."""
    items: list[str] = []
    for index, line in enumerate(lines):
        if not line.startswith(("├─ ", "└─ ")):
            continue
        text = (
            re.split(
                r" (?:can be installed|cannot be installed|would require|, for which)",
                line[3:],
                maxsplit=1,
            )[0]
            .strip()
            .rstrip(",")
        )
        following = lines[index + 1] if index + 1 < len(lines) else ""
        option = re.match(r"^[│ ]\s+└─ (__\S+ \S+)$", following)
        if text.endswith(" *") and option:
            text = option[1]
        items.append(text)
    return items


def _unreadable(message: str, platform: str, channels: Sequence[ChannelSource]) -> LockError:
    culprit = next((c for c in channels if c.public_url in message or c.url in message), None)
    if culprit is None:
        # rattler prints base URLs with a trailing slash; match on that too.
        culprit = next((c for c in channels if f"{c.public_url}/" in message), None)
    detail = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    unreachable = _network_cause(message)
    if unreachable is not None:
        return _unreachable(unreachable, platform, culprit, channels)
    if culprit is not None:
        missing = "could not find subdir" in message
        what = "does not exist" if missing else "cannot be read"
        return LockError(
            f"channel {culprit.name!r} ({culprit.public_url}) {what} (while solving {platform}): "
            f"{detail}",
            hints=channel_hints(culprit),
        )
    urls = ", ".join(c.public_url for c in channels)
    return LockError(
        f"the channels cannot be read for {platform} ({urls}): {detail}",
        hints=[
            "check that every channel URL is reachable and holds valid SUBDIR/repodata.json files",
            "check --channel-alias",
        ],
    )


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# What rattler's "Caused by:" chain says when no answer came back at all.
_NETWORK_CAUSES = (
    ("dns error", "the host name cannot be resolved"),
    ("failed to lookup address", "the host name cannot be resolved"),
    ("Connection refused", "the connection was refused"),
    ("timed out", "the connection timed out"),
    ("operation timed out", "the connection timed out"),
    ("tcp connect error", "no connection could be made"),
    ("client error (Connect)", "no connection could be made"),
    ("certificate", "the TLS certificate was not accepted"),
)


def _network_cause(message: str) -> str | None:
    for needle, cause in _NETWORK_CAUSES:
        if needle in message:
            return cause
    return None


def _unreachable(
    cause: str, platform: str, culprit: ChannelSource | None, channels: Sequence[ChannelSource]
) -> LockError:
    """A channel host that did not answer: name the host and the likely fix, not every URL."""
    from urllib.parse import urlsplit

    from conda_torch_plugin.channels import DEFAULT_CHANNEL_ALIAS

    remote = [c for c in channels if not c.is_local]
    hosts = sorted({urlsplit(c.public_url).netloc for c in remote}) or ["the channel host"]
    host = urlsplit(culprit.public_url).netloc if culprit is not None else hosts[0]
    default_host = urlsplit(DEFAULT_CHANNEL_ALIAS).netloc
    if host == default_host or culprit is None or culprit.name == culprit.url:
        hint = (
            "check the network or proxy, or use --channel-alias URL to read the channels "
            "from a mirror (or a local file:// copy)"
        )
    else:
        hint = (
            f"the channels are read from the mirror {host}: check that it is up and "
            "reachable from here (network, proxy), or use another --channel-alias"
        )
    return LockError(f"cannot reach {host} (while solving {platform}): {cause}", hints=[hint])


class RattlerBackend:
    """The built-in solver: every platform solved with py-rattler, offline-capable."""

    name: SolverName = "rattler"

    def prepare(self) -> None:
        return None

    def solve(
        self,
        inputs: LockInputs,
        *,
        channel_alias: str | None,
        custom_channels: Mapping[str, str] | None,
        progress: Progress | None,
        command: str,
    ) -> Locked:
        return _lock(inputs, channel_alias, custom_channels, progress, command)


def _lock(
    inputs: LockInputs,
    channel_alias: str | None,
    custom_channels: Mapping[str, str] | None,
    progress: Progress | None,
    command: str,
) -> Locked:
    from conda_torch_plugin.channels import resolve_channels
    from conda_torch_plugin.condalock.content_hash import content_hashes
    from conda_torch_plugin.condalock.lockfile import (
        LockFile,
        locked_package_from_record,
        render_lockfile,
    )
    from conda_torch_plugin.lock.variant_guard import check_invariants, check_variant_pinned

    spec = inputs.spec
    source = inputs.env_path.name
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
        network=inputs.network,
    )
    packages: list[LockedPackage] = []
    for platform in inputs.platforms:
        solved = solution.platforms[platform]
        check_invariants(platform, specs[platform], solved.records, solved.virtual_packages)
        packages.extend(locked_package_from_record(r, platform) for r in solved.records)
    if spec.skipped or any(spec.pip.get(p) for p in inputs.platforms):
        from conda_torch_plugin.lock.pip_uv import lock_pip_section

        by_platform = {p: [k for k in packages if k.platform == p] for p in inputs.platforms}
        packages += lock_pip_section(
            spec, inputs.platforms, by_platform, inputs.virtual_packages, progress=progress
        )
    lock_model = LockFile(
        platforms=inputs.platforms,
        channels=tuple(c.public_url for c in channels),
        content_hash={p: hashes[p] for p in inputs.platforms},
        sources=(relative_posix(inputs.env_path, inputs.lockfile.resolve().parent),),
        packages=tuple(packages),
    )
    return Locked(lock_model, render_lockfile(lock_model, command=command), solution.solve_seconds)
