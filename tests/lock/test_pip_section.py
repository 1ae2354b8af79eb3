"""Locking a ``pip:`` section with uv, offline: real wheels from a --find-links folder and a
PEP 503 index on 127.0.0.1, a conda side that provides one of the pip dependencies, two
platforms; conda-lock's own parser reads the result and its content hash agrees."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from support.repodata import virtual_packages_for, write_virtual_packages
from support.servers import basic_auth_handler, serve
from support.wheels import Wheel, find_links, simple_index

from conda_torch_plugin.condalock.lockfile import read_lockfile
from conda_torch_plugin.errors import EnvFileError, LockError
from conda_torch_plugin.lock import check, lock
from conda_torch_plugin.lock.pip_uv import pip_config_options
from conda_torch_plugin.uvtool import uv_platform

TWO = ["linux-64", "osx-arm64"]
CONDA = ["python=3.12", "pytorch=2.5.1", "cpuonly  # [linux]"]
WHEELS = (
    Wheel("alpha", "1.0", requires=("beta>=1", "typing-extensions>=4")),
    Wheel("beta", "1.0"),
    Wheel("beta", "2.0"),
    Wheel("gamma", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
    Wheel("gamma", "1.0", tag="cp312-cp312-macosx_11_0_arm64"),
    Wheel("gamma", "1.0", tag="cp312-cp312-win_amd64"),
    # typing_extensions comes from the conda side (4.12.2 there): never from here.
    Wheel("typing-extensions", "4.13.0"),
    Wheel("delta", "1.0", requires=("typing-extensions>=4.13",)),
    Wheel("torch", "2.5.1", tag="cp312-cp312-manylinux_2_17_x86_64"),
)


def project(folder: Path, pip: list[str], conda: list[str] = CONDA) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["name: team", "channels:", "  - pytorch", "  - conda-forge", "platforms:"]
    lines += [f"  - {p}" for p in TWO]
    lines += ["dependencies:", *(f"  - {d}" for d in conda), "  - pip:"]
    lines += [f"    - {p}" for p in pip]
    (folder / "environment.yml").write_text("\n".join(lines) + "\n")
    write_virtual_packages(folder / "virtual-packages.yml", virtual_packages_for(None))
    return folder / "environment.yml"


@pytest.fixture(autouse=True)
def uv_cache_in_tmp(tmp_path_factory, monkeypatch):
    """uv's cache (``$XDG_CACHE_HOME/conda-torch-env/uv``) stays out of the home folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture(scope="module")
def links(tmp_path_factory) -> Path:
    return find_links(tmp_path_factory.mktemp("links"), WHEELS)


def do_lock(env: Path, tree) -> Path:
    return lock(env, channel_alias=tree.alias, command="conda torch-env lock").lockfile


def pip_entries(lockfile: Path, platform: str) -> dict[str, object]:
    return {p.name: p for p in read_lockfile(lockfile).packages_for(platform) if p.manager == "pip"}


def test_find_links_two_platforms_conda_side_not_resolved_again(tmp_path, channel_tree, links):
    env = project(tmp_path, [f"--find-links {links}", "alpha", "gamma"])
    lockfile = do_lock(env, channel_tree)
    conda_side = {p.name: p for p in read_lockfile(lockfile).packages_for("linux-64")}
    assert conda_side["typing_extensions"].version == "4.12.2"
    for platform, tag in (
        ("linux-64", "manylinux_2_17_x86_64"),
        ("osx-arm64", "macosx_11_0_arm64"),
    ):
        pip = pip_entries(lockfile, platform)
        # typing-extensions is the conda package's: left out, although the index has 4.13.0.
        assert sorted(pip) == ["alpha", "beta", "gamma"], platform
        assert pip["beta"].version == "2.0"
        assert pip["gamma"].url.endswith(f"gamma-1.0-cp312-cp312-{tag}.whl")
        wheel = links / pip["gamma"].url.rsplit("/", 1)[1]
        assert pip["gamma"].sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert pip["alpha"].dependencies == {"beta": "*", "typing-extensions": "*"}
        assert all(p.category == "main" and p.md5 == "" for p in pip.values())


