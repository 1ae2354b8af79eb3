"""Channel resolution and per-platform solving with py-rattler against real file:// channels."""

from __future__ import annotations

import json

import pytest
from support.repodata import VP_LINUX, VP_OSX, VP_WIN, write_channel

from conda_torch_plugin.channels import (
    ChannelSource,
    check_local_channels,
    normalize_alias,
    redact,
    resolve_channel,
    resolve_channels,
    strip_credentials,
)
from conda_torch_plugin.errors import LockError, UsageError
from conda_torch_plugin.flavour import torch_flavour
from conda_torch_plugin.lock.rattler import (
    check_platforms,
    default_virtual_packages,
    solve_platforms,
    solve_virtual_packages,
)

PYTORCH_CHANNELS = ["pytorch", "nvidia", "conda-forge"]
TORCH_251 = ["python=3.12", "pytorch=2.5.1", "torchvision=0.20.1", "torchaudio=2.5.1"]


def _channels(tree, names=PYTORCH_CHANNELS):
    return resolve_channels(names, tree.alias)


def _by_name(solution, platform):
    return {r.name.normalized: r for r in solution.platforms[platform].records}


def _flavour(record, platform):
    return torch_flavour(
        record.name.normalized,
        str(record.version),
        str(record.build),
        list(record.depends),
        platform=platform,
    )


# -- channels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "alias", "custom", "urls"),
    [
        ("pytorch", None, None, ["https://conda.anaconda.org/pytorch"]),
        (
            "pytorch",
            "https://mirror.example.com/conda/",
            None,
            ["https://mirror.example.com/conda/pytorch"],
        ),
        (
            "conda-forge/label/pytorch_rc",
            "file:///srv/ch",
            None,
            ["file:///srv/ch/conda-forge/label/pytorch_rc"],
        ),
        (
            "/srv/channels/local",
            "https://ignored.example.com",
            None,
            ["file:///srv/channels/local"],
        ),
        ("https://host.example.com/x/", "file:///srv/ch", None, ["https://host.example.com/x"]),
        ("file:///data/chan", None, None, ["file:///data/chan"]),
        (
            "conda-forge",
            None,
            {"conda-forge": "https://mirror.example.com/cf"},
            ["https://mirror.example.com/cf"],
        ),
        (
            "conda-forge/label/rc",
            None,
            {"conda-forge": "https://mirror.example.com/cf"},
            ["https://mirror.example.com/cf/label/rc"],
        ),
        (
            "defaults",
            "file:///srv/ch",
            None,
            ["https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r"],
        ),
        ("nodefaults", None, None, []),
    ],
    ids=[
        "default-alias",
        "mirror-alias",
        "label",
        "abs-path",
        "url",
        "file-url",
        "custom",
        "custom-label",
        "defaults",
        "nodefaults",
    ],
)
def test_resolve_channel(name, alias, custom, urls):
    assert [c.url for c in resolve_channel(name, alias, custom)] == urls


def test_alias_may_be_a_local_folder(tmp_path):
    assert normalize_alias(str(tmp_path)) == tmp_path.as_uri()
    assert resolve_channel("pytorch", str(tmp_path))[0].url == f"{tmp_path.as_uri()}/pytorch"


def test_empty_alias_is_a_usage_error():
    with pytest.raises(UsageError):
        normalize_alias("  ")


def test_resolve_channels_keeps_order_and_drops_duplicates():
    chans = resolve_channels(["pytorch", "nvidia", "pytorch", "nodefaults"], "file:///c")
    assert [c.name for c in chans] == ["pytorch", "nvidia"]


def test_no_channel_at_all_is_refused():
    with pytest.raises(LockError, match="no channel"):
        resolve_channels(["nodefaults"])


