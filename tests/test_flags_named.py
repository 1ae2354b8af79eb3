"""Every ``--flag`` the core names in a message, hint or command is one that exists.

The core's errors and plan reasons tell the user what to pass next ("pass --cuda
X.Y", "--source conda-forge has a release matching ..."). A flag renamed or removed
in ``cli/`` would leave those hints naming an option the parser rejects; this test
reads every string literal in the core (docstrings aside) and checks each flag is
one of ours or belongs to a tool the code runs or quotes, listed here by tool.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest

import conda_torch_plugin
from conda_torch_plugin.cli import build_parser
from conda_torch_plugin.sources import refresh

PACKAGE = Path(conda_torch_plugin.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

# Flags of the tools the core runs or whose files it reads and writes.
OTHER_TOOLS = {
    "uv pip compile / uv pip install": {
        "--annotation-style",
        "--cache-dir",
        "--constraints",
        "--generate-hashes",
        "--link-mode",
        "--no-build",
        "--no-config",
        "--no-deps",
        "--no-header",
        "--no-python-downloads",
        "--python-platform",
        "--python-version",
        "--require-hashes",
        "--target",
        "--format",
    },
    "pip (requirement-file options, reinstall advice)": {
        "--extra-index-url",
        "--find-links",
        "--force-reinstall",
        "--hash",
        "--index-url",
        "--no-index",
        "--user",
    },
    "conda-lock": {"--conda", "--kind", "--strip-auth"},
    "nvidia-smi": {"--format", "--query-gpu"},
    "docker run": {"--gpus"},
}


def _parser_flags(parser: argparse.ArgumentParser) -> set[str]:
    flags: set[str] = set()
    for action in parser._actions:
        flags.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _parser_flags(sub)
    return flags


def _refresh_flags(capsys: pytest.CaptureFixture[str]) -> set[str]:
    with pytest.raises(SystemExit):
        refresh.main(["--help"])
    return set(FLAG.findall(capsys.readouterr().out))


def _named_flags(root: Path) -> dict[str, set[str]]:
    """flag -> the modules under ``root`` (``cli/`` aside) whose string literals name it."""
    named: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        if "cli" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
            ):
                for flag in FLAG.findall(node.value):
                    named.setdefault(flag, set()).add(str(path.relative_to(root)))
    return named


def test_every_flag_the_core_names_exists(capsys):
    ours = _parser_flags(build_parser()) | _refresh_flags(capsys)
    others = set().union(*OTHER_TOOLS.values())
    named = _named_flags(PACKAGE)
    assert {"--cuda", "--gpu-arch", "--source", "--pytorch"} <= set(named)  # the scan works
    unknown = {flag: sorted(where) for flag, where in named.items() if flag not in ours | others}
    assert unknown == {}, "flags named in messages that no parser defines"


def test_the_scan_reports_a_hint_naming_a_flag_no_parser_has(tmp_path):
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "verb.py").write_text('HELP = "--only-in-cli"\n')
    (tmp_path / "plan.py").write_text(
        '"""Docstrings may name --anything."""\n'
        "def fail():\n"
        '    """Nor here: --docstring-flag."""\n'
        '    raise ValueError("no build", hints=["pass --cuda-version X.Y", f"or --cpu {1}"])\n'
    )
    named = _named_flags(tmp_path)
    assert named == {"--cuda-version": {"plan.py"}, "--cpu": {"plan.py"}}
    assert "--cuda-version" not in _parser_flags(build_parser())
