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
  ``--write`` puts each derived list that differs from the recipes (or that they
  lack: a new CUDA variant, platform or release) into the recipe file, citing a new
  source key for the channel and the date; it validates the result before
  replacing anything. Rows it could not source are left as they are.

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
from typing import TYPE_CHECKING, Any

from conda_torch_plugin import compat
from conda_torch_plugin.sources import SOURCES, source
from conda_torch_plugin.sources.records import Record, snapshot_path, snapshot_text

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from conda_torch_plugin.recipes import Recipes
    from conda_torch_plugin.sources.base import PyTorchSource

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


def apply_arch_findings(
    data: dict[str, Any],
    findings: Iterable[ArchFinding],
    records: Iterable[Record],
    source_key: str,
    name: str,
) -> list[str]:
    """Put every derived arch list that differs from, or is missing in, the recipe file's
    ``data`` into it; returns what changed. Unsourced findings change nothing."""
    src = source(name)
    lists: dict[str, Any] = data.setdefault("arch_lists", {})
    releases: list[dict[str, Any]] = data.setdefault("releases", [])
    changes: list[str] = []
    for finding in findings:
        if finding.derived is None or finding.derived == finding.recipes:
            continue
        list_name = _list_named(lists, finding, source_key)
        row = next((r for r in releases if r.get("pytorch") == finding.pytorch), None)
        if row is None:
            row = _new_release(finding.pytorch, records, src, source_key)
            releases.append(row)
            changes.append(f"release {finding.pytorch} added")
        variant = next((v for v in row["cuda"] if v.get("cuda") == finding.cuda), None)
        if variant is None:
            variant = {"cuda": finding.cuda, "archs": {}, "source": [source_key]}
            row["cuda"].append(variant)
        current = variant["archs"].get(finding.platform)
        if current is None or finding.build == 0:
            variant["archs"][finding.platform] = list_name
        else:
            steps = current if isinstance(current, list) else [{"from_build": 0, "list": current}]
            steps = [s for s in steps if s["from_build"] < finding.build]
            steps.append({"from_build": finding.build, "list": list_name})
            variant["archs"][finding.platform] = steps
        if source_key not in variant["source"]:
            variant["source"].append(source_key)
        changes.append(
            f"pytorch {finding.pytorch} CUDA {finding.cuda} {finding.platform} from build "
            f"{finding.build}: {list_name}"
        )
    releases.sort(key=lambda r: compat.version_tuple(r["pytorch"]), reverse=True)
    return changes


def _list_named(lists: dict[str, Any], finding: ArchFinding, source_key: str) -> str:
    """An existing arch list with exactly the derived code, else a new one."""
    assert finding.derived is not None
    sass, ptx = finding.derived
    for list_name, row in lists.items():
        if tuple(row.get("sass", ())) == sass and tuple(row.get("ptx", ())) == ptx:
            return list_name
    digits = finding.cuda.replace(".", "")
    list_name = f"derived-cu{digits}-{finding.platform}-{finding.pytorch}-b{finding.build}"
    lists[list_name] = {
        "sass": list(sass),
        "ptx": list(ptx),
        "source": [source_key],
        "note": f"TORCH_CUDA_ARCH_LIST of {finding.where}",
    }
    return list_name


def _new_release(
    version: str, records: Iterable[Record], src: PyTorchSource, source_key: str
) -> dict[str, Any]:
    builds = [r for r in records if r.name == "pytorch" and r.version == version]
    python = sorted({p for r in builds if (p := r.python)}, key=compat.version_tuple)
    cpu = sorted(
        {
            r.subdir
            for r in builds
            if r.subdir.startswith("osx-")
            or ((f := src.build_flavour(r.build)) is not None and f.compute == "cpu")
        }
    )
    return {
        "pytorch": version,
        "torchvision": None,
        "torchaudio": None,
        "torchaudio_platforms": [],
        "python": python,
        "cpu_platforms": cpu,
        "cuda": [],
        "source": [source_key],
        "note": "added by the refresh command: availability and companions come from repodata",
    }


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
    from conda_torch_plugin.recipes import load_recipes, load_recipes_from, recipes_dir
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

    directory = Path(args.recipes_dir) if args.recipes_dir else None
    recipes = load_recipes_from(directory) if directory else load_recipes()
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
    before = bundled(args.source, directory)
    _print_record_diff(before.records if before else (), records)
    findings: list[ArchFinding] = []
    if not args.from_recipes and not args.no_arch:
        findings = derive_arch_lists(url, records, recipes, args.source, read)
        for finding in findings:
            print(finding.line())
    if args.write:
        today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        folder = directory or Path(str(recipes_dir()))
        try:
            _write_arch_lists(folder, findings, records, args.source, url, today)
        except TorchEnvError as error:
            print(f"error: the derived arch lists do not validate: {error}", file=sys.stderr)
            return 1
        path = snapshot_path(args.source, directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, snapshot_text(args.source, origin, today, records))
        print(f"wrote {path} ({len(records)} records)")
    return 0


def _write_arch_lists(
    folder: Path,
    findings: Sequence[ArchFinding],
    records: Sequence[Record],
    name: str,
    url: str,
    today: str,
) -> None:
    """Apply the findings to the recipe file; validate a copy of the folder first."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from conda_torch_plugin.recipes import load_recipes_from

    recipe_path = folder / source(name).recipe_file
    sources_path = folder / "sources.json"
    data = json.loads(recipe_path.read_text(encoding="utf-8"))
    cited = json.loads(sources_path.read_text(encoding="utf-8"))
    key = "R" + today.replace("-", "")
    changes = apply_arch_findings(data, findings, records, key, name)
    if not changes:
        return
    cited["sources"][key] = (
        f"{url}: info/recipe/build.sh and bld.bat (TORCH_CUDA_ARCH_LIST) of each CUDA build "
        f"and the channel's repodata, read on {today} by conda_torch_plugin.sources.refresh"
    )
    texts = {
        recipe_path.name: json.dumps(data, indent=2, ensure_ascii=False) + "\n",
        sources_path.name: json.dumps(cited, indent=2, ensure_ascii=False) + "\n",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for file in folder.glob("*.json"):
            shutil.copy(file, Path(tmp) / file.name)
        for file_name, text in texts.items():
            (Path(tmp) / file_name).write_text(text, encoding="utf-8")
        load_recipes_from(Path(tmp))
    for file_name, text in texts.items():
        _write(folder / file_name, text)
    for change in changes:
        print(f"wrote {recipe_path.name}: {change}")


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
