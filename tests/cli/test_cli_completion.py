"""Shell completion generated from the parser, run by a real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from support.cli import run_cli

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def complete(script: str, *words: str) -> list[str]:
    """What bash's completion function offers for the command line ``words`` (last = cursor)."""
    line = " ".join(f"'{w}'" for w in words)
    program = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        '_conda_torch_env; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.split()


@pytest.fixture(scope="module")
def script() -> str:
    done = run_cli("--completion", "bash")
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_verbs_complete(script):
    assert complete(script, "conda-torch-env", "") == sorted(
        ["create", "detect", "doctor", "install", "lock", "plan", "write"]
        + ["--completion", "--help", "--version"],
        key=["detect", "plan", "write", "lock", "create", "install", "doctor",
             "--help", "--version", "--completion"].index,
    )  # fmt: skip
    assert complete(script, "conda-torch-env", "pl") == ["plan"]


def test_a_verbs_flags_and_their_choices_complete(script):
    assert "--gpu-arch" in complete(script, "conda-torch-env", "plan", "--")
    assert "--installer" not in complete(script, "conda-torch-env", "plan", "--")
    assert complete(script, "conda-torch-env", "install", "--installer", "") == [
        "rattler",
        "conda",
    ]
    assert complete(script, "conda-torch-env", "plan", "--source", "c") == ["conda-forge"]


def test_zsh_gets_the_bash_bridge():
    done = run_cli("--completion", "zsh")
    assert done.returncode == 0
    assert done.stdout.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    assert "complete -o default -F _conda_torch_env conda-torch-env" in done.stdout
