#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) slm.edge contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gguf_info
short_description: Read the metadata of a GGUF model file without loading it
version_added: 0.1.0
description:
  - Parses the header of a GGUF file (the model format of llama.cpp) on the managed host and returns its architecture,
    size, context length, layer and head counts, quantization, tensor type counts, parameter count, tokenizer and chat
    template facts, and the scalar metadata.
  - Only the header is read; tensor data is never loaded, and large arrays such as C(tokenizer.ggml.tokens) are
    skipped over, so a multi-gigabyte model is inspected in well under a second with little memory.
  - GGUF versions 2 and 3 are supported, little and big endian.
  - Fails with a message naming the path when the file is missing, is not a GGUF file (bad magic), uses an
    unsupported version, or is truncated (shorter than its header or tensor data says).
  - The module only reads; it never changes the host.
author:
  - slm.edge maintainers (!UNKNOWN)
options:
  path:
    description:
      - Path of the C(.gguf) file on the managed host.
    type: path
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - O(path) must be a single file; for split models (C(*-00001-of-00003.gguf)) pass the first part, whose metadata
    describes the whole model, though RV(gguf.parameter_count) and RV(gguf.tensor_types) then count only the tensors
    in that part.
seealso:
  - name: GGUF file format
    description: Specification of the format in the ggml repository.
    link: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
  - name: llama.cpp llama.h
    description: The C(llama_ftype) enum that C(general.file_type) holds.
    link: https://github.com/ggml-org/llama.cpp/blob/master/include/llama.h
"""

EXAMPLES = r"""
- name: Inspect the model
  slm.edge.gguf_info:
    path: /opt/slm/models/qwen2.5-0.5b-instruct-q4_k_m.gguf
  register: model_info

- name: Refuse a per-request context longer than the model was trained for
  ansible.builtin.assert:
    that: request_ctx | int <= model_info.gguf.context_length
    fail_msg: >-
      request_ctx={{ request_ctx }} is larger than the trained context
      ({{ model_info.gguf.context_length }}) of {{ model_info.gguf.path }}; lower request_ctx.

- name: Size llama-server's slots from the KV cache per token (slm.edge.slot_plan)
  ansible.builtin.debug:
    msg: "{{ model_info.gguf | slm.edge.slot_plan(memory_mib=16384, model_mib=1024) }}"

- name: Refuse a model that does not fit in GPU memory
  ansible.builtin.assert:
    that: model_info.gguf.size_bytes < ansible_facts.gpu_info.total_memory_mib * 1048576
    fail_msg: "{{ model_info.gguf.name }} ({{ model_info.gguf.size_bytes | human_readable }}) does not fit the GPUs"
  when: ansible_facts.gpu_info.present

- name: Show what was found
  ansible.builtin.debug:
    msg: >-
      {{ model_info.gguf.architecture }} {{ model_info.gguf.parameter_count }} parameters,
      {{ model_info.gguf.quantization }}, chat template: {{ model_info.gguf.has_chat_template }}
