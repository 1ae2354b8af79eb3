"""Cold-install benchmark: the streaming install against download-then-extract.

Builds (once, under ``bench/.data/``) a channel of 800 MB of payload, half of it
incompressible (so its archives total over 400 MB): one big ``.tar.bz2`` shaped like the pytorch
channel's ``pytorch`` and several ``.conda`` archives like conda-forge's. A
127.0.0.1 HTTP server, throttled per connection, serves it; each variant
installs the lock into a fresh prefix with a cold cache in its own process, and
the wall time and peak RSS of that process are reported:

- ``before``: the previous commit's code (``git archive REV``, default
  ``HEAD~1`` or ``--before REV``): every archive downloaded and hashed, then
  extracted by rattler while linking.
- ``streaming``: this tree: each archive extracted as soon as it is verified,
  the ``.tar.bz2`` decoded on all cores.

    python bench/bench_install.py --rates 100,25 --before main

Numbers depend on the cores: bzip2 blocks decode in parallel only as far as
there are cores to decode them.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / ".data"
MB = 1_000_000


def _tar(members: dict[str, bytes], mode: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _payload(name: str, size: int) -> dict[str, bytes]:
    """Half incompressible (random) bytes, half text-like, in 8 MB files."""
    rng = hashlib.sha256(name.encode())
    files: dict[str, bytes] = {}
    chunk = 8 * MB
    for i in range(0, size // 2, chunk):
        files[f"lib/{name}/rand{i // chunk}.so"] = os.urandom(min(chunk, size // 2 - i))
    text = (rng.hexdigest() * 64 + "\n").encode()
    for i in range(0, size // 2, chunk):
        n = min(chunk, size // 2 - i)
        files[f"lib/{name}/text{i // chunk}.py"] = (text * (n // len(text) + 1))[:n]
    return files


def _info(name: str, version: str, build: str, files: dict[str, bytes]) -> dict[str, bytes]:
    index = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": [],
        "subdir": "linux-64",
        "timestamp": 1730000000000,
    }
    paths = {
        "paths": [
            {
                "_path": p,
                "path_type": "hardlink",
                "size_in_bytes": len(d),
                "sha256": hashlib.sha256(d).hexdigest(),
            }
            for p, d in sorted(files.items())
        ],
        "paths_version": 1,
    }
    return {
        "info/index.json": json.dumps(index).encode(),
        "info/paths.json": json.dumps(paths).encode(),
        "info/files": "\n".join(sorted(files)).encode() + b"\n",
    }


def build_channel(total_mb: int) -> Path:
    channel = DATA / f"channel-{total_mb}"
    if (channel / "lock.json").is_file():
        return channel
    shutil.rmtree(channel, ignore_errors=True)
    subdir = channel / "bench" / "linux-64"
    subdir.mkdir(parents=True)
    records = []
    big = total_mb * MB // 2
    specs = [("pytorch", "2.5.1", "py3.12_cuda12.4_cudnn9.1.0_0", big, ".tar.bz2")]
    rest = total_mb * MB - big
    for i in range(5):
        specs.append((f"libcuda-part{i}", "12.4.127", "h0_0", rest // 5, ".conda"))
    for name, version, build, size, ext in specs:
        files = _payload(name, size)
        info = _info(name, version, build, files)
        fn = f"{name}-{version}-{build}{ext}"
        if ext == ".tar.bz2":
            data = _tar({**info, **files}, "w:bz2")
        else:
            import zstandard

            z = zstandard.ZstdCompressor(level=3)
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
                zf.writestr("metadata.json", b'{"conda_pkg_format_version": 2}')
                zf.writestr(f"pkg-{fn[:-6]}.tar.zst", z.compress(_tar(files, "w")))
                zf.writestr(f"info-{fn[:-6]}.tar.zst", z.compress(_tar(info, "w")))
            data = out.getvalue()
        (subdir / fn).write_bytes(data)
        records.append(
            {
                "name": name,
                "version": version,
                "build": build,
                "fn": fn,
                "sha256": hashlib.sha256(data).hexdigest(),
                "md5": hashlib.md5(data).hexdigest(),
                "size": len(data),
            }
        )
    (channel / "lock.json").write_text(json.dumps(records))
    return channel


def throttled_handler(rate: float) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            sent = 0
            while chunk := source.read(256 * 1024):
                outputfile.write(chunk)
                sent += len(chunk)
                ahead = sent / rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)

    return Handler


def serve(root: Path, rate: float) -> tuple[str, http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(throttled_handler(rate), directory=str(root))
    )
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from conda_torch_plugin.condalock.lockfile import read_lockfile
from conda_torch_plugin.install import install_from_lock
lock = read_lockfile(Path(sys.argv[1]))
start = time.perf_counter()
result = install_from_lock(lock, "linux-64", Path(sys.argv[2]), cache_dir=Path(sys.argv[3]))
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
import conda_torch_plugin
print(json.dumps({"code": str(Path(conda_torch_plugin.__file__).parent.parent),
                  "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime, "timings": result.timings}))
"""


