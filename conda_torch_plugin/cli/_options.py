"""Argument groups shared by several verbs, and their conversion to core requests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import UsageError
from conda_torch_plugin.sources import (
    BASE_CHANNELS,
    DEFAULT_SOURCE_SETTING,
    DEFAULT_SOURCE_VARIABLE,
    SOURCE_CHOICES,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from conda_torch_plugin.envfile.targets import Targets
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.network import NetworkSettings
    from conda_torch_plugin.plan import Plan, PlanRequest
    from conda_torch_plugin.plan.fleet import FleetPlan

PLATFORM_CHOICES = ("linux-64", "linux-aarch64", "win-64", "osx-arm64", "osx-64")
_VERSION_XY = re.compile(r"^\d+\.\d+$")
# nvcc's spellings of a compute capability: 86, sm_86, sm_90a, compute_120, sm_100f.
_COMPACT_ARCH = re.compile(
    r"^(?:sm_|compute_)?(?P<major>\d{1,2})(?P<minor>\d)[af]?$", re.IGNORECASE
)


def gpu_arch(value: str) -> str:
    """A compute capability as MAJOR.MINOR: ``8.6``, ``86``, ``sm_86`` and ``sm_86a`` give ``8.6``.

    The ``a``/``f`` suffixes name architecture-specific code of the same
    capability, so they describe the same GPU.
    """
    import argparse

    text = value.strip()
    if _VERSION_XY.match(text):
        return text
    compact = _COMPACT_ARCH.match(text)
    if compact:
        return f"{int(compact['major'])}.{compact['minor']}"
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a compute capability: write it as 8.6 (or 86, sm_86)"
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags describing the request and, optionally, a machine other than this one."""
    group = parser.add_argument_group("what to plan for (default: this machine)")
    group.add_argument(
        "--cuda",
        metavar="X.Y",
        help="the driver's maximum CUDA version; wins over detection and CONDA_OVERRIDE_CUDA",
    )
    group.add_argument("--cpu", action="store_true", help="plan a CPU-only build")
    group.add_argument(
        "--gpu-arch",
        metavar="X.Y",
        type=gpu_arch,
        action="append",
        default=[],
        help="a GPU compute capability to cover, e.g. 8.6 (also 86, sm_86); repeatable; "
        "replaces the detected GPUs",
    )
    group.add_argument(
        "--driver", metavar="VERSION", help="the NVIDIA driver version, e.g. 550.54.15"
    )
    group.add_argument(
        "--machine",
        dest="machines",
        metavar="PATH",
        action="append",
        default=[],
        help="plan one environment every listed machine can run: a profile (detect --json, "
        "nvidia-smi CSV or XML) or a folder of them; repeatable",
    )
    group.add_argument(
        "--platform",
        dest="platforms",
        action="append",
        choices=PLATFORM_CHOICES,
        metavar="PLATFORM",
        help=f"target platform (repeatable; one of {', '.join(PLATFORM_CHOICES)}); "
        "default: this one",
    )
    group.add_argument(
        "--pytorch", metavar="SPEC", help="PyTorch version or range, e.g. 2.2 or '>=2.3'"
    )
    group.add_argument("--python", metavar="X.Y", help="Python version (default: newest supported)")
    group.add_argument(
        "--source",
        choices=SOURCE_CHOICES,
        default=None,
        help="where PyTorch comes from (default: auto = the pytorch+nvidia channels when they "
        "can serve the request, else conda-forge; a team sets its own with conda's "
        f"{DEFAULT_SOURCE_SETTING} setting or ${DEFAULT_SOURCE_VARIABLE})",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        help="read no channel: plan from the repodata cache, else the snapshot bundled with "
        "this version (inside conda, conda's offline setting also applies)",
    )
    group.add_argument(
        "--base-channel",
        choices=BASE_CHANNELS,
        default=BASE_CHANNELS[0],
        help="channel for everything outside the torch family (default: conda-forge)",
    )


def check_version_xy(value: str | None, flag: str) -> str | None:
    if value is None or value == "":
        return value
    if not _VERSION_XY.match(value):
        raise UsageError(
            f"{flag} {value!r} is not a version like 12.4",
            hints=[f"write {flag} as MAJOR.MINOR, e.g. {flag} 12.4"],
        )
    return value


def plan_inputs_from_args(args: argparse.Namespace) -> tuple[PlanRequest, Machine]:
    """The PlanRequest the flags ask for and the machine to plan for.

    This machine is detected unless ``--cpu`` is given or the flags describe it
    completely (``--cuda`` and ``--gpu-arch``); ``--gpu-arch`` replaces the
    detected GPUs, ``--driver`` the detected driver version and ``--cuda`` the
    driver's CUDA version. Without ``--platform`` the plan is for this platform.
    """
    from conda_torch_plugin.compat import current_platform
    from conda_torch_plugin.machine.model import with_flags

    check_version_xy(args.cuda, "--cuda")
    check_version_xy(args.python, "--python")
    here = current_platform()
    platforms = tuple(args.platforms or ())
    if not platforms:
        if here is None:
            raise UsageError(
                "this machine's conda platform is not one PyTorch is built for",
                hints=["name the target with --platform (linux-64, win-64, osx-arm64, ...)"],
            )
        platforms = (here,)
    detected = None
    recorded = getattr(args, "recorded_machine", False)  # re-planning a file's targets
    if not args.cpu and not (args.cuda and args.gpu_arch) and not recorded:
        from conda_torch_plugin.machine.detect import detect

        detected = detect(cuda_override=args.cuda)
    machine = with_flags(
        detected,
        platform=here,
        cuda=args.cuda,
        driver=args.driver,
        gpu_archs=tuple(args.gpu_arch),
    )
    return _plan_request(args, platforms), machine


