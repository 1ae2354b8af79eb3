"""Check an installed environment: is its PyTorch consistent, and can this machine run it?

``diagnose`` reads the prefix's ``conda-meta/*.json`` records (never imports
torch in this process) and returns findings, each with a severity and a
one-line fix:

- the pytorch build's flavour (CUDA X.Y / CPU / MPS) and its markers
  (``pytorch-mutex``/``pytorch-cuda``/``cpuonly`` on the pytorch channel,
  ``pytorch-gpu``/``pytorch-cpu``/``cuda-version`` on conda-forge);
- torchvision/torchaudio: same flavour, same CUDA, the versions the recipes
  pair, the same channel;
- this machine: the driver's CUDA against the build's (minor-version
  compatibility is a warning) and every GPU against the build's arch list;
- a pip-installed torch that shadows conda's (site-packages metadata no
  conda record owns, or the user site-packages, which Python searches first);
- with ``run_python``: the environment's own python imports torch and reports
  what it sees. The probe is a short script run in a subprocess, so a torch
  that crashes on import cannot take this process down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.compat import (
    FULL,
    MINOR_COMPAT,
    check_cuda,
    compare_versions,
    current_platform,
    describe_archs,
    how_runs,
    parse_cc,
)
from conda_torch_plugin.errors import TorchEnvError
from conda_torch_plugin.flavour import Flavour, torch_flavour

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from conda_torch_plugin.compat import CudaCheck
    from conda_torch_plugin.detect import Detection
    from conda_torch_plugin.recipes import Recipes, Release

SEVERITIES = ("ok", "info", "warning", "error")
COMPANIONS = ("torchvision", "torchaudio")
# conda package name -> the Python distribution name pip uses for it.
DISTRIBUTIONS = {"pytorch": "torch", "torchvision": "torchvision", "torchaudio": "torchaudio"}
DEFAULT_TIMEOUT_S = 180.0  # a cold `import torch` on a network file system can take a minute
PROBE_MARKER = "@@conda-torch-env-doctor@@"
_SUBDIRS = {
    "linux-64", "linux-aarch64", "linux-ppc64le", "win-64", "osx-64", "osx-arm64", "noarch",
}  # fmt: skip


class NotAnEnvironment(TorchEnvError):
    """The prefix is missing or holds no ``conda-meta/``: nothing to diagnose."""


@dataclass(frozen=True)
class Finding:
    """One verdict. ``fix`` is a one-line remedy (None when there is nothing to fix)."""

    severity: str  # "ok" | "info" | "warning" | "error"
    message: str
    fix: str | None = None
    check: str = ""  # what was checked: "pytorch", "torchvision", "driver", "gpu", "pip", "run"...
    detail: str | None = None  # extra lines (a stderr tail), shown indented

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")

    def to_dict(self) -> dict[str, object]:
        return {
            "check": self.check,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DoctorReport:
    prefix: Path
    flavour: Flavour | None  # None when conda installed no pytorch here
    findings: tuple[Finding, ...]
    platform: str | None = None  # the environment's subdir, from the pytorch record
    packages: dict[str, str] = field(default_factory=dict)  # name -> "version build"
    runtime: dict[str, Any] | None = None  # what the environment's python reported (--run)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def to_dict(self) -> dict[str, object]:
        return {
            "prefix": str(self.prefix),
            "ok": self.ok,
            "platform": self.platform,
            "flavour": self.flavour.to_dict() if self.flavour else None,
            "packages": dict(self.packages),
            "findings": [f.to_dict() for f in self.findings],
            "runtime": self.runtime,
        }


@dataclass(frozen=True)
class InstalledRecord:
    """The fields of a ``conda-meta/*.json`` record the doctor reads."""

    name: str
    version: str
    build: str
    channel: str | None  # channel name ("pytorch", "conda-forge"), from the channel URL
    subdir: str | None
    depends: tuple[str, ...]
    files: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} {self.version} ({self.build})"


def read_records(prefix: Path) -> tuple[dict[str, InstalledRecord], list[Finding]]:
    """The installed records by name, and a warning for every record that cannot be read."""
    meta = prefix / "conda-meta"
    if not prefix.is_dir():
        raise NotAnEnvironment(
            f"{prefix} does not exist",
            hints=["give the folder of an existing environment (-p PREFIX) or its name (-n NAME)"],
        )
    if not meta.is_dir():
        raise NotAnEnvironment(
            f"{prefix} is not a conda environment: it has no conda-meta/ folder",
            hints=[
                "give the folder of a conda environment, e.g. the one `conda env list` shows",
                f"or create one there: conda torch-env create -p {prefix}",
            ],
        )
    records: dict[str, InstalledRecord] = {}
    problems: list[Finding] = []
    for path in sorted(meta.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            record = _record_from_json(raw)
        except (OSError, ValueError, KeyError, TypeError) as error:
            problems.append(
                Finding(
                    "warning",
                    f"conda-meta/{path.name} cannot be read ({error}); its package was not checked",
                    "reinstall that package, or recreate the environment: "
                    f"conda torch-env install -p {prefix}",
                    check="conda-meta",
                )
            )
            continue
        records[record.name] = record
    return records, problems


def diagnose(
    prefix: Path,
    *,
    detection: Detection | None,
    recipes: Recipes,
    run_python: bool = False,
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    user_base: Path | None = None,
) -> DoctorReport:
    """Diagnose the environment at ``prefix``.

    ``detection`` describes this machine (None: skip the machine checks).
    ``user_base`` is Python's user base (``~/.local``); None means the one the
    environment's python would use (``PYTHONUSERBASE``, else the default).
    Raises NotAnEnvironment when ``prefix`` is not a conda environment.
    """
    prefix = Path(prefix)
    records, findings = read_records(prefix)
    torch = records.get("pytorch")
    platform = (torch.subdir if torch else None) or current_platform() or "unknown"
    flavour = _environment_flavour(records, platform)
    packages = {
        name: f"{records[name].version} {records[name].build}"
        for name in ("pytorch", *COMPANIONS, "pytorch-cuda", "cuda-version", "python")
        if name in records
    }

    if torch is None:
        findings.append(
            Finding(
                "error",
                f"conda installed no pytorch in {prefix}",
                f"install one: conda torch-env install -p {prefix} (from a lock) "
                f"or conda torch-env create -p {prefix}",
                check="pytorch",
            )
        )
    elif flavour is not None:
        findings += _check_pytorch(torch, flavour, records, prefix)
        findings += _check_guards(flavour, platform, records, recipes, prefix)
        if flavour.compute != "unknown":  # nothing to compare the rest against
            findings += _check_companions(torch, flavour, records, recipes, prefix)
            findings += _check_machine(torch, flavour, platform, detection, recipes, prefix)
    findings += _check_pip_shadowing(prefix, records, user_base)

    runtime = None
    if run_python:
        runtime, run_findings = _run_probe(
            prefix, torch, flavour, detection, runner=runner, timeout_s=timeout_s
        )
        findings += run_findings
    return DoctorReport(
        prefix=prefix,
        flavour=flavour,
        findings=tuple(findings),
        platform=platform,
        packages=packages,
        runtime=runtime,
    )


# -- conda-meta ----------------------------------------------------------------------------


def _record_from_json(raw: Mapping[str, Any]) -> InstalledRecord:
    return InstalledRecord(
        name=str(raw["name"]).lower(),
        version=str(raw["version"]),
        build=str(raw.get("build", raw.get("build_string", ""))),
        channel=_channel_name(raw.get("channel") or raw.get("url") or ""),
        subdir=raw.get("subdir"),
        depends=tuple(str(d) for d in raw.get("depends") or ()),
        files=tuple(str(f) for f in raw.get("files") or ()),
    )


def _channel_name(channel: str) -> str | None:
    """'https://conda.anaconda.org/pytorch/linux-64/x.tar.bz2' -> 'pytorch'; '' -> None."""
    parts = [p for p in re.split(r"[/\\]", channel) if p]
    if parts and parts[-1].endswith((".conda", ".tar.bz2")):
        parts.pop()
    if parts and parts[-1] in _SUBDIRS:
        parts.pop()
    if not parts or parts[-1].endswith(":"):
        return None
    return parts[-1]


def _flavour_of(record: InstalledRecord, platform: str | None) -> Flavour:
    return torch_flavour(
        record.name, record.version, record.build, record.depends, platform=platform
    )


def _environment_flavour(
    records: Mapping[str, InstalledRecord], platform: str | None
) -> Flavour | None:
    """The pytorch build's flavour, with ``runtime_cuda`` from pytorch-cuda / cuda-version."""
    torch = records.get("pytorch")
    if torch is None:
        return None
    flavour = _flavour_of(torch, platform)
    if flavour.channel_style == "unknown" and torch.channel in ("pytorch", "conda-forge"):
        flavour = Flavour(flavour.compute, flavour.cuda, torch.channel)
    if flavour.compute != "cuda":
        return flavour
    runtime = None
    for marker in ("pytorch-cuda", "cuda-version"):
        if marker in records:
            runtime = _major_minor(records[marker].version)
            break
    return Flavour("cuda", flavour.cuda or runtime, flavour.channel_style, runtime)


# -- the torch family ----------------------------------------------------------------------


def _check_pytorch(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    prefix: Path,
) -> list[Finding]:
    where = f"the {torch.channel} channel" if torch.channel else "an unknown channel"
    if flavour.compute == "unknown":
        return [
            Finding(
                "warning",
                f"pytorch {torch.version} from {where}: cannot tell its flavour from build "
                f"{torch.build!r}; the flavour checks were skipped",
                f"recreate the environment with a known build: conda torch-env create -p {prefix}",
                check="pytorch",
            )
        ]
    findings = [
        Finding(
            "ok",
            f"pytorch {torch.version} is a {flavour.label} build from {where} ({torch.build})",
            check="pytorch",
        )
    ]
    if flavour.channel_style == "pytorch":
        findings += _check_pytorch_channel_markers(torch, flavour, records, prefix)
    elif flavour.channel_style == "conda-forge":
        findings += _check_conda_forge_markers(torch, flavour, records, prefix)
    return findings


def _check_pytorch_channel_markers(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    prefix: Path,
) -> list[Finding]:
    findings: list[Finding] = []
    reinstall = f"conda install -p {prefix} -c pytorch -c nvidia"
    mutex = records.get("pytorch-mutex")
    macos = (torch.subdir or "").startswith("osx")
    wanted_mutex = "cuda" if flavour.compute == "cuda" else "cpu"
    if mutex is None:
        if not macos:  # the pytorch channel's macOS builds have no mutex
            findings.append(
                Finding(
                    "warning",
                    "pytorch-mutex is missing: nothing stops conda from mixing CPU and CUDA "
                    "builds of torchvision/torchaudio into this environment",
                    f"{reinstall} pytorch-mutex=1.0={wanted_mutex}",
                    check="pytorch-mutex",
                )
            )
    elif mutex.build != wanted_mutex:
        findings.append(
            Finding(
                "error",
                f"pytorch-mutex is {mutex.build!r} but pytorch is a {flavour.label} build",
                f"{reinstall} pytorch-mutex=1.0={wanted_mutex}",
                check="pytorch-mutex",
            )
        )
    else:
        findings.append(
            Finding("ok", f"pytorch-mutex 1.0 {mutex.build} agrees", check="pytorch-mutex")
        )

    cpuonly = records.get("cpuonly")
    if flavour.compute == "cuda":
        if cpuonly is not None:
            findings.append(
                Finding(
                    "error",
                    f"cpuonly is installed next to a {flavour.label} build of pytorch",
                    f"conda remove -p {prefix} cpuonly",
                    check="cpuonly",
                )
            )
        findings += _check_cuda_runtime_marker(flavour, records, reinstall)
    elif "pytorch-cuda" in records:
        findings.append(
            Finding(
                "warning",
                f"pytorch-cuda {records['pytorch-cuda'].version} is installed next to a "
                f"{flavour.label} build of pytorch: CUDA libraries that nothing uses",
                f"conda remove -p {prefix} pytorch-cuda",
                check="pytorch-cuda",
            )
        )
    return findings


def _check_cuda_runtime_marker(
    flavour: Flavour, records: Mapping[str, InstalledRecord], reinstall: str
) -> list[Finding]:
    """pytorch-cuda (or 1.12's cudatoolkit) must carry the build's CUDA X.Y."""
    marker = records.get("pytorch-cuda") or records.get("cudatoolkit")
    if marker is None:
        return [
            Finding(
                "error",
                f"pytorch is a {flavour.label} build but neither pytorch-cuda nor cudatoolkit "
                "is installed: the CUDA runtime libraries are missing",
                f"{reinstall} pytorch-cuda={flavour.cuda}",
                check="pytorch-cuda",
            )
        ]
    if _major_minor(marker.version) != flavour.cuda:
        return [
            Finding(
                "error",
                f"{marker.name} {marker.version} does not match the {flavour.label} build of "
                "pytorch",
                f"{reinstall} {marker.name}={flavour.cuda}",
                check="pytorch-cuda",
            )
        ]
    return [Finding("ok", f"{marker.name} {marker.version} agrees", check="pytorch-cuda")]


def _check_conda_forge_markers(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    prefix: Path,
) -> list[Finding]:
    findings: list[Finding] = []
    reinstall = f"conda install -p {prefix} -c conda-forge"
    wrong, right = ("pytorch-cpu", "pytorch-gpu")
    if flavour.compute != "cuda":
        wrong, right = right, wrong
    if wrong in records:
        findings.append(
            Finding(
                "error",
                f"{wrong} is installed but pytorch is a {flavour.label} build",
                f"conda remove -p {prefix} {wrong}",
                check=wrong,
            )
        )
    if right in records and records[right].version != torch.version:
        findings.append(
            Finding(
                "error",
                f"{right} {records[right].version} does not match pytorch {torch.version}",
                f"{reinstall} {right}={torch.version}",
                check=right,
            )
        )
    if flavour.compute != "cuda":
        return findings
    cuda_version = records.get("cuda-version")
    if cuda_version is None:
        findings.append(
            Finding(
                "warning",
                "cuda-version is not installed: nothing pins the CUDA libraries to the "
                f"{flavour.label} build of pytorch",
                f"{reinstall} cuda-version={flavour.cuda}",
                check="cuda-version",
            )
        )
        return findings
    runtime = _major_minor(cuda_version.version)
    # conda-forge builds accept a newer cuda-version of the same major (the
    # driver must then support that newer one; the machine check uses it).
    if runtime is None or flavour.cuda is None or not _same_major_not_older(
        runtime, flavour.cuda
    ):
        findings.append(
            Finding(
                "error",
                f"cuda-version {cuda_version.version} does not fit the {flavour.label} build of "
                "pytorch",
                f"{reinstall} cuda-version={flavour.cuda}",
                check="cuda-version",
            )
        )
    else:
        findings.append(
            Finding("ok", f"cuda-version {cuda_version.version} agrees", check="cuda-version")
        )
    return findings


def _check_companions(
    torch: InstalledRecord,
    flavour: Flavour,
    records: Mapping[str, InstalledRecord],
    recipes: Recipes,
    prefix: Path,
) -> list[Finding]:
    findings: list[Finding] = []
    release = _release(recipes, flavour.channel_style, torch.version)
    for name in COMPANIONS:
        record = records.get(name)
        if record is None:
            findings.append(Finding("info", f"{name} is not installed", check=name))
            continue
        findings += _check_companion(record, torch, flavour, release, prefix)
    return findings


def _check_companion(
    record: InstalledRecord,
    torch: InstalledRecord,
    flavour: Flavour,
    release: Release | None,
    prefix: Path,
) -> list[Finding]:
    name = record.name
    own = _flavour_of(record, torch.subdir)
    expected_version = getattr(release, name, None) if release is not None else None
    version = expected_version or record.version
    fix = _companion_fix(name, version, flavour, prefix)
    problems: list[Finding] = []

    if _channels_differ(record, own, torch, flavour):
        problems.append(
            Finding(
                "error",
                f"{name} comes from {_origin(record, own)} but pytorch from "
                f"{_origin(torch, flavour)}: mixed channels give mismatched binaries "
                "(e.g. missing libtorch_cuda symbols)",
                fix,
                check="channels",
            )
        )
    if own.compute == "unknown":
        problems.append(
            Finding(
                "warning",
                f"{name} {record.version}: cannot tell its flavour from build {record.build!r}",
                fix,
                check=name,
            )
        )
    elif own.compute != flavour.compute:
        problems.append(
            Finding(
                "error",
                f"{name} {record.version} is a {own.label} build ({record.build}) next to a "
                f"{flavour.label} build of pytorch",
                fix,
                check=name,
            )
        )
    elif own.compute == "cuda" and own.cuda and flavour.cuda and own.cuda != flavour.cuda:
        problems.append(
            Finding(
                "error",
                f"{name} {record.version} is built for CUDA {own.cuda} ({record.build}) but "
                f"pytorch for CUDA {flavour.cuda}",
                fix,
                check=name,
            )
        )
    if expected_version and record.version != expected_version:
        problems.append(
            Finding(
                "error",
                f"{name} {record.version} is not the release paired with pytorch "
                f"{torch.version} (that is {name} {expected_version})",
                fix,
                check=name,
            )
        )
    if problems:
        return problems
    paired = "" if expected_version else " (no recipe pairs versions for this pytorch)"
    severity = "ok" if expected_version else "info"
    return [
        Finding(
            severity,
            f"{name} {record.version} agrees with pytorch ({own.label}){paired}",
            check=name,
        )
    ]


_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|==|<|>)\s*([0-9][0-9.]*)\s*$")


def _check_guards(
    flavour: Flavour,
    platform: str,
    records: Mapping[str, InstalledRecord],
    recipes: Recipes,
    prefix: Path,
) -> list[Finding]:
    """The extra pins the recipes know a channel needs (e.g. mkl<2024.1 on the pytorch channel)."""
    findings = []
    for guard in recipes.guards_for(flavour.channel_style, platform):
        match = _SPEC.match(guard.spec)
        record = records.get(match[1].lower()) if match else None
        if match is None or record is None:
            continue
        try:
            order = compare_versions(record.version, match[3])
        except ValueError:
            continue
        holds = {"<": order < 0, "<=": order <= 0, "==": order == 0, ">=": order >= 0,
                 ">": order > 0}[match[2]]  # fmt: skip
        if holds:
            findings.append(
                Finding("ok", f"{record.name} {record.version} satisfies {guard.spec}",
                        check="guard")  # fmt: skip
            )
            continue
        findings.append(
            Finding(
                "error",
                f"{record.name} {record.version} breaks this pytorch: {guard.reason}",
                f"conda install -p {prefix} '{guard.spec}'",
                check="guard",
            )
        )
    return findings


def _release(recipes: Recipes, channel_style: str, pytorch_version: str) -> Release | None:
    if channel_style not in ("pytorch", "conda-forge"):
        return None
    return recipes.release(channel_style, pytorch_version)


def _channels_differ(
    record: InstalledRecord, own: Flavour, torch: InstalledRecord, flavour: Flavour
) -> bool:
    if record.channel and torch.channel:
        return record.channel != torch.channel
    known = {own.channel_style, flavour.channel_style} - {"unknown"}
    return len(known) > 1


def _origin(record: InstalledRecord, flavour: Flavour) -> str:
    if record.channel:
        return f"the {record.channel} channel"
    if flavour.channel_style != "unknown":
        return f"a {flavour.channel_style}-style build"
    return "an unknown channel"


def _companion_fix(name: str, version: str, flavour: Flavour, prefix: Path) -> str:
    """A conda command installing the companion build that matches pytorch's flavour."""
    digits = (flavour.cuda or "").replace(".", "")
    if flavour.channel_style == "conda-forge":
        build = f"cuda{digits}*" if flavour.compute == "cuda" else "cpu*"
        channels = "-c conda-forge"
    else:
        build = f"*_cu{digits}" if flavour.compute == "cuda" else "*_cpu"
        channels = "-c pytorch -c nvidia" if flavour.compute == "cuda" else "-c pytorch"
        if flavour.compute == "mps":  # macOS builds of the pytorch channel carry no marker
            build = "*"
    return f"conda install -p {prefix} {channels} '{name}={version}={build}'"


# -- this machine --------------------------------------------------------------------------


def _check_machine(
    torch: InstalledRecord,
    flavour: Flavour,
    platform: str,
    detection: Detection | None,
    recipes: Recipes,
    prefix: Path,
) -> list[Finding]:
    gpus = detection.gpus if detection else ()
    if detection is None:
        return [Finding("info", "this machine was not checked (no detection)", check="driver")]
    if flavour.compute != "cuda":
        if gpus:
            return [
                Finding(
                    "info",
                    f"a {flavour.label} build: the {len(gpus)} NVIDIA GPU(s) here stay unused",
                    f"for a CUDA build: conda torch-env create -p {prefix}",
                    check="gpu",
                )
            ]
        return []
    if platform != current_platform():
        return [
            Finding(
                "info",
                f"a {platform} environment on a {current_platform()} machine: driver and GPUs "
                "not checked",
                check="driver",
            )
        ]
    findings, cuda = _check_driver(flavour, platform, detection, recipes, prefix)
    return findings + _check_gpus(torch, flavour, platform, detection, recipes, prefix, cuda)


def _check_driver(
    flavour: Flavour,
    platform: str,
    detection: Detection,
    recipes: Recipes,
    prefix: Path,
) -> tuple[list[Finding], CudaCheck | None]:
    """The driver's CUDA against what the environment needs (build and runtime libraries)."""
    required = flavour.required_cuda
    if required is None:
        return [
            Finding(
                "warning",
                "cannot tell which CUDA version this pytorch build needs; driver not checked",
                check="driver",
            )
        ], None
    notes = "\n".join(detection.notes) or None
    if detection.cuda_version is None:
        # Not "broken": torch imports and runs on the CPU. A GPU behind a broken
        # driver shows up in the notes, which say what to do.
        return [
            Finding(
                "warning",
                f"no NVIDIA driver found here: this {flavour.label} build runs on the CPU only "
                "on this machine",
                "run it on a machine with an NVIDIA GPU and driver, or for a CPU build: "
                f"conda torch-env create -p {prefix} --cpu",
                check="driver",
                detail=notes,
            )
        ], None
    result = check_cuda(
        required, detection.cuda_version, detection.driver_version, platform, recipes
    )
    driver = f"driver {detection.driver_version or '(version unknown)'}"
    overridden = " (CONDA_OVERRIDE_CUDA / --cuda)" if detection.source == "override" else ""
    upgrade = recipes.min_driver(required, platform)
    upgrade_fix = (
        f"upgrade the NVIDIA driver to {upgrade} or newer"
        if upgrade
        else f"upgrade the NVIDIA driver to one for CUDA {required}"
    )
    if result.mode == FULL:
        return [
            Finding(
                "ok",
                f"{driver} supports CUDA {detection.cuda_version}{overridden}: enough for "
                f"CUDA {required}",
                check="driver",
            )
        ], result
    if result.mode == MINOR_COMPAT:
        return [
            Finding(
                "warning",
                result.warning or result.reason,
                f"{upgrade_fix} for full support",
                check="driver",
            )
        ], result
    return [
        Finding(
            "error",
            f"{driver} (CUDA {detection.cuda_version}{overridden}) cannot run this CUDA "
            f"{required} environment: it {result.reason}",
            f"{upgrade_fix}, or recreate for this driver: conda torch-env create -p {prefix}",
            check="driver",
            detail=notes,
        )
    ], result


def _check_gpus(
    torch: InstalledRecord,
    flavour: Flavour,
    platform: str,
    detection: Detection,
    recipes: Recipes,
    prefix: Path,
    cuda: CudaCheck | None,
) -> list[Finding]:
    """Every GPU's compute capability against the build's arch list (from the recipes)."""
    if detection.cuda_version is not None and not detection.gpus:
        return [
            Finding(
                "warning",
                f"the NVIDIA driver reports no GPU: this {flavour.label} build runs on the CPU "
                "only here",
                "check that the GPU is visible here (nvidia-smi; a container needs --gpus)",
                check="gpu",
            )
        ]
    if not detection.gpus or flavour.cuda is None:
        return []
    archs = recipes.arch_list(flavour.channel_style, torch.version, flavour.cuda, platform)
    if archs is None:
        return [
            Finding(
                "info",
                f"no arch list is known for pytorch {torch.version} {flavour.label} "
                f"({flavour.channel_style}, {platform}): GPU coverage not checked",
                f"check it at runtime: conda torch-env doctor -p {prefix} --run",
                check="gpu",
            )
        ]
    # Under minor-version compatibility the driver cannot JIT newer PTX.
    jit = cuda.jit if cuda is not None else True
    findings = []
    for gpu in detection.gpus:
        label = f"GPU {gpu.index} {gpu.name}"
        if gpu.compute_capability is None:
            findings.append(
                Finding("info", f"{label}: compute capability unknown, not checked", check="gpu")
            )
            continue
        how = how_runs(archs.sass, archs.ptx, gpu.compute_capability, jit=jit)
        if how:
            findings.append(
                Finding(
                    "ok",
                    f"{label} (compute capability {gpu.compute_capability}) runs it: {how}",
                    check="gpu",
                )
            )
            continue
        findings.append(
            Finding(
                "error",
                f"{label} (compute capability {gpu.compute_capability}) is not covered by "
                f"pytorch {torch.version} {flavour.label}, which has {describe_archs(archs)}: "
                "CUDA calls fail with 'no kernel image is available'",
                _uncovered_fix(
                    flavour, (*archs.sass, *archs.ptx), gpu.compute_capability, prefix
                ),
                check="gpu",
            )
        )
    return findings


def _uncovered_fix(flavour: Flavour | None, archs: Iterable[str], cc: str, prefix: Path) -> str:
    """Newer GPU than a pytorch-channel build knows: conda-forge; otherwise let plan choose."""
    newest = max((parse_cc(a)[:2] for a in archs), default=(0, 0))
    if flavour and flavour.channel_style == "pytorch" and parse_cc(cc)[:2] > newest:
        # The pytorch channel stopped at 2.5.1; newer GPUs need conda-forge's builds.
        return f"conda torch-env create -p {prefix} --source conda-forge"
    return f"conda torch-env create -p {prefix} (plans a build that covers compute capability {cc})"


# -- pip -----------------------------------------------------------------------------------

_DIST_DIR = re.compile(
    r"^(?P<name>torch|torchvision|torchaudio)-(?P<version>[^-]+?)(?:-py\d[^-]*)?"
    r"\.(?:dist|egg)-info$",
    re.IGNORECASE,
)


def _site_packages(prefix: Path) -> list[Path]:
    found = sorted(prefix.glob("lib/python3*/site-packages"))
    windows = prefix / "Lib" / "site-packages"
    if windows.is_dir() and windows not in found:
        found.append(windows)
    return [p for p in found if p.is_dir()]


