"""Run one test tier and record its wall time; print a summary of all tiers.

tier.py run NAME -- CMD...   run CMD, record NAME's time and result, exit with CMD's code
tier.py summary              print the recorded tiers as a table
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

RECORD = Path(__file__).resolve().parents[2] / ".cache" / "tiers.json"


def _load() -> list[dict]:
    return json.loads(RECORD.read_text()) if RECORD.exists() else []


def run(name: str, cmd: list[str]) -> int:
    print(f"=== tier {name}: {' '.join(cmd)}", flush=True)
    started = time.monotonic()
    rc = subprocess.call(cmd)
    seconds = time.monotonic() - started
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    records = [r for r in _load() if r["name"] != name]
    records.append({"name": name, "seconds": round(seconds, 1), "rc": rc})
    RECORD.write_text(json.dumps(records, indent=1))
    print(f"=== tier {name}: {'ok' if rc == 0 else f'FAILED (rc={rc})'} in {seconds:.0f}s", flush=True)
    if rc != 0:
        summary()
    return rc


def summary() -> int:
    records = _load()
    total = sum(r["seconds"] for r in records)
    print("\ntier timing summary")
    print(f"{'tier':<32} {'result':<8} {'seconds':>8}")
    for r in records:
        print(f"{r['name']:<32} {'ok' if r['rc'] == 0 else 'FAILED':<8} {r['seconds']:>8.1f}")
    print(f"{'total':<32} {'':<8} {total:>8.1f}")
    return 0 if all(r["rc"] == 0 for r in records) else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["summary"]:
        return summary()
    if len(argv) >= 3 and argv[0] == "run" and "--" in argv:
        sep = argv.index("--")
        return run(argv[1], argv[sep + 1 :])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
