#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Write the Markdown report of slm.edge.llm_benchmark results.

Runs on the controller with any Python >= 3.8 and no extra packages:

    bench_report.py [--title TITLE] [--context run.json] [-o report.md] A.json [B.json ...]

The first file is the baseline A; the report has a table per configuration
and a side-by-side table (B/A ratios of aggregate tok/s and p95 latency) for
every other file. The rendering lives in the collection's
plugins/module_utils/bench_report.py, which this script imports by path.

--context takes the run document the slm.edge.benchmark role writes (host,
GPUs, llama.cpp version, model, llama-bench results, the llama-server
arguments of every configuration) and puts it in front of the tables.
"""

import argparse
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_UTILS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "plugins", "module_utils"))


def _load_renderer():
    """The collection's plugins/module_utils/bench_report.py (also used by bench_plot.py).

    Loaded by path under its own name, so it never clashes with this script, which
    shares its file name.
    """
    path = os.path.join(MODULE_UTILS, "bench_report.py")
    if os.path.isfile(path):
        spec = importlib.util.spec_from_file_location("slm_edge_bench_report", path)
        renderer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(renderer)
        return renderer
    from ansible_collections.slm.edge.plugins.module_utils import (  # noqa: PLC0415  # pylint: disable=import-outside-toplevel
        bench_report as renderer,
    )

    return renderer


def _num(value, digits=1):
    if value is None:
        return "-"
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def _scaled(value, units):
    """``value`` with the largest unit of ``units`` ((factor, suffix), largest first) it reaches."""
    if value is None:
        return "?"
    value = float(value)
    for factor, suffix in units:
        if abs(value) >= factor:
            return f"{value / factor:.2f} {suffix}".rstrip()
    factor, suffix = units[-1]
    return f"{value / factor:.2f} {suffix}".rstrip()


def _code(text):
    clean = str(text).replace("`", "'").replace("|", "\\|")
    return f"`{clean}`"


def environment_lines(run):
    """Markdown lines about the host, the GPUs, llama.cpp, the model and the load."""
    facts = run.get("host_facts") or {}
    host = run.get("host") or facts.get("hostname") or "?"
    system = " ".join(str(p) for p in (facts.get("distribution"), facts.get("distribution_version")) if p) or "?"
    lines = ["## Environment", ""]
    lines.append(f"- Host: {host} ({system}, kernel {facts.get('kernel') or '?'}, {facts.get('architecture') or '?'})")
    memory = _num((facts.get("memtotal_mb") or 0) / 1024.0)
    cpu = facts.get("processor_model") or "?"
    lines.append(f"- CPU: {cpu}, {facts.get('processor_vcpus') or '?'} vCPUs, {memory} GiB memory")
    gpu = run.get("gpu") or {}
    gpus = gpu.get("gpus") or []
    if gpu.get("present") and gpus:
        names = " / ".join(sorted({g.get("name") or "?" for g in gpus}))
        first = gpus[0]
        lines.append(
            f"- GPU: {len(gpus)} x {names}, {first.get('memory_total_mib')} MiB each, driver "
            f"{gpu.get('driver_version') or '?'}, {first.get('memory_bandwidth_gbps') or '?'} GB/s each"
        )
    else:
        lines.append(f"- GPU: none ({gpu.get('reason') or 'CPU only'})")
    llama = run.get("llama_cpp") or {}
    version = " ".join(llama.get("version") or []) or "?"
    lines.append(f"- llama.cpp: {version} ({_code(llama.get('server_bin') or '?')})")
    model = run.get("model") or {}
    gguf = model.get("gguf") or {}
    params = _scaled(gguf.get("parameter_count"), ((1e9, "B"), (1e6, "M"), (1e3, "K"), (1, "")))
    size = _scaled(gguf.get("size_bytes"), ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1, "bytes")))
    lines.append(
        f"- Model: {_code(model.get('path') or gguf.get('path') or '?')}, {gguf.get('architecture') or '?'} "
        f"{gguf.get('quantization') or '?'}, {params} parameters, {size}, "
        f"trained context {gguf.get('context_length') or '?'}"
    )
    load = run.get("load") or {}
    if load:
        workloads = ", ".join(load.get("workloads") or [])
        levels = ", ".join(str(c) for c in load.get("concurrency") or [])
        lines.append(
            f"- Load: workloads {workloads}; concurrency {levels}; at most {load.get('requests_per_level')} requests "
            f"or {_num(load.get('max_seconds_per_level'), 0)} s per level; max tokens chatbot "
            f"{load.get('chatbot_max_tokens')}, summarization {load.get('summarization_max_tokens')}"
        )
    roof = run.get("roofline") or {}
    if roof.get("memory_bandwidth_gbps"):
        lines.append(
            f"- Roofline input: {_num(roof.get('memory_bandwidth_gbps'), 0)} GB/s ({roof.get('source') or '?'}): "
            f"one stream cannot decode faster than {_num(roof.get('limit_tps'))} tok/s from one device"
        )
    else:
        lines.append(
            "- Roofline: not computed (no bandwidth known: set benchmark_memory_bandwidth_gbps, or leave"
            " benchmark_measure_memory_bandwidth on for a CPU host)"
        )
    lines.append("")
    return lines


def _test_name(rec):
    n_prompt, n_gen = rec.get("n_prompt"), rec.get("n_gen")
    if n_prompt and not n_gen:
        return f"pp{n_prompt}"
    if n_gen and not n_prompt:
        return f"tg{n_gen}"
    return f"pp{n_prompt}+tg{n_gen}"


def llama_bench_lines(run):
    """Markdown lines with llama-bench's prompt processing and generation speed."""
    bench = run.get("llama_bench") or {}
    records = bench.get("records") or []
    if not records:
        return []
    lines = ["## llama-bench", ""]
    lines.append("| Test | Tokens/s | Stddev | Threads | GPU layers | Backends |")
    lines.append("|---|---:|---:|---:|---:|---|")
    for rec in records:
        cells = (
            _test_name(rec),
            _num(rec.get("avg_ts")),
            _num(rec.get("stddev_ts")),
            rec.get("n_threads", "-"),
            rec.get("n_gpu_layers", "-"),
            rec.get("backends") or "-",
        )
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    if bench.get("argv"):
        lines.append("Command: " + _code(" ".join(str(a) for a in bench["argv"])))
        lines.append("")
    roof = run.get("roofline") or {}
    if roof.get("limit_tps") and bench.get("gen_tps"):
        share = 100.0 * float(bench["gen_tps"]) / float(roof["limit_tps"])
        lines.append(
            f"llama-bench generation reaches {share:.0f}% of the single-stream roofline "
            f"({_num(bench['gen_tps'])} of {_num(roof['limit_tps'])} tok/s)."
        )
        lines.append("")
    return lines


