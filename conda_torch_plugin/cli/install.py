"""`conda torch-env install`: install this platform's packages from a lock, after a machine check.

Confirmation: on a terminal the command shows what it will install and asks
before downloading. When stdin is not a terminal (CI, scripts, pipes) it does
not guess: after checking its inputs and showing the plan it refuses unless
``--yes`` is given, so an unattended run never installs something nobody
agreed to. ``--dry-run`` needs no confirmation; answering no exits 0 with
"Exiting.", as conda does.

The helpers here (target resolution, confirmation, the progress bar, the
install summary, the activation line) are shared with ``create``.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, TextIO

from conda_torch_plugin.cli._options import (
    PLATFORM_CHOICES,
    add_channel_alias,
    add_json,
    add_offline,
    add_prefix_arguments,
    mirror_from_args,
    network_from_args,
    pkgs_dir_from_args,
)
from conda_torch_plugin.cli.render import Progress, is_interactive, print_check_findings
from conda_torch_plugin.condalock import DEFAULT_LOCKFILE

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from conda_torch_plugin.condalock.lockfile import LockFile
    from conda_torch_plugin.errors import UsageError
    from conda_torch_plugin.install import InstallPlan, InstallResult, MachineCheck
    from conda_torch_plugin.prefixes import Target

HELP = "install an environment from conda-lock.yml, after checking this machine can run it"

EPILOG = """\
examples:
  conda torch-env install -n torch
      install ./conda-lock.yml's packages for this platform into the environment "torch"
  conda torch-env install -p ./env --lockfile locks/conda-lock.yml --yes
      no question asked (needed when stdin is not a terminal)
  conda torch-env install -n torch --dry-run
      show the machine check and what would be installed, change nothing
  conda torch-env install -n torch --channel-alias https://mirror.example.com/conda
      fetch https://conda.anaconda.org/pytorch/... from the mirror's pytorch/...
  conda torch-env install -n torch --force
      install although the driver or a GPU cannot run the locked build

