#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_info
short_description: Gather facts about NVIDIA GPUs, their driver and CUDA architectures
version_added: 0.1.0
description:
  - Runs C(nvidia-smi --query-gpu=index,name,uuid,memory.total,memory.used,compute_cap,driver_version,pci.bus_id
    --format=csv,noheader,nounits) and returns one entry per GPU, the total GPU memory, the driver version and a
    ready C(CMAKE_CUDA_ARCHITECTURES) value.
  - Also lists NVIDIA display and 3D controllers found in C(/sys/bus/pci/devices), so a host that has a GPU but no
    working driver reports RV(gpu_info.present=false) together with RV(gpu_info.pci_count) greater than zero.
  - A host without a GPU, without C(nvidia-smi) or with a driver that is not loaded is not an error; the module
    returns RV(gpu_info.present=false) and a RV(gpu_info.reason), unless O(required=true).
  - Sets the C(gpu_info) fact, so later plays and roles can read C(ansible_facts.gpu_info).
  - The module only reads; it never changes the host.
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  nvidia_smi_path:
    description:
      - Path of the C(nvidia-smi) binary.
      - When not set, C(nvidia-smi) is looked up in E(PATH), the system binary directories and
        C(/usr/local/nvidia/bin).
    type: path
  required:
    description:
      - Fail when no usable NVIDIA GPU is found, with a message that says why (no device, driver not loaded,
        C(nvidia-smi) missing or failing).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
notes:
  - Memory bandwidth comes from a built-in table of NVIDIA data sheet values (T4 320, A10/A10G 600, L4 300,
    L40/L40S 864, A30 933, A40 696, A100 40GB 1555, A100 80GB PCIe 1935, A100 80GB SXM 2039, H100 PCIe 2000,
    H100 SXM 3350, H100 NVL 3900, H200 4800, V100 900, V100S 1134, B200 8000 GB/s); it is V(null) for other models.
  - With drivers older than R510, which cannot report C(compute_cap), the compute capability is taken from the same
    table.
seealso:
  - name: nvidia-smi documentation
    description: Query options of the NVIDIA System Management Interface.
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
  - name: CUDA GPU compute capability
    description: NVIDIA's list of compute capabilities per GPU.
    link: https://developer.nvidia.com/cuda-gpus
"""

EXAMPLES = r"""
- name: Gather GPU facts
  slm.edge.gpu_info:

- name: Build llama.cpp for the GPUs of this host
  ansible.builtin.command:
    cmd: >-
      cmake -B build -DGGML_CUDA=ON
      -DCMAKE_CUDA_ARCHITECTURES={{ ansible_facts.gpu_info.cuda_architectures }}
  when: ansible_facts.gpu_info.present

- name: Stop when the host has a GPU but the driver is not working yet
  ansible.builtin.assert:
    that: ansible_facts.gpu_info.present or ansible_facts.gpu_info.pci_count == 0
    fail_msg: "NVIDIA GPU found but not usable: {{ ansible_facts.gpu_info.reason }}; run the slm.edge.nvidia role"

- name: Fail early on hosts that must have a GPU
  slm.edge.gpu_info:
    required: true
    nvidia_smi_path: /usr/bin/nvidia-smi
  register: gpu

- name: Show the GPUs
  ansible.builtin.debug:
    msg: "{{ gpu.gpu_info.count }} x {{ gpu.gpu_info.gpus[0].name }}, {{ gpu.gpu_info.total_memory_mib }} MiB"
