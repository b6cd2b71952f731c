#!/usr/bin/python
# Copyright: slm.edge contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: job_progress
short_description: Wait for an async job and print its progress
version_added: "0.2.0"
description:
  - Waits for a job started with C(async) and C(poll=0), like M(ansible.builtin.async_status) in an
    C(until) loop, but prints one line on the controller each time the job's progress changes (at
    least once a minute) instead of a C(FAILED - RETRYING) line per poll.
  - Progress is the last line of O(log) on the host that matches O(pattern); with C(done) and C(total)
    named groups it is shown as steps done of total, with the elapsed time.
  - Like C(async_status) with C(failed_when=false) it does not fail when the job fails; the caller
    judges C(rc). It fails only on O(timeout).
  - This is an action plugin; it runs on the controller and calls C(async_status) on the host.
options:
  jid:
    description: The C(ansible_job_id) of the async task.
    type: str
    required: true
  log:
    description: A log file on the host the job writes to (for example a build log).
    type: path
  pattern:
    description: Regular expression for the progress line; named groups C(done) and C(total) give steps.
    type: str
    default: '^\[(?P<done>\d+)/(?P<total>\d+)\]'
  watch_path:
    description:
      - A file or folder on the host the job writes to (a download). When O(log) has no matching line, each
        progress line gives the bytes under it so far and the rate (C(du --apparent-size)), for tools that
        print no progress of their own (git clone, huggingface_hub).
    type: path
  label:
    description: What the job is, at the start of each progress line.
    type: str
    default: job
  timeout:
    description: Seconds to wait before failing.
    type: int
    default: 3600
  interval:
    description: Seconds between polls.
    type: int
    default: 10
attributes:
  check_mode:
    support: none
    description: The job it waits for ran in check mode or not; this only polls.
  diff_mode:
    support: none
    description: Nothing to compare.
  action:
    support: full
    description: Runs on the controller and calls async_status on the host.
  async:
    support: none
    description: It is the waiting for an async job.
author:
  - slm.edge maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Compile (async)
  ansible.builtin.command: /opt/build.sh
  async: 7200
  poll: 0
  register: job

- name: Wait for the build, showing ninja's [done/total]
  slm.edge.job_progress:
    jid: "{{ job.ansible_job_id }}"
    log: /opt/build.log
    label: llama.cpp build
  register: build
"""

RETURN = r"""
finished:
  description: 1 when the job ended.
  returned: always
  type: int
rc:
  description: The job's exit status.
  returned: when the job ended
  type: int
job_failed:
  description:
    - The job's own verdict - true when the module it ran failed (a command with a non-zero exit status
      too). This action does not fail for it; the caller decides, with the job's C(msg) and other results.
  returned: when the job ended
  type: bool
elapsed:
  description: Seconds waited.
  returned: always
  type: float
"""
