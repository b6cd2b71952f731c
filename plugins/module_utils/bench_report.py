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

When a label comes back several times (the role's ``benchmark_rounds``: A, B, A, B, ...),
its i-th document is round i. B/A is then computed round by round (round i of B against round
i of A, which ran next to each other) and reported as the median with the lowest and highest
round; when half that range is at least the median's distance from 1, the rows say that the
spread is larger than the effect instead of claiming a difference.
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


def median(values):
    """The median of the known values, or ``None``."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0


def clear_effect(ratios):
    """For per-round B/A ratios: True when the median is further from 1 than half the spread
    (lowest to highest round), False when the spread is as large as the effect, None with one round."""
    known = [r for r in ratios if r is not None]
    if len(known) < 2:
        return None
    return abs(median(known) - 1.0) > (max(known) - min(known)) / 2.0


def grouped(results):
    """(label, [documents]) in the order each label first appears; a label's i-th document is its round i."""
    groups = []
    where = {}
    for position, result in enumerate(results):
        label = label_of(result, position)
        if label not in where:
            where[label] = len(groups)
            groups.append((label, []))
        groups[where[label]][1].append(result)
    return groups


def round_rows(rounds_a, rounds_b):
    """comparison_rows over rounds paired in order: the medians of A, of B and of the per-round B/A,
    the lowest and highest per-round B/A, and whether the effect is larger than that spread."""
    per_round = [
        {(r["workload"], r["concurrency"]): r for r in comparison_rows(rounds_a[i], rounds_b[i])}
        for i in range(min(len(rounds_a), len(rounds_b)))
    ]
    rows = []
    for key in per_round[0] if per_round else []:
        seen = [pr[key] for pr in per_round if key in pr]
        row = {"workload": key[0], "concurrency": key[1], "rounds": len(seen)}
        for field, ratio_field in (
            ("aggregate_output_tps", "aggregate_output_tps_ratio"),
            ("e2e_p95_ms", "e2e_p95_ratio"),
        ):
            ratios = [r[ratio_field] for r in seen]
            known = [r for r in ratios if r is not None]
            row[field + "_a"] = _round_ratio(median(r[field + "_a"] for r in seen))
            row[field + "_b"] = _round_ratio(median(r[field + "_b"] for r in seen))
            row[ratio_field] = _round_ratio(median(known))
            row[ratio_field + "_min"] = min(known) if known else None
            row[ratio_field + "_max"] = max(known) if known else None
            row[ratio_field + "_clear"] = clear_effect(known)
        rows.append(row)
    return rows


def comparisons(results):
    """Every configuration after the first (B) against the first (A): comparison_rows with labels.

    ``results`` are results documents or the role's per-configuration records (a C(label) and
    C(levels)); each row gains C(a) and C(b), the labels of A and B. A label that appears more
    than once is a set of rounds (round_rows).
    """
    groups = grouped([normalize(r) for r in results])
    if len(groups) < 2:
        return []
    label_a, rounds_a = groups[0]
    rows = []
    for label_b, rounds_b in groups[1:]:
        if len(rounds_a) == 1 and len(rounds_b) == 1:
            found = comparison_rows(rounds_a[0], rounds_b[0])
        else:
            found = round_rows(rounds_a, rounds_b)
        for row in found:
            rows.append(dict({"a": label_a, "b": label_b}, **row))
    return rows


def _spread(row, field):
    """`` (median of 3 rounds, 1.41 to 1.52)`` and the verdict, for a row of several rounds."""
    if row.get("rounds", 1) < 2:
        return ""
    text = " (median of %d rounds, %s to %s" % (
        row["rounds"],
        fmt_ratio(row.get(field + "_min")),
        fmt_ratio(row.get(field + "_max")),
    )
    if row.get(field + "_clear") is False:
        text += ": the spread between rounds is as large as the difference, no clear effect"
    return text + ")"


def comparison_line(row):
    """One sentence for a row of comparisons()."""
    return "%s vs %s, %s at concurrency %s: aggregate tok/s B/A %s%s (%s -> %s), p95 E2E B/A %s%s (%s -> %s ms)" % (
        row["b"],
        row["a"],
        row["workload"],
        row["concurrency"],
        fmt_ratio(row["aggregate_output_tps_ratio"]),
        _spread(row, "aggregate_output_tps_ratio"),
        row["aggregate_output_tps_a"],
        row["aggregate_output_tps_b"],
        fmt_ratio(row["e2e_p95_ratio"]),
        _spread(row, "e2e_p95_ratio"),
        row["e2e_p95_ms_a"],
        row["e2e_p95_ms_b"],
    )


def _ratio_cell(row, field):
    cell = fmt_ratio(row[field])
    if row.get("rounds", 1) > 1:
        cell += " (%s-%s)" % (fmt_ratio(row.get(field + "_min")), fmt_ratio(row.get(field + "_max")))
        if row.get(field + "_clear") is False:
            cell += " ~"
    return cell


def comparison_table(result_a, result_b):
    """Markdown lines of the side-by-side table of B against A."""
    return comparison_table_rows(comparison_rows(result_a, result_b))


def comparison_table_rows(found):
    """Markdown lines of the side-by-side table of rows from comparison_rows or round_rows."""
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
            _ratio_cell(row, "aggregate_output_tps_ratio"),
            fmt(row["e2e_p95_ms_a"]),
            fmt(row["e2e_p95_ms_b"]),
            _ratio_cell(row, "e2e_p95_ratio"),
        ]
        for row in found
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
    groups = grouped(results)
    counts = {label: len(docs) for label, docs in groups}
    seen = {}
    for index, result in enumerate(results):
        config = result.get("config") or {}
        label = label_of(result, index)
        seen[label] = seen.get(label, 0) + 1
        if counts[label] > 1:
            lines.append("## %s, round %d of %d" % (label, seen[label], counts[label]))
        else:
            lines.append("## %s" % label)
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
    rows = comparisons(results)
    if rows:
        lines.append("## Side by side")
        lines.append("")
        for label_b, _docs in groups[1:]:
            mine = [row for row in rows if row["b"] == label_b]
            lines.append("### A = %s, B = %s" % (groups[0][0], label_b))
            lines.append("")
            lines.append("B/A above 1 means B delivers more tokens/s (better) or has a higher p95 latency (worse).")
            if mine and mine[0].get("rounds", 1) > 1:
                lines.append(
                    "A and B ran in alternating rounds (A, B, A, B, ...); each B/A is the median of the rounds' own "
                    "B/A, with the lowest and highest round in brackets; ~ marks a spread as large as the difference "
                    "(no clear effect)."
                )
            lines.append("")
            lines.extend(comparison_table_rows(mine))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
