"""The source registry: each source is a module with its recipe file, and nothing else needs
to know its name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conda_torch_plugin.flavour import torch_flavour
from conda_torch_plugin.recipes import load_recipes
from conda_torch_plugin.sources import (
    AUTO,
    NAMES,
    SOURCE_CHOICES,
    SOURCES,
    for_request,
    source,
    source_named_in,
)

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("name", NAMES)
def test_each_source_has_its_recipe_file(name: str) -> None:
    data = json.loads((RECIPES / source(name).recipe_file).read_text())
    assert data["channel"] == name
    assert load_recipes().releases_for(name)


def test_auto_tries_every_source_in_the_registry_order() -> None:
    assert [s.name for s in for_request(AUTO)] == list(NAMES) == ["pytorch", "conda-forge"]
    assert [s.name for s in for_request("conda-forge")] == ["conda-forge"]
    assert SOURCE_CHOICES == ("auto", "pytorch", "conda-forge")


def test_the_environment_names_the_source_whose_rules_apply() -> None:
    assert source_named_in(["pytorch", "nvidia", "conda-forge"]).name == "pytorch"
    assert source_named_in(["conda-forge"]).name == "conda-forge"
    assert source_named_in(["defaults"]).name == "conda-forge"  # the fallback


@pytest.mark.parametrize(
    ("build", "style", "compute", "cuda"),
    [
        ("py3.12_cuda12.4_cudnn9.1.0_0", "pytorch", "cuda", "12.4"),
        ("py312_cu124", "pytorch", "cuda", "12.4"),
        ("cuda129_mkl_py312_h1234567_302", "conda-forge", "cuda", "12.9"),
        ("cpu_generic_py312_h1234567_0", "conda-forge", "cpu", None),
    ],
)
def test_each_source_reads_its_own_build_strings(
    build: str, style: str, compute: str, cuda: str | None
) -> None:
    flavour = SOURCES[style].build_flavour(build)
    assert flavour is not None and (flavour.channel_style, flavour.compute, flavour.cuda) == (
        style,
        compute,
        cuda,
    )
    others = [s for s in SOURCES.values() if s.name != style]
    assert all(s.build_flavour(build) is None for s in others)
    assert torch_flavour("pytorch", "2.5.1", build) == flavour


@pytest.mark.parametrize("name", NAMES)
def test_variant_specs_come_from_the_source(name: str) -> None:
    head, tail = source(name).torch_specs("2.5.1", "linux-64", "cuda", "12.4")
    assert head[0].startswith("pytorch=2.5.1")
    assert any("12.4" in s for s in head + tail)
