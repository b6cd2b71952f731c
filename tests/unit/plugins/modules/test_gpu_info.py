"""Module-level tests for slm.edge.gpu_info with patched nvidia-smi and sysfs."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible_collections.slm.edge.plugins.modules import gpu_info
from ansible_module_runner import run_module

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia_smi"
QUERY = [
    "/usr/bin/nvidia-smi",
    "--query-gpu=index,name,uuid,memory.total,memory.used,compute_cap,driver_version,pci.bus_id",
    "--format=csv,noheader,nounits",
]


def fixture(name):
    return (FIXTURES / name).read_text()


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """An empty fake /sys/bus/pci/devices; add(...) creates a device."""
    root = tmp_path / "sys"
    (root / "devices").mkdir(parents=True)
    monkeypatch.setattr(gpu_info, "PCI_ROOT", str(root / "devices"))

    def add(address="0000:00:1e.0", device="0x1eb8", class_id="0x030200", driver=None):
        node = root / "devices" / address
        node.mkdir()
        (node / "vendor").write_text("0x10de\n")
        (node / "device").write_text(device + "\n")
        (node / "class").write_text(class_id + "\n")
        if driver:
            target = root / "drivers" / driver
            target.mkdir(parents=True, exist_ok=True)
            (node / "driver").symlink_to(target)

    return add


class FakeSmi:
    """Stands in for get_bin_path + run_command; records the commands run."""

    def __init__(self, responses, path="/usr/bin/nvidia-smi"):
        self.responses = list(responses)
        self.path = path
        self.commands = []

    def get_bin_path(self, name, required=False, opt_dirs=None):
        assert name == "nvidia-smi"
        assert "/usr/local/nvidia/bin" in opt_dirs
        return self.path

    def run_command(self, args, **kwargs):
        self.commands.append(args)
        return self.responses.pop(0)


def run(responses, args=None, path="/usr/bin/nvidia-smi", **kwargs):
    fake = FakeSmi(responses, path)
    with (
        mock.patch.object(basic.AnsibleModule, "get_bin_path", fake.get_bin_path),
        mock.patch.object(basic.AnsibleModule, "run_command", fake.run_command),
    ):
        result = run_module(gpu_info.main, args or {}, **kwargs)
    return result, fake


def test_four_t4(sysfs):
    for address in ("0000:00:1b.0", "0000:00:1c.0", "0000:00:1d.0", "0000:00:1e.0"):
        sysfs(address=address, driver="nvidia")
    result, fake = run([(0, fixture("g4dn.12xlarge-4x-t4.txt"), "")])
    assert fake.commands == [QUERY]
    assert result["changed"] is False
    info = result["gpu_info"]
    assert result["ansible_facts"] == {"gpu_info": info}
    assert info["present"] is True
    assert info["count"] == 4
    assert info["cuda_architectures"] == "75"
    assert info["total_memory_mib"] == 61440
    assert info["driver_version"] == "550.127.05"
    assert info["reason"] is None
    assert info["pci_count"] == 4
    assert info["nvidia_smi_path"] == "/usr/bin/nvidia-smi"
    assert {g["memory_bandwidth_gbps"] for g in info["gpus"]} == {320}
    assert [g["pci_bus_id"] for g in info["gpus"]][-1] == "00000000:00:1E.0"


@pytest.mark.parametrize(
    ("name", "arch", "bandwidth"),
    [("g5.xlarge-a10g.txt", "86", 600), ("g6.xlarge-l4.txt", "89", 300), ("h100-80gb-hbm3.txt", "90", 3350)],
)
def test_single_gpu_hosts(sysfs, name, arch, bandwidth):
    result, _fake = run([(0, fixture(name), "")])
    info = result["gpu_info"]
    assert info["present"] is True
    assert info["count"] == 1
    assert info["cuda_architectures"] == arch
    assert info["gpus"][0]["memory_bandwidth_gbps"] == bandwidth
    assert info["pci_count"] == 0


def test_check_mode_still_reads(sysfs):
    result, fake = run([(0, fixture("h100-80gb-hbm3.txt"), "")], check_mode=True)
    assert len(fake.commands) == 1
    assert result["changed"] is False
    assert result["gpu_info"]["cuda_architectures"] == "90"


def test_no_gpu_no_nvidia_smi(sysfs):
    result, fake = run([], path=None)
    info = result["gpu_info"]
    assert fake.commands == []
    assert info["present"] is False
    assert info["count"] == 0
    assert info["gpus"] == []
    assert info["cuda_architectures"] == ""
    assert info["pci_count"] == 0
    assert info["driver_version"] is None
    assert info["nvidia_smi_path"] is None
    assert info["reason"].startswith("no NVIDIA GPU")
    assert result.get("failed") is not True


def test_gpu_without_driver(sysfs):
    sysfs(address="0000:00:1e.0", device="0x1eb8")
    sysfs(address="0000:00:1f.0", device="0x1eb8", driver="nouveau")
    result, _fake = run([], path=None)
    info = result["gpu_info"]
    assert info["present"] is False
    assert info["pci_count"] == 2
    assert info["reason"].startswith("driver not loaded / nvidia-smi missing")
    assert "nouveau" in info["reason"]
    assert [d["model"] for d in info["pci_devices"]] == ["T4", "T4"]


def test_driver_not_loaded_rc9(sysfs):
    sysfs()
    result, _fake = run([(9, fixture("driver-not-loaded.txt"), "")])
    info = result["gpu_info"]
    assert info["present"] is False
    assert info["pci_count"] == 1
    assert info["reason"].startswith("driver not loaded: nvidia-smi failed (rc=9)")
    assert "couldn't communicate with the NVIDIA driver" in info["reason"]


def test_driver_library_mismatch(sysfs):
    result, _fake = run([(18, "Failed to initialize NVML: Driver/library version mismatch\n", "")])
    assert "reboot" in result["gpu_info"]["reason"]
    assert result["gpu_info"]["present"] is False


def test_no_devices_found(sysfs):
    result, _fake = run([(6, fixture("no-devices.txt"), "")])
    assert result["gpu_info"]["reason"] == "nvidia-smi found no GPU (rc=6): No devices were found"


def test_other_failure_uses_stderr(sysfs):
    result, _fake = run([(255, "", "Unknown Error\n")])
    assert result["gpu_info"]["reason"] == "nvidia-smi failed (rc=255): Unknown Error"


def test_empty_output(sysfs):
    result, _fake = run([(0, fixture("empty.txt"), "")])
    info = result["gpu_info"]
    assert info["present"] is False
    assert info["reason"] == "nvidia-smi listed no GPU"


def test_garbage_output(sysfs):
    result, _fake = run([(0, fixture("garbage.txt"), "")])
    info = result["gpu_info"]
    assert info["present"] is False
    assert info["reason"].startswith("could not parse nvidia-smi output: Segmentation fault")
    assert len(result["warnings_seen"]) == 2


def test_warning_line_is_ignored_with_a_warning(sysfs):
    result, _fake = run([(0, fixture("warning-plus-a10g.txt"), "")])
    assert result["gpu_info"]["present"] is True
    assert result["gpu_info"]["count"] == 1
    assert "infoROM" in result["warnings_seen"][0]


def test_old_driver_retries_without_compute_cap(sysfs):
    result, fake = run(
        [
            (2, fixture("old-driver-compute-cap.txt"), ""),
            (0, fixture("old-driver-legacy-query.txt"), ""),
        ]
    )
    assert len(fake.commands) == 2
    assert "compute_cap" not in fake.commands[1][1]
    info = result["gpu_info"]
    assert info["present"] is True
    assert info["cuda_architectures"] == "75"
    assert info["driver_version"] == "470.256.02"


def test_required_fails_with_reason(sysfs):
    sysfs()
    result, _fake = run([], args={"required": True}, path=None, expect_failure=True)
    assert result["failed"] is True
    assert result["msg"].startswith("an NVIDIA GPU is required but none is usable: driver not loaded")
    assert result["gpu_info"]["pci_count"] == 1


def test_required_passes_when_present(sysfs):
    result, _fake = run([(0, fixture("g6.xlarge-l4.txt"), "")], args={"required": True})
    assert result["gpu_info"]["present"] is True


def test_explicit_nvidia_smi_path(sysfs, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\n")
    smi.chmod(0o755)
    result, fake = run([(0, fixture("g5.xlarge-a10g.txt"), "")], args={"nvidia_smi_path": str(smi)}, path=None)
    assert fake.commands[0][0] == str(smi)
    assert result["gpu_info"]["nvidia_smi_path"] == str(smi)
    assert result["gpu_info"]["present"] is True


def test_explicit_nvidia_smi_path_missing(sysfs, tmp_path):
    missing = str(tmp_path / "nope" / "nvidia-smi")
    result, fake = run([], args={"nvidia_smi_path": missing})
    assert fake.commands == []
    assert result["gpu_info"]["present"] is False
    assert missing in result["gpu_info"]["reason"]
