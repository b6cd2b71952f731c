"""Unit tests for plugins/module_utils/data_volume.py: device selection and safety facts.

The probe is run against fake hosts (lsblk tree, /dev nodes, by-id links, /proc and /etc files,
blkid / wipefs / findfs answers), so EC2 layouts that the nspawn machines cannot reproduce
(NVMe names, the root disk's partitions, an instance-store disk, LVM, RAID) are covered too.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath

import pytest
from ansible_collections.slm.edge.plugins.module_utils import data_volume as probe_mod

G = 1024**3
EBS = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"
DATA_VOL = "vol-0123456789abcdef0"
MOUNTINFO_ROOT = "22 1 259:1 / / rw,relatime shared:1 - xfs /dev/nvme0n1p1 rw\n"


def node(name, maj_min, size, *, kind="disk", children=(), fstype=None, pttype=None, mountpoint=None):
    return {
        "name": f"/dev/{name}",
        "maj:min": maj_min,
        "type": kind,
        "size": size,
        "ro": False,
        "fstype": fstype,
        "pttype": pttype,
        "mountpoint": mountpoint,
        "children": list(children) or None,
    }


class FakeHost:
    """What a host looks like to the probe; each test builds one."""

    def __init__(self, tree, *, mountinfo=MOUNTINFO_ROOT, links=None, files=None, blkid=None, wipefs=None, dirs=None):
        self.tree = tree
        self.nodes = {}
        for item in self._walk(tree):
            self.nodes[item["name"]] = item["maj:min"]
        self.links = links or {}
        self.files = {"/proc/self/mountinfo": mountinfo, "/proc/swaps": "Filename Type Size Used Priority\n"}
        self.files.update(files or {})
        self.blkid = blkid or {}
        self.wipefs = wipefs or {}
        self.dirs = dirs or {}
        self.commands = []

    def _walk(self, items):
        for item in items:
            yield item
            yield from self._walk(item.get("children") or [])

    def without_node(self, path):
        self.nodes.pop(path)
        return self


def fake_probe(host):
    class FakeProbe(probe_mod.Probe):
        def read_text(self, path):
            return host.files.get(path)

        def block_majmin(self, path):
            return host.nodes.get(self.realpath(path))

        def realpath(self, path):
            seen = 0
            while path in host.links and seen < 10:
                path = posixpath.normpath(posixpath.join(posixpath.dirname(path), host.links[path]))
                seen += 1
            return path

        def glob(self, pattern):
            return sorted(p for p in [*host.links, *host.files] if fnmatch.fnmatch(p, pattern))

        def dir_entries(self, path):
            return host.dirs.get(path)

        def tool(self, name):
            return name

        def _lsblk(self):
            return json.loads(json.dumps(host.tree))

        def run(self, argv):
            host.commands.append(argv)
            if argv[0] == "blkid":
                return host.blkid.get(argv[-1], (2, "", ""))
            if argv[0] == "wipefs":
                return 0, host.wipefs.get(argv[-1], ""), ""
            if argv[0] == "findfs":
                for dev, answer in host.blkid.items():
                    if answer[0] == 0 and f"UUID={argv[1].split('=', 1)[1]}" in answer[1]:
                        return 0, dev + "\n", ""
                return 1, "", f"unable to resolve '{argv[1]}'"
            raise AssertionError(f"unexpected command {argv}")

    return FakeProbe


OPTIONS = {"--mount-path": "mount_path", "--volume-id": "volume_id", "--device": "device", "--min-size": "min_size"}


def select(host, *args):
    """The selection on ``host``; ``args`` are option/value pairs as the role passes them."""
    params = {OPTIONS[args[i]]: args[i + 1] for i in range(0, len(args), 2)}
    return probe_mod.select(fake_probe(host)(runner=None), **params)


def fs(kind, uuid):
    return 0, f"DEVNAME=x\nUUID={uuid}\nTYPE={kind}\nUSAGE=filesystem\n", ""


def g4dn(data="nvme1n1", store="nvme2n1"):
    """A g4dn: root disk with partitions, the EBS data volume and the local instance-store disk."""
    root = node(
        "nvme0n1",
        "259:0",
        30 * G,
        pttype="gpt",
        children=[
            node("nvme0n1p1", "259:1", 30 * G - 2**20, kind="part", mountpoint="/"),
            node("nvme0n1p2", "259:4", 2**20, kind="part"),
        ],
    )
    majmin = {"nvme1n1": "259:2", "nvme2n1": "259:3"}
    sizes = {data: 300 * G, store: 838 * G}
    tree = [
        root,
        node("nvme1n1", majmin["nvme1n1"], sizes["nvme1n1"]),
        node("nvme2n1", majmin["nvme2n1"], sizes["nvme2n1"]),
    ]
    links = {EBS + DATA_VOL.replace("-", ""): f"../../{data}"}
    return FakeHost(tree, links=links, blkid={"/dev/nvme0n1": (0, "PTUUID=abc\nPTTYPE=gpt\n", "")})


# ------------------------------------------------------------------ selection
def test_volume_id_finds_the_volume_whatever_its_nvme_name():
    for data, store in (("nvme1n1", "nvme2n1"), ("nvme2n1", "nvme1n1")):
        result = select(g4dn(data, store), "--mount-path", "/opt/slm", "--volume-id", DATA_VOL)
        assert result["error"] == ""
        assert result["selection"] == "volume_id"
        assert result["device"] == f"/dev/{data}"
        assert result["device_info"]["empty"] is True
        assert result["device_info"]["size"] == 300 * G


def test_volume_id_falls_back_to_the_nvme_serial_in_sysfs():
    host = g4dn()
    host.links = {}
    host.files["/sys/block/nvme1n1/device/serial"] = "vol0123456789abcdef0        \n"
    host.files["/sys/block/nvme2n1/device/serial"] = "AWS1234567890ABCDEF\n"
    result = select(host, "--mount-path", "/opt/slm", "--volume-id", DATA_VOL)
    assert result["error"] == ""
    assert result["device"] == "/dev/nvme1n1"


def test_volume_id_not_attached_is_an_error():
    result = select(g4dn(), "--mount-path", "/opt/slm", "--volume-id", "vol-0fffffffffffffff0")
    assert result["device"] == ""
    assert "storage_volume_id=vol-0fffffffffffffff0 is not attached" in result["error"]
    assert "storage_device" in result["error"]


def test_automatic_refuses_two_candidates_and_lists_every_disk():
    result = select(g4dn(), "--mount-path", "/opt/slm")
    assert result["device"] == ""
    assert result["candidates"] == ["/dev/nvme1n1", "/dev/nvme2n1"]
    message = result["error"]
    assert "2 candidate disks" in message
    assert "/dev/nvme1n1 (size 300.0G, fstype -, mountpoint -)" in message
    assert "/dev/nvme2n1 (size 838.0G, fstype -, mountpoint -)" in message
    assert "/dev/nvme0n1 (size 30.0G, fstype gpt, mountpoint /): holds the root file system" in message
    assert "Set storage_volume_id" in message and "storage_device" in message


def test_automatic_with_no_candidate_says_so():
    host = FakeHost([g4dn().tree[0]])
    result = select(host, "--mount-path", "/opt/slm")
    assert "found no candidate disk" in result["error"]


def test_automatic_picks_the_single_candidate():
    host = g4dn()
    host.tree.pop()  # no instance store (a g5 without local disk)
    result = select(host, "--mount-path", "/opt/slm")
    assert result["error"] == ""
    assert (result["selection"], result["device"]) == ("automatic", "/dev/nvme1n1")


def test_host_devices_without_a_dev_node_are_ignored():
    """Inside a container lsblk also lists the host's disks."""
    host = g4dn().without_node("/dev/nvme2n1")
    result = select(host, "--mount-path", "/opt/slm")
    assert [d["path"] for d in result["disks"]] == ["/dev/nvme0n1", "/dev/nvme1n1"]
    assert result["device"] == "/dev/nvme1n1"


