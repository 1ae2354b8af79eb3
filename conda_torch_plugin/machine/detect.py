"""Detect the NVIDIA driver and GPUs: NVML first, then nvidia-smi, then /proc.

Each probe returns ``None`` on failure and never raises; what went wrong becomes
a note in the report. ``CONDA_OVERRIDE_CUDA`` is honoured as conda honours it,
and an explicit ``cuda_override`` (``--cuda``) wins over both.

The environment, the subprocess runner, the /proc path and the NVML library
are parameters so that tests (and ``doctor``) can point them at fakes.
"""

from __future__ import annotations

import contextlib
import os
import platform as _platform
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.errors import UsageError
from conda_torch_plugin.machine.model import Gpu, Machine

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from conda_torch_plugin.machine.model import MachineSource

PROC_VERSION_PATH = "/proc/driver/nvidia/version"
OVERRIDE_VARIABLE = "CONDA_OVERRIDE_CUDA"
ARCH_OVERRIDE_VARIABLE = "CONDA_OVERRIDE_CUDA_ARCH"
SMI_FIELDS = ("index", "name", "uuid", "compute_cap", "memory.total", "driver_version")
# nvidia-smi can hang for many seconds when persistence mode is off and a GPU is
# wedged; a report that says so beats a detect that never returns.
SMI_TIMEOUT_S = 15


@dataclass(frozen=True)
class Probe:
    """What one probe found; ``source`` names the probe."""

    source: MachineSource
    driver_version: str | None
    cuda_version: str | None
    gpus: tuple[Gpu, ...] = ()


@dataclass(frozen=True)
class CudaOverride:
    """A CUDA version forced by --cuda or CONDA_OVERRIDE_CUDA; ``version`` None = no CUDA."""

    version: str | None
    origin: str  # "--cuda" or "CONDA_OVERRIDE_CUDA"
    raw: str


def detect(
    *,
    environ: Mapping[str, str] | None = None,
    cuda_override: str | None = None,
    run: Callable[..., Any] = subprocess.run,
    proc_version_path: str = PROC_VERSION_PATH,
    nvml_library: str | None = None,
) -> Machine:
    """Describe this machine: its NVIDIA driver, GPUs and conda platform.

    Raises ``UsageError`` only for an invalid ``cuda_override`` or
    ``CONDA_OVERRIDE_CUDA``; every hardware or driver problem becomes a note.
    """
    env = os.environ if environ is None else environ
    override = resolve_cuda_override(env, cuda_override)
    notes: list[str] = []
    found = (
        probe_nvml(notes, library=nvml_library)
        or probe_nvidia_smi(notes, run=run, environ=env)
        or probe_proc(notes, path=proc_version_path)
    )
    if found is None:
        found = Probe(source="none", driver_version=None, cuda_version=None)
    elif found.cuda_version is None and override is None:
        notes.append(
            "the driver's maximum CUDA version is unknown: pass --cuda X.Y "
            "(the 'CUDA Version' that nvidia-smi shows) to plan for it"
        )
    glibc, osx = _os_versions()
    arch = _arch_override(env)
    host = _hostname()
    source, cuda = found.source, found.cuda_version
    if override is not None:
        if cuda_override is not None and OVERRIDE_VARIABLE in env:
            notes.append(
                f"--cuda {cuda_override!r} wins over {OVERRIDE_VARIABLE}={env[OVERRIDE_VARIABLE]!r}"
            )
        notes.append(_override_note(override, found))
        source, cuda = "override", override.version
    return Machine(
        found.driver_version,
        cuda,
        source,
        found.gpus,
        tuple(notes),
        current_platform(),
        glibc,
        osx,
        host,
        arch,
    )


def _hostname() -> str | None:
    import socket

    try:
        return socket.gethostname() or None
    except OSError:
        return None


