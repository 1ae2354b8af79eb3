"""`conda torch-env create`: detect -> plan -> write -> lock -> install, in one command.

Nothing changes before the user agrees: without ``--yes`` the environment file,
virtual-packages.yml and the lock are first rendered and solved in a private
temporary folder, the plan and the packages (with sizes) are shown, and only
after "yes" are the files written beside the environment file and the
environment installed. ``--dry-run`` stops after showing them: it leaves
every file and the prefix as they were. With ``--yes`` the files are written
and installed directly (one solve, no preview).

The machine check before installing is against the machine the plan was made
for: this machine as detected, with ``--cuda``/``--driver``/``--gpu-arch``
winning over detection, just as they do for the plan.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.cli._options import (
    add_channel_alias,
    add_json,
    add_plan_arguments,
    add_prefix_arguments,
)
from conda_torch_plugin.cli.install import add_install_arguments
from conda_torch_plugin.cli.write import DEFAULT_FILE

if TYPE_CHECKING:
    import argparse

    from conda_torch_plugin.condalock.lockfile import LockFile
    from conda_torch_plugin.findings import Severity
    from conda_torch_plugin.install import InstallPlan, MachineCheck
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.plan import PlanRequest
    from conda_torch_plugin.recipes import Recipes

HELP = "detect, plan, write environment.yml, lock and install an environment in one go"

EPILOG = """\
examples:
  conda torch-env create -n torch
      plan for this machine, write ./environment.yml, ./virtual-packages.yml and
      ./conda-lock.yml, then install the environment "torch" (asks before installing)
  conda torch-env create -n torch --dry-run
      show the plan, the files and every package with its size; change nothing
  conda torch-env create -p ./env --cuda 12.4 --gpu-arch 8.6 --yes
      as if the driver supported CUDA 12.4 with one sm_86 GPU; no question asked
  conda torch-env create -n torch --cpu --platform linux-64 --platform osx-arm64
      a CPU environment here, locked for Linux and Apple silicon
  conda torch-env create -n torch --channel-alias file:///srv/channels
      solve and install from local copies of pytorch/, nvidia/ and conda-forge/

-n NAME goes into the first writable folder of conda's envs_dirs inside conda;
without conda into $CONDA_TORCH_ENV_ENVS_DIR/NAME, else ~/.conda/envs/NAME.
When stdin is not a terminal, pass --yes (or --dry-run).
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_prefix_arguments(parser)
    parser.add_argument(
        "-f",
        "--file",
        default=DEFAULT_FILE,
        metavar="FILE",
        help=f"the environment file to write or update (default: ./{DEFAULT_FILE})",
    )
    parser.add_argument(
        "--lockfile",
        metavar="FILE",
        help="the lock file to write (default: conda-lock.yml beside environment.yml, "
        "STEM.conda-lock.yml beside STEM.yml)",
    )
    add_plan_arguments(parser)
    add_install_arguments(parser)
    add_channel_alias(parser)
    add_json(parser)


