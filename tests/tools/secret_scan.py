"""Prove that no secret leaks while a command runs: output, command lines, world-readable files.

Runs a command (typically ansible-playbook -vvv) and, while it runs, samples every
process command line every --interval seconds: on this machine (/proc/*/cmdline,
which also shows the processes of the local nspawn machines) and inside each
--machine (a sampler started in the machine's mount and PID namespaces with nsenter,
reading the machine's own /proc). When the command ends, its captured output is
searched, then every world-readable regular file (mode o+r) under --machine-path in
each machine, every world-readable file under --local-path that changed since the
run started, and every file (any mode) under --scan-dir (artifact folders such as
ansible-runner's job_events).

The secrets come from --secrets-file (NAME=VALUE per line; the file must not be
readable by others) or --secret-env NAME (the value of that environment variable):
never from the command line. A secret is looked for as written, percent-encoded and
base64-encoded at each of the three alignments (an HTTP Basic header, a credential in
a URL), in bytes. Findings name the secret, the encoding and the place, and show a
context with every secret replaced by <NAME>; the value itself is never printed.

  secret_scan.py --secrets-file F [--secret-env VAR] [--machine NAME] [--report FILE]
                 [--output FILE] [--scan-dir DIR] [--local-path DIR] [--machine-path DIR]
                 [--expect-rc N] [-- COMMAND ...]

Without a command only the files are scanned. The last line on stdout is a JSON
summary (command rc, samples, files scanned, findings); exit status 1 when a secret
was found, when the command's rc is not --expect-rc (0 unless given), or when a
machine could not be sampled or scanned.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

STATE_ROOT = Path(os.environ.get("SLM_TEST_ROOT", "/var/lib/slm-edge-test"))
DEFAULT_MACHINE_PATHS = ["/etc", "/opt/slm", "/var/lib", "/var/log", "/tmp", "/run"]
MIN_ENCODED_LENGTH = 8
MAX_FILE_BYTES = 256 * 1024 * 1024
CHUNK = 4 * 1024 * 1024


# ------------------------------------------------------------------ matching
def base64_needles(value: bytes) -> list[bytes]:
    """The parts of base64(x + value + y) that depend only on value, for the 3 alignments of value."""
    needles = []
    for lead in range(3):
        encoded = base64.b64encode(b"\0" * lead + value)
        total = lead + len(value)
        start = -(-8 * lead // 6)  # first character whose 6 bits all come from value
        end = (8 * total) // 6  # characters after this one mix in whatever follows value
        part = encoded[start:end]
        if len(part) >= MIN_ENCODED_LENGTH:
            needles.append(part)
    return needles


def encodings(value: str) -> dict[str, list[bytes]]:
    raw = value.encode()
    out: dict[str, list[bytes]] = {"raw": [raw]}
    quoted = urllib.parse.quote(value, safe="").encode()
    if quoted != raw:
        out["percent"] = [quoted, quoted.lower()] if quoted.lower() != quoted else [quoted]
    b64 = base64_needles(raw)
    if b64:
        out["base64"] = b64
        urlsafe = [n.replace(b"+", b"-").replace(b"/", b"_") for n in b64]
        if urlsafe != b64:
            out["base64url"] = urlsafe
    return out


@dataclass
class Finding:
    secret: str
    encoding: str
    where: str
    offset: int
    context: str

    def as_dict(self) -> dict:
        return {
            "secret": self.secret,
            "encoding": self.encoding,
            "where": self.where,
            "offset": self.offset,
            "context": self.context,
        }


@dataclass
class Matcher:
    """Finds secrets (by name) in bytes; contexts come back with every secret redacted."""

    secrets: dict[str, str]
    needles: list[tuple[str, str, bytes]] = field(init=False)

    def __post_init__(self) -> None:
        empty = [name for name, value in self.secrets.items() if len(value) < MIN_ENCODED_LENGTH]
        if empty:
            raise ValueError(f"secrets shorter than {MIN_ENCODED_LENGTH} characters cannot be searched: {empty}")
        self.needles = []
        for name, value in self.secrets.items():
            for enc, items in encodings(value).items():
                self.needles += [(name, enc, needle) for needle in items]
        # Longest first, so that redaction removes a whole value before any shorter needle inside it.
        self.needles.sort(key=lambda n: -len(n[2]))

    @property
    def longest(self) -> int:
        return max(len(n[2]) for n in self.needles)

    def redact(self, data: bytes) -> str:
        for name, _enc, needle in self.needles:
            data = data.replace(needle, f"<{name}>".encode())
        return data.decode("utf-8", "replace")

    def find(self, data: bytes, where: str, base: int = 0, context: int = 60) -> list[Finding]:
        found = []
        seen: set[tuple[str, int]] = set()
        for name, enc, needle in self.needles:
            start = 0
            while True:
                pos = data.find(needle, start)
                if pos < 0:
                    break
                start = pos + 1
                if (name, pos) in seen:
                    continue
                seen.add((name, pos))
                snippet = data[max(0, pos - context) : pos + len(needle) + context]
                found.append(Finding(name, enc, where, base + pos, self.redact(snippet)))
        return found


def load_secrets(files: list[str], env_names: list[str]) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for path in files:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            raise SystemExit(f"secret_scan: {path} is readable by others (mode {oct(mode & 0o777)}): chmod 600 it")
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip() or not value:
                raise SystemExit(f"secret_scan: {path} line {number} is not NAME=VALUE")
            secrets[name.strip()] = value
    for name in env_names:
        value = os.environ.get(name, "")
        if not value:
            raise SystemExit(f"secret_scan: environment variable {name} is empty")
        secrets[name] = value
    if not secrets:
        raise SystemExit("secret_scan: no secrets given (--secrets-file or --secret-env)")
    return secrets


# ------------------------------------------------------------------ file walking
# One function, run here for local folders and inside machines (sent over stdin with the
# needles, so that no secret is ever on a command line or in a file there).
WALKER = r"""
def walk(args):
    import fnmatch, os, stat, json, sys, time
    needles = [(n, e, bytes.fromhex(h)) for n, e, h in args["needles"]]
    longest = max(len(x[2]) for x in needles)
    hits, scanned, skipped, errors = [], 0, [], 0
    newer = args.get("newer", 0)
    everything = args.get("all_modes", False)
    for top in args["paths"]:
        if not os.path.lexists(top):
            continue
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in args.get("exclude", [])
                       and not any(fnmatch.fnmatch(d, g) for g in args.get("skip_globs", []))]
            for name in files:
                path = os.path.join(root, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                if not everything and not st.st_mode & stat.S_IROTH:
                    continue
                if newer and max(st.st_mtime, st.st_ctime) < newer:
                    continue
                if st.st_size > args["max_bytes"]:
                    skipped.append(path)
                    continue
                try:
                    with open(path, "rb") as fh:
                        scanned += 1
                        offset, tail = 0, b""
                        while True:
                            chunk = fh.read(args["chunk"])
                            if not chunk:
                                break
                            data = tail + chunk
                            for n, e, needle in needles:
                                pos = data.find(needle)
                                while pos >= 0:
                                    hits.append({"path": path, "name": n, "encoding": e,
                                                 "offset": offset - len(tail) + pos,
                                                 "snippet": data[max(0, pos - 60):pos + len(needle) + 60].hex()})
                                    pos = data.find(needle, pos + 1)
                            tail = data[-(longest - 1):] if longest > 1 else b""
                            offset += len(chunk)
                except OSError:
                    errors += 1
    return {"hits": hits, "scanned": scanned, "skipped_large": skipped, "errors": errors}
"""

REMOTE_BOOT = (
    "import json,sys; d=json.loads(sys.stdin.readline()); g={}; exec(d['code'], g); print(json.dumps(g['walk'](d)))"
)

SAMPLER = r"""
import os, sys, time, json
interval = float(sys.argv[1])
while True:
    rows = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if cmd:
            rows.append([int(pid), cmd.hex()])
    try:
        sys.stdout.write(json.dumps(rows) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        break
    time.sleep(interval)
"""


# Scratch copies of this repository and its tests that other test tiers write under /tmp while
# a scan runs (the sanity tier's collection copy, pytest's tmp folders). They hold the test
# values by design; they are not output of the command under the scanner.
LOCAL_SKIP_GLOBS = ["slm-edge-sanity-*", "pytest-of-*"]


def walk_args(matcher: Matcher, paths: list[str], **extra) -> dict:
    return {
        "needles": [[n, e, needle.hex()] for n, e, needle in matcher.needles],
        "paths": paths,
        "max_bytes": MAX_FILE_BYTES,
        "chunk": CHUNK,
        **extra,
    }


def hits_to_findings(matcher: Matcher, result: dict, prefix: str) -> list[Finding]:
    found = []
    seen = set()
    for hit in result["hits"]:
        key = (hit["path"], hit["name"], hit["offset"])
        if key in seen:
            continue
        seen.add(key)
        context = matcher.redact(bytes.fromhex(hit["snippet"]))
        found.append(Finding(hit["name"], hit["encoding"], f"{prefix}{hit['path']}", hit["offset"], context))
    return found


def scan_local(matcher: Matcher, paths: list[str], **extra) -> tuple[list[Finding], dict]:
    scope: dict = {}
    exec(WALKER, scope)  # our own constant, shared with the machine side
    result = scope["walk"](walk_args(matcher, paths, **extra))
    return hits_to_findings(matcher, result, "local:"), result


# ------------------------------------------------------------------ machines
def leader_pid(name: str) -> int:
    """The machine's systemd PID: machinectl for registered machines, else the test harness's record."""
    try:
        out = subprocess.run(
            ["machinectl", "show", name, "-p", "Leader", "--value"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip().isdigit():
            return int(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    pid_file = STATE_ROOT / "machines" / name / "leader.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        if Path(f"/proc/{pid}").exists():
            return pid
    raise RuntimeError(f"machine {name} is not running (no machinectl record, no live {pid_file})")


def nsenter(pid: int, argv: list[str]) -> list[str]:
    return ["nsenter", "-t", str(pid), "-m", "-p", "--", *argv]


def scan_machine(matcher: Matcher, name: str, paths: list[str]) -> tuple[list[Finding], dict]:
    args = walk_args(matcher, paths, exclude=["/proc", "/sys", "/dev"], code=WALKER)
    proc = subprocess.run(
        nsenter(leader_pid(name), ["python3", "-c", REMOTE_BOOT]),
        input=json.dumps(args) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"file scan in {name} failed (rc {proc.returncode}): {matcher.redact(proc.stderr.encode())}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return hits_to_findings(matcher, result, f"{name}:"), result


class Sampler:
    """Command lines every interval: here (/proc) and in each machine (a sampler inside it)."""

    def __init__(self, matcher: Matcher, machines: list[str], interval: float):
        self.matcher = matcher
        self.machines = machines
        self.interval = interval
        self.findings: list[Finding] = []
        self.samples: dict[str, int] = {"local": 0, **{m: 0 for m in machines}}
        self.errors: list[str] = []
        self._seen: set[tuple[str, int, bytes]] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._procs: list[subprocess.Popen] = []

    def check(self, where: str, rows: list[tuple[int, bytes]]) -> None:
        with self._lock:
            self.samples[where] += 1
            for pid, cmd in rows:
                key = (where, pid, cmd)
                if key in self._seen:
                    continue
                self._seen.add(key)
                flat = cmd.replace(b"\0", b" ")
                for f in self.matcher.find(flat, f"{where}: cmdline of pid {pid}"):
                    f.context = self.matcher.redact(flat[:300])
                    self.findings.append(f)

    def _local(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            rows = []
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if cmd:
                    rows.append((int(pid), cmd))
            self.check("local", rows)
            self._stop.wait(self.interval)

    def _machine(self, name: str) -> None:
        while not self._stop.is_set():
            try:
                pid = leader_pid(name)
            except RuntimeError:
                # Rebooting: try again (the gap is counted as samples missed, not as an error).
                self._stop.wait(self.interval)
                continue
            proc = subprocess.Popen(
                nsenter(pid, ["python3", "-c", SAMPLER, str(self.interval)]),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                text=True,
            )
            self._procs.append(proc)
            assert proc.stdout is not None
            for line in proc.stdout:
                rows = [(p, bytes.fromhex(h)) for p, h in json.loads(line)]
                self.check(name, rows)
                if self._stop.is_set():
                    break
            proc.terminate()
            proc.wait()

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._local, daemon=True)]
        self._threads += [threading.Thread(target=self._machine, args=(m,), daemon=True) for m in self.machines]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for t in self._threads:
            t.join(timeout=10)
        for name in self.machines:
            if self.samples[name] == 0:
                self.errors.append(f"no command-line sample was taken in machine {name}")


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secrets-file", action="append", default=[], help="NAME=VALUE lines, mode 0600")
    ap.add_argument("--secret-env", action="append", default=[], help="an environment variable holding a secret")
    ap.add_argument("--machine", action="append", default=[], help="nspawn machine to sample and scan")
    ap.add_argument("--machine-path", action="append", default=None, help="folders scanned in each machine")
    ap.add_argument("--local-path", action="append", default=[], help="local folders: world-readable files changed")
    ap.add_argument("--scan-dir", action="append", default=[], help="local folders: every file, any mode")
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--output", help="write the command's output here (mode 0600)")
    ap.add_argument("--report", help="write the JSON summary here too")
    ap.add_argument("--expect-rc", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args(argv)

    matcher = Matcher(load_secrets(args.secrets_file, args.secret_env))
    machine_paths = args.machine_path or DEFAULT_MACHINE_PATHS
    summary: dict = {"findings": [], "errors": []}
    started = time.time()

    if command:
        sampler = Sampler(matcher, args.machine, args.interval)
        sampler.start()
        time.sleep(args.interval)  # a first sample of each machine before the command starts
        try:
            proc = subprocess.run(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=args.timeout, check=False
            )
            rc, output = proc.returncode, proc.stdout
        except subprocess.TimeoutExpired as exc:
            rc, output = 124, exc.stdout or b""
        finally:
            sampler.stop()
        if args.output:
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(output)
        summary["command"] = {"argv0": Path(command[0]).name, "rc": rc, "output_bytes": len(output)}
        summary["samples"] = sampler.samples
        summary["errors"] += sampler.errors
        summary["findings"] += [f.as_dict() for f in matcher.find(output, "command output")]
        summary["findings"] += [f.as_dict() for f in sampler.findings]
        if rc != args.expect_rc:
            tail = matcher.redact(output[-3000:])
            summary["errors"].append(f"command rc {rc}, expected {args.expect_rc}; output tail: {tail}")

    files: dict = {}
    for name in args.machine:
        try:
            found, result = scan_machine(matcher, name, machine_paths)
            summary["findings"] += [f.as_dict() for f in found]
            files[name] = {"scanned": result["scanned"], "skipped_large": len(result["skipped_large"])}
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            summary["errors"].append(f"{name}: {exc}")
    if args.local_path:
        found, result = scan_local(matcher, args.local_path, newer=started - 1, skip_globs=LOCAL_SKIP_GLOBS)
        summary["findings"] += [f.as_dict() for f in found]
        files["local (changed during the run)"] = {"scanned": result["scanned"]}
    if args.scan_dir:
        found, result = scan_local(matcher, args.scan_dir, all_modes=True)
        summary["findings"] += [f.as_dict() for f in found]
        files["artifacts"] = {"scanned": result["scanned"], "skipped_large": len(result["skipped_large"])}
        if result["scanned"] == 0:
            summary["errors"].append(f"no file found under {args.scan_dir}")
    summary["files"] = files
    summary["secrets"] = sorted(matcher.secrets)
    summary["ok"] = not summary["findings"] and not summary["errors"]
    text = json.dumps(summary)
    if args.report:
        fd = os.open(args.report, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(summary, indent=2) + "\n")
    print(text)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
