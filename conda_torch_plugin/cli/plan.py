"""`conda torch-env plan`: which PyTorch release and build fit this machine, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin.cli._options import add_channel_alias, add_json, add_plan_arguments
from conda_torch_plugin.sources import source

if TYPE_CHECKING:
    import argparse

    from conda_torch_plugin.plan import Plan
    from conda_torch_plugin.plan.fleet import FleetPlan

HELP = "choose the PyTorch release, CUDA build and channels for this machine, and explain why"
EPILOG = """\
examples:
  conda torch-env plan                              this machine (detects the driver and GPUs)
  conda torch-env plan --cuda 12.4 --gpu-arch 8.6   a driver with CUDA 12.4 and an RTX 30xx
  conda torch-env plan --pytorch 2.2 --cuda 12.1    the newest 2.2.x for a CUDA 12.1 driver
  conda torch-env plan --cpu                        a CPU-only build
  conda torch-env plan --gpu-arch 12.0 --cuda 12.8  an RTX 50xx: conda-forge, since the pytorch
                                                    channel has no sm_120 build
  conda torch-env plan --platform linux-64 --platform win-64 --platform osx-arm64
                                                    one plan, the right variant per platform
  conda torch-env plan --json                       the plan as one JSON object
  conda torch-env plan --machine machines/          one environment for every machine whose
                                                    profile is in machines/ (detect --save,
                                                    or nvidia-smi's CSV / XML)

Candidates are what the channels hold (their repodata, cached like lock's;
--offline: the cache, else the snapshot bundled with this version).
The choice: the newest release that fits, then its highest CUDA variant the driver
supports (else one of the same CUDA major through minor-version compatibility, with
a warning), covering every GPU's compute capability. The pytorch + nvidia channels
when they can serve it (they stop at PyTorch 2.5.1), otherwise conda-forge.
"""

# Rejected candidates shown in text mode; --json lists them all.
_REJECTED_SHOWN = 8


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_plan_arguments(parser)
    add_channel_alias(parser)
    add_json(parser)


def execute(args: argparse.Namespace) -> int:
    from conda_torch_plugin.cli._options import plan_from_args
    from conda_torch_plugin.cli.render import print_json

    if args.machines:
        from conda_torch_plugin.cli._options import fleet_from_args

        fleet = fleet_from_args(args, own_plans=args.json)
        if args.json:
            print_json(fleet.to_dict())
        else:
            print(render_plan(fleet.plan))
            print()
            print(render_verdicts(fleet))
        return 0
    plan, _, _ = plan_from_args(args)
    if args.json:
        print_json(plan.to_dict())
    else:
        print(render_plan(plan))
    return 0


def render_verdicts(fleet: FleetPlan) -> str:
    """One line per machine: whether the plan runs there and how."""
    lines = [f"Machines ({len(fleet.verdicts)}):"]
    width = max((len(v.machine) for v in fleet.verdicts), default=0)
    for verdict in fleet.verdicts:
        mark = "ok" if verdict.status == "runs" else verdict.status
        lines.append(
            f"  {verdict.machine.ljust(width)}  {(verdict.platform or '?').ljust(9)}  "
            f"{mark}: {verdict.summary}"
        )
    return "\n".join(lines)


def render_plan(plan: Plan) -> str:
    """The plan as readable text: what, where from, the specs, then why."""
    flavour = f"CUDA {plan.cuda}" if plan.cuda else plan.compute.upper()
    where = source(plan.source).subject
    lines = [f"pytorch {plan.pytorch} ({flavour}) from {where}"]
    companions = [f"python {plan.python}"]
    if plan.torchvision:
        companions.append(f"torchvision {plan.torchvision}")
    if plan.torchaudio:
        companions.append(f"torchaudio {plan.torchaudio}")
    lines.append("  " + ", ".join(companions))
    lines.append(f"  channels: {', '.join(plan.channels)}")
    if plan.newer:
        lines.append(f"  newer: {plan.newer}")
    for platform in plan.platforms:
        build = f"CUDA {platform.cuda}" if platform.cuda else platform.compute.upper()
        virtual = " ".join(f"{k}={v}" for k, v in platform.virtual_packages.items())
        lines.append(f"  {platform.platform} ({build}{'; ' + virtual if virtual else ''}):")
        lines += [f"    - {spec}" for spec in platform.specs]
    lines.append("")
    lines.append("Why:")
    lines += [f"  - {reason}" for reason in plan.reasons]
    if plan.warnings:
        lines.append("")
        lines.append("Warnings:")
        lines += [f"  ! {warning}" for warning in plan.warnings]
    if plan.rejected:
        lines.append("")
        lines.append(f"Rejected ({len(plan.rejected)}):")
        for rejection in plan.rejected[:_REJECTED_SHOWN]:
            lines.append(f"  - {rejection.candidate}: {rejection.reason}")
        if len(plan.rejected) > _REJECTED_SHOWN:
            lines.append(
                f"  ... and {len(plan.rejected) - _REJECTED_SHOWN} more (--json lists all)"
            )
    if plan.sources:
        lines.append("")
        lines.append(f"Sources: {', '.join(plan.sources)} (recipes/sources.json)")
    return "\n".join(lines)
