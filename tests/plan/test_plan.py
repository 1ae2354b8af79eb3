"""The plan for machine profiles (driver, CUDA, GPUs, flags), built from PlanRequest and Machine
values directly."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from conda_torch_plugin.cli import build_parser
from conda_torch_plugin.cli._options import plan_inputs_from_args
from conda_torch_plugin.errors import PlanError, UsageError
from conda_torch_plugin.machine.model import Gpu, Machine, with_flags
from conda_torch_plugin.plan import Plan, PlanRequest, make_plan

RTX3090 = ("8.6", "NVIDIA GeForce RTX 3090")
RTX4090 = ("8.9", "NVIDIA GeForce RTX 4090")
RTX5090 = ("12.0", "NVIDIA GeForce RTX 5090")
GTX1080 = ("6.1", "NVIDIA GeForce GTX 1080")
K80 = ("3.7", "Tesla K80")
V100 = ("7.0", "Tesla V100-SXM2-16GB")
H100 = ("9.0", "NVIDIA H100 80GB HBM3")
B200 = ("10.0", "NVIDIA B200")
GH200 = ("9.0", "NVIDIA GH200 480GB")


Case = tuple[PlanRequest, Machine]


def request(
    *gpus: tuple[str, str],
    platforms: tuple[str, ...] = ("linux-64",),
    cuda: str | None = None,
    driver: str | None = None,
    **flags: object,
) -> Case:
    """The request and the machine, as ``make_plan(*request(...))`` takes them."""
    machine = Machine(
        driver,
        cuda,
        "flags",
        tuple(Gpu(i, name, None, cc, None) for i, (cc, name) in enumerate(gpus)),
        platform=platforms[0] if platforms else None,
    )
    return PlanRequest(platforms=platforms, **flags), machine  # type: ignore[arg-type]


NO_AUDIO = "No torchaudio is paired"


@dataclass(frozen=True)
class Expect:
    source: str
    pytorch: str
    cuda: str | None
    python: str
    specs: tuple[str, ...]  # must all be in the primary platform's specs
    warnings: tuple[str, ...] = ()  # each a substring of some warning; () = no warnings at all
    absent: tuple[str, ...] = ()  # spec prefixes that must not be there
    rejected: tuple[str, ...] = ()  # candidates that must be in `rejected`
    reason: str = ""  # a substring of some reason

    @property
    def compute(self) -> str:
        return "cuda" if self.cuda else "cpu"


PROFILES = [
    pytest.param(
        request(RTX3090, cuda="12.4", driver="550.54.15"),
        Expect(
            "pytorch",
            "2.5.1",
            "12.4",
            "3.12",
            (
                "python=3.12",
                "pytorch=2.5.1",
                "torchvision=0.20.1",
                "torchaudio=2.5.1",
                "pytorch-cuda=12.4",
                "mkl<2024.1",
            ),
        ),
        id="rtx3090-cuda12.4",
    ),
    pytest.param(
        request(cuda="12.1", pytorch="2.2"),
        Expect(
            "pytorch",
            "2.2.2",
            "12.1",
            "3.12",
            ("pytorch=2.2.2", "torchvision=0.17.2", "torchaudio=2.2.2", "pytorch-cuda=12.1"),
        ),
        id="pin-2.2-cuda12.1",
    ),
    pytest.param(
        request(),
        Expect(
            "pytorch",
            "2.5.1",
            None,
            "3.12",
            ("pytorch=2.5.1", "cpuonly", "mkl<2024.1"),
            absent=("pytorch-cuda",),
            reason="No NVIDIA driver was found, so this is a CPU-only build",
        ),
        id="no-driver-cpu",
    ),
    pytest.param(
        request(RTX4090, cuda="12.4", cpu=True),
        Expect(
            "pytorch", "2.5.1", None, "3.12", ("cpuonly",), absent=("pytorch-cuda",), reason="--cpu"
        ),
        id="cpu-flag-with-gpu",
    ),
    pytest.param(
        request(RTX5090, cuda="12.8", driver="570.86.10"),
        Expect(
            "conda-forge",
            "2.13.0",
            "12.9",
            "3.14",
            (
                "pytorch=2.13.0=cuda*",
                "cuda-version=12.9",
                "torchvision=0.28.0",
            ),
            # torchaudio 2.11.0 on conda-forge needs pytorch >=2.10,<2.11 (S37).
            warnings=("minor-version compatibility", "No torchaudio is paired"),
            absent=("pytorch-cuda", "mkl", "torchaudio"),
            rejected=(
                "pytorch 2.5.1 cuda 12.4 (pytorch channel)",
                "pytorch 2.13.0 cuda 13.0 (conda-forge)",
            ),
            reason="GPU 0 (NVIDIA GeForce RTX 5090, sm_120) is not covered by any pytorch-channel "
            "build; conda-forge pytorch 2.13.0 with CUDA 12.9 covers it",
        ),
        id="rtx5090-cuda12.8-auto",
    ),
    pytest.param(
        request(RTX5090, cuda="12.9", driver="575.51.03"),
        Expect(
            "conda-forge", "2.13.0", "12.9", "3.14", ("cuda-version=12.9",), warnings=(NO_AUDIO,)
        ),
        id="rtx5090-cuda12.9-auto",
    ),
    pytest.param(
        request(RTX5090, cuda="13.0", driver="580.65.06"),
        Expect(
            "conda-forge",
            "2.13.0",
            "13.0",
            "3.14",
            ("pytorch=2.13.0=cuda*", "cuda-version=13.0"),
            warnings=(NO_AUDIO,),
        ),
        id="rtx5090-cuda13.0-auto",
    ),
    pytest.param(
        request(GTX1080, cuda="13.0", driver="580.65.06"),
        Expect("pytorch", "2.5.1", "12.4", "3.12", ("pytorch-cuda=12.4",)),
        id="gtx1080-cuda13.0-auto",
    ),
    pytest.param(
        # The 12.9 list has a 6.0 cubin, which runs on 6.1; the 13.0 list starts at 7.5.
        request(GTX1080, cuda="13.0", driver="580.65.06", source="conda-forge"),
        Expect(
            "conda-forge",
            "2.13.0",
            "12.9",
            "3.14",
            ("cuda-version=12.9",),
            warnings=(NO_AUDIO,),
            rejected=("pytorch 2.13.0 cuda 13.0 (conda-forge)",),
            reason="runs the sm_60 cubin",
        ),
        id="gtx1080-cuda13.0-conda-forge",
    ),
    pytest.param(
        request(K80, cuda="11.4", driver="470.82.01"),
        Expect(
            "pytorch",
            "2.5.1",
            "11.8",
            "3.12",
            ("pytorch-cuda=11.8",),
            warnings=("11.x minor-version compatibility", "470.82.01 >= 450.80.02"),
            rejected=("pytorch 2.5.1 cuda 12.4 (pytorch channel)",),
            reason="sm_37 cubin",
        ),
        id="k80-cuda11.4-minor-compat",
    ),
    pytest.param(
        request(RTX3090, cuda="11.4"),
        Expect(
            "pytorch",
            "2.5.1",
            "11.8",
            "3.12",
            ("pytorch-cuda=11.8",),
            warnings=("a driver for CUDA 11.4 is >= 470.42.01, the minimum is 450.80.02",),
        ),
        id="cuda11.4-driver-implied",
    ),
    pytest.param(
        # A driver for CUDA 11.0 may be older than the 11.x minor-version minimum.
        request(V100, cuda="11.0"),
        Expect(
            "pytorch",
            "2.5.1",
            "11.8",
            "3.12",
            ("pytorch-cuda=11.8",),
            warnings=("the driver version is unknown", "450.80.02"),
        ),
        id="cuda11.0-driver-unknown",
    ),
    pytest.param(
        request(H100, cuda="11.7", driver="515.43.04"),
        Expect(
            "pytorch",
            "2.5.1",
            "11.8",
            "3.12",
            ("pytorch-cuda=11.8",),
            warnings=("minor-version compatibility",),
            reason="sm_90 cubin",
        ),
        id="h100-cuda11.7",
    ),
    pytest.param(
        request(H100, cuda="11.7", driver="515.43.04", pytorch="2.0"),
        Expect(
            "pytorch",
            "2.0.1",
            "11.8",
            "3.11",
            ("pytorch=2.0.1", "torchvision=0.15.2", "torchaudio=2.0.2", "pytorch-cuda=11.8"),
            warnings=("minor-version compatibility",),
            rejected=("pytorch 2.0.1 cuda 11.7 (pytorch channel)",),
        ),
        id="h100-cuda11.7-pytorch2.0",
    ),
    pytest.param(
        request(RTX4090, cuda="12.1", pytorch="<2.4"),
        Expect(
            "pytorch",
            "2.3.1",
            "12.1",
            "3.12",
            ("pytorch=2.3.1", "torchvision=0.18.1"),
            reason="sm_86 cubin (same major, runs on 8.9)",
        ),
        id="rtx4090-pytorch-lt-2.4",
    ),
    pytest.param(
        request(RTX3090, cuda="12.2", driver="535.54.03"),
        Expect(
            "pytorch",
            "2.5.1",
            "12.1",
            "3.12",
            ("pytorch-cuda=12.1",),
            rejected=("pytorch 2.5.1 cuda 12.4 (pytorch channel)",),
        ),
        id="cuda12.2-prefers-full-12.1",
    ),
    pytest.param(
        request(RTX4090, cuda="12.9", pytorch=">=2.6"),
        Expect(
            "conda-forge",
            "2.13.0",
            "12.9",
            "3.14",
            ("cuda-version=12.9",),
            reason="pytorch channel has no release matching --pytorch >=2.6",
            warnings=(NO_AUDIO,),
        ),
        id="pytorch-ge-2.6-goes-conda-forge",
    ),
    pytest.param(
        request(RTX3090, cuda="12.9", python="3.13"),
        Expect(
            "conda-forge",
            "2.13.0",
            "12.9",
            "3.13",
            ("python=3.13",),
            reason="has Python 3.13 builds",
            warnings=(NO_AUDIO,),
        ),
        id="python3.13-goes-conda-forge",
    ),
    pytest.param(
        request(RTX3090, cuda="12.4", python="3.8"),
        Expect(
            "pytorch",
            "2.4.1",
            "12.4",
            "3.8",
            ("python=3.8", "pytorch=2.4.1"),
            rejected=("pytorch 2.5.1 (pytorch channel)", "pytorch 2.5.0 (pytorch channel)"),
        ),
        id="python3.8-newest-release-with-it",
    ),
    pytest.param(
        request(GH200, platforms=("linux-aarch64",), cuda="13.0", driver="580.65.06"),
        Expect(
            "conda-forge",
            "2.13.0",
            "13.0",
            "3.14",
            ("cuda-version=13.0",),
            reason="pytorch channel has no linux-aarch64 CUDA builds",
            warnings=(NO_AUDIO,),
        ),
        id="gh200-aarch64-cuda13.0",
    ),
    pytest.param(
        request(platforms=("osx-arm64",)),
        Expect(
            "pytorch",
            "2.5.1",
            None,
            "3.12",
            ("pytorch=2.5.1", "torchvision=0.20.1", "torchaudio=2.5.1"),
            absent=("pytorch-cuda", "cpuonly", "mkl"),
        ),
        id="osx-arm64-mps",
    ),
    pytest.param(
        request(V100, cuda="13.0", driver="580.65.06"),
        Expect("pytorch", "2.5.1", "12.4", "3.12", ("pytorch-cuda=12.4",)),
        id="v100-cuda13.0-auto",
    ),
    pytest.param(
        request(V100, cuda="13.0", driver="580.65.06", source="conda-forge"),
        Expect(
            "conda-forge",
            "2.13.0",
            "12.9",
            "3.14",
            ("cuda-version=12.9",),
            rejected=("pytorch 2.13.0 cuda 13.0 (conda-forge)",),
            warnings=(NO_AUDIO,),
        ),
        id="v100-cuda13.0-conda-forge",
    ),
    pytest.param(
        request(RTX3090, cuda=None, driver="550.54.15"),
        Expect(
            "pytorch",
            "2.5.1",
            "12.4",
            "3.12",
            ("pytorch-cuda=12.4",),
            reason="Driver 550.54.15 supports CUDA up to 12.4",
        ),
        id="driver-only-infers-cuda",
    ),
    pytest.param(
        request(B200, cuda="12.8", source="conda-forge", pytorch="2.7.0"),
        Expect(
            "conda-forge",
            "2.7.0",
            "12.6",
            "3.13",
            ("cuda-version=12.6", "torchvision=0.22.0"),
            warnings=("compute_90 PTX",),
        ),
        id="b200-conda-forge-2.7.0-ptx-jit",
    ),
    pytest.param(
        request(cpu=True, source="conda-forge"),
        Expect(
            "conda-forge",
            "2.13.0",
            None,
            "3.14",
            ("pytorch=2.13.0=cpu*", "torchvision=0.28.0"),
            warnings=(NO_AUDIO,),
            absent=("cuda-version", "cpuonly", "torchaudio"),
        ),
        id="conda-forge-cpu",
    ),
    pytest.param(
        # 2.9.0 was never published; 2.9.1 has Python 3.10-3.13 (S36).
        request(RTX3090, cuda="12.9", source="conda-forge", pytorch="2.9"),
        Expect(
            "conda-forge",
            "2.9.1",
            "12.9",
            "3.13",
            ("python=3.13", "torchvision=0.24.1", "torchaudio=2.9.1"),
        ),
        id="conda-forge-2.9-python-3.13",
    ),
    pytest.param(
        request(RTX3090, platforms=("win-64",), cuda="12.4", driver="551.61"),
        Expect("pytorch", "2.5.1", "12.4", "3.12", ("pytorch-cuda=12.4",), absent=("mkl",)),
        id="win64-cuda12.4-no-mkl-guard",
    ),
    pytest.param(
        request(RTX3090, platforms=("win-64",), cuda="12.9", driver="576.02", source="conda-forge"),
        Expect(
            "conda-forge",
            "2.13.0",
            "12.8",
            "3.14",
            ("cuda-version=12.8",),
            warnings=(NO_AUDIO,),
            absent=("torchaudio",),
        ),
        id="win64-conda-forge-12.8",
    ),
    pytest.param(
        # torchvision's win-64 CUDA builds for 2.7.1-2.12 are 12.9 (S37).
        request(
            RTX3090,
            platforms=("win-64",),
            cuda="12.9",
            driver="576.02",
            source="conda-forge",
            pytorch="2.12",
        ),
        Expect(
            "conda-forge",
            "2.12.1",
            "12.8",
            "3.14",
            ("pytorch=2.12.1=cuda*", "cuda-version=12.9", "torchvision=0.27.1"),
            warnings=(NO_AUDIO,),
            absent=("cuda-version=12.8",),
            reason="cuda-version=12.9 with the CUDA 12.8 build",
        ),
        id="win64-conda-forge-2.12-torchvision-needs-12.9",
    ),
    pytest.param(
        request(platforms=("osx-64",), source="conda-forge"),
        Expect("conda-forge", "2.13.0", None, "3.14", ("pytorch=2.13.0",), warnings=(NO_AUDIO,)),
        id="osx-64-conda-forge",
    ),
    pytest.param(
        # The pytorch channel's Intel-macOS builds end with 2.2.2.
        request(platforms=("osx-64",)),
        Expect("pytorch", "2.2.2", None, "3.12", ("pytorch=2.2.2",)),
        id="osx-64-pytorch-channel",
    ),
]


@pytest.mark.parametrize(("req", "expect"), PROFILES)
def test_machine_profile(req: Case, expect: Expect) -> None:
    plan = make_plan(*req)
    assert (plan.source, plan.pytorch, plan.cuda, plan.python, plan.compute) == (
        expect.source,
        expect.pytorch,
        expect.cuda,
        expect.python,
        "mps" if req[0].platforms[0] == "osx-arm64" else expect.compute,
    )
    for spec in expect.specs:
        assert spec in plan.specs
    for prefix in expect.absent:
        assert not [s for s in plan.specs if s.startswith(prefix)], plan.specs
    if expect.warnings:
        for text in expect.warnings:
            assert any(text in w for w in plan.warnings), plan.warnings
    else:
        assert plan.warnings == ()
    candidates = [r.candidate for r in plan.rejected]
    for candidate in expect.rejected:
        assert candidate in candidates
    if expect.reason:
        assert any(expect.reason in r for r in plan.reasons), plan.reasons
    _check_invariants(plan)


def _check_invariants(plan: Plan) -> None:
    """What holds for every plan: channels, specs and virtual packages agree with the source."""
    primary = plan.platforms[0]
    assert plan.specs == primary.specs and plan.cuda == primary.cuda
    assert plan.specs[0] == f"python={plan.python}"
    if plan.source == "pytorch":
        assert plan.channels[:2] == ("pytorch", "nvidia")
    else:
        assert plan.channels == ("conda-forge",)
    for p in plan.platforms:
        cuda_specs = [s for s in p.specs if s.startswith(("pytorch-cuda", "cuda-version"))]
        assert (p.compute == "cuda") is bool(cuda_specs)
        # __cuda is the CUDA the environment pins: the build's, or a newer cuda-version
        # its companions need (win-64 torchvision, S37).
        pins = [s.split("=", 1)[1] for s in p.specs if s.startswith("cuda-version=")]
        assert p.virtual_packages.get("__cuda") == (pins[0] if pins else p.cuda)
        if p.platform.startswith("linux"):
            assert p.virtual_packages["__glibc"] in ("2.17", "2.28")
        assert ("mkl<2024.1" in p.specs) is (plan.source == "pytorch" and p.platform == "linux-64")
    assert all(r.candidate and r.reason for r in plan.rejected)
    assert plan.reasons and plan.sources


def test_the_json_shape_has_every_documented_key() -> None:
    data = make_plan(*request(RTX3090, cuda="12.4")).to_dict()
    for key in (
        "source",
        "channels",
        "pytorch",
        "torchvision",
        "torchaudio",
        "python",
        "compute",
        "cuda",
        "specs",
        "reasons",
        "warnings",
        "rejected",
    ):
        assert key in data
    assert data["channels"] == ["pytorch", "nvidia", "conda-forge"]


def test_base_channel_defaults() -> None:
    plan = make_plan(*request(RTX3090, cuda="12.4", base_channel="defaults"))
    assert plan.channels == ("pytorch", "nvidia", "defaults")


def test_virtual_packages_per_platform() -> None:
    plan = make_plan(*request(RTX3090, cuda="12.4", platforms=("linux-64", "win-64", "osx-arm64")))
    assert {p.platform: p.virtual_packages for p in plan.platforms} == {
        "linux-64": {"__cuda": "12.4", "__glibc": "2.17"},
        "win-64": {"__cuda": "12.4"},
        "osx-arm64": {"__osx": "11.0"},
    }
    osx = plan.platforms[2]
    assert (osx.compute, osx.cuda) == ("mps", None)
    assert osx.specs == ("python=3.12", "pytorch=2.5.1", "torchvision=0.20.1", "torchaudio=2.5.1")
    win = plan.platforms[1]
    assert "mkl<2024.1" not in win.specs and "pytorch-cuda=12.4" in win.specs


def test_conda_forge_secondaries_get_their_closest_variant() -> None:
    plan = make_plan(
        *request(
            RTX3090,
            cuda="13.0",
            source="conda-forge",
            platforms=("linux-64", "win-64", "linux-aarch64", "osx-arm64"),
        )
    )
    cuda = {p.platform: p.cuda for p in plan.platforms}
    assert cuda == {
        "linux-64": "13.0",
        "win-64": "13.0",
        "linux-aarch64": "13.0",
        "osx-arm64": None,
    }
    assert plan.platforms[0].virtual_packages == {"__cuda": "13.0", "__glibc": "2.28"}
    lower = make_plan(
        *request(RTX3090, cuda="12.9", source="conda-forge", platforms=("linux-64", "win-64"))
    )
    assert [p.cuda for p in lower.platforms] == ["12.9", "12.8"]
    assert any("win-64: CUDA 12.8, the closest to 12.9" in r for r in lower.reasons)
    assert "torchaudio=2.11.0" not in lower.platforms[1].specs


def test_cpu_primary_gives_cpu_everywhere() -> None:
    plan = make_plan(*request(platforms=("linux-64", "win-64", "osx-arm64")))
    assert [(p.compute, p.cuda) for p in plan.platforms] == [
        ("cpu", None),
        ("cpu", None),
        ("mps", None),
    ]
    assert "cpuonly" in plan.platforms[1].specs and "cpuonly" not in plan.platforms[2].specs


# -- nothing fits: errors, never a silent CPU build ------------------------------------


ERRORS = [
    pytest.param(
        request(RTX5090, cuda="12.8", driver="570.86.10", source="pytorch"),
        ("NVIDIA GeForce RTX 5090", "compute capability 12.0", "sm_120", "driver 570.86.10"),
        ("--source conda-forge", "--cpu"),
        id="rtx5090-source-pytorch",
    ),
    pytest.param(
        request(RTX5090, cuda="13.0", source="pytorch"),
        ("RTX 5090", "compute capability 12.0", "CUDA 13.0"),
        ("--source conda-forge: conda-forge pytorch 2.13.0 with CUDA 13.0",),
        id="rtx5090-cuda13.0-source-pytorch",
    ),
    pytest.param(
        request(("3.5", "Tesla K40m"), cuda="11.4", driver="470.82.01"),
        ("Tesla K40m", "compute capability 3.5", "pytorch-channel or conda-forge", "470.82.01"),
        ("--cpu",),
        id="k40-no-build-anywhere",
    ),
    pytest.param(
        request(RTX3090, cuda="11.0", driver="450.51.06"),
        ("Driver 450.51.06 with CUDA 11.0 is too old", "compute capability 8.6"),
        ("450.80.02", "install a newer NVIDIA driver", "--cpu"),
        id="driver-too-old",
    ),
    pytest.param(
        request(RTX5090, cuda="11.8", driver="520.61.05", source="conda-forge", pytorch="2.13"),
        (
            "too old for every conda-forge build of pytorch 2.13",
            "RTX 5090",
            "compute capability 12.0",
        ),
        ("install a newer NVIDIA driver, one for CUDA 12.9 or later (>= 575.51.03 on Linux)",),
        id="rtx5090-driver-too-old-for-conda-forge",
    ),
    pytest.param(
        # 12.6 runs through minor-version compatibility: its compute_90 PTX cannot be JIT-compiled.
        request(B200, cuda="12.4", driver="550.54.15", source="conda-forge", pytorch="2.7.0"),
        ("both runs with this driver", "compute capability 10.0"),
        ("install a newer NVIDIA driver, one for CUDA 12.6 or later (>= 560.28.03 on Linux)",),
        id="b200-ptx-needs-a-full-driver",
    ),
    pytest.param(
        request(cuda="12.4", pytorch="2.4.2"),
        ("No PyTorch release matches --pytorch 2.4.2",),
        ("2.5.1", "2.13.0"),
        id="unknown-version",
    ),
    pytest.param(
        request(cuda="12.4", pytorch="2.7", source="pytorch"),
        ("No PyTorch release matches --pytorch 2.7",),
        ("--source conda-forge",),
        id="pytorch-2.7-from-pytorch-channel",
    ),
    pytest.param(
        request(cuda="12.4", pytorch="2.5.1", python="3.13"),
        ("Python 3.13", "3.9, 3.10, 3.11, 3.12"),
        ("--python",),
        id="python-not-supported",
    ),
    pytest.param(
        request(RTX3090, cuda=None),
        ("the driver's CUDA version is unknown",),
        ("--cuda X.Y", "--cpu"),
        id="gpu-without-cuda",
    ),
    pytest.param(
        request(platforms=("linux-aarch64",), cuda="12.4", source="pytorch"),
        ("no linux-aarch64 CUDA builds",),
        ("--source conda-forge",),
        id="aarch64-from-pytorch-channel",
    ),
    pytest.param(
        request(platforms=("linux-64", "osx-64"), cuda="12.4"),
        ("no osx-64 build",),
        ("drop --platform osx-64",),
        id="osx-64-secondary",
    ),
]


@pytest.mark.parametrize(("req", "in_message", "in_hints"), ERRORS)
def test_nothing_fits(req: Case, in_message: tuple[str, ...], in_hints: tuple[str, ...]) -> None:
    with pytest.raises(PlanError) as caught:
        make_plan(*req)
    for text in in_message:
        assert text in caught.value.message
    hints = " | ".join(caught.value.hints)
    for text in in_hints:
        assert text in hints


@pytest.mark.parametrize(
    "req",
    [
        request(cuda="12.4", pytorch="banana"),
        request(cuda="12"),
        request(("8.x", "bad"), cuda="12.4"),
        request(cuda="12.4", source="pypi"),
        request(platforms=()),
        request(platforms=("linux-64", "linux-64")),
    ],
    ids=["bad-spec", "bad-cuda", "bad-gpu-arch", "bad-source", "no-platform", "repeated-platform"],
)
def test_bad_requests_are_usage_errors(req: Case) -> None:
    with pytest.raises(UsageError):
        make_plan(*req)


# -- the machine as an input ------------------------------------------------------------


def test_flags_that_describe_the_machine_skip_detection() -> None:
    args = build_parser().parse_args(
        ["plan", "--cuda", "12.4", "--gpu-arch", "8.6", "--gpu-arch", "8.9"]
        + ["--driver", "550.54.15"]
    )
    req, machine = plan_inputs_from_args(args)
    gpu_archs = tuple(g.compute_capability for g in machine.gpus)
    assert (machine.cuda_version, gpu_archs, machine.driver_version, machine.notes) == (
        "12.4",
        ("8.6", "8.9"),
        "550.54.15",
        (),
    )
    assert machine.source == "flags"
    assert req.platforms and req.platforms[0] in (
        "linux-64",
        "linux-aarch64",
        "win-64",
        "osx-arm64",
        "osx-64",
    )


def test_empty_conda_override_cuda_plans_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "")
    req, machine = plan_inputs_from_args(
        build_parser().parse_args(["plan", "--platform", "linux-64"])
    )
    assert (machine.cuda_version, machine.gpus) == (None, ())
    plan = make_plan(req, machine)
    assert plan.compute == "cpu" and "cpuonly" in plan.specs
    assert any("CONDA_OVERRIDE_CUDA is empty" in r for r in plan.reasons)


def test_make_plan_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine is the only description of the hardware: CONDA_OVERRIDE_CUDA is the
    CLI's business, so a plan for a given machine is the same whatever it says."""
    req = request(RTX3090, cuda="12.4", driver="550.54.15")
    before = make_plan(*req).to_dict()
    monkeypatch.setenv("CONDA_OVERRIDE_CUDA", "")
    assert make_plan(*req).to_dict() == before
    assert before["compute"] == "cuda"


