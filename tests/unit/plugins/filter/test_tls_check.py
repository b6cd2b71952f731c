"""slm.edge.tls_check: PEM parsing, key match, validity, names and the chain, without echoing the key."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from ansible_collections.slm.edge.plugins.filter.tls_check import tls_check
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pem_key(key, password=None):
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server(ca_key, ca_cert, names=("localhost",), ips=("127.0.0.1",), days=(-1, 30), rsa_key=False):
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("llama-server"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + datetime.timedelta(days=days[0]))
        .not_valid_after(NOW + datetime.timedelta(days=days[1]))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def pki():
    ca_key, ca = make_ca()
    key, cert = make_server(ca_key, ca)
    _other_ca_key, other_ca = make_ca("other CA")
    return {
        "ca_key": ca_key,
        "ca": _pem_cert(ca),
        "ca_cert": ca,
        "cert": _pem_cert(cert),
        "key": _pem_key(key),
        "other_ca": _pem_cert(other_ca),
        "other_key": _pem_key(ec.generate_private_key(ec.SECP256R1())),
    }


def _errors(out):
    return {k: v for k, v in out.items() if k in ("cert", "key", "match", "ca", "chain") and v}


def test_good_setup_passes_with_ca_and_host(pki):
    out = tls_check(pki["cert"], key=pki["key"], ca=pki["ca"], host="127.0.0.1")
    assert _errors(out) == {}
    assert "localhost" in out["names"] and "127.0.0.1" in out["names"]
    assert out["subject"] == "CN=llama-server"


def test_good_setup_by_host_name_and_without_ca(pki):
    assert _errors(tls_check(pki["cert"], key=pki["key"], ca=pki["ca"], host="localhost")) == {}
    assert _errors(tls_check(pki["cert"], key=pki["key"])) == {}


def test_rsa_key_and_chain_with_intermediate_in_cert(pki):
    key, cert = make_server(pki["ca_key"], pki["ca_cert"], rsa_key=True)
    out = tls_check(_pem_cert(cert) + pki["ca"], key=_pem_key(key), ca=pki["ca"], host="localhost")
    assert _errors(out) == {}


def test_another_ca_fails_the_chain(pki):
    out = tls_check(pki["cert"], key=pki["key"], ca=pki["other_ca"], host="127.0.0.1")
    assert out["chain"], out
    assert "issuer" in out["chain"] or "verify" in out["chain"]


def test_key_not_matching_cert(pki):
    out = tls_check(pki["cert"], key=pki["other_key"], ca=pki["ca"], host="127.0.0.1")
    assert "does not belong" in out["match"]
    assert out["chain"] == ""


@pytest.mark.parametrize("garbage", ["not a pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ""])
def test_garbage_certificate(pki, garbage):
    out = tls_check(garbage, key=pki["key"])
    assert out["cert"]
    assert out["match"] == ""


@pytest.mark.parametrize(
    ("key", "expect"),
    [
        ("", "no private key"),
        ("garbage", "no PEM private key block"),
        ("-----BEGIN PRIVATE KEY-----\nAAAAsecretAAAA\n-----END PRIVATE KEY-----\n", "does not parse"),
    ],
)
def test_garbage_key_never_echoed(pki, key, expect):
    out = tls_check(pki["cert"], key=key)
    assert expect in out["key"]
    assert "secret" not in repr(out)


def test_encrypted_key(pki):
    key = ec.generate_private_key(ec.SECP256R1())
    out = tls_check(pki["cert"], key=_pem_key(key, b"pass phrase"))
    assert "encrypted" in out["key"]


def test_two_keys(pki):
    assert "2 private key blocks" in tls_check(pki["cert"], key=pki["key"] + pki["other_key"])["key"]


def test_key_pasted_into_cert(pki):
    assert "PRIVATE KEY block" in tls_check(pki["cert"] + pki["key"], key=pki["key"])["cert"]


def test_expired_and_not_yet_valid(pki):
    _old_key, old = make_server(pki["ca_key"], pki["ca_cert"], days=(-10, -1))
    assert "expired" in tls_check(_pem_cert(old), key=pki["key"])["cert"]
    _future_key, future = make_server(pki["ca_key"], pki["ca_cert"], days=(2, 10))
    assert "not valid before" in tls_check(_pem_cert(future), key=pki["key"])["cert"]


def test_host_not_named(pki):
    out = tls_check(pki["cert"], key=pki["key"], ca=pki["ca"], host="llm.example.internal")
    assert "does not name llm.example.internal" in out["cert"]
    assert "localhost" in out["cert"]


def test_wildcard_and_ipv6(pki):
    key, cert = make_server(pki["ca_key"], pki["ca_cert"], names=("*.example.internal",), ips=("::1",))
    pem, kpem = _pem_cert(cert), _pem_key(key)
    assert _errors(tls_check(pem, key=kpem, ca=pki["ca"], host="llm.example.internal")) == {}
    assert _errors(tls_check(pem, key=kpem, ca=pki["ca"], host="::1")) == {}
    assert tls_check(pem, key=kpem, host="a.b.example.internal")["cert"]


def test_garbage_ca(pki):
    assert "CA bundle" in tls_check(pki["cert"], key=pki["key"], ca="junk")["ca"]
