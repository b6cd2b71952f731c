"""Run slm.edge playbooks the way AWX / Automation Controller runs a job: ansible_runner.run().

Builds the private data directory AWX gives ansible-runner (project = this
checkout, inventory = a file naming the test host, env/extravars = the job's
extra variables, written as AWX writes survey answers: every string
!unsafe), sets the environment AWX sets (no ANSIBLE_CONFIG: the
project's ansible.cfg is found in the project folder, and its collections_path
is put in front of the default collection paths as AWX does), then runs each
playbook in turn, stopping at the first that does not succeed.

Checks, for every job: status 'successful' and rc 0. For smoke.yml: the job
events carry the answers (the set_fact llama_server_smoke_answers and the
assert task's success messages), none empty.

  runner_job.py --machine slm-awx-1 --extravars vars.json --data-dir DIR [--playbook playbooks/site.yml ...]

The last line on stdout is a JSON summary: jobs (playbook, status, rc, ok,
changed, failures, seconds, artifacts), changed (the sum over the jobs) and
answers; progress goes to stderr. Exit status 1 when a check fails.
Used by molecule/awx_runner (converge and verify).
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import ansible_runner
import yaml

REPO = Path(__file__).resolve().parents[2]
STATE_ROOT = Path(os.environ.get("SLM_TEST_ROOT", "/var/lib/slm-edge-test"))
DEFAULT_PLAYBOOKS = ["playbooks/site.yml", "playbooks/smoke.yml"]
# What the controller sets for every job (awx/main/tasks/jobs.py, build_env), minus the
# paths that only exist in its containers.
COLLECTIONS_DEFAULT = "~/.ansible/collections:/usr/share/ansible/collections"
ROLES_DEFAULT = "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"
AWX_ENV = {
    "ANSIBLE_FORCE_COLOR": "False",
    "ANSIBLE_HOST_KEY_CHECKING": "False",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
    "ANSIBLE_RETRY_FILES_ENABLED": "False",
}


class JobFailed(Exception):
    pass


def log(msg: str) -> None:
    print(f"[runner_job {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class _UnsafeStringDumper(yaml.SafeDumper):
    """Every string as !unsafe, as the controller writes survey answers and launch variables."""

    def represent_data(self, data):
        if isinstance(data, str):
            return self.represent_scalar("!unsafe", data)
        return super().represent_data(data)


def awx_safe_dump(extravars: dict) -> str:
    """env/extravars as the controller writes it (awx.main.utils.safe_yaml.safe_dump): Jinja in
    extra variables that do not come from the job template itself is never rendered."""
    return "".join(
        yaml.dump({key: value}, Dumper=_UnsafeStringDumper, default_flow_style=False)
        for key, value in extravars.items()
    )


def private_data_dir(base: Path, machine: str, group: str, extravars: dict) -> Path:
    """The layout AWX hands to ansible-runner: project/, inventory/, env/."""
    pdd = base / "private_data_dir"
    (pdd / "inventory").mkdir(parents=True, exist_ok=True)
    (pdd / "env").mkdir(exist_ok=True)
    project = pdd / "project"
    if not project.is_symlink():
        project.symlink_to(REPO, target_is_directory=True)
    pid = (STATE_ROOT / "machines" / machine / "leader.pid").read_text().strip()
    if not pid.isdigit() or pid == "1":
        raise JobFailed(f"{machine}: no running machine (leader.pid={pid!r}); create it first")
    inventory = {
        group: {
            "hosts": {
                machine: {
                    "ansible_connection": "community.docker.nsenter",
                    "ansible_nsenter_pid": int(pid),
                    "ansible_python_interpreter": "/usr/bin/python3",
                }
            }
        }
    }
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    extravars_file = pdd / "env" / "extravars"
    # As the controller writes it: readable by the job's user only (it holds the job's secrets).
    extravars_file.touch(mode=0o600)
    extravars_file.chmod(0o600)
    extravars_file.write_text(awx_safe_dump(extravars))
    (pdd / "requirements_collections").mkdir(exist_ok=True)
    return pdd


def awx_environment(pdd: Path) -> dict[str, str]:
    """Collection and role paths as AWX builds them (RunJob.build_env): its requirements
    folder, then the project's ansible.cfg value, then the defaults."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "ansible.cfg")
    env = dict(AWX_ENV, AWX_PRIVATE_DATA_DIR=str(pdd), JOB_ID="1")
    for key, setting, folder, default in (
        ("ANSIBLE_COLLECTIONS_PATH", "collections_path", "requirements_collections", COLLECTIONS_DEFAULT),
        ("ANSIBLE_ROLES_PATH", "roles_path", "requirements_roles", ROLES_DEFAULT),
    ):
        paths = default.split(":")
        configured = cfg.get("defaults", setting, fallback="")
        if configured and any(p not in paths for p in configured.split(":")):
            paths = [configured, *paths]
        env[key] = os.pathsep.join([str(pdd / folder), *paths])
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    env["PROJECT_REVISION"] = rev.stdout.strip()
    return env


