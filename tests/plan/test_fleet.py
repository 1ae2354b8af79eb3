"""One environment for a fleet: ``plan_fleet`` on machines as values (as profiles describe them)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from conda_torch_plugin.errors import FleetError, UsageError
from conda_torch_plugin.machine.model import Gpu, Machine
from conda_torch_plugin.plan import PlanRequest, make_plan
from conda_torch_plugin.plan.fleet import fleet_platforms, plan_fleet


def machine(
    name: str,
    driver: str | None,
    *gpus: tuple[str, str],
    cuda: str | None = None,
    platform: str = "linux-64",
    glibc: str | None = None,
) -> Machine:
    """A profile: ``gpus`` are (name, compute capability); ``cuda`` None = from the driver."""
    return Machine(
        driver,
        cuda,
        "profile",
        tuple(Gpu(i, n, None, cc, None) for i, (n, cc) in enumerate(gpus)),
        platform=platform,
        glibc=glibc,
        hostname=name,
    )


V100 = ("Tesla V100-SXM2-32GB", "7.0")
RTX5090 = ("NVIDIA GeForce RTX 5090", "12.0")
K80 = ("Tesla K80", "3.7")
A100 = ("NVIDIA A100-SXM4-80GB", "8.0")
RTX3090 = ("NVIDIA GeForce RTX 3090", "8.6")


def fleet_of(*machines: Machine, **request: object):
    platforms = request.pop("platforms", None) or fleet_platforms(machines)
    return plan_fleet(PlanRequest(platforms=platforms, **request), machines)  # type: ignore[arg-type]


def verdicts(fleet) -> dict[str, str]:
    return {v.machine: v.status for v in fleet.verdicts}


def test_volta_and_blackwell_share_conda_forge() -> None:
    fleet = fleet_of(
        machine("v100-node", "550.54.15", V100, cuda="12.4"),
        machine("ws-3", "570.86.10", RTX5090, cuda="12.8"),
    )
    assert fleet.plan.source == "conda-forge"
    assert "ws-3: NVIDIA GeForce RTX 5090 (sm_120) needs conda-forge." in fleet.plan.reasons
    assert all(v.ok for v in fleet.verdicts)
    # On its own the Volta node would get the pytorch channel's build.
    own = {v.machine: v.own_plan for v in fleet.verdicts}
    assert own["v100-node"] is not None and own["v100-node"].source == "pytorch"
    assert own["ws-3"] is not None and own["ws-3"].source == "conda-forge"


def test_kepler_next_to_blackwell_is_two_groups() -> None:
    with pytest.raises(FleetError) as caught:
        fleet_of(
            machine("node-k80", "470.82.01", K80),
            machine("ws-3", "570.86.10", RTX5090, cuda="12.8"),
        )
    error = caught.value
    assert "No single environment serves all 2 machines" in error.message
    groups = [g["machines"] for g in error.groups]
    assert sorted(groups) == [["node-k80"], ["ws-3"]]
    by_machine = {g["machines"][0]: g for g in error.groups}
    assert by_machine["node-k80"]["source"] == "pytorch"
    assert by_machine["ws-3"]["source"] == "conda-forge"
    # The machine outside the first group is named with what it needs.
    excluded = error.machines[0]
    assert excluded["status"] == "cannot" and excluded["needs"]
    assert any(hint.startswith(f"{excluded['machine']}: ") for hint in error.hints)


def test_login_node_does_not_hold_back_gpu_nodes() -> None:
    fleet = fleet_of(
        machine("login1", None),
        machine("gpu01", "550.54.15", A100, cuda="12.4"),
        machine("gpu02", "550.54.15", A100, A100, cuda="12.4"),
    )
    assert (fleet.plan.compute, fleet.plan.cuda) == ("cuda", "12.4")
    assert verdicts(fleet) == {"login1": "runs-on-cpu", "gpu01": "runs", "gpu02": "runs"}
    login = next(v for v in fleet.verdicts if v.machine == "login1")
    assert "runs on the CPU" in login.summary
    assert any("login1" in r and "do" in r for r in fleet.plan.reasons)


def test_only_machines_without_gpus_get_a_cpu_build() -> None:
    fleet = fleet_of(machine("ci-1", None), machine("ci-2", None))
    assert fleet.plan.compute == "cpu"
    assert set(verdicts(fleet).values()) == {"cpu-build"}


def test_linux_windows_and_macos_members() -> None:
    fleet = fleet_of(
        machine("gpu01", "550.54.15", A100, cuda="12.4"),
        machine("gpu02", "550.54.15", A100, cuda="12.4"),
        machine("ws-win", "551.61", RTX3090, cuda="12.4", platform="win-64"),
        machine("mac", None, platform="osx-arm64"),
    )
    platforms = {p.platform: p for p in fleet.plan.platforms}
    assert list(platforms) == ["linux-64", "win-64", "osx-arm64"]  # most common first
    assert platforms["linux-64"].cuda == "12.4" and platforms["win-64"].cuda == "12.4"
    assert platforms["osx-arm64"].compute == "mps"
    assert verdicts(fleet) == {
        "gpu01": "runs",
        "gpu02": "runs",
        "ws-win": "runs",
        "mac": "cpu-build",
    }
    assert not any("mac" in reason for reason in fleet.plan.reasons)  # MPS there, not CUDA


def test_each_platform_gets_the_variant_its_own_machines_allow() -> None:
    fleet = fleet_of(
        machine("gpu01", "535.104.05", A100, cuda="12.2"),
        machine("gpu02", "535.104.05", A100, cuda="12.2"),
        machine("ws-win", "551.61", RTX3090, cuda="12.4", platform="win-64"),
        source="pytorch",
    )
    cuda = {p.platform: p.cuda for p in fleet.plan.platforms}
    assert cuda == {"linux-64": "12.1", "win-64": "12.4"}
    assert fleet.plan.platforms[1].virtual_packages["__cuda"] == "12.4"
    assert verdicts(fleet) == {"gpu01": "runs", "gpu02": "runs", "ws-win": "runs"}


def test_lowest_driver_binds_and_is_named() -> None:
    fleet = fleet_of(
        machine("node07", "470.82.01", A100),  # nvidia-smi CSV: no CUDA version, only the driver
        machine("gpu02", "550.54.15", RTX3090, cuda="12.4"),
    )
    assert fleet.plan.cuda == "11.8"
    assert fleet.plan.reasons[0] == (
        "node07: driver 470.82.01 (CUDA 11.4) limits the build to CUDA 11.8 "
        "(through minor-version compatibility)."
    )
    assert verdicts(fleet) == {"node07": "runs-minor-compat", "gpu02": "runs"}


def test_a_driver_reaching_the_build_only_through_minor_version_compatibility() -> None:
    # A CUDA 12.0 driver (above the 12.x minor-compatibility floor, 525.60.13) next to an
    # RTX 5090, which only CUDA 12.8+ builds cover: the fleet's build is newer than the
    # old driver's CUDA, and runs there through minor-version compatibility (no PTX JIT).
    fleet = fleet_of(
        machine("old-ws", "525.85.12", RTX3090, cuda="12.0"),
        machine("ws-3", "570.86.10", RTX5090, cuda="12.8"),
    )
    assert fleet.plan.cuda is not None and fleet.plan.cuda.startswith("12.")
    assert fleet.plan.cuda != "12.0"
    old = next(v for v in fleet.verdicts if v.machine == "old-ws")
    assert old.status == "runs-minor-compat"
    assert any(f.code == "minor-version-compatibility" for f in old.findings)
    assert fleet.plan.reasons[0].startswith("old-ws: driver 525.85.12 (CUDA 12.0) limits")


def test_a_driver_too_old_for_every_build_is_excluded_with_what_it_needs() -> None:
    with pytest.raises(FleetError) as caught:
        fleet_of(
            machine("ancient", "384.81", V100, cuda="9.0"),
            machine("gpu01", "550.54.15", A100, cuda="12.4"),
            machine("gpu02", "550.54.15", A100, cuda="12.4"),
        )
    error = caught.value
    assert error.groups[0]["machines"] == ["gpu01", "gpu02"]
    assert [m["machine"] for m in error.machines] == ["ancient"]
    text = " ".join(error.hints)
    assert "ancient: " in text and "driver" in text


def test_cpu_asked_for_a_gpu_fleet() -> None:
    fleet = fleet_of(machine("gpu01", "550.54.15", A100, cuda="12.4"), cpu=True)
    assert fleet.plan.compute == "cpu"
    only = fleet.verdicts[0]
    assert only.status == "cpu-build" and "1 NVIDIA GPU unused" in only.summary


def test_lowest_glibc_sets_the_virtual_package() -> None:
    fleet = fleet_of(
        machine("rocky8", "550.54.15", A100, cuda="12.4", glibc="2.28"),
        machine("ubuntu22", "550.54.15", A100, cuda="12.4", glibc="2.35"),
    )
    assert fleet.plan.platforms[0].virtual_packages["__glibc"] == "2.28"


def test_a_glibc_older_than_the_build_needs_fails_the_fleet() -> None:
    with pytest.raises(FleetError) as caught:
        fleet_of(
            machine("centos6", "550.54.15", A100, cuda="12.4", glibc="2.12"),
            machine("ubuntu22", "550.54.15", A100, cuda="12.4", glibc="2.35"),
        )
    assert "centos6: glibc 2.12 is older than" in " ".join(caught.value.hints)


def test_a_mac_older_than_the_releases_macos_floor_fails_the_fleet() -> None:
    """conda-forge's 2.11+ builds need macOS 12.0 (the shipped recipes): an 11.7 Mac
    cannot run the fleet's environment, a 12.0 Mac beside it can."""
    old_mac = replace(machine("mbp-2020", None, platform="osx-arm64"), osx="11.7")
    new_mac = replace(machine("mbp-2022", None, platform="osx-arm64"), osx="12.0")
    with pytest.raises(FleetError) as caught:
        fleet_of(old_mac, new_mac, source="conda-forge", pytorch="2.13.0")
    assert "mbp-2020: macOS 11.7 is older than the 12.0 this build needs" in " ".join(
        caught.value.hints
    )
    fleet = fleet_of(old_mac, new_mac, source="conda-forge", pytorch="2.10.0")
    assert fleet.plan.platforms[0].virtual_packages == {"__osx": "11.0"}
    assert verdicts(fleet) == {"mbp-2020": "cpu-build", "mbp-2022": "cpu-build"}


