"""Render the fleet dashboard's panels as one PNG from a live Prometheus.

  python tests/tools/dashboard_png.py http://127.0.0.1:19690 roles/monitoring/files/grafana/slm-fleet.json \
      out.png [--minutes 15] [--title TEXT]

Each time-series panel of the Grafana JSON is drawn from its own PromQL targets, queried over
the last --minutes through /api/v1/query_range (the same queries Grafana would send), one line
per series, labelled by the series' host/replica/kind labels; rows become section titles.
Prints {"panels": N, "with_data": M, "empty": [...titles]} as JSON. molecule/prompt_queue
renders it after its traffic; docs/img/slm-fleet-dashboard.png is one such rendering.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

LABELS = ("host", "replica", "kind", "server", "job", "alertname", "mode", "device")
SCALE = {"percentunit": (100.0, "%"), "percent": (1.0, "%"), "celsius": (1.0, "°C"), "Bps": (1.0, "B/s")}


def query_range(prom: str, expr: str, start: float, end: float, step: float) -> list[dict]:
    params = urllib.parse.urlencode(
        {"query": expr, "start": f"{start:.0f}", "end": f"{end:.0f}", "step": f"{step:.0f}"}
    )
    with urllib.request.urlopen(f"{prom}/api/v1/query_range?{params}", timeout=30) as resp:
        body = json.load(resp)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error', body)}")
    return body["data"]["result"]


def series_label(metric: dict, legend: str) -> str:
    """Grafana's legend: the panel's legendFormat with {{label}} filled in, else the series' labels."""
    if legend:
        filled = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(metric.get(m.group(1), "")), legend).strip()
        if filled:
            return filled
    shown = [f"{k}={metric[k]}" for k in LABELS if k in metric and k != "job"]
    return " ".join(shown) or metric.get("__name__", "value")


def render(prom: str, dashboard: dict, out: Path, minutes: float, title: str) -> dict:
    import matplotlib  # noqa: PLC0415 (only the renderer needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    panels = [p for p in dashboard["panels"] if p.get("type") == "timeseries"]
    sections: dict[str, str] = {}
    section = ""
    for p in dashboard["panels"]:
        if p.get("type") == "row":
            section = p["title"]
        else:
            sections[p["title"]] = section
    end = time.time()
    start = end - minutes * 60
    step = max(2.0, minutes * 60 / 240)
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 5, rows * 3.2), squeeze=False)
    empty = []
    for ax, panel in zip(axes.flat, panels, strict=False):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        factor, suffix = SCALE.get(unit, (1.0, "" if unit in ("", "none", "short") else unit))
        drawn = 0
        for target in panel.get("targets", []):
            for s in query_range(prom, target["expr"], start, end, step):
                xs = [(float(point[0]) - end) / 60 for point in s["values"]]
                ys = [float(point[1]) * factor for point in s["values"]]
                if not any(math.isfinite(y) for y in ys):
                    continue
                ax.plot(xs, ys, linewidth=1.2, label=series_label(s["metric"], target.get("legendFormat", "")))
                drawn += 1
        ax.set_title(f"{sections.get(panel['title'], '')}: {panel['title']}", fontsize=9)
        ax.set_xlim(-minutes, 0)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("minutes ago", fontsize=7)
        if suffix:
            ax.set_ylabel(suffix, fontsize=7)
        if drawn:
            ax.legend(fontsize=6, loc="upper left")
        else:
            empty.append(panel["title"])
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return {"panels": len(panels), "with_data": len(panels) - len(empty), "empty": empty}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prometheus")
    parser.add_argument("dashboard", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--title", default="slm.edge fleet dashboard (live data)")
    args = parser.parse_args(argv)
    result = render(
        args.prometheus.rstrip("/"), json.loads(args.dashboard.read_text()), args.out, args.minutes, args.title
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
