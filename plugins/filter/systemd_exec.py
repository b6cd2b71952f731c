# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.systemd_exec: an argument vector as a systemd ExecStart= value, exactly."""

from __future__ import annotations

DOCUMENTATION = r"""
name: systemd_exec
short_description: Quote an argument vector for a systemd ExecStart= line so every argument arrives unchanged
version_added: 0.2.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - Turns a list of arguments into the value of a systemd C(ExecStart=) setting such that the process receives
    exactly those arguments, whatever they contain (spaces, quotes, C(#), C(=), C($), C(%), C(;), non-ASCII).
  - Each argument is put in double quotes with C(\\) and C(") escaped, C($) doubled (no environment expansion)
    and C(%) doubled (no specifier expansion); an argument that is exactly C(;) is escaped so it is not read as a
    command separator.
  - Arguments with a new line, a carriage return or a NUL byte are refused (systemd cannot pass them safely).
  - The first element (the executable) must be an absolute path.
options:
  _input:
    description: The argument vector, executable first.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Render an ExecStart line
  ansible.builtin.copy:
    dest: /etc/systemd/system/app.service.d/10-exec.conf
    content: |
      [Service]
      ExecStart=
      ExecStart={{ ['/usr/bin/app', '--alias', 'tiny llama'] | slm.edge.systemd_exec }}
    mode: "0644"
"""

RETURN = r"""
_value:
  description: The quoted command line.
  type: str
"""

from ansible.errors import AnsibleFilterError


def _quote(arg):
    text = str(arg)
    if any(c in text for c in "\n\r\0"):
        raise AnsibleFilterError("systemd_exec: argument %r has a new line or NUL byte; systemd cannot pass it" % text)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return '"' + text + '"'


def systemd_exec(argv):
    if not isinstance(argv, (list, tuple)) or not argv:
        raise AnsibleFilterError("systemd_exec: expected a non-empty list of arguments, got %r" % (argv,))
    exe = str(argv[0])
    if not exe.startswith("/") or any(c.isspace() for c in exe):
        raise AnsibleFilterError("systemd_exec: the executable must be an absolute path without spaces, got %r" % exe)
    return " ".join([exe.replace("%", "%%").replace("$", "$$")] + [_quote(a) for a in argv[1:]])


class FilterModule:
    def filters(self):
        return {"systemd_exec": systemd_exec}
