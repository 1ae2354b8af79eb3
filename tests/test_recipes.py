"""recipes/: every file loads and validates, a broken row is named, the data matches the facts."""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.shared_data import real_pytorch_repodata

from conda_torch_plugin import compat
from conda_torch_plugin.errors import RecipeError
from conda_torch_plugin.recipes import Recipes, load_recipes, load_recipes_from, recipes_dir

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"


@pytest.fixture(scope="module")
def recipes() -> Recipes:
    return load_recipes()


def test_every_recipe_file_loads_and_validates() -> None:
    files = sorted(p.name for p in RECIPES.glob("*.json"))
    assert files == [
        "conda-forge.json",
        "cuda-drivers.json",
        "pypi-names.json",
        "pytorch-channel.json",
        "sources.json",
    ]
    loaded = load_recipes_from(RECIPES)
    schemas = {json.loads((RECIPES / f).read_text())["schema"] for f in files}
    assert schemas == {"sources/1", "cuda-drivers/1", "releases/1", "pypi-names/1"}
    cited = {k for r in loaded.releases for k in r.source}
    cited |= {k for r in loaded.releases for v in r.cuda_variants for k in v.source}
    cited |= {k for row in loaded.drivers for k in row.source}
    cited |= {k for g in loaded.guards for k in g.source}
    assert cited <= set(loaded.sources)
    assert all(r.source for r in loaded.releases)
    # The cached loader sees the same data from wherever the package finds it.
    assert load_recipes() == loaded
    assert recipes_dir().joinpath("sources.json").is_file()


# -- broken files are rejected with the file and the row named ----------------------


def _release(doc: dict[str, Any], version: str) -> dict[str, Any]:
    return next(r for r in doc["releases"] if r["pytorch"] == version)


def _bad_cuda(doc: dict[str, Any]) -> None:
    _release(doc, "2.1.0")["cuda"][1]["cuda"] = "12.x"


def _undefined_source(doc: dict[str, Any]) -> None:
    _release(doc, "2.13.0")["source"].append("S99")


def _unknown_arch_list(doc: dict[str, Any]) -> None:
    _release(doc, "2.4.1")["cuda"][0]["archs"]["linux-64"] = "linux-cu99"


def _missing_python(doc: dict[str, Any]) -> None:
    del _release(doc, "1.13.1")["python"]


def _duplicate_release(doc: dict[str, Any]) -> None:
    doc["releases"].append(dict(_release(doc, "2.5.1")))


def _bad_sass(doc: dict[str, Any]) -> None:
    doc["arch_lists"]["cf-cu130-sm75-sm120ptx"]["sass"].append("sm_120")


def _bad_driver(doc: dict[str, Any]) -> None:
    next(r for r in doc["toolkit"] if r["cuda"] == "12.4")["linux"] = "550.x"


def _bad_platform(doc: dict[str, Any]) -> None:
    _release(doc, "2.2.2")["cpu_platforms"].append("linux-sparc")


CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("pytorch-channel.json", _bad_cuda, ["pytorch-channel.json", "pytorch 2.1.0", "'12.x'"]),
    (
        "conda-forge.json",
        _undefined_source,
        ["conda-forge.json", "pytorch 2.13.0", "S99", "not defined"],
    ),
    ("pytorch-channel.json", _unknown_arch_list, ["pytorch 2.4.1", "cuda[0] (11.8)", "linux-cu99"]),
    ("pytorch-channel.json", _missing_python, ["pytorch 1.13.1", "required key 'python'"]),
    ("pytorch-channel.json", _duplicate_release, ["pytorch 2.5.1", "repeats that release"]),
    ("conda-forge.json", _bad_sass, ["arch_lists['cf-cu130-sm75-sm120ptx']", "'sm_120'"]),
    ("cuda-drivers.json", _bad_driver, ["cuda-drivers.json", "toolkit[14] (CUDA 12.4)", "'550.x'"]),
    ("pytorch-channel.json", _bad_platform, ["pytorch 2.2.2", "linux-sparc"]),
]