@pytest.mark.parametrize(
    ("url", "public"),
    [
        (
            "https://user:s3cret@mirror.example.com/conda/pytorch",
            "https://mirror.example.com/conda/pytorch",
        ),
        ("https://conda.example.com/t/tk-123/pytorch", "https://conda.example.com/pytorch"),
        (
            "https://u:p@conda.example.com/t/tk-123/conda-forge/linux-64/x.conda",
            "https://conda.example.com/conda-forge/linux-64/x.conda",
        ),
        ("file:///srv/ch/pytorch", "file:///srv/ch/pytorch"),
    ],
    ids=["basic-auth", "token", "both", "file"],
)
def test_strip_credentials(url, public):
    assert strip_credentials(url) == public
    assert ChannelSource("x", url).public_url == public


def test_redact_removes_credentials_from_messages():
    chan = ChannelSource("pytorch", "https://bob:hunter2@m.example.com/t/TOK/pytorch")
    text = (
        f"could not fetch {chan.url}/noarch/repodata.json; channel "
        "'https://bob:********@m.example.com/t/********/pytorch/'"
    )
    cleaned = redact(text, [chan])
    assert "hunter2" not in cleaned and "TOK" not in cleaned and "bob" not in cleaned
    assert "https://m.example.com/pytorch/noarch/repodata.json" in cleaned


# -- virtual packages and platforms ------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (
            "linux-64",
            {"__unix": "0", "__linux": "5.10", "__glibc": "2.28", "__archspec": "1 x86_64"},
        ),
        ("win-64", {"__win": "0", "__archspec": "1 x86_64"}),
        ("osx-arm64", {"__unix": "0", "__osx": "11.0", "__archspec": "1 arm64"}),
        (
            "linux-aarch64",
            {"__unix": "0", "__linux": "5.10", "__glibc": "2.28", "__archspec": "1 aarch64"},
        ),
    ],
    ids=["linux-64", "win-64", "osx-arm64", "linux-aarch64"],
)
def test_default_virtual_packages_have_no_cuda(platform, expected):
    assert default_virtual_packages(platform) == expected


def test_virtual_package_file_replaces_defaults_per_platform(tmp_path):
    from conda_torch_plugin.condalock.envspec import read_virtual_packages

    path = tmp_path / "virtual-packages.yml"
    path.write_text(
        'subdirs:\n  linux-64:\n    packages:\n      __glibc: "2.17"\n      __cuda: "12.4"\n'
    )
    spec = read_virtual_packages(path)
    assert solve_virtual_packages("linux-64", spec) == {"__glibc": "2.17", "__cuda": "12.4"}
    assert solve_virtual_packages("win-64", spec) == default_virtual_packages("win-64")


@pytest.mark.parametrize("bad", ["linux-65", "noarch", "osx"], ids=["typo", "noarch", "os-only"])
def test_unknown_platform_names_the_known_ones(bad):
    with pytest.raises(UsageError, match="unknown platform") as info:
        check_platforms(["linux-64", bad])
    assert "linux-64" in " ".join(info.value.hints)


# -- solving -----------------------------------------------------------------------------------


def test_pytorch_channel_cuda_plan_for_three_platforms(channel_tree):
    specs = {
        "linux-64": [*TORCH_251, "pytorch-cuda=12.4"],
        "win-64": [*TORCH_251, "pytorch-cuda=12.4"],
        "osx-arm64": TORCH_251,
    }
    vps = {
        "linux-64": {**VP_LINUX, "__cuda": "12.4"},
        "win-64": {**VP_WIN, "__cuda": "12.4"},
        "osx-arm64": VP_OSX,
    }
    progress: list[str] = []
    solution = solve_platforms(_channels(channel_tree), specs, vps, progress=progress.append)
    assert progress[0] == "Solving linux-64, win-64, osx-arm64"
    solved = sorted(line.split(":")[0] for line in progress[1:])
    assert solved == ["Solved linux-64", "Solved osx-arm64", "Solved win-64"]
    for platform in ("linux-64", "win-64"):
        recs = _by_name(solution, platform)
        assert str(recs["pytorch"].build) == "py3.12_cuda12.4_cudnn9.1.0_0"
        for name in ("pytorch", "torchvision", "torchaudio"):
            flavour = _flavour(recs[name], platform)
            assert (flavour.compute, flavour.cuda) == ("cuda", "12.4"), name
        assert str(recs["pytorch-mutex"].build) == "cuda"
        assert str(recs["pytorch-cuda"].version) == "12.4"
        assert recs["pytorch"].channel.rstrip("/").endswith("/pytorch")
        assert recs["numpy"].channel.rstrip("/").endswith("/conda-forge")
    osx = _by_name(solution, "osx-arm64")
    assert str(osx["pytorch"].build) == "py3.12_0"
    assert "pytorch-cuda" not in osx and "pytorch-mutex" not in osx
    assert {
        _flavour(osx[n], "osx-arm64").compute for n in ("pytorch", "torchvision", "torchaudio")
    } == {"mps"}
    names = [r.name.normalized for r in solution.platforms["linux-64"].records]
    assert names == sorted(names)
    assert solution.solve_seconds > 0
    assert all(p.seconds > 0 for p in solution.platforms.values())


