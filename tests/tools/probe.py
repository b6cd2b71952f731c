"""Bounded availability probe: GET a URL every --interval s until --stop-file exists or --max s pass.

Prints JSON: requests, failures, the longest run of failures in seconds and the total
time down. Only for test endpoints on this machine (127.0.0.0/8).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max", type=float, default=600.0)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not args.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise SystemExit("probe.py only probes loopback test endpoints")
    start = time.monotonic()
    requests = failures = 0
    down_since = None
    longest = total = 0.0
    while time.monotonic() - start < args.max and not os.path.exists(args.stop_file):
        t = time.monotonic()
        try:
            with urllib.request.urlopen(args.url, timeout=2) as resp:
                ok = resp.status == 200
        except (urllib.error.URLError, OSError):
            ok = False
        requests += 1
        if ok and down_since is not None:
            longest = max(longest, t - down_since)
            total += t - down_since
            down_since = None
        elif not ok:
            failures += 1
            down_since = t if down_since is None else down_since
        time.sleep(max(0.0, args.interval - (time.monotonic() - t)))
    if down_since is not None:
        longest = max(longest, time.monotonic() - down_since)
        total += time.monotonic() - down_since
    with open(args.out, "w") as handle:
        json.dump(
            {
                "requests": requests,
                "failures": failures,
                "longest_down_s": round(longest, 2),
                "total_down_s": round(total, 2),
                "still_down": down_since is not None,
            },
            handle,
        )


if __name__ == "__main__":
    main()
