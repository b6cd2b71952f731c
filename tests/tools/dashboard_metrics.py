"""Metric names each panel of a Grafana dashboard queries.

  python tests/tools/dashboard_metrics.py roles/monitoring/files/grafana/slm-fleet.json

prints {"<panel title>": ["metric", ...], ...} as JSON. The molecule scenario `monitoring`
compares them with the names the live Prometheus holds (/api/v1/label/__name__/values);
tests/unit/roles/test_monitoring_dashboard.py checks the rest against the exporters' sources.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> list[str]:
    """The metric names in a PromQL expression (functions, keywords, labels and durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    names = []
    for m in _NAME.finditer(text):
        word = m.group(0)
        rest = text[m.end() :].lstrip()
        if word in _KEYWORDS or rest.startswith("(") or re.fullmatch(r"[0-9.e+-]+", word):
            continue
        if m.start() > 0 and (text[m.start() - 1].isdigit() or text[m.start() - 1] == "."):
            continue  # the exponent or unit of a number
        names.append(word)
    return sorted(set(names))


def panels(dashboard: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for panel in dashboard.get("panels", []):
        exprs = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
        if exprs:
            out[panel["title"]] = sorted({n for e in exprs for n in metric_names(e)})
    return out


if __name__ == "__main__":
    print(json.dumps(panels(json.loads(Path(sys.argv[1]).read_text())), indent=1))
