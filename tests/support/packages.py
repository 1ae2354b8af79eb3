"""Fixtures: tiny REAL conda packages in ``file://`` channels named like the real ones.

``package_channels`` (session scope) builds a channel tree::

    ROOT/pytorch/{linux-64,noarch}/      pytorch, torchvision, torchaudio, pytorch-cuda,
                                         pytorch-mutex, cpuonly   (.tar.bz2, as on the real channel)
    ROOT/nvidia/{linux-64,noarch}/       cuda-runtime, cuda-cudart, cuda-nvrtc, libcublas,
                                         cuda-version
    ROOT/conda-forge/{linux-64,noarch}/  python, mkl, blas, llvm-openmp, numpy, pillow,
                                         filelock, ...

so that ``--channel-alias file:///ROOT`` serves ``pytorch``, ``nvidia`` and
``conda-forge``. Every archive is a real package (``info/index.json``,
``info/paths.json``, ``info/files``, ``info/about.json`` and a payload file or
two), deterministic (mtime 0, sorted members, fixed zip dates), indexed with
``rattler.index.index_fs``. pytorch's payload holds ``torch/version.py`` with
``cuda = "12.4"`` (or ``None``), as the real package does.

The package set is data (``PYTORCH_RELEASE``, ``CUDA_VARIANTS``, ``BASE``) so a
test can see at a glance what the channels can serve: pytorch 2.5.1 /
torchvision 0.20.1 / torchaudio 2.5.1 for Python 3.11 and 3.12, CUDA 11.8,
12.1, 12.4 and CPU, linux-64 only.

Helpers: ``copy_channels`` (a private copy a test may damage), ``corrupt_archive``
(change bytes of an archive after indexing, so repodata and any lock disagree
with it) and ``archive_path``.
"""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

TIMESTAMP = 1730000000000  # ms; fixed so the archives and repodata are deterministic
PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
CHANNELS = ("pytorch", "nvidia", "conda-forge")
PYTHONS = {"3.11": "3.11.10", "3.12": "3.12.7"}
PYTORCH_RELEASE = {"pytorch": "2.5.1", "torchvision": "0.20.1", "torchaudio": "2.5.1"}
# CUDA X.Y -> (pytorch-cuda build, nvidia component version, libcublas version)
CUDA_VARIANTS = {
    "11.8": ("h7e8668a_6", "11.8.89", "11.11.3.6"),
    "12.1": ("ha16c6d3_6", "12.1.105", "12.1.0.26"),
    "12.4": ("hc786d27_7", "12.4.127", "12.4.5.8"),
}
CUDNN = "9.1.0"


@dataclass(frozen=True)
class Package:
    channel: str
    subdir: str
    name: str
    version: str
    build: str
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    build_number: int = 0
    noarch: str | None = None  # "python" | "generic"
    track_features: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # path -> text content
    fmt: str = ".conda"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}{self.fmt}"

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def index_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "license": "BSD-3-Clause",
            "name": self.name,
            "subdir": self.subdir,
            "timestamp": TIMESTAMP,
            "version": self.version,
        }
        if self.constrains:
            data["constrains"] = list(self.constrains)
        if self.noarch:
            data["noarch"] = self.noarch
        else:
            data["arch"] = "x86_64"
            data["platform"] = "linux"
        if self.track_features:
            data["track_features"] = self.track_features
        return data


def _py_site(py: str) -> str:
    return f"lib/python{py}/site-packages"


def _py_dep(py: str) -> str:
    major, minor = py.split(".")
    return f"python >={py},<{major}.{int(minor) + 1}.0a0"


