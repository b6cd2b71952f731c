#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hf_model_info
short_description: Check a Hugging Face model on the hub before a download, or on disk before conversion
version_added: 0.3.0
description:
  - With O(repo), asks the hub's model-info API about that repository at O(revision), so that a missing repository,
    a revision that does not exist, a gated model whose terms the token's account has not accepted, or an invalid
    token is refused before a long download starts. It returns the commit the revision points at and the files it
    holds in RV(hub).
  - With O(path), checks a downloaded model directory before C(convert_hf_to_gguf.py) runs on it - a C(config.json)
    naming an architecture the converter of O(llama_cpp_source_dir) registers, tokenizer files, and safetensors
    files that are complete (their header and size agree) - and returns what it found in RV(model).
  - The token is sent only in an C(Authorization) header, never in the URL; give it in O(token) (not logged) or,
    better, in O(token_file), a file on the managed host that only its owner can read.
  - The module does not fail when the model would be refused; RV(error) says why, naming the variable to fix, so
    that a caller whose task hides its output (because it carries a token) can fail with that message in a task
    that does not. It fails only on bad parameters or an unreadable O(token_file).
  - The module only reads; it never changes the host.
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  repo:
    description:
      - Repository on the hub, C(owner/name). Empty means no hub check.
    type: str
    default: ""
  revision:
    description:
      - Branch, tag or commit of O(repo).
    type: str
    default: main
  endpoint:
    description:
      - Base URL of the hub (or of a mirror with the same API).
    type: str
    default: https://huggingface.co
  token:
    description:
      - Access token for private or gated repositories. Mutually exclusive with O(token_file).
    type: str
    default: ""
  token_file:
    description:
      - Path of a file on the managed host whose content (surrounding white space removed) is the access token.
        Mutually exclusive with O(token).
    type: path
  timeout:
    description:
      - Seconds to wait for the hub.
    type: int
    default: 30
  validate_certs:
    description:
      - Whether the TLS certificate of O(endpoint) is checked.
    type: bool
    default: true
  path:
    description:
      - Directory of a downloaded model to check before conversion. Empty means no directory check.
    type: path
  llama_cpp_source_dir:
    description:
      - The llama.cpp source tree whose C(convert_hf_to_gguf.py) (and C(conversion/*.py)) register the
        architectures it converts. Without it, or when it registers none, any architecture is accepted.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - At least one of O(repo) and O(path) must be given; with both, the hub is asked first.
seealso:
  - name: Hub API
    description: The model-info endpoint this module asks.
    link: https://huggingface.co/docs/hub/api
"""

EXAMPLES = r"""
- name: Check the repository and revision before downloading (token read from a file on the host)
  slm.edge.hf_model_info:
    repo: Qwen/Qwen2.5-0.5B-Instruct
    revision: main
    token_file: /root/.cache/slm/hf_token
  register: hub_check

- name: Refuse what the hub refused
  ansible.builtin.assert:
    that: hub_check.error | length == 0
    fail_msg: "{{ hub_check.error }}"

- name: Check the downloaded directory before conversion
  slm.edge.hf_model_info:
    path: /opt/slm/models/src/qwen2.5-0.5b-instruct
    llama_cpp_source_dir: /opt/slm/llama.cpp/src
  register: model_check
"""

RETURN = r"""
error:
  description: Why the model would be refused (naming the variable to fix); empty when it passed every check.
  returned: always
  type: str
  sample: "Qwen/Qwen9-Nope was not found on the hub: fix model_hf_repo"
hub:
  description: What the hub says about O(repo) at O(revision).
  returned: when O(repo) is given and the hub answered
  type: dict
  contains:
    repo:
      description: Repository id as the hub spells it.
      type: str
      returned: success
      sample: Qwen/Qwen2.5-0.5B-Instruct
    revision:
      description: The revision asked for.
      type: str
      returned: success
      sample: main
    sha:
      description: Commit the revision points at.
      type: str
      returned: success
      sample: 7ae557604adf67be50417f59c2c2f167def9a775
    private:
      description: Whether the repository is private.
      type: bool
      returned: success
    gated:
      description: V(false), or how access is granted (V(auto) or V(manual)).
      type: raw
      returned: success
      sample: false
    disabled:
      description: Whether the hub disabled the repository.
      type: bool
      returned: success
    files:
      description: Files at that revision.
      type: list
      elements: str
      returned: success
      sample: [config.json, model.safetensors, tokenizer.json]
    has_config:
      description: Whether C(config.json) is among RV(hub.files).
      type: bool
      returned: success
    has_tokenizer:
      description: Whether C(tokenizer.json) or C(tokenizer.model) is among RV(hub.files).
      type: bool
      returned: success
    weights:
      description: Weight files (C(*.safetensors), C(*.bin), C(*.gguf)) among RV(hub.files).
      type: list
      elements: str
      returned: success
      sample: [model.safetensors]
model:
  description: What the directory O(path) holds.
  returned: when O(path) is given
  type: dict
  contains:
    model_dir:
      description: The directory.
      type: str
      returned: success
      sample: /opt/slm/models/src/qwen2.5-0.5b-instruct
    architectures:
      description: C(architectures) of C(config.json).
      type: list
      elements: str
      returned: success
      sample: [Qwen2ForCausalLM]
    context_length:
      description: C(max_position_embeddings) of C(config.json), V(null) when absent.
      type: int
      returned: success
      sample: 32768
    weights:
      description: Safetensors files in the directory.
      type: list
      elements: str
      returned: success
      sample: [model.safetensors]
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import fetch_url
from ansible_collections.slm.edge.plugins.module_utils.hf_model import (
    check_model_dir,
    check_repo,
    hub_error,
    hub_summary,
    model_info_url,
)


def read_token(module):
    """The token from O(token) or O(token_file); fails naming the file, never the value."""
    params = module.params
    if not params["token_file"]:
        return params["token"] or ""
    try:
        with open(params["token_file"], encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg=f"token_file {params['token_file']} cannot be read: {exc.__class__.__name__}")
    if not token:
        module.fail_json(msg=f"token_file {params['token_file']} is empty")
    module.no_log_values.add(token)
    return token


def ask_hub(module, token):
    """(hub facts or None, error) for O(repo) at O(revision)."""
    params = module.params
    url = model_info_url(params["endpoint"], params["repo"], params["revision"])
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    response, info = fetch_url(
        module,
        url,
        headers=headers,
        method="GET",
        timeout=params["timeout"],
        use_proxy=True,
        force=True,
    )
    status = info.get("status", -1)
    if response is None or status != 200:
        body = to_text(info.get("body") or b"", errors="surrogate_or_replace")
        message = info.get("msg", "") if status == -1 else _json_error(body)
        code = info.get("x-error-code", "") or ""
        return None, hub_error(
            status, code, message, repo=params["repo"], revision=params["revision"], token_given=bool(token)
        )
    try:
        data = json.loads(to_text(response.read(), errors="surrogate_or_replace"))
    except ValueError:
        return None, f"the hub's answer for {params['repo']} is not JSON: is model_hf_endpoint the hub?"
    if not isinstance(data, dict):
        return None, f"the hub's answer for {params['repo']} is not a JSON object: is model_hf_endpoint the hub?"
    hub = hub_summary(data, params["repo"], params["revision"])
    if hub["disabled"]:
        return hub, f"{params['repo']} is disabled on the hub: choose another model_hf_repo"
    return hub, ""


def _json_error(body):
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200]
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def main():
    module = AnsibleModule(
        argument_spec={
            "repo": {"type": "str", "default": ""},
            "revision": {"type": "str", "default": "main"},
            "endpoint": {"type": "str", "default": "https://huggingface.co"},
            "token": {"type": "str", "default": "", "no_log": True},
            "token_file": {"type": "path"},
            "timeout": {"type": "int", "default": 30},
            "validate_certs": {"type": "bool", "default": True},
            "path": {"type": "path"},
            "llama_cpp_source_dir": {"type": "path"},
        },
        mutually_exclusive=[("token", "token_file")],
        supports_check_mode=True,
    )
    params = module.params
    if not params["repo"] and not params["path"]:
        module.fail_json(msg="give repo (a hub check), path (a directory check) or both")
    result = {"changed": False, "error": ""}
    if params["repo"]:
        problem = check_repo(params["repo"])
        if problem:
            module.fail_json(msg=problem)
        if not params["revision"]:
            module.fail_json(msg="revision must not be empty (a branch, tag or commit)")
        hub, error = ask_hub(module, read_token(module))
        if hub is not None:
            result["hub"] = hub
        result["error"] = error
    if params["path"] and not result["error"]:
        model = check_model_dir(params["path"], params["llama_cpp_source_dir"] or "")
        result["error"] = model.pop("error")
        result["model"] = model
    module.exit_json(**result)


if __name__ == "__main__":
    main()
