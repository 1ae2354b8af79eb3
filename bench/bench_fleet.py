"""The time of ``plan --machine DIR`` for a fleet of profiles, against a one-machine plan.

Writes COUNT machine profiles (``detect --json`` files) into a temporary folder and
times, as whole commands in fresh processes (what a user waits for), all ``--offline``
(candidates from the bundled snapshot: no network time):

- ``plan --cuda 12.4 --gpu-arch 8.0 --platform linux-64``: one machine, nothing detected;
- ``plan --machine DIR``: the fleet, text output;
- ``plan --machine DIR --json``: the fleet with each machine's own best plan.

Two fleets: ``mixed`` (machines of a few dozen kinds: drivers 525-570, Volta to Hopper,
login nodes, a few Windows workstations, as a cluster and its users have) and ``distinct``
(every machine a different driver version: each one is checked on its own).

    python bench/bench_fleet.py [--count 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DRIVERS = [
    ("525.147.05", "12.0"),
    ("535.104.05", "12.2"),
    ("535.183.01", "12.2"),
    ("545.23.08", "12.3"),
    ("550.54.15", "12.4"),
    ("550.127.05", "12.4"),
    ("560.35.03", "12.6"),
    ("570.86.10", "12.8"),
]
GPUS = [
    ("Tesla V100-SXM2-32GB", "7.0"),
    ("NVIDIA A100-SXM4-80GB", "8.0"),
    ("NVIDIA RTX A6000", "8.6"),
    ("NVIDIA L40S", "8.9"),
    ("NVIDIA H100 80GB HBM3", "9.0"),
]


def profile(index: int, *, distinct: bool) -> dict[str, object]:
    name = f"node{index:04d}"
    if index % 50 == 0:  # login and CI nodes: no GPU
        return {"schema": 1, "hostname": name, "platform": "linux-64", "gpus": []}
    driver, cuda = DRIVERS[index % len(DRIVERS)]
    if distinct:  # a patch level of its own: no two machines alike
        major, minor, _ = driver.split(".")
        driver = f"{major}.{minor}.{index:02d}"
    gpu_name, cc = GPUS[(index // 3) % len(GPUS)]
    count = 1 + index % 4
    platform = "win-64" if index % 97 == 0 else "linux-64"
    return {
        "schema": 1,
        "hostname": name,
        "platform": platform,
        "glibc": "2.28" if platform == "linux-64" else None,
        "driver_version": driver,
        "cuda_version": cuda,
        "gpus": [
            {"index": i, "name": gpu_name, "uuid": None, "compute_capability": cc}
            for i in range(count)
        ],
    }


def timed(argv: list[str], runs: int) -> tuple[float, str]:
    env = dict(os.environ)
    env.pop("CONDA_OVERRIDE_CUDA", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "conda_torch_plugin", *argv]
    times, out = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed:\n{result.stderr}")
        out = result.stdout
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    one, _ = timed(
        ["plan", "--offline", "--cuda", "12.4", "--gpu-arch", "8.0", "--platform", "linux-64"],
        args.runs,
    )
    print(f"one machine: plan --cuda 12.4 --gpu-arch 8.0   {one:.3f} s (median of {args.runs})")
    for kind in ("mixed", "distinct"):
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
            for index in range(args.count):
                data = profile(index, distinct=kind == "distinct")
                (Path(folder) / f"{data['hostname']}.json").write_text(json.dumps(data))
            text, out = timed(["plan", "--offline", "--machine", folder], args.runs)
            as_json, report = timed(["plan", "--offline", "--machine", folder, "--json"], args.runs)
            plan = json.loads(report)
            assert len(plan["machines"]) == args.count and all(m["ok"] for m in plan["machines"])
            head = out.splitlines()[0]
            print(
                f"{kind:8} {args.count} profiles: plan --machine DIR {text:.3f} s "
                f"({text / one:.1f}x); --json {as_json:.3f} s ({as_json / one:.1f}x)  [{head}]"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
