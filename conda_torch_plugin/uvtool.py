"""uv, the pip resolver and installer: its binary and its names for conda's platforms.

uv comes from the ``uv`` package on PyPI, which ships the binary and documents
``uv.find_uv_bin()`` to find it. It runs as a subprocess; releases outside the
tested range are refused rather than trusted to behave the same.
"""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from conda_torch_plugin.errors import TorchEnvError

# The uv releases this package is tested with (pyproject.toml pins the same range).
UV_TESTED = ((0, 13), (0, 14))
_INSTALL_HINT = "pip install 'uv>=0.13,<0.14'"


def find_uv(error: type[TorchEnvError]) -> str:
    """The uv binary of the ``uv`` package; ``error`` when absent or outside the tested range."""
    try:
        import uv
    except ImportError:
        raise error(
            "uv is not installed (it resolves and installs pip packages)", hints=[_INSTALL_HINT]
        ) from None
    try:
        binary = str(uv.find_uv_bin())
    except FileNotFoundError as missing:
        raise error(
            f"the uv package is installed but its binary is missing: {missing}",
            hints=[_INSTALL_HINT],
        ) from None
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as failed:
        raise error(f"cannot run uv ({binary}): {failed}", hints=[_INSTALL_HINT]) from None
    match = re.search(r"uv (\d+)\.(\d+)", out)
    version = (int(match.group(1)), int(match.group(2))) if match else None
    if version is None or not (UV_TESTED[0] <= version < UV_TESTED[1]):
        raise error(
            f"{binary} is {out.strip() or 'of an unknown version'}; conda torch-env is tested "
            f"with uv {UV_TESTED[0][0]}.{UV_TESTED[0][1]}",
            hints=[_INSTALL_HINT],
        )
    return binary


_UV_ARCH = {"64": "x86_64", "aarch64": "aarch64"}
_UV_TARGET = {
    "osx-arm64": "aarch64-apple-darwin",
    "osx-64": "x86_64-apple-darwin",
    "win-64": "x86_64-pc-windows-msvc",
    "win-arm64": "aarch64-pc-windows-msvc",
}
# The manylinux levels uv knows as --python-platform values (uv 0.13).
_MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)


def uv_platform(
    platform: str, virtual_packages: Mapping[str, str], error: type[TorchEnvError]
) -> str:
    """uv's ``--python-platform`` for a conda platform; Linux's manylinux level from __glibc."""
    if platform in _UV_TARGET:
        return _UV_TARGET[platform]
    system, _, arch = platform.partition("-")
    if system != "linux" or arch not in _UV_ARCH:
        raise error(
            f"pip packages cannot be locked or installed for {platform}: uv has no wheel tags "
            "for it",
            hints=["pip: sections work for linux-64, linux-aarch64, osx-64, osx-arm64, win-64"],
        )
    glibc = virtual_packages.get("__glibc", "").split(" ")[0]
    match = re.fullmatch(r"2\.(\d+)(\..*)?", glibc)
    if match:
        level = max((m for m in _MANYLINUX if m <= int(match.group(1))), default=None)
        if level is not None:
            return f"{_UV_ARCH[arch]}-manylinux_2_{level}"
    return f"{_UV_ARCH[arch]}-unknown-linux-gnu"
