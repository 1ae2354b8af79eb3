"""Planning from what the channel holds: each audited conda-forge case, through the real
gateway reading a ``file://`` conda-forge (support/conda_forge_channel.py), and the
bundled snapshot when nothing can be read."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from support.cli import run_main
from support.conda_forge_channel import audited_rows, runtime_rows, torch, write_channel
from support.servers import basic_auth_handler, serve

from conda_torch_plugin.errors import PlanError
from conda_torch_plugin.machine.model import Gpu, Machine
from conda_torch_plugin.plan import PlanRequest, plan_from_channels
from conda_torch_plugin.sources import default_source


@pytest.fixture(scope="module")
def alias(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = write_channel(tmp_path_factory.mktemp("channels"), audited_rows())
    return root.as_uri()


def machine(platform: str, cuda: str | None, *ccs: str) -> Machine:
    gpus = tuple(Gpu(i, "GPU", None, cc, None) for i, cc in enumerate(ccs))
    return Machine(None, cuda, "flags", gpus, platform=platform)


def plan(alias: str, platform: str, cuda: str | None, *ccs: str, **request: object):
    req = PlanRequest(platforms=(platform,), source="conda-forge", **request)  # type: ignore[arg-type]
    return plan_from_channels(req, machine(platform, cuda, *ccs), channel_alias=alias)


def test_python_comes_from_the_builds_2_9_1_has_no_3_14(alias: str) -> None:
    """`plan --pytorch 2.9 --cuda 12.9 --gpu-arch 8.6` wrote python=3.14, which cannot solve."""
    got = plan(alias, "linux-64", "12.9", "8.6", pytorch="2.9")
    assert (got.pytorch, got.python) == ("2.9.1", "3.13")
    assert "python=3.13" in got.specs
    assert any("repodata" in r and alias in r for r in got.reasons)


def test_a_release_the_channel_does_not_hold_is_never_planned(alias: str) -> None:
    # The recipes list 2.11.0 and 2.12.0; this channel holds neither.
    with pytest.raises(PlanError, match="No PyTorch release matches --pytorch 2.11"):
        plan(alias, "linux-64", "12.9", "8.6", pytorch="2.11")
    assert plan(alias, "linux-64", "12.9", "8.6", pytorch="2.12").pytorch == "2.12.1"


def test_newest_release_through_minor_compat_wins_over_an_older_full_build() -> None:
    """README "How the plan is chosen", rule 3: a CUDA 12.8 driver and an RTX 50xx get the
    newest release's 12.9 build through minor-version compatibility, not an older release
    whose 12.6 build would be fully supported; and no --driver is asked for, since any
    driver for CUDA 12.8 is >= 570.26 >= 525.60.13."""
    from conda_torch_plugin.plan import make_plan

    req = PlanRequest(platforms=("linux-64",), source="conda-forge")
    newest = make_plan(req, machine("linux-64", "12.8", "12.0"))
    assert (newest.pytorch, newest.cuda) == ("2.13.0", "12.9")
    assert any("minor-version compatibility" in w for w in newest.warnings)
    assert not any("driver version is unknown" in w for w in newest.warnings)
    older = make_plan(replace(req, pytorch="2.7.0"), machine("linux-64", "12.8", "12.0"))
    assert older.cuda == "12.6" and not any("minor-version" in w for w in older.warnings)


def test_2_10_0_build_0_has_no_cuda_13(alias: str) -> None:
    got = plan(alias, "linux-64", "13.0", "8.6", pytorch="2.10")
    assert (got.pytorch, got.cuda) == ("2.10.0", "12.9")
    assert got.python == "3.13"


def test_orin_is_not_planned_on_builds_without_sm87(alias: str) -> None:
    """The channel holds 2.13.0 CUDA 13.0 builds 0-1 only: no sm_87 there (S36)."""
    with pytest.raises(PlanError, match="sm_87"):
        plan(alias, "linux-aarch64", "13.0", "8.7", pytorch="2.12")
    with pytest.raises(PlanError, match="sm_87"):
        plan(alias, "linux-aarch64", "13.0", "8.7")


def test_orin_is_planned_once_build_2_is_there(tmp_path: Path) -> None:
    rows = audited_rows() + torch("2.13.0", "linux-aarch64", "3.10-3.14", "13.0", 2)
    got = plan(write_channel(tmp_path, rows).as_uri(), "linux-aarch64", "13.0", "8.7")
    assert (got.pytorch, got.cuda) == ("2.13.0", "13.0")
    assert any("sm_87 cubin" in r for r in got.reasons)


def test_torchaudio_built_against_2_10_is_not_paired_with_2_13(alias: str) -> None:
    got = plan(alias, "linux-64", "13.0", "8.6")
    assert got.pytorch == "2.13.0"
    assert got.torchaudio is None
    assert not [s for s in got.specs if s.startswith("torchaudio")]
    assert any("No torchaudio is paired" in w for w in got.warnings)
    assert "torchvision=0.28.0" in got.specs
    # ... and is the newest torchaudio whose depends accept pytorch 2.10.0.
    assert plan(alias, "linux-64", "12.9", "8.6", pytorch="2.10").torchaudio == "2.11.0"


def test_no_torchvision_accepting_the_release_is_left_out_with_a_warning(tmp_path: Path) -> None:
    rows = [r for r in audited_rows() if not (r[0] == "torchvision" and r[1] == "0.27.1")]
    got = plan(write_channel(tmp_path, rows).as_uri(), "linux-64", "12.9", "8.6", pytorch="2.12")
    assert (got.pytorch, got.torchvision) == ("2.12.1", None)
    assert not [s for s in got.specs if s.startswith("torchvision")]
    assert any(
        "No torchvision build of conda-forge accepts pytorch 2.12.1" in w for w in got.warnings
    )


def test_a_cuda_version_or_python_the_channel_lacks_is_not_planned(tmp_path: Path) -> None:
    rows = [r for r in audited_rows() if r[0] not in ("cuda-version", "python")]
    rows += runtime_rows(cudas=("12.9",), pythons=("3.10", "3.11", "3.12", "3.13"))
    got = plan(write_channel(tmp_path, rows).as_uri(), "linux-64", "13.0", "8.6")
    assert (got.pytorch, got.cuda, got.python) == ("2.13.0", "12.9", "3.13")


def test_win64_torchvision_cuda_pin_is_read_from_its_depends(alias: str) -> None:
    got = plan(alias, "win-64", "12.9", "8.6", pytorch="2.12")
    assert (got.pytorch, got.cuda) == ("2.12.1", "12.8")
    assert "cuda-version=12.9" in got.specs
    newest = plan(alias, "win-64", "12.9", "8.6")
    assert (newest.pytorch, newest.cuda) == ("2.13.0", "12.8")
    assert "cuda-version=12.8" in newest.specs


def test_osx_64_cpu_build(alias: str) -> None:
    got = plan(alias, "osx-64", None)
    assert (got.pytorch, got.compute, got.cuda) == ("2.13.0", "cpu", None)


def test_a_newer_release_the_recipes_cannot_describe_is_reported(alias: str) -> None:
    got = plan(alias, "linux-64", "13.0", "8.6")
    assert got.pytorch == "2.13.0"
    assert any("also holds pytorch 2.14.0" in r for r in got.reasons)


def test_unreadable_channel_falls_back_to_the_bundled_snapshot(tmp_path: Path) -> None:
    got = plan((tmp_path / "nothing").as_uri(), "linux-64", "12.9", "8.6", pytorch="2.9")
    assert (got.pytorch, got.python) == ("2.9.1", "3.13")
    note = next(r for r in got.reasons if "snapshot" in r)
    assert "could not be read" in note and "taken 20" in note


def test_offline_reads_the_cache_else_the_snapshot(tmp_path: Path) -> None:
    """Online, the channel is read (and cached); offline, the cache alone; with nothing
    cached, the bundled snapshot."""
    root = write_channel(tmp_path / "channels", audited_rows())
    req = PlanRequest(platforms=("linux-64",), source="conda-forge")
    here = machine("linux-64", "13.0", "8.6")
    with serve(root) as url:
        online = plan_from_channels(req, here, channel_alias=url)
    assert any("also holds pytorch 2.14.0" in r for r in online.reasons)
    cached = plan_from_channels(req, here, channel_alias=url, offline=True)
    assert any("also holds pytorch 2.14.0" in r for r in cached.reasons)
    nothing = plan_from_channels(req, here, channel_alias="http://127.0.0.1:9", offline=True)
    assert any("--offline and nothing cached" in r and "snapshot" in r for r in nothing.reasons)


def test_a_channel_read_with_credentials_stays_out_of_the_shared_cache(tmp_path: Path) -> None:
    root = write_channel(tmp_path / "channels", audited_rows())
    req = PlanRequest(platforms=("linux-64",), source="conda-forge")
    with serve(root, basic_auth_handler("user", "s3cret-pass")) as url:
        alias = url.replace("http://", "http://user:s3cret-pass@")
        got = plan_from_channels(req, machine("linux-64", "13.0", "8.6"), channel_alias=alias)
    assert any("also holds pytorch 2.14.0" in r for r in got.reasons)  # it was read
    assert not any("s3cret-pass" in r for r in got.reasons)
    cache = Path(os.environ["RATTLER_CACHE_DIR"])
    leaked = [p for p in cache.rglob("*") if p.is_file() and b"s3cret-pass" in p.read_bytes()]
    assert leaked == []


def test_newer_release_line(alias: str) -> None:
    req = PlanRequest(platforms=("linux-64",))
    got = plan_from_channels(req, machine("linux-64", "12.4", "8.6"), channel_alias=alias)
    assert got.source == "pytorch"
    assert got.newer is not None
    assert "pytorch 2.13.0" in got.newer and "--source conda-forge" in got.newer
    pinned = plan_from_channels(
        replace(req, source="conda-forge"), machine("linux-64", "12.4", "8.6"), channel_alias=alias
    )
    assert pinned.newer is None


def test_cli_plan_with_channel_alias_says_so(
    alias: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(
        capsys,
        "plan",
        "--platform",
        "linux-64",
        "--cuda",
        "12.4",
        "--gpu-arch",
        "8.6",
        "--channel-alias",
        alias,
    )
    assert code == 0
    assert "newer: conda-forge has a newer release for this machine: pytorch 2.13.0" in out


@pytest.mark.parametrize(
    ("setting", "environ", "expected"),
    [
        (None, {}, "auto"),
        (None, {"CONDA_TORCH_ENV_DEFAULT_SOURCE": "conda-forge"}, "conda-forge"),
        ("pytorch", {"CONDA_TORCH_ENV_DEFAULT_SOURCE": "conda-forge"}, "pytorch"),
    ],
    ids=["nothing", "variable", "conda-setting-wins"],
)
def test_default_source(setting: str | None, environ: dict[str, str], expected: str) -> None:
    assert default_source(setting, environ) == expected


def test_default_source_from_the_environment_in_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONDA_TORCH_ENV_DEFAULT_SOURCE", "conda-forge")
    code, out, _ = run_main(capsys, "plan", "--platform", "linux-64", "--cuda", "12.4")
    assert code == 0 and out.startswith("pytorch 2.13.0")
    monkeypatch.setenv("CONDA_TORCH_ENV_DEFAULT_SOURCE", "pypi")
    code, _, err = run_main(capsys, "plan", "--platform", "linux-64", "--cuda", "12.4")
    assert code == 2 and "CONDA_TORCH_ENV_DEFAULT_SOURCE is 'pypi'" in err
