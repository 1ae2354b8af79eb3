"""Generate a large local channel tree for bench_lock.py.

Layout (served with ``--channel-alias file:///DIR``)::

    DIR/pytorch/      the generated pytorch-channel records (tests/support/repodata.py) with the
                      real pytorch-channel linux-64 records (../shared/data) merged in, if present
    DIR/nvidia/       generated cuda-* / lib* packages
    DIR/conda-forge/  the generated base packages plus a synthetic "layered" package graph:
                      --names names per platform subdir (10 records each, on linux-64, win-64 and
                      osx-arm64) and --noarch-names noarch names (10 records each)

The synthetic graph follows the shape of conda-forge: 200 "core" names, every other name
at a level 1-9 depending on 1-2 core names and 0-3 names of lower levels (mostly open
version ranges), 30% of names compiled for Python 3.11 and 3.12. Deterministic for a
given seed.

    python bench/gen_channel.py DIR [--names 3500] [--noarch-names 1500] [--seed 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.repodata import (  # noqa: E402 (the test tables are the single source)
    PLATFORMS,
    conda_forge_records,
    nvidia_channel_records,
    pytorch_channel_records,
    record,
    write_channel,
)
from support.shared_data import REAL_PYTORCH_REPODATA  # noqa: E402

GENERATOR_VERSION = "2"
CORE = 200
VERSIONS = 10
PYTHONS = ("3.11", "3.12")


def synthetic_records(
    names: int, noarch_names: int, seed: int
) -> list[tuple[str, dict[str, object]]]:
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, object]]] = []
    levels = {i: 0 if i < CORE else rng.randint(1, 9) for i in range(names)}
    by_level: dict[int, list[int]] = {}
    for i, level in levels.items():
        by_level.setdefault(level, []).append(i)
    is_python = {i: rng.random() < 0.3 for i in range(names)}

    def deps_of(i: int) -> list[str]:
        if levels[i] == 0:
            return []
        picks = {f"synth-{rng.randrange(CORE):05d}" for _ in range(rng.randint(1, 2))}
        lower = [j for lvl in range(1, levels[i]) for j in by_level.get(lvl, [])[:400]]
        for _ in range(rng.randint(0, 3) if lower else 0):
            picks.add(f"synth-{rng.choice(lower):05d}")
        return [
            f"{name} >={rng.randint(0, 1)}.0" if rng.random() < 0.7 else name
            for name in sorted(picks)
        ]

    for i in range(names):
        name = f"synth-{i:05d}"
        base_deps = deps_of(i)
        for v in range(VERSIONS):
            version = f"{v // 3}.{v % 3}.0"
            for platform in PLATFORMS:
                if is_python[i]:
                    # 5 versions x 2 Pythons per platform: still 10 records.
                    if v >= VERSIONS // 2:
                        continue
                    for py in PYTHONS:
                        tag = py.replace(".", "")
                        deps = [
                            *base_deps,
                            f"python >={py},<3.{int(py[2:]) + 1}.0a0",
                            f"python_abi {py}.* *_cp{tag}",
                        ]
                        build = f"py{tag}h{_h(name, version, platform, py)}_0"
                        out.append(
                            record(name, version, build, platform, depends=deps, ext=".conda")
                        )
                else:
                    build = f"h{_h(name, version, platform)}_0"
                    out.append(
                        record(name, version, build, platform, depends=base_deps, ext=".conda")
                    )
    for i in range(noarch_names):
        name = f"synth-noarch-{i:05d}"
        deps = [
            "python >=3.8",
            *(f"synth-{rng.randrange(CORE):05d}" for _ in range(rng.randint(0, 2))),
        ]
        for v in range(VERSIONS):
            out.append(
                record(
                    name,
                    f"{v}.0",
                    "pyhd8ed1ab_0",
                    "noarch",
                    noarch="python",
                    depends=sorted(set(deps)),
                    ext=".conda",
                )
            )
    return out


def _h(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:7]


def generate(root: Path, names: int, noarch_names: int, seed: int) -> dict[str, object]:
    stamp = root / "generated.json"
    wanted = {
        "version": GENERATOR_VERSION,
        "names": names,
        "noarch_names": noarch_names,
        "seed": seed,
        "real_pytorch": REAL_PYTORCH_REPODATA.is_file(),
    }
    if stamp.is_file() and json.loads(stamp.read_text()).get("params") == wanted:
        return json.loads(stamp.read_text())
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    write_channel(root, "pytorch", pytorch_channel_records(), (*PLATFORMS, "noarch"))
    real = 0
    if REAL_PYTORCH_REPODATA.is_file():
        # Merge the real records into the generated linux-64 subdir.
        path = root / "pytorch" / "linux-64" / "repodata.json"
        ours = json.loads(path.read_text())
        theirs = json.loads(REAL_PYTORCH_REPODATA.read_text())
        real = len(theirs["packages"]) + len(theirs.get("packages.conda", {}))
        ours["packages"].update(theirs["packages"])
        ours["packages.conda"].update(theirs.get("packages.conda", {}))
        path.write_text(json.dumps(ours, sort_keys=True))
    write_channel(root, "nvidia", nvidia_channel_records(), ("linux-64", "win-64", "noarch"))
    records = conda_forge_records() + synthetic_records(names, noarch_names, seed)
    write_channel(root, "conda-forge", records, (*PLATFORMS, "noarch"))
    counts = {}
    for channel in ("pytorch", "nvidia", "conda-forge"):
        for subdir in (*PLATFORMS, "noarch"):
            path = root / channel / subdir / "repodata.json"
            if path.is_file():
                data = json.loads(path.read_text())
                counts[f"{channel}/{subdir}"] = len(data["packages"]) + len(data["packages.conda"])
    info = {
        "params": wanted,
        "records": counts,
        "total_records": sum(counts.values()),
        "real_pytorch_records": real,
        "seconds": round(time.perf_counter() - started, 1),
    }
    stamp.write_text(json.dumps(info, indent=1, sort_keys=True))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--names", type=int, default=3500)
    parser.add_argument("--noarch-names", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    info = generate(args.root, args.names, args.noarch_names, args.seed)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
