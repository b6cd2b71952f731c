# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Pure statistics for the llm_benchmark module and its report.

No Ansible imports and no third-party packages: this file runs on targets
(Python >= 3.8) inside the module and on the controller in the report tools.

Units used throughout:

* latencies are milliseconds (``*_ms``),
* throughputs are output (generated) tokens per second (``*_tps``),
* memory bandwidth is decimal gigabytes per second (1 GB/s = 1e9 bytes/s),
* model size is bytes.
"""

import statistics

PERCENTILES = (50, 95, 99)


def percentile(values, pct):
    """Return the ``pct`` percentile of ``values`` by linear interpolation.

    ``statistics.quantiles(data, n=..., method="inclusive")`` of the standard
    library: the fractional rank is ``r = (n - 1) * pct / 100`` and the result
    interpolates linearly between the sorted values around it. This is the
    "linear" method of numpy.percentile (type 7 of Hyndman and Fan, Excel
    PERCENTILE.INC): p0 is the minimum, p100 the maximum, p50 of an even count
    is the mean of the two middle values.

    ``pct`` may have up to four decimals (99.9, 99.99). ``None`` entries are
    ignored. Returns ``None`` for an empty input. Raises ``ValueError`` when
    ``pct`` is outside [0, 100] or has more decimals.
    """
    if pct < 0 or pct > 100:
        raise ValueError("percentile must be within [0, 100], got %r" % (pct,))
    data = sorted(float(v) for v in values if v is not None)
    if not data:
        return None
    if len(data) == 1 or pct == 0:
        return data[0]
    if pct == 100:
        return data[-1]
    for parts in (100, 1000, 10000, 100000, 1000000):
        cut = pct * parts / 100.0
        if abs(cut - round(cut)) < 1e-6:
            return statistics.quantiles(data, n=parts, method="inclusive")[round(cut) - 1]
    raise ValueError("percentile must have at most four decimals, got %r" % (pct,))


def distribution(values, ndigits=3):
    """Summarise ``values``: count, min, mean, p50, p95, p99, max.

    Every value is rounded to ``ndigits``; statistics of an empty input are
    ``None`` (count 0), so JSON consumers see the same keys every time.
    """
    data = [float(v) for v in values if v is not None]
    out = {"count": len(data)}
    if not data:
        for key in ("min", "mean", "max", *("p%d" % p for p in PERCENTILES)):
            out[key] = None
        return out
    out["min"] = _round(min(data), ndigits)
    out["mean"] = _round(sum(data) / len(data), ndigits)
    for pct in PERCENTILES:
        out["p%d" % pct] = _round(percentile(data, pct), ndigits)
    out["max"] = _round(max(data), ndigits)
    return out


def _round(value, ndigits):
    if value is None:
        return None
    return round(value, ndigits)


def request_output_tps(output_tokens, e2e_ms):
    """Per-request output tokens/s as the user sees it: tokens / end-to-end time."""
    if not output_tokens or not e2e_ms or e2e_ms <= 0:
        return None
    return output_tokens / (e2e_ms / 1000.0)


def request_decode_tps(output_tokens, ttft_ms, e2e_ms):
    """Per-request decode rate: tokens after the first / time after the first.

    Excludes queueing and prompt processing (both in TTFT), so at concurrency 1
    this is the single-stream decode speed to compare with the roofline limit.
    """
    if output_tokens is None or output_tokens < 2 or ttft_ms is None or e2e_ms is None:
        return None
    decode_ms = e2e_ms - ttft_ms
    if decode_ms <= 0:
        return None
    return (output_tokens - 1) / (decode_ms / 1000.0)


def summarize_level(records, wall_seconds, concurrency=None, workload=None):
    """Summarise the request records of one concurrency level.

    ``records`` are dicts as produced by the llm_benchmark module; the keys
    used are ``error`` (None/empty on success), ``ttft_ms``, ``e2e_ms``,
    ``itl_ms`` (list of gaps between content chunks), ``output_tokens``,
    ``prompt_tokens`` and optionally ``output_tps`` / ``decode_tps`` (computed
    here when absent). Latency and throughput statistics use successful
    requests only; ``requests == success + errors`` always holds.

    ``aggregate_output_tps`` is the total output tokens of successful requests
    divided by ``wall_seconds``, the wall time of the whole level (first
    request sent to last request finished), i.e. what the server delivered.
    """
    records = list(records)
    ok = [r for r in records if not r.get("error")]
    errors = len(records) - len(ok)
    itl = []
    for rec in ok:
        itl.extend(v for v in (rec.get("itl_ms") or []) if v is not None)
    out_tps = []
    dec_tps = []
    for rec in ok:
        tps = rec.get("output_tps")
        if tps is None:
            tps = request_output_tps(rec.get("output_tokens"), rec.get("e2e_ms"))
        out_tps.append(tps)
        dec = rec.get("decode_tps")
        if dec is None:
            dec = request_decode_tps(rec.get("output_tokens"), rec.get("ttft_ms"), rec.get("e2e_ms"))
        dec_tps.append(dec)
    total_out = sum(int(r.get("output_tokens") or 0) for r in ok)
    total_in = sum(int(r.get("prompt_tokens") or 0) for r in ok)
    wall = float(wall_seconds or 0.0)
    summary = {
        "concurrency": concurrency,
        "workload": workload,
        "requests": len(records),
        "success": len(ok),
        "errors": errors,
        "error_rate": _round(errors / len(records), 4) if records else 0.0,
        "wall_s": _round(wall, 3),
        "output_tokens_total": total_out,
        "prompt_tokens_total": total_in,
        "aggregate_output_tps": _round(total_out / wall, 3) if wall > 0 else None,
        "requests_per_s": _round(len(ok) / wall, 3) if wall > 0 else None,
        "ttft_ms": distribution(r.get("ttft_ms") for r in ok),
        "itl_ms": distribution(itl),
        "e2e_ms": distribution(r.get("e2e_ms") for r in ok),
        "output_tps": distribution(out_tps),
        "decode_tps": distribution(dec_tps),
        "error_samples": sorted({str(r.get("error")) for r in records if r.get("error")})[:5],
    }
    return summary


def roofline_limit_tps(memory_bandwidth_gbps, model_bytes):
    """Single-stream decode limit in tokens/s = memory bandwidth / model bytes.

    Generating one token streams every weight once through the GPU (or CPU)
    memory, so a single sequence cannot decode faster than bandwidth divided by
    the model size (KV cache and activations ignored, so the real bound is a
    little lower). ``memory_bandwidth_gbps`` is in GB/s (1e9 bytes/s).
    """
    if not memory_bandwidth_gbps or not model_bytes or memory_bandwidth_gbps <= 0 or model_bytes <= 0:
        return None
    return float(memory_bandwidth_gbps) * 1e9 / float(model_bytes)


def roofline(memory_bandwidth_gbps, model_bytes, achieved_tps=None):
    """Roofline record: the limit, what was achieved and their ratio.

    ``ratio`` = achieved / limit (0..1 in practice; ``None`` when unknown).
    """
    limit = roofline_limit_tps(memory_bandwidth_gbps, model_bytes)
    ratio = None
    if limit and achieved_tps is not None:
        ratio = float(achieved_tps) / limit
    return {
        "memory_bandwidth_gbps": memory_bandwidth_gbps,
        "model_bytes": model_bytes,
        "limit_tps": _round(limit, 3),
        "achieved_tps": _round(achieved_tps, 3) if achieved_tps is not None else None,
        "ratio": _round(ratio, 4),
    }


def single_stream_decode_tps(levels, workload=None):
    """Median decode tokens/s of the concurrency-1 level (``None`` if absent).

    With several workloads, ``workload`` picks one; otherwise the first
    concurrency-1 level with a value wins.
    """
    for level in levels:
        if level.get("concurrency") != 1:
            continue
        if workload is not None and level.get("workload") != workload:
            continue
        value = (level.get("decode_tps") or {}).get("p50")
        if value is not None:
            return value
    return None
