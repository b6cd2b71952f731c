"""site.yml's wall time for 1 host and for N hosts, each from cold caches, in one run.

    python tests/tools/fleet_timing.py [--hosts 4] [--out .cache/fleet-timing/report.json]

For 1 host, then for N: fresh nspawn machines slm-time-1..N (tests/harness/nspawn.py, a 4 GiB
data disk each, a port each), an empty ccache folder on every machine (llama_cpp_ccache_dir,
not the harness's shared one), pip without its cache, and an empty artifact store and model
staging folder on the controller; then playbooks/site.yml, timed. The run's per-task results
(the ansible.posix.json callback) give each host's seconds in the tasks of each role it took
part in (skipped ones excluded): the builder's llama_cpp role against the receivers'.
The package mirrors (Debian's apt archives the harness keeps, the local wheel folder) stay
as they are, as a fleet's own mirror would. Outside CI: it takes about 20 minutes on 2 cores.
Prints a Markdown table and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARNESS = [sys.executable, str(ROOT / "tests" / "harness" / "nspawn.py")]
ROLES = ("host_prep", "storage", "llama_cpp", "model", "llama_server")
FIRST_PORT = 18780


def machines(count: int) -> list[str]:
    return [f"slm-time-{n}" for n in range(1, count + 1)]


def seconds(duration: dict) -> float:
    start = datetime.fromisoformat(duration["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(duration["end"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def role_seconds(report: dict) -> dict[str, dict[str, float]]:
    """Per host, per role: the seconds of the role's tasks in which the host was not skipped."""
    out: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            name = task["task"]["name"]
            role = name.split(" : ", 1)[0].rsplit(".", 1)[-1] if " : " in name else ""
            if role not in ROLES or "duration" not in task["task"] or "end" not in task["task"]["duration"]:
                continue
            took = seconds(task["task"]["duration"])
            for host, result in task.get("hosts", {}).items():
                if not result.get("skipped"):
                    out[host][role] += took
    return {host: dict(roles) for host, roles in out.items()}


def load_report(text: str) -> dict:
    """The json callback's document: the play output also holds progress lines (slm.edge.job_progress) before it."""
    decoder = json.JSONDecoder()
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("{"):
            try:
                document = decoder.raw_decode(text, offset)[0]
            except json.JSONDecodeError:
                pass
            else:
                if isinstance(document, dict) and "plays" in document:
                    return document
        offset += len(line)
    return {}


def deploy(count: int, work: Path) -> dict:
    names = machines(count)
    subprocess.run([*HARNESS, "destroy", *names], check=False, cwd=ROOT)
    where = work / f"{count}-hosts"
    shutil.rmtree(where, ignore_errors=True)
    (where / "host_vars").mkdir(parents=True)
    (where / "group_vars").symlink_to(ROOT / "inventories" / "local" / "group_vars")
    for index, name in enumerate(names):
        (where / "host_vars" / f"{name}.yml").write_text(f"---\nllama_server_port: {FIRST_PORT + index}\n")
    subprocess.run(
        [
            *HARNESS,
            "up",
            *names,
            "--disk",
            "data:4G",
            "--bind-ro",
            "/var/cache/slm-edge-test/fixtures:/srv/fixtures",
            "--inventory",
            str(where / "hosts.yml"),
        ],
        check=True,
        cwd=ROOT,
    )
    extra = {
        "llama_cpp_ccache_dir": f"/var/cache/ccache-cold-{int(time.time())}",
        "llama_cpp_artifact_dir": str(where / "artifacts"),
        "model_controller_stage_dir": str(where / "model-stage"),
        "model_convert_host": names[0],
        "model_convert_pip_args": ["--find-links", "/opt/wheels", "--no-cache-dir"],
    }
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_JSON_INDENT="0")
    started = time.monotonic()
    with open(where / "site.json", "w") as out:
        proc = subprocess.run(
            ["ansible-playbook", "-i", str(where / "hosts.yml"), "playbooks/site.yml", "-e", json.dumps(extra)],
            cwd=ROOT,
            env=env,
            stdout=out,
            check=False,
        )
    wall = time.monotonic() - started
    report = load_report((where / "site.json").read_text())
    stats = report.get("stats", {})
    result = {
        "hosts": count,
        "rc": proc.returncode,
        "wall_seconds": round(wall, 1),
        "failed_hosts": [h for h, s in stats.items() if s.get("failures") or s.get("unreachable")],
        "role_seconds": role_seconds(report),
    }
    subprocess.run([*HARNESS, "destroy", *names], check=False, cwd=ROOT)
    return result


def summarize(one: dict, many: dict) -> dict:
    builder = machines(many["hosts"])[0]
    receivers = machines(many["hosts"])[1:]
    build = many["role_seconds"].get(builder, {}).get("llama_cpp", 0.0)
    received = [many["role_seconds"].get(h, {}).get("llama_cpp", 0.0) for h in receivers]
    return {
        "one_host_seconds": one["wall_seconds"],
        "many_hosts_seconds": many["wall_seconds"],
        "hosts": many["hosts"],
        "ratio": round(many["wall_seconds"] / one["wall_seconds"], 2) if one["wall_seconds"] else None,
        "builder_llama_cpp_seconds": round(build, 1),
        "receiver_llama_cpp_seconds": [round(s, 1) for s in received],
        "receiver_share_of_builder": round(max(received) / build, 3) if build and received else None,
    }


def markdown(one: dict, many: dict, summary: dict) -> str:
    single = one["role_seconds"].get(machines(1)[0], {}).get("llama_cpp", 0.0)
    each = ", ".join(f"{value:.0f} s" for value in summary["receiver_llama_cpp_seconds"])
    rows = [
        "| run | site.yml wall | llama_cpp role (builder) | llama_cpp role (each receiver) |",
        "| --- | --- | --- | --- |",
        f"| 1 host | {one['wall_seconds']:.0f} s | {single:.0f} s | - |",
        f"| {many['hosts']} hosts | {many['wall_seconds']:.0f} s ({summary['ratio'] or 0:.2f}x)"
        f" | {summary['builder_llama_cpp_seconds']:.0f} s | {each} |",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "fleet-timing" / "report.json")
    args = parser.parse_args(argv)
    subprocess.run([sys.executable, "tests/fixtures/llama_src.py"], check=True, cwd=ROOT)
    subprocess.run([sys.executable, "tests/fixtures/tiny_model.py"], check=True, cwd=ROOT)
    work = Path(tempfile.mkdtemp(prefix="slm-fleet-timing-"))
    one = deploy(1, work)
    many = deploy(args.hosts, work)
    summary = summarize(one, many)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"one": one, "many": many, "summary": summary}, indent=2) + "\n")
    print(markdown(one, many, summary))
    print(json.dumps(summary, indent=2))
    return 0 if one["rc"] == 0 and many["rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
