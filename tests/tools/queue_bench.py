"""Direct vs through the prompt queue, side by side, on the prompt_queue scenario's host (outside CI).

    molecule converge -s prompt_queue
    python tests/tools/queue_bench.py [--rounds 5] [--count 200] [--max-tokens 64 256] [--prefetch 2 3]

On slm-queue-1 (llama-server with 2 slots, RabbitMQ, the worker), for each max_tokens and in
alternating rounds: the same burst of --count requests sent at once straight to llama-server
(what an ALB does) and through the queue, with the worker's prefetch set to each --prefetch in
turn (written into /etc/slm-queue/worker.json, the worker restarted; the file is put back at the
end). Prints one JSON document: per case the median wall time, throughput and latency of the
rounds, with their spread, and queue/direct throughput ratios. Load goes to 127.0.0.1 inside
the machine only, --count requests per burst.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
import nspawn  # the harness lives beside this folder

HOST = "slm-queue-1"
PY = "/opt/slm-queue/venv/bin/python"
CLIENT = [PY, "/opt/slm-queue/bin/slm_queue_client.py"]
CONFIG = "/etc/slm-queue/worker.json"
DIRECT = "http://127.0.0.1:18180"
METRICS = "http://127.0.0.1:19108/metrics"


def burst(machine, count: int, max_tokens: int, direct: bool) -> dict:
    target = ["--direct", DIRECT] if direct else ["--config", "/etc/slm-queue/client.json", "--linger", "1"]
    argv = [*CLIENT, *target, "--count", str(count), "--max-tokens", str(max_tokens), "--timeout", "300", "--show", "0"]
    doc = json.loads(machine.exec(argv, timeout=400).stdout)
    if doc.get("answered") != count:
        raise SystemExit(f"{'direct' if direct else 'queue'} burst answered {doc.get('answered')} of {count}")
    return doc


def set_prefetch(machine, prefetch: int) -> None:
    # Edited in place inside the machine: the file holds the worker's broker password, which must
    # not travel on a command line.
    script = (
        f"import json,sys; p={CONFIG!r}; c=json.load(open(p)); c['prefetch']=int(sys.argv[1]); "
        "open(p,'w').write(json.dumps(c, indent=2) + '\\n')"
    )
    machine.exec([PY, "-c", script, str(prefetch)])
    machine.exec(["systemctl", "restart", "slm-queue-worker"])
    for _attempt in range(60):
        probe = machine.exec(
            ["sh", "-c", f"{PY} -c \"import urllib.request as u; print(u.urlopen('{METRICS}').read().decode())\""],
            check=False,
        )
        if probe.returncode == 0 and "slm_queue_paused 0" in probe.stdout:
            return
        time.sleep(1)
    raise SystemExit(f"the worker did not consume again with prefetch {prefetch}")


def summary(docs: list[dict]) -> dict:
    def med(values):
        return round(statistics.median(values), 3)

    rps = [d["throughput_rps"] for d in docs]
    return {
        "wall_s": med([d["wall_s"] for d in docs]),
        "throughput_rps": med(rps),
        "throughput_spread": [round(min(rps), 1), round(max(rps), 1)],
        "latency_p50_s": med([d["latency_s"]["p50"] for d in docs]),
        "latency_p95_s": med([d["latency_s"]["p95"] for d in docs]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--prefetch", type=int, nargs="+", default=[2, 3])
    args = parser.parse_args(argv)

    machine = nspawn.Machine(HOST)
    original = int(machine.exec([PY, "-c", f"import json; print(json.load(open({CONFIG!r}))['prefetch'])"]).stdout)
    runs: dict[str, list[dict]] = {}
    try:
        for max_tokens in args.max_tokens:
            for _round in range(args.rounds):
                runs.setdefault(f"direct max_tokens={max_tokens}", []).append(
                    burst(machine, args.count, max_tokens, True)
                )
                for prefetch in args.prefetch:
                    set_prefetch(machine, prefetch)
                    key = f"queue prefetch={prefetch} max_tokens={max_tokens}"
                    runs.setdefault(key, []).append(burst(machine, args.count, max_tokens, False))
    finally:
        set_prefetch(machine, original)
    cases = {key: summary(docs) for key, docs in runs.items()}
    ratios = {}
    for key, case in cases.items():
        if key.startswith("queue"):
            direct = cases["direct " + key.split(" ")[-1]]
            ratios[key] = round(case["throughput_rps"] / direct["throughput_rps"], 3)
    print(json.dumps({"rounds": args.rounds, "count": args.count, "cases": cases, "queue_vs_direct": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