-n NAME goes into the first writable folder of conda's envs_dirs inside conda;
without conda into $CONDA_TORCH_ENV_ENVS_DIR/NAME, else ~/.conda/envs/NAME.
Downloads are cached in $CONDA_TORCH_ENV_CACHE_DIR (default ~/.cache/conda-torch-env).
Every package's sha256 is checked against the lock before anything is linked,
and the environment is built beside the prefix and moved into place at the end:
a failed install leaves the prefix as it was. Installs into one prefix take
turns: another waits up to $CONDA_TORCH_ENV_LOCK_TIMEOUT seconds (default 600).
"""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_prefix_arguments(parser)
    parser.add_argument(
        "--lockfile",
        default=DEFAULT_LOCKFILE,
        metavar="FILE",
        help=f"the conda-lock.yml to install from (default: ./{DEFAULT_LOCKFILE})",
    )
    parser.add_argument(
        "--platform",
        choices=PLATFORM_CHOICES,
        metavar="PLATFORM",
        help="the lock platform to install (default: this machine's)",
    )
    add_install_arguments(parser)
    parser.add_argument(
        "--installer",
        choices=("rattler", "conda"),
        default="rattler",
        help="rattler (default; built in) or conda (conda create --file with an explicit "
        "file; needs a conda executable)",
    )
    add_channel_alias(parser)
    add_offline(parser)
    add_json(parser)


def add_install_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared with ``create``."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="install even when this machine's driver or GPUs cannot run the locked build",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check and show what would be installed; change nothing",
    )
    parser.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="do not ask for confirmation (required when stdin is not a terminal)",
    )


def execute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from conda_torch_plugin.condalock.lockfile import read_lockfile

    progress = InstallBar.for_args(args)
    target = target_from_args(args)
    lock_path = Path(args.lockfile)
    progress.step(f"Reading {lock_path}")
    lock = read_lockfile(lock_path)
    platform = platform_for(args.platform, lock)
    check = machine_check(
        lock, platform, force=args.force, json_mode=args.json, lock_path=lock_path
    )
    alias, custom = mirror_from_args(args)

    if args.installer == "conda":
        return _install_with_conda(args, lock, platform, target, check, alias, custom)

    from conda_torch_plugin.install import prepare_install, recover_prefix

    plan = prepare_install(
        lock,
        platform,
        target.prefix,
        channel_alias=alias,
        custom_channels=custom,
        pkgs_dir=pkgs_dir_from_args(args),
        network=network_from_args(args),
    )
    warn_if_stale(lock_path, lock, json_mode=args.json)
    if plan.nothing_to_do and recover_prefix(target.prefix, progress=progress):
        # A dead run was cleaned up (or rolled back): look at the prefix again.
        plan = prepare_install(
            lock,
            platform,
            target.prefix,
            channel_alias=alias,
            custom_channels=custom,
            pkgs_dir=plan.pkgs_dir,
            network=plan.network,
        )
    if not args.json:
        print_check_findings(plan.findings)
    if plan.nothing_to_do:
        if args.json:
            print_dry_run(target, check=check.to_dict(), install=plan.to_dict())
        else:
            print(
                f"Nothing to do: {target.prefix} already holds the {len(plan.packages)} "
                f"packages {lock_path} locks for {platform}."
            )
        return 0
    if not args.json:
        print(render_install_plan(plan, check))
    if args.dry_run:
        if args.json:
            print_dry_run(target, check=check.to_dict(), install=plan.to_dict())
        return 0
    confirm("Proceed", yes=args.yes)
    install_and_report(args, lock, platform, target, plan, check, progress)
    return 0


# --- shared with create -------------------------------------------------------------------


def target_from_args(args: argparse.Namespace) -> Target:
    from conda_torch_plugin._conda import settings
    from conda_torch_plugin.prefixes import resolve_target

    return resolve_target(name=args.name, prefix=args.prefix, conda_envs_dirs=settings.envs_dirs())


def platform_for(requested: str | None, lock: LockFile | None = None) -> str:
    from conda_torch_plugin.compat import current_platform
    from conda_torch_plugin.errors import UsageError

    platform = requested or current_platform()
    if platform is None:
        known = ", ".join(lock.platforms) if lock else ", ".join(PLATFORM_CHOICES)
        raise UsageError(
            "cannot tell this machine's conda platform", hints=[f"pass --platform (one of {known})"]
        )
    return platform


def machine_check(
    lock: LockFile,
    platform: str,
    *,
    force: bool,
    json_mode: bool,
    lock_path: Path | None = None,
) -> MachineCheck:
    """Detect this machine and check it against the lock; refuse unless ``force``.

    A CUDA build on a machine without an NVIDIA driver is a warning, not an error,
    when the lock's environment file was planned for machines without a GPU too.
    """
    from conda_torch_plugin.install import check_machine
    from conda_torch_plugin.machine.detect import detect
    from conda_torch_plugin.recipes import load_recipes

    here = detect()
    cpu_members = []
    if lock_path is not None and not here.has_nvidia:
        from conda_torch_plugin.envfile.targets import planned_without_gpu

        cpu_members = planned_without_gpu(lock_path, platform)
    env_file = None
    if lock_path is not None:
        from conda_torch_plugin.condalock import environment_for_lockfile

        env_file = environment_for_lockfile(lock_path).name
    check = check_machine(
        lock,
        platform,
        here,
        load_recipes(),
        no_driver="warning" if cpu_members else "error",
        env_file=env_file,
    )
    if cpu_members and not json_mode:
        print(
            "note: the environment was planned for machines without an NVIDIA GPU too "
            f"({', '.join(cpu_members[:3])}{', ...' if len(cpu_members) > 3 else ''}): "
            "its CUDA build runs here on the CPU",
            file=sys.stderr,
        )
    if not check.ok and not force:
        check.raise_if_incompatible()
    if not json_mode:
        print_check_findings(check.findings, forced=force)
    return check


def _cannot_confirm() -> UsageError:
    from conda_torch_plugin.errors import UsageError

    return UsageError(
        "stdin is not a terminal, so nobody can confirm the install",
        hints=["pass --yes to install without confirmation, or --dry-run to only look"],
    )


def confirm(question: str, *, yes: bool, stdin: TextIO | None = None) -> None:
    from conda_torch_plugin.errors import Declined

    if yes:
        return
    stdin = stdin or sys.stdin
    if not is_interactive(stdin):
        raise _cannot_confirm()
    print(f"{question} ([y]/n)? ", end="", file=sys.stderr, flush=True)
    answer = stdin.readline().strip().lower()
    if answer not in ("", "y", "yes"):
        raise Declined("Exiting.")


def after_install(target: Target) -> None:
    from conda_torch_plugin._conda import settings

    settings.register_env(str(target.prefix))


def activation_line(target: Target) -> str:
    return f"conda activate {shlex.quote(target.activate_argument)}"


def command_line(args: argparse.Namespace) -> str:
    prog = "conda torch-env" if getattr(args, "inside_conda", False) else "conda-torch-env"
    return " ".join([prog, *(shlex.quote(a) for a in sys.argv[1:])]) if sys.argv[1:] else prog


def format_size(size: int | None) -> str:
    if size is None:
        return "unknown size"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def warn_if_stale(lock_path: Path, lock: LockFile, *, json_mode: bool) -> None:
    """A lock older than its environment file installs what the file no longer says: warn."""
    from pathlib import Path

    from conda_torch_plugin.errors import TorchEnvError
    from conda_torch_plugin.lock import check

    if json_mode or not lock.sources:
        return
    source = Path(lock.sources[0])
    if source.is_absolute() or ".." in source.parts or source.suffix not in (".yml", ".yaml"):
        return  # only an environment file beside the lock, never a path the lock points at
    env_path = lock_path.parent / source
    if not env_path.is_file():
        return  # a lock shared on its own: nothing to compare it with
    try:
        result = check(env_path, lockfile=lock_path, platforms=lock.platforms)
    except TorchEnvError:
        return  # an environment file that cannot be read is not this command's subject
    if not result.up_to_date:
        print(
            f"warning: {lock_path} is out of date with {env_path}: it installs what the lock "
            "says, not what the environment file says now",
            file=sys.stderr,
        )
        print(f"  hint: conda torch-env lock -f {shlex.quote(str(env_path))}", file=sys.stderr)


def render_install_plan(plan: InstallPlan, check: MachineCheck | None) -> str:
    from conda_torch_plugin.cli.render import table

    if plan.mode == "update":
        return _render_update(plan, check)
    rows = [
        (
            p.name,
            p.version,
            p.build,
            format_size(p.size),
            "local" if p.local else "cached" if p.cached else "download",
        )
        for p in plan.packages
    ]
    verb = "update" if plan.mode == "update" else "create"
    flavour = f", {check.flavour.label} build" if check else ""
    lines = [
        f"Will {verb} {plan.prefix} ({plan.platform}{flavour}): {len(plan.packages)} packages, "
        f"{format_size(plan.total_bytes)} in total; {plan.download_count} to download "
        f"({format_size(plan.download_bytes)}).",
        "",
        table(rows, ("name", "version", "build", "size", "from")),
    ]
    return "\n".join(lines)


def _render_update(plan: InstallPlan, check: MachineCheck | None) -> str:
    """conda's way: what is added, removed and changed, before asking."""
    from conda_torch_plugin.cli.render import table

    sizes = {p.name: p for p in plan.packages}
    sections = []
    for kind, title in (("add", "added"), ("remove", "removed"), ("change", "changed")):
        picked = [c for c in plan.changes if c.kind == kind]
        if not picked:
            continue
        rows = []
        for c in picked:
            pkg = sizes.get(c.name)
            source = (
                ""
                if pkg is None
                else "local"
                if pkg.local
                else "cached"
                if pkg.cached
                else "download"
            )
            shown = {"add": c.new, "remove": c.old, "change": f"{c.old} -> {c.new}"}[kind]
            rows.append((c.name, shown, source))
        sections.append(
            f"The following packages will be {title}:\n\n"
            + table(rows, ("name", "version build", "from"))
        )
    flavour = f", {check.flavour.label} build" if check else ""
    # plan.packages are the lock's conda packages; pip changes are not among them.
    unchanged = len(plan.packages) - sum(
        1 for c in plan.changes if c.kind != "remove" and c.name in sizes
    )
    head = (
        f"Will update {plan.prefix} ({plan.platform}{flavour}): {len(plan.changes)} changes, "
        f"{unchanged} packages unchanged; {plan.download_count} to download "
        f"({format_size(plan.download_bytes)})."
    )
    return "\n\n".join([head, *sections])


