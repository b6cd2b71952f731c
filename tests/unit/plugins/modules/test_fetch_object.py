"""slm.edge.fetch_object: real downloads from a local server that breaks off, and from S3 (moto) with IMDSv2."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from ansible_collections.slm.edge.plugins.module_utils import s3_sigv4
from ansible_collections.slm.edge.plugins.modules import fetch_object, s3_objects_info
from ansible_module_runner import run_module
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
import fake_imds

BODY = os.urandom(3 * 1024 * 1024 + 123)
SHA = hashlib.sha256(BODY).hexdigest()


class Server(BaseHTTPRequestHandler):
    """Serves BODY at /model.bin with Range; the first `breaks` answers stop after `cut` bytes."""

    breaks = 0
    cut = 1024 * 1024
    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/model.bin":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        asked = self.headers.get("Range")
        Server.ranges.append(asked)
        start = int(asked.split("=")[1].rstrip("-")) if asked else 0
        if start >= len(BODY):
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if asked else 200)
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        if Server.breaks:
            Server.breaks -= 1
            self.wfile.write(BODY[start : start + Server.cut])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(BODY[start:])


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    Server.breaks, Server.ranges = 0, []
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_a_download_that_breaks_off_resumes_with_range_and_is_verified(server, tmp_path):
    Server.breaks = 2
    dest = tmp_path / "model.bin"
    progress = tmp_path / "progress.log"
    args = {
        "url": server + "/model.bin",
        "dest": str(dest),
        "sha256": SHA,
        "progress_file": str(progress),
        "retries": 3,
    }
    result = run_module(fetch_object.main, args)
    assert result["changed"] is True and result["sha256"] == SHA and dest.read_bytes() == BODY
    assert Server.ranges == [None, "bytes=1048576-", "bytes=2097152-"]
    assert result["attempts"] == 3 and not (tmp_path / "model.bin.partial").exists()
    assert progress.read_text().splitlines()[-1].startswith("downloaded 3.0 MiB in ")
    again = run_module(fetch_object.main, args)
    assert again["changed"] is False and Server.ranges == [None, "bytes=1048576-", "bytes=2097152-"]


def test_a_run_interrupted_earlier_carries_on_from_its_partial_file(server, tmp_path):
    dest = tmp_path / "model.bin"
    (tmp_path / "model.bin.partial").write_bytes(BODY[:2000000])
    result = run_module(fetch_object.main, {"url": server + "/model.bin", "dest": str(dest), "sha256": SHA})
    assert Server.ranges == ["bytes=2000000-"] and result["resumed_from"] == 2000000 and dest.read_bytes() == BODY


def test_too_many_breaks_keep_the_bytes_and_say_rerun(server, tmp_path):
    Server.breaks = 5
    result = run_module(
        fetch_object.main,
        {"url": server + "/model.bin", "dest": str(tmp_path / "m"), "sha256": SHA, "retries": 1},
        expect_failure=True,
    )
    assert "rerun to resume" in result["msg"] and (tmp_path / "m.partial").stat().st_size == 2 * Server.cut


def test_a_wrong_checksum_removes_the_download_and_names_both(server, tmp_path):
    result = run_module(
        fetch_object.main,
        {"url": server + "/model.bin", "dest": str(tmp_path / "m"), "sha256": "0" * 64},
        expect_failure=True,
    )
    assert SHA in result["msg"] and "0" * 64 in result["msg"]
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.partial").exists()


def test_missing_is_an_answer_only_when_asked(server, tmp_path):
    args = {"url": server + "/nothing.json", "dest": str(tmp_path / "n")}
    assert run_module(fetch_object.main, dict(args, missing_ok=True))["found"] is False
    assert "HTTP 404" in run_module(fetch_object.main, args, expect_failure=True)["msg"]


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://user:secretpass@mirror.example/x", "carries credentials"),
        ("ftp://mirror.example/x", "is not https://"),
        ("s3:///key", "s3://bucket/key"),
    ],
)
def test_bad_urls_are_refused_without_showing_secrets(url, named, tmp_path):
    result = run_module(fetch_object.main, {"url": url, "dest": str(tmp_path / "x")}, expect_failure=True)
    assert named in result["msg"] and "secretpass" not in result["msg"]


@pytest.fixture
def s3(monkeypatch, tmp_path):
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto._server.server_port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
    imds, imds_url = fake_imds.start()
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    client.create_bucket(Bucket="slm-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    client.put_object(Bucket="slm-artifacts", Key="llama.cpp/a b.tar.gz", Body=BODY)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds_url)
    yield endpoint
    imds.shutdown()
    moto.stop()


def test_s3_objects_come_signed_with_the_instance_profile(s3, tmp_path):
    args = {
        "url": "s3://slm-artifacts/llama.cpp/a b.tar.gz",
        "endpoint_url": s3,
        "region": "eu-central-1",
        "dest": str(tmp_path / "a.tar.gz"),
        "sha256": SHA,
    }
    result = run_module(fetch_object.main, args)
    assert result["changed"] is True and (tmp_path / "a.tar.gz").read_bytes() == BODY
    assert result["credentials_source"] == "instance profile slm-node-role"
    assert "imdssecret" not in repr(result) and "ASIAIMDS" not in repr(result)
    assert ("PUT", "/latest/api/token", "300") in fake_imds.Handler.seen
    missing = run_module(
        fetch_object.main,
        dict(args, url="s3://slm-artifacts/none.json", dest=str(tmp_path / "none.json"), missing_ok=True),
    )
    assert missing["found"] is False


def test_the_host_lists_a_prefix_itself_every_page(s3, monkeypatch):
    client = boto3.client(
        "s3", endpoint_url=s3, region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    for number in range(3):
        client.put_object(Bucket="slm-artifacts", Key=f"models/tiny/part-{number}.bin", Body=b"x" * (number + 1))
    original = s3_sigv4.object_url
    asked = []

    def one_per_page(bucket, key, region, endpoint_url=None, query=""):
        asked.append(query)
        return original(bucket, key, region, endpoint_url, query=f"{query}&max-keys=1" if query else "")

    monkeypatch.setattr(s3_sigv4, "object_url", one_per_page)
    args = {"bucket": "slm-artifacts", "prefix": "models/tiny/", "region": "eu-central-1", "endpoint_url": s3}
    result = run_module(s3_objects_info.main, args)
    assert [item["key"] for item in result["objects"]] == [f"models/tiny/part-{n}.bin" for n in range(3)]
    assert [item["size"] for item in result["objects"]] == [1, 2, 3]
    assert result["objects"][0]["etag"] == hashlib.md5(b"x").hexdigest()
    assert result["credentials_source"] == "instance profile slm-node-role"
    assert len(asked) == 3 and "continuation-token=" in asked[-1]


def test_a_size_other_than_the_listing_is_removed(server, tmp_path):
    args = {"url": f"{server}/model.bin", "dest": str(tmp_path / "m"), "size": len(BODY) + 1}
    result = run_module(fetch_object.main, args, expect_failure=True)
    assert f"is {len(BODY)} bytes, expected {len(BODY) + 1}" in result["msg"] and not (tmp_path / "m.partial").exists()
    assert run_module(fetch_object.main, dict(args, size=len(BODY)))["size"] == len(BODY)
