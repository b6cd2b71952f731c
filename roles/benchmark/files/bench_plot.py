#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""Plot slm.edge.llm_benchmark results: throughput and p95 latency vs concurrency.

Runs on the controller and needs matplotlib (Agg backend, no display):

    bench_plot.py -o bench.png A.json [B.json ...]

Two subplots share a log2 concurrency axis: aggregate output tokens/s and
p95 end-to-end latency (s). One line per configuration (and per workload
when a run has several). Exits 2 with a message when matplotlib is missing.
"""

import argparse
import json
import os
import sys


def _report_utils():
    """The results reader and labels shared with bench_report.py (plugins/module_utils/bench_report.py)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import bench_report  # noqa: PLC0415  # pylint: disable=import-outside-toplevel
    finally:
        sys.path.pop(0)
    return bench_report._load_renderer()  # pylint: disable=protected-access


REPORT = _report_utils()


def series(results):
    """[(line label, [concurrency], [agg tok/s], [p95 e2e s])] for every configuration and workload."""
    out = []
    for index, result in enumerate(results):
        label = REPORT.label_of(result, index)
        by_workload = {}
        for level in result["levels"]:
            by_workload.setdefault(level.get("workload") or "", []).append(level)
        for workload, unsorted in by_workload.items():
            levels = sorted(unsorted, key=lambda lv: lv.get("concurrency") or 0)
            name = label if len(by_workload) == 1 else f"{label} ({workload})"
            conc = [lv.get("concurrency") for lv in levels]
            tps = [lv.get("aggregate_output_tps") for lv in levels]
            p95 = [((lv.get("e2e_ms") or {}).get("p95") or float("nan")) / 1000.0 for lv in levels]
            out.append((name, conc, [float("nan") if v is None else v for v in tps], p95))
    return out


def plot(results, output, title=None):
    import matplotlib  # noqa: PLC0415  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  # pylint: disable=import-outside-toplevel
    from matplotlib.ticker import ScalarFormatter  # noqa: PLC0415  # pylint: disable=import-outside-toplevel

    fig, (ax_tps, ax_lat) = plt.subplots(1, 2, figsize=(12, 4.8))
    all_conc = set()
    for name, conc, tps, p95 in series(results):
        all_conc.update(c for c in conc if c)
        ax_tps.plot(conc, tps, marker="o", label=name)
        ax_lat.plot(conc, p95, marker="o", label=name)
    for axis, ylabel, sub in (
        (ax_tps, "aggregate output tokens/s", "Throughput"),
        (ax_lat, "p95 end-to-end latency (s)", "Latency"),
    ):
        axis.set_xscale("log", base=2)
        if all_conc:
            axis.set_xticks(sorted(all_conc))
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.set_xlabel("concurrency (requests in flight)")
        axis.set_ylabel(ylabel)
        axis.set_title(sub)
        axis.set_ylim(bottom=0)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(output, format="png", dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description="PNG of llm_benchmark results vs concurrency.")
    parser.add_argument("inputs", nargs="+", help="results JSON files (output_json of slm.edge.llm_benchmark)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--title", default=None, help="figure title")
    args = parser.parse_args(argv)
    results = []
    for path in args.inputs:
        with open(path, encoding="utf-8") as handle:
            try:
                results.append(REPORT.normalize(json.load(handle)))
            except ValueError as exc:
                parser.error(f"{path}: {exc}")
    try:
        import matplotlib  # noqa: F401, PLC0415  # pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        sys.stderr.write("bench_plot.py needs matplotlib on the controller: pip install matplotlib\n")
        return 2
    plot(results, args.output, args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