def _arch_override(env: Mapping[str, str]) -> str | None:
    """``CONDA_OVERRIDE_CUDA_ARCH`` as conda reads it (a compute capability such as 8.6)."""
    raw = env.get(ARCH_OVERRIDE_VARIABLE)
    if raw is None or not raw.strip():
        return None
    if not re.fullmatch(r"\d+\.\d+", raw.strip()):
        raise UsageError(
            f"{ARCH_OVERRIDE_VARIABLE}={raw!r} is not a compute capability like 8.6",
            hints=[f"set it as MAJOR.MINOR, e.g. {ARCH_OVERRIDE_VARIABLE}=8.6, or unset it"],
        )
    return raw.strip()


def _os_versions() -> tuple[str | None, str | None]:
    """This machine's glibc and macOS versions, where it has them."""
    glibc = osx = None
    if sys.platform.startswith("linux"):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            found = os.confstr("CS_GNU_LIBC_VERSION") or ""
            glibc = found.split()[-1] if found.startswith("glibc ") else None
    elif sys.platform == "darwin":
        osx = _platform.mac_ver()[0] or None
    return glibc, osx


def resolve_cuda_override(
    environ: Mapping[str, str], cuda_override: str | None
) -> CudaOverride | None:
    """--cuda first, then CONDA_OVERRIDE_CUDA (set, even empty, counts as conda counts it)."""
    if cuda_override is not None:
        return CudaOverride(parse_cuda_override(cuda_override, "--cuda"), "--cuda", cuda_override)
    raw = environ.get(OVERRIDE_VARIABLE)
    if raw is None:
        return None
    return CudaOverride(parse_cuda_override(raw, OVERRIDE_VARIABLE), OVERRIDE_VARIABLE, raw)


_CUDA_OVERRIDE = re.compile(r"(\d+)(?:\.(\d+))?(?:\.\d+)?")


def parse_cuda_override(value: str, origin: str) -> str | None:
    """``"12.4"`` -> ``"12.4"``, ``"12"`` -> ``"12.0"``, ``""`` -> None (no CUDA).

    conda strips the value and treats an empty one as "no __cuda"; a version
    keeps its major.minor, which is all ``__cuda`` carries.
    """
    stripped = value.strip()
    if not stripped:
        return None
    match = _CUDA_OVERRIDE.fullmatch(stripped)
    if match is None:
        shown = f"{origin}={value!r}" if origin == OVERRIDE_VARIABLE else f"{origin} {value!r}"
        raise UsageError(
            f"{shown} is not a CUDA version like 12.4",
            hints=[
                f"set {origin} to the driver's maximum CUDA version, e.g. 12.4",
                f"an empty {origin} means 'no CUDA driver'",
            ],
        )
    return f"{int(match[1])}.{int(match[2] or 0)}"


def _override_note(override: CudaOverride, found: Probe) -> str:
    shown = (
        f"{override.origin}={override.raw!r}"
        if override.origin == OVERRIDE_VARIABLE
        else f"{override.origin} {override.raw!r}"
    )
    if override.version is None:
        head = f"{override.origin} is empty: planning as if there were no CUDA driver"
    else:
        head = f"{shown} sets the maximum CUDA version to {override.version}"
    if found.cuda_version is not None:
        return f"{head}; the driver itself reports CUDA {found.cuda_version} ({found.source})"
    if found.source != "none":
        return f"{head}; the driver and GPUs are still those detected ({found.source})"
    return head


def cuda_from_nvml_int(value: int) -> str:
    """NVML/cuDriverGetVersion encoding: 12040 -> "12.4", 13000 -> "13.0", 11080 -> "11.8"."""
    if value <= 0:
        raise ValueError(f"not a CUDA version number: {value}")
    return f"{value // 1000}.{(value % 1000) // 10}"


