# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""S3 without boto3: object URLs, AWS Signature Version 4 and the credential chain a host has.

Hosts fetch artifacts and models from S3 themselves, with their instance profile, and a node
that installs a published llama.cpp build must not need pip or boto3 for that. The standard
library is enough for a signed GET: this module builds the request and finds the credentials
(environment, shared credentials file, then IMDSv2), in that order, as botocore does.
Credentials never leave this module's return values except as the request's Authorization
header, and no message it writes holds them.
"""

from __future__ import annotations

import configparser
import datetime
import hashlib
import hmac
import json
import os
from urllib.parse import quote, unquote, urlsplit

from ansible.module_utils.urls import open_url

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
IMDS_DEFAULT = "http://169.254.169.254"


class CredentialsError(Exception):
    """No credentials were found, or the metadata service refused them."""


def region_or_default(region=None, env=None):
    """``region``, else AWS_REGION, AWS_DEFAULT_REGION, then us-east-1 (botocore's order)."""
    env = os.environ if env is None else env
    return region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def parse_s3_url(url):
    """``s3://bucket/key`` as (bucket, key); ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3" or not parts.netloc:
        raise ValueError("not an s3://bucket/key URL")
    key = parts.path.lstrip("/")
    return parts.netloc, key


def object_url(bucket, key, region, endpoint_url=None, query=""):
    """The HTTPS URL of an object: path style under ``endpoint_url`` (S3-compatible stores,
    Outposts access points, tests), otherwise AWS's regional endpoint (virtual-hosted, or
    path style for bucket names with dots, which the wildcard certificate does not cover)."""
    path = quote(key, safe="/~")
    suffix = ("?" + query) if query else ""
    if endpoint_url:
        return "%s/%s/%s%s" % (endpoint_url.rstrip("/"), bucket, path, suffix)
    if "." in bucket:
        return "https://s3.%s.amazonaws.com/%s/%s%s" % (region, bucket, path, suffix)
    return "https://%s.s3.%s.amazonaws.com/%s%s" % (bucket, region, path, suffix)


def _hmac(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical_query(query):
    pairs = []
    for item in query.split("&") if query else []:
        name, value = [*item.split("=", 1), ""][:2]
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join("%s=%s" % pair for pair in sorted(pairs))


def sign(method, url, region, credentials, headers=None, *, payload_sha256=EMPTY_SHA256, now=None, service="s3"):
    """The headers of a SigV4-signed request (``headers`` plus Host, X-Amz-Date,
    X-Amz-Content-SHA256, X-Amz-Security-Token when there is one, and Authorization).
    ``url`` must already be percent-encoded as it is sent (``object_url`` does that)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    parts = urlsplit(url)
    out = dict(headers or {})
    out["Host"] = parts.netloc
    out["X-Amz-Date"] = amz_date
    out["X-Amz-Content-SHA256"] = payload_sha256
    if credentials.get("token"):
        out["X-Amz-Security-Token"] = credentials["token"]
    signed = sorted((name.lower(), " ".join(str(value).strip().split())) for name, value in out.items())
    signed_names = ";".join(pair[0] for pair in signed)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            _canonical_query(parts.query),
            "".join("%s:%s\n" % pair for pair in signed),
            signed_names,
            payload_sha256,
        ]
    )
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _hmac(("AWS4" + credentials["secret_key"]).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        credentials["access_key"],
        scope,
        signed_names,
        signature,
    )
    return out


def _from_environment(env):
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return {
            "access_key": env["AWS_ACCESS_KEY_ID"],
            "secret_key": env["AWS_SECRET_ACCESS_KEY"],
            "token": env.get("AWS_SESSION_TOKEN") or None,
            "source": "environment",
        }
    return None


def _from_shared_file(env):
    path = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(os.path.expanduser("~"), ".aws", "credentials")
    profile = env.get("AWS_PROFILE") or "default"
    if not os.path.isfile(path):
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        raise CredentialsError("the shared credentials file %s cannot be parsed" % path) from None
    if not parser.has_option(profile, "aws_access_key_id") or not parser.has_option(profile, "aws_secret_access_key"):
        return None
    return {
        "access_key": parser.get(profile, "aws_access_key_id"),
        "secret_key": parser.get(profile, "aws_secret_access_key"),
        "token": parser.get(profile, "aws_session_token") if parser.has_option(profile, "aws_session_token") else None,
        "source": "shared credentials file (profile %s)" % profile,
    }