def write_lock(channel: Path, url: str, dest: Path) -> Path:
    """A conda-lock.yml for the bench channel, served from ``url``."""
    records = json.loads((channel / "lock.json").read_text())
    lines = [
        "version: 1",
        "metadata:",
        "  content_hash: {linux-64: bench}",
        f"  channels: [{{url: {url}/bench, used_env_vars: []}}]",
        "  platforms: [linux-64]",
        "  sources: [environment.yml]",
        "package:",
    ]
    for r in records:
        lines += [
            f"- name: {r['name']}",
            f"  version: {r['version']}",
            "  manager: conda",
            "  platform: linux-64",
            "  dependencies: {}",
            f"  build: {r['build']}",
            f"  url: {url}/bench/linux-64/{r['fn']}",
            f"  hash: {{md5: {r['md5']}, sha256: {r['sha256']}}}",
            "  category: main",
            "  optional: false",
        ]
    dest.write_text("\n".join(lines) + "\n")
    return dest


def run_variant(code: Path, lock: Path, work: Path) -> dict[str, float]:
    prefix, cache = work / "env", work / "cache"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(code))
    out = subprocess.run(  # cwd: "python -c" puts it first on sys.path, before PYTHONPATH
        [sys.executable, "-c", CHILD, str(lock), str(prefix), str(cache)],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"install failed ({code}):\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(result["code"]).resolve() != code.resolve():
        raise SystemExit(f"the {code} variant imported {result['code']} instead")
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--total-mb", type=int, default=800, help="payload MB (archives: about half + headers)"
    )
    parser.add_argument("--rates", default="100,25", help="MB/s per connection, comma-separated")
    parser.add_argument("--before", default="HEAD~1", help="git revision of the old install path")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    channel = build_channel(args.total_mb)
    old = DATA / "before"
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", args.before, "conda_torch_plugin"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(old, filter="data")
    size = sum(r["size"] for r in json.loads((channel / "lock.json").read_text()))
    print(f"lock: {size / MB:.0f} MB in archives; cores: {os.cpu_count()}; before = {args.before}")
    print(f"{'rate':>9}  {'variant':<10} {'wall s':>8} {'peak RSS MB':>12} {'CPU s':>7}  phases")
    for rate in [float(r) for r in args.rates.split(",")]:
        url, server = serve(channel, rate * MB)
        try:
            with tempfile.TemporaryDirectory(dir=DATA) as tmp:
                lock = write_lock(channel, url, Path(tmp) / "conda-lock.yml")
                for _ in range(args.repeat):
                    for name, code in (("before", old), ("streaming", ROOT)):
                        r = run_variant(code, lock, Path(tmp) / name)
                        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items())
                        print(
                            f"{rate:>5.0f} MB/s  {name:<10} {r['wall_s']:>8.1f} "
                            f"{r['peak_rss_mb']:>12.0f} {r['cpu_s']:>7.1f}  {phases}",
                            flush=True,
                        )
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
