# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.replica_layout: how llama-server replicas map onto the GPUs."""

from __future__ import annotations

DOCUMENTATION = r"""
name: replica_layout
short_description: Lay out llama-server replicas on the GPUs of a host
version_added: 0.1.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - Decides between one llama-server process over all GPUs and one replica per GPU, and checks that
    the model fits in GPU memory with the chosen layout.
  - C(auto) picks one replica per GPU when there are several GPUs and the model plus headroom fits in the
    smallest one; a small model on a 4xT4 node then runs as four independent replicas instead of being
    split over four GPUs.
options:
  _input:
    description: GPUs as returned by M(slm.edge.gpu_info) (C(gpus)); each needs C(index) and C(memory_total_mib).
    type: list
    elements: dict
    required: true
  model_mib:
    description: Size of the GGUF file in MiB.
    type: int
    required: true
  mode:
    description: C(auto), C(single) or C(per_gpu).
    type: str
    default: auto
  headroom_mib:
    description: MiB per GPU kept for the KV cache and buffers.
    type: int
    default: 1024
  port:
    description: Port of replica 0; replica N listens on port + N.
    type: int
    default: 8080
  gpu_layers:
    description: Layers offloaded (-ngl); 0 means the model stays in host memory and always fits.
    type: int
    default: -1
"""

EXAMPLES = r"""
- name: Lay out the replicas
  ansible.builtin.set_fact:
    layout: "{{ gpu_info.gpus | slm.edge.replica_layout(model_mib=3266, mode='auto', port=8080) }}"
"""

RETURN = r"""
_value:
  description: The layout.
  type: dict
  contains:
    per_gpu:
      description: Whether each replica is pinned to one GPU.
      type: bool
    instances:
      description: Replicas, each with C(id), C(port) and C(gpu) (GPU index, empty for all GPUs or CPU).
      type: list
      elements: dict
    fits:
      description: Whether the model plus headroom fits in the memory each replica gets.
      type: bool
    need_mib:
      description: Model plus headroom, in MiB.
      type: int
    have_mib:
      description:
        - GPU memory a replica gets (the smallest GPU per replica, all GPUs together otherwise); 0 without GPUs.
      type: int
"""

from ansible.errors import AnsibleFilterError

MODES = ("auto", "single", "per_gpu")


def replica_layout(gpus, model_mib, *, mode="auto", headroom_mib=1024, port=8080, gpu_layers=-1):
    if mode not in MODES:
        raise AnsibleFilterError(f"replica_layout: mode must be one of {', '.join(MODES)}, got {mode!r}")
    gpus = sorted(gpus or [], key=lambda g: int(g["index"]))
    need = int(model_mib) + int(headroom_mib)
    smallest = min((int(g["memory_total_mib"]) for g in gpus), default=0)
    total = sum(int(g["memory_total_mib"]) for g in gpus)
    per_gpu = mode == "per_gpu" or (mode == "auto" and len(gpus) > 1 and need <= smallest)
    if per_gpu:
        instances = [{"id": str(i), "port": int(port) + i, "gpu": str(g["index"])} for i, g in enumerate(gpus)]
    else:
        instances = [{"id": "0", "port": int(port), "gpu": ""}]
    have = smallest if per_gpu else total
    fits = not gpus or int(gpu_layers) == 0 or need <= have
    return {"per_gpu": per_gpu, "instances": instances, "fits": fits, "need_mib": need, "have_mib": have}


class FilterModule:
    def filters(self):
        return {"replica_layout": replica_layout}
