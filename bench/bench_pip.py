"""Lock time with and without a 10-package pip: section (uv after the conda solve).

Usage: python bench/bench_pip.py [--runs 7] [--json]

Builds the tests' generated channel tree (pytorch, nvidia, conda-forge for linux-64,
win-64, osx-arm64) and 14 small real wheels, then times fresh ``conda-torch-env lock``
processes for a PyTorch 2.5.1 CPU environment on linux-64 and osx-arm64:

- conda only;
- the same plus a ``pip:`` section of 10 requirements (12 wheels resolved per platform,
  one requirement provided by the conda side), from a ``--find-links`` folder;
- the same from a PEP 503 simple index served on 127.0.0.1.

uv's cache is warm after the first, untimed run, as on a machine that has locked before.
Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.repodata import (  # noqa: E402
    virtual_packages_for,
    write_channel_tree,
    write_virtual_packages,
)
from support.servers import serve  # noqa: E402
from support.wheels import Wheel, find_links, simple_index  # noqa: E402

WHEELS = (
    *(Wheel(f"pkg{i}", "1.0", requires=(f"pkg{i + 1}",)) for i in range(8)),
    Wheel("pkg8", "1.0", requires=("typing-extensions>=4",)),
    Wheel("pkg9", "1.0"),
    Wheel("native", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
    Wheel("native", "2.0", tag="cp312-cp312-macosx_11_0_arm64"),
    Wheel("helper", "3.1"),
    Wheel("helper", "3.0"),
)
PIP = ["pkg0", "pkg2", "pkg4", "pkg6", "pkg8", "pkg9", "native", "helper>=3", "typing-extensions"]
PIP.append("pkg1")  # 10 requirement lines
CONDA = ["python=3.12", "pytorch=2.5.1", "torchvision=0.20.1", "cpuonly  # [linux]", "pip"]


def environment(folder: Path, pip: list[str] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["name: bench", "channels:", "  - pytorch", "  - conda-forge", "platforms:"]
    lines += ["  - linux-64", "  - osx-arm64", "dependencies:", *(f"  - {d}" for d in CONDA)]
    if pip is not None:
        lines += ["  - pip:", *(f"    - {p}" for p in pip)]
    (folder / "environment.yml").write_text("\n".join(lines) + "\n")
    write_virtual_packages(folder / "virtual-packages.yml", virtual_packages_for(None))
    return folder


def timed_lock(folder: Path, alias: str, runs: int) -> tuple[list[float], dict[str, object]]:
    command = [str(Path(sys.executable).parent / "conda-torch-env"), "lock"]
    command += ["--channel-alias", alias, "--json"]
    subprocess.run(command, cwd=folder, check=True, capture_output=True)  # warm-up
    walls = []
    out: dict[str, object] = {}
    for _ in range(runs):
        (folder / "conda-lock.yml").unlink()
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, check=True, capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        out = json.loads(done.stdout)
    return walls, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pip-"))
    try:
        tree = write_channel_tree(work / "channels")
        links = find_links(work / "links", WHEELS)
        index = simple_index(work / "index", WHEELS)
        results: dict[str, dict[str, object]] = {}
        with serve(index) as url:
            cases = {
                "conda only": None,
                "conda + 10 pip requirements (--find-links)": [
                    f"--find-links {links}",
                    "--no-index",
                    *PIP,
                ],
                "conda + 10 pip requirements (simple index on 127.0.0.1)": [
                    f"--index-url {url}/simple",
                    *PIP,
                ],
            }
            for i, (label, pip) in enumerate(cases.items()):
                folder = environment(work / f"case{i}", pip)
                walls, out = timed_lock(folder, tree.alias, args.runs)
                text = (folder / "conda-lock.yml").read_text()
                results[label] = {
                    "median_s": round(statistics.median(walls), 3),
                    "min_s": round(min(walls), 3),
                    "solve_s": out["solve_seconds"],
                    "pip_entries": text.count("manager: pip"),
                }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"medians of {args.runs} fresh `conda-torch-env lock` processes, 2 platforms:")
    for label, r in results.items():
        print(
            f"  {label:58} {r['median_s']:.3f} s  (min {r['min_s']:.3f} s, conda solve "
            f"{r['solve_s']:.3f} s, {r['pip_entries']} pip entries)"
        )


if __name__ == "__main__":
    main()
