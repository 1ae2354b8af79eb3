"""How long ``conda-torch-env lock`` takes, against the floor: rattler's own solve calls.

Generates (once, cached) a large local channel tree with bench/gen_channel.py: more
than 100,000 records across linux-64, win-64, osx-arm64 and noarch, with the real
pytorch-channel linux-64 records merged in where ../shared/data has them. Then locks
a PyTorch 2.5.1 environment (CUDA 12.4 on linux-64 and win-64, CPU/MPS on osx-arm64,
plus --tops synthetic packages so the environments hold a few hundred packages) for
the three platforms and reports, as medians of --runs fresh processes:

- wall time of the ``conda-torch-env lock`` command (a subprocess, as a user runs it);
- the time inside the bare rattler ``solve()`` calls of that run (the command reports
  it): the floor no lock command can beat, and the ratio to it;
- the same solve made by calling ``lock.rattler.solve_platforms`` directly in a fresh
  process: its solve time and its whole process wall time (interpreter + imports +
  solve), the floor for any *command*;
- import overhead: a bare interpreter, ``import rattler``, everything the lock imports;

Every process runs with bytecode caching on, as an installed package does (the first,
untimed, run writes the .pyc files), whatever PYTHONDONTWRITEBYTECODE says.
- ``conda-lock lock`` on the same inputs when conda, mamba or micromamba is on PATH
  (skipped otherwise, saying so: without one, conda-lock tries to download one).

    python bench/bench_lock.py [--data bench/.data] [--runs 5] [--tops 40] [--json]

Target (issue 3): the command within 1.5x of the bare solve.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from gen_channel import generate  # noqa: E402

PLATFORMS = ("linux-64", "win-64", "osx-arm64")
VIRTUAL_PACKAGES = """\
subdirs:
  linux-64:
    packages:
      __unix: "0"
      __linux: "5.10"
      __glibc: "2.28"
      __archspec: "1 x86_64"
      __cuda: "12.4"
  win-64:
    packages:
      __win: "0"
      __archspec: "1 x86_64"
      __cuda: "12.4"
  osx-arm64:
    packages:
      __unix: "0"
      __osx: "11.0"
      __archspec: "1 arm64"
"""

DIRECT_SOLVE = """
import json, sys, time
from pathlib import Path
from conda_torch_plugin.channels import resolve_channels
from conda_torch_plugin.condalock.envspec import read_environment, read_virtual_packages
from conda_torch_plugin.lock.rattler import solve_platforms, solve_virtual_packages
env, vp, alias = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
spec = read_environment(env)
vps = read_virtual_packages(vp)
platforms = spec.lock_platforms
started = time.perf_counter()
result = solve_platforms(
    resolve_channels(spec.channels, alias),
    {p: spec.dependencies[p] for p in platforms},
    {p: solve_virtual_packages(p, vps) for p in platforms},
)
print(json.dumps({"solve_seconds": result.solve_seconds,
                  "call_seconds": time.perf_counter() - started,
                  "packages": {p: len(s.records) for p, s in result.platforms.items()}}))