@pytest.mark.parametrize(
    ("file", "breaks", "in_message"), CASES, ids=[c[1].__name__.strip("_") for c in CASES]
)
def test_a_broken_row_is_rejected_by_name(
    tmp_path: Path, file: str, breaks: Callable[[dict[str, Any]], None], in_message: list[str]
) -> None:
    shutil.copytree(RECIPES, tmp_path / "recipes")
    path = tmp_path / "recipes" / file
    doc = json.loads(path.read_text())
    breaks(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(RecipeError) as caught:
        load_recipes_from(tmp_path / "recipes")
    for text in in_message:
        assert text in caught.value.message
    assert caught.value.hints
    assert caught.value.file == file  # typed fields: which file, which row
    assert caught.value.where and caught.value.where in caught.value.message


def test_a_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    shutil.copytree(RECIPES, tmp_path / "recipes")
    (tmp_path / "recipes" / "conda-forge.json").write_text('{"schema": "releases/1", ')
    with pytest.raises(RecipeError, match=r"recipes/conda-forge\.json: the file is not valid JSON"):
        load_recipes_from(tmp_path / "recipes")


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipes_from(tmp_path / "nowhere")


# -- spot checks against the facts ----------------------------------------------------


@pytest.mark.parametrize(
    ("pytorch", "torchvision", "torchaudio", "python", "cuda"),
    [
        ("1.13.0", "0.14.0", "0.13.0", "3.7-3.10", ("11.6", "11.7")),
        ("1.13.1", "0.14.1", "0.13.1", "3.7-3.10", ("11.6", "11.7")),
        # conda pairs 2.0.0 with torchvision 0.15.0 / torchaudio 2.0.0 (pip: 0.15.1 / 2.0.1).
        ("2.0.0", "0.15.0", "2.0.0", "3.8-3.10", ("11.7", "11.8")),
        ("2.0.1", "0.15.2", "2.0.2", "3.8-3.11", ("11.7", "11.8")),
        ("2.1.0", "0.16.0", "2.1.0", "3.8-3.11", ("11.8", "12.1")),
        ("2.2.2", "0.17.2", "2.2.2", "3.8-3.12", ("11.8", "12.1")),
        ("2.3.1", "0.18.1", "2.3.1", "3.8-3.12", ("11.8", "12.1")),
        ("2.4.0", "0.19.0", "2.4.0", "3.8-3.12", ("11.8", "12.1", "12.4")),
        ("2.5.1", "0.20.1", "2.5.1", "3.9-3.12", ("11.8", "12.1", "12.4")),
    ],
    ids=["1.13.0", "1.13.1", "2.0.0", "2.0.1", "2.1.0", "2.2.2", "2.3.1", "2.4.0", "2.5.1"],
)
def test_pytorch_channel_facts(
    recipes: Recipes,
    pytorch: str,
    torchvision: str,
    torchaudio: str,
    python: str,
    cuda: tuple[str, ...],
) -> None:
    release = recipes.release("pytorch", pytorch)
    assert release is not None
    assert (release.torchvision, release.torchaudio) == (torchvision, torchaudio)
    assert f"{release.python[0]}-{release.python[-1]}" == python
    assert tuple(v.cuda for v in release.cuda_variants) == cuda
    for variant in release.cuda_variants:
        assert variant.platforms == ("linux-64", "win-64")
    # Intel macOS (osx-64) builds end with 2.2.2.
    macs = ("osx-64", "osx-arm64") if compat.version_tuple(pytorch) <= (2, 2, 2) else ("osx-arm64",)
    assert release.cpu_platforms == ("linux-64", "win-64", *macs)


def test_pytorch_channel_covers_every_release_to_2_5_1(recipes: Recipes) -> None:
    versions = [r.pytorch for r in recipes.releases_for("pytorch")]
    assert versions == [
        "2.5.1",
        "2.5.0",
        "2.4.1",
        "2.4.0",
        "2.3.1",
        "2.3.0",
        "2.2.2",
        "2.2.1",
        "2.2.0",
        "2.1.2",
        "2.1.1",
        "2.1.0",
        "2.0.1",
        "2.0.0",
        "1.13.1",
        "1.13.0",
    ]


@pytest.mark.parametrize(
    ("pytorch", "cuda", "platform", "sass", "ptx"),
    [
        ("1.13.1", "11.7", "linux-64", "3.7 5.0 6.0 6.1 7.0 7.5 8.0 8.6", "3.7"),
        ("2.0.1", "11.8", "win-64", "3.7 5.0 6.0 6.1 7.0 7.5 8.0 8.6 9.0", "3.7"),
        ("2.3.1", "12.1", "linux-64", "5.0 6.0 6.1 7.0 7.5 8.0 8.6 9.0", ""),
        ("2.5.1", "12.4", "linux-64", "5.0 6.0 6.1 7.0 7.5 8.0 8.6 9.0 9.0a", ""),
        ("2.5.1", "12.4", "win-64", "5.0 6.0 6.1 7.0 7.5 8.0 8.6 9.0", ""),
        ("2.5.1", "11.8", "linux-64", "3.7 5.0 6.0 6.1 7.0 7.5 8.0 8.6 9.0", "3.7"),
        ("2.13.0", "12.9", "linux-64", "5.0 6.0 7.0 7.5 8.0 8.6 9.0 10.0 12.0", "12.0"),
        ("2.13.0", "13.0", "linux-64", "7.5 8.0 8.6 9.0 10.0 11.0 12.0", "12.0"),
        ("2.13.0", "13.0", "linux-aarch64", "7.5 8.0 8.6 8.7 9.0 10.0 11.0 12.0", "12.0"),
        ("2.7.0", "12.6", "linux-64", "5.0 6.0 6.1 7.0 7.5 8.0 8.6 8.9 9.0", "9.0"),
    ],
    ids=[
        "1.13-cu117",
        "2.0-cu118-win",
        "2.3-cu121",
        "2.5-cu124-90a",
        "2.5-cu124-win",
        "2.5-cu118",
        "cf-2.13-cu129",
        "cf-2.13-cu130",
        "cf-2.13-cu130-aarch64",
        "cf-2.7.0-cu126",
    ],
)
def test_arch_lists(
    recipes: Recipes, pytorch: str, cuda: str, platform: str, sass: str, ptx: str
) -> None:
    channel = "conda-forge" if pytorch in ("2.13.0", "2.7.0") else "pytorch"
    archs = recipes.arch_list(channel, pytorch, cuda, platform)
    assert archs is not None
    assert archs.sass == tuple(sass.split())
    assert archs.ptx == tuple(ptx.split())
    assert archs.source


@pytest.mark.parametrize(
    ("cuda", "linux", "windows"),
    [
        ("11.0", "450.51.05", "451.48"),
        ("11.8", "520.61.05", "520.06"),
        ("12.0", "525.60.13", "527.41"),
        ("12.4", "550.54.14", "551.61"),
        ("12.6", "560.28.03", "560.76"),
        ("12.8", "570.26", "570.65"),
        ("12.9", "575.51.03", "576.02"),
        ("13.0", "580.65.06", None),
        ("12.7", None, None),  # there is no CUDA 12.7
    ],
    ids=str,
)
def test_driver_minimums(
    recipes: Recipes, cuda: str, linux: str | None, windows: str | None
) -> None:
    assert recipes.min_driver(cuda, "linux-64") == linux
    assert recipes.min_driver(cuda, "win-64") == windows
    assert recipes.min_driver(cuda, "osx-arm64") is None


def test_minor_version_compatibility_minimums(recipes: Recipes) -> None:
    assert [
        (m, recipes.minor_compat_driver(m, "linux-64"), recipes.minor_compat_driver(m, "win-64"))
        for m in (11, 12, 13)
    ] == [(11, "450.80.02", "452.39"), (12, "525.60.13", "528.33"), (13, "580", "580")]
    assert recipes.minor_compat_driver(10, "linux-64") is None


@pytest.mark.parametrize(
    ("driver", "platform", "cuda"),
    [
        ("550.54.15", "linux-64", "12.4"),
        ("535.104.05", "linux-64", "12.2"),
        ("580.65.06", "linux-64", "13.0"),
        ("576.02", "win-64", "12.9"),
        ("470.82.01", "linux-64", "11.4"),
        ("390.1", "linux-64", None),
    ],
    ids=str,
)
def test_max_cuda_for_driver(
    recipes: Recipes, driver: str, platform: str, cuda: str | None
) -> None:
    assert recipes.max_cuda_for_driver(driver, platform) == cuda


def test_conda_forge_releases_and_variants(recipes: Recipes) -> None:
    releases = {r.pytorch: r for r in recipes.releases_for("conda-forge")}
    assert list(releases) == [
        "2.13.0",
        "2.12.1",
        "2.12.0",
        "2.11.0",
        "2.10.0",
        "2.9.1",
        "2.8.0",
        "2.7.1",
        "2.7.0",
        "2.6.0",
    ]

    def cudas(version: str, platform: str) -> tuple[str, ...]:
        return tuple(v.cuda for v in releases[version].variants_for(platform))

    for version in ("2.10.0", "2.13.0"):
        assert cudas(version, "linux-64") == ("12.9", "13.0")
        assert cudas(version, "linux-aarch64") == ("12.9", "13.0")
        assert cudas(version, "win-64") == ("12.8", "13.0")
    assert (cudas("2.9.1", "linux-64"), cudas("2.9.1", "win-64")) == (("12.9",), ("12.8",))
    # 2.7.1 build 0 was CUDA 12.6 (S36).
    assert (cudas("2.7.1", "linux-64"), cudas("2.7.1", "win-64")) == (
        ("12.6", "12.9"),
        ("12.6", "12.8"),
    )
    for version in ("2.6.0", "2.7.0"):
        assert cudas(version, "linux-64") == cudas(version, "win-64") == ("12.6",)
    assert cudas("2.13.0", "osx-arm64") == ()


@pytest.mark.parametrize(
    ("pytorch", "torchvision", "torchaudio"),
    [
        # torchaudio 2.11.0 is built against pytorch 2.10 only (S37).
        ("2.13.0", "0.28.0", None),
        ("2.12.1", "0.27.1", None),
        ("2.12.0", "0.27.0", None),
        ("2.11.0", "0.26.0", None),
        ("2.10.0", "0.25.0", "2.10.0"),
        ("2.9.1", "0.24.1", "2.9.1"),
        ("2.8.0", "0.23.0", "2.8.0"),
        ("2.7.1", "0.22.1", "2.7.1"),
        ("2.7.0", "0.22.0", "2.7.0"),
        ("2.6.0", "0.21.0", "2.6.0"),
    ],
    ids=[
        "2.13.0",
        "2.12.1",
        "2.12.0",
        "2.11.0",
        "2.10.0",
        "2.9.1",
        "2.8.0",
        "2.7.1",
        "2.7.0",
        "2.6.0",
    ],
)
def test_conda_forge_pairings(
    recipes: Recipes, pytorch: str, torchvision: str, torchaudio: str | None
) -> None:
    release = recipes.release("conda-forge", pytorch)
    assert release is not None
    assert (release.torchvision, release.torchaudio) == (torchvision, torchaudio)
    # torchaudio is not built for Windows on conda-forge.
    assert not release.has_torchaudio("win-64")
    assert release.has_torchaudio("linux-64") is (torchaudio is not None)


def test_conda_forge_python(recipes: Recipes) -> None:
    python = {r.pytorch: r.python for r in recipes.releases_for("conda-forge")}
    assert python["2.13.0"] == ("3.10", "3.11", "3.12", "3.13", "3.14")
    assert python["2.9.1"] == ("3.10", "3.11", "3.12", "3.13")
    assert python["2.8.0"] == ("3.10", "3.11", "3.12", "3.13")


def test_mkl_guard_is_data_with_reason_and_source(recipes: Recipes) -> None:
    (guard,) = recipes.guards_for("pytorch", "linux-64")
    assert guard.spec == "mkl<2024.1"
    assert "iJIT_NotifyEvent" in guard.reason
    assert "I1" in guard.source and "123097" in recipes.sources["I1"]
    assert recipes.guards_for("pytorch", "win-64") == ()
    assert recipes.guards_for("conda-forge", "linux-64") == ()


def test_recipes_agree_with_real_pytorch_channel_repodata(recipes: Recipes) -> None:
    """Python builds, CUDA variants and companions of 1.13.0-2.1.0 as the channel had them."""
    records = json.loads(real_pytorch_repodata().read_text())["packages"]
    python: dict[str, set[str]] = defaultdict(set)
    cuda: dict[str, set[str]] = defaultdict(set)
    companions: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records.values():
        if record["name"] == "pytorch":
            build = re.match(r"py(\d\.\d+)_(?:cuda(\d+\.\d+)|cpu)", record["build"])
            if build:
                python[record["version"]].add(build[1])
                if build[2]:
                    cuda[record["version"]].add(build[2])
        elif record["name"] in ("torchvision", "torchaudio"):
            for dep in record["depends"]:
                if dep.startswith("pytorch "):
                    companions[(record["name"], dep.split()[1])].add(record["version"])
    checked = 0
    for release in recipes.releases_for("pytorch"):
        if release.pytorch not in python:
            continue
        checked += 1
        assert set(release.python) == python[release.pytorch], release.pytorch
        assert {v.cuda for v in release.cuda_variants} == cuda[release.pytorch], release.pytorch
        assert companions[("torchvision", release.pytorch)] == {release.torchvision}
        assert companions[("torchaudio", release.pytorch)] == {release.torchaudio}
    assert checked == 5  # 1.13.0, 1.13.1, 2.0.0, 2.0.1, 2.1.0


def test_the_minor_compat_rule_cites_defined_sources(tmp_path: Path) -> None:
    assert load_recipes_from(RECIPES).minor_compat_sources == ("S16", "S17")
    shutil.copytree(RECIPES, tmp_path / "recipes")
    path = tmp_path / "recipes" / "cuda-drivers.json"
    doc = json.loads(path.read_text())
    doc["minor_compat_source"] = ["S999"]
    path.write_text(json.dumps(doc))
    with pytest.raises(RecipeError, match="minor_compat_source cites source key"):
        load_recipes_from(tmp_path / "recipes")


# -- the conda-forge rows the December 2026 audit corrected (sources S36, S37) ------------


def test_conda_forge_never_published_2_9_0(recipes: Recipes) -> None:
    versions = [r.pytorch for r in recipes.releases_for("conda-forge")]
    assert "2.9.0" not in versions
    assert "2.9.1" in versions


@pytest.mark.parametrize(("pytorch", "python"), [("2.8.0", "3.10-3.13"), ("2.9.1", "3.10-3.13")])
def test_conda_forge_python_rows(recipes: Recipes, pytorch: str, python: str) -> None:
    release = recipes.release("conda-forge", pytorch)
    assert release is not None
    assert f"{release.python[0]}-{release.python[-1]}" == python


@pytest.mark.parametrize("pytorch", ["2.10.0", "2.11.0", "2.12.0", "2.12.1"])
def test_aarch64_cuda13_before_2_13_has_no_sm87(recipes: Recipes, pytorch: str) -> None:
    archs = recipes.arch_list("conda-forge", pytorch, "13.0", "linux-aarch64")
    assert archs is not None and "8.7" not in archs.sass


def test_aarch64_cuda13_sm87_from_2_13_0_build_2(recipes: Recipes) -> None:
    release = recipes.release("conda-forge", "2.13.0")
    assert release is not None
    variant = release.variant("13.0", "linux-aarch64")
    assert variant is not None
    at = {b: variant.archs_at("linux-aarch64", b) for b in (0, 1, 2, 3)}
    assert [b for b, archs in at.items() if archs and "8.7" in archs.sass] == [2, 3]


@pytest.mark.parametrize("pytorch", ["2.11.0", "2.12.0", "2.12.1", "2.13.0"])
def test_no_torchaudio_after_2_10_on_conda_forge(recipes: Recipes, pytorch: str) -> None:
    release = recipes.release("conda-forge", pytorch)
    assert release is not None and release.torchaudio is None


def test_2_7_1_build_0_is_cuda_12_6(recipes: Recipes) -> None:
    release = recipes.release("conda-forge", "2.7.1")
    assert release is not None
    assert [v.cuda for v in release.variants_for("linux-64")] == ["12.6", "12.9"]
    assert [v.cuda for v in release.variants_for("win-64")] == ["12.6", "12.8"]


def test_conda_forge_builds_osx_64(recipes: Recipes) -> None:
    assert all("osx-64" in r.cpu_platforms for r in recipes.releases_for("conda-forge"))


def test_arch_lists_by_build_must_start_at_zero(tmp_path: Path) -> None:
    data = json.loads((recipes_dir() / "conda-forge.json").read_text())
    variant = data["releases"][0]["cuda"][-1]
    variant["archs"]["linux-aarch64"] = [{"from_build": 2, "list": "cf-cu130-sm75-sm120ptx"}]
    for name in ("conda-forge.json",):
        (tmp_path / name).write_text(json.dumps(data))
    for name in ("sources.json", "cuda-drivers.json", "pytorch-channel.json"):
        (tmp_path / name).write_text((recipes_dir() / name).read_text())
    with pytest.raises(RecipeError, match="from_build 0"):
        load_recipes_from(tmp_path)


def test_pypi_names_load_with_their_source() -> None:
    from conda_torch_plugin.lock.pip_uv import load_pypi_names

    names = load_pypi_names()
    assert names.pypi_name("pytorch") == "torch"
    assert names.pypi_name("typing_extensions") == "typing-extensions"
    assert names.pypi_name("python") is None
    assert names.pypi_name("requests") == "requests"  # not listed: the same name
    assert {"pytorch", "torchvision", "torchaudio"} <= names.torch
    assert json.loads((RECIPES / "pypi-names.json").read_text())["source"]


# -- platform floors: the __glibc / __osx a lock assumes, per source ----------------------


def test_platform_floors_are_read_from_each_recipe_file(recipes: Recipes) -> None:
    pytorch, forge = recipes.platform_floors("pytorch"), recipes.platform_floors("conda-forge")
    assert [pytorch.glibc(c) for c in (None, "11.8", "12.4")] == ["2.17", "2.17", "2.17"]
    assert [forge.glibc(c) for c in (None, "12.6", "12.9", "13.0", "13.2")] == [
        "2.17",
        "2.17",
        "2.17",
        "2.28",
        "2.28",
    ]
    assert (pytorch.osx("osx-arm64", "2.5.1"), pytorch.osx("osx-64", "2.2.2")) == ("11.0", "10.15")
    assert (forge.osx("osx-arm64", "2.6.0"), forge.osx("osx-64", "2.6.0")) == ("11.0", "10.15")
    for floors in (pytorch, forge):
        assert floors.osx("linux-64", "2.5.1") is None
        cited = {k for row in (*floors.glibc_rows, *floors.osx_rows) for k in row.source}
        assert cited and cited <= set(recipes.sources)


def _floors(doc: dict[str, Any]) -> dict[str, Any]:
    floors: dict[str, Any] = doc["platform_floors"]
    return floors


def _no_floors(doc: dict[str, Any]) -> None:
    del doc["platform_floors"]


def _bad_glibc(doc: dict[str, Any]) -> None:
    _floors(doc)["glibc"][1]["glibc"] = "2.28a"


def _two_default_glibc_rows(doc: dict[str, Any]) -> None:
    del _floors(doc)["glibc"][1]["cuda_from"]


def _no_default_glibc_row(doc: dict[str, Any]) -> None:
    _floors(doc)["glibc"][0]["cuda_from"] = "11.0"


def _bad_cuda_from(doc: dict[str, Any]) -> None:
    _floors(doc)["glibc"][1]["cuda_from"] = "thirteen"


def _osx_floor_for_linux(doc: dict[str, Any]) -> None:
    _floors(doc)["osx"][0]["platform"] = "linux-64"


def _missing_osx_floor(doc: dict[str, Any]) -> None:
    _floors(doc)["osx"] = [r for r in _floors(doc)["osx"] if r["platform"] != "osx-64"]


def _floor_without_source(doc: dict[str, Any]) -> None:
    del _floors(doc)["osx"][0]["source"]


def _osx_row(doc: dict[str, Any], platform: str, release_from: str | None) -> dict[str, Any]:
    row: dict[str, Any] = next(
        r
        for r in _floors(doc)["osx"]
        if r["platform"] == platform and r.get("release_from") == release_from
    )
    return row


def _two_default_osx_rows(doc: dict[str, Any]) -> None:
    del _osx_row(doc, "osx-arm64", "2.11.0")["release_from"]


def _no_default_osx_row(doc: dict[str, Any]) -> None:
    _osx_row(doc, "osx-64", None)["release_from"] = "2.0.0"


def _repeated_release_from(doc: dict[str, Any]) -> None:
    _osx_row(doc, "osx-64", "2.11.0")["release_from"] = "2.7.1"


def _bad_release_from(doc: dict[str, Any]) -> None:
    _osx_row(doc, "osx-arm64", "2.11.0")["release_from"] = "2.11"


FLOOR_CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("conda-forge.json", _no_floors, ["conda-forge.json", "required key 'platform_floors'"]),
    ("conda-forge.json", _bad_glibc, ["platform_floors glibc[1]", "'2.28a'", "glibc version"]),
    ("conda-forge.json", _two_default_glibc_rows, ["platform_floors", "one glibc row without"]),
    ("pytorch-channel.json", _no_default_glibc_row, ["platform_floors", "one glibc row without"]),
    ("conda-forge.json", _bad_cuda_from, ["platform_floors glibc[1]", "'thirteen'"]),
    ("pytorch-channel.json", _osx_floor_for_linux, ["platform_floors osx[0]", "'linux-64'"]),
    ("conda-forge.json", _missing_osx_floor, ["platform_floors", "no osx floor for osx-64"]),
    ("pytorch-channel.json", _floor_without_source, ["platform_floors osx[0]", "'source'"]),
    (
        "conda-forge.json",
        _two_default_osx_rows,
        ["platform_floors", "one osx row without 'release_from' for osx-arm64", "not 2"],
    ),
    (
        "pytorch-channel.json",
        _no_default_osx_row,
        ["platform_floors", "one osx row without 'release_from' for osx-64", "not 0"],
    ),
    ("conda-forge.json", _repeated_release_from, ["platform_floors osx[", "repeats release_from"]),
    ("conda-forge.json", _bad_release_from, ["platform_floors osx[", "'2.11'", "like 2.11.0"]),
]


