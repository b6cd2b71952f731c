# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.cidr_review: parse, normalize and judge a list of ingress CIDRs (IPv4 and IPv6)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: cidr_review
short_description: Normalize a list of ingress CIDRs and say what is wrong with it
version_added: 0.3.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - Parses every item with Python's C(ipaddress), IPv4 and IPv6 alike, and returns the normalized networks
    (C(2001:DB8:0::/32) gives C(2001:db8::/32)), without duplicates, in the order given.
  - Lists a problem, naming the variable and the value, for every item that is not a network written with its
    prefix length (garbage, a bare address, a scoped IPv6 address, a number), for every network whose host bits are set
    (C(10.0.0.1/8); the message gives the normalized C(10.0.0.0/8)), for IPv4-mapped IPv6 networks
    (C(::ffff:0:0/96) is IPv4 written as IPv6), and when one network or several together cover the whole IPv4
    or IPv6 address space, whatever the spelling (C(0.0.0.0/0), C(10.0.0.0/0), C(::/0), C(0::0/0),
    C(0.0.0.0/1) with C(128.0.0.0/1)).
  - The problems are sentences for a validate rule; an empty list means the networks may be used.
options:
  _input:
    description: The CIDRs, a list of strings. A string instead of a list is reported as a problem.
    type: list
    elements: raw
    required: true
  name:
    description: Name of the variable, used in the messages.
    type: str
    default: cidrs
  fix:
    description: What to do instead, ending the message that refuses a network covering a whole address space.
    type: str
    default: list only the networks of the clients
"""

EXAMPLES = r"""
- name: Refuse open or malformed ingress networks
  ansible.builtin.assert:
    that: __review.problems | length == 0
    fail_msg: "{{ __review.problems | join(' | ') }}"
  vars:
    __review: "{{ ec2_provision_ingress_cidrs | slm.edge.cidr_review(name='ec2_provision_ingress_cidrs') }}"

- name: IPv4 and IPv6 rules of a security group
  ansible.builtin.set_fact:
    __cidr_ip: "{{ (ec2_provision_ingress_cidrs | slm.edge.cidr_review).ipv4 }}"
    __cidr_ipv6: "{{ (ec2_provision_ingress_cidrs | slm.edge.cidr_review).ipv6 }}"
"""

RETURN = r"""
_value:
  description: The review.
  type: dict
  contains:
    networks:
      description: Every item that parsed, normalized (host bits cleared), without duplicates, in input order.
      type: list
      elements: str
    ipv4:
      description: The IPv4 ones among C(networks).
      type: list
      elements: str
    ipv6:
      description: The IPv6 ones among C(networks).
      type: list
      elements: str
    problems:
      description: One sentence per problem, naming the variable, the value and the fix; empty when all is well.
      type: list
      elements: str
"""

import ipaddress
import json

WHOLE = {4: "0.0.0.0/0", 6: "::/0"}
EXAMPLE = "such as 10.0.0.0/16 or 2001:db8:1234::/48"
OPEN_FIX = "list only the networks of the clients"


def _parse(item):
    """(network, problem-kind) for one item; the network is normalized when it parses at all."""
    if not isinstance(item, str):
        return None, "garbage"
    text = item.strip()
    if not text or "%" in text:
        return None, "garbage"
    if "/" not in text:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return None, "garbage"
        return None, "address"
    try:
        return ipaddress.ip_network(text, strict=True), None
    except ValueError:
        pass
    try:
        return ipaddress.ip_network(text, strict=False), "host_bits"
    except ValueError:
        return None, "garbage"


def cidr_review(cidrs, name="cidrs", fix=OPEN_FIX):
    name = str(name)
    fix = str(fix)
    if isinstance(cidrs, str | bytes) or not isinstance(cidrs, list | tuple):
        return {
            "networks": [],
            "ipv4": [],
            "ipv6": [],
            "problems": [
                '%s must be a YAML list of networks, not %s (with -e, as JSON: -e \'{"%s": ["10.0.0.0/16"]}\').'
                % (name, json.dumps(cidrs, default=str), name)
            ],
        }
    problems = []
    unparsed = []
    bare = []
    networks = []
    for item in cidrs:
        net, kind = _parse(item)
        if kind in ("garbage", "address"):
            unparsed.append(item)
            if kind == "address":
                address = ipaddress.ip_address(item.strip())
                bare.append("%s/%d" % (address, address.max_prefixlen))
            continue
        shown = item.strip()
        if net.prefixlen == 0:
            whole = WHOLE[net.version]
            same = "" if shown == whole else " (that is %s, every IPv%d address)" % (whole, net.version)
            problems.append("%s has %s%s: %s is refused, %s." % (name, shown, same, whole, fix))
        elif kind == "host_bits":
            problems.append(
                "%s has %s: its host bits are set; write the network %s (or %s/%d for the one host)."
                % (name, shown, net, ipaddress.ip_interface(shown).ip, net.max_prefixlen)
            )
        elif net.version == 6 and net.subnet_of(ipaddress.ip_network("::ffff:0:0/96")):
            problems.append(
                "%s has %s: an IPv4-mapped IPv6 network is IPv4 written as IPv6; write it as an IPv4 network."
                % (name, shown)
            )
        if str(net) not in networks:
            networks.append(str(net))
    if unparsed:
        hint = ""
        if bare:
            hint = " (an address needs its prefix length: %s for the one host)" % ", ".join(bare)
        problems.append(
            "%s has %s: not networks with a prefix length%s; give IPv4 or IPv6 networks with their prefix length, %s."
            % (name, json.dumps(unparsed, default=str), hint, EXAMPLE)
        )
    # Several networks that together cover a whole address space are as open as 0.0.0.0/0 or ::/0.
    parsed = [ipaddress.ip_network(n) for n in networks]
    for version in (4, 6):
        nets = [n for n in parsed if n.version == version]
        if any(n.prefixlen == 0 for n in nets):
            continue  # already said above
        if any(c.prefixlen == 0 for c in ipaddress.collapse_addresses(nets)):
            problems.append(
                "%s has %s: together they cover every IPv%d address (%s), and %s is refused, %s."
                % (name, ", ".join(str(n) for n in nets), version, WHOLE[version], WHOLE[version], fix)
            )
    return {
        "networks": networks,
        "ipv4": [str(n) for n in parsed if n.version == 4],
        "ipv6": [str(n) for n in parsed if n.version == 6],
        "problems": problems,
    }


class FilterModule:
    def filters(self):
        return {"cidr_review": cidr_review}
