"""tests/tools/fleet_timing.py: each host's seconds per role, from the json callback's report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("fleet_timing", ROOT / "tests" / "tools" / "fleet_timing.py")
fleet_timing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fleet_timing)


def task(name, start, end, hosts):
    return {"task": {"name": name, "duration": {"start": start, "end": end}}, "hosts": hosts}


REPORT = {
    "plays": [
        {
            "tasks": [
                task(
                    "slm.edge.llama_cpp : Wait for the build",
                    "2026-12-02T06:00:00.000000Z",
                    "2026-12-02T06:08:00.000000Z",
                    {"slm-time-1": {"changed": True}},
                ),
                task(
                    "slm.edge.llama_cpp : Install the build published for this platform key",
                    "2026-12-02T06:08:00.000000Z",
                    "2026-12-02T06:08:20.500000Z",
                    {"slm-time-1": {"skipped": True}, "slm-time-2": {"changed": True}},
                ),
                task("Gather facts", "2026-12-02T05:59:00Z", "2026-12-02T06:00:00Z", {"slm-time-2": {}}),
                task(
                    "slm.edge.model : Convert",
                    "2026-12-02T06:09:00Z",
                    "2026-12-02T06:09:30Z",
                    {"slm-time-1": {}, "slm-time-2": {}},
                ),
            ]
        }
    ]
}


def test_a_host_counts_only_the_tasks_it_took_part_in():
    seconds = fleet_timing.role_seconds(REPORT)
    assert seconds["slm-time-1"] == {"llama_cpp": 480.0, "model": 30.0}
    assert seconds["slm-time-2"] == {"llama_cpp": 20.5, "model": 30.0}


def test_the_summary_compares_the_receivers_with_the_builder():
    one = {"hosts": 1, "wall_seconds": 600.0, "role_seconds": {"slm-time-1": {"llama_cpp": 470.0}}}
    many = {"hosts": 2, "wall_seconds": 690.0, "role_seconds": fleet_timing.role_seconds(REPORT)}
    summary = fleet_timing.summarize(one, many)
    assert summary["ratio"] == 1.15 and summary["receiver_share_of_builder"] == round(20.5 / 480, 3)
    table = fleet_timing.markdown(one, many, summary)
    assert "| 2 hosts | 690 s (1.15x) | 480 s | 20 s |" in table


def test_the_report_is_found_after_the_progress_lines():

    text = (
        "[slm-time-1] llama.cpp build k: 14/226 steps (6%), 0m10s elapsed\n{oops\n"
        + json.dumps(REPORT, indent=0)
        + "\n"
    )
    assert fleet_timing.load_report(text) == REPORT
    assert fleet_timing.load_report("[h] no report\n") == {}
