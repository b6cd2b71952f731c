#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: memory_bandwidth_info
short_description: Measure the host's memory bandwidth with a short copy probe
version_added: 0.3.0
description:
  - Copies a buffer larger than any cache in O(processes) processes at once, for O(seconds) per trial, and reports
    the best of O(trials) aggregate figures in GB/s (10^9 bytes per second). Each copy reads its source and writes
    its destination, so it counts twice its size.
  - The figure is the roofline input of slm.edge.benchmark on CPU hosts. Decoding one token reads every weight
    once, so a single stream cannot decode faster than the bandwidth divided by the model's size in bytes.
  - It is a lower bound of the peak that decode can reach. It measures copies, not the pure streaming reads that
    decode does, and one memcpy per process. When the data sheet gives a figure, pass that one instead
    (slm.edge.benchmark's C(benchmark_memory_bandwidth_gbps)).
  - The module only reads and writes its own memory; it changes nothing on the host.
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  processes:
    description:
      - Processes that copy at the same time. V(0) means one per CPU the module may run on, at most 32.
    type: int
    default: 0
  buffer_mib:
    description:
      - Size of each process's buffer in MiB (each process holds two).
    type: int
    default: 64
  seconds:
    description:
      - Length of one trial in seconds.
    type: float
    default: 0.5
  trials:
    description:
      - Trials to run; the best one is reported.
    type: int
    default: 3
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: slm.edge.llm_benchmark
  - module: slm.edge.gpu_info
"""

EXAMPLES = r"""
- name: Measure the memory bandwidth of a CPU serving host
  slm.edge.memory_bandwidth_info:
  register: bandwidth

- name: Say how fast one stream can decode the model at most
  ansible.builtin.debug:
    msg: "{{ (bandwidth.memory_bandwidth_gbps * 1e9 / 640000000) | round(1) }} tok/s at most for a 640 MB model"
"""

RETURN = r"""
memory_bandwidth_gbps:
  description: The best trial's aggregate bandwidth in GB/s (bytes read plus bytes written, 10^9 bytes per second).
  returned: always
  type: float
  sample: 38.2
processes:
  description: Processes that copied at the same time.
  returned: always
  type: int
  sample: 16
buffer_mib:
  description: Size of each process's buffer in MiB.
  returned: always
  type: int
  sample: 64
trials_gbps:
  description: Every trial's figure in GB/s, in order.
  returned: always
  type: list
  elements: float
  sample: [36.9, 38.2, 37.7]
method:
  description: What was measured.
  returned: always
  type: str
  sample: memcpy of a 64 MiB buffer in 16 processes at once, read plus write
"""

import multiprocessing
import os
import time

from ansible.module_utils.basic import AnsibleModule

MAX_PROCESSES = 32


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _copier(size, seconds, ready, start, results):
    """One process: two buffers, touched first, then copies until the trial's time is up."""
    src = bytearray(os.urandom(4096)) * (size // 4096)
    dst = bytearray(len(src))
    dst[:] = src
    ready.put(True)
    start.wait()
    copies = 0
    began = time.perf_counter()
    deadline = began + seconds
    while True:
        dst[:] = src
        copies += 1
        ended = time.perf_counter()
        if ended >= deadline:
            break
    results.put((copies * len(src) * 2, began, ended))


def trial(processes, size, seconds):
    """Aggregate GB/s of `processes` copiers started together (CLOCK_MONOTONIC is shared by all)."""
    ctx = multiprocessing.get_context("fork")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_copier, args=(size, seconds, ready, start, results)) for dummy in range(processes)]
    for worker in workers:
        worker.start()
    try:
        started = sum(1 for worker in workers if ready.get(timeout=60))
        if started != len(workers):
            raise RuntimeError("%d of %d copy processes started" % (started, len(workers)))
        start.set()
        done = [results.get(timeout=seconds + 60) for dummy in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    moved = sum(d[0] for d in done)
    elapsed = max(d[2] for d in done) - min(d[1] for d in done)
    return moved / elapsed / 1e9


def main():
    module = AnsibleModule(
        argument_spec=dict(
            processes=dict(type="int", default=0),
            buffer_mib=dict(type="int", default=64),
            seconds=dict(type="float", default=0.5),
            trials=dict(type="int", default=3),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name, low in (("processes", 0), ("buffer_mib", 1), ("trials", 1)):
        if p[name] < low:
            module.fail_json(msg="%s=%s: it must be at least %d" % (name, p[name], low))
    if p["seconds"] <= 0:
        module.fail_json(msg="seconds=%s: it must be above 0" % p["seconds"])
    processes = p["processes"] or min(_cpus(), MAX_PROCESSES)
    figures = [round(trial(processes, p["buffer_mib"] * 1024 * 1024, p["seconds"]), 2) for dummy in range(p["trials"])]
    module.exit_json(
        changed=False,
        memory_bandwidth_gbps=max(figures),
        processes=processes,
        buffer_mib=p["buffer_mib"],
        trials_gbps=figures,
        method="memcpy of a %d MiB buffer in %d processes at once, read plus write" % (p["buffer_mib"], processes),
    )


if __name__ == "__main__":
    main()
