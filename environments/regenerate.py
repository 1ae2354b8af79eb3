"""Regenerate the ready-made environment files in this folder.

    python environments/regenerate.py            # every target
    python environments/regenerate.py NAME ...   # some of them

Each target is a folder holding environment.yml and virtual-packages.yml written
by ``conda torch-env write`` with the fixed flags below (they describe the target
machine completely, so nothing is detected). tests/test_environments.py writes
each one again into a temporary folder and fails on any byte difference.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_ALL = ("--platform", "linux-64", "--platform", "win-64", "--platform", "osx-arm64")
_PYTORCH_251 = ("--source", "pytorch", "--pytorch", "2.5.1")
# --cuda with --gpu-arch describes the machine completely, so nothing is detected
# and the files come out the same everywhere. 8.0 (A100) is in every build's arch
# list here; the files serve any GPU their build supports.
_GPU = ("--gpu-arch", "8.0")

# folder -> flags of `conda torch-env write` (besides -f)
TARGETS: dict[str, tuple[str, ...]] = {
    "pytorch-2.5.1-cuda12.4": (*_ALL, *_PYTORCH_251, "--cuda", "12.4", *_GPU),
    "pytorch-2.5.1-cuda12.1": (*_ALL, *_PYTORCH_251, "--cuda", "12.1", *_GPU),
    "pytorch-2.5.1-cuda11.8": (*_ALL, *_PYTORCH_251, "--cuda", "11.8", *_GPU),
    "pytorch-2.5.1-cpu": (*_ALL, *_PYTORCH_251, "--cpu"),
    # conda-forge builds CUDA 12.9 for Linux only (its Windows builds are 12.8 and 13.0).
    "conda-forge-cuda12.9": (
        "--platform",
        "linux-64",
        "--source",
        "conda-forge",
        "--cuda",
        "12.9",
        *_GPU,
    ),
    "conda-forge-cuda13.0": (
        "--platform",
        "linux-64",
        "--platform",
        "win-64",
        "--source",
        "conda-forge",
        "--cuda",
        "13.0",
        *_GPU,
    ),  # fmt: skip
    # One environment for a team: the profiles in team-fleet/machines (detect --save,
    # nvidia-smi CSV gathered with pdsh, nvidia-smi -q -x) decide the build.
    "team-fleet": ("--machine", "machines", *_PYTORCH_251),
}
# Targets planned from profiles: the folder (relative to the target's) is copied along.
PROFILES = {"team-fleet": "machines"}

FILES = ("environment.yml", "virtual-packages.yml")


def write_command(name: str, folder: Path) -> list[str]:
    """The command that writes target ``name`` into ``folder`` (any Python with the package)."""
    return [
        sys.executable, "-m", "conda_torch_plugin", "write",
        "-f", str(folder / "environment.yml"), *TARGETS[name], "--offline",
    ]  # fmt: skip


def generate(name: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Write target ``name`` into ``folder``, from scratch (a write over an existing
    file would be an update, which keeps whatever the old file had)."""
    folder.mkdir(parents=True, exist_ok=True)
    for file_name in FILES:
        (folder / file_name).unlink(missing_ok=True)
    profiles = PROFILES.get(name)
    if profiles and folder.resolve() != (HERE / name).resolve():
        import shutil

        shutil.copytree(HERE / name / profiles, folder / profiles, dirs_exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CONDA_OVERRIDE_CUDA"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        write_command(name, folder),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=folder,  # --machine paths are relative to the target's folder
    )


def main(argv: list[str]) -> int:
    names = argv or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        print(f"unknown target {unknown[0]}; known: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        result = generate(name, HERE / name)
        print(f"{name}: {'ok' if result.returncode == 0 else 'FAILED'}")
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
