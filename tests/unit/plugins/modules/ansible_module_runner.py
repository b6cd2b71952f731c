"""Run a module's main() in-process, community.general style.

exit_json / fail_json raise AnsibleExitJson / AnsibleFailJson carrying the
result; module arguments go in through ansible.module_utils.testing's
patch_module_args (ansible-core 2.19+) or, on older cores, basic._ANSIBLE_ARGS.
"""

from __future__ import annotations

import contextlib
import json
from unittest import mock

import pytest
from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19

    @contextlib.contextmanager
    def patch_module_args(args=None):
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
            yield


class AnsibleExitJson(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs.pop("exception", None)
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


def run_module(main, args=None, check_mode=False, expect_failure=False):
    """Run ``main`` with ``args``; return the result dict with the module's warnings added."""
    args = dict(args or {})
    if check_mode:
        args["_ansible_check_mode"] = True
    warnings = []

    def _warn(self, warning, **_kwargs):
        warnings.append(warning)

    expected = AnsibleFailJson if expect_failure else AnsibleExitJson
    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json),
        mock.patch.object(basic.AnsibleModule, "warn", _warn),
        pytest.raises(expected) as raised,
    ):
        main()
    result = raised.value.result
    result["warnings_seen"] = warnings
    return result
