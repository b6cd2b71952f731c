"""slm.edge.monitoring's alert rules, rendered as the role renders them, checked and unit-tested by promtool.

The rules template is rendered by Ansible's own template module (its `#jinja2:` header sets
the [[ ]] delimiters that keep Prometheus' {{ $labels }} templates intact) with the role's
defaults, then `promtool check rules` and `promtool test rules`
(tests/integration/monitoring/alerts_test.yml) must pass. A broken rule and a wrong
expectation must fail, so the checks can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "monitoring"
CASES = Path(__file__).parent / "monitoring" / "alerts_test.yml"
BIN = Path(sys.executable).parent


def _promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
            check=False,
            capture_output=True,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        )
        found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed and `apt-get install prometheus` could not install it")
    return found


def _render(tmp: Path, overrides: dict) -> Path:
    values = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) | overrides
    varfile = tmp / "vars.yml"
    varfile.write_text(yaml.safe_dump(values))
    out = tmp / "slm-alerts.yml"
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    subprocess.run(
        [
            str(BIN / "ansible"),
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.template",
            "-a",
            f"src={ROLE / 'templates' / 'slm-alerts.yml.j2'} dest={out} mode=0644",
            "-e",
            f"@{varfile}",
        ],
        check=True,
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    return _render(tmp_path_factory.mktemp("rules"), {"monitoring_alert_tokens_per_second_baseline": 20})


def _test_file(tmp: Path, rules: Path, cases: dict) -> Path:
    path = tmp / "alerts_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [str(rules)], **cases}, sort_keys=False))
    return path


def test_rules_pass_promtool_check(rendered):
    res = subprocess.run([_promtool(), "check", "rules", str(rendered)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 11 rules found" in res.stdout, res.stdout


def test_prometheus_templates_survive_rendering(rendered):
    text = rendered.read_text()
    assert "{{ $labels.replica }}" in text
    assert "[[" not in text and "[%" not in text


def _labels_only(rules: Path, tmp: Path) -> Path:
    """The rules without annotations, but for SLMTokensPerSecondLow (promtool 2.42 compares all of them)."""
    doc = yaml.safe_load(rules.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") != "SLMTokensPerSecondLow":
                rule.pop("annotations", None)
    out = tmp / "labels-only.yml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def test_every_alert_says_what_and_what_to_do(rendered):
    doc = yaml.safe_load(rendered.read_text())
    alerts = [r for g in doc["groups"] for r in g["rules"]]
    assert len(alerts) == 11
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_alert_unit_tests(rendered, tmp_path):
    cases = yaml.safe_load(CASES.read_text())
    rules = _labels_only(rendered, tmp_path)
    res = subprocess.run(
        [_promtool(), "test", "rules", str(_test_file(tmp_path, rules, cases))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout + res.stderr


def test_a_wrong_expectation_fails(rendered, tmp_path):
    cases = yaml.safe_load(CASES.read_text())
    # The replica that stays up must never fire: expecting it to fire must make promtool fail.
    first = cases["tests"][0]
    first["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "critical", "replica": "llama-server@1"}}]
    rules = _labels_only(rendered, tmp_path)
    cases = {"evaluation_interval": "1m", "tests": [first]}
    res = subprocess.run(
        [_promtool(), "test", "rules", str(_test_file(tmp_path, rules, cases))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode != 0, res.stdout


def test_no_baseline_leaves_the_slow_tokens_rule_inert(tmp_path):
    rules = _render(tmp_path, {})
    text = yaml.safe_load(rules.read_text())
    expr = next(r["expr"] for g in text["groups"] for r in g["rules"] if r.get("alert") == "SLMTokensPerSecondLow")
    assert expr == "vector(1) unless vector(1)"


def test_a_broken_rule_is_refused(tmp_path):
    rules = _render(tmp_path, {"monitoring_alert_queue_depth": 50})
    broken = tmp_path / "broken.yml"
    broken.write_text(rules.read_text().replace("slm_queue_depth > 50", "slm_queue_depth >> 50"))
    res = subprocess.run([_promtool(), "check", "rules", str(broken)], capture_output=True, text=True, check=False)
    assert res.returncode != 0
