"""A bool option given as a string ("false" from -e, an INI inventory or an AWX survey) renders
exactly as the bool does.

The role's argument spec accepts "false" (it converts to a boolean) but leaves the string in
place, and a bare "false" is true in Jinja: the broker would open its management plugin, listen
for plain AMQP or pass --metrics. Each template and internal variable that reads a bool option
is rendered with the option as a string and as a bool, and the two must be the same.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("host_roles_render", HERE / "test_host_roles_render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)
ROLES = render.ROLES


def _bools(role: str) -> list[str]:
    options = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"
    ]
    return sorted(n for n, o in options.items() if o.get("type") == "bool")


QUEUE = {
    "prompt_queue_worker_password": "w" * 24,
    "prompt_queue_client_password": "c" * 24,
    "prompt_queue_tls_cert": "/etc/pki/q.pem",
    "prompt_queue_tls_key": "/etc/pki/q.key",
    "prompt_queue_tls_ca": "/etc/pki/ca.pem",
    "prompt_queue_broker_host": "10.0.1.5",
}
SERVER = {
    "item": {"id": 0, "port": 8080, "gpu": ""},
    "__llama_server_threads": 4,
    "__llama_server_plan": {"ctx_size": 4096, "parallel": 4},
    "__llama_server_gpus": [],
    "__llama_server_api_keys_all": [],
    "__llama_server_tls_enabled": False,
    "llama_server_model_path": "/opt/slm/models/m.gguf",
}
RENDERED = {
    "prompt_queue": (
        QUEUE,
        ["rabbitmq.conf.j2", "worker.json.j2", "client.json.j2", "slm-queue-worker.service.j2"],
        ["__prompt_queue_port_vars", "__prompt_queue_plugins", "__prompt_queue_gate_broker"],
    ),
    "llama_server": (SERVER, ["argv.j2"], []),
}


def _render(role: str, extra: dict) -> list:
    base, templates, names = RENDERED[role]
    r = render.Role(role, render.DEBIAN12, **base, **extra)
    return [r.template(t) for t in templates] + [r[n] for n in names]


CASES = [(role, name, value) for role in RENDERED for name in _bools(role) for value in (False, True)]


@pytest.mark.parametrize(("role", "name", "value"), CASES, ids=str)
def test_string_bool_renders_as_the_bool(role, name, value):
    assert _render(role, {name: str(value).lower()}) == _render(role, {name: value})
    assert _render(role, {name: "yes" if value else "no"}) == _render(role, {name: value})
