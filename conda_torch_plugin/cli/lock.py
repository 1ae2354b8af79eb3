"""``conda torch-env lock``: a multi-platform conda-lock.yml from environment.yml."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from conda_torch_plugin.cli._options import (
    add_channel_alias,
    add_json,
    add_offline,
    mirror_from_args,
    network_from_args,
)

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from conda_torch_plugin.install import FleetCheck
    from conda_torch_plugin.lock import CheckResult, LockResult

HELP = "lock the environment for several platforms into conda-lock.yml"

EPILOG = """\
examples:
  conda torch-env lock
      solve environment.yml for its platforms (else linux-64, win-64, osx-arm64) with the
      virtual packages of virtual-packages.yml beside it, and write conda-lock.yml
  conda torch-env lock --platform linux-64 --platform win-64 --explicit
      two platforms, plus conda-linux-64.lock and conda-win-64.lock for `conda create --file`
  conda torch-env lock --check
      exit 0 if conda-lock.yml matches environment.yml and virtual-packages.yml and every
      machine environment.yml was planned for can run it (driver, GPUs, glibc, macOS); 1 if not
      (what a repository's CI runs)
  conda torch-env lock -f gpu.yml --check
      the same for gpu.yml and gpu.conda-lock.yml
  conda torch-env lock --channel-alias https://mirror.example.com/conda
      read pytorch, nvidia and conda-forge from a mirror (URL/pytorch, ...)

The lock is conda-lock's format: `conda-lock install` and `conda-lock render` read it.
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--file",
        dest="env_file",
        default="environment.yml",
        metavar="FILE",
        help="the environment file (default: environment.yml)",
    )
    parser.add_argument(
        "--platform",
        dest="platforms",
        action="append",
        metavar="PLATFORM",
        help="platform to lock (repeatable; default: the environment file's platforms, "
        "else linux-64, win-64 and osx-arm64)",
    )
    parser.add_argument(
        "--lockfile",
        metavar="FILE",
        help="the lock file (default: conda-lock.yml beside environment.yml, "
        "STEM.conda-lock.yml beside STEM.yml)",
    )
    parser.add_argument(
        "--virtual-package-spec",
        metavar="FILE",
        help="virtual packages to assume per platform (default: virtual-packages.yml beside "
        "the environment file, if there is one)",
    )
    add_channel_alias(parser)
    add_offline(parser)
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 0 if the lock is up to date, 1 naming what changed",
    )
    parser.add_argument(
        "--explicit",
        action="store_true",
        help="also write conda-PLATFORM.lock (@EXPLICIT) files beside the lock",
    )
    parser.add_argument(
        "--solver",
        choices=("rattler", "conda-lock"),
        default="rattler",
        help="rattler (default, built in) or the conda-lock command (needs conda, mamba or "
        "micromamba on PATH)",
    )
    add_json(parser)


def execute(args: argparse.Namespace) -> int:
    from conda_torch_plugin.cli.render import Progress, print_json

    alias, custom = mirror_from_args(args)
    if args.check:
        from conda_torch_plugin.lock import check

        checked = check(
            args.env_file,
            platforms=args.platforms,
            lockfile=args.lockfile,
            virtual_package_spec=args.virtual_package_spec,
        )
        fleet = check_targets(args.env_file, checked.lockfile)
        return _report_check(checked, fleet, env_file=args.env_file, as_json=args.json)

    from conda_torch_plugin.lock import lock, regenerate_command

    progress = Progress.for_args(args, unattended=True)
    command = regenerate_command(
        args.env_file,
        lockfile=args.lockfile,
        platforms=args.platforms,
        virtual_package_spec=args.virtual_package_spec,
        channel_alias=args.channel_alias,
        explicit=args.explicit,
        solver=args.solver,
    )
    result = lock(
        args.env_file,
        platforms=args.platforms,
        lockfile=args.lockfile,
        virtual_package_spec=args.virtual_package_spec,
        channel_alias=alias,
        custom_channels=custom,
        explicit=args.explicit,
        solver=args.solver,
        progress=progress.step,
        command=command,
        network=network_from_args(args),
    )
    if args.json:
        print_json(result.to_dict())
    else:
        print(render_lock(result))
    return 0