def probe_nvml(notes: list[str], *, library: str | None = None) -> Probe | None:
    """Ask the driver through pynvml; None (with a note) when NVML is unusable."""
    try:
        import pynvml
    except ImportError:
        notes.append(
            "NVML: the nvidia-ml-py package (module pynvml) is not installed: "
            "reinstall conda-torch-plugin with its dependencies"
        )
        return None
    try:
        with _nvml_library(pynvml, library, notes) as loaded:
            return _read_nvml(pynvml, notes) if loaded else None
    except Exception as error:  # never raise from a probe: a broken binding is a note
        notes.append(f"NVML: unexpected failure ({type(error).__name__}: {error})")
        return None


@contextlib.contextmanager
def _nvml_library(pynvml: Any, library: str | None, notes: list[str]) -> Iterator[bool]:
    """Point pynvml at ``library`` for the duration, then put its state back.

    Yields False (with a note) when that library cannot be loaded.
    """
    if library is None:
        yield True
        return
    import ctypes

    try:
        loaded = ctypes.CDLL(library)
    except OSError as error:
        notes.append(f"{nvml_error_note(12)} ({error})")
        yield False
        return
    cache = getattr(pynvml, "_nvmlGetFunctionPointer_cache", {})
    saved_lib, saved_cache = pynvml.nvmlLib, dict(cache)
    pynvml.nvmlLib = loaded
    cache.clear()  # symbols resolved from another library must not be reused
    try:
        yield True
    finally:
        pynvml.nvmlLib = saved_lib
        cache.clear()
        cache.update(saved_cache)


