"""Machine profiles: detect --json files, nvidia-smi's CSV and XML, and their errors.

The CSV and XML samples follow NVIDIA's documented formats: ``--format=csv`` prints a
header naming each field (with its unit, ``memory.total [MiB]``) and values with units
(``81920 MiB``); ``noheader,nounits`` drops both; ``-q -x`` prints an ``nvidia_smi_log``
document with ``driver_version``, ``cuda_version`` and one ``<gpu>`` per GPU.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from conda_torch_plugin.errors import ProfileError
from conda_torch_plugin.machine.model import Gpu, Machine
from conda_torch_plugin.machine.profiles import read_machines, read_profile, save_profile

if TYPE_CHECKING:
    from pathlib import Path

CSV = """\
name, compute_cap, driver_version, memory.total [MiB], uuid
NVIDIA A100-SXM4-80GB, 8.0, 535.104.05, 81920 MiB, GPU-3b4c5d6e-7f80-91a2-b3c4-d5e6f7a8b9c0
NVIDIA A100-SXM4-80GB, 8.0, 535.104.05, 81920 MiB, GPU-4b4c5d6e-7f80-91a2-b3c4-d5e6f7a8b9c0
"""

PDSH = """\
node01: name, compute_cap, driver_version, memory.total [MiB], uuid
node01: Tesla V100-SXM2-32GB, 7.0, 470.82.01, 32768 MiB, GPU-5b4c5d6e-7f80-91a2-b3c4-d5e6f7a8b9c0
node02: name, compute_cap, driver_version, memory.total [MiB], uuid
node02: NVIDIA H100 80GB HBM3, 9.0, 550.54.15, 81559 MiB, GPU-6b4c5d6e-7f80-91a2-b3c4-d5e6f7a8b9c0
"""

XML = """\
<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">
<nvidia_smi_log>
\t<timestamp>Thu Dec  3 10:12:44 2026</timestamp>
\t<driver_version>550.54.15</driver_version>
\t<cuda_version>12.4</cuda_version>
\t<attached_gpus>1</attached_gpus>
\t<gpu id="00000000:17:00.0">
\t\t<product_name>NVIDIA RTX A6000</product_name>
\t\t<product_brand>NVIDIA RTX</product_brand>
\t\t<product_architecture>Ampere</product_architecture>
\t\t<uuid>GPU-7b4c5d6e-7f80-91a2-b3c4-d5e6f7a8b9c0</uuid>
\t\t<fb_memory_usage>
\t\t\t<total>49140 MiB</total>
\t\t\t<reserved>436 MiB</reserved>
\t\t\t<used>0 MiB</used>
\t\t\t<free>48703 MiB</free>
\t\t</fb_memory_usage>
\t</gpu>
</nvidia_smi_log>
"""


def test_csv_with_header_and_units(tmp_path: Path) -> None:
    (tmp_path / "node07.csv").write_text(CSV)
    [node] = read_profile(tmp_path / "node07.csv")
    assert node.hostname == "node07" and node.platform == "linux-64"
    assert node.driver_version == "535.104.05" and node.cuda_version is None
    assert [g.compute_capability for g in node.gpus] == ["8.0", "8.0"]
    assert node.gpus[0].memory_mib == 81920
    assert node.gpus[1].uuid == "GPU-4b4c5d6e-7f80-91a2-b3c4-d5e6f7a8b9c0"


def test_csv_noheader_nounits_and_a_comma_in_a_name(tmp_path: Path) -> None:
    path = tmp_path / "ws-3.win-64.csv"
    path.write_text("NVIDIA GeForce RTX 5090, Founders, 12.0, 572.16, 32607, GPU-1\r\n")
    [ws] = read_profile(path)
    assert (ws.hostname, ws.platform) == ("ws-3", "win-64")
    assert ws.gpus[0].name == "NVIDIA GeForce RTX 5090, Founders"
    assert ws.gpus[0].compute_capability == "12.0" and ws.gpus[0].memory_mib == 32607


def test_pdsh_output_is_one_machine_per_host(tmp_path: Path) -> None:
    (tmp_path / "cluster.csv").write_text(PDSH)
    machines = read_machines([tmp_path])
    assert [(m.hostname, m.driver_version) for m in machines] == [
        ("node01", "470.82.01"),
        ("node02", "550.54.15"),
    ]
    assert machines[1].gpus[0].compute_capability == "9.0"


def test_xml_log(tmp_path: Path) -> None:
    (tmp_path / "gpu-a6000.xml").write_text(XML)
    [node] = read_profile(tmp_path / "gpu-a6000.xml")
    assert (node.driver_version, node.cuda_version) == ("550.54.15", "12.4")
    assert node.gpus[0].name == "NVIDIA RTX A6000" and node.gpus[0].memory_mib == 49140
    assert node.gpus[0].compute_capability is None  # -q -x does not report it
    assert "no compute capability" in node.notes[0]


def test_json_profile_round_trip(tmp_path: Path) -> None:
    original = Machine(
        "550.54.15",
        "12.4",
        "nvml",
        (Gpu(0, "NVIDIA H100 80GB HBM3", "GPU-1", "9.0", 81559),),
        platform="linux-64",
        glibc="2.35",
        hostname="gpu01",
    )
    path = save_profile(original, tmp_path)
    assert path == tmp_path / "gpu01.json"
    data = json.loads(path.read_text())
    assert data["schema"] == 1 and data["cuda_arch"] == "9.0"
    [read] = read_profile(path)
    assert (read.hostname, read.platform, read.glibc) == ("gpu01", "linux-64", "2.35")
    assert read.gpus == original.gpus and read.cuda_version == "12.4"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", CSV.replace("8.0, 535.104.05, 81920 MiB, GPU-4", "8.0"), "bad.csv, line 3"),
        ("bad.csv", CSV.replace("535.104.05, 81920", "unknown, 81920"), "line 2: driver_version"),
        ("cc.csv", CSV.replace(" 8.0,", " eight,", 1), "line 2: compute_cap 'eight'"),
        ("bad.json", '{\n  "schema": 1,\n  "driver_version": 550\n}', "bad.json, line 3"),
        ("broken.json", '{\n  "schema": 1,\n  "gpus": [\n}', "broken.json, line 4: not valid"),
        ("new.json", '{"schema": 99}', "schema 99 is newer"),
        ("bad.xml", XML.replace("</gpu>", ""), "bad.xml, line 20: not valid XML"),
        ("other.xml", "<html></html>", "not an nvidia-smi XML log"),
        ("empty.csv", "\n", "empty machine profile"),
    ],
)
def test_unreadable_profiles_name_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ProfileError) as caught:
        read_machines([tmp_path / name])
    assert message in caught.value.message
    assert str(tmp_path / name) in caught.value.message


def test_two_profiles_of_one_machine_are_refused(tmp_path: Path) -> None:
    (tmp_path / "node07.csv").write_text(CSV)
    (tmp_path / "node07.json").write_text('{"schema": 1, "hostname": "node07"}')
    with pytest.raises(ProfileError, match="same name: node07"):
        read_machines([tmp_path])


def test_a_folder_without_profiles_and_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="holds no machine profile"):
        read_machines([tmp_path])
    with pytest.raises(ProfileError, match="does not exist"):
        read_machines([tmp_path / "nope"])


def test_cuda_arch_is_the_lowest_capability_and_needs_cuda() -> None:
    gpus = (Gpu(0, "a", None, "9.0", None), Gpu(1, "b", None, "8.6", None))
    assert Machine("550.54.15", "12.4", "nvml", gpus).cuda_arch == "8.6"
    assert Machine(None, None, "none", gpus).cuda_arch is None
    overridden = Machine("550.54.15", "12.4", "nvml", gpus, cuda_arch_override="7.5")
    assert overridden.cuda_arch == "7.5"
