"""Fixtures: a fake NVIDIA driver, so detection runs through the real pynvml bindings.

``fake_nvml_library`` compiles ``tests/fakenvml/fake_nvml.c`` into a
``libnvidia-ml.so.1`` once per session. ``fake_nvml_env`` gives a function that
builds a subprocess environment in which that library is the driver, as if the
test ran on a GPU machine::

    def test_something(fake_nvml_env):
        env = fake_nvml_env(gpus=(("NVIDIA RTX A6000", "8.6", 49140),), cuda="12.1")
        subprocess.run([sys.executable, "-m", "conda_torch_plugin", "plan", "--json"], env=env)

The same library also drives rattler's ``__cuda`` / ``__cuda_arch`` detection.
``fake_nvidia_smi`` writes an ``nvidia-smi`` script for the fallback path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

SOURCE = Path(__file__).resolve().parent.parent / "fakenvml" / "fake_nvml.c"
LIBRARY_NAME = "libnvidia-ml.so.1"
DEFAULT_GPUS = (("NVIDIA H100 80GB HBM3", "9.0", 81559),)
# Environment variables that would let a real driver or an outer setting leak in.
_SCRUBBED = ("CONDA_OVERRIDE_CUDA", "CUDA_VISIBLE_DEVICES")


def _compiler() -> str | None:
    for candidate in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def fake_nvml_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled fake ``libnvidia-ml.so.1`` (its folder goes on LD_LIBRARY_PATH)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the fake NVML library is an ELF shared object: Linux only")
    compiler = _compiler()
    if compiler is None:
        pytest.skip("no C compiler (gcc, cc or clang) to build the fake NVML library")
    folder = tmp_path_factory.mktemp("fakenvml")
    library = folder / LIBRARY_NAME
    command = [
        compiler, "-shared", "-fPIC", "-O2", f"-Wl,-soname,{LIBRARY_NAME}",
        "-o", str(library), str(SOURCE),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"building the fake NVML library failed:\n{result.stderr}")
    return library


def encode_cuda(cuda: str | int) -> str:
    """ "12.4" -> "12040", as nvmlSystemGetCudaDriverVersion encodes it; ints pass through."""
    if isinstance(cuda, int):
        return str(cuda)
    major, _, minor = cuda.partition(".")
    return str(int(major) * 1000 + int(minor or 0) * 10)


def encode_gpus(gpus: Iterable[tuple[str, str, int]]) -> str:
    return ";".join(f"{name},{capability},{memory_mib}" for name, capability, memory_mib in gpus)


def path_without_nvidia_smi(path: str) -> str:
    """PATH minus every folder holding a real nvidia-smi."""
    folders = [
        folder
        for folder in path.split(os.pathsep)
        if folder and not (Path(folder) / "nvidia-smi").exists()
    ]
    return os.pathsep.join(folders)


def _import_root() -> str:
    """The folder that the test process imports conda_torch_plugin from."""
    import conda_torch_plugin

    return str(Path(conda_torch_plugin.__file__).resolve().parent.parent)


@pytest.fixture(scope="session")
def fake_nvml_env(fake_nvml_library: Path) -> Callable[..., dict[str, str]]:
    """A function building ``os.environ`` as it would be on a machine with the given GPUs.

    ``make_env(*, driver="550.54.15", cuda="12.4", gpus=((name, cc, mem_mib), ...),
    init_error=None, extra=None) -> dict``: LD_LIBRARY_PATH starts with the fake
    library's folder, FAKE_NVML_* describe the machine, CONDA_OVERRIDE_CUDA and
    CUDA_VISIBLE_DEVICES are removed, PATH holds no real nvidia-smi, and
    PYTHONPATH lets ``python -m conda_torch_plugin`` import the same copy of the
    package as this test process, from any working directory. ``gpus=()`` is a
    driver with no GPU; ``init_error`` is an NVML return code (9 = driver not
    loaded); ``extra`` is merged last (e.g. ``{"CONDA_OVERRIDE_CUDA": "11.8"}``,
    ``{"FAKE_NVML_FAIL": "nvmlDeviceGetUUID=4"}``, ``{"FAKE_NVML_TRACE": "1"}``).
    """
    folder = str(fake_nvml_library.parent)
    root = _import_root()

    def make_env(
        *,
        driver: str = "550.54.15",
        cuda: str | int = "12.4",
        gpus: Iterable[tuple[str, str, int]] = DEFAULT_GPUS,
        init_error: int | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _SCRUBBED and not key.startswith("FAKE_NVML_")
        }
        library_path = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (folder, library_path) if p)
        env["PATH"] = path_without_nvidia_smi(env.get("PATH", os.defpath))
        python_path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, python_path) if p)
        env["FAKE_NVML_DRIVER"] = driver
        env["FAKE_NVML_CUDA"] = encode_cuda(cuda)
        env["FAKE_NVML_GPUS"] = encode_gpus(gpus)
        if init_error is not None:
            env["FAKE_NVML_INIT_ERROR"] = str(init_error)
        env.update(extra or {})
        return env

    return make_env


_SMI_SCRIPT = """\
#!/bin/sh
# A fake nvidia-smi written by tests/support/fake_nvml.py.
here=$(dirname "$0")
echo "$*" >> "$here/calls.log"
case "$1" in
  --query-gpu=*compute_cap*)
    if [ -f "$here/no-compute-cap" ]; then
      echo 'Field "compute_cap" is not a valid field to query.'
      exit 2
    fi
    cat "$here/query.txt"; exit "$(cat "$here/status")" ;;
  --query-gpu=*) cat "$here/query-old.txt"; exit "$(cat "$here/status")" ;;
  *) cat "$here/header.txt"; exit "$(cat "$here/status")" ;;
esac
"""

_HEADER = """\
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI {driver}              Driver Version: {driver}      CUDA Version: {cuda}     |
|-----------------------------------------+------------------------+----------------------+
"""


@pytest.fixture
def fake_nvidia_smi(tmp_path: Path) -> Callable[..., Path]:
    """A function writing an executable ``nvidia-smi``; returns the folder to put on PATH.

    ``install(csv, *, cuda="12.4", driver="550.54.15", status=0, compute_cap=True,
    old_csv="")``: ``--query-gpu=...`` prints ``csv`` (and plain ``nvidia-smi`` a
    header with "CUDA Version: <cuda>", or none when cuda is None), exiting with
    ``status``. ``compute_cap=False`` mimics a driver before 510, which rejects that
    field and answers ``old_csv`` to a query without it. Each call's arguments are
    appended to ``<folder>/calls.log``.
    """
    if sys.platform.startswith("win"):
        pytest.skip("the fake nvidia-smi is a POSIX shell script")

    def install(
        csv: str,
        *,
        cuda: str | None = "12.4",
        driver: str = "550.54.15",
        status: int = 0,
        compute_cap: bool = True,
        old_csv: str = "",
    ) -> Path:
        folder = tmp_path / "fake-nvidia-smi"
        folder.mkdir(exist_ok=True)
        (folder / "query.txt").write_text(csv)
        (folder / "query-old.txt").write_text(old_csv)
        header = _HEADER.format(driver=driver, cuda=cuda) if cuda else "NVIDIA-SMI\n"
        (folder / "header.txt").write_text(header)
        (folder / "status").write_text(f"{status}\n")
        marker = folder / "no-compute-cap"
        if compute_cap:
            marker.unlink(missing_ok=True)
        else:
            marker.touch()
        script = folder / "nvidia-smi"
        script.write_text(_SMI_SCRIPT)
        script.chmod(0o755)
        return folder

    return install
