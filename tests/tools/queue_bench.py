"""Direct vs through the prompt queue, side by side, on the prompt_queue scenario's host (outside CI).

    molecule converge -s prompt_queue
    python tests/tools/queue_bench.py [--rounds 5] [--count 200] [--max-tokens 64 256]
        [--prefetch 2 3] [--keepalive on off] [--broker-args "" "+S 1:1"]

On slm-queue-1 (llama-server with 2 slots, RabbitMQ, the worker), for each max_tokens and in
alternating rounds: the same burst of --count requests sent at once straight to llama-server
(what an ALB does) and through the queue, once per combination of the worker's prefetch and
HTTP keep-alive (written into /etc/slm-queue/worker.json, the worker restarted) and the
broker's extra Erlang VM flags (added to /etc/rabbitmq/rabbitmq-env.conf, the broker
restarted). Both files are put back at the end. Prints one JSON document: per case the median
wall time, throughput and latency of the rounds, with their spread, the CPU milliseconds per
request of each service (from its cgroup) and of the client, and queue/direct throughput
ratios. Load goes to 127.0.0.1 inside the machine only, --count requests per burst.
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


BROKER_ENV = "/etc/rabbitmq/rabbitmq-env.conf"


def units(machine) -> list[str]:
    """The services whose CPU time a burst is charged: the broker, the worker, the llama-server(s)."""
    listed = machine.exec(
        ["systemctl", "list-units", "--type=service", "--no-legend", "--plain", "llama-server*"]
    ).stdout.split()
    return ["rabbitmq-server.service", "slm-queue-worker.service", *(u for u in listed if u.endswith(".service"))]


# Run inside the machine: per unit, its cgroup's cpu.stat (cgroup v2), else the CPU time of the
# processes in its cgroup (cgroup v1 hosts, where systemd only accounts CPU when asked to).
CPU_SCRIPT = """
import os, subprocess, sys
tick = os.sysconf('SC_CLK_TCK')
for unit in sys.argv[1:]:
    show = ['systemctl', 'show', '-P', 'ControlGroup', unit]
    cg = subprocess.run(show, capture_output=True, text=True).stdout.strip()
    ns = 0
    stat = '/sys/fs/cgroup' + cg + '/cpu.stat'
    if cg and os.path.exists(stat):
        ns = next((int(l.split()[1]) * 1000 for l in open(stat) if l.startswith('usage_usec ')), 0)
    elif cg:
        for root in ('/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'):
            if os.path.exists(root + cg + '/cgroup.procs'):
                for pid in open(root + cg + '/cgroup.procs').read().split():
                    try:
                        fields = open('/proc/' + pid + '/stat').read().rsplit(')', 1)[1].split()
                    except OSError:
                        continue
                    ns += sum(int(f) for f in fields[11:15]) * 10**9 // tick
                break
    print(unit, ns)
