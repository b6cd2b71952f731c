#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fetch_object
short_description: Download a file over HTTP(S) or from S3 on the host, resuming after an interruption
version_added: 0.3.0
description:
  - Downloads O(url) to O(dest) on the host. The bytes go to C(dest.partial) first. When a run, or the
    connection, breaks off, the next attempt asks for the rest with an HTTP C(Range) request, and a run
    after that carries on from the bytes already there.
  - The whole file is checked against O(sha256) before it replaces O(dest). If it does not match, the partial
    file is removed and the module fails, naming both checksums. A O(dest) that already has that checksum
    is left alone (changed=false).
  - C(s3://bucket/key) URLs are fetched by the host itself, with no boto3. The request is signed with AWS
    Signature Version 4, with the credentials botocore would find on the host. The environment comes
    first, then the shared credentials file, then the instance profile (IMDSv2). Nothing goes through the
    controller. No credential is a parameter, a return value or part of any message.
  - With O(progress_file), one line a second says the bytes done of the total and the rate, for
    M(slm.edge.job_progress) to show while the download runs async.
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  url:
    description:
      - C(https://...), C(http://...) or C(s3://bucket/key).
      - URLs with credentials in them (C(user:password@)) are refused; their user part is masked in messages.
    type: str
    required: true
  dest:
    description:
      - The file to write. Its directory must exist.
    type: path
    required: true
  sha256:
    description:
      - The expected sha256 of the whole file, hex. Without it the download is not verified, and an existing
        O(dest) is downloaded again only when O(force) is set.
    type: str
  size:
    description:
      - The expected size in bytes (for example from an S3 listing). A complete download of another size is
        removed and the module fails; an existing O(dest) of another size is downloaded again.
    type: int
  force:
    description:
      - Without O(sha256), download even when O(dest) exists.
    type: bool
    default: false
  missing_ok:
    description:
      - When the server answers 404 (S3 C(NoSuchKey)), return RV(found=false) instead of failing.
    type: bool
    default: false
  region:
    description:
      - The bucket's region, for C(s3://) URLs. Defaults to E(AWS_REGION), E(AWS_DEFAULT_REGION), then
        C(us-east-1).
    type: str
  endpoint_url:
    description:
      - An S3-compatible endpoint (path-style requests), for C(s3://) URLs. Without it, AWS's regional endpoint.
    type: str
  imds_endpoint:
    description:
      - The instance metadata service, for the instance profile's credentials. Defaults to
        E(AWS_EC2_METADATA_SERVICE_ENDPOINT), then C(http://169.254.169.254).
    type: str
  progress_file:
    description:
      - A file to write a progress line to, about once a second.
    type: path
  timeout:
    description:
      - Seconds a connection may stay silent before the attempt counts as broken.
    type: int
    default: 60
  retries:
    description:
      - Broken connections to resume from in one run (after 1, 2, 4... seconds, at most 10).
    type: int
    default: 5
  validate_certs:
    description:
      - Verify the server's certificate.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM bundle of the CAs to trust instead of the system's.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: ansible.builtin.get_url
  - module: amazon.aws.s3_object
  - module: slm.edge.job_progress
"""

EXAMPLES = r"""
- name: Fetch the published llama.cpp build from S3 with the instance profile
  slm.edge.fetch_object:
    url: s3://my-artifacts/llama.cpp/b6123-cuda-1a2b3c4d5e-rocky9-x86_64.tar.gz
    region: eu-central-1
    dest: /opt/slm/llama.cpp/artifacts/b6123-cuda-1a2b3c4d5e-rocky9-x86_64.tar.gz
    sha256: "{{ manifest.tarball_sha256 }}"

- name: Download a model, resumable, with progress
  slm.edge.fetch_object:
    url: https://mirror.example.internal/models/tiny.tar.gz
    dest: /opt/slm/models/tiny.download
    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    progress_file: /opt/slm/models/tiny.download.log
  async: 7200
  poll: 0
  register: download
"""

RETURN = r"""
found:
  description: False when the object does not exist and O(missing_ok) is set.
  returned: always
  type: bool
dest:
  description: The file written.
  returned: always
  type: str
size:
  description: Bytes of O(dest).
  returned: when found
  type: int
sha256:
  description: The sha256 of O(dest).
  returned: when found
  type: str
resumed_from:
  description: Bytes already there when the download started (0 for a fresh one).
  returned: when found
  type: int
attempts:
  description: Requests made, counting the resumed ones.
  returned: when found
  type: int
credentials_source:
  description: Where the S3 credentials came from (environment, shared credentials file, instance profile NAME).
  returned: for s3 URLs
  type: str
source:
  description: The URL, with any user part masked.
  returned: always
  type: str
"""

import hashlib
import os
import re
import socket
import time
from http.client import HTTPException
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible_collections.slm.edge.plugins.module_utils import s3_sigv4
from ansible_collections.slm.edge.plugins.module_utils.url_credentials import has_credentials, masked

CHUNK = 1024 * 1024


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def human(count):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return "%.1f %s" % (count, unit) if unit != "B" else "%d B" % count
        count /= 1024.0
    return "%d B" % count


class Fetcher:
    """One download: requests (signed for S3), resumes and the progress line."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.url = self.params["url"]
        self.s3 = self.url.lower().startswith("s3://")
        self.credentials = None
        if self.s3:
            try:
                self.bucket, self.key = s3_sigv4.parse_s3_url(self.url)
            except ValueError as error:
                module.fail_json(msg="fetch_object: url %s is %s" % (masked(self.url), error))
            self.region = s3_sigv4.region_or_default(self.params["region"])
            self.http_url = s3_sigv4.object_url(self.bucket, self.key, self.region, self.params["endpoint_url"])
        else:
            self.http_url = self.url

    def request(self, headers):
        if self.s3:
            if self.credentials is None:
                try:
                    self.credentials = s3_sigv4.find_credentials(imds_endpoint=self.params["imds_endpoint"])
                except s3_sigv4.CredentialsError as error:
                    self.module.fail_json(msg="fetch_object: cannot fetch %s: %s." % (self.url, error))
            headers = s3_sigv4.sign("GET", self.http_url, self.region, self.credentials, headers)
        # No transparent gunzip (the bytes must be the file's, for Range and the checksum) and, for
        # a signed S3 request, no netrc credentials replacing its Authorization header.
        return open_url(
            self.http_url,
            headers=headers,
            timeout=self.params["timeout"],
            validate_certs=self.params["validate_certs"],
            ca_path=self.params["ca_path"],
            use_netrc=not self.s3,
            decompress=False,
        )

    def explain(self, error):
        body = ""
        try:
            body = error.read(2048).decode("utf-8", "replace")
        except (OSError, HTTPException):
            pass
        code = re.search(r"<Code>([^<]+)</Code>", body)
        return "HTTP %d%s" % (error.code, " (%s)" % code.group(1) if code else "")


def write_progress(path, line):
    if path:
        with open(path, "a") as handle:
            handle.write(line + "\n")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            sha256=dict(type="str"),
            size=dict(type="int"),
            force=dict(type="bool", default=False),
            missing_ok=dict(type="bool", default=False),
            region=dict(type="str"),
            endpoint_url=dict(type="str"),
            imds_endpoint=dict(type="str"),
            progress_file=dict(type="path"),
            timeout=dict(type="int", default=60),
            retries=dict(type="int", default=5),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    url, dest = params["url"], params["dest"]
    shown = masked(url)
    if has_credentials(url):
        module.fail_json(
            msg="fetch_object: url %s carries credentials; give the host its own (instance profile, a netrc)" % shown
        )
    if not re.match(r"^(https?|s3)://", url, re.IGNORECASE):
        module.fail_json(msg="fetch_object: url %s is not https://, http:// or s3://" % shown)
    expected = (params["sha256"] or "").strip().lower() or None
    if expected and not re.match(r"^[0-9a-f]{64}$", expected):
        module.fail_json(msg="fetch_object: sha256 must be 64 hex digits, got %d characters" % len(expected))
    if not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
        module.fail_json(msg="fetch_object: the folder of dest %s does not exist" % dest)
    result = dict(changed=False, found=True, dest=dest, source=shown)
    fetcher = Fetcher(module)

    def finish(changed, sha256):
        """Exit with dest's attributes set; ``sha256`` is dest's, already computed (files can be GBs)."""
        file_args = module.load_file_common_arguments(params, path=dest)
        changed = module.set_fs_attributes_if_different(file_args, changed)
        result.update(changed=changed, size=os.path.getsize(dest), sha256=sha256)
        if fetcher.credentials:
            result["credentials_source"] = fetcher.credentials["source"]
        module.exit_json(**result)

    size = params["size"]
    if size is not None and size < 0:
        module.fail_json(msg="fetch_object: size must be 0 or more bytes, got %d" % size)
    have_sha256 = (
        file_sha256(dest) if os.path.exists(dest) and (size is None or os.path.getsize(dest) == size) else None
    )
    if have_sha256 and ((expected and have_sha256 == expected) or (not expected and not params["force"])):
        result.update(resumed_from=0, attempts=0)
        finish(False, have_sha256)
    if module.check_mode:
        result.update(changed=True)
        module.exit_json(**result)

    partial = dest + ".partial"
    started = time.time()
    attempts = 0
    broken = [0]

    def broke(why, kept):
        """Count a broken attempt: fail after `retries` of them, else wait 1, 2, 4... (at most 10) s."""
        broken[0] += 1
        if broken[0] > params["retries"]:
            module.fail_json(
                msg="fetch_object: %s broke off %d times (last: %s); %s are kept in %s, rerun to resume"
                % (shown, broken[0], why, human(kept), partial)
            )
        time.sleep(min(2 ** (broken[0] - 1), 10))

    resumed_from = os.path.getsize(partial) if os.path.exists(partial) else 0
    last_note = 0.0
    while True:
        have = os.path.getsize(partial) if os.path.exists(partial) else 0
        headers = {"Range": "bytes=%d-" % have} if have else {}
        attempts += 1
        try:
            response = fetcher.request(headers)
        except HTTPError as error:
            if error.code == 416 and have:
                break  # the partial file already holds every byte
            if error.code == 404 and params["missing_ok"]:
                result.update(found=False)
                module.exit_json(**result)
            module.fail_json(
                msg="fetch_object: %s answered %s for %s"
                % (fetcher.http_url if not fetcher.s3 else "S3", fetcher.explain(error), shown)
            )
        except (URLError, OSError, HTTPException) as error:
            broke(error, have)
            continue
        with response:
            status = response.status
            length = int(response.headers.get("Content-Length") or -1)
            if status == 206:
                match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != have:
                    have = 0  # the server sent another range: start over
                total = (
                    int(match.group(2)) if match and match.group(2) != "*" else (have + length if length >= 0 else -1)
                )
            else:
                have = 0
                total = length
            done = have
            try:
                with open(partial, "ab" if have else "wb") as handle:
                    block = response.read(CHUNK)
                    while block:
                        handle.write(block)
                        done += len(block)
                        if params["progress_file"] and time.time() - last_note >= 1:
                            last_note = time.time()
                            rate = (done - resumed_from) / max(last_note - started, 0.001)
                            write_progress(
                                params["progress_file"],
                                "downloaded %s of %s%s at %s/s%s"
                                % (
                                    human(done),
                                    human(total) if total >= 0 else "?",
                                    " (%d%%)" % (100 * done // total) if total > 0 else "",
                                    human(rate),
                                    ", resumed at %s" % human(resumed_from) if resumed_from else "",
                                ),
                            )
                        block = response.read(CHUNK)
            except (OSError, HTTPException, socket.timeout) as error:
                broke(error, done)
                continue
        if total < 0 or done >= total:
            break
        broke("the server ended after %s of %s" % (human(done), human(total)), done)
    if size is not None and os.path.getsize(partial) != size:
        got_size = os.path.getsize(partial)
        os.unlink(partial)
        module.fail_json(
            msg="fetch_object: %s is %d bytes, expected %d. The download was removed; rerun to download it again"
            % (shown, got_size, size)
        )
    got = file_sha256(partial)
    if expected and got != expected:
        os.unlink(partial)
        module.fail_json(
            msg="fetch_object: %s has sha256 %s, expected %s. The download was removed; check the sha256 "
            "you gave, or the copy at the source" % (shown, got, expected)
        )
    os.replace(partial, dest)
    write_progress(
        params["progress_file"], "downloaded %s in %.0fs" % (human(os.path.getsize(dest)), time.time() - started)
    )
    result.update(resumed_from=resumed_from, attempts=attempts)
    finish(True, got)


if __name__ == "__main__":
    main()
