"""conda-lock.yml writing and reading, and @EXPLICIT rendering, checked against conda-lock."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from support.conda_lock_reference import conda_lock_dependencies
from support.shared_data import ABSENT_REASON, REAL_PYTORCH_REPODATA, needs_real_repodata

from conda_torch_plugin.condalock.explicit import render_explicit, toposort
from conda_torch_plugin.condalock.lockfile import (
    LockedPackage,
    LockFile,
    locked_package_from_record,
    read_lockfile,
    render_lockfile,
    strip_credentials,
    write_lockfile,
)
from conda_torch_plugin.errors import LockError

CONDA_LOCK = Path(sys.executable).parent / "conda-lock"
PLATFORMS = ("linux-64", "win-64", "osx-arm64")
COMMAND = "conda torch-env lock -f environment.yml"


def digest(text: str, size: int) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:size]


def package(
    name: str,
    version: str,
    platform: str,
    deps: dict[str, str],
    *,
    build: str = "h1234_0",
    channel: str = "https://conda.anaconda.org/conda-forge",
    subdir: str | None = None,
    category: str = "main",
) -> LockedPackage:
    subdir = subdir or platform
    filename = f"{name}-{version}-{build}.conda"
    return LockedPackage(
        name=name,
        version=version,
        build=build,
        platform=platform,
        url=f"{channel}/{subdir}/{filename}",
        md5=digest(filename + platform, 32),
        sha256=digest(filename + platform, 64),
        dependencies=deps,
        category=category,
        optional=category != "main",
    )


def hand_lock() -> LockFile:
    """A three-platform lock with the values YAML quoting trips over."""
    packages = []
    for platform in PLATFORMS:
        packages += [
            package(
                "python", "3.12.7", platform, {"libzlib": ">=1.3.1,<2.0a0", "pip": "", "tzdata": ""}
            ),
            package(
                "pip", "24.2", platform, {"python": ">=3.8"}, build="pyh8b19718_1", subdir="noarch"
            ),
            package("tzdata", "2024b", platform, {}, build="hc8b5060_0", subdir="noarch"),
            package("libzlib", "1.3.1", platform, {}, build="0"),
            package(
                "pytorch-mutex",
                "1.0",
                platform,
                {},
                build="cuda",
                subdir="noarch",
                channel="https://conda.anaconda.org/pytorch",
            ),
            package(
                "pytorch",
                "2.5.1",
                platform,
                {
                    "python": ">=3.12,<3.13.0a0",
                    "pytorch-mutex": "1.0",
                    "blas": "*",
                    "yes": "",
                    "sympy": "1.10",
                    "__glibc": ">=2.17",
                },
                build="py3.12_cuda12.4_cudnn9.1.0_0",
                channel="https://conda.anaconda.org/pytorch",
            ),
            package("yes", "2023-01-01", platform, {}, build="0"),
            package("sympy", "1.10", platform, {}, build="1e5"),
            package("__cuda", "12.4", platform, {}, build="0"),  # a virtual package: never written
        ]
    packages.append(
        package(
            "pytest",
            "8.3.3",
            "linux-64",
            {"python": ">=3.9"},
            build="pyhd8ed1ab_0",
            subdir="noarch",
            category="dev",
        )
    )
    return LockFile(
        platforms=PLATFORMS,
        channels=("pytorch", "nvidia", "conda-forge"),
        content_hash={p: digest(p, 64) for p in PLATFORMS},
        sources=("environment.yml",),
        packages=tuple(packages),
    )


def real_lock() -> LockFile:
    """Some real records of the pytorch channel (linux-64), through py-rattler."""
    from rattler import Channel, PackageName, SparseRepoData

    sparse = SparseRepoData(
        Channel("https://conda.anaconda.org/pytorch"), "linux-64", str(REAL_PYTORCH_REPODATA)
    )
    packages = []
    for name in ("pytorch", "torchvision", "torchaudio", "pytorch-cuda", "torchtriton"):
        record = sparse.load_records(PackageName(name))[-1]
        packages.append(locked_package_from_record(record, "linux-64"))
    return LockFile(
        ("linux-64",), ("pytorch",), {"linux-64": "0" * 64}, ("environment.yml",), tuple(packages)
    )


def conda_lock_text(lock: LockFile, path: Path) -> str:
    """What conda-lock's own writer writes for the same content."""
    from conda_lock.lockfile import write_conda_lock_file
    from conda_lock.lockfile.v2prelim.models import HashModel, LockedDependency, Lockfile, LockMeta
    from conda_lock.models.channel import Channel

    merged: dict[tuple[str, str, str], LockedDependency] = {}
    for p in lock.packages:
        key = (p.manager, p.name, p.platform)
        if key in merged:
            merged[key].categories.add(p.category)
            continue
        merged[key] = LockedDependency(
            name=p.name,
            version=p.version,
            manager=p.manager,
            platform=p.platform,
            dependencies=dict(p.dependencies),
            url=strip_credentials(p.url),
            hash=HashModel(md5=p.md5 or None, sha256=p.sha256),
            categories={p.category},
            build=p.build or None,
        )
    content = Lockfile(
        package=list(merged.values()),
        metadata=LockMeta(
            content_hash=dict(lock.content_hash),
            channels=[Channel.from_string(strip_credentials(c)) for c in lock.channels],
            platforms=list(lock.platforms),
            sources=list(lock.sources),
        ),
    )
    write_conda_lock_file(content, path, metadata_choices=None)
    return path.read_text()


