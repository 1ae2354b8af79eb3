"""Our content hash against conda-lock's compute_content_hashes on the same inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from conda_torch_plugin.condalock.content_hash import content_hashes
from conda_torch_plugin.condalock.envspec import read_environment, read_virtual_packages
from conda_torch_plugin.errors import LockError

if TYPE_CHECKING:
    from pathlib import Path

ENVIRONMENTS = {
    "plain": """\
channels: [conda-forge]
dependencies:
  - python
  - numpy
""",
    "pinned-pytorch-channel": """\
name: torch
channels:
  - pytorch
  - nvidia
  - conda-forge
  - nodefaults
platforms: [linux-64, win-64, osx-arm64]
dependencies:
  - python=3.12
  - pytorch=2.5.1
  - torchvision=0.20.1
  - torchaudio=2.5.1
  - pytorch-cuda=12.4  # [linux]
  - pytorch-cuda=12.4  # [win]
  - mkl<2024.1  # [linux64]
""",
    "version-and-build-specs": """\
channels: [pytorch, conda-forge]
platforms: [linux-64]
dependencies:
  - pytorch=2.13.0=cuda*
  - pytorch::pytorch
  - mkl<2024.1
  - numpy >=1.24,<2
  - blas * mkl
  - "libblas[build=*mkl]"
  - python 3.11.*
  - conda-forge/label/dev::jax
  - cuda-version==12.4
""",
    "channels-with-labels-and-urls": """\
channels:
  - conda-forge/label/pytorch_rc
  - https://conda.anaconda.org/pytorch
  - file:///srv/mirror/nvidia
  - http://localhost:8000/conda-forge/
dependencies: [python]
""",
    "pip-section": """\
channels: [conda-forge]
platforms: [linux-64, win-64, osx-arm64]
dependencies:
  - python=3.11
  - pip:
    - requests>=2.0,<3 ; sys_platform != 'win32'
    - Foo_Bar[x,a]==1.0 --hash=sha256:abc
    - tqdm
    - pkg @ https://example.com/pkg-1.0.tar.gz#sha256=abcd
    - git+https://github.com/org/repo.git@v1.0
    - -e ./here
""",
    "pip-pinned-then-pip-section": """\
channels: [conda-forge]
dependencies:
  - pip=24.0
  - python
  - pip:
    - tqdm
""",
    "pip-repositories-and-category": """\
channels: [conda-forge]
category: dev
pip-repositories:
  - https://pypi.internal.example/simple
dependencies:
  - python
  - pip:
    - tqdm
""",
    "duplicate-names-last-wins": """\
channels: [conda-forge]
dependencies:
  - python>=3.9
  - numpy
  - python<3.13
""",
    "selectors-everywhere": """\
channels:
  - conda-forge
platforms: [linux-64, linux-aarch64, osx-64, osx-arm64, win-64]
dependencies:
  - python
  - libgcc  # [linux]
  - openmp  # [osx]
  - mkl  # [linux64]
  - vs2019_win-64  # [win64]
  - tapi  # [osx64]
  - sleef  # [arm64]
  - glibc  # [aarch64]
  - bash  # [unix]
""",
}

VIRTUAL_PACKAGES = {
    "none": None,
    "torch-env-style": """\
subdirs:
  linux-64:
    packages:
      __unix: "0"
      __linux: "5.10"
      __glibc: "2.28"
      __archspec: "1 x86_64"
      __cuda: "12.4"
  win-64:
    packages:
      __win: "0"
      __archspec: "1 x86_64"
      __cuda: "12.4"
  osx-arm64:
    packages:
      __unix: "0"
      __osx: "11.0"
      __archspec: "1 arm64"
""",
    "cuda-only": """\
subdirs:
  linux-64:
    packages:
      __cuda: "11.8"
""",
    "odd-subdirs": """\
subdirs:
  linux-armv7l:
    packages:
      __unix: "0"
  noarch:
    packages:
      __unix: "0"
  osx-64:
    packages:
      __osx: "10.15"
      __archspec: "1 x86_64"
