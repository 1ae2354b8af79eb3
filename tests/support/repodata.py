"""Fixtures: generated ``file://`` conda channels with real-format repodata.json.

One folder tree serves three channels, so ``--channel-alias file:///ROOT`` maps
the names in an environment.yml onto them::

    ROOT/pytorch/{linux-64,win-64,osx-arm64,noarch}/repodata.json
    ROOT/nvidia/{linux-64,win-64,noarch}/repodata.json        (no osx-arm64: counts as empty)
    ROOT/conda-forge/{linux-64,win-64,osx-arm64,noarch}/repodata.json

- ``pytorch``: pytorch 2.4.1 / 2.5.1 in CUDA 11.8 / 12.1 / 12.4 and CPU builds (linux-64,
  win-64) and plain builds (osx-arm64), with the depends and constrains of the real
  channel (facts.md D1-D4): ``pytorch-mutex`` (noarch, cuda build preferred by build
  number, cpu build down-weighted by track_features), ``cpuonly``, ``pytorch-cuda`` per
  platform, torchvision/torchaudio ``py312_cu124``-style builds, torchtriton.
- ``nvidia``: the cuda-* / lib* packages ``pytorch-cuda`` depends on, each pinned to a
  ``cuda-version`` whose ``constrains`` carry ``__cuda``.
- ``conda-forge``: every other name those records depend on (python, mkl, numpy, ...),
  plus conda-forge's own PyTorch layout: pytorch 2.13.0 ``cuda129_mkl_py312_h..._302``
  / ``cuda130_...`` / ``cpu_...`` with ``__cuda`` in depends, ``cuda-version`` 12.8 / 12.9 /
  13.0 with ``__cuda`` in constrains, libtorch, torchvision 0.28.0, torchaudio 2.11.0.

Records are generated from the small tables below. Hashes are real md5/sha256 hex
strings (of the file name): enough for solving and locking. tests/support/packages.py
builds real archives where an install is tested.

The ``real_channel_tree`` fixture swaps in the real ``pytorch`` channel linux-64
repodata from ``../shared/data`` (pytorch up to 2.1.0) and skips where it is absent.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from support.shared_data import real_pytorch_repodata

if TYPE_CHECKING:
    from pathlib import Path

PLATFORMS = ("linux-64", "win-64", "osx-arm64")
TIMESTAMP = 1_730_000_000_000  # fixed: the repodata (and so every lock) is the same every run

# --------------------------------------------------------------------------------------------
# Record building
# --------------------------------------------------------------------------------------------


def short_hash(*parts: str) -> str:
    """A conda-style 7-hex build hash ("h1a2b3c4"), stable for the same inputs."""
    return "h" + hashlib.sha1("|".join(parts).encode()).hexdigest()[:7]


def record(
    name: str,
    version: str,
    build: str,
    subdir: str,
    *,
    depends: tuple[str, ...] | list[str] = (),
    constrains: tuple[str, ...] | list[str] = (),
    build_number: int | None = None,
    track_features: str | None = None,
    noarch: str | None = None,
    ext: str = ".tar.bz2",
    timestamp: int = TIMESTAMP,
) -> tuple[str, dict[str, object]]:
    """(file name, repodata entry) shaped like a real channel's record."""
    if build_number is None:
        match = re.search(r"_(\d+)$", build)
        build_number = int(match[1]) if match else 0
    fn = f"{name}-{version}-{build}{ext}"
    entry: dict[str, object] = {
        "build": build,
        "build_number": build_number,
        "depends": list(depends),
        "license": "BSD-3-Clause",
        "md5": hashlib.md5(fn.encode()).hexdigest(),
        "name": name,
        "sha256": hashlib.sha256(fn.encode()).hexdigest(),
        "size": 1000 + len(fn),
        "subdir": subdir,
        "timestamp": timestamp,
        "version": version,
    }
    if constrains:
        entry["constrains"] = list(constrains)
    if track_features:
        entry["track_features"] = track_features
    if noarch:
        entry["noarch"] = noarch
    return fn, entry