def fleet_inputs_from_args(args: argparse.Namespace) -> tuple[PlanRequest, list[Machine]]:
    """The request and the machines of ``--machine``; platforms default to the machines'."""
    from conda_torch_plugin.machine.profiles import read_machines
    from conda_torch_plugin.plan.fleet import fleet_platforms

    for flag, value in (
        ("--cuda", args.cuda),
        ("--driver", args.driver),
        ("--gpu-arch", args.gpu_arch),
    ):
        if value:
            raise UsageError(
                f"{flag} describes one machine; it cannot be combined with --machine",
                hints=["describe every machine in its profile, or drop --machine"],
            )
    check_version_xy(args.python, "--python")
    machines = read_machines(args.machines)
    platforms = tuple(args.platforms or ()) or fleet_platforms(machines)
    return _plan_request(args, platforms), machines


def _plan_request(args: argparse.Namespace, platforms: tuple[str, ...]) -> PlanRequest:
    """The flags every plan takes, for the target ``platforms``."""
    from conda_torch_plugin.plan import PlanRequest

    return PlanRequest(
        platforms=platforms,
        cpu=args.cpu,
        pytorch=args.pytorch,
        python=args.python,
        source=args.source or _default_source(args),
        base_channel=args.base_channel,
    )


def fleet_from_args(args: argparse.Namespace, *, own_plans: bool) -> FleetPlan:
    """The fleet plan ``--machine`` asks for, over what the channels hold (as plan_from_args)."""
    from dataclasses import replace

    from conda_torch_plugin.plan.candidates import from_channels
    from conda_torch_plugin.plan.fleet import plan_fleet

    request, machines = fleet_inputs_from_args(args)
    alias, custom = mirror_from_args(args)
    candidates = from_channels(
        request.platforms,
        channel_alias=alias,
        custom_channels=custom,
        offline=_offline(args),
        read=_channel_reader(args),
    )
    fleet = plan_fleet(request, machines, candidates.recipes, own_plans=own_plans)
    plan = replace(fleet.plan, reasons=fleet.plan.reasons + candidates.notes)
    return replace(fleet, plan=plan)


TARGET_FLAGS = ("machines", "platforms", "cuda", "cpu", "gpu_arch", "driver")


def has_target_flags(args: argparse.Namespace) -> bool:
    """Whether the flags say what to plan for (else a file's recorded targets are kept)."""
    return any(getattr(args, flag, None) for flag in TARGET_FLAGS) or args.source is not None


@dataclass(frozen=True)
class Planned:
    """A plan for ``write``/``create``, what it was planned for, and what that changed."""

    plan: Plan
    request: PlanRequest
    machine: Machine | None  # the one machine (None for a fleet)
    fleet: FleetPlan | None
    targets: Targets
    recorded: Targets | None  # what the file recorded before
    kept: bool  # the recorded targets were re-planned (no target flags)


def plan_for_file(args: argparse.Namespace, env_path: Path) -> Planned:
    """Plan for the flags, or, without target flags, for the targets ``env_path`` records.

    ``args`` is completed with the recorded targets, so the header's command names them.
    """
    import os

    from conda_torch_plugin.condalock import virtual_packages_for_env
    from conda_torch_plugin.envfile.targets import Targets, read_targets

    recorded = read_targets(env_path, virtual_packages_for_env(env_path))
    kept = recorded is not None and not has_target_flags(args)
    if recorded is not None and kept:
        args.platforms = list(recorded.platforms)
        args.source = recorded.source
        args.pytorch = args.pytorch or recorded.pins.get("pytorch")
        args.python = args.python or recorded.pins.get("python")
        args.cpu = (
            recorded.cpu or recorded.planned.get("compute") == "cpu" and not (recorded.machines)
        )
        if recorded.machines:
            args.machines = [str(env_path.parent / m) for m in recorded.machines]
        elif recorded.machine is not None:
            was = recorded.machine
            args.cuda = was.get("cuda") or None
            args.driver = was.get("driver") or None
            args.gpu_arch = list(was.get("gpu_arch") or [])
            args.recorded_machine = True
    fleet = None
    machine: Machine | None = None
    if args.machines:
        fleet = fleet_from_args(args, own_plans=False)
        plan = fleet.plan
        request, _ = fleet_inputs_from_args(args)
    else:
        plan, request, machine = plan_from_args(args)
    base = env_path.absolute().parent
    targets = Targets(
        platforms=tuple(p.platform for p in plan.platforms),
        source=args.source,  # as given: None follows the default source setting
        cpu=request.cpu,
        machines=tuple(
            os.path.relpath(Path(m).absolute(), base).replace(os.sep, "/") for m in args.machines
        ),
        machine=None
        if machine is None or request.cpu
        else {
            "name": machine.hostname,
            "driver": machine.driver_version,
            "cuda": machine.cuda_version,
            "gpu_arch": [g.compute_capability for g in machine.gpus if g.compute_capability],
        },
        planned={"compute": plan.compute, "cuda": plan.cuda, "source": plan.source},
        pins={k: v for k, v in (("pytorch", args.pytorch), ("python", args.python)) if v},
    )
    return Planned(plan, request, machine, fleet, targets, recorded, kept)