def print_dry_run(target: Target, **fields: object) -> None:
    """The --json answer of a dry run: ``dry_run``, the target, then ``fields`` in their order."""
    from conda_torch_plugin.cli.render import print_json

    print_json({"dry_run": True, "target": target.to_dict(), **fields})


def install_and_report(
    args: argparse.Namespace,
    lock: LockFile,
    platform: str,
    target: Target,
    plan: InstallPlan,
    check: MachineCheck,
    progress: InstallBar,
    extra: dict[str, object] | None = None,
) -> None:
    """Install ``plan``, then close the progress bar, register the environment and report it."""
    from conda_torch_plugin.install import install_from_lock

    result = install_from_lock(
        lock,
        platform,
        target.prefix,
        plan=plan,
        progress=progress,
        command=command_line(args),
        on_wait=lambda message: print(f"==> {message}", file=sys.stderr, flush=True),
    )
    progress.finish()
    after_install(target)
    report_installed(args, target, check, result, extra)


def report_installed(
    args: argparse.Namespace,
    target: Target,
    check: MachineCheck | None,
    result: InstallResult,
    extra: dict[str, object] | None = None,
) -> None:
    from conda_torch_plugin.cli.render import print_json

    activate = activation_line(target)
    if args.json:
        print_json(
            {
                **(extra or {}),
                "target": target.to_dict(),
                "check": check.to_dict() if check else None,
                "install": result.to_dict(),
                "activate": activate,
            }
        )
        return
    seconds = sum(result.timings.values())
    changes = f"{len(result.installed)} packages linked"
    if result.removed:
        changes += f", {len(result.removed)} removed"
    print(f"\nDone: {changes} in {target.prefix} ({seconds:.1f} s).")
    print(f"\nTo activate this environment, use\n\n    $ {activate}\n")


