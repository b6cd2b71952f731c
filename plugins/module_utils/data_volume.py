# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Find the data volume and tell what is on it, without changing anything.

The logic of the slm.edge.data_volume_info module (no Ansible imports, Python 3.8+, util-linux:
lsblk, blkid, wipefs, findfs). It only reads: it never writes to a device, to /etc/fstab or to a
mount point.

Selection, first match wins:
  volume_id   the EBS volume id, through /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol...
              (the id without its dash) or, as a fallback, the NVMe serial in
              /sys/block/nvme*/device/serial;
  device      an explicit device path (links are resolved);
  automatic   the device already mounted at the mount path, else the device named by the fstab
              entry for the mount path (an error when that one is not attached, rather than
              picking another disk), else the single whole disk of one of the device types that is
              unpartitioned, unmounted, not the root disk, not swap, holds no partition table, LVM,
              RAID or other non file system signature, and is at least min_size large.
Only devices whose /dev node exists and is the same device number as the kernel reports are
considered (inside a container lsblk also lists host disks that have no node there).

Host access goes through a runner object with ``run(argv) -> (rc, stdout, stderr)`` and
``which(name) -> path or None`` (the module passes one built on AnsibleModule.run_command and
get_bin_path); the Probe methods that read files and device nodes are overridden by the unit tests.
"""

from __future__ import annotations

import glob
import json
import os
import re
import stat

EBS_LINK_PREFIX = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"
VOLUME_ID_RE = re.compile(r"^vol-([0-9a-f]{8}|[0-9a-f]{17})$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$", re.IGNORECASE)
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
CHOOSE_HINT = (
    "Set storage_volume_id to the EBS volume id (vol-..., the 'slm:data_volume_id' tag of the instance) "
    "or storage_device to the device path (for example /dev/nvme1n1) to choose the data volume."
)


def parse_size(text):
    match = SIZE_RE.match(str(text))
    if not match:
        return None
    return int(float(match.group(1)) * UNITS[match.group(2).upper()])


def human(num):
    value = float(num)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return str(num)  # pragma: no cover


def as_bool(value):
    if isinstance(value, bool):
        return value
    return str(value).strip() in ("1", "true", "True")


def unescape_mount(text):
    """Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


class ProbeError(Exception):
    """A probe tool is missing or failed: reported as the error, nothing is chosen."""


