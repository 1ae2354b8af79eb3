"""A ``file://`` conda-forge shaped like the real one, for planning from repodata.

Record names, build strings (``cuda129_generic_py312_h..._202``: the feedstock's build
number plus conda-forge's variant offset), ``depends`` with the python and
cuda-version run-export pins, and the companions' ``pytorch >=X.Y,<X.Y+1`` pin that
``pin_subpackage('pytorch', max_pin='x.x')`` gives, as recipes/sources S25/S36/S37
describe them. Each audited case is one table row here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from support.repodata import short_hash

if TYPE_CHECKING:
    from pathlib import Path

Row = tuple[str, str, str, int, str, tuple[str, ...]]  # name, version, build, number, subdir, deps


def _py_dep(py: str) -> str:
    major, minor = py.split(".")
    return f"python >={py},<{major}.{int(minor) + 1}.0a0"


def torch(
    version: str, subdir: str, pythons: str, cuda: str | None, build: int, *, offset: int = 200
) -> list[Row]:
    """pytorch builds of one variant for the Pythons ``"3.10-3.13"``."""
    first, last = (int(p.split(".")[1]) for p in pythons.split("-"))
    rows: list[Row] = []
    for minor in range(first, last + 1):
        py = f"3.{minor}"
        deps = [_py_dep(py), "libtorch " + version]
        if cuda:
            major = int(cuda.split(".")[0])
            deps += [f"cuda-version >={cuda},<{major + 1}", f"__cuda >={cuda}"]
            kind, number = f"cuda{cuda.replace('.', '')}", offset + build
        else:
            kind, number = "cpu", build
        name = f"{kind}_generic_py3{minor}_{short_hash(version, subdir, py, kind, str(build))}"
        rows.append(("pytorch", version, f"{name}_{number}", number, subdir, tuple(deps)))
    return rows


def companion(
    name: str, version: str, pytorch: str, subdir: str, *, cuda: str | None = None
) -> Row:
    """torchvision/torchaudio built against pytorch X.Y: ``pytorch >=X.Y,<X.Y+1``."""
    x, y = pytorch.split(".")[:2]
    deps = [f"pytorch >={x}.{y},<{x}.{int(y) + 1}", _py_dep("3.12")]
    kind = "cpu"
    if cuda:
        major = int(cuda.split(".")[0])
        deps += [f"cuda-version >={cuda},<{major + 1}", "pytorch * cuda*"]
        kind = f"cuda{cuda.replace('.', '')}"
    build = f"{kind}_py312_{short_hash(name, version, pytorch, subdir, kind)}_0"
    return (name, version, build, 0, subdir, tuple(deps))


def audited_rows() -> list[Row]:
    """The audited cases (S36, S37), as the channel holds them."""
    rows: list[Row] = []
    for subdir in ("linux-64", "linux-aarch64"):
        rows += torch("2.8.0", subdir, "3.10-3.13", "12.9", 0)
        rows += torch("2.9.1", subdir, "3.10-3.13", "12.9", 0)  # no 2.9.0; no py3.14
        rows += torch("2.10.0", subdir, "3.10-3.13", "12.9", 0)  # build 0: no 3.14, no 13.0
        rows += torch("2.12.1", subdir, "3.10-3.14", "12.9", 0)
        rows += torch("2.12.1", subdir, "3.10-3.14", "13.0", 0)
        rows += torch("2.13.0", subdir, "3.10-3.14", "12.9", 0)
        rows += torch("2.13.0", subdir, "3.10-3.14", "13.0", 1)  # builds 0-1 lack sm_87
        rows += torch("2.13.0", subdir, "3.10-3.14", None, 1)
        rows.append(companion("torchvision", "0.28.0", "2.13.0", subdir, cuda="13.0"))
        rows.append(companion("torchvision", "0.27.1", "2.12.1", subdir, cuda="12.9"))
        rows.append(companion("torchvision", "0.24.1", "2.9.1", subdir, cuda="12.9"))
        rows.append(companion("torchaudio", "2.9.1", "2.9.1", subdir))
        rows.append(companion("torchaudio", "2.11.0", "2.10.0", subdir))  # only against 2.10
        rows.append(companion("torchaudio", "2.10.0", "2.10.0", subdir))
    rows += torch("2.12.1", "win-64", "3.10-3.14", "12.8", 0)
    rows += torch("2.13.0", "win-64", "3.10-3.14", "12.8", 1)
    rows.append(companion("torchvision", "0.27.1", "2.12.1", "win-64", cuda="12.9"))
    rows.append(companion("torchvision", "0.28.0", "2.13.0", "win-64", cuda="12.8"))
    rows += torch("2.13.0", "osx-64", "3.10-3.14", None, 0)
    rows += torch("2.14.0", "linux-64", "3.10-3.14", "13.0", 0)  # newer than the recipes
    return rows + runtime_rows()


def runtime_rows(
    cudas: tuple[str, ...] = ("12.6", "12.8", "12.9", "13.0"),
    pythons: tuple[str, ...] = ("3.10", "3.11", "3.12", "3.13", "3.14"),
) -> list[Row]:
    """cuda-version (noarch, with ``__cuda`` in constrains on the real channel) and python."""
    rows: list[Row] = [("cuda-version", f"{c}", "h0000000_3", 3, "noarch", ()) for c in cudas]
    for subdir in ("linux-64", "linux-aarch64", "win-64", "osx-64"):
        rows += [
            ("python", f"{p}.1", f"h{subdir[:3]}000_0_cpython", 0, subdir, ()) for p in pythons
        ]
    return rows


def write_channel(root: Path, rows: list[Row], name: str = "conda-forge") -> Path:
    """``root/name/SUBDIR/repodata.json`` for every subdir in ``rows`` plus noarch."""
    subdirs = {"noarch", *(r[4] for r in rows)}
    for subdir in subdirs:
        packages = {}
        for pkg, version, build, number, sub, deps in rows:
            if sub != subdir:
                continue
            packages[f"{pkg}-{version}-{build}.conda"] = {
                "name": pkg,
                "version": version,
                "build": build,
                "build_number": number,
                "subdir": sub,
                "depends": list(deps),
                "md5": "0" * 32,
                "sha256": "0" * 64,
                "size": 1,
                "timestamp": 1_760_000_000_000,
            }
        folder = root / name / subdir
        folder.mkdir(parents=True, exist_ok=True)
        repodata = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": packages}
        (folder / "repodata.json").write_text(json.dumps(repodata, indent=1))
    return root
