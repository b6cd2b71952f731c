"""One copy of the test host's variables: inventories/local and every scenario share it.

A scenario links inventories/local/group_vars/llm_servers/tiny_cpu_host.yml into its
inventory and overrides only what differs; a copy of a shared value (the drift this
replaces) or a scenario that inlines group_vars again fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT / "inventories/local/group_vars/llm_servers/tiny_cpu_host.yml"
LINKED = sorted(p for p in (ROOT / "molecule").glob("*/inventory/group_vars/*/00_tiny_cpu_host.yml"))


def test_the_serving_scenarios_link_the_shared_file():
    scenarios = {p.relative_to(ROOT / "molecule").parts[0] for p in LINKED}
    assert {"e2e", "prompt_queue", "awx_runner", "monitoring", "fleet", "llama_cpp"} <= scenarios
    for link in LINKED:
        assert link.is_symlink() and link.resolve() == SHARED.resolve(), link


@pytest.mark.parametrize("link", LINKED, ids=lambda p: p.relative_to(ROOT / "molecule").parts[0])
def test_a_scenario_overrides_only_what_differs(link):
    shared = yaml.safe_load(SHARED.read_text())
    scenario = link.parents[3]
    config = yaml.safe_load((scenario / "molecule.yml").read_text())
    inventory = config["provisioner"]["inventory"]
    assert set(inventory) == {"links"}, f"{scenario.name}: variables belong in inventory/, not molecule.yml"
    for path in sorted((scenario / "inventory").rglob("*.yml")):
        if path.is_symlink():
            continue
        for key, value in (yaml.safe_load(path.read_text()) or {}).items():
            assert shared.get(key, object()) != value, f"{path.relative_to(ROOT)}: {key} repeats the shared value"
