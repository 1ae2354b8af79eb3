"""environment.yml and virtual-packages.yml reading, checked against conda-lock and conda."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.conda_lock_reference import conda_lock_dependencies
from support.shared_data import REAL_PYTORCH_REPODATA, needs_real_repodata

from conda_torch_plugin.condalock.envspec import (
    DEFAULT_PLATFORMS,
    KNOWN_PLATFORMS,
    default_virtual_packages,
    dependency_version_spec,
    parse_match_spec,
    parse_pip_requirement,
    read_environment,
    read_virtual_packages,
)
from conda_torch_plugin.errors import EnvFileError

# Match specs conda's MatchSpec must read exactly as we do (name, version, build, channel),
# or reject as we do.
MATCH_SPECS = [
    "pytorch",
    "pytorch=2.13.0=cuda*",
    "pytorch==2.1.0",
    "python=3.10",
    "python=3.10.*",
    "python 3.10.*",
    "python >=3.9,<3.12",
    "python>=3.9,<3.12",
    "mkl<2024.1",
    "pytorch::pytorch",
    "pytorch::pytorch=2.5.1",
    "conda-forge/label/dev::numpy",
    "conda-forge/linux-64::numpy",
    "https://conda.anaconda.org/pytorch::pytorch",
    "https://conda.anaconda.org/pytorch/linux-64::pytorch",
    "https://conda.anaconda.org/conda-forge/label/dev::pytorch",
    "file:///tmp/ch::pytorch",
    "file:///tmp/ch/linux-64::pytorch",
    "https://mirror.example.com/conda/pytorch::pytorch",
    "https://mirror.example.com/a/b::pytorch",
    "https://mirror.example.com::pytorch",
    "http://localhost:8000/ch::pytorch",
    "https://user:pw@mirror.example.com/t/abc/pytorch::pytorch",
    "https://repo.anaconda.com/pkgs/main::numpy",
    "defaults::numpy",
    "pkgs/main::numpy",
    "pkgs/r::numpy",
    "pkgs/free::numpy",
    "local::numpy",
    "numpy[version='>=1.2', build=py*]",
    'numpy[version=">=1.2"]',
    "numpy[channel=pytorch]",
    "numpy[channel=conda-forge/linux-64]",
    "numpy[subdir=linux-64]",
    "numpy[md5=abc]",
    "numpy[foo=bar]",
    "numpy[version=]",
    "numpy 1.2*",
    "numpy 1.2.* py39*",
    "numpy=1.2=py39_0",
    "numpy >=1.0 , < 2.0 py34_0",
    "numpy 1.0|1.2",
    "numpy (1.0|1.2),>0.5",
    "numpy 1.0,1.1|1.2",
    "numpy >=1.0,(<2|>3)",
    "numpy >=1.0.*",
    "numpy ~=1.2.*",
    "numpy !=1.2.*",
    "NumPy",
    "num*py",
    "numpy=1.11",
    "numpy==1.11.*",
    "blas=*=mkl",
    "blas * mkl",
    "numpy=",
    "numpy==",
    "numpy>=",
    "numpy= ",
    "pytorch[build=*cuda*]",
    "pytorch=2.1.0[build=*cuda*]",
    "numpy ~=1.2",
    "pytorch-cuda=12.1",
    "python=3.10 # comment",
    "numpy 1.2 if foo",
    "numpy 1.0 (optional)",
    "numpy >=1.0,<2.0,",
    "numpy 1..2",
    "numpy 1.2-3",
    "numpy 1.2-3_4",
    "numpy 1!2.0",
    "numpy 1!!2.0",
    "numpy a!2.0",
    "numpy 1.0+local",
    "numpy 1.0+a+b",
    "numpy +1.0",
    "numpy 1.0_",
    "numpy ^1\\.0.*$",
    "numpy ^1.0",
    "numpy 1.0$",
    "numpy 1.0@abc",
    "numpy =1.2",
    "numpy 1.2.3 0",
    "numpy * openblas_0",
    "numpy >1.8,<2|==1.7",
    "numpy=1.2|1.3",
    "numpy==1.2=py",
    "numpy 1.2 ^py(.*$",
    "__glibc >=2.17,<3.0.a0",
    "python >=3.12,<3.13.0a0",
    "pytorch-mutex 1.0 cuda",
    "pytorch-mutex ==1.0 cuda",
    "numpy  >=1.0",
]


@pytest.mark.parametrize("spec", MATCH_SPECS, ids=MATCH_SPECS)
def test_match_spec_reads_as_conda_does(spec: str) -> None:
    from conda_lock.src_parser.conda_common import conda_spec_to_versioned_dep

    try:
        dep = conda_spec_to_versioned_dep(spec, "main")
        expected: object = (dep.name, dep.version, dep.build, dep.conda_channel)
    except Exception:
        expected = "rejected"
    try:
        fields = parse_match_spec(spec)
        ours: object = (fields.name, fields.version or "", fields.build, fields.channel)
    except ValueError:
        ours = "rejected"
    assert ours == expected


@pytest.mark.parametrize(
    "spec",
    ["numpy@", "numpy-1.0-py_0.tar.bz2", "https://x/linux-64/a-1-0.conda", ""],
    ids=["feature", "tarball", "conda-url", "empty"],
)
def test_match_spec_forms_we_refuse(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_match_spec(spec)


PIP_REQUIREMENTS = [
    "requests",
    "requests>=2.0,<3",
    "requests >= 2.0 , < 3",
    "requests>=2,>=2",
    "Foo_Bar.baz[x,a]==1.0",
    "Foo_Bar[x]==1.0 --hash=sha256:abc",
    "tqdm ; sys_platform == 'win32'",
    "tqdm>4; os_name != \"nt\" and platform_system == 'Linux'",
    "pkg===1.0",
    "pkg~=1.4",
    "pkg (>=1.0)",
    "pkg @ https://example.com/pkg-1.0.tar.gz#sha256=abcd",
    "pkg @ https://example.com/pkg-1.0.tar.gz",
    "pkg[extra] @ https://example.com/pkg-1.0.tar.gz",
    "git+https://github.com/org/repo.git@v1.0",
    "pkg @ git+https://github.com/org/repo.git@v1.0#subdirectory=src",
    "https://example.com/repo.git",
]


@pytest.mark.parametrize("requirement", PIP_REQUIREMENTS, ids=PIP_REQUIREMENTS)
def test_pip_requirement_reads_as_conda_lock_does(requirement: str, tmp_path: Path) -> None:
    from conda_lock.src_parser.pyproject_toml import parse_python_requirement

    mapping = tmp_path / "mapping.json"
    mapping.write_text("{}")
    theirs = parse_python_requirement(requirement, manager="pip", mapping_url=str(mapping))
    assert parse_pip_requirement(requirement).to_conda_lock() == theirs.model_dump()


@pytest.mark.parametrize(
    "requirement",
    [
        "pkg @ /local/path",
        "pkg @ file:///local/path",
        "--index-url x",
        "pkg >= ",
        "pkg ; sys_platform ==",
    ],
    ids=["path", "file-url", "option", "dangling-operator", "bad-marker"],
)
def test_pip_requirements_we_refuse(requirement: str) -> None:
    with pytest.raises(ValueError):
        parse_pip_requirement(requirement)


ENV = """\
name: torch
channels:
  - pytorch
  - nvidia
  - conda-forge
  - nodefaults
