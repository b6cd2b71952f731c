"""ansible-playbook --syntax-check for every playbook, from the checkout and by FQCN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    playbooks = sorted((ROOT / "playbooks").glob("*.yml"))
    targets = [str(p.relative_to(ROOT)) for p in playbooks] + [f"slm.edge.{p.stem}" for p in playbooks]
    failed = []
    for target in targets:
        proc = subprocess.run(
            ["ansible-playbook", "--syntax-check", "-i", "localhost,", target],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        status = "ok" if proc.returncode == 0 else "FAILED"
        print(f"syntax-check {target}: {status}")
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:])
            failed.append(target)
    print(f"{len(targets) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
