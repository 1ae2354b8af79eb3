"""environment.yml / virtual-packages.yml rendering, round-trip updates and atomic writes.

Plans are built by hand here: the unit under test is the writer, not the planner.
conda-lock's own parsers read what we write, so a selector conda-lock would drop
(or a schema it would reject) fails these tests.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from conda_torch_plugin.atomic import atomic_write_text
from conda_torch_plugin.envfile import (
    dependency_lines,
    package_name,
    render_environment,
    render_virtual_packages,
    write_environment,
)
from conda_torch_plugin.errors import EnvFileError
from conda_torch_plugin.plan import Plan, PlatformPlan

if TYPE_CHECKING:
    from pathlib import Path

COMMON = ("python=3.12", "pytorch=2.5.1", "torchvision=0.20.1", "torchaudio=2.5.1")
CUDA = ("pytorch-cuda=12.4", "mkl<2024.1")
COMMAND = "conda torch-env write --cuda 12.4 --platform linux-64"


def make_plan(*platforms: PlatformPlan, channels=("pytorch", "nvidia", "conda-forge")) -> Plan:
    first = platforms[0]
    return Plan(
        source="pytorch",
        channels=tuple(channels),
        pytorch="2.5.1",
        torchvision="0.20.1",
        torchaudio="2.5.1",
        python="3.12",
        compute=first.compute,
        cuda=first.cuda,
        specs=first.specs,
        reasons=(),
        warnings=(),
        rejected=(),
        platforms=tuple(platforms),
    )


def cuda_platform(platform: str, specs=COMMON + CUDA, **vp: str) -> PlatformPlan:
    return PlatformPlan(platform, "cuda", "12.4", tuple(specs), {"__cuda": "12.4", **vp})


def cpu_platform(platform: str, specs=COMMON, compute: str = "cpu") -> PlatformPlan:
    return PlatformPlan(platform, compute, None, tuple(specs), {})


LINUX = cuda_platform("linux-64", __glibc="2.17")
WIN = cuda_platform("win-64")
MAC = cpu_platform("osx-arm64", compute="mps")

MULTI_PLANS = {
    "linux+win+osx": make_plan(LINUX, WIN, MAC),
    "linux+osx": make_plan(LINUX, MAC),
    "linux+aarch64+win (linux pair shares a spec)": make_plan(
        cuda_platform("linux-64", COMMON + ("pytorch-cuda=12.4", "mkl<2024.1")),
        cuda_platform("linux-aarch64", COMMON + ("pytorch-cuda=12.4",)),
        cpu_platform("win-64", COMMON + ("cpuonly",)),
    ),
    "python differs per platform": make_plan(
        cuda_platform("linux-64", ("python=3.12", "pytorch=2.5.1", "pytorch-cuda=12.4")),
        cpu_platform("osx-64", ("python=3.11", "pytorch=2.5.1")),
        cpu_platform("osx-arm64", ("python=3.11", "pytorch=2.5.1")),
    ),
    "conda-forge linux+win": make_plan(
        PlatformPlan(
            "linux-64",
            "cuda",
            "12.9",
            ("python=3.13", "pytorch-gpu=2.13.0", "cuda-version=12.9"),
            {"__cuda": "12.9"},
        ),  # noqa: E501
        PlatformPlan(
            "win-64",
            "cuda",
            "12.8",
            ("python=3.13", "pytorch-gpu=2.13.0", "cuda-version=12.8"),
            {"__cuda": "12.8"},
        ),  # noqa: E501
        channels=("conda-forge",),
    ),
}


# --- conda-lock reads what we write ---------------------------------------------------


def conda_lock_specs(path: Path, platforms: list[str]):
    import json

    from conda_lock.src_parser.environment_yaml import parse_environment_file

    # A local PyPI->conda name mapping: conda-lock would download its default one
    # for a pip: section.
    mapping = path.parent / "pypi-mapping.json"
    entry = {"conda_name": "einops", "conda_forge": "einops", "pypi_name": "einops"}
    mapping.write_text(json.dumps({"einops": entry}))
    return parse_environment_file(path, platforms, mapping_url=f"file://{mapping}")


def as_deps(specs) -> list[dict]:
    from conda_lock.src_parser.conda_common import conda_spec_to_versioned_dep

    deps = [conda_spec_to_versioned_dep(s, "main").model_dump() for s in specs]
    return sorted(deps, key=lambda d: (d["name"], d["version"]))


@pytest.mark.parametrize("plan", MULTI_PLANS.values(), ids=MULTI_PLANS.keys())
def test_conda_lock_reads_each_platforms_specs(plan: Plan, tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(render_environment(plan, name=None, command=COMMAND))
    platforms = [p.platform for p in plan.platforms]

    spec = conda_lock_specs(path, platforms)

    for platform_plan in plan.platforms:
        got = sorted(
            (d.model_dump() for d in spec.dependencies[platform_plan.platform]),
            key=lambda d: (d["name"], d["version"]),
        )
        assert got == as_deps(platform_plan.specs), platform_plan.platform
    assert [c.url for c in spec.channels] == list(plan.channels)  # nodefaults dropped by conda-lock


@pytest.mark.parametrize("plan", MULTI_PLANS.values(), ids=MULTI_PLANS.keys())
def test_conda_lock_reads_platforms_key(plan: Plan, tmp_path: Path) -> None:
    from conda_lock.src_parser.environment_yaml import parse_platforms_from_env_file

    path = tmp_path / "environment.yml"
    path.write_text(render_environment(plan, name=None))
    assert parse_platforms_from_env_file(path) == [p.platform for p in plan.platforms]


@pytest.mark.parametrize("plan", MULTI_PLANS.values(), ids=MULTI_PLANS.keys())
def test_every_selector_is_one_token(plan: Plan) -> None:
    import re

    text = render_environment(plan, name=None)
    selectors = re.findall(r"#\s*\[([^\]]*)\]", text)
    assert selectors, "a multi-platform plan whose platforms differ needs selectors"
    assert all(re.fullmatch(r"[a-z0-9]+", s) for s in selectors), selectors


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        (
            MULTI_PLANS["linux+win+osx"],
            {("pytorch-cuda=12.4", "linux64"), ("pytorch-cuda=12.4", "win64")},
        ),  # noqa: E501
        (
            MULTI_PLANS["linux+aarch64+win (linux pair shares a spec)"],
            {("pytorch-cuda=12.4", "linux"), ("mkl<2024.1", "linux64"), ("cpuonly", "win64")},
        ),  # noqa: E501
        (
            MULTI_PLANS["python differs per platform"],
            {("python=3.12", "linux64"), ("python=3.11", "osx"), ("pytorch-cuda=12.4", "linux64")},
        ),  # noqa: E501
    ],
    ids=["linux-and-win-twice", "linux-token-for-the-linux-pair", "osx-token-for-both-macs"],
)
def test_selector_tokens_cover_exactly_the_platforms_that_need_the_spec(plan, expected) -> None:
    lines = dependency_lines(plan)
    assert {(s, t) for s, t in lines if t} >= expected
    # No platform gets a spec twice.
    assert len(lines) == len(set(lines))


def test_specs_every_platform_shares_are_plain_lines_in_plan_order() -> None:
    lines = dependency_lines(MULTI_PLANS["linux+win+osx"])
    assert lines[:4] == [(s, None) for s in COMMON]


def test_single_platform_has_no_selectors() -> None:
    text = render_environment(make_plan(LINUX), name=None)
    deps = text.split("dependencies:\n", 1)[1]
    assert "#" not in deps
    assert deps.splitlines() == [f"  - {s}" for s in COMMON + CUDA]


# --- a new file -----------------------------------------------------------------------


def test_new_file_layout() -> None:
    text = render_environment(make_plan(LINUX), name=None, command=COMMAND)
    assert text == (
        "# Generated by conda torch-env. To regenerate it, run in this folder:\n"
        f"#   {COMMAND}\n"
        "# Edit freely: a rewrite changes only the torch packages, channels and platforms.\n"
        "name: torch\n"
        "channels:\n  - pytorch\n  - nvidia\n  - conda-forge\n  - nodefaults\n"
        "platforms:\n  - linux-64\n"
        "dependencies:\n"
        "  - python=3.12\n  - pytorch=2.5.1\n  - torchvision=0.20.1\n  - torchaudio=2.5.1\n"
        "  - pytorch-cuda=12.4\n  - mkl<2024.1\n"
    )


def test_no_nodefaults_when_plan_uses_defaults() -> None:
    text = render_environment(
        make_plan(LINUX, channels=("pytorch", "nvidia", "defaults")), name="x"
    )
    assert "nodefaults" not in text
    assert "name: x\n" in text


def test_specs_that_are_not_plain_yaml_are_quoted(tmp_path: Path) -> None:
    plan = make_plan(cpu_platform("linux-64", ("python=3.12", "pytorch[version='>=2.3']", "yes")))
    path = tmp_path / "environment.yml"
    path.write_text(render_environment(plan, name=None))
    spec = conda_lock_specs(path, ["linux-64"])
    assert {d.name for d in spec.dependencies["linux-64"]} == {"python", "pytorch", "yes"}
    assert '  - "yes"\n' in path.read_text()


# --- updating an existing file --------------------------------------------------------

USER_FILE = """\
# My project's environment.
name: research  # keep this name
channels:
  - my-org
  - pytorch
  - conda-forge  # for everything else