platforms:
  - linux-64
  - win-64
  - osx-arm64
dependencies:
  # the interpreter
  - python=3.11
  - pytorch=2.1.0=*cuda*  # [linux]
  - pytorch::pytorch=2.1.0  # [osx]
  - pytorch-cuda=12.1  # [linux64]
  - pytorch-cuda=12.1  # [win]
  - mkl<2024.1
  - pip:
    - requests>=2 ; sys_platform != 'win32'
    - tqdm
    - -e ./local
"""


def write(tmp_path: Path, text: str, name: str = "environment.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_selectors_markers_and_channels(tmp_path: Path) -> None:
    spec = read_environment(write(tmp_path, ENV))
    assert spec.name == "torch"
    assert spec.channels == ("pytorch", "nvidia", "conda-forge")
    assert spec.platforms == ("linux-64", "win-64", "osx-arm64")
    assert spec.dependencies == {
        "linux-64": (
            "python=3.11",
            "pytorch=2.1.0=*cuda*",
            "pytorch-cuda=12.1",
            "mkl<2024.1",
            "pip",
        ),
        "win-64": ("python=3.11", "pytorch-cuda=12.1", "mkl<2024.1", "pip"),
        "osx-arm64": ("python=3.11", "pytorch::pytorch=2.1.0", "mkl<2024.1", "pip"),
    }
    assert spec.pip == {
        "linux-64": ("requests>=2 ; sys_platform != 'win32'", "tqdm"),
        "win-64": ("tqdm",),
        "osx-arm64": ("requests>=2 ; sys_platform != 'win32'", "tqdm"),
    }
    assert spec.skipped == ("-e ./local",)


def test_pip_listed_by_the_user_is_not_added_again(tmp_path: Path) -> None:
    text = "channels: [conda-forge]\ndependencies:\n  - pip=24\n  - pip:\n    - tqdm\n"
    spec = read_environment(write(tmp_path, text), ["linux-64"])
    assert spec.dependencies == {"linux-64": ("pip=24",)}


@pytest.mark.parametrize(
    ("text", "platforms", "expected"),
    [
        ("dependencies: [python]\n", None, DEFAULT_PLATFORMS),
        ("platforms: [osx-64]\ndependencies: [python]\n", None, ("osx-64",)),
        (
            "platforms: [osx-64]\ndependencies: [python]\n",
            ["win-64", "linux-64", "win-64"],
            ("win-64", "linux-64"),
        ),
    ],
    ids=["default", "from-file", "given-wins-deduplicated"],
)
def test_lock_platforms(
    tmp_path: Path, text: str, platforms: list[str] | None, expected: tuple
) -> None:
    spec = read_environment(write(tmp_path, text), platforms)
    assert spec.lock_platforms == expected


# (file text, platforms, what the message must say)
BAD_FILES = [
    ("dependencies:\n  - python\n - numpy\n", None, ["line 3", "column", "malformed YAML"]),
    ("name: x\nchannels: [a\n", None, ["line 2, column 11", "malformed YAML"]),
    ("name: x\nchannels: [conda-forge]\n", None, ["no `dependencies`"]),
    ("- python\n", None, ["top level must be a mapping"]),
    (
        "platforms: [linux-64, win-32]\ndependencies: [python]\n",
        None,
        ["line 1", "unknown platform 'win-32'", "osx-arm64"],
    ),
    ("dependencies: [python]\n", ["linux-armv7l"], ["unknown platform 'linux-armv7l'", "linux-64"]),
    ("dependencies:\n  - python  # [linux]\n  - numpy>=>1\n", ["win-64"], ["line 3", "numpy>=>1"]),
    (
        "name: x\nsolver: libmamba\ndependencies: [python]\n",
        None,
        ["line 2", "unsupported key 'solver'"],
    ),
    ("dependencies:\n  - python  # [linux or win]\n", None, ["line 2", "[linux or win]", "one of"]),
    ("dependencies:\n  - python  # pinned [see docs]\n", None, ["line 2", "[see docs]"]),
    ("dependencies:\n  - python\n  - 3.11\n", None, ["line 3", "not a string"]),
    ("dependencies:\n  - python\n  - conda: [x]\n", None, ["line 3", "'conda'"]),
    ("dependencies:\n  - pip:\n      requests\n", None, ["line 2", "must be a list"]),
    ("dependencies:\n  - pip:\n    - requests >=\n", None, ["line 3", "bad pip requirement"]),
    (
        "dependencies:\n  - python  # [linux]\n",
        ["win-64"],
        ["`dependencies` is empty for win-64", "selectors"],
    ),
    (
        "channels: conda-forge\ndependencies: [python]\n",
        None,
        ["line 1", "`channels` must be a list"],
    ),
    ("dependencies: [python]\ndependencies: [numpy]\n", None, ["line 2", "malformed YAML"]),
]


@pytest.mark.parametrize(
    ("text", "platforms", "needles"),
    BAD_FILES,
    ids=[
        "indentation",
        "unclosed-flow",
        "no-dependencies",
        "not-a-mapping",
        "unknown-platform-in-file",
        "unknown-platform-given",
        "bad-spec-after-selector",
        "unsupported-key",
        "compound-selector",
        "comment-looks-like-selector",
        "number-spec",
        "unknown-section",
        "pip-not-list",
        "bad-pip-requirement",
        "empty-after-selectors",
        "channels-not-list",
        "duplicate-key",
    ],
)
def test_bad_environment_files(
    tmp_path: Path, text: str, platforms: list[str] | None, needles: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(EnvFileError) as info:
        read_environment(path, platforms)
    message = str(info.value) + " ".join(info.value.hints)
    assert str(path) in str(info.value) or platforms
    for needle in needles:
        assert needle in message


def test_missing_environment_file(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="does not exist"):
        read_environment(tmp_path / "environment.yml")


VP = """\
subdirs:
  linux-64:
    packages:
      __glibc: "2.28"
      __cuda: "12.4"
      __archspec: "1 x86_64"
  win-64:
    packages:
      __cuda: "12.1"
