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

This module holds the request and plan types and validates the request; the
search for a fitting release lives in ``_plan_search`` and the per-platform
variants, specs and explanation in ``_plan_assembly``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conda_torch_plugin import compat
from conda_torch_plugin.errors import UsageError

if TYPE_CHECKING:
    from conda_torch_plugin.recipes import Recipes

SOURCES = ("auto", "pytorch", "conda-forge")
BASE_CHANNELS = ("conda-forge", "defaults")


@dataclass(frozen=True)
class PlanRequest:
    """What to plan for. ``platforms[0]`` is the primary platform (usually this machine's)."""

    platforms: tuple[str, ...]
    cuda: str | None  # the driver's maximum CUDA version; None = no usable driver
    driver: str | None = None
    gpu_archs: tuple[str, ...] = ()  # compute capabilities to cover, "8.6"
    gpu_names: tuple[str, ...] = ()  # same order as gpu_archs, for messages
    cpu: bool = False
    pytorch: str | None = None  # "2.2", "2.5.1", ">=2.3"
    python: str | None = None  # "3.11"
    source: str = "auto"  # "auto" | "pytorch" | "conda-forge"
    base_channel: str = "conda-forge"  # or "defaults"
    notes: tuple[str, ...] = ()  # from detection, carried into the explanation


@dataclass(frozen=True)
class Rejection:
    candidate: str  # "pytorch 2.5.1 cuda 12.4 (pytorch channel)"
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"candidate": self.candidate, "reason": self.reason}


@dataclass(frozen=True)
class PlatformPlan:
    """The variant chosen for one platform of the environment."""

    platform: str
    compute: str  # "cuda" | "cpu" | "mps"
    cuda: str | None
    specs: tuple[str, ...]  # dependency lines for this platform
    virtual_packages: dict[str, str] = field(default_factory=dict)  # {"__cuda": "12.4", ...}

    def to_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "compute": self.compute,
            "cuda": self.cuda,
            "specs": list(self.specs),
            "virtual_packages": dict(self.virtual_packages),
        }


@dataclass(frozen=True)
class Plan:
    source: str  # "pytorch" | "conda-forge"
    channels: tuple[str, ...]  # priority order
    pytorch: str
    torchvision: str | None
    torchaudio: str | None
    python: str
    compute: str  # of the primary platform
    cuda: str | None  # of the primary platform
    specs: tuple[str, ...]  # of the primary platform
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    platforms: tuple[PlatformPlan, ...]
    sources: tuple[str, ...] = ()  # recipe source keys behind the choice ("S2", "S8", ...)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "channels": list(self.channels),
            "pytorch": self.pytorch,
            "torchvision": self.torchvision,
            "torchaudio": self.torchaudio,
            "python": self.python,
            "compute": self.compute,
            "cuda": self.cuda,
            "specs": list(self.specs),
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "rejected": [r.to_dict() for r in self.rejected],
            "platforms": [p.to_dict() for p in self.platforms],
            "sources": list(self.sources),
        }


def request_for_machine(
    *,
    cuda: str | None,
    cpu: bool,
    gpu_archs: tuple[str, ...],
    driver: str | None,
    platforms: tuple[str, ...],
    pytorch: str | None,
    python: str | None,
    source: str,
    base_channel: str,
) -> PlanRequest:
    """A PlanRequest for this machine, with the flags winning over detection.

    Detection runs unless ``--cpu`` is given or the flags describe the machine
    completely (``--cuda`` and ``--gpu-arch``). ``--gpu-arch`` replaces the
    detected GPUs; ``--driver`` the detected driver version.
    """
    if not platforms:
        here = compat.current_platform()
        if here is None:
            raise UsageError(
                "this machine's conda platform is not one PyTorch is built for",
                hints=["name the target with --platform (linux-64, win-64, osx-arm64, ...)"],
            )
        platforms = (here,)
    names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    if not cpu and not (cuda and gpu_archs):
        from conda_torch_plugin.machine.detect import detect

        found = detect(cuda_override=cuda)
        notes = tuple(found.notes)
        if found.source == "override" and found.cuda_version is None and cuda is None:
            # CONDA_OVERRIDE_CUDA="" means "no CUDA", as conda reads it: plan without the
            # driver and GPUs this machine has.
            notes += ("CONDA_OVERRIDE_CUDA is empty: planning as if there were no NVIDIA driver",)
        else:
            cuda = cuda or found.cuda_version
            driver = driver or found.driver_version
            if not gpu_archs:
                known = [g for g in found.gpus if g.compute_capability]
                gpu_archs = tuple(str(g.compute_capability) for g in known)
                names = tuple(g.name for g in known)
                notes += tuple(
                    f"GPU {g.index} ({g.name}): compute capability unknown, not checked"
                    for g in found.gpus
                    if not g.compute_capability
                )
    return PlanRequest(
        platforms=tuple(platforms),
        cuda=cuda or None,
        driver=driver,
        gpu_archs=tuple(gpu_archs),
        gpu_names=names,
        cpu=cpu,
        pytorch=pytorch,
        python=python,
        source=source,
        base_channel=base_channel,
        notes=notes,
    )


def make_plan(request: PlanRequest, recipes: Recipes | None = None) -> Plan:
    """Apply the policy in this module's docstring; raise PlanError when nothing fits."""
    # Imported here, not at the top: both modules build on this module's dataclasses.
    from conda_torch_plugin.plan.assemble import assemble
    from conda_torch_plugin.plan.search import Search, primary_target

    if recipes is None:
        from conda_torch_plugin.recipes import load_recipes

        recipes = load_recipes()
    _check_request(request)
    spec = compat.VersionSpec.parse(request.pytorch) if request.pytorch else None
    target = primary_target(request, recipes)
    search = Search(request, target, spec, recipes)
    choice = search.run()
    return assemble(request, target, choice, search, recipes)


def _check_request(request: PlanRequest) -> None:
    from conda_torch_plugin.recipes import PLATFORMS

    if not request.platforms:
        raise UsageError("no platform to plan for", hints=["pass --platform linux-64 (or another)"])
    for platform in request.platforms:
        if platform not in PLATFORMS:
            raise UsageError(
                f"unknown platform {platform!r}", hints=[f"one of {', '.join(PLATFORMS)}"]
            )
    if len(set(request.platforms)) != len(request.platforms):
        raise UsageError(f"a platform is named twice: {', '.join(request.platforms)}")
    if request.source not in SOURCES:
        raise UsageError(
            f"unknown source {request.source!r}", hints=[f"one of {', '.join(SOURCES)}"]
        )
    if request.base_channel not in BASE_CHANNELS:
        raise UsageError(
            f"unknown base channel {request.base_channel!r}",
            hints=[f"one of {', '.join(BASE_CHANNELS)}"],
        )
    for flag, value in (("--cuda", request.cuda), ("--python", request.python)):
        if value is not None and not _is_xy(value):
            raise UsageError(f"{flag} {value!r} is not a version like 12.4")
    if request.driver is not None and not _is_version(request.driver):
        raise UsageError(f"--driver {request.driver!r} is not a driver version like 550.54.15")
    for cc in request.gpu_archs:
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