"""


def cpu_ns(machine, names: list[str]) -> dict[str, int]:
    """CPU nanoseconds each service has used so far (CPUUsageNSec reads 0 where systemd's CPU
    accounting is off, as in the test machines)."""
    out = {}
    for line in machine.exec([PY, "-c", CPU_SCRIPT, *names]).stdout.splitlines():
        unit, _sep, value = line.partition(" ")
        out[unit.removesuffix(".service")] = int(value)
    return out


def burst(machine, names: list[str], count: int, max_tokens: int, direct: bool) -> dict:
    target = ["--direct", DIRECT] if direct else ["--config", "/etc/slm-queue/client.json", "--linger", "1"]
    argv = [*CLIENT, *target, "--count", str(count), "--max-tokens", str(max_tokens), "--timeout", "300", "--show", "0"]
    before = cpu_ns(machine, names)
    doc = json.loads(machine.exec(argv, timeout=400).stdout)
    after = cpu_ns(machine, names)
    if doc.get("answered") != count:
        raise SystemExit(f"{'direct' if direct else 'queue'} burst answered {doc.get('answered')} of {count}")
    # CPU milliseconds per request, by service (the linger second included for the queue's).
    doc["cpu_ms_per_request"] = {
        **{u: round((after[u] - before.get(u, 0)) / 1e6 / count, 3) for u in after},
        "client": round(doc.get("cpu_s", 0) * 1000 / count, 3),
    }
    return doc


def wait_consuming(machine, what: str) -> None:
    for _attempt in range(90):
        probe = machine.exec(
            ["sh", "-c", f"{PY} -c \"import urllib.request as u; print(u.urlopen('{METRICS}').read().decode())\""],
            check=False,
        )
        if probe.returncode == 0 and "slm_queue_paused 0" in probe.stdout:
            return
        time.sleep(1)
    raise SystemExit(f"the worker did not consume again after {what}")


def set_worker(machine, prefetch: int, keepalive: bool) -> None:
    # Edited in place inside the machine: the file holds the worker's broker password, which must
    # not travel on a command line.
    script = (
        f"import json,sys; p={CONFIG!r}; c=json.load(open(p)); c['prefetch']=int(sys.argv[1]); "
        "c['keepalive']=sys.argv[2]=='1'; open(p,'w').write(json.dumps(c, indent=2) + '\\n')"
    )
    machine.exec([PY, "-c", script, str(prefetch), "1" if keepalive else "0"])
    machine.exec(["systemctl", "restart", "slm-queue-worker"])
    wait_consuming(machine, f"prefetch={prefetch} keepalive={keepalive}")


def set_broker_args(machine, flags: str) -> None:
    """The broker restarted with the role's Erlang VM flags plus these (flags as erl takes them)."""
    script = (
        "import sys; src, dst, flags = sys.argv[1:4]; out = []\n"
        "for line in open(src).read().splitlines():\n"
        "    if line.startswith('SERVER_ADDITIONAL_ERL_ARGS=\"') and flags:\n"
        "        line = line[:-1] + ' ' + flags + '\"'\n"
        "    out.append(line)\n"
        "if flags and not any(x.startswith('SERVER_ADDITIONAL_ERL_ARGS=') for x in out):\n"
        "    out.append('SERVER_ADDITIONAL_ERL_ARGS=\"' + flags + '\"')\n"
        "open(dst, 'w').write('\\n'.join(out) + '\\n')"
    )
    machine.exec([PY, "-c", script, BROKER_ENV + ".bench", BROKER_ENV, flags])
    machine.exec(["systemctl", "restart", "rabbitmq-server"], timeout=180)
    # erl hands emulator flags to beam.smp with - for +; the broker is the beam that boots rabbit.
    args = machine.exec(["sh", "-c", "ps -C beam.smp -o args= | grep -- '-s rabbit boot'"]).stdout
    if flags and " ".join(f"-{f[1:]}" if f.startswith("+") else f for f in flags.split()) not in args:
        raise SystemExit(f"the broker did not restart with {flags!r}: {args[:300]}")
    machine.exec(["systemctl", "restart", "slm-queue-worker"])
    wait_consuming(machine, f"broker flags {flags!r}")


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
        "cpu_ms_per_request": {
            u: med([d["cpu_ms_per_request"][u] for d in docs]) for u in docs[0]["cpu_ms_per_request"]
        },
    }


def on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("on or off")
    return value == "on"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--prefetch", type=int, nargs="+", default=[3])
    parser.add_argument("--keepalive", type=on_off, nargs="+", default=[True], help="worker HTTP keep-alive: on, off")
    parser.add_argument(
        "--broker-args",
        nargs="+",
        default=[""],
        help='Erlang VM flags added to the broker\'s, each in turn ("" = the role\'s own), e.g. "" "+S 1:1"',
    )
    args = parser.parse_args(argv)

    machine = nspawn.Machine(HOST)
    names = units(machine)
    # The role's files are kept beside themselves inside the machine (the worker's holds its
    # broker password, which must not leave it) and moved back at the end.
    for path in (CONFIG, BROKER_ENV):
        machine.exec(["cp", "-p", path, path + ".bench"])
    cases = [
        (flags, prefetch, keepalive)
        for flags in args.broker_args
        for prefetch in args.prefetch
        for keepalive in args.keepalive
    ]
    runs: dict[str, list[dict]] = {}
    try:
        for max_tokens in args.max_tokens:
            for _round in range(args.rounds):
                runs.setdefault(f"direct max_tokens={max_tokens}", []).append(
                    burst(machine, names, args.count, max_tokens, True)
                )
                for flags, prefetch, keepalive in cases:
                    if len(args.broker_args) > 1 or _round == 0:
                        set_broker_args(machine, flags)
                    set_worker(machine, prefetch, keepalive)
                    key = (
                        f"queue broker_args={flags or 'role'} prefetch={prefetch} "
                        f"keepalive={'on' if keepalive else 'off'} max_tokens={max_tokens}"
                    )
                    runs.setdefault(key, []).append(burst(machine, names, args.count, max_tokens, False))
    finally:
        for path in (CONFIG, BROKER_ENV):
            machine.exec(["mv", path + ".bench", path])
        machine.exec(["systemctl", "restart", "rabbitmq-server"], timeout=180)
        machine.exec(["systemctl", "restart", "slm-queue-worker"])
        wait_consuming(machine, "the role's configuration was put back")
    summaries = {key: summary(docs) for key, docs in runs.items()}
    ratios = {}
    for key, case in summaries.items():
        if key.startswith("queue"):
            direct = summaries["direct " + key.split(" ")[-1]]
            ratios[key] = round(case["throughput_rps"] / direct["throughput_rps"], 3)
    print(
        json.dumps(
            {"rounds": args.rounds, "count": args.count, "cases": summaries, "queue_vs_direct": ratios}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
