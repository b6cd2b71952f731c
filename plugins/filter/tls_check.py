# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.tls_check: is a PEM certificate, key and CA bundle a TLS setup clients will accept?"""

from __future__ import annotations

DOCUMENTATION = r"""
name: tls_check
short_description: Check a PEM server certificate, its private key and a CA bundle before they are deployed
version_added: 0.3.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - Runs on the controller, with the Python C(cryptography) library that ansible-core itself depends on, and the
    controller's OpenSSL through Python's C(ssl) module.
  - Parses the certificate (the server certificate first, then any intermediates) and the private key, checks that
    the key belongs to the certificate, that the certificate is valid now and names O(host).
  - With O(ca), runs a TLS handshake in memory (no socket, no network) between a server holding the certificate and
    key and a client that trusts only O(ca) and checks the host name, exactly as a verifying client would.
  - Never returns or raises with any part of the key; every message describes the problem, not the content.
options:
  _input:
    description: The server certificate in PEM, optionally followed by intermediate certificates.
    type: str
    required: true
  key:
    description: The private key in PEM (not encrypted).
    type: str
    default: ""
  ca:
    description: CA certificates (PEM) clients verify the chain with; empty skips the chain check.
    type: str
    default: ""
  host:
    description: Host name or IP address clients connect to; empty skips the name check.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Refuse a key that does not belong to the certificate
  ansible.builtin.assert:
    that: (__tls.cert ~ __tls.key ~ __tls.match ~ __tls.chain) | length == 0
  vars:
    __tls: >-
      {{ llama_server_tls_cert | slm.edge.tls_check(key=llama_server_tls_key, ca=llama_server_tls_ca,
         host='127.0.0.1') }}
  no_log: true
"""

RETURN = r"""
_value:
  description: What was found; each C(*) error is an empty string when that part is fine.
  type: dict
  contains:
    cert:
      description: Why the certificate cannot be used (not PEM, expired, not naming O(host), holds a private key).
      type: str
    key:
      description: Why the private key cannot be used (missing, not PEM, encrypted, several keys).
      type: str
    match:
      description: Set when the key does not belong to the (first) certificate.
      type: str
    ca:
      description: Why O(ca) cannot be used.
      type: str
    chain:
      description: Why a client trusting only O(ca) would refuse the server (the OpenSSL verify message).
      type: str
    subject:
      description: Subject of the server certificate.
      type: str
    names:
      description: DNS names and IP addresses the certificate is valid for (subjectAltName).
      type: list
      elements: str
    not_after:
      description: End of validity of the server certificate (ISO 8601, UTC).
      type: str
"""

import datetime
import ipaddress
import os
import re
import ssl
import tempfile

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - ansible-core requires cryptography
    HAS_CRYPTOGRAPHY = False

CERT_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
KEY_BEGIN = re.compile(r"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----")


def _certs(pem, what):
    """Every certificate of a PEM text, or an error message."""
    blocks = CERT_BLOCK.findall(pem or "")
    if not blocks:
        return None, "%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)" % what
    out = []
    for index, block in enumerate(blocks):
        try:
            out.append(x509.load_pem_x509_certificate(block.encode("ascii", "replace")))
        except ValueError:
            return None, "%s: PEM certificate %d of %d does not parse (damaged or not base64 DER)" % (
                what,
                index + 1,
                len(blocks),
            )
    return out, ""


def _not_after(cert):
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _not_before(cert):
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def _names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def _host_matches(host, dns, ips):
    host = host.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(host.split("%")[0])) in ips
    except ValueError:
        pass
    host = host.lower().rstrip(".")
    for entry in dns:
        name = entry.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _handshake(cert_pem, key_pem, ca_pem, host):
    """A TLS handshake in memory: '' when a client trusting only ca_pem accepts the server, else why not."""
    with tempfile.TemporaryDirectory(prefix="slm-tls-check-") as tmp:
        cert_file = os.path.join(tmp, "cert.pem")
        key_file = os.path.join(tmp, "key.pem")
        for path, text in ((cert_file, cert_pem), (key_file, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            server_ctx.load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, OSError) as exc:
            return "OpenSSL does not load the certificate with this key (%s)" % type(exc).__name__
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = bool(host)
    client_ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        client_ctx.load_verify_locations(cadata=ca_pem)
    except ssl.SSLError as exc:
        return "OpenSSL does not load the CA bundle (%s)" % exc.reason
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=host.strip("[]") or None)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _round in range(20):
        for name, side in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                return exc.verify_message or str(exc.reason)
            except ssl.SSLError as exc:
                if name == "client":
                    return "the handshake failed (%s)" % (exc.reason or type(exc).__name__)
                # The server sees the alert the client sent; the client's side says why.
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if done["client"]:
            return ""
    return "the handshake did not complete"


def tls_check(cert, key="", ca="", host=""):
    out = {"cert": "", "key": "", "match": "", "ca": "", "chain": "", "subject": "", "names": [], "not_after": ""}
    cert, key, ca, host = str(cert or ""), str(key or ""), str(ca or ""), str(host or "")
    if not HAS_CRYPTOGRAPHY:
        out["cert"] = "the controller's Python has no cryptography library (pip install cryptography)"
        return out

    certs, out["cert"] = _certs(cert, "the certificate")
    if certs:
        leaf = certs[0]
        out["subject"] = leaf.subject.rfc4514_string()
        out["not_after"] = _not_after(leaf).isoformat()
        dns, ips = _names(leaf)
        out["names"] = dns + ips
        now = datetime.datetime.now(datetime.timezone.utc)
        if KEY_BEGIN.search(cert):
            out["cert"] = "the certificate text also holds a PRIVATE KEY block: give the key only in the key variable"
        elif _not_after(leaf) < now:
            out["cert"] = "the certificate %s expired on %s" % (out["subject"], out["not_after"])
        elif _not_before(leaf) > now:
            out["cert"] = "the certificate %s is not valid before %s" % (out["subject"], _not_before(leaf).isoformat())
        elif host and not _host_matches(host, dns, ips):
            out["cert"] = "the certificate %s does not name %s (subjectAltName: %s)" % (
                out["subject"],
                host,
                ", ".join(out["names"]) or "none",
            )

    private = None
    found = KEY_BEGIN.findall(key)
    if not key.strip():
        out["key"] = "no private key was given"
    elif not found:
        out["key"] = "the private key text holds no PEM private key block"
    elif len(found) > 1:
        out["key"] = "the private key text holds %d private key blocks; give exactly one" % len(found)
    elif found[0] == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in key:
        out["key"] = "the private key is encrypted; llama-server cannot ask for a passphrase: decrypt it first"
    else:
        try:
            private = serialization.load_pem_private_key(key.encode("ascii", "replace"), password=None)
        except TypeError:
            out["key"] = "the private key is encrypted; llama-server cannot ask for a passphrase: decrypt it first"
        except Exception:  # never echo what the parser saw
            out["key"] = "the private key does not parse (damaged, or not a PEM private key)"

    if certs and private is not None:
        try:
            same = _spki(certs[0].public_key()) == _spki(private.public_key())
        except Exception:  # an unsupported key type is a mismatch, reported without content
            same = False
        if not same:
            out["match"] = (
                "the private key does not belong to the certificate %s (their public keys differ)" % (out["subject"])
            )

    if ca.strip():
        out["ca"] = _certs(ca, "the CA bundle")[1]
    if ca.strip() and not out["ca"] and certs and private is not None and not (out["cert"] or out["match"]):
        out["chain"] = _handshake(cert, key, ca, host)
    return out


class FilterModule:
    def filters(self):
        return {"tls_check": tls_check}
