"""Unit tests for plugins/module_utils/gpu.py (nvidia-smi parsing, CUDA archs, PCI scan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.slm.edge.plugins.module_utils import gpu

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia_smi"


def fixture(name):
    return (FIXTURES / name).read_text()


def test_four_t4_like_g4dn_12xlarge():
    gpus = gpu.parse_query_csv(fixture("g4dn.12xlarge-4x-t4.txt"))
    assert [g["index"] for g in gpus] == [0, 1, 2, 3]
    first = gpus[0]
    assert first == {
        "index": 0,
        "name": "Tesla T4",
        "uuid": "GPU-3b2f6a61-7c0e-2d4e-9a4b-0e5d1c8f2a11",
        "memory_total_mib": 15360,
        "memory_used_mib": 0,
        "compute_capability": "7.5",
        "driver_version": "550.127.05",
        "pci_bus_id": "00000000:00:1B.0",
        "model": "T4",
        "memory_bandwidth_gbps": 320,
    }
    assert gpus[3]["memory_used_mib"] == 1
    assert gpu.cuda_architectures(gpus) == "75"
    summary = gpu.summarize(gpus)
    assert summary["present"] is True
    assert summary["count"] == 4
    assert summary["total_memory_mib"] == 4 * 15360
    assert summary["driver_version"] == "550.127.05"


@pytest.mark.parametrize(
    ("name", "arch", "model", "bandwidth", "memory"),
    [
        ("g5.xlarge-a10g.txt", "86", "A10G", 600, 23028),
        ("g6.xlarge-l4.txt", "89", "L4", 300, 23034),
        ("h100-80gb-hbm3.txt", "90", "H100 SXM", 3350, 81559),
    ],
)
def test_single_gpu_fixtures(name, arch, model, bandwidth, memory):
    gpus = gpu.parse_query_csv(fixture(name))
    assert len(gpus) == 1
    assert gpus[0]["model"] == model
    assert gpus[0]["memory_bandwidth_gbps"] == bandwidth
    assert gpus[0]["memory_total_mib"] == memory
    assert gpu.cuda_architectures(gpus) == arch


def test_not_available_fields_become_none():
    (only,) = gpu.parse_query_csv(fixture("na-fields.txt"))
    assert only["uuid"] is None
    assert only["memory_used_mib"] is None
    assert only["model"] == "H100 PCIe"
    assert only["memory_bandwidth_gbps"] == 2000


def test_mixed_gpus_give_sorted_unique_architectures():
    text = fixture("h100-80gb-hbm3.txt").replace("0, NVIDIA", "4, NVIDIA") + fixture("g4dn.12xlarge-4x-t4.txt")
    gpus = gpu.parse_query_csv(text)
    assert [g["index"] for g in gpus] == [0, 1, 2, 3, 4]
    assert gpu.cuda_architectures(gpus) == "75;90"


def test_architectures_sort_numerically():
    gpus = [{"compute_capability": c} for c in ("10.0", "8.6", "9.0", "8.6", "7.5", None, "bogus")]
    assert gpu.cuda_architectures(gpus) == "75;86;90;100"
    assert gpu.cuda_architectures([]) == ""


@pytest.mark.parametrize(("cap", "arch"), [("7.5", "75"), ("8.0", "80"), ("12.0", "120"), ("x", None), (None, None)])
def test_cuda_arch(cap, arch):
    assert gpu.cuda_arch(cap) == arch


def test_empty_output():
    assert gpu.parse_query_csv("") == []
    assert gpu.parse_query_csv(fixture("empty.txt")) == []
    assert gpu.parse_query_csv(None) == []
    assert gpu.summarize([])["present"] is False


def test_garbage_lines_are_skipped_and_reported():
    skipped = []
    assert gpu.parse_query_csv(fixture("garbage.txt"), skipped=skipped) == []
    assert len(skipped) == 2
    assert skipped[0][0].startswith("Segmentation fault")
    assert "expected 8" in skipped[0][1]


def test_warning_line_does_not_hide_the_gpu():
    skipped = []
    gpus = gpu.parse_query_csv(fixture("warning-plus-a10g.txt"), skipped=skipped)
    assert [g["name"] for g in gpus] == ["NVIDIA A10G"]
    assert skipped[0][0].startswith("WARNING: infoROM")


@pytest.mark.parametrize(
    "line",
    [
        "zero, Tesla T4, GPU-x, 15360, 0, 7.5, 550.1, 00000000:00:1E.0",
        "0, Tesla T4, GPU-x, lots, 0, 7.5, 550.1, 00000000:00:1E.0",
        "0, Tesla T4, GPU-x, 15360, 0, seven, 550.1, 00000000:00:1E.0",
        "[N/A], Tesla T4, GPU-x, 15360, 0, 7.5, 550.1, 00000000:00:1E.0",
    ],
)
def test_bad_values_raise(line):
    with pytest.raises(ValueError):
        gpu.parse_query_line(line)


def test_legacy_query_fills_capability_from_the_table():
    (only,) = gpu.parse_query_csv(fixture("old-driver-legacy-query.txt"), gpu.LEGACY_QUERY_FIELDS)
    assert only["compute_capability"] == "7.5"
    assert only["driver_version"] == "470.256.02"


@pytest.mark.parametrize(
    ("name", "model", "bandwidth", "capability"),
    [
        ("Tesla T4", "T4", 320, "7.5"),
        ("NVIDIA T4G", "T4", 320, "7.5"),
        ("NVIDIA A10G", "A10G", 600, "8.6"),
        ("NVIDIA A10", "A10", 600, "8.6"),
        ("NVIDIA L4", "L4", 300, "8.9"),
        ("NVIDIA L40S", "L40S", 864, "8.9"),
        ("NVIDIA L40", "L40", 864, "8.9"),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB", 1555, "8.0"),
        ("NVIDIA A100-PCIE-40GB", "A100 40GB", 1555, "8.0"),
        ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM", 2039, "8.0"),
        ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe", 1935, "8.0"),
        ("NVIDIA H100 PCIe", "H100 PCIe", 2000, "9.0"),
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 3350, "9.0"),
        ("NVIDIA H100 NVL", "H100 NVL", 3900, "9.0"),
        ("NVIDIA H200", "H200", 4800, "9.0"),
        ("NVIDIA H200 NVL", "H200", 4800, "9.0"),
        ("Tesla V100-SXM2-16GB", "V100", 900, "7.0"),
        ("Tesla V100S-PCIE-32GB", "V100S", 1134, "7.0"),
        ("NVIDIA B200", "B200", 8000, "10.0"),
        ("NVIDIA GeForce RTX 4090", None, None, None),
        ("", None, None, None),
        (None, None, None, None),
    ],
)
def test_model_table(name, model, bandwidth, capability):
    assert gpu.lookup_model(name) == (model, bandwidth, capability)
    assert gpu.memory_bandwidth_gbps(name) == bandwidth


# -- sysfs scan ----------------------------------------------------------------


def make_pci(root, address, vendor, device, class_id, driver=None):
    node = root / "devices" / address
    node.mkdir(parents=True)
    (node / "vendor").write_text(vendor + "\n")
    (node / "device").write_text(device + "\n")
    (node / "class").write_text(class_id + "\n")
    if driver:
        target = root / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (node / "driver").symlink_to(target)
    return node


def test_scan_pci_finds_nvidia_display_devices_only(tmp_path):
    make_pci(tmp_path, "0000:00:1e.0", "0x10de", "0x1eb8", "0x030200")  # T4, no driver
    make_pci(tmp_path, "0000:00:1d.0", "0x10de", "0x2237", "0x030000", driver="nouveau")  # A10G as VGA
    make_pci(tmp_path, "0000:00:1c.0", "0x10de", "0x22a3", "0x068000")  # NVSwitch bridge
    make_pci(tmp_path, "0000:00:1b.0", "0x10de", "0x10f0", "0x040300")  # HDMI audio
    make_pci(tmp_path, "0000:00:03.0", "0x1d0f", "0xec20", "0x020000", driver="ena")  # Amazon ENA
    make_pci(tmp_path, "0000:00:06.0", "0x10de", "0x9999", "0x030200", driver="nvidia")  # unknown model
    broken = tmp_path / "devices" / "0000:00:07.0"
    broken.mkdir()  # no attribute files
    devices = gpu.scan_pci_devices(str(tmp_path / "devices"))
    assert [d["address"] for d in devices] == ["0000:00:06.0", "0000:00:1d.0", "0000:00:1e.0"]
    by_address = {d["address"]: d for d in devices}
    assert by_address["0000:00:1e.0"] == {
        "address": "0000:00:1e.0",
        "vendor_id": "0x10de",
        "device_id": "0x1eb8",
        "class_id": "0x030200",
        "driver": None,
        "model": "T4",
        "compute_capability": "7.5",
    }
    assert by_address["0000:00:1d.0"]["driver"] == "nouveau"
    assert by_address["0000:00:1d.0"]["model"] == "A10G"
    assert by_address["0000:00:06.0"]["model"] is None


def test_scan_pci_without_sysfs(tmp_path):
    assert gpu.scan_pci_devices(str(tmp_path / "missing")) == []
