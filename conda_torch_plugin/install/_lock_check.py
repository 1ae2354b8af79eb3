"""Can this machine run what the lock holds for a platform? Checked before anything is fetched.

The lock's side is here: the platform must be in the lock, and the torch
build's flavour is read from its packages. The machine's side (driver CUDA vs
the locked CUDA, minor-version compatibility, GPU coverage) is
``machine.check``'s, shared with the doctor. Install refuses a CUDA build on a
machine without a driver (the doctor only warns about one already installed),
and its fixes re-plan the lock rather than recreate an environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conda_torch_plugin.errors import IncompatibleMachine
from conda_torch_plugin.findings import Finding
from conda_torch_plugin.flavour import TORCH_NAMES, UNKNOWN, Flavour, lock_flavour
from conda_torch_plugin.machine.check import (
    floor_findings,
    machine_findings,
    system_floors,
    with_driver_cuda,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from conda_torch_plugin.condalock.lockfile import LockedPackage, LockFile
    from conda_torch_plugin.findings import Severity
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.recipes import Recipes


@dataclass(frozen=True)
class MachineCheck:
    platform: str
    flavour: Flavour
    pytorch: str | None  # the locked pytorch version
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def raise_if_incompatible(self) -> None:
        if self.ok:
            return
        raise IncompatibleMachine(
            "this machine cannot run what the lock holds for "
            f"{self.platform} ({self.flavour.label} build): "
            + "; ".join(_with_detail(f) for f in self.errors),
            hints=[*(f.fix for f in self.errors if f.fix), "use --force to install anyway"],
            platform=self.platform,
            findings=self.errors,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "platform": self.platform,
            "ok": self.ok,
            "flavour": self.flavour.to_dict(),
            "pytorch": self.pytorch,
            "findings": [f.to_dict() for f in self.findings],
        }


def check_machine(
    lock: LockFile,
    platform: str,
    detection: Machine,
    recipes: Recipes | None,
    *,
    no_driver: Severity = "error",
    floors: Mapping[str, str] | None = None,
    env_file: str | None = None,
) -> MachineCheck:
    """Can this machine (``detection``) run the lock's ``platform``? Pure; never raises.

    ``no_driver``: how bad a CUDA build on a machine without an NVIDIA driver is (an
    error, unless the lock was planned for such a machine too); ``floors``: the
    platform's virtual packages the lock was solved for (its ``__glibc`` and ``__osx``),
    checked against the machine's C library and macOS where known;
    ``env_file``: the environment file the fixes name (``-f``), when not environment.yml.
    """
    remedies = LockRemedies(env_file)
    packages = lock.packages_for(platform)
    if not packages:
        finding = Finding(
            "error",
            f"the lock holds no packages for {platform} (it holds: "
            f"{', '.join(lock.platforms) or 'none'})",
            f"lock this platform too: {remedies.lock} --platform {platform}",
            check="platform",
            code="platform-not-locked",
        )
        return MachineCheck(platform, UNKNOWN, None, (finding,))
    flavour = lock_flavour(packages)
    torch = _torch_package(packages)
    pytorch = torch.version if torch else None
    if flavour.compute != "unknown":
        findings = machine_findings(
            flavour,
            pytorch,
            platform,
            detection,
            recipes,
            remedies=remedies,
            no_driver=no_driver,
        )
    elif torch is None:
        findings = [
            Finding("info", "the lock holds no PyTorch package", check="pytorch", code="no-pytorch")
        ]
    else:
        findings = [
            Finding(
                "warning",
                f"cannot tell which flavour pytorch {torch.version} {torch.build} is; "
                "driver and GPU checks skipped",
                check="pytorch",
                code="unknown-build",
            )
        ]
    # conda refuses packages whose __glibc/__osx the machine does not meet while it
    # solves; an install from a lock solves nothing, so their own bounds are read here.
    needed = system_floors(
        (f"{name} {spec}" for p in packages for name, spec in p.dependencies.items()),
        assumed=floors or {},
    )
    findings += floor_findings(needed, detection)
    return MachineCheck(platform, flavour, pytorch, tuple(findings))


class LockRemedies:
    """Install's way out: re-plan and re-lock for this machine (the lock is the input).

    ``env_file``: the environment file, named with ``-f`` in every command when it is
    not environment.yml (its lock and virtual packages are named after it).
    """

    def __init__(self, env_file: str | None = None) -> None:
        flag = f" -f {env_file}" if env_file and env_file != "environment.yml" else ""
        self.write = f"conda torch-env write{flag}"
        self.lock = f"conda torch-env lock{flag}"

    def cuda_build(self) -> str:
        return f"{self.write} && {self.lock}"

    def cpu_build(self) -> str:
        return f"{self.write} --cpu && {self.lock}"

    def for_driver(self, driver_cuda: str) -> str:
        return f"re-plan for this driver: {self.write} --cuda {driver_cuda} && {self.lock}"

    def for_gpu(self, cc: str, *, conda_forge: bool) -> str:
        source = " --source conda-forge" if conda_forge else ""
        return f"re-plan for it: {self.write} --gpu-arch {cc}{source} && {self.lock}"

    def runtime_check(self) -> str | None:
        return None  # nothing is installed yet to run


def _torch_package(packages: Sequence[LockedPackage]) -> LockedPackage | None:
    by_name = {p.name: p for p in packages}
    return next((by_name[n] for n in TORCH_NAMES if n in by_name), None)


def _with_detail(finding: Finding) -> str:
    """The message, with detection notes (why no driver was found) in parentheses."""
    if not finding.detail:
        return finding.message
    return f"{finding.message} ({'; '.join(finding.detail.splitlines())})"


@dataclass(frozen=True)
class FleetCheck:
    """The lock against every machine an environment file was planned for."""

    machine: str
    check: MachineCheck

    def to_dict(self) -> dict[str, object]:
        return {"machine": self.machine, **self.check.to_dict()}


def check_fleet(
    lock: LockFile,
    machines: Sequence[Machine],
    recipes: Recipes | None,
    *,
    floors: Mapping[str, Mapping[str, str]] | None = None,
) -> list[FleetCheck]:
    """``check_machine`` for each machine on its own platform (the same rules as install).

    A machine without an NVIDIA driver is not an error: it runs the CUDA build on the
    CPU, as the plan said. ``floors``: per platform, the virtual packages the lock assumed.
    """
    results = []
    for machine in machines:
        if recipes is not None:
            machine = with_driver_cuda(machine, recipes)
        platforms = [machine.platform] if machine.platform else list(lock.platforms)
        for platform in platforms:
            result = check_machine(
                lock,
                platform,
                machine,
                recipes,
                no_driver="info",
                floors=(floors or {}).get(platform),
            )
            results.append(FleetCheck(machine.name, result))
    return results
