"""Derive the channel data from a channel, for maintainers; prints a diff.

    python -m conda_torch_plugin.sources.refresh [--channel URL] [--platform P ...] [--write]
    python -m conda_torch_plugin.sources.refresh --from-recipes --write

- **Snapshot**: the torch-family records of the channel (``records.query``), which
  ``--write`` stores as ``recipes/snapshots/SOURCE.json`` with today's date: the
  fallback a plan uses when no channel can be read.
- **Arch lists**: for the newest build of each pytorch version, CUDA and platform,
  the ``TORCH_CUDA_ARCH_LIST`` of its rendered recipe (``info/recipe/build.sh`` or
  ``bld.bat`` in the ``.conda`` archive, read with HTTP range requests through
  conda-package-streaming, never the whole package), compared with the recipes.
  A list is reported only when exactly one assignment in the script applies to
  that CUDA version; anything else is reported as not sourced, never guessed.
  Arch-list rows are printed, for a maintainer to put into ``recipes/`` with their
  source; only the snapshot is written.

``--from-recipes`` writes the snapshot from the recipe rows instead of a channel
(for a checkout without network): the file says so in its ``origin``.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conda_torch_plugin import compat
from conda_torch_plugin.sources import SOURCES, source
from conda_torch_plugin.sources.records import Record, snapshot_path, snapshot_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from conda_torch_plugin.recipes import Recipes

    # Reads one file of a remote package's info/ folder: (package URL, path) -> text or None.
    InfoReader = Callable[[str, str], str | None]

PLATFORMS = ("linux-64", "linux-aarch64", "win-64", "osx-64", "osx-arm64")
_CASE = re.compile(r"^\s*([^\s()#]+)\)\s*$")
_ARCH = re.compile(r"TORCH_CUDA_ARCH_LIST=\"?([0-9.;+PTXa]+)\"?")
_IF = re.compile(r"cuda_compiler_version[^=]*==\s*\"?([0-9.*\[\]-]+)\"?")


@dataclass(frozen=True)
class ArchFinding:
    pytorch: str
    cuda: str
    platform: str
    build: int  # the feedstock's build number
    derived: tuple[tuple[str, ...], tuple[str, ...]] | None  # (sass, ptx); None: not sourced
    recipes: tuple[tuple[str, ...], tuple[str, ...]] | None
    where: str  # the package URL, or why nothing could be sourced

    def line(self) -> str:
        what = f"pytorch {self.pytorch} CUDA {self.cuda} {self.platform} build {self.build}"
        if self.derived is None:
            return f"? {what}: not sourced ({self.where})"
        text = _arch_text(*self.derived)
        if self.recipes is None:
            return f"+ {what}: {text} (not in the recipes; from {self.where})"
        if self.recipes == self.derived:
            return f"= {what}: {text}"
        return f"~ {what}: recipes {_arch_text(*self.recipes)} -> {text} (from {self.where})"


def arch_list_from_script(script: str, cuda: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The arch list a build script sets for CUDA ``cuda``: the one assignment under a
    ``case`` label or ``if`` test matching it, or the only assignment; else None."""
    assignments: list[tuple[str | None, str]] = []
    label: str | None = None
    for line in script.splitlines():
        if (m := _CASE.match(line)) or (m := _IF.search(line)):
            label = m[1]
        if m := _ARCH.search(line):
            assignments.append((label, m[1]))
    matching = [v for lab, v in assignments if lab is not None and _label_matches(lab, cuda)]
    values = set(matching) if matching else {v for _, v in assignments}
    if len(values) != 1:
        return None
    return _parse_arch(values.pop())


def _label_matches(label: str, cuda: str) -> bool:
    return any(fnmatch.fnmatchcase(cuda, part) for part in label.split("|"))


