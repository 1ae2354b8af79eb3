"""install: a lock's pip entries go into the staging folder with uv before the swap, so
the prefix gets them with the conda packages or, on failure, stays as it was."""

from __future__ import annotations

import hashlib
import json
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


def without(lock, *names: str):
    return replace(lock, packages=tuple(p for p in lock.packages if p.name not in names))


def pip_record(prefix: Path) -> dict[str, object]:
    return json.loads((prefix / "conda-meta" / "torch-env-pip").read_text())


def install_by_hand(site: Path, name: str, version: str) -> None:
    """A package put there by other means (``pip install`` in the environment)."""
    (site / name).mkdir()
    (site / name / "__init__.py").write_text("")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n{info.name}/METADATA,,\n")


def test_a_pip_package_the_lock_dropped_is_removed(with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert pip_record(prefix) == {"version": 1, "packages": {"epsilon": "1.0", "gamma": "1.0"}}
    site = prefix / "lib/python3.12/site-packages"
    install_by_hand(site, "zeta", "3.0")
    (site / "epsilon/__pycache__").mkdir()  # epsilon was imported once
    (site / "epsilon/__pycache__/__init__.cpython-312.pyc").write_bytes(b"")
    lock = without(with_pip, "epsilon")
    plan = prepare_install(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert [(c.name, c.kind, c.old, c.new) for c in plan.changes] == [
        ("epsilon", "remove", "1.0 (pip)", None)
    ]
    install_from_lock(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache", plan=plan)
    assert not (site / "epsilon").exists() and not (prefix / "bin/eps").exists()
    assert list(site.glob("epsilon-*.dist-info")) == []
    assert (site / "gamma/__init__.py").is_file() and (site / "gamma-1.0.dist-info").is_dir()
    assert (site / "zeta/__init__.py").is_file() and (site / "zeta-3.0.dist-info").is_dir()
    assert pip_record(prefix) == {"version": 1, "packages": {"gamma": "1.0"}}
    assert prepare_install(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache").nothing_to_do


def test_a_lock_without_pip_entries_removes_every_recorded_one(conda_lock, with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    site = prefix / "lib/python3.12/site-packages"
    install_by_hand(site, "zeta", "3.0")
    plan = prepare_install(conda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert [(c.name, c.kind, c.old) for c in plan.changes] == [
        ("epsilon", "remove", "1.0 (pip)"),
        ("gamma", "remove", "1.0 (pip)"),
    ]
    install_from_lock(conda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache", plan=plan)
    assert sorted(p.name for p in site.glob("*.dist-info")) == ["zeta-3.0.dist-info"]
    assert not (site / "epsilon").exists() and not (site / "gamma").exists()
    assert not (prefix / "bin/eps").exists()
    assert not (prefix / "conda-meta" / "torch-env-pip").exists()
    assert (site / "numpy/__init__.py").is_file()
    assert prepare_install(conda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache").nothing_to_do


MALFORMED = {
    "not JSON": "{not json",
    "not an object": "[1, 2]",
    "unknown version": '{"version": 2, "packages": {"gamma": "1.0"}}',
    "packages not an object": '{"version": 1, "packages": ["gamma"]}',
    "version not a string": '{"version": 1, "packages": {"gamma": 1}}',
    "a path as a name": '{"version": 1, "packages": {"../../../../bin": "1.0", "gamma": "1.0"}}',
    "a backslash in a name": '{"version": 1, "packages": {"..\\\\gamma": "1.0"}}',
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_pip_record_is_ignored_with_a_warning(with_pip, text, tmp_path):
    prefix = tmp_path / "envs" / "team"
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    (prefix / "conda-meta" / "torch-env-pip").write_text(text)
    outside = tmp_path / "bin"
    outside.mkdir()
    (outside / "keep").write_text("")
    lock = without(with_pip, "epsilon", "numpy")  # numpy: a change, so the install runs
    plan = prepare_install(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert [f.severity for f in plan.findings] == ["warning"]
    assert "torch-env-pip" in plan.findings[0].message
    assert "ignored" in plan.findings[0].message
    assert [(c.name, c.kind) for c in plan.changes] == [("numpy", "remove")]
    assert plan.to_dict()["findings"][0]["severity"] == "warning"
    result = install_from_lock(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert result.plan.findings == plan.findings
    site = prefix / "lib/python3.12/site-packages"
    # Nothing the record names is removed: epsilon is now the user's, like any other.
    assert sorted(p.name for p in site.glob("*.dist-info")) == [
        "epsilon-1.0.dist-info",
        "gamma-1.0.dist-info",
    ]
    assert (prefix / "bin/eps").is_file() and (outside / "keep").is_file()
    assert pip_record(prefix) == {"version": 1, "packages": {"gamma": "1.0"}}


def test_a_pip_record_is_not_read_as_a_conda_package_record(with_pip, tmp_path):
    prefix = tmp_path / "envs" / "team"
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    # conda and rattler read every conda-meta/*.json as a package record.
    assert [p.name for p in (prefix / "conda-meta").glob("torch-env*")] == ["torch-env-pip"]
    lock = without(with_pip, "numpy", "epsilon")
    install_from_lock(lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    assert not (prefix / "lib/python3.12/site-packages/numpy").exists()


def test_dry_run_json_lists_a_dropped_pip_package_as_removed(with_pip, tmp_path, capsys):
    from support.cli import run_main

    from conda_torch_plugin.condalock.lockfile import write_lockfile

    prefix = tmp_path / "envs" / "team"
    install_from_lock(with_pip, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    lockfile = tmp_path / "conda-lock.yml"
    write_lockfile(without(with_pip, "gamma"), lockfile, command="test")
    args = ("install", "-p", str(prefix), "--lockfile", str(lockfile), "--platform", PLATFORM)
    status, out, err = run_main(capsys, *args, "--dry-run", "--json")
    assert status == 0, err
    changes = json.loads(out)["install"]["changes"]
    assert changes == [{"name": "gamma", "kind": "remove", "old": "1.0 (pip)", "new": None}]
    status, out, err = run_main(capsys, *args, "--dry-run")
    assert status == 0, err
    assert "The following packages will be removed:" in out
    assert "gamma  1.0 (pip)" in out
    assert (prefix / "lib/python3.12/site-packages/gamma/__init__.py").is_file()
    (prefix / "conda-meta" / "torch-env-pip").write_text("{not json")
    status, out, err = run_main(capsys, *args, "--dry-run")
    assert status == 0, err
    assert "warning: record of pip packages " in err and "it is ignored" in err
    assert "  hint: remove the pip packages the lock no longer holds yourself" in err
    assert "will be removed" not in out and "Traceback" not in err


def test_the_update_summary_counts_only_conda_packages_as_unchanged(
    conda_lock, with_pip, tmp_path, capsys
):
    """Adding pip packages to an environment leaves every conda package unchanged."""
    from support.cli import run_main

    from conda_torch_plugin.condalock.lockfile import write_lockfile

    prefix = tmp_path / "envs" / "team"
    install_from_lock(conda_lock, PLATFORM, prefix, cache_dir=tmp_path / "cache")
    lockfile = tmp_path / "conda-lock.yml"
    write_lockfile(with_pip, lockfile, command="test")
    args = ("install", "-p", str(prefix), "--lockfile", str(lockfile), "--platform", PLATFORM)
    status, out, err = run_main(capsys, *args, "--dry-run")
    assert status == 0, err
    conda_count = sum(1 for p in conda_lock.packages if p.platform == PLATFORM)
    pip_count = len(with_pip.packages) - len(conda_lock.packages)
    assert f"{pip_count} changes, {conda_count} packages unchanged" in out
