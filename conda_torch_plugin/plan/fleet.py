"""One environment for a fleet of machines: plan it, and say what it means for each machine.

``plan_fleet(request, machines)`` is ``make_plan`` in a loop, pure like it:

1. Every machine's driver CUDA is known (a profile from nvidia-smi's CSV has only
   the driver version: the recipes' driver table gives its CUDA, per platform).
2. The machine with the lowest driver CUDA among those with an NVIDIA driver on a
   CUDA platform binds: its driver decides the variant, and every GPU of every
   machine must be covered. A machine without an NVIDIA driver or GPU (a login
   node, a CI runner) does not hold the fleet back: the CUDA build runs there on
   the CPU, and its verdict says so.
3. The plan is then checked against every machine with the same rules ``install``
   uses (``machine.check``: driver vs CUDA with minor-version compatibility judged
   per machine, every GPU covered, glibc, and macOS against the release's
   ``__osx``), and the lowest glibc of each Linux platform becomes its ``__glibc``.
4. When no single environment serves them all, ``FleetError`` names the groups
   that could each share one (found greedily, largest first) and what each machine
   outside the largest group needs. Never a silent CPU build.

Machines that look alike (platform, driver, CUDA, GPUs, glibc, macOS) are planned and
checked once, so a thousand nodes of a few kinds cost a few plans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from conda_torch_plugin import compat
from conda_torch_plugin.errors import FleetError, PlanError, UsageError
from conda_torch_plugin.findings import Finding
from conda_torch_plugin.machine.check import (
    glibc_findings,
    machine_findings,
    osx_findings,
    with_driver_cuda,
)
from conda_torch_plugin.plan import make_plan
from conda_torch_plugin.recipes import PLATFORMS, load_recipes
from conda_torch_plugin.sources import AUTO, NAMES, source
from conda_torch_plugin.sources.base import Flavour

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.plan.model import Plan, PlanRequest
    from conda_torch_plugin.recipes import Recipes

Status = Literal["runs", "runs-minor-compat", "runs-on-cpu", "cpu-build", "cannot"]
_CUDA_PLATFORMS = ("linux-64", "linux-aarch64", "win-64")


@dataclass(frozen=True)
class Verdict:
    """What one plan means for one machine."""

    machine: str
    platform: str | None
    status: Status
    summary: str  # "CUDA 12.4 build; driver 550.54.15 supports CUDA 12.4"
    findings: tuple[Finding, ...]
    own_plan: Plan | None = None  # the best plan it would get on its own
    own_error: str | None = None  # why it would get none on its own

    @property
    def ok(self) -> bool:
        return self.status != "cannot"

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(f.fix for f in self.findings if f.severity == "error" and f.fix)

    def to_dict(self) -> dict[str, object]:
        own: dict[str, object] | None = None
        if self.own_plan is not None:
            p = self.own_plan
            own = {
                "source": p.source,
                "pytorch": p.pytorch,
                "compute": p.compute,
                "cuda": p.cuda,
                "python": p.python,
            }
        return {
            "machine": self.machine,
            "platform": self.platform,
            "status": self.status,
            "ok": self.ok,
            "summary": self.summary,
            "findings": [f.to_dict() for f in self.findings],
            "needs": list(self.needs),
            "own_plan": own,
            "own_error": self.own_error,
        }


@dataclass(frozen=True)
class FleetPlan:
    plan: Plan
    verdicts: tuple[Verdict, ...]

    def to_dict(self) -> dict[str, object]:
        return {**self.plan.to_dict(), "machines": [v.to_dict() for v in self.verdicts]}


def fleet_platforms(machines: Sequence[Machine]) -> tuple[str, ...]:
    """The machines' platforms, the most common first (it decides the release)."""
    counts: dict[str, int] = {}
    for machine in machines:
        if machine.platform:
            counts[machine.platform] = counts.get(machine.platform, 0) + 1
    order = {p: i for i, p in enumerate(PLATFORMS)}
    return tuple(sorted(counts, key=lambda p: (-counts[p], order.get(p, len(order)))))