class InstallBar(Progress):
    """Step messages plus a one-line counter per phase, on stderr, on a terminal only."""

    _LABELS = {"fetch": "Fetching and verifying", "link": "Linking"}

    def __init__(self, *, enabled: bool, terminal: bool = True) -> None:
        super().__init__(enabled=enabled, terminal=terminal)
        self._open = False

    def advance(self, phase: str, name: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        label = self._LABELS.get(phase, phase)
        finished = done >= total
        if not self.terminal:  # a log: one line per finished phase, no redrawing
            if finished:
                print(f"{label}: {total} packages done", file=sys.stderr, flush=True)
            return
        width = 24
        filled = width * done // max(total, 1)
        shown = "done" if finished else name
        line = f"\r{label:<23} [{'#' * filled}{' ' * (width - filled)}] {done}/{total} {shown}"
        sys.stderr.write(line[:110].ljust(110))
        self._open = not finished
        if finished:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def step(self, message: str) -> None:
        if self._open and self.enabled:
            sys.stderr.write("\n")
            self._open = False
        super().step(message)

    def finish(self) -> None:
        if self._open and self.enabled:
            sys.stderr.write("\n")
            self._open = False


# --- --installer conda --------------------------------------------------------------------


def _install_with_conda(
    args: argparse.Namespace,
    lock: LockFile,
    platform: str,
    target: Target,
    check: MachineCheck,
    alias: str | None,
    custom: dict[str, str] | None,
) -> int:
    """``--installer conda``: ask, then run the core's conda backend and report."""
    from conda_torch_plugin._conda import settings
    from conda_torch_plugin.cli.render import print_json
    from conda_torch_plugin.install.conda_installer import (
        prepare_conda_install,
        run_conda_install,
    )

    install = prepare_conda_install(
        lock,
        platform,
        target.prefix,
        settings.conda_exe(),
        channel_alias=alias,
        custom_channels=custom,
    )
    command = list(install.command)
    if args.dry_run:
        if args.json:
            print_dry_run(target, check=check.to_dict(), command=command, explicit=install.explicit)
        else:
            print(install.explicit)
            print("would run: " + " ".join(shlex.quote(c) for c in command))
        return 0
    confirm(f"Run conda create for {target.prefix}", yes=args.yes)
    run_conda_install(install, json_output=args.json)
    if args.json:
        print_json(
            {
                "target": target.to_dict(),
                "check": check.to_dict(),
                "installer": "conda",
                "activate": activation_line(target),
            }
        )
    # Without --json, conda create has just printed how to activate the environment.
    return 0
