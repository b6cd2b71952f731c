# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.http_url: the one rule from a bind address and port to a URL (IPv6-safe)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: http_url
short_description: Build the URL a client on the same host uses to reach a server bound to an address
version_added: 0.2.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - Brackets IPv6 addresses (C(::1) gives C(http://[::1]:8080)), and turns the wildcard addresses C(0.0.0.0) and
    C(::) into the matching loopback address, since a client cannot connect to a wildcard.
  - Host names and IPv4 addresses are used as they are.
options:
  _input:
    description: The address the server binds (llama_server_host) or a host name.
    type: str
    required: true
  port:
    description: TCP port.
    type: int
    required: true
  scheme:
    description: URL scheme.
    type: str
    default: http
  path:
    description: Path appended to the URL, with or without a leading C(/).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Health URL of replica 0
  ansible.builtin.uri:
    url: "{{ llama_server_host | slm.edge.http_url(8080, path='/health') }}"
"""

RETURN = r"""
_value:
  description: The URL.
  type: str
"""

import ipaddress

from ansible.errors import AnsibleFilterError

# A server bound to a wildcard is reached on the matching loopback address.
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def http_url(host, port, scheme="http", path=""):
    host = str(host).strip()
    host = WILDCARDS.get(host, host)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("http_url: port %r is not a number" % (port,)) from exc
    if not 0 < port < 65536:
        raise AnsibleFilterError("http_url: port %d is outside 1-65535" % port)
    try:
        if ipaddress.ip_address(host.split("%")[0]).version == 6:
            host = "[" + host + "]"
    except ValueError:
        pass
    path = str(path or "")
    if path and not path.startswith("/"):
        path = "/" + path
    return "%s://%s:%d%s" % (scheme, host, port, path)


class FilterModule:
    def filters(self):
        return {"http_url": http_url}
