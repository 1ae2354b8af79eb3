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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conda_torch_plugin import compat
from conda_torch_plugin.errors import PlanError, UsageError

if TYPE_CHECKING:
    from conda_torch_plugin.recipes import ArchList, CudaVariant, Recipes, Release

SOURCES = ("auto", "pytorch", "conda-forge")
BASE_CHANNELS = ("conda-forge", "defaults")
_ADJ = {"pytorch": "pytorch-channel", "conda-forge": "conda-forge"}
_WHERE = {"pytorch": "pytorch channel", "conda-forge": "conda-forge"}
_THE = {"pytorch": "the pytorch channel", "conda-forge": "conda-forge"}


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


# -- building a request from this machine ----------------------------------------


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
        from conda_torch_plugin.detect import detect

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


# -- the plan --------------------------------------------------------------------


def make_plan(request: PlanRequest, recipes: Recipes | None = None) -> Plan:
    """Apply the policy in this module's docstring; raise PlanError when nothing fits."""
    if recipes is None:
        from conda_torch_plugin.recipes import load_recipes

        recipes = load_recipes()
    _check_request(request)
    spec = compat.VersionSpec.parse(request.pytorch) if request.pytorch else None
    target = _target(request, recipes)
    search = _Search(request, target, spec, recipes)
    choice = search.run()
    return _assemble(request, target, choice, search, recipes)


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


@dataclass(frozen=True)
class _Gpu:
    index: int
    cc: str
    name: str | None

    @property
    def label(self) -> str:
        sm = compat.sm_name(self.cc)
        return f"GPU {self.index} ({self.name}, {sm})" if self.name else f"GPU {self.index} ({sm})"

    @property
    def long_label(self) -> str:
        """For errors: the name, the compute capability and the sm_ name."""
        name = f"{self.name}, " if self.name else ""
        return f"GPU {self.index} ({name}compute capability {self.cc}, {compat.sm_name(self.cc)})"


@dataclass
class _Target:
    """The primary platform as the plan sees it."""

    platform: str
    compute: str  # "cuda" | "cpu" | "mps"
    driver_cuda: str | None
    driver: str | None
    gpus: tuple[_Gpu, ...]
    reasons: list[str]

    @property
    def driver_text(self) -> str:
        if self.driver and self.driver_cuda:
            return f"driver {self.driver} with CUDA {self.driver_cuda}"
        if self.driver_cuda:
            return f"a driver with CUDA {self.driver_cuda} of unknown version"
        return f"driver {self.driver}" if self.driver else "no NVIDIA driver"


def _target(request: PlanRequest, recipes: Recipes) -> _Target:
    platform = request.platforms[0]
    names = request.gpu_names if len(request.gpu_names) == len(request.gpu_archs) else ()
    gpus = tuple(_Gpu(i, cc, names[i] if names else None) for i, cc in enumerate(request.gpu_archs))
    reasons: list[str] = []
    if compat.is_osx(platform):
        compute = "mps" if platform == "osx-arm64" else "cpu"
        if request.cuda or gpus:
            reasons.append(
                f"{platform} has no CUDA builds: the {compute.upper()} build is planned and the "
                "CUDA version and GPUs given are not used for it."
            )
        return _Target(platform, compute, None, request.driver, (), reasons)
    if request.cpu:
        reasons.append("--cpu: planning a CPU-only build (the cpuonly variant).")
        return _Target(platform, "cpu", None, request.driver, (), reasons)
    cuda = request.cuda
    if cuda is None and request.driver:
        cuda = recipes.max_cuda_for_driver(request.driver, platform)
        if cuda:
            reasons.append(
                f"Driver {request.driver} supports CUDA up to {cuda} (the newest CUDA whose "
                f"{compat.os_label(platform)} driver minimum it meets, NVIDIA Table 3)."
            )
    if cuda is None:
        if gpus:
            raise PlanError(
                f"{_labels(gpus)} {'was' if len(gpus) == 1 else 'were'} given, but the driver's "
                "CUDA version is unknown, so no CUDA build can be checked against it",
                hints=[
                    "pass --cuda X.Y: the 'CUDA Version' that nvidia-smi shows on that machine",
                    "or pass --cpu for a CPU-only build",
                ],
            )
        reasons.append(
            "No NVIDIA driver was found, so this is a CPU-only build. If the machine has an "
            "NVIDIA GPU, install its driver, or pass --cuda X.Y to plan a CUDA build."
        )
        return _Target(platform, "cpu", None, None, (), reasons)
    if request.cuda:
        driver = f" (driver {request.driver})" if request.driver else ""
        reasons.append(f"The driver supports CUDA up to {cuda}{driver}.")
    if not gpus:
        reasons.append(
            "No GPU compute capability is known, so GPU architecture coverage is not checked "
            "(pass --gpu-arch X.Y to check it)."
        )
    return _Target(platform, "cuda", cuda, request.driver, gpus, reasons)