def _torch_family(py: str, cuda: str | None) -> list[Package]:
    """pytorch, torchvision and torchaudio for one Python and one CUDA variant (None = CPU)."""
    pt, tv, ta = (PYTORCH_RELEASE[n] for n in ("pytorch", "torchvision", "torchaudio"))
    nodot = py.replace(".", "")
    if cuda:
        major, minor = cuda.split(".")
        pt_build = f"py{py}_cuda{cuda}_cudnn{CUDNN}_0"
        companion_build = f"py{nodot}_cu{major}{minor}"
        mutex = "pytorch-mutex 1.0 cuda"
        variant = (f"pytorch-cuda >={cuda},<{major}.{int(minor) + 1}",)
        companion_variant = (f"pytorch-cuda {cuda}.*",)
        constrains: tuple[str, ...] = ("cpuonly <0",)
    else:
        pt_build = f"py{py}_cpu_0"
        companion_build = f"py{nodot}_cpu"
        mutex = "pytorch-mutex 1.0 cpu"
        variant = companion_variant = ()
        constrains = ("cpuonly",)
    site = _py_site(py)
    cuda_literal = f'"{cuda}"' if cuda else "None"
    common = dict(channel="pytorch", subdir="linux-64", fmt=".tar.bz2", constrains=constrains)
    return [
        Package(
            name="pytorch",
            version=pt,
            build=pt_build,
            depends=(
                "blas * mkl",
                "filelock",
                "llvm-openmp <16",
                "mkl >=2018",
                _py_dep(py),
                *variant,
                mutex,
                "typing_extensions",
            ),
            files={
                f"{site}/torch/__init__.py": "from torch.version import __version__\n",
                f"{site}/torch/version.py": (
                    f"__version__ = '{pt}'\ndebug = False\ncuda = {cuda_literal}\nhip = None\n"
                ),
            },
            **common,
        ),
        Package(
            name="torchvision",
            version=tv,
            build=companion_build,
            depends=(
                "numpy >=1.23.5",
                "pillow >=5.3.0,!=8.3.*",
                _py_dep(py),
                f"pytorch {pt}",
                *companion_variant,
                mutex,
            ),
            files={f"{site}/torchvision/__init__.py": f"__version__ = '{tv}'\n"},
            **common,
        ),
        Package(
            name="torchaudio",
            version=ta,
            build=companion_build,
            depends=("numpy", _py_dep(py), f"pytorch {pt}", *companion_variant, mutex),
            files={f"{site}/torchaudio/__init__.py": f"__version__ = '{ta}'\n"},
            **common,
        ),
    ]


def _cuda_stack(cuda: str) -> list[Package]:
    """pytorch-cuda X.Y (pytorch channel) and the nvidia packages it pulls in."""
    build, component, cublas = CUDA_VARIANTS[cuda]
    major, minor = cuda.split(".")
    upper = f"{major}.{int(minor) + 1}"
    version_pin = f"cuda-version >={cuda},<{upper}.0a0"
    nvidia = dict(channel="nvidia", subdir="linux-64")
    cublas_parts = cublas.split(".")
    cublas_upper = ".".join([*cublas_parts[:-1], str(int(cublas_parts[-1]) + 1)])
    return [
        Package(
            channel="pytorch",
            subdir="linux-64",
            fmt=".tar.bz2",
            name="pytorch-cuda",
            version=cuda,
            build=build,
            build_number=int(build.rsplit("_", 1)[1]),
            depends=(
                f"cuda-cudart >={cuda},<{upper}",
                f"cuda-nvrtc >={cuda},<{upper}",
                f"cuda-runtime >={cuda},<{upper}",
                f"libcublas >={cublas},<{cublas_upper}",
            ),
        ),
        Package(
            name="cuda-runtime",
            version=f"{cuda}.1",
            build="0",
            depends=(f"cuda-cudart >={cuda},<{upper}", f"libcublas >={cublas},<{cublas_upper}"),
            **nvidia,
        ),
        # One shared library each, pinned to this cuda-version.
        *(
            Package(
                name=name,
                version=version,
                build="0",
                depends=(version_pin,),
                files={f"lib/lib{lib}.so.{major}": f"fake {lib} {version}\n"},
                **nvidia,
            )
            for name, lib, version in (
                ("cuda-cudart", "cudart", component),
                ("cuda-nvrtc", "nvrtc", component),
                ("libcublas", "cublas", cublas),
            )
        ),
        Package(
            channel="nvidia",
            subdir="noarch",
            noarch="generic",
            name="cuda-version",
            version=cuda,
            build="3",
            build_number=3,
            # conda-forge's cuda-version constrains the driver by major only (facts E2).
            constrains=(f"__cuda >={major}", f"cudatoolkit {cuda}|{cuda}.*"),
        ),
    ]


def _python(py: str, full: str) -> Package:
    return Package(
        channel="conda-forge",
        subdir="linux-64",
        name="python",
        version=full,
        build="h9ebbce0_0_cpython",
        depends=("__glibc >=2.17,<3.0.a0", "libzlib >=1.3.1,<2.0a0"),
        files={
            f"bin/python{py}-config": f"#!/bin/sh\necho {PLACEHOLDER}\n",
            f"{_py_site(py)}/README.txt": "site-packages of the test python\n",
        },
    )