"""

RETURN = r"""
gguf:
  description: What the header of the file says.
  returned: success
  type: dict
  contains:
    path:
      description: Path of the file.
      type: str
      returned: success
      sample: /opt/slm/models/tinyllama-1.1b-chat-q8_0.gguf
    size_bytes:
      description: Size of the file in bytes.
      type: int
      returned: success
      sample: 1170781568
    version:
      description: GGUF format version.
      type: int
      returned: success
      sample: 3
    byte_order:
      description: Byte order the file was written in, V(little) or V(big).
      type: str
      returned: success
      sample: little
    architecture:
      description: Model architecture, C(general.architecture).
      type: str
      returned: success
      sample: llama
    name:
      description: Model name, C(general.name); V(null) when not set.
      type: str
      returned: success
      sample: TinyLlama 1.1B Chat v1.0
    parameter_count:
      description: Number of weights, the sum over all tensors of the product of their dimensions.
      type: int
      returned: success
      sample: 1100048384
    tensor_count:
      description: Number of tensors in the file.
      type: int
      returned: success
      sample: 201
    kv_count:
      description: Number of metadata key/value pairs.
      type: int
      returned: success
      sample: 23
    alignment:
      description: Alignment of the tensor data, C(general.alignment) or 32.
      type: int
      returned: success
      sample: 32
    tensor_data_offset:
      description: Byte offset where the tensor data starts.
      type: int
      returned: success
      sample: 1709440
    context_length:
      description: Context length the model was trained with, C(<architecture>.context_length).
      type: int
      returned: success
      sample: 2048
    embedding_length:
      description: Embedding size, C(<architecture>.embedding_length).
      type: int
      returned: success
      sample: 2048
    block_count:
      description: Number of transformer blocks (layers), C(<architecture>.block_count).
      type: int
      returned: success
      sample: 22
    head_count:
      description:
        - Number of attention heads, C(<architecture>.attention.head_count).
        - For models that store one value per layer, the largest one.
      type: int
      returned: success
      sample: 32
    head_count_kv:
      description:
        - Number of key/value heads (grouped-query attention), C(<architecture>.attention.head_count_kv).
        - For models that store one value per layer, the largest one.
      type: int
      returned: success
      sample: 4
    key_length:
      description:
        - Size of one attention key head, C(<architecture>.attention.key_length); V(null) when not set (then it is
          C(embedding_length / head_count)).
      type: int
      returned: success
      sample: 128
    value_length:
      description:
        - Size of one attention value head, C(<architecture>.attention.value_length); V(null) when not set (then it is
          the key length).
      type: int
      returned: success
      sample: 128
    file_type:
      description: The C(general.file_type) number (llama.cpp C(llama_ftype)), V(null) when not set.
      type: int
      returned: success
      sample: 7
    file_type_name:
      description: Name of RV(gguf.file_type) in C(llama_ftype) without the C(LLAMA_FTYPE_) prefix.
      type: str
      returned: success
      sample: MOSTLY_Q8_0
    quantization:
      description:
        - Short quantization label such as V(F16), V(Q8_0) or V(Q4_K_M), from RV(gguf.file_type).
        - When the file does not say, the ggml type holding most of the matrix weights (for example V(Q4_K)).
      type: str
      returned: success
      sample: Q8_0
    tensor_types:
      description: Number of tensors per ggml type.
      type: dict
      returned: success
      sample: {"F32": 45, "Q8_0": 156}
    has_chat_template:
      description: Whether C(tokenizer.chat_template) is set.
      type: bool
      returned: success
      sample: true
    chat_template_length:
      description: Length of the chat template in characters, 0 when there is none.
      type: int
      returned: success
      sample: 1487
    vocab_size:
      description: Vocabulary size, C(<architecture>.vocab_size) or the length of C(tokenizer.ggml.tokens).
      type: int
      returned: success
      sample: 32000
    tokenizer_model:
      description: Tokenizer type, C(tokenizer.ggml.model).
      type: str
      returned: success
      sample: llama
    metadata:
      description:
        - All metadata keys. Scalars as they are, with strings cut to 512 characters; arrays as their length.
      type: dict
      returned: success
      sample: {"general.architecture": "llama", "llama.context_length": 2048, "tokenizer.ggml.tokens": 32000}
    arrays:
      description:
        - The array metadata keys with their element type and length; the values for arrays of at most 64 items.
      type: dict
      returned: success
      sample: {"tokenizer.ggml.tokens": {"element_type": "string", "length": 32000, "values": null}}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.slm.edge.plugins.module_utils.gguf import GGUFError, read_gguf, summarize


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]

    if not os.path.exists(path):
        module.fail_json(msg="GGUF file not found: %s" % path)
    if os.path.isdir(path):
        module.fail_json(msg="%s is a directory, not a GGUF file" % path)

    try:
        parsed = read_gguf(path)
    except GGUFError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc))

    module.exit_json(changed=False, gguf=summarize(parsed))


if __name__ == "__main__":
    main()