@pytest.mark.parametrize(
    ("file", "breaks", "in_message"),
    FLOOR_CASES,
    ids=[c[1].__name__.strip("_") for c in FLOOR_CASES],
)
def test_a_broken_platform_floor_is_rejected_by_name(
    tmp_path: Path, file: str, breaks: Callable[[dict[str, Any]], None], in_message: list[str]
) -> None:
    test_a_broken_row_is_rejected_by_name(tmp_path, file, breaks, in_message)


def test_the_plan_takes_its_virtual_packages_from_the_platform_floors(tmp_path: Path) -> None:
    from conda_torch_plugin.machine.model import Gpu, Machine
    from conda_torch_plugin.plan import PlanRequest, make_plan

    shutil.copytree(RECIPES, tmp_path / "recipes")
    path = tmp_path / "recipes" / "conda-forge.json"
    doc = json.loads(path.read_text())
    _floors(doc)["glibc"][0]["glibc"] = "2.26"
    _floors(doc)["glibc"][1].update(cuda_from="12.9", glibc="2.34")
    for row in _floors(doc)["osx"]:
        row["osx"] = {"osx-arm64": "13.0", "osx-64": "12.3"}[row["platform"]]
    path.write_text(json.dumps(doc))
    changed = load_recipes_from(tmp_path / "recipes")

    platforms = ("linux-64", "linux-aarch64", "osx-arm64", "osx-64")
    gpu = (Gpu(0, "NVIDIA GeForce RTX 3090", None, "8.6", None),)

    def planned(cuda: str) -> dict[str, dict[str, str]]:
        machine = Machine("580.65.06", cuda, "flags", gpu, platform="linux-64")
        request = PlanRequest(platforms=platforms, source="conda-forge", pytorch="2.10.0")
        plan = make_plan(request, machine, changed)
        return {p.platform: p.virtual_packages for p in plan.platforms}

    assert planned("13.0") == {
        "linux-64": {"__cuda": "13.0", "__glibc": "2.34"},
        "linux-aarch64": {"__cuda": "13.0", "__glibc": "2.34"},
        "osx-arm64": {"__osx": "13.0"},
        "osx-64": {"__osx": "12.3"},
    }
    # Below the cuda_from row the default floor applies (12.9 is now in the row).
    assert planned("12.9")["linux-64"] == {"__cuda": "12.9", "__glibc": "2.34"}
    # The shipped recipes plan the values they hold.
    machine = Machine("580.65.06", "12.9", "flags", gpu, platform="linux-64")
    request = PlanRequest(platforms=platforms, source="conda-forge", pytorch="2.10.0")
    shipped = {p.platform: p.virtual_packages for p in make_plan(request, machine).platforms}
    assert shipped["linux-64"]["__glibc"] == "2.17" and shipped["osx-64"] == {"__osx": "11.0"}


