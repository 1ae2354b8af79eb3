"""``conda torch-env lock``: text and JSON output, --check exit status, --solver conda-lock."""

from __future__ import annotations

import json
import os
import sys

import pytest
from support.cli import run_cli
from support.lock_projects import CUDA_124, THREE, make_project
from support.repodata import virtual_packages_for, write_virtual_packages

from conda_torch_plugin.cli import main


@pytest.fixture
def project(tmp_path, monkeypatch):
    make_project(tmp_path, CUDA_124)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_text_summary(project, channel_tree, capsys):
    assert main(["lock", "--channel-alias", channel_tree.alias]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    row = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in THREE}
    assert (
        "CUDA 12.4" in row["linux-64"]
        and "pytorch 2.5.1 py3.12_cuda12.4_cudnn9.1.0_0" in row["linux-64"]
    )
    assert "CUDA 12.4" in row["win-64"]
    assert "CPU/MPS" in row["osx-arm64"] and "py3.12_0" in row["osx-arm64"]
    assert "torchvision 0.20.1, torchaudio 2.5.1" in row["linux-64"]
    assert row["linux-64"].split()[-1].isdigit()
    assert "wrote conda-lock.yml" in out
    header = (project / "conda-lock.yml").read_text().splitlines()[:12]
    assert f"#     conda torch-env lock --channel-alias {channel_tree.alias}" in header


def test_json_output(project, channel_tree, capsys):
    status = main(["lock", "--channel-alias", channel_tree.alias, "--explicit", "--json"])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lockfile"] == "conda-lock.yml"
    assert data["written"] is True
    assert set(data["platforms"]) == set(THREE)
    linux = data["platforms"]["linux-64"]
    assert linux["pytorch"] == "2.5.1 py3.12_cuda12.4_cudnn9.1.0_0"
    assert linux["torchvision"] == "0.20.1 py312_cu124"
    assert linux["pytorch-cuda"].startswith("12.4 ")
    assert linux["flavour"] == "CUDA 12.4" and linux["packages"] > 20
    assert data["platforms"]["osx-arm64"]["pytorch"] == "2.5.1 py3.12_0"
    assert set(data["content_hash"]) == set(THREE)
    assert data["explicit_files"] == [f"conda-{p}.lock" for p in THREE]
    assert data["solver"] == "rattler" and data["solve_seconds"] > 0