def write_channel(
    root: Path, name: str, records: list[tuple[str, dict[str, object]]], subdirs: tuple[str, ...]
) -> Path:
    """Write ROOT/NAME/SUBDIR/repodata.json for each subdir (empty ones too)."""
    channel = root / name
    by_subdir: dict[str, dict[str, dict[str, object]]] = {s: {} for s in subdirs}
    for fn, entry in records:
        by_subdir.setdefault(str(entry["subdir"]), {})[fn] = entry
    for subdir, packages in by_subdir.items():
        folder = channel / subdir
        folder.mkdir(parents=True, exist_ok=True)
        conda = {fn: e for fn, e in packages.items() if fn.endswith(".conda")}
        bz2 = {fn: e for fn, e in packages.items() if not fn.endswith(".conda")}
        data = {
            "info": {"subdir": subdir},
            "packages": dict(sorted(bz2.items())),
            "packages.conda": dict(sorted(conda.items())),
            "removed": [],
            "repodata_version": 1,
        }
        (folder / "repodata.json").write_text(json.dumps(data, indent=1, sort_keys=True))
    return channel


def _next_minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def _py_range(py: str) -> str:
    return f"python >={py},<{_next_minor(py)}.0a0"


def _py_tag(py: str) -> str:
    return py.replace(".", "")


# --------------------------------------------------------------------------------------------
# The pytorch channel (facts.md D1-D4)
# --------------------------------------------------------------------------------------------

# pytorch, torchvision, torchaudio, torchtriton (linux only), cudnn in the build string
PYTORCH_RELEASES = (
    ("2.4.1", "0.19.1", "2.4.1", "3.0.0", "9.1.0"),
    ("2.5.1", "0.20.1", "2.5.1", "3.1.0", "9.1.0"),
)
PYTORCH_CUDA = ("11.8", "12.1", "12.4")
PYTORCH_PYTHONS = ("3.11", "3.12")
# pytorch-cuda: build string; the version ranges of its nvidia depends come from NVIDIA_LIBS.
PYTORCH_CUDA_BUILDS = {"11.8": "h7e8668a_5", "12.1": "ha16c6d3_5", "12.4": "hc786d27_7"}


def _pytorch_depends(platform: str, py: str, cuda: str | None, triton: str) -> list[str]:
    deps = ["filelock", "jinja2", "networkx", _py_range(py), "pyyaml", "sympy", "typing_extensions"]
    if platform == "osx-arm64":  # no mutex, no mkl on macOS builds
        return sorted([*deps, "llvm-openmp <16"])
    deps += ["blas * mkl"]
    if platform == "linux-64":
        deps += ["llvm-openmp <16", "mkl >=2018"]
    else:
        deps += ["intel-openmp", "libuv", "mkl 2023.1.*"]
    if cuda is None:
        deps += ["pytorch-mutex 1.0 cpu"]
    else:
        deps += [f"pytorch-cuda >={cuda},<{_next_minor(cuda)}", "pytorch-mutex 1.0 cuda"]
        if platform == "linux-64":
            deps += [f"torchtriton {triton}"]
    return sorted(deps)