def _planned_osx(platform: str, pytorch: str, source: str, recipes: Recipes | None = None) -> str:
    """The ``__osx`` of a plan for a Mac of ``platform`` with ``pytorch`` from ``source``."""
    from conda_torch_plugin.machine.model import Machine
    from conda_torch_plugin.plan import PlanRequest, make_plan

    machine = Machine(None, None, "flags", platform=platform)
    request = PlanRequest(platforms=(platform,), source=source, pytorch=pytorch)
    plan = make_plan(request, machine, recipes) if recipes else make_plan(request, machine)
    return plan.platforms[0].virtual_packages["__osx"]


# conda-forge's feedstock raised c_stdlib_version (= MACOSX_DEPLOYMENT_TARGET) over time; its
# builds carry the run export __osx >=X, so a lock that assumes less cannot hold them.
CONDA_FORGE_OSX = [
    ("osx-arm64", "2.6.0", "11.0"),
    ("osx-arm64", "2.10.0", "11.0"),
    ("osx-arm64", "2.11.0", "12.0"),
    ("osx-arm64", "2.12.0", "12.0"),
    ("osx-arm64", "2.12.1", "12.0"),
    ("osx-arm64", "2.13.0", "12.0"),
    ("osx-64", "2.6.0", "10.15"),
    ("osx-64", "2.7.0", "10.15"),
    ("osx-64", "2.7.1", "11.0"),
    ("osx-64", "2.10.0", "11.0"),
    ("osx-64", "2.11.0", "12.0"),
    ("osx-64", "2.13.0", "12.0"),
]


