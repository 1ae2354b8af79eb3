"""The command line as a user meets it: help, usage errors, spellings, pipes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.cli import run_cli, run_main


@pytest.mark.parametrize(
    "spelling", ["8.6", "86", "sm_86", "SM_86", "sm_86a", "compute_86"], ids=lambda s: s
)
def test_gpu_arch_spellings_mean_the_same_gpu(
    capsys: pytest.CaptureFixture[str], spelling: str
) -> None:
    status, out, err = run_main(
        capsys, "plan", "--cuda", "12.4", "--gpu-arch", spelling, "--platform", "linux-64", "--json"
    )
    assert status == 0, err
    assert "GPU 0 (sm_86) runs the sm_86 cubin." in json.loads(out)["reasons"]


@pytest.mark.parametrize(
    ("spelling", "normalized"), [("120", "12.0"), ("sm_100a", "10.0"), ("sm_90", "9.0")]
)
def test_three_digit_spellings(spelling: str, normalized: str) -> None:
    from conda_torch_plugin.cli._options import gpu_arch

    assert gpu_arch(spelling) == normalized


def test_a_bad_gpu_arch_names_the_flag_and_the_form() -> None:
    done = run_cli("plan", "--cuda", "12.4", "--gpu-arch", "ampere")
    assert done.returncode == 2
    assert "argument --gpu-arch: 'ampere' is not a compute capability" in done.stderr
    assert "8.6" in done.stderr


def test_top_level_help_lists_each_command_once() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for verb in ("detect", "plan", "write", "lock", "install", "create", "doctor"):
        lines = [line for line in done.stdout.splitlines() if line.strip().startswith(verb + " ")]
        assert len(lines) == 1, (verb, done.stdout)


def test_unknown_flag_shows_the_verbs_usage() -> None:
    done = run_cli("plan", "--no-such-flag")
    assert done.returncode == 2
    assert "usage: " in done.stderr
    assert " plan [-h]" in done.stderr
    assert "plan: error: unrecognized arguments: --no-such-flag" in done.stderr
    assert done.stdout == ""


def test_usage_errors_are_json_objects_with_json() -> None:
    done = run_cli("plan", "--json", "--no-such-flag")
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["error"] == "UsageError"
    assert "--no-such-flag" in error["message"]
    done = run_cli("plan", "--json", "--source", "nowhere")
    assert done.returncode == 2
    assert "invalid choice" in json.loads(done.stdout)["message"]


@pytest.mark.parametrize(
    "argv",
    [["plan", "--json", "--cuda", "12.4", "--gpu-arch", "8.6"], ["detect"], ["plan", "--cpu"]],
    ids=["plan-json", "detect", "plan"],
)
def test_a_closed_pipe_ends_quietly(argv: list[str]) -> None:
    # The reader closes the pipe before anything is written: every write fails.
    reader, writer = __import__("os").pipe()
    __import__("os").close(reader)
    done = subprocess.run(
        [sys.executable, "-m", "conda_torch_plugin", *argv],
        stdin=subprocess.DEVNULL,
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    __import__("os").close(writer)
    assert "Traceback" not in done.stderr
    assert "unexpectedly" not in done.stderr
    assert done.returncode == 141