def _compiled(name: str, version: str, depends: tuple[str, ...] = ()) -> list[Package]:
    """A per-Python linux-64 package (numpy, pillow) with a module in site-packages."""
    return [
        Package(
            channel="conda-forge",
            subdir="linux-64",
            name=name,
            version=version,
            build=f"py{py.replace('.', '')}h0000000_0",
            depends=(_py_dep(py), *depends),
            files={
                f"{_py_site(py)}/{name.replace('-', '_')}/__init__.py": (
                    f"__version__ = '{version}'\n"
                )
            },
        )
        for py in PYTHONS
    ]


def _noarch_python(name: str, version: str) -> Package:
    module = name.replace("-", "_")
    return Package(
        channel="conda-forge",
        subdir="noarch",
        noarch="python",
        name=name,
        version=version,
        build="pyhd8ed1ab_0",
        depends=("python >=3.9",),
        files={f"site-packages/{module}/__init__.py": f"__version__ = '{version}'\n"},
    )


def _simple(name: str, version: str, build: str, depends: tuple[str, ...] = (), **kw) -> Package:
    return Package(
        channel="conda-forge",
        subdir="linux-64",
        name=name,
        version=version,
        build=build,
        depends=depends,
        **kw,
    )


BASE: tuple[Package, ...] = (
    *(_python(py, full) for py, full in PYTHONS.items()),
    _simple("libzlib", "1.3.1", "hb9d3cd8_2", files={"lib/libz.so.1": "fake zlib\n"}),
    _simple("llvm-openmp", "15.0.7", "h0cdce71_0", files={"lib/libomp.so": "fake openmp\n"}),
    _simple(
        "mkl",
        "2023.2.0",
        "h84fe81f_50496",
        ("llvm-openmp >=15.0.7",),
        files={"lib/libmkl_rt.so.2": "fake mkl\n"},
    ),
    _simple("blas", "2.120", "mkl", ("mkl >=2023.2.0,<2024.0a0",), build_number=20),
    *_compiled("numpy", "2.1.2"),
    *_compiled("pillow", "11.0.0", ("libzlib >=1.3.1,<2.0a0",)),
    _noarch_python("filelock", "3.16.1"),
    _noarch_python("typing_extensions", "4.12.2"),
)

MARKERS: tuple[Package, ...] = (
    Package(
        channel="pytorch",
        subdir="noarch",
        noarch="generic",
        fmt=".tar.bz2",
        name="pytorch-mutex",
        version="1.0",
        build="cuda",
        build_number=100,
    ),
    Package(
        channel="pytorch",
        subdir="noarch",
        noarch="generic",
        fmt=".tar.bz2",
        name="pytorch-mutex",
        version="1.0",
        build="cpu",
        build_number=100,
        track_features="pytorch-mutex",
    ),
    Package(
        channel="pytorch",
        subdir="noarch",
        noarch="generic",
        fmt=".tar.bz2",
        name="cpuonly",
        version="2.0",
        build="0",
        track_features="cpuonly",
        depends=("pytorch-mutex 1.0 cpu",),
    ),
)


def all_packages() -> tuple[Package, ...]:
    packages: list[Package] = [*BASE, *MARKERS]
    for cuda in CUDA_VARIANTS:
        packages += _cuda_stack(cuda)
    for py in PYTHONS:
        for cuda in (*CUDA_VARIANTS, None):
            packages += _torch_family(py, cuda)
    return tuple(packages)


# --- archives -------------------------------------------------------------------------


def _tar_bytes(members: dict[str, bytes], compression: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode=f"w:{compression}" if compression else "w", format=tarfile.PAX_FORMAT
    ) as tar:
        for path in sorted(members):
            info = tarfile.TarInfo(path)
            info.size = len(members[path])
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if path.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(members[path]))
    return buffer.getvalue()


