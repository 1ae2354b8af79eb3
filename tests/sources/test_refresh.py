"""The refresh command: the snapshot and the arch lists derived from a channel served on
127.0.0.1, the rendered recipe read from ``.conda`` archives by HTTP range requests."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import zipfile
from typing import TYPE_CHECKING

import pytest
import zstandard
from support.conda_forge_channel import audited_rows, write_channel
from support.servers import QuietHandler, serve

from conda_torch_plugin.recipes import load_recipes_from, recipes_dir
from conda_torch_plugin.sources import refresh
from conda_torch_plugin.sources.records import bundled

if TYPE_CHECKING:
    from pathlib import Path

# recipe/build.sh as the feedstock writes it (v2.12.x: one 13.0 list, no aarch64 branch).
BUILD_SH = """\
if [[ ${cuda_compiler_version} != "None" ]]; then
    case ${cuda_compiler_version} in
        12.[89])
            export TORCH_CUDA_ARCH_LIST="5.0;6.0;7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX"
            ;;
        13.0)
            export TORCH_CUDA_ARCH_LIST="7.5;8.0;8.6;9.0;10.0;11.0;12.0+PTX"
            ;;
        *)
            echo "unsupported cuda version. edit build.sh"
            exit 1
            ;;
    esac
fi
"""
PAYLOAD = 400_000  # bytes of incompressible package content: never downloaded


def _tar_zst(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor().compress(raw.getvalue())


def write_conda(path: Path, build_sh: str) -> None:
    stem = path.name.removesuffix(".conda")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        archive.writestr(f"pkg-{stem}.tar.zst", _tar_zst({"lib/libtorch.so": os.urandom(PAYLOAD)}))
        archive.writestr(
            f"info-{stem}.tar.zst",
            _tar_zst({"info/index.json": b"{}", "info/recipe/build.sh": build_sh.encode()}),
        )


class RangeHandler(QuietHandler):
    """Serves ``Range: bytes=a-b`` and ``bytes=-n`` with 206, and counts what it sent."""

    sent: list[int] = []

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not wanted or not os.path.isfile(path):
            return super().do_GET()
        data = open(path, "rb").read()  # noqa: SIM115 - small test files
        spec = wanted.removeprefix("bytes=")
        start_text, _, end_text = spec.partition("-")
        if start_text == "":
            start, end = max(0, len(data) - int(end_text)), len(data) - 1
        else:
            start = int(start_text)
            end = min(int(end_text) if end_text else len(data) - 1, len(data) - 1)
        chunk = data[start : end + 1]
        self.send_response(206)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        self.wfile.write(chunk)
        RangeHandler.sent.append(len(chunk))


# A build whose script differs from the recipes: 2.12.1's linux-64 CUDA 12.9 build.
CHANGED = ("2.12.1", "linux-64", "cuda129")
CHANGED_SH = 'export TORCH_CUDA_ARCH_LIST="8.0;9.0+PTX"\n'


@pytest.fixture
def channel(tmp_path: Path) -> Path:
    root = write_channel(tmp_path / "channels", audited_rows())
    for row in audited_rows():
        name, version, build, _, subdir, _ = row
        if name == "pytorch" and build.startswith("cuda"):
            changed = (version, subdir, build[:7]) == CHANGED
            path = root / "conda-forge" / subdir / f"{name}-{version}-{build}.conda"
            write_conda(path, CHANGED_SH if changed else BUILD_SH)
    return root


@pytest.fixture
def recipes_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    for file in recipes_dir().iterdir():
        if file.name.endswith(".json"):
            shutil.copy(file, folder / file.name)
    return folder


def test_arch_list_from_a_build_script() -> None:
    assert refresh.arch_list_from_script(BUILD_SH, "12.9") == (
        ("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0", "10.0", "12.0"),
        ("12.0",),
    )
    assert refresh.arch_list_from_script(BUILD_SH, "12.6") is None  # no list applies
    two = BUILD_SH.replace(
        "            ;;\n        *)",
        '            if [[ ${target_platform} == "linux-aarch64" ]]; then\n'
        '                export TORCH_CUDA_ARCH_LIST="7.5;8.0;8.6;8.7;9.0;10.0;11.0;12.0+PTX"\n'
        "            fi\n            ;;\n        *)",
    )
    assert refresh.arch_list_from_script(two, "13.0") is None  # two lists: not guessed


def test_refresh_prints_the_diff_and_writes_what_it_derived(
    channel: Path, recipes_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    RangeHandler.sent.clear()
    with serve(channel, RangeHandler) as url:
        status = refresh.main(
            [
                "--channel",
                f"{url}/conda-forge",
                "--platform",
                "linux-aarch64",
                "--platform",
                "linux-64",
                "--recipes-dir",
                str(recipes_copy),
                "--write",
            ]
        )
    out = capsys.readouterr().out
    assert status == 0, out
    # The recipes agree with the build script for 2.12.1 on aarch64 (no sm_87) ...
    assert (
        "= pytorch 2.12.1 CUDA 13.0 linux-aarch64 build 0: 7.5;8.0;8.6;9.0;10.0;11.0;12.0+PTX"
        in (out)
    )
    # ... and a release the recipes lack is reported as new, with where it came from.
    assert "+ pytorch 2.14.0 CUDA 13.0 linux-64 build 0" in out
    # Read by range requests: far less than one package's payload per package.
    assert RangeHandler.sent and max(RangeHandler.sent) < PAYLOAD / 4
    assert "~ pytorch 2.12.1 CUDA 12.9 linux-64 build 0: recipes 5.0;" in out
    snapshot = bundled("conda-forge", recipes_copy)
    assert snapshot is not None and snapshot.origin == f"{url}/conda-forge"
    versions = {r.version for r in snapshot.records if r.name == "pytorch"}
    assert "2.9.0" not in versions and "2.14.0" in versions
    # The recipe file now holds what was derived, with a source for it, and still loads.
    after = load_recipes_from(recipes_copy)
    changed = after.arch_list("conda-forge", "2.12.1", "12.9", "linux-64")
    assert changed is not None and (changed.sass, changed.ptx) == (("8.0", "9.0"), ("9.0",))
    key = changed.source
    assert key.startswith("R") and url in after.sources[key]
    new = after.release("conda-forge", "2.14.0")
    assert new is not None and new.python == ("3.10", "3.11", "3.12", "3.13", "3.14")
    archs = after.arch_list("conda-forge", "2.14.0", "13.0", "linux-64")
    assert archs is not None and archs.name == "cf-cu130-sm75-sm120ptx"  # an existing list
    # Rows that agreed are as they were.
    same = after.arch_list("conda-forge", "2.12.1", "13.0", "linux-aarch64")
    assert same is not None and same.name == "cf-cu130-sm75-sm120ptx"


def test_refresh_never_writes_what_it_could_not_read(
    tmp_path: Path, recipes_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {f.name: f.read_text() for f in recipes_copy.iterdir()}
    status = refresh.main(
        ["--channel", (tmp_path / "none").as_uri(), "--recipes-dir", str(recipes_copy), "--write"]
    )
    assert status == 1
    assert "could not be read" in capsys.readouterr().err
    assert not (recipes_copy / "snapshots").exists()
    assert {f.name: f.read_text() for f in recipes_copy.iterdir()} == before