def plan_fleet(
    request: PlanRequest,
    machines: Sequence[Machine],
    recipes: Recipes | None = None,
    *,
    own_plans: bool = True,
) -> FleetPlan:
    """One plan every machine can run, with each machine's verdict; FleetError when none.

    ``own_plans``: also plan each machine on its own (for ``--json`` and the error's
    groups); off, only the fleet's plan is made.
    """
    if recipes is None:
        recipes = load_recipes()
    if not machines:
        raise UsageError("no machine to plan for", hints=["pass --machine FILE or a folder"])
    machines = [with_driver_cuda(m, recipes) for m in machines]
    missing = sorted({m.platform or "?" for m in machines} - set(request.platforms))
    if missing:
        names = [m.name for m in machines if (m.platform or "?") in missing]
        raise UsageError(
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''} "
            f"{'is' if len(names) == 1 else 'are'} {', '.join(missing)}, which the plan "
            f"does not target ({', '.join(request.platforms)})",
            hints=[
                "add "
                + " ".join(f"--platform {p}" for p in missing if p in PLATFORMS)
                + " (or drop --platform: the machines' platforms are the default)"
            ],
        )
    cache = _Cache(request, recipes)
    outcome = cache.fleet(machines)
    if isinstance(outcome, FleetPlan):
        if not own_plans:
            return outcome
        verdicts = tuple(
            cache.with_own(v, m) for v, m in zip(outcome.verdicts, machines, strict=True)
        )
        return FleetPlan(outcome.plan, verdicts)
    raise _fleet_error(cache, machines, outcome)


def _signature(machine: Machine) -> tuple[object, ...]:
    return (
        machine.platform,
        machine.driver_version,
        machine.cuda_version,
        tuple(sorted(g.compute_capability or "?" for g in machine.gpus)),
        machine.glibc,
        machine.osx,
    )


class _Cache:
    """Plans and verdicts, each made once per kind of machine."""

    def __init__(self, request: PlanRequest, recipes: Recipes) -> None:
        self.request, self.recipes = request, recipes
        self.owns: dict[tuple[object, ...], tuple[Plan | None, str | None]] = {}

    def fleet(self, machines: Sequence[Machine]) -> FleetPlan | list[Verdict] | PlanError:
        """The fleet's plan, or the verdicts that failed, or the planner's error."""
        kinds = {_signature(m): m for m in machines}
        combined = combined_machine(list(kinds.values()), self.request.platforms[0])
        try:
            plan = make_plan(self.request, combined, self.recipes)
        except PlanError as error:
            return error
        plan = self.per_platform(plan, list(kinds.values()))
        plan = _with_fleet_glibc(plan, list(kinds.values()))
        by_kind = {key: verdict_for(plan, m, self.recipes) for key, m in kinds.items()}
        failed = [v for v in by_kind.values() if not v.ok]
        if failed:
            return failed
        verdicts = tuple(replace(by_kind[_signature(m)], machine=m.name) for m in machines)
        reasons = _binding_reasons(self, plan, list(kinds.values()), machines)
        plan = replace(plan, reasons=(*reasons, *plan.reasons))
        return FleetPlan(plan, verdicts)

    def per_platform(self, plan: Plan, machines: Sequence[Machine]) -> Plan:
        """Each other CUDA platform's variant decided by its own machines' lowest driver.

        The release, Python and source stay the primary platform's (one environment); a
        platform whose machines allow a newer CUDA variant of that release gets it.
        """
        if plan.compute != "cuda" or len(plan.platforms) < 2:
            return plan
        platforms = list(plan.platforms)
        reasons = []
        for index, platform_plan in enumerate(platforms[1:], start=1):
            members = [m for m in machines if m.platform == platform_plan.platform]
            if platform_plan.compute != "cuda" or not any(m.has_nvidia for m in members):
                continue
            request = replace(
                self.request,
                platforms=(platform_plan.platform,),
                pytorch=plan.pytorch,
                python=plan.python,
                source=plan.source,
            )
            try:
                own = make_plan(
                    request, combined_machine(members, platform_plan.platform), self.recipes
                )
            except PlanError:
                continue  # the variant assembled from the primary's stays; verdicts judge it
            chosen = own.platforms[0]
            if chosen.cuda != platform_plan.cuda and chosen.compute == "cuda":
                platforms[index] = chosen
                reasons.append(
                    f"{chosen.platform}: its machines' lowest driver allows CUDA {chosen.cuda} "
                    f"(not {platform_plan.cuda}) for pytorch {plan.pytorch}."
                )
        if not reasons:
            return plan
        return replace(plan, platforms=tuple(platforms), reasons=(*plan.reasons, *reasons))

    def own(self, machine: Machine) -> tuple[Plan | None, str | None]:
        """The best plan ``machine`` gets on its own, or why it gets none."""
        key = _signature(machine)
        if key not in self.owns:
            request = replace(self.request, platforms=(machine.platform or "linux-64",))
            try:
                self.owns[key] = (make_plan(request, machine, self.recipes), None)
            except PlanError as error:
                self.owns[key] = (None, error.message)
        return self.owns[key]

    def with_own(self, verdict: Verdict, machine: Machine) -> Verdict:
        plan, error = self.own(machine)
        return replace(verdict, own_plan=plan, own_error=error)

    def fits(self, machines: Sequence[Machine]) -> FleetPlan | None:
        outcome = self.fleet(machines)
        return outcome if isinstance(outcome, FleetPlan) else None


