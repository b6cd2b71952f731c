# Copyright: slm.edge contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Filter slm.edge.slot_plan: llama-server's slots (-np) and context (-c) from the model, the memory and the load."""

from __future__ import annotations

DOCUMENTATION = r"""
name: slot_plan
short_description: Size llama-server's parallel slots and context from the model's KV cache, the memory and the load
version_added: 0.4.0
author: slm.edge maintainers (!UNKNOWN)
description:
  - Works out C(-np) (slots per replica) and C(-c) (the context all slots share) for one llama-server replica.
  - "Each slot holds one request: its prompt plus its output. The per-slot context is therefore the expected prompt
    plus C(n_predict), rounded up to llama.cpp's 256-token granule and at most the model's trained context."
  - "The KV cache costs, per token, layers x KV heads x (key length x bytes of the K type + value length x bytes of
    the V type), from the GGUF metadata (M(slm.edge.gguf_info)). The memory for it is what a replica gets (one GPU,
    all GPUs, or the host's RAM when nothing is offloaded) less the model and a headroom for compute buffers."
  - "With O(parallel=auto) the slots are as many as that memory holds, at most O(max_parallel): decoding several
    sequences at once reads the weights once per step for all of them, which is where the throughput at
    concurrency comes from, until the host is compute-bound."
  - The plan uses total memory, not the free memory of the moment, so that it is the same on every run (the running
    server's own KV cache would otherwise shrink the next plan) and while a rolling change is in flight.
options:
  _input:
    description: The model's metadata, the C(gguf) return value of M(slm.edge.gguf_info).
    type: dict
    required: true
  parallel:
    description: C(auto), or the slots to use.
    type: raw
    default: auto
  ctx_size:
    description: C(auto) (slots x per-slot context), C(0) (the model's trained context) or the total context.
    type: raw
    default: auto
  slot_ctx:
    description: C(auto) (prompt plus output) or the tokens each slot must hold.
    type: raw
    default: auto
  prompt_tokens:
    description: The longest prompt expected, in tokens (system prompt, history and the user's text).
    type: int
    default: 1536
  n_predict:
    description: The most tokens a request generates (C(-n)).
    type: int
    default: 512
  memory_mib:
    description: Memory one replica gets, in MiB (GPU memory when layers are offloaded, else host RAM).
    type: int
    required: true
  model_mib:
    description: Size of the GGUF file in MiB (it lives in that same memory).
    type: int
    required: true
  headroom_mib:
    description: MiB kept free for compute buffers and everything else.
    type: int
    default: 1024
  cache_type_k:
    description: KV cache type of K (C(-ctk)).
    type: str
    default: f16
  cache_type_v:
    description: KV cache type of V (C(-ctv)).
    type: str
    default: f16
  max_parallel:
    description: Most slots C(auto) picks.
    type: int
    default: 8
  draft:
    description:
      - The draft model's metadata (speculative decoding), or V(null). llama-server keeps a draft context as long as
        the served one, so its KV bytes per token add to the served model's (its size must be in O(model_mib)).
    type: dict
  where:
    description: Words for the memory in the reasons (C(host RAM), C(GPU 0)).
    type: str
    default: memory
"""

EXAMPLES = r"""
- name: Plan the slots
  ansible.builtin.set_fact:
    plan: >-
      {{ gguf.gguf | slm.edge.slot_plan(parallel='auto', ctx_size='auto', memory_mib=ansible_facts.memtotal_mb,
         model_mib=1700, headroom_mib=2048, max_parallel=8, where='host RAM') }}
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    parallel:
      description: Slots (C(-np)).
      type: int
    ctx_size:
      description: Total context (C(-c)), parallel x slot_ctx unless given.
      type: int
    slot_ctx:
      description: Tokens each slot holds.
      type: int
    kv_bytes_per_token:
      description: KV cache bytes per token of context (0 when the metadata lacks the shape).
      type: int
    kv_mib:
      description: KV cache of the whole context, MiB.
      type: float
    budget_mib:
      description: Memory left for the KV cache, MiB.
      type: int
    memory_slots:
      description: Slots of slot_ctx tokens that the budget holds (V(null) when the shape is unknown).
      type: int
    fits:
      description: Whether the KV cache of the whole context fits the budget.
      type: bool
    reasons:
      description: One sentence per choice, for the play's output.
      type: list
      elements: str
"""

import math

from ansible.errors import AnsibleFilterError

GRANULE = 256
# Per-slot context when the output is unbounded and the GGUF gives no trained context.
UNBOUNDED_SLOT = 4096
# Bytes per element of llama.cpp's KV cache types (block size and bytes per block).
CACHE_TYPE_BYTES = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "iq4_nl": 18 / 32,
}


def _auto(value):
    return isinstance(value, str) and value.strip().lower() == "auto"


def _int(name, value, minimum):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"slot_plan: {name} must be auto or an integer, got {value!r}") from None
    if number < minimum:
        raise AnsibleFilterError(f"slot_plan: {name} must be at least {minimum}, got {number}")
    return number


def _round_up(tokens):
    return int(math.ceil(tokens / GRANULE) * GRANULE)


