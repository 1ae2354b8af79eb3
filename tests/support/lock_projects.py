"""A project folder to lock: environment.yml plus conda-lock's virtual-packages.yml.

Plain functions and constants, no fixtures. The channels are the names the
``channel_tree`` fixture (support.repodata) serves under ``--channel-alias``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from support.repodata import virtual_packages_for, write_environment, write_virtual_packages

if TYPE_CHECKING:
    from pathlib import Path

PYTORCH_CHANNELS = ["pytorch", "nvidia", "conda-forge"]
THREE = ["linux-64", "win-64", "osx-arm64"]
TORCH_251 = ["python=3.12", "pytorch=2.5.1", "torchvision=0.20.1", "torchaudio=2.5.1"]
CUDA_124 = [*TORCH_251, "pytorch-cuda=12.4  # [linux]", "pytorch-cuda=12.4  # [win]"]


def make_project(
    folder: Path,
    deps: list[str],
    *,
    channels: list[str] = PYTORCH_CHANNELS,
    cuda: str | Literal[False] | None = "12.4",
    platforms: list[str] | None = THREE,
) -> Path:
    """Write ``folder``/environment.yml and a virtual-packages.yml for the three platforms
    (``__cuda`` = ``cuda`` on linux/win; None: no driver; False: no virtual-packages.yml).
    Returns the environment.yml path."""
    folder.mkdir(parents=True, exist_ok=True)
    env = write_environment(folder / "environment.yml", channels, deps, platforms=platforms)
    if cuda is not False:
        write_virtual_packages(folder / "virtual-packages.yml", virtual_packages_for(cuda))
    return env
