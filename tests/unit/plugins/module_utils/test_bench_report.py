"""Unit tests for the benchmark report (module_utils/bench_report.py) and the role's CLI tools."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.slm.edge.plugins.module_utils import bench_report

ROOT = Path(__file__).resolve().parents[4]
FILES = ROOT / "roles" / "benchmark" / "files"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _level(workload, concurrency, agg, p95, errors=0, requests=8):
    return {
        "workload": workload,
        "concurrency": concurrency,
        "requests": requests,
        "success": requests - errors,
        "errors": errors,
        "aggregate_output_tps": agg,
        "ttft_ms": {"p50": 50.0, "p95": 90.0, "p99": 99.0},
        "itl_ms": {"p50": 20.0},
        "e2e_ms": {"p50": p95 / 2, "p95": p95, "p99": p95 * 1.1},
        "output_tps": {"p50": 30.0},
    }


def _result(label, levels, roofline=None):
    doc = {
        "schema_version": 1,
        "config": {"label": label, "requests_per_level": 8, "max_seconds_per_level": 120.0},
        "servers": [
            {
                "url": "http://127.0.0.1:8080",
                "model_path": f"/opt/slm/models/{label}.gguf",
                "n_ctx": 8192,
                "total_slots": 4,
                "build_info": "b4942-abc",
            }
        ],
        "started_at": "2025-06-23T10:00:00Z",
        "totals": {"requests": 8 * len(levels), "errors": sum(lv["errors"] for lv in levels)},
        "levels": levels,
    }
    if roofline:
        doc["roofline"] = roofline
    return doc


@pytest.fixture
def pair():
    a = _result(
        "f16",
        [_level("chatbot", 1, 40.0, 5000.0), _level("chatbot", 4, 100.0, 8000.0, errors=1)],
        roofline={
            "memory_bandwidth_gbps": 320,
            "model_bytes": 3.2e9,
            "limit_tps": 100.0,
            "achieved_tps": 40.0,
            "ratio": 0.4,
        },
    )
    b = _result("q4_k_m", [_level("chatbot", 1, 80.0, 2500.0), _level("chatbot", 4, 250.0, 4000.0)])
    return a, b


def test_ratio_helpers():
    assert bench_report.ratio(2.0, 1.0) == 2.0
    assert bench_report.ratio(1.0, 0) is None
    assert bench_report.ratio(None, 1.0) is None
    assert bench_report.fmt_ratio(2.5) == "2.50x"
    assert bench_report.fmt_ratio(None) == "-"
    assert bench_report.fmt(None) == "-"
    assert bench_report.fmt(3) == "3"
    assert bench_report.fmt(3.14159, 2) == "3.14"


def test_comparison_rows_b_over_a(pair):
    a, b = pair
    rows = bench_report.comparison_rows(a, b)
    assert [(r["workload"], r["concurrency"]) for r in rows] == [("chatbot", 1), ("chatbot", 4)]
    assert rows[0]["aggregate_output_tps_ratio"] == pytest.approx(2.0)
    assert rows[1]["aggregate_output_tps_ratio"] == pytest.approx(2.5)
    assert rows[0]["e2e_p95_ratio"] == pytest.approx(0.5)


def test_markdown_report_has_tables_ratios_and_roofline(pair):
    text = bench_report.render_markdown(list(pair), title="T4 run")
    assert text.startswith("# T4 run\n")
    assert "## f16" in text and "## q4_k_m" in text
    assert "### A = f16, B = q4_k_m" in text
    assert "| chatbot | 1 | 40.0 | 80.0 | 2.00x | 5000.0 | 2500.0 | 0.50x |" in text
    assert "| chatbot | 4 | 100.0 | 250.0 | 2.50x | 8000.0 | 4000.0 | 0.50x |" in text
    # per-configuration row: concurrency, requests, errors, TTFT p50/p95/p99, ITL p50, E2E p95, req tok/s, agg
    assert "| chatbot | 4 | 8 | 1 | 50.0 | 90.0 | 99.0 | 20.0 | 8000.0 | 30.0 | 100.0 |" in text
    assert "Roofline: single-stream decode limit 100.0 tok/s (320 GB/s / 3.20 GB of weights)" in text
    assert "= 40% of the limit" in text
    assert "Model `/opt/slm/models/f16.gguf`, n_ctx 8192, 4 slots, llama.cpp b4942-abc, 1 endpoint." in text
    # the roofline line belongs to the configuration that has it
    assert text.count("Roofline:") == 1


def test_single_result_has_no_side_by_side(pair):
    text = bench_report.render_markdown([pair[0]])
    assert "Side by side" not in text


def test_normalize_accepts_registered_module_result(pair):
    assert bench_report.normalize({"changed": False, "benchmark": pair[0]}) is pair[0]
    assert bench_report.normalize({"results": pair[1]}) is pair[1]
    with pytest.raises(ValueError):
        bench_report.normalize({"msg": "nothing"})
    with pytest.raises(ValueError):
        bench_report.render_markdown([])


def test_label_cells_are_escaped():
    doc = _result("a|b", [_level("chatbot", 1, 1.0, 1.0)])
    assert "## a|b" in bench_report.render_markdown([doc])
    lines = bench_report.config_table({"levels": [_level("x|y", 1, 1.0, 1.0)]})
    assert "x\\|y" in lines[2]


def _write(tmp_path, pair):
    paths = []
    for doc in pair:
        path = tmp_path / f"{doc['config']['label']}.json"
        path.write_text(json.dumps(doc))
        paths.append(str(path))
    return paths


def test_report_cli_writes_markdown(tmp_path, pair):
    paths = _write(tmp_path, pair)
    out = tmp_path / "report.md"
    proc = subprocess.run(
        [sys.executable, str(FILES / "bench_report.py"), "-o", str(out), "--title", "CLI", *paths],
        capture_output=True,
        text=True,
        check=False,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text == bench_report.render_markdown(list(pair), title="CLI")
    assert "2.00x" in text


def test_report_cli_rejects_other_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    proc = subprocess.run(
        [sys.executable, str(FILES / "bench_report.py"), str(bad)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "not an llm_benchmark results document" in proc.stderr


def test_plot_cli_writes_png(tmp_path, pair):
    pytest.importorskip("matplotlib")
    paths = _write(tmp_path, pair)
    out = tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, str(FILES / "bench_plot.py"), "-o", str(out), "--title", "T4", *paths],
        capture_output=True,
        text=True,
        check=False,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000


def test_plot_series_one_line_per_configuration_and_workload(pair):
    sys.path.insert(0, str(FILES))
    try:
        import bench_plot  # noqa: PLC0415
    finally:
        sys.path.remove(str(FILES))
    a, b = pair
    both = _result("mixed", [_level("summarization", 4, 9.0, 9.0), _level("chatbot", 1, 1.0, 1.0)])
    lines = bench_plot.series([a, b, both])
    assert [line[0] for line in lines] == ["f16", "q4_k_m", "mixed (summarization)", "mixed (chatbot)"]
    conc, tps, p95 = lines[0][1:]
    assert conc == [1, 4]
    assert tps == [40.0, 100.0]
    assert p95 == [5.0, 8.0]


def _rounds(pairs):
    """A, B, A, B ...: each pair is (A's tok/s, B's tok/s) of one round at concurrency 8."""
    docs = []
    for agg_a, agg_b in pairs:
        docs.append(_result("runbook", [_level("chatbot", 8, agg_a, 1000.0)]))
        docs.append(_result("collection", [_level("chatbot", 8, agg_b, 500.0)]))
    return docs


def test_alternating_rounds_give_the_median_ratio_and_its_spread():
    rows = bench_report.comparisons(_rounds([(10.0, 16.0), (12.0, 18.0), (11.0, 17.6)]))
    assert len(rows) == 1
    row = rows[0]
    assert (row["a"], row["b"], row["rounds"]) == ("runbook", "collection", 3)
    assert row["aggregate_output_tps_ratio"] == 1.6  # rounds: 1.6, 1.5, 1.6
    assert (row["aggregate_output_tps_ratio_min"], row["aggregate_output_tps_ratio_max"]) == (1.5, 1.6)
    assert row["aggregate_output_tps_ratio_clear"] is True
    assert row["aggregate_output_tps_a"] == 11.0 and row["e2e_p95_ratio"] == 0.5
    line = bench_report.comparison_line(row)
    assert "B/A 1.60x (median of 3 rounds, 1.50x to 1.60x)" in line and "no clear effect" not in line


def test_a_spread_as_large_as_the_effect_is_said_not_claimed():
    row = bench_report.comparisons(_rounds([(10.0, 9.0), (10.0, 11.5), (10.0, 10.4)]))[0]
    assert row["aggregate_output_tps_ratio"] == 1.04 and row["aggregate_output_tps_ratio_clear"] is False
    assert "no clear effect" in bench_report.comparison_line(row)
    report = bench_report.render_markdown(_rounds([(10.0, 9.0), (10.0, 11.5), (10.0, 10.4)]))
    assert "## runbook, round 2 of 3" in report and "## collection, round 3 of 3" in report
    assert "| chatbot | 8 | 10.0 | 10.4 | 1.04x (0.90x-1.15x) ~ |" in report
    assert report.count("### A = runbook, B = collection") == 1


def test_one_round_each_is_the_plain_comparison():
    rows = bench_report.comparisons(_rounds([(10.0, 16.0)]))
    assert "rounds" not in rows[0] and rows[0]["aggregate_output_tps_ratio"] == 1.6
