"""What the plugin adds to conda's start-up, and what the CLI costs to start.

conda imports every plugin module on every command. This measures, in fresh
interpreters, the import of ``conda_torch_plugin.plugin`` against the bare
interpreter with only conda's plugin API loaded (a stand-in, as conda is not
installable from PyPI here), plus the front parser conda builds for every plugin
on every command and, for scale, the full parser (built only when
``conda torch-env`` runs) and importing conda_lock. Bytecode caching is on, as
for an installed package.

    python bench/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAKE_CONDA_PLUGINS = """
# By the time conda loads plugins it has imported these (and far more): what a
# plugin then imports again costs nothing, so the baseline includes them.
import argparse, contextlib, dataclasses, importlib, json, locale, shutil, typing

def hookimpl(function=None, **kwargs):
    return function if function is not None else (lambda f: f)

class CondaSubcommand:
    def __init__(self, name, summary, action, configure_parser=None):
        self.name, self.summary = name, summary
        self.action, self.configure_parser = action, configure_parser
"""

CASES = {
    "baseline: python + conda.plugins": "import conda.plugins",
    "import conda_torch_plugin.plugin": "import conda.plugins; import conda_torch_plugin.plugin",
    "plugin + the parser conda builds (every command)": (
        "import argparse, conda_torch_plugin.plugin as p; "
        "[s.configure_parser(argparse.ArgumentParser()) for s in p.conda_subcommands()]"
    ),
    "for scale: the full parser (conda torch-env only)": (
        "import conda.plugins, conda_torch_plugin.cli as c; c.build_parser()"
    ),
}
if importlib.util.find_spec("conda_lock") is not None:
    CASES["for scale: import conda_lock"] = "import conda.plugins; import conda_lock"


def wall_ms(code: str, env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        plugins = Path(tmp, "conda", "plugins")
        plugins.mkdir(parents=True)
        Path(tmp, "conda", "__init__.py").write_text("")
        (plugins / "__init__.py").write_text(FAKE_CONDA_PLUGINS)
        env = dict(os.environ, PYTHONPATH=tmp)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([sys.executable, "-c", "import conda_torch_plugin.cli"], env=env, check=True)
        results = {
            name: statistics.median(wall_ms(code, env, runs)) for name, code in CASES.items()
        }
    base = results["baseline: python + conda.plugins"]
    print(
        f"{'case':50} {'median ms':>10} {'added ms':>9} {'ratio':>6}"
        f"   ({runs} fresh interpreters each)"
    )
    for name, ms in results.items():
        print(f"{name:50} {ms:10.1f} {ms - base:9.1f} {ms / base:6.2f}")


if __name__ == "__main__":
    main()
