"""Local systemd test hosts for slm.edge: systemd-nspawn machines with disks.

One Debian 12 root file system is built with debootstrap and cached (keyed on
everything that goes into it).  Each machine is an overlay of that cache, so a
machine is created in seconds and its writes never touch the cache.  Machines
boot with systemd-nspawn in the background and Ansible reaches them with the
``community.docker.nsenter`` connection and the machine's systemd PID.

Extra disks are sparse files on loop devices bound into the machine, with an
EBS-style ``/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol...`` link, so the
storage role is tested as it runs on EC2.

Usage (as root):
  nspawn.py up NAME [--disk data:2G] [--inventory FILE]   create (or reuse) and boot
  nspawn.py stop|start|restart NAME                       power cycle, same root and disks
  nspawn.py destroy NAME                                  stop, detach, remove everything
  nspawn.py grow NAME DISK SIZE                           enlarge a disk (as an EBS resize)
  nspawn.py status NAME | list | rootfs | pid NAME
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE_ROOT = Path(os.environ.get("SLM_TEST_ROOT", "/var/lib/slm-edge-test"))
CACHE_ROOT = Path(os.environ.get("SLM_TEST_CACHE", "/var/cache/slm-edge-test"))
SUITE = "bookworm"
VARIANT = "minbase"
INCLUDES = ("systemd", "systemd-sysv", "python3", "dbus", "sudo", "iproute2", "ca-certificates", "udev")
# Bump when prepare_rootfs() changes what goes into the cached tree.
ROOTFS_LAYOUT = 4
BOOT_TIMEOUT = 90
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
REQUIRED_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "losetup": "mount",
    "nsenter": "util-linux",
}
# Host paths shared read-only with every machine when present: the CA bundle
# (pip inside a machine reaches PyPI as the host does) and the local wheel folder
# (the CPU torch wheel, so a conversion venv never downloads a CUDA build).
SHARED_RO = ("/etc/ssl/certs/ca-certificates.crt", "/opt/wheels")
# Host pip configuration copied into each machine, so pip there finds the same
# indexes (and the CPU torch wheel) as the controller.
PIP_CONF = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/etc/xdg/pip/constraints.txt")


BOOT_ATTEMPTS = 2


class HarnessError(Exception):
    """A clear, user-facing failure."""


def log(msg: str) -> None:
    print(f"[nspawn] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def preflight() -> None:
    """Fail before anything is created when the host cannot run machines."""
    if os.geteuid() != 0:
        raise HarnessError("the nspawn test hosts need root (loop devices, mounts, systemd-nspawn): run as root")
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise HarnessError(
            "missing host tools; install them with: apt-get install -y " + " ".join(missing) + " (or run `make setup`)"
        )


# ---------------------------------------------------------------- root fs cache
def _apt_sources() -> str:
    """The host's Debian sources, so machines use the same (reachable) mirror."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        return deb822.read_text()
    return (
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def rootfs_key() -> str:
    material = json.dumps([SUITE, VARIANT, INCLUDES, ROOTFS_LAYOUT, _apt_sources()], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def prepare_rootfs(root: Path) -> None:
    """Make a debootstrapped tree a quick-booting, test-friendly machine."""
    (root / "etc/apt/sources.list").write_text("")
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(_apt_sources())
    # Keep downloaded .debs: the harness carries them between machines.
    (root / "etc/apt/apt.conf.d/10slm-keep-debs").write_text('Binary::apt::APT::Keep-Downloaded-Packages "true";\n')
    (root / "etc/apt/apt.conf.d/10slm-no-recommends").write_text('APT::Install-Recommends "false";\n')
    # A machine id is generated at first boot of each overlay.
    (root / "etc/machine-id").write_text("")
    (root / "etc/slm-test-machine").write_text(f"rootfs {rootfs_key()}\n")
    wants = root / "etc/systemd/system"
    # systemd-fstab-generator skips device entries inside containers ("Running in a
    # container, ignoring fstab device entry"), so a machine would not remount its
    # data disk at boot as a real host does. Do what the generator does on a host:
    # mount fstab's entries (nofail ones may be missing) before local-fs.target.
    (wants / "slm-test-fstab.service").write_text(
        "[Unit]\n"
        "Description=slm.edge test harness: mount fstab device entries (skipped by the generator in containers)\n"
        "DefaultDependencies=no\n"
        "After=systemd-tmpfiles-setup-dev.service local-fs-pre.target\n"
        "Before=local-fs.target\n\n"
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/mount -a -O no_netdev\n\n"
        "[Install]\nWantedBy=local-fs.target\n"
    )
    (wants / "local-fs.target.wants").mkdir(parents=True, exist_ok=True)
    link = wants / "local-fs.target.wants" / "slm-test-fstab.service"
    if not link.exists():
        link.symlink_to("/etc/systemd/system/slm-test-fstab.service")
    for unit in ("console-getty.service", "getty@tty1.service", "systemd-networkd-wait-online.service"):
        link = wants / unit
        if not link.exists():
            link.symlink_to("/dev/null")


def ensure_rootfs() -> Path:
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    target = CACHE_ROOT / f"rootfs-{SUITE}-{rootfs_key()}"
    if (target / ".complete").exists():
        return target
    # Scenarios run side by side: one builds, the others wait for it.
    with open(CACHE_ROOT / ".rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        return _build_rootfs(target)


def _clear(path: Path) -> None:
    """Remove a half-built tree, including mounts an interrupted debootstrap left in it (proc, sys)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m == str(path) or m.startswith(f"{path}/")), reverse=True):
        run(["umount", "-l", mount], check=False)
    shutil.rmtree(path, ignore_errors=True)


def _build_rootfs(target: Path) -> Path:
    tmp = target.with_name(target.name + ".tmp")
    _clear(tmp)
    log(f"building Debian {SUITE} root file system with debootstrap (cached at {target})")
    started = time.monotonic()
    for attempt in (1, 2):  # one retry: a mirror hiccup should not fail a whole test run
        proc = run(
            ["debootstrap", f"--variant={VARIANT}", "--include=" + ",".join(INCLUDES), SUITE, str(tmp)],
            check=False,
        )
        if proc.returncode == 0:
            break
        log(f"debootstrap attempt {attempt} failed")
        _clear(tmp)
    if proc.returncode != 0:
        _clear(tmp)
        raise HarnessError("debootstrap failed:\n" + (proc.stdout + proc.stderr)[-3000:])
    prepare_rootfs(tmp)
    tmp.rename(target)
    (target / ".complete").write_text(f"{time.monotonic() - started:.1f}s\n")
    log(f"root file system ready in {time.monotonic() - started:.0f}s")
    return target


# ------------------------------------------------------------------- machines
class Machine:
    def __init__(self, name: str):
        if not NAME_RE.match(name):
            raise HarnessError(f"machine name {name!r} must match {NAME_RE.pattern}")
        self.name = name
        self.dir = STATE_ROOT / "machines" / name
        self.root = self.dir / "root"
        self.state_file = self.dir / "state.json"

    # state -------------------------------------------------------------
    def load(self) -> dict:
        if not self.state_file.exists():
            return {}
        return json.loads(self.state_file.read_text())

    def save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Replaced in one step: a reader in another process never sees a half-written state.
        tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.state_file)

    @property
    def exists(self) -> bool:
        return self.state_file.exists()

    def nspawn_pid(self) -> int | None:
        pid = self.load().get("nspawn_pid")
        if pid and _alive(pid) and _cmdline(pid).startswith("systemd-nspawn") and f"-M\0{self.name}\0" in _cmdline(pid):
            return pid
        return None

    def leader_pid(self) -> int | None:
        pid = self.nspawn_pid()
        if not pid:
            return None
        children = _children(pid)
        return children[0] if children else None

    # create ------------------------------------------------------------
    def create(self, disks: list[tuple[str, str]], binds: list[str], binds_ro: list[str]) -> dict:
        preflight()
        if self.exists:
            return self.load()
        lower = ensure_rootfs()
        started = time.monotonic()
        for sub in ("upper", "work", "root", "disks"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        state = {
            "name": self.name,
            "lower": str(lower),
            "disks": [],
            "binds": binds,
            "binds_ro": binds_ro,
            "created": time.time(),
        }
        self.save(state)
        self._mount_root(state)
        (self.root / "etc/hostname").write_text(f"{self.name}\n")
        # debootstrap's minbase has no /etc/hosts; every real host (and EC2 AMI) has one.
        (self.root / "etc/hosts").write_text(
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{self.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        self._seed_caches()
        for disk_name, size in disks:
            state["disks"].append(self._attach_disk(disk_name, size))
        self.save(state)
        self._write_disk_links(state)
        state["create_seconds"] = round(time.monotonic() - started, 2)
        self.save(state)
        return state

    def _mount_root(self, state: dict) -> None:
        if os.path.ismount(self.root):
            return
        opts = f"lowerdir={state['lower']},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}"
        run(["mount", "-t", "overlay", "overlay", "-o", opts, str(self.root)])

    def _seed_caches(self) -> None:
        """Copy shared apt archives and pip config into the machine."""
        archives = CACHE_ROOT / "apt-archives"
        if archives.is_dir():
            dest = self.root / "var/cache/apt/archives"
            dest.mkdir(parents=True, exist_ok=True)
            for deb in archives.glob("*.deb"):
                target = dest / deb.name
                if not target.exists():
                    shutil.copy2(deb, target)
        for conf in PIP_CONF:
            src = Path(conf)
            if src.is_file():
                dest = self.root / conf.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)

    def _harvest_caches(self) -> None:
        """Keep the .debs this machine downloaded for the next machine."""
        src = self.root / "var/cache/apt/archives"
        if not src.is_dir():
            return
        archives = CACHE_ROOT / "apt-archives"
        archives.mkdir(parents=True, exist_ok=True)
        for deb in src.glob("*.deb"):
            target = archives / deb.name
            if not target.exists():
                # Machines run side by side: another may read this archive while it is copied.
                partial = archives / f".{deb.name}.{os.getpid()}.partial"
                shutil.copy2(deb, partial)
                partial.replace(target)

    def _attach_disk(self, disk_name: str, size: str) -> dict:
        image = self.dir / "disks" / f"{disk_name}.img"
        run(["truncate", "-s", size, str(image)])
        loop = run(["losetup", "--find", "--show", str(image)]).stdout.strip()
        # EBS volume ids are vol- + 17 hex digits; the NVMe serial drops the dash.
        digest = hashlib.sha256(f"{self.name}/{disk_name}".encode()).hexdigest()[:17]
        return {"name": disk_name, "size": size, "image": str(image), "loop": loop, "volume_id": f"vol-{digest}"}

    def _write_disk_links(self, state: dict) -> None:
        """EBS-style by-id links, recreated by tmpfiles at every boot (/dev is a tmpfs)."""
        lines = ["# slm.edge test harness: EBS NVMe style links for loop-device disks"]
        for disk in state["disks"]:
            serial = disk["volume_id"].replace("-", "")
            lines.append(f"L+ /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{serial} - - - - {disk['loop']}")
        conf = self.root / "etc/tmpfiles.d/slm-test-disks.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("\n".join(lines) + "\n")

    # boot / stop ---------------------------------------------------------
    def start(self) -> dict:
        preflight()
        state = self.load()
        if not state:
            raise HarnessError(f"machine {self.name} does not exist: run `nspawn.py up {self.name}` first")
        if self.nspawn_pid():
            return self.wait_running()
        _end_leader(state.get("leader"))  # the last boot's machine, if it runs on without its nspawn
        self._mount_root(state)
        for disk in state["disks"]:
            self._ensure_loop(disk)
        self.save(state)
        self._write_disk_links(state)
        cmd = [
            "systemd-nspawn",
            "-D",
            str(self.root),
            "--boot",
            "--register=no",
            "--keep-unit",
            "--console=passive",
            "--resolv-conf=copy-host",
            "--timezone=off",
            "-M",
            self.name,
        ]
        for disk in state["disks"]:
            cmd.append(f"--bind={disk['loop']}")
        for path in SHARED_RO:
            if os.path.exists(path):
                cmd.append(f"--bind-ro={path}")
        ccache = CACHE_ROOT / "ccache"
        pipcache = CACHE_ROOT / "pip"
        for src, dst in ((ccache, "/var/cache/ccache"), (pipcache, "/root/.cache/pip")):
            src.mkdir(parents=True, exist_ok=True)
            cmd.append(f"--bind={src}:{dst}")
        for bind in state.get("binds", []) + state.get("binds_ro", []):
            # A cache folder that a later step fills (the fixtures, made in a scenario's
            # prepare) is created empty here, so the machine boots and sees it filled.
            src = Path(bind.split(":", 1)[0])
            if not src.exists() and CACHE_ROOT in src.parents:
                src.mkdir(parents=True, exist_ok=True)
        cmd += [f"--bind={b}" for b in state.get("binds", [])]
        cmd += [f"--bind-ro={b}" for b in state.get("binds_ro", [])]
        started = time.monotonic()
        result = self._boot(cmd, state)
        result["boot_seconds"] = round(time.monotonic() - started, 2)
        state = self.load()
        state["boot_seconds"] = result["boot_seconds"]
        self.save(state)
        return result

    def _boot(self, cmd: list[str], state: dict, attempts: int = BOOT_ATTEMPTS) -> dict:
        """Start nspawn and wait for the machine; a machine that dies during boot (seen once
        under load, with an empty console) is started once more before giving up."""
        for attempt in range(1, attempts + 1):
            with open(self.dir / "console.log", "ab") as console:
                proc = subprocess.Popen(
                    cmd, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
                )
            state["nspawn_pid"] = proc.pid
            self.save(state)
            try:
                return self.wait_running()
            except HarnessError as err:
                unseen = "exited during boot" in str(err)
                try:
                    # A machine seen as gone may still be exiting: give it a moment to end.
                    status = proc.wait(timeout=10) if unseen else proc.poll()
                except subprocess.TimeoutExpired:
                    status = None
                if status is None and not unseen:  # still running but not booted in time: not a crash
                    raise
                if status is None:
                    # Seen as gone, yet still running 10 s later (a restart under load in CI: the
                    # new nspawn printed nothing): end it, and count it as a failed boot.
                    _kill_machine(proc.pid)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=10)
                    status = "killed: not seen as the machine's nspawn, yet still running after 10 s"
                detail = (
                    f"nspawn command: {' '.join(cmd)}\nexit status: {status}\n"
                    f"console and journal tail:\n{self.console_tail()}\n{self._journal_tail()}"
                )
                if attempt == attempts:
                    raise HarnessError(
                        f"machine {self.name} died during boot {attempts} times; giving up.\n{detail}"
                    ) from err
                log(f"{self.name} died during boot (attempt {attempt}/{attempts}); starting it again.\n{detail}")
                time.sleep(2)
        raise AssertionError("unreachable")

    def _journal_tail(self, lines: int = 30) -> str:
        journal = self.root / "var/log/journal"
        if not journal.is_dir():
            return "(no persistent journal in the machine)"
        proc = run(["journalctl", "-D", str(journal), "-n", str(lines), "--no-pager"], check=False)
        return proc.stdout or proc.stderr

    def _ensure_loop(self, disk: dict) -> None:
        out = run(["losetup", "-j", disk["image"]], check=False).stdout.strip()
        if out:
            disk["loop"] = out.split(":", 1)[0]
        else:
            disk["loop"] = run(["losetup", "--find", "--show", disk["image"]]).stdout.strip()

    def wait_running(self, timeout: float = BOOT_TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        leader = None
        while time.monotonic() < deadline:
            if not self.nspawn_pid():
                pid = self.load().get("nspawn_pid")
                seen = (
                    f"pid {pid}: alive={_alive(pid)}, zombie={_zombie(pid)}, cmdline={_cmdline(pid)[:60]!r}"
                    if pid
                    else "no nspawn_pid in the state"
                )
                raise HarnessError(f"machine {self.name} exited during boot ({seen}):\n{self.console_tail()}")
            leader = self.leader_pid()
            if leader:
                proc = self.exec(["systemctl", "is-system-running", "--wait"], check=False, timeout=timeout)
                status = proc.stdout.strip()
                if status in ("running", "degraded"):
                    failed = ""
                    if status == "degraded":
                        failed = self.exec(["systemctl", "--failed", "--no-legend", "--plain"], check=False).stdout
                        log(f"{self.name} is degraded; failed units:\n{failed}")
                    state = self.load()
                    state["leader_pid"] = leader
                    # Its identity (a pid may be reused, a pid and its start time are not), to end it
                    # if it outlives its nspawn.
                    state["leader"] = [leader, _start_time(leader)]
                    self.save(state)
                    (self.dir / "leader.pid").write_text(f"{leader}\n")
                    return {"name": self.name, "status": status, "leader_pid": leader, "failed_units": failed}
            time.sleep(0.2)
        raise HarnessError(f"machine {self.name} did not finish booting in {timeout}s:\n{self.console_tail()}")

    def exec(self, argv: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        leader = self.leader_pid()
        if not leader:
            raise HarnessError(f"machine {self.name} is not running")
        return run(
            ["nsenter", "-t", str(leader), "-m", "-u", "-i", "-n", "-p", "--", *argv], check=check, timeout=timeout
        )

    def stop(self, timeout: float = 30) -> None:
        pid = self.nspawn_pid()
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "leader.pid").unlink()
        if not pid:
            _end_leader(self.load().get("leader"))
            return
        os.kill(pid, signal.SIGTERM)  # nspawn asks the machine's systemd to power off
        if not _wait_gone(pid, timeout):
            log(f"{self.name}: clean shutdown took over {timeout}s, killing")
            _kill_machine(pid)
            _wait_gone(pid, 10)
        state = self.load()
        _end_leader(state.pop("leader", None))
        state.pop("nspawn_pid", None)
        state.pop("leader_pid", None)
        self.save(state)

    def destroy(self) -> None:
        state = self.load()
        self.stop()
        if os.path.ismount(self.root):
            self._harvest_caches()
            run(["umount", str(self.root)], check=False)
            if os.path.ismount(self.root):
                run(["umount", "-l", str(self.root)])
        for disk in state.get("disks", []):
            out = run(["losetup", "-j", disk["image"]], check=False).stdout.strip()
            for line in out.splitlines():
                run(["losetup", "-d", line.split(":", 1)[0]], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def grow(self, disk_name: str, size: str) -> dict:
        state = self.load()
        for disk in state.get("disks", []):
            if disk["name"] == disk_name:
                run(["truncate", "-s", size, disk["image"]])
                self._ensure_loop(disk)
                run(["losetup", "-c", disk["loop"]])
                disk["size"] = size
                self.save(state)
                return disk
        raise HarnessError(f"machine {self.name} has no disk named {disk_name}")

    def console_tail(self, lines: int = 40) -> str:
        path = self.dir / "console.log"
        if not path.exists():
            return "(no console log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def info(self) -> dict:
        state = self.load()
        state["running"] = bool(self.nspawn_pid())
        state["leader_pid"] = self.leader_pid()
        state["pid_file"] = str(self.dir / "leader.pid")
        if state["leader_pid"]:
            state["memory_bytes"] = _tree_rss(self.nspawn_pid())
        return state


# ------------------------------------------------------------------ helpers
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(x) for x in (task / "children").read_text().split()]
    return found


def _tree_rss(pid: int | None) -> int:
    if not pid:
        return 0
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        stack += _children(current)
    return total


def _kill_machine(nspawn_pid: int) -> None:
    """SIGKILL a machine: its init first, then nspawn's process group.

    The init is the first process of the machine's PID namespace, so the kernel ends every
    process of the machine with it. Killing only nspawn would leave the machine running,
    reparented to the host's init: still holding its ports (a restarted machine's llama-server
    then cannot bind, and the old one answers in its place) and writing to the same root.
    """
    leaders = _children(nspawn_pid)
    for leader in leaders:
        with contextlib.suppress(ProcessLookupError):
            os.kill(leader, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(nspawn_pid, signal.SIGKILL)
    for leader in leaders:
        if not _wait_gone(leader, 10):
            log(f"pid {leader} (a machine's init) still runs 10 s after SIGKILL")


def _end_leader(leader: list[int] | None) -> None:
    """SIGKILL a stopped machine's init if it still runs without its nspawn.

    leader is [pid, start time] as saved at boot, so a pid reused since is left alone. The init is
    the first process of the machine's PID namespace: the kernel ends the whole machine with it.
    """
    if not leader:
        return
    pid, started = leader
    if not started or not _alive(pid) or _zombie(pid) or _start_time(pid) != started:
        return
    log(f"pid {pid} (the init of a stopped machine) still runs without its nspawn: killing it")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 10)


def _start_time(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid) or _zombie(pid):
            return True
        time.sleep(0.1)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def write_inventory(path: Path, names: list[str], group: str = "llm_servers") -> None:
    """An inventory whose nsenter PID is read at connection time (it changes at reboot)."""
    hosts = {}
    for name in names:
        hosts[name] = {
            # tests/connection_plugins/slm_nspawn.py (enabled by the repo's ansible.cfg)
            # reads the machine's systemd PID from the harness state at connect time.
            "ansible_connection": "slm_nspawn",
            "ansible_host": name,
            "ansible_python_interpreter": "/usr/bin/python3",
        }
    lines = [
        "---",
        "# Written by tests/harness/nspawn.py: local systemd-nspawn test hosts.",
        "all:",
        "  children:",
        f"    {group}:",
        "      hosts:",
    ]
    for name, hostvars in hosts.items():
        lines.append(f"        {name}:")
        lines += [f'          {key}: "{value}"' for key, value in hostvars.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def parse_disk(spec: str) -> tuple[str, str]:
    name, size = spec.partition(":")[::2]
    if not name or not re.match(r"^\d+[KMGT]?$", size or ""):
        raise argparse.ArgumentTypeError(f"--disk wants NAME:SIZE such as data:2G, got {spec!r}")
    return name, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="create (if needed) and boot a machine")
    up.add_argument("names", nargs="+")
    up.add_argument("--disk", action="append", default=[], type=parse_disk)
    up.add_argument("--bind", action="append", default=[], help="SRC[:DST] bound read-write")
    up.add_argument("--bind-ro", action="append", default=[], help="SRC[:DST] bound read-only")
    up.add_argument("--inventory", type=Path, help="write an Ansible inventory for the machines here")
    for cmd in ("start", "stop", "restart", "destroy", "status", "pid"):
        p = sub.add_parser(cmd)
        p.add_argument("names", nargs="+")
    grow = sub.add_parser("grow")
    grow.add_argument("name")
    grow.add_argument("disk")
    grow.add_argument("size")
    sub.add_parser("list")
    sub.add_parser("rootfs")
    args = parser.parse_args(argv)

    try:
        if args.cmd == "rootfs":
            preflight()
            print(ensure_rootfs())
            return 0
        if args.cmd == "list":
            machines = sorted(p.name for p in (STATE_ROOT / "machines").glob("*") if p.is_dir())
            print(json.dumps([Machine(n).info() for n in machines], indent=2))
            return 0
        if args.cmd == "grow":
            print(json.dumps(Machine(args.name).grow(args.disk, args.size)))
            return 0
        out = []
        for name in args.names:
            machine = Machine(name)
            if args.cmd == "up":
                machine.create(args.disk, args.bind, args.bind_ro)
                out.append({**machine.start(), **{"disks": machine.load()["disks"]}})
            elif args.cmd == "start":
                out.append(machine.start())
            elif args.cmd == "stop":
                machine.stop()
            elif args.cmd == "restart":
                machine.stop()
                out.append(machine.start())
            elif args.cmd == "destroy":
                machine.destroy()
            elif args.cmd == "status":
                out.append(machine.info())
            elif args.cmd == "pid":
                print(machine.leader_pid() or "")
        if args.cmd == "up" and args.inventory:
            write_inventory(args.inventory, args.names)
        if out:
            print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    except HarnessError as exc:
        print(f"nspawn.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