"""

# What a `lock` run imports (ruamel.yaml only where environment.yml is outside the
# layout _yaml_reader.fast_load_lines reads), building the CLI parser as the command does.
LOCK_IMPORTS = (
    "from conda_torch_plugin.cli import build_parser; build_parser(); "
    "import conda_torch_plugin.lock, conda_torch_plugin.lock.rattler, "
    "conda_torch_plugin.condalock.envspec, conda_torch_plugin.condalock.content_hash, "
    "conda_torch_plugin.condalock.lockfile, conda_torch_plugin.condalock.explicit, "
    "conda_torch_plugin.flavour, conda_torch_plugin.atomic, asyncio, rattler"
)


def environment_text(tops: int) -> str:
    # Synthetic names spread over the levels of the generated graph, plus some noarch ones.
    step = max(1, 3200 // max(tops, 1))
    extra = [f"synth-{i:05d}" for i in range(300, 3500, step)][:tops]
    extra += [f"synth-noarch-{i:05d}" for i in range(0, 1500, 150)]
    lines = [
        "name: bench",
        "channels:",
        "  - pytorch",
        "  - nvidia",
        "  - conda-forge",
        "platforms:",
        *(f"  - {p}" for p in PLATFORMS),
        "dependencies:",
        "  - python=3.12",
        "  - pytorch=2.5.1",
        "  - torchvision=0.20.1",
        "  - torchaudio=2.5.1",
        "  - pytorch-cuda=12.4  # [linux]",
        "  - pytorch-cuda=12.4  # [win]",
        *(f"  - {name}" for name in extra),
    ]
    return "\n".join(lines) + "\n"


# As an installed package runs: with bytecode caching (a wheel install compiles .pyc files).
ENVIRON = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env or ENVIRON, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, done.stdout


def lock_command() -> list[str]:
    script = Path(sys.executable).parent / "conda-torch-env"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "conda_torch_plugin"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench(args: argparse.Namespace) -> dict[str, object]:
    info = generate(args.data / "channels", args.names, args.noarch_names, seed=1)
    alias = (args.data / "channels").resolve().as_uri()
    work = Path(tempfile.mkdtemp(prefix="bench-lock-"))
    try:
        env = work / "environment.yml"
        env.write_text(environment_text(args.tops))
        vp = work / "virtual-packages.yml"
        vp.write_text(VIRTUAL_PACKAGES)

        ours: list[tuple[float, dict[str, object]]] = []
        timed([*lock_command(), "lock", "--channel-alias", alias], work)  # warm-up: .pyc, caches
        for _ in range(args.runs):
            (work / "conda-lock.yml").unlink(missing_ok=True)
            wall, out = timed([*lock_command(), "lock", "--channel-alias", alias, "--json"], work)
            ours.append((wall, json.loads(out)))
        last = ours[-1][1]

        direct: list[tuple[float, dict[str, float]]] = []
        for _ in range(args.runs):
            wall, out = timed([sys.executable, "-c", DIRECT_SOLVE, str(env), str(vp), alias], work)
            direct.append((wall, json.loads(out)))

        imports = {}
        for label, code in (
            ("python -c pass", "pass"),
            ("import rattler", "import rattler"),
            ("everything lock imports", LOCK_IMPORTS),
        ):
            imports[label] = median(
                [timed([sys.executable, "-c", code], work)[0] for _ in range(args.runs)]
            )

        conda_lock = run_conda_lock(work, env, vp, alias)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    command_wall = median([w for w, _ in ours])
    command_solve = median([float(d["solve_seconds"]) for _, d in ours])
    direct_solve = median([d["solve_seconds"] for _, d in direct])
    direct_wall = median([w for w, _ in direct])
    return {
        "channel_records": info["total_records"],
        "real_pytorch_records": info["real_pytorch_records"],
        "packages": {p: v["packages"] for p, v in last["platforms"].items()},
        "runs": args.runs,
        "command_wall_s": round(command_wall, 3),
        "command_solve_s": round(command_solve, 3),
        "ratio_to_solve_calls": round(command_wall / command_solve, 2),
        "direct_solve_s": round(direct_solve, 3),
        "direct_process_wall_s": round(direct_wall, 3),
        "ratio_to_direct_process": round(command_wall / direct_wall, 2),
        "imports_s": {k: round(v, 3) for k, v in imports.items()},
        "conda_lock": conda_lock,
    }


def run_conda_lock(work: Path, env: Path, vp: Path, alias: str) -> dict[str, object]:
    conda = next(
        (shutil.which(n) for n in ("conda", "mamba", "micromamba") if shutil.which(n)), None
    )
    if conda is None:
        return {
            "skipped": "no conda, mamba or micromamba on PATH (conda-lock would try to "
            "download one for over a minute)"
        }
    conda_lock = shutil.which("conda-lock") or str(Path(sys.executable).parent / "conda-lock")
    command = [
        conda_lock,
        "lock",
        "--conda",
        conda,
        "-f",
        str(env),
        "--virtual-package-spec",
        str(vp),
        "--lockfile",
        str(work / "conda-lock-cl.yml"),
        *(x for p in PLATFORMS for x in ("-p", p)),
    ]
    environ = {**ENVIRON, "CONDA_CHANNEL_ALIAS": alias}
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=work, env=environ, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {
            "failed": done.returncode,
            "wall_s": round(wall, 3),
            "stderr_tail": done.stderr.strip().splitlines()[-5:],
        }
    return {"executable": conda, "wall_s": round(wall, 3)}


def report(result: dict[str, object]) -> str:
    imports = result["imports_s"]
    cl = result["conda_lock"]
    lines = [
        f"channel: {result['channel_records']:,} records "
        f"({result['real_pytorch_records']:,} of them real pytorch-channel records)",
        "environment: pytorch 2.5.1 + CUDA 12.4 (linux-64, win-64), CPU/MPS (osx-arm64); "
        "packages per platform: " + ", ".join(f"{p} {n}" for p, n in result["packages"].items()),
        f"medians of {result['runs']} runs:",
        f"  conda-torch-env lock (whole command)      {result['command_wall_s']:.3f} s",
        f"  bare rattler solve calls inside it        {result['command_solve_s']:.3f} s"
        f"   ratio {result['ratio_to_solve_calls']:.2f}x",
        f"  solve.py called directly: solve calls     {result['direct_solve_s']:.3f} s",
        f"  solve.py called directly: process wall    {result['direct_process_wall_s']:.3f} s"
        f"   ratio {result['ratio_to_direct_process']:.2f}x",
        f"  python -c pass                            {imports['python -c pass']:.3f} s",
        f"  python -c 'import rattler'                {imports['import rattler']:.3f} s",
        f"  python -c <everything lock imports>       {imports['everything lock imports']:.3f} s",
    ]
    if "skipped" in cl:
        lines.append(f"  conda-lock lock: skipped: {cl['skipped']}")
    elif "failed" in cl:
        lines.append(f"  conda-lock lock: failed with status {cl['failed']} after {cl['wall_s']} s")
    else:
        lines.append(f"  conda-lock lock ({cl['executable']})  {cl['wall_s']:.3f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=HERE / ".data",
        help="where the generated channels are kept (default: bench/.data)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--tops", type=int, default=40, help="synthetic top-level packages added to the environment"
    )
    parser.add_argument("--names", type=int, default=3500)
    parser.add_argument("--noarch-names", type=int, default=1500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = bench(args)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
