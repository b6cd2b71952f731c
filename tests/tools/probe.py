"""Bounded availability probe: GET one or more URLs every --interval s until --stop-file exists
or --max s pass.

Prints JSON: requests, failures, the longest run of failures in seconds and the total time down
(over all URLs: a round is "down" when any URL failed), and for several URLs (a fleet's replicas,
asked at the same moment each round) the fewest that answered in any round, the rounds with fewer
than half answering and each URL's own failures. Only for test endpoints on this machine
(127.0.0.0/8).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="+")
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max", type=float, default=600.0)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for url in args.url:
        if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise SystemExit("probe.py only probes loopback test endpoints")
    start = time.monotonic()
    rounds = requests = failures = below_half = 0
    per_url = dict.fromkeys(args.url, 0)
    min_up = len(args.url)
    down_since = None
    longest = total = 0.0
    with ThreadPoolExecutor(max_workers=len(args.url)) as pool:
        while time.monotonic() - start < args.max and not os.path.exists(args.stop_file):
            t = time.monotonic()
            results = list(pool.map(_ok, args.url))
            rounds += 1
            requests += len(results)
            up = sum(results)
            failures += len(results) - up
            for url, ok in zip(args.url, results, strict=True):
                per_url[url] += 0 if ok else 1
            min_up = min(min_up, up)
            below_half += 1 if up * 2 < len(args.url) else 0
            ok = up == len(args.url)
            if ok and down_since is not None:
                longest = max(longest, t - down_since)
                total += t - down_since
                down_since = None
            elif not ok:
                down_since = t if down_since is None else down_since
            time.sleep(max(0.0, args.interval - (time.monotonic() - t)))
    if down_since is not None:
        longest = max(longest, time.monotonic() - down_since)
        total += time.monotonic() - down_since
    report = {
        "requests": requests,
        "failures": failures,
        "longest_down_s": round(longest, 2),
        "total_down_s": round(total, 2),
        "still_down": down_since is not None,
    }
    if len(args.url) > 1:
        report.update(
            {
                "rounds": rounds,
                "urls": len(args.url),
                "min_up": min_up,
                "rounds_below_half": below_half,
                "failures_per_url": per_url,
            }
        )
    with open(args.out, "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main()