def _default_source(args: argparse.Namespace) -> str:
    import os

    from conda_torch_plugin.sources import default_source

    setting = None
    if getattr(args, "inside_conda", False):
        from conda_torch_plugin._conda import settings

        setting = settings.plugin_setting(DEFAULT_SOURCE_SETTING)
    return default_source(setting, os.environ)


def plan_from_args(args: argparse.Namespace) -> tuple[Plan, PlanRequest, Machine]:
    """The plan the flags ask for, over what the channels hold (``--channel-alias``,
    ``--offline``; inside conda, conda's channel and offline settings)."""
    from conda_torch_plugin.plan import plan_from_channels

    request, machine = plan_inputs_from_args(args)
    alias, custom = mirror_from_args(args)
    plan = plan_from_channels(
        request,
        machine,
        channel_alias=alias,
        custom_channels=custom,
        offline=_offline(args),
        read=_channel_reader(args),
    )
    return plan, request, machine


def _channel_reader(args: argparse.Namespace) -> Callable[..., Any]:
    """How the plan reads a channel's records: with conda's network settings (as lock does)."""
    from functools import partial

    from conda_torch_plugin.sources.records import query

    return partial(query, network=network_from_args(args))


def _offline(args: argparse.Namespace) -> bool:
    """``--offline``, ``CONDA_OFFLINE``, or (inside conda) conda's offline setting."""
    import os

    offline = bool(getattr(args, "offline", False)) or _truthy(os.environ.get("CONDA_OFFLINE"))
    if not offline and getattr(args, "inside_conda", False):
        from conda_torch_plugin._conda import settings

        offline = settings.offline()
    return offline


def _truthy(value: str | None) -> bool:
    """conda's reading of a boolean environment variable (CONDA_OFFLINE=true)."""
    return (value or "").strip().lower() in ("1", "true", "yes", "on", "y")


def add_prefix_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    target = parser.add_mutually_exclusive_group(required=required)
    target.add_argument("-n", "--name", help="environment name (in conda's envs_dirs)")
    target.add_argument("-p", "--prefix", help="environment folder")


def add_channel_alias(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--channel-alias",
        metavar="URL",
        help="serve channel names from URL/NAME (a mirror, or a file:// tree); "
        "inside conda, conda's channel_alias/custom_channels are the default",
    )


def mirror_from_args(args: argparse.Namespace) -> tuple[str | None, dict[str, str] | None]:
    """(channel alias, custom channels) for every verb that reads channels.

    ``--channel-alias``, else, inside conda, conda's ``channel_alias`` (when not
    the public default) and ``custom_channels``; outside conda, neither (None).
    """
    from conda_torch_plugin.channels import DEFAULT_CHANNEL_ALIAS, normalize_alias

    if getattr(args, "channel_alias", None):
        return normalize_alias(args.channel_alias), None
    if not getattr(args, "inside_conda", False):
        return None, None
    from conda_torch_plugin._conda import settings

    alias = settings.channel_alias()
    if alias and alias.rstrip("/") == DEFAULT_CHANNEL_ALIAS:
        alias = None
    return alias, settings.custom_channels() or None


def add_offline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use only cached repodata and packages; fail naming what is missing "
        "(inside conda, conda's offline setting is the default)",
    )


def network_from_args(args: argparse.Namespace) -> NetworkSettings:
    """Inside conda, conda's network settings; outside, the environment's; ``--offline`` on top."""
    from conda_torch_plugin.network import from_environ

    settings = None
    if getattr(args, "inside_conda", False):
        from conda_torch_plugin._conda import settings as conda_settings

        settings = conda_settings.network_settings()
    if settings is None:
        settings = from_environ()
    return settings.with_offline(bool(getattr(args, "offline", False)))


def pkgs_dir_from_args(args: argparse.Namespace) -> Path | None:
    """conda's first writable ``pkgs_dirs`` inside conda; None (this tool's cache) outside."""
    if not getattr(args, "inside_conda", False):
        return None
    from pathlib import Path

    from conda_torch_plugin._conda import settings as conda_settings

    found = conda_settings.package_cache()
    return Path(found) if found else None
