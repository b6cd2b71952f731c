"""The fleet dashboard (roles/monitoring/files/grafana/slm-fleet.json) queries metrics that exist.

llama-server, node_exporter and Prometheus names are checked against a live Prometheus in
molecule/monitoring; here the queue panels are checked against the names the worker exports
and the GPU panels against DCGM exporter's default counters.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "tools"))

import dashboard_metrics
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = REPO / "roles" / "monitoring" / "files" / "grafana" / "slm-fleet.json"
WORKER = REPO / "roles" / "prompt_queue" / "files" / "slm_queue_worker.py"
# DCGM exporter's default-counters.csv fields the dashboard and the alerts use.
DCGM_DEFAULTS = {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP"}
LIVE_PREFIXES = ("llamacpp:", "node_")
LIVE_NAMES = {"up", "ALERTS"}


def _names() -> dict[str, list[str]]:
    return dashboard_metrics.panels(json.loads(DASHBOARD.read_text()))


def test_every_panel_queries_something():
    dash = json.loads(DASHBOARD.read_text())
    graphs = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(graphs) >= 15
    assert all(p.get("targets") for p in graphs)
    assert set(_names()) == {p["title"] for p in graphs}


def _exported() -> set[str]:
    """Every sample name a live worker's /metrics page has (its Metrics, rendered and parsed)."""
    spec = importlib.util.spec_from_file_location("slm_queue_worker", WORKER)
    worker = importlib.util.module_from_spec(spec)
    sys.modules["slm_queue_worker"] = worker  # dataclasses look their module up there
    spec.loader.exec_module(worker)
    metrics = worker.Metrics("slm.chat")
    metrics.set("depth", 1)
    metrics.set("dead_depth", 0)
    metrics.servers_up = {"http://127.0.0.1:8080": True}
    metrics.dead_lettered("rejected")
    text = metrics.render().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def test_queue_panels_name_metrics_the_worker_exports():
    names = _exported()
    assert {"slm_queue_depth", "slm_queue_answered_total", "slm_queue_request_seconds_bucket"} <= names
    used = {n for ns in _names().values() for n in ns if n.startswith("slm_queue_")}
    assert used, "no queue panel"
    assert used <= names, used - names


def test_every_other_name_is_a_gpu_counter_or_checked_live():
    rest = {n for ns in _names().values() for n in ns if not n.startswith("slm_queue_")}
    unknown = {n for n in rest if n not in DCGM_DEFAULTS and n not in LIVE_NAMES and not n.startswith(LIVE_PREFIXES)}
    assert not unknown


def test_metric_names_leave_out_functions_labels_and_numbers():
    expr = 'histogram_quantile(0.95, sum by (le, host) (rate(x_bucket{job="a", le!="1e3"}[5m]))) / on(host) y > 1e-9'
    assert dashboard_metrics.metric_names(expr) == ["x_bucket", "y"]