def _parse_arch(value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    sass, ptx = [], []
    for item in filter(None, value.split(";")):
        cc = item.removesuffix("+PTX")
        sass.append(cc)
        if item.endswith("+PTX"):
            ptx.append(cc)
    return tuple(sorted(sass, key=compat.parse_cc)), tuple(ptx)


def _arch_text(sass: Sequence[str], ptx: Sequence[str]) -> str:
    return ";".join(f"{s}+PTX" if s in ptx else s for s in sass)


def derive_arch_lists(
    channel_url: str, records: Iterable[Record], recipes: Recipes, name: str, read: InfoReader
) -> list[ArchFinding]:
    """One finding per (pytorch version, CUDA, platform): its newest build's arch list."""
    from conda_torch_plugin.sources.availability import feedstock_build

    src = source(name)
    newest: dict[tuple[str, str, str], Record] = {}
    for r in records:
        flavour = src.build_flavour(r.build) if r.name == "pytorch" else None
        if flavour is None or flavour.compute != "cuda" or flavour.cuda is None:
            continue
        key = (r.version, flavour.cuda, r.subdir)
        if key not in newest or r.build_number > newest[key].build_number:
            newest[key] = r
    findings = []
    for (version, cuda, platform), r in sorted(newest.items()):
        url = f"{channel_url.rstrip('/')}/{platform}/{r.name}-{r.version}-{r.build}.conda"
        script_name = "bld.bat" if platform.startswith("win-") else "build.sh"
        build = feedstock_build(r)
        release = recipes.release(name, version)
        variant = release.variant(cuda, platform) if release else None
        listed = variant.archs_at(platform, build) if variant else None
        known = (listed.sass, listed.ptx) if listed else None
        text = read(url, f"info/recipe/{script_name}")
        if text is None:
            findings.append(
                ArchFinding(version, cuda, platform, build, None, known, f"no {script_name}")
            )
            continue
        derived = arch_list_from_script(text, cuda)
        where = url if derived else f"no single TORCH_CUDA_ARCH_LIST for {cuda} in {url}"
        findings.append(ArchFinding(version, cuda, platform, build, derived, known, where))
    return findings


def read_info_file(url: str, path: str) -> str | None:
    """One file of a remote ``.conda`` package's info/ part, by HTTP range requests."""
    import requests
    from conda_package_streaming.url import stream_conda_info

    with requests.Session() as session:
        try:
            for tar, member in stream_conda_info(url, session):
                if member.name == path:
                    handle = tar.extractfile(member)
                    return handle.read().decode("utf-8", "replace") if handle else None
        except (requests.RequestException, OSError, ValueError):
            return None
    return None


def records_from_recipes(recipes: Recipes, name: str) -> list[Record]:
    """Records standing for what the recipe rows say the channel holds (bootstrap only)."""
    out: list[Record] = []
    for release in recipes.releases_for(name):
        for python in release.python:
            py = python.replace(".", "")
            dep = f"python >={python},<{python.split('.')[0]}.{int(python.split('.')[1]) + 1}.0a0"
            for platform in release.cpu_platforms:
                build = f"cpu_generic_py{py}_h0000000_0"
                out.append(Record("pytorch", release.pytorch, build, 0, platform, (dep,)))
            for variant in release.cuda_variants:
                digits = variant.cuda.replace(".", "")
                major = compat.cuda_major(variant.cuda)
                cuda_dep = f"cuda-version >={variant.cuda},<{major + 1}"
                for platform in variant.platforms:
                    steps = variant.arch_builds.get(platform) or ((0, None),)
                    number = 200 + steps[-1][0]
                    build = f"cuda{digits}_generic_py{py}_h0000000_{number}"
                    out.append(
                        Record("pytorch", release.pytorch, build, number, platform, (dep, cuda_dep))
                    )
        x, y = (int(p) for p in release.pytorch.split(".")[:2])
        pin = f"pytorch >={x}.{y},<{x}.{y + 1}"
        for companion, version, platforms in (
            ("torchvision", release.torchvision, release.platforms),
            ("torchaudio", release.torchaudio, release.torchaudio_platforms),
        ):
            if version is None:
                continue
            for platform in platforms:
                build = f"py_h0000000_{release.pytorch.replace('.', '')}"
                out.append(Record(companion, version, build, 0, platform, (pin,)))
    return out


def main(argv: Sequence[str] | None = None, *, read: InfoReader = read_info_file) -> int:
    from conda_torch_plugin.errors import TorchEnvError
    from conda_torch_plugin.recipes import load_recipes
    from conda_torch_plugin.sources.records import ChannelUnavailable, bundled, query

    parser = argparse.ArgumentParser(prog="python -m conda_torch_plugin.sources.refresh")
    parser.add_argument("--source", default="conda-forge", choices=list(SOURCES))
    parser.add_argument("--channel", help="the channel URL (default: conda.anaconda.org/SOURCE)")
    parser.add_argument("--platform", action="append", dest="platforms", choices=PLATFORMS)
    parser.add_argument("--from-recipes", action="store_true", help="snapshot the recipe rows")
    parser.add_argument("--no-arch", action="store_true", help="skip reading the packages")
    parser.add_argument("--write", action="store_true", help="write the snapshot file")
    parser.add_argument("--recipes-dir", help="the recipes/ folder to write into")
    args = parser.parse_args(argv)
    from pathlib import Path

    recipes = load_recipes()
    platforms = tuple(args.platforms or PLATFORMS)
    url = (args.channel or f"https://conda.anaconda.org/{args.source}").rstrip("/")
    try:
        if args.from_recipes:
            records = records_from_recipes(recipes, args.source)
            origin = f"derived from recipes/{source(args.source).recipe_file}, not from repodata"
        else:
            records = list(query(url, platforms))
            origin = url
    except (ChannelUnavailable, TorchEnvError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    directory = Path(args.recipes_dir) if args.recipes_dir else None
    before = bundled(args.source, directory)
    _print_record_diff(before.records if before else (), records)
    if not args.from_recipes and not args.no_arch:
        for finding in derive_arch_lists(url, records, recipes, args.source, read):
            print(finding.line())
    if args.write:
        path = snapshot_path(args.source, directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        _write(path, snapshot_text(args.source, origin, today, records))
        print(f"wrote {path} ({len(records)} records)")
    return 0


def _print_record_diff(before: Iterable[Record], after: Iterable[Record]) -> None:
    def keys(rs: Iterable[Record]) -> set[tuple[str, str, str, str]]:
        return {(r.name, r.version, r.subdir, r.build) for r in rs}

    old, new = keys(before), keys(after)
    for key in sorted(new - old):
        print("+ " + " ".join(key))
    for key in sorted(old - new):
        print("- " + " ".join(key))
    print(f"records: {len(new)} ({len(new - old)} added, {len(old - new)} removed)")


def _write(path: Path, text: str) -> None:
    from conda_torch_plugin.atomic import atomic_write_text

    atomic_write_text(path, text)


if __name__ == "__main__":
    raise SystemExit(main())