def _labels(gpus: tuple[_Gpu, ...] | list[_Gpu]) -> str:
    return ", ".join(g.label for g in gpus)


def _long_labels(gpus: tuple[_Gpu, ...] | list[_Gpu]) -> str:
    return ", ".join(g.long_label for g in gpus)


# -- searching the recipes -------------------------------------------------------


@dataclass
class _Choice:
    channel: str
    release: Release
    python: str
    variant: CudaVariant | None = None
    check: compat.CudaCheck | None = None
    fallback: dict[str, _Failure] = field(default_factory=dict)  # channels tried before


@dataclass(frozen=True)
class _Failure:
    kind: str  # "no-release" | "no-platform" | "no-python" | "gpu" | "cuda" | "mixed"
    message: str  # for the explanation when another channel fits
    gpus: tuple[_Gpu, ...] = ()
    error: str = ""  # for the PlanError when nothing fits (defaults to message)
    cuda: str | None = None  # "cuda" kind: the oldest CUDA the channel offers


def _candidate(channel: str, release: Release, cuda: str | None = None, compute: str = "") -> str:
    flavour = f" cuda {cuda}" if cuda else (f" {compute}" if compute else "")
    return f"pytorch {release.pytorch}{flavour} ({_WHERE[channel]})"


def _span(versions: tuple[str, ...]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


class _Search:
    def __init__(
        self,
        request: PlanRequest,
        target: _Target,
        spec: compat.VersionSpec | None,
        recipes: Recipes,
        *,
        record: bool = True,
    ) -> None:
        self.request, self.target, self.spec, self.recipes = request, target, spec, recipes
        self.rejected: list[Rejection] = []
        self.record = record

    def reject(self, candidate: str, reason: str) -> None:
        if self.record:
            self.rejected.append(Rejection(candidate, reason))

    def channels(self) -> tuple[str, ...]:
        return (
            ("pytorch", "conda-forge") if self.request.source == "auto" else (self.request.source,)
        )

    def run(self) -> _Choice:
        failures: dict[str, _Failure] = {}
        for channel in self.channels():
            outcome = self.search(channel)
            if isinstance(outcome, _Choice):
                outcome.fallback = failures
                return outcome
            failures[channel] = outcome
        raise _plan_error(self, failures)

    def matching(self, channel: str) -> tuple[Release, ...]:
        return tuple(
            r
            for r in self.recipes.releases_for(channel)
            if self.spec is None or self.spec.matches(r.pytorch)
        )

    def serves(self, release: Release) -> bool:
        platform = self.target.platform
        if self.target.compute == "cuda":
            return bool(release.variants_for(platform))
        return platform in release.cpu_platforms

    def search(self, channel: str) -> _Choice | _Failure:
        target, python = self.target, self.request.python
        releases = self.matching(channel)
        if not releases:
            return _Failure("no-release", _no_release_message(channel, self))
        serving = [r for r in releases if self.serves(r)]
        if not serving:
            kind = "CUDA" if target.compute == "cuda" else target.compute.upper()
            return _Failure(
                "no-platform", f"{_THE[channel]} has no {target.platform} {kind} builds"
            )
        tried: list[Release] = []
        for release in serving:
            if python and python not in release.python:
                self.reject(
                    _candidate(channel, release),
                    f"no Python {python} build (it supports Python {_span(release.python)})",
                )
                continue
            tried.append(release)
            choice = self.try_release(channel, release, python or release.python[-1])
            if choice is not None:
                return choice
        if not tried:
            newest = serving[0]
            return _Failure(
                "no-python",
                f"no {_ADJ[channel]} release{self.spec_text()} has Python {python} builds "
                f"(pytorch {newest.pytorch} supports Python {', '.join(newest.python)})",
            )
        return self.diagnose(channel, tried)

    def spec_text(self) -> str:
        return f" matching --pytorch {self.spec.text}" if self.spec else ""

    def try_release(self, channel: str, release: Release, python: str) -> _Choice | None:
        target = self.target
        if target.compute != "cuda":
            return _Choice(channel, release, python)
        full: list[tuple[CudaVariant, compat.CudaCheck]] = []
        minor: list[tuple[CudaVariant, compat.CudaCheck]] = []
        for variant in reversed(release.variants_for(target.platform)):  # highest CUDA first
            candidate = _candidate(channel, release, variant.cuda)
            check = compat.check_cuda(
                variant.cuda, target.driver_cuda, target.driver, target.platform, self.recipes
            )
            if not check.ok:
                self.reject(candidate, check.reason)
                continue
            archs = variant.archs[target.platform]
            missing = [g for g in target.gpus if not archs.runs_on(g.cc, jit=check.jit)]
            if missing:
                self.reject(candidate, _missing_reason(missing, archs, check))
                continue
            (full if check.mode == compat.FULL else minor).append((variant, check))
        if full:
            variant, check = full[0]
            for other, _ in minor:
                self.reject(
                    _candidate(channel, release, other.cuda),
                    f"would need minor-version compatibility (the driver's CUDA is "
                    f"{target.driver_cuda}); CUDA {variant.cuda} is fully supported",
                )
        elif minor:
            # Closest to the driver: the fewer minor versions ahead, the less falls
            # outside what minor-version compatibility guarantees.
            variant, check = minor[-1]
            for other, _ in minor[:-1]:
                self.reject(
                    _candidate(channel, release, other.cuda),
                    f"further above the driver's CUDA {target.driver_cuda} than "
                    f"CUDA {variant.cuda}",
                )
        else:
            return None
        return _Choice(channel, release, python, variant, check)

    def diagnose(self, channel: str, tried: list[Release]) -> _Failure:
        """Why no release of ``channel`` fits: an uncovered GPU, the driver, or both."""
        platform = self.target.platform
        variants = [v for r in tried for v in r.variants_for(platform)]
        never = tuple(
            g
            for g in self.target.gpus
            if not any(v.archs[platform].runs_on(g.cc) for v in variants)
        )
        of = f" of pytorch {self.spec.text}" if self.spec else ""
        driver = self.target.driver_text
        if never:
            verb = "is" if len(never) == 1 else "are"
            return _Failure(
                "gpu",
                f"{_labels(never)} {verb} not covered by any {_ADJ[channel]} build{of}",
                never,
                f"{_long_labels(never)} {verb} not covered by any {_ADJ[channel]} build{of} "
                f"({driver})",
            )
        ok = [
            v
            for v in variants
            if compat.check_cuda(
                v.cuda, self.target.driver_cuda, self.target.driver, platform, self.recipes
            ).ok
        ]
        if not ok:
            lowest = min((v.cuda for v in variants), key=compat.version_tuple)
            return _Failure(
                "cuda",
                f"every {_ADJ[channel]} build{of} needs a newer driver than this one ({driver}); "
                f"the oldest needs CUDA {lowest}",
                error=f"{driver} is too old for every {_ADJ[channel]} build{of}: "
                f"the oldest needs CUDA {lowest}",
                cuda=lowest,
            )
        return _Failure(
            "mixed",
            f"no {_ADJ[channel]} build{of} both runs with this driver ({driver}) "
            f"and covers {_labels(self.target.gpus)}",
            self.target.gpus,
            f"no {_ADJ[channel]} build{of} both runs with this driver ({driver}) "
            f"and covers {_long_labels(self.target.gpus)}",
        )


def _missing_reason(missing: list[_Gpu], archs: ArchList, check: compat.CudaCheck) -> str:
    reason = f"no kernels for {_labels(missing)}: the build has {archs.describe()}"
    if not check.jit and any(archs.runs_on(g.cc, jit=True) for g in missing):
        reason += " and its PTX cannot be JIT-compiled under minor-version compatibility"
    return reason


def _no_release_message(channel: str, search: _Search) -> str:
    versions = [r.pytorch for r in search.recipes.releases_for(channel)]
    spec = search.spec.text if search.spec else "?"
    if channel == "pytorch":
        return (
            f"the pytorch channel has no release matching --pytorch {spec}: it carries "
            f"{versions[-1]} to {versions[0]}, the last release published there"
        )
    return (
        f"conda-forge has no release matching --pytorch {spec} in the recipes "
        f"({versions[-1]} to {versions[0]})"
    )


# -- when nothing fits -----------------------------------------------------------


def _plan_error(search: _Search, failures: dict[str, _Failure]) -> PlanError:
    request, target, recipes = search.request, search.target, search.recipes
    kinds = {f.kind for f in failures.values()}
    if kinds == {"no-release"}:
        known = "; ".join(
            f"{_WHERE[c]}: {', '.join(r.pytorch for r in reversed(recipes.releases_for(c)))}"
            for c in ("pytorch", "conda-forge")
        )
        known_hints = [f"known PyTorch releases: {known}"]
        if request.source != "auto":
            other = "conda-forge" if request.source == "pytorch" else "pytorch"
            if search.spec and any(
                search.spec.matches(r.pytorch) for r in recipes.releases_for(other)
            ):
                known_hints.insert(
                    0, f"--source {other} has a release matching --pytorch {search.spec.text}"
                )
        return PlanError(
            f"No PyTorch release matches --pytorch {request.pytorch}", hints=known_hints
        )
    of = search.spec_text().replace(" matching --pytorch", " of pytorch")
    names = " or ".join(_ADJ[c] for c in failures)
    values = list(failures.values())
    if len(values) > 1 and kinds == {"gpu"} and len({f.gpus for f in values}) == 1:
        # The same GPUs fail everywhere: say it once.
        gpus = values[0].gpus
        verb = "is" if len(gpus) == 1 else "are"
        message = (
            f"{_long_labels(gpus)} {verb} not covered by any {names} build{of} "
            f"({target.driver_text})"
        )
    elif len(values) > 1 and kinds == {"cuda"}:
        lowest = min((str(f.cuda) for f in values), key=compat.version_tuple)
        message = (
            f"{target.driver_text} is too old for every {names} build{of}: "
            f"the oldest needs CUDA {lowest}"
        )
    else:
        message = "; ".join(f.error or f.message for f in values)
    if kinds == {"cuda"} and target.gpus:
        message += f" (GPUs to cover: {_long_labels(target.gpus)})"
    message = message[0].upper() + message[1:]
    hints: list[str] = []
    if "no-python" in kinds:
        hints.append("pick a Python version the release supports with --python, or drop --python")
    if kinds & {"gpu", "cuda", "mixed"}:
        hints += _fixes(search)
    if "no-platform" in kinds:
        served: set[str] = set()
        for r in recipes.releases:
            cuda = {p for v in r.cuda_variants for p in v.platforms}
            served |= cuda if target.compute == "cuda" else set(r.cpu_platforms)
        if request.source == "pytorch" and target.platform in served:
            hints.append(f"--source conda-forge: conda-forge builds PyTorch for {target.platform}")
        elif target.platform not in served:
            hints.append(f"platforms with such builds: {', '.join(sorted(served))}")
    if kinds & {"gpu", "cuda", "mixed"}:
        hints.append("--cpu: plan a CPU-only build instead")
    return PlanError(message, hints=hints)


def _fixes(search: _Search) -> list[str]:
    """What would make the request fit: a newer driver, another source, fewer pins."""
    request, target, recipes = search.request, search.target, search.recipes
    hints: list[str] = []
    # A newer driver: the lowest CUDA among builds that cover every GPU.
    best: tuple[tuple[int, ...], str, Release, CudaVariant] | None = None
    for channel in search.channels():
        for release in search.matching(channel):
            if request.python and request.python not in release.python:
                continue
            for variant in release.variants_for(target.platform):
                if all(variant.archs[target.platform].runs_on(g.cc) for g in target.gpus):
                    key = compat.version_tuple(variant.cuda)
                    if best is None or key < best[0]:
                        best = (key, channel, release, variant)
    if best is not None and target.driver_cuda is not None:
        _, channel, release, variant = best
        major = compat.cuda_major(variant.cuda)
        floor = recipes.minor_compat_driver(major, target.platform)
        if (
            target.driver
            and floor
            and major == compat.cuda_major(target.driver_cuda)
            and not compat.driver_at_least(target.driver, floor)
        ):
            hints.append(
                f"update the driver to {floor} or later: CUDA {major}.x builds then run through "
                "minor-version compatibility"
            )
        minimum = recipes.min_driver(variant.cuda, target.platform)
        need = f" (>= {minimum} on {compat.os_label(target.platform)})" if minimum else ""
        hints.append(
            f"install a newer NVIDIA driver, one for CUDA {variant.cuda} or later{need}: "
            f"{_WHERE[channel]} pytorch {release.pytorch} with CUDA {variant.cuda} covers "
            f"{'these GPUs' if len(target.gpus) > 1 else 'this GPU'}"
        )
    # Another source, or the same one without the --pytorch pin.
    other = {"pytorch": "conda-forge", "conda-forge": "pytorch", "auto": "auto"}[request.source]
    for spec in (search.spec, None) if search.spec else (None,):
        if other == request.source and spec is search.spec:
            continue  # that is the search that just failed
        trial = _Search(_replace_source(request, other), target, spec, recipes, record=False)
        choice = next(
            (o for o in (trial.search(c) for c in trial.channels()) if isinstance(o, _Choice)), None
        )
        if choice is not None:
            what = f"{_WHERE[choice.channel]} pytorch {choice.release.pytorch}"
            cuda = f" with CUDA {choice.variant.cuda}" if choice.variant else ""
            flags = [f"--source {other}"] if other != request.source else []
            flags += ["without --pytorch"] if search.spec and spec is None else []
            hints.append(f"{' '.join(flags)}: {what}{cuda} fits this machine")
            break
    return hints


def _replace_source(request: PlanRequest, source: str) -> PlanRequest:
    from dataclasses import replace

    return replace(request, source=source)


# -- assembling the plan ---------------------------------------------------------


def _assemble(
    request: PlanRequest, target: _Target, choice: _Choice, search: _Search, recipes: Recipes
) -> Plan:
    release, channel = choice.release, choice.channel
    reasons = list(target.reasons)
    reasons += [f"detect: {note}" for note in request.notes]
    warnings: list[str] = []
    sources: list[str] = list(release.source)

    reasons.append(_source_reason(request, choice))
    newest = f"the newest {_ADJ[channel]} release{search.spec_text()}"
    if request.python:
        newest += f" with Python {request.python} builds"
    if target.compute != "cuda":
        newest += f" with a {target.platform} {target.compute.upper()} build"
    reasons.append(f"pytorch {release.pytorch}: {newest}.")
    if choice.variant is not None and choice.check is not None:
        reasons += _cuda_reasons(target, choice, warnings, sources, recipes)
    if request.python:
        reasons.append(
            f"Python {choice.python}, as asked (pytorch {release.pytorch} supports "
            f"{', '.join(release.python)})."
        )
    else:
        reasons.append(
            f"Python {choice.python}: the newest that pytorch {release.pytorch} "
            f"supports ({', '.join(release.python)})."
        )
    reasons.append(_companions_reason(release, warnings))

    platform_plans = [_platform_plan(target.platform, target.compute, choice, recipes)]
    for platform in request.platforms[1:]:
        platform_plans.append(_secondary(platform, target, choice, recipes, reasons, warnings))
    for plan in platform_plans:
        if release.torchaudio and not release.has_torchaudio(plan.platform):
            warnings.append(
                f"{plan.platform}: {_WHERE[channel]} has no torchaudio build for {plan.platform}, "
                "so that platform's environment has no torchaudio."
            )
    channels = _channels(channel, request.base_channel)
    reasons.append(_channels_reason(channel, request.base_channel))
    guards = (g for p in platform_plans for g in recipes.guards_for(channel, p.platform))
    for guard in dict.fromkeys(guards):
        reasons.append(f"{guard.spec} on {', '.join(guard.platforms)}: {guard.reason}.")
        sources += guard.source
    primary = platform_plans[0]
    return Plan(
        source=channel,
        channels=channels,
        pytorch=release.pytorch,
        torchvision=release.torchvision,
        torchaudio=release.torchaudio if release.has_torchaudio(primary.platform) else None,
        python=choice.python,
        compute=primary.compute,
        cuda=primary.cuda,
        specs=primary.specs,
        reasons=tuple(reasons),
        warnings=tuple(dict.fromkeys(warnings)),
        rejected=tuple(search.rejected),
        platforms=tuple(platform_plans),
        sources=tuple(dict.fromkeys(sources)),
    )


def _source_reason(request: PlanRequest, choice: _Choice) -> str:
    release, channel = choice.release, choice.channel
    if request.source != "auto":
        return f"--source {request.source}: PyTorch comes from {_WHERE[channel]}."
    if channel == "pytorch":
        return (
            "The pytorch channel (with nvidia for the CUDA libraries) can serve this request, so "
            "it is used (source auto); it carries PyTorch up to 2.5.1, the last release "
            "published there."
        )
    failure = choice.fallback.get("pytorch")
    what = f"conda-forge pytorch {release.pytorch}"
    if choice.variant is not None:
        what += f" with CUDA {choice.variant.cuda}"
    if failure is None:
        return f"Source auto: {what}."
    ending = (
        "covers it"
        if failure.kind == "gpu" and len(failure.gpus) == 1
        else ("covers them" if failure.kind == "gpu" else "is used instead")
    )
    text = f"{failure.message}; {what} {ending}"
    return text[0].upper() + text[1:] + "."


def _cuda_reasons(
    target: _Target, choice: _Choice, warnings: list[str], sources: list[str], recipes: Recipes
) -> list[str]:
    assert choice.variant is not None and choice.check is not None
    variant, check, release = choice.variant, choice.check, choice.release
    offered = ", ".join(v.cuda for v in release.variants_for(target.platform))
    reasons = []
    if check.mode == compat.FULL:
        reasons.append(
            f"CUDA {variant.cuda}: the highest of its {target.platform} CUDA variants ({offered}) "
            f"that the driver's CUDA {target.driver_cuda} supports."
        )
    else:
        reasons.append(
            f"CUDA {variant.cuda}: no {target.platform} variant of pytorch {release.pytorch} "
            f"({offered}) is <= the driver's CUDA {target.driver_cuda}; {check.reason}."
        )
        sources += ["S16", "S17"]
    if check.warning:
        warnings.append(check.warning + ".")
    archs = variant.archs[target.platform]
    sources += list(variant.source) + archs.source.split(", ")
    for gpu in target.gpus:
        how = archs.how_runs(gpu.cc, jit=check.jit)
        reasons.append(f"{gpu.label} runs the {how}.")
        if how and "PTX" in how:
            warnings.append(
                f"{gpu.label} has no cubin in this build and runs only through {how}: the first "
                "run compiles the kernels, which can take many minutes (they are cached)."
            )
    return reasons


def _companions_reason(release: Release, warnings: list[str]) -> str:
    if release.torchaudio is None:
        warnings.append(
            f"No torchaudio is paired with pytorch {release.pytorch} on {_WHERE[release.channel]}, "
            "so the environment has none."
        )
        return (
            f"torchvision {release.torchvision}: the version built for pytorch {release.pytorch}."
        )
    return (
        f"torchvision {release.torchvision} and torchaudio {release.torchaudio}: the versions "
        f"paired with pytorch {release.pytorch}."
    )


def _channels(channel: str, base: str) -> tuple[str, ...]:
    return ("pytorch", "nvidia", base) if channel == "pytorch" else ("conda-forge",)


def _channels_reason(channel: str, base: str) -> str:
    if channel == "conda-forge":
        return (
            "Channels: conda-forge only. Its pytorch takes its CUDA libraries from conda-forge, "
            "picked with cuda-version; mixing in the pytorch or nvidia channels breaks it."
        )
    text = (
        f"Channels: pytorch and nvidia for the torch family and its CUDA libraries, then {base} "
        "for everything else (python, mkl, numpy, ...)."
    )
    if base == "defaults":
        text += " The defaults channel carries Anaconda's terms of service for organisations."
    return text


def _secondary(
    platform: str,
    target: _Target,
    choice: _Choice,
    recipes: Recipes,
    reasons: list[str],
    warnings: list[str],
) -> PlatformPlan:
    release, where = choice.release, _WHERE[choice.channel]
    if compat.is_osx(platform) or target.compute != "cuda":
        compute = "mps" if platform == "osx-arm64" else "cpu"
        if platform not in release.cpu_platforms:
            raise PlanError(
                f"pytorch {release.pytorch} from {where} has no {platform} build",
                hints=[f"drop --platform {platform}", "or pin another release with --pytorch"],
            )
        reasons.append(f"{platform}: the {compute.upper()} build of pytorch {release.pytorch}.")
        return _platform_plan(platform, compute, choice, recipes)
    assert choice.variant is not None
    offered = [v.cuda for v in release.variants_for(platform)]
    if not offered:
        if platform in release.cpu_platforms:
            warnings.append(
                f"{platform}: pytorch {release.pytorch} from {where} has no CUDA build there; "
                "that platform gets the CPU build."
            )
            return _platform_plan(platform, "cpu", choice, recipes)
        raise PlanError(
            f"pytorch {release.pytorch} from {where} has no {platform} build",
            hints=[f"drop --platform {platform}", "or use --source conda-forge"],
        )
    wanted = choice.variant.cuda
    cuda = compat.highest_at_most(offered, wanted)
    if cuda is None:
        cuda = min(offered, key=compat.version_tuple)
        warnings.append(
            f"{platform}: pytorch {release.pytorch} has no CUDA {wanted} or older there; "
            f"that platform gets CUDA {cuda}, which needs a newer driver."
        )
    if cuda == wanted:
        reasons.append(f"{platform}: CUDA {cuda}, as on {target.platform}.")
    else:
        reasons.append(
            f"{platform}: CUDA {cuda}, the closest to {wanted} published there "
            f"({', '.join(offered)})."
        )
    return _platform_plan(platform, "cuda", choice, recipes, cuda=cuda)


def _platform_plan(
    platform: str, compute: str, choice: _Choice, recipes: Recipes, *, cuda: str | None = None
) -> PlatformPlan:
    if compute == "cuda" and cuda is None:
        assert choice.variant is not None
        cuda = choice.variant.cuda
    if compute != "cuda":
        cuda = None
    return PlatformPlan(
        platform=platform,
        compute=compute,
        cuda=cuda,
        specs=_specs(platform, compute, cuda, choice, recipes),
        virtual_packages=_virtual_packages(platform, cuda, choice.channel),
    )


def _specs(
    platform: str, compute: str, cuda: str | None, choice: _Choice, recipes: Recipes
) -> tuple[str, ...]:
    release, channel = choice.release, choice.channel
    specs = [f"python={choice.python}"]
    if channel == "pytorch":
        specs.append(f"pytorch={release.pytorch}")
    elif compute == "cuda":
        specs += [f"pytorch={release.pytorch}=cuda*", f"cuda-version={cuda}"]
    elif compute == "cpu" and not compat.is_osx(platform):
        specs.append(f"pytorch={release.pytorch}=cpu*")
    else:
        specs.append(f"pytorch={release.pytorch}")
    if release.torchvision:
        specs.append(f"torchvision={release.torchvision}")
    if release.has_torchaudio(platform):
        specs.append(f"torchaudio={release.torchaudio}")
    if channel == "pytorch":
        if compute == "cuda":
            specs.append(f"pytorch-cuda={cuda}")
        elif not compat.is_osx(platform):
            specs.append("cpuonly")  # macOS builds have no pytorch-mutex to select
    specs += [g.spec for g in recipes.guards_for(channel, platform)]
    return tuple(specs)


def _virtual_packages(platform: str, cuda: str | None, channel: str) -> dict[str, str]:
    """What a lock for this platform must assume: ``__cuda`` = the build's CUDA."""
    packages: dict[str, str] = {}
    if cuda is not None and not compat.is_osx(platform):
        packages["__cuda"] = cuda
    if platform.startswith("linux-"):
        # conda-forge's CUDA 13 builds use a glibc 2.28 sysroot; everything else 2.17.
        new_glibc = channel == "conda-forge" and cuda is not None and compat.cuda_major(cuda) >= 13
        packages["__glibc"] = "2.28" if new_glibc else "2.17"
    elif platform == "osx-arm64":
        packages["__osx"] = "11.0"
    elif platform == "osx-64":
        packages["__osx"] = "10.15"
    return packages
