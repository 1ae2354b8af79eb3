"""The ready-made files under environments/ are exactly what the tool writes today.

Each target is written again into a temporary folder through the CLI (a
subprocess, CONDA_OVERRIDE_CUDA removed) and compared byte for byte. A
difference means the recipes, the planner or the writer changed: regenerate with
``python environments/regenerate.py NAME`` and review the diff.
"""

from __future__ import annotations

import difflib
import importlib.util
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ROOT / "environments"


def _load_regenerate():
    spec = importlib.util.spec_from_file_location("regenerate", ENVIRONMENTS / "regenerate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _load_regenerate()


def test_every_folder_is_a_target() -> None:
    folders = {p.name for p in ENVIRONMENTS.iterdir() if p.is_dir() and not p.name.startswith(".")}
    folders.discard("__pycache__")
    assert folders <= set(regenerate.TARGETS), (
        "a folder under environments/ that nothing regenerates"
    )


@pytest.mark.parametrize("name", list(regenerate.TARGETS))
def test_environment_files_are_up_to_date(name: str, tmp_path: Path) -> None:
    committed = ENVIRONMENTS / name
    how = f"regenerate with: python environments/regenerate.py {name}"
    if not committed.is_dir():
        pytest.fail(f"environments/{name} is missing; {how}")
    result = regenerate.generate(name, tmp_path)
    assert result.returncode == 0, (
        f"{shlex.join(regenerate.write_command(name, tmp_path))}\n{result.stderr}"
    )
    for file_name in regenerate.FILES:
        expected = (committed / file_name).read_text() if (committed / file_name).exists() else ""
        got = (tmp_path / file_name).read_text()
        if got != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    got.splitlines(keepends=True),
                    f"environments/{name}/{file_name} (committed)",
                    f"{file_name} (written now)",
                )
            )
            pytest.fail(f"environments/{name}/{file_name} is out of date; {how}\n{diff}")


@pytest.mark.parametrize("name", list(regenerate.TARGETS))
def test_header_holds_the_command(name: str) -> None:
    path = ENVIRONMENTS / name / "environment.yml"
    if not path.exists():
        pytest.fail(f"environments/{name} is missing; python environments/regenerate.py {name}")
    from conda_torch_plugin.cli import build_parser
    from conda_torch_plugin.cli.write import write_command as regenerate_command

    args = build_parser().parse_args(["write", *regenerate.TARGETS[name]])
    assert path.read_text().splitlines()[1] == f"#   {regenerate_command(args)}"


@pytest.mark.parametrize("name", list(regenerate.TARGETS))
def test_conda_lock_reads_the_plans_specs(name: str) -> None:
    """Through conda-lock's own parser, each platform gets exactly its planned specs."""
    from conda_lock.src_parser.conda_common import conda_spec_to_versioned_dep
    from conda_lock.src_parser.environment_yaml import parse_environment_file

    from conda_torch_plugin.cli import build_parser
    from conda_torch_plugin.cli._options import plan_inputs_from_args
    from conda_torch_plugin.plan import make_plan

    path = ENVIRONMENTS / name / "environment.yml"
    if not path.exists():
        pytest.fail(f"environments/{name} is missing; python environments/regenerate.py {name}")
    args = build_parser().parse_args(["write", *regenerate.TARGETS[name]])
    if args.machines:  # a team's file: planned from the profiles beside it
        from conda_torch_plugin.cli._options import fleet_inputs_from_args
        from conda_torch_plugin.plan.fleet import plan_fleet

        args.machines = [str(ENVIRONMENTS / name / m) for m in args.machines]
        plan = plan_fleet(*fleet_inputs_from_args(args)).plan
    else:
        plan = make_plan(*plan_inputs_from_args(args))
    platforms = [p.platform for p in plan.platforms]
    # No pip: section in these files, so conda-lock never reads the PyPI mapping.
    spec = parse_environment_file(path, platforms, mapping_url="unused.json")

    def key(dep: dict) -> tuple[str, str]:
        return dep["name"], dep["version"]

    for platform_plan in plan.platforms:
        got = sorted((d.model_dump() for d in spec.dependencies[platform_plan.platform]), key=key)
        want = [conda_spec_to_versioned_dep(s, "main").model_dump() for s in platform_plan.specs]
        assert got == sorted(want, key=key), platform_plan.platform