def _check_pip_shadowing(
    prefix: Path, records: Mapping[str, InstalledRecord], user_base: Path | None
) -> list[Finding]:
    owned = {f.replace("\\", "/") for r in records.values() for f in r.files}
    conda_versions = {
        DISTRIBUTIONS[name]: records[name].version for name in DISTRIBUTIONS if name in records
    }
    findings: list[Finding] = []
    for site in _site_packages(prefix):
        for meta in sorted(site.iterdir()):
            match = _DIST_DIR.match(meta.name)
            if not match or not meta.is_dir():
                continue
            dist, version = match["name"].lower(), match["version"]
            rel = meta.relative_to(prefix).as_posix()
            is_owned = rel in owned or any(f.startswith(rel + "/") for f in owned)
            findings += _metadata_finding(
                prefix, meta, dist, version, is_owned, conda_versions.get(dist)
            )
    findings += _check_user_site(records, user_base, conda_versions)
    if not any(f.check == "pip" for f in findings):
        findings.append(
            Finding("ok", "no pip-installed torch shadows conda's", check="pip")
        )
    return findings


def _metadata_finding(
    prefix: Path,
    meta: Path,
    dist: str,
    version: str,
    is_owned: bool,
    conda_version: str | None,
) -> list[Finding]:
    conda_name = "pytorch" if dist == "torch" else dist
    installer = _installer(meta)
    rel = meta.relative_to(prefix).as_posix()
    uninstall = f"{_python_path(prefix)} -m pip uninstall {dist}"
    reinstall = f"conda install -p {prefix} --force-reinstall {conda_name}"
    if is_owned:
        if conda_version is None or _public(version) == _public(conda_version):
            return []
        return [
            Finding(
                "error",
                f"{rel} says {dist} {version} but conda installed {conda_name} "
                f"{conda_version}: another installer overwrote conda's files",
                f"{reinstall}={conda_version}",
                check="pip",
            )
        ]
    by = f" by {installer}" if installer else ""
    if conda_version is None:
        return [
            Finding(
                "warning",
                f"{dist} {version} was installed{by}, not by conda ({rel}): the doctor cannot "
                "check its flavour",
                f"{uninstall}, then conda torch-env install -p {prefix}",
                check="pip",
            )
        ]
    same = _public(version) == _public(conda_version)
    return [
        Finding(
            "warning" if same else "error",
            f"{dist} {version} installed{by} ({rel}) shadows conda's {conda_name} "
            f"{conda_version}" + ("" if same else ": `import torch` may load either"),
            f"{uninstall}, then {reinstall}={conda_version}",
            check="pip",
        )
    ]