def pytorch_channel_records() -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for torch, vision, audio, triton, cudnn in PYTORCH_RELEASES:
        for py in PYTORCH_PYTHONS:
            tag = _py_tag(py)
            companions = (("torchvision", vision), ("torchaudio", audio))
            vision_deps = [
                "libjpeg-turbo",
                "libpng",
                "numpy >=1.23.5",
                "pillow >=5.3.0,!=8.3.*",
                "requests",
                _py_range(py),
                f"pytorch {torch}",
            ]
            audio_deps = ["numpy", _py_range(py), f"pytorch {torch}"]
            extra = {"torchvision": vision_deps, "torchaudio": audio_deps}
            # osx-arm64: one plain build per Python, no compute marker, no mutex.
            out.append(
                record(
                    "pytorch",
                    torch,
                    f"py{py}_0",
                    "osx-arm64",
                    depends=_pytorch_depends("osx-arm64", py, None, triton),
                )
            )
            for name, version in companions:
                out.append(
                    record(name, version, f"py{tag}_cpu", "osx-arm64", depends=sorted(extra[name]))
                )
            for platform in ("linux-64", "win-64"):
                out.append(
                    record(
                        "pytorch",
                        torch,
                        f"py{py}_cpu_0",
                        platform,
                        depends=_pytorch_depends(platform, py, None, triton),
                        constrains=["cpuonly"],
                    )
                )
                for name, version in companions:
                    out.append(
                        record(
                            name,
                            version,
                            f"py{tag}_cpu",
                            platform,
                            depends=sorted([*extra[name], "pytorch-mutex 1.0 cpu"]),
                            constrains=["cpuonly"],
                        )
                    )
                for cuda in PYTORCH_CUDA:
                    cu = cuda.replace(".", "")
                    out.append(
                        record(
                            "pytorch",
                            torch,
                            f"py{py}_cuda{cuda}_cudnn{cudnn}_0",
                            platform,
                            depends=_pytorch_depends(platform, py, cuda, triton),
                            constrains=["cpuonly <0"],
                        )
                    )
                    for name, version in companions:
                        deps = [*extra[name], f"pytorch-cuda {cuda}.*", "pytorch-mutex 1.0 cuda"]
                        out.append(
                            record(
                                name,
                                version,
                                f"py{tag}_cu{cu}",
                                platform,
                                depends=sorted(deps),
                                constrains=["cpuonly <0"],
                            )
                        )
            out.append(
                record(
                    "torchtriton",
                    triton,
                    f"py{tag}",
                    "linux-64",
                    build_number=1,
                    depends=["filelock", _py_range(py), "pytorch"],
                )
            )
    for platform in ("linux-64", "win-64"):
        for cuda, build in PYTORCH_CUDA_BUILDS.items():
            out.append(
                record(
                    "pytorch-cuda",
                    cuda,
                    build,
                    platform,
                    depends=_pytorch_cuda_depends(cuda, platform),
                )
            )
    # D3: the mutex prefers cuda by build number; the cpu build is down-weighted.
    out.append(record("pytorch-mutex", "1.0", "cuda", "noarch", build_number=100, noarch="generic"))
    out.append(
        record(
            "pytorch-mutex",
            "1.0",
            "cpu",
            "noarch",
            build_number=0,
            track_features="pytorch-mutex",
            noarch="generic",
        )
    )
    out.append(
        record(
            "cpuonly",
            "2.0",
            "0",
            "noarch",
            depends=["pytorch-mutex 1.0 cpu"],
            track_features="cpuonly",
            noarch="generic",
        )
    )
    return out


# --------------------------------------------------------------------------------------------
# The nvidia channel: what pytorch-cuda X.Y depends on (facts.md D2 ranges; each library at
# the lower bound of its range).
# --------------------------------------------------------------------------------------------

NVIDIA_CUDA_COMPONENT = {"11.8": "11.8.89", "12.1": "12.1.105", "12.4": "12.4.127"}
NVIDIA_COMPONENTS = (
    "cuda-cudart",
    "cuda-cupti",
    "cuda-libraries",
    "cuda-nvrtc",
    "cuda-nvtx",
    "cuda-runtime",
)
NVIDIA_LIBS = {
    "11.8": {
        "libcublas": ("11.11.3.6", "12.0.1.189"),
        "libcufft": ("10.9.0.58", "11.0.0.21"),
        "libcusolver": ("11.4.1.48", "11.4.2.57"),
        "libcusparse": ("11.7.5.86", "12.0.0.76"),
        "libnpp": ("11.8.0.86", "12.0.0.30"),
        "libnvjpeg": ("11.9.0.86", "12.0.0.28"),
    },
    "12.1": {
        "libcublas": ("12.1.0.26", "12.1.3.1"),
        "libcufft": ("11.0.2.4", "11.0.2.54"),
        "libcusolver": ("11.4.4.55", "11.4.5.107"),
        "libcusparse": ("12.0.2.55", "12.1.0.106"),
        "libnpp": ("12.0.2.50", "12.1.0.40"),
        "libnvjitlink": ("12.1.105", "12.2.0"),
        "libnvjpeg": ("12.1.0.39", "12.2.0.2"),
    },
    "12.4": {
        "libcublas": ("12.4.5.8", "12.5.2.13"),
        "libcufft": ("11.2.1.3", "11.2.3.18"),
        "libcusolver": ("11.6.1.9", "11.6.2.40"),
        "libcusparse": ("12.3.1.170", "12.4.1.18"),
        "libnpp": ("12.2.5.30", "12.3.0.116"),
        "libnvjitlink": ("12.4.127", "12.5.40"),
        "libnvjpeg": ("12.3.1.117", "12.3.2.38"),
    },
}
# win-64 pytorch-cuda also pulls -dev packages (a few, same bounds).
NVIDIA_WIN_DEV = ("cuda-cudart-dev", "cuda-nvrtc-dev", "libcublas-dev")


