# Copyright: slm.edge contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for an async job and show its progress (one line per change) instead of retries."""

from __future__ import annotations

import re
import shlex
import time

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

NINJA = r"^\[(?P<done>\d+)/(?P<total>\d+)\]"


def progress_line(tail: str, pattern: str) -> tuple[str, int | None, int | None]:
    """The last line of ``tail`` that matches ``pattern`` (with its done/total groups, if any)."""
    regex = re.compile(pattern)
    for line in reversed(tail.splitlines()):
        match = regex.search(line)
        if match:
            groups = match.groupdict()
            done = int(groups["done"]) if groups.get("done") else None
            total = int(groups["total"]) if groups.get("total") else None
            return line.strip(), done, total
    return "", None, None


def human_bytes(count: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"


def bytes_line(path: str, size: int, elapsed: float) -> str:
    """What a download has written so far, for a job without a progress log of its own."""
    rate = size / elapsed if elapsed > 0 else 0
    return f"{human_bytes(size)} in {path} ({human_bytes(int(rate))}/s)"


def format_progress(label: str, elapsed: float, line: str, done: int | None, total: int | None) -> str:
    minutes, seconds = divmod(int(elapsed), 60)
    clock = f"{minutes}m{seconds:02d}s"
    if done is not None and total:
        return f"{label}: {done}/{total} steps ({100 * done // total}%), {clock} elapsed"
    if line:
        return f"{label}: {clock} elapsed, {line[:120]}"
    return f"{label}: {clock} elapsed"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("jid", "log", "pattern", "label", "timeout", "interval", "watch_path"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        jid = args.get("jid")
        if not jid:
            raise AnsibleActionFail("job_progress needs jid (the ansible_job_id of an async task with poll: 0)")
        log = args.get("log")
        watch_path = args.get("watch_path")
        pattern = args.get("pattern") or NINJA
        label = args.get("label") or "job"
        try:
            timeout = int(args.get("timeout", 3600))
            interval = max(1, int(args.get("interval", 10)))
            re.compile(pattern)
        except (TypeError, ValueError, re.error) as err:
            raise AnsibleActionFail(f"job_progress: bad timeout, interval or pattern: {err}") from err

        host = task_vars.get("inventory_hostname", "?")
        # As ansible.builtin.async_status's own action does.
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        started = time.monotonic()
        shown = None
        last_shown_at = 0.0
        while True:
            status = self._execute_module(
                module_name="ansible.legacy.async_status",
                module_args={"jid": jid, "mode": "status", "_async_dir": async_dir},
                task_vars=task_vars,
            )
            elapsed = time.monotonic() - started
            if status.get("finished") or status.get("failed"):
                status.pop("invocation", None)
                result.update(status)
                result["elapsed"] = round(elapsed, 1)
                result["changed"] = bool(status.get("changed", False))
                result["finished"] = 1
                # Like async_status under failed_when: false: the caller judges rc, or job_failed
                # (the job's own verdict: a module that failed, a command that exited non-zero).
                result["job_failed"] = bool(status.get("failed", False))
                result["failed"] = False
                return result
            if elapsed >= timeout:
                result.update({"failed": True, "finished": 0, "ansible_job_id": jid, "elapsed": round(elapsed, 1)})
                result["msg"] = f"{label}: still running after {timeout}s (job {jid})"
                return result
            line, done, total = ("", None, None)
            if log:
                tail = self._low_level_execute_command(f"tail -c 8192 {shlex.quote(log)} 2>/dev/null")
                line, done, total = progress_line(to_text(tail.get("stdout", "")), pattern)
            if watch_path and not line:
                du = self._low_level_execute_command(
                    f"du -sb --apparent-size {shlex.quote(watch_path)} 2>/dev/null | cut -f1"
                )
                written = to_text(du.get("stdout", "")).strip()
                if written.isdigit():
                    line = bytes_line(watch_path, int(written), elapsed)
            key = (done, total) if done is not None else line
            if key != shown or time.monotonic() - last_shown_at >= 60:
                display.display(f"[{host}] {format_progress(label, elapsed, line, done, total)}")
                shown, last_shown_at = key, time.monotonic()
            time.sleep(interval)
