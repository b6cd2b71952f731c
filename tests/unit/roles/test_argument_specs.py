"""Every role documents every public variable, with the same default, and its README is current."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_role_has_specs_readme_and_meta(role):
    assert (role / "meta" / "argument_specs.yml").is_file()
    assert (role / "meta" / "main.yml").is_file()
    assert (role / "README.md").is_file()


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_match_argument_specs(role):
    defaults_file = role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
    defaults = defaults or {}
    options = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(k for k, v in options.items() if not v.get("required")), (
        "defaults/main.yml and meta/argument_specs.yml disagree"
    )
    for name, value in defaults.items():
        assert name.startswith(role.name + "_") or name.startswith(role.name.split("_")[0] + "_"), name
        spec = options[name]
        assert spec.get("description"), f"{name} has no description"
        if isinstance(value, str) and "{{" in value:
            continue  # templated defaults are documented as written
        if spec.get("type") == "path" and isinstance(value, str):
            continue
        assert spec.get("default") == value, f"{name}: default {value!r} vs argument spec {spec.get('default')!r}"


def test_readmes_are_generated_from_specs():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests/tools/role_docs.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