dependencies:
  # core
  - numpy>=1.26  # numerics
  # the torch stack
  - pytorch::pytorch=2.0.1  # old pin

  # GPU
  - pytorch-cuda=11.8  # [linux]
  - mkl-service
  - pytorch-lightning
  - pip
  - pip:
      - einops  # tensors
      - -e .
  - python=3.10
  # end of list
# settings below
variables:
  OMP_NUM_THREADS: "4"
"""

USER_FILE_UPDATED = """\
# My project's environment.
name: research  # keep this name
channels:
  - pytorch
  - nvidia
  - conda-forge  # for everything else
  - my-org
  - nodefaults
platforms:
  - linux-64
  - win-64
  - osx-arm64
dependencies:
  # core
  - numpy>=1.26  # numerics
  # the torch stack
  - python=3.12
  - pytorch=2.5.1
  - torchvision=0.20.1
  - torchaudio=2.5.1
  - pytorch-cuda=12.4  # [linux64]
  - pytorch-cuda=12.4  # [win64]
  - mkl<2024.1  # [linux64]
  - mkl<2024.1  # [win64]

  # GPU
  - mkl-service
  - pytorch-lightning
  - pip
  - pip:
      - einops  # tensors
      - -e .
  # end of list
# settings below
variables:
  OMP_NUM_THREADS: "4"
