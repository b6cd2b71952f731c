"""playbooks/awx_configure.yml applies awx/ to a controller API, idempotently, without leaking secrets.

The controller is tests/unit/awx/fake_controller.py (an in-memory AWX API v2 on
127.0.0.1); the awx.awx modules talk to it exactly as to AWX.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_controller import FakeController
from test_awx_data import PENDING_PLAYBOOKS

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
TOKEN = "fake-oauth-token-0123"
AWS_KEY, AWS_SECRET = "AKIAFAKEFAKEFAKE0001", "fake-secret-key-never-printed"
HF_SECRET = "hf_fake_token_never_printed"
EXTRA = {
    "awx_config_scm_url": "https://git.example.invalid/slm/edge.git",
    "awx_config_ee_image": "registry.example.invalid/slm/slm-edge-ee:0.1.0",
    "awx_config_vpc_id": "vpc-0123456789abcdef0",
    "awx_config_aws_region": "us-west-2",
}


@pytest.fixture
def controller():
    fake = FakeController(TOKEN, ROOT, missing_ok=frozenset(PENDING_PLAYBOOKS))
    url = fake.start()
    yield fake, url
    fake.stop()


def _play(
    url: str | None, env_extra: dict[str, str], extra: dict | None = None, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    drop = ("ANSIBLE_", "CONTROLLER_", "TOWER_", "AWS_", "HF_TOKEN")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="true",
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **env_extra,
    )
    if url:
        env.update(CONTROLLER_HOST=url, CONTROLLER_OAUTH_TOKEN=TOKEN)
    cmd = [
        str(BIN / "ansible-playbook"),
        str(ROOT / "playbooks/awx_configure.yml"),
        "-e",
        json.dumps(extra or EXTRA),
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def _recap(proc: subprocess.CompletedProcess) -> dict[str, int]:
    match = re.search(r"localhost\s+:\s+(.*)", proc.stdout)
    assert match, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def test_applies_everything_then_changes_nothing(controller):
    fake, url = controller
    secrets = {"AWS_ACCESS_KEY_ID": AWS_KEY, "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "HF_TOKEN": HF_SECRET}
    first = _play(url, secrets)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert _recap(first)["changed"] > 0
    for secret in (AWS_SECRET, HF_SECRET):
        assert secret not in first.stdout + first.stderr

    org = fake.named("organizations", "slm-edge")
    project = fake.named("projects", "slm-edge")
    assert project["scm_url"] == EXTRA["awx_config_scm_url"]
    assert project["organization"] == org["id"]
    ee = fake.named("execution_environments", "slm-edge EE")
    assert ee["image"] == EXTRA["awx_config_ee_image"]

    hf_type = fake.named("credential_types", "Hugging Face token")
    assert hf_type["injectors"] == {
        "env": {"HF_TOKEN": "{{ hf_token }}"},
        "extra_vars": {"model_hf_token": "{{ hf_token }}"},
    }
    aws = fake.named("credentials", "slm-edge AWS")
    assert aws["inputs"] == {"username": AWS_KEY, "password": AWS_SECRET}  # no empty session token
    hf = fake.named("credentials", "slm-edge Hugging Face")
    assert hf["credential_type"] == hf_type["id"]

    source = fake.named("inventory_sources", "slm-edge EC2")
    assert source["source_path"] == "inventories/aws/slm.aws_ec2.yml"
    assert json.loads(source["source_vars"]) == {"SLM_CLUSTER": "slm-edge", "AWS_REGION": "us-west-2"}
    assert source["credential"] == aws["id"]

    site = fake.named("job_templates", "slm-edge site")
    assert site["playbook"] == "playbooks/site.yml"
    assert site["execution_environment"] == ee["id"]
    assert {c["name"] for c in fake.associated("job_templates", site["id"], "credentials")} == {
        "slm-edge AWS",
        "slm-edge Hugging Face",
    }
    survey = {q["variable"]: q for q in fake.survey("job_templates", "slm-edge site")["spec"]}
    assert survey["model_source"]["default"] == "hf"
    assert survey["llama_server_ctx_size"]["default"] == "auto"
    provision = fake.named("job_templates", "slm-edge provision")
    assert json.loads(provision["extra_vars"])["aws_region"] == "us-west-2"
    assert {c["name"] for c in fake.associated("job_templates", provision["id"], "credentials")} == {"slm-edge AWS"}
    pq = {q["variable"]: q for q in fake.survey("job_templates", "slm-edge provision")["spec"]}
    assert pq["ec2_provision_vpc_id"]["default"] == EXTRA["awx_config_vpc_id"]
    assert pq["ec2_provision_cluster_name"]["default"] == "slm-edge"
    assert fake.survey("job_templates", "slm-edge smoke") == {}

    workflow = fake.named("workflow_job_templates", "slm-edge deploy")
    nodes = {
        n["identifier"]: n
        for n in fake.objects["workflow_job_template_nodes"].values()
        if n["workflow_job_template"] == workflow["id"]
    }
    templates = {jt["id"]: jt["name"] for jt in fake.objects["job_templates"].values()}
    assert {i: templates[n["unified_job_template"]] for i, n in nodes.items()} == {
        "provision": "slm-edge provision",
        "site": "slm-edge site",
        "smoke": "slm-edge smoke",
    }
    links = {
        i: [s["identifier"] for s in fake.associated("workflow_job_template_nodes", n["id"], "success_nodes")]
        for i, n in nodes.items()
    }
    assert links == {"provision": ["site"], "site": ["smoke"], "smoke": []}
    assert {q["variable"] for q in fake.survey("workflow_job_templates", "slm-edge deploy")["spec"]} >= {
        "model_hf_revision",
        "ec2_provision_count",
    }

    writes = len(fake.writes)
    second = _play(url, secrets)
    assert second.returncode == 0, second.stdout[-4000:]
    assert _recap(second)["changed"] == 0, second.stdout[-4000:]
    assert fake.writes[writes:] == [], "the second run wrote to the controller"


def test_no_secret_in_the_output_at_vvv(controller):
    """The controller token, the AWS key pair and the HF token never show, even at -vvv."""
    _fake, url = controller
    secrets = {"AWS_ACCESS_KEY_ID": AWS_KEY, "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "HF_TOKEN": HF_SECRET}
    proc = _play(url, secrets, args=("-vvv",))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert len(out) > 50_000  # really verbose: the module invocations are in it
    for name, secret in (
        ("controller token", TOKEN),
        ("AWS key id", AWS_KEY),
        ("AWS secret", AWS_SECRET),
        ("HF token", HF_SECRET),
    ):
        assert secret not in out, f"the {name} is in the -vvv output"


def test_existing_credential_without_environment_and_no_hf_token(controller):
    """AWS credential made by hand in the UI, no keys here, no HF token: templates still get AWS, site no HF."""
    fake, url = controller
    org = fake._add("organizations", {"name": "slm-edge"})
    fake._add("credentials", {"name": "slm-edge AWS", "credential_type": 1, "organization": org["id"]})
    proc = _play(url, {})
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert not [c for c in fake.objects["credentials"].values() if c["name"] == "slm-edge Hugging Face"]
    site = fake.named("job_templates", "slm-edge site")
    assert [c["name"] for c in fake.associated("job_templates", site["id"], "credentials")] == ["slm-edge AWS"]


def test_missing_aws_credential_is_refused_with_the_fix(controller):
    fake, url = controller
    proc = _play(url, {})
    assert proc.returncode != 0
    assert "'slm-edge AWS' (Amazon Web Services)" in proc.stdout
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in proc.stdout
    assert not fake.objects.get("job_templates"), "templates were created before the check"


def test_no_controller_is_refused_before_any_call(controller):
    fake = controller[0]
    proc = _play(None, {})
    assert proc.returncode != 0
    assert "export CONTROLLER_HOST=" in proc.stdout
    assert fake.writes == []


def test_missing_scm_url_is_refused(controller):
    url = controller[1]
    proc = _play(url, {}, {k: v for k, v in EXTRA.items() if k != "awx_config_scm_url"})
    assert proc.returncode != 0
    assert "awx_config_scm_url=''" in proc.stdout
