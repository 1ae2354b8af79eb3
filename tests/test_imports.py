"""Import hygiene: the plugin module stays lean, the core never imports conda.

conda imports ``conda_torch_plugin.plugin`` on every command, so it (and the
package ``__init__``) may import nothing heavy. Each check runs in a fresh
interpreter so earlier imports in the test process cannot hide a regression.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("pynvml", "rattler", "conda_lock", "ruamel", "pydantic")

# Every module of the package except the conda edge (plugin.py, _conda/) and __main__:
# a new module is checked without being listed here.
_PACKAGE = Path(__file__).resolve().parent.parent / "conda_torch_plugin"
CORE_MODULES = tuple(
    sorted(
        ".".join(
            ("conda_torch_plugin", *p.relative_to(_PACKAGE).with_suffix("").parts)
        ).removesuffix(".__init__")
        for p in _PACKAGE.rglob("*.py")
        if p.name not in ("plugin.py", "__main__.py") and "_conda" not in p.parts
    )
)

# A stand-in for conda's plugin API (conda is not installable from PyPI): the
# two names plugin.py imports, with the shapes conda gives them.
FAKE_CONDA_PLUGINS = """
from dataclasses import dataclass, field
from typing import Callable, Optional

def hookimpl(function=None, **kwargs):
    return function if function is not None else (lambda f: f)

@dataclass
class CondaSubcommand:
    name: str
    summary: str
    action: Callable
    configure_parser: Optional[Callable] = None
"""


def _run(code: str, *, pythonpath: Path | None = None) -> dict:
    env = None
    if pythonpath is not None:
        import os

        env = dict(os.environ, PYTHONPATH=str(pythonpath))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def fake_conda(tmp_path: Path) -> Path:
    plugins = tmp_path / "conda" / "plugins"
    plugins.mkdir(parents=True)
    (tmp_path / "conda" / "__init__.py").write_text("")
    (plugins / "__init__.py").write_text(FAKE_CONDA_PLUGINS)
    return tmp_path


def test_plugin_module_imports_nothing_heavy(fake_conda: Path) -> None:
    result = _run(
        f"""
        import json, sys
        import conda_torch_plugin.plugin
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        """,
        pythonpath=fake_conda,
    )
    assert result == []


def test_building_the_subcommand_parser_stays_lean(fake_conda: Path) -> None:
    """conda builds every plugin's parser on every command: no verb module, nothing heavy."""
    result = _run(
        f"""
        import argparse, json, sys
        import conda_torch_plugin.plugin as plugin
        (sub,) = list(plugin.conda_subcommands())
        # as conda does: a subparser without help, configure_parser, then conda's -h/--help
        parser = argparse.ArgumentParser(prog="conda torch-env", add_help=False)
        sub.configure_parser(parser)
        parser.add_argument("-h", "--help", action="help")
        args = parser.parse_args(["plan", "--cpu", "--platform", "linux-64"])
        loaded = sorted(m for m in sys.modules if m.startswith("conda_torch_plugin.cli."))
        print(json.dumps({{"name": sub.name, "verb": args.verb, "argv": args.argv,
                          "verb_modules": loaded,
                          "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
        """,
        pythonpath=fake_conda,
    )
    assert result == {
        "name": "torch-env",
        "verb": "plan",
        "argv": ["--cpu", "--platform", "linux-64"],
        "verb_modules": [],
        "heavy": [],
    }


def test_conda_action_runs_the_full_cli(fake_conda: Path) -> None:
    """What conda hands the action is parsed by the full parser and run."""
    result = _run(
        """
        import argparse, contextlib, io, json
        import conda_torch_plugin.cli as cli
        import conda_torch_plugin.plugin as plugin
        # Once py-rattler is loaded (a plan reads repodata) the action leaves with
        # os._exit; here it returns, so that the script can go on.
        cli._flush_and_exit = lambda status: None
        (sub,) = list(plugin.conda_subcommands())
        parser = argparse.ArgumentParser(prog="conda torch-env", add_help=False)
        sub.configure_parser(parser)
        parser.add_argument("-h", "--help", action="help")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = sub.action(parser.parse_args(
                ["plan", "--cpu", "--platform", "linux-64", "--json"]))
        plan = json.loads(out.getvalue())
        help_out = io.StringIO()
        with contextlib.redirect_stdout(help_out):
            help_status = sub.action(parser.parse_args(["plan", "--help"]))
        with contextlib.redirect_stderr(io.StringIO()):
            bad_status = sub.action(parser.parse_args(["plan", "--cuda", "twelve"]))
        print(json.dumps({"status": status, "compute": plan["compute"],
                          "cpuonly": "cpuonly" in plan["specs"], "help_status": help_status,
                          "help_prog": help_out.getvalue().startswith(
                              "usage: conda torch-env plan"),
                          "bad_status": bad_status}))
        """,
        pythonpath=fake_conda,
    )
    assert result == {
        "status": 0,
        "compute": "cpu",
        "cpuonly": True,
        "help_status": 0,
        "help_prog": True,
        "bad_status": 2,
    }


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_conda(module: str) -> None:
    result = _run(
        f"""
        import importlib, json, sys
        importlib.import_module({module!r})
        print(json.dumps(sorted(m for m in sys.modules if m == "conda" or m.startswith("conda."))))
        """
    )
    assert result == []


def test_lock_and_plan_modules_do_not_import_conda_lock() -> None:
    result = _run(
        """
        import json, sys
        import conda_torch_plugin.lock
        import conda_torch_plugin.condalock.lockfile, conda_torch_plugin.condalock.content_hash
        print(json.dumps([m for m in sys.modules if m.startswith("conda_lock")]))
        """
    )
    assert result == []


def test_reading_an_environment_without_pip_does_not_import_packaging(tmp_path: Path) -> None:
    """pip requirements are parsed with packaging, imported only when a pip: section exists."""
    env = tmp_path / "environment.yml"
    env.write_text("channels: [conda-forge]\ndependencies:\n  - python=3.12\n  - numpy\n")
    result = _run(
        f"""
        import json, sys
        from pathlib import Path
        from conda_torch_plugin.condalock.envspec import read_environment
        before = read_environment(Path({str(env)!r}))
        print(json.dumps("packaging" in sys.modules))
        """
    )
    assert result is False


def test_conda_settings_hook_registers_the_default_source_setting(fake_conda: Path) -> None:
    """The setting conda reads from .condarc is the one the CLI asks conda for."""
    (fake_conda / "conda" / "common").mkdir()
    (fake_conda / "conda" / "common" / "__init__.py").write_text("")
    (fake_conda / "conda" / "common" / "configuration.py").write_text(
        "class PrimitiveParameter:\n"
        "    def __init__(self, default, element_type=None):\n"
        "        self.default, self.element_type = default, element_type\n"
    )
    (fake_conda / "conda" / "plugins" / "types.py").write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class CondaSetting:\n"
        "    name: str\n    description: str\n    parameter: object\n    aliases: tuple = ()\n"
    )
    result = _run(
        """
        import json
        import conda_torch_plugin.plugin as plugin
        from conda_torch_plugin.sources import DEFAULT_SOURCE_SETTING
        (setting,) = list(plugin.conda_settings())
        print(json.dumps({"name": setting.name, "expected": DEFAULT_SOURCE_SETTING,
                          "type": setting.parameter.element_type.__name__}))
        """,
        pythonpath=fake_conda,
    )
    assert result == {"name": result["expected"], "expected": result["expected"], "type": "str"}
