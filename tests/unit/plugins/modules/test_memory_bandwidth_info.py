"""slm.edge.memory_bandwidth_info: a real (small) copy probe, its parameters and its result."""

from __future__ import annotations

import pytest
from ansible_collections.slm.edge.plugins.modules import memory_bandwidth_info
from ansible_module_runner import run_module


def test_a_small_probe_measures_a_positive_bandwidth():
    result = run_module(memory_bandwidth_info.main, {"processes": 2, "buffer_mib": 4, "seconds": 0.05, "trials": 2})
    assert result["changed"] is False
    assert result["processes"] == 2 and result["buffer_mib"] == 4
    assert len(result["trials_gbps"]) == 2
    assert result["memory_bandwidth_gbps"] == max(result["trials_gbps"]) > 0.1
    assert "2 processes" in result["method"]


def test_processes_default_to_the_cpus_at_most_32(monkeypatch):
    monkeypatch.setattr(memory_bandwidth_info, "_cpus", lambda: 96)
    seen = []
    monkeypatch.setattr(memory_bandwidth_info, "trial", lambda n, size, seconds: seen.append((n, size)) or 10.0)
    result = run_module(memory_bandwidth_info.main, {"buffer_mib": 8, "trials": 1})
    assert seen == [(32, 8 * 1024 * 1024)] and result["memory_bandwidth_gbps"] == 10.0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"buffer_mib": 0}, "buffer_mib=0"),
        ({"trials": 0}, "trials=0"),
        ({"seconds": 0}, "seconds=0"),
        ({"processes": -1}, "processes=-1"),
    ],
)
def test_bad_parameters_are_refused_by_name(args, named):
    result = run_module(memory_bandwidth_info.main, args, expect_failure=True)
    assert named in result["msg"]
