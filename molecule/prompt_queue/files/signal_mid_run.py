"""Test helper: signal the worker once it has answered TARGET requests in all.

  signal_mid_run.py METRICS_URL TARGET PID SIGNAL      (SIGNAL: KILL or TERM)

Polls the worker's /metrics every 20 ms, so the signal lands mid-run even when a
burst only lasts a second or two; prints {"answered": N, "in_flight": M} at that moment.
"""

import json
import os
import re
import signal
import sys
import time
import urllib.request


def main() -> int:
    url, target, pid, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (the test's http URL)
                text = resp.read().decode()
        except OSError:
            time.sleep(0.05)
            continue
        answered = re.search(r"^slm_queue_answered_total (\d+)(?:\.0)?$", text, re.M)
        in_flight = re.search(r"^slm_queue_in_flight (\d+)(?:\.0)?$", text, re.M)
        if answered and int(answered.group(1)) >= target:
            os.kill(pid, getattr(signal, "SIG" + name))
            print(json.dumps({"answered": int(answered.group(1)), "in_flight": int(in_flight.group(1))}))
            return 0
        time.sleep(0.02)
    print(f"the worker did not reach {target} answers within 60 s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