def combined_machine(machines: Sequence[Machine], primary: str) -> Machine:
    """One machine standing for the fleet: the lowest driver CUDA binds, every GPU counts.

    Machines without an NVIDIA driver do not bind; with none at all the fleet is
    planned as machines without one (a CPU build).
    """
    from conda_torch_plugin.machine.model import Machine as MachineType

    gpu_machines = [m for m in machines if m.has_nvidia and m.platform in _CUDA_PLATFORMS]
    if not gpu_machines:
        return MachineType(None, None, "profile", platform=primary)
    known = [m for m in gpu_machines if m.cuda_version]
    binding = (
        min(
            known,
            key=lambda m: (
                compat.version_tuple(m.cuda_version or "0"),
                compat.version_tuple(m.driver_version or "0"),
            ),
        )
        if len(known) == len(gpu_machines)
        else next(m for m in gpu_machines if not m.cuda_version)
    )
    gpus = [g for m in gpu_machines for g in m.gpus if g.compute_capability]
    unique = list({g.compute_capability: g for g in gpus}.values())
    return MachineType(
        binding.driver_version,
        binding.cuda_version,
        "profile",
        tuple(replace(g, index=i) for i, g in enumerate(unique)),
        platform=primary,
        hostname=binding.hostname,
    )


def verdict_for(plan: Plan, machine: Machine, recipes: Recipes) -> Verdict:
    """What ``plan`` means on ``machine``: the install check's rules, plus glibc and macOS."""
    platform_plan = next((p for p in plan.platforms if p.platform == machine.platform), None)
    if platform_plan is None:
        finding = Finding(
            "error",
            f"the plan has no {machine.platform} build",
            f"add --platform {machine.platform}",
            check="platform",
            code="platform-not-planned",
        )
        return Verdict(machine.name, machine.platform, "cannot", finding.message, (finding,))
    flavour = Flavour(platform_plan.compute, platform_plan.cuda, plan.source)
    findings = machine_findings(
        flavour,
        plan.pytorch,
        platform_plan.platform,
        machine,
        recipes,
        remedies=FleetRemedies(),
        no_driver="info",
    )
    findings += glibc_findings(platform_plan.virtual_packages.get("__glibc"), machine)
    findings += osx_findings(platform_plan.virtual_packages.get("__osx"), machine)
    errors = [f for f in findings if f.severity == "error"]
    build = flavour.label + " build"
    if errors:
        return Verdict(
            machine.name,
            machine.platform,
            "cannot",
            f"{build}: {errors[0].message}",
            tuple(findings),
        )
    if platform_plan.compute != "cuda":
        status: Status = "cpu-build"
        summary = f"{build}" + (
            f" ({len(machine.gpus)} NVIDIA GPU{'s' if len(machine.gpus) != 1 else ''} unused)"
            if machine.gpus
            else ""
        )
    elif not machine.has_nvidia:
        status = "runs-on-cpu"
        summary = f"{build}: no NVIDIA GPU here, it runs on the CPU"
    elif any(f.code == "minor-version-compatibility" for f in findings):
        status = "runs-minor-compat"
        summary = (
            f"{build}: runs through minor-version compatibility "
            f"(driver {machine.driver_version}, CUDA {machine.cuda_version})"
        )
    else:
        status = "runs"
        summary = f"{build}: driver {machine.driver_version} supports CUDA {machine.cuda_version}"
        if machine.gpus and all(g.compute_capability for g in machine.gpus):
            summary += ", every GPU covered"
        elif machine.gpus:
            summary += "; GPU coverage not checked (compute capability unknown)"
    return Verdict(machine.name, machine.platform, status, summary, tuple(findings))