def clean_process_environment() -> None:
    """ansible-runner copies os.environ: drop what molecule or a shell set for Ansible."""
    for key in list(os.environ):
        if key.startswith(("ANSIBLE_", "MOLECULE_", "AWX_", "CONTROLLER_")):
            del os.environ[key]
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def run_job(pdd: Path, playbook: str, envvars: dict[str, str], verbosity: int = 0) -> dict:
    ident = f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(playbook).stem}"

    def progress(event: dict) -> bool:
        if event.get("event") == "playbook_on_task_start":
            log(f"{Path(playbook).name}: {event.get('event_data', {}).get('task', '')}")
        return True

    log(f"job {ident}: {playbook}")
    started = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(pdd),
        playbook=playbook,
        ident=ident,
        envvars=envvars,
        quiet=True,
        verbosity=verbosity or None,
        event_handler=progress,
    )
    stats = runner.stats or {}
    job = {
        "playbook": playbook,
        "status": runner.status,
        "rc": runner.rc,
        "ok": sum((stats.get("ok") or {}).values()),
        "changed": sum((stats.get("changed") or {}).values()),
        "failures": sum((stats.get("failures") or {}).values()) + sum((stats.get("dark") or {}).values()),
        "seconds": round(time.monotonic() - started, 1),
        "artifacts": str(pdd / "artifacts" / ident),
    }
    log(f"job {ident}: {json.dumps(job)}")
    if runner.status != "successful" or runner.rc != 0:
        tail = runner.stdout.read()[-6000:] if runner.stdout else ""
        raise JobFailed(f"{playbook}: status={runner.status} rc={runner.rc}\n{tail}")
    job["events"] = runner.events
    return job


SMOKE_MESSAGE = re.compile(r"^\S+@\d+ (chatbot|summarization): ")


def smoke_answers(events) -> tuple[list[str], list[str]]:
    """The published answers (set_fact) and the assert task's success messages, from the job events."""
    answers: list[str] = []
    messages: list[str] = []
    for event in events:
        if event.get("event") not in ("runner_on_ok", "runner_item_on_ok"):
            continue
        res = event.get("event_data", {}).get("res", {})
        facts = res.get("ansible_facts", {})
        if "llama_server_smoke_answers" in facts:
            answers.extend(facts["llama_server_smoke_answers"])
        # The smoke assert's success message: "<name>@<replica> <example>: <answer>".
        if event["event"] == "runner_item_on_ok" and SMOKE_MESSAGE.match(str(res.get("msg", ""))):
            messages.append(res["msg"])
    return answers, messages


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machine", required=True, help="nspawn machine name (tests/harness/nspawn.py)")
    parser.add_argument("--group", default="llm_servers", help="inventory group of the machine")
    parser.add_argument("--extravars", type=Path, required=True, help="JSON file: the job's extra variables")
    parser.add_argument("--data-dir", type=Path, required=True, help="where the private data dir and artifacts go")
    parser.add_argument("--playbook", action="append", help="project-relative playbook (repeat); site then smoke")
    parser.add_argument("--verbosity", type=int, default=0, help="the job template's verbosity (3 = -vvv)")
    args = parser.parse_args(argv)

    clean_process_environment()
    summary: dict = {"jobs": [], "changed": 0, "answers": [], "messages": []}
    try:
        pdd = private_data_dir(args.data_dir, args.machine, args.group, json.loads(args.extravars.read_text()))
        envvars = awx_environment(pdd)
        for playbook in args.playbook or DEFAULT_PLAYBOOKS:
            job = run_job(pdd, playbook, envvars, args.verbosity)
            events = job.pop("events")
            summary["jobs"].append(job)
            summary["changed"] += job["changed"]
            if Path(playbook).name == "smoke.yml":
                answers, messages = smoke_answers(events)
                if not answers or not all(a.strip() for a in answers):
                    raise JobFailed(f"smoke.yml succeeded but its events carry no answers: {answers!r}")
                if len(messages) != len(answers):
                    raise JobFailed(f"{len(answers)} answers but {len(messages)} success messages: {messages!r}")
                summary["answers"] += answers
                summary["messages"] += messages
    except JobFailed as exc:
        log(f"FAILED: {exc}")
        summary["error"] = str(exc).splitlines()[0]
        print(json.dumps(summary))
        return 1
    (args.data_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
