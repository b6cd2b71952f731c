"""Connection to a slm.edge test machine (tests/harness/nspawn.py), through nsenter.

community.docker.nsenter needs the machine's systemd PID, which changes when a
test reboots the machine. A templated ``ansible_nsenter_pid`` is evaluated with
the *task's* host variables, so a task delegated to another machine would enter
the wrong one. This plugin reads the PID from the harness's state directory,
keyed on ``ansible_host`` (the machine name), at connect time: delegation and
reboots both work, and a machine that is not running fails the connection
instead of falling back to PID 1 (the host).

nsenter hands the machine's processes the controller's environment. A real host reached over
SSH does not get the controller's AWS keys, tokens or passwords, so those variables are left
out of every command run in a machine: a test of the instance profile path (the IMDSv2
stand-in) would otherwise pass on the controller's AWS_ACCESS_KEY_ID. Task ``environment:``
still reaches the machine (Ansible puts it in the command itself).

Each module's interpreter gets tests/harness/ansiballz_cache in PYTHONPATH (copied into the machine
on connect): a bytecode cache for the zipped module_utils that Python would otherwise compile again
for every task. It runs the same code, about a quarter less CPU per task; see that file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ansible.errors import AnsibleConnectionFailure
from ansible_collections.community.docker.plugins.connection.nsenter import Connection as NsenterConnection

DOCUMENTATION = """
name: slm_nspawn
short_description: Run tasks in a slm.edge systemd-nspawn test machine
description:
  - nsenter into the machine named by ansible_host, with its current systemd PID read from the harness state.
author: slm.edge maintainers (!UNKNOWN)
options:
  remote_addr:
    description: The machine name.
    type: str
    vars:
      - name: ansible_host
      - name: inventory_hostname
  nsenter_pid:
    description: Ignored; the PID is read from the harness state at connect time.
    type: int
    default: 0
  pipelining:
    description:
      - Send each module to the machine's python on stdin (one nsenter) instead of writing it to a
        temporary file first (four). The machines are entered as root, so no become prompt needs a pty.
    type: bool
    default: true
    env:
      - name: ANSIBLE_PIPELINING
    vars:
      - name: ansible_pipelining
"""

STATE_ROOT = Path(os.environ.get("SLM_TEST_ROOT", "/var/lib/slm-edge-test"))
CACHE_HOOK = (Path(__file__).resolve().parents[1] / "harness" / "ansiballz_cache" / "sitecustomize.py").read_bytes()
# Where the hook lives inside a machine.
CACHE_HOOK_DIR = "/usr/local/lib/slm-test-ansiballz"
# The controller's credentials, which a host reached over SSH would not have.
CONTROLLER_ONLY = re.compile(r"^(AWS_|HF_|HUGGING_FACE_|GH_|GITHUB_)|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


class Connection(NsenterConnection):
    transport = "slm_nspawn"
    # exec_command hands in_data to the process's stdin, which is all pipelining needs.
    has_pipelining = True

    def _connect(self):
        # play_context.remote_addr is the delegated host's address when a task is delegated.
        name = self._play_context.remote_addr or self.get_option("remote_addr")
        pid_file = STATE_ROOT / "machines" / str(name) / "leader.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as exc:
            raise AnsibleConnectionFailure(
                f"test machine {name!r} is not running ({pid_file}: {exc}); "
                f"start it with tests/harness/nspawn.py up {name}"
            ) from exc
        self.set_option("nsenter_pid", pid)
        self._install_cache_hook(STATE_ROOT / "machines" / str(name) / "root")
        return super()._connect()

    @staticmethod
    def _install_cache_hook(root: Path) -> None:
        """Copy the bytecode cache hook into the machine's tree (root: its overlay, seen from here)."""
        target = root / CACHE_HOOK_DIR.lstrip("/") / "sitecustomize.py"
        try:
            if target.read_bytes() == CACHE_HOOK:
                return
        except OSError:
            pass
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".sitecustomize.{os.getpid()}")
            tmp.write_bytes(CACHE_HOOK)
            tmp.chmod(0o644)
            tmp.replace(target)
        except OSError:
            return  # no cache: tasks only run slower

    def exec_command(self, cmd, in_data=None, sudoable=True):
        # Runs in the task's worker process: the environment is put back before it returns.
        withheld = {name: value for name, value in os.environ.items() if CONTROLLER_ONLY.search(name)}
        for name in withheld:
            del os.environ[name]
        pythonpath = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = CACHE_HOOK_DIR
        try:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        finally:
            if pythonpath is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = pythonpath
            os.environ.update(withheld)
