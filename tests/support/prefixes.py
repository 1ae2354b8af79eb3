"""Installed prefixes for the doctor's tests, written the way rattler/conda write them.

A prefix is a folder with ``conda-meta/*.json`` records (the fields conda and
rattler write) and the files those records list: the system boundary the
doctor reads. ``fake_torch`` makes a prefix runnable for ``--run``: its
``bin/python`` is a shim around this interpreter and its site-packages hold a
small fake ``torch`` package configured per test, so the doctor's real probe
script runs against it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conda_torch_plugin.compat import current_platform

if TYPE_CHECKING:
    from pathlib import Path

PLATFORM = "linux-64"
SITE = "lib/python3.12/site-packages"
PYTORCH = "https://conda.anaconda.org/pytorch"
NVIDIA = "https://conda.anaconda.org/nvidia"
CONDA_FORGE = "https://conda.anaconda.org/conda-forge"

on_linux_64 = pytest.mark.skipif(
    current_platform() != PLATFORM,
    reason="the machine checks only run for an environment of this machine's platform",
)
posix_only = pytest.mark.skipif(os.name == "nt", reason="the fake python is a POSIX shell script")


def record(
    name: str,
    version: str,
    build: str,
    *,
    channel: str = PYTORCH,
    subdir: str = PLATFORM,
    depends: tuple[str, ...] = (),
    files: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A conda-meta record with the fields rattler writes."""
    fn = f"{name}-{version}-{build}.tar.bz2"
    return {
        "name": name,
        "version": version,
        "build": build,
        "build_number": int(tail) if (tail := build.rsplit("_", 1)[-1]).isdigit() else 0,
        "channel": channel,
        "url": f"{channel}/{subdir}/{fn}",
        "fn": fn,
        "subdir": subdir,
        "md5": "0" * 32,
        "sha256": "0" * 64,
        "depends": list(depends),
        "constrains": [],
        "files": list(files),
        "paths_data": {"paths_version": 1, "paths": []},
        "requested_spec": "",
    }


def python_record(subdir: str = PLATFORM) -> dict[str, Any]:
    return record(
        "python", "3.12.7", "hc5c86c4_0_cpython", channel=CONDA_FORGE, subdir=subdir,
        files=("bin/python3.12",),
    )  # fmt: skip


def pytorch_channel_env(
    cuda: str | None = "12.4",
    *,
    torchvision: tuple[str, str] | None = ("0.20.1", "auto"),
    torchaudio: tuple[str, str] | None = ("2.5.1", "auto"),
    mutex: str | None = "auto",
    extra: tuple[dict[str, Any], ...] = (),
) -> list[dict[str, Any]]:
    """pytorch 2.5.1 from the pytorch channel, as `conda install pytorch-cuda=X.Y` leaves it."""
    tag = f"cu{cuda.replace('.', '')}" if cuda else "cpu"
    build = f"py3.12_cuda{cuda}_cudnn9.1.0_0" if cuda else "py3.12_cpu_0"
    mutex_build = ("cuda" if cuda else "cpu") if mutex == "auto" else mutex
    depends = ["python >=3.12,<3.13.0a0", f"pytorch-mutex ==1.0 {mutex_build or 'cpu'}"]
    if cuda:
        major, minor = cuda.split(".")
        depends.append(f"pytorch-cuda >={cuda},<{major}.{int(minor) + 1}")
    records = [
        python_record(),
        record(
            "pytorch",
            "2.5.1",
            build,
            depends=tuple(depends),
            files=(
                f"{SITE}/torch/__init__.py",
                f"{SITE}/torch/version.py",
                f"{SITE}/torch-2.5.1-py3.12.egg-info/PKG-INFO",
            ),
        ),  # fmt: skip
        record("mkl", "2023.1.0", "h213fc3f_46344", channel=CONDA_FORGE),
    ]
    if mutex_build:
        records.append(record("pytorch-mutex", "1.0", mutex_build, subdir="noarch"))
    if cuda:
        records.append(record("pytorch-cuda", cuda, "hc786d27_7"))
        records.append(record("cuda-runtime", f"{cuda}.127", "0", channel=NVIDIA))
    else:
        records.append(record("cpuonly", "2.0", "0", subdir="noarch"))
    for name, spec in (("torchvision", torchvision), ("torchaudio", torchaudio)):
        if spec is None:
            continue
        version, companion_build = spec
        if companion_build == "auto":
            companion_build = f"py312_{tag}"
        records.append(
            record(name, version, companion_build, files=(f"{SITE}/{name}/__init__.py",))
        )
    return [*records, *extra]


