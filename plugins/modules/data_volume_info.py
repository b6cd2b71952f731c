#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: data_volume_info
short_description: Find the data volume (EBS or local disk) and tell what is on it, without changing anything
version_added: 0.3.0
description:
  - Chooses the block device that holds (or will hold) the data mount point, and describes it and every other whole
    disk of the host, so that a caller can refuse to format or mount anything that is not an empty or matching data
    disk.
  - "Selection, first match wins: O(volume_id), through C(/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol...)
    or, as a fallback, the NVMe serial in C(/sys/block/nvme*/device/serial); O(device), an explicit path (links are
    resolved); otherwise automatic: the device already mounted at O(mount_path), else the device the C(/etc/fstab)
    entry for O(mount_path) names (never another disk in its place when that one is not attached), else the single
    whole disk of a type in O(device_types) that is unpartitioned, unmounted, not the root disk, not swap, holds no
    partition table, LVM, RAID or other non file system signature, and is at least O(min_size) large."
  - Only devices whose C(/dev) node exists and has the device number the kernel reports are considered (inside a
    container C(lsblk) also lists the host's disks, which have no node there).
  - Signatures come from C(blkid -p), C(wipefs --no-act) and C(lsblk); a device is RV(device_info.empty) only when
    none of them found anything, it has no partition or holder, and every probe ran.
  - When no single device can be chosen, the module does not fail; RV(error) says why, lists the disks found and
    names the variables to set, so the caller can fail with that message. It fails only on malformed parameters.
  - The module only reads; it never writes to a device, to C(/etc/fstab) or to a mount point.
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  mount_path:
    description:
      - Where the data volume is (or will be) mounted; a trailing slash is ignored.
    type: path
    required: true
  volume_id:
    description:
      - EBS volume id (C(vol-) and 8 or 17 hex digits) of the data volume. Empty means not by volume id.
    type: str
    default: ""
  device:
    description:
      - Device path or link of the data volume, for example C(/dev/nvme1n1). Empty means not by path.
      - With O(volume_id) too, both must name the same device.
    type: str
    default: ""
  min_size:
    description:
      - Smallest disk automatic selection considers, a number with an optional binary unit (C(K), C(M), C(G), C(T),
        C(P), optionally followed by C(B) or C(iB)).
    type: str
    default: 10G
  device_types:
    description:
      - C(lsblk) device types automatic selection considers.
    type: list
    elements: str
    default: [disk]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - util-linux (C(lsblk), C(blkid), C(wipefs), C(findfs)) on the managed host.
seealso:
  - module: community.general.filesystem
  - module: ansible.posix.mount
"""

EXAMPLES = r"""
- name: Find the data volume by its EBS volume id
  slm.edge.data_volume_info:
    mount_path: /opt/slm
    volume_id: vol-0123456789abcdef0
  register: data_volume

- name: Stop when no single device was chosen
  ansible.builtin.assert:
    that: data_volume.error | length == 0
    fail_msg: "{{ data_volume.error }}"

- name: Never reformat a device that holds something
  ansible.builtin.assert:
    that: data_volume.device_info.empty or data_volume.device_info.fs_type == 'xfs'
    fail_msg: >-
      {{ data_volume.device_info.path }} holds
      {{ data_volume.device_info.signatures | map(attribute='type') | join(', ') }}

- name: List the disks automatic selection would consider (loop devices too)
  slm.edge.data_volume_info:
    mount_path: /srv/data
    min_size: 1G
    device_types: [disk, loop]
  register: disks
"""

RETURN = r"""
selection:
  description: How the device was chosen.
  returned: always
  type: str
  choices: [volume_id, device, mounted, fstab, automatic, none]
  sample: volume_id
device:
  description: Path of the chosen device; empty when RV(error) is set.
  returned: always
  type: str
  sample: /dev/nvme1n1
error:
  description: Why no device was chosen (or why the chosen one cannot be used at O(mount_path)); empty on success.
  returned: always
  type: str
  sample: ""
device_info:
  description: The chosen device; empty when RV(error) is set. Each entry of RV(disks) has the same keys.
  returned: always
  type: dict
  contains:
    path:
      description: Device path.
      type: str
      returned: success
      sample: /dev/nvme1n1
    name:
      description: Kernel name.
      type: str
      returned: success
      sample: nvme1n1
    type:
      description: C(lsblk) type.
      type: str
      returned: success
      sample: disk
    maj_min:
      description: Device number.
      type: str
      returned: success
      sample: "259:2"
    size:
      description: Size in bytes.
      type: int
      returned: success
      sample: 322122547200
    size_human:
      description: Size with a binary unit.
      type: str
      returned: success
      sample: 300.0G
    ro:
      description: Whether the device is read-only.
      type: bool
      returned: success
    exists:
      description: Whether the C(/dev) node exists and is this very device.
      type: bool
      returned: success
    root:
      description: Whether the device or one of its partitions holds the root file system.
      type: bool
      returned: success
    mountpoints:
      description: Where the device and its partitions are mounted.
      type: list
      elements: str
      returned: success
      sample: [/opt/slm]
    swap:
      description: Whether the device or one of its partitions is active swap.
      type: bool
      returned: success
    children:
      description: Paths of its partitions and holders.
      type: list
      elements: str
      returned: success
      sample: []
    signatures:
      description: "What C(blkid -p), C(wipefs) and C(lsblk) found: a list of dicts with C(type), C(usage), C(uuid),
        C(label) and C(found_by) (the list of tools)."
      type: list
      elements: dict
      returned: success
      sample: [{type: xfs, usage: filesystem, uuid: 0b8e2c7e-1d7e-4f51-9d2c-4b0e6e0c7a11, label: "", found_by: [blkid]}]
    probe_errors:
      description: Probes that failed; a device with any is never empty.
      type: list
      elements: str
      returned: success
      sample: []
    fs_type:
      description: File system type when exactly one file system signature was found, else empty.
      type: str
      returned: success
      sample: xfs
    fs_uuid:
      description: UUID of that file system, else empty.
      type: str
      returned: success
      sample: 0b8e2c7e-1d7e-4f51-9d2c-4b0e6e0c7a11
    empty:
      description: True only when no signature, partition or holder was found and every probe ran.
      type: bool
      returned: success
disks:
  description: "Every whole device with a C(/dev) node, with the keys of RV(device_info) plus C(reason) (why automatic
    selection takes or skips it: V(candidate) or a sentence) and C(candidate) (bool)."
  returned: always
  type: list
  elements: dict
  sample: [{path: /dev/nvme1n1, size_human: 300.0G, reason: candidate, candidate: true}]
