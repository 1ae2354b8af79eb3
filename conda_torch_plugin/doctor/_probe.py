"""``--run``: start the environment's own python on a short script and collect what it reports.

The script imports torch, reads ``torch.version.cuda``, ``torch.cuda.*`` and
runs one tiny operation on the GPU, then prints one marked JSON line (torch or
its warnings may print other lines). It runs in a subprocess, so a torch that
crashes on import cannot take this process down; a crash, a hang or a failing
import becomes one finding carrying the stderr tail.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.doctor._prefix import python_path
from conda_torch_plugin.doctor._report import Finding

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

DEFAULT_TIMEOUT_S = 180.0  # a cold `import torch` on a network file system can take a minute
PROBE_MARKER = "@@conda-torch-env-doctor@@"
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


def run_probe(
    prefix: Path,
    *,
    runner: Callable[..., subprocess.CompletedProcess[str]],
    timeout_s: float,
) -> tuple[dict[str, Any] | None, Finding | None]:
    """What the environment's python reported, or (None, the finding saying why there is none)."""
    python = python_path(prefix)
    if not python.exists():
        return None, Finding(
            "error",
            f"--run: the environment has no python ({python})",
            f"install one: conda install -p {prefix} python",
            check="run",
        )
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
        return None, Finding(
            "error",
            f"--run: `import torch` and the checks did not finish within {timeout_s:g} s",
            "run it by hand to see where it hangs: "
            f"{python} -c 'import torch; print(torch.cuda.is_available())'",
            check="run",
        )
    except OSError as error:
        return None, Finding(
            "error",
            f"--run: cannot start {python}: {error}",
            f"reinstall python: conda install -p {prefix} --force-reinstall python",
            check="run",
        )
    runtime = _parse_probe(done.stdout)
    if done.returncode != 0 or runtime is None:
        return None, _import_failure(prefix, done)
    return runtime, None


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


def _parse_probe(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROBE_MARKER):
            try:
                value = json.loads(line[len(PROBE_MARKER) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


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


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
