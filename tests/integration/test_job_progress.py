"""slm.edge.job_progress waits for a real async job on localhost and shows steps, not retries."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_playbook(playbook: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_waits_for_a_real_job_and_shows_steps_not_retries(tmp_path):
    log = tmp_path / "build.log"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - hosts: localhost
              connection: local
              gather_facts: false
              tasks:
                - name: A job that reports ninja-style steps
                  ansible.builtin.shell: for i in 1 2 3; do echo "[$i/3] step $i" >> {log}; sleep 1.2; done; exit 3
                  async: 60
                  poll: 0
                  register: job
                - name: Wait with progress
                  slm.edge.job_progress:
                    jid: "{{{{ job.ansible_job_id }}}}"
                    log: {log}
                    label: fake build
                    interval: 1
                  register: waited
                - name: The job's result comes back, not judged
                  ansible.builtin.assert:
                    that: [waited.finished == 1, waited.rc == 3, waited is not failed, waited.job_failed]
            """
        )
    )
    proc = run_playbook(playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[localhost] fake build:" in proc.stdout
    assert "/3 steps (" in proc.stdout
    assert "RETRYING" not in proc.stdout


def test_a_job_without_a_log_shows_the_bytes_it_has_written(tmp_path):
    out = tmp_path / "download"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - hosts: localhost
              connection: local
              gather_facts: false
              tasks:
                - name: A download that writes 3 MiB, one a second
                  ansible.builtin.shell: >-
                    mkdir -p {out}; for i in 1 2 3; do head -c 1048576 /dev/zero >> {out}/f; sleep 1.2; done
                  async: 60
                  poll: 0
                  register: job
                - name: Wait, showing the bytes under the folder
                  slm.edge.job_progress:
                    jid: "{{{{ job.ansible_job_id }}}}"
                    watch_path: {out}
                    label: fake download
                    interval: 1
                  register: waited
                - name: The job succeeded
                  ansible.builtin.assert:
                    that: [waited.finished == 1, not waited.job_failed]
            """
        )
    )
    proc = run_playbook(playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f" MiB in {out} (" in proc.stdout, proc.stdout
