"""What an environment file was planned for, recorded in it so that a rewrite keeps it.

``write`` records its targets in one comment line of environment.yml's header,
which conda and conda-lock ignore::

    # torch-env targets: {"platforms": ["linux-64", "win-64"], "source": "auto", ...}

- ``platforms``, ``source`` (``--source`` when given; absent, the default source
  setting applies) and ``cpu`` (``--cpu``);
- ``machines``: the ``--machine`` profiles, as paths relative to the file's folder, or
  ``machine``: the one machine it was planned for (its name, driver, CUDA and GPUs),
  whether detected or given by flags;
- ``pins``: ``--pytorch`` and ``--python`` as given (kept unless given again);
- ``planned``: what the plan chose (compute, CUDA, source), to tell what a re-plan changes.

A later ``write``/``create`` without target flags re-plans for the same targets, on
whatever machine it runs. A file written before targets were recorded has them
inferred from its ``platforms:`` and virtual-packages.yml's ``__cuda``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import EnvFileError

if TYPE_CHECKING:
    from pathlib import Path

    from conda_torch_plugin.machine.model import Machine

TARGETS_PREFIX = "# torch-env targets: "
_CUDA_PIN = re.compile(r"\s*(?:[\w.-]+::)?(?:pytorch-cuda|cuda-version)\s*=+\s*(\d+\.\d+)")


@dataclass(frozen=True)
class Targets:
    platforms: tuple[str, ...]
    source: str | None = None  # --source as given (None: the default source setting)
    cpu: bool = False
    machines: tuple[str, ...] = ()  # --machine paths, relative to the file's folder
    machine: dict[str, Any] | None = None  # {"name", "driver", "cuda", "gpu_arch": [...]}
    planned: dict[str, Any] = field(default_factory=dict)  # {"compute", "cuda", "source"}
    pins: dict[str, str] = field(default_factory=dict)  # {"pytorch": "2.5.1", "python": ...}
    inferred: bool = False  # read from an older file's contents, not recorded

    def to_json(self) -> str:
        data: dict[str, Any] = {"platforms": list(self.platforms)}
        if self.source is not None:
            data["source"] = self.source
        if self.cpu:
            data["cpu"] = True
        if self.machines:
            data["machines"] = list(self.machines)
        elif self.machine is not None:
            data["machine"] = self.machine
        if self.pins:
            data["pins"] = self.pins
        data["planned"] = self.planned
        return json.dumps(data, separators=(", ", ": "))

    @property
    def build(self) -> str:
        """The planned build in words: "CUDA 12.4", "CPU"."""
        compute = self.planned.get("compute")
        if compute == "cuda":
            return f"CUDA {self.planned.get('cuda')}"
        return str(compute or "unknown").upper()

    def changes_to(self, new: Targets) -> list[str]:
        """What differs, in words: "platforms linux-64, win-64 -> linux-64", "CUDA 12.4 -> CPU"."""
        changes = []
        if self.platforms != new.platforms:
            changes.append(f"platforms {', '.join(self.platforms)} -> {', '.join(new.platforms)}")
        if self.build != new.build:
            changes.append(f"{self.build} -> {new.build}")
        old_source, new_source = self.planned.get("source"), new.planned.get("source")
        if old_source and new_source and old_source != new_source:
            changes.append(f"source {old_source} -> {new_source}")
        if self.machines != new.machines and (self.machines or new.machines):
            old = ", ".join(self.machines) or "one machine"
            changes.append(f"machines {old} -> {', '.join(new.machines) or 'one machine'}")
        return changes


def parse_targets(text: str, source: str) -> Targets | None:
    """The recorded targets in an environment file's text, or None when it records none."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(TARGETS_PREFIX):
            if line.startswith("#") or not line.strip():
                continue
            break  # only the leading comments are the header
        try:
            data = json.loads(line[len(TARGETS_PREFIX) :])
            return Targets(
                platforms=tuple(str(p) for p in data["platforms"]),
                source=str(data["source"]) if data.get("source") is not None else None,
                cpu=bool(data.get("cpu", False)),
                machines=tuple(str(p) for p in data.get("machines", ())),
                machine=dict(data["machine"]) if isinstance(data.get("machine"), dict) else None,
                planned=dict(data.get("planned") or {}),
                pins={str(k): str(v) for k, v in (data.get("pins") or {}).items()},
            )
        except (ValueError, KeyError, TypeError):
            raise EnvFileError(
                f"{source}, line {number}: the recorded targets cannot be read",
                hints=[
                    "restore the line, or pass the targets again (--platform, --cuda, "
                    "--machine, ...) to record new ones"
                ],
            ) from None
    return None