""",
}


def conda_lock_hashes(env: Path, vp: Path | None) -> dict[str, str]:
    from conda_lock.content_hash import compute_content_hashes
    from conda_lock.src_parser import make_lock_spec
    from conda_lock.virtual_package import (
        default_virtual_package_repodata,
        virtual_package_repo_from_specification,
    )

    mapping = env.parent / "mapping.json"  # pip -> pip, offline
    mapping.write_text('{"pip": {"conda_name": "pip", "pypi_name": "pip"}}')
    lock_spec = make_lock_spec(src_files=[env], mapping_url=str(mapping))
    # conda-lock does the same: a spec file when given, else its default set (conda_lock.py).
    vpr = virtual_package_repo_from_specification(vp) if vp else default_virtual_package_repodata()
    return compute_content_hashes(lock_spec, vpr)


def write_inputs(tmp_path: Path, env_text: str, vp_text: str | None) -> tuple[Path, Path | None]:
    env = tmp_path / "environment.yml"
    env.write_text(env_text)
    vp = None
    if vp_text is not None:
        vp = tmp_path / "virtual-packages.yml"
        vp.write_text(vp_text)
    return env, vp


def ours(env: Path, vp: Path | None, platforms: list[str] | None = None) -> dict[str, str]:
    spec = read_environment(env, platforms)
    return content_hashes(spec, read_virtual_packages(vp) if vp else None, spec.lock_platforms)


@pytest.mark.parametrize("vp_name", list(VIRTUAL_PACKAGES), ids=list(VIRTUAL_PACKAGES))
@pytest.mark.parametrize("env_name", list(ENVIRONMENTS), ids=list(ENVIRONMENTS))
def test_same_hash_as_conda_lock(tmp_path: Path, env_name: str, vp_name: str) -> None:
    env, vp = write_inputs(tmp_path, ENVIRONMENTS[env_name], VIRTUAL_PACKAGES[vp_name])
    expected = conda_lock_hashes(env, vp)
    # Without `platforms:` in the file conda-lock locks its own default platforms
    # (osx-64 too); ask for the same ones.
    assert ours(env, vp, list(expected)) == expected


def test_conda_lock_check_input_hash_accepts_ours(tmp_path: Path) -> None:
    """What `conda-lock lock --check-input-hash` compares (conda_lock.py make_lock_files)."""
    from conda_lock.content_hash import backwards_compatible_content_hashes
    from conda_lock.src_parser import make_lock_spec
    from conda_lock.virtual_package import virtual_package_repo_from_specification

    env, vp = write_inputs(
        tmp_path, ENVIRONMENTS["pinned-pytorch-channel"], VIRTUAL_PACKAGES["torch-env-style"]
    )
    assert vp is not None
    lock_spec = make_lock_spec(src_files=[env], mapping_url=str(tmp_path / "unused.json"))
    vpr = virtual_package_repo_from_specification(vp)
    for platform, digest in ours(env, vp).items():
        assert digest in backwards_compatible_content_hashes(lock_spec, vpr, platform)


def test_credentials_from_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_REPO_TOKEN", "tk-123-456")
    monkeypatch.setenv("MY_USERNAME", "alice")
    monkeypatch.setenv("MY_PASSWORD", "s3cret")
    text = """\
channels:
  - https://host.example/t/tk-123-456/private
  - https://alice:s3cret@mirror.example/conda-forge
  - https://bob:unknown@other.example/ch
dependencies: [python]
"""
    env, vp = write_inputs(tmp_path, text, VIRTUAL_PACKAGES["cuda-only"])
    expected = conda_lock_hashes(env, vp)
    assert ours(env, vp, list(expected)) == expected


def test_hash_follows_the_specs_not_their_layout(tmp_path: Path) -> None:
    base = "channels: [conda-forge]\ndependencies:\n  - python=3.12\n  - numpy\n"
    reordered = (
        "# a comment\nchannels: [conda-forge]\ndependencies:\n  - numpy  # why\n  - python=3.12\n"
    )
    changed = "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy\n"
    hashes = []
    for i, text in enumerate((base, reordered, changed)):
        folder = tmp_path / str(i)
        folder.mkdir()
        env, _ = write_inputs(folder, text, None)
        hashes.append(ours(env, None))
    assert hashes[0] == hashes[1]
    assert all(hashes[0][p] != hashes[2][p] for p in hashes[0])


def test_hash_follows_the_virtual_packages(tmp_path: Path) -> None:
    env, vp = write_inputs(tmp_path, ENVIRONMENTS["plain"], VIRTUAL_PACKAGES["torch-env-style"])
    assert vp is not None
    before = ours(env, vp)
    vp.write_text(vp.read_text().replace('__cuda: "12.4"\n  win-64', '__cuda: "12.1"\n  win-64'))
    after = ours(env, vp)
    assert before["linux-64"] != after["linux-64"]
    assert before["win-64"] == after["win-64"]


def test_platform_not_read_is_an_error(tmp_path: Path) -> None:
    env, _ = write_inputs(tmp_path, ENVIRONMENTS["plain"], None)
    spec = read_environment(env, ["linux-64"])
    with pytest.raises(LockError, match="osx-arm64"):
        content_hashes(spec, None, ["osx-arm64"])
