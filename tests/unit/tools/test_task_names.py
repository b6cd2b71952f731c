"""The house style of task names (docs/contributing.md): a sentence, not "Section | rest"."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
SECTION = re.compile(r"^[A-Za-z][A-Za-z0-9_ -]* \| ")


def _names(tasks):
    """Names of the tasks of a task list, blocks included (not module arguments or loop items)."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        if isinstance(task.get("name"), str):
            yield task["name"]
        for key in ("block", "rescue", "always"):
            yield from _names(task.get(key))


def test_role_task_and_handler_names_are_sentences():
    bad = []
    for path in sorted(ROOT.glob("roles/*/*/*.yml")):
        if path.parent.name not in ("tasks", "handlers"):
            continue
        for name in _names(yaml.safe_load(path.read_text())):
            if SECTION.match(name) or name[:1].islower():
                bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad, "\n".join(bad)
