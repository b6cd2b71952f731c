"""slm.edge.cidr_review: ingress CIDRs parsed with ipaddress, normalized, and refused when open or malformed."""

from __future__ import annotations

import pytest
from ansible_collections.slm.edge.plugins.filter.cidr_review import FilterModule, cidr_review

NAME = "ec2_provision_ingress_cidrs"


def review(cidrs):
    return cidr_review(cidrs, name=NAME)


def test_registered_under_its_name():
    assert FilterModule().filters()["cidr_review"] is cidr_review


def test_good_networks_are_normalized_deduplicated_and_split_by_version():
    got = review(["10.0.0.0/16", " 10.0.0.0/16 ", "2001:DB8:0::/32", "192.168.1.7/32", "2001:db8::/32", "fd00::/8"])
    assert got["problems"] == []
    assert got["networks"] == ["10.0.0.0/16", "2001:db8::/32", "192.168.1.7/32", "fd00::/8"]
    assert got["ipv4"] == ["10.0.0.0/16", "192.168.1.7/32"]
    assert got["ipv6"] == ["2001:db8::/32", "fd00::/8"]


def test_empty_list_is_fine():
    assert review([]) == {"networks": [], "ipv4": [], "ipv6": [], "problems": []}


@pytest.mark.parametrize(
    ("cidr", "whole"),
    [
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("10.0.0.0/0", "0.0.0.0/0"),
        ("255.255.255.255/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("0::0/0", "::/0"),
        ("2001:db8::/0", "::/0"),
        ("0:0:0:0:0:0:0:0/0", "::/0"),
    ],
)
def test_whole_address_space_is_refused_whatever_the_spelling(cidr, whole):
    got = review(["10.1.0.0/16", cidr])
    assert len(got["problems"]) == 1, got
    msg = got["problems"][0]
    assert msg.startswith(f"{NAME} has {cidr}")
    assert f"{whole} is refused" in msg
    assert whole in got["networks"]


@pytest.mark.parametrize(
    ("cidrs", "whole"),
    [
        (["0.0.0.0/1", "128.0.0.0/1"], "0.0.0.0/0"),
        (["128.0.0.0/1", "10.0.0.0/8", "0.0.0.0/1"], "0.0.0.0/0"),
        (["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"], "0.0.0.0/0"),
        (["::/1", "8000::/1"], "::/0"),
        (["::/1", "8000::/2", "c000::/2"], "::/0"),
    ],
)
def test_networks_that_together_cover_everything_are_refused(cidrs, whole):
    got = review(cidrs)
    assert len(got["problems"]) == 1, got
    assert "together they cover every" in got["problems"][0]
    assert f"{whole} is refused" in got["problems"][0]


def test_half_of_the_space_is_not_the_whole():
    assert review(["0.0.0.0/1", "128.0.0.0/2", "::/1"])["problems"] == []


def test_ipv4_and_ipv6_halves_do_not_add_up_across_versions():
    assert review(["0.0.0.0/1", "8000::/1"])["problems"] == []


@pytest.mark.parametrize(
    ("cidr", "network", "host"),
    [
        ("10.0.0.1/8", "10.0.0.0/8", "10.0.0.1/32"),
        ("192.168.1.130/25", "192.168.1.128/25", "192.168.1.130/32"),
        ("2001:db8::1/32", "2001:db8::/32", "2001:db8::1/128"),
    ],
)
def test_host_bits_are_refused_with_the_normalized_network(cidr, network, host):
    got = review([cidr])
    assert got["problems"] == [
        f"{NAME} has {cidr}: its host bits are set; write the network {network} (or {host} for the one host)."
    ]
    assert got["networks"] == [network]


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "10.0.0.0/33",
        "10.0.0/8",
        "300.1.1.1/8",
        "010.0.0.0/8",
        "fe80::1%eth0/64",
        "",
        "10.0.0.0/-1",
        "::/129",
    ],
)
def test_garbage_is_refused_naming_the_value(bad):
    got = review(["10.0.0.0/16", bad])
    assert len(got["problems"]) == 1, got
    msg = got["problems"][0]
    assert msg.startswith(f'{NAME} has ["{bad}"]: not networks with a prefix length')
    assert "10.0.0.0/16" in msg  # the example of the fix
    assert "is refused" not in msg
    assert got["networks"] == ["10.0.0.0/16"]


def test_non_strings_are_garbage():
    got = review([5, None, {"cidr": "10.0.0.0/8"}])
    assert len(got["problems"]) == 1
    assert got["problems"][0].startswith(f'{NAME} has [5, null, {{"cidr": "10.0.0.0/8"}}]')


def test_a_bare_address_gets_its_host_prefix_suggested():
    (msg,) = review(["10.0.0.5", "2001:db8::5"])["problems"]
    assert '["10.0.0.5", "2001:db8::5"]' in msg
    assert "10.0.0.5/32" in msg
    assert "2001:db8::5/128" in msg


def test_ipv4_mapped_ipv6_is_refused():
    (msg,) = review(["::ffff:0:0/96"])["problems"]
    assert "IPv4-mapped" in msg
    assert review(["::ffff:10.0.0.0/104"])["problems"][0].startswith(f"{NAME} has ::ffff:10.0.0.0/104")


@pytest.mark.parametrize("value", ["10.0.0.0/16", {"a": 1}, 7])
def test_a_non_list_is_one_problem(value):
    got = review(value)
    assert got["networks"] == []
    (msg,) = got["problems"]
    assert msg.startswith(f"{NAME} must be a YAML list of networks")


def test_every_problem_is_reported_at_once():
    got = review(["0.0.0.0/0", "10.0.0.1/8", "nope", "::/0"])
    assert len(got["problems"]) == 4


def test_the_fix_can_be_given():
    (msg,) = cidr_review(["::/0"], name="x", fix="set the load balancer group")["problems"]
    assert msg == "x has ::/0: ::/0 is refused, set the load balancer group."
