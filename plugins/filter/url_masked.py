# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.url_masked: a URL as a message may show it (credentials masked)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: url_masked
short_description: Mask the user and password part of a URL for messages
version_added: 0.3.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - Replaces the C(user:password@) (or C(token@)) part of a URL with C(***@), so that a validation message can
    name the URL without the credentials. Anything that is not such a URL is returned as it is.
  - The test P(slm.edge.url_with_credentials#test) tells whether a URL carries credentials; both use the same rule.
options:
  _input:
    description: The URL (or any string).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Name the URL without its credentials
  ansible.builtin.debug:
    msg: "model_url={{ model_url | slm.edge.url_masked }} carries credentials"
  when: model_url is slm.edge.url_with_credentials
"""

RETURN = r"""
_value:
  description: The URL with C(***) in place of its user information.
  type: str
"""

from ansible_collections.slm.edge.plugins.module_utils.url_credentials import masked


def url_masked(url):
    return masked(url)


class FilterModule:
    def filters(self):
        return {"url_masked": url_masked}
