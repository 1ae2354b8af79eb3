from __future__ import annotations

import pytest

from conda_torch_plugin.condalock.lockfile import LockedPackage
from conda_torch_plugin.flavour import Flavour, lock_flavour, torch_flavour

CASES = [
    # pytorch channel, pytorch
    ("pytorch", "2.5.1", "py3.12_cuda12.4_cudnn9.1.0_0", None, Flavour("cuda", "12.4", "pytorch")),
    ("pytorch", "2.1.0", "py3.10_cuda11.8_cudnn8.7.0_0", None, Flavour("cuda", "11.8", "pytorch")),
    (
        "pytorch",
        "1.7.1",
        "py3.8_cuda10.2.89_cudnn7.6.5_0",
        None,
        Flavour("cuda", "10.2", "pytorch"),
    ),
    ("pytorch", "2.5.1", "py3.10_cpu_0", None, Flavour("cpu", None, "pytorch")),
    ("pytorch", "2.5.1", "py3.12_0", "osx-arm64", Flavour("mps", None, "pytorch")),
    ("pytorch", "2.2.2", "py3.11_0", "osx-64", Flavour("cpu", None, "pytorch")),
    # pytorch channel, companions
    ("torchvision", "0.20.1", "py312_cu124", None, Flavour("cuda", "12.4", "pytorch")),
    ("torchaudio", "2.5.1", "py310_cu118", None, Flavour("cuda", "11.8", "pytorch")),
    ("torchvision", "0.11.3", "py36_cu92", None, Flavour("cuda", "9.2", "pytorch")),
    ("torchaudio", "2.5.1", "py312_cpu", None, Flavour("cpu", None, "pytorch")),
    # markers
    ("pytorch-mutex", "1.0", "cuda", None, Flavour("cuda", None, "pytorch")),
    ("pytorch-mutex", "1.0", "cpu", None, Flavour("cpu", None, "pytorch")),
    ("pytorch-cuda", "12.1", "ha16c6d3_5", None, Flavour("cuda", "12.1", "pytorch")),
    ("cpuonly", "2.0", "0", None, Flavour("cpu", None, "pytorch")),
    # conda-forge
    (
        "pytorch",
        "2.10.0",
        "cuda129_mkl_py312_h1234567_302",
        None,
        Flavour("cuda", "12.9", "conda-forge"),
    ),
    (
        "pytorch",
        "2.10.0",
        "cuda130_generic_py313_hb8e8477_203",
        None,
        Flavour("cuda", "13.0", "conda-forge"),
    ),
    ("pytorch", "2.10.0", "cpu_mkl_py312_h0a1b2c3_102", None, Flavour("cpu", None, "conda-forge")),
    (
        "pytorch",
        "2.10.0",
        "cpu_generic_py312_h0a1b2c3_2",
        "osx-arm64",
        Flavour("mps", None, "conda-forge"),
    ),
    (
        "libtorch",
        "2.10.0",
        "cuda129_generic_hb019b6b_203",
        None,
        Flavour("cuda", "12.9", "conda-forge"),
    ),
    (
        "torchvision",
        "0.25.0",
        "cuda129_py312_h89abcde_0",
        None,
        Flavour("cuda", "12.9", "conda-forge"),
    ),
    (
        "torchaudio",
        "2.10.0",
        "cuda129_py312h89abcde_1",
        None,
        Flavour("cuda", "12.9", "conda-forge"),
    ),
    ("pytorch", "2.0.0", "cuda112py39h1234567_0", None, Flavour("cuda", "11.2", "conda-forge")),
    ("torchvision", "0.15.2", "cpu_py310h83e0c9b_0", None, Flavour("cpu", None, "conda-forge")),
    # unrecognisable
    ("pytorch", "2.5.1", "h1234567_0", None, Flavour("unknown", None, "unknown")),
]


@pytest.mark.parametrize(
    ("name", "version", "build", "platform", "expected"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-{c[3] or 'any'}" for c in CASES],
)
def test_torch_flavour_from_build_string(name, version, build, platform, expected):
    assert torch_flavour(name, version, build, platform=platform) == expected


@pytest.mark.parametrize(
    ("depends", "expected"),
    [
        (["pytorch-cuda >=12.4,<12.5", "python"], Flavour("cuda", "12.4", "pytorch")),
        (["pytorch-mutex ==1.0 cpu"], Flavour("cpu", None, "pytorch")),
        (["__cuda", "cuda-version >=12.6,<13"], Flavour("cuda", "12.6", "conda-forge")),
        (["python >=3.12"], Flavour("unknown", None, "unknown")),
    ],
    ids=["pytorch-cuda", "mutex-cpu", "cuda-version", "nothing"],
)
def test_torch_flavour_falls_back_to_depends(depends, expected):
    assert torch_flavour("pytorch", "2.5.1", "custom_0", depends) == expected


def _pkg(name, version, build, platform="linux-64", url=None):
    url = url or f"https://conda.anaconda.org/x/{platform}/{name}-{version}-{build}.conda"
    return LockedPackage(name, version, build, platform, url, "0" * 32, "0" * 64)


def test_lock_flavour_pytorch_channel_cuda():
    packages = [
        _pkg("python", "3.12.7", "h0_0"),
        _pkg("pytorch", "2.5.1", "py3.12_cuda12.4_cudnn9.1.0_0"),
        _pkg("pytorch-cuda", "12.4", "hc786d27_7"),
        _pkg("pytorch-mutex", "1.0", "cuda", "linux-64"),
    ]
    flavour = lock_flavour(packages)
    assert flavour == Flavour("cuda", "12.4", "pytorch", runtime_cuda="12.4")
    assert flavour.required_cuda == "12.4"
    assert flavour.label == "CUDA 12.4"


def test_lock_flavour_conda_forge_runtime_newer_than_build():
    # conda-forge pins cuda-version >=X.Y,<X+1: the toolkit libraries may be newer
    # than the build's CUDA, and the driver must support the newer one.
    packages = [
        _pkg("pytorch", "2.8.0", "cuda126_mkl_py312_h0_300"),
        _pkg("cuda-version", "12.9", "h4f385c5_3"),
    ]
    flavour = lock_flavour(packages)
    assert (flavour.cuda, flavour.runtime_cuda, flavour.required_cuda) == ("12.6", "12.9", "12.9")
    assert flavour.channel_style == "conda-forge"


def test_lock_flavour_cpu_and_osx():
    assert lock_flavour([_pkg("pytorch", "2.5.1", "py3.12_cpu_0")]).compute == "cpu"
    osx = lock_flavour([_pkg("pytorch", "2.5.1", "py3.12_0", "osx-arm64")])
    assert (osx.compute, osx.label) == ("mps", "CPU/MPS")


def test_lock_flavour_without_torch_is_unknown():
    assert lock_flavour([_pkg("python", "3.12.7", "h0_0")]).compute == "unknown"