def body(text: str) -> str:
    return text[text.index("\nversion: 1\n") + 1 :]


@pytest.mark.parametrize("which", ["hand", "real"])
def test_body_is_what_conda_lock_writes(tmp_path: Path, which: str) -> None:
    if which == "real" and not REAL_PYTORCH_REPODATA.is_file():
        pytest.skip(ABSENT_REASON)
    lock = hand_lock() if which == "hand" else real_lock()
    ours = tmp_path / "conda-lock.yml"
    write_lockfile(lock, ours, command=COMMAND)
    assert body(ours.read_text()) == body(conda_lock_text(lock, tmp_path / "theirs.yml"))


def test_conda_lock_parses_our_file(tmp_path: Path) -> None:
    from conda_lock.lockfile import parse_conda_lock_file

    lock = hand_lock()
    path = tmp_path / "conda-lock.yml"
    write_lockfile(lock, path, command=COMMAND)
    parsed = parse_conda_lock_file(path)
    assert parsed.metadata.content_hash == lock.content_hash
    assert [c.url for c in parsed.metadata.channels] == list(lock.channels)
    assert parsed.metadata.platforms == list(lock.platforms)
    assert parsed.metadata.sources == list(lock.sources)
    theirs = {(p.platform, p.name): p for p in parsed.package}
    expected = [p for p in lock.packages if not p.name.startswith("__")]
    assert len(theirs) == len(expected)
    for p in expected:
        q = theirs[(p.platform, p.name)]
        assert (
            q.version,
            q.manager,
            q.url,
            q.build,
            q.hash.md5,
            q.hash.sha256,
            q.dependencies,
        ) == (p.version, p.manager, p.url, p.build, p.md5, p.sha256, p.dependencies)
        assert q.categories == {p.category}


