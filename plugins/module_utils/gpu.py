# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Pure helpers for the slm.edge.gpu_info module.

Everything here is free of side effects except scan_pci_devices(), which only
reads sysfs, so the functions can be unit tested with recorded nvidia-smi
output and a fake sysfs tree.  The code runs on the managed host and must stay
compatible with Python 3.8+ and the standard library only.
"""

from __future__ import annotations

import os
import re

# Fields asked from ``nvidia-smi --query-gpu``, in this order.  The keys are the
# names used in the result.
QUERY_FIELDS = (
    ("index", "index"),
    ("name", "name"),
    ("uuid", "uuid"),
    ("memory.total", "memory_total_mib"),
    ("memory.used", "memory_used_mib"),
    ("compute_cap", "compute_capability"),
    ("driver_version", "driver_version"),
    ("pci.bus_id", "pci_bus_id"),
)

# Drivers older than R510 do not know ``compute_cap``; the module retries
# without it and fills the capability from KNOWN_MODELS.
LEGACY_QUERY_FIELDS = tuple(f for f in QUERY_FIELDS if f[0] != "compute_cap")

_INT_KEYS = frozenset(("index", "memory_total_mib", "memory_used_mib"))

# Values nvidia-smi prints when a field is not available for a device.
_NOT_AVAILABLE = frozenset(("[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]", ""))

NVIDIA_PCI_VENDOR = "0x10de"
# PCI base class 0x03 = display controller (0x0300 VGA, 0x0302 3D controller).
# NVIDIA's audio functions (0x0403) and NVSwitch bridges (0x0680) are not GPUs.
PCI_DISPLAY_BASE_CLASS = 0x03

# Known data-center GPUs, matched against the (upper-cased) nvidia-smi name in
# order; the first match wins.  Memory bandwidth is the peak GPU memory
# bandwidth in GB/s from NVIDIA's product data sheets (Tesla T4, A10, A10G as
# documented by AWS for G5 instances, L4, L40, L40S, A30, A40, A100 40GB/80GB
# PCIe and SXM, H100 PCIe/SXM/NVL, H200, V100/V100S, B200, RTX A6000 and RTX 6000
# Ada).  Compute capabilities are from NVIDIA's CUDA GPUs list
# (https://developer.nvidia.com/cuda-gpus).  Unknown models get ``None``.
KNOWN_MODELS = (
    # (regular expression on the upper-cased name, model, GB/s, compute capability)
    (r"\bGH200\b", "GH200", None, "9.0"),
    (r"\bH200\b", "H200", 4800, "9.0"),
    (r"\bH100\b.*\bNVL\b", "H100 NVL", 3900, "9.0"),
    (r"\bH100\b.*\bPCIE\b", "H100 PCIe", 2000, "9.0"),
    (r"\bH100\b.*\b(?:SXM\d?|HBM3)\b", "H100 SXM", 3350, "9.0"),
    (r"\bH100\b", "H100", None, "9.0"),
    (r"^(?=.*\bA100\b)(?=.*\b80GB\b)(?=.*\bPCIE\b)", "A100 80GB PCIe", 1935, "8.0"),
    (r"^(?=.*\bA100\b)(?=.*\b80GB\b)", "A100 80GB SXM", 2039, "8.0"),
    (r"\bA100\b", "A100 40GB", 1555, "8.0"),
    (r"\bA10G\b", "A10G", 600, "8.6"),
    (r"\bA10\b", "A10", 600, "8.6"),
    (r"\bA30\b", "A30", 933, "8.0"),
    (r"\bA40\b", "A40", 696, "8.6"),
    (r"\bL40S\b", "L40S", 864, "8.9"),
    (r"\bL40\b", "L40", 864, "8.9"),
    (r"\bL4\b", "L4", 300, "8.9"),
    (r"\bT4G?\b", "T4", 320, "7.5"),
    (r"\bV100S\b", "V100S", 1134, "7.0"),
    (r"\bV100\b", "V100", 900, "7.0"),
    (r"\bB200\b", "B200", 8000, "10.0"),
    (r"\bRTX 6000 ADA\b", "RTX 6000 Ada", 960, "8.9"),
    (r"\bRTX A6000\b", "RTX A6000", 768, "8.6"),
)
_KNOWN_MODELS_RE = tuple((re.compile(p), m, bw, cc) for p, m, bw, cc in KNOWN_MODELS)

# PCI device IDs (vendor 0x10de) of the GPUs above, from the PCI ID Repository
# (https://pci-ids.ucw.cz/read/PC/10de).  Used to name a GPU whose driver is not
# loaded yet, so a build can still target the right CUDA architecture.
PCI_DEVICE_MODELS = {
    "0x1db1": ("V100", "7.0"),  # GV100GL [Tesla V100 SXM2 16GB]
    "0x1db4": ("V100", "7.0"),  # GV100GL [Tesla V100 PCIe 16GB]
    "0x1db5": ("V100", "7.0"),  # GV100GL [Tesla V100 SXM2 32GB]
    "0x1db6": ("V100", "7.0"),  # GV100GL [Tesla V100 PCIe 32GB]
    "0x1eb8": ("T4", "7.5"),  # TU104GL [Tesla T4]
    "0x20b0": ("A100 40GB", "8.0"),  # GA100 [A100 SXM4 40GB]
    "0x20b2": ("A100 80GB SXM", "8.0"),  # GA100 [A100 SXM4 80GB]
    "0x20b5": ("A100 80GB PCIe", "8.0"),  # GA100 [A100 PCIe 80GB]
    "0x20f1": ("A100 40GB", "8.0"),  # GA100 [A100 PCIe 40GB]
    "0x2236": ("A10", "8.6"),  # GA102GL [A10]
    "0x2237": ("A10G", "8.6"),  # GA102GL [A10G]
    "0x26b5": ("L40", "8.9"),  # AD102GL [L40]
    "0x26b9": ("L40S", "8.9"),  # AD102GL [L40S]
    "0x27b8": ("L4", "8.9"),  # AD104GL [L4]
    "0x2330": ("H100 SXM", "9.0"),  # GH100 [H100 SXM5 80GB]
    "0x2331": ("H100 PCIe", "9.0"),  # GH100 [H100 PCIe]
    "0x2335": ("H200", "9.0"),  # GH100 [H200 SXM 141GB]
}

_CC_RE = re.compile(r"^(\d+)\.(\d+)$")


def lookup_model(name):
    """Return ``(model, bandwidth_gbps, compute_capability)`` for a GPU name.

    ``name`` is what nvidia-smi reports (``Tesla T4``, ``NVIDIA A10G``,
    ``NVIDIA H100 80GB HBM3``).  Unknown names give ``(None, None, None)``.
    """
    if not name:
        return None, None, None
    normalized = " ".join(str(name).upper().split())
    for regex, model, bandwidth, capability in _KNOWN_MODELS_RE:
        if regex.search(normalized):
            return model, bandwidth, capability
    return None, None, None


def memory_bandwidth_gbps(name):
    """Peak memory bandwidth in GB/s of a known GPU model, else ``None``."""
    return lookup_model(name)[1]


def _clean(value):
    value = value.strip()
    return None if value in _NOT_AVAILABLE else value


def _to_int(value):
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return int(float(value))


def parse_query_line(line, fields=QUERY_FIELDS):
    """Parse one ``--format=csv,noheader,nounits`` line into a dict.

    Raises ValueError when the line does not have the expected shape.
    """
    parts = [_clean(p) for p in line.split(",")]
    if len(parts) != len(fields):
        raise ValueError("expected %d comma separated fields, got %d" % (len(fields), len(parts)))
    gpu = {}
    for position, (_field, key) in enumerate(fields):
        value = parts[position]
        if key in _INT_KEYS:
            try:
                gpu[key] = _to_int(value)
            except ValueError as exc:
                raise ValueError("field %s is not a number: %r" % (key, value)) from exc
        else:
            gpu[key] = value
    if gpu["index"] is None:
        raise ValueError("GPU index missing")
    capability = gpu.get("compute_capability")
    if capability is not None and not _CC_RE.match(capability):
        raise ValueError("compute capability is not MAJOR.MINOR: %r" % capability)
    model, bandwidth, known_capability = lookup_model(gpu["name"])
    if capability is None:
        gpu["compute_capability"] = known_capability
    gpu["model"] = model
    gpu["memory_bandwidth_gbps"] = bandwidth
    return gpu


def parse_query_csv(text, fields=QUERY_FIELDS, skipped=None):
    """Parse ``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` output.

    Returns a list of GPU dicts sorted by index.  Blank lines are ignored.
    Lines that cannot be parsed (driver warnings, garbage) are left out and,
    when ``skipped`` is a list, appended to it as ``(line, reason)`` tuples.
    """
    gpus = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        try:
            gpus.append(parse_query_line(line, fields))
        except ValueError as exc:
            if skipped is not None:
                skipped.append((line, str(exc)))
    gpus.sort(key=lambda g: g["index"])
    return gpus


def cuda_arch(capability):
    """``"7.5"`` -> ``"75"``, ``"10.0"`` -> ``"100"``; ``None`` for anything else."""
    match = _CC_RE.match(str(capability or "").strip())
    if not match:
        return None
    return "%d%d" % (int(match.group(1)), int(match.group(2)))


def cuda_architectures(gpus):
    """CMAKE_CUDA_ARCHITECTURES value for a list of GPU dicts.

    Unique, numerically sorted, ``;`` separated (``"75"``, ``"86;90"``); an
    empty string when no capability is known.
    """
    archs = set()
    for gpu in gpus or []:
        arch = cuda_arch(gpu.get("compute_capability"))
        if arch:
            archs.add(arch)
    return ";".join(sorted(archs, key=int))


def summarize(gpus):
    """The aggregate part of the gpu_info fact for parsed GPUs."""
    drivers = [g["driver_version"] for g in gpus if g.get("driver_version")]
    return {
        "present": bool(gpus),
        "count": len(gpus),
        "gpus": gpus,
        "cuda_architectures": cuda_architectures(gpus),
        "total_memory_mib": sum(g.get("memory_total_mib") or 0 for g in gpus),
        "driver_version": drivers[0] if drivers else None,
    }


def _read_sysfs(path):
    with open(path) as handle:
        return handle.read().strip().lower()


def scan_pci_devices(root="/sys/bus/pci/devices"):
    """NVIDIA display/3D controllers found in sysfs, with or without a driver.

    Each entry: address, vendor_id, device_id, class_id (hex strings as sysfs
    shows them), driver (bound kernel driver or None), model and
    compute_capability (from PCI_DEVICE_MODELS, None when unknown).
    """
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    devices = []
    for address in entries:
        base = os.path.join(root, address)
        try:
            vendor = _read_sysfs(os.path.join(base, "vendor"))
            class_id = _read_sysfs(os.path.join(base, "class"))
            if vendor != NVIDIA_PCI_VENDOR or int(class_id, 16) >> 16 != PCI_DISPLAY_BASE_CLASS:
                continue
            device_id = _read_sysfs(os.path.join(base, "device"))
        except (OSError, ValueError):
            continue
        driver_link = os.path.join(base, "driver")
        driver = os.path.basename(os.readlink(driver_link)) if os.path.islink(driver_link) else None
        model, capability = PCI_DEVICE_MODELS.get(device_id, (None, None))
        devices.append(
            {
                "address": address,
                "vendor_id": vendor,
                "device_id": device_id,
                "class_id": class_id,
                "driver": driver,
                "model": model,
                "compute_capability": capability,
            }
        )
    return devices
