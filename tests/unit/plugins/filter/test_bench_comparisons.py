"""slm.edge.bench_comparisons and slm.edge.bench_comparison_lines: the one B/A comparison.

The role's run.json and summary (these filters) and the Markdown report (comparison_table) must
give the same numbers, because both come from module_utils/bench_report.comparison_rows.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.slm.edge.plugins.filter.bench_comparison_lines import FilterModule as LinesFilters
from ansible_collections.slm.edge.plugins.filter.bench_comparison_lines import bench_comparison_lines
from ansible_collections.slm.edge.plugins.filter.bench_comparisons import FilterModule, bench_comparisons
from ansible_collections.slm.edge.plugins.module_utils import bench_report


def record(label, *levels):
    """What the benchmark role keeps per configuration (__benchmark_done)."""
    return {"label": label, "results_file": label + ".json", "levels": list(levels)}


def level(workload, concurrency, tps, p95):
    return {"workload": workload, "concurrency": concurrency, "aggregate_output_tps": tps, "e2e_ms": {"p95": p95}}


@pytest.fixture
def done():
    return [
        record(
            "baseline", level("chatbot", 1, 30.0, 6000.0), level("chatbot", 4, 90.0, 9000.0), level("rag", 1, 0, 1.0)
        ),
        record(
            "tuned", level("chatbot", 1, 40.0, 5000.0), level("chatbot", 4, None, 9900.0), level("rag", 1, 5.0, 2.0)
        ),
        record("q4", level("chatbot", 4, 120.0, 7000.0), level("summarization", 1, 10.0, 100.0)),
    ]


def test_every_configuration_against_the_first(done):
    rows = bench_comparisons(done)
    assert [(r["b"], r["workload"], r["concurrency"]) for r in rows] == [
        ("tuned", "chatbot", 1),
        ("tuned", "chatbot", 4),
        ("tuned", "rag", 1),
        ("q4", "chatbot", 4),
    ]
    assert {r["a"] for r in rows} == {"baseline"}
    first = rows[0]
    assert first["aggregate_output_tps_ratio"] == 1.333  # rounded to three decimals
    assert first["e2e_p95_ratio"] == 0.833
    assert (first["aggregate_output_tps_a"], first["aggregate_output_tps_b"]) == (30.0, 40.0)
    assert rows[1]["aggregate_output_tps_ratio"] is None  # B unknown
    assert rows[2]["aggregate_output_tps_ratio"] is None  # A is zero
    assert rows[2]["e2e_p95_ratio"] == 2.0


def test_one_configuration_has_nothing_to_compare(done):
    assert bench_comparisons(done[:1]) == []
    assert bench_comparisons([]) == []


def test_the_report_renders_the_same_rows(done):
    rows = [r for r in bench_comparisons(done) if r["b"] == "tuned"]
    table = bench_report.comparison_table(done[0], done[1])
    assert len(table) == 2 + len(rows)
    assert table[2].split(" | ")[4] == "1.33x"
    assert [{k: v for k, v in r.items() if k not in ("a", "b")} for r in rows] == bench_report.comparison_rows(
        done[0], done[1]
    )


def test_lines(done):
    lines = bench_comparison_lines(bench_comparisons(done))
    assert lines[0] == (
        "tuned vs baseline, chatbot at concurrency 1: aggregate tok/s B/A 1.33x (30.0 -> 40.0), "
        "p95 E2E B/A 0.83x (6000.0 -> 5000.0 ms)"
    )
    assert "aggregate tok/s B/A - (90.0 -> None)" in lines[1]


@pytest.mark.parametrize("bad", ["text", [{"label": "x"}], [{"levels": "many"}]])
def test_input_that_is_not_results_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="bench_comparisons"):
        bench_comparisons(bad)


def test_lines_of_something_else_are_refused():
    with pytest.raises(AnsibleFilterError, match="not a row of bench_comparisons"):
        bench_comparison_lines([{"a": "x"}])


def test_filters_are_registered():
    assert FilterModule().filters()["bench_comparisons"] is bench_comparisons
    assert LinesFilters().filters()["bench_comparison_lines"] is bench_comparison_lines
