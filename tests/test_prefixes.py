from __future__ import annotations

from pathlib import Path

import pytest

from conda_torch_plugin._conda import settings
from conda_torch_plugin.errors import UsageError
from conda_torch_plugin.prefixes import ENVS_DIR_VARIABLE, resolve_target


def test_prefix_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = resolve_target(name=None, prefix="envs/torch")
    assert target.prefix == tmp_path / "envs" / "torch"
    assert target.activate_argument == str(tmp_path / "envs" / "torch")


def test_name_without_conda_uses_the_variable(tmp_path):
    target = resolve_target(name="torch", prefix=None, environ={ENVS_DIR_VARIABLE: str(tmp_path)})
    assert (target.prefix, target.via) == (tmp_path.resolve() / "torch", "env-var")
    # conda does not search that folder unless told to: activate by path.
    assert target.activate_argument == str(tmp_path.resolve() / "torch")


def test_name_without_conda_defaults_to_dot_conda_envs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    target = resolve_target(name="torch", prefix=None, environ={})
    assert (target.prefix, target.via) == (
        tmp_path.resolve() / ".conda" / "envs" / "torch",
        "default",
    )


def test_name_inside_conda_takes_the_first_usable_envs_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    unusable = blocker / "envs"  # under a file: can never be created, even by root
    writable = tmp_path / "not-yet" / "envs"  # missing, but its parent is writable
    target = resolve_target(
        name="torch", prefix=None, conda_envs_dirs=[str(unusable), str(writable)]
    )
    assert target.prefix == writable.resolve() / "torch"
    assert target.activate_argument == "torch"


def test_no_usable_envs_dir_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    with pytest.raises(UsageError, match="envs_dirs"):
        resolve_target(name="torch", prefix=None, conda_envs_dirs=[str(blocker / "envs")])


@pytest.mark.parametrize(
    "name",
    ["a/b", "..", "with space", "x:y", "base", "BASE", ""],
    ids=["slash", "dotdot", "space", "colon", "base", "base-upper", "empty"],
)
def test_bad_names_are_usage_errors(name):
    with pytest.raises(UsageError) as raised:
        resolve_target(name=name, prefix=None, environ={ENVS_DIR_VARIABLE: "/tmp"})
    assert raised.value.exit_code == 2 and raised.value.hints


def test_settings_are_neutral_without_conda():
    try:
        import conda  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("conda is importable here; neutral values only apply without it")
    assert settings.envs_dirs() == []
    assert settings.channel_alias() is None
    assert settings.custom_channels() == {}
    settings.register_env("/nonexistent")  # a no-op, not an error


def test_conda_exe_prefers_the_variable(tmp_path, monkeypatch):
    exe = tmp_path / "conda"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("CONDA_EXE", str(exe))
    assert settings.conda_exe() == str(exe)
    monkeypatch.setenv("CONDA_EXE", str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(Path(tmp_path / "empty")))
    assert settings.conda_exe() is None


def test_inside_conda_its_own_executable_is_found_without_the_shell_hook(monkeypatch, tmp_path):
    """`/opt/conda/bin/conda torch-env install --installer conda` with no CONDA_EXE and no
    conda on PATH: conda's entry point beside the running python is used."""
    import sys
    import types

    from conda_torch_plugin._conda import settings

    for name in ("conda", "conda.base", "conda.base.context"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["conda.base.context"].context = types.SimpleNamespace()
    install = tmp_path / "conda-install"
    (install / "bin").mkdir(parents=True)
    conda = install / "bin" / "conda"
    conda.write_text("#!/bin/sh\n")
    conda.chmod(0o755)
    monkeypatch.setattr(sys, "prefix", str(install))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert settings.conda_exe() == str(conda)
    # Outside conda the same machine has no conda executable.
    for name in ("conda", "conda.base", "conda.base.context"):
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "conda", None)  # import fails, as without conda
    assert settings.conda_exe() is None
