"""The nspawn test-host harness leaves nothing behind and refuses clearly when it cannot work."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "harness" / "nspawn.py"
NAME = "slm-harness-test"


def load_harness():
    spec = importlib.util.spec_from_file_location("nspawn_harness", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def harness(*args):
    proc = subprocess.run(
        [sys.executable, str(HARNESS), *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def test_refuses_without_root(monkeypatch):
    nspawn = load_harness()
    monkeypatch.setattr(nspawn.os, "geteuid", lambda: 1000)
    with pytest.raises(nspawn.HarnessError, match="need root"):
        nspawn.preflight()


def test_refuses_without_tools_and_names_the_packages(monkeypatch):
    nspawn = load_harness()
    monkeypatch.setattr(nspawn.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        nspawn.shutil, "which", lambda tool: None if tool in ("debootstrap", "systemd-nspawn") else "/x"
    )
    with pytest.raises(nspawn.HarnessError, match="apt-get install -y debootstrap systemd-container"):
        nspawn.preflight()


def test_machine_lifecycle_leaves_nothing_behind():
    up = harness("up", NAME, "--disk", "data:1G")
    try:
        assert up["status"] in ("running", "degraded")
        disk = up["disks"][0]
        assert disk["volume_id"].startswith("vol-") and len(disk["volume_id"]) == 21
        state = harness("status", NAME)
        machine_dir = Path(state["pid_file"]).parent
        nspawn_pid = state["nspawn_pid"]
        # The EBS-style link exists inside the machine and points at the loop device.
        leader = state["leader_pid"]
        serial = disk["volume_id"].replace("-", "")
        link = subprocess.run(
            [
                "nsenter",
                "-t",
                str(leader),
                "-m",
                "--",
                "readlink",
                f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert link.stdout.strip() == disk["loop"]
        # A restart keeps the root and disks, with a new systemd.
        again = harness("restart", NAME)
        assert again["leader_pid"] != leader
        assert harness("status", NAME)["disks"][0]["image"] == disk["image"]
        # An nspawn killed on its own leaves its machine running without it (reparented, its
        # ports held: a CI run once had the old llama-server answer for a restarted machine);
        # the next restart ends that machine before it boots the root again.
        orphan = again["leader_pid"]
        os.killpg(harness("status", NAME)["nspawn_pid"], signal.SIGKILL)
        time.sleep(1)
        assert Path(f"/proc/{orphan}").exists(), "the machine's init did not outlive its nspawn"
        third = harness("restart", NAME)
        assert third["leader_pid"] != orphan
        deadline = time.monotonic() + 10
        while Path(f"/proc/{orphan}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{orphan}").exists(), "the orphaned machine still runs"
    finally:
        harness("destroy", NAME)
    assert not machine_dir.exists()
    assert (
        not Path(f"/proc/{nspawn_pid}").exists()
        or "systemd-nspawn" not in Path(f"/proc/{nspawn_pid}/cmdline").read_text()
    )
    assert disk["image"] not in subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=False).stdout
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=False).stdout
    assert f"-M {NAME}" not in ps
