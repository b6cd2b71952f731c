"""A tiny GGUF writer for tests (independent of plugins/module_utils/gguf.py).

Follows ggml's docs/gguf.md: magic, version, tensor count, kv count, key/value
pairs, tensor infos, padding to the alignment, tensor data (zeros here).
"""

from __future__ import annotations

import struct
from pathlib import Path

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)

SCALAR_FORMATS = {
    UINT8: "B",
    INT8: "b",
    UINT16: "H",
    INT16: "h",
    UINT32: "I",
    INT32: "i",
    FLOAT32: "f",
    BOOL: "?",
    UINT64: "Q",
    INT64: "q",
    FLOAT64: "d",
}

# ggml type id -> (block size, bytes per block), the few types the tests use.
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0, GGML_Q4_K, GGML_BF16 = 0, 1, 2, 8, 12, 30
BLOCKS = {
    GGML_F32: (1, 4),
    GGML_F16: (1, 2),
    GGML_Q4_0: (32, 18),
    GGML_Q8_0: (32, 34),
    GGML_Q4_K: (256, 144),
    GGML_BF16: (1, 2),
}


class GGUFWriter:
    def __init__(self, version=3, endian="<", alignment=32, magic=b"GGUF"):
        self.version = version
        self.endian = endian
        self.alignment = alignment
        self.magic = magic
        self.kvs = []  # (key, type, value)
        self.tensors = []  # (name, dims, ggml type)

    # -- building ----------------------------------------------------------
    def add(self, key, value_type, value):
        self.kvs.append((key, value_type, value))
        return self

    def add_array(self, key, element_type, values):
        return self.add(key, ARRAY, (element_type, list(values)))

    def add_tensor(self, name, dims, ggml_type):
        self.tensors.append((name, tuple(dims), ggml_type))
        return self

    # -- encoding ----------------------------------------------------------
    def _pack(self, fmt, *values):
        return struct.pack(self.endian + fmt, *values)

    def _string(self, text):
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return self._pack("Q", len(data)) + data

    def _value(self, value_type, value):
        if value_type == STRING:
            return self._string(value)
        if value_type == ARRAY:
            element_type, values = value
            out = [self._pack("I", element_type), self._pack("Q", len(values))]
            out.extend(self._value(element_type, v) for v in values)
            return b"".join(out)
        return self._pack(SCALAR_FORMATS[value_type], value)

    @staticmethod
    def tensor_nbytes(dims, ggml_type):
        count = 1
        for dim in dims:
            count *= dim
        block, size = BLOCKS[ggml_type]
        return count // block * size

    def header(self):
        out = [self.magic, self._pack("I", self.version), self._pack("Q", len(self.tensors))]
        out.append(self._pack("Q", len(self.kvs)))
        for key, value_type, value in self.kvs:
            out.append(self._string(key) + self._pack("I", value_type) + self._value(value_type, value))
        offset = 0
        self.offsets = []
        for name, dims, ggml_type in self.tensors:
            self.offsets.append(offset)
            out.append(self._string(name) + self._pack("I", len(dims)))
            out.extend(self._pack("Q", d) for d in dims)
            out.append(self._pack("I", ggml_type) + self._pack("Q", offset))
            offset += self._align(self.tensor_nbytes(dims, ggml_type))
        self.data_size = offset
        return b"".join(out)

    def _align(self, number):
        return -(-number // self.alignment) * self.alignment

    def to_bytes(self):
        header = self.header()
        padding = b"\0" * (self._align(len(header)) - len(header)) if self.tensors else b""
        self.data_offset = len(header) + len(padding)
        return header + padding + b"\0" * self.data_size

    def write(self, path):
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path


def llama_writer(
    context_length=2048, file_type=7, vocab=1000, chat_template="{% for m in messages %}{{ m }}{% endfor %}"
):
    """A llama-shaped model with a tokenizer, a chat template and three tensors (F32, F16, Q8_0)."""
    writer = GGUFWriter()
    writer.add("general.architecture", STRING, "llama")
    writer.add("general.name", STRING, "Tiny Test Llama")
    writer.add("general.file_type", UINT32, file_type)
    writer.add("general.quantization_version", UINT32, 2)
    writer.add("llama.context_length", UINT32, context_length)
    writer.add("llama.embedding_length", UINT32, 64)
    writer.add("llama.block_count", UINT32, 2)
    writer.add("llama.feed_forward_length", UINT32, 256)
    writer.add("llama.attention.head_count", UINT32, 4)
    writer.add("llama.attention.head_count_kv", UINT32, 2)
    writer.add("llama.attention.layer_norm_rms_epsilon", FLOAT32, 1e-5)
    writer.add("llama.rope.freq_base", FLOAT32, 10000.0)
    writer.add("tokenizer.ggml.model", STRING, "llama")
    writer.add_array("tokenizer.ggml.tokens", STRING, [f"<tok{i}>" for i in range(vocab)])
    writer.add_array("tokenizer.ggml.scores", FLOAT32, [float(-i) for i in range(vocab)])
    writer.add_array("tokenizer.ggml.token_type", INT32, [1] * vocab)
    writer.add("tokenizer.ggml.bos_token_id", UINT32, 1)
    writer.add("tokenizer.ggml.eos_token_id", UINT32, 2)
    if chat_template is not None:
        writer.add("tokenizer.chat_template", STRING, chat_template)
    writer.add_tensor("token_embd.weight", (64, vocab), GGML_Q8_0)
    writer.add_tensor("blk.0.attn_q.weight", (64, 64), GGML_F16)
    writer.add_tensor("output_norm.weight", (64,), GGML_F32)
    return writer