def _members(package: Package) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(info/ members, payload members) of one package."""
    payload = {path: text.encode() for path, text in package.files.items()}
    paths = []
    has_prefix = []
    for path in sorted(payload):
        entry: dict[str, object] = {
            "_path": path,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(payload[path]).hexdigest(),
            "size_in_bytes": len(payload[path]),
        }
        if PLACEHOLDER.encode() in payload[path]:
            entry["file_mode"] = "text"
            entry["prefix_placeholder"] = PLACEHOLDER
            has_prefix.append(f"{PLACEHOLDER} text {path}")
        paths.append(entry)
    info = {
        "info/index.json": json.dumps(package.index_json(), indent=2, sort_keys=True).encode(),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2).encode(),
        "info/files": "".join(f"{p}\n" for p in sorted(payload)).encode(),
        "info/about.json": json.dumps(
            {"summary": f"test package {package.name}", "home": "https://example.invalid"},
            sort_keys=True,
        ).encode(),
    }
    if has_prefix:
        info["info/has_prefix"] = "".join(f"{line}\n" for line in has_prefix).encode()
    return info, payload


def build_archive(package: Package, folder: Path) -> Path:
    info, payload = _members(package)
    target = folder / package.filename
    if package.fmt == ".tar.bz2":
        raw = _tar_bytes({**info, **payload})
        target.write_bytes(bz2.compress(raw, 9))
    else:
        import zstandard

        compressor = zstandard.ZstdCompressor(level=3)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, data in (
                ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
                (f"pkg-{package.stem}.tar.zst", compressor.compress(_tar_bytes(payload))),
                (f"info-{package.stem}.tar.zst", compressor.compress(_tar_bytes(info))),
            ):
                zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
        target.write_bytes(buffer.getvalue())
    return target


def build_channels(root: Path, packages: tuple[Package, ...] | None = None) -> Path:
    """Write and index every package under ``root``; return ``root``."""
    from rattler.index import index_fs

    packages = all_packages() if packages is None else packages
    for channel in CHANNELS:
        # Each channel needs linux-64 and noarch, even when empty (a missing noarch is an error).
        for subdir in ("linux-64", "noarch"):
            (root / channel / subdir).mkdir(parents=True, exist_ok=True)
    for package in packages:
        build_archive(package, root / package.channel / package.subdir)

    async def index_all() -> None:
        for channel in CHANNELS:
            await index_fs(root / channel, write_zst=False, write_shards=False)

    asyncio.run(index_all())
    for channel in CHANNELS:
        shutil.rmtree(root / channel / ".tmp", ignore_errors=True)
    return root


def archive_path(root: Path, filename: str) -> Path:
    """The archive called ``filename`` in any channel/subdir under ``root``."""
    matches = sorted(root.glob(f"*/*/{filename}"))
    if not matches:
        raise FileNotFoundError(f"no archive {filename} under {root}")
    return matches[0]


def corrupt_archive(path: Path) -> None:
    """Change bytes in the archive without touching repodata.json (so its sha256 disagrees)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))


def copy_channels(root: Path, dest: Path) -> Path:
    """A private copy of a channel tree, for a test that damages it."""
    shutil.copytree(root, dest)
    return dest


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def package_channels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of the pytorch/nvidia/conda-forge channel tree (read-only for tests: copy to damage)."""
    return build_channels(tmp_path_factory.mktemp("channels"))


def solved_lock(
    root: Path,
    specs: tuple[str, ...] = (
        "pytorch=2.5.1",
        "torchvision",
        "torchaudio",
        "pytorch-cuda=12.4",
        "python=3.12",
    ),
    *,
    cuda: str | None = "12.4",
    platform: str = "linux-64",
):
    """A LockFile solved with rattler straight from the channels under ``root``.

    For tests of the installer alone; end-to-end tests lock through the lock API.
    """
    from rattler import GenericVirtualPackage, PackageName, Version, solve
    from rattler.package import BuildString

    from conda_torch_plugin.condalock.lockfile import LockedPackage, LockFile

    def vp(name: str, version: str, build: str = "0"):
        return GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))

    virtual = [vp("__unix", "0"), vp("__linux", "5.15"), vp("__glibc", "2.28")]
    if cuda:
        virtual.append(vp("__cuda", cuda))
    channels = tuple((root / c).as_uri() for c in CHANNELS)
    records = asyncio.run(
        solve(list(channels), list(specs), platforms=[platform, "noarch"], virtual_packages=virtual)
    )
    packages = tuple(
        LockedPackage(
            name=r.name.normalized,
            version=str(r.version),
            build=str(r.build),
            platform=platform,
            url=r.url,
            md5=r.md5.hex(),
            sha256=r.sha256.hex(),
            dependencies={d.split()[0]: " ".join(d.split()[1:2]) for d in r.depends},
        )
        for r in sorted(records, key=lambda r: r.name.normalized)
    )
    return LockFile((platform,), channels, {platform: "0" * 64}, ("environment.yml",), packages)
