"""Find the release and CUDA variant that fit the primary platform, or say why none does.

``primary_target`` reads the request and the machine as the search sees them:
the compute kind (CUDA, CPU or MPS), the driver's CUDA version and the GPUs to
cover. ``Search.run`` walks the sources in order (``auto``: every source in the
registry's order, the pytorch channel first), newest release first, and returns
the first ``Choice`` that fits,
recording every candidate it turns down as a ``Rejection``. When no channel
fits it raises a ``PlanError`` that names what failed (a GPU no build covers,
a driver too old, a missing Python or platform build) and, by trying the
request again with another source or without the ``--pytorch`` pin, what would
fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from conda_torch_plugin import compat
from conda_torch_plugin.errors import PlanError
from conda_torch_plugin.plan.model import Rejection
from conda_torch_plugin.sources import AUTO, NAMES, for_request, source

if TYPE_CHECKING:
    from conda_torch_plugin.errors import PlanFailure
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.plan.model import Compute, PlanRequest
    from conda_torch_plugin.recipes import ArchList, CudaVariant, Recipes, Release


@dataclass(frozen=True)
class GpuToCover:
    """One GPU the build must run on: its index on the machine, compute capability and name."""

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
class Primary:
    """The primary platform as the plan sees it."""

    platform: str
    compute: Compute
    driver_cuda: str | None
    driver: str | None
    gpus: tuple[GpuToCover, ...]
    reasons: list[str]

    @property
    def driver_text(self) -> str:
        if self.driver and self.driver_cuda:
            return f"driver {self.driver} with CUDA {self.driver_cuda}"
        if self.driver_cuda:
            return f"a driver with CUDA {self.driver_cuda} of unknown version"
        return f"driver {self.driver}" if self.driver else "no NVIDIA driver"


def primary_target(request: PlanRequest, machine: Machine, recipes: Recipes) -> Primary:
    """Read the request and the machine for ``platforms[0]``; PlanError when GPUs come
    without a CUDA version."""
    platform = request.platforms[0]
    known = [(g.name, g.compute_capability) for g in machine.gpus if g.compute_capability]
    gpus = tuple(GpuToCover(i, cc, name) for i, (name, cc) in enumerate(known) if cc)
    reasons: list[str] = []
    if compat.is_osx(platform):
        compute: Compute = "mps" if platform == "osx-arm64" else "cpu"
        if machine.cuda_version or gpus:
            reasons.append(
                f"{platform} has no CUDA builds: the {compute.upper()} build is planned and the "
                "CUDA version and GPUs given are not used for it."
            )
        return Primary(platform, compute, None, machine.driver_version, (), reasons)
    driver = machine.driver_version
    if request.cpu:
        reasons.append("--cpu: planning a CPU-only build (the cpuonly variant).")
        return Primary(platform, "cpu", None, driver, (), reasons)
    cuda = machine.cuda_version
    if cuda is None and driver:
        cuda = recipes.max_cuda_for_driver(driver, platform)
        if cuda:
            reasons.append(
                f"Driver {driver} supports CUDA up to {cuda} (the newest CUDA whose "
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
                failures=["cuda-unknown"],
                gpus=[g.cc for g in gpus],
            )
        reasons.append(
            "No NVIDIA driver was found, so this is a CPU-only build. If the machine has an "
            "NVIDIA GPU, install its driver, or pass --cuda X.Y to plan a CUDA build."
        )
        return Primary(platform, "cpu", None, None, (), reasons)
    if machine.cuda_version:
        which = f" (driver {driver})" if driver else ""
        reasons.append(f"The driver supports CUDA up to {cuda}{which}.")
    if not gpus:
        reasons.append(
            "No GPU compute capability is known, so GPU architecture coverage is not checked "
            "(pass --gpu-arch X.Y to check it)."
        )
    return Primary(platform, "cuda", cuda, driver, gpus, reasons)


def _labels(gpus: tuple[GpuToCover, ...] | list[GpuToCover]) -> str:
    return ", ".join(g.label for g in gpus)


def _long_labels(gpus: tuple[GpuToCover, ...] | list[GpuToCover]) -> str:
    return ", ".join(g.long_label for g in gpus)


@dataclass
class Choice:
    """The release, Python and (for CUDA) variant that fit, with the check that passed."""

    channel: str
    release: Release
    python: str
    variant: CudaVariant | None = None
    check: compat.CudaCheck | None = None
    fallback: dict[str, Failure] = field(default_factory=dict)  # channels tried before


@dataclass(frozen=True)
class Failure:
    """Why one channel has nothing that fits."""

    kind: PlanFailure
    message: str  # for the explanation when another channel fits
    gpus: tuple[GpuToCover, ...] = ()
    error: str = ""  # for the PlanError when nothing fits (defaults to message)
    cuda: str | None = None  # "cuda" kind: the oldest CUDA the channel offers


def _candidate(channel: str, release: Release, cuda: str | None = None) -> str:
    flavour = f" cuda {cuda}" if cuda else ""
    return f"pytorch {release.pytorch}{flavour} ({source(channel).where})"


def _span(versions: tuple[str, ...]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


class Search:
    """Search the recipes for ``request``; with ``record=False`` (trying alternatives
    for a hint) the candidates turned down are not recorded as rejections."""

    def __init__(
        self,
        request: PlanRequest,
        target: Primary,
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
        return tuple(s.name for s in for_request(self.request.source))

    def run(self) -> Choice:
        failures: dict[str, Failure] = {}
        for channel in self.channels():
            outcome = self.search(channel)
            if isinstance(outcome, Choice):
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

    def search(self, channel: str) -> Choice | Failure:
        adj = source(channel).adjective
        target, python = self.target, self.request.python
        releases = self.matching(channel)
        if not releases:
            return Failure("no-release", _no_release_message(channel, self))
        serving = [r for r in releases if self.serves(r)]
        if not serving:
            kind = "CUDA" if target.compute == "cuda" else target.compute.upper()
            return Failure(
                "no-platform", f"{source(channel).subject} has no {target.platform} {kind} builds"
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
            return Failure(
                "no-python",
                f"no {adj} release{self.spec_text()} has Python {python} builds "
                f"(pytorch {newest.pytorch} supports Python {', '.join(newest.python)})",
            )
        return self.diagnose(channel, tried)

    def spec_text(self) -> str:
        return f" matching --pytorch {self.spec.text}" if self.spec else ""

    def try_release(self, channel: str, release: Release, python: str) -> Choice | None:
        target = self.target
        if target.compute != "cuda":
            return Choice(channel, release, python)
        full: list[tuple[CudaVariant, compat.CudaCheck]] = []
        minor: list[tuple[CudaVariant, compat.CudaCheck]] = []
        for variant in reversed(release.variants_for(target.platform)):  # highest CUDA first
            candidate = _candidate(channel, release, variant.cuda)
            check = compat.check_cuda(
                variant.pin(target.platform),
                target.driver_cuda,
                target.driver,
                target.platform,
                self.recipes,
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
        return Choice(channel, release, python, variant, check)

    def diagnose(self, channel: str, tried: list[Release]) -> Failure:
        """Why no release of ``channel`` fits: an uncovered GPU, the driver, or both."""
        adj = source(channel).adjective
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
            return Failure(
                "gpu",
                f"{_labels(never)} {verb} not covered by any {adj} build{of}",
                never,
                f"{_long_labels(never)} {verb} not covered by any {adj} build{of} ({driver})",
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
            return Failure(
                "cuda",
                f"every {adj} build{of} needs a newer driver than this one ({driver}); "
                f"the oldest needs CUDA {lowest}",
                error=f"{driver} is too old for every {adj} build{of}: "
                f"the oldest needs CUDA {lowest}",
                cuda=lowest,
            )
        return Failure(
            "mixed",
            f"no {adj} build{of} both runs with this driver ({driver}) "
            f"and covers {_labels(self.target.gpus)}",
            self.target.gpus,
            f"no {adj} build{of} both runs with this driver ({driver}) "
            f"and covers {_long_labels(self.target.gpus)}",
        )


def _missing_reason(missing: list[GpuToCover], archs: ArchList, check: compat.CudaCheck) -> str:
    reason = f"no kernels for {_labels(missing)}: the build has {archs.describe()}"
    if not check.jit and any(archs.runs_on(g.cc, jit=True) for g in missing):
        reason += " and its PTX cannot be JIT-compiled under minor-version compatibility"
    return reason


def _no_release_message(channel: str, search: Search) -> str:
    versions = [r.pytorch for r in search.recipes.releases_for(channel)]
    spec = search.spec.text if search.spec else "?"
    return source(channel).no_release_message(versions, spec)


def _plan_error(search: Search, failures: dict[str, Failure]) -> PlanError:
    request, target, recipes = search.request, search.target, search.recipes
    kinds = {f.kind for f in failures.values()}
    if kinds == {"no-release"}:
        known = "; ".join(
            f"{source(c).where}: {', '.join(r.pytorch for r in reversed(recipes.releases_for(c)))}"
            for c in NAMES
        )
        known_hints = [f"known PyTorch releases: {known}"]
        if request.source != AUTO:
            for other in (n for n in NAMES if n != request.source):
                if search.spec and any(
                    search.spec.matches(r.pytorch) for r in recipes.releases_for(other)
                ):
                    known_hints.insert(
                        0, f"--source {other} has a release matching --pytorch {search.spec.text}"
                    )
                    break
        return PlanError(
            f"No PyTorch release matches --pytorch {request.pytorch}",
            hints=known_hints,
            failures=["no-release"],
        )
    of = search.spec_text().replace(" matching --pytorch", " of pytorch")
    names = " or ".join(source(c).adjective for c in failures)
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
        successor = source(request.source).successor if request.source != AUTO else None
        if successor and target.platform in served:
            hints.append(
                f"--source {successor}: {source(successor).subject} builds PyTorch for "
                f"{target.platform}"
            )
        elif target.platform not in served:
            hints.append(f"platforms with such builds: {', '.join(sorted(served))}")
    if kinds & {"gpu", "cuda", "mixed"}:
        hints.append("--cpu: plan a CPU-only build instead")
    uncovered = [g.cc for f in values for g in f.gpus]
    return PlanError(
        message,
        hints=hints,
        failures=[f.kind for f in values],
        gpus=dict.fromkeys(uncovered),
    )


def _fixes(search: Search) -> list[str]:
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
            f"{source(channel).where} pytorch {release.pytorch} with CUDA {variant.cuda} covers "
            f"{'these GPUs' if len(target.gpus) > 1 else 'this GPU'}"
        )
    # Another source, or the same one without the --pytorch pin.
    others = [AUTO] if request.source == AUTO else [n for n in NAMES if n != request.source]
    if search.spec and request.source != AUTO:
        others.insert(0, request.source)  # the same source, without the pin
    trials = [(o, s) for s in ((search.spec, None) if search.spec else (None,)) for o in others]
    for other, spec in trials:
        if other == request.source and spec is search.spec:
            continue  # that is the search that just failed
        trial = Search(replace(request, source=other), target, spec, recipes, record=False)
        choice = next(
            (o for o in (trial.search(c) for c in trial.channels()) if isinstance(o, Choice)), None
        )
        if choice is not None:
            what = f"{source(choice.channel).where} pytorch {choice.release.pytorch}"
            cuda = f" with CUDA {choice.variant.cuda}" if choice.variant else ""
            flags = [f"--source {other}"] if other != request.source else []
            flags += ["without --pytorch"] if search.spec and spec is None else []
            hints.append(f"{' '.join(flags)}: {what}{cuda} fits this machine")
            break
    return hints
