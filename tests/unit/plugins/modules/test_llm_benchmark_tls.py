"""slm.edge.llm_benchmark over https: verified against ca_path, refused with another CA, never unverified."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from ansible_collections.slm.edge.plugins.modules import llm_benchmark
from test_llm_benchmark import FakeLlamaServer, params


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", *ec, "-days", "2", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-subj", f"/CN={ca}", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "server.ext", "-out", "server.pem", cwd=d)  # fmt: skip
    return d


def _tls(srv, pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    srv.httpd.socket = ctx.wrap_socket(srv.httpd.socket, server_side=True)
    srv.url = srv.url.replace("http://", "https://")
    return srv


def test_https_verified_with_ca_path(pki):
    with _tls(FakeLlamaServer(tokens=3), pki) as srv:
        endpoint = llm_benchmark.Endpoint(srv.url, ca_path=str(pki / "ca.pem"))
        rec = llm_benchmark.stream_chat(endpoint, llm_benchmark.request_body("chatbot", 0, params([srv.url])), 5)
    assert rec["error"] is None, rec
    assert rec["status"] == 200


@pytest.mark.parametrize("ca", ["other-ca.pem", None])
def test_https_refused_with_another_ca_or_the_system_store(pki, ca):
    with _tls(FakeLlamaServer(tokens=3), pki) as srv:
        endpoint = llm_benchmark.Endpoint(srv.url, ca_path=str(pki / ca) if ca else None)
        rec = llm_benchmark.stream_chat(endpoint, llm_benchmark.request_body("chatbot", 0, params([srv.url])), 5)
    assert rec["error"] and "CERTIFICATE_VERIFY_FAILED" in rec["error"], rec
