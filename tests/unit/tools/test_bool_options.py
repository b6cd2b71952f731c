"""Every use of a bool role option goes through `| bool`.

A role's argument spec checks that `prompt_queue_allow_plaintext_remote: "false"` converts
to a boolean, but it does not convert the variable: the string stays. `-e name=false`, an INI
inventory's `[group:vars]`, and an AWX survey's true/false choice all give the string
"false", which is true in a Jinja `if`, `or` and `selectattr` (and an error in `when:`, half
way through a play). So each reference to a bool option in a role, a playbook or a template
must read `name | bool` (or `name | default(x) | bool`, or test it with `is defined`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CONDITIONALS = {"when", "failed_when", "changed_when", "until", "that"}
JINJA = re.compile(r"\{\{(.*?)\}\}|\{%-?(.*?)-?%\}", re.S)
CONVERTED = re.compile(r"\s*(\|\s*default\([^()]*\)\s*)?\|\s*bool\b|\s+is\s+(not\s+)?(defined|undefined|boolean)\b")


def _bool_options() -> list[str]:
    names = set()
    for spec in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        for entry in (yaml.safe_load(spec.read_text())["argument_specs"] or {}).values():
            names |= {n for n, o in (entry.get("options") or {}).items() if o.get("type") == "bool"}
    return sorted(names)


BOOLS = _bool_options()
USE = re.compile(r"(?<![\w'\"])(['\"]?)(" + "|".join(BOOLS) + r")\1(?!\w)")


def _expressions(path: Path):
    """(where, expression) for every Jinja expression of the file."""
    text = path.read_text()
    if path.suffix == ".j2":
        for m in JINJA.finditer(text):
            yield f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1) or m.group(2)
        return

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, k)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, key)
        elif isinstance(node, str):
            if key in CONDITIONALS:
                yield node
            for m in JINJA.finditer(node):
                # "{{ name }}" alone hands the value on unchanged (to a module, which converts
                # it, or to the variable of another role, which reads it | bool).
                if m.group(0) == node.strip() and re.fullmatch(r"\s*[\w.]+\s*", m.group(1) or ""):
                    continue
                yield m.group(1) or m.group(2)

    where = str(path.relative_to(ROOT))
    for expr in walk(yaml.safe_load(text)):
        yield where, expr


def _files() -> list[Path]:
    out = [p for p in (ROOT / "roles").rglob("*") if p.suffix in (".yml", ".j2") and p.name != "argument_specs.yml"]
    out += list((ROOT / "playbooks").rglob("*.yml"))
    return sorted(p for p in out if p.is_file())


TRUTH = " (tested for truth by name: loop over the hosts and read it | bool instead)"
STRING = re.compile(r"(['\"])((?:(?!\1).)*)\1", re.S)


def _unconverted(expr: str) -> list[str]:
    # Text in string literals (a message naming a variable) is no use of it; a literal that is
    # exactly an option's name (selectattr('name'), hostvars[h]['name']) stays.
    expr = STRING.sub(lambda m: m.group(0) if m.group(2) in BOOLS else "''", expr)
    bad = []
    for m in USE.finditer(expr):
        quoted, name = m.group(1), m.group(2)
        rest = expr[m.end() :]
        if quoted:
            # A name as a string: selectattr('name') tests it for truth; hostvars[h]['name'] reads it.
            before = expr[: m.start()].rstrip()
            if re.search(r"(select|reject)attr\($", before) and re.match(r"\s*\)", rest):
                bad.append(name + TRUTH)
            elif before.endswith("[") and rest.startswith("]") and not CONVERTED.match(rest[1:]):
                bad.append(name)
        elif not CONVERTED.match(rest):
            bad.append(name)
    return bad


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_bool_options_are_converted(path):
    bad = [
        f"{where}: {name} in {{{{ {expr.strip()[:120]} }}}}"
        for where, expr in _expressions(path)
        for name in _unconverted(expr)
    ]
    assert not bad, "a bool option used without | bool (the string 'false' would be true):\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("expr", "flagged"),
    [
        ("prompt_queue_tls_only", ["prompt_queue_tls_only"]),
        ("not prompt_queue_tls_only or x", ["prompt_queue_tls_only"]),
        ("'s' if prompt_queue_tls_only | bool else ''", []),
        ("hv.prompt_queue_broker_enabled | default(true) | bool", []),
        ("prompt_queue_broker_enabled is defined", []),
        (
            "q | selectattr('prompt_queue_broker_enabled') | list",
            ["prompt_queue_broker_enabled" + TRUTH],
        ),
        ("q | selectattr('prompt_queue_broker_enabled', 'defined') | list", []),
        ("prompt_queue_broker_enabled_x", []),
        ("'set prompt_queue_tls_only: true' ~ x", []),
        ("hostvars[h]['prompt_queue_tls_only'] or x", ["prompt_queue_tls_only"]),
        ("hostvars[h]['prompt_queue_tls_only'] | bool", []),
    ],
)
def test_scanner(expr, flagged):
    assert "prompt_queue_tls_only" in BOOLS and "prompt_queue_broker_enabled" in BOOLS
    assert _unconverted(expr) == flagged