def test_dotted_build_string_pins_a_variant(channel_tree):
    specs = {
        "linux-64": [
            "python=3.12",
            "pytorch=2.5.1=py3.12_cuda12.1_cudnn9.1.0_0",
            "pytorch-cuda=12.1",
        ]
    }
    solution = solve_platforms(
        _channels(channel_tree), specs, {"linux-64": {**VP_LINUX, "__cuda": "12.4"}}
    )
    assert str(_by_name(solution, "linux-64")["pytorch"].build) == "py3.12_cuda12.1_cudnn9.1.0_0"


def test_conda_forge_cuda_glob_build(channel_tree):
    specs = {
        "linux-64": [
            "python=3.12",
            "pytorch=2.13.0=cuda*",
            "cuda-version=12.9",
            "torchvision",
            "torchaudio",
        ]
    }
    solution = solve_platforms(
        _channels(channel_tree, ["conda-forge"]),
        specs,
        {"linux-64": {**VP_LINUX, "__cuda": "12.9"}},
    )
    recs = _by_name(solution, "linux-64")
    assert str(recs["pytorch"].build).startswith("cuda129_mkl_py312_")
    assert str(recs["torchvision"].build).startswith("cuda129_")
    assert str(recs["torchaudio"].build).startswith("cuda129_")
    assert str(recs["cuda-version"].version) == "12.9"


def test_channel_prefixed_spec_reads_through_the_alias(channel_tree):
    specs = {"linux-64": ["python=3.12", "pytorch::pytorch=2.4.1", "cpuonly"]}
    solution = solve_platforms(
        _channels(channel_tree), specs, {"linux-64": VP_LINUX}, channel_alias=channel_tree.alias
    )
    recs = _by_name(solution, "linux-64")
    assert (str(recs["pytorch"].version), str(recs["pytorch"].build)) == ("2.4.1", "py3.12_cpu_0")


def test_unsatisfiable_names_the_constraint(channel_tree):
    specs = {"linux-64": [*TORCH_251, "pytorch-cuda=12.4"]}
    with pytest.raises(LockError) as info:
        solve_platforms(
            _channels(channel_tree), specs, {"linux-64": {**VP_LINUX, "__cuda": "11.8"}}
        )
    message = info.value.message
    assert message.startswith("the environment cannot be solved for linux-64")
    assert "pytorch-cuda 12.4" in message and "__cuda" in message
    assert "Cannot solve the request" not in message  # rattler's preamble is folded in
    assert any("__cuda=11.8" in h for h in info.value.hints)


def test_missing_package_is_named(channel_tree):
    specs = {"osx-arm64": [*TORCH_251, "pytorch-cuda=12.4"]}
    with pytest.raises(LockError, match="nothing in the channels provides pytorch-cuda 12.4"):
        solve_platforms(_channels(channel_tree), specs, {"osx-arm64": VP_OSX})


