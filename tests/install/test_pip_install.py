"""install: a lock's pip entries go into the staging folder with uv before the swap, so
the prefix gets them with the conda packages or, on failure, stays as it was."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from support.packages import solved_lock
from support.trees import snapshot
from support.wheels import Wheel, build_wheel

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.condalock.lockfile import LockedPackage
from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.install import install_from_lock, prepare_install

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
PLATFORM = "linux-64"
WHEELS = (
    Wheel("epsilon", "1.0", scripts=("eps",)),
    Wheel("gamma", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
)


def pip_entry(path: Path, name: str, version: str) -> LockedPackage:
    return LockedPackage(
        name=name,
        version=version,
        build="",
        platform=PLATFORM,
        url=path.as_uri(),
        md5="",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        manager="pip",
    )


@pytest.fixture(scope="module")
def conda_lock(package_channels):
    return solved_lock(package_channels, ("python=3.12", "numpy"), cuda=None)


@pytest.fixture
def with_pip(conda_lock, tmp_path):
    entries = tuple(
        pip_entry(build_wheel(w, tmp_path / "wheels"), w.name, w.version) for w in WHEELS
    )
    return replace(conda_lock, packages=conda_lock.packages + entries)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".staging-" in p.name or ".old-" in p.name)


def test_pip_entries_installed_with_the_conda_packages(with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    plan = prepare_install(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert {c.name for c in plan.changes} >= {"epsilon", "gamma", "python", "numpy"}
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache", plan=plan)
    site = prefix / "lib/python3.12/site-packages"
    assert (site / "epsilon/__init__.py").read_text().startswith("VERSION = '1.0'")
    assert (site / "gamma-1.0.dist-info/METADATA").is_file()
    assert (site / "numpy/__init__.py").is_file()  # the conda side is there too
    script = (prefix / "bin/eps").read_text()
    assert script.splitlines()[0] == f"#!{prefix}/bin/python3.12"  # the prefix, not staging
    record = (site / "epsilon-1.0.dist-info/RECORD").read_text()
    assert "../../../bin/eps,sha256=" in record
    assert not (site / "bin").exists() and leftovers(prefix.parent) == []
    again = prepare_install(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert again.nothing_to_do


def test_pip_entry_added_to_an_installed_environment(conda_lock, with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    install_from_lock(conda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    plan = prepare_install(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert sorted(c.name for c in plan.changes) == ["epsilon", "gamma"]
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert (prefix / "lib/python3.12/site-packages/gamma/__init__.py").is_file()


def test_failed_pip_step_leaves_the_prefix_as_it_was(conda_lock, with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    install_from_lock(conda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    before = snapshot(prefix)
    # The wheel at the locked URL is replaced by another build of it: its sha256 differs.
    build_wheel(replace(WHEELS[1], requires=("epsilon",)), tmp_path / "wheels")
    with pytest.raises(InstallError, match="left as it was") as caught:
        install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert "hash" in str(caught.value).lower()
    assert snapshot(prefix) == before
    assert leftovers(prefix.parent) == []


def test_failed_pip_step_creates_no_prefix(with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    (tmp_path / "wheels" / WHEELS[0].filename).unlink()
    with pytest.raises(InstallError):
        install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert not prefix.exists() and leftovers(prefix.parent) == []


def test_installer_conda_refuses_pip_entries_instead_of_skipping_them(with_pip, tmp_path):
    from conda_torch_plugin.install.conda_installer import prepare_conda_install

    with pytest.raises(InstallError, match="epsilon, gamma"):
        prepare_conda_install(with_pip, PLATFORM, tmp_path / "env", "/usr/bin/conda")


def test_a_new_pip_version_replaces_the_old_one(conda_lock, with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    wheel = build_wheel(Wheel("epsilon", "2.0", scripts=("eps",)), tmp_path / "wheels")
    newer = pip_entry(wheel, "epsilon", "2.0")
    packages = tuple(p for p in with_pip.packages if p.name != "epsilon") + (newer,)
    lock = replace(with_pip, packages=packages)
    plan = prepare_install(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert [(c.name, c.old, c.new) for c in plan.changes] == [("epsilon", "1.0 (pip)", "2.0 (pip)")]
    install_from_lock(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache", plan=plan)
    site = prefix / "lib/python3.12/site-packages"
    assert sorted(p.name for p in site.glob("epsilon-*.dist-info")) == ["epsilon-2.0.dist-info"]
    assert (site / "epsilon/__init__.py").read_text().startswith("VERSION = '2.0'")
    assert (prefix / "bin/eps").read_text().startswith(f"#!{prefix}/bin/python3.12\n")