"""


def test_update_keeps_everything_but_the_torch_lines() -> None:
    plan = MULTI_PLANS["linux+win+osx"]
    assert render_environment(plan, name=None, existing=USER_FILE) == USER_FILE_UPDATED


def test_update_is_idempotent() -> None:
    plan = MULTI_PLANS["linux+win+osx"]
    assert render_environment(plan, name=None, existing=USER_FILE_UPDATED) == USER_FILE_UPDATED


@pytest.mark.parametrize(
    "plan", [make_plan(LINUX), *MULTI_PLANS.values()], ids=["single", *MULTI_PLANS]
)
def test_rewriting_a_generated_file_gives_the_same_bytes(plan: Plan) -> None:
    new = render_environment(plan, name=None, command=COMMAND)
    assert render_environment(plan, name=None, existing=new, command=COMMAND) == new


def test_update_replaces_our_header_command() -> None:
    old = render_environment(
        make_plan(LINUX), name=None, command="conda torch-env write --cuda 11.8"
    )
    new = render_environment(make_plan(LINUX), name=None, existing=old, command=COMMAND)
    assert new == render_environment(make_plan(LINUX), name=None, command=COMMAND)


def test_update_adds_no_header_to_a_users_file() -> None:
    text = render_environment(make_plan(LINUX), name=None, existing=USER_FILE, command=COMMAND)
    assert text.startswith("# My project's environment.\n")
    assert COMMAND not in text


def test_update_with_conda_lock_per_platform_specs(tmp_path: Path) -> None:
    """The updated user file (pip section included) still parses, with the plan's specs."""
    path = tmp_path / "environment.yml"
    path.write_text(USER_FILE_UPDATED)
    spec = conda_lock_specs(path, ["linux-64", "osx-arm64"])
    conda = {d.name for d in spec.dependencies["linux-64"] if d.manager == "conda"}
    assert conda == {"numpy", "python", "pytorch", "torchvision", "torchaudio", "pytorch-cuda",
                     "mkl", "mkl-service", "pytorch-lightning", "pip"}  # fmt: skip
    mac = {d.name for d in spec.dependencies["osx-arm64"] if d.manager == "conda"}
    assert "pytorch-cuda" not in mac and "mkl" not in mac
    assert "einops" in {d.name for d in spec.dependencies["linux-64"] if d.manager == "pip"}


