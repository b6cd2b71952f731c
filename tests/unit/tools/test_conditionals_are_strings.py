"""Every conditional in the collection's YAML is a string (or a bool, or a list of them).

A plain YAML scalar with ": " in it (`- x is search('a: b')`) parses as a mapping; Ansible
refuses it only when the task runs ("Conditional expressions must be strings"), which in a
molecule verifier is twenty minutes in. This walks every task file, playbook and scenario.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
KEYS = {"when", "failed_when", "changed_when", "until", "that"}
DIRS = ["roles", "playbooks", "molecule", "tests/gpu", "tests/integration", "awx"]


def _files() -> list[Path]:
    out = []
    for top in DIRS:
        out += [p for p in (ROOT / top).rglob("*.yml") if ".cache" not in p.parts and not p.is_symlink()]
    return sorted(out)


def _walk(node, where: str):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in KEYS:
                for item in value if isinstance(value, list) else [value]:
                    if not isinstance(item, (str, bool)):
                        yield f"{where}: {key}: {item!r}"
            else:
                yield from _walk(value, f"{where} > {key}" if isinstance(key, str) and key == "name" else where)
    elif isinstance(node, list):
        for item in node:
            name = item.get("name") if isinstance(item, dict) else None
            yield from _walk(item, f"{where} [{name}]" if name else where)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_conditionals_are_strings(path):
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        pytest.skip("not plain YAML (a template)")
    bad = list(_walk(data, str(path.relative_to(ROOT))))
    assert not bad, "\n".join(bad)
