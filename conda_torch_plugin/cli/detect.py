"""`conda torch-env detect`: report the NVIDIA driver, its maximum CUDA version and the GPUs.

No GPU is a valid answer (exit 0); only a malformed ``--cuda`` or
``CONDA_OVERRIDE_CUDA`` is an error (exit 2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda_torch_plugin.cli._options import add_json, check_version_xy

if TYPE_CHECKING:
    import argparse

    from conda_torch_plugin.machine.model import Machine

HELP = "show this machine's NVIDIA driver, the CUDA version it supports, and its GPUs"

EPILOG = """\
examples:
  conda torch-env detect                 readable report
  conda torch-env detect --json          the machine profile: one JSON object (schema,
                                         hostname, platform, glibc, driver_version,
                                         cuda_version, cuda_arch, gpus, notes)
  conda torch-env detect --save machines/
                                         write machines/<hostname>.json, for
                                         plan/write/create --machine machines/
  conda torch-env detect --cuda 12.1     as if the driver's maximum CUDA were 12.1
  CONDA_OVERRIDE_CUDA= conda torch-env detect
                                         as if there were no CUDA driver (as conda does)

Detection asks the driver through NVML, then nvidia-smi, then
/proc/driver/nvidia/version. --cuda wins over CONDA_OVERRIDE_CUDA, which wins
over what the driver reports.
"""

_SOURCES = {
    "nvml": "reported by the driver through NVML",
    "nvidia-smi": "reported by nvidia-smi",
    "proc": "from /proc/driver/nvidia/version",
    "override": "overridden, see the notes",
    "none": "no NVIDIA driver found",
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cuda",
        metavar="X.Y",
        help="report this maximum CUDA version instead of the driver's "
        "(wins over CONDA_OVERRIDE_CUDA; an empty value means no CUDA)",
    )
    parser.add_argument(
        "--save",
        metavar="DIR",
        help="also write the profile to DIR/<hostname>.json (for plan/write --machine DIR)",
    )
    parser.add_argument(
        "--hostname", metavar="NAME", help="the machine's name in the profile (default: hostname)"
    )
    add_json(parser)


def execute(args: argparse.Namespace) -> int:
    from conda_torch_plugin.cli.render import print_json
    from conda_torch_plugin.machine.detect import detect

    check_version_xy(args.cuda, "--cuda")
    detection = detect(cuda_override=args.cuda)
    if args.hostname:
        from conda_torch_plugin.machine.profiles import with_hostname

        detection = with_hostname(detection, args.hostname)
    if args.save:
        from conda_torch_plugin.machine.profiles import save_profile

        saved = save_profile(detection, args.save)
        if not args.json:
            print(f"Saved the profile to {saved}")
    if args.json:
        print_json(detection.to_dict())
    else:
        print(render_text(detection))
    return 0


def render_text(detection: Machine) -> str:
    from conda_torch_plugin.cli.render import table

    lines: list[str] = []
    if detection.gpus:
        rows = [
            (
                gpu.index,
                gpu.name,
                gpu.compute_capability or "?",
                f"{gpu.memory_mib} MiB" if gpu.memory_mib is not None else "?",
                gpu.uuid or "?",
            )
            for gpu in detection.gpus
        ]
        lines.append(table(rows, ("GPU", "name", "compute capability", "memory", "UUID")))
    else:
        lines.append("No NVIDIA GPU detected.")
    lines.append("")
    system = detection.platform or "platform unknown"
    if detection.glibc:
        system += f", glibc {detection.glibc}"
    elif detection.osx:
        system += f", macOS {detection.osx}"
    lines.append(f"machine:   {detection.hostname or '?'} ({system})")
    lines.append(f"driver:    {detection.driver_version or 'none found'}")
    if detection.cuda_version is not None:
        cuda = detection.cuda_version
    elif detection.source == "override":
        cuda = "none"
    else:
        cuda = "unknown"
    lines.append(f"max CUDA:  {cuda} ({_SOURCES.get(detection.source, detection.source)})")
    if detection.cuda_arch:
        lines.append(f"cuda_arch: {detection.cuda_arch} (the lowest compute capability)")
    if detection.notes:
        lines.append("notes:")
        lines.extend(f"  - {note}" for note in detection.notes)
    return "\n".join(lines)