@pytest.mark.parametrize(
    "line",
    [
        "pytorch",
        "pytorch=2.0.1",
        "pytorch==2.0.1=py3.10_cuda11.8_cudnn8.7.0_0",
        "pytorch >=2.0",
        "pytorch::pytorch=2.0.1",
        "conda-forge/linux-64::pytorch-gpu",
        "pytorch[version='>=2']",
        "PyTorch=2.0",
        "cudatoolkit=11.3",
        "pytorch-mutex=1.0=cuda",
        "cpuonly",
        "pytorch-cpu",
        "cuda-version=12.6",
        "mkl=2024.0",
        "python",
        "torchvision",
        "torchaudio=2.0.2",
    ],
)
def test_every_form_of_a_managed_line_is_replaced(line: str) -> None:
    existing = f"name: x\ndependencies:\n  - scipy\n  - {line}\n"
    text = render_environment(make_plan(LINUX), name=None, existing=existing)
    assert f"  - {line}\n" not in text.split("dependencies:")[1]
    assert text.endswith(
        "dependencies:\n  - scipy\n" + "".join(f"  - {s}\n" for s in COMMON + CUDA)
    )


@pytest.mark.parametrize(
    "line",
    ["mkl-service", "pytorch-lightning", "python_abi", "torchmetrics", "pythonnet", "libtorch"],
)
def test_lookalike_packages_are_left_alone(line: str) -> None:
    assert package_name(line) == line
    existing = f"name: x\ndependencies:\n  - {line}\n"
    assert f"  - {line}\n" in render_environment(make_plan(LINUX), name=None, existing=existing)


def test_plan_specs_go_to_the_top_when_the_file_has_no_torch_line() -> None:
    existing = "name: x\ndependencies:\n  - scipy  # sci\n"
    text = render_environment(make_plan(LINUX), name=None, existing=existing)
    assert text.endswith("".join(f"  - {s}\n" for s in COMMON + CUDA) + "  - scipy  # sci\n")


def test_keeps_the_users_sequence_indentation() -> None:
    existing = "name: x\nchannels:\n- conda-forge\ndependencies:\n- scipy\n- pytorch\n"
    text = render_environment(
        make_plan(LINUX, channels=("conda-forge",)), name=None, existing=existing
    )
    assert text == (
        "name: x\nchannels:\n- conda-forge\n- nodefaults\nplatforms:\n- linux-64\n"
        "dependencies:\n- scipy\n" + "".join(f"- {s}\n" for s in COMMON + CUDA)
    )


def test_flow_style_lists_become_block_lists_with_selectors(tmp_path: Path) -> None:
    existing = "name: x\nchannels: [conda-forge]\ndependencies: [scipy, pytorch]\n"
    plan = MULTI_PLANS["linux+osx"]
    path = tmp_path / "environment.yml"
    path.write_text(render_environment(plan, name=None, existing=existing))
    spec = conda_lock_specs(path, ["linux-64", "osx-arm64"])
    assert as_deps(("scipy", *LINUX.specs)) == sorted(
        (d.model_dump() for d in spec.dependencies["linux-64"]),
        key=lambda d: (d["name"], d["version"]),
    )


@pytest.mark.parametrize(
    ("existing", "channels"),
    [
        ("channels:\n  - pytorch\n  - nvidia\n  - conda-forge\n", ["conda-forge", "nodefaults"]),
        ("channels:\n  - defaults\n", ["conda-forge", "defaults"]),
        (
            "channels:\n  - https://conda.anaconda.org/conda-forge/\n  - bioconda\n",
            ["conda-forge", "bioconda", "nodefaults"],
        ),  # noqa: E501
        ("channels:\n  - nodefaults\n  - conda-forge\n", ["conda-forge", "nodefaults"]),
        ("name: x\n", ["conda-forge", "nodefaults"]),
    ],
    ids=[
        "pytorch-channels-dropped",
        "users-defaults-kept",
        "url-matches-name",
        "nodefaults-once",
        "no-channels-key",
    ],  # noqa: E501
)
def test_channels_update(existing: str, channels: list[str]) -> None:
    from ruamel.yaml import YAML

    plan = make_plan(LINUX, channels=("conda-forge",))
    text = render_environment(plan, name=None, existing=existing + "dependencies:\n  - scipy\n")
    assert YAML(typ="safe").load(text)["channels"] == channels


