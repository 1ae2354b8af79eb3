"""Machine profiles on disk: ``detect --json`` files, and what nvidia-smi prints on other machines.

A fleet is planned from files a cluster admin can collect today, on machines
that may not have this tool installed:

- ``conda torch-env detect --json`` (or ``detect --save DIR``): the complete profile,
  with a ``schema`` number; a newer schema than this reader knows is refused;
- ``nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,uuid --format=csv``
  (with or without ``noheader``/``nounits`` when the columns are the ones above; the
  header names the columns otherwise). Output gathered with ``pdsh`` prefixes every
  line with ``HOST: ``: each host becomes one machine;
- ``nvidia-smi -q -x``: the XML log (``nvidia_smi_log``). It has the driver and its
  CUDA version but no compute capability, so its GPUs are not checked for coverage
  (a note says so).

The CSV and XML forms hold no platform: they describe Linux machines (``linux-64``)
unless the file name says otherwise (``ws-3.win-64.csv``). A machine's name is its
``hostname``, else the file name's stem. A file that cannot be read is a
:class:`~conda_torch_plugin.errors.ProfileError` naming the file and the line.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.atomic import atomic_write_text
from conda_torch_plugin.errors import ProfileError
from conda_torch_plugin.machine.model import PROFILE_SCHEMA, Gpu, Machine

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

PROFILE_SUFFIXES = (".json", ".csv", ".xml", ".txt")
DEFAULT_PLATFORM = "linux-64"
# The largest profile file read (a big pdsh CSV of a whole cluster fits easily).
MAX_PROFILE_BYTES = 16 * 1024 * 1024
_PLATFORMS = ("linux-64", "linux-aarch64", "win-64", "osx-arm64", "osx-64")
_CSV_FIELDS = {
    "name": "name",
    "compute_cap": "compute_cap",
    "driver_version": "driver_version",
    "memory.total": "memory.total",
    "uuid": "uuid",
    "index": "index",
    "gpu_name": "name",
    "gpu_uuid": "uuid",
}
# The documented collection command's columns, for output written with ``noheader``.
COLLECT_FIELDS = ("name", "compute_cap", "driver_version", "memory.total", "uuid")
_HOST_PREFIX = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*):\s(.*)$")
_CC = re.compile(r"^\d+\.\d+$")


def read_machines(paths: Iterable[str | Path]) -> list[Machine]:
    """Every machine in ``paths``: profile files, or folders of them (sorted by name).

    Raises ProfileError for a path that does not exist, a folder with no profile,
    two machines of the same name, or a file that cannot be read.
    """
    machines: list[Machine] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.suffix.lower() in PROFILE_SUFFIXES and p.is_file()
            )
            if not files:
                raise ProfileError(
                    f"{path} holds no machine profile (*.json, *.csv, *.xml)",
                    hints=[f"collect them first: conda torch-env detect --save {path}"],
                )
            for file in files:
                machines.extend(read_profile(file))
        elif path.exists():
            machines.extend(read_profile(path))
        else:
            raise ProfileError(
                f"machine profile {path} does not exist",
                hints=["pass a file written by `conda torch-env detect --json`, or a folder"],
            )
    seen: dict[str, int] = {}
    for machine in machines:
        seen[machine.name] = seen.get(machine.name, 0) + 1
    twice = [name for name, count in seen.items() if count > 1]
    if twice:
        raise ProfileError(
            f"two machine profiles have the same name: {', '.join(twice)}",
            hints=["give each machine its own file (detect --save names them by hostname)"],
        )
    return machines


def read_profile(path: str | Path) -> list[Machine]:
    """The machines one file describes (one, or one per host of a pdsh CSV)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise ProfileError(f"{path} is too large for a machine profile")
        raw = path.read_bytes()
    except OSError as error:
        raise ProfileError(f"cannot read machine profile {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        raise ProfileError(f"{path}: not UTF-8 text (byte {error.start})") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return [parse_profile_json(text, path)]
    if stripped.startswith("<"):
        return [parse_smi_xml(text, path)]
    return parse_smi_csv(text, path)


def _name_and_platform(path: Path) -> tuple[str, str]:
    """``ws-3.win-64.csv`` -> ("ws-3", "win-64"); ``node07.csv`` -> ("node07", linux-64)."""
    stem = path.stem
    for platform in _PLATFORMS:
        if stem.endswith("." + platform):
            return stem[: -len(platform) - 1], platform
    return stem, DEFAULT_PLATFORM


def parse_profile_json(text: str, path: Path) -> Machine:
    """A ``detect --json`` profile."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProfileError(
            f"{path}, line {error.lineno}: not valid JSON ({error.msg})",
            hints=["write it with `conda torch-env detect --json > FILE`"],
        ) from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}, line 1: a machine profile is a JSON object")
    schema = data.get("schema", PROFILE_SCHEMA)
    if not isinstance(schema, int) or schema > PROFILE_SCHEMA:
        raise ProfileError(
            f"{path}: machine profile schema {schema!r} is newer than this version reads "
            f"({PROFILE_SCHEMA})",
            hints=["upgrade conda-torch-plugin, or collect the profile with this version"],
        )
    name, platform = _name_and_platform(path)

    def text_field(key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ProfileError(
                f"{path}, line {_line_of(text, key)}: {key} must be a string, not {value!r}"
            )
        return value

    gpus_data = data.get("gpus", [])
    if not isinstance(gpus_data, list):
        raise ProfileError(f"{path}, line {_line_of(text, 'gpus')}: gpus must be a list")
    gpus = []
    for index, item in enumerate(gpus_data):
        if not isinstance(item, dict):
            raise ProfileError(
                f"{path}, line {_line_of(text, 'gpus')}: GPU {index} is not an object"
            )
        cc = item.get("compute_capability")
        if cc is not None and (not isinstance(cc, str) or not _CC.match(cc)):
            raise ProfileError(
                f"{path}, line {_line_of(text, 'compute_capability')}: GPU {index}'s compute "
                f"capability {cc!r} is not like 8.6"
            )
        memory = item.get("memory_mib")
        gpus.append(
            Gpu(
                index=item.get("index", index) if isinstance(item.get("index"), int) else index,
                name=item.get("name") if isinstance(item.get("name"), str) else None,
                uuid=item.get("uuid") if isinstance(item.get("uuid"), str) else None,
                compute_capability=cc,
                memory_mib=memory if isinstance(memory, int) else None,
            )
        )
    for key in ("driver_version", "cuda_version"):
        value = text_field(key)
        if value is not None and not re.fullmatch(r"\d+(\.\d+)*", value):
            raise ProfileError(
                f"{path}, line {_line_of(text, key)}: {key} {value!r} is not a version"
            )
    platform_value = text_field("platform") or platform
    if platform_value not in _PLATFORMS:
        raise ProfileError(
            f"{path}, line {_line_of(text, 'platform')}: platform {platform_value!r} is not one "
            f"PyTorch is built for ({', '.join(_PLATFORMS)})"
        )
    notes = data.get("notes", [])
    return Machine(
        driver_version=text_field("driver_version"),
        cuda_version=text_field("cuda_version"),
        source="profile",
        gpus=tuple(gpus),
        notes=tuple(str(n) for n in notes) if isinstance(notes, list) else (),
        platform=platform_value,
        glibc=text_field("glibc"),
        osx=text_field("osx"),
        hostname=text_field("hostname") or name,
        cuda_arch_override=None,
    )


def _line_of(text: str, key: str) -> int:
    """The line of the first ``"key"`` in a JSON text (1 when it is not there)."""
    at = text.find(f'"{key}"')
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def parse_smi_csv(text: str, path: Path) -> list[Machine]:
    """``nvidia-smi --query-gpu=... --format=csv`` output, one machine per host prefix."""
    name, platform = _name_and_platform(path)
    rows: dict[str, list[tuple[int, str]]] = {}
    hosts_seen = False
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        host = name
        match = _HOST_PREFIX.match(line)
        if match and "," in match[2] and "," not in match[1]:
            host, line = match[1], match[2]
            hosts_seen = True
        rows.setdefault(host, []).append((number, line))
    if not rows:
        raise ProfileError(
            f"{path}: empty machine profile",
            hints=[_collect_hint()],
        )
    machines = [
        _csv_machine(host if hosts_seen else name, lines, path, platform)
        for host, lines in rows.items()
    ]
    return machines


def _collect_hint() -> str:
    return "collect it with: nvidia-smi --query-gpu=" + ",".join(COLLECT_FIELDS) + " --format=csv"


def _csv_machine(name: str, lines: Sequence[tuple[int, str]], path: Path, platform: str) -> Machine:
    fields: list[str] | None = None
    gpus: list[Gpu] = []
    drivers: set[str] = set()
    for number, line in lines:
        cells = [cell.strip() for cell in line.split(",")]
        header = [re.sub(r"\s*\[.*\]$", "", c).lower() for c in cells]
        if header and header[0] in _CSV_FIELDS and all(h in _CSV_FIELDS for h in header):
            fields = [_CSV_FIELDS[h] for h in header]
            continue
        if fields is None:
            fields = list(COLLECT_FIELDS)
        if "driver_version" not in fields:
            raise ProfileError(
                f"{path}, line {number}: the CSV has no driver_version column",
                hints=[_collect_hint()],
            )
        if len(cells) < len(fields):
            raise ProfileError(
                f"{path}, line {number}: expected {len(fields)} columns "
                f"({', '.join(fields)}), found {len(cells)}: {line.strip()!r}",
                hints=[_collect_hint()],
            )
        extra = len(cells) - len(fields)
        if extra and "name" in fields:  # a GPU name with a comma in it
            at = fields.index("name")
            cells[at : at + extra + 1] = [", ".join(cells[at : at + extra + 1])]
        elif extra:
            raise ProfileError(
                f"{path}, line {number}: expected {len(fields)} columns, found {len(cells)}"
            )
        row = dict(zip(fields, cells, strict=True))
        driver = _missing(row.get("driver_version"))
        if driver is None or not re.fullmatch(r"\d+(\.\d+)+", driver):
            raise ProfileError(
                f"{path}, line {number}: driver_version {row.get('driver_version')!r} is not a "
                "driver version like 550.54.15",
                hints=[_collect_hint()],
            )
        drivers.add(driver)
        cc = _missing(row.get("compute_cap"))
        if cc is not None and not _CC.match(cc):
            raise ProfileError(
                f"{path}, line {number}: compute_cap {cc!r} is not a compute capability like 8.6"
            )
        memory = re.match(r"\d+", row.get("memory.total", ""))
        index = row.get("index", "")
        gpus.append(
            Gpu(
                index=int(index) if index.isdigit() else len(gpus),
                name=_missing(row.get("name")),
                uuid=_missing(row.get("uuid")),
                compute_capability=f"{int(cc.split('.')[0])}.{int(cc.split('.')[1])}"
                if cc
                else None,
                memory_mib=int(memory[0]) if memory else None,
            )
        )
    if not gpus:
        raise ProfileError(
            f"{path}: no GPU rows for {name} (only a header)", hints=[_collect_hint()]
        )
    notes: tuple[str, ...] = ()
    if len(drivers) > 1:
        raise ProfileError(
            f"{path}: {name} lists two driver versions: {', '.join(sorted(drivers))}"
        )
    if any(g.compute_capability is None for g in gpus):
        notes = ("nvidia-smi reported no compute capability: GPU coverage not checked",)
    return Machine(
        driver_version=drivers.pop(),
        cuda_version=None,  # not in the CSV: the plan derives it from the driver version
        source="profile",
        gpus=tuple(gpus),
        notes=notes,
        platform=platform,
        hostname=name,
    )


def _missing(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in {"", "n/a", "[n/a]", "[not supported]"} else value


def parse_smi_xml(text: str, path: Path) -> Machine:
    """``nvidia-smi -q -x``: the driver, its CUDA version and the GPUs (no compute capability)."""
    import xml.etree.ElementTree as ET

    name, platform = _name_and_platform(path)
    body = re.sub(r"<!DOCTYPE[^>]*>", "", text)  # no external DTD is ever fetched
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        line = error.position[0] if error.position else 1
        # The DOCTYPE line was blanked, not removed: line numbers are the file's.
        raise ProfileError(f"{path}, line {line}: not valid XML ({error})") from None
    if root.tag != "nvidia_smi_log":
        raise ProfileError(
            f"{path}, line 1: not an nvidia-smi XML log (the root is <{root.tag}>)",
            hints=["collect it with: nvidia-smi -q -x"],
        )
    driver = _missing(root.findtext("driver_version"))
    if driver is None or not re.fullmatch(r"\d+(\.\d+)+", driver):
        raise ProfileError(
            f"{path}: <driver_version> {driver!r} is not a driver version like 550.54.15"
        )
    cuda = _missing(root.findtext("cuda_version"))
    if cuda is not None and not _CC.match(cuda):
        raise ProfileError(f"{path}: <cuda_version> {cuda!r} is not a version like 12.4")
    gpus: list[Gpu] = []
    for index, element in enumerate(root.findall("gpu")):
        cc = _missing(element.findtext("compute_cap"))
        memory = re.match(r"\d+", element.findtext("fb_memory_usage/total") or "")
        gpus.append(
            Gpu(
                index=index,
                name=_missing(element.findtext("product_name")),
                uuid=_missing(element.findtext("uuid")),
                compute_capability=cc if cc and _CC.match(cc) else None,
                memory_mib=int(memory[0]) if memory else None,
            )
        )
    notes: tuple[str, ...] = ()
    if any(g.compute_capability is None for g in gpus):
        notes = (
            "nvidia-smi -q -x has no compute capability: GPU coverage not checked "
            "(collect the CSV form for it: " + _collect_hint().split(": ", 1)[1] + ")",
        )
    return Machine(
        driver_version=driver,
        cuda_version=cuda,
        source="profile",
        gpus=tuple(gpus),
        notes=notes,
        platform=platform,
        hostname=name,
    )


def save_profile(machine: Machine, folder: str | Path) -> Path:
    """Write ``machine`` as ``FOLDER/<hostname>.json``, atomically; return the path."""
    folder = Path(folder)
    name = machine.hostname or "machine"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        raise ProfileError(
            f"the hostname {name!r} cannot be a file name", hints=["pass --hostname NAME"]
        )
    if not folder.is_dir():
        raise ProfileError(
            f"cannot save the profile: {folder} is not a folder",
            hints=[f"create it first (mkdir -p {folder})"],
        )
    path = folder / f"{name}.json"
    try:
        atomic_write_text(path, json.dumps(machine.to_dict(), indent=2) + "\n")
    except OSError as error:
        raise ProfileError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def with_hostname(machine: Machine, hostname: str | None) -> Machine:
    return replace(machine, hostname=hostname) if hostname else machine


def profile_summary(machine: Machine) -> dict[str, Any]:
    """A compact description for a recorded target (no notes, no UUIDs)."""
    return {
        "name": machine.name,
        "platform": machine.platform,
        "driver": machine.driver_version,
        "cuda": machine.cuda_version,
        "gpus": [g.compute_capability for g in machine.gpus if g.compute_capability],
    }
