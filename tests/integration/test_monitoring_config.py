"""slm.edge.monitoring builds its scrape jobs from the inventory, and promtool accepts them.

An inventory of local hosts stands in for the fleet: two serving hosts that published
llama_server_instances (one with an API key file, one without, one on loopback URLs that
must become its monitoring_scrape_address), a prompt queue host and a GPU host. The role's
`targets.yml` runs, prometheus.yml is rendered with the role's template, `promtool check
config` must accept it, and the key must appear in no file and no output but its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_monitoring_rules import _promtool

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "slmSECRETmonitoringkey0123456789"


def inst(name: str, url: str, port: int, key: str) -> dict:
    """One entry of llama_server_instances as slm.edge.llama_server publishes it."""
    return {"name": name, "url": url, "port": port, "api_key_file": key, "tls_ca_file": "", "gpu": "", "parallel": 2}


def _run(
    tmp: Path, rabbitmq_scrape: bool | str = True, host_vars: dict | None = None
) -> tuple[subprocess.CompletedProcess, Path]:
    keyfile = tmp / "api-key"
    keyfile.write_text(f"# rotation\n{KEY}\nolder-key-0123456789abcdef\n")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {
        "mon1": {**local},
        "gpu1": {
            **local,
            "ansible_host": "10.0.0.11",
            "nvidia_gpu_count": 2,
            "llama_server_instances": [
                inst("llama-server@0", "http://0.0.0.0:8080", 8080, str(keyfile)),
                inst("llama-server@1", "http://0.0.0.0:8081", 8081, str(keyfile)),
            ],
        },
        "cpu1": {
            **local,
            "monitoring_scrape_address": "10.0.0.12",
            "llama_server_instances": [inst("llama-server@0", "http://127.0.0.1:8080", 8080, "")],
        },
        "fresh1": {**local},
        "queue1": {**local, "ansible_host": "10.0.0.13", "prompt_queue_metrics_port": 9200},
        # Bound to one address each (the worker on all, RabbitMQ's plugin on one), the plugin enabled.
        "queue2": {
            **local,
            "ansible_host": "10.0.0.14",
            "prompt_queue_metrics_address": "0.0.0.0",
            "prompt_queue_prometheus_enabled": True,
            "prompt_queue_prometheus_address": "10.0.0.44",
            "prompt_queue_prometheus_port": 15693,
        },
    }
    for host, extra in (host_vars or {}).items():
        hosts[host].update(extra)
    inv = {
        "all": {
            "hosts": hosts,
            "children": {
                "monitoring": {"hosts": {"mon1": None}},
                "llm_servers": {"hosts": {"gpu1": None, "cpu1": None, "fresh1": None}},
                # mon1 runs a queue too: its loopback-bound worker and plugin are scraped on 127.0.0.1.
                "prompt_queue": {"hosts": {"queue1": None, "queue2": None, "mon1": None}},
            },
        }
    }
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inv))
    out = tmp / "prometheus.yml"
    play = [
        {
            "name": "Build the scrape jobs and render prometheus.yml",
            "hosts": "monitoring",
            "gather_facts": False,
            "vars": {"monitoring_config_dir": str(tmp / "etc"), "monitoring_rabbitmq_scrape": rabbitmq_scrape},
            "tasks": [
                {
                    "name": "Build the targets",
                    "ansible.builtin.include_role": {
                        "name": "slm.edge.monitoring",
                        "tasks_from": "targets",
                        "public": True,
                    },
                },
                {
                    "name": "Render prometheus.yml",
                    "ansible.builtin.template": {
                        "src": str(REPO / "roles/monitoring/templates/prometheus.yml.j2"),
                        "dest": str(out),
                        "mode": "0640",
                    },
                },
                {
                    "name": "Keep the keys",
                    "ansible.builtin.copy": {
                        "content": "{{ __monitoring_keys | to_json }}",
                        "dest": str(tmp / "keys.json"),
                        "mode": "0600",
                    },
                    "no_log": True,
                },
            ],
        }
    ]
    (tmp / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    res = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(tmp / "hosts.yml"), str(tmp / "play.yml"), "-vvv"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    return res, out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitoring")
    res, out = _run(tmp)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return tmp, res, out


def test_jobs_from_the_inventory(built):
    out = built[2]
    cfg = yaml.safe_load(out.read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert set(jobs) == {
        "prometheus",
        "llama_server-gpu1",
        "llama_server-cpu1",
        "slm_queue_worker",
        "rabbitmq",
        "node",
        "gpu",
    }
    gpu1 = jobs["llama_server-gpu1"]
    assert [t["targets"] for t in gpu1["static_configs"]] == [["10.0.0.11:8080"], ["10.0.0.11:8081"]]
    assert gpu1["static_configs"][1]["labels"] == {"host": "gpu1", "replica": "llama-server@1"}
    assert gpu1["authorization"]["credentials_file"].endswith("/slm-credentials/gpu1.key")
    assert gpu1["relabel_configs"] == [{"target_label": "job", "replacement": "llama_server"}]
    cpu1 = jobs["llama_server-cpu1"]
    assert "authorization" not in cpu1
    assert cpu1["static_configs"][0]["targets"] == ["10.0.0.12:8080"]
    worker = {s["labels"]["host"]: s["targets"] for s in jobs["slm_queue_worker"]["static_configs"]}
    assert worker == {"queue1": ["10.0.0.13:9200"], "queue2": ["10.0.0.14:9108"], "mon1": ["127.0.0.1:9108"]}
    rabbit = {s["labels"]["host"]: s["targets"] for s in jobs["rabbitmq"]["static_configs"]}
    assert rabbit == {"queue1": ["10.0.0.13:15692"], "queue2": ["10.0.0.44:15693"], "mon1": ["127.0.0.1:15692"]}
    assert sorted(s["targets"][0] for s in jobs["node"]["static_configs"]) == [
        "10.0.0.11:9100",
        "10.0.0.12:9100",
        "fresh1:9100",
    ]
    assert jobs["gpu"]["static_configs"] == [{"targets": ["10.0.0.11:9400"], "labels": {"host": "gpu1"}}]
    assert cfg["rule_files"] == [str(built[0] / "etc" / "slm-rules" / "slm-alerts.yml")]


def test_rabbitmq_is_scraped_where_the_plugin_is_enabled(tmp_path):
    """Without monitoring_rabbitmq_scrape, the brokers whose prompt_queue_prometheus_enabled is true."""
    res, out = _run(tmp_path, rabbitmq_scrape=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    jobs = {j["job_name"]: j for j in yaml.safe_load(out.read_text())["scrape_configs"]}
    assert jobs["rabbitmq"]["static_configs"] == [{"targets": ["10.0.0.44:15693"], "labels": {"host": "queue2"}}]


def test_bool_vars_given_as_strings_choose_the_same_brokers(tmp_path):
    """ "false" / "true" as strings (INI group vars, -e, AWX surveys) choose as the bools do."""
    strings = {"queue2": {"prompt_queue_prometheus_enabled": "true"}, "mon1": {"prompt_queue_broker_enabled": "false"}}
    res, out = _run(tmp_path, rabbitmq_scrape="false", host_vars=strings)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    jobs = {j["job_name"]: j for j in yaml.safe_load(out.read_text())["scrape_configs"]}
    assert jobs["rabbitmq"]["static_configs"] == [{"targets": ["10.0.0.44:15693"], "labels": {"host": "queue2"}}]
    res, out = _run(tmp_path, rabbitmq_scrape="true", host_vars=strings)
    jobs = {j["job_name"]: j for j in yaml.safe_load(out.read_text())["scrape_configs"]}
    assert sorted(s["labels"]["host"] for s in jobs["rabbitmq"]["static_configs"]) == ["queue1", "queue2"]


def test_unpublished_hosts_are_named(built):
    res = built[1]
    assert "No llama_server_instances for fresh1" in res.stdout


def test_the_key_is_read_but_never_printed_or_written_into_the_config(built):
    tmp, res, out = built
    keys = json.loads((tmp / "keys.json").read_text())
    assert [r["item"]["host"] for r in keys["results"]] == ["gpu1"]
    assert KEY not in res.stdout + res.stderr
    assert KEY not in out.read_text()


def test_promtool_accepts_the_config(built):
    tmp, out = built[0], built[2]
    etc = tmp / "etc"
    (etc / "slm-credentials").mkdir(parents=True, exist_ok=True)
    (etc / "slm-credentials" / "gpu1.key").write_text(KEY)
    (etc / "slm-rules").mkdir(exist_ok=True)
    (etc / "slm-rules" / "slm-alerts.yml").write_text("groups: []\n")
    res = subprocess.run([_promtool(), "check", "config", str(out)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