def _component_upper(cuda: str) -> str:
    # 11.8's real pytorch-cuda allows the whole 11.x tail (<12.0); 12.x allow one minor.
    return "12.0" if cuda == "11.8" else _next_minor(cuda)


def _pytorch_cuda_depends(cuda: str, platform: str) -> list[str]:
    upper = _component_upper(cuda)
    deps = [f"{c} >={cuda},<{upper}" for c in NVIDIA_COMPONENTS]
    deps += [f"{lib} >={low},<{high}" for lib, (low, high) in NVIDIA_LIBS[cuda].items()]
    if platform == "win-64":
        for dev in NVIDIA_WIN_DEV:
            base = dev.removesuffix("-dev")
            if base in NVIDIA_LIBS[cuda]:
                low, high = NVIDIA_LIBS[cuda][base]
                deps.append(f"{dev} >={low},<{high}")
            else:
                deps.append(f"{dev} >={cuda},<{upper}")
    return sorted(deps)


def nvidia_channel_records() -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for cuda, component_version in NVIDIA_CUDA_COMPONENT.items():
        pin = f"cuda-version >={cuda},<{_next_minor(cuda)}.0a0"
        for platform in ("linux-64", "win-64"):
            versions = {c: component_version for c in NVIDIA_COMPONENTS}
            versions.update({lib: low for lib, (low, _high) in NVIDIA_LIBS[cuda].items()})
            if platform == "win-64":
                for dev in NVIDIA_WIN_DEV:
                    versions[dev] = versions[dev.removesuffix("-dev")]
            for name, version in sorted(versions.items()):
                out.append(record(name, version, "0", platform, depends=[pin], ext=".conda"))
        out.append(
            record(
                "cuda-version",
                cuda,
                "h4ba93d1_3",
                "noarch",
                noarch="generic",
                constrains=[f"__cuda >={cuda}", f"cudatoolkit {cuda}|{cuda}.*"],
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# conda-forge: the base packages, and conda-forge's own PyTorch layout (facts.md E1-E3)
# --------------------------------------------------------------------------------------------

PYTHONS = {"3.11": "3.11.10", "3.12": "3.12.7"}
# name -> (versions, subdirs): plain binary packages without a Python dependency.
BASE_BINARIES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # name: (versions, subdirs, depends)
    "bzip2": (("1.0.8",), PLATFORMS, ()),
    "ffmpeg": (("4.3.2", "6.1.2"), PLATFORMS, ("bzip2 >=1.0.8,<2.0a0", "libzlib >=1.3.1,<2.0a0")),
    "freetype": (("2.12.1",), PLATFORMS, ("libpng >=1.6.43,<1.7.0a0", "libzlib >=1.3.1,<2.0a0")),
    "gmp": (("6.2.1",), PLATFORMS, ()),
    "gnutls": (("3.6.15",), PLATFORMS, ()),
    "intel-openmp": (("2024.2.1",), ("linux-64", "win-64"), ()),
    "lame": (("3.100",), PLATFORMS, ()),
    "libffi": (("3.4.2",), PLATFORMS, ()),
    "libgcc-ng": (("13.2.0",), ("linux-64",), ()),
    "libiconv": (("1.17",), PLATFORMS, ()),
    "libjpeg-turbo": (("3.0.0",), PLATFORMS, ()),
    "libpng": (("1.6.39", "1.6.43"), PLATFORMS, ("libzlib >=1.3.1,<2.0a0",)),
    "libstdcxx-ng": (("13.2.0",), ("linux-64",), ()),
    "libuv": (("1.48.0",), ("win-64",), ()),
    "libzlib": (("1.3.1",), PLATFORMS, ()),
    "llvm-openmp": (("15.0.7", "18.1.8"), ("linux-64", "osx-arm64"), ()),
    "mkl": (("2023.1.0", "2024.2.2"), ("linux-64", "win-64"), ("tbb 2021.*",)),
    "nettle": (("3.4.1",), PLATFORMS, ()),
    "openh264": (("2.1.1",), PLATFORMS, ()),
    "openssl": (("3.3.2",), PLATFORMS, ()),
    "tbb": (("2021.13.0",), ("linux-64", "win-64"), ()),
    "ucrt": (("10.0.22621.0",), ("win-64",), ()),
    "vc": (("14.3",), ("win-64",), ()),
    "zlib": (("1.2.13",), PLATFORMS, ()),
}
# noarch: python packages (version, depends)
BASE_NOARCH_PYTHON = {
    "certifi": ("2024.8.30", ()),
    "filelock": ("3.16.1", ()),
    "idna": ("3.10", ()),
    "jinja2": ("3.1.4", ("markupsafe >=2.0",)),
    "mpmath": ("1.3.0", ()),
    "networkx": ("3.4.2", ()),
    "pip": ("24.3.1", ()),
    "requests": ("2.32.3", ("certifi >=2017.4.17", "idna >=2.5,<4", "urllib3 >=1.21.1,<3")),
    "sympy": ("1.13.3", ("mpmath >=0.19",)),
    "typing_extensions": ("4.12.2", ()),
    "urllib3": ("2.2.3", ()),
}
# compiled python packages: (version, extra depends)
BASE_PY_BINARIES = {
    "markupsafe": ("3.0.2", ()),
    "numpy": ("2.1.3", ("libblas >=3.9.0,<4.0a0",)),
    "pillow": ("11.0.0", ("freetype >=2.12.1,<3.0a0", "libjpeg-turbo", "libzlib >=1.3.1,<2.0a0")),
    "pyyaml": ("6.0.2", ()),
}

# conda-forge pytorch 2.13.0 (E1): CUDA variants per platform, build numbers +200 CUDA, +100 mkl.
CF_TORCH = "2.13.0"
CF_VISION = "0.28.0"
CF_AUDIO = "2.11.0"
CF_TRITON = "3.7.1"
CF_CUDA_VARIANTS = {"linux-64": ("12.9", "13.0"), "win-64": ("12.8", "13.0"), "osx-arm64": ()}
CF_CUDA_LIBS = {  # conda-forge CTK components, pinned to cuda-version X.Y exactly
    "12.8": {"cuda-cudart": "12.8.90", "libcublas": "12.8.4.1"},
    "12.9": {"cuda-cudart": "12.9.79", "libcublas": "12.9.1.4"},
    "13.0": {"cuda-cudart": "13.0.88", "libcublas": "13.0.2.14"},
}
CF_AUDIO_PLATFORMS = ("linux-64", "osx-arm64")  # E3: torchaudio skips win


def _python_records() -> list[tuple[str, dict[str, object]]]:
    out = []
    for platform in PLATFORMS:
        for py, full in PYTHONS.items():
            deps = [
                "bzip2 >=1.0.8,<2.0a0",
                "libffi >=3.4,<4.0a0",
                "libzlib >=1.3.1,<2.0a0",
                "openssl >=3.3.2,<4.0a0",
            ]
            if platform == "linux-64":
                deps += ["__glibc >=2.17,<3.0.a0", "libgcc-ng >=13"]
            elif platform == "osx-arm64":
                deps += ["__osx >=11.0"]
            else:
                deps += ["ucrt >=10.0.20348.0", "vc >=14.2"]
            build = f"{short_hash('python', full, platform)}_0_cpython"
            out.append(record("python", full, build, platform, depends=sorted(deps), ext=".conda"))
            tag = _py_tag(py)
            out.append(
                record(
                    "python_abi",
                    py,
                    f"5_cp{tag}",
                    platform,
                    build_number=5,
                    constrains=[f"python {py}.* *_cpython"],
                    ext=".conda",
                )
            )
    return out


def _base_records() -> list[tuple[str, dict[str, object]]]:
    out = _python_records()
    for name, (versions, subdirs, deps) in BASE_BINARIES.items():
        for version in versions:
            for platform in subdirs:
                build = f"{short_hash(name, version, platform)}_0"
                out.append(record(name, version, build, platform, depends=list(deps), ext=".conda"))
    for name, (version, deps) in BASE_NOARCH_PYTHON.items():
        out.append(
            record(
                name,
                version,
                "pyhd8ed1ab_0",
                "noarch",
                noarch="python",
                depends=sorted(["python >=3.8", *deps]),
                ext=".conda",
            )
        )
    for name, (version, deps) in BASE_PY_BINARIES.items():
        for platform in PLATFORMS:
            for py in PYTHONS:
                tag = _py_tag(py)
                build = f"py{tag}{short_hash(name, version, platform, py)}_0"
                out.append(
                    record(
                        name,
                        version,
                        build,
                        platform,
                        ext=".conda",
                        depends=sorted([_py_range(py), f"python_abi {py}.* *_cp{tag}", *deps]),
                    )
                )
    for platform in PLATFORMS:
        if platform == "osx-arm64":
            out.append(record("libblas", "3.9.0", "20_osxarm64_accelerate", platform, ext=".conda"))
            continue
        plat = platform.replace("-", "")
        out.append(
            record(
                "libblas",
                "3.9.0",
                f"20_{plat}_mkl",
                platform,
                ext=".conda",
                depends=["mkl >=2023.1.0,<2025.0a0"],
            )
        )
        # the pytorch channel's `blas * mkl` (anaconda-style blas metapackage)
        out.append(record("blas", "1.0", "mkl", platform, depends=["mkl"]))
    return out


def _cf_torch_records() -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    common = [
        "filelock",
        "fsspec",
        "jinja2",
        "networkx",
        "sympy >=1.13.3",
        "typing_extensions >=4.10.0",
    ]
    out.append(
        record(
            "fsspec",
            "2024.10.0",
            "pyhd8ed1ab_0",
            "noarch",
            noarch="python",
            depends=["python >=3.8"],
            ext=".conda",
        )
    )
    for cuda in ("12.8", "12.9", "13.0"):
        major = cuda.split(".")[0]
        out.append(
            record(
                "cuda-version",
                cuda,
                "h4f385c5_3",
                "noarch",
                noarch="generic",
                ext=".conda",
                constrains=[f"__cuda >={major}", f"cudatoolkit {cuda}|{cuda}.*"],
            )
        )
    for platform, variants in CF_CUDA_VARIANTS.items():
        blas = "generic" if platform == "osx-arm64" else "mkl"
        blas_dep = "libblas * *accelerate" if platform == "osx-arm64" else "libblas * *mkl"
        flavours: list[str | None] = [None, *variants]
        for cuda in variants:
            pin = f"cuda-version >={cuda},<{_next_minor(cuda)}.0a0"
            for lib, version in CF_CUDA_LIBS[cuda].items():
                build = f"{short_hash(lib, version, platform)}_0"
                out.append(record(lib, version, build, platform, depends=[pin], ext=".conda"))
        for cuda in flavours:
            cuda_tag = f"cuda{cuda.replace('.', '')}" if cuda else "cpu"
            number = (200 if cuda else 0) + (100 if blas == "mkl" else 0) + 2
            cuda_deps: list[str] = []
            if cuda:
                major = int(cuda.split(".")[0])
                low = CF_CUDA_LIBS[cuda]
                cuda_deps = [
                    "__cuda",
                    f"cuda-version >={cuda},<{major + 1}",
                    f"cuda-cudart >={low['cuda-cudart']},<{major + 1}.0a0",
                    f"libcublas >={low['libcublas']},<{major + 1}.0a0",
                ]
            libtorch_build = (
                f"{cuda_tag}_{blas}_{short_hash('libtorch', cuda_tag, platform)}_{number}"
            )
            out.append(
                record(
                    "libtorch",
                    CF_TORCH,
                    libtorch_build,
                    platform,
                    ext=".conda",
                    depends=sorted([blas_dep, *cuda_deps]),
                )
            )
            for py in PYTHONS:
                tag = _py_tag(py)
                h = short_hash("pytorch", cuda_tag, platform, py)
                deps = [
                    *common,
                    _py_range(py),
                    f"python_abi {py}.* *_cp{tag}",
                    f"libtorch {CF_TORCH} {libtorch_build}",
                    blas_dep,
                    *cuda_deps,
                ]
                if cuda and platform == "linux-64":
                    deps.append(f"triton =={CF_TRITON}")
                if platform != "win-64":
                    deps.append("llvm-openmp >=18.1.8")
                constrains = (
                    ["pytorch-gpu 2.13.0", "pytorch-cpu <0.0a0"]
                    if cuda
                    else ["pytorch-cpu 2.13.0", "pytorch-gpu <0.0a0"]
                )
                out.append(
                    record(
                        "pytorch",
                        CF_TORCH,
                        f"{cuda_tag}_{blas}_py{tag}_{h}_{number}",
                        platform,
                        depends=sorted(deps),
                        constrains=constrains,
                        ext=".conda",
                    )
                )
                torch_dep = "pytorch * cuda*" if cuda else "pytorch * cpu*"
                vdeps = [
                    _py_range(py),
                    f"python_abi {py}.* *_cp{tag}",
                    torch_dep,
                    "numpy >=1.23",
                    "pillow >=5.3.0,!=8.3.*",
                    *cuda_deps[:3],
                ]
                vh = short_hash("torchvision", cuda_tag, platform, py)
                out.append(
                    record(
                        "torchvision",
                        CF_VISION,
                        f"{cuda_tag}_py{tag}_{vh}_1",
                        platform,
                        depends=sorted(vdeps),
                        ext=".conda",
                    )
                )
                if platform in CF_AUDIO_PLATFORMS:
                    ah = short_hash("torchaudio", cuda_tag, platform, py)
                    adeps = [
                        _py_range(py),
                        f"python_abi {py}.* *_cp{tag}",
                        torch_dep,
                        "numpy",
                        *cuda_deps[:3],
                    ]
                    out.append(
                        record(
                            "torchaudio",
                            CF_AUDIO,
                            f"{cuda_tag}_py{tag}{ah}_0",
                            platform,
                            depends=sorted(adeps),
                            ext=".conda",
                        )
                    )
                if cuda and platform == "linux-64":
                    th = short_hash("triton", cuda_tag, py)
                    out.append(
                        record(
                            "triton",
                            CF_TRITON,
                            f"{cuda_tag}py{tag}{th}_0",
                            platform,
                            depends=sorted([_py_range(py), "filelock", *cuda_deps[:3]]),
                            ext=".conda",
                        )
                    )
            for meta in ("pytorch-gpu",) if cuda else ("pytorch-cpu",):
                out.append(
                    record(
                        meta,
                        CF_TORCH,
                        f"{cuda_tag}_{blas}_{short_hash(meta, platform)}_{number}",
                        platform,
                        ext=".conda",
                        depends=[f"pytorch {CF_TORCH} {cuda_tag}_{blas}*_{number}"],
                    )
                )
    return out


def conda_forge_records() -> list[tuple[str, dict[str, object]]]:
    return _base_records() + _cf_torch_records()


# --------------------------------------------------------------------------------------------
# Trees and fixtures
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelTree:
    """A folder of channels served by ``--channel-alias`` (``alias``)."""

    root: Path

    @property
    def alias(self) -> str:
        return self.root.as_uri()

    def url(self, channel: str) -> str:
        return f"{self.alias}/{channel}"

    def repodata(self, channel: str, subdir: str) -> dict[str, object]:
        return json.loads((self.root / channel / subdir / "repodata.json").read_text())


def write_channel_tree(root: Path) -> ChannelTree:
    """Write the generated pytorch, nvidia and conda-forge channels under ``root``."""
    write_channel(root, "pytorch", pytorch_channel_records(), (*PLATFORMS, "noarch"))
    write_channel(root, "nvidia", nvidia_channel_records(), ("linux-64", "win-64", "noarch"))
    write_channel(root, "conda-forge", conda_forge_records(), (*PLATFORMS, "noarch"))
    return ChannelTree(root)


def write_real_channel_tree(root: Path) -> ChannelTree:
    """The real pytorch-channel linux-64 repodata plus generated noarch, nvidia and conda-forge."""
    real = real_pytorch_repodata()
    pytorch_noarch = [r for r in pytorch_channel_records() if r[1]["subdir"] == "noarch"]
    write_channel(root, "pytorch", pytorch_noarch, ("noarch",))
    (root / "pytorch" / "linux-64").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(real, root / "pytorch" / "linux-64" / "repodata.json")
    write_channel(root, "nvidia", nvidia_channel_records(), ("linux-64", "win-64", "noarch"))
    write_channel(root, "conda-forge", conda_forge_records(), (*PLATFORMS, "noarch"))
    return ChannelTree(root)


@pytest.fixture(scope="session")
def channel_tree(tmp_path_factory: pytest.TempPathFactory) -> ChannelTree:
    """Generated pytorch/, nvidia/ and conda-forge/ channels (read-only: do not modify)."""
    return write_channel_tree(tmp_path_factory.mktemp("channels"))


@pytest.fixture(scope="session")
def real_channel_tree(tmp_path_factory: pytest.TempPathFactory) -> ChannelTree:
    """Real pytorch-channel linux-64 records (2023-10) plus generated companions; may skip."""
    return write_real_channel_tree(tmp_path_factory.mktemp("real-channels"))


# --------------------------------------------------------------------------------------------
# Input files
# --------------------------------------------------------------------------------------------


def write_environment(
    path: Path,
    channels: list[str],
    dependencies: list[str],
    *,
    name: str = "torch",
    platforms: list[str] | None = None,
) -> Path:
    """An environment.yml; a dependency may carry a selector ("pytorch-cuda=12.4  # [linux]")."""
    lines = [f"name: {name}", "channels:"] + [f"  - {c}" for c in channels]
    if platforms:
        lines += ["platforms:"] + [f"  - {p}" for p in platforms]
    lines += ["dependencies:"] + [f"  - {d}" for d in dependencies]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_virtual_packages(path: Path, subdirs: dict[str, dict[str, str]]) -> Path:
    """A virtual-packages.yml in conda-lock's format."""
    lines = ["subdirs:"]
    for subdir, packages in subdirs.items():
        lines += [f"  {subdir}:", "    packages:"]
        lines += [f'      {name}: "{version}"' for name, version in packages.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# The virtual packages of a machine with an NVIDIA driver (CUDA 12.4 for the pytorch channel).
VP_LINUX = {"__unix": "0", "__linux": "5.15", "__glibc": "2.28", "__archspec": "1 x86_64"}
VP_WIN = {"__win": "0", "__archspec": "1 x86_64"}
VP_OSX = {"__unix": "0", "__osx": "14.0", "__archspec": "1 arm64"}


def virtual_packages_for(cuda: str | None) -> dict[str, dict[str, str]]:
    """A virtual-packages spec for the three platforms, with ``__cuda`` on linux/win when given."""
    linux, win = dict(VP_LINUX), dict(VP_WIN)
    if cuda:
        linux["__cuda"] = cuda
        win["__cuda"] = cuda
    return {"linux-64": linux, "win-64": win, "osx-arm64": dict(VP_OSX)}