class Probe:
    def __init__(self, runner):
        self.runner = runner
        self.mounts = self._mountinfo()
        self.swaps = self._swaps()
        self.tree = self._lsblk()
        self._sig_cache = {}

    # ------------------------------------------------------------ host access (overridden by unit tests)
    @staticmethod
    def read_text(path):
        """Contents of a file, or None when it cannot be read."""
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError:
            return None

    @staticmethod
    def block_majmin(path):
        """'major:minor' when path is (or links to) a block device node, else None."""
        try:
            info = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISBLK(info.st_mode):
            return None
        return f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"

    @staticmethod
    def realpath(path):
        return os.path.realpath(path)

    @staticmethod
    def glob(pattern):
        return sorted(set(glob.glob(pattern)))

    @staticmethod
    def dir_entries(path):
        """Number of entries when path is a directory, else None."""
        try:
            return len(os.listdir(path)) if os.path.isdir(path) else None
        except OSError:
            return None

    def run(self, argv):
        return self.runner.run(argv)

    def tool(self, name):
        found = self.runner.which(name)
        if not found:
            raise ProbeError(f"{name} is not installed; install util-linux (the role does this before probing)")
        return found

    def _mountinfo(self):
        mounts = []
        text = self.read_text("/proc/self/mountinfo")
        if text is None:
            raise ProbeError("cannot read /proc/self/mountinfo")
        for entry in text.splitlines():
            left, _sep, right = entry.partition(" - ")
            fields = left.split()
            tail = right.split()
            if len(fields) < 5 or len(tail) < 2:
                continue
            mounts.append(
                {
                    "maj_min": fields[2],
                    "root": unescape_mount(fields[3]),
                    "target": unescape_mount(fields[4]),
                    "fstype": tail[0],
                    "source": unescape_mount(tail[1]),
                }
            )
        return mounts

    def _swaps(self):
        found = set()
        for entry in (self.read_text("/proc/swaps") or "").splitlines()[1:]:
            maj_min = self.block_majmin(unescape_mount(entry.split()[0])) if entry.split() else None
            if maj_min:
                found.add(maj_min)
        return found

    def _lsblk(self):
        argv = [
            self.tool("lsblk"),
            "--json",
            "--bytes",
            "--paths",
            "--output",
            "NAME,MAJ:MIN,TYPE,SIZE,RO,FSTYPE,PTTYPE,MOUNTPOINT",
        ]
        rc, out, err = self.run(argv)
        if rc != 0:
            raise ProbeError(f"{' '.join(argv)} failed (rc={rc}): {err.strip()}")
        try:
            return json.loads(out).get("blockdevices", []) or []
        except ValueError as exc:
            raise ProbeError(f"lsblk returned no JSON ({exc}): {out[:500]}") from exc

    # ------------------------------------------------------------ helpers
    @staticmethod
    def walk(nodes):
        for node in nodes or []:
            yield node
            yield from Probe.walk(node.get("children"))

    def node_by_majmin(self, maj_min):
        for node in self.walk(self.tree):
            if node.get("maj:min") == maj_min:
                return node
        return None

    def node_exists(self, node):
        """True when the /dev node exists and is this very device (not a host device seen through lsblk)."""
        return bool(node.get("name")) and self.block_majmin(node["name"]) == node.get("maj:min")

    def mountpoints(self, node):
        maj_min = node.get("maj:min")
        path = node.get("name")
        targets = []
        for mount in self.mounts:
            if mount["maj_min"] == maj_min or (path and mount["source"] == path):
                if mount["target"] not in targets:
                    targets.append(mount["target"])
        if node.get("mountpoint") and node["mountpoint"] not in targets:
            targets.append(node["mountpoint"])
        return targets

    def signatures(self, path, node):
        if path in self._sig_cache:
            return self._sig_cache[path]
        sigs, errors = [], []

        def add(sig_type, usage, found_by, uuid="", label=""):
            for sig in sigs:
                if sig["type"] == sig_type:
                    sig["found_by"] = sorted(set(sig["found_by"]) | {found_by})
                    sig["usage"] = sig["usage"] if sig["usage"] != "unknown" else usage
                    sig["uuid"] = sig["uuid"] or uuid
                    sig["label"] = sig["label"] or label
                    return
            sigs.append({"type": sig_type, "usage": usage, "uuid": uuid, "label": label, "found_by": [found_by]})

        rc, out, err = self.run([self.tool("blkid"), "-p", "-o", "export", path])
        if rc == 0:
            values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            if values.get("TYPE"):
                add(
                    values["TYPE"],
                    values.get("USAGE", "unknown"),
                    "blkid",
                    values.get("UUID", ""),
                    values.get("LABEL", ""),
                )
            if values.get("PTTYPE"):
                add(values["PTTYPE"], "partition table", "blkid", values.get("PTUUID", ""))
            if not values.get("TYPE") and not values.get("PTTYPE"):
                errors.append(f"blkid -p found something it could not name: {out.strip()}")
        elif rc != 2:  # 2 = nothing found; 8 = ambivalent result (several signatures); others = errors
            errors.append(f"blkid -p {path} exited {rc}: {(err or out).strip()}")

        rc, out, err = self.run([self.tool("wipefs"), "--no-act", "--parsable", path])
        if rc == 0:
            for line in out.splitlines():
                parts = line.strip().split(",")
                if line.strip() and not line.startswith("#") and len(parts) >= 4:
                    add(parts[-1], "unknown", "wipefs", parts[1])
        else:
            errors.append(f"wipefs --no-act {path} exited {rc}: {(err or out).strip()}")

        if node.get("fstype"):
            add(node["fstype"], "unknown", "lsblk")
        if node.get("pttype"):
            add(node["pttype"], "partition table", "lsblk")
        self._sig_cache[path] = (sigs, errors)
        return sigs, errors

    def describe(self, node):
        path = node.get("name", "")
        exists = self.node_exists(node)
        descendants = list(self.walk(node.get("children")))
        tree = [node, *descendants]
        mountpoints = []
        for item in tree:
            mountpoints += [m for m in self.mountpoints(item) if m not in mountpoints]
        sigs, errors = self.signatures(path, node) if exists else ([], ["the /dev node does not exist"])
        fs_sigs = [s for s in sigs if s["usage"] == "filesystem"]
        fs_type = fs_sigs[0]["type"] if len(fs_sigs) == 1 else ""
        return {
            "path": path,
            "name": os.path.basename(path),
            "type": node.get("type", ""),
            "maj_min": node.get("maj:min", ""),
            "size": int(node.get("size") or 0),
            "size_human": human(int(node.get("size") or 0)),
            "ro": as_bool(node.get("ro", False)),
            "exists": exists,
            "root": "/" in mountpoints,
            "mountpoints": mountpoints,
            "swap": any(item.get("maj:min") in self.swaps for item in tree),
            "children": [item.get("name", "") for item in descendants],
            "signatures": sigs,
            "probe_errors": errors,
            "fs_type": fs_type,
            "fs_uuid": fs_sigs[0]["uuid"] if fs_type else "",
            "empty": exists and not sigs and not errors and not descendants,
        }

    # ------------------------------------------------------------ selection
    def resolve_path(self, path):
        """Node for a path or link; None when it is not a block device lsblk knows."""
        real = self.realpath(path)
        maj_min = self.block_majmin(real)
        return (self.node_by_majmin(maj_min) if maj_min else None), real

    def by_volume_id(self, volume_id):
        serial = volume_id.replace("-", "")
        links = [EBS_LINK_PREFIX + serial, *self.glob(EBS_LINK_PREFIX + serial + "[_-]*")]
        targets = {}
        for link in links:
            if "-part" in link[len(EBS_LINK_PREFIX) :]:
                continue
            node, real = self.resolve_path(link)
            if node is not None:
                targets[real] = (node, link)
        looked = [EBS_LINK_PREFIX + serial]
        if not targets:
            looked.append("/sys/block/nvme*/device/serial")
            for serial_file in self.glob("/sys/block/nvme*/device/serial"):
                if (self.read_text(serial_file) or "").strip() == serial:
                    block = serial_file.split("/")[3]
                    node, real = self.resolve_path("/dev/" + block)
                    if node is not None:
                        targets[real] = (node, serial_file)
        if len(targets) > 1:
            return None, f"volume {volume_id} maps to several devices: {', '.join(sorted(targets))}"
        if not targets:
            return None, (
                f"storage_volume_id={volume_id} is not attached to this host: looked for {' and '.join(looked)}. "
                "Attach the volume (aws ec2 attach-volume) or fix storage_volume_id; on an instance that is not "
                "Nitro based (Xen, /dev/xvd*) there is no volume id on the device, set storage_device instead."
            )
        node, _source = next(iter(targets.values()))
        return node, ""

    def fstab_entry(self, mount_path):
        entry = {}
        for line in (self.read_text("/etc/fstab") or "").splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and os.path.normpath(unescape_mount(fields[1])) == mount_path:
                entry = {
                    "source": fields[0],
                    "fstype": fields[2] if len(fields) > 2 else "",
                    "opts": fields[3] if len(fields) > 3 else "",
                }
        if not entry:
            return {}
        source = entry["source"]
        device = ""
        if re.match(r"^(UUID|LABEL|PARTUUID|PARTLABEL)=", source):
            rc, out, _err = self.run([self.tool("findfs"), source])
            device = out.strip() if rc == 0 else ""
        elif source.startswith("/dev/") and self.block_majmin(source):
            device = self.realpath(source)
        entry["device"] = device
        return entry

    def mount_path_state(self, mount_path):
        mounted = [m for m in self.mounts if m["target"] == mount_path]
        state = {"mounted": bool(mounted), "source": "", "maj_min": "", "entries": 0, "fstab": {}}
        if mounted:
            top = mounted[-1]
            state["maj_min"] = top["maj_min"]
            node = self.node_by_majmin(top["maj_min"])
            state["source"] = node.get("name") if node else top["source"]
        else:
            state["entries"] = self.dir_entries(mount_path) or 0
        state["fstab"] = self.fstab_entry(mount_path)
        return state


