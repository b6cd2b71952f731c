"""The test runner itself: every tier runs after a failure, failures are all listed, and a
test machine that dies during boot is started once more with the reasons printed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def tier(tmp_path, monkeypatch):
    module = _load("tier_under_test", ROOT / "tests" / "tools" / "tier.py")
    monkeypatch.setattr(module, "RECORD", tmp_path / "tiers.json")
    monkeypatch.setattr(module, "LOGS", tmp_path / "logs")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module


def _fake_plan(monkeypatch, jobs, limits=None):
    fake = type(sys)("plan")
    fake.JOBS = jobs
    fake.GROUP_LIMITS = limits or {}
    monkeypatch.setitem(sys.modules, "plan", fake)


def test_plan_runs_every_tier_after_a_failure_and_lists_all_failures(tier, monkeypatch, capsys, tmp_path):
    py = sys.executable
    _fake_plan(
        monkeypatch,
        [
            {"name": "first", "cmd": [py, "-c", "print('first out'); raise SystemExit(3)"], "after": []},
            {"name": "second", "cmd": [py, "-c", "print('second ok')"], "after": ["first"]},
            {"name": "third", "cmd": [py, "-c", "import sys; print('boom here'); sys.exit(1)"], "after": ["second"]},
        ],
    )
    assert tier.plan(2) == 1
    out = capsys.readouterr().out
    records = {r["name"]: r for r in json.loads((tmp_path / "tiers.json").read_text())}
    assert {n: r["rc"] for n, r in records.items()} == {"first": 3, "second": 0, "third": 1}
    assert "second ok" in out  # the job after a failed one still ran, and its log was printed
    assert "2 tier(s) failed: first, third" in out
    assert "--- FAILED third (rc=1)" in out and "boom here" in out.split("--- FAILED third")[1]


def test_summary_shows_the_failing_task_not_only_the_end_of_the_log(tier):
    # The last failures: the one that ended the run comes after expected ones caught by rescue.
    log = ["TASK [Refuse a bad value]", "fatal: [h1]: FAILED! => expected, caught by rescue", "ok: [h1]"]
    log += [f"more line {n}" for n in range(30)]
    log += ["PLAY [converge]", "TASK [Gather facts]", "ok: [h1]", "TASK [Build llama.cpp]"]
    log += ["fatal: [h1]: FAILED! => changed=false", "  msg: cmake exited 1"]
    log += [f"cleanup line {n}" for n in range(200)]
    excerpt = tier.failure_excerpt(log, most=1, after=3)
    assert excerpt[:3] == ["TASK [Build llama.cpp]", "fatal: [h1]: FAILED! => changed=false", "  msg: cmake exited 1"]
    assert "TASK [Gather facts]" not in excerpt
    assert tier.failure_excerpt(log, most=2, after=3)[0] == "TASK [Refuse a bad value]"
    assert tier.failure_excerpt(["all", "fine"]) == []
    many = [line for n in range(5) for line in (f"TASK [t{n}]", f"fatal: [h{n}]: FAILED!")]
    assert sum(1 for line in tier.failure_excerpt(many, after=0) if line.startswith("fatal")) == 3


def test_plan_keeps_a_group_under_its_limit(tier, monkeypatch, tmp_path):
    py = sys.executable
    probe = (
        "import fcntl, os, sys, time; p = sys.argv[1]; f = open(p, 'a+'); fcntl.flock(f, fcntl.LOCK_EX);"
        "f.seek(0); n = len(f.read()); f.write('x'); f.flush(); fcntl.flock(f, fcntl.LOCK_UN);"
        "open(p + '.max', 'a').write(str(n + 1) + '\\n'); time.sleep(1.5);"
        "fcntl.flock(f, fcntl.LOCK_EX); f.seek(0); s = f.read()[1:]; f.seek(0); f.truncate(); f.write(s)"
    )
    count = str(tmp_path / "count")
    jobs = [{"name": f"j{i}", "cmd": [py, "-c", probe, count], "after": [], "group": "serve"} for i in range(4)]
    _fake_plan(monkeypatch, jobs, {"serve": 2})
    assert tier.plan(4) == 0
    assert max(int(x) for x in Path(count + ".max").read_text().split()) == 2


@pytest.fixture()
def nspawn():
    return _load("nspawn_under_test", ROOT / "tests" / "harness" / "nspawn.py")


class _Exited:
    """A systemd-nspawn that dies at once, as the machine seen under load did."""

    pid = 4242

    def __init__(self, *args, **kwargs):
        pass

    def poll(self):
        return None  # not reaped yet when the harness first looks

    def wait(self, timeout=None):
        return 1


def _machine(nspawn, tmp_path, monkeypatch):
    machine = nspawn.Machine("slm-boot-test")
    machine.dir = tmp_path
    monkeypatch.setattr(machine, "save", lambda state: None)
    monkeypatch.setattr(machine, "console_tail", lambda: "(console was empty)")
    monkeypatch.setattr(machine, "_journal_tail", lambda: "(no journal)")
    monkeypatch.setattr(nspawn.time, "sleep", lambda s: None)
    monkeypatch.setattr(nspawn.subprocess, "Popen", _Exited)
    return machine


def _fail_first_boot(nspawn, machine, monkeypatch) -> list:
    """wait_running sees the machine gone on the first boot, running on the next; the calls made."""
    calls = []

    def wait_running():
        calls.append(1)
        if len(calls) == 1:
            raise nspawn.HarnessError("machine slm-boot-test exited during boot:\n")
        return {"name": machine.name, "status": "running"}

    monkeypatch.setattr(machine, "wait_running", wait_running)
    return calls


def test_harness_retries_a_machine_that_dies_during_boot_once(nspawn, tmp_path, monkeypatch, capsys):
    machine = _machine(nspawn, tmp_path, monkeypatch)
    calls = _fail_first_boot(nspawn, machine, monkeypatch)
    assert machine._boot(["systemd-nspawn", "-M", "slm-boot-test"], {})["status"] == "running"
    assert len(calls) == 2
    assert "died during boot (attempt 1/2)" in capsys.readouterr().err


class _Unseen(_Exited):
    """A systemd-nspawn the harness does not see as the machine's, that keeps running."""

    killed = False

    def wait(self, timeout=None):
        if not _Unseen.killed:
            raise subprocess.TimeoutExpired("systemd-nspawn", timeout)
        return -9


