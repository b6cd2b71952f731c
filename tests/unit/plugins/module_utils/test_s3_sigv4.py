"""s3_sigv4: the signature is botocore's, byte for byte, and credentials come in botocore's order."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from unittest import mock

import botocore.auth
import botocore.credentials
import pytest
from ansible_collections.slm.edge.plugins.module_utils import s3_sigv4
from botocore.awsrequest import AWSRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools"))
import fake_imds

NOW = datetime.datetime(2026, 12, 2, 6, 30, 15, tzinfo=datetime.UTC)
CREDS = {"access_key": "AKIAEXAMPLESLMEDGE01", "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token": None}


def botocore_headers(url, region, creds, headers):
    request = AWSRequest(method="GET", url=url, headers=dict(headers))
    signer = botocore.auth.S3SigV4Auth(
        botocore.credentials.Credentials(creds["access_key"], creds["secret_key"], creds.get("token")), "s3", region
    )
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        signer.add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize(
    ("bucket", "key", "endpoint", "headers", "token"),
    [
        ("slm-artifacts", "llama.cpp/b6123-cpu-0a1b2c3d4e-rocky9-x86_64.tar.gz", None, {}, None),
        ("slm.artifacts.eu", "a b/ü+c=d.json", None, {"Range": "bytes=1024-"}, None),
        ("models", "tiny/model.safetensors", "http://127.0.0.1:15994", {}, "FwoGZXIvYXdzEXAMPLETOKEN"),
        ("models", "list", "https://s3.outpost.example.internal", {"Range": "bytes=0-"}, "tok"),
    ],
)
def test_the_signature_is_the_one_botocore_makes(bucket, key, endpoint, headers, token):
    creds = dict(CREDS, token=token)
    url = s3_sigv4.object_url(bucket, key, "eu-central-1", endpoint)
    ours = s3_sigv4.sign("GET", url, "eu-central-1", creds, headers, now=NOW)
    theirs = botocore_headers(url, "eu-central-1", creds, headers)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20261202T063015Z"
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


def test_a_query_string_is_signed_in_canonical_order():
    url = s3_sigv4.object_url("models", "", "us-east-1", "http://127.0.0.1:9", query="prefix=tiny%2F&list-type=2")
    ours = s3_sigv4.sign("GET", url, "us-east-1", CREDS, now=NOW)
    assert ours["Authorization"] == botocore_headers(url, "us-east-1", CREDS, {})["Authorization"]


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        ("plain-bucket", "https://plain-bucket.s3.ap-southeast-1.amazonaws.com/k/x.gguf"),
        ("dotted.bucket", "https://s3.ap-southeast-1.amazonaws.com/dotted.bucket/k/x.gguf"),
    ],
)
def test_object_urls_use_the_regional_endpoint(bucket, expected):
    assert s3_sigv4.object_url(bucket, "k/x.gguf", "ap-southeast-1") == expected


@pytest.mark.parametrize("url", ["https://b/k", "s3:///key", "s3:/b/k"])
def test_only_s3_urls_with_a_bucket_parse(url):
    with pytest.raises(ValueError, match="s3://bucket/key"):
        s3_sigv4.parse_s3_url(url)


def test_the_environment_comes_first(tmp_path):
    shared = tmp_path / "credentials"
    shared.write_text("[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = filesecret\n")
    env = {
        "AWS_ACCESS_KEY_ID": "FROMENV",
        "AWS_SECRET_ACCESS_KEY": "envsecret",
        "AWS_SHARED_CREDENTIALS_FILE": str(shared),
    }
    assert s3_sigv4.find_credentials(env)["access_key"] == "FROMENV"
    del env["AWS_ACCESS_KEY_ID"]
    found = s3_sigv4.find_credentials(env)
    assert found["access_key"] == "FROMFILE" and found["token"] is None
    assert found["source"] == "shared credentials file (profile default)"


@pytest.fixture
def imds():
    server, url = fake_imds.start()
    yield url
    server.shutdown()


def test_the_instance_profile_comes_last_through_imdsv2(imds, tmp_path):
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds}
    found = s3_sigv4.find_credentials(env)
    assert found == {
        "access_key": "ASIAIMDS",
        "secret_key": "imdssecret",
        "token": "t0k",
        "source": "instance profile slm-node-role",
    }
    assert fake_imds.Handler.seen[0] == ("PUT", "/latest/api/token", "300")
    assert all(token == fake_imds.Handler.token for method, path, token in fake_imds.Handler.seen[1:])


def test_no_credentials_anywhere_is_an_error_that_says_what_to_attach(tmp_path):
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9",
    }
    with pytest.raises(s3_sigv4.CredentialsError, match="Attach an instance profile"):
        s3_sigv4.find_credentials(env, timeout=0.5)
    with pytest.raises(s3_sigv4.CredentialsError, match="AWS_EC2_METADATA_DISABLED"):
        s3_sigv4.find_credentials(dict(env, AWS_EC2_METADATA_DISABLED="true"))