candidates:
  description: Paths of the disks automatic selection would take.
  returned: always
  type: list
  elements: str
  sample: [/dev/nvme1n1]
mount_path_state:
  description: What is at O(mount_path) now.
  returned: always
  type: dict
  contains:
    mounted:
      description: Whether O(mount_path) is a mount point.
      type: bool
      returned: success
    source:
      description: Device mounted there, or the mount source when it is not a block device.
      type: str
      returned: success
      sample: /dev/nvme1n1
    maj_min:
      description: Device number of what is mounted there.
      type: str
      returned: success
      sample: "259:2"
    entries:
      description: Entries in the directory when it is not a mount point (they would be hidden by a mount).
      type: int
      returned: success
      sample: 0
    fstab:
      description: "The C(/etc/fstab) entry for O(mount_path) (C(source), C(fstype), C(opts), C(device): the device
        it resolves to, empty when not attached), or an empty dict."
      type: dict
      returned: success
      sample:
        source: UUID=0b8e2c7e-1d7e-4f51-9d2c-4b0e6e0c7a11
        fstype: xfs
        opts: defaults,nofail
        device: /dev/nvme1n1
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slm.edge.plugins.module_utils.data_volume import (
    ParameterError,
    Probe,
    ProbeError,
    check_parameters,
    probe_failed,
    select,
)


class ModuleRunner:
    """Host commands through AnsibleModule: C locale, sbin directories searched too."""

    def __init__(self, module):
        self.module = module

    def run(self, argv):
        return self.module.run_command(argv, environ_update={"LC_ALL": "C", "LANG": "C"})

    def which(self, name):
        return self.module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"])


def main():
    module = AnsibleModule(
        argument_spec={
            "mount_path": {"type": "path", "required": True},
            "volume_id": {"type": "str", "default": ""},
            "device": {"type": "str", "default": ""},
            "min_size": {"type": "str", "default": "10G"},
            "device_types": {"type": "list", "elements": "str", "default": ["disk"]},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        check_parameters((params["volume_id"] or "").strip(), params["min_size"])
    except ParameterError as exc:
        module.fail_json(msg=str(exc))
    try:
        result = select(
            Probe(ModuleRunner(module)),
            params["mount_path"],
            volume_id=params["volume_id"],
            device=params["device"],
            min_size=params["min_size"],
            device_types=params["device_types"],
        )
    except (ProbeError, OSError) as exc:
        result = probe_failed(exc)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