def _read_nvml(pynvml: Any, notes: list[str]) -> Probe | None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        notes.append(nvml_error_note(error.value))
        return None
    try:
        driver = _nvml_call(
            pynvml, notes, "read the driver version", pynvml.nvmlSystemGetDriverVersion
        )
        cuda = None
        encoded = _nvml_call(
            pynvml, notes, "read the maximum CUDA version", pynvml.nvmlSystemGetCudaDriverVersion
        )
        if encoded is not None:
            try:
                cuda = cuda_from_nvml_int(int(encoded))
            except ValueError:
                notes.append(f"NVML reported an invalid maximum CUDA version ({encoded})")
        count = _nvml_call(pynvml, notes, "count the GPUs", pynvml.nvmlDeviceGetCount)
        gpus = tuple(gpu for index in range(count or 0) if (gpu := _nvml_gpu(pynvml, index, notes)))
        if count == 0:
            notes.append(
                f"NVML: the driver{f' ({driver})' if driver else ''} is loaded but sees no NVIDIA "
                "GPU: check the GPU is seated and enabled (in a container, pass it in, e.g. "
                "docker run --gpus all)"
            )
        return Probe("nvml", driver, cuda, gpus)
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _nvml_call(pynvml: Any, notes: list[str], action: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except pynvml.NVMLError as error:
        notes.append(f"NVML could not {action}: {_nvml_meaning(error.value)}")
        return None


def _nvml_gpu(pynvml: Any, index: int, notes: list[str]) -> Gpu | None:
    handle = _nvml_call(
        pynvml, notes, f"open GPU {index}", pynvml.nvmlDeviceGetHandleByIndex, index
    )
    if handle is None:
        return None
    name = _nvml_call(pynvml, notes, f"read GPU {index}'s name", pynvml.nvmlDeviceGetName, handle)
    uuid = _nvml_call(pynvml, notes, f"read GPU {index}'s UUID", pynvml.nvmlDeviceGetUUID, handle)
    capability = _nvml_call(
        pynvml,
        notes,
        f"read GPU {index}'s compute capability",
        pynvml.nvmlDeviceGetCudaComputeCapability,
        handle,
    )
    memory = _nvml_call(
        pynvml, notes, f"read GPU {index}'s memory", pynvml.nvmlDeviceGetMemoryInfo, handle
    )
    return Gpu(
        index=index,
        name=name or f"GPU {index}",
        uuid=uuid,
        compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
        memory_mib=memory.total // (1024 * 1024) if memory is not None else None,
    )


# NVML return codes (nvml.h; the same numbers as pynvml's NVML_ERROR_* constants).
_NVML_NOTES = {
    12: "no NVIDIA driver library (libnvidia-ml.so.1 / nvml.dll) found: install the NVIDIA "
    "driver, or plan for another machine with --cuda/--gpu-arch",
    9: "the NVIDIA driver library is installed but its kernel module is not loaded: reboot, "
    "or load it with 'sudo modprobe nvidia' (check 'dmesg' for NVRM errors); without a GPU, "
    "plan for another machine with --cuda/--gpu-arch",
    18: "the NVIDIA driver library and the loaded kernel module are different versions "
    "(driver/library version mismatch, usual right after a driver upgrade): reboot after a "
    "driver upgrade",
    4: "insufficient permissions to talk to the NVIDIA driver: give this user access to the "
    "/dev/nvidia* devices (in a container, run it with the GPU passed in, e.g. --gpus all)",
    1: "the library reports it is not initialized (a driver fault): run nvidia-smi to check the "
    "driver, reinstall it if that fails too",
    13: "the NVIDIA driver is too old to provide this NVML function: upgrade the NVIDIA driver, "
    "or pass --cuda X.Y",
    15: "a GPU has fallen off the bus (GPU is lost): reboot the machine; if it recurs, check "
    "power and cooling",
    3: "the driver does not support this query on this GPU",
    999: "an unknown NVML error: run nvidia-smi to check the driver; a reboot often helps",
}


def nvml_error_note(code: int) -> str:
    """The note for an NVML return code: what it means and what to do."""
    return f"NVML: {_nvml_meaning(code)}"


def _nvml_meaning(code: int) -> str:
    known = _NVML_NOTES.get(code)
    if known is not None:
        return known
    return f"error {code} from the NVIDIA driver: run nvidia-smi to check the driver"


def probe_nvidia_smi(
    notes: list[str], *, run: Callable[..., Any], environ: Mapping[str, str]
) -> Probe | None:
    """``nvidia-smi --query-gpu=...``; None (with a note) when it is missing or fails."""
    fields: tuple[str, ...] = SMI_FIELDS
    result = _run_smi(run, environ, notes, _smi_query(fields))
    if result is None:
        return None
    if result.returncode != 0 and "compute_cap" in _output(result):
        # Drivers before ~510 do not know the compute_cap field: ask without it.
        fields = tuple(f for f in SMI_FIELDS if f != "compute_cap")
        notes.append(
            "nvidia-smi is too old to report compute capabilities: upgrade the NVIDIA driver, "
            "or pass --gpu-arch X.Y"
        )
        result = _run_smi(run, environ, notes, _smi_query(fields))
        if result is None:
            return None
    if result.returncode != 0:
        notes.append(f"nvidia-smi failed (exit {result.returncode}): {_first_line(result)}")
        return None
    gpus, driver = parse_nvidia_smi_csv(result.stdout or "", fields=fields)
    if not gpus:  # the driver version comes from the rows: nothing was learnt
        notes.append("nvidia-smi ran but listed no GPU")
        return None
    cuda = None
    header = _run_smi(run, environ, notes, ["nvidia-smi"])
    if header is not None and header.returncode == 0:
        cuda = parse_nvidia_smi_cuda(header.stdout or "")
    if cuda is None:
        notes.append("nvidia-smi did not show the driver's maximum CUDA version")
    return Probe("nvidia-smi", driver, cuda, tuple(gpus))


def _smi_query(fields: Sequence[str]) -> list[str]:
    return ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"]


def _run_smi(
    run: Callable[..., Any], environ: Mapping[str, str], notes: list[str], argv: list[str]
) -> Any | None:
    try:
        return run(
            argv,
            capture_output=True,
            text=True,
            timeout=SMI_TIMEOUT_S,
            env=dict(environ),
            check=False,
        )
    except FileNotFoundError:
        notes.append("nvidia-smi: not found on PATH")
    except subprocess.TimeoutExpired:
        notes.append(f"nvidia-smi did not answer within {SMI_TIMEOUT_S} s (is a GPU hung?)")
    except (OSError, subprocess.SubprocessError) as error:
        notes.append(f"nvidia-smi could not be run: {error}")
    return None


def _output(result: Any) -> str:
    return f"{result.stdout or ''}\n{result.stderr or ''}"


def _first_line(result: Any) -> str:
    for line in _output(result).splitlines():
        if line.strip():
            return line.strip()
    return "no output"


_MISSING = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]"}