def test_harness_kills_and_restarts_an_nspawn_it_cannot_see_but_that_still_runs(nspawn, tmp_path, monkeypatch, capsys):
    machine = _machine(nspawn, tmp_path, monkeypatch)
    monkeypatch.setattr(nspawn.subprocess, "Popen", _Unseen)
    monkeypatch.setattr(_Unseen, "killed", False)
    monkeypatch.setattr(nspawn.os, "killpg", lambda pid, sig: setattr(_Unseen, "killed", True))
    calls = _fail_first_boot(nspawn, machine, monkeypatch)
    assert machine._boot(["systemd-nspawn", "-M", "slm-boot-test"], {})["status"] == "running"
    assert _Unseen.killed and len(calls) == 2
    assert "not seen as the machine's nspawn, yet still running" in capsys.readouterr().err


def test_harness_gives_up_after_the_retry_with_command_status_and_console(nspawn, tmp_path, monkeypatch):
    machine = _machine(nspawn, tmp_path, monkeypatch)

    def wait_running():
        raise nspawn.HarnessError("machine slm-boot-test exited during boot:\n")

    monkeypatch.setattr(machine, "wait_running", wait_running)
    with pytest.raises(nspawn.HarnessError) as err:
        machine._boot(["systemd-nspawn", "-D", "/x", "-M", "slm-boot-test"], {})
    text = str(err.value)
    assert "died during boot 2 times" in text
    assert "nspawn command: systemd-nspawn -D /x -M slm-boot-test" in text
    assert "exit status: 1" in text and "(console was empty)" in text and "(no journal)" in text