def kv_bytes_per_token(gguf, cache_type_k="f16", cache_type_v="f16"):
    """Bytes of KV cache per token of context; 0 when the metadata lacks the shape."""
    for name, kind in (("cache_type_k", cache_type_k), ("cache_type_v", cache_type_v)):
        if kind not in CACHE_TYPE_BYTES:
            raise AnsibleFilterError(f"slot_plan: {name} must be one of {', '.join(CACHE_TYPE_BYTES)}, got {kind!r}")
    layers = int(gguf.get("block_count") or 0)
    heads = int(gguf.get("head_count") or 0)
    kv_heads = int(gguf.get("head_count_kv") or heads or 0)
    embedding = int(gguf.get("embedding_length") or 0)
    key = int(gguf.get("key_length") or (embedding // heads if heads else 0))
    value = int(gguf.get("value_length") or key)
    if not (layers and kv_heads and key and value):
        return 0
    per_head = key * CACHE_TYPE_BYTES[cache_type_k] + value * CACHE_TYPE_BYTES[cache_type_v]
    return math.ceil(layers * kv_heads * per_head)


def _slots(count):
    return f"{count} slot" if count == 1 else f"{count} slots"


def _size(nbytes):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} B"


def slot_plan(
    gguf,
    *,
    memory_mib,
    model_mib,
    parallel="auto",
    ctx_size="auto",
    slot_ctx="auto",
    prompt_tokens=1536,
    n_predict=512,
    headroom_mib=1024,
    cache_type_k="f16",
    cache_type_v="f16",
    max_parallel=8,
    draft=None,
    where="memory",
):
    gguf = gguf or {}
    trained = int(gguf.get("context_length") or 0)
    max_parallel = _int("max_parallel", max_parallel, 1)
    per_token = kv_bytes_per_token(gguf, cache_type_k, cache_type_v)
    draft_per_token = kv_bytes_per_token(draft, cache_type_k, cache_type_v) if draft else 0
    if per_token and draft:
        # Unknown draft shape: the served model's per token is a generous stand-in (drafts are smaller).
        per_token += draft_per_token or per_token
    budget = max(int(memory_mib) - int(model_mib) - int(headroom_mib), 0)
    reasons = []

    if _auto(slot_ctx) and int(n_predict) <= 0:
        slot = trained or UNBOUNDED_SLOT
        reasons.append(f"slot context {slot} tokens: output until the end (n_predict {n_predict}), the trained context")
    elif _auto(slot_ctx):
        wanted = _round_up(_int("prompt_tokens", prompt_tokens, 1) + _int("n_predict", n_predict, 1))
        slot = min(wanted, trained) if trained else wanted
        reasons.append(
            f"slot context {slot} tokens: prompt {prompt_tokens} + output {n_predict}, rounded up to {GRANULE}"
            + (f", at most the trained context {trained}" if trained and slot < wanted else "")
        )
    else:
        slot = _int("slot_ctx", slot_ctx, 16)

    memory_slots = None
    if per_token:
        memory_slots = budget * (1 << 20) // (slot * per_token)
        shape = (
            f"KV cache {_size(per_token)} per token ({gguf.get('block_count')} layers x "
            f"{gguf.get('head_count_kv') or gguf.get('head_count')} KV heads, K {cache_type_k}, V {cache_type_v}"
            + (f", with the draft's {_size(draft_per_token)}" if draft else "")
            + "), "
            f"{_size(per_token * slot)} per slot"
        )
    else:
        shape = "KV cache size unknown (the GGUF lacks the attention shape)"

    given_ctx = None if _auto(ctx_size) else _int("ctx_size", ctx_size, 0)
    if given_ctx == 0:
        given_ctx = trained or None

    if _auto(parallel):
        if given_ctx:
            slots = max(1, min(max_parallel, given_ctx // slot))
            reasons.append(
                f"{_slots(slots)}: the given context {given_ctx} holds {given_ctx // slot} of {slot} tokens"
                f" (at most {max_parallel})"
            )
        elif memory_slots is None:
            slots = min(4, max_parallel)
            reasons.append(f"{_slots(slots)}: {shape}, so the memory cannot size them (at most {max_parallel})")
        else:
            slots = max(1, min(max_parallel, memory_slots))
            reasons.append(
                f"{_slots(slots)}: {shape}; {where} {int(memory_mib)} MiB - model {int(model_mib)} MiB - headroom "
                f"{int(headroom_mib)} MiB leaves {budget} MiB, room for {_slots(memory_slots)}"
                f" (at most {max_parallel})"
            )
    else:
        slots = _int("parallel", parallel, 1)

    total = given_ctx if given_ctx else slots * slot
    kv_bytes = per_token * total
    fits = not per_token or kv_bytes <= budget * (1 << 20)
    reasons.append(
        f"context {total} tokens ({slots} x {total // slots}); KV cache {_size(kv_bytes)} of the {budget} MiB left"
        if per_token
        else f"context {total} tokens ({slots} x {total // slots})"
    )
    return {
        "parallel": slots,
        "ctx_size": total,
        "slot_ctx": total // slots,
        "kv_bytes_per_token": per_token,
        "kv_mib": round(kv_bytes / (1 << 20), 1),
        "budget_mib": budget,
        "memory_slots": memory_slots,
        "fits": fits,
        "reasons": reasons,
    }


class FilterModule:
    def filters(self):
        return {"slot_plan": slot_plan}
