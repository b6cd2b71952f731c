"""The tiers of `make test` as jobs for `tier.py plan`: what runs, and what each waits for.

Three lanes fit a 2-core machine: the static tiers (lint, unit, sanity, integration: CPU
bound, one after another), the cheap host scenarios, and llama_cpp (the first build fills the
shared ccache) followed by the scenarios that build and serve. `after` orders jobs for warm
caches (rootfs, ccache, pip, apt archives), not for correctness: a job runs even when the one
it follows failed, so one failure never hides the others.

Scenarios may share the host because each has its own machine names and ports; a scenario
takes /var/lock/slm-molecule-<name>.lock so two runs of one scenario never meet.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def molecule(scenario: str) -> list[str]:
    return ["flock", f"/var/lock/slm-molecule-{scenario}.lock", "molecule", "test", "-s", scenario]


STATIC = [
    ("yamllint", ["yamllint", "-s", "."]),
    ("ruff", ["ruff", "check", "."]),
    ("ruff-format", ["ruff", "format", "--check", "."]),
    ("ansible-lint", ["ansible-lint", "--profile", "production"]),
    ("syntax-check", [PY, "tests/tools/syntax_check.py"]),
    ("unit", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"]),
    ("sanity", [PY, "tests/tools/sanity.py"]),
    ("build-test", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/integration/test_galaxy_build.py"]),
    (
        "integration",
        [
            PY,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/integration",
            "--deselect",
            "tests/integration/test_galaxy_build.py",
        ],
    ),
]

# The scenarios that build and serve llama.cpp are CPU bound. While the static tiers and the host
# scenarios hold their lanes, two run at once; the third lane takes one more once those end.
SERVE = {"prompt_queue", "e2e", "fleet", "awx_runner", "llama_cpp", "monitoring"}
GROUP_LIMITS = {"serve": 3}

# Scenario -> the scenario it follows. Heavy ones follow llama_cpp (warm ccache); they are
# listed longest first so the longest starts first.
FOLLOWS = {
    "llama_cpp": None,
    "harness": None,
    "host_roles": "harness",
    "storage": "host_roles",
    "e2e": "llama_cpp",
    "prompt_queue": "llama_cpp",
    "fleet": "llama_cpp",
    "awx_runner": "llama_cpp",
    "monitoring": "llama_cpp",
}


def _scenarios() -> list[str]:
    sys.path.insert(0, str(Path(__file__).parent))
    import scenarios  # noqa: PLC0415

    return scenarios.SELECTED


def jobs() -> list[dict]:
    out = []
    previous = None
    for name, cmd in STATIC:
        out.append({"name": name, "cmd": cmd, "after": [previous] if previous else []})
        previous = name
    selected = _scenarios()
    for scenario in [s for s in FOLLOWS if s in selected] + [s for s in selected if s not in FOLLOWS]:
        follows = FOLLOWS.get(scenario, "storage")
        after = [f"molecule:{follows}"] if follows in selected else []
        group = "serve" if scenario in SERVE else None
        out.append({"name": f"molecule:{scenario}", "cmd": molecule(scenario), "after": after, "group": group})
    return out


JOBS = jobs()