@pytest.mark.parametrize(
    ("existing", "name", "expected"),
    [
        ("name: mine\ndependencies: []\n", None, "mine"),
        ("name: mine\ndependencies: []\n", "new", "new"),
        ("dependencies: []\n", "new", "new"),
        ("dependencies: []\n", None, None),
    ],
    ids=["kept", "replaced", "added", "still-absent"],
)
def test_name_is_kept_unless_given(existing: str, name: str | None, expected: str | None) -> None:
    from ruamel.yaml import YAML

    text = render_environment(make_plan(LINUX), name=name, existing=existing)
    assert YAML(typ="safe").load(text).get("name") == expected
    if expected and "name" not in existing:
        assert text.startswith(f"name: {expected}\n")


def test_stale_selector_comment_does_not_survive_on_a_plain_line() -> None:
    existing = "dependencies:\n  - pytorch=2.5.1  # [linux64]\n  - python=3.12  # pinned for CI\n"
    text = render_environment(make_plan(cpu_platform("linux-64")), name=None, existing=existing)
    assert "  - pytorch=2.5.1\n" in text
    assert "  - python=3.12  # pinned for CI\n" in text


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "line"),
    [
        ("name: x\ndependencies:\n  - numpy\n - scipy\n", 4),
        ("name: x\nchannels: [conda-forge\ndependencies:\n  - numpy\n", 3),
        ("name: x\ndependencies:\n\t- numpy\n", 3),
        ("name: x\nname: y\ndependencies: []\n", 2),
        ("name: 'x\n", 2),
    ],
    ids=["bad-indent", "unclosed-flow", "tab", "duplicate-key", "unclosed-quote"],
)
def test_malformed_yaml_names_file_and_line(existing: str, line: int) -> None:
    with pytest.raises(EnvFileError) as error:
        render_environment(
            make_plan(LINUX), name=None, existing=existing, source="env/environment.yml"
        )
    assert error.value.message.startswith("env/environment.yml is not valid YAML")
    assert f"line {line}," in error.value.message


@pytest.mark.parametrize(
    ("existing", "fragment"),
    [
        ("- a\n- b\n", "top level is not a mapping"),
        ("name: x\ndependencies: numpy\n", "dependencies: at line 2 is not a list"),
        ("channels:\n  a: b\ndependencies: []\n", "channels: at line 1 is not a list"),
    ],
    ids=["list-at-top", "dependencies-scalar", "channels-mapping"],
)
def test_wrong_shapes_are_errors(existing: str, fragment: str) -> None:
    with pytest.raises(EnvFileError, match=fragment):
        render_environment(make_plan(LINUX), name=None, existing=existing)


# --- virtual-packages.yml -------------------------------------------------------------


def test_virtual_packages_pass_conda_lock_validation(tmp_path: Path) -> None:
    import json

    from conda_lock.virtual_package import virtual_package_repo_from_specification

    path = tmp_path / "virtual-packages.yml"
    path.write_text(render_virtual_packages(MULTI_PLANS["linux+win+osx"], command=COMMAND))
    repo = virtual_package_repo_from_specification(path)

    def packages(subdir: str) -> dict[str, str]:
        data = json.loads((repo.base_path / subdir / "repodata.json").read_text())
        return {p["name"]: p["version"] for p in data["packages"].values()}

    assert packages("linux-64") == {
        "__unix": "0", "__linux": "5.10", "__glibc": "2.17", "__archspec": "1", "__cuda": "12.4",
    }  # fmt: skip
    assert packages("win-64") == {"__win": "0", "__archspec": "1", "__cuda": "12.4"}
    assert packages("osx-arm64") == {"__unix": "0", "__osx": "11.0", "__archspec": "1"}


def test_virtual_packages_text() -> None:
    text = render_virtual_packages(make_plan(LINUX), command=COMMAND)
    assert text.endswith(
        "subdirs:\n  linux-64:\n    packages:\n"
        '      __unix: "0"\n      __linux: "5.10"\n      __glibc: "2.17"\n'
        '      __archspec: "1 x86_64"\n      __cuda: "12.4"\n'
    )
    assert f"#   {COMMAND}\n" in text
    assert "conda torch-env lock" in text


def test_virtual_package_names_must_start_with_underscores() -> None:
    plan = make_plan(PlatformPlan("linux-64", "cuda", "12.4", COMMON, {"cuda": "12.4"}))
    with pytest.raises(EnvFileError, match="not a virtual package"):
        render_virtual_packages(plan)


# --- writing --------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes | str]:
    return {
        p.name: os.readlink(p) if p.is_symlink() else p.read_bytes()
        for p in sorted(folder.iterdir())
    }