def _read(url, timeout, headers=None, method="GET"):
    # The metadata service is link-local: never through a proxy, never with netrc credentials.
    response = open_url(url, method=method, headers=headers or {}, timeout=timeout, use_proxy=False, use_netrc=False)
    try:
        return response.read().decode("utf-8")
    finally:
        response.close()


def _from_imds(endpoint, timeout):
    base = endpoint.rstrip("/") + "/latest"
    try:
        token = _read(base + "/api/token", timeout, {"X-aws-ec2-metadata-token-ttl-seconds": "300"}, "PUT").strip()
        headers = {"X-aws-ec2-metadata-token": token}
        roles = _read(base + "/meta-data/iam/security-credentials/", timeout, headers).split()
        if not roles:
            return None
        document = json.loads(_read(base + "/meta-data/iam/security-credentials/" + quote(roles[0]), timeout, headers))
    except (OSError, ValueError):
        return None
    if document.get("Code", "Success") != "Success" or not document.get("AccessKeyId"):
        raise CredentialsError(
            "the instance metadata service answered for role %s with %s" % (roles[0], document.get("Code"))
        )
    return {
        "access_key": document["AccessKeyId"],
        "secret_key": document["SecretAccessKey"],
        "token": document.get("Token"),
        "source": "instance profile %s" % roles[0],
    }


def find_credentials(env=None, imds_endpoint=None, timeout=2):
    """The host's AWS credentials: environment, shared credentials file, then the instance
    profile through IMDSv2 (``AWS_EC2_METADATA_SERVICE_ENDPOINT`` or ``imds_endpoint``).
    Returns a dict with access_key, secret_key, token and source (a description, no secret)."""
    env = os.environ if env is None else env
    found = _from_environment(env) or _from_shared_file(env)
    if found:
        return found
    if str(env.get("AWS_EC2_METADATA_DISABLED", "")).lower() == "true":
        raise CredentialsError(
            "no credentials in the environment or the shared credentials file, and AWS_EC2_METADATA_DISABLED is set"
        )
    endpoint = imds_endpoint or env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or IMDS_DEFAULT
    found = _from_imds(endpoint, timeout)
    if found:
        return found
    raise CredentialsError(
        "no AWS credentials on this host: none in the environment (AWS_ACCESS_KEY_ID), none in the shared credentials "
        "file, and no instance profile at %s. Attach an instance profile allowed s3:GetObject on the bucket" % endpoint
    )


def list_objects(bucket, prefix, region, credentials, *, endpoint_url=None, timeout=60, validate_certs=True):
    """Every object under ``prefix`` (ListObjectsV2, all pages) as dicts of key, size and etag."""
    from xml.etree import ElementTree  # noqa: PLC0415 - only listing needs it

    objects = []
    token = None
    while True:
        query = "list-type=2&prefix=" + quote(prefix, safe="")
        if token:
            query += "&continuation-token=" + quote(token, safe="")
        url = object_url(bucket, "", region, endpoint_url, query=query)
        response = open_url(
            url,
            headers=sign("GET", url, region, credentials),
            timeout=timeout,
            validate_certs=validate_certs,
            use_netrc=False,
            decompress=False,
        )
        try:
            # expat resolves no external entities and bounds entity expansion (Python 3.7.1+).
            root = ElementTree.fromstring(response.read())  # noqa: S314
        finally:
            response.close()
        space = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for item in root.findall(space + "Contents"):
            objects.append(
                {
                    "key": item.findtext(space + "Key"),
                    "size": int(item.findtext(space + "Size") or 0),
                    "etag": (item.findtext(space + "ETag") or "").strip('"'),
                }
            )
        token = root.findtext(space + "NextContinuationToken")
        if root.findtext(space + "IsTruncated") != "true" or not token:
            return objects