@pytest.mark.skipif(not CONDA_LOCK.exists(), reason="the conda-lock command is not installed")
def test_conda_lock_render_explicit_matches(tmp_path: Path) -> None:
    lock = hand_lock()
    path = tmp_path / "conda-lock.yml"
    write_lockfile(lock, path, command=COMMAND)
    result = subprocess.run(
        [str(CONDA_LOCK), "render", "--kind", "explicit", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for platform in PLATFORMS:
        theirs = (tmp_path / f"conda-{platform}.lock").read_text().splitlines()
        ours = render_explicit(read_lockfile(path), platform).splitlines()
        # The only difference is the first comment line, which names the tool.
        assert theirs[0] == "# Generated by conda-lock."
        assert ours[0].startswith("# Generated by conda torch-env")
        assert ours[1:] == theirs[1:]
        assert "@EXPLICIT" in ours and f"# input_hash: {lock.content_hash[platform]}" in ours


def test_explicit_lists_dependencies_first() -> None:
    text = render_explicit(hand_lock(), "linux-64")
    urls = [line.split("#")[0] for line in text.splitlines() if not line.startswith(("#", "@"))]
    names = [u.rsplit("/", 1)[1].rsplit("-", 2)[0] for u in urls]
    assert names.index("python") < names.index("pip") < names.index("pytorch")
    assert names.index("libzlib") < names.index("python")
    assert "__cuda" not in names
    assert all(re.search(r"\.conda#[0-9a-f]{32}$", line) for line in text.splitlines()[4:])


def test_explicit_unknown_platform() -> None:
    with pytest.raises(LockError, match="osx-64"):
        render_explicit(hand_lock(), "osx-64")


@pytest.mark.parametrize("seed", range(30))
def test_toposort_is_condas(seed: int) -> None:
    from conda_lock._vendor.conda.common.toposort import toposort as conda_toposort

    rng = random.Random(seed)
    names = [f"p{i}" for i in range(rng.randint(1, 25))] + ["python", "pip"]
    graph = {n: set(rng.sample(names + ["__glibc", "ext"], rng.randint(0, 4))) for n in names}
    assert toposort(graph) == conda_toposort(graph)


def test_same_bytes_whatever_the_input_order(tmp_path: Path) -> None:
    lock = hand_lock()
    reference = render_lockfile(lock, command=COMMAND)
    rng = random.Random(1)
    for _ in range(5):
        packages = [
            replace(
                p, dependencies=dict(rng.sample(list(p.dependencies.items()), len(p.dependencies)))
            )
            for p in lock.packages
        ]
        rng.shuffle(packages)
        shuffled = replace(lock, packages=tuple(packages))
        assert render_lockfile(shuffled, command=COMMAND) == reference
    write_lockfile(lock, tmp_path / "a.yml", command=COMMAND)
    write_lockfile(lock, tmp_path / "b.yml", command=COMMAND)
    assert (
        (tmp_path / "a.yml").read_bytes() == (tmp_path / "b.yml").read_bytes() == reference.encode()
    )


def test_header_says_how_to_regenerate_and_nothing_volatile() -> None:
    text = render_lockfile(hand_lock(), command=COMMAND)
    header = text[: text.index("\nversion: 1\n")].splitlines()
    assert all(line.startswith("#") for line in header)
    assert "conda torch-env" in header[0]
    assert f"#     {COMMAND}" in header
    assert any("conda-lock install" in line for line in header)
    assert not re.search(r"\d{4}-\d\d-\d\dT|\d\d:\d\d:\d\d", text)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://conda.anaconda.org/t/tk-123-456/private/linux-64/a-1-0.conda",
            "https://conda.anaconda.org/private/linux-64/a-1-0.conda",
        ),
        ("https://user:pa55@mirror.example/conda-forge", "https://mirror.example/conda-forge"),
        (
            "https://user@mirror.example:8443/t/abc/ch/noarch/x.conda",
            "https://mirror.example:8443/ch/noarch/x.conda",
        ),
        ("https://${USER}:${PASS}@host/ch", "https://host/ch"),
        ("https://host/t/${TOKEN}/ch", "https://host/ch"),
        ("file:///srv/channel/linux-64/a-1-0.conda", "file:///srv/channel/linux-64/a-1-0.conda"),
        ("conda-forge", "conda-forge"),
        ("https://host/tools/t/tk-9", "https://host/tools"),
        ("file:///data/t/x/linux-64/a-1-0.conda", "file:///data/t/x/linux-64/a-1-0.conda"),
    ],
    ids=[
        "token",
        "user-password",
        "user-port-token",
        "env-vars",
        "env-token",
        "file",
        "name",
        "token-at-end",
        "file-with-t-folder",
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_credentials_never_reach_the_file(tmp_path: Path) -> None:
    secret_channel = "https://alice:hunter2@mirror.example/t/tk-SECRET-1/pytorch"
    lock = hand_lock()
    packages = tuple(
        replace(p, url=p.url.replace("https://conda.anaconda.org/pytorch", secret_channel))
        for p in lock.packages
    )
    lock = replace(lock, channels=(secret_channel, *lock.channels), packages=packages)
    path = tmp_path / "conda-lock.yml"
    write_lockfile(lock, path, command=COMMAND)
    text = path.read_text()
    assert "hunter2" not in text and "alice" not in text and "SECRET" not in text
    assert "https://mirror.example/pytorch/linux-64/pytorch-2.5.1-" in text
    assert read_lockfile(path).channels[0] == "https://mirror.example/pytorch"
    explicit = render_explicit(lock, "linux-64")
    assert "hunter2" not in explicit and "SECRET" not in explicit


def normalized(lock: LockFile) -> LockFile:
    packages = sorted(
        (
            replace(p, url=strip_credentials(p.url))
            for p in lock.packages
            if not p.name.startswith("__")
        ),
        key=lambda p: (p.platform, p.name, p.category),
    )
    return replace(lock, packages=tuple(packages))


def test_round_trip(tmp_path: Path) -> None:
    lock = hand_lock()
    path = tmp_path / "conda-lock.yml"
    write_lockfile(lock, path, command=COMMAND)
    assert normalized(read_lockfile(path)) == normalized(lock)


def test_round_trip_through_the_slow_reader(tmp_path: Path) -> None:
    """Long values with spaces are folded over lines; the reader must still get them right."""
    source = "my project/with a long folder name/" * 4 + "environment.yml"
    lock = replace(hand_lock(), sources=(source,))
    path = tmp_path / "conda-lock.yml"
    write_lockfile(lock, path, command=COMMAND)
    text = path.read_text()
    assert "\n    " in text[text.index("  sources:") :][:200]  # folded
    assert read_lockfile(path).sources == (source,)
    assert body(text) == body(conda_lock_text(lock, tmp_path / "theirs.yml"))


def test_reads_a_file_conda_lock_wrote(tmp_path: Path) -> None:
    lock = hand_lock()
    path = tmp_path / "theirs.yml"
    conda_lock_text(lock, path)
    assert normalized(read_lockfile(path)) == normalized(lock)


def test_reads_pip_packages_and_several_categories(tmp_path: Path) -> None:
    lock = hand_lock()
    pip_pkg = LockedPackage(
        name="tqdm",
        version="4.66.5",
        build="",
        platform="linux-64",
        url="https://files.example/tqdm-4.66.5-py3-none-any.whl",
        md5="",
        sha256=digest("tqdm", 64),
        dependencies={"colorama": "*"},
        manager="pip",
    )
    dev_copy = replace(lock.packages[0], category="dev", optional=True)
    lock = replace(lock, packages=(*lock.packages, pip_pkg, dev_copy))
    path = tmp_path / "theirs.yml"
    conda_lock_text(lock, path)
    back = read_lockfile(path)
    assert pip_pkg in back.packages
    assert {
        p.category for p in back.packages if (p.name, p.platform) == ("python", "linux-64")
    } == {"main", "dev"}
    ours = tmp_path / "ours.yml"
    write_lockfile(lock, ours, command=COMMAND)
    assert body(ours.read_text()) == body(path.read_text())


BAD_LOCKS = [
    ("version: 1\nmetadata: [\n", ["line 3", "malformed YAML"]),
    ("metadata: {}\npackage: []\n", ["no `version`"]),
    ("version: 3\nmetadata: {}\npackage: []\n", ["unknown lock file version 3", "version 1"]),
    ("- 1\n", ["expected a mapping"]),
    ("version: 1\npackage: []\n", ["no `metadata`"]),
]


@pytest.mark.parametrize(
    ("text", "needles"),
    BAD_LOCKS,
    ids=["malformed", "no-version", "unknown-version", "not-a-mapping", "no-metadata"],
)
def test_bad_lock_files(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = tmp_path / "conda-lock.yml"
    path.write_text(text)
    with pytest.raises(LockError) as info:
        read_lockfile(path)
    message = str(info.value) + " ".join(info.value.hints)
    assert str(path) in message
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    ("drop", "needles"),
    [
        ("    sha256: ", ["pytorch (linux-64)", "hash.sha256"]),
        ("    md5: ", ["pytorch (linux-64)", "hash.md5"]),
        ("  url: ", ["pytorch (linux-64)", "has no url"]),
    ],
    ids=["sha256", "md5", "url"],
)
def test_package_missing_a_field(tmp_path: Path, drop: str, needles: list[str]) -> None:
    path = tmp_path / "conda-lock.yml"
    write_lockfile(hand_lock(), path, command=COMMAND)
    lines = path.read_text().splitlines(keepends=True)
    start = lines.index("- name: pytorch\n")
    index = next(i for i in range(start, len(lines)) if lines[i].startswith(drop))
    del lines[index]
    path.write_text("".join(lines))
    with pytest.raises(LockError) as info:
        read_lockfile(path)
    assert f"line {start + 1}" in str(info.value)
    for needle in needles:
        assert needle in str(info.value)


def test_missing_lock_file(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="does not exist"):
        read_lockfile(tmp_path / "conda-lock.yml")


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "conda-lock.yml"
    path.write_text("old\n")
    bad = replace(hand_lock(), sources=("a\nb",))  # a line break cannot be written
    with pytest.raises(LockError):
        write_lockfile(bad, path, command=COMMAND)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["conda-lock.yml"]


@needs_real_repodata
def test_locked_package_from_real_records() -> None:
    from rattler import Channel, PackageName, SparseRepoData

    sparse = SparseRepoData(
        Channel("https://conda.anaconda.org/pytorch"), "linux-64", str(REAL_PYTORCH_REPODATA)
    )
    raw = json.loads(REAL_PYTORCH_REPODATA.read_text())["packages"]
    records = sparse.load_records(PackageName("pytorch"))
    assert len(records) > 100
    for record in records:
        locked = locked_package_from_record(record, "linux-64")
        original = raw[record.file_name]
        assert (locked.name, locked.version, locked.build, locked.md5, locked.sha256) == (
            original["name"],
            original["version"],
            original["build"],
            original["md5"],
            original["sha256"],
        )
        assert locked.url == f"https://conda.anaconda.org/pytorch/linux-64/{record.file_name}"
        assert locked.dependencies == conda_lock_dependencies(original["depends"])


def test_record_without_hashes_cannot_be_locked(tmp_path: Path) -> None:
    from rattler import Channel, PackageName, SparseRepoData

    subdir = tmp_path / "linux-64"
    subdir.mkdir()
    record = {
        "name": "foo",
        "version": "1.0",
        "build": "0",
        "build_number": 0,
        "depends": ["bar >=1"],
        "subdir": "linux-64",
    }
    (subdir / "repodata.json").write_text(
        json.dumps(
            {
                "info": {"subdir": "linux-64"},
                "packages": {"foo-1.0-0.tar.bz2": record},
                "packages.conda": {},
            }
        )
    )
    sparse = SparseRepoData(Channel(tmp_path.as_uri()), "linux-64", str(subdir / "repodata.json"))
    [rec] = sparse.load_records(PackageName("foo"))
    with pytest.raises(LockError, match="foo-1.0-0.tar.bz2 has no md5 and sha256"):
        locked_package_from_record(rec, "linux-64")


# PyYAML's quoting, which conda-lock's writer uses, for every kind of value a lock holds.
TRICKY = [
    "",
    "*",
    "1.0",
    "1.10",
    "1",
    "010",
    "0x1F",
    "1e5",
    "1_000",
    ".5",
    "yes",
    "No",
    "on",
    "null",
    "~",
    "2023-01-01",
    "12:30",
    "<<",
    "=",
    "-",
    "-1",
    "- a",
    "? a",
    ":x",
    "a:",
    "a: b",
    "a #b",
    "a#b",
    "#a",
    ">=1.0,<2",
    "==1.0",
    "!=1.0",
    "|x",
    "'q'",
    '"d"',
    "%x",
    "@x",
    "`x",
    "&a",
    "!t",
    "{}",
    "[x]",
    "a,b",
    "...",
    "---",
    "é",
    "tab\there",
    " lead",
    "trail ",
    "x" * 100,
    "a " * 50,
]


def test_yaml_quoting_is_pyyamls() -> None:
    import yaml

    from conda_torch_plugin.condalock._yaml_writer import emit_yaml

    docs = [{"key": value, "list": [value], value or "k": {"deep": value}} for value in TRICKY]
    rng = random.Random(0)
    alphabet = list("az09 ._-:#'\"*&!|>%@`,[]{}?=<~+\\/") + ["é", "\t", "\x07", "\u2603", "\xa0"]
    for _ in range(300):
        value = "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 3, 12, 90])))
        docs.append({"a": {"b": [value, {"c": value}]}, "d": value})
    for doc in docs:
        assert emit_yaml(doc) == yaml.dump(doc, sort_keys=False), doc