def test_no_glibc_means_no_python(channel_tree):
    # rattler assumes no virtual package it is not given: linux python needs __glibc.
    specs = {"linux-64": ["python=3.12"]}
    with pytest.raises(LockError, match="__glibc"):
        solve_platforms(
            _channels(channel_tree, ["conda-forge"]), specs, {"linux-64": {"__unix": "0"}}
        )


def test_invalid_spec_is_named(channel_tree):
    with pytest.raises(LockError, match="'pytorch=>>2' in environment.yml is not a valid"):
        solve_platforms(
            _channels(channel_tree), {"linux-64": ["pytorch=>>2"]}, {"linux-64": VP_LINUX}
        )


def test_invalid_virtual_package_version(channel_tree):
    with pytest.raises(LockError, match="__cuda"):
        solve_platforms(
            _channels(channel_tree),
            {"linux-64": ["python"]},
            {"linux-64": {**VP_LINUX, "__cuda": "twelve..four"}},
        )


# -- channels that are missing or broken -------------------------------------------------------


def test_missing_channel_says_which_and_what_to_do(channel_tree):
    chans = resolve_channels(["pytorch", "no-such-channel"], channel_tree.alias)
    with pytest.raises(LockError) as info:
        solve_platforms(chans, {"linux-64": ["python"]}, {"linux-64": VP_LINUX})
    message = info.value.message
    assert "'no-such-channel'" in message and "does not exist" in message
    assert f"{channel_tree.alias}/no-such-channel" in message
    assert any("--channel-alias" in h for h in info.value.hints)


def test_channel_without_noarch(tmp_path):
    write_channel(tmp_path, "half", [], ("linux-64",))
    chans = resolve_channels(["half"], tmp_path.as_uri())
    with pytest.raises(LockError, match="no noarch/repodata.json"):
        check_local_channels(chans, ["linux-64"])


def test_missing_platform_subdir_counts_as_empty(channel_tree):
    # nvidia has no osx-arm64 folder: fine, as long as nothing is needed from it.
    solution = solve_platforms(
        _channels(channel_tree), {"osx-arm64": TORCH_251}, {"osx-arm64": VP_OSX}
    )
    assert "pytorch" in _by_name(solution, "osx-arm64")


def test_unreadable_repodata_is_reported(tmp_path):
    write_channel(tmp_path, "broken", [], ("linux-64", "noarch"))
    (tmp_path / "broken" / "noarch" / "repodata.json").write_text('{"info": ')
    chans = resolve_channels(["broken"], tmp_path.as_uri())
    with pytest.raises(LockError, match="cannot be read") as info:
        solve_platforms(chans, {"linux-64": ["python"]}, {"linux-64": VP_LINUX})
    assert "repodata" in info.value.message


def test_real_pytorch_channel_records(real_channel_tree):
    specs = {
        "linux-64": [
            "python=3.11",
            "pytorch=2.1.0",
            "torchvision=0.16.0",
            "torchaudio=2.1.0",
            "pytorch-cuda=12.1",
        ]
    }
    solution = solve_platforms(
        _channels(real_channel_tree), specs, {"linux-64": {**VP_LINUX, "__cuda": "12.2"}}
    )
    recs = _by_name(solution, "linux-64")
    assert str(recs["pytorch"].build) == "py3.11_cuda12.1_cudnn8.9.2_0"
    assert str(recs["torchvision"].build) == "py311_cu121"
    assert str(recs["torchaudio"].build) == "py311_cu121"
    assert str(recs["pytorch-cuda"].build) == "ha16c6d3_5"
    assert str(recs["pytorch-mutex"].build) == "cuda"
    # The real record's hashes come through untouched.
    real = json.loads(
        (real_channel_tree.root / "pytorch" / "linux-64" / "repodata.json").read_text()
    )
    entry = real["packages"][recs["pytorch"].file_name]
    assert recs["pytorch"].sha256.hex() == entry["sha256"]
    assert recs["pytorch"].md5.hex() == entry["md5"]