def _check_user_site(
    records: Mapping[str, InstalledRecord],
    user_base: Path | None,
    conda_versions: Mapping[str, str],
) -> list[Finding]:
    """Python puts the user site-packages before the environment's: a torch there wins."""
    python = records.get("python")
    if python is None or (user_base is None and os.environ.get("PYTHONNOUSERSITE")):
        return []
    xy = _major_minor(python.version)
    if xy is None:
        return []
    base = user_base if user_base is not None else _default_user_base()
    if base is None:
        return []
    if (python.subdir or "").startswith("win"):
        site = base / f"Python{xy.replace('.', '')}" / "site-packages"
    else:
        site = base / "lib" / f"python{xy}" / "site-packages"
    findings = []
    for dist in DISTRIBUTIONS.values():
        if not (site / dist).is_dir():
            continue
        conda_name = "pytorch" if dist == "torch" else dist
        findings.append(
            Finding(
                "error",
                f"{site / dist} (user site-packages) is imported before the environment's "
                + (f"{conda_name} {conda_versions[dist]}" if dist in conda_versions else dist),
                f"delete {site / dist} (and the {dist}-*.dist-info next to it), "
                "or set PYTHONNOUSERSITE=1",
                check="pip",
            )
        )
    return findings


def _default_user_base() -> Path | None:
    if env := os.environ.get("PYTHONUSERBASE"):
        return Path(env)
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) / "Python" if appdata else None
    home = os.environ.get("HOME")
    return Path(home) / ".local" if home else None