"""


def test_virtual_packages(tmp_path: Path) -> None:
    vps = read_virtual_packages(write(tmp_path, VP, "virtual-packages.yml"))
    assert vps.for_platform("linux-64") == {
        "__glibc": "2.28",
        "__cuda": "12.4",
        "__archspec": "1 x86_64",
    }
    assert vps.for_platform("win-64") == {"__cuda": "12.1"}
    assert vps.for_platform("osx-arm64") == {}
    archspec = vps.packages_for("linux-64")[2]
    assert (archspec.name, archspec.version, archspec.build_string) == ("__archspec", "1", "x86_64")


def test_default_virtual_packages_are_conda_locks() -> None:
    import conda_lock
    import yaml

    path = Path(conda_lock.__file__).parent / "default-virtual-packages.yaml"
    expected = {
        subdir: body["packages"]
        for subdir, body in yaml.safe_load(path.read_text())["subdirs"].items()
    }
    defaults = default_virtual_packages()
    assert {subdir: defaults.for_platform(subdir) for subdir in defaults.subdirs} == expected


BAD_VPS = [
    (
        "subdirs:\n  linux-64:\n    packages:\n      __cuda: 12.4\n",
        ["line 4", "must be a string", '"12.4"'],
    ),
    (
        "subdirs:\n  linux-64:\n    packages:\n      cuda: '12.4'\n",
        ["line 4", "not a virtual package"],
    ),
    ("subdirs:\n  linux-65:\n    packages: {}\n", ["line 2", "unknown platform"]),
    ("subdirs:\n  linux-64: {}\n", ["line 2", "`packages:`"]),
    ("linux-64:\n  __cuda: '12.4'\n", ["`subdirs:`"]),
    ("subdirs:\n  linux-64:\n  packages: {__cuda: '1'\n", ["malformed YAML", "line"]),
]


@pytest.mark.parametrize(
    ("text", "needles"),
    BAD_VPS,
    ids=[
        "number-version",
        "not-virtual",
        "unknown-subdir",
        "no-packages",
        "no-subdirs",
        "malformed",
    ],
)
def test_bad_virtual_package_files(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = write(tmp_path, text, "virtual-packages.yml")
    with pytest.raises(EnvFileError) as info:
        read_virtual_packages(path)
    message = str(info.value) + " ".join(info.value.hints)
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    "depends",
    [
        [
            "python >=3.12,<3.13.0a0",
            "pytorch-mutex 1.0 cuda",
            "blas * mkl",
            "filelock",
            "mkl >=2018",
        ],
        ["numpy >=1.21", "numpy <2"],
        ["__glibc >=2.17,<3.0.a0", "libgcc-ng >=12"],
        ["pytorch-mutex ==1.0 cuda", "cuda-version >=12.4,<12.5.0a0"],
    ],
    ids=["pytorch-like", "merged-name", "virtual", "canonical-form"],
)
def test_dependency_dict_as_conda_lock_builds_it(depends: list[str]) -> None:
    assert dependency_version_spec(depends) == conda_lock_dependencies(depends)


@needs_real_repodata
def test_dependency_dicts_of_real_pytorch_channel_records() -> None:
    records = json.loads(REAL_PYTORCH_REPODATA.read_text())["packages"].values()
    chosen = [
        r for r in records if r["name"] in {"pytorch", "torchvision", "torchaudio", "pytorch-cuda"}
    ]
    assert len(chosen) > 300
    for record in chosen:
        assert dependency_version_spec(record["depends"]) == conda_lock_dependencies(
            record["depends"]
        ), record


def test_known_platforms_are_the_selector_table() -> None:
    from conda_lock.src_parser.selectors import filter_platform_selectors

    for platform in KNOWN_PLATFORMS:
        list(filter_platform_selectors("  - x  # [linux]\n", platform))  # no KeyError