def test_detected_gpus_are_replaced_by_gpu_arch_and_unknown_ones_noted() -> None:
    detected = Machine(
        "550.54.15",
        "12.4",
        "nvml",
        (Gpu(0, "Tesla K80", None, None, None), Gpu(1, RTX3090[1], None, "8.6", None)),
    )
    machine = with_flags(detected, platform="linux-64")
    assert [g.name for g in machine.gpus] == [RTX3090[1]]
    assert machine.notes == ("GPU 0 (Tesla K80): compute capability unknown, not checked",)
    flagged = with_flags(detected, platform="linux-64", gpu_archs=("9.0",), cuda="12.1")
    assert [(g.name, g.compute_capability) for g in flagged.gpus] == [(None, "9.0")]
    assert (flagged.cuda_version, flagged.driver_version) == ("12.1", "550.54.15")


def test_a_plan_for_several_machines_fits_each_of_them() -> None:
    """The oldest driver decides the CUDA build, and every machine's GPUs are covered."""
    (req, newer), (_, older) = request(RTX4090, cuda="12.4"), request(RTX3090, cuda="12.1")
    plan = make_plan(req, [newer, older])
    assert (plan.source, plan.cuda) == ("pytorch", "12.1")
    assert any(RTX4090[1] in r for r in plan.reasons)
    assert any(RTX3090[1] in r for r in plan.reasons)
    assert make_plan(req, [newer]).cuda == "12.4"