def _installer(meta: Path) -> str | None:
    try:
        return (meta / "INSTALLER").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


# -- --run ---------------------------------------------------------------------------------

# Runs inside the environment's python and prints one marked JSON line (torch
# or its warnings may print other lines). A failing import exits IMPORT_FAILED
# with its traceback on stderr.
IMPORT_FAILED = 3  # the probe's exit status when `import torch` itself raised
PROBE = f"""
import json
import sys
import traceback
try:
    import torch
except BaseException:
    traceback.print_exc()
    sys.exit({IMPORT_FAILED})

r = {{"torch_version": torch.__version__, "torch_file": torch.__file__,
     "cuda_version": torch.version.cuda}}
try:
    r["cuda_available"] = bool(torch.cuda.is_available())
except Exception as e:
    r["cuda_available"] = False
    r["cuda_error"] = f"{{type(e).__name__}}: {{e}}"
r["arch_list"] = list(torch.cuda.get_arch_list()) if r["cuda_available"] else []
r["devices"] = []
if r["cuda_available"]:
    for i in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(i)
        r["devices"].append({{"index": i, "name": torch.cuda.get_device_name(i),
                             "compute_capability": f"{{major}}.{{minor}}"}})
mps = getattr(torch.backends, "mps", None)
r["mps_available"] = bool(mps is not None and mps.is_available())
device = "cuda" if r["cuda_available"] else ("mps" if r["mps_available"] else None)
r["gpu_op"] = None
if device:
    try:
        x = torch.ones(2, 2, device=device)
        value = (x @ x).sum().item()
        r["gpu_op"] = {{"device": device, "value": value, "ok": value == 8}}
    except Exception as e:
        r["gpu_op"] = {{"device": device, "ok": False, "error": f"{{type(e).__name__}}: {{e}}"}}
print({PROBE_MARKER!r} + json.dumps(r), flush=True)
"""


