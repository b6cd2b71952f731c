#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_objects_info
short_description: List the objects under an S3 prefix from the host, with the host's own credentials
version_added: 0.3.0
description:
  - Lists every object under O(prefix) in O(bucket) (ListObjectsV2, every page), signed with AWS Signature
    Version 4. The credentials are the ones botocore would find on the host (environment, shared credentials
    file, then the instance profile through IMDSv2), so nothing goes through the controller and the host needs
    no boto3.
  - The model role lists a model's files this way, then fetches each with M(slm.edge.fetch_object).
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  bucket:
    description: The bucket's name.
    type: str
    required: true
  prefix:
    description: The key prefix; empty lists the whole bucket.
    type: str
    default: ""
  region:
    description:
      - The bucket's region. Defaults to E(AWS_REGION), E(AWS_DEFAULT_REGION), then C(us-east-1).
    type: str
  endpoint_url:
    description: An S3-compatible endpoint (path-style requests). Without it, AWS's regional endpoint.
    type: str
  imds_endpoint:
    description:
      - The instance metadata service. Defaults to E(AWS_EC2_METADATA_SERVICE_ENDPOINT), then
        C(http://169.254.169.254).
    type: str
  timeout:
    description: Seconds a request may take.
    type: int
    default: 60
  validate_certs:
    description: Verify the endpoint's certificate.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: slm.edge.fetch_object
  - module: amazon.aws.s3_object_info
"""

EXAMPLES = r"""
- name: List the model's files with the instance profile
  slm.edge.s3_objects_info:
    bucket: my-models
    prefix: SmolLM2-1.7B-Instruct/
    region: eu-central-1
  register: listing
"""

RETURN = r"""
objects:
  description: The objects, in key order.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: The object's key.
      type: str
    size:
      description: Its size in bytes.
      type: int
    etag:
      description: Its ETag, without quotes (the MD5 of its bytes when it was not uploaded in parts).
      type: str
credentials_source:
  description: Where the credentials came from (environment, shared credentials file, instance profile NAME).
  returned: always
  type: str
"""

from http.client import HTTPException
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slm.edge.plugins.module_utils import s3_sigv4


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            prefix=dict(type="str", default=""),
            region=dict(type="str"),
            endpoint_url=dict(type="str"),
            imds_endpoint=dict(type="str"),
            timeout=dict(type="int", default=60),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    region = s3_sigv4.region_or_default(params["region"])
    where = "s3://%s/%s" % (params["bucket"], params["prefix"])
    try:
        credentials = s3_sigv4.find_credentials(imds_endpoint=params["imds_endpoint"])
    except s3_sigv4.CredentialsError as error:
        module.fail_json(msg="s3_objects_info: cannot list %s: %s." % (where, error))
    try:
        objects = s3_sigv4.list_objects(
            params["bucket"],
            params["prefix"],
            region,
            credentials,
            endpoint_url=params["endpoint_url"],
            timeout=params["timeout"],
            validate_certs=params["validate_certs"],
        )
    except HTTPError as error:
        module.fail_json(
            msg="s3_objects_info: listing %s answered HTTP %d (%s): check the bucket, the region and that "
            "the host's role may s3:ListBucket" % (where, error.code, error.reason)
        )
    except (URLError, OSError, HTTPException, ValueError) as error:
        module.fail_json(msg="s3_objects_info: cannot list %s: %s" % (where, error))
    module.exit_json(
        changed=False, objects=sorted(objects, key=lambda item: item["key"]), credentials_source=credentials["source"]
    )


if __name__ == "__main__":
    main()
