"""Run test tiers, record their wall time and result; print a summary of all tiers.

tier.py run NAME -- CMD...   run CMD, record NAME's time and result, exit with CMD's code
tier.py plan [--jobs N]      run every tier of `make test` (tests/tools/plan.py), N at a time,
                             each to its own log; run them all even when one fails; print each
                             log as its tier ends, then the summary and every failure's tail
tier.py summary              print the recorded tiers as a table
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / ".cache" / "tiers.json"
LOGS = ROOT / ".cache" / "tiers"
HEARTBEAT = 120


def _load() -> list[dict]:
    return json.loads(RECORD.read_text()) if RECORD.exists() else []


def _record(name: str, seconds: float, rc: int, log: str | None = None) -> None:
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    records = [r for r in _load() if r["name"] != name]
    records.append({"name": name, "seconds": round(seconds, 1), "rc": rc, "log": log})
    RECORD.write_text(json.dumps(records, indent=1))


def run(name: str, cmd: list[str]) -> int:
    print(f"=== tier {name}: {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    rc = subprocess.call(cmd)
    seconds = time.monotonic() - started
    _record(name, seconds, rc)
    print(f"=== tier {name}: {'ok' if rc == 0 else f'FAILED (rc={rc})'} in {seconds:.0f}s", flush=True)
    if rc != 0:
        summary()
    return rc


FAILURE_MARKERS = (
    "fatal: [",
    "failed: [",
    "FAILED! =>",
    "Traceback (most recent call last)",
    "AssertionError",
    "ERROR    ",
)


def failure_excerpt(lines: list[str], most: int = 3, after: int = 25) -> list[str]:
    """The last `most` failures of a log: from the TASK (or test) header above each failing
    line to `after` lines below it. The last ones, because a molecule log holds expected
    failures (refusals caught by rescue) before the one that ended the run, and ends with
    cleanup and destroy, which hid why converge failed."""
    hits = [i for i, line in enumerate(lines) if any(m in line for m in FAILURE_MARKERS)]
    chosen: list[int] = []
    for i in reversed(hits):
        if len(chosen) == most:
            break
        if not chosen or i < chosen[-1] - after:
            chosen.append(i)
    out: list[str] = []
    for i in reversed(chosen):
        start = i
        for j in range(i, max(-1, i - 40), -1):
            if re.sub(r"\x1b\[[0-9;]*m", "", lines[j]).lstrip("│ ").startswith(("TASK [", "____", "=====")):
                start = j
                break
        out.extend(lines[start : min(len(lines), i + after + 1)])
        out.append("...")
    return out


def summary(wall: float | None = None, tail: int = 0) -> int:
    records = _load()
    total = sum(r["seconds"] for r in records)
    print("\ntier timing summary")
    print(f"{'tier':<32} {'result':<8} {'seconds':>8}")
    for r in records:
        print(f"{r['name']:<32} {'ok' if r['rc'] == 0 else 'FAILED':<8} {r['seconds']:>8.1f}")
    print(f"{'sum of tiers':<32} {'':<8} {total:>8.1f}")
    if wall is not None:
        print(f"{'wall time':<32} {'':<8} {wall:>8.1f}")
    failed = [r for r in records if r["rc"] != 0]
    for r in failed:
        print(f"\n--- FAILED {r['name']} (rc={r['rc']}); log: {r.get('log') or 'above'}")
        if tail and r.get("log") and Path(r["log"]).exists():
            lines = Path(r["log"]).read_text(errors="replace").splitlines()
            excerpt = failure_excerpt(lines)
            if excerpt:
                print("last failures:")
                print("\n".join(excerpt))
            print(f"last {tail} lines:")
            print("\n".join(lines[-tail:]))
    if failed:
        print(f"\n{len(failed)} tier(s) failed: {', '.join(r['name'] for r in failed)}")
    return 0 if not failed else 1


def cpu_times() -> tuple[float, float, float] | None:
    """The host's (busy, steal, total) CPU jiffies since boot from /proc/stat; None elsewhere."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0.0
    return sum(fields[:8]) - idle, steal, sum(fields[:8])


def cpu_report(start: tuple[float, float, float] | None) -> str:
    """How busy the host's CPUs were since start: whether more tiers at a time could help."""
    end = cpu_times()
    if start is None or end is None or end[2] <= start[2]:
        return ""
    busy, steal, total = (e - s for e, s in zip(end, start, strict=True))
    share = f"{100 * busy / total:.0f}% busy over the run ({100 * steal / total:.0f}% stolen)"
    return f"host CPU {share}, {os.cpu_count()} CPUs"


def plan(jobs: int) -> int:
    """Run the jobs of tests/tools/plan.py: a job starts when the jobs it follows have ended
    (whatever their result: order is for warm caches, not correctness) and a slot is free."""
    sys.path.insert(0, str(Path(__file__).parent))
    from plan import GROUP_LIMITS as limits  # noqa: PLC0415
    from plan import JOBS  # noqa: PLC0415

    groups = {job["name"]: job.get("group") for job in JOBS}
    LOGS.mkdir(parents=True, exist_ok=True)
    pending = list(JOBS)
    running: dict[str, tuple[subprocess.Popen, float, Path]] = {}
    ended: set[str] = set()
    started_all = time.monotonic()
    cpu_start = cpu_times()
    last_beat = started_all
    print(f"=== plan: {len(pending)} tiers, {jobs} at a time; logs in {LOGS}", flush=True)
    while pending or running:
        for job in list(pending):
            if len(running) >= jobs:
                break
            group = job.get("group")
            if group and sum(1 for n in running if groups.get(n) == group) >= limits.get(group, jobs):
                continue
            if all(dep in ended for dep in job["after"]):
                pending.remove(job)
                log = LOGS / f"{job['name'].replace(':', '-')}.log"
                with open(log, "wb") as out:
                    proc = subprocess.Popen(
                        job["cmd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
                    )
                running[job["name"]] = (proc, time.monotonic(), log)
                print(f"=== tier {job['name']}: started: {' '.join(job['cmd'])}", flush=True)
        time.sleep(1)
        for name, (proc, started, log) in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del running[name]
            ended.add(name)
            seconds = time.monotonic() - started
            _record(name, seconds, rc, str(log))
            print(f"\n=== tier {name}: log follows", flush=True)
            sys.stdout.write(log.read_text(errors="replace"))
            print(f"=== tier {name}: {'ok' if rc == 0 else f'FAILED (rc={rc})'} in {seconds:.0f}s", flush=True)
        now = time.monotonic()
        if running and now - last_beat >= HEARTBEAT:
            last_beat = now
            busy = ", ".join(f"{name} ({now - job[1]:.0f}s)" for name, job in running.items())
            print(f"... {now - started_all:.0f}s: running {busy}; {len(pending)} waiting", flush=True)
    code = summary(wall=time.monotonic() - started_all, tail=15)
    print(cpu_report(cpu_start))
    return code


def main(argv: list[str]) -> int:
    if argv[:1] == ["summary"]:
        return summary()
    if argv[:1] == ["plan"]:
        jobs = int(argv[2]) if argv[1:2] == ["--jobs"] else int(os.environ.get("SLM_TEST_JOBS", "3"))
        return plan(max(1, jobs))
    if len(argv) >= 3 and argv[0] == "run" and "--" in argv:
        sep = argv.index("--")
        return run(argv[1], argv[sep + 1 :])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
