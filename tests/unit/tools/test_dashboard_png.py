"""tests/tools/dashboard_png.py draws every time-series panel from Prometheus' query_range answers."""

from __future__ import annotations

import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "tools"))

import dashboard_png


class FakePrometheus(BaseHTTPRequestHandler):
    queries: list[str] = []

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        expr = query["query"][0]
        FakePrometheus.queries.append(expr)
        start, end = float(query["start"][0]), float(query["end"][0])
        result = []
        if "slm_queue" not in expr:  # the queue panels have no data here
            values = [[start + i * 60, str(i % 3)] for i in range(int((end - start) / 60) + 1)]
            result = [{"metric": {"host": "h1", "replica": "llama-server@0"}, "values": values}]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return


def test_every_panel_is_queried_and_drawn(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dashboard = json.loads((ROOT / "roles/monitoring/files/grafana/slm-fleet.json").read_text())
        out = tmp_path / "dash.png"
        result = dashboard_png.render(f"http://127.0.0.1:{server.server_port}", dashboard, out, 10, "test")
    finally:
        server.shutdown()
    panels = [p for p in dashboard["panels"] if p["type"] == "timeseries"]
    assert result["panels"] == len(panels)
    assert set(result["empty"]) == {p["title"] for p in panels if all("slm_queue" in t["expr"] for t in p["targets"])}
    assert result["with_data"] == len(panels) - len(result["empty"]) > 10
    assert len(FakePrometheus.queries) == sum(len(p["targets"]) for p in panels)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_legends_fill_in_the_labels_as_grafana_does():
    metric = {"host": "h1", "replica": "llama-server@0"}
    assert dashboard_png.series_label(metric, "{{host}} {{ replica }}") == "h1 llama-server@0"
    assert dashboard_png.series_label(metric, "") == "host=h1 replica=llama-server@0"
    assert dashboard_png.series_label({"__name__": "up"}, "{{missing}}") == "up"
