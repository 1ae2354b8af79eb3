"""Run the command line: ``python -m conda_torch_plugin`` in a subprocess, or ``main`` in process.

Plain functions, no fixtures. In a subprocess stdin is never a terminal
(``/dev/null``), as in CI, so a run that would need a confirmation fails the same
way on every machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import pytest


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m conda_torch_plugin ARGS`` with its output captured; never raises on a status."""
    return subprocess.run(
        [sys.executable, "-m", "conda_torch_plugin", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli_json(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    status: int = 0,
) -> dict[str, Any]:
    """``run_cli(*args)`` (pass ``--json`` among them): the exit status must be ``status``,
    stderr must hold no traceback, and stdout must be one JSON object, which is returned."""
    result = run_cli(*args, env=env, cwd=cwd)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit status, stdout, stderr) as captured by ``capsys``."""
    from conda_torch_plugin.cli import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err