def auto_reason(info, types, min_size):
    if info["type"] not in types:
        return f"type {info['type']} is not in storage_auto_device_types"
    if info["ro"]:
        return "read-only"
    if info["root"]:
        return "holds the root file system"
    if info["mountpoints"]:
        return "mounted at " + ", ".join(info["mountpoints"])
    if info["swap"]:
        return "active swap"
    if info["children"]:
        return "has partitions or holders: " + ", ".join(info["children"])
    if info["probe_errors"]:
        return "could not be probed: " + "; ".join(info["probe_errors"])
    other = [s for s in info["signatures"] if s["usage"] != "filesystem"]
    if other:
        return "holds " + ", ".join(f"{s['type']} ({s['usage']})" for s in other)
    if info["size"] < min_size:
        return f"smaller than storage_min_size ({human(min_size)})"
    return "candidate"


def line(info):
    fstype = ",".join(s["type"] for s in info["signatures"]) or "-"
    mounted = ",".join(info["mountpoints"]) or "-"
    text = f"{info['path']} (size {info['size_human']}, fstype {fstype}, mountpoint {mounted})"
    if "reason" in info and info["reason"] != "candidate":
        text += f": {info['reason']}"
    return text


class ParameterError(ValueError):
    """A parameter that is not what it should be (the module fails with this message)."""