"""

RETURN = r"""
gpu_info:
  description:
    - What was found.  The same dictionary is set as the C(gpu_info) fact.
  returned: always
  type: dict
  contains:
    present:
      description: Whether at least one GPU answered through C(nvidia-smi).
      type: bool
      returned: always
      sample: true
    count:
      description: Number of GPUs reported by C(nvidia-smi).
      type: int
      returned: always
      sample: 4
    gpus:
      description: One entry per GPU, sorted by index.
      type: list
      elements: dict
      returned: always
      contains:
        index:
          description: GPU index as C(nvidia-smi) numbers it.
          type: int
          sample: 0
        name:
          description: Product name.
          type: str
          sample: Tesla T4
        uuid:
          description: GPU UUID.
          type: str
          sample: GPU-9f2c1d6e-5b1a-4f43-8c1e-2a8d3b1f6a01
        memory_total_mib:
          description: Total GPU memory in MiB.
          type: int
          sample: 15360
        memory_used_mib:
          description: GPU memory in use in MiB.
          type: int
          sample: 0
        compute_capability:
          description: CUDA compute capability, V(null) when unknown.
          type: str
          sample: "7.5"
        driver_version:
          description: NVIDIA driver version.
          type: str
          sample: "550.127.05"
        pci_bus_id:
          description: PCI bus id.
          type: str
          sample: "00000000:00:1E.0"
        model:
          description: Model from the built-in table, V(null) when unknown.
          type: str
          sample: T4
        memory_bandwidth_gbps:
          description: Peak memory bandwidth in GB/s from the vendor data sheet, V(null) when the model is unknown.
          type: int
          sample: 320
    cuda_architectures:
      description:
        - Value for C(CMAKE_CUDA_ARCHITECTURES), unique and sorted, separated by C(;).
        - Empty when no GPU is present.
      type: str
      returned: always
      sample: "75;90"
    total_memory_mib:
      description: Sum of the total memory of all GPUs in MiB.
      type: int
      returned: always
      sample: 61440
    driver_version:
      description: NVIDIA driver version, V(null) when no GPU answered.
      type: str
      returned: always
      sample: "550.127.05"
    pci_devices:
      description: NVIDIA display and 3D controllers found in sysfs, whether a driver is bound or not.
      type: list
      elements: dict
      returned: always
      contains:
        address:
          description: PCI address.
          type: str
          sample: "0000:00:1e.0"
        vendor_id:
          description: PCI vendor id.
          type: str
          sample: "0x10de"
        device_id:
          description: PCI device id.
          type: str
          sample: "0x1eb8"
        class_id:
          description: PCI class code.
          type: str
          sample: "0x030200"
        driver:
          description: Kernel driver bound to the device (V(nvidia), V(nouveau), V(vfio-pci)), V(null) when none.
          type: str
          sample: nvidia
        model:
          description: Model known from the PCI device id, V(null) when unknown.
          type: str
          sample: T4
        compute_capability:
          description: CUDA compute capability known from the PCI device id, V(null) when unknown.
          type: str
          sample: "7.5"
    pci_count:
      description: Number of entries in RV(gpu_info.pci_devices).
      type: int
      returned: always
      sample: 4
    nvidia_smi_path:
      description: The C(nvidia-smi) that was run, V(null) when none was found.
      type: str
      returned: always
      sample: /usr/bin/nvidia-smi
    reason:
      description:
        - Why RV(gpu_info.present) is V(false), V(null) when GPUs are present.
        - Starts with C(driver not loaded) when NVIDIA PCI devices exist but C(nvidia-smi) is missing or cannot talk
          to the driver.
      type: str
      returned: always
      sample: driver not loaded / nvidia-smi missing
ansible_facts:
  description: Facts set for the host.
  returned: always
  type: dict
  contains:
    gpu_info:
      description: Same content as RV(gpu_info).
      type: dict
      returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slm.edge.plugins.module_utils.gpu import (
    LEGACY_QUERY_FIELDS,
    QUERY_FIELDS,
    parse_query_csv,
    scan_pci_devices,
    summarize,
)

NVIDIA_SMI_DIRS = ["/usr/local/nvidia/bin", "/usr/lib/wsl/lib"]
DRIVER_NOT_LOADED = "driver not loaded"
PCI_ROOT = "/sys/bus/pci/devices"