def test_a_node_with_another_device_number_is_not_that_device():
    host = g4dn()
    host.nodes["/dev/nvme2n1"] = "7:0"
    result = select(host, "--mount-path", "/opt/slm")
    assert result["candidates"] == ["/dev/nvme1n1"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((0, "UUID=a\nTYPE=LVM2_member\nUSAGE=raid\n", ""), "holds LVM2_member (raid)"),
        ((0, "UUID=a\nTYPE=linux_raid_member\nUSAGE=raid\n", ""), "holds linux_raid_member (raid)"),
        ((0, "UUID=a\nTYPE=swap\nUSAGE=other\n", ""), "holds swap (other)"),
        ((0, "PTUUID=a\nPTTYPE=dos\n", ""), "holds dos (partition table)"),
        ((0, "UUID=a\nTYPE=crypto_LUKS\nUSAGE=crypto\n", ""), "holds crypto_LUKS (crypto)"),
        ((8, "", "ambivalent result"), "could not be probed"),
        ((4, "", "usage"), "could not be probed"),
    ],
)
def test_signatures_that_are_not_a_file_system_exclude_a_disk(answer, reason):
    host = g4dn()
    host.blkid["/dev/nvme2n1"] = answer
    result = select(host, "--mount-path", "/opt/slm")
    store = next(d for d in result["disks"] if d["path"] == "/dev/nvme2n1")
    assert store["candidate"] is False
    assert reason in store["reason"]
    assert store["empty"] is False
    assert result["device"] == "/dev/nvme1n1"


