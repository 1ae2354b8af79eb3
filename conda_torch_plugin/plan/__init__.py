"""Choose a PyTorch release and build for a machine, and explain the choice.

The policy (README "How the plan is chosen"):

1. A CUDA build is compatible when its CUDA version <= the driver's maximum CUDA
   version; failing that, one of the same major whose minor-version-compatibility
   driver minimum is met, with a warning. With only the CUDA version known (no
   driver version), minor-version compatibility is allowed with a warning.
2. A build runs on a GPU when its arch list has a cubin of the same major and a
   minor <= the GPU's, or PTX for an arch <= the GPU's that is the newest code in
   the build (``compat.how_runs``). Every GPU must be covered. Under
   minor-version compatibility only cubins count (no PTX JIT).
3. Newest release satisfying the request (``--pytorch``, ``--python``), then
   its highest fully compatible CUDA variant; when a release has none, its
   minor-compatible variant closest to the driver's CUDA. Python defaults to the
   newest that release supports.
4. Source ``auto`` prefers the pytorch+nvidia channels, else conda-forge, saying
   why. ``--source pytorch`` never falls over: it fails with the reason.
5. No NVIDIA driver: a CPU build, said plainly. A GPU no build can serve: an
   error naming it, its compute capability, the driver and what would fix it.

``platforms[0]`` is the primary platform: it decides the release. The others
get the same release in the right variant: the same CUDA where published, else
the closest one below it (e.g. conda-forge win-64 12.8 next to linux 12.9), and
CPU/MPS on macOS.

``make_plan(request, machines)`` is pure: the machine (``machine.Machine``, from
``detect`` or from flags) is an input, nothing is probed and no environment
variable is read. The types live in ``plan.model``, the search for a fitting
release in ``plan.search`` and the per-platform variants, specs and explanation
in ``plan.assemble``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin import compat
from conda_torch_plugin.errors import UsageError
from conda_torch_plugin.plan.assemble import assemble
from conda_torch_plugin.plan.model import (
    Plan,
    PlanRequest,
    PlatformPlan,
    Rejection,
)
from conda_torch_plugin.plan.search import Search, primary_target
from conda_torch_plugin.recipes import PLATFORMS, load_recipes
from conda_torch_plugin.sources import BASE_CHANNELS, SOURCE_CHOICES

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.recipes import Recipes
    from conda_torch_plugin.sources.records import Record

__all__ = ["Plan", "PlanRequest", "PlatformPlan", "Rejection", "make_plan", "plan_from_channels"]


def make_plan(
    request: PlanRequest, machines: Machine | Sequence[Machine], recipes: Recipes | None = None
) -> Plan:
    """Apply the policy in this module's docstring; raise PlanError when nothing fits.

    With several machines the plan must run on each of them: the oldest driver
    decides the CUDA build and every GPU must be covered.
    """
    if recipes is None:
        recipes = load_recipes()
    machine = common_machine(machines)
    _check_request(request, machine)
    spec = compat.VersionSpec.parse(request.pytorch) if request.pytorch else None
    target = primary_target(request, machine, recipes)
    search = Search(request, target, spec, recipes)
    choice = search.run()
    return assemble(request, machine, target, choice, search, recipes)


def plan_from_channels(
    request: PlanRequest,
    machines: Machine | Sequence[Machine],
    *,
    channel_alias: str | None = None,
    custom_channels: Mapping[str, str] | None = None,
    offline: bool = False,
    read: Callable[..., tuple[Record, ...]] | None = None,
) -> Plan:
    """``make_plan`` over what the channels hold (``plan.candidates``), saying where the
    candidates came from, and whether another source has a newer release that fits."""
    from dataclasses import replace

    from conda_torch_plugin.plan.candidates import from_channels

    candidates = from_channels(
        request.platforms,
        channel_alias=channel_alias,
        custom_channels=custom_channels,
        offline=offline,
        read=read,
    )
    plan = make_plan(request, machines, candidates.recipes)
    return replace(
        plan,
        reasons=plan.reasons + candidates.notes,
        newer=newer_release(plan, request, machines, candidates.recipes),
    )


def newer_release(
    plan: Plan, request: PlanRequest, machines: Machine | Sequence[Machine], recipes: Recipes
) -> str | None:
    """One line when another source has a newer release that fits the same request."""
    from dataclasses import replace

    from conda_torch_plugin.errors import PlanError
    from conda_torch_plugin.sources import NAMES, source

    for other in NAMES:
        if other == plan.source:
            continue
        try:
            alternative = make_plan(replace(request, source=other), machines, recipes)
        except PlanError:
            continue
        if compat.version_tuple(alternative.pytorch) > compat.version_tuple(plan.pytorch):
            build = f"CUDA {alternative.cuda}" if alternative.cuda else alternative.compute.upper()
            return (
                f"{source(other).subject} has a newer release for this machine: pytorch "
                f"{alternative.pytorch} ({build}); --source {other} takes it"
            )
    return None


def common_machine(machines: Machine | Sequence[Machine]) -> Machine:
    """One machine standing for all of ``machines``: the oldest driver, every GPU."""
    from dataclasses import replace

    from conda_torch_plugin.machine.model import Machine

    if isinstance(machines, Machine):
        return machines
    if not machines:
        raise UsageError("no machine to plan for")
    first, *others = machines
    if not others:
        return first
    every = tuple(m for m in machines)
    gpus = tuple(g for m in every for g in m.gpus)
    return replace(
        first,
        cuda_version=_oldest([m.cuda_version for m in every]),
        driver_version=_oldest([m.driver_version for m in every]),
        gpus=tuple(replace(g, index=i) for i, g in enumerate(gpus)),
        notes=tuple(dict.fromkeys(n for m in every for n in m.notes)),
    )


def _oldest(versions: list[str | None]) -> str | None:
    """The lowest version; None (unknown, or no driver) when any is None."""
    known = [v for v in versions if v is not None]
    return min(known, key=compat.version_tuple) if len(known) == len(versions) else None


def _check_request(request: PlanRequest, machine: Machine) -> None:
    if not request.platforms:
        raise UsageError("no platform to plan for", hints=["pass --platform linux-64 (or another)"])
    for platform in request.platforms:
        if platform not in PLATFORMS:
            raise UsageError(
                f"unknown platform {platform!r}", hints=[f"one of {', '.join(PLATFORMS)}"]
            )
    if len(set(request.platforms)) != len(request.platforms):
        raise UsageError(f"a platform is named twice: {', '.join(request.platforms)}")
    if request.source not in SOURCE_CHOICES:
        raise UsageError(
            f"unknown source {request.source!r}", hints=[f"one of {', '.join(SOURCE_CHOICES)}"]
        )
    if request.base_channel not in BASE_CHANNELS:
        raise UsageError(
            f"unknown base channel {request.base_channel!r}",
            hints=[f"one of {', '.join(BASE_CHANNELS)}"],
        )
    for flag, value in (("--cuda", machine.cuda_version), ("--python", request.python)):
        if value is not None and not _is_xy(value):
            raise UsageError(f"{flag} {value!r} is not a version like 12.4")
    driver = machine.driver_version
    if driver is not None and not _is_version(driver):
        raise UsageError(f"--driver {driver!r} is not a driver version like 550.54.15")
    for cc in (g.compute_capability for g in machine.gpus if g.compute_capability):
        try:
            compat.parse_cc(cc)
        except ValueError:
            raise UsageError(f"--gpu-arch {cc!r} is not a compute capability like 8.6") from None
    if request.pytorch is not None:
        try:
            compat.VersionSpec.parse(request.pytorch)
        except ValueError as error:
            raise UsageError(f"--pytorch {error}") from None


def _is_xy(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def _is_version(value: str) -> bool:
    return all(p.isdigit() for p in value.split("."))