def test_plan_errors_carry_why_as_typed_fields() -> None:
    with pytest.raises(PlanError) as caught:
        make_plan(*request(RTX5090, cuda="12.8", driver="570.86.10", source="pytorch"))
    assert (caught.value.failures, caught.value.gpus) == (("gpu",), ("12.0",))
    assert caught.value.to_dict()["details"] == {"failures": ["gpu"], "gpus": ["12.0"]}
    with pytest.raises(PlanError) as caught:
        make_plan(*request(pytorch="9.9"))
    assert caught.value.failures == ("no-release",)


def test_orin_is_not_planned_on_an_aarch64_cuda13_build_without_sm87() -> None:
    """conda-forge/pytorch-cpu-feedstock#527: an Orin (8.7) fails with pytorch=2.12=*cuda13*.

    Jetson GPUs run no cubin of another minor (sm_86 does not run on 8.7); the aarch64
    CUDA 13.0 builds have sm_87 only from 2.13.0 build 2 (S36).
    """
    orin = request(("8.7", "Orin"), platforms=("linux-aarch64",), cuda="13.0", source="conda-forge")
    with pytest.raises(PlanError) as caught:
        make_plan(replace(orin[0], pytorch="2.12"), orin[1])
    assert "sm_87" in str(caught.value)
    assert any("without --pytorch: conda-forge pytorch 2.13.0" in h for h in caught.value.hints)
    plan = make_plan(*orin)
    assert (plan.pytorch, plan.cuda) == ("2.13.0", "13.0")
    assert any("GPU 0 (Orin, sm_87) runs the sm_87 cubin" in r for r in plan.reasons)
