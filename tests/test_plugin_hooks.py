"""plugin.py's hooks, against a stand-in for conda's plugin API (conda is not installable).

The stand-in has the names and shapes conda/plugins/types.py and hookspec.py
give them; ``with_error_hints`` chooses between a conda that has the
``conda_error_hints`` hook (26.7+) and one that does not.
"""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class CondaSubcommand:
    name: str
    summary: str
    action: Any
    configure_parser: Any = None


@dataclass
class CondaHealthCheck:
    name: str
    action: Any
    fixer: Any = None
    summary: str | None = None
    fix: str | None = None


@dataclass
class CondaSetting:
    name: str
    description: str
    parameter: Any
    aliases: tuple[str, ...] = ()


@dataclass
class CondaErrorHint:
    text: str
    hint_code: str


class PrimitiveParameter:
    def __init__(self, default: object, element_type: type = str) -> None:
        self.default, self.element_type = default, element_type


def load_plugin(monkeypatch, *, with_error_hints: bool):
    specs = type("CondaSpecs", (), {"conda_subcommands": lambda self: None})
    if with_error_hints:
        specs.conda_error_hints = lambda self, error: None  # type: ignore[attr-defined]
    modules = {
        name: types.ModuleType(name)
        for name in (
            "conda",
            "conda.plugins",
            "conda.plugins.types",
            "conda.plugins.hookspec",
            "conda.common",
            "conda.common.configuration",
        )
    }
    modules["conda.plugins"].hookimpl = lambda f: f  # type: ignore[attr-defined]
    modules["conda.plugins"].CondaSubcommand = CondaSubcommand  # type: ignore[attr-defined]
    types_module = modules["conda.plugins.types"]
    types_module.CondaHealthCheck = CondaHealthCheck  # type: ignore[attr-defined]
    types_module.CondaSetting = CondaSetting  # type: ignore[attr-defined]
    types_module.CondaErrorHint = CondaErrorHint  # type: ignore[attr-defined]
    modules["conda.plugins.hookspec"].CondaSpecs = specs  # type: ignore[attr-defined]
    modules["conda.common.configuration"].PrimitiveParameter = PrimitiveParameter  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "conda_torch_plugin.plugin", raising=False)
    return importlib.import_module("conda_torch_plugin.plugin")


class PackagesNotFoundError(Exception):
    pass


class UnsatisfiableError(Exception):
    pass


class LibMambaUnsatisfiableError(UnsatisfiableError):
    pass


@pytest.mark.parametrize(
    ("error", "hinted"),
    [
        (PackagesNotFoundError("PackagesNotFoundError: pytorch-cuda=12.9"), True),
        (LibMambaUnsatisfiableError("nothing provides __cuda >=12.8 needed by pytorch"), True),
        (UnsatisfiableError("numpy 3 conflicts with python 3.9"), False),
        (RuntimeError("pytorch is broken"), False),
    ],
    ids=["not-found-pytorch-cuda", "unsatisfiable-cuda", "unrelated-solve", "not-a-solve"],
)
def test_error_hints_point_to_plan_for_a_failed_pytorch_solve(monkeypatch, error, hinted):
    plugin = load_plugin(monkeypatch, with_error_hints=True)
    hints = list(plugin.conda_error_hints(error))
    if hinted:
        assert [h.hint_code for h in hints] == ["torch_env_plan"]
        assert "conda torch-env plan" in hints[0].text
    else:
        assert hints == []


def test_an_older_conda_gets_no_error_hints_hook(monkeypatch):
    plugin = load_plugin(monkeypatch, with_error_hints=False)
    assert not hasattr(plugin, "conda_error_hints")
    assert [s.name for s in plugin.conda_subcommands()] == ["torch-env"]


def test_health_check_and_setting_are_registered(monkeypatch):
    plugin = load_plugin(monkeypatch, with_error_hints=True)
    (check,) = plugin.conda_health_checks()
    assert check.name == "torch-env" and callable(check.action)
    (setting,) = plugin.conda_settings()
    assert setting.name == "torch_env_default_source" and setting.parameter.default == ""


def test_health_check_reports_an_environment_without_pytorch(monkeypatch, tmp_path, capsys):
    plugin = load_plugin(monkeypatch, with_error_hints=True)
    (tmp_path / "conda-meta").mkdir()
    (check,) = plugin.conda_health_checks()
    check.action(str(tmp_path), False)
    assert "torch-env: no PyTorch in this environment" in capsys.readouterr().out


def test_health_lines_show_errors_with_their_fixes():
    from pathlib import Path

    from conda_torch_plugin.cli.doctor import health_lines
    from conda_torch_plugin.doctor import DoctorReport
    from conda_torch_plugin.findings import Finding
    from conda_torch_plugin.sources.base import Flavour

    report = DoctorReport(
        Path("/env"),
        Flavour("cuda", "12.4", "pytorch"),
        (
            Finding("error", "the driver supports CUDA 12.2", "update the driver"),
            Finding("ok", "torchvision matches"),
        ),
    )
    lines = health_lines(report, verbose=False)
    assert lines[0].startswith("❌ torch-env: 1 error(s)")
    assert "   error: the driver supports CUDA 12.2" in lines
    assert "     fix: update the driver" in lines
    assert not any("torchvision matches" in line for line in lines)