def test_wipefs_alone_finding_a_signature_makes_a_disk_not_empty():
    host = g4dn()
    host.wipefs["/dev/nvme1n1"] = "0x0,,,xfs\n"
    result = select(host, "--mount-path", "/opt/slm", "--device", "/dev/nvme1n1")
    info = result["device_info"]
    assert info["empty"] is False
    assert [s["type"] for s in info["signatures"]] == ["xfs"]
    assert info["signatures"][0]["found_by"] == ["wipefs"]


def test_udev_fstype_alone_makes_a_disk_not_empty():
    host = g4dn()
    host.tree[1]["fstype"] = "ext4"
    result = select(host, "--mount-path", "/opt/slm", "--volume-id", DATA_VOL)
    assert result["device_info"]["empty"] is False


def test_mounted_swap_and_partitioned_disks_are_excluded():
    host = g4dn()
    host.files["/proc/swaps"] += "/dev/nvme2n1 partition 100 0 -2\n"
    host.tree[1]["children"] = [node("nvme1n1p1", "259:5", 300 * G - 2**20, kind="part")]
    host.nodes["/dev/nvme1n1p1"] = "259:5"
    result = select(host, "--mount-path", "/opt/slm")
    reasons = {d["path"]: d["reason"] for d in result["disks"]}
    assert reasons["/dev/nvme2n1"] == "active swap"
    assert reasons["/dev/nvme1n1"] == "has partitions or holders: /dev/nvme1n1p1"


def test_small_disks_and_other_types_are_excluded():
    host = g4dn()
    host.tree.append(node("loop0", "7:0", 2 * G, kind="loop"))
    host.nodes["/dev/loop0"] = "7:0"
    result = select(host, "--mount-path", "/opt/slm", "--min-size", "400G")
    reasons = {d["path"]: d["reason"] for d in result["disks"]}
    assert reasons["/dev/nvme1n1"] == "smaller than storage_min_size (400.0G)"
    assert reasons["/dev/loop0"] == "type loop is not in storage_auto_device_types"
    assert result["device"] == "/dev/nvme2n1"


# ------------------------------------------------------------------ reruns, reboots, fstab
def test_the_volume_mounted_at_the_mount_path_is_chosen_again():
    host = g4dn()
    host.files["/proc/self/mountinfo"] += "40 22 259:2 / /opt/slm rw,noatime - xfs /dev/nvme1n1 rw\n"
    host.blkid["/dev/nvme1n1"] = fs("xfs", "u-1")
    result = select(host, "--mount-path", "/opt/slm/")
    assert (result["selection"], result["device"]) == ("mounted", "/dev/nvme1n1")
    info = result["device_info"]
    assert (info["fs_type"], info["fs_uuid"], info["mountpoints"]) == ("xfs", "u-1", ["/opt/slm"])
    assert result["mount_path_state"]["mounted"] is True


def test_after_a_reboot_the_fstab_uuid_is_followed():
    host = g4dn()
    host.blkid["/dev/nvme2n1"] = fs("xfs", "u-2")
    host.files["/etc/fstab"] = "UUID=u-2 /opt/slm xfs defaults,noatime,nofail 0 0\n"
    result = select(host, "--mount-path", "/opt/slm")
    assert (result["selection"], result["device"]) == ("fstab", "/dev/nvme2n1")
    assert result["mount_path_state"]["fstab"]["device"] == "/dev/nvme2n1"


def test_an_fstab_volume_that_is_missing_is_not_replaced():
    host = g4dn()
    host.files["/etc/fstab"] = "UUID=gone /opt/slm xfs defaults,nofail 0 0\n"
    result = select(host, "--mount-path", "/opt/slm")
    assert result["device"] == ""
    assert "from UUID=gone, which is not attached" in result["error"]


def test_an_fstab_device_name_that_now_points_at_an_empty_disk_is_refused():
    """The runbook's /dev/nvme1n1 in fstab, after a reboot that swapped the NVMe names."""
    host = g4dn()
    host.files["/etc/fstab"] = "/dev/nvme1n1 /opt/slm xfs defaults 0 0\n"
    result = select(host, "--mount-path", "/opt/slm")
    assert result["device"] == ""
    assert "holds no file system" in result["error"]
    assert "not stable across reboots" in result["error"]


