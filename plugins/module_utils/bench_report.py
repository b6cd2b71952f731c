# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Markdown report for slm.edge.llm_benchmark results.

Pure functions, standard library only and no imports from the collection, so
the file can be imported on its own (``roles/benchmark/files/bench_report.py``
puts this directory on ``sys.path``) as well as through
``ansible_collections.slm.edge.plugins.module_utils.bench_report``.

Input: a list of results documents, one per configuration, each as returned
by the module in ``benchmark`` (or written to ``output_json``). The first one
is the baseline *A*; every other one is compared with it as *B*.
"""

DEFAULT_TITLE = "LLM serving benchmark"


RESULT_KEYS = ("benchmark", "results")


def normalize(doc):
    """Return the results dict from a results document or a registered module result.

    A registered result holds the document under ``benchmark`` (``results`` is
    accepted too, for documents saved by other tools).
    """
    if isinstance(doc, dict) and "levels" not in doc:
        for key in RESULT_KEYS:
            if isinstance(doc.get(key), dict):
                doc = doc[key]
                break
    if not isinstance(doc, dict) or not isinstance(doc.get("levels"), list):
        raise ValueError("not an llm_benchmark results document (no 'levels' list)")
    return doc


def label_of(result, index=0):
    """Configuration label: ``config.label``, else ``config-<n>``."""
    label = (result.get("config") or {}).get("label") or result.get("label")
    return str(label) if label else "config-%d" % (index + 1)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def fmt(value, digits=1):
    """Number for a table cell; ``-`` when unknown."""
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return "%.*f" % (digits, float(value))


def ratio(b_value, a_value):
    """B / A, or ``None`` when either is unknown or A is zero."""
    if a_value is None or b_value is None:
        return None
    if float(a_value) == 0.0:
        return None
    return float(b_value) / float(a_value)


def fmt_ratio(value):
    return "-" if value is None else "%.2fx" % value


def _stat(level, metric, key):
    return (level.get(metric) or {}).get(key)


def level_key(level):
    return (level.get("workload"), level.get("concurrency"))


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def config_table(result):
    """Markdown lines: one row per workload and concurrency level."""
    header = [
        "Workload",
        "Concurrency",
        "Requests",
        "Errors",
        "TTFT p50 (ms)",
        "TTFT p95 (ms)",
        "TTFT p99 (ms)",
        "ITL p50 (ms)",
        "E2E p95 (ms)",
        "Req tok/s p50",
        "Agg tok/s",
    ]
    rows = []
    for level in result.get("levels") or []:
        rows.append(
            [
                level.get("workload") or "-",
                fmt(level.get("concurrency")),
                fmt(level.get("requests")),
                fmt(level.get("errors")),
                fmt(_stat(level, "ttft_ms", "p50")),
                fmt(_stat(level, "ttft_ms", "p95")),
                fmt(_stat(level, "ttft_ms", "p99")),
                fmt(_stat(level, "itl_ms", "p50")),
                fmt(_stat(level, "e2e_ms", "p95")),
                fmt(_stat(level, "output_tps", "p50")),
                fmt(level.get("aggregate_output_tps")),
            ]
        )
    return _table(header, rows)


RATIO_DIGITS = 3


def comparison_rows(result_a, result_b):
    """Per (workload, concurrency) present in both: aggregate tok/s and p95 E2E of A and B and B/A.

    This is the one definition of the B/A comparison: the Markdown report renders these rows, and
    the slm.edge.bench_comparisons filter gives them to the benchmark role for run.json and its
    summary. Ratios are rounded to ``RATIO_DIGITS`` decimals.
    """
    levels_b = {level_key(lv): lv for lv in result_b.get("levels") or []}
    rows = []
    for level_a in result_a.get("levels") or []:
        level_b = levels_b.get(level_key(level_a))
        if level_b is None:
            continue
        tps_a = level_a.get("aggregate_output_tps")
        tps_b = level_b.get("aggregate_output_tps")
        p95_a = _stat(level_a, "e2e_ms", "p95")
        p95_b = _stat(level_b, "e2e_ms", "p95")
        rows.append(
            {
                "workload": level_a.get("workload"),
                "concurrency": level_a.get("concurrency"),
                "aggregate_output_tps_a": tps_a,
                "aggregate_output_tps_b": tps_b,
                "aggregate_output_tps_ratio": _round_ratio(ratio(tps_b, tps_a)),
                "e2e_p95_ms_a": p95_a,
                "e2e_p95_ms_b": p95_b,
                "e2e_p95_ratio": _round_ratio(ratio(p95_b, p95_a)),
            }
        )
    return rows


def _round_ratio(value):
    return None if value is None else round(value, RATIO_DIGITS)


def comparisons(results):
    """Every configuration after the first (B) against the first (A): comparison_rows with labels.

    ``results`` are results documents or the role's per-configuration records (a C(label) and
    C(levels)); each row gains C(a) and C(b), the labels of A and B.
    """
    results = [normalize(r) for r in results]
    if len(results) < 2:
        return []
    base = results[0]
    label_a = label_of(base, 0)
    rows = []
    for index, other in enumerate(results[1:], start=1):
        label_b = label_of(other, index)
        for row in comparison_rows(base, other):
            rows.append(dict({"a": label_a, "b": label_b}, **row))
    return rows


def comparison_line(row):
    """One sentence for a row of comparisons()."""
    return "%s vs %s, %s at concurrency %s: aggregate tok/s B/A %s (%s -> %s), p95 E2E B/A %s (%s -> %s ms)" % (
        row["b"],
        row["a"],
        row["workload"],
        row["concurrency"],
        fmt_ratio(row["aggregate_output_tps_ratio"]),
        row["aggregate_output_tps_a"],
        row["aggregate_output_tps_b"],
        fmt_ratio(row["e2e_p95_ratio"]),
        row["e2e_p95_ms_a"],
        row["e2e_p95_ms_b"],
    )


def comparison_table(result_a, result_b):
    """Markdown lines of the side-by-side table of B against A."""
    header = [
        "Workload",
        "Concurrency",
        "Agg tok/s A",
        "Agg tok/s B",
        "Agg tok/s B/A",
        "E2E p95 A (ms)",
        "E2E p95 B (ms)",
        "E2E p95 B/A",
    ]
    rows = [
        [
            row["workload"] or "-",
            fmt(row["concurrency"]),
            fmt(row["aggregate_output_tps_a"]),
            fmt(row["aggregate_output_tps_b"]),
            fmt_ratio(row["aggregate_output_tps_ratio"]),
            fmt(row["e2e_p95_ms_a"]),
            fmt(row["e2e_p95_ms_b"]),
            fmt_ratio(row["e2e_p95_ratio"]),
        ]
        for row in comparison_rows(result_a, result_b)
    ]
    return _table(header, rows)


def roofline_line(result):
    """One sentence about the roofline, or ``None`` when the result has none."""
    roof = result.get("roofline")
    if not roof or roof.get("limit_tps") is None:
        return None
    size_gb = (roof.get("model_bytes") or 0) / 1e9
    text = "Roofline: single-stream decode limit %s tok/s (%s GB/s / %.2f GB of weights)" % (
        fmt(roof.get("limit_tps")),
        fmt(roof.get("memory_bandwidth_gbps"), 0),
        size_gb,
    )
    if roof.get("achieved_tps") is not None:
        text += "; achieved %s tok/s at concurrency 1" % fmt(roof.get("achieved_tps"))
        if roof.get("ratio") is not None:
            text += " = %.0f%% of the limit" % (100.0 * roof["ratio"])
    return text + "."


def server_line(result):
    servers = result.get("servers") or []
    if not servers:
        return None
    first = servers[0]
    model = first.get("model_path") or first.get("model_id") or "unknown model"
    parts = ["Model `%s`" % model]
    if first.get("n_ctx"):
        parts.append("n_ctx %s" % first["n_ctx"])
    if first.get("total_slots"):
        parts.append("%s slots" % first["total_slots"])
    if first.get("build_info"):
        parts.append("llama.cpp %s" % first["build_info"])
    parts.append("%d endpoint%s" % (len(servers), "" if len(servers) == 1 else "s"))
    return ", ".join(parts) + "."


def render_markdown(results, title=DEFAULT_TITLE):
    """Render the whole report for ``results`` (list of results documents)."""
    results = [normalize(r) for r in results]
    if not results:
        raise ValueError("no results to report")
    lines = ["# %s" % title, ""]
    lines.append(
        "Latencies in milliseconds; TTFT = time to first token, ITL = inter-token latency, "
        "E2E = end-to-end request latency; Req tok/s = output tokens/s of one request; "
        "Agg tok/s = output tokens of the level / wall time of the level. "
        "Percentiles interpolate linearly between closest ranks; they cover successful requests."
    )
    lines.append("")
    for index, result in enumerate(results):
        config = result.get("config") or {}
        lines.append("## %s" % label_of(result, index))
        lines.append("")
        for extra in (server_line(result), roofline_line(result)):
            if extra:
                lines.append(extra)
                lines.append("")
        meta = []
        if result.get("started_at"):
            meta.append("started %s" % result["started_at"])
        if config.get("requests_per_level") is not None:
            meta.append(
                "at most %s requests or %s s per level"
                % (config.get("requests_per_level"), fmt(config.get("max_seconds_per_level"), 0))
            )
        totals = result.get("totals")
        if totals:
            meta.append("%s requests, %s errors" % (totals.get("requests"), totals.get("errors")))
        if meta:
            lines.append("Run: " + "; ".join(meta) + ".")
            lines.append("")
        lines.extend(config_table(result))
        lines.append("")
    if len(results) > 1:
        base = results[0]
        base_label = label_of(base, 0)
        lines.append("## Side by side")
        lines.append("")
        for index, other in enumerate(results[1:], start=1):
            lines.append("### A = %s, B = %s" % (base_label, label_of(other, index)))
            lines.append("")
            lines.append("B/A above 1 means B delivers more tokens/s (better) or has a higher p95 latency (worse).")
            lines.append("")
            lines.extend(comparison_table(base, other))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
