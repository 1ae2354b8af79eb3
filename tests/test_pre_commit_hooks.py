"""The pre-commit hook this repository ships runs a real command with flags that exist."""

from __future__ import annotations

import shlex
from pathlib import Path

from ruamel.yaml import YAML

from conda_torch_plugin.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def test_lock_check_hook() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    [hook] = [h for h in hooks if h["id"] == "conda-torch-env-lock-check"]
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    program, *argv = shlex.split(hook["entry"])
    scripts = (ROOT / "pyproject.toml").read_text().split("[project.scripts]", 1)[1]
    assert f'\n{program} = "conda_torch_plugin.cli:run"' in scripts.split("\n[", 1)[0]
    args = build_parser().parse_args([*argv, "-f", "gpu.yml"])
    assert args.check is True and args.env_file == "gpu.yml"
