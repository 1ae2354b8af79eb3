"""`conda torch-env doctor`: check an installed environment and say how to fix what is wrong.

Exit status 1 when any finding is an error (the environment is broken, or this
machine cannot run it), 0 otherwise; warnings alone do not fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from conda_torch_plugin.cli._options import add_json, add_prefix_arguments

if TYPE_CHECKING:
    import argparse

    from conda_torch_plugin.doctor import DoctorReport
    from conda_torch_plugin.machine.model import Machine

HELP = "check an installed environment: its PyTorch build, companions, driver, GPUs, pip"

EPILOG = """\
examples:
  conda torch-env doctor -n torch            check the environment named torch
  conda torch-env doctor -p ./env --run      also import torch in it and run a tiny
                                             operation on the GPU
  conda torch-env doctor -n torch --json     one JSON object (ok, flavour, findings, ...)

Without --run nothing in the environment is executed: the doctor reads its
conda-meta/ records and site-packages, and asks the driver (as `detect` does).
Exit status: 1 when something is broken (an error finding), else 0.
"""

MARKERS = {"ok": "[ok]", "info": "[info]", "warning": "[warn]", "error": "[error]"}
_WIDTH = max(len(m) for m in MARKERS.values()) + 1


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_prefix_arguments(parser)
    parser.add_argument(
        "--run",
        action="store_true",
        help="also start the environment's python: import torch, report torch.version.cuda, "
        "torch.cuda.is_available(), the arch list, and run one operation on the GPU",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="how long --run may take (default: 180)",
    )
    add_json(parser)


def execute(args: argparse.Namespace) -> int:
    from conda_torch_plugin.cli.render import print_json
    from conda_torch_plugin.doctor import diagnose
    from conda_torch_plugin.machine.detect import detect
    from conda_torch_plugin.recipes import load_recipes

    prefix = _locate(args)
    detection = detect()
    report = diagnose(
        prefix,
        detection=detection,
        recipes=load_recipes(),
        run_python=args.run,
        timeout_s=args.timeout,
    )
    if args.json:
        print_json({**report.to_dict(), "machine": detection.to_dict()})
    else:
        print(render_text(report, detection))
    return 0 if report.ok else 1


def _locate(args: argparse.Namespace) -> Path:
    """-p PREFIX as given; -n NAME: the first of conda's envs_dirs that holds it, else where
    ``create -n NAME`` would have put it."""
    from conda_torch_plugin.prefixes import resolve_target

    if args.prefix:
        return resolve_target(name=None, prefix=args.prefix).prefix
    dirs: list[str] = []
    if getattr(args, "inside_conda", False):
        from conda_torch_plugin._conda.settings import envs_dirs

        dirs = envs_dirs()
    for folder in dirs:
        candidate = Path(folder).expanduser() / args.name
        if (candidate / "conda-meta").is_dir():
            return candidate.resolve()
    prefix = resolve_target(name=args.name, prefix=None, conda_envs_dirs=dirs).prefix
    if not prefix.exists():
        from conda_torch_plugin.doctor import NotAnEnvironment

        looked = ", ".join(dirs) if dirs else str(prefix.parent)
        raise NotAnEnvironment(
            f"no environment named {args.name!r} (looked in {looked})",
            hints=[
                "pass its folder with -p PREFIX, or create it: "
                f"conda torch-env create -n {args.name}"
            ],
        )
    return prefix


def render_text(report: DoctorReport, detection: Machine | None) -> str:
    lines = [f"Environment   {report.prefix}"]
    if report.flavour is not None and "pytorch" in report.packages:
        version = report.packages["pytorch"].split()[0]
        lines.append(
            f"PyTorch       {version}, {report.flavour.label} "
            f"({report.flavour.channel_style} build, {report.platform})"
        )
    if detection is not None:
        lines.append(f"This machine  {_machine(detection)}")
    lines.append("")
    indent = " " * _WIDTH
    for finding in report.findings:
        lines.append(f"{MARKERS[finding.severity]:<{_WIDTH}}{finding.message}")
        if finding.fix:
            lines.append(f"{indent}fix: {finding.fix}")
        if finding.detail and finding.severity in ("warning", "error"):
            lines += [f"{indent}| {line}" for line in finding.detail.splitlines()]
    lines.append("")
    lines.append(_summary(report))
    return "\n".join(lines)


def _machine(detection: Machine) -> str:
    if detection.cuda_version is None and not detection.gpus:
        return "no NVIDIA driver found"
    gpus = (
        ", ".join(f"{gpu.name} ({gpu.compute_capability or '?'})" for gpu in detection.gpus)
        or "no GPUs"
    )
    driver = detection.driver_version or "version unknown"
    return f"driver {driver}, CUDA {detection.cuda_version or '?'}, {gpus}"


def _summary(report: DoctorReport) -> str:
    counts = ", ".join(
        f"{report.count(s)} {label}"
        for s, label in (
            ("error", "error(s)"),
            ("warning", "warning(s)"),
            ("ok", "ok"),
            ("info", "info"),
        )
        if report.count(s)
    )
    if not report.ok:
        return f"Broken: {counts}. Fix the errors above."
    if report.count("warning"):
        return f"Works, with warnings: {counts}."
    return f"Healthy: {counts}."


def health_check(prefix: str, verbose: bool) -> None:
    """``conda doctor``'s torch-env check: this doctor's findings for ``prefix``, without
    running the environment's python. An environment without PyTorch has nothing to check."""
    from conda_torch_plugin.doctor import NotAnEnvironment, diagnose
    from conda_torch_plugin.machine.detect import detect
    from conda_torch_plugin.recipes import load_recipes

    try:
        report = diagnose(Path(prefix), detection=detect(), recipes=load_recipes())
    except NotAnEnvironment as error:
        print(f"torch-env: {error.message}")
        return
    for line in health_lines(report, verbose=verbose):
        print(line)


def health_lines(report: DoctorReport, *, verbose: bool) -> list[str]:
    """The lines ``conda doctor`` shows: a verdict, then each error and warning with its fix."""
    if report.flavour is None:
        return ["✅ torch-env: no PyTorch in this environment, nothing to check."]
    shown = [f for f in report.findings if verbose or f.severity in ("error", "warning")]
    if report.ok and not any(f.severity == "warning" for f in report.findings):
        lines = [
            f"✅ torch-env: PyTorch ({report.flavour.label}) is consistent and fits this machine."
        ]
    else:
        errors, warnings = report.count("error"), report.count("warning")
        lines = [f"❌ torch-env: {errors} error(s), {warnings} warning(s) in the PyTorch stack."]
    for finding in shown:
        lines.append(f"   {finding.severity}: {finding.message}")
        if finding.fix:
            lines.append(f"     fix: {finding.fix}")
    if not report.ok:
        lines.append("   run `conda torch-env doctor` for the full report")
    return lines