def _query_command(nvidia_smi, fields):
    return [
        nvidia_smi,
        "--query-gpu=" + ",".join(f[0] for f in fields),
        "--format=csv,noheader,nounits",
    ]


def _first_lines(text, limit=3):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " ".join(lines[:limit])


def _find_nvidia_smi(module):
    """Return ``(path, None)`` or ``(None, why it is missing)``."""
    path = module.params["nvidia_smi_path"]
    if path:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path, None
        return None, "nvidia-smi not found at %s" % path
    found = module.get_bin_path("nvidia-smi", opt_dirs=NVIDIA_SMI_DIRS)
    if found:
        return found, None
    return None, "nvidia-smi not found"


def gather(module):
    """Return the gpu_info dictionary; never fails by itself."""
    pci_devices = scan_pci_devices(PCI_ROOT)
    info = summarize([])
    info.update(pci_devices=pci_devices, pci_count=len(pci_devices), nvidia_smi_path=None, reason=None)

    unbound = [d for d in pci_devices if d["driver"] != "nvidia"]
    bound_to = sorted({d["driver"] for d in unbound if d["driver"]})
    bound_note = " (device bound to %s)" % ", ".join(bound_to) if bound_to else ""

    nvidia_smi, missing = _find_nvidia_smi(module)
    if not nvidia_smi:
        if pci_devices:
            info["reason"] = "%s / nvidia-smi missing: %d NVIDIA PCI device(s) found but %s%s" % (
                DRIVER_NOT_LOADED,
                len(pci_devices),
                missing,
                bound_note,
            )
        else:
            info["reason"] = "no NVIDIA GPU: %s and no NVIDIA display/3D PCI device" % missing
        return info

    info["nvidia_smi_path"] = nvidia_smi
    fields = QUERY_FIELDS
    rc, out, err = module.run_command(_query_command(nvidia_smi, fields))
    if rc != 0 and "not a valid field" in (out + err) and "compute_cap" in (out + err):
        # Driver older than R510: ask again without compute_cap.
        fields = LEGACY_QUERY_FIELDS
        rc, out, err = module.run_command(_query_command(nvidia_smi, fields))

    if rc != 0:
        message = _first_lines(out + "\n" + err) or "no output"
        lowered = message.lower()
        if "couldn't communicate with the nvidia driver" in lowered:
            info["reason"] = "%s: nvidia-smi failed (rc=%d): %s%s" % (DRIVER_NOT_LOADED, rc, message, bound_note)
        elif "version mismatch" in lowered:
            info["reason"] = (
                "driver/library version mismatch, reboot or reload the nvidia kernel modules: "
                "nvidia-smi failed (rc=%d): %s" % (rc, message)
            )
        elif "no devices were found" in lowered:
            info["reason"] = "nvidia-smi found no GPU (rc=%d): %s" % (rc, message)
        else:
            info["reason"] = "nvidia-smi failed (rc=%d): %s" % (rc, message)
        return info

    skipped = []
    gpus = parse_query_csv(out, fields, skipped)
    for line, why in skipped:
        module.warn("ignored nvidia-smi output line %r: %s" % (line, why))
    info.update(summarize(gpus))
    if not gpus:
        if skipped:
            info["reason"] = "could not parse nvidia-smi output: %s" % skipped[0][0]
        else:
            info["reason"] = "nvidia-smi listed no GPU"
    return info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi_path=dict(type="path"),
            required=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.run_command_environ_update = dict(LANG="C", LC_ALL="C", LC_MESSAGES="C")

    info = gather(module)
    if module.params["required"] and not info["present"]:
        module.fail_json(msg="an NVIDIA GPU is required but none is usable: %s" % info["reason"], gpu_info=info)
    module.exit_json(changed=False, gpu_info=info, ansible_facts=dict(gpu_info=info))


if __name__ == "__main__":
    main()