class FleetRemedies:
    """What a machine outside the fleet's environment needs."""

    def cuda_build(self) -> str:
        return "plan it on its own to use its GPUs"

    def cpu_build(self) -> str:
        return "a CPU build (--cpu)"

    def for_driver(self, driver_cuda: str) -> str:
        return f"plan it on its own (--cuda {driver_cuda})"

    def for_gpu(self, cc: str, *, conda_forge: bool) -> str:
        if conda_forge:
            return "another source: --source conda-forge builds for it"
        return f"a build that covers {compat.sm_name(cc)} (plan it on its own)"

    def runtime_check(self) -> str | None:
        return None


def _with_fleet_glibc(plan: Plan, machines: Sequence[Machine]) -> Plan:
    """Each Linux platform's ``__glibc``: the lowest glibc of its machines, where all are known
    and none is below what the build needs (a lower one is that machine's verdict)."""
    platforms = []
    for platform_plan in plan.platforms:
        members = [m for m in machines if m.platform == platform_plan.platform]
        needed = platform_plan.virtual_packages.get("__glibc")
        glibcs = [m.glibc for m in members if m.glibc]
        if needed and glibcs and len(glibcs) == len(members):
            lowest = min(glibcs, key=compat.version_tuple)
            if compat.version_tuple(lowest) > compat.version_tuple(needed):
                packages = {**platform_plan.virtual_packages, "__glibc": lowest}
                platform_plan = replace(platform_plan, virtual_packages=packages)
        platforms.append(platform_plan)
    primary = platforms[0] if platforms else None
    return replace(plan, platforms=tuple(platforms), specs=primary.specs if primary else plan.specs)


def _binding_reasons(
    cache: _Cache, plan: Plan, kinds: Sequence[Machine], machines: Sequence[Machine]
) -> list[str]:
    """Name the machines that bind: the lowest driver, and GPUs only another source covers.

    ``kinds`` holds one machine of each kind, ``machines`` all of them (for the counts).
    """
    reasons: list[str] = []
    gpu_machines = [m for m in kinds if m.has_nvidia and m.cuda_version]
    if plan.compute == "cuda" and plan.cuda and gpu_machines:
        binding = min(gpu_machines, key=lambda m: compat.version_tuple(m.cuda_version or "0"))
        alike = [m for m in machines if _signature(m) == _signature(binding)]
        name = alike[0].name + (f" (and {len(alike) - 1} more like it)" if len(alike) > 1 else "")
        if len(machines) > 1:
            through = (
                " (through minor-version compatibility)"
                if compat.version_tuple(plan.cuda)
                > compat.version_tuple(binding.cuda_version or "0")
                else ""
            )
            reasons.append(
                f"{name}: driver {binding.driver_version} (CUDA {binding.cuda_version}) "
                f"limits the build to CUDA {plan.cuda}{through}."
            )
    if cache.request.source == AUTO and plan.source != NAMES[0]:
        first = replace(cache.request, source=NAMES[0])
        for machine in gpu_machines:
            if machine.platform not in _CUDA_PLATFORMS:
                continue
            try:
                make_plan(
                    replace(first, platforms=(str(machine.platform),)), machine, cache.recipes
                )
            except PlanError as error:
                if "gpu" not in error.failures and "mixed" not in error.failures:
                    continue
                newest = max(
                    (g for g in machine.gpus if g.compute_capability),
                    key=lambda g: compat.parse_cc(g.compute_capability or "0.0"),
                )
                sm = compat.sm_name(newest.compute_capability or "0.0")
                reasons.append(
                    f"{machine.name}: {newest.name or 'GPU'} ({sm}) needs "
                    f"{source(plan.source).where}."
                )
                break
    if len(machines) > 1:
        no_gpu = [m for m in machines if not m.has_nvidia and m.platform in _CUDA_PLATFORMS]
        if no_gpu and plan.compute == "cuda":
            reasons.append(
                f"{len(no_gpu)} machine{'s' if len(no_gpu) != 1 else ''} without an NVIDIA GPU "
                f"({', '.join(m.name for m in no_gpu[:3])}{', ...' if len(no_gpu) > 3 else ''}) "
                f"{'run' if len(no_gpu) != 1 else 'runs'} the CUDA build on the CPU and "
                f"{'do' if len(no_gpu) != 1 else 'does'} not limit it."
            )
    return reasons


