"""Small real wheels, a ``--find-links`` folder of them and a PEP 503 simple index.

The wheels are built here (zip archives with METADATA, WHEEL and a RECORD that
pip and uv verify), pure-Python or with a platform tag. ``simple_index`` lays
out ``ROOT/simple/NAME/index.html`` with ``#sha256=`` links to ``ROOT/files/``;
serve ROOT with ``support.servers.serve`` (127.0.0.1 only, stops by itself).
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    tag: str = "py3-none-any"
    requires: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()  # console scripts: "NAME" runs MODULE:main

    @property
    def dist(self) -> str:
        return f"{re.sub(r'[-_.]+', '_', self.name)}-{self.version}"

    @property
    def filename(self) -> str:
        return f"{self.dist}-{self.tag}.whl"


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel: Wheel, folder: Path) -> Path:
    module = re.sub(r"[-.]+", "_", wheel.name)
    info = f"{wheel.dist}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {wheel.name}\nVersion: {wheel.version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in wheel.requires)
    files = {
        f"{module}/__init__.py": (
            f"VERSION = {wheel.version!r}\n\ndef main():\n    print(VERSION)\n"
        ),
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: "
            f"{'true' if wheel.tag.endswith('-any') else 'false'}\nTag: {wheel.tag}\n"
        ),
    }
    if wheel.scripts:
        files[f"{info}/entry_points.txt"] = "[console_scripts]\n" + "".join(
            f"{s} = {module}:main\n" for s in wheel.scripts
        )
    record = [f"{p},sha256={_digest(t.encode())},{len(t.encode())}" for p, t in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / wheel.filename
    with zipfile.ZipFile(target, "w") as archive:
        for path, text in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), text)
    return target


def find_links(folder: Path, wheels: tuple[Wheel, ...]) -> Path:
    for wheel in wheels:
        build_wheel(wheel, folder)
    return folder


def simple_index(root: Path, wheels: tuple[Wheel, ...]) -> Path:
    """ROOT/simple/ (PEP 503) over ROOT/files/; returns ROOT."""
    files = root / "files"
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        path = build_wheel(wheel, files)
        project = re.sub(r"[-_.]+", "-", wheel.name).lower()
        by_project.setdefault(project, []).append(path)
    simple = root / "simple"
    simple.mkdir(parents=True, exist_ok=True)
    links = []
    for project, paths in sorted(by_project.items()):
        (simple / project).mkdir(exist_ok=True)
        anchors = "".join(
            f'<a href="/files/{p.name}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">'
            f"{p.name}</a>\n"
            for p in paths
        )
        (simple / project / "index.html").write_text(f"<html><body>\n{anchors}</body></html>\n")
        links.append(f'<a href="/simple/{project}/">{project}</a>\n')
    (simple / "index.html").write_text(f"<html><body>\n{''.join(links)}</body></html>\n")
    return root
