# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Test slm.edge.url_with_credentials: does a URL carry a user and password (or a token as user)?"""

from __future__ import annotations

DOCUMENTATION = r"""
name: url_with_credentials
short_description: Tell whether a URL carries credentials
version_added: 0.3.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - True for an C(http(s)) URL with any user part (C(https://token@host/), C(https://user:password@host/)) and for
    a URL of any other scheme with C(user:password@). Such values end up in process lists, logs and manifests, so
    the roles refuse them.
  - The filter P(slm.edge.url_masked#filter) shows such a URL with the credentials masked; both use the same rule.
options:
  _input:
    description: The URL (or any string).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse a source URL with credentials
  ansible.builtin.assert:
    that: llama_cpp_git_repo is not slm.edge.url_with_credentials
    fail_msg: "llama_cpp_git_repo={{ llama_cpp_git_repo | slm.edge.url_masked }} carries credentials"
"""

RETURN = r"""
_value:
  description: Whether the URL carries credentials.
  type: bool
"""

from ansible_collections.slm.edge.plugins.module_utils.url_credentials import has_credentials


def url_with_credentials(url):
    return has_credentials(url)


class TestModule:
    def tests(self):
        return {"url_with_credentials": url_with_credentials}