def test_write_creates_both_files(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    result = write_environment(make_plan(LINUX), path, command=COMMAND)
    assert result.written and result.changed and not result.updated
    assert path.read_text() == result.environment_yml
    assert (tmp_path / "virtual-packages.yml").read_text() == result.virtual_packages_yml
    assert sorted(snapshot(tmp_path)) == ["environment.yml", "virtual-packages.yml"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text(USER_FILE)
    before = snapshot(tmp_path)
    result = write_environment(MULTI_PLANS["linux+win+osx"], tmp_path / "environment.yml",
                               command=COMMAND, dry_run=True)  # fmt: skip
    assert snapshot(tmp_path) == before
    assert not result.written and result.changed and result.updated
    assert result.environment_yml == USER_FILE_UPDATED


def test_second_write_changes_nothing_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    write_environment(make_plan(LINUX), path, command=COMMAND)
    inodes = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    result = write_environment(make_plan(LINUX), path, command=COMMAND)
    assert not result.changed
    assert {p.name: p.stat().st_ino for p in tmp_path.iterdir()} == inodes


def unwritable(path: Path) -> None:
    """Make ``path`` a link into a folder that does not exist: reading finds no file,
    writing fails (works as root too, unlike a read-only folder)."""
    path.symlink_to(path.parent / "missing-folder" / path.name)


def test_failed_second_file_puts_the_first_back(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(USER_FILE)
    unwritable(tmp_path / "virtual-packages.yml")
    before = snapshot(tmp_path)
    with pytest.raises(EnvFileError, match="cannot write .*virtual-packages.yml"):
        write_environment(MULTI_PLANS["linux+win+osx"], path, command=COMMAND)
    assert snapshot(tmp_path) == before


def test_failed_second_file_removes_a_new_first_file(tmp_path: Path) -> None:
    unwritable(tmp_path / "virtual-packages.yml")
    with pytest.raises(EnvFileError):
        write_environment(make_plan(LINUX), tmp_path / "environment.yml", command=COMMAND)
    assert [p.name for p in tmp_path.iterdir()] == ["virtual-packages.yml"]


def test_failed_first_file_writes_neither(tmp_path: Path) -> None:
    unwritable(tmp_path / "environment.yml")
    with pytest.raises(EnvFileError, match="cannot write .*environment.yml"):
        write_environment(make_plan(LINUX), tmp_path / "environment.yml", command=COMMAND)
    assert [p.name for p in tmp_path.iterdir()] == ["environment.yml"]


def test_malformed_existing_file_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("name: x\ndependencies:\n  - numpy\n - scipy\n")
    (tmp_path / "virtual-packages.yml").write_text("subdirs: {}\n")
    before = snapshot(tmp_path)
    with pytest.raises(EnvFileError, match=r"environment.yml is not valid YAML at line 4"):
        write_environment(make_plan(LINUX), path, command=COMMAND)
    assert snapshot(tmp_path) == before


def test_write_keeps_mode_crlf_and_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.yml"
    real.write_bytes(b"name: x\r\ndependencies:\r\n  - scipy\r\n")
    real.chmod(0o640)
    link = tmp_path / "environment.yml"
    link.symlink_to(real.name)
    write_environment(make_plan(LINUX), link, command=COMMAND)
    assert link.is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    data = real.read_bytes()
    assert b"  - pytorch=2.5.1\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="does not exist"):
        write_environment(make_plan(LINUX), tmp_path / "nope" / "environment.yml", command=COMMAND)


def test_pip_torch_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n  - pip\n  - pip:\n      - torch==2.3.0\n")
    result = write_environment(make_plan(LINUX), path, command=COMMAND)
    assert any("pip: section installs torch" in w for w in result.warnings)


def test_a_pip_section_is_kept_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n  - pip\n  - pip:\n      - requests\n")
    result = write_environment(make_plan(LINUX), path, command=COMMAND)
    assert "      - requests" in path.read_text()
    assert result.warnings == ()  # lock locks it
    plain = tmp_path / "plain.yml"
    plain.write_text("dependencies:\n  - numpy\n")
    assert write_environment(make_plan(LINUX), plain, command=COMMAND).warnings == ()


# --- atomic_write_text ----------------------------------------------------------------


def test_atomic_write_new_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "f.txt", "a\r\nb")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").read_bytes() == b"a\r\nb"
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o640


def test_atomic_write_failure_leaves_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "caf\xe9", encoding="ascii")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