@pytest.mark.parametrize(("platform", "pytorch", "osx"), CONDA_FORGE_OSX)
def test_a_conda_forge_mac_plan_assumes_the_macos_of_its_release(
    platform: str, pytorch: str, osx: str
) -> None:
    assert _planned_osx(platform, pytorch, "conda-forge") == osx


def test_the_pytorch_channel_mac_floor_does_not_follow_the_release() -> None:
    assert _planned_osx("osx-arm64", "2.5.1", "pytorch") == "11.0"
    assert _planned_osx("osx-arm64", "2.1.2", "pytorch") == "11.0"
    assert _planned_osx("osx-64", "2.2.2", "pytorch") == "10.15"


def test_the_release_floors_come_from_the_recipe_file(tmp_path: Path) -> None:
    shutil.copytree(RECIPES, tmp_path / "recipes")
    path = tmp_path / "recipes" / "conda-forge.json"
    doc = json.loads(path.read_text())
    _osx_row(doc, "osx-arm64", "2.11.0").update(release_from="2.12.1", osx="13.0")
    doc["platform_floors"]["osx"].append(
        {"platform": "osx-arm64", "release_from": "2.8.0", "osx": "11.3", "source": ["S39"]}
    )
    path.write_text(json.dumps(doc))
    changed = load_recipes_from(tmp_path / "recipes")
    found = {v: _planned_osx("osx-arm64", v, "conda-forge", changed) for v in RELEASES_SEEN}
    assert found == {
        "2.7.1": "11.0",  # the row without release_from
        "2.8.0": "11.3",
        "2.11.0": "11.3",  # the newest row at or below the release applies
        "2.12.0": "11.3",
        "2.12.1": "13.0",
        "2.13.0": "13.0",
    }
    floors = changed.platform_floors("conda-forge")
    arm = [(r.release_from, r.osx) for r in floors.osx_rows if r.platform == "osx-arm64"]
    assert arm == [(None, "11.0"), ("2.8.0", "11.3"), ("2.12.1", "13.0")]  # sorted on load


RELEASES_SEEN = ("2.7.1", "2.8.0", "2.11.0", "2.12.0", "2.12.1", "2.13.0")