def test_platforms_given_must_include_every_machine() -> None:
    with pytest.raises(UsageError, match="ws-win is win-64, which the plan does not target"):
        fleet_of(
            machine("gpu01", "550.54.15", A100, cuda="12.4"),
            machine("ws-win", "551.61", RTX3090, cuda="12.4", platform="win-64"),
            platforms=("linux-64",),
        )


def test_a_fleet_plan_is_the_one_machine_plan_for_one_machine() -> None:
    one = machine("gpu01", "550.54.15", RTX3090, cuda="12.4")
    fleet = fleet_of(one)
    alone = make_plan(PlanRequest(platforms=("linux-64",)), one)
    assert (fleet.plan.pytorch, fleet.plan.cuda, fleet.plan.specs) == (
        alone.pytorch,
        alone.cuda,
        alone.specs,
    )


def test_a_thousand_machines_of_a_few_kinds_plan_quickly() -> None:
    kinds = [
        ("550.54.15", A100, "12.4"),
        ("535.104.05", RTX3090, "12.2"),
        ("570.86.10", V100, "12.8"),
    ]
    machines = [
        machine(f"node{i:04d}", kinds[i % 3][0], kinds[i % 3][1], cuda=kinds[i % 3][2])
        for i in range(1000)
    ]
    start = time.perf_counter()
    fleet = fleet_of(*machines)
    assert time.perf_counter() - start < 10
    assert len(fleet.verdicts) == 1000 and all(v.ok for v in fleet.verdicts)
    assert fleet.verdicts[999].machine == "node0999"
    # The binding kind is named by its first machine, with how many more are like it.
    assert fleet.plan.reasons[0].startswith("node0001 (and 332 more like it): driver 535.104.05")