def configuration_lines(run):
    """Markdown lines with the llama-server arguments of every configuration."""
    configs = run.get("configurations") or []
    if not configs:
        return []
    lines = ["## Configurations", ""]
    for index, cfg in enumerate(configs):
        if index == 0:
            role = "A, baseline"
        else:
            role = "B" if len(configs) == 2 else f"B{index}"
        lines.append(f"- **{cfg.get('label')}** ({role}): {cfg.get('description') or ''}".rstrip())
        units = cfg.get("units") or []
        args = cfg.get("llama_server_args") or []
        for number, line in enumerate(args):
            unit = units[number] if number < len(units) else f"instance {number}"
            lines.append(f"  - {unit}: {_code(line)}")
    lines.append("")
    return lines


def context_lines(run):
    """Everything the run document adds in front of the result tables."""
    return environment_lines(run) + llama_bench_lines(run) + configuration_lines(run)


def insert_context(text, run):
    """Put the context sections before the first second-level heading of ``text``."""
    block = "\n".join(context_lines(run)) + "\n"
    index = text.find("\n## ")
    if index < 0:
        return text.rstrip() + "\n\n" + block
    return text[: index + 1] + block + text[index + 1 :]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Markdown report of llm_benchmark results (first file = A).")
    parser.add_argument("inputs", nargs="+", help="results JSON files (output_json of slm.edge.llm_benchmark)")
    parser.add_argument("-o", "--output", help="Markdown file to write (default: stdout)")
    parser.add_argument("--title", default=None, help="report title")
    parser.add_argument("--context", default=None, help="run document of the slm.edge.benchmark role (JSON)")
    args = parser.parse_args(argv)

    renderer = _load_renderer()
    results = []
    for path in args.inputs:
        with open(path, encoding="utf-8") as handle:
            try:
                results.append(renderer.normalize(json.load(handle)))
            except ValueError as exc:
                parser.error(f"{path}: {exc}")
    text = renderer.render_markdown(results, title=args.title or renderer.DEFAULT_TITLE)
    if args.context:
        with open(args.context, encoding="utf-8") as handle:
            text = insert_context(text, json.load(handle))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
