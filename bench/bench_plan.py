"""How long ``conda-torch-env plan`` takes when it reads the channel: cold and warm cache.

Serves a conda-forge-shaped channel on 127.0.0.1 (a mirror: ``--channel-alias``) whose
linux-64, linux-aarch64, win-64 and noarch repodata.json hold the torch family as large
as conda-forge's (every pytorch 2.6.0-2.14.0 build for Python 3.10-3.14, CUDA
12.6-13.0, CPU, with 30 rebuilds each; torchvision and torchaudio likewise) plus
--others unrelated records per subdir, so the repodata is megabytes, not kilobytes.
Then runs, as fresh processes, ``conda-torch-env plan --cuda 12.9 --gpu-arch 8.6
--platform linux-64 --channel-alias URL``:

- cold: an empty py-rattler cache (RATTLER_CACHE_DIR) for each run;
- warm: the cache the first run filled;
- offline: ``--offline`` with nothing cached (the bundled snapshot);

and reports medians of --runs.

    python bench/bench_plan.py [--runs 5] [--others 20000] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBDIRS = ("linux-64", "linux-aarch64", "win-64")
RELEASES = ("2.6.0", "2.7.0", "2.7.1", "2.8.0", "2.9.1", "2.10.0", "2.11.0", "2.12.0", "2.12.1")
RELEASES += ("2.13.0", "2.14.0")


def _record(name: str, version: str, build: str, number: int, subdir: str, deps: list[str]):
    return f"{name}-{version}-{build}.conda", {
        "name": name,
        "version": version,
        "build": build,
        "build_number": number,
        "subdir": subdir,
        "depends": deps,
        "md5": "0" * 32,
        "sha256": "0" * 64,
        "size": 1,
        "timestamp": 1_760_000_000_000,
    }


def generate(root: Path, others: int) -> None:
    for subdir in (*SUBDIRS, "noarch"):
        packages: dict[str, dict] = {}
        if subdir != "noarch":
            for version in RELEASES:
                x, y = version.split(".")[:2]
                for minor in range(10, 15):
                    py = f"python >=3.{minor},<3.{minor + 1}.0a0"
                    for kind in ("cuda126", "cuda128", "cuda129", "cuda130", "cpu"):
                        for rebuild in range(30):
                            number = (200 if kind != "cpu" else 0) + rebuild
                            build = f"{kind}_generic_py3{minor}_h{rebuild:07x}_{number}"
                            deps = [py, f"libtorch {version}"]
                            if kind != "cpu":
                                cuda = f"{kind[4:6]}.{kind[6]}"
                                deps.append(f"cuda-version >={cuda},<{int(cuda[:2]) + 1}")
                            key, rec = _record("pytorch", version, build, number, subdir, deps)
                            packages[key] = rec
                        pin = f"pytorch >={x}.{y},<{x}.{int(y) + 1}"
                        for name in ("torchvision", "torchaudio"):
                            build = f"{kind}_py3{minor}_h0000000_0"
                            key, rec = _record(name, version, build, 0, subdir, [pin, py])
                            packages[key] = rec
        for i in range(others):
            key, rec = _record(f"other-{i % 2000}", f"1.{i // 2000}", "h0_0", 0, subdir, [])
            packages[key] = rec
        folder = root / "conda-forge" / subdir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "repodata.json").write_text(
            json.dumps({"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages})
        )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(url: str, cache: Path, *extra: str) -> float:
    env = dict(os.environ, RATTLER_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    env.pop("CONDA_OFFLINE", None)
    command = [sys.executable, "-m", "conda_torch_plugin", "plan", "--cuda", "12.9"]
    command += ["--gpu-arch", "8.6", "--platform", "linux-64", "--channel-alias", url, *extra]
    start = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"plan failed: {out.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--others", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        base = Path(tmp)
        generate(base / "channels", args.others)
        size = sum(p.stat().st_size for p in (base / "channels").rglob("repodata.json"))
        with serve(base / "channels") as url:
            cold = [run(url, base / f"cold-{i}") for i in range(args.runs)]
            warm_cache = base / "warm"
            run(url, warm_cache)
            warm = [run(url, warm_cache) for _ in range(args.runs)]
            offline = [run(url, base / f"off-{i}", "--offline") for i in range(args.runs)]
    result = {
        "repodata_bytes": size,
        "cold_s": statistics.median(cold),
        "warm_s": statistics.median(warm),
        "offline_snapshot_s": statistics.median(offline),
        "runs": args.runs,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"repodata served: {size / 1e6:.1f} MB over 127.0.0.1 ({len(SUBDIRS)} subdirs + noarch)"
        )
        for key in ("cold_s", "warm_s", "offline_snapshot_s"):
            print(f"{key:>20}: {result[key]:.3f} s (median of {args.runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
