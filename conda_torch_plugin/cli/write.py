"""`conda torch-env write`: pin the plan into environment.yml and virtual-packages.yml."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.cli._options import add_channel_alias, add_json, add_plan_arguments
from conda_torch_plugin.condalock import ENVIRONMENT_FILENAME
from conda_torch_plugin.sources import BASE_CHANNELS, source

if TYPE_CHECKING:
    import argparse

    from conda_torch_plugin.cli._options import Planned
    from conda_torch_plugin.envfile import WriteResult
    from conda_torch_plugin.plan import Plan

HELP = "write an environment.yml (and virtual-packages.yml) pinning the plan"
EPILOG = """\
examples:
  conda torch-env write
      plan for this machine and write ./environment.yml and ./virtual-packages.yml
  conda torch-env write --dry-run
      print both files instead of writing them
  conda torch-env write -f envs/gpu.yml -n gpu --cuda 12.4 --platform linux-64 --platform win-64
      a two-platform file for CUDA 12.4 machines (conda-lock selectors pick the lines)
  conda torch-env write --source conda-forge --cuda 13.0
      the newest PyTorch from conda-forge, CUDA 13.0 build
  conda torch-env write -f gpu.yml --machine machines/
      one environment every machine profiled in machines/ can run (gpu.yml,
      gpu.virtual-packages.yml; lock it into gpu.conda-lock.yml)

The file records what it was planned for (platforms, machines, CUDA build, source)
in a header comment; a later `write` without --platform/--cuda/--cpu/--gpu-arch/
--driver/--machine/--source re-plans for the same targets on any machine, and
changing them prints what changes.

