"""Test helper: how long the worker's /metrics did not answer while a run went on.

  downtime_probe.py METRICS_URL STOP_FILE MAX_SECONDS

Asks METRICS_URL every 100 ms until STOP_FILE exists (or MAX_SECONDS pass), then
prints {"samples": N, "failed": F, "down_s": total seconds without an answer,
"longest_down_s": the longest outage, "outages": how many}.
"""

import json
import os
import sys
import time
import urllib.request


def up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (http URL from the test)
            return response.status == 200
    except OSError:
        return False


def main() -> int:
    url, stop_file, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
    start = time.monotonic()
    samples = failed = outages = 0
    down_since = None
    down = longest = 0.0
    while not os.path.exists(stop_file) and time.monotonic() - start < limit:
        now = time.monotonic()
        ok = up(url)
        samples += 1
        if not ok:
            failed += 1
            if down_since is None:
                down_since = now
                outages += 1
        elif down_since is not None:
            down += now - down_since
            longest = max(longest, now - down_since)
            down_since = None
        time.sleep(0.1)
    if down_since is not None:
        now = time.monotonic()
        down += now - down_since
        longest = max(longest, now - down_since)
    print(
        json.dumps(
            {
                "samples": samples,
                "failed": failed,
                "down_s": round(down, 1),
                "longest_down_s": round(longest, 1),
                "outages": outages,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