def _python_path(prefix: Path) -> Path:
    for candidate in (prefix / "bin" / "python", prefix / "python.exe"):
        if candidate.exists():
            return candidate
    return prefix / ("python.exe" if os.name == "nt" else "bin/python")


def _probe_env(prefix: Path) -> dict[str, str]:
    env = dict(os.environ)
    if os.name == "nt":  # what `conda activate` puts on PATH, so torch's DLLs load
        dirs = [
            prefix,
            prefix / "Library" / "mingw-w64" / "bin",
            prefix / "Library" / "usr" / "bin",
            prefix / "Library" / "bin",
            prefix / "Scripts",
        ]
        env["PATH"] = os.pathsep.join([*map(str, dirs), env.get("PATH", "")])
    env["CONDA_PREFIX"] = str(prefix)
    return env


def _run_probe(
    prefix: Path,
    torch: InstalledRecord | None,
    flavour: Flavour | None,
    detection: Detection | None,
    *,
    runner: Callable[..., subprocess.CompletedProcess[str]],
    timeout_s: float,
) -> tuple[dict[str, Any] | None, list[Finding]]:
    python = _python_path(prefix)
    if not python.exists():
        return None, [
            Finding(
                "error",
                f"--run: the environment has no python ({python})",
                f"install one: conda install -p {prefix} python",
                check="run",
            )
        ]
    try:
        done = runner(
            [str(python), "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=str(prefix),  # not the caller's folder: a ./torch there would be imported
            env=_probe_env(prefix),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, [
            Finding(
                "error",
                f"--run: `import torch` and the checks did not finish within {timeout_s:g} s",
                "run it by hand to see where it hangs: "
                f"{python} -c 'import torch; print(torch.cuda.is_available())'",
                check="run",
            )
        ]
    except OSError as error:
        return None, [
            Finding(
                "error",
                f"--run: cannot start {python}: {error}",
                f"reinstall python: conda install -p {prefix} --force-reinstall python",
                check="run",
            )
        ]
    runtime = _parse_probe(done.stdout)
    if done.returncode != 0 or runtime is None:
        return None, [_import_failure(prefix, done)]
    return runtime, _runtime_findings(runtime, prefix, torch, flavour, detection)


def _parse_probe(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROBE_MARKER):
            try:
                value = json.loads(line[len(PROBE_MARKER) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


def _import_failure(prefix: Path, done: subprocess.CompletedProcess[str]) -> Finding:
    stderr = done.stderr or ""
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
    fix = f"reinstall the environment: conda torch-env install -p {prefix}"
    if "iJIT_NotifyEvent" in stderr:  # mkl 2024.1 broke the pytorch channel's builds
        fix = f"pin mkl below 2024.1: conda install -p {prefix} 'mkl<2024.1'"
    if done.returncode == IMPORT_FAILED:
        what = "`import torch` failed"
    elif done.returncode < 0:  # killed by a signal: a crash inside torch's native code
        what = f"python crashed (signal {-done.returncode}) while importing or using torch"
    else:
        what = f"the probe failed (exit status {done.returncode})"
    return Finding(
        "error",
        f"--run: {what}: {last or 'no output'}",
        fix,
        check="run",
        detail=_tail(stderr) or None,
    )


def _runtime_findings(
    runtime: Mapping[str, Any],
    prefix: Path,
    torch: InstalledRecord | None,
    flavour: Flavour | None,
    detection: Detection | None,
) -> list[Finding]:
    findings = _runtime_origin(runtime, prefix, torch, flavour)
    compute = flavour.compute if flavour else "unknown"
    has_gpus = bool(detection and detection.gpus)
    op = runtime.get("gpu_op")
    if runtime.get("cuda_available"):
        archs = [str(a) for a in runtime.get("arch_list") or ()]
        findings.append(
            Finding(
                "ok",
                f"torch.cuda.is_available() is True; arch list {' '.join(archs) or '(empty)'}",
                check="run",
            )
        )
        findings += _runtime_devices(runtime, archs, flavour, prefix)
    elif compute == "cuda" and has_gpus:
        error = runtime.get("cuda_error")
        findings.append(
            Finding(
                "error",
                "torch.cuda.is_available() is False although this machine has "
                f"{len(detection.gpus) if detection else 0} NVIDIA GPU(s)"
                + (f": {error}" if error else ""),
                "check the driver (conda torch-env detect) and CUDA_VISIBLE_DEVICES",
                check="run",
            )
        )
    elif op is None:
        why = {
            "cuda": "no NVIDIA GPU is usable here",
            "cpu": "a CPU build",
            "mps": "MPS is not available here",
        }.get(compute, "no GPU is usable here")
        findings.append(
            Finding("info", f"GPU operation skipped: {why}", check="run")
        )
    if op is not None:
        findings.append(_gpu_op_finding(op, flavour, prefix))
    return findings


def _runtime_origin(
    runtime: Mapping[str, Any],
    prefix: Path,
    torch: InstalledRecord | None,
    flavour: Flavour | None,
) -> list[Finding]:
    """Which torch the environment's python imported, and its CUDA version."""
    version = str(runtime.get("torch_version") or "?")
    where = runtime.get("torch_file")
    uninstall = f"{_python_path(prefix)} -m pip uninstall torch"
    if where and not _is_inside(Path(where), prefix):
        return [
            Finding(
                "error",
                f"python imports torch {version} from {where}, outside the environment",
                "remove that copy (pip uninstall --user torch), or clear PYTHONPATH",
                check="run",
            )
        ]
    if torch is not None and _public(version) != torch.version:
        return [
            Finding(
                "error",
                f"python imports torch {version}, not conda's pytorch {torch.version}",
                f"{uninstall}, then conda install -p {prefix} --force-reinstall "
                f"pytorch={torch.version}",
                check="run",
            )
        ]
    found: list[Finding] = [
        Finding("ok", f"python imports torch {version} from the environment", check="run")
    ]
    cuda = runtime.get("cuda_version")
    if flavour is None or flavour.compute == "unknown":
        return found
    if flavour.compute == "cuda":
        good = bool(cuda) and flavour.cuda in (None, _major_minor(str(cuda)))
    else:
        good = not cuda
    if good:
        found.append(Finding("ok", f"torch.version.cuda is {cuda}", check="run"))
    else:
        what = "a CPU build" if not cuda else f"built for CUDA {cuda}"
        found.append(
            Finding(
                "error",
                f"torch.version.cuda is {cuda}: the imported torch is {what}, but conda's "
                f"pytorch is a {flavour.label} build",
                f"conda install -p {prefix} --force-reinstall pytorch",
                check="run",
            )
        )
    return found


def _runtime_devices(
    runtime: Mapping[str, Any], archs: list[str], flavour: Flavour | None, prefix: Path
) -> list[Finding]:
    """Each device torch sees against the arch list torch itself reports."""
    sass, ptx = _split_arch_list(archs)
    findings = []
    for device in runtime.get("devices") or ():
        cc = str(device.get("compute_capability"))
        label = f"cuda:{device.get('index')} {device.get('name')} (compute capability {cc})"
        try:
            how = how_runs(sass, ptx, cc)
        except ValueError:
            how = None
        if how:
            findings.append(Finding("ok", f"{label} runs it: {how}", check="run"))
        elif sass or ptx:
            findings.append(
                Finding(
                    "error",
                    f"{label} is not covered by torch.cuda.get_arch_list()",
                    _uncovered_fix(flavour, (*sass, *ptx), cc, prefix),
                    check="run",
                )
            )
    return findings


def _split_arch_list(archs: list[str]) -> tuple[list[str], list[str]]:
    """``["sm_86", "sm_90a", "compute_90"]`` -> (["8.6", "9.0a"], ["9.0"])."""
    sass, ptx = [], []
    for arch in archs:
        match = re.match(r"^(sm|compute)_(\d+)(\d)(a?)$", arch)
        if not match:
            continue
        cc = f"{int(match[2])}.{match[3]}"
        if match[1] == "sm":
            sass.append(cc + match[4])
        else:
            ptx.append(cc)
    return sass, ptx


def _gpu_op_finding(op: Mapping[str, Any], flavour: Flavour | None, prefix: Path) -> Finding:
    device = op.get("device", "cuda")
    if op.get("ok"):
        return Finding(
            "ok",
            f"GPU operation on {device}: (ones(2,2) @ ones(2,2)).sum() = {op.get('value')}",
            check="gpu-op",
        )
    error = op.get("error") or f"got {op.get('value')!r} instead of 8"
    fix = f"conda torch-env doctor -p {prefix} (without --run) says which check fails"
    if "no kernel image" in str(error):
        fix = f"conda torch-env create -p {prefix} (plans a build that covers this GPU)"
        if flavour and flavour.channel_style == "pytorch":
            fix = f"conda torch-env create -p {prefix} --source conda-forge"
    return Finding("error", f"GPU operation on {device} failed: {error}", fix, check="gpu-op")


def _is_inside(path: Path, prefix: Path) -> bool:
    try:
        path.resolve().relative_to(prefix.resolve())
    except (ValueError, OSError):
        return False
    return True


# -- small helpers -------------------------------------------------------------------------

_XY = re.compile(r"(\d+)\.(\d+)")


def _major_minor(version: str) -> str | None:
    m = _XY.match(version)
    return f"{int(m[1])}.{int(m[2])}" if m else None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _same_major_not_older(runtime: str, build: str) -> bool:
    r, b = _version_key(runtime), _version_key(build)
    return r[:1] == b[:1] and r >= b


def _public(version: str) -> str:
    """'2.6.0+cu126' -> '2.6.0' (pip's local version label)."""
    return version.split("+", 1)[0]