def infer_targets(data: Any, virtual_packages: Any) -> Targets | None:
    """An older file's targets from its ``platforms:``, channels and ``__cuda`` (None: cannot)."""
    if not isinstance(data, dict):
        return None
    platforms = data.get("platforms")
    if not isinstance(platforms, list) or not platforms:
        return None
    platforms = [str(p) for p in platforms]
    subdirs = virtual_packages.get("subdirs") if isinstance(virtual_packages, dict) else None
    cuda = None
    if isinstance(subdirs, dict):
        for platform in platforms:
            entry = subdirs.get(platform)
            packages = entry.get("packages") if isinstance(entry, dict) else None
            if isinstance(packages, dict) and packages.get("__cuda"):
                cuda = str(packages["__cuda"])
                break
    channels = [str(c) for c in data.get("channels") or () if isinstance(c, str)]
    specs = [str(d) for d in data.get("dependencies") or () if isinstance(d, str)]
    if cuda is None:  # no virtual-packages.yml: the CUDA pin in the dependencies
        for spec in specs:
            match = re.match(
                r"\s*(?:[\w.-]+::)?(?:pytorch-cuda|cuda-version)\s*=+\s*(\d+\.\d+)", spec
            )
            if match:
                cuda = match[1]
                break
    cpu = any(s.split("=")[0].strip() == "cpuonly" for s in specs) and cuda is None
    planned: dict[str, Any] = {"compute": "cuda" if cuda else ("cpu" if cpu else None)}
    if cuda:
        planned["cuda"] = cuda
    planned["source"] = "pytorch" if "pytorch" in channels else "conda-forge"
    machine: dict[str, Any] | None = None
    if cuda:
        machine = {"name": None, "driver": None, "cuda": cuda, "gpu_arch": []}
    return Targets(
        platforms=tuple(platforms),
        cpu=cpu,
        machine=machine,
        planned=planned,
        inferred=True,
    )


def read_targets(env_path: Path, vp_path: Path) -> Targets | None:
    """The targets ``env_path`` records, or infers from its contents; None for a new file."""
    from ruamel.yaml.error import YAMLError

    from conda_torch_plugin.envfile._yaml_edit import safe_yaml
    from conda_torch_plugin.inputs import ENVIRONMENT_FILE, VIRTUAL_PACKAGES_FILE, read_bytes

    if not env_path.is_file():
        return None
    text = read_bytes(env_path, limits=ENVIRONMENT_FILE, error=EnvFileError).decode(
        "utf-8", errors="replace"
    )
    recorded = parse_targets(text, str(env_path))
    if recorded is not None:
        return recorded
    try:
        data = safe_yaml().load(text)
        vp = None
        if vp_path.is_file():
            raw = read_bytes(vp_path, limits=VIRTUAL_PACKAGES_FILE, error=EnvFileError)
            vp = safe_yaml().load(raw.decode("utf-8", errors="replace"))
    except YAMLError:
        return None  # the write reports the malformed file with its line
    return infer_targets(data, vp)


def set_targets_line(text: str, targets: Targets) -> str:
    """``text`` with its targets line replaced, or added at the end of the leading comments."""
    line = TARGETS_PREFIX + targets.to_json()
    lines = text.split("\n")
    end = 0
    for index, current in enumerate(lines):
        if current.startswith(TARGETS_PREFIX):
            lines[index] = line
            return "\n".join(lines)
        if not current.startswith("#"):
            break
        end = index + 1
    lines.insert(end, line)
    return "\n".join(lines)


def target_machines(targets: Targets, folder: Path) -> list[Machine]:
    """The machines the targets name: the ``machines`` profiles (relative to ``folder``),
    or the one recorded machine, as a machine of each of its CUDA platforms."""
    from conda_torch_plugin.machine.model import Machine, gpus_from_capabilities
    from conda_torch_plugin.machine.profiles import read_machines

    if targets.machines:
        return read_machines([folder / m for m in targets.machines])
    recorded = targets.machine
    if not recorded or not (recorded.get("cuda") or recorded.get("driver")):
        return []
    gpus = gpus_from_capabilities(tuple(str(c) for c in recorded.get("gpu_arch") or ()))
    name = recorded.get("name") or "the planned machine"
    return [
        Machine(
            recorded.get("driver"),
            recorded.get("cuda"),
            "flags",
            gpus,
            platform=platform,
            hostname=f"{name} ({platform})" if len(targets.platforms) > 1 else name,
        )
        for platform in targets.platforms
        if not platform.startswith("osx")
    ]


def planned_without_gpu(lockfile: Path, platform: str) -> list[str]:
    """The machines without an NVIDIA GPU on ``platform`` that the lock's environment file
    was planned for (by name): a CUDA build running there on the CPU is then as planned."""
    from conda_torch_plugin.condalock import environment_for_lockfile, virtual_packages_for_env
    from conda_torch_plugin.errors import TorchEnvError

    env_path = environment_for_lockfile(lockfile)
    try:
        targets = read_targets(env_path, virtual_packages_for_env(env_path))
        if targets is None or not targets.machines:
            return []
        machines = target_machines(targets, env_path.parent)
    except TorchEnvError:
        return []  # the profiles moved or changed: no exception is made
    return [m.name for m in machines if m.platform == platform and not m.has_nvidia]