def render_lock(result: LockResult) -> str:
    from conda_torch_plugin.cli.render import table

    rows = []
    for summary in result.platforms:
        torch = summary.torch.get("pytorch", "-")
        companions = ", ".join(
            f"{name} {summary.torch[name].split()[0]}"
            for name in ("torchvision", "torchaudio")
            if name in summary.torch
        )
        rows.append(
            (summary.platform, summary.flavour, f"pytorch {torch}", companions, summary.packages)
        )
    lines = [table(rows, ("platform", "flavour", "torch build", "with", "packages"))]
    verb = "wrote" if result.written else "unchanged:"
    lines.append("")
    lines.append(f"{verb} {result.lockfile}")
    for path in result.explicit_files:
        lines.append(f"explicit: {path}")
    if result.solve_seconds is not None:
        lines.append(f"solved in {result.solve_seconds:.2f} s ({result.seconds:.2f} s in all)")
    return "\n".join(lines)


def check_targets(env_file: str, lockfile: Path) -> list[FleetCheck]:
    """The lock against every machine the environment file was planned for (none recorded:
    nothing to check). Install's machine check, run once per machine."""
    from pathlib import Path

    from conda_torch_plugin.condalock import virtual_packages_for_env
    from conda_torch_plugin.condalock.envspec import read_virtual_packages
    from conda_torch_plugin.condalock.lockfile import read_lockfile
    from conda_torch_plugin.envfile.targets import read_targets, target_machines
    from conda_torch_plugin.install import check_fleet
    from conda_torch_plugin.recipes import load_recipes

    env_path = Path(env_file)
    vp_path = virtual_packages_for_env(env_path)
    targets = read_targets(env_path, vp_path)
    if targets is None or targets.inferred or not lockfile.is_file():
        return []  # nothing recorded: no machine to check
    machines = target_machines(targets, env_path.parent)
    if not machines:
        return []
    assumed: dict[str, dict[str, str]] = {}
    if vp_path.is_file():
        spec = read_virtual_packages(vp_path)
        # The check reads the __glibc / __osx among them.
        assumed = {platform: dict(spec.for_platform(platform)) for platform in spec.subdirs}
    return check_fleet(read_lockfile(lockfile), machines, load_recipes(), floors=assumed)


def _report_check(
    result: CheckResult, fleet: list[FleetCheck], *, env_file: str, as_json: bool
) -> int:
    from conda_torch_plugin.cli.render import print_json
    from conda_torch_plugin.errors import LockOutOfDate

    failing = [f for f in fleet if not f.check.ok]
    if as_json:
        print_json(
            {
                **result.to_dict(),
                "machines": [f.to_dict() for f in fleet],
                "machines_ok": not failing,
            }
        )
    if result.up_to_date and not failing:
        if not as_json:
            print(result.message)
            if fleet:
                count = len({f.machine for f in fleet})
                print(f"Every machine it was planned for can run it ({count}).")
        return 0
    if not result.up_to_date:
        print(f"error: {result.message}", file=sys.stderr)
        for detail in result.details:
            print(f"  - {detail}", file=sys.stderr)
    if failing:
        print(
            f"error: {len(failing)} machine{'s' if len(failing) != 1 else ''} the environment "
            "was planned for cannot run the lock:",
            file=sys.stderr,
        )
        for item in failing:
            problems = "; ".join(f.message for f in item.check.errors)
            print(f"  - {item.machine} ({item.check.platform}): {problems}", file=sys.stderr)
    print(f"  hint: run `{_lock_command(env_file)}` to update it", file=sys.stderr)
    if failing:
        print(
            f"  hint: re-plan for the machines first: conda torch-env write{_file_flag(env_file)}",
            file=sys.stderr,
        )
    return LockOutOfDate.exit_code


def _file_flag(env_file: str) -> str:
    from pathlib import Path

    return "" if Path(env_file) == Path("environment.yml") else f" -f {env_file}"


def _lock_command(env_file: str) -> str:
    return f"conda torch-env lock{_file_flag(env_file)}"
