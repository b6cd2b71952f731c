"""Print the molecule scenarios in the order `make molecule` runs them.

Harness first (molecule/harness), then cheap role scenarios, then the heavy ones that build
llama.cpp (they share one ccache), end-to-end last.  A scenario not named in
ORDER runs after the known cheap ones, alphabetically.
"""

from pathlib import Path

ORDER = ["harness", "host_roles", "storage", "llama_cpp", "fleet", "e2e", "prompt_queue", "monitoring", "awx_runner"]
HEAVY = {"llama_cpp", "fleet", "e2e", "prompt_queue", "monitoring", "awx_runner"}
# Defined for users with a container runtime and a registry; cannot run here.
SKIP = {"host_roles_rhel", "bench_dev"}

import os

root = Path(__file__).resolve().parents[2] / "molecule"
found = sorted(p.parent.name for p in root.glob("*/molecule.yml") if p.parent.name not in SKIP)
known = [s for s in ORDER if s in found and s not in HEAVY]
extra = [s for s in found if s not in ORDER]
heavy = [s for s in ORDER if s in found and s in HEAVY]
# SCENARIOS="a b" (as for `make molecule`) narrows the list.
SELECTED = os.environ["SCENARIOS"].split() if os.environ.get("SCENARIOS") else known + extra + heavy

if __name__ == "__main__":
    print(" ".join(SELECTED))