def check_parameters(volume_id, min_size):
    """The minimum size in bytes; ParameterError when a parameter is malformed."""
    size = parse_size(min_size)
    if size is None:
        raise ParameterError(f"min_size={min_size!r} is not a size such as 10G (storage_min_size)")
    if volume_id and not VOLUME_ID_RE.match(volume_id):
        raise ParameterError(
            f"volume_id={volume_id!r} is not an EBS volume id: vol- and 8 or 17 hex digits (storage_volume_id)"
        )
    return size


def select(probe, mount_path, *, volume_id="", device="", min_size="10G", device_types=("disk",)):
    """The selection result (see the module's RETURN) for ``probe``, a Probe of this host."""
    volume_id = (volume_id or "").strip()
    device = (device or "").strip()
    mount_path = os.path.normpath(mount_path)
    device_types = [t.strip() for t in device_types if t and t.strip()]
    min_size = check_parameters(volume_id, min_size)
    disks = []
    for node in probe.tree:
        if not probe.node_exists(node):
            continue  # host devices seen through lsblk inside a container, or stale entries
        info = probe.describe(node)
        info["reason"] = auto_reason(info, device_types, min_size)
        info["candidate"] = info["reason"] == "candidate"
        disks.append(info)
    candidates = [d["path"] for d in disks if d["candidate"]]
    where = probe.mount_path_state(mount_path)
    chosen, selection, error = None, "none", ""
    if volume_id:
        chosen, error = probe.by_volume_id(volume_id)
        selection = "volume_id"
        if chosen is not None and device:
            other, real = probe.resolve_path(device)
            if other is None or other.get("maj:min") != chosen.get("maj:min"):
                error = (
                    f"storage_volume_id={volume_id} is {chosen.get('name')} but storage_device={device} is "
                    f"{real}: set only one of them, or make them name the same device."
                )
                chosen = None
    elif device:
        selection = "device"
        chosen, real = probe.resolve_path(device)
        if chosen is None:
            error = f"storage_device={device} ({real}) is not a block device on this host. {CHOOSE_HINT}"
        elif not probe.node_exists(chosen):
            error = f"storage_device={device} resolves to {chosen.get('name')}, whose /dev node is missing."
            chosen = None
    elif where["mounted"] and where["source"] and probe.node_by_majmin(where["maj_min"]) is not None:
        selection = "mounted"
        chosen = probe.node_by_majmin(where["maj_min"])
    elif where["fstab"]:
        selection = "fstab"
        fstab = where["fstab"]
        chosen, _real = probe.resolve_path(fstab["device"]) if fstab["device"] else (None, "")
        if chosen is None:
            error = (
                f"/etc/fstab mounts {mount_path} from {fstab['source']}, which is not attached to this host. "
                "Automatic selection will not pick another disk in its place: attach that volume, or set "
                "storage_volume_id or storage_device to the volume to use (the role then replaces the fstab entry)."
            )
        elif probe.describe(chosen)["empty"]:
            error = (
                f"/etc/fstab mounts {mount_path} from {fstab['source']} ({chosen.get('name')}), but that device holds "
                "no file system: it is probably another disk now (NVMe device names such as /dev/nvme1n1 are not "
                "stable across reboots on Nitro instances). Automatic selection will not format it. "
                f"{CHOOSE_HINT}"
            )
            chosen = None
    else:
        selection = "automatic"
        if len(candidates) == 1:
            chosen, _real = probe.resolve_path(candidates[0])
        else:
            found = "; ".join(line(d) for d in disks) or "no disk with a /dev node"
            count = "no candidate disk" if not candidates else f"{len(candidates)} candidate disks"
            error = (
                f"Automatic selection of the data volume found {count} "
                f"(need exactly one unpartitioned, unmounted, non-root disk of at least {human(min_size)} "
                f"without a partition table, LVM, RAID or swap signature). Disks found: {found}. {CHOOSE_HINT}"
            )

    device_info = probe.describe(chosen) if chosen is not None else {}
    if device_info and where["mounted"] and where["maj_min"] and where["maj_min"] != device_info["maj_min"]:
        error = (
            f"{mount_path} is already a mount point of {where['source'] or 'another file system'}, not of "
            f"{device_info['path']} (selected by {selection}): unmount it or choose that device, "
            f"or set storage_mount_path to another directory."
        )
    return {
        "selection": selection,
        "device": device_info.get("path", "") if not error else "",
        "error": error,
        "device_info": device_info if not error else {},
        "disks": disks,
        "candidates": candidates,
        "mount_path_state": where,
    }


def probe_failed(exc):
    """The result when the host could not be probed at all (a tool missing or failing)."""
    return {
        "selection": "none",
        "device": "",
        "error": f"The data volume could not be probed: {exc}",
        "device_info": {},
        "disks": [],
        "candidates": [],
        "mount_path_state": {},
    }
