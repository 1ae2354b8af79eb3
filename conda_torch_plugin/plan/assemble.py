"""Turn the chosen release into a :class:`~conda_torch_plugin.plan.Plan`.

``assemble`` gives every platform of the request its variant of the chosen
release (the primary platform's CUDA; on the others the same CUDA where it is
published, else the closest one below it, and CPU/MPS on macOS), the dependency
lines (specs) and virtual packages for it, the channels, and the reasons and
warnings that explain the choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin import compat
from conda_torch_plugin.errors import PlanError
from conda_torch_plugin.plan.model import Plan, PlatformPlan
from conda_torch_plugin.sources import AUTO, source

if TYPE_CHECKING:
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.plan.model import Compute, PlanRequest
    from conda_torch_plugin.plan.search import Choice, Primary, Search
    from conda_torch_plugin.recipes import Recipes, Release


def assemble(
    request: PlanRequest,
    machine: Machine,
    target: Primary,
    choice: Choice,
    search: Search,
    recipes: Recipes,
) -> Plan:
    """The plan for ``choice``; PlanError when a secondary platform has no build of it."""
    release, channel = choice.release, choice.channel
    reasons = list(target.reasons)
    reasons += [f"detect: {note}" for note in machine.notes]
    warnings: list[str] = []
    sources: list[str] = list(release.source)

    reasons.append(_source_reason(request, choice, recipes))
    newest = f"the newest {source(channel).adjective} release{search.spec_text()}"
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
                f"{plan.platform}: {source(channel).where} has no torchaudio build for "
                f"{plan.platform}, so that platform's environment has no torchaudio."
            )
    channels = source(channel).channels(request.base_channel)
    reasons.append(source(channel).channels_reason(request.base_channel))
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


def _source_reason(request: PlanRequest, choice: Choice, recipes: Recipes) -> str:
    release, chosen = choice.release, source(choice.channel)
    if request.source != AUTO:
        return f"--source {request.source}: PyTorch comes from {chosen.where}."
    failure = next(iter(choice.fallback.values()), None)  # of the source tried first
    what = f"{chosen.where} pytorch {release.pytorch}"
    if choice.variant is not None:
        what += f" with CUDA {choice.variant.cuda}"
    if failure is None:
        return chosen.auto_reason(recipes.releases_for(chosen.name)[0].pytorch, what)
    ending = (
        "covers it"
        if failure.kind == "gpu" and len(failure.gpus) == 1
        else ("covers them" if failure.kind == "gpu" else "is used instead")
    )
    text = f"{failure.message}; {what} {ending}"
    return text[0].upper() + text[1:] + "."


def _cuda_reasons(
    target: Primary, choice: Choice, warnings: list[str], sources: list[str], recipes: Recipes
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
        sources += recipes.minor_compat_sources
    pin = variant.pin(target.platform)
    if pin != variant.cuda:
        reasons.append(
            f"cuda-version={pin} with the CUDA {variant.cuda} build: "
            f"{variant.note or 'its companions need it'}."
        )
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
    if release.torchvision is None:
        warnings.append(
            f"No torchvision build of {source(release.channel).where} accepts pytorch "
            f"{release.pytorch}, so the environment has none."
        )
    if release.torchvision is None and release.torchaudio is None:
        warnings.append(
            f"No torchaudio is paired with pytorch {release.pytorch} on "
            f"{source(release.channel).where}, so the environment has none."
        )
        return f"pytorch {release.pytorch} alone: no companion build accepts it."
    if release.torchvision is None:
        return (
            f"torchaudio {release.torchaudio}: the newest whose build accepts pytorch "
            f"{release.pytorch}."
        )
    if release.torchaudio is None:
        warnings.append(
            f"No torchaudio is paired with pytorch {release.pytorch} on "
            f"{source(release.channel).where}, "
            "so the environment has none."
        )
        return (
            f"torchvision {release.torchvision}: the version built for pytorch {release.pytorch}."
        )
    return (
        f"torchvision {release.torchvision} and torchaudio {release.torchaudio}: the versions "
        f"paired with pytorch {release.pytorch}."
    )


def _secondary(
    platform: str,
    target: Primary,
    choice: Choice,
    recipes: Recipes,
    reasons: list[str],
    warnings: list[str],
) -> PlatformPlan:
    release, where = choice.release, source(choice.channel).where
    if compat.is_osx(platform) or target.compute != "cuda":
        compute: Compute = "mps" if platform == "osx-arm64" else "cpu"
        if platform not in release.cpu_platforms:
            raise PlanError(
                f"pytorch {release.pytorch} from {where} has no {platform} build",
                hints=[f"drop --platform {platform}", "or pin another release with --pytorch"],
                failures=["secondary-platform"],
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
            failures=["secondary-platform"],
        )
    wanted = choice.variant.cuda
    cuda = compat.highest_at_most(offered, wanted)
    if cuda is None:
        cuda = min(offered, key=compat.version_tuple)
        warnings.append(
            f"{platform}: pytorch {release.pytorch} has no CUDA {wanted} or older there; "
            f"that platform gets CUDA {cuda}, which needs a newer driver."
        )
    variant = release.variant(cuda, platform)
    if variant is not None and variant.pin(platform) != cuda:
        reasons.append(
            f"{platform}: cuda-version={variant.pin(platform)} with the CUDA {cuda} build: "
            f"{variant.note or 'its companions need it'}."
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
    platform: str, compute: Compute, choice: Choice, recipes: Recipes, *, cuda: str | None = None
) -> PlatformPlan:
    if compute == "cuda" and cuda is None:
        assert choice.variant is not None
        cuda = choice.variant.cuda
    if compute != "cuda":
        cuda = None
    variant = choice.release.variant(cuda, platform) if cuda else None
    pin = variant.pin(platform) if variant else cuda
    return PlatformPlan(
        platform=platform,
        compute=compute,
        cuda=cuda,
        specs=_specs(platform, compute, pin, choice, recipes),
        virtual_packages=_virtual_packages(
            platform, pin, choice.release.pytorch, choice.channel, recipes
        ),
    )


def _specs(
    platform: str, compute: str, cuda: str | None, choice: Choice, recipes: Recipes
) -> tuple[str, ...]:
    release, channel = choice.release, choice.channel
    head, tail = source(channel).torch_specs(release.pytorch, platform, compute, cuda)
    specs = [f"python={choice.python}", *head]
    if release.torchvision:
        specs.append(f"torchvision={release.torchvision}")
    if release.has_torchaudio(platform):
        specs.append(f"torchaudio={release.torchaudio}")
    specs += tail
    specs += [g.spec for g in recipes.guards_for(channel, platform)]
    return tuple(specs)


def _virtual_packages(
    platform: str, cuda: str | None, pytorch: str, channel: str, recipes: Recipes
) -> dict[str, str]:
    """What a lock for this platform must assume: ``__cuda`` = the build's CUDA, and the
    oldest C library / macOS the builds of release ``pytorch`` support (the source's recipe
    file says which)."""
    packages: dict[str, str] = {}
    if cuda is not None and not compat.is_osx(platform):
        packages["__cuda"] = cuda
    if platform.startswith("linux-"):
        packages["__glibc"] = source(channel).glibc(cuda, recipes)
    elif osx := source(channel).osx(platform, pytorch, recipes):
        packages["__osx"] = osx
    return packages