def conda_forge_env(cuda: str | None = "12.9") -> list[dict[str, Any]]:
    """pytorch 2.10.0 from conda-forge with the pytorch-gpu/-cpu convenience package."""
    digits = cuda.replace(".", "") if cuda else ""
    flavour = f"cuda{digits}" if cuda else "cpu"
    records = [
        python_record(),
        record(
            "pytorch",
            "2.10.0",
            f"{flavour}_mkl_py312_h1234567_303",
            channel=CONDA_FORGE,
            files=(
                f"{SITE}/torch/__init__.py",
                f"{SITE}/torch-2.10.0.dist-info/METADATA",
                f"{SITE}/torch-2.10.0.dist-info/INSTALLER",
            ),
        ),  # fmt: skip
        record(
            "pytorch-gpu" if cuda else "pytorch-cpu",
            "2.10.0",
            f"{flavour}_mkl_h7654321_303",
            channel=CONDA_FORGE,
        ),  # fmt: skip
        record(
            "torchvision",
            "0.25.0",
            f"{flavour}_py312_h89abcde_0",
            channel=CONDA_FORGE,
            files=(f"{SITE}/torchvision/__init__.py",),
        ),  # fmt: skip
        record("torchaudio", "2.10.0", f"{flavour}_py312h89abcde_1", channel=CONDA_FORGE),
    ]
    if cuda:
        records.append(record("cuda-version", cuda, "h4f385c5_3", channel=CONDA_FORGE))
    return records


def make_prefix(root: Path, records: list[dict[str, Any]]) -> Path:
    """Write the records into ``root/conda-meta`` and create every file they list."""
    meta = root / "conda-meta"
    meta.mkdir(parents=True)
    (meta / "history").write_text("")
    for rec in records:
        (meta / f"{rec['name']}-{rec['version']}-{rec['build']}.json").write_text(
            json.dumps(rec, indent=2)
        )
        for file in rec["files"]:
            path = root / file
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text("" if not file.endswith("INSTALLER") else "conda\n")
    return root


def pip_dist_info(prefix: Path, version: str, installer: str = "pip", name: str = "torch") -> Path:
    """What `pip install torch` leaves in site-packages: files no conda record owns."""
    dist = prefix / SITE / f"{name}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (dist / "INSTALLER").write_text(f"{installer}\n")
    return dist


FAKE_TORCH = '''\
"""A stand-in for torch: the attributes the doctor's probe reads, configured below."""
import time

CONFIG = {config!r}
if CONFIG.get("import_error"):
    raise ImportError(CONFIG["import_error"])
time.sleep(CONFIG.get("sleep", 0))
__version__ = CONFIG["version"]


class version:
    cuda = CONFIG["cuda"]


class _Tensor:
    def __init__(self, value):
        self.value = value

    def __matmul__(self, other):  # ones(2,2) @ ones(2,2) is all 2s
        if CONFIG.get("op_error"):
            raise RuntimeError(CONFIG["op_error"])
        return _Tensor(self.value * other.value * 2)

    def sum(self):
        return _Tensor(self.value * 4)

    def item(self):
        return float(self.value)


def ones(*shape, device="cpu"):
    return _Tensor(1.0)


class cuda:
    @staticmethod
    def is_available():
        return CONFIG["available"]

    @staticmethod
    def get_arch_list():
        return list(CONFIG["arch_list"]) if CONFIG["available"] else []

    @staticmethod
    def device_count():
        return len(CONFIG["devices"])

    @staticmethod
    def get_device_capability(index):
        return tuple(CONFIG["devices"][index][1])

    @staticmethod
    def get_device_name(index):
        return CONFIG["devices"][index][0]


class backends:
    class mps:
        @staticmethod
        def is_available():
            return False
'''

ARCHS_124 = ["sm_50", "sm_60", "sm_61", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]


def fake_torch(prefix: Path, **config: Any) -> None:
    """Make ``prefix`` runnable: bin/python runs this interpreter with a fake torch."""
    defaults = {
        "version": "2.5.1", "cuda": "12.4", "available": True, "arch_list": ARCHS_124,
        "devices": [["NVIDIA H100 80GB HBM3", [9, 0]]],
    }  # fmt: skip
    package = prefix / SITE / "torch"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(FAKE_TORCH.format(config={**defaults, **config}))
    python = prefix / "bin" / "python"
    python.parent.mkdir(exist_ok=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{prefix / SITE}" exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