def execute(args: argparse.Namespace) -> int:
    from conda_torch_plugin.cli._options import (
        mirror_from_args,
        network_from_args,
        pkgs_dir_from_args,
        plan_for_file,
    )
    from conda_torch_plugin.cli.install import (
        InstallBar,
        confirm,
        install_and_report,
        platform_for,
        print_dry_run,
        render_install_plan,
        target_from_args,
    )
    from conda_torch_plugin.cli.write import plan_summary, target_changes, write_command
    from conda_torch_plugin.create import (
        check_installable,
        created_files,
        preview,
        restored_on_failure,
        write_and_lock,
    )
    from conda_torch_plugin.envfile import write_environment
    from conda_torch_plugin.install import check_machine, prefix_mode, prepare_install
    from conda_torch_plugin.lock import default_lockfile, regenerate_command

    progress = InstallBar.for_args(args)
    target = target_from_args(args)
    prefix_mode(target.prefix)  # refuse a folder that is not an environment before any work
    from conda_torch_plugin.recipes import load_recipes

    recipes = load_recipes()
    env_path = Path(args.file)
    old_text = (
        env_path.read_text(encoding="utf-8", errors="replace") if env_path.is_file() else None
    )
    planned = plan_for_file(args, env_path)
    request, plan = planned.request, planned.plan
    platform = platform_for(None)
    check_installable(plan, platform)
    no_driver: Severity = "error"
    if planned.machine is not None:
        machine = planned.machine
    else:  # a fleet: installed here, so checked against this machine
        from conda_torch_plugin.machine.detect import detect

        machine = detect()
        fleet = planned.fleet
        if fleet and any(
            v.status == "runs-on-cpu" and v.platform == platform for v in fleet.verdicts
        ):
            no_driver = "warning"  # planned for machines without a GPU too
    lock_path = Path(args.lockfile) if args.lockfile else default_lockfile(env_path)
    alias, custom = mirror_from_args(args)
    pkgs_dir, network = pkgs_dir_from_args(args), network_from_args(args)
    if request.cpu:
        machine = machine.without_gpus()  # a CPU build is checked as one
    files = {
        "name": args.name,
        "env_command": write_command(args),
        "lock_command": regenerate_command(
            env_path, lockfile=lock_path, channel_alias=args.channel_alias
        ),
        "channel_alias": alias,
        "custom_channels": custom,
        "targets": planned.targets,
        "network": network,
    }
    if not args.json:
        print(f"Plan: {plan_summary(plan)}")
        if plan.newer:
            print(f"Newer: {plan.newer}")
        for warning in plan.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    rendered = write_environment(
        plan,
        env_path,
        name=args.name,
        command=files["env_command"],
        dry_run=True,
        targets=planned.targets,
    )
    for line in target_changes(planned, old_text, rendered.environment_yml, env_path):
        print(line, file=sys.stderr)

    def checked_install(lock_model: LockFile, *, note: bool) -> tuple[MachineCheck, InstallPlan]:
        """The lock against this machine (refusing unless --force), then what installing does."""
        check = _checked(
            check_machine(
                lock_model, platform, machine, recipes, no_driver=no_driver, env_file=args.file
            ),
            args,
        )
        if note:
            note_other_target(args, request, machine, lock_model, platform, recipes)
        return check, prepare_install(
            lock_model,
            platform,
            target.prefix,
            channel_alias=alias,
            custom_channels=custom,
            pkgs_dir=pkgs_dir,
            network=network,
        )

    previewed = None
    if args.dry_run or not args.yes:
        progress.step("Solving (preview, nothing is written)")
        shown = preview(plan, env_path, **files)
        lock_model = shown.lock
        check, previewed = checked_install(lock_model, note=True)
        if not args.json:
            print(render_install_plan(previewed, check))
        if args.dry_run:
            if args.json:
                print_dry_run(
                    target,
                    plan=plan.to_dict(),
                    **shown.texts(),
                    check=check.to_dict(),
                    install=previewed.to_dict(),
                )
            else:
                from conda_torch_plugin.condalock import virtual_packages_for_env

                vp_path = virtual_packages_for_env(env_path)
                print(
                    f"\nDry run: would write {env_path}, {vp_path} and {lock_path}, and "
                    f"install into {target.prefix}. Nothing was changed."
                )
            return 0
        confirm("Write the files and install", yes=args.yes)

    with restored_on_failure(created_files(env_path, lock_path)):
        lock_model = write_and_lock(
            plan,
            env_path,
            lock_path,
            progress=progress.step,
            **files,
        )
        check, install_plan = checked_install(lock_model, note=previewed is None)
        if previewed is None and not args.json:
            print(render_install_plan(install_plan, check))
        install_and_report(
            args,
            lock_model,
            platform,
            target,
            install_plan,
            check,
            progress,
            extra={
                "plan": plan.to_dict(),
                "environment_file": str(env_path.absolute()),
                "lockfile": str(lock_path.absolute()),
            },
        )
    return 0


def note_other_target(
    args: argparse.Namespace,
    request: PlanRequest,
    machine: Machine,
    lock_model: LockFile,
    platform: str,
    recipes: Recipes,
) -> None:
    """When the flags describe another machine, say before installing what that means here.

    The environment is installed as planned (the flags asked for it), but a CUDA
    build for a driver or GPU this machine lacks should never arrive silently: the
    same check ``install`` runs against this machine is shown as a note.
    """
    if args.json or not (args.cuda or args.gpu_arch or args.driver or args.cpu):
        return  # planned for this machine
    from conda_torch_plugin.install import check_machine
    from conda_torch_plugin.machine.detect import detect

    here = check_machine(lock_model, platform, detect(), recipes)
    problems = [f.message for f in here.findings if f.severity in ("error", "warning")]
    if not problems:
        return
    if request.cpu:
        planned = "CPU"
    else:
        parts = [f"CUDA {machine.cuda_version}"] if machine.cuda_version else []
        parts += [
            f"sm_{g.compute_capability.replace('.', '')}"
            for g in machine.gpus
            if g.compute_capability
        ]
        planned = " / ".join(parts) or "the flags' machine"
    print(
        f"note: planned for {planned} (from the flags), not for this machine: "
        + "; ".join(problems),
        file=sys.stderr,
    )


def _checked(check: MachineCheck, args: argparse.Namespace) -> MachineCheck:
    if not check.ok and not args.force:
        check.raise_if_incompatible()
    if not args.json:
        from conda_torch_plugin.cli.render import print_check_findings

        print_check_findings(check.findings, forced=args.force)
    return check