def _fleet_error(
    cache: _Cache, machines: Sequence[Machine], outcome: list[Verdict] | PlanError
) -> FleetError:
    """Which groups could share one environment, and what the others need."""
    kinds = list({_signature(m): m for m in machines}.values())
    groups: list[tuple[list[Machine], FleetPlan | None]] = []
    left = list(kinds)
    while left:
        group = [left[0]]
        fleet = cache.fits(group)
        rest = []
        for machine in left[1:]:
            trial = cache.fits([*group, machine]) if fleet is not None else None
            if trial is not None:
                group, fleet = [*group, machine], trial
            else:
                rest.append(machine)
        left = rest
        groups.append((group, fleet))  # None: this kind fits no plan even on its own
    planned = [(g, f) for g, f in groups if f is not None]
    unplannable = [g[0] for g, f in groups if f is None]

    def members(kind_list: Sequence[Machine]) -> list[str]:
        keys = {_signature(k) for k in kind_list}
        return [m.name for m in machines if _signature(m) in keys]

    planned.sort(key=lambda gf: -len(members(gf[0])))
    lines: list[str] = []
    group_dicts: list[dict[str, object]] = []
    for kinds_in, fleet in planned:
        names = members(kinds_in)
        p = fleet.plan
        build = f"CUDA {p.cuda}" if p.cuda else p.compute.upper()
        what = f"pytorch {p.pytorch} {build} from {source(p.source).subject}"
        lines.append(f"{_names(names)}: {what}")
        group_dicts.append(
            {
                "machines": names,
                "pytorch": p.pytorch,
                "compute": p.compute,
                "cuda": p.cuda,
                "source": p.source,
            }
        )
    best = planned[0][1].plan if planned else None
    machine_dicts: list[dict[str, object]] = []
    needs: list[str] = []
    in_best = set(members(planned[0][0])) if planned else set()
    for machine in machines:
        if machine.name in in_best:
            continue
        if best is not None:
            verdict = verdict_for(best, machine, cache.recipes)
        else:
            verdict = Verdict(machine.name, machine.platform, "cannot", "no plan", ())
        verdict = cache.with_own(verdict, machine)
        machine_dicts.append(verdict.to_dict())
        if len(needs) < 8:
            need = "; ".join(verdict.needs) or verdict.own_error or "another environment"
            problem = "; ".join(f.message for f in verdict.findings if f.severity == "error")
            needs.append(f"{machine.name}: {problem or verdict.summary} -> needs {need}")
    for kind in unplannable:
        error = cache.own(kind)[1]
        if error and len(needs) < 8:
            needs.append(f"{', '.join(members([kind]))}: no environment at all: {error}")
    message = (
        f"No single environment serves all {len(machines)} machines. Groups that could "
        "each share one: " + "; ".join(lines or ["none"])
    )
    if isinstance(outcome, PlanError) and not lines:
        message += f" ({outcome.message})"
    hints = [*needs, "plan each group with its own -f FILE (e.g. gpu-old.yml, gpu-new.yml)"]
    hints.append("a CPU environment (--cpu) runs on all of them, without their GPUs")
    return FleetError(message, hints=hints, groups=group_dicts, machines=machine_dicts)


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
