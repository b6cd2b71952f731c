#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: listen_info
short_description: Tell which process and systemd unit listen on TCP ports
version_added: 0.2.0
description:
  - Reads C(/proc/net/tcp) and C(/proc/net/tcp6) for listening sockets on the given ports and maps each socket to
    the process that holds it (PID, command name, command line) and to the systemd unit whose cgroup contains that
    process, as C(ss -ltnp) shows, without parsing its output.
  - With O(expect), reports every listener on a port that belongs to another unit than the expected one in
    RV(foreign), so a caller can refuse a port another program holds before it changes anything, and prove after
    a restart that the listening socket is its own service's.
  - For each expected unit, reads its C(MainPID) and state from systemd (RV(units)) and reports in RV(owned) whether
    that very process holds a listening socket on the port (the proof that a restarted service, not some other
    program, answers).
  - The module only reads; it never changes the host.
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  ports:
    description:
      - TCP ports to look at.
    type: list
    elements: int
    required: true
  expect:
    description:
      - 'Map of port to the systemd unit that may listen on it, for example C(8080: llama-server@0.service).'
      - A listener on such a port held by any other unit or process, or by a process this host cannot see, is listed
        in RV(foreign).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: linux
notes:
  - Run it as root to see the processes of other users; without that, their sockets are reported with PID 0.
"""

EXAMPLES = r"""
- name: Who holds port 8080?
  slm.edge.listen_info:
    ports: [8080]
    expect:
      "8080": llama-server@0.service
  register: ports

- name: Refuse a port another program holds
  ansible.builtin.assert:
    that: ports.foreign | length == 0
    fail_msg: "{{ ports.foreign | map(attribute='holder') | join('; ') }}"
"""

RETURN = r"""
listeners:
  description: For each port asked for (as a string), the sockets listening on it.
  returned: always
  type: dict
  sample:
    "8080":
      - address: 127.0.0.1
        family: ipv4
        inode: 123456
        pid: 812
        comm: llama-server
        cmdline: [/opt/slm/llama.cpp/current/build/bin/llama-server, --model, /opt/slm/models/m.gguf]
        unit: llama-server@0.service
owned:
  description: For each port of O(expect), whether the expected unit's MainPID holds a listening socket on it.
  returned: always
  type: dict
  sample: {"8080": true}
units:
  description: >-
    What systemd reports for each unit of O(expect): C(main_pid) (0 when not running), C(active_state),
    C(sub_state), C(result) and C(n_restarts) (automatic restarts since the last explicit start, so a crash loop
    shows as a growing number).
  returned: always
  type: dict
  sample: {"llama-server@0.service": {"main_pid": 812, "active_state": active, "sub_state": running,
           "result": success, "n_restarts": 0}}
foreign:
  description: Listeners on a port of O(expect) that are not the expected unit's, each with a readable description.
  returned: always
  type: list
  elements: dict
  sample:
    - port: 8080
      expected: llama-server@0.service
      pid: 4242
      unit: session-3.scope
      holder: "0.0.0.0: pid 4242 (python3) in session-3.scope python3 -m http.server 8080"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slm.edge.plugins.module_utils.listen import describe, listeners


def foreign_listeners(found, expect):
    out = []
    for port, unit in sorted(expect.items()):
        for entry in found.get(str(port), []):
            if entry["pid"] and entry["unit"] == unit:
                continue
            out.append(
                {
                    "port": int(port),
                    "expected": unit,
                    "pid": entry["pid"],
                    "unit": entry["unit"],
                    "holder": describe(entry),
                }
            )
    return out


PROPS = {
    "MainPID": "main_pid",
    "ActiveState": "active_state",
    "SubState": "sub_state",
    "Result": "result",
    "NRestarts": "n_restarts",
}


def parse_show(text):
    """`systemctl show -p A -p B` output as the RV(units) dict of one unit."""
    out = {"main_pid": 0, "active_state": "", "sub_state": "", "result": "", "n_restarts": 0}
    for line in text.splitlines():
        key, _sep, value = line.partition("=")
        if key in PROPS:
            name = PROPS[key]
            out[name] = int(value) if name in ("main_pid", "n_restarts") and value.isdigit() else value
    return out


def unit_state(module, unit):
    systemctl = module.get_bin_path("systemctl")
    if not systemctl:
        return parse_show("")
    cmd = [systemctl, "show"] + ["--property=" + p for p in PROPS] + [unit]
    rc, out, _err = module.run_command(cmd)
    return parse_show(out if rc == 0 else "")


def owned_ports(found, expect, units):
    owned = {}
    for port, unit in expect.items():
        pid = units.get(unit, {}).get("main_pid", 0)
        owned[str(port)] = bool(pid) and any(e["pid"] == pid for e in found.get(str(port), []))
    return owned


def main():
    module = AnsibleModule(
        argument_spec={
            "ports": {"type": "list", "elements": "int", "required": True},
            "expect": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    ports = set(module.params["ports"]) | {int(p) for p in module.params["expect"]}
    found = listeners(ports)
    expect = {str(k): str(v) for k, v in module.params["expect"].items()}
    units = {unit: unit_state(module, unit) for unit in sorted(set(expect.values()))}
    module.exit_json(
        changed=False,
        listeners=found,
        foreign=foreign_listeners(found, expect),
        owned=owned_ports(found, expect, units),
        units=units,
    )


if __name__ == "__main__":
    main()
