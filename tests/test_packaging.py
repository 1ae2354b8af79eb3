"""The wheel carries the recipes and registers both entry points."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if build.returncode != 0 and "hatchling" in build.stderr:
        pytest.skip(f"hatchling is not installed here: {build.stderr.strip()[-200:]}")
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("conda_torch_plugin-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_ships_every_recipe(wheel: zipfile.ZipFile) -> None:
    """Every data file, the bundled channel snapshot in recipes/snapshots/ included."""
    prefix = "conda_torch_plugin/recipe_data/"
    shipped = {n[len(prefix) :] for n in wheel.namelist() if n.startswith(prefix)}
    recipes = ROOT / "recipes"
    in_repo = {p.relative_to(recipes).as_posix() for p in recipes.rglob("*") if p.is_file()}
    assert in_repo, "recipes/ is empty"
    assert "snapshots/conda-forge.json" in in_repo
    assert in_repo <= shipped


def test_wheel_registers_conda_plugin_and_console_script(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[conda]\nconda-torch-env = conda_torch_plugin.plugin" in text
    assert "conda-torch-env = conda_torch_plugin.cli:run" in text
