# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Who listens on a TCP port: /proc/net/tcp{,6} sockets mapped to processes and systemd units.

The same answer ``ss -ltnp`` gives, without parsing its output: each listening socket
with its address, and, when the process is visible from here, its PID, command name,
command line and the systemd unit whose cgroup holds it.  Pure functions over a /proc
root so the unit tests can feed recorded files.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

LISTEN = "0A"


def _ipv4(hexaddr):
    return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hexaddr, 16)))


def _ipv6(hexaddr):
    words = [struct.pack("<I", int(hexaddr[i : i + 8], 16)) for i in range(0, 32, 8)]
    return str(ipaddress.IPv6Address(b"".join(words)))


def parse_proc_net(text, family):
    """Listening sockets of one /proc/net/tcp or tcp6 file: [{address, port, inode, family}]."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != LISTEN:
            continue
        addr, port = fields[1].rsplit(":", 1)
        out.append(
            {
                "address": _ipv4(addr) if family == "ipv4" else _ipv6(addr),
                "port": int(port, 16),
                "inode": int(fields[9]),
                "family": family,
            }
        )
    return out


def unit_of_cgroup(text):
    """The systemd unit (``*.service``/``*.scope``) a process belongs to, from /proc/PID/cgroup."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith((".service", ".scope")):
                return part
    return ""


def _read(path, mode="r"):
    try:
        with open(path, mode) as handle:
            return handle.read()
    except OSError:
        return None


def socket_owners(proc="/proc"):
    """Map socket inode -> {pid, comm, cmdline, unit} for every process visible under ``proc``."""
    owners = {}
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        inodes = []
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.append(int(target[8:-1]))
        if not inodes:
            continue
        cmdline = (_read(os.path.join(proc, pid, "cmdline"), "rb") or b"").split(b"\0")
        info = {
            "pid": int(pid),
            "comm": (_read(os.path.join(proc, pid, "comm")) or "").strip(),
            "cmdline": [c.decode("utf-8", "replace") for c in cmdline if c][:8],
            "unit": unit_of_cgroup(_read(os.path.join(proc, pid, "cgroup")) or ""),
        }
        for inode in inodes:
            owners.setdefault(inode, info)
    return owners


def listeners(ports, proc="/proc"):
    """For each port, the sockets listening on it and who holds them (pid 0 when not visible)."""
    wanted = {int(p) for p in ports}
    sockets = []
    for name, family in (("tcp", "ipv4"), ("tcp6", "ipv6")):
        text = _read(os.path.join(proc, "net", name))
        if text:
            sockets.extend(s for s in parse_proc_net(text, family) if s["port"] in wanted)
    owners = socket_owners(proc) if sockets else {}
    result = {str(p): [] for p in sorted(wanted)}
    for sock in sockets:
        owner = owners.get(sock["inode"], {"pid": 0, "comm": "", "cmdline": [], "unit": ""})
        result[str(sock["port"])].append(
            {"address": sock["address"], "family": sock["family"], "inode": sock["inode"], **owner}
        )
    return result


def describe(entry):
    """One line naming who holds a socket, as an operator would want it in an error."""
    if not entry["pid"]:
        return "%s (process not visible from this host, e.g. another container sharing the network)" % entry["address"]
    who = "pid %d (%s)" % (entry["pid"], entry["comm"] or "?")
    if entry["unit"]:
        who += " in %s" % entry["unit"]
    return "%s: %s %s" % (entry["address"], who, " ".join(entry["cmdline"][:4]))
