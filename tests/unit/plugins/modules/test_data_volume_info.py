"""Module-level tests for slm.edge.data_volume_info: parameters, runner, result keys, check mode."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible_collections.slm.edge.plugins.module_utils import data_volume
from ansible_collections.slm.edge.plugins.modules import data_volume_info
from ansible_module_runner import run_module

G = 1024**3
MOUNTINFO = "22 1 259:1 / / rw,relatime shared:1 - xfs /dev/nvme0n1p1 rw\n"
LSBLK = {
    "blockdevices": [
        {"name": "/dev/nvme0n1", "maj:min": "259:0", "type": "disk", "size": 30 * G, "ro": False, "pttype": "gpt",
         "children": [{"name": "/dev/nvme0n1p1", "maj:min": "259:1", "type": "part", "size": 30 * G, "ro": False,
                       "mountpoint": "/"}]},
        {"name": "/dev/nvme1n1", "maj:min": "259:2", "type": "disk", "size": 300 * G, "ro": False},
    ]
}  # fmt: skip
MODULE = data_volume_info.AnsibleModule
NODES = {"/dev/nvme0n1": "259:0", "/dev/nvme0n1p1": "259:1", "/dev/nvme1n1": "259:2"}


class Host:
    """Answers of AnsibleModule.run_command and get_bin_path, and the files the probe reads."""

    def __init__(self, missing=()):
        self.missing = set(missing)
        self.commands = []
        self.environ = []

    def get_bin_path(self, name, opt_dirs=None, required=False):
        assert opt_dirs == ["/usr/sbin", "/sbin"]
        assert not required
        return None if name in self.missing else "/usr/sbin/" + name

    def run_command(self, argv, environ_update=None, **_kwargs):
        self.commands.append(argv)
        self.environ.append(environ_update)
        tool = argv[0].rsplit("/", 1)[-1]
        if tool == "lsblk":
            return 0, json.dumps(LSBLK), ""
        if tool == "blkid":
            return (0, "PTUUID=abc\nPTTYPE=gpt\n", "") if argv[-1] == "/dev/nvme0n1" else (2, "", "")
        if tool == "wipefs":
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def host():
    fake = Host()
    files = {"/proc/self/mountinfo": MOUNTINFO, "/proc/swaps": "Filename Type Size Used Priority\n"}
    with (
        mock.patch.object(
            data_volume_info.AnsibleModule, "get_bin_path", lambda _self, *a, **k: fake.get_bin_path(*a, **k)
        ),
        mock.patch.object(
            data_volume_info.AnsibleModule, "run_command", lambda _self, *a, **k: fake.run_command(*a, **k)
        ),
        mock.patch.object(data_volume.Probe, "read_text", staticmethod(files.get)),
        mock.patch.object(data_volume.Probe, "block_majmin", staticmethod(NODES.get)),
        mock.patch.object(data_volume.Probe, "realpath", staticmethod(lambda path: path)),
        mock.patch.object(data_volume.Probe, "dir_entries", staticmethod(lambda _path: 0)),
    ):
        yield fake


@pytest.mark.parametrize("check_mode", [False, True])
def test_automatic_selection_in_and_out_of_check_mode(host, check_mode):
    result = run_module(data_volume_info.main, {"mount_path": "/opt/slm/"}, check_mode=check_mode)
    assert result["changed"] is False
    assert (result["selection"], result["device"], result["error"]) == ("automatic", "/dev/nvme1n1", "")
    assert result["candidates"] == ["/dev/nvme1n1"]
    assert result["device_info"]["empty"] is True
    assert result["mount_path_state"]["mounted"] is False
    assert {argv[0] for argv in host.commands} == {"/usr/sbin/lsblk", "/usr/sbin/blkid", "/usr/sbin/wipefs"}
    assert all(env == {"LC_ALL": "C", "LANG": "C"} for env in host.environ)


def test_no_single_device_is_an_error_result_not_a_failure(host):
    result = run_module(data_volume_info.main, {"mount_path": "/opt/slm", "min_size": "1T"})
    assert result["device"] == ""
    assert "found no candidate disk" in result["error"]
    assert "storage_volume_id" in result["error"]


def test_a_missing_tool_is_reported_as_the_error(host):
    host.missing.add("lsblk")
    result = run_module(data_volume_info.main, {"mount_path": "/opt/slm"})
    assert result["error"].startswith("The data volume could not be probed: lsblk is not installed")
    assert host.commands == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"volume_id": "vol-xyz"}, "volume_id='vol-xyz' is not an EBS volume id"),
        ({"min_size": "big"}, "min_size='big' is not a size such as 10G"),
    ],
)
def test_malformed_parameters_fail_before_any_command(host, args, message):
    result = run_module(data_volume_info.main, {"mount_path": "/opt/slm", **args}, expect_failure=True)
    assert result["msg"].startswith(message)
    assert host.commands == []