def test_conda_lock_reads_the_pip_entries_and_its_hash_agrees(
    tmp_path, channel_tree, links, monkeypatch
):
    """Indexes from pip's own configuration (conda-lock cannot read option lines)."""
    from conda_lock.content_hash import compute_content_hashes
    from conda_lock.lockfile import parse_conda_lock_file
    from conda_lock.src_parser import make_lock_spec
    from conda_lock.virtual_package import virtual_package_repo_from_specification

    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "none.conf"))
    env = project(tmp_path, ["alpha", "gamma"])
    lockfile = do_lock(env, channel_tree)
    parsed = parse_conda_lock_file(lockfile)
    theirs = {(p.name, p.platform): p for p in parsed.package if p.manager == "pip"}
    assert sorted(theirs) == sorted((n, p) for n in ("alpha", "beta", "gamma") for p in TWO)
    ours = pip_entries(lockfile, "osx-arm64")
    assert theirs[("gamma", "osx-arm64")].url == ours["gamma"].url
    assert theirs[("gamma", "osx-arm64")].hash.sha256 == ours["gamma"].sha256
    assert theirs[("alpha", "linux-64")].dependencies == {"beta": "*", "typing-extensions": "*"}
    mapping = tmp_path / "mapping.json"  # pip -> pip, offline
    mapping.write_text('{"pip": {"conda_name": "pip", "pypi_name": "pip"}}')
    spec = make_lock_spec(src_files=[env], mapping_url=str(mapping), platform_overrides=TWO)
    repo = virtual_package_repo_from_specification(tmp_path / "virtual-packages.yml")
    assert compute_content_hashes(spec, repo) == parsed.metadata.content_hash
    # conda-lock's own CLI renders the pip entries into its explicit files.
    conda_lock = Path(sys.executable).parent / "conda-lock"
    out = tmp_path / "rendered"
    out.mkdir()
    done = subprocess.run(
        [str(conda_lock), "render", "--kind", "explicit", str(lockfile)],
        cwd=out,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    rendered = (out / "conda-osx-arm64.lock").read_text()
    assert f"# pip gamma @ {ours['gamma'].url}#sha256={ours['gamma'].sha256}" in rendered


def test_check_notices_a_changed_pip_line(tmp_path, channel_tree, links):
    env = project(tmp_path, [f"--find-links {links}", "alpha"])
    do_lock(env, channel_tree)
    assert check(env).up_to_date
    env.write_text(env.read_text().replace("    - alpha\n", "    - alpha>=1\n"))
    assert check(env).stale == tuple(TWO)
    project(tmp_path, [f"--find-links {links}/", "alpha"])  # an index option changed
    assert check(env).stale == tuple(TWO)


def test_simple_index_over_http_credentials_never_reach_the_lock(tmp_path, channel_tree):
    root = simple_index(tmp_path / "index", WHEELS)
    with serve(root, basic_auth_handler("team", "s3cret")) as url:
        index = url.replace("http://", "http://team:s3cret@") + "/simple"
        env = project(tmp_path / "p", [f"--index-url {index}", "alpha"])
        lockfile = do_lock(env, channel_tree)
    text = lockfile.read_text()
    assert "s3cret" not in text and "team:" not in text
    pip = pip_entries(lockfile, "linux-64")
    assert sorted(pip) == ["alpha", "beta"]
    assert pip["alpha"].url == f"{url}/files/alpha-1.0-py3-none-any.whl"


def test_conflict_with_the_conda_side_names_both(tmp_path, channel_tree, links):
    env = project(tmp_path, [f"--find-links {links}", "--no-index", "delta"])
    with pytest.raises(LockError) as caught:
        do_lock(env, channel_tree)
    text = str(caught.value) + " ".join(caught.value.hints)
    assert "typing-extensions>=4.13" in text
    assert "conda package typing_extensions 4.12.2" in text
    assert not (tmp_path / "conda-lock.yml").exists()


def test_unresolvable_requirement_is_named(tmp_path, channel_tree, links):
    env = project(tmp_path, [f"--find-links {links}", "--no-index", "alpha", "nosuch>=2"])
    with pytest.raises(LockError, match="nosuch"):
        do_lock(env, channel_tree)


def test_pip_torch_on_top_of_conda_torch_is_refused(tmp_path, channel_tree):
    index = "https://download.pytorch.org/whl/cu124"
    env = project(tmp_path, [f"--index-url {index}", "torch==2.5.1"])
    with pytest.raises(LockError, match="two torches") as caught:
        do_lock(env, channel_tree)
    assert index in str(caught.value) and "pytorch 2.5.1" in str(caught.value)


def test_pip_torch_without_a_conda_torch_is_locked(tmp_path, channel_tree, links):
    env = project(tmp_path, [f"--find-links {links}", "torch==2.5.1"], conda=["python=3.12"])
    lockfile = do_lock(env, channel_tree)
    assert pip_entries(lockfile, "linux-64")["torch"].version == "2.5.1"


def test_editable_install_is_refused_for_a_shareable_lock(tmp_path, channel_tree):
    env = project(tmp_path, ["-e ./src"])
    with pytest.raises(LockError, match="editable install"):
        do_lock(env, channel_tree)


def test_local_path_is_refused(tmp_path, channel_tree):
    env = project(tmp_path, ["./src/pkg"])
    with pytest.raises(EnvFileError, match="local paths"):
        do_lock(env, channel_tree)


def test_unknown_pip_option_is_refused(tmp_path, channel_tree):
    env = project(tmp_path, ["--trusted-host example"])
    with pytest.raises(EnvFileError, match="unsupported pip option"):
        do_lock(env, channel_tree)


def test_pip_config_environment_wins_over_files(tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\nfind-links = /w\n")
    assert pip_config_options({}, [conf]) == (
        "--index-url https://mirror.example/simple",
        "--find-links /w",
    )
    env = {"PIP_INDEX_URL": "https://other.example/simple", "PIP_NO_INDEX": "true"}
    assert pip_config_options(env, [conf]) == (
        "--index-url https://other.example/simple",
        "--find-links /w",
        "--no-index",
    )


def test_uv_platform_from_conda_platform_and_glibc():
    assert uv_platform("linux-64", {"__glibc": "2.28"}, LockError) == "x86_64-manylinux_2_28"
    assert uv_platform("linux-64", {"__glibc": "2.30"}, LockError) == "x86_64-manylinux_2_28"
    assert uv_platform("linux-aarch64", {}, LockError) == "aarch64-unknown-linux-gnu"
    assert uv_platform("osx-arm64", {}, LockError) == "aarch64-apple-darwin"
    assert uv_platform("win-64", {}, LockError) == "x86_64-pc-windows-msvc"
    with pytest.raises(LockError, match="linux-ppc64le"):
        uv_platform("linux-ppc64le", {}, LockError)


def test_relative_find_links_is_relative_to_the_environment_file(tmp_path, channel_tree):
    find_links(tmp_path / "wheels", WHEELS)
    env = project(tmp_path, ["--find-links wheels", "--no-index", "beta<2"])
    lockfile = do_lock(env, channel_tree)  # run from another working directory
    assert pip_entries(lockfile, "linux-64")["beta"].url == (
        (tmp_path / "wheels" / "beta-1.0-py3-none-any.whl").as_uri()
    )
