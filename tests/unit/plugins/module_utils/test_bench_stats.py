"""Unit tests for plugins/module_utils/bench_stats.py."""

import math

import pytest
from ansible_collections.slm.edge.plugins.module_utils import bench_stats as bs


def test_percentile_exact_on_known_data():
    data = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    # rank = (n - 1) * p / 100 = 9 * p / 100, linear between neighbours
    assert bs.percentile(data, 0) == 1
    assert bs.percentile(data, 100) == 10
    assert bs.percentile(data, 50) == pytest.approx(5.5)
    assert bs.percentile(data, 95) == pytest.approx(9.55)
    assert bs.percentile(data, 99) == pytest.approx(9.91)
    assert bs.percentile(data, 25) == pytest.approx(3.25)


def test_percentile_matches_numpy_linear_definition():
    data = [0.5, 10.0, 3.0, 7.25, 2.0]  # unsorted on purpose
    ordered = sorted(data)
    for pct in (0, 10, 33, 50, 90, 95, 99, 100):
        rank = (len(ordered) - 1) * pct / 100
        lo, hi = math.floor(rank), math.ceil(rank)
        expected = ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)
        assert bs.percentile(data, pct) == pytest.approx(expected)


def test_percentile_edge_cases():
    assert bs.percentile([], 50) is None
    assert bs.percentile([None, None], 50) is None
    assert bs.percentile([42], 99) == 42
    assert bs.percentile([1, None, 3], 50) == 2
    with pytest.raises(ValueError):
        bs.percentile([1, 2], 101)
    with pytest.raises(ValueError):
        bs.percentile([1, 2], -1)


@pytest.mark.parametrize(
    "data",
    [
        [5.0] * 7,
        list(range(1, 101)),
        [0.1, 100.0, 3.3, 2.2, 50.0, 0.0, 7.0],
        [1e6, 1.0],
    ],
)
def test_percentiles_are_ordered(data):
    dist = bs.distribution(data)
    assert dist["min"] <= dist["p50"] <= dist["p95"] <= dist["p99"] <= dist["max"]
    assert dist["count"] == len(data)


def test_distribution_empty_has_all_keys():
    dist = bs.distribution([])
    assert dist == {"count": 0, "min": None, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}


def _rec(ttft, e2e, tokens, itl=None, error=None, prompt=80):
    return {
        "ttft_ms": ttft,
        "e2e_ms": e2e,
        "output_tokens": tokens,
        "prompt_tokens": prompt,
        "itl_ms": itl or [],
        "error": error,
    }


def test_summarize_level_counts_add_up_and_use_successes_only():
    records = [
        _rec(100, 1100, 11, [100.0] * 10),
        _rec(200, 2200, 21, [100.0] * 20),
        _rec(300, 3300, 31, [100.0] * 30),
        _rec(None, 5, 0, error="HTTP 500: boom"),
        _rec(None, 7, 0, error="timeout: no data for 1s"),
    ]
    summary = bs.summarize_level(records, wall_seconds=4.0, concurrency=4, workload="chatbot")
    assert summary["requests"] == 5
    assert summary["success"] == 3
    assert summary["errors"] == 2
    assert summary["success"] + summary["errors"] == summary["requests"]
    assert summary["error_rate"] == pytest.approx(0.4)
    assert summary["concurrency"] == 4
    assert summary["workload"] == "chatbot"
    # aggregate = total output tokens of successful requests / wall time of the level
    assert summary["output_tokens_total"] == 63
    assert summary["aggregate_output_tps"] == pytest.approx(63 / 4.0)
    assert summary["requests_per_s"] == pytest.approx(0.75)
    assert summary["prompt_tokens_total"] == 240
    assert summary["ttft_ms"]["count"] == 3
    assert summary["ttft_ms"]["p50"] == pytest.approx(200)
    assert summary["e2e_ms"]["p50"] == pytest.approx(2200)
    assert summary["itl_ms"]["count"] == 60
    assert summary["itl_ms"]["p99"] == pytest.approx(100)
    # per-request tok/s = tokens / e2e; decode tok/s = (tokens - 1) / (e2e - ttft)
    assert summary["output_tps"]["p50"] == pytest.approx(21 / 2.2, rel=1e-3)
    assert summary["decode_tps"]["p50"] == pytest.approx(10.0)
    assert summary["error_samples"] == ["HTTP 500: boom", "timeout: no data for 1s"]


def test_summarize_level_empty_and_all_errors():
    empty = bs.summarize_level([], wall_seconds=0.0, concurrency=1)
    assert (empty["requests"], empty["success"], empty["errors"]) == (0, 0, 0)
    assert empty["aggregate_output_tps"] is None
    failed = bs.summarize_level([_rec(None, 1, 0, error="x")] * 3, wall_seconds=1.0)
    assert (failed["requests"], failed["success"], failed["errors"]) == (3, 0, 3)
    assert failed["aggregate_output_tps"] == 0
    assert failed["ttft_ms"]["p50"] is None


def test_request_rates():
    assert bs.request_output_tps(100, 2000) == pytest.approx(50.0)
    assert bs.request_output_tps(0, 2000) is None
    assert bs.request_output_tps(10, 0) is None
    assert bs.request_decode_tps(101, 1000, 3000) == pytest.approx(50.0)
    assert bs.request_decode_tps(1, 1000, 3000) is None
    assert bs.request_decode_tps(10, 3000, 3000) is None


def test_roofline_math():
    # T4: 320 GB/s; SmolLM2-1.7B f16 ~ 3.42 GB -> ~93.5 tok/s single-stream ceiling
    assert bs.roofline_limit_tps(320, 3.42e9) == pytest.approx(320e9 / 3.42e9)
    line = bs.roofline(320, 3.2e9, achieved_tps=50.0)
    assert line["limit_tps"] == pytest.approx(100.0)
    assert line["achieved_tps"] == pytest.approx(50.0)
    assert line["ratio"] == pytest.approx(0.5)
    assert line["memory_bandwidth_gbps"] == 320
    assert line["model_bytes"] == 3.2e9
    no_achieved = bs.roofline(320, 3.2e9)
    assert no_achieved["limit_tps"] == pytest.approx(100.0)
    assert no_achieved["ratio"] is None
    assert bs.roofline_limit_tps(None, 3.2e9) is None
    assert bs.roofline_limit_tps(320, 0) is None


def test_single_stream_decode_tps_picks_concurrency_one():
    levels = [
        {"concurrency": 4, "workload": "chatbot", "decode_tps": {"p50": 30.0}},
        {"concurrency": 1, "workload": "summarization", "decode_tps": {"p50": 44.0}},
        {"concurrency": 1, "workload": "chatbot", "decode_tps": {"p50": 45.0}},
    ]
    assert bs.single_stream_decode_tps(levels) == 44.0
    assert bs.single_stream_decode_tps(levels, workload="chatbot") == 45.0
    assert bs.single_stream_decode_tps(levels[:1]) is None


def test_percentile_is_the_standard_library_inclusive_quantile():
    import statistics  # noqa: PLC0415

    data = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    assert [bs.percentile(data, p) for p in range(1, 100)] == cuts
    assert bs.percentile(data, 99.9) == pytest.approx(statistics.quantiles(data, n=1000, method="inclusive")[998])
    with pytest.raises(ValueError, match="at most four decimals"):
        bs.percentile(data, 12.3456789)