def test_check_exit_status_names_the_change(project, channel_tree, capsys):
    assert main(["lock", "--channel-alias", channel_tree.alias]) == 0
    capsys.readouterr()
    assert main(["lock", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    env = project / "environment.yml"
    env.write_text(
        env.read_text().replace("pytorch-cuda=12.4  # [win]", "pytorch-cuda=12.1  # [win]")
    )
    assert main(["lock", "--check"]) == 1
    err = capsys.readouterr().err
    assert "out of date: stale for win-64" in err
    assert "'pytorch-cuda=12.1'" in err and "pytorch-cuda 12.4" in err
    assert main(["lock", "--check", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["up_to_date"] is False and data["stale"] == ["win-64"]


def test_check_without_a_lock(project, capsys):
    assert main(["lock", "--check"]) == 1
    assert "conda-lock.yml does not exist" in capsys.readouterr().err


def test_errors_are_messages_not_tracebacks(project, channel_tree, capsys):
    write_virtual_packages(project / "virtual-packages.yml", virtual_packages_for("11.8"))
    assert main(["lock", "--channel-alias", channel_tree.alias]) == 1
    err = capsys.readouterr().err
    messages = [line for line in err.splitlines() if not line.startswith("==> ")]
    assert messages[0].startswith("error: the environment cannot be solved for linux-64")
    assert "Traceback" not in err and "hint:" in err
    assert not (project / "conda-lock.yml").exists()


def test_error_in_json_mode(project, capsys):
    assert main(["lock", "--platform", "linux-65", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"] == "UsageError"
    assert "unknown platform 'linux-65'" in captured.err


def test_lockfile_and_vp_options(project, channel_tree, capsys):
    (project / "vp").mkdir()
    os.replace(project / "virtual-packages.yml", project / "vp" / "cuda.yml")
    options = [
        "--lockfile",
        "out.yml",
        "--virtual-package-spec",
        "vp/cuda.yml",
        "--platform",
        "linux-64",
    ]
    status = main(["lock", "--channel-alias", channel_tree.alias, *options, "--json"])
    assert status == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lockfile"] == "out.yml" and list(data["platforms"]) == ["linux-64"]
    assert data["platforms"]["linux-64"]["flavour"] == "CUDA 12.4"
    text = (project / "out.yml").read_text()
    assert (
        "#     conda torch-env lock --lockfile out.yml --platform linux-64 "
        "--virtual-package-spec vp/cuda.yml --channel-alias"
    ) in text
    assert main(["lock", "--check", *options]) == 0


def test_conda_lock_solver_without_conda_fails_fast(project):
    (project / "conda-lock.yml").write_text("previous\n")
    env = {k: v for k, v in os.environ.items() if k != "CONDA_EXE"}
    env["PATH"] = str(project / "no-bin")
    # Fails before any solve or download: a run that tried one would outlast the timeout.
    done = run_cli("lock", "--solver", "conda-lock", cwd=project, env=env, timeout=30)
    assert done.returncode == 1
    assert "--solver conda-lock needs a conda, mamba or micromamba executable" in done.stderr
    assert "download" in done.stderr
    assert (project / "conda-lock.yml").read_text() == "previous\n"


def test_progress_lines_when_not_a_terminal(project, channel_tree):
    # A CI log shows the lock working: one line per solved platform, no redrawing.
    done = run_cli("lock", "--channel-alias", channel_tree.alias, cwd=project)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "==> Solving linux-64, win-64, osx-arm64"
    solved = sorted(line.split(":")[0] for line in lines if line.startswith("==> Solved "))
    assert solved == ["==> Solved linux-64", "==> Solved osx-arm64", "==> Solved win-64"]
    assert "\r" not in done.stderr
    assert "wrote conda-lock.yml" in done.stdout


def test_quiet_lock_prints_no_progress(project, channel_tree):
    done = run_cli("lock", "-q", "--channel-alias", channel_tree.alias, cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "wrote conda-lock.yml" in done.stdout


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["lock", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--platform",
        "--lockfile",
        "--virtual-package-spec",
        "--channel-alias",
        "--check",
        "--explicit",
        "--solver",
        "--json",
    ):
        assert option in out


@pytest.fixture
def fake_conda_context(monkeypatch, channel_tree):
    """A stand-in for ``conda.base.context`` (conda is not installable here): conda's
    channel_alias points at the test channels, and custom_channels sends nvidia elsewhere."""
    import types

    context = types.SimpleNamespace(
        channel_alias=types.SimpleNamespace(base_url=channel_tree.alias + "/"),
        custom_channels={"nvidia": types.SimpleNamespace(base_url=channel_tree.url("nvidia"))},
    )
    modules = {
        name: types.ModuleType(name) for name in ("conda", "conda.base", "conda.base.context")
    }
    modules["conda.base.context"].context = context
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return context


def test_inside_conda_the_alias_comes_from_conda(project, fake_conda_context, capsys):
    from conda_torch_plugin.cli import build_parser, execute

    args = build_parser().parse_args(["lock", "--json"])
    args.inside_conda = True
    assert execute(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["platforms"]["linux-64"]["flavour"] == "CUDA 12.4"
    text = (project / "conda-lock.yml").read_text()
    assert f"url: {fake_conda_context.channel_alias.base_url}pytorch" in text
    assert "--channel-alias" not in text  # conda's setting is not part of the command


def test_outside_conda_the_default_alias_is_anaconda_org(project, fake_conda_context):
    import argparse

    from conda_torch_plugin.cli._options import mirror_from_args as _channel_settings

    args = argparse.Namespace(channel_alias=None, inside_conda=False)
    assert _channel_settings(args) == (None, None)
    args.inside_conda = True
    alias, custom = _channel_settings(args)
    assert alias == fake_conda_context.channel_alias.base_url.rstrip("/")
    assert custom == {"nvidia": fake_conda_context.custom_channels["nvidia"].base_url}


def test_a_mirror_that_does_not_answer_is_named_with_what_to_do(project):
    from support.servers import refusing_port

    with refusing_port() as port:
        done = run_cli("lock", "-q", "--channel-alias", f"http://127.0.0.1:{port}", cwd=project)
        assert done.returncode == 1
        assert done.stderr.startswith(f"error: cannot reach 127.0.0.1:{port} (while solving ")
        assert "the connection was refused" in done.stderr
        assert f"the mirror 127.0.0.1:{port}" in done.stderr
        # Nothing the user never touched, and no wall of URLs.
        assert "channels: list" not in done.stderr
        assert "repodata" not in done.stderr
        assert not (project / "conda-lock.yml").exists()


def test_no_network_names_the_host_and_the_way_out():
    from conda_torch_plugin.channels import ChannelSource
    from conda_torch_plugin.lock.rattler import _unreadable

    channels = [
        ChannelSource("pytorch", "https://conda.anaconda.org/pytorch"),
        ChannelSource("conda-forge", "https://conda.anaconda.org/conda-forge"),
    ]
    rattler_says = (
        "error sending request for url (https://conda.anaconda.org/pytorch/linux-64/"
        "repodata_shards.msgpack.zst)\nCaused by: client error (Connect)\nCaused by: dns error"
        "\nCaused by: failed to lookup address information: Name or service not known"
    )
    error = _unreadable(rattler_says, "linux-64", channels)
    assert error.message == (
        "cannot reach conda.anaconda.org (while solving linux-64): the host name cannot be resolved"
    )
    assert error.hints == (
        "check the network or proxy, or use --channel-alias URL to read the channels from a "
        "mirror (or a local file:// copy)",
    )


def test_offline_lock_from_local_channels_works(project, channel_tree, capsys):
    assert main(["lock", "--offline", "--channel-alias", channel_tree.alias]) == 0
    assert "wrote conda-lock.yml" in capsys.readouterr().out


def test_the_platform_that_fetched_is_reported_not_one_that_waited_on_it():
    """Platforms share one gateway; those that waited on its failed fetch learn nothing."""
    from conda_torch_plugin.lock.rattler import _most_telling

    waited = RuntimeError("a coalesced request failed\nCaused by: other error")
    fetched = RuntimeError("error sending request\nCaused by: Connection refused (os error 111)")
    assert _most_telling([("linux-64", waited), ("win-64", fetched)]) == ("win-64", fetched)
    assert _most_telling([("linux-64", waited), ("win-64", waited)]) == ("linux-64", waited)


def test_offline_lock_without_cached_repodata_names_the_channel(
    project, channel_tree, capsys, monkeypatch, tmp_path
):
    from support.servers import serve

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # rattler's repodata cache
    with serve(channel_tree.root) as url:
        assert main(["lock", "--offline", "--channel-alias", url]) == 1
    err = capsys.readouterr().err
    assert "offline mode: no cached repodata for" in err and url in err
    assert not (project / "conda-lock.yml").exists()