def _value(text: str) -> str | None:
    text = text.strip()
    return None if text.lower() in _MISSING else text


def _int(text: str | None) -> int | None:
    match = re.match(r"\d+", text or "")
    return int(match[0]) if match else None


def parse_nvidia_smi_csv(
    text: str, *, fields: Sequence[str] = SMI_FIELDS
) -> tuple[list[Gpu], str | None]:
    """Parse ``--query-gpu=<fields> --format=csv,noheader,nounits`` output.

    Returns the GPUs and the driver version. Tolerates CRLF, blank lines, odd
    spacing (WSL), "[N/A]" values, " MiB" units and a comma inside a name.
    """
    gpus: list[Gpu] = []
    driver = None
    name_at = fields.index("name") if "name" in fields else None
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < len(fields) or not any(parts):
            continue
        extra = len(parts) - len(fields)
        if extra and name_at is not None:  # a name with commas in it
            parts[name_at : name_at + extra + 1] = [", ".join(parts[name_at : name_at + extra + 1])]
        row = dict(zip(fields, (_value(part) for part in parts), strict=True))
        index = _int(row.get("index"))
        gpus.append(
            Gpu(
                index=len(gpus) if index is None else index,
                name=row.get("name") or f"GPU {len(gpus)}",
                uuid=row.get("uuid"),
                compute_capability=_compute_capability(row.get("compute_cap")),
                memory_mib=_int(row.get("memory.total")),
            )
        )
        driver = driver or row.get("driver_version")
    return gpus, driver


def _compute_capability(text: str | None) -> str | None:
    match = re.fullmatch(r"(\d+)\.(\d+)", text or "")
    return f"{int(match[1])}.{int(match[2])}" if match else None


_SMI_CUDA = re.compile(r"CUDA Version\s*:\s*(\d+)\.(\d+)")


def parse_nvidia_smi_cuda(text: str) -> str | None:
    """The "CUDA Version: 12.4" of plain ``nvidia-smi``'s header, or None."""
    match = _SMI_CUDA.search(text)
    return f"{int(match[1])}.{int(match[2])}" if match else None


_PROC_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)*")


def parse_proc_version(text: str) -> str | None:
    """The driver version from /proc/driver/nvidia/version's "NVRM version:" line.

    Both "NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar ..." and the open
    module's "NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build ..."
    """
    for line in text.splitlines():
        if line.startswith("NVRM version:"):
            for token in line.split()[2:]:
                if _PROC_VERSION.fullmatch(token):
                    return token
    return None


def probe_proc(notes: list[str], *, path: str = PROC_VERSION_PATH) -> Probe | None:
    """The driver version alone, from the kernel module; None (with a note) otherwise."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except FileNotFoundError:
        notes.append(f"{path}: not present (no NVIDIA kernel module is loaded)")
        return None
    except OSError as error:
        notes.append(f"{path}: cannot be read ({error.strerror or error})")
        return None
    driver = parse_proc_version(text)
    if driver is None:
        notes.append(f"{path}: no driver version found in it")
        return None
    notes.append(
        f"only the kernel module's version ({driver}) could be read, from {path}: "
        "the GPUs are unknown"
    )
    return Probe("proc", driver, None)