def test_mount_path_busy_with_another_device_is_an_error():
    host = g4dn()
    host.files["/proc/self/mountinfo"] += "40 22 259:3 / /opt/slm rw - xfs /dev/nvme2n1 rw\n"
    result = select(host, "--mount-path", "/opt/slm", "--volume-id", DATA_VOL)
    assert result["device"] == ""
    assert "/opt/slm is already a mount point of /dev/nvme2n1, not of /dev/nvme1n1" in result["error"]


def test_entries_in_an_unmounted_mount_path_are_counted():
    host = g4dn()
    host.dirs["/opt/slm"] = 3
    result = select(host, "--mount-path", "/opt/slm", "--volume-id", DATA_VOL)
    assert result["mount_path_state"]["entries"] == 3


# ------------------------------------------------------------------ explicit device
def test_explicit_device_through_a_link():
    host = g4dn()
    host.links["/dev/sdf"] = "nvme1n1"
    result = select(host, "--mount-path", "/opt/slm", "--device", "/dev/sdf")
    assert (result["selection"], result["device"]) == ("device", "/dev/nvme1n1")


def test_explicit_root_partition_reports_it_is_mounted_at_root():
    result = select(g4dn(), "--mount-path", "/opt/slm", "--device", "/dev/nvme0n1p1")
    info = result["device_info"]
    assert info["root"] is True
    assert info["mountpoints"] == ["/"]


def test_explicit_missing_device_is_an_error():
    result = select(g4dn(), "--mount-path", "/opt/slm", "--device", "/dev/xvdf")
    assert "storage_device=/dev/xvdf (/dev/xvdf) is not a block device" in result["error"]


def test_volume_id_and_device_must_agree():
    result = select(g4dn(), "--mount-path", "/opt/slm", "--volume-id", DATA_VOL, "--device", "/dev/nvme2n1")
    assert result["device"] == ""
    assert "set only one of them" in result["error"]
    same = select(g4dn(), "--mount-path", "/opt/slm", "--volume-id", DATA_VOL, "--device", "/dev/nvme1n1")
    assert same["device"] == "/dev/nvme1n1"


# ------------------------------------------------------------------ helpers and main
@pytest.mark.parametrize(
    ("text", "size"),
    [("10G", 10 * G), ("512M", 512 * 2**20), ("1.5T", int(1.5 * 2**40)), ("10GiB", 10 * G), ("100", 100), ("x", None)],
)
def test_parse_size(text, size):
    assert probe_mod.parse_size(text) == size


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"volume_id": "vol-xyz"}, "volume_id='vol-xyz' is not an EBS volume id"),
        ({"min_size": "ten gigs"}, "min_size='ten gigs' is not a size such as 10G"),
    ],
)
def test_malformed_parameters_are_refused_before_probing(params, message):
    with pytest.raises(probe_mod.ParameterError, match=message):
        probe_mod.check_parameters(params.get("volume_id", ""), params.get("min_size", "10G"))


def test_the_runner_answers_the_tool_lookup_and_commands():
    class Runner:
        def __init__(self):
            self.calls = []

        def which(self, name):
            return None if name == "wipefs" else "/usr/sbin/" + name

        def run(self, argv):
            self.calls.append(argv)
            return 0, json.dumps({"blockdevices": []}), ""

    runner = Runner()

    class NoFiles(probe_mod.Probe):
        @staticmethod
        def read_text(path):
            return MOUNTINFO_ROOT if path == "/proc/self/mountinfo" else None

    probe = NoFiles(runner)
    assert probe.tree == []
    assert runner.calls[0][0] == "/usr/sbin/lsblk"
    with pytest.raises(probe_mod.ProbeError, match="wipefs is not installed"):
        probe.tool("wipefs")


def test_a_probe_failure_is_an_error_not_a_crash():
    result = probe_mod.probe_failed(probe_mod.ProbeError("lsblk is not installed"))
    assert result["error"] == "The data volume could not be probed: lsblk is not installed"
    assert (result["device"], result["device_info"], result["disks"]) == ("", {}, [])


def test_the_probe_only_reads():
    host = g4dn()
    select(host, "--mount-path", "/opt/slm")
    used = {argv[0] for argv in host.commands}
    assert used <= {"blkid", "wipefs", "findfs"}
    assert all("--no-act" in argv for argv in host.commands if argv[0] == "wipefs")
    assert all("-p" in argv for argv in host.commands if argv[0] == "blkid")
