"""The CUDA variant of a torch environment: pinned before solving, asserted after.

Without a pin, which CUDA variant the solver picks depends on the order of records
in repodata.json (rattler-notes: cu118 with ``__cuda=12.4`` for one file, cu124 for
a shuffled copy). So, before solving, :func:`check_variant_pinned` refuses a
request for a CUDA torch build that leaves the variant open; after solving,
:func:`check_invariants` refuses a solution that breaks what a torch lock must
hold (a CUDA plan with a CPU build in it, torch packages of different flavours),
whatever the channel metadata did. :func:`unsatisfied_specs` says which specs a
lock no longer satisfies, for ``lock --check``.

Specs are parsed with rattler's non-strict ``MatchSpec`` (imported inside the
functions); flavours come from :mod:`conda_torch_plugin.flavour`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import LockError
from conda_torch_plugin.flavour import major_minor, torch_flavour, version_key
from conda_torch_plugin.sources import source_named_in
from conda_torch_plugin.sources.base import RequestedSpec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockedPackage
    from conda_torch_plugin.sources.base import PyTorchSource

TORCH_REQUESTS = ("pytorch", "torchvision", "torchaudio", "pytorch-gpu", "pytorch-cpu")
FLAVOURED = ("pytorch", "torchvision", "torchaudio", "libtorch")


def _parse_specs(specs: Sequence[str]) -> list[RequestedSpec]:
    from rattler import MatchSpec

    out = []
    for text in specs:
        channel, sep, rest = text.strip().partition("::")
        body = rest if sep else channel
        try:
            parsed = MatchSpec(body, strict=False)
        except Exception:  # reported with its line by the solver step
            continue
        if parsed.name is None:
            continue
        version = str(parsed.version) if parsed.version is not None else None
        build = str(parsed.build) if parsed.build is not None else None
        out.append(
            RequestedSpec(text, parsed.name.normalized, version, build, channel if sep else None)
        )
    return out


def requested_from(channels: Sequence[str], specs: Sequence[RequestedSpec]) -> PyTorchSource:
    """The source whose variant rules apply: the first (in the registry's order) whose
    channel the environment names, in its channels or a ``channel::`` spec."""
    names = [c.rstrip("/").rsplit("/", 1)[-1] for c in channels]
    names += [s.channel.rstrip("/").rsplit("/", 1)[-1] for s in specs if s.channel]
    return source_named_in(names)


def check_variant_pinned(
    channels: Sequence[str],
    platform: str,
    specs: Sequence[str],
    virtual_packages: Mapping[str, str],
    *,
    source: str = "environment.yml",
) -> None:
    """Refuse a CUDA torch request whose CUDA variant the specs leave to the solver.

    pytorch channel (linux/win): ``pytorch-cuda=X.Y`` or ``cpuonly`` (or a build
    string naming it) must be there, else the ``pytorch-mutex`` build number
    picks a CUDA build of whatever variant comes first. conda-forge: a CUDA build
    (``pytorch=*=cuda*``, ``pytorch-gpu``, or plain ``pytorch`` where ``__cuda`` is
    assumed) needs ``cuda-version=X.Y``.
    """
    parsed = _parse_specs(specs)
    by_name = {s.name: s for s in parsed}
    if not any(n in by_name for n in TORCH_REQUESTS):
        return
    requested_from(channels, parsed).check_variant_pinned(
        by_name, platform, virtual_packages, source=source
    )


def _expected_compute(specs: Sequence[RequestedSpec]) -> str | None:
    names = {s.name: s for s in specs}
    build = names["pytorch"].build if "pytorch" in names else None
    if "cpuonly" in names or "pytorch-cpu" in names or (build or "").startswith("cpu"):
        return "cpu"
    if names.keys() & {"pytorch-cuda", "cuda-version", "pytorch-gpu"}:
        return "cuda"
    if build and re.search(r"cuda", build):
        return "cuda"
    return None


def check_invariants(
    platform: str,
    specs: Sequence[str],
    records: Sequence[Any],
    virtual_packages: Mapping[str, str],
) -> None:
    """Fail loudly if a solution breaks what a torch lock must hold.

    A CUDA plan (``pytorch-cuda`` / ``cuda-version`` / a ``cuda*`` build pinned) holds
    no CPU build of pytorch, torchvision, torchaudio or libtorch; the ones present
    agree in flavour and CUDA version, with ``pytorch-mutex`` and with the
    ``pytorch-cuda`` / ``cuda-version`` the solution holds.
    """
    by_name = {r.name.normalized: r for r in records}
    flavours = {
        name: torch_flavour(name, str(r.version), str(r.build), list(r.depends), platform=platform)
        for name in FLAVOURED
        if (r := by_name.get(name)) is not None
    }
    if not flavours:
        return

    def label(name: str) -> str:
        r = by_name[name]
        return f"{name} {r.version} {str(r.build)} ({flavours[name].label})"

    def fail(what: str, hints: Sequence[str] = ()) -> LockError:
        return LockError(
            f"refusing to write the lock: the solution for {platform} {what}",
            hints=[
                *hints,
                "this is a bug in the channel metadata or in conda torch-env; "
                "please report it with the environment file",
            ],
        )

    expected = _expected_compute(_parse_specs(specs))
    if expected == "cuda":
        cpu = [n for n, f in flavours.items() if f.compute in ("cpu", "mps")]
        if cpu:
            hints = []
            if "__cuda" not in virtual_packages:
                hints.append(
                    f"the lock assumes no __cuda on {platform}; add __cuda to "
                    "virtual-packages.yml (CUDA builds depend on it)"
                )
            raise fail(
                "pins a CUDA variant but holds a CPU build: " + ", ".join(label(n) for n in cpu),
                hints,
            )
    known = {n: f for n, f in flavours.items() if f.compute != "unknown"}
    computes = {"cpu" if f.compute == "mps" else f.compute for f in known.values()}
    cudas = {f.cuda for f in known.values() if f.compute == "cuda" and f.cuda}
    if len(computes) > 1 or len(cudas) > 1:
        raise fail("mixes flavours: " + ", ".join(label(n) for n in known))
    mutex = by_name.get("pytorch-mutex")
    mutex_build = str(mutex.build) if mutex is not None else None
    if mutex_build in ("cpu", "cuda") and computes and {mutex_build} != computes:
        raise fail(f"holds pytorch-mutex {mutex_build} with " + ", ".join(map(label, known)))
    if cudas:
        (cuda,) = cudas
        runtime = by_name.get("pytorch-cuda")
        if runtime is not None and major_minor(str(runtime.version)) != cuda:
            raise fail(f"holds pytorch-cuda {runtime.version} with " + ", ".join(map(label, known)))
        pin = by_name.get("cuda-version")
        if pin is not None:
            have = version_key(str(pin.version))[:2]
            need = version_key(cuda)[:2]
            if have[:1] != need[:1] or have < need:
                raise fail(f"holds cuda-version {pin.version} with " + ", ".join(map(label, known)))


def unsatisfied_specs(
    specs: Sequence[str], packages: Sequence[LockedPackage]
) -> list[tuple[str, str]]:
    """(spec, what the lock holds instead) for every spec the locked packages do not satisfy."""
    from rattler import MatchSpec, PackageRecord
    from rattler.package import BuildString

    by_name = {p.name: p for p in packages}
    out = []
    for spec in _parse_specs(specs):
        if spec.name.startswith("__"):
            continue
        held = by_name.get(spec.name)
        if held is None:
            out.append((spec.text, f"no {spec.name}"))
            continue
        record = PackageRecord(
            name=held.name,
            version=held.version,
            build=BuildString(held.build),
            build_number=_build_number(held.build),
            subdir=held.platform,
        )
        body = spec.text.partition("::")[2] if spec.channel else spec.text
        if not MatchSpec(body, strict=False).matches(record):
            out.append((spec.text, f"{held.name} {held.version} {held.build}"))
    return out


def _build_number(build: str) -> int:
    match = re.search(r"_(\d+)$", build)
    return int(match[1]) if match else 0