An existing file keeps its comments, order and other packages: only the torch
packages (python, pytorch, torchvision, torchaudio, pytorch-cuda, cpuonly,
cuda-version, mkl, ...), channels and platforms change.
"""

DEFAULT_FILE = ENVIRONMENT_FILENAME


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        default=DEFAULT_FILE,
        metavar="FILE",
        help=f"the environment file to write or update (default: ./{DEFAULT_FILE}); "
        "virtual-packages.yml goes beside it (STEM.virtual-packages.yml for STEM.yml)",
    )
    parser.add_argument(
        "-n", "--name", help="the environment's name: (default: keep the file's, or 'torch')"
    )
    add_plan_arguments(parser)
    add_channel_alias(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the files instead of writing them"
    )
    add_json(parser)


def execute(args: argparse.Namespace) -> int:
    from conda_torch_plugin.cli._options import plan_for_file
    from conda_torch_plugin.cli.render import print_json
    from conda_torch_plugin.envfile import write_environment

    path = Path(args.file)
    planned = plan_for_file(args, path)
    plan = planned.plan
    old_text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    result = write_environment(
        plan,
        path,
        name=args.name,
        command=write_command(args),
        dry_run=args.dry_run,
        targets=planned.targets,
    )
    changes = target_changes(planned, old_text, result.environment_yml, path)
    if args.json:
        print_json(
            {
                "targets": json.loads(planned.targets.to_json()),
                "targets_kept": planned.kept,
                "target_changes": changes,
                "machines": [v.to_dict() for v in planned.fleet.verdicts] if planned.fleet else [],
                "environment_file": str(result.environment_file.absolute()),
                "virtual_packages_file": str(result.virtual_packages_file.absolute()),
                "written": result.written,
                "changed": result.changed,
                "plan": plan.to_dict(),
                "environment_yml": result.environment_yml,
                "virtual_packages_yml": result.virtual_packages_yml,
                "warnings": list(plan.warnings) + list(result.warnings),
            }
        )
        return 0
    for warning in (*plan.warnings, *result.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    for line in changes:
        print(line, file=sys.stderr)
    if args.dry_run:
        print(render_dry_run(result), end="")
    else:
        print(render_text(plan, result))
    return 0


def target_changes(planned: Planned, old_text: str | None, new_text: str, path: Path) -> list[str]:
    """Lines saying how a rewrite changes what the file was planned for (empty: it does not).

    Kept targets say so in one line; changed ones (only ever by explicit flags) name each
    change and the torch lines that go and come, so a CUDA file never silently becomes a
    CPU file and no platform is dropped without a word.
    """
    from conda_torch_plugin.envfile import spec_changes

    recorded = planned.recorded
    if recorded is None:
        return []
    if planned.kept:
        how = "inferred from the file" if recorded.inferred else "recorded in it"
        return [
            f"note: re-planned {path} for its targets ({how}): "
            f"{', '.join(recorded.platforms)}, {planned.targets.build}; "
            "pass --platform/--cuda/--cpu/--machine to change them"
        ]
    changes = recorded.changes_to(planned.targets)
    if not changes:
        return []
    lines = [f"warning: {path} changes what it is planned for: {'; '.join(changes)}"]
    lines += [f"  {line}" for line in spec_changes(old_text, new_text)]
    return lines


def write_command(args: argparse.Namespace) -> str:
    """The command line that writes the same file again, flags in a fixed order.

    Built from the parsed flags (not sys.argv) so it holds no machine paths: ``-f``
    keeps only the file name, since the header says to run it in the file's folder.
    """
    parts = ["conda", "torch-env", "write"]
    file_name = Path(args.file).name
    if file_name != DEFAULT_FILE:
        parts += ["-f", file_name]
    if args.name:
        parts += ["-n", args.name]
    folder = Path(args.file).absolute().parent
    for machine in args.machines:
        relative = os.path.relpath(Path(machine).absolute(), folder).replace(os.sep, "/")
        parts += ["--machine", relative]
    for platform in args.platforms or ():
        parts += ["--platform", platform]
    if args.source not in (None, "auto"):
        parts += ["--source", args.source]
    if args.pytorch:
        parts += ["--pytorch", args.pytorch]
    if args.python:
        parts += ["--python", args.python]
    if args.cpu:
        parts.append("--cpu")
    if args.cuda is not None:
        parts += ["--cuda", args.cuda]
    for arch in args.gpu_arch:
        parts += ["--gpu-arch", arch]
    if args.driver:
        parts += ["--driver", args.driver]
    if args.base_channel != BASE_CHANNELS[0]:
        parts += ["--base-channel", args.base_channel]
    return shlex.join(parts)


def plan_summary(plan: Plan) -> str:
    build = f"CUDA {plan.cuda}" if plan.compute == "cuda" else plan.compute.upper()
    where = source(plan.source).subject
    return f"pytorch {plan.pytorch} ({build} build) from {where}, python {plan.python}"


def render_text(plan: Plan, result: WriteResult) -> str:
    from conda_torch_plugin.envfile import dependency_lines

    env, vp = result.environment_file, result.virtual_packages_file
    if not result.changed:
        lines = [f"{env} and {vp} are already up to date."]
    else:
        verb = "Updated" if result.updated else "Wrote"
        lines = [f"{verb} {env} and {vp}."]
    lines.append(f"Plan: {plan_summary(plan)}")
    lines.append("Pinned:")
    all_platforms = [p.platform for p in plan.platforms]
    specs: dict[str, list[str]] = {}
    for platform_plan in plan.platforms:
        for spec in platform_plan.specs:
            specs.setdefault(spec, []).append(platform_plan.platform)
    if not plan.platforms:
        specs = {spec: [] for spec in plan.specs}
    width = max((len(s) for s in specs), default=0)
    for spec, platforms in specs.items():
        only = "" if len(platforms) in (0, len(all_platforms)) else f"  ({', '.join(platforms)})"
        lines.append(f"  {spec.ljust(width) if only else spec}{only}")
    lock = "conda torch-env lock" + (
        "" if env.name == DEFAULT_FILE and env.parent == Path() else f" -f {env}"
    )
    if any(token for _, token in dependency_lines(plan)):
        # conda reads the "# [linux64]" selectors as plain comments; only conda-lock applies them.
        lines.append(
            f"Next: {lock}   (the per-platform lines need a lock: conda env create "
            "ignores their selectors)"
        )
    else:
        lines.append(f"Next: {lock}   (or: conda env create -f {env})")
    return "\n".join(lines)


def render_dry_run(result: WriteResult) -> str:
    return (
        f"# --- {result.environment_file} (dry run: not written) ---\n"
        f"{result.environment_yml}"
        f"# --- {result.virtual_packages_file} (dry run: not written) ---\n"
        f"{result.virtual_packages_yml}"
    )
